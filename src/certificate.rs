//! [`Certificate`]: an X.509 certificate as a value (Qt's `QSslCertificate`).
//!
//! A certificate is its DER encoding, shared and immutable; every accessor
//! parses it through the GnuTLS layer. Equality and hashing compare the DER
//! bytes. This module reads certificates; it does not verify chains.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::gnutls::{AltName, Encoding, X509Crt};

/// An X.509 certificate. Two certificates are equal (and hash alike) when
/// their DER encodings are.
///
/// ```
/// # fn main() -> Result<(), sslsocket::Error> {
/// let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.pem")).unwrap();
/// let chain = sslsocket::Certificate::from_pem_chain(&pem)?;
/// assert_eq!(chain[0].subject_common_name().as_deref(), Some("localhost"));
/// assert!(chain[0].subject_alternative_names().contains(&sslsocket::AlternativeName::Dns("localhost".into())));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    der: Arc<[u8]>,
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlternativeName {
    /// A DNS name (may be a wildcard such as `*.example.org`).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// An e-mail address (RFC 822 name).
    Email(String),
    /// A URI.
    Uri(String),
}

/// Digest algorithms for [`Certificate::digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-1 (for display and legacy pinning only).
    Sha1,
}

/// Attributes of a distinguished name, for [`Certificate::subject_info`]
/// and [`Certificate::issuer_info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectInfo {
    /// CN.
    CommonName,
    /// O.
    Organization,
    /// OU.
    OrganizationalUnitName,
    /// C.
    CountryName,
    /// L.
    LocalityName,
    /// ST.
    StateOrProvinceName,
}

impl SubjectInfo {
    fn oid(self) -> &'static std::ffi::CStr {
        match self {
            SubjectInfo::CommonName => c"2.5.4.3",
            SubjectInfo::Organization => c"2.5.4.10",
            SubjectInfo::OrganizationalUnitName => c"2.5.4.11",
            SubjectInfo::CountryName => c"2.5.4.6",
            SubjectInfo::LocalityName => c"2.5.4.7",
            SubjectInfo::StateOrProvinceName => c"2.5.4.8",
        }
    }
}

