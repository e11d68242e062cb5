//! [`Reactor`]: the single-threaded event loop that owns every socket,
//! server and timer, and [`Context`], the window on it that slots receive.
//!
//! # Contract
//! - The reactor owns its objects in a slot map; programs hold small `Copy`
//!   handles ([`SocketId`], [`ServerId`]) that go stale, harmlessly, when
//!   the object is removed.
//! - mio is edge-triggered. An event marks a socket readable or writable
//!   (see `tcp.rs`); the socket then reads and writes until `WouldBlock`.
//! - Servicing an object has two phases: I/O first (read, TLS, write; no
//!   user code), then dispatch of the signals that I/O produced. During both
//!   the object is taken out of the slot map, so a slot gets `&mut` to it and
//!   `&mut Context` for everything else, without shared mutable ownership.
//! - Any `&mut` access to an object through the [`Context`] marks it dirty:
//!   before it next waits, the reactor services dirty objects, so data a
//!   slot wrote is flushed and a read that freed buffer space resumes
//!   reading, without waiting for an event.
//! - Work per event is independent of the number of objects.

use std::io;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token, Waker};
use slotmap::{Key, KeyData, SlotMap};

use crate::config::SslConfiguration;
use crate::error::{Error, Result};
use crate::resolver::Resolver;
use crate::server::{ServerNotice, SslServer};
use crate::ssl_socket::SslSocket;
use crate::timer::{TimerAction, TimerId, Timers};

// Tokens carry slot-map keys (index and version) in 64 bits.
const _: () = assert!(usize::BITS == 64, "sslsocket needs a 64-bit target");

/// The token of the reactor's waker. Keys of live objects never map to it:
/// their version is odd, so their 64-bit form is never 0.
const WAKER: Token = Token(0);

/// How many I/O-then-dispatch rounds one object gets per service before the
/// others get a turn.
const ROUNDS_PER_SERVICE: usize = 16;

slotmap::new_key_type! {
    /// The key of an object in the reactor.
    pub(crate) struct ObjectKey;
}

/// A handle to an [`SslSocket`] owned by a reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub(crate) ObjectKey);

/// A handle to an [`SslServer`] owned by a reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub(crate) ObjectKey);

pub(crate) enum Object {
    Socket(Box<SslSocket>),
    Server(Box<SslServer>),
}

struct Entry {
    /// `None` while the object is being serviced.
    object: Option<Object>,
    dirty: bool,
    /// Removal was asked for while the object was being serviced.
    doomed: bool,
}

/// Readiness reported by mio for one object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// What slots (and the reactor's owner) can do with the reactor: create,
/// reach and remove sockets and servers, run timers, stop the loop.
///
/// A slot receives `&mut Context` next to `&mut` the object that emitted;
/// that object is not reachable through the context while its slot runs
/// ([`socket`](Self::socket) returns `None` for it).
pub struct Context {
    registry: Registry,
    objects: SlotMap<ObjectKey, Entry>,
    dirty: Vec<ObjectKey>,
    pub(crate) resolver: Resolver,
    pub(crate) timers: Timers,
    quit: bool,
}

/// The event loop.
///
/// The reactor dereferences to its [`Context`]: the program that owns the
/// reactor uses the same calls as slots do.
///
/// ```no_run
/// use sslsocket::{Reactor, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reactor = Reactor::new()?;
/// let id = reactor.ssl_socket(SslConfiguration::default_configuration()?);
/// let socket = reactor.socket(id).unwrap();
/// socket.handshake_complete().connect(|s, _, _| {
///     s.write(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n").unwrap();
/// });
/// socket.ready_read().connect(|s, _, _| print!("{}", String::from_utf8_lossy(&s.read_all())));
/// socket.disconnected().connect(|_, cx, _| cx.quit());
/// socket.error().connect(|_, cx, e| { eprintln!("{e}"); cx.quit() });
/// socket.connect_to_host_encrypted("example.org", 443)?;
/// reactor.run()?;
/// # Ok(()) }
/// ```
pub struct Reactor {
    poll: Poll,
    events: Events,
    ready: Vec<(Token, Readiness)>,
    cx: Context,
}

