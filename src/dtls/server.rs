//! [`DtlsServer`]: one UDP port serving many DTLS peers.
//!
//! Each datagram is routed by its source address: to the socket of an
//! admitted peer, or, from an unknown address, to the cookie check
//! (`verifier.rs`): an initial ClientHello without a valid cookie gets a
//! HelloVerifyRequest and is forgotten; one with a valid cookie admits its
//! sender, as a new [`DtlsSocket`] announced by `new_connection`. Anything
//! else from an unknown address is dropped. So no state is kept for an
//! address until it proved it receives what is sent to it, and the
//! admitted peers still handshaking are capped.
//!
//! The server only routes: the sockets do their own TLS, timers and
//! sending (on the shared [`Port`]), and leave the port's table when they
//! end.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::hello::is_initial_client_hello;
use super::port::Port;
use super::socket::Settings;
use super::verifier::{DtlsClientVerifier, Verdict};
use super::{DtlsServerId, DtlsSocket, DtlsSocketId};
use crate::config::SslConfiguration;
use crate::context::Context;
use crate::engine::Engine;
use crate::error::{Error, Result, TimeoutKind};
use crate::gnutls::Prestate;
use crate::reactor::Readiness;
use crate::signal::{emit, Signal};

/// The handshake timeout of a server's sockets unless the server is told
/// otherwise: enough for a few retransmissions from 1 s on.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The idle timeout of a server's sockets unless the server is told
/// otherwise: UDP peers that go away say nothing.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How many admitted peers may be handshaking at once by default.
const DEFAULT_MAX_HALF_OPEN: usize = 64;

/// How many datagrams one service round takes from the port.
const RECEIVE_BATCH: usize = 256;

/// A DTLS server owned by a [`Reactor`](crate::Reactor): one UDP port, many
/// peers (Qt's `QDtlsClientVerifier` with the demultiplexing a program
/// writes around it); create one with
/// [`Context::dtls_listen`](crate::Context::dtls_listen).
///
/// A peer is admitted only once its ClientHello echoed the cookie made for
/// its address ([`client_verifier`](Self::client_verifier)); until then the
/// server keeps nothing for it, however many ClientHellos arrive from
/// however many addresses. An admitted peer gets a server-mode
/// [`DtlsSocket`], handshaking when `new_connection` announces it, removed
/// once it disconnects.
///
/// # Limits
///
/// At most [`max_half_open`](Self::set_max_half_open) admitted peers
/// handshake at once (64 by default; a ClientHello beyond that is dropped
/// and its client retries) and at most
/// [`max_connections`](Self::set_max_connections) peers are admitted (no
/// limit by default). A socket's handshake must complete within 10 s and an
/// association that moves no datagram for 5 minutes ends
/// ([`set_handshake_timeout`](Self::set_handshake_timeout),
/// [`set_idle_timeout`](Self::set_idle_timeout)).
///
/// A valid ClientHello of epoch 0 from the address of an established peer
/// is a client that restarted on the same address and port: the old
/// association ends (`disconnected`) and a new socket is made (RFC 6347
/// §4.2.8).
///
/// ```no_run
/// use sslsocket::{Reactor, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SslConfiguration::builder()
///     .add_local_certificate_files("server.pem", "server.key", None)
///     .build()?;
/// let mut reactor = Reactor::new()?;
/// let server = reactor.dtls_listen("0.0.0.0:5684".parse()?, config)?;
/// reactor.dtls_server(server).unwrap().new_connection().connect(|_, cx, &id| {
///     let socket = cx.dtls(id).unwrap();
///     socket.datagram_received().connect(|s, _, datagram| {
///         s.write_datagram(datagram).ok(); // echo
///     });
///     socket.error_occurred().connect(|s, _, e| eprintln!("{:?}: {e}", s.peer_address()));
/// });
/// reactor.run()?;
/// # Ok(()) }
/// ```
pub struct DtlsServer {
    id: DtlsServerId,
    port: Rc<Port>,
    config: SslConfiguration,
    verifier: DtlsClientVerifier,
    /// What each admitted peer's socket gets.
    settings: Settings,
    max_half_open: usize,
    max_connections: Option<usize>,
    closed: bool,
    /// The last receive stopped at its batch size.
    more_to_read: bool,
    events: VecDeque<DtlsSocketId>,
    new_connection: Signal<DtlsServer, DtlsSocketId>,
}

