//! [`SslConfiguration`]: everything about TLS that many sockets share (Qt's
//! `QSslConfiguration`), and [`SslConfigurationBuilder`], which makes one.
//!
//! A configuration is built once: files are read, certificates and keys
//! parsed and loaded into GnuTLS credentials, the priority string parsed.
//! After that it is immutable and cheap to clone (an `Arc`), and any number
//! of sockets, in any thread, use it. This module reads files; it performs
//! no network I/O.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::certificate::{contains, invalid, looks_like_pem, read_file, Certificate};
use crate::error::{Error, Result};
use crate::gnutls::{self, CertificateCredentials, Encoding, Priority};
use crate::private_key::PrivateKey;

/// How a socket verifies its peer's certificate (Qt's `PeerVerifyMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerVerifyMode {
    /// Do not ask for or check the peer's certificate. A client still
    /// receives the server's certificate, unchecked.
    VerifyNone,
    /// Ask for the peer's certificate and check it, but do not stop the
    /// handshake on problems: they are reported through
    /// `peer_verify_error` and [`SslSocket::peer_verify_errors`](crate::SslSocket::peer_verify_errors).
    /// On a server this requests a client certificate without requiring it.
    QueryPeer,
    /// Require a valid certificate from the peer: problems raise
    /// `ssl_errors` and fail the handshake unless ignored. On a server this
    /// requires a client certificate.
    VerifyPeer,
    /// `VerifyPeer` on a client; `VerifyNone` on a server (a server asks
    /// for client certificates only when told to).
    #[default]
    AutoVerifyPeer,
}

/// TLS protocol versions, for [`SslConfigurationBuilder::protocols`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SslProtocol {
    /// TLS 1.0 (insecure; only if the system policy still allows it).
    TlsV1_0,
    /// TLS 1.1 (insecure; only if the system policy still allows it).
    TlsV1_1,
    /// TLS 1.2.
    TlsV1_2,
    /// TLS 1.3.
    TlsV1_3,
}

impl SslProtocol {
    const ALL: [SslProtocol; 4] = [Self::TlsV1_0, Self::TlsV1_1, Self::TlsV1_2, Self::TlsV1_3];

    fn priority_token(self) -> &'static str {
        match self {
            Self::TlsV1_0 => "VERS-TLS1.0",
            Self::TlsV1_1 => "VERS-TLS1.1",
            Self::TlsV1_2 => "VERS-TLS1.2",
            Self::TlsV1_3 => "VERS-TLS1.3",
        }
    }

    /// The name GnuTLS reports for a negotiated version ("TLS1.3").
    pub(crate) fn from_gnutls_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.priority_token().strip_prefix("VERS-") == Some(name))
    }
}

impl fmt::Display for SslProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TlsV1_0 => "TLS 1.0",
            Self::TlsV1_1 => "TLS 1.1",
            Self::TlsV1_2 => "TLS 1.2",
            Self::TlsV1_3 => "TLS 1.3",
        })
    }
}

/// A shared, immutable TLS configuration.
///
/// ```
/// use sslsocket::{PeerVerifyMode, SslConfiguration, SslProtocol};
/// # fn main() -> Result<(), sslsocket::Error> {
/// let config = SslConfiguration::builder()
///     .system_ca_certificates(false)
///     .add_ca_certificates_file(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/root-ca.pem"))
///     .protocols(SslProtocol::TlsV1_3, SslProtocol::TlsV1_3)
///     .peer_verify_mode(PeerVerifyMode::VerifyPeer)
///     .build()?;
/// assert_eq!(config.ca_certificates().len(), 1);
/// let for_another_socket = config.clone(); // shares the loaded credentials
/// # drop(for_another_socket); Ok(()) }
/// ```
#[derive(Clone)]
pub struct SslConfiguration {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Arc<CertificateCredentials>,
    priority: Arc<Priority>,
    verify_mode: PeerVerifyMode,
    ca_certificates: Vec<Certificate>,
    local_chains: Vec<Vec<Certificate>>,
    system_ca: bool,
    protocols: (SslProtocol, SslProtocol),
    alpn: Vec<Vec<u8>>,
}

impl SslConfiguration {
    /// Starts a configuration with the secure defaults: system trust store,
    /// TLS 1.2 and 1.3, peers verified, keys below 2048 bits (RSA) refused.
    pub fn builder() -> SslConfigurationBuilder {
        SslConfigurationBuilder::default()
    }

