//! [`SslConfiguration`]: everything about TLS that many sockets share (Qt's
//! `QSslConfiguration`), and [`SslConfigurationBuilder`], which makes one.
//!
//! A configuration is built once: files are read, certificates and keys
//! parsed and loaded into GnuTLS credentials, the priority string parsed.
//! After that it is immutable and cheap to clone (an `Arc`), and any number
//! of sockets, in any thread, use it. This module reads files; it performs
//! no network I/O.

mod authentication;
mod datagram;
mod key_log;
mod load;
mod pins;
mod session_cache;
mod ticket_key;
mod verified_chains;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::certificate::Certificate;
use crate::error::{Error, Result, SslError};
use crate::gnutls::{
    self, CertificateCredentials, GnutlsError, KnownKeys, Priority, SessionDb, Verification,
};
use crate::pkcs11::{PinRequest, TokenLogin};
use crate::private_key::PrivateKey;
pub(crate) use authentication::Authentication;
use authentication::AuthenticationSettings;
use datagram::DatagramPriority;
pub(crate) use key_log::KeyLog;
use load::{CaSource, KeySource, LoadedAnchors, LocalIdentity, Secret};
use pins::PublicKeyPins;
pub(crate) use session_cache::{ServerKey, SessionCache};
pub use ticket_key::SessionTicketKey;
use ticket_key::TicketKeys;
pub(crate) use verified_chains::{ChainKey, ChainOf, VerifiedChains};

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
    /// requires a client certificate in the handshake itself: a client that
    /// sends none is refused there (alert `certificate_required`, or
    /// `handshake_failure` before TLS 1.3) and the server socket reports
    /// `NoPeerCertificate` through `peer_verify_error`,
    /// `peer_verify_errors()` and `error_occurred`; it cannot be ignored.
    /// To let clients without a certificate in, use `QueryPeer` and decide
    /// on `peer_verify_errors()` (Qt reports the missing certificate through
    /// `sslErrors`, where it can be ignored).
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
///     .alpn_protocols(["h2", "http/1.1"])
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
    /// What DTLS sessions negotiate with (see `datagram.rs`).
    datagram_priority: DatagramPriority,
    verify_mode: PeerVerifyMode,
    anchors: LoadedAnchors,
    local_chains: Vec<Vec<Certificate>>,
    system_ca: bool,
    protocols: (SslProtocol, SslProtocol),
    alpn: Vec<Vec<u8>>,
    session_cache: Option<SessionCache>,
    verified_chains: Option<VerifiedChains>,
    /// The master key of the session tickets a server issues.
    ticket_keys: Option<TicketKeys>,
    /// A server's TLS 1.2 sessions by ID (with the ticket key).
    session_db: Option<Arc<SessionDb>>,
    ticket_lifetime: Duration,
    ocsp_required: bool,
    interrupt_on_error: bool,
    pins: PublicKeyPins,
    known_keys: Option<KnownKeys>,
    key_log: Option<KeyLog>,
    authentication: Authentication,
    /// The local keys on PKCS#11 tokens, and their logins.
    token_keys: Vec<Arc<TokenLogin>>,
}

impl SslConfiguration {
    /// Starts a configuration with the secure defaults: system trust store,
    /// TLS 1.2 and 1.3 with forward-secret AEAD cipher suites only (see
    /// [`protocols`](SslConfigurationBuilder::protocols)), peers verified,
    /// keys below 2048 bits (RSA) refused, session resumption on.
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
        &self.inner.anchors.certificates
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

    /// Whether clients remember sessions and servers issue session tickets.
    pub fn session_resumption(&self) -> bool {
        self.inner.session_cache.is_some()
    }

    /// Whether a client requires the server to staple a valid OCSP response.
    pub fn ocsp_stapling_required(&self) -> bool {
        self.inner.ocsp_required
    }

    /// Whether a verification problem pauses the handshake until the
    /// program calls [`SslSocket::continue_interrupted_handshake`](crate::SslSocket::continue_interrupted_handshake)
    /// (Qt's `handshakeMustInterruptOnError`).
    pub fn handshake_must_interrupt_on_error(&self) -> bool {
        self.inner.interrupt_on_error
    }

