//! [`SslServer`]: a listening socket whose accepted connections become
//! server-mode [`SslSocket`]s owned by the reactor (Qt's `QSslServer`).
//!
//! The server accepts until `WouldBlock` on each readable event, gives
//! every connection its own TLS session from the shared configuration, and
//! announces it through `new_connection`. It does not touch the accepted
//! sockets after that.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use crate::config::SslConfiguration;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::reactor::{Context, Readiness, ServerId, SocketId};
use crate::signal::{emit, Signal};
use crate::ssl_socket::SslSocket;
use crate::tcp::Tcp;

enum ServerEvent {
    NewConnection(SocketId),
    AcceptError(Error),
}

/// A TLS server owned by a [`Reactor`](crate::Reactor); create one with
/// [`Context::listen`].
///
/// Accepted connections are server-mode [`SslSocket`]s that start their
/// handshake at once. They are removed from the reactor automatically
/// after they disconnect (see [`SslSocket::set_auto_delete`]).
pub struct SslServer {
    id: ServerId,
    listener: TcpListener,
    config: SslConfiguration,
    readable: bool,
    events: VecDeque<ServerEvent>,
    new_connection: Signal<SslServer, SocketId>,
    accept_error: Signal<SslServer, Error>,
}

impl SslServer {
    pub(crate) fn bind(address: SocketAddr, config: SslConfiguration) -> Result<Self> {
        if config.local_certificate().is_none() {
            return Err(Error::InvalidConfiguration(
                "a server needs a local certificate and private key".into(),
            ));
        }
        let listener = TcpListener::bind(address).map_err(|source| Error::ConnectionFailed {
            host: address.ip().to_string(),
            address,
            source,
        })?;
        Ok(Self {
            id: ServerId(Default::default()),
            listener,
            config,
            readable: true,
            events: VecDeque::new(),
            new_connection: Signal::default(),
            accept_error: Signal::default(),
        })
    }

    pub(crate) fn attach(
        &mut self,
        id: ServerId,
        registry: &Registry,
        token: Token,
    ) -> io::Result<()> {
        self.id = id;
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    /// This server's handle.
    pub fn id(&self) -> ServerId {
        self.id
    }

    /// The address the server listens on (with the port the system picked
    /// when it was given port 0).
    pub fn local_address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has a local address")
    }

    /// The configuration accepted connections use.
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        &self.config
    }

    /// A connection was accepted; the payload is its socket, which is
    /// handshaking. Connect its slots with
    /// [`Context::socket`](crate::Context::socket).
    pub fn new_connection(&mut self) -> &mut Signal<SslServer, SocketId> {
        &mut self.new_connection
    }

    /// Accepting a connection failed (too many open files, …), or its TLS
    /// session could not be set up.
    pub fn accept_error(&mut self) -> &mut Signal<SslServer, Error> {
        &mut self.accept_error
    }

    pub(crate) fn service(&mut self, cx: &mut Context, readiness: Option<Readiness>) -> bool {
        if readiness.is_some_and(|r| r.readable) {
            self.readable = true;
        }
        self.accept_all(cx);
        if self.events.is_empty() {
            return false;
        }
        while let Some(event) = self.events.pop_front() {
            match event {
                ServerEvent::NewConnection(id) => emit(self, cx, |s| &mut s.new_connection, &id),
                ServerEvent::AcceptError(e) => emit(self, cx, |s| &mut s.accept_error, &e),
            }
        }
        false
    }

    fn accept_all(&mut self, cx: &mut Context) {
        while self.readable {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    log::debug!("server {:?}: accepted {peer}", self.id);
                    self.adopt(cx, Tcp::connected(stream));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: report, and wait for the next event.
                    self.readable = false;
                    self.events
                        .push_back(ServerEvent::AcceptError(Error::Network(e)));
                }
            }
        }
    }

    fn adopt(&mut self, cx: &mut Context, tcp: Tcp) {
        match Engine::server(&self.config) {
            Ok(engine) => {
                let config = self.config.clone();
                let id = cx.insert_socket(|id| SslSocket::accepted(id, config, tcp, engine));
                self.events.push_back(ServerEvent::NewConnection(id));
            }
            Err(e) => self.events.push_back(ServerEvent::AcceptError(e)),
        }
    }

    pub(crate) fn retire(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.listener) {
            log::trace!("deregister listener: {e}");
        }
    }
}
