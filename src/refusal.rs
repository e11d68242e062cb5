//! [`HandshakeRefusal`]: a TLS handshake that ended because the two sides
//! found nothing they both accept, told in plain words: which side refused,
//! what (protocol versions, cipher suites, groups, signature algorithms,
//! certificate types), what each side offered and the priority string in
//! force.
//!
//! This module describes a refusal; the engine finds out what happened.

use std::fmt;

use crate::error::Alert;
use crate::gnutls::GnutlsError;

/// Which side of the connection refused the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBy {
    /// This program (its configuration) refused what the peer offered or
    /// chose.
    Us,
    /// The peer refused what we offered, with an alert.
    Peer,
}

/// A handshake parameter the two sides must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeParameter {
    /// The TLS version.
    ProtocolVersion,
    /// The cipher suite.
    CipherSuite,
    /// The key exchange group (elliptic curve or finite field).
    Group,
    /// The algorithm that signs the handshake (it must fit the
    /// certificate's key).
    SignatureAlgorithm,
    /// The certificate type (X.509 or a raw public key, RFC 7250).
    CertificateType,
}

impl fmt::Display for HandshakeParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ProtocolVersion => "protocol version",
            Self::CipherSuite => "cipher suite",
            Self::Group => "key exchange group",
            Self::SignatureAlgorithm => "signature algorithm",
            Self::CertificateType => "certificate type",
        })
    }
}

/// What one side offered in a handshake, by name, in its order of
/// preference: GnuTLS's names ("TLS1.3", "TLS_AES_128_GCM_SHA256",
/// "X25519", "RSA-PSS-RSAE-SHA256", "X.509"), the IANA registry's for
/// values GnuTLS does not know, or the code point in hex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeOffer {
    /// TLS versions.
    pub protocol_versions: Vec<String>,
    /// Cipher suites.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups.
    pub groups: Vec<String>,
    /// Signature algorithms.
    pub signature_algorithms: Vec<String>,
    /// Types of the server's certificate.
    pub certificate_types: Vec<String>,
}

impl HandshakeOffer {
    /// The list offered for `parameter`.
    pub fn get(&self, parameter: HandshakeParameter) -> &[String] {
        match parameter {
            HandshakeParameter::ProtocolVersion => &self.protocol_versions,
            HandshakeParameter::CipherSuite => &self.cipher_suites,
            HandshakeParameter::Group => &self.groups,
            HandshakeParameter::SignatureAlgorithm => &self.signature_algorithms,
            HandshakeParameter::CertificateType => &self.certificate_types,
        }
    }

    /// Writes every list, for a refusal whose parameter is unknown.
    fn write_all(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALL: [HandshakeParameter; 4] = [
            HandshakeParameter::ProtocolVersion,
            HandshakeParameter::CipherSuite,
            HandshakeParameter::Group,
            HandshakeParameter::SignatureAlgorithm,
        ];
        for (i, parameter) in ALL.into_iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            write!(f, "{separator}{parameter}s {}", List(self.get(parameter)))?;
        }
        Ok(())
    }
}

/// A list of names, comma-separated, or "none".
struct List<'a>(&'a [String]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.0.join(", "))
    }
}

/// Why a handshake failed for want of anything both sides accept.
///
/// Carried by [`Error::HandshakeRefused`](crate::Error::HandshakeRefused).
/// When this program refused (a server that finds no common parameter in
/// a client's hello), it knows both offers and names the parameter that
/// had nothing in common. When the peer refused with an alert, only our
/// offer is known; the parameter is named when the alert says it
/// (`protocol_version`).
///
/// ```no_run
/// # use sslsocket::{Error, RefusedBy};
/// # fn report(error: &Error) {
/// if let Error::HandshakeRefused(refusal) = error {
///     if refusal.refused_by() == RefusedBy::Peer {
///         eprintln!("the peer wants something else; we offered {:?}", refusal.ours());
///     }
///     eprintln!("{refusal}"); // the whole story in one line
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRefusal {
    pub(crate) refused_by: RefusedBy,
    pub(crate) peer_is_server: bool,
    pub(crate) parameter: Option<HandshakeParameter>,
    pub(crate) ours: HandshakeOffer,
    pub(crate) theirs: Option<HandshakeOffer>,
    pub(crate) priority: String,
    pub(crate) alert: Option<Alert>,
    pub(crate) gnutls: Option<GnutlsError>,
}

