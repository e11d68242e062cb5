//! Explains a handshake that failed because the sides found nothing in
//! common: turns GnuTLS's error (or the peer's alert), our priority's
//! [`Offer`] and, on a server, the client's [`ClientHello`] into a
//! [`HandshakeRefusal`].
//!
//! GnuTLS's server reports most mismatches as one error
//! (`GNUTLS_E_NO_CIPHER_SUITES`: no suite it could use with a common
//! group, signature algorithm and certificate type), so a server finds the
//! parameter itself, by intersecting the client's offer with its own in
//! the order a handshake decides them. Pure functions over what the engine
//! collected; nothing here touches the session.

use super::client_hello::ClientHello;
use super::code_points::{is_placeholder, Registry};
use crate::error::Alert;
use crate::gnutls::{self, code, GnutlsError, Offer};
use crate::refusal::{HandshakeOffer, HandshakeParameter, HandshakeRefusal, RefusedBy};

/// The alerts a peer refuses a hello with.
pub(super) const HANDSHAKE_FAILURE: u8 = 40;
const INSUFFICIENT_SECURITY: u8 = 71;
pub(super) const PROTOCOL_VERSION: u8 = 70;

/// What the engine knows when a handshake fails.
pub(super) struct Failure<'a> {
    /// We are the server.
    pub(super) server: bool,
    /// Our priority's offer and its string.
    pub(super) offer: Offer,
    pub(super) priority: String,
    /// On a server: the client's hello as received (maybe empty).
    pub(super) client_hello: &'a [u8],
    /// On a client: the server answered our hello.
    pub(super) server_hello_received: bool,
    /// On a server: the public key algorithms of its keys ("RSA",
    /// "EC/ECDSA"), and the certificate types it can present them as
    /// ("X.509", "RAWPK").
    pub(super) key_algorithms: Vec<String>,
    pub(super) certificate_types: Vec<&'static str>,
}