impl Certificate {
    /// Parses one DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        Self::from_der_named(der, "DER data")
    }

    fn from_der_named(der: &[u8], origin: &str) -> Result<Self> {
        X509Crt::import(der, Encoding::Der)
            .map_err(|e| invalid(origin, format!("not a DER certificate: {e}")))?;
        Ok(Self { der: der.into() })
    }

    /// Parses the first certificate of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let mut chain = Self::from_pem_chain(pem)?;
        Ok(chain.swap_remove(0))
    }

    /// Parses every certificate of a PEM document, in order. Fails when it
    /// holds none.
    pub fn from_pem_chain(pem: &[u8]) -> Result<Vec<Self>> {
        Self::from_pem_named(pem, "PEM data")
    }

    fn from_pem_named(pem: &[u8], origin: &str) -> Result<Vec<Self>> {
        if !contains(pem, b"-----BEGIN CERTIFICATE-----")
            && !contains(pem, b"-----BEGIN X509 CERTIFICATE-----")
        {
            return Err(invalid(origin, "no PEM certificate found".into()));
        }
        let list = X509Crt::import_list(pem, Encoding::Pem)
            .map_err(|e| invalid(origin, format!("cannot parse PEM certificates: {e}")))?;
        list.iter().map(|crt| Self::from_crt(crt, origin)).collect()
    }

    /// Reads a file holding PEM certificates (one or more) or one DER
    /// certificate.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Vec<Self>> {
        let path = path.as_ref();
        let data = read_file(path)?;
        Self::from_bytes_named(&data, &path.display().to_string())
    }

    /// Parses PEM (one or more certificates) or DER, whichever `data` is.
    pub(crate) fn from_bytes_named(data: &[u8], origin: &str) -> Result<Vec<Self>> {
        if data.trim_ascii().is_empty() {
            return Err(invalid(origin, "empty: no certificate in it".into()));
        }
        if looks_like_pem(data) {
            Self::from_pem_named(data, origin)
        } else {
            Ok(vec![Self::from_der_named(data, origin)?])
        }
    }

    pub(crate) fn from_crt(crt: &X509Crt, origin: &str) -> Result<Self> {
        let der = crt
            .export(Encoding::Der)
            .map_err(|e| invalid(origin, format!("cannot encode certificate: {e}")))?;
        Ok(Self { der: der.into() })
    }

    /// The parsed form. The DER was validated on construction, so this only
    /// fails if GnuTLS runs out of memory.
    pub(crate) fn parsed(&self) -> Option<X509Crt> {
        X509Crt::import(&self.der, Encoding::Der).ok()
    }

    /// The DER encoding.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding.
    pub fn to_pem(&self) -> String {
        self.parsed()
            .and_then(|c| c.export(Encoding::Pem).ok())
            .map(|pem| String::from_utf8_lossy(&pem).into_owned())
            .unwrap_or_default()
    }

    /// The subject distinguished name (RFC 4514, e.g. `CN=localhost,O=…`).
    pub fn subject_dn(&self) -> String {
        self.parsed().map(|c| c.subject_dn()).unwrap_or_default()
    }

    /// The issuer distinguished name.
    pub fn issuer_dn(&self) -> String {
        self.parsed().map(|c| c.issuer_dn()).unwrap_or_default()
    }

    /// Every value of one subject attribute, as the certificate holds it
    /// (Qt's `subjectInfo`): a common name `Doe, John` is `"Doe, John"`, where
    /// [`subject_dn`](Self::subject_dn) escapes it as `CN=Doe\, John`.
    pub fn subject_info(&self, attribute: SubjectInfo) -> Vec<String> {
        self.parsed()
            .map(|c| c.dn_attribute(attribute.oid(), false))
            .unwrap_or_default()
    }

    /// Every value of one issuer attribute, unescaped as in
    /// [`subject_info`](Self::subject_info).
    pub fn issuer_info(&self, attribute: SubjectInfo) -> Vec<String> {
        self.parsed()
            .map(|c| c.dn_attribute(attribute.oid(), true))
            .unwrap_or_default()
    }

    /// The subject's (first) common name.
    pub fn subject_common_name(&self) -> Option<String> {
        self.subject_info(SubjectInfo::CommonName)
            .into_iter()
            .next()
    }

    /// The subject alternative names (DNS, IP, e-mail, URI).
    pub fn subject_alternative_names(&self) -> Vec<AlternativeName> {
        let names = self.parsed().map(|c| c.alt_names()).unwrap_or_default();
        names
            .into_iter()
            .map(|n| match n {
                AltName::Dns(s) => AlternativeName::Dns(s),
                AltName::Ip(ip) => AlternativeName::Ip(ip),
                AltName::Email(s) => AlternativeName::Email(s),
                AltName::Uri(s) => AlternativeName::Uri(s),
            })
            .collect()
    }

    /// Start of the validity period.
    pub fn effective_date(&self) -> SystemTime {
        unix_time(self.parsed().map_or(0, |c| c.activation_time()))
    }

    /// End of the validity period.
    pub fn expiry_date(&self) -> SystemTime {
        unix_time(self.parsed().map_or(0, |c| c.expiration_time()))
    }

    /// Whether `now` lies outside the validity period.
    pub(crate) fn is_expired_at(&self, now: SystemTime) -> bool {
        now > self.expiry_date()
    }

    /// Whether the validity period starts after `now`.
    pub(crate) fn is_not_yet_valid_at(&self, now: SystemTime) -> bool {
        now < self.effective_date()
    }

    /// The serial number as colon-separated hex bytes (`01:a2:…`), as Qt
    /// prints it.
    pub fn serial_number(&self) -> String {
        hex_colon(&self.parsed().map(|c| c.serial()).unwrap_or_default())
    }

    /// The X.509 version (3 for nearly every certificate in use).
    pub fn version(&self) -> u32 {
        self.parsed()
            .map_or(0, |c| u32::try_from(c.version()).unwrap_or(0))
    }

    /// The digest of the DER encoding.
    pub fn digest(&self, algorithm: DigestAlgorithm) -> Vec<u8> {
        self.parsed()
            .map(|c| c.fingerprint(algorithm == DigestAlgorithm::Sha256))
            .unwrap_or_default()
    }

    /// The certificate's public key pin: `sha256//` and the base64 of the
    /// SHA-256 digest of its SubjectPublicKeyInfo, as curl's
    /// `--pinnedpubkey` and RFC 7469 write it. Pins survive a certificate's
    /// renewal with the same key.
    ///
    /// ```
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.pem");
    /// let leaf = &sslsocket::Certificate::from_file(path)?[0];
    /// let pin = leaf.public_key_pin();
    /// assert!(pin.starts_with("sha256//") && pin.len() == 8 + 44);
    /// # Ok(()) }
    /// ```
    pub fn public_key_pin(&self) -> String {
        let digest = self
            .parsed()
            .and_then(|c| c.public_key_sha256().ok())
            .unwrap_or_default();
        format!("sha256//{}", base64(&digest))
    }

    /// The public key algorithm's name as GnuTLS spells it ("RSA", "EC/ECDSA",
    /// "Ed25519", …).
    pub fn public_key_algorithm(&self) -> String {
        self.parsed()
            .map(|c| c.public_key().0.to_owned())
            .unwrap_or_default()
    }

    /// The public key's size in bits.
    pub fn public_key_bits(&self) -> u32 {
        self.parsed().map_or(0, |c| c.public_key().1)
    }

    /// The signature algorithm's name ("ECDSA-SHA256", "RSA-SHA1", …).
    pub fn signature_algorithm(&self) -> String {
        self.parsed()
            .map(|c| c.signature_algorithm().to_owned())
            .unwrap_or_default()
    }

    /// Whether the certificate names itself as its issuer.
    pub fn is_self_signed(&self) -> bool {
        self.parsed().is_some_and(|c| c.is_issued_by(&c))
    }

    /// Whether `issuer`'s subject is this certificate's issuer.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        match (self.parsed(), issuer.parsed()) {
            (Some(c), Some(i)) => c.is_issued_by(&i),
            _ => false,
        }
    }

    /// Whether the certificate's names match `host` (a DNS name or an IP
    /// address), with wildcards as RFC 6125 allows.
    pub fn matches_host(&self, host: &str) -> bool {
        self.parsed().is_some_and(|c| c.matches_hostname(host))
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_dn())
            .field("issuer", &self.issuer_dn())
            .finish()
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_owned(),
        source,
    })
}

