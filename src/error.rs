//! The public error types: [`Error`] for everything the API reports,
//! [`SslError`] and [`SslErrorKind`] for problems verifying a peer's
//! certificate or raw public key, [`PskErrorKind`] for pre-shared key
//! failures, and [`Alert`] for TLS alerts.
//!
//! This module describes failures; it decides nothing and touches no I/O.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::certificate::Certificate;
use crate::gnutls::{self, GnutlsError};
use crate::pkcs11::Pkcs11ErrorKind;
use crate::proxy::ProxyErrorKind;
use crate::raw_public_key::RawPublicKey;
use crate::refusal::HandshakeRefusal;

/// Everything that can go wrong in sslsocket.
///
/// Errors reach a program in two ways: as the `Result` of a call, and through
/// a socket's `error_occurred` signal for what happens later on the connection.
/// `Display` says what happened in one line, naming the certificate problem
/// kind for verification failures.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The host name could not be resolved.
    HostNotFound {
        /// The name that was looked up.
        host: String,
        /// The resolver's explanation.
        reason: String,
    },
    /// No address of the host accepted a TCP connection.
    ConnectionFailed {
        /// The host that was connected to.
        host: String,
        /// The last address tried.
        address: SocketAddr,
        /// Why the last attempt failed.
        source: io::Error,
    },
    /// A server could not listen on its address (in use, not local, …).
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The connection failed after it was established (reset, network down).
    Network(io::Error),
    /// The peer closed the connection during the TLS handshake.
    ClosedDuringHandshake,
    /// The peer closed TCP without sending TLS `close_notify`: the data
    /// received may have been cut short (a truncation attack looks the same).
    Truncated,
    /// The peer's certificate failed verification and the errors were not
    /// ignored.
    CertificateVerification(Vec<SslError>),
    /// Authentication with a pre-shared key failed; nothing was
    /// established.
    PreSharedKey {
        /// What went wrong.
        kind: PskErrorKind,
        /// The identity concerned: the one this client named, or the one
        /// the client named to this server.
        identity: Vec<u8>,
    },
    /// The peer sent a fatal TLS alert.
    AlertReceived(Alert),
    /// The TLS handshake failed because the two sides found no protocol
    /// version, cipher suite, group, signature algorithm or certificate
    /// type they both accept: which side refused, what and the priority
    /// string in force are in the [`HandshakeRefusal`].
    HandshakeRefused(Box<HandshakeRefusal>),
    /// The TLS handshake failed.
    Handshake(GnutlsError),
    /// A TLS error after the handshake (bad record, decryption failure, …).
    Tls(GnutlsError),
    /// Going through the proxy failed.
    Proxy {
        /// What went wrong.
        kind: ProxyErrorKind,
        /// The details, in a sentence.
        detail: String,
    },
    /// A timeout expired.
    Timeout(TimeoutKind),
    /// A PKCS#11 token holding a local key refused or failed: a wrong PIN,
    /// no such token or key, … (see [`PinRequest`](crate::PinRequest)).
    Pkcs11 {
        /// The token's label (or the key's URL, without any PIN).
        token: String,
        /// What went wrong.
        kind: Pkcs11ErrorKind,
        /// The details, in a sentence.
        detail: String,
    },
    /// A datagram was refused, unsent, because it does not fit one DTLS
    /// record in the path MTU ([`DtlsSocket::data_mtu`](crate::DtlsSocket::data_mtu)):
    /// DTLS never splits a datagram, and sending it whole would leave it to
    /// IP fragmentation or the kernel's refusal.
    DatagramTooLarge {
        /// The datagram's length.
        size: usize,
        /// The largest datagram that fits.
        limit: usize,
    },
    /// A file could not be read.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Certificate, key or CA data could not be used.
    InvalidCertificateData {
        /// Where the data came from: a path, or a description.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration was refused (bad priority string, empty protocol
    /// range, …).
    InvalidConfiguration(String),
    /// An argument was invalid (empty host name, port 0, …).
    InvalidInput(String),
    /// The call does not fit the socket's state (writing after close, …).
    InvalidState(&'static str),
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// Establishing the TCP connection (all addresses) took too long.
    Connect,
    /// The TLS handshake took too long.
    Handshake,
    /// Nothing moved, either way, for too long.
    Idle,
    /// Output waited and the peer took none of it for too long.
    Send,
    /// A graceful close (flushing, `close_notify`, waiting for the peer's
    /// goodbye) took too long; the connection was aborted.
    Close,
    /// The deadline the program set ([`SslSocket::set_deadline`](crate::SslSocket::set_deadline))
    /// passed.
    Deadline,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HostNotFound { host, reason } => write!(f, "host not found: {host}: {reason}"),
            Error::ConnectionFailed { host, address, source } => {
                write!(f, "cannot connect to {host} ({address}): {source}")
            }
            Error::Listen { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Error::Network(e) => write!(f, "network error: {e}"),
            Error::ClosedDuringHandshake => f.write_str("the peer closed the connection during the TLS handshake"),
            Error::Truncated => f.write_str(
                "the peer closed the connection without TLS close_notify: the data may be truncated",
            ),
            Error::CertificateVerification(errors) => {
                f.write_str("certificate verification failed: ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::PreSharedKey { kind, identity } => write!(
                f,
                "pre-shared key authentication failed for identity {:?}: {}",
                String::from_utf8_lossy(identity),
                kind.description()
            ),
            Error::AlertReceived(alert) => write!(f, "the peer sent a {alert}"),
            Error::HandshakeRefused(refusal) => write!(f, "TLS handshake refused: {refusal}"),
            Error::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::Proxy { kind, detail } => write!(f, "proxy error ({kind}): {detail}"),
            Error::Timeout(kind) => write!(f, "{kind} timed out"),
            Error::Pkcs11 { token, detail, .. } => write!(f, "PKCS#11 token {token:?}: {detail}"),
            Error::DatagramTooLarge { size, limit } => write!(
                f,
                "a datagram of {size} bytes does not fit the path MTU: at most {limit} bytes"
            ),
            Error::File { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::InvalidCertificateData { origin, reason } => write!(f, "{origin}: {reason}"),
            Error::InvalidConfiguration(why) => write!(f, "invalid TLS configuration: {why}"),
            Error::InvalidInput(why) => write!(f, "invalid argument: {why}"),
            Error::InvalidState(why) => write!(f, "invalid in the socket's state: {why}"),
        }
    }
}

impl fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "connecting",
            TimeoutKind::Handshake => "the handshake",
            TimeoutKind::Idle => "waiting for data",
            TimeoutKind::Send => "sending (the peer took nothing)",
            TimeoutKind::Close => "closing",
            TimeoutKind::Deadline => "the program's deadline",
        })
    }
}