    /// The default configuration (Qt's `defaultConfiguration()`): the
    /// builder's defaults, built once per process and shared.
    pub fn default_configuration() -> Result<Self> {
        static DEFAULT: OnceLock<std::result::Result<SslConfiguration, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Self::builder().build().map_err(|e| e.to_string()))
            .clone()
            .map_err(Error::InvalidConfiguration)
    }

    /// The peer verification mode.
    pub fn peer_verify_mode(&self) -> PeerVerifyMode {
        self.inner.verify_mode
    }

    /// The CA certificates added explicitly (the system store is not listed).
    pub fn ca_certificates(&self) -> &[Certificate] {
        &self.inner.ca_certificates
    }

    /// Whether the system trust store is used.
    pub fn uses_system_ca_certificates(&self) -> bool {
        self.inner.system_ca
    }

    /// The local certificate chains (leaf first), one per key pair.
    pub fn local_certificate_chains(&self) -> &[Vec<Certificate>] {
        &self.inner.local_chains
    }

    /// The local certificate (the leaf of the first chain), if any.
    pub fn local_certificate(&self) -> Option<&Certificate> {
        self.inner.local_chains.first().and_then(|c| c.first())
    }

    /// The lowest and highest protocol version allowed.
    pub fn protocols(&self) -> (SslProtocol, SslProtocol) {
        self.inner.protocols
    }

    /// The ALPN protocols offered (client) or accepted (server), in order
    /// of preference.
    pub fn alpn_protocols(&self) -> &[Vec<u8>] {
        &self.inner.alpn
    }

    pub(crate) fn credentials(&self) -> &Arc<CertificateCredentials> {
        &self.inner.credentials
    }

    pub(crate) fn priority(&self) -> &Arc<Priority> {
        &self.inner.priority
    }
}

impl fmt::Debug for SslConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslConfiguration")
            .field("verify_mode", &self.inner.verify_mode)
            .field("system_ca", &self.inner.system_ca)
            .field("ca_certificates", &self.inner.ca_certificates.len())
            .field("local_chains", &self.inner.local_chains.len())
            .field("protocols", &self.inner.protocols)
            .finish()
    }
}

enum CaSource {
    File(PathBuf),
    Dir(PathBuf),
    Data(Vec<u8>),
    Certificates(Vec<Certificate>),
}

enum KeySource {
    Files {
        chain: PathBuf,
        key: PathBuf,
        passphrase: Option<String>,
    },
    Pem {
        chain: Vec<u8>,
        key: Vec<u8>,
        passphrase: Option<String>,
    },
    Loaded {
        chain: Vec<Certificate>,
        key: PrivateKey,
    },
}

/// Collects the settings of an [`SslConfiguration`]; [`build`](Self::build)
/// reads and checks everything at once.
pub struct SslConfigurationBuilder {
    system_ca: bool,
    ca: Vec<CaSource>,
    keys: Vec<KeySource>,
    verify_mode: PeerVerifyMode,
    verify_depth: Option<u32>,
    protocols: (SslProtocol, SslProtocol),
    priority: Option<String>,
    alpn: Vec<Vec<u8>>,
}

impl Default for SslConfigurationBuilder {
    fn default() -> Self {
        Self {
            system_ca: true,
            ca: Vec::new(),
            keys: Vec::new(),
            verify_mode: PeerVerifyMode::AutoVerifyPeer,
            verify_depth: None,
            protocols: (SslProtocol::TlsV1_2, SslProtocol::TlsV1_3),
            priority: None,
            alpn: Vec::new(),
        }
    }
}

impl SslConfigurationBuilder {
    /// Whether to trust the system's CA store (default: yes).
    pub fn system_ca_certificates(mut self, enabled: bool) -> Self {
        self.system_ca = enabled;
        self
    }