/// Reads a file that holds key material: its bytes are wiped when dropped.
/// `fs::read` sizes its buffer from the file's length, so no reallocation
/// leaves an unwiped copy behind (unless the file grows while it is read).
pub(crate) fn read_secret_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    read_file(path).map(Zeroizing::new)
}

pub(crate) fn invalid(origin: &str, reason: String) -> Error {
    Error::InvalidCertificateData {
        origin: origin.to_owned(),
        reason,
    }
}

pub(crate) fn looks_like_pem(data: &[u8]) -> bool {
    contains(data, b"-----BEGIN ")
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unix_time(seconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    }
}

fn hex_colon(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("ca").join(name)).unwrap()
    }

    #[test]
    fn an_empty_file_is_said_to_be_empty() {
        for data in [&b""[..], b"\n  \r\n"] {
            let err = Certificate::from_bytes_named(data, "empty.pem").unwrap_err();
            assert!(err.to_string().contains("empty.pem: empty"), "{err}");
        }
    }

    #[test]
    fn name_values_are_the_values_and_the_dn_is_escaped() {
        let cert = Certificate::from_pem(&ca("escaped-names.pem")).unwrap();
        assert_eq!(
            cert.subject_common_name().as_deref(),
            Some("Doe, John + Co <x>; \"q\"  back ")
        );
        assert_eq!(cert.subject_info(SubjectInfo::Organization), ["#hash org "]);
        assert_eq!(
            cert.issuer_info(SubjectInfo::OrganizationalUnitName),
            ["a\\b", " Jürgen"]
        );
        assert_eq!(
            cert.subject_dn(),
            "CN=Doe\\, John \\+ Co \\<x\\>\\; \\\"q\\\"  back\\ ,\
             OU=\\ Jürgen,OU=a\\\\b,O=\\#hash org\\ "
        );
    }

    #[test]
    fn reads_names_dates_and_digests() {
        let chain = Certificate::from_pem_chain(&ca("server.pem")).unwrap();
        assert_eq!(chain.len(), 2);
        let leaf = &chain[0];
        assert_eq!(leaf.subject_common_name().as_deref(), Some("localhost"));
        let names = leaf.subject_alternative_names();
        assert!(names.contains(&AlternativeName::Ip("127.0.0.1".parse().unwrap())));
        assert!(names.contains(&AlternativeName::Ip("::1".parse().unwrap())));
        assert!(leaf.effective_date() < SystemTime::now());
        assert!(leaf.expiry_date() > SystemTime::now() + Duration::from_secs(50 * 365 * 86400));
        assert_eq!(leaf.version(), 3);
        assert_eq!(leaf.digest(DigestAlgorithm::Sha256).len(), 32);
        assert_eq!(leaf.digest(DigestAlgorithm::Sha1).len(), 20);
        assert!(!leaf.serial_number().is_empty());
        assert!(leaf.is_issued_by(&chain[1]));
        assert!(!leaf.is_self_signed());
        assert!(
            leaf.matches_host("localhost")
                && leaf.matches_host("127.0.0.1")
                && !leaf.matches_host("example.org")
        );
        assert_eq!(leaf.public_key_bits(), 256);
    }

    #[test]
    fn der_and_pem_round_trip() {
        let root = Certificate::from_pem(&ca("root-ca.pem")).unwrap();
        assert!(root.is_self_signed());
        assert_eq!(Certificate::from_der(&ca("root-ca.der")).unwrap(), root);
        assert_eq!(
            Certificate::from_pem(root.to_pem().as_bytes()).unwrap(),
            root
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = Certificate::from_pem(b"hello").unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = Certificate::from_der(b"\x30\x03\x02\x01\x01").unwrap_err();
        assert!(err.to_string().contains("not a DER certificate"), "{err}");
        let key = ca("server.key");
        assert!(Certificate::from_pem(&key).is_err());
    }
}

/// Standard base64 (RFC 4648 §4) with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod base64_tests {
    use super::base64;

    #[test]
    fn encodes_as_rfc_4648_says() {
        // RFC 4648 §10.
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