/// Errors are cloned to be reported in more than one place (the
/// `error_occurred` signals of a socket and of its server); an I/O error
/// keeps its OS error code, or else its kind and message.
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::HostNotFound { host, reason } => Error::HostNotFound {
                host: host.clone(),
                reason: reason.clone(),
            },
            Error::ConnectionFailed {
                host,
                address,
                source,
            } => Error::ConnectionFailed {
                host: host.clone(),
                address: *address,
                source: clone_io(source),
            },
            Error::Listen { address, source } => Error::Listen {
                address: *address,
                source: clone_io(source),
            },
            Error::Network(e) => Error::Network(clone_io(e)),
            Error::ClosedDuringHandshake => Error::ClosedDuringHandshake,
            Error::Truncated => Error::Truncated,
            Error::CertificateVerification(errors) => {
                Error::CertificateVerification(errors.clone())
            }
            Error::PreSharedKey { kind, identity } => Error::PreSharedKey {
                kind: *kind,
                identity: identity.clone(),
            },
            Error::AlertReceived(alert) => Error::AlertReceived(*alert),
            Error::HandshakeRefused(refusal) => Error::HandshakeRefused(refusal.clone()),
            Error::Handshake(e) => Error::Handshake(*e),
            Error::Tls(e) => Error::Tls(*e),
            Error::Proxy { kind, detail } => Error::Proxy {
                kind: *kind,
                detail: detail.clone(),
            },
            Error::Timeout(kind) => Error::Timeout(*kind),
            Error::Pkcs11 {
                token,
                kind,
                detail,
            } => Error::Pkcs11 {
                token: token.clone(),
                kind: *kind,
                detail: detail.clone(),
            },
            Error::DatagramTooLarge { size, limit } => Error::DatagramTooLarge {
                size: *size,
                limit: *limit,
            },
            Error::File { path, source } => Error::File {
                path: path.clone(),
                source: clone_io(source),
            },
            Error::InvalidCertificateData { origin, reason } => Error::InvalidCertificateData {
                origin: origin.clone(),
                reason: reason.clone(),
            },
            Error::InvalidConfiguration(why) => Error::InvalidConfiguration(why.clone()),
            Error::InvalidInput(why) => Error::InvalidInput(why.clone()),
            Error::InvalidState(why) => Error::InvalidState(why),
        }
    }
}

