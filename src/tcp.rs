//! [`Tcp`]: a non-blocking TCP stream under mio's edge-triggered
//! readiness, with the bookkeeping that edge triggering demands.
//!
//! mio reports a readiness *change* once; after that the stream must be
//! read (or written) until the kernel answers `WouldBlock`, or no further
//! event will come. `Tcp` remembers whether the last read or write stopped
//! at `WouldBlock`: when it did not (a buffer limit stopped it), the owner
//! may go on later without waiting for an event.
//!
//! A connected stream is registered for reading only; interest in writing
//! is added the first time a write stops at a full socket. Most connections
//! never fill their send buffer, and a stream registered for both
//! directions wakes the loop for writable edges nobody waits for (the first
//! poll after registering, the connect completing, the FIN going out): a
//! third of the wake-ups of a short connection. This file moves bytes
//! between the kernel and the byte queues ([`ByteQueue`], and anything
//! that can [`Drain`]) and knows nothing of TLS.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::buffer::{ByteQueue, Drain};
use crate::reactor::Readiness;

/// The most one `read(2)` asks for. Large reads mean few syscalls on bulk
/// transfers; the queue only grows this far when that much is waiting.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// What a drain of the receive side found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Received {
    /// Bytes appended to the queue.
    pub(crate) bytes: usize,
    /// The peer closed its side (FIN).
    pub(crate) eof: bool,
}

/// A TCP stream and its readiness state.
#[derive(Debug)]
pub(crate) struct Tcp {
    stream: TcpStream,
    /// Readable until a read returns `WouldBlock`.
    readable: bool,
    /// Writable until a write returns `WouldBlock`.
    writable: bool,
    /// Known to be connected without asking the kernel: accepted, or
    /// connected inside connect(2).
    connected: bool,
    /// The peer's FIN was read.
    eof: bool,
    /// Registered for writable edges too (while connecting, and once a
    /// write stopped at a full socket).
    write_interest: bool,
    /// mio reported the read side closed (or an error): a short read then
    /// does not mean drained, the FIN or error still waits to be read.
    read_closed: bool,
    /// An error met after bytes were read in the same call: reported by the
    /// next call, so those bytes are processed first (a TLS alert or proxy
    /// reply followed by a reset must be seen).
    deferred_error: Option<io::Error>,
}

impl Tcp {
    /// Starts a non-blocking connect to `address`.
    pub(crate) fn connect(address: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        // Over loopback the handshake completes inside connect(2): then no
        // writable edge is needed to learn it (`finish_connect` will say).
        let at_once = stream.peer_addr().is_ok();
        let mut tcp = Self::new(stream, false);
        tcp.write_interest = !at_once;
        tcp.connected = at_once;
        Ok(tcp)
    }

    /// Wraps a stream that is already connected (accepted, or handed over).
    pub(crate) fn connected(stream: TcpStream) -> Self {
        Self::new(stream, true)
    }

    fn new(stream: TcpStream, connected: bool) -> Self {
        Self {
            stream,
            readable: connected,
            writable: connected,
            connected,
            write_interest: !connected,
            eof: false,
            read_closed: false,
            deferred_error: None,
        }
    }

