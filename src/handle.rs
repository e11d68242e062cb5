//! [`ReactorHandle`]: how other threads talk to a reactor (Qt's queued
//! connections).
//!
//! A handle is `Send + Clone`; it posts closures over a crossbeam channel
//! and wakes the reactor with its `mio::Waker`. The reactor runs them, in
//! the order they were posted, on its own thread with `&mut Context`.
//! While any handle is alive, [`Reactor::run`](crate::Reactor::run) keeps
//! waiting for posts even when it owns nothing else.

use std::fmt;
use std::sync::{Arc, Weak};

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::context::Context;

/// A closure posted to the reactor thread.
pub(crate) type Task = Box<dyn FnOnce(&mut Context) + Send>;

/// Posts work to a reactor from any thread.
///
/// ```
/// use sslsocket::Reactor;
/// # fn main() -> std::io::Result<()> {
/// let mut reactor = Reactor::new()?;
/// let handle = reactor.handle();
/// let worker = std::thread::spawn(move || {
///     handle.post(|cx| cx.quit()).expect("the reactor is alive");
/// });
/// reactor.run()?; // returns once the posted closure ran
/// worker.join().unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReactorHandle {
    sender: Sender<Task>,
    liveness: Arc<Liveness>,
}

/// Shared by all handles of one reactor; dropping the last wakes the
/// reactor so `run` can notice it has nothing left to wait for.
struct Liveness {
    waker: Arc<Waker>,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        let _ = self.waker.wake();
    }
}

/// The reactor is gone: the posted closure was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorGone;

impl fmt::Display for ReactorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor no longer exists")
    }
}

impl std::error::Error for ReactorGone {}

impl ReactorHandle {
    /// Runs `task` on the reactor's thread, after the work already posted.
    pub fn post(
        &self,
        task: impl FnOnce(&mut Context) + Send + 'static,
    ) -> Result<(), ReactorGone> {
        self.sender.send(Box::new(task)).map_err(|_| ReactorGone)?;
        self.liveness.waker.wake().map_err(|_| ReactorGone)
    }
}

impl fmt::Debug for ReactorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorHandle").finish_non_exhaustive()
    }
}

/// The reactor's end: receives posted tasks and knows whether handles live.
pub(crate) struct Mailbox {
    sender: Sender<Task>,
    receiver: Receiver<Task>,
    waker: Arc<Waker>,
    liveness: Weak<Liveness>,
}

impl Mailbox {
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Self {
            sender,
            receiver,
            waker,
            liveness: Weak::new(),
        }
    }

    /// A handle; all handles share one liveness token.
    pub(crate) fn handle(&mut self) -> ReactorHandle {
        let liveness = self.liveness.upgrade().unwrap_or_else(|| {
            let fresh = Arc::new(Liveness {
                waker: Arc::clone(&self.waker),
            });
            self.liveness = Arc::downgrade(&fresh);
            fresh
        });
        ReactorHandle {
            sender: self.sender.clone(),
            liveness,
        }
    }

    /// Whether a handle exists or posted work waits.
    pub(crate) fn is_busy(&self) -> bool {
        self.liveness.strong_count() > 0 || !self.receiver.is_empty()
    }

    /// Wakes the reactor's poll (work is left over).
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// The next posted task, if any.
    pub(crate) fn next_task(&self) -> Option<Task> {
        self.receiver.try_recv().ok()
    }
}
