//! [`SslServer`]: a listening socket whose accepted connections become
//! server-mode [`SslSocket`]s owned by the reactor (Qt's `QSslServer`).
//!
//! The server accepts until `WouldBlock` on each readable event, gives
//! every connection its own TLS session from the shared configuration and
//! its default timeouts, and announces it through `new_connection`.
//! Accepted sockets tell their server when their handshake ends and when
//! they are removed (see [`ServerNotice`]); the server keeps the Qt-style
//! queue of ready connections and the count of live ones. It does not
//! otherwise touch them.
//!
//! Accepting recovers on its own: when the process runs out of descriptors
//! (or the kernel of buffers), the server retries on a timer, backing off,
//! instead of waiting for a readiness edge that may never come.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use crate::config::SslConfiguration;
use crate::context::{Context, ServerId, SocketId};
use crate::engine::Engine;
use crate::error::{Error, Result, TimeoutKind};
use crate::pool::shared_listener;
use crate::reactor::Readiness;
use crate::signal::{emit, Signal};
use crate::ssl_socket::{ServerLink, SslSocket, Timeouts};
use crate::tcp::Tcp;
use crate::user_data::UserData;

/// The handshake timeout accepted sockets get unless the server is told
/// otherwise (Qt's default).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The send timeout accepted sockets get unless the server is told
/// otherwise (nginx's `send_timeout`): a client that stops reading is cut
/// after a minute without taking a byte.
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The first wait before accepting again after the process ran out of
/// descriptors; each failure doubles it, up to [`ACCEPT_RETRY_MAX`].
const ACCEPT_RETRY_FIRST: Duration = Duration::from_millis(10);

/// The longest wait between two attempts to accept.
const ACCEPT_RETRY_MAX: Duration = Duration::from_secs(1);

/// The pending-connection queue's default length (Qt's default).
const DEFAULT_MAX_PENDING: usize = 30;

