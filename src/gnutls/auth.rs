//! How a session authenticates besides X.509 chains: the options it is made
//! with ([`SessionOptions`]: raw public keys, pre-shared keys) and what the
//! handshake ended up using ([`PeerAuthentication`], the PSK identity, the
//! peer's raw public key).
//!
//! This file reports; the engine judges.

use gnutls_sys as sys;

use super::psk::Psk;
use super::session::Session;

/// What a session may authenticate with besides X.509 certificates.
#[derive(Clone, Default)]
pub(crate) struct SessionOptions {
    /// Negotiate RFC 7250 raw public keys (`GNUTLS_ENABLE_RAWPK`); the
    /// priority string says which certificate types each side may use.
    pub(crate) raw_public_keys: bool,
    /// The client's key, or the server's table.
    pub(crate) psk: Option<Psk>,
}

/// How the peer authenticated in the handshake (as the original handshake
/// did, for a resumed session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerAuthentication {
    /// With an X.509 certificate (or, on a server, a client that sent
    /// none).
    Certificate,
    /// With an RFC 7250 raw public key.
    RawPublicKey,
    /// By proving a pre-shared key.
    PreSharedKey,
    /// Anything else GnuTLS knows (anonymous, SRP): never enabled here.
    Other,
}

impl Session {
    /// How the peer authenticated (`gnutls_auth_get_type`, and the peer's
    /// certificate type). Meaningful once the handshake is done.
    pub(crate) fn peer_authentication(&self) -> PeerAuthentication {
        let s = self.as_raw();
        // SAFETY: the session is live; these only read its parameters.
        let (credentials, certificate_type) = unsafe {
            (
                sys::gnutls_auth_get_type(s),
                sys::gnutls_certificate_type_get2(s, sys::GNUTLS_CTYPE_PEERS),
            )
        };
        match credentials {
            sys::GNUTLS_CRD_PSK => PeerAuthentication::PreSharedKey,
            sys::GNUTLS_CRD_CERTIFICATE if certificate_type == sys::GNUTLS_CRT_RAWPK => {
                PeerAuthentication::RawPublicKey
            }
            sys::GNUTLS_CRD_CERTIFICATE => PeerAuthentication::Certificate,
            _ => PeerAuthentication::Other,
        }
    }

    /// The PSK identity of a PSK-authenticated session: the one a client
    /// named and its server accepted (`gnutls_psk_server_get_username2`
    /// answers on both sides).
    pub(crate) fn psk_identity(&self) -> Option<Vec<u8>> {
        let mut datum = sys::gnutls_datum_t {
            data: std::ptr::null_mut(),
            size: 0,
        };
        // SAFETY: the session is live; on success the datum points into the
        // session's authentication data, which we copy before returning.
        let rc = unsafe { sys::gnutls_psk_server_get_username2(self.as_raw(), &mut datum) };
        if rc < 0 || datum.data.is_null() {
            return None;
        }
        // SAFETY: GnuTLS filled `datum` with `size` readable bytes.
        Some(unsafe { std::slice::from_raw_parts(datum.data, datum.size as usize) }.to_vec())
    }

    /// Whether the key exchange chosen so far is a PSK one, or none is
    /// chosen yet (a TLS 1.3 server refuses a PSK before its ServerHello).
    pub(crate) fn key_exchange_may_be_psk(&self) -> bool {
        // SAFETY: the session is live; this only reads its parameters.
        let kx = unsafe { sys::gnutls_kx_get(self.as_raw()) };
        matches!(
            kx,
            sys::GNUTLS_KX_UNKNOWN
                | sys::GNUTLS_KX_PSK
                | sys::GNUTLS_KX_DHE_PSK
                | sys::GNUTLS_KX_ECDHE_PSK
                | sys::GNUTLS_KX_RSA_PSK
        )
    }
}
