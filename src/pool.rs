//! [`ReactorPool`]: one reactor per core, each on a thread of its own,
//! serving one listening address together; and [`PoolError`], why a pool
//! ended.
//!
//! Every reactor of the pool has its own listener on the address, bound
//! with `SO_REUSEPORT`: the kernel spreads incoming connections over the
//! listeners (by a hash of each connection's addresses and ports), and a
//! connection lives its whole life on the reactor that accepted it. Its
//! signals are emitted on that reactor's thread only, so slots stay
//! single-threaded per reactor and need nothing `Send`.
//!
//! The pool owns the threads, never what runs on them: it reaches each
//! reactor only through its [`ReactorHandle`], starts the threads, runs the
//! program's set-up closures on each, and, when one reactor ends (a
//! [`quit`](Context::quit), an error of its poll, or a panic), stops the
//! others, joins them all and reports the first abnormal end.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};
use mio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::SslConfiguration;
use crate::context::{Context, ServerId};
use crate::error::{Error, Result};
use crate::handle::ReactorHandle;
use crate::reactor::Reactor;
use crate::reply::CallError;
use crate::server::SslServer;

/// The listen backlog of a shared listener (mio's for its own listeners).
const BACKLOG: i32 = 1024;

/// Binds a non-blocking listener that shares `address` with the others bound
/// with `SO_REUSEPORT` by the same user.
pub(crate) fn shared_listener(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// N reactors, each on its own thread, that can serve one address together
/// (one reactor per core is the usual choice:
/// [`std::thread::available_parallelism`]).
///
/// [`listen`](Self::listen) gives every reactor its own [`SslServer`] on
/// the address (through `SO_REUSEPORT`; the kernel picks the listener of
/// each new connection) and runs the program's closure on each reactor's
/// thread to connect the server's slots. A connection is accepted, served
/// and closed by one reactor: its slots run on that thread only, as in a
/// program with a single [`Reactor`]. Reactors share nothing but what the
/// program shares itself (an [`SslConfiguration`] is shared: its credentials,
/// session ticket key and TLS 1.2 session cache serve every reactor).
///
/// The pool runs until one of its reactors ends: a slot calls
/// [`Context::quit`], its poll fails, or user code on it panics. Then the
/// pool stops every other reactor, and [`wait`](Self::wait) (or
/// [`shutdown`](Self::shutdown), which asks them all to stop at once)
/// returns once every thread has ended, with the reactors dropped: every
/// server stopped listening and every socket closed (at once, without a
/// TLS goodbye; a program that wants a graceful end closes its servers and
/// disconnects its sockets first). A panic is never lost: it is what
/// `wait` or `shutdown` returns ([`PoolError::Panicked`]), and a pool
/// dropped without either logs it.
///
/// ```
/// use sslsocket::{ReactorPool, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");
/// let config = SslConfiguration::builder()
///     .system_ca_certificates(false)
///     .add_local_certificate_files(format!("{ca}server.pem"), format!("{ca}server.key"), None)
///     .build()?;
/// let pool = ReactorPool::new(2)?;
/// let address = pool.listen("127.0.0.1:0".parse()?, config, |server, _cx| {
///     // On each reactor's thread: the closures need not be Send.
///     server.new_connection().connect(|_, cx, &id| {
///         let socket = cx.socket(id).unwrap();
///         socket.ready_read().connect(|s, _, _| {
///             let data = s.read_all();
///             s.write(&data).ok(); // an echo
///         });
///     });
/// })?;
/// println!("serving on {address}");
/// pool.shutdown()?; // a real server calls pool.wait()
/// # Ok(()) }
/// ```
pub struct ReactorPool {
    handles: Arc<OnceLock<Vec<ReactorHandle>>>,
    threads: Vec<JoinHandle<()>>,
    ends: Receiver<(usize, End)>,
}

/// How one reactor's thread ended.
enum End {
    Quit,
    Failed(io::Error),
    Panicked(Box<dyn Any + Send>),
}

impl ReactorPool {
    /// Starts `reactors` reactors, each on a thread of its own
    /// (`sslsocket-r0`, `sslsocket-r1`, …). They own nothing yet; give them
    /// servers with [`listen`](Self::listen), or any work with
    /// [`run_on_each`](Self::run_on_each).
    pub fn new(reactors: usize) -> io::Result<Self> {
        if reactors == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pool needs at least one reactor",
            ));
        }
        let handles = Arc::new(OnceLock::new());
        let (end_sender, ends) = crossbeam_channel::unbounded();
        let mut pool = Self {
            handles: Arc::clone(&handles),
            threads: Vec::with_capacity(reactors),
            ends,
        };
        let mut started = Vec::with_capacity(reactors);
        for index in 0..reactors {
            match spawn(index, Arc::clone(&handles), end_sender.clone()) {
                Ok((thread, handle)) => {
                    pool.threads.push(thread);
                    started.push(handle);
                }
                Err(e) => {
                    // Dropping the pool stops the reactors already started.
                    let _ = handles.set(started);
                    return Err(e);
                }
            }
        }
        let _ = handles.set(started);
        Ok(pool)
    }

    /// How many reactors the pool runs.
    pub fn reactor_count(&self) -> usize {
        self.threads.len()
    }

    /// The handles of the pool's reactors, in order: post work to one of
    /// them from any thread.
    pub fn handles(&self) -> &[ReactorHandle] {
        self.handles.get().map_or(&[], Vec::as_slice)
    }

    /// Runs `task` on every reactor's thread, with the reactor's index
    /// (from 0), after the work already posted to it; it does not wait.
    /// Fails when a reactor is gone (the pool is ending).
    pub fn run_on_each(
        &self,
        task: impl Fn(&mut Context, usize) + Send + Sync + 'static,
    ) -> std::result::Result<(), crate::ReactorGone> {
        let task = Arc::new(task);
        for (index, handle) in self.handles().iter().enumerate() {
            let task = Arc::clone(&task);
            handle.post(move |cx| task(cx, index))?;
        }
        Ok(())
    }

    /// Listens on `address` with every reactor (port 0: the system picks
    /// one port for all) and returns the address bound. On each reactor's
    /// thread, `configure` gets that reactor's new [`SslServer`] and its
    /// [`Context`], as a slot would: connect the server's signals there,
    /// set its timeouts and limits (per reactor: `set_max_connections(100)`
    /// allows 100 on each).
    ///
    /// Waits until every reactor listens; on failure, the servers already
    /// made are removed. Call it from a thread outside the pool (a reactor
    /// cannot wait for itself).
    ///
    /// An address bound with `SO_REUSEPORT` can be joined by another socket
    /// that sets the option too: Linux allows that only to processes of the
    /// same effective user, which then take a share of the connections. A
    /// listener bound without the option (another program's, or
    /// [`Context::listen`]) holds the address alone, and this fails.
    pub fn listen(
        &self,
        address: SocketAddr,
        config: SslConfiguration,
        configure: impl Fn(&mut SslServer, &mut Context) + Send + Sync + 'static,
    ) -> Result<SocketAddr> {
        let configure = Arc::new(configure);
        let mut bound = address;
        let mut servers = Vec::new();
        for handle in self.handles() {
            let (config, configure) = (config.clone(), Arc::clone(&configure));
            let reply = handle.request(move |cx| {
                let served = cx.listen_shared(bound, config).map(|id| {
                    let local = cx.server(id).map(|s| s.local_address());
                    cx.with_server(id, |server, cx| configure(server, cx));
                    (id, local)
                });
                match cx.has_panic() {
                    true => Err(CallError::Panicked),
                    false => Ok(served),
                }
            });
            match reply.wait() {
                Ok(Ok((id, local))) => {
                    bound = local.unwrap_or(bound);
                    servers.push((handle, id));
                }
                Ok(Err(e)) => return Err(remove(servers, e)),
                Err(e) => return Err(remove(servers, not_listening(address, e))),
            }
        }
        Ok(bound)
    }

    /// Blocks until the pool ends: one reactor quit, failed or panicked,
    /// and every thread has stopped. Returns the first abnormal end.
    pub fn wait(mut self) -> std::result::Result<(), PoolError> {
        self.join()
    }

    /// Stops every reactor (each finishes the step it is in), joins the
    /// threads and returns the first abnormal end, if any.
    pub fn shutdown(mut self) -> std::result::Result<(), PoolError> {
        stop_all(&self.handles);
        self.join()
    }

    /// Joins every thread; the first end other than a quit is the result.
    fn join(&mut self) -> std::result::Result<(), PoolError> {
        for thread in self.threads.drain(..) {
            // A thread ends by sending its end, so it cannot panic itself.
            let _ = thread.join();
        }
        let mut outcome = Ok(());
        for (reactor, end) in self.ends.try_iter() {
            let error = match end {
                End::Quit => continue,
                End::Failed(error) => PoolError::Failed { reactor, error },
                End::Panicked(payload) => PoolError::Panicked { reactor, payload },
            };
            if outcome.is_ok() {
                outcome = Err(error);
            }
        }
        outcome
    }
}