/// What an accepted socket tells its server.
pub(crate) enum ServerNotice {
    /// The handshake completed; with `true`, the socket waits (kept alive)
    /// in the pending queue until the program takes it.
    Encrypted(SocketId, bool),
    /// The connection failed before its handshake completed.
    Failed(SocketId, Error),
    /// The socket was removed from the reactor.
    Closed(SocketId),
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
/// [`set_immediate_encryption`](Self::set_immediate_encryption)). They are
/// removed from the reactor automatically after they disconnect (see
/// [`SslSocket::set_auto_delete`]).
///
/// Two ways to take connections, as in Qt: connect to `new_connection`,
/// which fires at accept time with a socket that is still handshaking; or
/// connect to `pending_connection_available` and call
/// [`next_pending_connection`](Self::next_pending_connection) for sockets
/// whose handshake completed. The queue is kept only while
/// `pending_connection_available` has a slot (connect it before the
/// connections arrive); a socket in it is kept, with its unread data, even
/// if it disconnects, until the program takes it. When the queue holds
/// [`max_pending_connections`](Self::max_pending_connections) sockets the
/// server stops accepting (the kernel's backlog pushes back) until the
/// program takes some. Sockets accepted before the queue filled, still in
/// their handshake, join it when their handshake completes, so the queue
/// can hold a few more than the maximum: the maximum stops accepting, it
/// drops nothing. For a hard bound on connections, use
/// [`set_max_connections`](Self::set_max_connections).
///
/// # Limits
///
/// Every accepted socket gets the server's timeouts, which a slot may
/// change per socket. The defaults bound what a peer can hold without the
/// program's help: the handshake within 5 s (Qt's default), and a client
/// that stops reading is cut after 60 s without taking a byte (nginx's
/// `send_timeout`). Idle, close and the program's own deadlines are off by
/// default, because only the protocol knows how long its peers may be
/// silent; a server whose clients speak first should give them a deadline
/// ([`SslSocket::set_deadline`]) in `new_connection`.
/// [`set_max_connections`](Self::set_max_connections) bounds the live
/// connections (none by default): at the limit the server stops accepting,
/// and new connections wait in the kernel's backlog.
///
/// What one connection can hold at most: the kernel's socket buffers; 512
/// KiB of handshake input; 256 KiB of ciphertext read ahead and about 256
/// KiB queued to send (plus what the program writes beyond it, which it
/// controls through [`SslSocket::bytes_to_write`] and
/// `write_buffer_full`); the plaintext received and not read yet, without
/// limit unless [`SslSocket::set_read_buffer_size`] sets one (the peer is
/// then pushed back by TCP); and GnuTLS's session, about 20 KiB.
pub struct SslServer {
    id: ServerId,
    listener: TcpListener,
    config: SslConfiguration,
    readable: bool,
    immediate_encryption: bool,
    timeouts: Timeouts,
    max_pending: usize,
    pending: VecDeque<SocketId>,
    /// Accepted sockets still in the reactor.
    connections: usize,
    max_connections: Option<usize>,
    /// While accepting fails for want of resources: the wait before the
    /// next attempt and when that attempt is due.
    retry: Option<(Duration, Instant)>,
    closed: bool,
    user_data: UserData,
    events: VecDeque<ServerEvent>,
    new_connection: Signal<SslServer, SocketId>,
    pending_connection_available: Signal<SslServer, ()>,
    error_occurred: Signal<SslServer, (SocketId, Error)>,
    accept_error: Signal<SslServer, Error>,
}

impl SslServer {
    /// A server listening on `address`; with `shared`, its listener joins
    /// the others bound to it with `SO_REUSEPORT` (see `pool.rs`).
    pub(crate) fn bind(
        address: SocketAddr,
        config: SslConfiguration,
        shared: bool,
    ) -> Result<Self> {
        config.check_can_serve("a server")?;
        let listener = match shared {
            false => TcpListener::bind(address),
            true => shared_listener(address),
        }
        .map_err(|source| Error::Listen { address, source })?;
        let mut timeouts = Timeouts::default();
        timeouts.set(TimeoutKind::Handshake, Some(DEFAULT_HANDSHAKE_TIMEOUT));
        timeouts.set(TimeoutKind::Send, Some(DEFAULT_SEND_TIMEOUT));
        Ok(Self {
            id: ServerId(Default::default(), Default::default()),
            listener,
            config,
            readable: true,
            immediate_encryption: true,
            timeouts,
            max_pending: DEFAULT_MAX_PENDING,
            pending: VecDeque::new(),
            connections: 0,
            max_connections: None,
            retry: None,
            closed: false,
            user_data: UserData::default(),
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
    /// [`SslSocket::start_server_encryption`] (server-side STARTTLS); their
    /// handshake timeout then counts from that call, and the plaintext
    /// phase before it is bounded by the idle timeout or a deadline the
    /// program sets.
    pub fn set_immediate_encryption(&mut self, immediate: bool) {
        self.immediate_encryption = immediate;
    }

    /// The handshake timeout given to accepted sockets (default: 5 s;
    /// `None`: no limit). See [`SslSocket::set_handshake_timeout`].
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.timeouts.set(TimeoutKind::Handshake, timeout);
    }

    /// The idle timeout given to accepted sockets (default: none). See
    /// [`SslSocket::set_idle_timeout`].
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.timeouts.set(TimeoutKind::Idle, timeout);
    }

    /// The send timeout given to accepted sockets (default: 60 s). See
    /// [`SslSocket::set_send_timeout`].
    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.timeouts.set(TimeoutKind::Send, timeout);
    }

    /// The close timeout given to accepted sockets (default: none). See
    /// [`SslSocket::set_close_timeout`].
    pub fn set_close_timeout(&mut self, timeout: Option<Duration>) {
        self.timeouts.set(TimeoutKind::Close, timeout);
    }

    /// The handshake timeout given to accepted sockets.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.timeouts.get(TimeoutKind::Handshake)
    }

    /// The timeout of `kind` given to accepted sockets
    /// ([`TimeoutKind::Deadline`] has none: sockets set their own).
    pub fn timeout(&self, kind: TimeoutKind) -> Option<Duration> {
        self.timeouts.get(kind)
    }

    /// The most accepted connections alive at once (default: no limit). At
    /// the limit the server stops accepting; new connections wait in the
    /// kernel's backlog (and beyond it, their SYNs are dropped, so clients
    /// retry) until a connection is removed from the reactor.
    pub fn set_max_connections(&mut self, max: Option<usize>) {
        self.max_connections = max;
    }

    /// See [`set_max_connections`](Self::set_max_connections).
    pub fn max_connections(&self) -> Option<usize> {
        self.max_connections
    }

