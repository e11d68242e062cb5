//! [`ReactorSource`]: a [`Reactor`] as an event source of a
//! [calloop](https://docs.rs/calloop) event loop (feature `calloop`).
//!
//! # Contract
//! - The source owns a reactor with its own `mio::Poll` and registers a
//!   duplicate of that poll's file descriptor (an epoll instance, readable
//!   while it has events) with calloop, level-triggered. When calloop reports
//!   it, the source runs one non-blocking [`Reactor::step`]: the reactor's
//!   own events, due timers, posted tasks and dirty sockets.
//! - The reactor's timers become one calloop timer, armed for the reactor's
//!   earliest deadline. Before calloop sleeps, the source checks the reactor
//!   for work that needs no event (a socket a program wrote to from another
//!   source's callback, a new timer) and asks to be dispatched at once when
//!   there is some, so nothing waits for an unrelated event.
//! - Signals run inside calloop's dispatch of this source; a slot's
//!   [`Context::quit`](crate::Context::quit) reaches the source's callback as
//!   [`QuitRequested`], with the reactor, and the program decides what
//!   stopping means (typically `LoopSignal::stop`).
//! - This module touches no socket and no GnuTLS object itself: it only
//!   drives the reactor's public entry points.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use calloop::generic::Generic;
use calloop::timer::Timer;
use calloop::{EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory};

use crate::Reactor;

/// The event a [`ReactorSource`] gives its callback: a slot (or the
/// program) called [`Context::quit`](crate::Context::quit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuitRequested;

/// A [`Reactor`] inside a calloop event loop.
///
/// Create the sockets and servers before inserting the source, or reach the
/// reactor afterwards through a [`calloop::Dispatcher`]
/// (`dispatcher.as_source_mut().reactor()`) or from the callback, which gets
/// it as its metadata.
///
/// ```no_run
/// use calloop::EventLoop;
/// use sslsocket::{QuitRequested, Reactor, ReactorSource, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reactor = Reactor::new()?;
/// let id = reactor.ssl_socket(SslConfiguration::default_configuration()?);
/// let socket = reactor.socket(id).unwrap();
/// socket.ready_read().connect(|s, _, _| print!("{}", String::from_utf8_lossy(&s.read_all())));
/// socket.disconnected().connect(|_, cx, _| cx.quit());
/// socket.handshake_complete().connect(|s, _, _| {
///     s.write(b"GET / HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n").unwrap();
/// });
/// socket.connect_to_host_encrypted("example.org", 443)?;
///
/// let mut event_loop: EventLoop<()> = EventLoop::try_new()?;
/// let stop = event_loop.get_signal();
/// event_loop
///     .handle()
///     .insert_source(ReactorSource::new(reactor)?, move |QuitRequested, _reactor, _| {
///         stop.stop()
///     })?;
/// event_loop.run(None, &mut (), |_| {})?;
/// # Ok(()) }
/// ```
pub struct ReactorSource {
    reactor: Reactor,
    /// The reactor's poll, as calloop sees it.
    poll: Generic<OwnedFd>,
    /// The calloop timer for the reactor's earliest deadline, and that
    /// deadline.
    timer: Option<(Timer, Instant)>,
    /// The token of the source's synthetic events (see `before_sleep`).
    wake: Option<Token>,
}

impl ReactorSource {
    /// Wraps `reactor`, which must have its own poll ([`Reactor::new`]; an
    /// [embedded](Reactor::embedded) reactor is driven by its host loop and
    /// is refused with [`io::ErrorKind::InvalidInput`]).
    pub fn new(reactor: Reactor) -> io::Result<Self> {
        let fd = reactor.poll_fd().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an embedded reactor cannot be a calloop source",
            )
        })??;
        Ok(Self {
            reactor,
            poll: Generic::new(fd, Interest::READ, Mode::Level),
            timer: None,
            wake: None,
        })
    }

    /// The reactor, to create or reach sockets, servers and timers.
    pub fn reactor(&mut self) -> &mut Reactor {
        &mut self.reactor
    }

    /// Takes the reactor back (after removing the source from its loop).
    pub fn into_reactor(self) -> Reactor {
        self.reactor
    }

    /// Whether the calloop timer must be armed again: for another deadline,
    /// or because it has fired (calloop fires a timer once).
    fn timer_is_stale(&mut self) -> bool {
        let armed = self.timer.as_ref().map(|&(_, at)| at);
        match (armed, self.reactor.next_deadline()) {
            (Some(armed), Some(wanted)) => armed != wanted || armed <= Instant::now(),
            (armed, wanted) => armed.is_some() != wanted.is_some(),
        }
    }

    fn register_timer(
        &mut self,
        poll: &mut Poll,
        tokens: &mut TokenFactory,
    ) -> calloop::Result<()> {
        self.timer = match self.reactor.next_deadline() {
            Some(at) => {
                let mut timer = Timer::from_deadline(at);
                timer.register(poll, tokens)?;
                Some((timer, at))
            }
            None => None,
        };
        Ok(())
    }

    fn unregister_timer(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        match self.timer.take() {
            Some((mut timer, _)) => timer.unregister(poll),
            None => Ok(()),
        }
    }
}

impl EventSource for ReactorSource {
    type Event = QuitRequested;
    type Metadata = Reactor;
    type Ret = ();
    type Error = io::Error;

    const NEEDS_EXTRA_LIFECYCLE_EVENTS: bool = true;

    /// Any of the source's tokens (its poll, its timer, a synthetic wake)
    /// means the same: step the reactor without waiting.
    fn process_events<F>(
        &mut self,
        _: Readiness,
        _: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut(QuitRequested, &mut Reactor),
    {
        self.reactor.step(Some(Duration::ZERO))?;
        if self.reactor.take_quit() {
            callback(QuitRequested, &mut self.reactor);
        }
        Ok(match self.timer_is_stale() {
            true => PostAction::Reregister,
            false => PostAction::Continue,
        })
    }

    fn register(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.poll.register(poll, tokens)?;
        self.wake = Some(tokens.token());
        self.register_timer(poll, tokens)
    }

    fn reregister(&mut self, poll: &mut Poll, tokens: &mut TokenFactory) -> calloop::Result<()> {
        self.poll.reregister(poll, tokens)?;
        self.wake = Some(tokens.token());
        self.unregister_timer(poll)?;
        self.register_timer(poll, tokens)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.wake = None;
        self.poll.unregister(poll)?;
        self.unregister_timer(poll)
    }

    /// Asks for an immediate dispatch when the reactor has work that no
    /// event will announce, or a deadline the calloop timer does not cover.
    fn before_sleep(&mut self) -> calloop::Result<Option<(Readiness, Token)>> {
        let Some(token) = self.wake else {
            return Ok(None);
        };
        let pending = self.reactor.next_timeout() == Some(Duration::ZERO);
        match pending || self.timer_is_stale() {
            true => Ok(Some((Readiness::EMPTY, token))),
            false => Ok(None),
        }
    }
}
