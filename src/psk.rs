//! Pre-shared keys: [`PreSharedKeys`], a server's table of keys by
//! identity, and [`PreSharedKeyAuthenticator`], the payload of a server
//! socket's `pre_shared_key_authentication_required` signal.
//!
//! A client names one identity and proves its key
//! ([`SslConfigurationBuilder::pre_shared_key`](crate::SslConfigurationBuilder::pre_shared_key));
//! a server looks the identity up in its table
//! ([`SslConfigurationBuilder::pre_shared_keys`](crate::SslConfigurationBuilder::pre_shared_keys)).
//! Keys are held in buffers wiped when a key is replaced, removed or
//! dropped, and never logged.
//!
//! # Why a table, and not Qt's slot that answers during the handshake
//!
//! Qt asks a `preSharedKeyAuthenticationRequired` slot for the key while
//! the handshake waits. GnuTLS asks for a server's key synchronously, inside
//! `gnutls_handshake`, where no slot may run (no user code under a C frame),
//! and it cannot resume a handshake after that lookup: an error from the
//! lookup ends the handshake. So a server's keys are in a table filled
//! beforehand, which the program may change at any time and from any thread
//! (a handshake uses the key the table holds when it looks the identity
//! up). When a client names an identity the table does not hold, its
//! handshake fails ([`PskErrorKind::UnknownIdentity`](crate::PskErrorKind::UnknownIdentity)),
//! and the server socket then emits `pre_shared_key_authentication_required`:
//! a slot may add the key there, for the client's next attempt.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::gnutls::PskTable;

/// The longest identity accepted: what every GnuTLS this crate supports
/// takes (3.7.7 raised its limit from 128 to 65535 bytes), and what RFC 4279
/// requires every implementation to support.
pub(crate) const MAX_IDENTITY_LEN: usize = 128;

/// The shortest key accepted. A shorter key could be found by trying
/// guesses offline against one recorded handshake.
pub(crate) const MIN_KEY_LEN: usize = 16;

/// The longest key accepted (TLS 1.2 sends the key's length in 16 bits).
pub(crate) const MAX_KEY_LEN: usize = u16::MAX as usize;

/// A server's pre-shared keys by identity: a shared handle (clones see the
/// same table), safe to change from any thread while sockets use it.
///
/// ```
/// use sslsocket::{PreSharedKeys, SslConfiguration};
/// # fn main() -> Result<(), sslsocket::Error> {
/// let keys = PreSharedKeys::new();
/// keys.insert("sensor-17", [0x5a; 32])?;
/// let config = SslConfiguration::builder()
///     .system_ca_certificates(false)
///     .pre_shared_keys(&keys)
///     .build()?;
/// // Later, from anywhere: the next handshake sees the change.
/// keys.insert("sensor-18", [0xa5; 32])?;
/// assert!(keys.remove(b"sensor-17"));
/// assert_eq!(config.pre_shared_keys().unwrap().len(), 1);
/// assert!(keys.insert("short", [1; 8]).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct PreSharedKeys {
    table: Arc<PskTable>,
}

impl PreSharedKeys {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the key of `identity`, or replaces it (the old key is wiped).
    /// An identity is 1 to 128 bytes; a key 16 to 65535 bytes, and it should
    /// be random (a password is not a key: derive one with a password hash
    /// first). Refused with [`Error::InvalidInput`] otherwise.
    pub fn insert(&self, identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Result<()> {
        let key = Zeroizing::new(key.into());
        let identity = identity.into();
        check_identity(&identity)?;
        check_key(&key)?;
        self.table.insert(identity, key);
        Ok(())
    }

    /// Removes `identity`; returns whether it was there. Handshakes that
    /// already looked it up are not affected; later ones, and the
    /// resumption of sessions it established, are refused.
    pub fn remove(&self, identity: &[u8]) -> bool {
        self.table.remove(identity)
    }

    /// Whether the table holds `identity`.
    pub fn contains(&self, identity: &[u8]) -> bool {
        self.table.contains(identity)
    }

    /// How many identities the table holds.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn table(&self) -> &Arc<PskTable> {
        &self.table
    }
}

/// Never shows a key; identities only by number.
impl fmt::Debug for PreSharedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreSharedKeys")
            .field("identities", &self.len())
            .finish()
    }
}

/// What a server socket's `pre_shared_key_authentication_required` signal
/// carries (Qt's `QSslPreSharedKeyAuthenticator`): the identity a client
/// named that the server's table did not hold, and the means to add its
/// key. Unlike Qt's, the handshake that asked has already failed (see the
/// [module docs](crate::PreSharedKeys)); the key serves the client's next
/// handshake.
///
/// ```
/// # let mut reactor = sslsocket::Reactor::new().unwrap();
/// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
/// # let id = reactor.ssl_socket(config);
/// # let socket = reactor.socket(id).unwrap();
/// # fn key_from_provisioning(_: &[u8]) -> Option<[u8; 32]> { None }
/// socket.pre_shared_key_authentication_required().connect(|_, _, authenticator| {
///     if let Some(key) = key_from_provisioning(authenticator.identity()) {
///         authenticator.set_pre_shared_key(key).ok();
///     }
/// });
/// ```
pub struct PreSharedKeyAuthenticator {
    identity: Vec<u8>,
    keys: PreSharedKeys,
}

impl PreSharedKeyAuthenticator {
    pub(crate) fn new(identity: Vec<u8>, keys: PreSharedKeys) -> Self {
        Self { identity, keys }
    }

    /// The identity the client named.
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// Adds `key` for this identity to the server's table (as
    /// [`PreSharedKeys::insert`] does), for the client's next handshake.
    pub fn set_pre_shared_key(&self, key: impl Into<Vec<u8>>) -> Result<()> {
        self.keys.insert(self.identity.clone(), key)
    }

    /// The server's table.
    pub fn pre_shared_keys(&self) -> &PreSharedKeys {
        &self.keys
    }
}

impl fmt::Debug for PreSharedKeyAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreSharedKeyAuthenticator")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_identity(identity: &[u8]) -> Result<()> {
    if identity.is_empty() || identity.len() > MAX_IDENTITY_LEN {
        return Err(Error::InvalidInput(format!(
            "a pre-shared key identity is 1 to {MAX_IDENTITY_LEN} bytes, not {}",
            identity.len()
        )));
    }
    Ok(())
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
        return Err(Error::InvalidInput(format!(
            "a pre-shared key is {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes (random, not a password), \
             not {}",
            key.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_and_keys_are_checked() {
        let keys = PreSharedKeys::new();
        assert!(keys.insert("", [0; 16]).is_err());
        assert!(keys.insert(vec![b'a'; 129], [0; 16]).is_err());
        assert!(keys.insert("a", [0; 15]).is_err());
        keys.insert(vec![b'a'; 128], [0; 16]).unwrap();
        assert!(!keys.is_empty() && keys.len() == 1);
        assert_eq!(format!("{keys:?}"), "PreSharedKeys { identities: 1 }");
    }

    #[test]
    fn an_authenticator_fills_the_shared_table() {
        let keys = PreSharedKeys::new();
        let authenticator = PreSharedKeyAuthenticator::new(b"bob".to_vec(), keys.clone());
        assert_eq!(authenticator.identity(), b"bob");
        authenticator.set_pre_shared_key([9; 16]).unwrap();
        assert!(keys.contains(b"bob"));
    }
}
