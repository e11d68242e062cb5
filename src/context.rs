//! [`Context`]: the reactor's objects (sockets and servers in a slot map),
//! timers, host lookups and posted tasks, and what slots may do with them.
//!
//! The context services one object at a time: it takes the object out of
//! its slot, lets it do its I/O and dispatch its signals with `&mut` access
//! to everything else, and puts it back. It also keeps the streams of
//! failed sockets in their lingering close (`lingering.rs`) as objects of
//! their own, invisible to the program. It knows nothing of TLS.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use mio::Registry;
use slotmap::{Key, SlotMap};

use crate::config::SslConfiguration;
use crate::dtls::{DtlsServer, DtlsSocket};
use crate::error::{Error, Result};
use crate::handle::{Mailbox, ReactorHandle};
use crate::lingering::{Lingering, MAX_LINGERING};
use crate::reactor::{token_of, Readiness};
use crate::resolver::Resolver;
use crate::server::{ServerNotice, SslServer};
use crate::ssl_socket::SslSocket;
use crate::timer::{later, TimerAction, TimerId, Timers};

/// How many I/O-then-dispatch rounds one object gets per service before the
/// others get a turn.
const ROUNDS_PER_SERVICE: usize = 16;

slotmap::new_key_type! {
    /// The key of an object in the reactor.
    pub(crate) struct ObjectKey;
}

/// A handle to an [`SslSocket`] owned by a reactor.
///
/// It prints as `socket#3` (`Display`: the socket's slot; a later socket
/// that reuses the slot once this one is removed prints as `socket#3.2`,
/// then `socket#3.3`, …) or `SocketId(3v1)` (`Debug`: the slot and
/// slotmap's version of it). Both are unique for the reactor's life.
///
/// ```
/// # let mut reactor = sslsocket::Reactor::new().unwrap();
/// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
/// let id = reactor.ssl_socket(config);
/// assert!(id.to_string().starts_with("socket#"));
/// assert!(format!("{id:?}").starts_with("SocketId("));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub(crate) ObjectKey, pub(crate) ReactorTag);

/// A handle to an [`SslServer`] owned by a reactor; it prints as
/// `server#3` (`Display`) or `ServerId(3v1)` (`Debug`), as
/// [`SocketId`] does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub(crate) ObjectKey, pub(crate) ReactorTag);

/// Which reactor made an id. Every reactor's objects take the same slot
/// keys, so an id alone would reach another reactor's object (a socket
/// of another thread of a pool); each id also carries its reactor's tag,
/// and a reactor finds nothing for an id that is not its own.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ReactorTag(u64);

impl ReactorTag {
    /// A tag no other reactor of the process has (0 is no reactor's).
    fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, AtomicOrdering::Relaxed))
    }
}

/// `key` as `Display` shows it: its slot (slotmap's index, the `3` of
/// `3v1`), followed by `.N` for the Nth object to use that slot (N > 1;
/// slotmap's versions of a slot in use are 1, 3, 5, …).
pub(crate) struct Label(pub(crate) ObjectKey);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ffi = self.0.data().as_ffi();
        let (slot, version) = (ffi as u32, (ffi >> 32) as u32);
        match version / 2 + 1 {
            1 => write!(f, "{slot}"),
            nth => write!(f, "{slot}.{nth}"),
        }
    }
}

/// `Display` (`prefix#` and the [`Label`]) and `Debug` (`Type(3v1)`: the
/// slot and its version) for a handle type wrapping an [`ObjectKey`].
macro_rules! handle_format {
    ($type:ident, $prefix:literal) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "#{}"), $crate::context::Label(self.0))
            }
        }

        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use slotmap::Key;
                write!(f, concat!(stringify!($type), "({:?})"), self.0.data())
            }
        }
    };
}
pub(crate) use handle_format;

handle_format!(SocketId, "socket");
handle_format!(ServerId, "server");

