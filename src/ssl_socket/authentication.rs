//! What a socket tells about a peer that did not authenticate with an
//! X.509 chain: the pre-shared key identity, the raw public key.

use super::SslSocket;
use crate::raw_public_key::RawPublicKey;

/// # Pre-shared keys and raw public keys
impl SslSocket {
    /// The pre-shared key identity this connection authenticated with, once
    /// encrypted: on a client its own, on a server the client's. `None` for
    /// a connection authenticated otherwise.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.handshake_complete().connect(|s, _, _| {
    ///     if let Some(identity) = s.psk_identity() {
    ///         println!("client {:?}", String::from_utf8_lossy(&identity));
    ///     }
    /// });
    /// ```
    pub fn psk_identity(&self) -> Option<Vec<u8>> {
        self.engine.as_ref().and_then(|e| e.psk_identity())
    }

    /// The RFC 7250 raw public key the peer authenticated with, once
    /// received (also in an `ssl_errors` slot, to decide on it). `None`
    /// when the peer sent a certificate chain, or nothing.
    pub fn peer_raw_public_key(&self) -> Option<RawPublicKey> {
        self.engine.as_ref().and_then(|e| e.peer_raw_public_key())
    }
}
