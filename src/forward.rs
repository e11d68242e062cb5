//! Forwarding a socket's signals to another thread as messages: on a
//! crossbeam or standard-library channel, or to any closure.
//!
//! The socket stays on the reactor thread; a worker thread receives
//! [`SocketMessage`]s (with the received data inside) and answers through a
//! [`ReactorHandle`](crate::ReactorHandle), which posts writes back. This is
//! built on the public signal API alone.

use std::cell::RefCell;
use std::rc::Rc;

use crate::context::SocketId;
use crate::error::Error;
use crate::signal::Signal;
use crate::ssl_socket::SslSocket;

/// Something that happened to a socket, as a message for another thread.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SocketMessage {
    /// TCP is connected.
    Connected(SocketId),
    /// The TLS handshake completed.
    Encrypted(SocketId),
    /// Plaintext arrived (already read from the socket).
    Data(SocketId, Vec<u8>),
    /// Plaintext bytes were handed to the network.
    BytesWritten(SocketId, u64),
    /// The peer will send nothing more.
    ReadChannelFinished(SocketId),
    /// The connection is closed.
    Disconnected(SocketId),
    /// Something failed.
    Error(SocketId, Error),
}

/// Where [`SslSocket::forward_to`] delivers a socket's messages: a
/// [`crossbeam_channel::Sender`], a [`std::sync::mpsc::Sender`], or a
/// closure `FnMut(SocketMessage)`.
///
/// Messages are delivered on the reactor thread, from the socket's slots:
/// a closure runs there (it need not be `Send`), and must not block, or the
/// whole reactor waits. A sender whose receiver is gone drops the messages
/// quietly. Give the channel no bound: sending on a full bounded channel
/// blocks the reactor until the receiver catches up.
///
/// A closure that calls methods on its parameter needs the parameter's
/// type written out (`|message: SocketMessage| …`): Rust infers it from
/// `Fn` bounds, not through this trait.
pub trait MessageSink: 'static {
    /// Delivers one message.
    fn deliver(&mut self, message: SocketMessage);
}

impl MessageSink for crossbeam_channel::Sender<SocketMessage> {
    fn deliver(&mut self, message: SocketMessage) {
        let _ = self.send(message);
    }
}

impl MessageSink for std::sync::mpsc::Sender<SocketMessage> {
    fn deliver(&mut self, message: SocketMessage) {
        let _ = self.send(message);
    }
}

impl<F: FnMut(SocketMessage) + 'static> MessageSink for F {
    fn deliver(&mut self, message: SocketMessage) {
        self(message);
    }
}

/// The sink, shared by the slots `forward_to` connects. They never run
/// inside one another, so the cell is never borrowed twice.
type SharedSink = Rc<RefCell<dyn MessageSink>>;

impl SslSocket {
    /// Connects slots that deliver every event of this socket to `sink`
    /// (see [`MessageSink`]), reading received data as it arrives: the data
    /// goes to this sink, and another `ready_read` slot (or a second
    /// `forward_to`) finds nothing left to read. A sink that wants the
    /// data and others that want the events: give the data to one and
    /// connect the others to the signals they need.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// let (sender, receiver) = sslsocket::crossbeam_channel::unbounded();
    /// let id = reactor.ssl_socket(config);
    /// reactor.socket(id).unwrap().forward_to(sender);
    /// // A worker thread: `for message in receiver { … }`, writing back with
    /// // `handle.write(id, b"…")` (see `ReactorHandle`).
    /// # drop(receiver);
    /// ```
    ///
    /// A standard channel works the same; a closure runs on the reactor
    /// thread:
    ///
    /// ```
    /// use sslsocket::SocketMessage;
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config.clone());
    /// # let other = reactor.ssl_socket(config);
    /// let (sender, receiver) = std::sync::mpsc::channel();
    /// reactor.socket(id).unwrap().forward_to(sender);
    /// reactor.socket(other).unwrap().forward_to(|message: SocketMessage| {
    ///     if let SocketMessage::Error(id, error) = message {
    ///         eprintln!("{id}: {error}");
    ///     }
    /// });
    /// # drop(receiver);
    /// ```
    pub fn forward_to(&mut self, sink: impl MessageSink) {
        let sink: SharedSink = Rc::new(RefCell::new(sink));
        relay(self.connected(), &sink, |s, _| {
            Some(SocketMessage::Connected(s.id()))
        });
        relay(self.handshake_complete(), &sink, |s, _| {
            Some(SocketMessage::Encrypted(s.id()))
        });
        // Nothing when another slot took the data first.
        relay(self.ready_read(), &sink, |s, _| {
            let data = s.read_all();
            (!data.is_empty()).then(|| SocketMessage::Data(s.id(), data))
        });
        relay(self.bytes_written(), &sink, |s, &n| {
            Some(SocketMessage::BytesWritten(s.id(), n))
        });
        relay(self.read_channel_finished(), &sink, |s, _| {
            Some(SocketMessage::ReadChannelFinished(s.id()))
        });
        relay(self.disconnected(), &sink, |s, _| {
            Some(SocketMessage::Disconnected(s.id()))
        });
        relay(self.error_occurred(), &sink, |s, e| {
            Some(SocketMessage::Error(s.id(), e.clone()))
        });
    }
}

/// Connects a slot to `signal` that delivers `message(socket, payload)`,
/// if there is one.
fn relay<T: 'static>(
    signal: &mut Signal<SslSocket, T>,
    sink: &SharedSink,
    message: fn(&mut SslSocket, &T) -> Option<SocketMessage>,
) {
    let sink = Rc::clone(sink);
    signal.connect(move |socket, _, payload| {
        if let Some(message) = message(socket, payload) {
            sink.borrow_mut().deliver(message);
        }
    });
}