pub(crate) enum Object {
    Socket(Box<SslSocket>),
    Server(Box<SslServer>),
    /// The stream of a socket that failed, closing after its alert.
    Lingering(Box<Lingering>),
    /// A DTLS socket (`dtls/`).
    Dtls(Box<DtlsSocket>),
    /// A DTLS server's UDP port.
    DtlsServer(Box<DtlsServer>),
}

struct Entry {
    /// `None` while the object is being serviced.
    object: Option<Object>,
    dirty: bool,
    /// Removal was asked for while the object was being serviced.
    doomed: bool,
}

/// What slots (and the reactor's owner) can do with the reactor: create,
/// reach and remove sockets and servers, run timers, stop the loop.
///
/// A slot receives `&mut Context` next to `&mut` the object that emitted;
/// that object is not reachable through the context while its slot runs
/// ([`socket`](Self::socket) returns `None` for it).
pub struct Context {
    registry: Registry,
    objects: SlotMap<ObjectKey, Entry>,
    dirty: Vec<ObjectKey>,
    /// How many of the objects are lingering closes.
    lingering: usize,
    /// Notices from accepted sockets for their servers.
    server_notices: Vec<(ServerId, ServerNotice)>,
    pub(crate) resolver: Resolver,
    pub(crate) timers: Timers,
    mailbox: Mailbox,
    quit: bool,
    /// A panic caught in user code, re-raised once the reactor is consistent.
    panic: Option<Box<dyn Any + Send>>,
    /// Carried by every id this reactor hands out.
    tag: ReactorTag,
}

impl Context {
    pub(crate) fn new(registry: Registry, resolver: Resolver, mailbox: Mailbox) -> Self {
        Self {
            registry,
            objects: SlotMap::with_key(),
            dirty: Vec::new(),
            lingering: 0,
            server_notices: Vec::new(),
            resolver,
            timers: Timers::default(),
            mailbox,
            quit: false,
            panic: None,
            tag: ReactorTag::unique(),
        }
    }

    /// The tag of this reactor's ids.
    pub(crate) fn tag(&self) -> ReactorTag {
        self.tag
    }

    /// The key behind an id of this reactor; `None` for another's.
    pub(crate) fn own(&self, key: ObjectKey, tag: ReactorTag) -> Option<ObjectKey> {
        (tag == self.tag).then_some(key)
    }

    /// Creates a socket (unconnected) that uses `config` for TLS.
    pub fn ssl_socket(&mut self, config: SslConfiguration) -> SocketId {
        self.insert_socket(|id| SslSocket::new(id, config))
    }

    pub(crate) fn insert_socket(&mut self, make: impl FnOnce(SocketId) -> SslSocket) -> SocketId {
        let tag = self.tag;
        let key = self.objects.insert_with_key(|key| Entry {
            object: Some(Object::Socket(Box::new(make(SocketId(key, tag))))),
            dirty: false,
            doomed: false,
        });
        self.mark_dirty(key);
        SocketId(key, tag)
    }

    /// The socket behind `id`; `None` when it was removed, or while its own
    /// slot runs (the slot has it already). Marks it for servicing.
    ///
    /// The socket borrows the context: finish with it before calling
    /// another `Context` method (`quit`, `start_timer`, another
    /// `socket`), and look it up again afterwards if needed; lookups are
    /// cheap.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let cx = reactor.context();
    /// let encrypted = cx.socket(id).is_some_and(|s| s.is_encrypted());
    /// if !encrypted {
    ///     cx.quit(); // the socket's borrow ended above
    /// }
    /// ```
    pub fn socket(&mut self, id: SocketId) -> Option<&mut SslSocket> {
        let key = self.own(id.0, id.1)?;
        self.mark_dirty(key);
        match self.objects.get_mut(key)?.object.as_mut()? {
            Object::Socket(socket) => Some(socket),
            _ => None,
        }
    }

