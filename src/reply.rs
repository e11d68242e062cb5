//! [`Reply`]: the answer to a [`ReactorHandle::call`](crate::ReactorHandle::call),
//! carried back to the calling thread, and [`CallError`], why there is none.
//!
//! The call takes an [`Answer`] to the reactor thread. Whatever happens
//! there, the answer is given exactly once: the closure's result, the
//! socket's absence, or, from `Drop`, a panic or the call being dropped
//! unrun with the reactor. So a waiting thread never waits on a reactor
//! that is gone.

use std::fmt;
use std::thread::{self, ThreadId};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::context::SocketId;

/// Why a [`ReactorHandle::call`](crate::ReactorHandle::call) has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The reactor was dropped before it ran the call.
    ReactorGone,
    /// The reactor has no such socket: it was removed (or the id is of
    /// another reactor). The closure did not run.
    NoSuchSocket(SocketId),
    /// The closure panicked on the reactor thread; the panic continues out
    /// of [`Reactor::run`](crate::Reactor::run) there.
    Panicked,
    /// [`Reply::wait`] was called on the reactor's own thread, which would
    /// wait for itself forever. The call still runs.
    OnReactorThread,
    /// [`Reply::wait_timeout`] gave up.
    Timeout,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReactorGone => f.write_str("the reactor no longer exists"),
            Self::NoSuchSocket(id) => {
                write!(f, "{id} is not in the reactor (removed, or of another one)")
            }
            Self::Panicked => f.write_str("the call panicked on the reactor thread"),
            Self::OnReactorThread => f.write_str(
                "waiting for a call on the reactor's own thread would never end: \
                 call the socket directly there",
            ),
            Self::Timeout => f.write_str("the reactor did not answer in time"),
        }
    }
}

impl std::error::Error for CallError {}

/// The reactor's end of a call: gives the result once, or, when dropped
/// without giving it, says why.
pub(crate) struct Answer<R> {
    sender: Option<Sender<Result<R, CallError>>>,
}

impl<R> Answer<R> {
    pub(crate) fn give(mut self, result: Result<R, CallError>) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(result);
        }
    }
}

impl<R> Drop for Answer<R> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let why = match thread::panicking() {
                true => CallError::Panicked,
                false => CallError::ReactorGone,
            };
            let _ = sender.send(Err(why));
        }
    }
}

/// The result of a [`ReactorHandle::call`](crate::ReactorHandle::call),
/// on its way back from the reactor thread. Wait for it
/// ([`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout)), poll it
/// ([`is_ready`](Self::is_ready)), or drop it: the call runs either way.
pub struct Reply<R> {
    receiver: Receiver<Result<R, CallError>>,
    reactor_thread: ThreadId,
}

impl<R> Reply<R> {
    /// A reply and the answer that completes it.
    pub(crate) fn new(reactor_thread: ThreadId) -> (Self, Answer<R>) {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let reply = Self {
            receiver,
            reactor_thread,
        };
        (
            reply,
            Answer {
                sender: Some(sender),
            },
        )
    }

    /// Whether the answer is there: [`wait`](Self::wait) returns at once.
    pub fn is_ready(&self) -> bool {
        !self.receiver.is_empty()
    }

    /// Blocks until the reactor ran the call, and returns the closure's
    /// result. Returns an error at once when the reactor is gone, and on
    /// the reactor's own thread ([`CallError::OnReactorThread`]) unless the
    /// answer is already there. A reactor that stopped running but was not
    /// dropped may still run the call, so this waits for it (see
    /// [`ReactorHandle::call`](crate::ReactorHandle::call)).
    pub fn wait(self) -> Result<R, CallError> {
        self.wait_until(None)
    }

    /// As [`wait`](Self::wait), giving up after `timeout`
    /// ([`CallError::Timeout`]; the call may still run later).
    pub fn wait_timeout(self, timeout: Duration) -> Result<R, CallError> {
        self.wait_until(Some(timeout))
    }

    fn wait_until(self, timeout: Option<Duration>) -> Result<R, CallError> {
        if thread::current().id() == self.reactor_thread && !self.is_ready() {
            log::warn!(
                "Reply::wait on the reactor thread: {}",
                CallError::OnReactorThread
            );
            return Err(CallError::OnReactorThread);
        }
        let answer = match timeout {
            None => self.receiver.recv().map_err(|_| CallError::ReactorGone),
            Some(timeout) => self.receiver.recv_timeout(timeout).map_err(|e| match e {
                RecvTimeoutError::Timeout => CallError::Timeout,
                RecvTimeoutError::Disconnected => CallError::ReactorGone,
            }),
        };
        answer?
    }
}

impl<R> fmt::Debug for Reply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}