impl Reactor {
    /// A new reactor with its own `mio::Poll`.
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let registry = poll.registry().try_clone()?;
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            cx: Context {
                registry,
                objects: SlotMap::with_key(),
                dirty: Vec::new(),
                resolver: Resolver::new(waker),
                timers: Timers::default(),
                quit: false,
            },
        })
    }

    /// The context (also reachable through `Deref`).
    pub fn context(&mut self) -> &mut Context {
        &mut self.cx
    }

    /// Runs until [`Context::quit`] is called or nothing is left to do (no
    /// socket, server, timer or host lookup). Clears the quit request on
    /// return, so `run` may be called again.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.cx.quit && !self.cx.is_idle() {
            self.step(None)?;
        }
        self.cx.quit = false;
        Ok(())
    }

    /// Waits for events at most `timeout` (`None`: until something happens),
    /// services them and the timers that are due, and returns. For programs
    /// that interleave their own work with the reactor's.
    pub fn step(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.cx.service_dirty();
        let timeout = self.poll_timeout(timeout);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.ready.clear();
        self.ready.extend(self.events.iter().map(|e| {
            (
                e.token(),
                Readiness {
                    readable: e.is_readable() || e.is_read_closed() || e.is_error(),
                    writable: e.is_writable() || e.is_write_closed() || e.is_error(),
                },
            )
        }));
        for i in 0..self.ready.len() {
            let (token, readiness) = self.ready[i];
            if token == WAKER {
                self.cx.deliver_lookups();
            } else {
                self.cx.service(key_of(token), Some(readiness));
            }
        }
        self.cx.fire_timers();
        self.cx.service_dirty();
        Ok(())
    }

    fn poll_timeout(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.cx.dirty.is_empty() || self.cx.quit {
            return Some(Duration::ZERO);
        }
        let until_timer = self
            .cx
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        match (timeout, until_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Deref for Reactor {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.cx
    }
}

impl DerefMut for Reactor {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.cx
    }
}

pub(crate) fn token_of(key: ObjectKey) -> Token {
    Token(key.data().as_ffi() as usize)
}

fn key_of(token: Token) -> ObjectKey {
    KeyData::from_ffi(token.0 as u64).into()
}

impl Context {
    /// Creates a socket (unconnected) that uses `config` for TLS.
    pub fn ssl_socket(&mut self, config: SslConfiguration) -> SocketId {
        self.insert_socket(|id| SslSocket::new(id, config))
    }

    pub(crate) fn insert_socket(&mut self, make: impl FnOnce(SocketId) -> SslSocket) -> SocketId {
        let key = self.objects.insert_with_key(|key| Entry {
            object: Some(Object::Socket(Box::new(make(SocketId(key))))),
            dirty: false,
            doomed: false,
        });
        self.mark_dirty(key);
        SocketId(key)
    }

    /// The socket behind `id`; `None` when it was removed, or while its own
    /// slot runs (the slot has it already). Marks it for servicing.
    pub fn socket(&mut self, id: SocketId) -> Option<&mut SslSocket> {
        self.mark_dirty(id.0);
        match self.objects.get_mut(id.0)?.object.as_mut()? {
            Object::Socket(socket) => Some(socket),
            Object::Server(_) => None,
        }
    }

    /// Removes a socket at once, closing its connection without a TLS
    /// goodbye (see [`SslSocket::abort`]) and dropping its slots. Removing
    /// the socket whose slot is running takes effect when the slot returns.
    /// Returns whether the socket existed.
    pub fn remove_socket(&mut self, id: SocketId) -> bool {
        self.remove(id.0)
    }

    /// Listens on `address` (port 0 picks a free port) and serves TLS with
    /// `config`, which must hold a local certificate and key.
    pub fn listen(&mut self, address: SocketAddr, config: SslConfiguration) -> Result<ServerId> {
        let mut server = SslServer::bind(address, config)?;
        let key = self.objects.insert(Entry {
            object: None,
            dirty: false,
            doomed: false,
        });
        if let Err(e) = server.attach(ServerId(key), &self.registry, token_of(key)) {
            self.objects.remove(key);
            return Err(Error::Network(e));
        }
        self.objects[key].object = Some(Object::Server(Box::new(server)));
        Ok(ServerId(key))
    }

    /// The server behind `id` (`None` when removed or while its slot runs).
    pub fn server(&mut self, id: ServerId) -> Option<&mut SslServer> {
        match self.objects.get_mut(id.0)?.object.as_mut()? {
            Object::Server(server) => Some(server),
            Object::Socket(_) => None,
        }
    }

