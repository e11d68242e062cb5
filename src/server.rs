//! [`SslServer`]: a listening socket whose accepted connections become
//! server-mode [`SslSocket`]s owned by the reactor (Qt's `QSslServer`).
//!
//! The server accepts until `WouldBlock` on each readable event, gives
//! every connection its own TLS session from the shared configuration, and
//! announces it through `new_connection`. Accepted sockets tell their server
//! when their handshake ends (see [`ServerNotice`]); the server keeps the
//! Qt-style queue of ready connections. It does not otherwise touch them.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use crate::config::SslConfiguration;
use crate::context::{Context, ServerId, SocketId};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::reactor::Readiness;
use crate::signal::{emit, Signal};
use crate::ssl_socket::SslSocket;
use crate::tcp::Tcp;

/// The handshake timeout accepted sockets get unless the server is told
/// otherwise (Qt's default).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The pending-connection queue's default length (Qt's default).
const DEFAULT_MAX_PENDING: usize = 30;

/// What an accepted socket tells its server.
pub(crate) enum ServerNotice {
    /// The handshake completed.
    Encrypted(SocketId),
    /// The connection failed before its handshake completed.
    Failed(SocketId, Error),
}

enum ServerEvent {
    NewConnection(SocketId),
    PendingConnectionAvailable,
    ErrorOccurred(SocketId, Error),
    AcceptError(Error),
}

/// A TLS server owned by a [`Reactor`](crate::Reactor); create one with
/// [`Context::listen`].
///
/// Accepted connections are server-mode [`SslSocket`]s that start their
/// handshake at once (or stay unencrypted, see
/// [`set_immediate_encryption`](Self::set_immediate_encryption)), with a
/// handshake timeout of 5 seconds by default. They are removed from the
/// reactor automatically after they disconnect (see
/// [`SslSocket::set_auto_delete`]).
///
/// Two ways to take connections, as in Qt: connect to `new_connection`,
/// which fires at accept time with a socket that is still handshaking; or
/// connect to `pending_connection_available` and call
/// [`next_pending_connection`](Self::next_pending_connection) for sockets
/// whose handshake completed. The queue is kept only while
/// `pending_connection_available` has a slot; when it holds
/// [`max_pending_connections`](Self::max_pending_connections) sockets the
/// server stops accepting (the kernel's backlog pushes back) until the
/// program takes some.
pub struct SslServer {
    id: ServerId,
    listener: TcpListener,
    config: SslConfiguration,
    readable: bool,
    immediate_encryption: bool,
    handshake_timeout: Option<Duration>,
    max_pending: usize,
    pending: VecDeque<SocketId>,
    closed: bool,
    events: VecDeque<ServerEvent>,
    new_connection: Signal<SslServer, SocketId>,
    pending_connection_available: Signal<SslServer, ()>,
    error_occurred: Signal<SslServer, (SocketId, Error)>,
    accept_error: Signal<SslServer, Error>,
}

