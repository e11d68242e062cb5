//! What the reactor's [`Context`] offers for DTLS: making, reaching and
//! removing DTLS sockets and servers, as it does for TLS ones.

use std::net::SocketAddr;

use super::{DtlsServer, DtlsServerId, DtlsSocket, DtlsSocketId};
use crate::config::SslConfiguration;
use crate::context::{Context, Object, ObjectKey};
use crate::error::Result;

/// # DTLS
impl Context {
    /// Creates a DTLS socket (unconnected, client mode) that uses `config`;
    /// start it with [`DtlsSocket::connect_to_peer`].
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// let id = reactor.dtls_socket(config);
    /// assert!(id.to_string().starts_with("dtls#"));
    /// assert!(reactor.dtls(id).is_some());
    /// ```
    pub fn dtls_socket(&mut self, config: SslConfiguration) -> DtlsSocketId {
        self.insert_dtls_socket(|id| DtlsSocket::new(id, config))
    }

    /// The DTLS socket behind `id`; `None` when it was removed, or while
    /// its own slot runs. Marks it for servicing.
    pub fn dtls(&mut self, id: DtlsSocketId) -> Option<&mut DtlsSocket> {
        self.dtls_socket_at(self.own(id.0, id.1)?)
    }

    /// Removes a DTLS socket at once, without `close_notify` (see
    /// [`DtlsSocket::abort`]); from its own slot, once the slot returns.
    /// Returns whether it existed.
    pub fn remove_dtls_socket(&mut self, id: DtlsSocketId) -> bool {
        self.own(id.0, id.1)
            .is_some_and(|key| self.remove_object(key))
    }

    /// Serves DTLS on the UDP `address` (port 0 picks a free port) with
    /// `config`, which must hold a local certificate and key, a raw public
    /// key or pre-shared keys.
    pub fn dtls_listen(
        &mut self,
        address: SocketAddr,
        config: SslConfiguration,
    ) -> Result<DtlsServerId> {
        let mut server = DtlsServer::bind(address, config)?;
        let tag = self.tag();
        let key = self.try_insert_object(|key, registry| {
            server.attach(DtlsServerId(key, tag), registry)?;
            Ok::<_, crate::error::Error>(Object::DtlsServer(Box::new(server)))
        })?;
        Ok(DtlsServerId(key, tag))
    }

    /// The DTLS server behind `id` (`None` when removed or while its slot
    /// runs).
    pub fn dtls_server(&mut self, id: DtlsServerId) -> Option<&mut DtlsServer> {
        match self.object_mut(self.own(id.0, id.1)?)? {
            Object::DtlsServer(server) => Some(server),
            _ => None,
        }
    }

    /// Stops serving and removes the server; its peers' sockets end their
    /// associations. Returns whether it existed.
    pub fn remove_dtls_server(&mut self, id: DtlsServerId) -> bool {
        self.own(id.0, id.1)
            .is_some_and(|key| self.remove_object(key))
    }

    pub(super) fn insert_dtls_socket(
        &mut self,
        make: impl FnOnce(DtlsSocketId) -> DtlsSocket,
    ) -> DtlsSocketId {
        let tag = self.tag();
        let key = self.insert_object(|key| Object::Dtls(Box::new(make(DtlsSocketId(key, tag)))));
        DtlsSocketId(key, tag)
    }

    /// The DTLS socket at `key`, marked for servicing.
    pub(super) fn dtls_socket_at(&mut self, key: ObjectKey) -> Option<&mut DtlsSocket> {
        match self.object_mut(key)? {
            Object::Dtls(socket) => Some(socket),
            _ => None,
        }
    }
}
