//! [`SessionDb`]: a server's memory of TLS 1.2 sessions by session ID, so
//! a client that does not use session tickets can resume too, and the
//! `extern "C"` callbacks through which GnuTLS's session database reaches
//! it.
//!
//! One database is shared by every session of a configuration (an `Arc`;
//! each GnuTLS session that points to it holds a clone). It keeps a bounded
//! number of entries, oldest dropped first, each for the configuration's
//! session lifetime; session data is secret and wiped when dropped. The
//! callbacks only copy bytes in and out. What a resumed session proves is
//! not decided here: the engine verifies a resumed peer's chain again.

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gnutls_sys as sys;
use zeroize::Zeroizing;

/// How many sessions a server remembers by ID.
const CAPACITY: usize = 1024;

/// Sessions by ID.
#[derive(Debug)]
pub(crate) struct SessionDb {
    entries: Mutex<VecDeque<Entry>>,
    lifetime: Duration,
}

#[derive(Debug)]
struct Entry {
    id: Vec<u8>,
    data: Zeroizing<Vec<u8>>,
    until: Instant,
}

impl SessionDb {
    /// An empty database whose entries last `lifetime`.
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            lifetime,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, id: &[u8], data: &[u8]) {
        let mut entries = self.lock();
        entries.retain(|e| e.id != id);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(Entry {
            id: id.to_vec(),
            data: Zeroizing::new(data.to_vec()),
            until: Instant::now() + self.lifetime,
        });
    }

    fn retrieve(&self, id: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|e| e.until > now);
        entries.iter().find(|e| e.id == id).map(|e| e.data.clone())
    }

    fn remove(&self, id: &[u8]) {
        self.lock().retain(|e| e.id != id);
    }
}

/// The bytes of a datum GnuTLS passes to a callback.
///
/// # Safety
/// `datum` must describe `size` readable bytes (or be empty or NULL).
unsafe fn bytes(datum: &sys::gnutls_datum_t) -> &[u8] {
    if datum.data.is_null() || datum.size == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(datum.data, datum.size as usize) }
}

/// Runs `body` on the database behind `ptr`, catching any panic.
///
/// # Safety
/// `ptr` must be the `SessionDb` registered with `gnutls_db_set_ptr`, kept
/// alive by the session that calls back.
unsafe fn with_db<R>(ptr: *mut c_void, failed: R, body: impl FnOnce(&SessionDb) -> R) -> R {
    if ptr.is_null() {
        return failed;
    }
    // SAFETY: guaranteed by the caller; the database is only shared
    // (`&`), its state sits behind a mutex.
    let db = unsafe { &*ptr.cast::<SessionDb>() };
    catch_unwind(AssertUnwindSafe(|| body(db))).unwrap_or(failed)
}

/// `gnutls_db_store_func`: remembers a session.
pub(super) unsafe extern "C" fn store(
    ptr: *mut c_void,
    key: sys::gnutls_datum_t,
    data: sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: GnuTLS passes the pointer set with gnutls_db_set_ptr and two
    // datums readable for the call.
    unsafe {
        with_db(ptr, -1, |db| {
            db.store(bytes(&key), bytes(&data));
            0
        })
    }
}

/// `gnutls_db_retr_func`: a copy of a remembered session, allocated with
/// `gnutls_malloc` (GnuTLS frees it), or an empty datum.
pub(super) unsafe extern "C" fn retrieve(
    ptr: *mut c_void,
    key: sys::gnutls_datum_t,
) -> sys::gnutls_datum_t {
    let none = sys::gnutls_datum_t {
        data: ptr::null_mut(),
        size: 0,
    };
    // SAFETY: GnuTLS passes the pointer set with gnutls_db_set_ptr and a
    // key readable for the call.
    let found = unsafe { with_db(ptr, None, |db| db.retrieve(bytes(&key))) };
    let Some(data) = found else { return none };
    let Ok(size) = u32::try_from(data.len()) else {
        return none;
    };
    // SAFETY: gnutls_malloc is GnuTLS's allocator (set once at library
    // load); the copy fills the `size` bytes it returned.
    unsafe {
        let Some(malloc) = sys::gnutls_malloc else {
            return none;
        };
        let out = malloc(data.len()).cast::<u8>();
        if out.is_null() {
            return none;
        }
        ptr::copy_nonoverlapping(data.as_ptr(), out, data.len());
        sys::gnutls_datum_t { data: out, size }
    }
}

/// `gnutls_db_remove_func`: forgets a session.
pub(super) unsafe extern "C" fn remove(ptr: *mut c_void, key: sys::gnutls_datum_t) -> c_int {
    // SAFETY: GnuTLS passes the pointer set with gnutls_db_set_ptr and a
    // key readable for the call.
    unsafe {
        with_db(ptr, -1, |db| {
            db.remove(bytes(&key));
            0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_by_id_bounded_and_expire() {
        let db = SessionDb::new(Duration::from_secs(60));
        db.store(b"a", b"one");
        db.store(b"a", b"two");
        assert_eq!(db.retrieve(b"a").as_deref(), Some(&b"two".to_vec()));
        db.remove(b"a");
        assert_eq!(db.retrieve(b"a"), None);
        for i in 0..CAPACITY + 1 {
            db.store(&i.to_be_bytes(), b"x");
        }
        assert_eq!(db.retrieve(&0usize.to_be_bytes()), None, "the oldest went");
        assert!(db.retrieve(&CAPACITY.to_be_bytes()).is_some());

        let short = SessionDb::new(Duration::ZERO);
        short.store(b"b", b"gone");
        assert_eq!(short.retrieve(b"b"), None, "expired");
    }
}
