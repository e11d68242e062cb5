//! [`ServerLink`]: what a socket a server accepted owes its server — the
//! end of its handshake (for the pending queue and `error_occurred`), and
//! staying alive while it waits in the queue.
//!
//! A socket that waits in its server's pending queue is kept after it
//! disconnects, with its unread data, until the program takes it with
//! `next_pending_connection` (Qt does the same): an id the program gets
//! from the queue always names a live socket. This file only keeps the
//! flags; the server keeps the queue.

use crate::context::{Context, ServerId, SocketId};
use crate::error::Error;
use crate::server::ServerNotice;

/// A socket's link to the server that accepted it.
#[derive(Debug)]
pub(crate) struct ServerLink {
    server: ServerId,
    /// The server queues encrypted sockets until the program takes them.
    queued: bool,
    /// The end of the handshake was reported to the server.
    reported: bool,
    /// Waiting in the server's queue.
    held: bool,
    /// It disconnected while held: it goes once the program took it.
    finished: bool,
}

impl ServerLink {
    /// A link to `server`, which queues the socket once it is encrypted
    /// when `queued`.
    pub(crate) fn new(server: ServerId, queued: bool) -> Self {
        Self {
            server,
            queued,
            reported: false,
            held: false,
            finished: false,
        }
    }

    /// The handshake completed: the server queues the socket (if it keeps a
    /// queue) and holds it until the program takes it.
    pub(super) fn encrypted(&mut self, cx: &mut Context, id: SocketId) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        self.held = self.queued;
        cx.notify_server(self.server, ServerNotice::Encrypted(id, self.queued));
    }

    /// The connection failed: before its handshake ended, the server is told.
    pub(super) fn failed(&mut self, cx: &mut Context, id: SocketId, error: &Error) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        cx.notify_server(self.server, ServerNotice::Failed(id, error.clone()));
    }

    /// The socket disconnected; returns whether an auto-deleting socket may
    /// go now (not while it waits in the queue).
    pub(super) fn disconnected(&mut self) -> bool {
        self.finished = self.held;
        !self.held
    }

    /// Whether the program took the socket from the server's queue since
    /// it was held; returns whether an auto-deleting socket that
    /// disconnected meanwhile may go now.
    pub(super) fn released(&mut self, cx: &mut Context, id: SocketId) -> bool {
        if !self.held || cx.server_holds(self.server, id) {
            return false;
        }
        self.held = false;
        std::mem::take(&mut self.finished)
    }

    /// The socket was removed from the reactor: the server stops counting it.
    pub(crate) fn removed(&self, cx: &mut Context, id: SocketId) {
        cx.notify_server(self.server, ServerNotice::Closed(id));
    }
}
