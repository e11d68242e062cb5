//! [`SessionTicketKey`]: the master key a server encrypts its session
//! tickets under, and [`TicketKeys`], the one a configuration uses now,
//! which a program may replace (rotate) while servers run.
//!
//! The key is secret: anyone holding it can decrypt every ticket, and with a
//! ticket resume (TLS 1.3) or read (TLS 1.2) the session it carries. It is
//! held in wiping memory, never printed (`Debug` shows no byte of it), never
//! logged, and handed to GnuTLS per session, which keeps a copy in that
//! session only. This module does not decide what a resumed session proves:
//! the engine verifies a resumed peer's chain again.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::certificate::read_secret_file;
use crate::error::{Error, Result};
use crate::gnutls;

/// The master key of a server's session tickets: 64 bytes, GnuTLS's
/// format (`gnutls_session_ticket_key_generate`).
///
/// A server configuration makes a random one unless given one
/// ([`SslConfigurationBuilder::session_ticket_key`](crate::SslConfigurationBuilder::session_ticket_key)).
/// Give the same key to every host behind a load balancer, and a client's
/// ticket from one host resumes on any other. GnuTLS never encrypts under
/// the master key itself: it derives the key in use from it and the time,
/// changing it every three ticket lifetimes and accepting the previous one
/// besides, so hosts that share a key must also share
/// [`session_ticket_lifetime`](crate::SslConfigurationBuilder::session_ticket_lifetime)
/// and keep their clocks in step.
///
/// The bytes are wiped from memory when the key is dropped, and `Debug`
/// prints none of them.
///
/// ```
/// use sslsocket::SessionTicketKey;
/// # fn main() -> Result<(), sslsocket::Error> {
/// // Every host reads the same 64 random bytes (`head -c 64 /dev/urandom`),
/// // kept as secret as the private key.
/// let shared = SessionTicketKey::from_bytes(&[7; 64])?;
/// assert_eq!(format!("{shared:?}"), "SessionTicketKey(..)");
/// assert!(SessionTicketKey::from_bytes(&[7; 32]).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionTicketKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl SessionTicketKey {
    /// The length of a key, in bytes.
    pub const LEN: usize = 64;

    /// A fresh random key (what a server configuration makes when it is
    /// given none).
    pub fn generate() -> Result<Self> {
        let bytes = gnutls::ticket_key().map_err(|e| {
            Error::InvalidConfiguration(format!("cannot make a session ticket key: {e}"))
        })?;
        Ok(Self { bytes })
    }

    /// The key made of `bytes`, which must be [`LEN`](Self::LEN) random
    /// bytes (the caller wipes its own copy).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.len() {
            Self::LEN => Ok(Self {
                bytes: Zeroizing::new(bytes.to_vec()),
            }),
            other => Err(wrong_length(other)),
        }
    }

    /// Reads the key from a file that holds exactly [`LEN`](Self::LEN)
    /// bytes, raw (as `head -c 64 /dev/urandom > ticket.key` writes them).
    /// The bytes read are wiped whether or not they make a key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let bytes = read_secret_file(path.as_ref())?;
        match bytes.len() {
            Self::LEN => Ok(Self { bytes }),
            other => Err(wrong_length(other)),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn wrong_length(length: usize) -> Error {
    Error::InvalidInput(format!(
        "a session ticket key is {} bytes, not {length}",
        SessionTicketKey::LEN
    ))
}

impl fmt::Debug for SessionTicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionTicketKey(..)")
    }
}

/// The key a server configuration issues tickets under now, shared by its
/// clones; replaced whole by a rotation (sessions set up before keep the
/// key they were given).
pub(crate) struct TicketKeys {
    current: RwLock<Arc<SessionTicketKey>>,
}

impl TicketKeys {
    pub(crate) fn new(key: SessionTicketKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
        }
    }

    /// The key for a session starting now.
    pub(crate) fn current(&self) -> Arc<SessionTicketKey> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&current)
    }

    /// Issues tickets under `key` from now on; the previous key is dropped
    /// (wiped) once no session set-up holds it.
    pub(crate) fn rotate(&self, key: SessionTicketKey) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_gnutls_length_and_hide_their_bytes() {
        let generated = SessionTicketKey::generate().unwrap();
        assert_eq!(generated.as_bytes().len(), SessionTicketKey::LEN);
        assert_ne!(generated.as_bytes(), [0; SessionTicketKey::LEN]);
        assert_eq!(format!("{generated:?}"), "SessionTicketKey(..)");
        for length in [0, 48, 63, 65, 80] {
            let error = SessionTicketKey::from_bytes(&vec![1; length]).unwrap_err();
            assert!(error.to_string().contains("64 bytes"), "{error}");
        }
    }

    #[test]
    fn a_key_file_holds_exactly_the_raw_bytes() {
        let dir = std::env::temp_dir().join(format!("sslsocket-ticket-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, short) = (dir.join("good.key"), dir.join("short.key"));
        std::fs::write(&good, [9; 64]).unwrap();
        std::fs::write(&short, [9; 63]).unwrap();
        assert_eq!(
            SessionTicketKey::from_file(&good).unwrap().as_bytes(),
            [9; 64]
        );
        let error = SessionTicketKey::from_file(&short).unwrap_err();
        assert!(error.to_string().contains("not 63"), "{error}");
        let missing = SessionTicketKey::from_file(dir.join("missing.key")).unwrap_err();
        assert!(matches!(missing, Error::File { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_rotation_replaces_the_key_for_later_sessions() {
        let keys = TicketKeys::new(SessionTicketKey::from_bytes(&[1; 64]).unwrap());
        let before = keys.current();
        keys.rotate(SessionTicketKey::from_bytes(&[2; 64]).unwrap());
        assert_eq!(before.as_bytes(), [1; 64]);
        assert_eq!(keys.current().as_bytes(), [2; 64]);
    }
}