    /// The accepted connections still in the reactor.
    pub fn connection_count(&self) -> usize {
        self.connections
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

    /// Takes the oldest encrypted connection waiting in the queue. The
    /// socket is live, with whatever it received, even if it disconnected
    /// meanwhile. What it announced while it waited, with no slot connected
    /// to hear it (`ready_read` for data still unread,
    /// `read_channel_finished`, `disconnected`), is announced again right
    /// after the slot that took it returns, to the slots connected then: so
    /// connecting `ready_read` and reading there loses nothing. A socket
    /// that had disconnected is removed after that, unless
    /// [`SslSocket::set_auto_delete`]`(false)` keeps it.
    pub fn next_pending_connection(&mut self) -> Option<SocketId> {
        self.pending.pop_front()
    }

    /// Whether `id` waits in the pending queue.
    pub(crate) fn holds(&self, id: SocketId) -> bool {
        self.pending.contains(&id)
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

    /// Attaches the program's own state to the server, replacing any
    /// earlier value: state the server's slots share (a count of clients,
    /// a routing table) lives with the server, as a socket's lives with
    /// the socket ([`SslSocket::set_user_data`]).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// # let config = sslsocket::SslConfiguration::builder()
    /// #     .system_ca_certificates(false)
    /// #     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    /// #     .build()
    /// #     .unwrap();
    /// # let id = reactor.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    /// let server = reactor.server(id).unwrap();
    /// server.set_user_data(0u64); // clients served so far
    /// server.new_connection().connect(|server, _, _| {
    ///     *server.user_data::<u64>().unwrap() += 1;
    /// });
    /// assert_eq!(server.user_data_ref::<u64>(), Some(&0));
    /// ```
    pub fn set_user_data<T: Any>(&mut self, data: T) {
        self.user_data.set(data);
    }

    /// The program's state attached with [`set_user_data`](Self::set_user_data),
    /// if it is a `T`.
    pub fn user_data<T: Any>(&mut self) -> Option<&mut T> {
        self.user_data.get()
    }

    /// The program's state, read only.
    pub fn user_data_ref<T: Any>(&self) -> Option<&T> {
        self.user_data.get_ref()
    }

    /// A connection was accepted; the payload is its socket, which is
    /// handshaking (Qt's `startedEncryptionHandshake`), or, with
    /// [`set_immediate_encryption`](Self::set_immediate_encryption)`(false)`,
    /// connected in plaintext until the program calls
    /// [`SslSocket::start_server_encryption`] (STARTTLS). Connect its slots
    /// with [`Context::socket`].
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// # let config = sslsocket::SslConfiguration::builder()
    /// #     .system_ca_certificates(false)
    /// #     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    /// #     .build()
    /// #     .unwrap();
    /// # let id = reactor.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    /// # let server = reactor.server(id).unwrap();
    /// server.new_connection().connect(|_, cx, &id| {
    ///     let socket = cx.socket(id).unwrap(); // just accepted: it is there
    ///     socket.ready_read().connect(|s, _, _| {
    ///         let data = s.read_all();
    ///         s.write(&data).ok(); // an echo
    ///     });
    /// });
    /// ```
    pub fn new_connection(&mut self) -> &mut Signal<SslServer, SocketId> {
        &mut self.new_connection
    }

    /// A connection completed its handshake and waits in the queue for
    /// [`next_pending_connection`](Self::next_pending_connection).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// # let config = sslsocket::SslConfiguration::builder()
    /// #     .system_ca_certificates(false)
    /// #     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    /// #     .build()
    /// #     .unwrap();
    /// # let id = reactor.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    /// # let server = reactor.server(id).unwrap();
    /// server.pending_connection_available().connect(|server, cx, _| {
    ///     while let Some(id) = server.next_pending_connection() {
    ///         let Some(socket) = cx.socket(id) else { continue };
    ///         socket.write(b"welcome\n").ok();
    ///         // Also hears what arrived while the socket waited.
    ///         socket.ready_read().connect(|s, _, _| {
    ///             let request = s.read_all();
    ///             s.write(&request).ok();
    ///         });
    ///     }
    /// });
    /// ```
    pub fn pending_connection_available(&mut self) -> &mut Signal<SslServer, ()> {
        &mut self.pending_connection_available
    }

    /// An accepted connection failed before its handshake completed
    /// (verification refused, timeout, protocol error, …); the socket is
    /// then removed. The socket's own `error_occurred` signal fired first.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// # let config = sslsocket::SslConfiguration::builder()
    /// #     .system_ca_certificates(false)
    /// #     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    /// #     .build()
    /// #     .unwrap();
    /// # let id = reactor.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    /// # let server = reactor.server(id).unwrap();
    /// server.error_occurred().connect(|_, _, (id, error)| eprintln!("{id}: {error}"));
    /// ```
    pub fn error_occurred(&mut self) -> &mut Signal<SslServer, (SocketId, Error)> {
        &mut self.error_occurred
    }

    /// Accepting a connection failed (too many open files, …), or its TLS
    /// session could not be set up. When the process runs out of
    /// descriptors or memory, this is emitted once per episode: the server
    /// retries on its own, backing off from 10 ms to 1 s, and accepts the
    /// connections that waited as soon as it can.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
    /// # let config = sslsocket::SslConfiguration::builder()
    /// #     .system_ca_certificates(false)
    /// #     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
    /// #     .build()
    /// #     .unwrap();
    /// # let id = reactor.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    /// # let server = reactor.server(id).unwrap();
    /// server.accept_error().connect(|server, _, error| {
    ///     eprintln!("{}: accept: {error}", server.id());
    /// });
    /// ```
    pub fn accept_error(&mut self) -> &mut Signal<SslServer, Error> {
        &mut self.accept_error
    }

    /// Takes a notice from one of the server's sockets.
    fn notify(&mut self, notice: ServerNotice) {
        match notice {
            ServerNotice::Encrypted(id, true) => {
                self.pending.push_back(id);
                self.events
                    .push_back(ServerEvent::PendingConnectionAvailable);
            }
            ServerNotice::Encrypted(_, false) => {}
            ServerNotice::Failed(id, error) => {
                self.events.push_back(ServerEvent::ErrorOccurred(id, error));
            }
            ServerNotice::Closed(id) => {
                self.connections = self.connections.saturating_sub(1);
                self.pending.retain(|&p| p != id);
            }
        }
    }

    pub(crate) fn service(&mut self, cx: &mut Context, readiness: Option<Readiness>) -> bool {
        if readiness.is_some_and(|r| r.readable) {
            self.readable = true;
        }
        for notice in cx.take_server_notices(self.id) {
            self.notify(notice);
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

    /// Whether the server may accept one more connection now.
    fn may_accept(&self) -> bool {
        let below_max = self
            .max_connections
            .is_none_or(|max| self.connections < max);
        let due = self.retry.is_none_or(|(_, at)| Instant::now() >= at);
        self.readable && !self.closed && self.pending.len() < self.max_pending && below_max && due
    }

    fn accept_all(&mut self, cx: &mut Context) {
        while self.may_accept() {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    log::debug!("server {:?}: accepted {peer}", self.id);
                    self.retry = None;
                    self.adopt(cx, Tcp::connected(stream));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.retry = None;
                    self.readable = false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_out_of_resources(&e) => return self.retry_later(cx, e),
                Err(e) => {
                    // A connection that failed before it was accepted
                    // (ECONNABORTED, a firewall's EPERM, …): report it and
                    // take the next one.
                    log::debug!("server {:?}: accept: {e}", self.id);
                    self.events
                        .push_back(ServerEvent::AcceptError(Error::Network(e)));
                }
            }
        }
    }

    /// Accepting failed for want of descriptors or memory: no readiness
    /// edge announces that some were freed, so the server tries again on a
    /// timer, backing off. The program hears of it once per episode.
    fn retry_later(&mut self, cx: &mut Context, error: io::Error) {
        let wait = match self.retry {
            None => {
                log::debug!("server {:?}: accept: {error}; retrying", self.id);
                self.events
                    .push_back(ServerEvent::AcceptError(Error::Network(error)));
                ACCEPT_RETRY_FIRST
            }
            Some((wait, _)) => (wait * 2).min(ACCEPT_RETRY_MAX),
        };
        let at = Instant::now() + wait;
        self.retry = Some((wait, at));
        cx.wake_at(self.id.0, at);
    }

    fn adopt(&mut self, cx: &mut Context, tcp: Tcp) {
        let engine = match self.immediate_encryption {
            true => match Engine::server(&self.config) {
                Ok(engine) => Some(engine),
                Err(e) => return self.events.push_back(ServerEvent::AcceptError(e)),
            },
            false => None,
        };
        let queued = self.pending_connection_available.is_connected();
        let link = ServerLink::new(self.id, queued);
        let (config, timeouts) = (self.config.clone(), self.timeouts);
        let id =
            cx.insert_socket(|id| SslSocket::accepted(id, link, config, tcp, engine, timeouts));
        self.connections += 1;
        self.events.push_back(ServerEvent::NewConnection(id));
    }

    pub(crate) fn retire(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.listener) {
            log::trace!("deregister listener: {e}");
        }
    }
}

/// Whether accepting failed because the process or the kernel ran out of
/// descriptors, buffers or memory (a condition no readiness edge ends).
fn is_out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