    /// Removes a socket at once, closing its connection without a TLS
    /// goodbye (see [`SslSocket::abort`]) and dropping its slots. Removing
    /// the socket whose slot is running takes effect when the slot returns.
    /// Returns whether the socket existed.
    pub fn remove_socket(&mut self, id: SocketId) -> bool {
        self.own(id.0, id.1).is_some_and(|key| self.remove(key))
    }

    /// Listens on `address` (port 0 picks a free port) and serves TLS with
    /// `config`, which must hold a local certificate and key.
    pub fn listen(&mut self, address: SocketAddr, config: SslConfiguration) -> Result<ServerId> {
        self.insert_server(SslServer::bind(address, config, false)?)
    }

    /// Listens on `address` beside the other reactors of a pool, each with
    /// its own listener (`SO_REUSEPORT`).
    pub(crate) fn listen_shared(
        &mut self,
        address: SocketAddr,
        config: SslConfiguration,
    ) -> Result<ServerId> {
        self.insert_server(SslServer::bind(address, config, true)?)
    }

    fn insert_server(&mut self, mut server: SslServer) -> Result<ServerId> {
        let key = self.objects.insert(Entry {
            object: None,
            dirty: false,
            doomed: false,
        });
        if let Err(e) = server.attach(ServerId(key, self.tag), &self.registry, token_of(key)) {
            self.objects.remove(key);
            return Err(Error::Network(e));
        }
        self.objects[key].object = Some(Object::Server(Box::new(server)));
        Ok(ServerId(key, self.tag))
    }

    /// The server behind `id` (`None` when removed or while its slot runs).
    /// Marks it for servicing, so what is changed through it (a pending
    /// connection taken, `close`, a new connection limit) takes effect.
    pub fn server(&mut self, id: ServerId) -> Option<&mut SslServer> {
        let key = self.own(id.0, id.1)?;
        self.mark_dirty(key);
        match self.objects.get_mut(key)?.object.as_mut()? {
            Object::Server(server) => Some(server),
            _ => None,
        }
    }

    /// Runs `configure` with the server `id` taken out of its slot, as a
    /// slot of the server would run; a panic is held like a slot's. Returns
    /// whether the server was there.
    pub(crate) fn with_server(
        &mut self,
        id: ServerId,
        configure: impl FnOnce(&mut SslServer, &mut Context),
    ) -> bool {
        let Some(entry) = self
            .own(id.0, id.1)
            .and_then(|key| self.objects.get_mut(key))
        else {
            return false;
        };
        if !matches!(entry.object, Some(Object::Server(_))) {
            return false;
        }
        let Some(Object::Server(mut server)) = entry.object.take() else {
            return false;
        };
        let configured = catch_unwind(AssertUnwindSafe(|| configure(&mut server, self)));
        self.restore(id.0, Object::Server(server), true);
        if let Err(panic) = configured {
            self.hold_panic(panic);
        }
        true
    }

    /// Stops listening and removes the server (its accepted sockets stay).
    pub fn remove_server(&mut self, id: ServerId) -> bool {
        self.own(id.0, id.1).is_some_and(|key| self.remove(key))
    }

    /// Inserts the object `make` builds for its key; it is serviced soon.
    pub(crate) fn insert_object(&mut self, make: impl FnOnce(ObjectKey) -> Object) -> ObjectKey {
        let key = self.objects.insert_with_key(|key| Entry {
            object: Some(make(key)),
            dirty: false,
            doomed: false,
        });
        self.mark_dirty(key);
        key
    }

    /// Inserts the object `make` builds once it registered with its key's
    /// token; nothing is inserted when `make` fails.
    pub(crate) fn try_insert_object<E>(
        &mut self,
        make: impl FnOnce(ObjectKey, &Registry) -> std::result::Result<Object, E>,
    ) -> std::result::Result<ObjectKey, E> {
        let key = self.objects.insert(Entry {
            object: None,
            dirty: false,
            doomed: false,
        });
        match make(key, &self.registry) {
            Ok(object) => {
                self.objects[key].object = Some(object);
                Ok(key)
            }
            Err(e) => {
                self.objects.remove(key);
                Err(e)
            }
        }
    }

