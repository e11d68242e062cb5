//! Forwarding a socket's signals to another thread as messages on a
//! crossbeam channel.
//!
//! The socket stays on the reactor thread; a worker thread receives
//! [`SocketMessage`]s (with the received data inside) and answers through a
//! [`ReactorHandle`](crate::ReactorHandle), which posts writes back. This is
//! built on the public signal API alone.

use crossbeam_channel::Sender;

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

impl SslSocket {
    /// Connects slots that send every event of this socket to `sender`,
    /// reading received data as it arrives. Messages stop quietly once the
    /// receiver is gone.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// let (sender, receiver) = crossbeam_channel::unbounded();
    /// let id = reactor.ssl_socket(config);
    /// reactor.socket(id).unwrap().forward_to(sender);
    /// // A worker thread: `for message in receiver { … }`, writing back with
    /// // `handle.post(move |cx| { cx.socket(id).map(|s| s.write(b"…")); })`.
    /// # drop(receiver);
    /// ```
    pub fn forward_to(&mut self, sender: Sender<SocketMessage>) {
        relay(self.connected(), &sender, |s, _| {
            SocketMessage::Connected(s.id())
        });
        relay(self.handshake_complete(), &sender, |s, _| {
            SocketMessage::Encrypted(s.id())
        });
        relay(self.ready_read(), &sender, |s, _| {
            SocketMessage::Data(s.id(), s.read_all())
        });
        relay(self.bytes_written(), &sender, |s, &n| {
            SocketMessage::BytesWritten(s.id(), n)
        });
        relay(self.read_channel_finished(), &sender, |s, _| {
            SocketMessage::ReadChannelFinished(s.id())
        });
        relay(self.disconnected(), &sender, |s, _| {
            SocketMessage::Disconnected(s.id())
        });
        relay(self.error(), &sender, |s, e| {
            SocketMessage::Error(s.id(), e.clone())
        });
    }
}

/// Connects a slot to `signal` that sends `message(socket, payload)`.
fn relay<T: 'static>(
    signal: &mut Signal<SslSocket, T>,
    sender: &Sender<SocketMessage>,
    message: fn(&mut SslSocket, &T) -> SocketMessage,
) {
    let sender = sender.clone();
    signal.connect(move |socket, _, payload| {
        let _ = sender.send(message(socket, payload));
    });
}