impl Failure<'_> {
    /// Explains GnuTLS's `error`, if it says the sides had nothing in
    /// common.
    pub(super) fn explain_error(self, error: GnutlsError) -> Option<HandshakeRefusal> {
        let named = match error.code() {
            code::UNSUPPORTED_VERSION_PACKET => Some(HandshakeParameter::ProtocolVersion),
            code::UNKNOWN_CIPHER_SUITE => Some(HandshakeParameter::CipherSuite),
            code::NO_COMMON_KEY_SHARE => Some(HandshakeParameter::Group),
            code::UNSUPPORTED_SIGNATURE_ALGORITHM => Some(HandshakeParameter::SignatureAlgorithm),
            code::UNSUPPORTED_CERTIFICATE_TYPE => Some(HandshakeParameter::CertificateType),
            code::NO_CIPHER_SUITES | code::INSUFFICIENT_CREDENTIALS => None,
            _ => return None,
        };
        let hello = self.parsed_hello();
        let parameter = match &hello {
            Some(hello) => self.first_mismatch(hello).or(named),
            None => named,
        };
        let theirs = hello.as_ref().map(their_offer);
        Some(self.refusal(RefusedBy::Us, parameter, theirs, None, Some(error)))
    }

    /// Explains a fatal `alert` from the peer, if it refused our hello (a
    /// client's, before the server answered it) or our choice (a
    /// server's).
    pub(super) fn explain_alert(self, alert: Alert) -> Option<HandshakeRefusal> {
        let parameter = match alert.description() {
            PROTOCOL_VERSION => Some(HandshakeParameter::ProtocolVersion),
            HANDSHAKE_FAILURE | INSUFFICIENT_SECURITY => None,
            _ => return None,
        };
        // A refusal answers our hello: a client's, before the server's
        // hello; a server's, after the client's hello (an alert that comes
        // instead of a ClientHello refuses nothing we offered).
        let answers_our_hello = match self.server {
            true => !self.client_hello.is_empty(),
            false => !self.server_hello_received,
        };
        if !answers_our_hello {
            return None;
        }
        let theirs = self.parsed_hello().as_ref().map(their_offer);
        Some(self.refusal(RefusedBy::Peer, parameter, theirs, Some(alert), None))
    }

    fn parsed_hello(&self) -> Option<ClientHello> {
        (self.server && !self.client_hello.is_empty())
            .then(|| ClientHello::parse(self.client_hello))
    }

    fn refusal(
        self,
        refused_by: RefusedBy,
        parameter: Option<HandshakeParameter>,
        theirs: Option<HandshakeOffer>,
        alert: Option<Alert>,
        gnutls: Option<GnutlsError>,
    ) -> HandshakeRefusal {
        let mut ours = our_offer(&self.offer);
        if self.server {
            ours.certificate_types = self
                .certificate_types
                .iter()
                .map(|&t| t.to_owned())
                .collect();
        }
        ours.cipher_suites = self.usable_suites().map(|(_, n)| n.to_owned()).collect();
        ours.signature_algorithms = self.signable().map(str::to_owned).collect();
        HandshakeRefusal {
            refused_by,
            peer_is_server: !self.server,
            parameter,
            ours,
            theirs,
            priority: self.priority,
            alert,
            gnutls,
        }
    }

    /// On a server: the first parameter, in the order a handshake settles
    /// them, for which the client offered nothing we accept.
    fn first_mismatch(&self, hello: &ClientHello) -> Option<HandshakeParameter> {
        let Some(version) = self.common_version(hello) else {
            return Some(HandshakeParameter::ProtocolVersion);
        };
        let tls13 = version >= 0x0304;
        let suites: Vec<&str> = self
            .usable_suites()
            .filter(|(id, _)| (id >> 8 == 0x13) == tls13 && hello.cipher_suites.contains(id))
            .map(|(_, name)| name)
            .collect();
        if suites.is_empty() {
            return Some(HandshakeParameter::CipherSuite);
        }
        let needs_group = tls13 || suites.iter().all(|s| s.contains("ECDHE"));
        let sent_groups = tls13 || !hello.groups.is_empty();
        if needs_group
            && sent_groups
            && !has_common(Registry::Groups, &self.offer.groups, &hello.groups)
        {
            return Some(HandshakeParameter::Group);
        }
        let signable: Vec<&str> = self.signable().collect();
        let schemes = match tls13 {
            true => &hello.signature_algorithms[..],
            false => hello.tls12_signature_algorithms(),
        };
        if !self.key_algorithms.is_empty()
            && !has_common(Registry::SignatureSchemes, &signable, schemes)
        {
            return Some(HandshakeParameter::SignatureAlgorithm);
        }
        // Without the extension, a client takes only X.509 (RFC 7250 §4.1).
        let wanted = hello.server_certificate_types.as_deref().unwrap_or(&[0]);
        let common = wanted.iter().any(|&t| {
            let name = Registry::CertificateTypes.name(u16::from(t));
            self.certificate_types.contains(&name.as_str())
        });
        (!common && !self.certificate_types.is_empty())
            .then_some(HandshakeParameter::CertificateType)
    }

    /// The highest version both sides accept.
    fn common_version(&self, hello: &ClientHello) -> Option<u16> {
        let theirs = |v: u16| match hello.legacy_versions {
            true => hello.versions.first().is_some_and(|&max| v <= max),
            false => hello.versions.contains(&v),
        };
        self.offer
            .versions
            .iter()
            .filter_map(|&name| Registry::Versions.code(name))
            .filter(|&v| theirs(v))
            .max()
    }

    /// Our cipher suites that one of our certificates' keys can
    /// authenticate (all of them when we have no certificate, and every
    /// TLS 1.3 suite: those leave authentication to the signature
    /// algorithm).
    fn usable_suites(&self) -> impl Iterator<Item = (u16, &'static str)> + '_ {
        self.offer
            .cipher_suites
            .iter()
            .copied()
            .filter(|&(id, name)| match certificate_key_of(id, name) {
                Some(key) if !self.key_algorithms.is_empty() => {
                    self.key_algorithms.iter().any(|k| k.starts_with(key))
                }
                _ => true,
            })
    }

    /// Our signature algorithms that one of our certificates' keys can
    /// make (all of them when we have no certificate).
    fn signable(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.offer
            .signature_algorithms
            .iter()
            .copied()
            .filter(|&scheme| {
                self.key_algorithms.is_empty()
                    || self
                        .key_algorithms
                        .iter()
                        .any(|key| gnutls::signature_fits_key(scheme, key))
            })
    }
}