    /// The local keys on PKCS#11 tokens that wait for their PIN, one
    /// request per key (see
    /// [`add_local_certificate_pkcs11`](SslConfigurationBuilder::add_local_certificate_pkcs11)).
    /// A program that asks for PINs before serving answers these; sockets
    /// whose handshake starts while a key waits ask with their
    /// `pin_required` signal.
    ///
    /// ```
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build()?;
    /// for request in config.pin_requests() {
    ///     eprint!("PIN for {}: ", request.token_label());
    ///     let mut pin = String::new();
    ///     std::io::stdin().read_line(&mut pin).ok();
    ///     request.provide(pin.trim_end())?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pin_requests(&self) -> Vec<PinRequest> {
        self.inner
            .token_keys
            .iter()
            .filter_map(TokenLogin::awaiting_pin)
            .collect()
    }

    /// The first local key that waits for its PIN: handshakes wait for it.
    pub(crate) fn awaiting_pin(&self) -> Option<PinRequest> {
        self.inner
            .token_keys
            .iter()
            .find_map(TokenLogin::awaiting_pin)
    }

    /// Verifies a certificate chain (leaf first) outside any handshake, as
    /// a client verifying a server named `host` would, against this
    /// configuration's trust anchors and CRLs (Qt's
    /// `QSslCertificate::verify`). Returns the problems found, with the same
    /// kinds a handshake reports; empty means trusted.
    ///
    /// ```
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// let config = sslsocket::SslConfiguration::builder()
    ///     .system_ca_certificates(false)
    ///     .add_ca_certificates_file(format!("{ca}root-ca.pem"))
    ///     .build()?;
    /// let chain = sslsocket::Certificate::from_file(format!("{ca}server.pem"))?;
    /// assert!(config.verify_chain(&chain, Some("localhost")).is_empty());
    /// let problems = config.verify_chain(&chain, Some("example.org"));
    /// assert_eq!(problems[0].kind(), sslsocket::SslErrorKind::HostNameMismatch);
    /// # Ok(()) }
    /// ```
    pub fn verify_chain(&self, chain: &[Certificate], host: Option<&str>) -> Vec<SslError> {
        let parsed: Vec<_> = chain.iter().filter_map(Certificate::parsed).collect();
        let anchors = gnutls::Anchors {
            certificates: self
                .ca_certificates()
                .iter()
                .filter_map(Certificate::parsed)
                .collect(),
            crls_pem: &self.inner.anchors.crls_pem,
            system: self.inner.system_ca,
        };
        let verification = gnutls::verify_chain(
            &parsed,
            anchors,
            host,
            gnutls::Purpose::Server,
            VERIFY_PROFILE,
        );
        crate::engine::ssl_errors(verification, chain, |anchor| {
            self.verify_below(anchor, chain, ChainOf::Server)
        })
    }

    /// Verifies `chain` (leaf first) trusting only `anchor`, one of its
    /// certificates, with this configuration's CRLs and verification
    /// profile and no name: what is wrong below a certificate the program
    /// may choose to trust.
    pub(crate) fn verify_below(
        &self,
        anchor: &Certificate,
        chain: &[Certificate],
        of: ChainOf,
    ) -> std::result::Result<Verification, GnutlsError> {
        let parsed: Vec<_> = chain.iter().filter_map(Certificate::parsed).collect();
        let anchors = gnutls::Anchors {
            certificates: anchor.parsed().into_iter().collect(),
            crls_pem: &self.inner.anchors.crls_pem,
            system: false,
        };
        let purpose = match of {
            ChainOf::Server => gnutls::Purpose::Server,
            ChainOf::Client => gnutls::Purpose::Client,
        };
        gnutls::verify_chain(&parsed, anchors, None, purpose, VERIFY_PROFILE)
    }

    pub(crate) fn credentials(&self) -> &Arc<CertificateCredentials> {
        &self.inner.credentials
    }

    pub(crate) fn priority(&self) -> &Arc<Priority> {
        &self.inner.priority
    }

    pub(crate) fn session_cache(&self) -> Option<&SessionCache> {
        self.inner.session_cache.as_ref()
    }

    /// The chains verified recently, unless caching them is off (or OCSP
    /// staples are required: their check is part of each verification).
    pub(crate) fn verified_chains(&self) -> Option<&VerifiedChains> {
        self.inner.verified_chains.as_ref()
    }

    /// The server's session ticket key now and the tickets' lifetime.
    pub(crate) fn session_tickets(&self) -> Option<(Arc<SessionTicketKey>, Duration)> {
        let keys = self.inner.ticket_keys.as_ref()?;
        Some((keys.current(), self.inner.ticket_lifetime))
    }

    /// Rotates a server's session ticket key: connections accepted from now
    /// on issue tickets under `key` and accept only tickets made under it
    /// (those set up before keep the key they had). Every clone of this
    /// configuration, on any thread, shares the change.
    ///
    /// A client's ticket made under the previous key is no longer accepted:
    /// its next connection makes a full handshake (verified as any full
    /// one), never an error, and gets a ticket under the new key. There is
    /// no grace window at a rotation (GnuTLS knows one master key per
    /// session), so rotate when the key must change (a schedule, a host
    /// that left, a suspected leak), not to age the keys: GnuTLS already
    /// changes the key it derives from the master key every three ticket
    /// lifetimes, accepting the previous one besides. Hosts that share a key
    /// rotate together. TLS 1.2 sessions remembered by session ID are not
    /// tickets and stay resumable on this host for their lifetime.
    ///
    /// Fails with [`Error::InvalidState`] when the configuration issues no
    /// tickets (no server identity, or session resumption off).
    ///
    /// ```
    /// use sslsocket::{SessionTicketKey, SslConfiguration};
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// let config = SslConfiguration::builder()
    ///     .system_ca_certificates(false)
    ///     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    ///     .session_ticket_key(SessionTicketKey::from_bytes(&[1; 64])?)
    ///     .build()?;
    /// // Later, from any thread: every host of the service switches together.
    /// config.rotate_session_ticket_key(SessionTicketKey::from_bytes(&[2; 64])?)?;
    /// # Ok(()) }
    /// ```
    pub fn rotate_session_ticket_key(&self, key: SessionTicketKey) -> Result<()> {
        let keys = self.inner.ticket_keys.as_ref().ok_or(Error::InvalidState(
            "this configuration issues no session tickets",
        ))?;
        keys.rotate(key);
        log::debug!("session ticket key rotated");
        Ok(())
    }

    /// The public key pins for a connection that expects `name`, if any.
    pub(crate) fn pins_for(&self, name: &str) -> Option<Vec<&str>> {
        self.inner.pins.for_name(name)
    }

    /// The stored public key database, in trust-on-first-use mode.
    pub(crate) fn known_keys(&self) -> Option<&KnownKeys> {
        self.inner.known_keys.as_ref()
    }

    /// The server's memory of TLS 1.2 sessions by ID, when it resumes.
    pub(crate) fn session_db(&self) -> Option<&Arc<SessionDb>> {
        self.inner.session_db.as_ref()
    }

    /// The file TLS secrets are logged to, if any (see
    /// [`key_log_file`](SslConfigurationBuilder::key_log_file)).
    pub fn key_log_file(&self) -> Option<&Path> {
        self.inner.key_log.as_ref().map(KeyLog::path)
    }

    pub(crate) fn key_log(&self) -> Option<&KeyLog> {
        self.inner.key_log.as_ref()
    }
}

