//! [`ReactorHandle`]: how other threads talk to a reactor (Qt's queued
//! connections).
//!
//! A handle is `Send + Clone`; it posts closures over a crossbeam channel
//! and wakes the reactor with its `mio::Waker`. The reactor runs them, in
//! the order they were posted, on its own thread with `&mut Context`.
//! While any handle is alive, [`Reactor::run`](crate::Reactor::run) keeps
//! waiting for posts even when it owns nothing else. Calls on one socket
//! carry their result back as a [`Reply`] (`reply.rs`).

use std::fmt;
use std::sync::{Arc, Weak};
use std::thread::{self, ThreadId};

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::context::{Context, SocketId};
use crate::error::Result;
use crate::reply::{CallError, Reply};
use crate::ssl_socket::SslSocket;

/// A closure posted to the reactor thread.
pub(crate) type Task = Box<dyn FnOnce(&mut Context) + Send>;

/// Posts work to a reactor from any thread: any closure
/// ([`post`](Self::post)), or a call on one socket whose result comes back
/// ([`call`](Self::call), [`write`](Self::write),
/// [`disconnect_from_host`](Self::disconnect_from_host)).
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
    /// Where the reactor lives (it is not `Send`): a reply waited for there
    /// would never come.
    reactor_thread: ThreadId,
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

    /// Runs `call` with the socket `id` on the reactor's thread, after the
    /// work already posted, and carries its result back: wait for it with
    /// [`Reply::wait`], or drop the reply. When the socket was removed the
    /// closure does not run and the reply says
    /// [`CallError::NoSuchSocket`]; when the reactor is gone, or goes before
    /// running the call, [`CallError::ReactorGone`], at once.
    ///
    /// A reactor that stopped (its `run` returned after `quit`) but still
    /// exists may run the call later, when the program steps or runs it
    /// again, so the reply waits for it: a worker that may call after the
    /// quit should use [`Reply::wait_timeout`], or the program should drop
    /// the reactor before it joins the worker (the reply then says
    /// `ReactorGone`).
    ///
    /// ```
    /// use sslsocket::{Reactor, SocketState, SslConfiguration};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reactor = Reactor::new()?;
    /// let id = reactor.ssl_socket(SslConfiguration::builder().system_ca_certificates(false).build()?);
    /// let handle = reactor.handle();
    /// let worker = std::thread::spawn(move || {
    ///     let state = handle.call(id, |socket| socket.state()).wait();
    ///     handle.post(|cx| cx.quit()).unwrap();
    ///     state
    /// });
    /// reactor.run()?;
    /// assert_eq!(worker.join().unwrap(), Ok(SocketState::Unconnected));
    /// # Ok(()) }
    /// ```
    pub fn call<R: Send + 'static>(
        &self,
        id: SocketId,
        call: impl FnOnce(&mut SslSocket) -> R + Send + 'static,
    ) -> Reply<R> {
        self.request(move |cx| cx.socket(id).map(call).ok_or(CallError::NoSuchSocket(id)))
    }

    /// Runs `task` on the reactor's thread and carries its result back.
    pub(crate) fn request<R: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Context) -> Result<R, CallError> + Send + 'static,
    ) -> Reply<R> {
        let (reply, answer) = Reply::new(self.reactor_thread);
        // A task that cannot be posted is dropped: its answer says why.
        let _ = self.post(move |cx| answer.give(task(cx)));
        reply
    }

    /// Writes `data` to the socket `id` ([`SslSocket::write`]); the reply
    /// tells whether the socket took it. The reactor flushes it after the
    /// call.
    ///
    /// ```
    /// # use sslsocket::{Reactor, SslConfiguration};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut reactor = Reactor::new()?;
    /// # let id = reactor.ssl_socket(SslConfiguration::builder().system_ca_certificates(false).build()?);
    /// let handle = reactor.handle();
    /// let worker = std::thread::spawn(move || {
    ///     // Before the connection exists, data is queued: accepted.
    ///     let accepted = handle.write(id, "hello").wait();
    ///     handle.post(|cx| cx.quit()).unwrap();
    ///     accepted.map(|written| written.is_ok())
    /// });
    /// reactor.run()?;
    /// assert_eq!(worker.join().unwrap(), Ok(true));
    /// # Ok(()) }
    /// ```
    pub fn write(&self, id: SocketId, data: impl Into<Vec<u8>>) -> Reply<Result<usize>> {
        let data = data.into();
        self.call(id, move |socket| socket.write(&data))
    }

    /// Closes the socket `id` gracefully
    /// ([`SslSocket::disconnect_from_host`]); the reply tells whether the
    /// socket was still there.
    pub fn disconnect_from_host(&self, id: SocketId) -> Reply<()> {
        self.call(id, SslSocket::disconnect_from_host)
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
    /// The thread that created the reactor, which cannot leave it.
    reactor_thread: ThreadId,
}

impl Mailbox {
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Self {
            sender,
            receiver,
            waker,
            liveness: Weak::new(),
            reactor_thread: thread::current().id(),
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
            reactor_thread: self.reactor_thread,
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