impl Drop for ReactorPool {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        stop_all(&self.handles);
        if let Err(e) = self.join() {
            log::error!("a reactor pool dropped without wait or shutdown ended: {e}");
        }
    }
}

impl fmt::Debug for ReactorPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorPool")
            .field("reactors", &self.reactor_count())
            .finish_non_exhaustive()
    }
}

/// Starts reactor `index` on its thread; returns once it runs.
fn spawn(
    index: usize,
    siblings: Arc<OnceLock<Vec<ReactorHandle>>>,
    ends: Sender<(usize, End)>,
) -> io::Result<(JoinHandle<()>, ReactorHandle)> {
    let (ready, started) = crossbeam_channel::bounded(1);
    let thread = thread::Builder::new()
        .name(format!("sslsocket-r{index}"))
        .spawn(move || {
            let mut reactor = match Reactor::new() {
                Ok(reactor) => reactor,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let _ = ready.send(Ok(reactor.handle()));
            let end = match catch_unwind(AssertUnwindSafe(|| reactor.run())) {
                Ok(Ok(())) => End::Quit,
                Ok(Err(error)) => End::Failed(error),
                Err(payload) => End::Panicked(payload),
            };
            // Closes every socket and listener of this reactor.
            drop(reactor);
            let _ = ends.send((index, end));
            stop_all(&siblings);
        })?;
    let handle = started
        .recv()
        .map_err(|_| io::Error::other("a reactor thread ended before it started"))??;
    Ok((thread, handle))
}

/// Asks every reactor of the pool to quit (those gone are skipped).
fn stop_all(handles: &OnceLock<Vec<ReactorHandle>>) {
    for handle in handles.get().into_iter().flatten() {
        let _ = handle.post(Context::quit);
    }
}

/// Removes the servers a failed [`ReactorPool::listen`] made, and returns
/// its error.
fn remove(servers: Vec<(&ReactorHandle, ServerId)>, error: Error) -> Error {
    for (handle, id) in servers {
        let _ = handle.post(move |cx| {
            cx.remove_server(id);
        });
    }
    error
}

/// The error of a listen whose reactor gave no answer.
fn not_listening(address: SocketAddr, why: CallError) -> Error {
    Error::Listen {
        address,
        source: io::Error::other(why),
    }
}

/// Why a [`ReactorPool`] ended other than by a quit.
#[non_exhaustive]
pub enum PoolError {
    /// User code on reactor `reactor` (a slot, a timer, a posted task, a
    /// `listen` closure) panicked; `payload` is the panic's, as
    /// [`std::thread::JoinHandle::join`] gives it (re-raise it with
    /// [`std::panic::resume_unwind`]).
    Panicked {
        /// The reactor's index.
        reactor: usize,
        /// What the panic carried.
        payload: Box<dyn Any + Send>,
    },
    /// The poll of reactor `reactor` failed.
    Failed {
        /// The reactor's index.
        reactor: usize,
        /// The poll's error.
        error: io::Error,
    },
}

impl PoolError {
    /// The panic's message, when it carried one (`panic!` with a string).
    pub fn panic_message(&self) -> Option<&str> {
        let Self::Panicked { payload, .. } = self else {
            return None;
        };
        payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked { reactor, .. } => {
                let message = self.panic_message().unwrap_or("(no message)");
                write!(f, "user code on reactor {reactor} panicked: {message}")
            }
            Self::Failed { reactor, error } => write!(f, "reactor {reactor} failed: {error}"),
        }
    }
}

impl fmt::Debug for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PoolError {}
