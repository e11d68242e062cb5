//! [`Lingering`]: a connection kept open a moment after a fatal alert, so
//! that the alert reaches the peer (the lingering close of nginx and
//! Apache).
//!
//! Closing a TCP socket whose receive buffer holds unread bytes makes Linux
//! send a reset instead of FIN, and drop what it has not sent yet: an alert
//! still waiting for the peer's window is lost, and a peer that is still
//! writing sees its writes or reads fail with `ECONNRESET` rather than our
//! alert and an end of stream. So a socket that fails after queuing a fatal
//! alert hands its stream here: the rest of its output goes out, then FIN,
//! and what the peer still sends is read and thrown away until the peer
//! closes too, [`DISCARD_BUDGET`] bytes were thrown away, or
//! [`LINGER_TIME`] passed. Then the stream is closed.
//!
//! The socket that failed has reported its error and `disconnected`
//! already; this is the reactor's bookkeeping, invisible to the program
//! (not counted by [`Context::object_count`](crate::Context::object_count),
//! not keeping [`Reactor::run`](crate::Reactor::run) going, closed at once
//! when the reactor is dropped). A lingering close holds the stream, at
//! most [`UNSENT_MAX`] bytes of output and a deadline; the reactor keeps at
//! most [`MAX_LINGERING`] of them. This file knows nothing of TLS.

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use crate::buffer::ByteQueue;
use crate::reactor::Readiness;
use crate::send_queue::SendQueue;
use crate::tcp::Tcp;
use crate::timer::{TimerId, Timers};

/// How long a lingering close waits for the peer to read our last bytes
/// and close its side.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// The most bytes read and thrown away before the stream is closed anyway:
/// enough for a peer in the middle of the largest handshake message TLS can
/// declare (16 MiB; refused as soon as it exceeds the handshake's input
/// limit) to finish sending it and then read our alert, as test suites do.
/// Reading it costs a few milliseconds of CPU, once per lingering close.
const DISCARD_BUDGET: usize = 17 * 1024 * 1024;

/// The most bytes one read throws away.
const DISCARD_CHUNK: usize = 16 * 1024;

/// The most unsent output a lingering close keeps: an alert and the end of
/// a flight. With more queued, the peer has not been reading for a while;
/// the stream is closed at once.
const UNSENT_MAX: usize = 32 * 1024;

/// The most lingering closes a reactor keeps; beyond, streams close at once.
pub(crate) const MAX_LINGERING: usize = 256;

/// One stream in its lingering close.
#[derive(Debug)]
pub(crate) struct Lingering {
    tcp: Tcp,
    /// The stream is registered with the poller.
    registered: bool,
    /// Output the failed socket could not send yet.
    unsent: ByteQueue,
    fin_sent: bool,
    /// Bytes the peer may still send before the stream is closed anyway.
    budget: usize,
    deadline: Instant,
    /// The reactor's wake-up at the deadline.
    wake: Option<TimerId>,
    over: bool,
}

impl Lingering {
    /// A lingering close of `tcp` (`registered` with the poller or not)
    /// that first sends `unsent`. `None` when more is unsent than a
    /// lingering close keeps: the stream should close at once.
    pub(crate) fn start(tcp: Tcp, registered: bool, unsent: &SendQueue) -> Option<Self> {
        if unsent.len() > UNSENT_MAX {
            log::debug!("{} bytes unsent: closing at once", unsent.len());
            return None;
        }
        let mut queue = ByteQueue::new();
        let (front, back) = unsent.as_slices();
        queue.extend(front);
        queue.extend(back);
        Some(Self {
            tcp,
            registered,
            unsent: queue,
            fin_sent: false,
            budget: DISCARD_BUDGET,
            deadline: Instant::now() + LINGER_TIME,
            wake: None,
            over: false,
        })
    }

    /// When the stream is closed at the latest.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Registers the stream under `token` (its new owner's), with `wake`,
    /// the reactor's timer for the deadline.
    pub(crate) fn attach(
        &mut self,
        registry: &Registry,
        token: Token,
        wake: TimerId,
    ) -> io::Result<()> {
        self.wake = Some(wake);
        if self.registered {
            return self.tcp.reregister(registry, token);
        }
        self.tcp.register(registry, token)?;
        self.registered = true;
        Ok(())
    }