impl SslServer {
    pub(crate) fn bind(address: SocketAddr, config: SslConfiguration) -> Result<Self> {
        if config.local_certificate().is_none() {
            return Err(Error::InvalidConfiguration(
                "a server needs a local certificate and private key".into(),
            ));
        }
        let listener =
            TcpListener::bind(address).map_err(|source| Error::Listen { address, source })?;
        Ok(Self {
            id: ServerId(Default::default()),
            listener,
            config,
            readable: true,
            immediate_encryption: true,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            max_pending: DEFAULT_MAX_PENDING,
            pending: VecDeque::new(),
            closed: false,
            events: VecDeque::new(),
            new_connection: Signal::default(),
            pending_connection_available: Signal::default(),
            error_occurred: Signal::default(),
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

    /// Whether accepted connections start their TLS handshake at once (the
    /// default). With `false` they stay unencrypted until the program calls
    /// [`SslSocket::start_server_encryption`] (server-side STARTTLS).
    pub fn set_immediate_encryption(&mut self, immediate: bool) {
        self.immediate_encryption = immediate;
    }

    /// The handshake timeout given to accepted sockets (default: 5 s;
    /// `None`: no limit).
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.handshake_timeout = timeout;
    }

    /// The handshake timeout given to accepted sockets.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The most encrypted connections kept waiting for
    /// [`next_pending_connection`](Self::next_pending_connection) (default 30).
    pub fn set_max_pending_connections(&mut self, max: usize) {
        self.max_pending = max.max(1);
    }

    /// See [`set_max_pending_connections`](Self::set_max_pending_connections).
    pub fn max_pending_connections(&self) -> usize {
        self.max_pending
    }

    /// Whether encrypted connections wait to be taken.
    pub fn has_pending_connections(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the oldest encrypted connection waiting in the queue.
    pub fn next_pending_connection(&mut self) -> Option<SocketId> {
        self.pending.pop_front()
    }

    /// Stops listening; the server is removed from the reactor when the
    /// current slot returns. Accepted sockets are not affected.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A connection was accepted; the payload is its socket, which is
    /// handshaking (Qt's `startedEncryptionHandshake`). Connect its slots
    /// with [`Context::socket`].
    pub fn new_connection(&mut self) -> &mut Signal<SslServer, SocketId> {
        &mut self.new_connection
    }

    /// A connection completed its handshake and waits in the queue for
    /// [`next_pending_connection`](Self::next_pending_connection).
    pub fn pending_connection_available(&mut self) -> &mut Signal<SslServer, ()> {
        &mut self.pending_connection_available
    }

    /// An accepted connection failed before its handshake completed
    /// (verification refused, timeout, protocol error, …); the socket is
    /// then removed. The socket's own `error` signal fired first.
    pub fn error_occurred(&mut self) -> &mut Signal<SslServer, (SocketId, Error)> {
        &mut self.error_occurred
    }

    /// Accepting a connection failed (too many open files, …), or its TLS
    /// session could not be set up.
    pub fn accept_error(&mut self) -> &mut Signal<SslServer, Error> {
        &mut self.accept_error
    }

    /// Takes a notice from one of the server's sockets.
    pub(crate) fn notify(&mut self, notice: ServerNotice) {
        match notice {
            ServerNotice::Encrypted(id) if self.pending_connection_available.is_connected() => {
                self.pending.push_back(id);
                self.events
                    .push_back(ServerEvent::PendingConnectionAvailable);
            }
            ServerNotice::Encrypted(_) => {}
            ServerNotice::Failed(id, error) => {
                self.pending.retain(|&p| p != id);
                self.events.push_back(ServerEvent::ErrorOccurred(id, error));
            }
        }
    }

    pub(crate) fn service(&mut self, cx: &mut Context, readiness: Option<Readiness>) -> bool {
        if readiness.is_some_and(|r| r.readable) {
            self.readable = true;
        }
        self.accept_all(cx);
        while !cx.has_panic() {
            let Some(event) = self.events.pop_front() else {
                break;
            };
            match event {
                ServerEvent::NewConnection(id) => emit(self, cx, |s| &mut s.new_connection, &id),
                ServerEvent::PendingConnectionAvailable => {
                    emit(self, cx, |s| &mut s.pending_connection_available, &());
                }
                ServerEvent::ErrorOccurred(id, e) => {
                    emit(self, cx, |s| &mut s.error_occurred, &(id, e));
                }
                ServerEvent::AcceptError(e) => emit(self, cx, |s| &mut s.accept_error, &e),
            }
        }
        false
    }

    fn accept_all(&mut self, cx: &mut Context) {
        while self.readable && !self.closed && self.pending.len() < self.max_pending {
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
        let engine = match self.immediate_encryption {
            true => match Engine::server(&self.config) {
                Ok(engine) => Some(engine),
                Err(e) => return self.events.push_back(ServerEvent::AcceptError(e)),
            },
            false => None,
        };
        let (server, config, timeout) = (self.id, self.config.clone(), self.handshake_timeout);
        let id =
            cx.insert_socket(|id| SslSocket::accepted(id, server, config, tcp, engine, timeout));
        self.events.push_back(ServerEvent::NewConnection(id));
    }

    pub(crate) fn retire(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.listener) {
            log::trace!("deregister listener: {e}");
        }
    }
}
