//! The TLS code points of protocol versions, groups, signature schemes and
//! certificate types, and their names: GnuTLS's name where GnuTLS knows the
//! value (the name its priority strings use), else the IANA registry's.
//!
//! Only tables and lookups; cipher suites are named by GnuTLS itself
//! ([`gnutls::cipher_suite_name`](crate::gnutls::cipher_suite_name)).

/// Protocol versions, newest first.
const VERSIONS: &[(u16, &str)] = &[
    (0x0304, "TLS1.3"),
    (0x0303, "TLS1.2"),
    (0x0302, "TLS1.1"),
    (0x0301, "TLS1.0"),
    (0x0300, "SSL3.0"),
];

/// Supported groups.
const GROUPS: &[(u16, &str)] = &[
    (19, "SECP192R1"),
    (21, "SECP224R1"),
    (23, "SECP256R1"),
    (24, "SECP384R1"),
    (25, "SECP521R1"),
    (26, "brainpoolP256r1"),
    (27, "brainpoolP384r1"),
    (28, "brainpoolP512r1"),
    (29, "X25519"),
    (30, "X448"),
    (31, "brainpoolP256r1tls13"),
    (32, "brainpoolP384r1tls13"),
    (33, "brainpoolP512r1tls13"),
    (34, "GC256A"),
    (35, "GC256B"),
    (36, "GC256C"),
    (37, "GC256D"),
    (38, "GC512A"),
    (39, "GC512B"),
    (40, "GC512C"),
    (256, "FFDHE2048"),
    (257, "FFDHE3072"),
    (258, "FFDHE4096"),
    (259, "FFDHE6144"),
    (260, "FFDHE8192"),
    (0x11eb, "SecP256r1MLKEM768"),
    (0x11ec, "X25519MLKEM768"),
    (0x11ed, "SecP384r1MLKEM1024"),
    (0x6399, "X25519Kyber768Draft00"),
];

/// Signature schemes. GnuTLS has two names for each ECDSA scheme (one per
/// TLS version's meaning of it); the first is used when naming a code point.
const SIGNATURE_SCHEMES: &[(u16, &str)] = &[
    (0x0201, "RSA-SHA1"),
    (0x0202, "DSA-SHA1"),
    (0x0203, "ECDSA-SHA1"),
    (0x0301, "rsa_pkcs1_sha224"),
    (0x0302, "dsa_sha224"),
    (0x0303, "ecdsa_sha224"),
    (0x0401, "RSA-SHA256"),
    (0x0402, "dsa_sha256"),
    (0x0403, "ECDSA-SECP256R1-SHA256"),
    (0x0403, "ECDSA-SHA256"),
    (0x0501, "RSA-SHA384"),
    (0x0503, "ECDSA-SECP384R1-SHA384"),
    (0x0503, "ECDSA-SHA384"),
    (0x0601, "RSA-SHA512"),
    (0x0603, "ECDSA-SECP521R1-SHA512"),
    (0x0603, "ECDSA-SHA512"),
    (0x0804, "RSA-PSS-RSAE-SHA256"),
    (0x0805, "RSA-PSS-RSAE-SHA384"),
    (0x0806, "RSA-PSS-RSAE-SHA512"),
    (0x0807, "EdDSA-Ed25519"),
    (0x0808, "EdDSA-Ed448"),
    (0x0809, "RSA-PSS-SHA256"),
    (0x080a, "RSA-PSS-SHA384"),
    (0x080b, "RSA-PSS-SHA512"),
    (0x081a, "ecdsa_brainpoolP256r1tls13_sha256"),
    (0x081b, "ecdsa_brainpoolP384r1tls13_sha384"),
    (0x081c, "ecdsa_brainpoolP512r1tls13_sha512"),
    (0x0840, "GOSTR341012-256"),
    (0x0841, "GOSTR341012-512"),
    (0x0904, "mldsa44"),
    (0x0905, "mldsa65"),
    (0x0906, "mldsa87"),
];

/// Certificate types (RFC 7250), by GnuTLS's names.
const CERTIFICATE_TYPES: &[(u16, &str)] = &[(0, "X.509"), (1, "OpenPGP"), (2, "RAWPK")];

/// One of the tables above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registry {
    Versions,
    Groups,
    SignatureSchemes,
    CertificateTypes,
}

impl Registry {
    fn table(self) -> &'static [(u16, &'static str)] {
        match self {
            Self::Versions => VERSIONS,
            Self::Groups => GROUPS,
            Self::SignatureSchemes => SIGNATURE_SCHEMES,
            Self::CertificateTypes => CERTIFICATE_TYPES,
        }
    }

    /// The name of `code`, or the code in hex when the registry does not
    /// know it.
    pub(crate) fn name(self, code: u16) -> String {
        match self.table().iter().find(|&&(c, _)| c == code) {
            Some((_, name)) => (*name).to_owned(),
            None => format!("0x{code:04x}"),
        }
    }

    /// The code point GnuTLS's `name` stands for.
    pub(crate) fn code(self, name: &str) -> Option<u16> {
        self.table()
            .iter()
            .find(|&&(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(code, _)| code)
    }
}

/// A GREASE value (RFC 8701) or a signalling cipher suite value: a code
/// point a client sends that stands for nothing it offers.
pub(crate) fn is_placeholder(code: u16) -> bool {
    let grease = code & 0x0f0f == 0x0a0a && code >> 8 == code & 0xff;
    grease || code == 0x00ff || code == 0x5600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        assert_eq!(Registry::Versions.name(0x0304), "TLS1.3");
        assert_eq!(Registry::Groups.code("x25519"), Some(29));
        assert_eq!(
            Registry::SignatureSchemes.name(0x0403),
            "ECDSA-SECP256R1-SHA256"
        );
        assert_eq!(
            Registry::SignatureSchemes.code("ECDSA-SHA256"),
            Some(0x0403)
        );
        assert_eq!(Registry::Groups.name(0x1234), "0x1234");
        assert_eq!(Registry::CertificateTypes.name(2), "RAWPK");
    }

    #[test]
    fn grease_and_signals_are_placeholders() {
        assert!(is_placeholder(0x0a0a));
        assert!(is_placeholder(0xdada));
        assert!(is_placeholder(0x00ff));
        assert!(!is_placeholder(0x1301));
        assert!(!is_placeholder(0x0a1a));
    }
}