impl DtlsServer {
    pub(super) fn bind(address: SocketAddr, config: SslConfiguration) -> Result<Self> {
        config.check_can_serve("a DTLS server")?;
        config.dtls_priority()?;
        let port = Port::bind(address).map_err(|source| Error::Listen { address, source })?;
        let mut settings = Settings::with_handshake_timeout(DEFAULT_HANDSHAKE_TIMEOUT);
        settings
            .timeouts
            .set(TimeoutKind::Idle, Some(DEFAULT_IDLE_TIMEOUT));
        Ok(Self {
            id: DtlsServerId(Default::default(), Default::default()),
            port: Rc::new(port),
            config,
            verifier: DtlsClientVerifier::new()?,
            settings,
            max_half_open: DEFAULT_MAX_HALF_OPEN,
            max_connections: None,
            closed: false,
            more_to_read: false,
            events: VecDeque::new(),
            new_connection: Signal::default(),
        })
    }

    /// Registers the port under the server's key.
    pub(super) fn attach(&mut self, id: DtlsServerId, registry: &mio::Registry) -> Result<()> {
        self.id = id;
        let token = crate::reactor::token_of(id.0);
        self.port.register(registry, token).map_err(Error::Network)
    }

    /// This server's handle.
    pub fn id(&self) -> DtlsServerId {
        self.id
    }

    /// The address the server receives on (with the port the system picked
    /// when it was given port 0).
    pub fn local_address(&self) -> SocketAddr {
        self.port
            .local_address()
            .expect("a bound UDP socket has a local address")
    }