/// The public key algorithm (GnuTLS's name, or its start) the server's
/// certificate needs for a TLS 1.2 suite, if the suite names one.
fn certificate_key_of(id: u16, name: &str) -> Option<&'static str> {
    if id >> 8 == 0x13 {
        return None;
    }
    if name.contains("_ECDSA_") {
        return Some("EC/ECDSA");
    }
    name.contains("_RSA_").then_some("RSA")
}

/// Whether a name in `ours` stands for a code point in `theirs`.
fn has_common(registry: Registry, ours: &[&str], theirs: &[u16]) -> bool {
    ours.iter()
        .filter_map(|&name| registry.code(name))
        .any(|code| theirs.contains(&code))
}

/// Our offer, by name; the certificate types are those we accept for the
/// server's certificate.
fn our_offer(offer: &Offer) -> HandshakeOffer {
    let owned = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect();
    HandshakeOffer {
        protocol_versions: owned(&offer.versions),
        cipher_suites: offer
            .cipher_suites
            .iter()
            .map(|&(_, n)| n.to_owned())
            .collect(),
        groups: owned(&offer.groups),
        signature_algorithms: owned(&offer.signature_algorithms),
        certificate_types: owned(&offer.certificate_types[1]),
    }
}

/// A client's offer, by name.
fn their_offer(hello: &ClientHello) -> HandshakeOffer {
    let mut protocol_versions: Vec<String> = named(Registry::Versions, &hello.versions);
    if hello.legacy_versions {
        protocol_versions = protocol_versions
            .into_iter()
            .map(|v| format!("{v} or earlier"))
            .collect();
    }
    let cipher_suites = hello
        .cipher_suites
        .iter()
        .filter(|&&c| !is_placeholder(c))
        .map(|&c| gnutls::cipher_suite_name(c).map_or_else(|| format!("0x{c:04x}"), str::to_owned))
        .collect();
    let certificate_types = match &hello.server_certificate_types {
        Some(types) => types
            .iter()
            .map(|&t| Registry::CertificateTypes.name(u16::from(t)))
            .collect(),
        None => vec![Registry::CertificateTypes.name(0)],
    };
    HandshakeOffer {
        protocol_versions,
        cipher_suites,
        groups: named(Registry::Groups, &hello.groups),
        signature_algorithms: their_signature_algorithms(hello),
        certificate_types,
    }
}

/// A client's signature algorithms by name; without the extension, and
/// without TLS 1.3 on offer, the SHA-1 ones TLS 1.2 implies, marked so.
fn their_signature_algorithms(hello: &ClientHello) -> Vec<String> {
    let tls13 = hello.versions.contains(&0x0304);
    if tls13 || !hello.signature_algorithms.is_empty() {
        return named(Registry::SignatureSchemes, &hello.signature_algorithms);
    }
    let implied = named(
        Registry::SignatureSchemes,
        hello.tls12_signature_algorithms(),
    );
    implied
        .into_iter()
        .map(|name| format!("{name} (implied: no signature_algorithms)"))
        .collect()
}