    /// Trusts the certificates in a file (PEM, one or more, or DER). CRLs in
    /// a PEM file (`-----BEGIN X509 CRL-----`) are loaded too and make
    /// revoked certificates fail with `CertificateRevoked`.
    pub fn add_ca_certificates_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(CaSource::File(path.as_ref().to_owned()));
        self
    }

    /// Trusts every certificate file in a directory (`*.pem`, `*.crt`,
    /// `*.cer`, `*.der` and OpenSSL hash names such as `5ad8a5d6.0`).
    pub fn add_ca_certificates_dir(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(CaSource::Dir(path.as_ref().to_owned()));
        self
    }

    /// Trusts certificates (and CRLs) from PEM or DER data in memory.
    pub fn add_ca_certificates_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.ca.push(CaSource::Data(data.into()));
        self
    }

    /// Trusts these certificates.
    pub fn add_ca_certificates(
        mut self,
        certificates: impl IntoIterator<Item = Certificate>,
    ) -> Self {
        self.ca
            .push(CaSource::Certificates(certificates.into_iter().collect()));
        self
    }

    /// Uses a certificate chain (PEM file, leaf first) and its private key
    /// (PEM or DER file, PKCS#1, SEC1 or PKCS#8; encrypted PKCS#8 needs the
    /// passphrase). May be called several times (for example an ECDSA and an
    /// RSA chain, or chains for different names): GnuTLS picks the one that
    /// fits the client's algorithms and SNI name.
    pub fn add_local_certificate_files(
        mut self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
        passphrase: Option<&str>,
    ) -> Self {
        self.keys.push(KeySource::Files {
            chain: chain.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
            passphrase: passphrase.map(str::to_owned),
        });
        self
    }

    /// Same as [`add_local_certificate_files`](Self::add_local_certificate_files)
    /// with PEM data in memory.
    pub fn add_local_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
        passphrase: Option<&str>,
    ) -> Self {
        self.keys.push(KeySource::Pem {
            chain: chain.into(),
            key: key.into(),
            passphrase: passphrase.map(str::to_owned),
        });
        self
    }

    /// Uses an already loaded certificate chain (leaf first) and key.
    pub fn add_local_certificate(mut self, chain: Vec<Certificate>, key: PrivateKey) -> Self {
        self.keys.push(KeySource::Loaded { chain, key });
        self
    }

    /// How the peer is verified (default: [`PeerVerifyMode::AutoVerifyPeer`]).
    pub fn peer_verify_mode(mut self, mode: PeerVerifyMode) -> Self {
        self.verify_mode = mode;
        self
    }

    /// The longest certificate chain accepted (default: GnuTLS's, 16).
    pub fn peer_verify_depth(mut self, depth: u32) -> Self {
        self.verify_depth = Some(depth);
        self
    }

    /// The protocol versions allowed, lowest and highest (default: TLS 1.2
    /// to TLS 1.3).
    pub fn protocols(mut self, minimum: SslProtocol, maximum: SslProtocol) -> Self {
        self.protocols = (minimum, maximum);
        self
    }

    /// Application protocols for ALPN (`"h2"`, `"http/1.1"`, …), most
    /// preferred first. A client offers them; a server picks the first of
    /// its own list that the client offered. The result is
    /// [`SslSocket::alpn_protocol`](crate::SslSocket::alpn_protocol).
    pub fn alpn_protocols<P: AsRef<[u8]>>(
        mut self,
        protocols: impl IntoIterator<Item = P>,
    ) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// For experts: a complete GnuTLS priority string (see GnuTLS's manual,
    /// "Priority strings"), replacing the system default and the protocol
    /// range.
    pub fn priority_string(mut self, priority: impl Into<String>) -> Self {
        self.priority = Some(priority.into());
        self
    }

    /// Reads, parses and loads everything; fails with a clear error on the
    /// first file, certificate or key that cannot be used.
    pub fn build(self) -> Result<SslConfiguration> {
        self.check_alpn()?;
        let priority = self.build_priority()?;
        let mut credentials = CertificateCredentials::new().map_err(gnutls_config_error)?;
        if let Some(depth) = self.verify_depth {
            credentials.set_verify_limits(16384, depth);
        }
        if self.system_ca {
            let n = credentials.add_system_trust().map_err(|e| {
                Error::InvalidConfiguration(format!("cannot load the system trust store: {e}"))
            })?;
            log::debug!("loaded {n} certificates from the system trust store");
        }
        let mut ca_certificates = Vec::new();
        for source in &self.ca {
            ca_certificates.extend(load_ca(&mut credentials, source)?);
        }
        let mut local_chains = Vec::new();
        for source in &self.keys {
            local_chains.push(load_key_pair(&mut credentials, source)?);
        }
        Ok(SslConfiguration {
            inner: Arc::new(Inner {
                credentials: Arc::new(credentials),
                priority: Arc::new(priority),
                verify_mode: self.verify_mode,
                ca_certificates,
                local_chains,
                system_ca: self.system_ca,
                protocols: self.protocols,
                alpn: self.alpn,
            }),
        })
    }

    fn check_alpn(&self) -> Result<()> {
        match self.alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
            Some(p) => Err(Error::InvalidConfiguration(format!(
                "ALPN protocol names must be 1 to 255 bytes long, not {}",
                p.len()
            ))),
            None => Ok(()),
        }
    }

    fn build_priority(&self) -> Result<Priority> {
        let (text, append) = match &self.priority {
            Some(text) => (text.clone(), false),
            None => (protocol_priority(self.protocols)?, true),
        };
        Priority::new(&text, append).map_err(|e| {
            Error::InvalidConfiguration(format!(
                "priority string {text:?} refused at {:?}: {}",
                e.at, e.error
            ))
        })
    }
}