fn clone_io(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConnectionFailed { source, .. }
            | Error::Listen { source, .. }
            | Error::File { source, .. } => Some(source),
            Error::Network(e) => Some(e),
            Error::Handshake(e) | Error::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// For `?` in functions that return `std::io::Result` (as
/// [`Reactor::run`](crate::Reactor::run) does): a network error is the
/// `io::Error` it carries; a timeout is `TimedOut`, bad input or
/// configuration `InvalidInput`, a call in the wrong state `NotConnected`,
/// a refused connection its source's kind; everything else `Other`, with
/// this error inside (`io::Error::get_ref` gives it back).
///
/// ```
/// use std::io;
/// fn connect(socket: &mut sslsocket::SslSocket) -> io::Result<()> {
///     socket.connect_to_host_encrypted("example.org", 443)?;
///     Ok(())
/// }
/// # let mut reactor = sslsocket::Reactor::new().unwrap();
/// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
/// # let id = reactor.ssl_socket(config);
/// # let socket = reactor.socket(id).unwrap();
/// let error = socket.connect_to_host_encrypted("", 443).map_err(io::Error::from).unwrap_err();
/// assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
/// # let _ = connect; // compiled, not run: it would look the name up
/// ```
impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::ConnectionFailed { source, .. } | Error::Listen { source, .. } => source.kind(),
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::InvalidInput(_) | Error::InvalidConfiguration(_) => io::ErrorKind::InvalidInput,
            Error::InvalidState(_) => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::Other,
        };
        match error {
            Error::Network(inner) => inner,
            other => io::Error::new(kind, other),
        }
    }
}

impl Error {
    /// The certificate problems behind a verification failure (empty for
    /// other errors).
    pub fn ssl_errors(&self) -> &[SslError] {
        match self {
            Error::CertificateVerification(errors) => errors,
            _ => &[],
        }
    }
}

/// A certificate verification problem, as Qt's `QSslError` names them.
///
/// `Display` prints the name (`CertificateExpired`);
/// [`description`](SslErrorKind::description) says it in a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslErrorKind {
    /// The issuer of a certificate in the chain is not in the trust store
    /// and was not sent by the peer.
    UnableToGetLocalIssuerCertificate,
    /// A signature in the chain does not verify.
    CertificateSignatureFailed,
    /// A certificate is not valid yet.
    CertificateNotYetValid,
    /// A certificate has expired.
    CertificateExpired,
    /// The peer's certificate is self-signed and not trusted.
    SelfSignedCertificate,
    /// The chain ends in a self-signed root that is not trusted.
    SelfSignedCertificateInChain,
    /// A certificate that signed another is not a (valid) CA.
    InvalidCaCertificate,
    /// The certificate may not be used for this purpose (e.g. a client-only
    /// certificate presented by a server).
    InvalidPurpose,
    /// The certificate is not trusted for a reason GnuTLS does not detail.
    CertificateUntrusted,
    /// A certificate in the chain was revoked.
    CertificateRevoked,
    /// The certificate does not name the host that was connected to.
    HostNameMismatch,
    /// The peer sent no certificate.
    NoPeerCertificate,
    /// The chain uses an algorithm or key size that is refused as insecure
    /// (SHA-1 signatures, RSA keys below 2048 bits, …).
    InsecureAlgorithm,
    /// The OCSP response is missing (when required) or invalid.
    OcspResponseInvalid,
    /// Revocation data (a CRL or an OCSP response) is superseded by newer
    /// data or dated in the future.
    RevocationDataInvalid,
    /// The server's public key is none of the keys pinned for it
    /// ([`pin_public_keys`](crate::SslConfigurationBuilder::pin_public_keys)).
    PublicKeyPinMismatch,
    /// Trust on first use: the server never presented a key before (see
    /// [`trust_on_first_use`](crate::SslConfigurationBuilder::trust_on_first_use)).
    PublicKeyUnknown,
    /// Trust on first use: the server presented another key before.
    PublicKeyChanged,
    /// A certificate has a critical extension GnuTLS does not understand.
    UnknownCriticalExtension,
    /// The peer authenticated with an RFC 7250 raw public key that is not
    /// one the configuration trusts
    /// ([`add_trusted_raw_public_key`](crate::SslConfigurationBuilder::add_trusted_raw_public_key)).
    /// The error names the key ([`SslError::raw_public_key`]).
    RawPublicKeyNotTrusted,
    /// Verification failed for another reason.
    UnspecifiedError,
}

