//! [`Reactor`]: the single-threaded event loop that owns every socket,
//! server and timer (through its [`Context`]), on its own `mio::Poll` or
//! embedded in a program's.
//!
//! # Contract
//! - The reactor owns its objects; programs hold small `Copy` handles
//!   ([`SocketId`](crate::SocketId), [`ServerId`](crate::ServerId)) that go
//!   stale, harmlessly, when the object is removed.
//! - mio is edge-triggered. An event marks a socket readable or writable
//!   (see `tcp.rs`); the socket then reads and writes until `WouldBlock`.
//! - Servicing an object has two phases: I/O first (read, TLS, write; no
//!   user code), then dispatch of the signals that I/O produced. During both
//!   the object is taken out of its slot, so a slot gets `&mut` to it and
//!   `&mut Context` for everything else, without shared mutable ownership.
//! - Any `&mut` access to an object through the [`Context`] marks it dirty:
//!   before it next waits, the reactor services dirty objects, so data a
//!   slot wrote is flushed and a read that freed buffer space resumes
//!   reading, without waiting for an event.
//! - Work per event is independent of the number of objects.
//! - Every token the reactor registers has its top bit set
//!   ([`Reactor::owns_token`]); an embedding program uses tokens below 2^63.

use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Poll, Registry, Token, Waker};
use slotmap::{Key, KeyData};

use crate::context::{Context, ObjectKey};
use crate::handle::Mailbox;
use crate::resolver::Resolver;

// Tokens carry slot-map keys in 63 bits (see `token_of`).
const _: () = assert!(usize::BITS == 64, "sslsocket needs a 64-bit target");

/// The bit that marks the reactor's tokens.
const TAG: u64 = 1 << 63;

/// The token of the reactor's waker: no live key maps to it (their version
/// is odd, so never 0).
const WAKER: Token = Token(TAG as usize);

/// Readiness reported by mio for one object.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Readiness {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The peer closed its side, or the socket has an error.
    pub(crate) read_closed: bool,
}

impl Readiness {
    fn of(event: &Event) -> Self {
        Self {
            readable: event.is_readable() || event.is_read_closed() || event.is_error(),
            writable: event.is_writable() || event.is_write_closed() || event.is_error(),
            read_closed: event.is_read_closed() || event.is_error(),
        }
    }
}

