//! [`ServerLink`]: what a socket a server accepted owes its server — the
//! end of its handshake (for the pending queue and `error_occurred`), and
//! staying alive while it waits in the queue.
//!
//! A socket that waits in its server's pending queue is kept after it
//! disconnects, with its unread data, until the program takes it with
//! `next_pending_connection` (Qt does the same): an id the program gets
//! from the queue always names a live socket. What it announced meanwhile
//! to no slot (`ready_read`, `read_channel_finished`, `disconnected`) is
//! kept and announced again once the program took it, to the slots it
//! connected then. This file only keeps the flags and those events; the
//! server keeps the queue.

use super::dispatch::SocketEvent;
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
    /// What was announced while held with no slot connected to hear it.
    unheard: Vec<SocketEvent>,
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
            unheard: Vec::new(),
        }
    }

    /// Whether the socket waits in the server's queue.
    pub(super) fn is_held(&self) -> bool {
        self.held
    }

    /// Keeps `event`, announced while held to no slot, to announce again
    /// once the program takes the socket.
    pub(super) fn keep_unheard(&mut self, event: SocketEvent) {
        let ready_read = |e: &SocketEvent| matches!(e, SocketEvent::ReadyRead);
        if !(ready_read(&event) && self.unheard.iter().any(ready_read)) {
            self.unheard.push(event);
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
    /// it was held: `None` if not, else whether it disconnected meanwhile
    /// (an auto-deleting socket may go then) and what was announced while
    /// no slot heard it.
    pub(super) fn released(
        &mut self,
        cx: &mut Context,
        id: SocketId,
    ) -> Option<(bool, Vec<SocketEvent>)> {
        if !self.held || cx.server_holds(self.server, id) {
            return None;
        }
        self.held = false;
        let finished = std::mem::take(&mut self.finished);
        Some((finished, std::mem::take(&mut self.unheard)))
    }

    /// The socket was removed from the reactor: the server stops counting it.
    pub(crate) fn removed(&self, cx: &mut Context, id: SocketId) {
        cx.notify_server(self.server, ServerNotice::Closed(id));
    }
}