    /// Whether the close is complete: the stream may be dropped.
    pub(crate) fn is_over(&self) -> bool {
        self.over
    }

    /// Sends what is left, then FIN, and throws away what arrived, as far
    /// as the network allows without blocking.
    pub(crate) fn service(
        &mut self,
        registry: &Registry,
        token: Token,
        readiness: Option<Readiness>,
    ) {
        if let Some(r) = readiness {
            self.tcp.on_ready(r);
        }
        if Instant::now() >= self.deadline {
            log::debug!("lingering close: the peer did not close in time");
            self.over = true;
            return;
        }
        if let Err(e) = self.advance(registry, token) {
            log::debug!("lingering close: {e}");
            self.over = true;
        }
    }

    fn advance(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.tcp.send(&mut self.unsent)?;
        if !self.unsent.is_empty() {
            self.tcp.watch_writable(registry, token)?;
        } else if !self.fin_sent {
            self.tcp.shutdown_write();
            self.fin_sent = true;
        }
        self.discard()?;
        if self.tcp.is_eof() && self.fin_sent {
            log::debug!("lingering close: the peer closed too");
            self.over = true;
        } else if self.budget == 0 {
            log::debug!("lingering close: the peer sent too much; closing");
            self.over = true;
        }
        Ok(())
    }

    /// Reads and throws away what arrived, within the budget.
    fn discard(&mut self) -> io::Result<()> {
        let mut scratch = ByteQueue::new();
        while self.budget > 0 && self.tcp.may_read() {
            let received = self
                .tcp
                .receive(&mut scratch, DISCARD_CHUNK.min(self.budget))?;
            self.budget = self.budget.saturating_sub(received.bytes);
            scratch.consume(received.bytes);
        }
        Ok(())
    }

    /// Removes the stream from the poller and cancels the wake-up; dropping
    /// it then closes it.
    pub(crate) fn retire(&mut self, registry: &Registry, timers: &mut Timers) {
        if self.registered {
            self.tcp.deregister(registry);
        }
        if let Some(wake) = self.wake.take() {
            timers.cancel(wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    use mio::Poll;

    use super::*;

    /// Our connected `Tcp` and the plain peer.
    fn pair() -> (Tcp, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let tcp = Tcp::connected(mio::net::TcpStream::from_std(ours));
        (tcp, peer)
    }

    fn unsent(data: &[u8]) -> SendQueue {
        let mut queue = SendQueue::new();
        queue.extend(data);
        queue
    }

    const READABLE: Readiness = Readiness {
        readable: true,
        writable: false,
        read_closed: false,
    };

    /// The peer wrote what we never read: a plain close would answer with a
    /// reset. The lingering close sends our last bytes, then FIN, and
    /// drains; it ends once the peer closed too.
    #[test]
    fn the_peer_reads_our_last_bytes_and_a_clean_end() {
        let poll = Poll::new().unwrap();
        let (tcp, mut peer) = pair();
        peer.write_all(&[7; 64 * 1024]).unwrap();
        let mut lingering = Lingering::start(tcp, false, &unsent(b"last words")).unwrap();
        lingering.service(poll.registry(), Token(0), Some(READABLE));
        assert!(!lingering.is_over(), "the peer has not closed yet");

        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).expect("FIN, not a reset");
        assert_eq!(got, b"last words");

        peer.shutdown(Shutdown::Write).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lingering.is_over() && Instant::now() < deadline {
            lingering.service(poll.registry(), Token(0), Some(READABLE));
        }
        assert!(lingering.is_over(), "the peer's FIN ends the close");
    }

    #[test]
    fn more_unsent_than_a_lingering_close_keeps_closes_at_once() {
        let (tcp, _peer) = pair();
        let lingering = Lingering::start(tcp, false, &unsent(&[0; UNSENT_MAX + 1]));
        assert!(lingering.is_none());
    }
}