/// The token for an object: its key's 64-bit form with the top bit used as
/// the tag (the version's top bit is recovered in [`Reactor::key_of`]).
pub(crate) fn token_of(key: ObjectKey) -> Token {
    Token((key.data().as_ffi() | TAG) as usize)
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
/// socket.error_occurred().connect(|_, cx, e| { eprintln!("{e}"); cx.quit() });
/// socket.connect_to_host_encrypted("example.org", 443)?;
/// reactor.run()?;
/// # Ok(()) }
/// ```
pub struct Reactor {
    /// `None` when embedded in a program's own poll.
    poll: Option<Poll>,
    events: Events,
    cx: Context,
}

impl Reactor {
    /// A reactor with its own `mio::Poll`, driven by [`run`](Self::run) or
    /// [`step`](Self::step).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut reactor = Self::on_registry(poll.registry())?;
        reactor.poll = Some(poll);
        Ok(reactor)
    }

    /// A reactor that registers its sockets on a program's own `mio::Poll`
    /// (through `registry`) with tokens that have the top bit set: the
    /// program's own tokens must stay below 2^63
    /// ([`owns_token`](Self::owns_token) tells them apart). The program
    /// passes the reactor's events to
    /// [`process_event`](Self::process_event), calls
    /// [`process_pending`](Self::process_pending) after each poll, and waits
    /// no longer than [`next_timeout`](Self::next_timeout) (`None`: as long
    /// as it likes — host lookups finishing and
    /// [`ReactorHandle`](crate::ReactorHandle) posts from other threads wake
    /// the program's poll through a `mio::Waker` registered here). See
    /// `examples/embed.rs`.
    pub fn embedded(registry: &Registry) -> io::Result<Self> {
        Self::on_registry(registry)
    }

    fn on_registry(registry: &Registry) -> io::Result<Self> {
        let waker = Arc::new(Waker::new(registry, WAKER)?);
        Ok(Self {
            poll: None,
            events: Events::with_capacity(1024),
            cx: Context::new(
                registry.try_clone()?,
                Resolver::new(Arc::clone(&waker)),
                Mailbox::new(waker),
            ),
        })
    }

    /// The context (also reachable through `Deref`).
    pub fn context(&mut self) -> &mut Context {
        &mut self.cx
    }

    /// Runs until [`Context::quit`] is called or nothing is left to do (no
    /// socket, server, timer, host lookup or [`ReactorHandle`](crate::ReactorHandle)).
    /// Clears the quit request on return, so `run` may be called again.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.cx.quit_requested() && !self.cx.is_idle() {
            self.step(None)?;
        }
        self.cx.take_quit();
        Ok(())
    }

    /// Waits for events at most `timeout` (`None`: until something happens),
    /// services them and the timers that are due, and returns. For programs
    /// that interleave their own work with the reactor's. Fails on an
    /// embedded reactor, which its host loop drives.
    pub fn step(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.cx.service_dirty();
        let timeout = match self.next_timeout() {
            Some(t) => Some(timeout.map_or(t, |limit| limit.min(t))),
            None => timeout,
        };
        let Some(poll) = self.poll.as_mut() else {
            return Err(io::Error::other(
                "an embedded reactor is driven by its host loop",
            ));
        };
        match poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            self.handle_event(event);
        }
        self.events = events;
        self.process_pending();
        Ok(())
    }

    /// Whether `token` is one of the reactor's (the top bit is set).
    pub fn owns_token(token: Token) -> bool {
        token.0 as u64 & TAG != 0
    }

    /// Handles one event for one of the reactor's tokens (others are
    /// ignored). For embedding; [`step`](Self::step) calls it.
    pub fn process_event(&mut self, event: &Event) {
        self.handle_event(event);
        self.cx.resume_panic();
    }

    /// Handles one event; a panic in user code stays held (see the crate
    /// docs on panics).
    fn handle_event(&mut self, event: &Event) {
        let token = event.token();
        if !Self::owns_token(token) {
            return;
        }
        if token == WAKER {
            self.cx.on_wake();
        } else if let Some(key) = self.key_of(token) {
            self.cx.service(key, Some(Readiness::of(event)));
        }
    }

    /// Fires the timers that are due and services every object that has
    /// work without an event. For embedding; [`step`](Self::step) calls it.
    ///
    /// A host loop must call it after every poll, events or not: timers,
    /// deadlines, host lookups, posts from other threads, writes made from
    /// the host's own callbacks and the second half of slots' work (a
    /// socket written to from another socket's slot, a server's queue)
    /// happen only here. A loop that forgets it sees sockets stall until
    /// their next network event, and timeouts that never fire.
    pub fn process_pending(&mut self) {
        self.cx.fire_timers();
        self.cx.service_dirty();
        self.cx.resume_panic();
    }

    /// How long the host loop may wait before it must call
    /// [`process_pending`](Self::process_pending): zero when work is
    /// waiting, the time to the next timer, or `None` (no limit).
    pub fn next_timeout(&mut self) -> Option<Duration> {
        if self.cx.has_dirty() || self.cx.quit_requested() {
            return Some(Duration::ZERO);
        }
        self.cx
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether [`Context::quit`] was called; clears the request. For
    /// embedding.
    pub fn take_quit(&mut self) -> bool {
        self.cx.take_quit()
    }

    /// The earliest timer deadline (also the reactor's internal wake-ups).
    #[cfg(feature = "calloop")]
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.cx.timers.next_deadline()
    }

    /// A duplicate of the own poll's file descriptor (`None` when
    /// embedded): readable while the poll has events.
    #[cfg(feature = "calloop")]
    pub(crate) fn poll_fd(&self) -> Option<io::Result<std::os::fd::OwnedFd>> {
        use std::os::fd::AsFd;
        let poll = self.poll.as_ref()?;
        Some(poll.registry().as_fd().try_clone_to_owned())
    }

    /// The key behind a token: the tag took the version's top bit, so both
    /// candidates are tried (only one can be live).
    fn key_of(&self, token: Token) -> Option<ObjectKey> {
        let bits = token.0 as u64 & !TAG;
        [bits, bits | TAG]
            .into_iter()
            .map(|b| ObjectKey::from(KeyData::from_ffi(b)))
            .find(|&key| self.cx.contains(key))
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