/// The priority suffix applied to the system default: GnuTLS's "medium"
/// security profile (112-bit security: RSA and DH below 2048 bits refused, in
/// the handshake and in certificate chains) and the protocol range.
fn protocol_priority((minimum, maximum): (SslProtocol, SslProtocol)) -> Result<String> {
    if minimum > maximum {
        return Err(Error::InvalidConfiguration(format!(
            "the lowest protocol ({minimum}) is above the highest ({maximum})"
        )));
    }
    let mut text = String::from("%PROFILE_MEDIUM:-VERS-ALL");
    for protocol in SslProtocol::ALL
        .into_iter()
        .filter(|p| (minimum..=maximum).contains(p))
    {
        text.push_str(":+");
        text.push_str(protocol.priority_token());
    }
    Ok(text)
}

fn gnutls_config_error(e: gnutls::GnutlsError) -> Error {
    Error::InvalidConfiguration(e.to_string())
}

/// Loads one CA source into the credentials; returns the certificates it
/// added.
fn load_ca(
    credentials: &mut CertificateCredentials,
    source: &CaSource,
) -> Result<Vec<Certificate>> {
    match source {
        CaSource::File(path) => {
            load_ca_data(credentials, &read_file(path)?, &path.display().to_string())
        }
        CaSource::Data(data) => load_ca_data(credentials, data, "CA data"),
        CaSource::Certificates(certs) => {
            for cert in certs {
                credentials
                    .add_trust(cert.to_der(), Encoding::Der)
                    .map_err(|e| invalid("CA certificate", e.to_string()))?;
            }
            Ok(certs.clone())
        }
        CaSource::Dir(dir) => load_ca_dir(credentials, dir),
    }
}

fn load_ca_data(
    credentials: &mut CertificateCredentials,
    data: &[u8],
    origin: &str,
) -> Result<Vec<Certificate>> {
    if !looks_like_pem(data) {
        let cert = Certificate::from_bytes_named(data, origin)?;
        credentials
            .add_trust(data, Encoding::Der)
            .map_err(|e| invalid(origin, e.to_string()))?;
        return Ok(cert);
    }
    let has_crl = contains(data, b"-----BEGIN X509 CRL-----");
    let has_cert = contains(data, b"-----BEGIN CERTIFICATE-----");
    if !has_crl && !has_cert {
        return Err(invalid(origin, "no PEM certificate or CRL found".into()));
    }
    let mut certs = Vec::new();
    if has_cert {
        certs = Certificate::from_bytes_named(data, origin)?;
        credentials
            .add_trust(data, Encoding::Pem)
            .map_err(|e| invalid(origin, e.to_string()))?;
    }
    if has_crl {
        let n = credentials
            .add_crls(data, Encoding::Pem)
            .map_err(|e| invalid(origin, format!("cannot load the CRL: {e}")))?;
        log::debug!("{origin}: loaded {n} CRLs");
    }
    Ok(certs)
}

fn load_ca_dir(credentials: &mut CertificateCredentials, dir: &Path) -> Result<Vec<Certificate>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::File {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_certificate_file_name(p))
        .collect();
    paths.sort();
    let mut certs = Vec::new();
    for path in paths {
        match load_ca_data(credentials, &read_file(&path)?, &path.display().to_string()) {
            Ok(found) => certs.extend(found),
            Err(e) => log::debug!("skipping {}: {e}", path.display()),
        }
    }
    Ok(certs)
}

fn is_certificate_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ["pem", "crt", "cer", "der"].contains(&extension) {
        return true;
    }
    // OpenSSL's c_rehash names: eight hex digits, a dot, a number.
    name.len() >= 10
        && name[..8].bytes().all(|b| b.is_ascii_hexdigit())
        && name.as_bytes()[8] == b'.'
        && name[9..].bytes().all(|b| b.is_ascii_digit())
}

fn load_key_pair(
    credentials: &mut CertificateCredentials,
    source: &KeySource,
) -> Result<Vec<Certificate>> {
    let (chain, key, origin) = match source {
        KeySource::Files {
            chain,
            key,
            passphrase,
        } => (
            Certificate::from_file(chain)?,
            PrivateKey::from_file(key, passphrase.as_deref())?,
            chain.display().to_string(),
        ),
        KeySource::Pem {
            chain,
            key,
            passphrase,
        } => (
            Certificate::from_bytes_named(chain, "local certificate data")?,
            PrivateKey::from_bytes(key, passphrase.as_deref())?,
            "local certificate data".to_owned(),
        ),
        KeySource::Loaded { chain, key } => {
            (chain.clone(), key.clone(), "local certificate".to_owned())
        }
    };
    if chain.is_empty() {
        return Err(invalid(&origin, "the certificate chain is empty".into()));
    }
    let parsed: Vec<_> = chain.iter().filter_map(Certificate::parsed).collect();
    credentials.add_key_pair(&parsed, key.raw()).map_err(|e| {
        invalid(
            &origin,
            format!("cannot use this certificate with this key: {e}"),
        )
    })?;
    Ok(chain)
}