    /// Stops listening and removes the server (its accepted sockets stay).
    pub fn remove_server(&mut self, id: ServerId) -> bool {
        self.remove(id.0)
    }

    /// Runs `callback` once, `after` from now.
    pub fn start_timer(
        &mut self,
        after: Duration,
        callback: impl FnMut(&mut Context, TimerId) + 'static,
    ) -> TimerId {
        self.timers.start(
            Instant::now() + after,
            None,
            TimerAction::Callback(Box::new(callback)),
        )
    }

    /// Runs `callback` every `interval` until cancelled.
    pub fn start_repeating_timer(
        &mut self,
        interval: Duration,
        callback: impl FnMut(&mut Context, TimerId) + 'static,
    ) -> TimerId {
        self.timers.start(
            Instant::now() + interval,
            Some(interval),
            TimerAction::Callback(Box::new(callback)),
        )
    }

    /// Cancels a timer; returns whether it was still running.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Asks [`Reactor::run`] to return once the current step is done.
    pub fn quit(&mut self) {
        self.quit = true;
    }

    /// The number of sockets and servers the reactor owns.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Wakes the object `key` when `deadline` passes.
    pub(crate) fn wake_at(&mut self, key: ObjectKey, deadline: Instant) -> TimerId {
        self.timers.start(deadline, None, TimerAction::Wake(key))
    }

    pub(crate) fn mark_dirty(&mut self, key: ObjectKey) {
        if let Some(entry) = self.objects.get_mut(key) {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.objects.is_empty() && !self.timers.has_callbacks() && !self.resolver.is_busy()
    }

    fn remove(&mut self, key: ObjectKey) -> bool {
        let Some(entry) = self.objects.get_mut(key) else {
            return false;
        };
        match entry.object.take() {
            Some(object) => {
                self.objects.remove(key);
                self.retire(object);
            }
            None => entry.doomed = true,
        }
        true
    }

    /// Closes a removed object's I/O.
    fn retire(&mut self, object: Object) {
        match object {
            Object::Socket(mut socket) => socket.retire(&self.registry),
            Object::Server(mut server) => server.retire(&self.registry),
        }
    }

    /// Services every object marked dirty (those marked meanwhile wait for
    /// the next round).
    fn service_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            self.service(key, None);
        }
        if self.dirty.is_empty() {
            self.dirty = dirty;
            self.dirty.clear();
        }
    }

    /// Takes the object out, lets it do its I/O and dispatch its signals,
    /// and puts it back (or drops it, if it was removed meanwhile).
    pub(crate) fn service(&mut self, key: ObjectKey, readiness: Option<Readiness>) {
        let Some(entry) = self.objects.get_mut(key) else {
            return;
        };
        let Some(mut object) = entry.object.take() else {
            return;
        };
        entry.dirty = false;
        let mut readiness = readiness;
        let mut more = false;
        for _ in 0..ROUNDS_PER_SERVICE {
            more = match &mut object {
                Object::Socket(socket) => socket.service(self, readiness.take()),
                Object::Server(server) => server.service(self, readiness.take()),
            };
            if !more {
                break;
            }
        }
        self.restore(key, object, more);
    }

    fn restore(&mut self, key: ObjectKey, object: Object, more: bool) {
        let Some(entry) = self.objects.get_mut(key) else {
            return;
        };
        let deleted = match &object {
            Object::Socket(socket) => socket.is_deleted(),
            Object::Server(server) => server.is_closed(),
        };
        if entry.doomed || deleted {
            self.objects.remove(key);
            self.retire(object);
            return;
        }
        entry.object = Some(object);
        if more {
            self.mark_dirty(key);
        }
    }

    /// Passes a notice from an accepted socket to its server.
    pub(crate) fn notify_server(&mut self, id: ServerId, notice: ServerNotice) {
        if let Some(server) = self.server(id) {
            server.notify(notice);
            self.mark_dirty(id.0);
        }
    }

    fn deliver_lookups(&mut self) {
        for answer in self.resolver.take_answers() {
            if let Some(socket) = self.socket(SocketId(answer.socket)) {
                socket.on_host_lookup(answer.lookup, answer.addresses);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((id, action)) = self.timers.take_due(now) {
            match action {
                TimerAction::Wake(key) => self.mark_dirty(key),
                TimerAction::Callback(mut callback) => {
                    callback(self, id);
                    self.timers.restore(id, TimerAction::Callback(callback));
                }
            }
        }
    }
}