/// Code points by name, without GREASE and other placeholders.
fn named(registry: Registry, codes: &[u16]) -> Vec<String> {
    codes
        .iter()
        .filter(|&&c| !is_placeholder(c))
        .map(|&c| registry.name(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutls::Priority;

    const PRIORITY: &str = "NONE:+VERS-TLS1.3:+VERS-TLS1.2:+AES-128-GCM:+AEAD:+ECDHE-ECDSA:\
        +ECDHE-RSA:+SIGN-ECDSA-SECP256R1-SHA256:+SIGN-ECDSA-SHA256:+SIGN-RSA-PSS-RSAE-SHA256:\
        +GROUP-X25519:+CTYPE-X509:+COMP-NULL";

    /// A hello that agrees with `PRIORITY` on everything (TLS 1.3).
    fn agreeable() -> ClientHello {
        ClientHello {
            versions: vec![0x0304, 0x0303],
            legacy_versions: false,
            cipher_suites: vec![0x0a0a, 0x1301, 0xc02b],
            groups: vec![29],
            signature_algorithms: vec![0x0403],
            server_certificate_types: None,
        }
    }

    fn server_failure<'a>(hello: &'a [u8], key: &str) -> Failure<'a> {
        Failure {
            server: true,
            offer: Priority::new(PRIORITY, false).unwrap().offer(),
            priority: PRIORITY.to_owned(),
            client_hello: hello,
            server_hello_received: false,
            key_algorithms: vec![key.to_owned()],
            certificate_types: vec!["X.509"],
        }
    }

    fn no_suites() -> GnutlsError {
        GnutlsError::from_code(code::NO_CIPHER_SUITES)
    }

    /// What our ECDSA server finds wrong with `hello`.
    fn refused(hello: ClientHello) -> HandshakeRefusal {
        let bytes = hello.to_bytes();
        server_failure(&bytes, "EC/ECDSA")
            .explain_error(no_suites())
            .unwrap()
    }

    #[test]
    fn a_server_names_the_first_parameter_without_a_common_value() {
        type Change = fn(&mut ClientHello);
        let cases: [(&str, Change, Option<HandshakeParameter>); 7] = [
            ("agreeable", |_| {}, None),
            (
                "versions",
                |h| h.versions = vec![0x0302],
                Some(HandshakeParameter::ProtocolVersion),
            ),
            (
                "suites",
                |h| h.cipher_suites = vec![0x1302],
                Some(HandshakeParameter::CipherSuite),
            ),
            (
                "groups",
                |h| h.groups = vec![23, 0x11ec],
                Some(HandshakeParameter::Group),
            ),
            (
                "schemes",
                |h| h.signature_algorithms = vec![0x0804],
                Some(HandshakeParameter::SignatureAlgorithm),
            ),
            (
                "certificate types",
                |h| h.server_certificate_types = Some(vec![2]),
                Some(HandshakeParameter::CertificateType),
            ),
            (
                "TLS 1.2 with only a suite for an RSA key",
                |h| {
                    h.versions = vec![0x0303];
                    h.cipher_suites = vec![0xc02f];
                },
                Some(HandshakeParameter::CipherSuite),
            ),
        ];
        for (what, change, parameter) in cases {
            let mut hello = agreeable();
            change(&mut hello);
            let refusal = refused(hello);
            assert_eq!(refusal.parameter(), parameter, "{what}: {refusal}");
            assert_eq!(refusal.refused_by(), RefusedBy::Us, "{what}");
            assert_eq!(refusal.gnutls_error(), Some(no_suites()), "{what}");
        }
    }

    #[test]
    fn a_server_tells_both_offers_by_name() {
        let mut hello = agreeable();
        hello.groups = vec![0x0a0a, 23, 0x11ec];
        let refusal = refused(hello);
        let theirs = refusal.theirs().unwrap();
        assert_eq!(theirs.groups, ["SECP256R1", "X25519MLKEM768"]);
        assert_eq!(
            theirs.cipher_suites,
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(theirs.protocol_versions, ["TLS1.3", "TLS1.2"]);
        assert_eq!(theirs.certificate_types, ["X.509"]);
        assert_eq!(
            refusal.to_string(),
            format!(
                "no key exchange group in common with the client: we accept X25519; it offered \
                 SECP256R1, X25519MLKEM768 (priority string {PRIORITY:?}; ours are set with \
                 SslConfigurationBuilder::priority_string; `gnutls-cli --priority STRING -l` \
                 lists what a string allows)"
            )
        );
    }

    #[test]
    fn a_server_offers_only_what_its_key_can_sign() {
        let mut hello = agreeable();
        hello.signature_algorithms = vec![0x0804];
        let refusal = refused(hello);
        assert_eq!(
            refusal.ours().signature_algorithms,
            ["ECDSA-SECP256R1-SHA256", "ECDSA-SHA256"]
        );
        assert_eq!(
            refusal.theirs().unwrap().signature_algorithms,
            ["RSA-PSS-RSAE-SHA256"]
        );
    }

    #[test]
    fn a_legacy_hello_offers_every_earlier_version() {
        let hello = ClientHello {
            versions: vec![0x0303],
            legacy_versions: true,
            cipher_suites: vec![0xc02b],
            signature_algorithms: vec![0x0403],
            ..ClientHello::default()
        };
        let refusal = refused(hello);
        // TLS 1.2 is common, the suite and the scheme too, and a TLS 1.2
        // hello without groups leaves them to the server: nothing to blame.
        assert_eq!(refusal.parameter(), None, "{refusal}");
        assert_eq!(
            refusal.theirs().unwrap().protocol_versions,
            ["TLS1.2 or earlier"]
        );
    }

    #[test]
    fn a_tls_1_2_hello_without_schemes_offers_sha1_which_we_refuse() {
        let hello = ClientHello {
            versions: vec![0x0303],
            cipher_suites: vec![0xc02b],
            groups: vec![29],
            ..ClientHello::default()
        };
        let refusal = refused(hello);
        assert_eq!(
            refusal.parameter(),
            Some(HandshakeParameter::SignatureAlgorithm),
            "{refusal}"
        );
        let theirs = &refusal.theirs().unwrap().signature_algorithms;
        assert_eq!(theirs.len(), 3, "{theirs:?}");
        assert!(theirs[0].starts_with("RSA-SHA1 (implied"), "{theirs:?}");
    }

    #[test]
    fn other_errors_are_not_refusals() {
        let bytes = agreeable().to_bytes();
        let failure = server_failure(&bytes, "EC/ECDSA");
        assert!(failure
            .explain_error(GnutlsError::from_code(code::DECRYPTION_FAILED))
            .is_none());
    }

    fn client_failure(server_hello_received: bool) -> Failure<'static> {
        Failure {
            server: false,
            server_hello_received,
            client_hello: &[],
            key_algorithms: Vec::new(),
            certificate_types: Vec::new(),
            ..server_failure(&[], "")
        }
    }

    fn alert(description: u8) -> Alert {
        Alert::from_raw(crate::gnutls::RawAlert {
            fatal: true,
            description,
        })
    }

    #[test]
    fn a_client_reads_the_servers_alert() {
        let refusal = client_failure(false).explain_alert(alert(70)).unwrap();
        assert_eq!(refusal.refused_by(), RefusedBy::Peer);
        assert_eq!(
            refusal.parameter(),
            Some(HandshakeParameter::ProtocolVersion)
        );
        assert!(refusal.theirs().is_none());
        let refusal = client_failure(false).explain_alert(alert(40)).unwrap();
        assert_eq!(refusal.parameter(), None);
        let text = refusal.to_string();
        assert!(
            text.starts_with("the server refused our hello (fatal alert: ")
                && text.contains(
                    "nothing we offered suited it; we offered protocol versions TLS1.3, TLS1.2; \
                     cipher suites TLS_AES_128_GCM_SHA256, "
                ),
            "{text}"
        );
        // After the server's hello, an alert is about something else (a
        // missing client certificate, …).
        assert!(client_failure(true).explain_alert(alert(40)).is_none());
        assert!(client_failure(false).explain_alert(alert(42)).is_none());
    }

    #[test]
    fn a_client_refuses_what_the_server_chose() {
        let error = GnutlsError::from_code(code::UNSUPPORTED_VERSION_PACKET);
        let refusal = client_failure(true).explain_error(error).unwrap();
        assert_eq!(refusal.refused_by(), RefusedBy::Us);
        assert_eq!(
            refusal.parameter(),
            Some(HandshakeParameter::ProtocolVersion)
        );
        assert_eq!(
            refusal.to_string(),
            format!(
                "no protocol version in common with the server: we accept TLS1.3, TLS1.2; it \
                 chose another (priority string {PRIORITY:?}; our versions are set with \
                 SslConfigurationBuilder::protocols)"
            )
        );
    }
}