    /// The configuration the peers' sockets use.
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        &self.config
    }

    /// The cookie check, to rotate or set its secret.
    pub fn client_verifier(&mut self) -> &mut DtlsClientVerifier {
        &mut self.verifier
    }

    /// A peer was admitted (its cookie checked out); the payload is its
    /// socket, handshaking. Connect its slots here.
    pub fn new_connection(&mut self) -> &mut Signal<DtlsServer, DtlsSocketId> {
        &mut self.new_connection
    }

    /// Caps the admitted peers still handshaking (at least 1; default 64).
    pub fn set_max_half_open(&mut self, max: usize) {
        self.max_half_open = max.max(1);
    }

    /// The cap on peers handshaking.
    pub fn max_half_open(&self) -> usize {
        self.max_half_open
    }

    /// Caps the admitted peers (`None`, the default: no cap); at the cap,
    /// new clients' ClientHellos are dropped.
    pub fn set_max_connections(&mut self, max: Option<usize>) {
        self.max_connections = max;
    }

    /// How many peers are admitted (the server's only per-peer state).
    pub fn connection_count(&self) -> usize {
        self.port.counts().0
    }

    /// How many admitted peers are still handshaking.
    pub fn half_open_count(&self) -> usize {
        self.port.counts().1
    }

    /// The handshake timeout of the sockets admitted from now on (default
    /// 10 s).
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.settings.timeouts.set(TimeoutKind::Handshake, timeout);
    }

    /// The idle timeout of the sockets admitted from now on (default 5
    /// minutes; see [`DtlsSocket::set_idle_timeout`]).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.settings.timeouts.set(TimeoutKind::Idle, timeout);
    }

    /// The path MTU of the sockets admitted from now on (see
    /// [`DtlsSocket::set_mtu`]).
    pub fn set_mtu(&mut self, mtu: usize) -> Result<()> {
        self.settings.mtu = Some(Settings::check_mtu(mtu)?);
        Ok(())
    }

    /// The first retransmission timeout of the sockets admitted from now
    /// on (see [`DtlsSocket::set_retransmission_timeout`]).
    pub fn set_retransmission_timeout(&mut self, first: Duration) {
        self.settings.retransmission = first;
    }

    /// Stops serving: the port closes once the current slot returns, and
    /// the peers' sockets end their associations (with `close_notify`).
    /// The server is then removed from the reactor: `dtls_server(id)`
    /// answers `None`.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Receives and routes datagrams, then announces new peers. Returns
    /// whether another round could make progress.
    pub(crate) fn service(&mut self, cx: &mut Context, readiness: Option<Readiness>) -> bool {
        if readiness.is_some_and(|r| r.writable) {
            for key in self.port.take_blocked() {
                cx.mark_dirty(key);
            }
        }
        if self.closed {
            return false;
        }
        self.receive(cx);
        while let Some(id) = self.events.pop_front() {
            emit(self, cx, |s| &mut s.new_connection, &id);
            if cx.has_panic() {
                break;
            }
        }
        self.more_to_read || !self.events.is_empty()
    }

    fn receive(&mut self, cx: &mut Context) {
        self.more_to_read = false;
        for _ in 0..RECEIVE_BATCH {
            match self.port.receive() {
                Ok(Some((datagram, from))) => self.route(cx, datagram, from),
                Ok(None) => return,
                Err(e) => log::debug!("DTLS server {:?}: {e}", self.id),
            }
        }
        self.more_to_read = true;
    }

    /// Hands a datagram to its peer's socket, or to the cookie check.
    fn route(&mut self, cx: &mut Context, datagram: Vec<u8>, from: SocketAddr) {
        let hello = is_initial_client_hello(&datagram);
        match self.port.peer(from) {
            Some(peer) if !(hello && peer.established) => {
                if let Some(socket) = cx.dtls_socket_at(peer.socket) {
                    socket.deliver(datagram);
                }
            }
            _ if hello => self.answer_hello(cx, datagram, from),
            _ => log::trace!("DTLS server {:?}: dropped a datagram from {from}", self.id),
        }
    }

    /// An initial ClientHello from an address with no association in
    /// progress: challenged, or, with a valid cookie, admitted.
    fn answer_hello(&mut self, cx: &mut Context, hello: Vec<u8>, from: SocketAddr) {
        match self.verifier.check(&hello, from) {
            // Never more bytes than came: a spoofer gains nothing by
            // aiming the answer at someone else.
            Ok(Verdict::Challenge(reply)) if reply.len() <= hello.len() => {
                self.port.send_once(&reply, from)
            }
            Ok(Verdict::Challenge(_)) => {}
            Ok(Verdict::Admit(prestate)) => self.admit(cx, prestate, hello, from),
            Err(e) => log::debug!("DTLS server {:?}: no cookie for {from}: {e}", self.id),
        }
    }

    /// Makes a socket for a client that proved its address, unless a cap
    /// is reached (the client retries).
    fn admit(&mut self, cx: &mut Context, prestate: Prestate, hello: Vec<u8>, from: SocketAddr) {
        if let Some(old) = self.port.peer(from) {
            log::debug!("DTLS server {:?}: {from} starts over", self.id);
            if let Some(socket) = cx.dtls_socket_at(old.socket) {
                socket.abort();
            }
        }
        let (connections, half_open) = self.port.counts();
        let full = self.max_connections.is_some_and(|max| connections >= max);
        if full || half_open >= self.max_half_open {
            log::debug!("DTLS server {:?}: at its limit; {from} waits", self.id);
            return;
        }
        let engine = match Engine::dtls_server(&self.config, prestate, hello) {
            Ok(engine) => engine,
            Err(e) => return log::debug!("DTLS server {:?}: {from}: {e}", self.id),
        };
        let port = Rc::clone(&self.port);
        let (config, settings) = (self.config.clone(), self.settings);
        let id = cx.insert_dtls_socket(|id| {
            DtlsSocket::accepted(id, config, port, from, engine, settings)
        });
        self.port.admit(from, id.0);
        log::debug!("DTLS server {:?}: admitted {from} as {id:?}", self.id);
        self.events.push_back(id);
    }

    /// Called when the reactor drops the server: the port closes and the
    /// peers' sockets are woken to end their associations.
    pub(crate) fn retire(&mut self, cx: &mut Context) {
        self.port.close(cx.registry());
        for key in self.port.sockets() {
            cx.mark_dirty(key);
        }
    }
}