impl SslErrorKind {
    /// The problem, in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Self::UnableToGetLocalIssuerCertificate => {
                "the issuer certificate of a locally looked up certificate could not be found"
            }
            Self::CertificateSignatureFailed => "the signature of the certificate is invalid",
            Self::CertificateNotYetValid => "the certificate is not yet valid",
            Self::CertificateExpired => "the certificate has expired",
            Self::SelfSignedCertificate => "the certificate is self-signed, and untrusted",
            Self::SelfSignedCertificateInChain => {
                "the root certificate of the certificate chain is self-signed, and untrusted"
            }
            Self::InvalidCaCertificate => "one of the CA certificates is invalid",
            Self::InvalidPurpose => "the certificate cannot be used for the given purpose",
            Self::CertificateUntrusted => "the certificate is not trusted",
            Self::CertificateRevoked => "the certificate has been revoked",
            Self::HostNameMismatch => {
                "the host name did not match any of the valid hosts for this certificate"
            }
            Self::NoPeerCertificate => "the peer did not present any certificate",
            Self::InsecureAlgorithm => {
                "the certificate uses an insecure algorithm or a key that is too small"
            }
            Self::OcspResponseInvalid => "the OCSP status response is missing or invalid",
            Self::RevocationDataInvalid => {
                "the revocation data (CRL or OCSP response) is superseded or dated in the future"
            }
            Self::PublicKeyPinMismatch => "the public key is none of the keys pinned for the host",
            Self::PublicKeyUnknown => "the host presents a public key never seen before",
            Self::PublicKeyChanged => {
                "the host presents another public key than the one stored for it"
            }
            Self::UnknownCriticalExtension => "the certificate has an unknown critical extension",
            Self::RawPublicKeyNotTrusted => {
                "the peer's raw public key is not one the configuration trusts"
            }
            Self::UnspecifiedError => "an unspecified error occurred",
        }
    }

    /// The TLS alert a client or server sends when it refuses a peer for
    /// this reason (RFC 8446 §6.2).
    pub(crate) fn alert_description(self) -> u8 {
        const BAD_CERTIFICATE: u8 = 42;
        const CERTIFICATE_REVOKED: u8 = 44;
        const CERTIFICATE_EXPIRED: u8 = 45;
        const UNKNOWN_CA: u8 = 48;
        const CERTIFICATE_REQUIRED: u8 = 116;
        match self {
            Self::CertificateExpired | Self::CertificateNotYetValid => CERTIFICATE_EXPIRED,
            Self::CertificateRevoked => CERTIFICATE_REVOKED,
            Self::UnableToGetLocalIssuerCertificate
            | Self::SelfSignedCertificate
            | Self::SelfSignedCertificateInChain
            | Self::CertificateUntrusted
            | Self::InvalidCaCertificate => UNKNOWN_CA,
            Self::NoPeerCertificate => CERTIFICATE_REQUIRED,
            _ => BAD_CERTIFICATE,
        }
    }
}

impl fmt::Display for SslErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One problem found verifying the peer, and the certificate or raw public
/// key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SslError {
    kind: SslErrorKind,
    certificate: Option<Certificate>,
    raw_public_key: Option<RawPublicKey>,
}

impl SslError {
    /// A problem of `kind` about `certificate`.
    ///
    /// Built by hand, it serves as an entry of an ignore list: an entry
    /// without a certificate matches that kind for any certificate (and any
    /// raw public key).
    pub fn new(kind: SslErrorKind, certificate: Option<Certificate>) -> Self {
        Self {
            kind,
            certificate,
            raw_public_key: None,
        }
    }