impl HandshakeRefusal {
    /// Which side refused.
    pub fn refused_by(&self) -> RefusedBy {
        self.refused_by
    }

    /// The parameter nothing was in common for, when known.
    pub fn parameter(&self) -> Option<HandshakeParameter> {
        self.parameter
    }

    /// What we offered (a client) or accept (a server: only the cipher
    /// suites and signature algorithms its certificates' keys can use).
    pub fn ours(&self) -> &HandshakeOffer {
        &self.ours
    }

    /// What the peer offered, when known (a server reads the client's
    /// hello; a client never learns what a server accepts).
    pub fn theirs(&self) -> Option<&HandshakeOffer> {
        self.theirs.as_ref()
    }

    /// The GnuTLS priority string in force for this connection; it starts
    /// with `SYSTEM-DEFAULT:` when the configuration narrows the system's
    /// default priority (`/etc/gnutls/config` may set it).
    pub fn priority(&self) -> &str {
        &self.priority
    }

    /// The alert the peer refused with.
    pub fn alert(&self) -> Option<Alert> {
        self.alert
    }

    /// GnuTLS's error, when this program refused.
    pub fn gnutls_error(&self) -> Option<GnutlsError> {
        self.gnutls
    }

    fn peer(&self) -> &'static str {
        match self.peer_is_server {
            true => "the server",
            false => "the client",
        }
    }

    fn write_peer_refusal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alert = match self.alert {
            Some(alert) => alert.to_string(),
            None => "an alert".to_owned(),
        };
        match self.parameter {
            Some(p) => write!(
                f,
                "{} refused every {p} we offered ({alert}): we offered {}",
                self.peer(),
                List(self.ours.get(p))
            ),
            None => {
                write!(
                    f,
                    "{} refused our hello ({alert}): nothing we offered suited it; we offered ",
                    self.peer()
                )?;
                self.ours.write_all(f)
            }
        }
    }

    fn write_our_refusal(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(p) = self.parameter else {
            let why = self.gnutls.map(|e| e.to_string()).unwrap_or_default();
            write!(
                f,
                "we refused what {} offered ({why}); we offer ",
                self.peer()
            )?;
            return self.ours.write_all(f);
        };
        write!(
            f,
            "no {p} in common with {}: we accept {}",
            self.peer(),
            List(self.ours.get(p))
        )?;
        match &self.theirs {
            Some(theirs) => write!(f, "; it offered {}", List(theirs.get(p))),
            None => write!(f, "; it chose another"),
        }
    }
}

impl HandshakeRefusal {
    /// Where a program changes what it offers for the parameter.
    fn what_to_change(&self) -> &'static str {
        match self.parameter {
            Some(HandshakeParameter::ProtocolVersion) => {
                "our versions are set with SslConfigurationBuilder::protocols"
            }
            Some(HandshakeParameter::CertificateType) => {
                "our certificate types follow SslConfigurationBuilder::local_raw_public_key and \
                 add_trusted_raw_public_key"
            }
            Some(_) => {
                "ours are set with SslConfigurationBuilder::priority_string; \
                 `gnutls-cli --priority STRING -l` lists what a string allows"
            }
            None => {
                "our versions are set with SslConfigurationBuilder::protocols, the rest with \
                 SslConfigurationBuilder::priority_string"
            }
        }
    }
}

impl fmt::Display for HandshakeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.refused_by {
            RefusedBy::Peer => self.write_peer_refusal(f)?,
            RefusedBy::Us => self.write_our_refusal(f)?,
        }
        write!(
            f,
            " (priority string {:?}; {})",
            self.priority,
            self.what_to_change()
        )
    }
}