    /// The object behind `key`; `None` when it was removed or is being
    /// serviced. Marks it for servicing.
    pub(crate) fn object_mut(&mut self, key: ObjectKey) -> Option<&mut Object> {
        self.mark_dirty(key);
        self.objects.get_mut(key)?.object.as_mut()
    }

    /// Removes an object (see [`remove_socket`](Self::remove_socket)).
    pub(crate) fn remove_object(&mut self, key: ObjectKey) -> bool {
        self.remove(key)
    }

    /// Runs `callback` once, `after` from now.
    pub fn start_timer(
        &mut self,
        after: Duration,
        callback: impl FnMut(&mut Context, TimerId) + 'static,
    ) -> TimerId {
        self.timers.start(
            later(Instant::now(), after),
            None,
            TimerAction::Callback(Box::new(callback)),
        )
    }

    /// Runs `callback` every `interval` until cancelled.
    pub fn start_repeating_timer(
        &mut self,
        interval: Duration,
        callback: impl FnMut(&mut Context, TimerId) + 'static,
    ) -> TimerId {
        self.timers.start(
            later(Instant::now(), interval),
            Some(interval),
            TimerAction::Callback(Box::new(callback)),
        )
    }

    /// Cancels a timer; returns whether it was still running.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// A handle for other threads to post work to this reactor.
    pub fn handle(&mut self) -> ReactorHandle {
        self.mailbox.handle()
    }

    /// Asks [`Reactor::run`](crate::Reactor::run) to return once the current
    /// step is done.
    pub fn quit(&mut self) {
        self.quit = true;
    }

    /// The number of sockets and servers the reactor owns (streams of
    /// failed sockets still closing are not counted).
    pub fn object_count(&self) -> usize {
        self.objects.len() - self.lingering
    }

    /// Whether the object was removed while it is being serviced: it emits
    /// nothing more.
    pub(crate) fn is_doomed(&self, key: ObjectKey) -> bool {
        self.objects.get(key).is_some_and(|e| e.doomed)
    }