/// The verification flags for GnuTLS's "medium" profile, as the
/// `GNUTLS_PROFILE_TO_VFLAGS(GNUTLS_PROFILE_MEDIUM)` macro computes them; the
/// handshake gets the same profile from `%PROFILE_MEDIUM` in its priority.
const VERIFY_PROFILE: u32 = 5 << 24;

impl fmt::Debug for SslConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslConfiguration")
            .field("verify_mode", &self.inner.verify_mode)
            .field("system_ca", &self.inner.system_ca)
            .field("ca_certificates", &self.inner.anchors.certificates.len())
            .field("local_chains", &self.inner.local_chains.len())
            .field("protocols", &self.inner.protocols)
            .field("alpn", &self.inner.alpn.len())
            .field("session_resumption", &self.session_resumption())
            .field("key_log_file", &self.key_log_file())
            .finish_non_exhaustive()
    }
}

/// Collects the settings of an [`SslConfiguration`]; [`build`](Self::build)
/// reads and checks everything at once.
pub struct SslConfigurationBuilder {
    system_ca: bool,
    ca: Vec<CaSource>,
    identities: Vec<LocalIdentity>,
    verify_mode: PeerVerifyMode,
    verify_depth: Option<u32>,
    protocols: (SslProtocol, SslProtocol),
    priority: Option<String>,
    alpn: Vec<Vec<u8>>,
    session_resumption: bool,
    cache_verified_chains: bool,
    ticket_lifetime: Duration,
    ticket_key: Option<SessionTicketKey>,
    ocsp_required: bool,
    interrupt_on_error: bool,
    pins: PublicKeyPins,
    known_keys: Option<KnownKeys>,
    key_log: Option<PathBuf>,
    authentication: AuthenticationSettings,
    misuse: Option<String>,
}