    /// A problem of `kind` about the peer's raw public key `key`. As an
    /// ignore-list entry it matches that kind for that key only.
    ///
    /// ```
    /// use sslsocket::{PrivateKey, RawPublicKey, SslError, SslErrorKind};
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// let key = RawPublicKey::from_private_key(&PrivateKey::from_file(format!("{ca}server.key"), None)?)?;
    /// let other = RawPublicKey::from_private_key(&PrivateKey::from_file(format!("{ca}client.key"), None)?)?;
    /// let ignore = SslError::for_raw_public_key(SslErrorKind::RawPublicKeyNotTrusted, key.clone());
    /// assert!(ignore.covers(&SslError::for_raw_public_key(SslErrorKind::RawPublicKeyNotTrusted, key)));
    /// assert!(!ignore.covers(&SslError::for_raw_public_key(SslErrorKind::RawPublicKeyNotTrusted, other)));
    /// # Ok(()) }
    /// ```
    pub fn for_raw_public_key(kind: SslErrorKind, key: RawPublicKey) -> Self {
        Self {
            kind,
            certificate: None,
            raw_public_key: Some(key),
        }
    }

    /// What is wrong.
    pub fn kind(&self) -> SslErrorKind {
        self.kind
    }

    /// The certificate the problem concerns, when there is one.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// The raw public key the problem concerns, when the peer authenticated
    /// with one.
    pub fn raw_public_key(&self) -> Option<&RawPublicKey> {
        self.raw_public_key.as_ref()
    }

    /// Whether this (ignore-list) entry covers `other`: same kind, and the
    /// same certificate and raw public key unless this entry names none.
    pub fn covers(&self, other: &SslError) -> bool {
        let names_nothing = self.certificate.is_none() && self.raw_public_key.is_none();
        self.kind == other.kind
            && (names_nothing
                || self.certificate == other.certificate
                    && self.raw_public_key == other.raw_public_key)
    }
}

impl fmt::Display for SslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.kind.description())?;
        if let Some(cert) = &self.certificate {
            write!(f, " [{}]", cert.subject_dn())?;
        }
        if let Some(key) = &self.raw_public_key {
            write!(
                f,
                " [raw {} key, SHA-256 {}…]",
                key.algorithm(),
                key.short_fingerprint()
            )?;
        }
        Ok(())
    }
}

/// Why authentication with a pre-shared key failed
/// ([`Error::PreSharedKey`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PskErrorKind {
    /// (Server) The client named an identity the server's table does not
    /// hold, or, resuming a session, one that was removed from it since. The
    /// client is told only that the handshake failed, as for a wrong key.
    UnknownIdentity,
    /// (Server) The client did not prove the key the table holds for its
    /// identity.
    KeyMismatch,
    /// (Client) The server refused the identity or the key; it does not
    /// say which.
    Refused,
    /// (Client) The server authenticated otherwise than with the configured
    /// key (with a certificate, say): a client that holds a pre-shared key
    /// accepts no other proof.
    NotUsed,
}

impl PskErrorKind {
    /// The problem, in a sentence.
    pub fn description(self) -> &'static str {
        match self {
            Self::UnknownIdentity => "the identity is not among the server's pre-shared keys",
            Self::KeyMismatch => "the client does not hold the key the server holds for it",
            Self::Refused => "the server refused the identity or the key",
            Self::NotUsed => "the server did not authenticate with the pre-shared key",
        }
    }
}

impl fmt::Display for PskErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How serious an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertLevel {
    /// The connection may go on.
    Warning,
    /// The connection ends.
    Fatal,
}

/// A TLS alert, sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Alert {
    level: AlertLevel,
    description: u8,
}

impl Alert {
    pub(crate) fn from_raw(raw: gnutls::RawAlert) -> Self {
        Self {
            level: if raw.fatal {
                AlertLevel::Fatal
            } else {
                AlertLevel::Warning
            },
            description: raw.description,
        }
    }

    /// Warning or fatal.
    pub fn level(&self) -> AlertLevel {
        self.level
    }

    /// The alert's description number (RFC 8446 §6), e.g. 42 for
    /// `bad_certificate`.
    pub fn description(&self) -> u8 {
        self.description
    }

    /// GnuTLS's name for the description ("Certificate is bad", …).
    pub fn description_text(&self) -> &'static str {
        gnutls::alert_name(self.description)
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            AlertLevel::Warning => "warning",
            AlertLevel::Fatal => "fatal",
        };
        write!(
            f,
            "{level} alert: {} ({})",
            self.description_text(),
            self.description
        )
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