    /// Whether `key` names a live object.
    pub(crate) fn contains(&self, key: ObjectKey) -> bool {
        self.objects.contains_key(key)
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Wakes the object `key` when `deadline` passes.
    pub(crate) fn wake_at(&mut self, key: ObjectKey, deadline: Instant) -> TimerId {
        self.timers.start(deadline, None, TimerAction::Wake(key))
    }

    pub(crate) fn mark_dirty(&mut self, key: ObjectKey) {
        if let Some(entry) = self.objects.get_mut(key) {
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.objects.len() == self.lingering
            && !self.timers.has_callbacks()
            && !self.resolver.is_busy()
            && !self.mailbox.is_busy()
    }

    /// Whether [`quit`](Self::quit) was called; clears the request.
    pub(crate) fn take_quit(&mut self) -> bool {
        std::mem::take(&mut self.quit)
    }

    /// Whether [`quit`](Self::quit) was called.
    pub(crate) fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Whether objects wait to be serviced without an event.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    fn remove(&mut self, key: ObjectKey) -> bool {
        let Some(entry) = self.objects.get_mut(key) else {
            return false;
        };
        match entry.object.take() {
            Some(object) => {
                self.objects.remove(key);
                self.retire(object);
            }
            None => entry.doomed = true,
        }
        true
    }

    /// Closes a removed object's I/O.
    fn retire(&mut self, object: Object) {
        match object {
            Object::Socket(mut socket) => {
                self.adopt_lingering(&mut socket);
                socket.retire(&self.registry, &mut self.timers);
                if let Some(link) = socket.server_link() {
                    link.removed(self, socket.id());
                }
            }
            Object::Server(mut server) => {
                let id = server.id();
                self.server_notices.retain(|(to, _)| *to != id);
                server.retire(&self.registry);
            }
            Object::Lingering(mut lingering) => {
                self.lingering -= 1;
                lingering.retire(&self.registry, &mut self.timers);
            }
            Object::Dtls(mut socket) => socket.retire(self),
            Object::DtlsServer(mut server) => server.retire(self),
        }
    }

    /// Takes the stream `socket` left in its lingering close, if any, and
    /// keeps it as an object of its own until the close completes (at the
    /// limit, the stream closes at once).
    fn adopt_lingering(&mut self, socket: &mut SslSocket) {
        let Some(mut lingering) = socket.take_lingering() else {
            return;
        };
        if self.lingering >= MAX_LINGERING {
            log::debug!("{MAX_LINGERING} lingering closes already: closing at once");
            return;
        }
        let key = self.objects.insert(Entry {
            object: None,
            dirty: false,
            doomed: false,
        });
        let wake = self.wake_at(key, lingering.deadline());
        if let Err(e) = lingering.attach(&self.registry, token_of(key), wake) {
            log::debug!("lingering close: {e}");
            self.timers.cancel(wake);
            self.objects.remove(key);
            return;
        }
        self.objects[key].object = Some(Object::Lingering(lingering));
        self.lingering += 1;
        self.mark_dirty(key);
    }

    /// Services every object marked dirty (those marked meanwhile wait for
    /// the next round).
    pub(crate) fn service_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for (i, &key) in dirty.iter().enumerate() {
            if self.has_panic() {
                // Still marked dirty: they stay queued for the next step.
                self.dirty.extend_from_slice(&dirty[i..]);
                break;
            }
            self.service(key, None);
        }
        if self.dirty.is_empty() {
            self.dirty = dirty;
            self.dirty.clear();
        }
    }

    /// Takes the object out, lets it do its I/O and dispatch its signals,
    /// and puts it back (or drops it, if it was removed meanwhile).
    pub(crate) fn service(&mut self, key: ObjectKey, readiness: Option<Readiness>) {
        let Some(entry) = self.objects.get_mut(key) else {
            return;
        };
        let Some(mut object) = entry.object.take() else {
            return;
        };
        entry.dirty = false;
        let mut readiness = readiness;
        let mut more = false;
        for _ in 0..ROUNDS_PER_SERVICE {
            more = match &mut object {
                Object::Socket(socket) => socket.service(self, readiness.take()),
                Object::Server(server) => server.service(self, readiness.take()),
                Object::Lingering(lingering) => {
                    lingering.service(&self.registry, token_of(key), readiness.take());
                    false
                }
                Object::Dtls(socket) => socket.service(self, readiness.take()),
                Object::DtlsServer(server) => server.service(self, readiness.take()),
            };
            if !more || self.has_panic() {
                break;
            }
        }
        let more = more || self.has_panic();
        self.restore(key, object, more);
    }

    fn restore(&mut self, key: ObjectKey, mut object: Object, more: bool) {
        if let Object::Socket(socket) = &mut object {
            self.adopt_lingering(socket);
        }
        let Some(entry) = self.objects.get_mut(key) else {
            return;
        };
        let deleted = match &object {
            Object::Socket(socket) => socket.is_deleted(),
            Object::Server(server) => server.is_closed(),
            Object::Lingering(lingering) => lingering.is_over(),
            Object::Dtls(socket) => socket.is_deleted(),
            Object::DtlsServer(server) => server.is_closed(),
        };
        if entry.doomed || deleted {
            self.objects.remove(key);
            self.retire(object);
            return;
        }
        entry.object = Some(object);
        if more {
            self.mark_dirty(key);
        }
    }

    /// Passes a notice from an accepted socket to its server, which takes
    /// it when it is serviced next (it may be out being serviced now).
    pub(crate) fn notify_server(&mut self, id: ServerId, notice: ServerNotice) {
        let Some(key) = self.own(id.0, id.1) else {
            return;
        };
        if self.objects.contains_key(key) {
            self.server_notices.push((id, notice));
            self.mark_dirty(key);
        }
    }

    /// Whether server `server` keeps `socket` in its pending queue, or will
    /// once it takes its notices.
    pub(crate) fn server_holds(&mut self, server: ServerId, socket: SocketId) -> bool {
        let announced = self.server_notices.iter().any(|(to, notice)| {
            *to == server && matches!(notice, ServerNotice::Encrypted(s, true) if *s == socket)
        });
        announced || self.server(server).is_some_and(|s| s.holds(socket))
    }

    /// The notices for server `id`, oldest first.
    pub(crate) fn take_server_notices(&mut self, id: ServerId) -> Vec<ServerNotice> {
        if self.server_notices.is_empty() {
            return Vec::new();
        }
        let (mine, others) = std::mem::take(&mut self.server_notices)
            .into_iter()
            .partition(|(to, _)| *to == id);
        self.server_notices = others;
        mine.into_iter().map(|(_, notice)| notice).collect()
    }

    /// The waker fired: host lookups finished, or tasks were posted.
    pub(crate) fn on_wake(&mut self) {
        self.deliver_lookups();
        while let Some(task) = self.mailbox.next_task() {
            self.run_guarded(task);
            if self.has_panic() {
                // The rest waits for the next step: make sure it comes.
                self.mailbox.wake();
                break;
            }
        }
    }

    fn deliver_lookups(&mut self) {
        for answer in self.resolver.take_answers() {
            if let Some(socket) = self.socket(SocketId(answer.socket, self.tag)) {
                socket.on_host_lookup(answer.lookup, answer.addresses);
            }
        }
    }

    pub(crate) fn fire_timers(&mut self) {
        let now = Instant::now();
        while !self.has_panic() {
            let Some((id, action)) = self.timers.take_due(now) else {
                break;
            };
            match action {
                TimerAction::Wake(key) => self.mark_dirty(key),
                TimerAction::Callback(mut callback) => {
                    self.run_guarded(|cx| callback(cx, id));
                    self.timers.restore(id, TimerAction::Callback(callback));
                }
            }
        }
    }

    /// Runs user code (a timer callback, a posted task), holding a panic
    /// until the reactor is consistent again.
    fn run_guarded(&mut self, user: impl FnOnce(&mut Context)) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| user(self))) {
            self.hold_panic(panic);
        }
    }

    /// Keeps a panic caught in user code (the first, if several).
    pub(crate) fn hold_panic(&mut self, panic: Box<dyn Any + Send>) {
        log::error!("a slot, timer or posted task panicked; the panic resumes once the reactor is consistent");
        self.panic.get_or_insert(panic);
    }

    /// Whether a caught panic waits to be re-raised: dispatching stops.
    pub(crate) fn has_panic(&self) -> bool {
        self.panic.is_some()
    }

    /// Re-raises a caught panic, now that every object is back in place.
    pub(crate) fn resume_panic(&mut self) {
        if let Some(panic) = self.panic.take() {
            std::panic::resume_unwind(panic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_their_slot_and_generation() {
        let mut keys = SlotMap::<ObjectKey, ()>::with_key();
        let first = keys.insert(());
        let third = {
            keys.insert(());
            keys.insert(())
        };
        keys.remove(third);
        let reused = keys.insert(());
        let socket = |key| SocketId(key, ReactorTag::default());
        let server = ServerId(third, ReactorTag::default());
        assert_eq!(socket(first).to_string(), "socket#1");
        assert_eq!(format!("{:?}", socket(first)), "SocketId(1v1)");
        assert_eq!(server.to_string(), "server#3");
        assert_eq!(format!("{server:?}"), "ServerId(3v1)");
        assert_eq!(socket(reused).to_string(), "socket#3.2");
        assert_eq!(format!("{:?}", socket(reused)), "SocketId(3v3)");
    }
}