impl Default for SslConfigurationBuilder {
    fn default() -> Self {
        Self {
            system_ca: true,
            ca: Vec::new(),
            identities: Vec::new(),
            verify_mode: PeerVerifyMode::AutoVerifyPeer,
            verify_depth: None,
            protocols: (SslProtocol::TlsV1_2, SslProtocol::TlsV1_3),
            priority: None,
            alpn: Vec::new(),
            session_resumption: true,
            cache_verified_chains: true,
            ticket_lifetime: Duration::from_secs(6 * 3600),
            ticket_key: None,
            ocsp_required: false,
            interrupt_on_error: false,
            pins: PublicKeyPins::default(),
            known_keys: None,
            key_log: None,
            authentication: AuthenticationSettings::default(),
            misuse: None,
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

    /// Uses a certificate chain (PEM, leaf first, or one DER certificate)
    /// and its private key (PEM or DER; PKCS#1, SEC1 or PKCS#8; encrypted
    /// PKCS#8 needs the passphrase). May be called several times (an ECDSA
    /// and an RSA chain, or chains for different names): GnuTLS picks the one
    /// that fits the client's algorithms and SNI name.
    ///
    /// As a client's certificate: with one chain, the client sends it
    /// whenever the server asks for a certificate, whatever CAs the server
    /// names as acceptable (as OpenSSL and Qt do); with several, it sends
    /// the one whose issuer the server names, and none if it names none of
    /// theirs.
    ///
    /// The key file's bytes and the builder's copy of the passphrase are
    /// wiped from memory once they are no longer needed.
    pub fn add_local_certificate_files(
        self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
        passphrase: Option<&str>,
    ) -> Self {
        self.identity(KeySource::Files {
            chain: chain.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
            passphrase: passphrase.map(secret),
        })
    }

    /// Same as [`add_local_certificate_files`](Self::add_local_certificate_files)
    /// with data in memory. The key is taken over (a `Vec` is moved, not
    /// copied) and wiped, with the builder's copy of the passphrase, once no
    /// longer needed; wiping copies the program keeps is up to the program.
    pub fn add_local_certificate_pem(
        self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
        passphrase: Option<&str>,
    ) -> Self {
        self.identity(KeySource::Pem {
            chain: chain.into(),
            key: Zeroizing::new(key.into()),
            passphrase: passphrase.map(secret),
        })
    }

    /// Uses an already loaded certificate chain (leaf first) and key.
    pub fn add_local_certificate(self, chain: Vec<Certificate>, key: PrivateKey) -> Self {
        self.identity(KeySource::Loaded { chain, key })
    }

    /// Uses the key and certificate chain of a PKCS#12 file. The file's bytes
    /// and the builder's copy of the password are wiped once no longer
    /// needed.
    pub fn add_local_certificate_pkcs12(self, path: impl AsRef<Path>, password: &str) -> Self {
        self.identity(KeySource::Pkcs12 {
            path: path.as_ref().to_owned(),
            password: secret(password),
        })
    }

    /// Uses a certificate chain (PEM, leaf first, or one DER certificate)
    /// whose private key stays on a PKCS#11 token (a smart card, an HSM),
    /// named by its URL (RFC 7512, as `p11tool --list-privkeys` prints
    /// them): `"pkcs11:token=web;object=server-key;type=private"`. The
    /// token is found through the PKCS#11 modules p11-kit lists (a
    /// distribution's token packages register theirs; a module of one's
    /// own is registered by a file `/etc/pkcs11/modules/NAME.module` with
    /// the line `module: /path/to/module.so`).
    ///
    /// With `pin`, [`build`](Self::build) logs in to the token and fails
    /// with [`Error::Pkcs11`] (naming the token and, for a wrong PIN,
    /// [`Pkcs11ErrorKind::WrongPin`](crate::Pkcs11ErrorKind::WrongPin)).
    /// Without, a token that needs a PIN waits for the program to give it:
    /// through [`SslConfiguration::pin_requests`], or when a socket emits
    /// `pin_required` (see [`PinRequest`]). Either way the build fails
    /// when the token or the key is missing, or the key is not the
    /// certificate's. The builder's copies of the PIN and of the URL (which
    /// may carry one) are wiped once no longer needed; the PIN that logged
    /// in is kept, and wiped, with the configuration (GnuTLS logs in again
    /// with it when a token was removed and put back).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let config = sslsocket::SslConfiguration::builder()
    ///     .add_local_certificate_pkcs11(
    ///         "/etc/ssl/web.pem",
    ///         "pkcs11:token=web;object=server-key;type=private",
    ///         Some("1234"),
    ///     )
    ///     .build()?; // logged in
    /// # drop(config); Ok(()) }
    /// ```
    pub fn add_local_certificate_pkcs11(
        self,
        chain: impl AsRef<Path>,
        key_url: &str,
        pin: Option<&str>,
    ) -> Self {
        self.identity(KeySource::Token {
            chain: chain.as_ref().to_owned(),
            key_url: secret(key_url),
            pin: pin.map(secret),
        })
    }

    fn identity(mut self, source: KeySource) -> Self {
        self.identities.push(LocalIdentity {
            source,
            ocsp_response: None,
        });
        self
    }

    /// On a server: staples the OCSP response in this DER file for the
    /// local certificate added last.
    pub fn ocsp_response_file(mut self, path: impl AsRef<Path>) -> Self {
        match self.identities.last_mut() {
            Some(identity) => identity.ocsp_response = Some(path.as_ref().to_owned()),
            None => {
                self.misuse =
                    Some("ocsp_response_file needs a local certificate added before it".into())
            }
        }
        self
    }

    /// On a client: fail verification (with `OcspResponseInvalid`) unless
    /// the server staples a valid OCSP response (default: no). Every
    /// connection must then prove the certificate's current status: sessions
    /// are not resumed and verifications are not reused.
    pub fn ocsp_stapling_required(mut self, required: bool) -> Self {
        self.ocsp_required = required;
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

    /// On a client: accepts `host` (`"*"`: every host) only if its
    /// certificate's public key is one of `pins`, on top of the
    /// certificate's verification (curl's `--pinnedpubkey`). A pin is
    /// `sha256//` and the base64 of the SHA-256 digest of the key's
    /// SubjectPublicKeyInfo ([`Certificate::public_key_pin`]); one string may
    /// hold several, separated by `;`. A mismatch is
    /// [`SslErrorKind::PublicKeyPinMismatch`](crate::SslErrorKind::PublicKeyPinMismatch)
    /// on the leaf, refused like any other problem unless the program
    /// ignores it (with [`PeerVerifyMode::QueryPeer`] it is only reported,
    /// as every problem is). Malformed pins fail [`build`](Self::build).
    ///
    /// `host` is the name the connection expects (the peer verify name, or
    /// else the host connected to), matched exactly: without regard to case
    /// or a trailing dot, and an IP address in any spelling (`[::1]`, `::1`,
    /// `0:0:0:0:0:0:0:1`). There are no wildcards: a host with a `*` other
    /// than `"*"` alone, which would match no connection, fails `build`.
    ///
    /// ```
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let config = sslsocket::SslConfiguration::builder()
    ///     .pin_public_keys(
    ///         "example.org",
    ///         ["sha256//EaBqB9KvpTmjXnlWMcH/dn2g2dsgJiwOHr80ZLT6xQM="],
    ///     )
    ///     .build()?;
    /// # drop(config); Ok(()) }
    /// ```
    pub fn pin_public_keys<P: AsRef<str>>(
        mut self,
        host: &str,
        pins: impl IntoIterator<Item = P>,
    ) -> Self {
        if let Err(e) = self.pins.add(host, pins) {
            self.misuse.get_or_insert(e.to_string());
        }
        self
    }

    /// On a client: trust on first use (as SSH does), with the stored public
    /// key database in `path` (GnuTLS's format, as `gnutls-cli --tofu`
    /// keeps it). The key a host and port presented before stands in for
    /// the certificate authorities: the chain's issuer problems
    /// (`UnableToGetLocalIssuerCertificate`, `SelfSignedCertificate`,
    /// `SelfSignedCertificateInChain`, `CertificateUntrusted`) are not
    /// reported; instead a key never seen for the host is
    /// [`PublicKeyUnknown`](crate::SslErrorKind::PublicKeyUnknown) and
    /// another key than the one stored is
    /// [`PublicKeyChanged`](crate::SslErrorKind::PublicKeyChanged). The
    /// program answers from its `ssl_errors` slot (or later, with
    /// [`handshake_must_interrupt_on_error`](Self::handshake_must_interrupt_on_error)):
    /// accept once ([`SslSocket::ignore_all_ssl_errors`](crate::SslSocket::ignore_all_ssl_errors),
    /// which covers this connection only; an `ignore_ssl_errors` list stays
    /// with the socket for its later connections), accept and store
    /// ([`SslSocket::store_peer_public_key`](crate::SslSocket::store_peer_public_key),
    /// which replaces the key stored before), or refuse. The other problems
    /// (name, dates, purpose, revocation) are checked as usual. The file is
    /// read, and written when a key is stored, on the reactor thread. GnuTLS
    /// takes the path as a C string: one that is not UTF-8 or holds a NUL
    /// fails [`build`](Self::build).
    pub fn trust_on_first_use(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        if path.to_str().is_none_or(|p| p.contains('\0')) {
            self.misuse.get_or_insert(format!(
                "trust on first use: the database path {path:?} must be UTF-8 without NUL"
            ));
        }
        self.known_keys = Some(KnownKeys::new(path));
        self
    }

    /// Pause the handshake on a verification problem until the program
    /// calls [`SslSocket::continue_interrupted_handshake`](crate::SslSocket::continue_interrupted_handshake)
    /// or aborts, instead of deciding when the `ssl_errors` slots return
    /// (Qt's `setHandshakeMustInterruptOnError`). Default: no.
    pub fn handshake_must_interrupt_on_error(mut self, interrupt: bool) -> Self {
        self.interrupt_on_error = interrupt;
        self
    }

    /// The protocol versions allowed, lowest and highest (default: TLS 1.2
    /// to TLS 1.3).
    ///
    /// The cipher suites are the system's default (GnuTLS's `NORMAL`, or
    /// what the distribution's crypto policy sets) narrowed to forward-secret
    /// AEAD suites, as in Mozilla's "intermediate" profile (plus GnuTLS's
    /// AES-CCM suites, AEAD too): CBC ciphers and the static RSA key exchange
    /// are removed, and nothing is added, so a policy that removed more still
    /// wins. With GnuTLS 3.7.9's `NORMAL` that leaves, in order of
    /// preference:
    ///
    /// - TLS 1.3: `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`,
    ///   `TLS_AES_128_GCM_SHA256`, `TLS_AES_128_CCM_SHA256`;
    /// - TLS 1.2: `ECDHE_ECDSA` with `AES_256_GCM_SHA384`,
    ///   `CHACHA20_POLY1305`, `AES_256_CCM`, `AES_128_GCM_SHA256`,
    ///   `AES_128_CCM`; `ECDHE_RSA` with `AES_256_GCM_SHA384`,
    ///   `CHACHA20_POLY1305`, `AES_128_GCM_SHA256`; `DHE_RSA` (2048-bit groups
    ///   or larger) with `AES_256_GCM_SHA384`, `CHACHA20_POLY1305`,
    ///   `AES_256_CCM`, `AES_128_GCM_SHA256`, `AES_128_CCM`.
    ///
    /// TLS 1.0 and 1.1 have no AEAD suite: a range that reaches down to
    /// them keeps the system default's suites, CBC and static RSA included,
    /// for TLS 1.2 too. `gnutls-cli --priority 'NORMAL:…' -l` lists what a
    /// priority string allows.
    ///
    /// DTLS follows the same range: DTLS 1.2 where it reaches TLS 1.2 or
    /// later (GnuTLS 3.7 has no DTLS 1.3), DTLS 1.0 where it reaches TLS 1.1
    /// (see [`DtlsProtocol`](crate::DtlsProtocol)).
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

    /// Session resumption (default: on).
    ///
    /// A client remembers a session only when the connection's verification
    /// found no problem at all (never one accepted by ignoring problems),
    /// under the host, the port and the expected name (the peer verify name
    /// or else the host), and offers it only to a later connection of a
    /// socket using this very configuration to the same host, port and
    /// name; a resumed session's chain, restored from the session, is
    /// verified again. With [`ocsp_stapling_required`](Self::ocsp_stapling_required)
    /// no session is resumed. A server issues session tickets under a random
    /// key made when the configuration is built, or the one given with
    /// [`session_ticket_key`](Self::session_ticket_key) (TLS 1.3: only when the
    /// client's certificate, if it asked for one, has no problem left
    /// unignored), and remembers TLS 1.2 sessions by session ID (up to 1024,
    /// for the ticket lifetime) for clients that do not use tickets.
    pub fn session_resumption(mut self, enabled: bool) -> Self {
        self.session_resumption = enabled;
        self
    }

    /// Whether a handshake may reuse a recent verification of the very same
    /// peer chain (default: yes).
    ///
    /// Verifying the peer's chain against the trust list is the largest
    /// cost of a full handshake after the key exchange. With this on, a
    /// configuration remembers the chains it verified successfully (up to
    /// 64, byte for byte as the peer sent them, with the name and the
    /// direction they were verified for) for 10 minutes at most and never
    /// past a certificate's expiry date, and a handshake presenting such a
    /// chain again skips that verification. Every handshake still checks
    /// that the peer holds the leaf certificate's key, and chains with
    /// problems are verified every time. The trust list cannot change
    /// under an entry: a configuration is immutable. Handshakes whose peer
    /// staples an OCSP response are always verified in full, and nothing is
    /// cached when [`ocsp_stapling_required`](Self::ocsp_stapling_required)
    /// is set.
    ///
    /// Turn it off when a certificate's status must be judged anew on
    /// every connection even within those 10 minutes.
    pub fn cache_verified_chains(mut self, enabled: bool) -> Self {
        self.cache_verified_chains = enabled;
        self
    }

    /// On a server: how long session tickets are accepted; GnuTLS also
    /// rotates the keys it encrypts tickets with at this interval (default:
    /// 6 hours).
    pub fn session_ticket_lifetime(mut self, lifetime: Duration) -> Self {
        self.ticket_lifetime = lifetime;
        self
    }

    /// On a server: the master key to issue session tickets under, instead
    /// of a random one made at build (see [`SessionTicketKey`]). Give every
    /// host of a service the same key and the same
    /// [`session_ticket_lifetime`](Self::session_ticket_lifetime), and a
    /// client resumes on whichever host a load balancer sends it to. What a
    /// resumed session proves does not change: each host verifies a resumed
    /// client's certificate again against its own configuration, and a
    /// client verifies the resumed server's chain again. Replace the key
    /// later with [`SslConfiguration::rotate_session_ticket_key`]. Ignored
    /// by a configuration that serves no resumption (a client, or
    /// [`session_resumption`](Self::session_resumption) off).
    pub fn session_ticket_key(mut self, key: SessionTicketKey) -> Self {
        self.ticket_key = Some(key);
        self
    }

    /// **Logs every connection's secrets to `path`**, in the NSS key log
    /// format (`SSLKEYLOGFILE`) that Wireshark and other tools use to
    /// decrypt captured traffic. Off by default.
    ///
    /// **Anyone who can read this file can decrypt every connection logged
    /// in it**, past and future, and a server's file covers all its clients.
    /// Use it to debug, never in production, and delete the file after.
    ///
    /// The file is opened for appending when the configuration is
    /// [built](Self::build) (created if missing, readable by its owner
    /// only), and [`build`](Self::build) fails if it cannot be. Every socket
    /// using the configuration, on either side and in any thread, appends
    /// its lines (`LABEL <client random> <secret>`, in hex): for TLS 1.3
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
    /// `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0` and
    /// `EXPORTER_SECRET`, plus `CLIENT_EARLY_TRAFFIC_SECRET` and
    /// `EARLY_EXPORTER_SECRET` when a session is resumed (GnuTLS derives
    /// them then; OpenSSL logs them only with early data); for TLS 1.2
    /// `CLIENT_RANDOM` with the master secret, also for a resumed session.
    /// Each line is one write, so concurrent handshakes never interleave
    /// within a line. The lines are written by the socket once GnuTLS has
    /// derived the secrets, during the handshake; a write that fails is
    /// logged (`log::warn!`) and the connection goes on.
    ///
    /// Without this call nothing is logged, even when the environment sets
    /// `SSLKEYLOGFILE` (which GnuTLS itself would otherwise honour): see
    /// [`key_log_from_env`](Self::key_log_from_env) to opt in to that.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let config = sslsocket::SslConfiguration::builder()
    ///     .key_log_file("/tmp/debug-keys.log") // only while debugging!
    ///     .build()?;
    /// assert!(config.key_log_file().is_some());
    /// # Ok(()) }
    /// ```
    pub fn key_log_file(mut self, path: impl AsRef<Path>) -> Self {
        self.key_log = Some(path.as_ref().to_owned());
        self
    }

    /// Logs secrets to the file the environment variable `SSLKEYLOGFILE`
    /// names, as [`key_log_file`](Self::key_log_file) does, if it is set
    /// and not empty; otherwise changes nothing. The variable is read when
    /// this is called, and only then: a program that never calls it never
    /// logs keys, whatever its environment says.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// // A debug build opts in; a release build ignores SSLKEYLOGFILE.
    /// let mut builder = sslsocket::SslConfiguration::builder();
    /// if cfg!(debug_assertions) {
    ///     builder = builder.key_log_from_env();
    /// }
    /// let config = builder.build()?;
    /// # Ok(()) }
    /// ```
    pub fn key_log_from_env(self) -> Self {
        match std::env::var_os(key_log::SSLKEYLOGFILE) {
            Some(path) if !path.is_empty() => self.key_log_file(PathBuf::from(path)),
            _ => self,
        }
    }

    /// For experts: a complete GnuTLS priority string (see GnuTLS's manual,
    /// "Priority strings"), replacing the system default, the protocol range
    /// and the restriction to forward-secret AEAD suites described under
    /// [`protocols`](Self::protocols): `"NORMAL"`, for example, allows CBC
    /// and static RSA suites again. What [pre-shared keys](Self::pre_shared_key)
    /// and [raw public keys](Self::add_trusted_raw_public_key) need is
    /// appended to it all the same.
    pub fn priority_string(mut self, priority: impl Into<String>) -> Self {
        self.priority = Some(priority.into());
        self
    }

    /// Reads, parses and loads everything; fails with a clear error on the
    /// first file, certificate or key that cannot be used.
    pub fn build(self) -> Result<SslConfiguration> {
        if let Some(misuse) = self.misuse {
            return Err(Error::InvalidConfiguration(misuse));
        }
        if self.verify_mode == PeerVerifyMode::VerifyNone && !self.pins.is_empty() {
            return Err(Error::InvalidConfiguration(
                "public key pins need verification, and VerifyNone checks nothing; to check \
                 only the pin, ignore the other problems from the ssl_errors slot"
                    .into(),
            ));
        }
        self.check_alpn()?;
        let priority = self.build_priority()?;
        let datagram_priority = self.datagram_priority();
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
        let mut anchors = LoadedAnchors::default();
        for source in &self.ca {
            load::load_ca(&mut credentials, source, &mut anchors)?;
        }
        let mut token_keys = Vec::new();
        let local_chains = self
            .identities
            .iter()
            .map(|identity| load::load_identity(&mut credentials, identity, &mut token_keys))
            .collect::<Result<Vec<_>>>()?;
        let authentication = self.authentication.load(&mut credentials)?;
        let serves = !local_chains.is_empty() || authentication.serves();
        if serves {
            credentials
                .set_known_dh_params()
                .map_err(gnutls_config_error)?;
        }
        let serves_resumption = self.session_resumption && serves;
        let ticket_keys = match (serves_resumption, self.ticket_key) {
            (false, _) => None,
            (true, Some(key)) => Some(TicketKeys::new(key)),
            (true, None) => Some(TicketKeys::new(SessionTicketKey::generate()?)),
        };
        let session_db = serves_resumption.then(|| Arc::new(SessionDb::new(self.ticket_lifetime)));
        let key_log = self.key_log.as_deref().map(KeyLog::open).transpose()?;
        Ok(SslConfiguration {
            inner: Arc::new(Inner {
                credentials: Arc::new(credentials),
                priority: Arc::new(priority),
                datagram_priority,
                verify_mode: self.verify_mode,
                anchors,
                local_chains,
                system_ca: self.system_ca,
                protocols: self.protocols,
                alpn: self.alpn,
                session_cache: self.session_resumption.then(SessionCache::default),
                verified_chains: (self.cache_verified_chains && !self.ocsp_required)
                    .then(VerifiedChains::default),
                ticket_keys,
                session_db,
                ticket_lifetime: self.ticket_lifetime,
                ocsp_required: self.ocsp_required,
                interrupt_on_error: self.interrupt_on_error,
                pins: self.pins,
                known_keys: self.known_keys,
                key_log,
                authentication,
                token_keys,
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
        let (mut text, append) = match &self.priority {
            Some(text) => (text.clone(), false),
            None => (protocol_priority(self.protocols)?, true),
        };
        text.push_str(&self.authentication.priority_suffix());
        Priority::new(&text, append).map_err(|e| {
            Error::InvalidConfiguration(format!(
                "priority string {text:?} refused at {:?}: {}",
                e.at, e.error
            ))
        })
    }
}

/// What the default priority removes from the system default when TLS 1.2
/// is the lowest version: every cipher that is not AEAD (CBC, RC4, NULL)
/// and the one key exchange that is not forward secret (static RSA). Only
/// removals, so a system policy that removed more still wins, and nothing
/// it removed comes back. Only names every GnuTLS build knows: GOST's
/// ciphers (not AEAD either) are absent from builds without GOST, where
/// naming them would fail every configuration, and are never in a system
/// default without an explicit `+GOST…`.
const NOT_FORWARD_SECRET_AEAD: &str = ":-AES-128-CBC:-AES-256-CBC:-CAMELLIA-128-CBC\
     :-CAMELLIA-256-CBC:-3DES-CBC:-ARCFOUR-128:-NULL:-RSA";

/// What the default priority removes from TLS 1.2's handshake signatures:
/// those over SHA-1 (as certificates signed with SHA-1 are refused; OpenSSL
/// 3 refuses them too). TLS 1.3 never offers them.
const SHA1_SIGNATURES: &str = ":-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1";

/// The priority suffix applied to the system default: GnuTLS's "medium"
/// security profile (112-bit security: RSA and DH below 2048 bits refused, in
/// the handshake and in certificate chains), the protocol range and, unless
/// the range reaches below TLS 1.2 (whose versions have no AEAD suite and
/// sign their handshakes with MD5 and SHA-1), forward-secret AEAD suites and
/// no SHA-1 handshake signatures.
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
    text.push_str(&narrowing(minimum));
    Ok(text)
}

/// What the default priority removes beyond the versions, for a range
/// from `minimum` on (TLS 1.0 and 1.1 have no AEAD suite: a range that
/// reaches them keeps the system default's suites). DTLS's default
/// (`datagram.rs`) removes the same.
fn narrowing(minimum: SslProtocol) -> String {
    match minimum >= SslProtocol::TlsV1_2 {
        true => format!("{NOT_FORWARD_SECRET_AEAD}{SHA1_SIGNATURES}"),
        false => String::new(),
    }
}

/// A copy of a passphrase or password, wiped when dropped.
fn secret(text: &str) -> Secret {
    Zeroizing::new(text.to_owned())
}

fn gnutls_config_error(e: gnutls::GnutlsError) -> Error {
    Error::InvalidConfiguration(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default adds nothing to the system default's suites: after the
    /// versions, every token removes something.
    #[test]
    fn the_default_priority_only_narrows_the_system_default() {
        let text = protocol_priority((SslProtocol::TlsV1_2, SslProtocol::TlsV1_3)).unwrap();
        let narrowing = text
            .strip_prefix("%PROFILE_MEDIUM:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3:")
            .unwrap_or_else(|| panic!("{text}"));
        let removed: Vec<&str> = narrowing.split(':').collect();
        assert!(removed.iter().all(|t| t.starts_with('-')), "{text}");
        for token in [
            "-AES-128-CBC",
            "-AES-256-CBC",
            "-CAMELLIA-256-CBC",
            "-RSA",
            "-SIGN-RSA-SHA1",
        ] {
            assert!(removed.contains(&token), "{token} in {text}");
        }
        Priority::new(&text, true).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        // TLS 1.0 and 1.1 have no AEAD suite: a range reaching them keeps
        // the system default's suites.
        let legacy = protocol_priority((SslProtocol::TlsV1_0, SslProtocol::TlsV1_3)).unwrap();
        assert!(legacy.ends_with("+VERS-TLS1.3"), "{legacy}");
    }
}