    /// Registers, edge-triggered, once: for reading, and for writing while
    /// connecting.
    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        registry.register(&mut self.stream, token, interest)
    }

    /// Moves the registration to `token` (a stream handed to a new owner).
    pub(crate) fn reregister(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        registry.reregister(&mut self.stream, token, interest)
    }

    /// Adds interest in writable edges once a write stopped at a full
    /// socket (the registration's current readiness is reported at once, so
    /// room made meanwhile is not missed).
    pub(crate) fn watch_writable(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        if self.writable || self.write_interest {
            return Ok(());
        }
        self.write_interest = true;
        let interest = self.interest();
        registry.reregister(&mut self.stream, token, interest)
    }

    fn interest(&self) -> Interest {
        if self.write_interest {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Removes the stream from the poller.
    pub(crate) fn deregister(&mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.stream) {
            log::trace!("deregister: {e}");
        }
    }

    /// Records a readiness event.
    pub(crate) fn on_ready(&mut self, readiness: Readiness) {
        self.readable |= readiness.readable;
        self.writable |= readiness.writable;
        self.read_closed |= readiness.read_closed;
    }

    /// After a writable event on a connecting stream: `Ok(true)` once
    /// connected, `Ok(false)` while still connecting, `Err` when the attempt
    /// failed (as mio documents: `take_error`, then `peer_addr`; neither is
    /// asked when the stream is known to be connected).
    pub(crate) fn finish_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            self.writable = true;
            return Ok(true);
        }
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                // Nothing to read yet that the registration would not
                // announce: it reports data already waiting with an event.
                self.writable = true;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether an error waits to be reported by the next `receive`.
    pub(crate) fn has_deferred_error(&self) -> bool {
        self.deferred_error.is_some()
    }

    /// Reads on the next `receive` even without a readable event.
    pub(crate) fn assume_readable(&mut self) {
        self.readable = true;
        self.read_closed = true;
    }

    /// Whether a read could find more: the last one stopped at a limit, not
    /// at `WouldBlock`, and the stream has not ended.
    pub(crate) fn may_read(&self) -> bool {
        self.readable && !self.eof && self.deferred_error.is_none()
    }

    /// Whether the peer's FIN was read.
    pub(crate) fn is_eof(&self) -> bool {
        self.eof
    }

    /// Reads into `queue` until `WouldBlock`, EOF, or `queue` holds `limit`
    /// bytes.
    pub(crate) fn receive(&mut self, queue: &mut ByteQueue, limit: usize) -> io::Result<Received> {
        if let Some(e) = self.deferred_error.take() {
            return Err(e);
        }
        let mut received = Received::default();
        while self.readable && !self.eof && queue.len() < limit {
            let room = (limit - queue.len()).min(READ_CHUNK);
            match queue.fill_from(&mut self.stream, room) {
                Ok(0) => {
                    self.eof = true;
                    received.eof = true;
                }
                Ok(n) => {
                    received.bytes += n;
                    // A short read drained the socket (a stream socket hands
                    // out all it has): the next edge will come with new data,
                    // so skip the read that would only say WouldBlock.
                    if n < room && !self.read_closed {
                        self.readable = false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if received.bytes > 0 => {
                    self.deferred_error = Some(e);
                    self.readable = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(received)
    }

    /// Writes from `queue` until it is empty or `WouldBlock`; returns how
    /// many bytes went out.
    pub(crate) fn send(&mut self, queue: &mut impl Drain) -> io::Result<usize> {
        let mut sent = 0;
        while self.writable && !queue.is_empty() {
            let offered = queue.front_len();
            match queue.drain_to(&mut self.stream) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    sent += n;
                    // A short write filled the socket's buffer: wait for the
                    // next writable edge instead of trying again. (A ring
                    // that wrapped offers its rest in a second write.)
                    if n < offered {
                        self.writable = false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    /// Sends FIN: we write no more.
    pub(crate) fn shutdown_write(&self) {
        if let Err(e) = self.stream.shutdown(Shutdown::Write) {
            log::trace!("shutdown: {e}");
        }
    }

    /// Turns Nagle's algorithm off (on by default for our sockets: TLS
    /// writes whole records).
    pub(crate) fn set_nodelay(&self, nodelay: bool) {
        if let Err(e) = self.stream.set_nodelay(nodelay) {
            log::debug!("TCP_NODELAY: {e}");
        }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.local_addr().ok()
    }

    /// The peer's address.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::send_queue::SendQueue;

    /// A loopback pair: our `Tcp` (connected) and the plain peer.
    fn pair() -> (Tcp, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        (Tcp::connected(TcpStream::from_std(client)), peer)
    }

    /// A ring whose live bytes wrap is written in two writes; the first,
    /// complete, write must not be taken for a full socket, or the rest
    /// waits for a writable edge that never comes.
    #[test]
    fn a_wrapped_ring_goes_out_in_one_send() {
        let (mut tcp, mut peer) = pair();
        let mut ring = SendQueue::new();
        ring.extend(&[1; 3000]);
        ring.consume(2500);
        ring.extend(&[2; 3000]);
        assert_ne!(ring.as_slices().1.len(), 0, "the test needs a wrapped ring");

        assert_eq!(tcp.send(&mut ring).unwrap(), 3500);
        assert!(ring.is_empty());
        assert!(tcp.writable, "a complete write leaves the socket writable");

        let mut got = vec![0; 3500];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(got, [vec![1; 500], vec![2; 3000]].concat());
    }
}
