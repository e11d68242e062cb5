//! Keying material exports and channel bindings on an encrypted socket
//! ([`SslSocket::export_keying_material`], [`SslSocket::channel_binding`]).

use super::SslSocket;
use crate::engine::Engine;
use crate::error::{Error, Result};

/// A TLS channel binding type: a value both ends of one TLS connection
/// compute alike, and that an attacker relaying between two connections
/// cannot make equal, so an authentication protocol run inside the
/// connection (SCRAM, GSS-API, an OAuth token bound to the connection) can
/// prove it was not relayed. See [`SslSocket::channel_binding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelBinding {
    /// `tls-exporter` (RFC 9266): 32 bytes of keying material exported
    /// with the label `EXPORTER-Channel-Binding` and an empty context.
    /// Unique to the connection, so defined only for TLS 1.3 and for TLS
    /// 1.2 with the extended master secret (RFC 7627; GnuTLS and OpenSSL
    /// negotiate it by default). The binding to prefer.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4.1): the hash of the server's
    /// certificate, with the hash function of the certificate's signature
    /// algorithm (SHA-256 when that is MD5 or SHA-1). It binds to the
    /// server's identity rather than to the connection; undefined (an
    /// error) for EdDSA-signed certificates and for servers without an
    /// X.509 certificate.
    TlsServerEndPoint,
}

impl ChannelBinding {
    /// The binding's registered name (`"tls-exporter"`,
    /// `"tls-server-end-point"`), as SCRAM's GS2 header spells it
    /// (`p=tls-exporter`).
    ///
    /// ```
    /// use sslsocket::ChannelBinding;
    /// assert_eq!(ChannelBinding::TlsExporter.name(), "tls-exporter");
    /// assert_eq!(ChannelBinding::TlsServerEndPoint.name(), "tls-server-end-point");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }
}

impl SslSocket {
    /// Exports `len` bytes of keying material from the connection's
    /// secrets (RFC 5705; RFC 8446 §7.5 for TLS 1.3): both ends get the
    /// same bytes for the same `label` and `context`, no one else can
    /// compute them, and they reveal nothing about the traffic keys.
    /// Protocols on top of TLS use them to derive keys of their own or to
    /// bind something to this very connection (as
    /// [`ChannelBinding::TlsExporter`] does).
    ///
    /// `label` names the use (1 to 63 bytes; a registered label, or one
    /// starting with `EXPERIMENTAL`); `context` is optional per-use data of
    /// at most 65535 bytes; `len` is 1 to 8160. In TLS 1.2, `None` (no
    /// context) and `Some(&[])` (an empty context) give different
    /// material, as RFC 5705 defines; in TLS 1.3 they are the same. The
    /// material is secret: wipe it when it is no longer needed.
    ///
    /// Only on an encrypted socket (after `handshake_complete`, also while
    /// closing): [`Error::InvalidState`] before, and once the connection
    /// ended. [`Error::InvalidInput`] for a label, context or length out of
    /// range.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let socket = reactor.socket(id).unwrap();
    /// socket.handshake_complete().connect(|s, _, _| {
    ///     let key = s.export_keying_material(b"EXPERIMENTAL my-protocol", None, 32).unwrap();
    ///     assert_eq!(key.len(), 32);
    /// });
    /// // Not encrypted yet:
    /// assert!(socket.export_keying_material(b"EXPERIMENTAL my-protocol", None, 32).is_err());
    /// ```
    pub fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>> {
        self.encrypted_engine()?
            .export_keying_material(label, context, len)
    }

    /// This connection's channel binding of type `binding` (see
    /// [`ChannelBinding`]), the same on both ends: on a client,
    /// `tls-server-end-point` hashes the server's certificate as received;
    /// on a server, its own certificate as sent.
    ///
    /// Only on an encrypted socket: [`Error::InvalidState`] before and after
    /// the connection, and when the binding is not defined for it:
    /// `tls-exporter` on a TLS 1.2 connection without the extended master
    /// secret, `tls-server-end-point` for an EdDSA-signed certificate.
    ///
    /// ```
    /// use sslsocket::ChannelBinding;
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// reactor.socket(id).unwrap().handshake_complete().connect(|s, _, _| {
    ///     // SCRAM-SHA-256-PLUS sends this, base64-encoded, after "p=tls-exporter,,".
    ///     match s.channel_binding(ChannelBinding::TlsExporter) {
    ///         Ok(binding) => assert_eq!(binding.len(), 32),
    ///         Err(e) => eprintln!("no tls-exporter binding: {e}"),
    ///     }
    /// });
    /// ```
    pub fn channel_binding(&self, binding: ChannelBinding) -> Result<Vec<u8>> {
        let engine = self.encrypted_engine()?;
        match binding {
            ChannelBinding::TlsExporter => engine.tls_exporter(),
            ChannelBinding::TlsServerEndPoint => engine.tls_server_end_point(),
        }
    }

    /// The engine of an encrypted connection.
    fn encrypted_engine(&self) -> Result<&Engine> {
        match (&self.engine, self.is_encrypted()) {
            (Some(engine), true) => Ok(engine),
            _ => Err(Error::InvalidState("the socket is not encrypted")),
        }
    }
}
