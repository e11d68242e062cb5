//! Pre-shared keys (TLS 1.2: RFC 4279, RFC 5489; TLS 1.3: RFC 8446 §2.2):
//! what a client offers ([`PskOffer`]), where a server looks keys up
//! ([`PskTable`]), the GnuTLS credentials that ask for them, and the two
//! `extern "C"` callbacks that answer.
//!
//! Both callbacks only copy a key that was given in advance into a buffer
//! GnuTLS allocated (GnuTLS wipes it when it is done with it); they never
//! run code from the layers above. A server's lookup cannot wait for the
//! program: GnuTLS 3.7 asks for the key synchronously while it reads the
//! ClientHello (TLS 1.3) or the ClientKeyExchange (TLS 1.2), and any error
//! the callback returns ends the handshake for good. So the table is filled
//! before the handshake, and what the lookup found is recorded in the
//! [`Transport`] for the engine to judge and report.
//!
//! Keys are held in `Zeroizing` buffers on our side only: GnuTLS gets a
//! fresh copy per handshake through the callbacks, never a long-lived copy
//! in its credentials (which GnuTLS 3.7 frees without wiping).

use std::collections::HashMap;
use std::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::{Arc, PoisonError, RwLock};

use gnutls_sys as sys;
use zeroize::Zeroizing;

use super::error::{check, GnutlsError};
use super::transport::{with_transport, Transport};

/// What a client names and proves: one identity and its key.
pub(crate) struct PskOffer {
    identity: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl PskOffer {
    pub(crate) fn new(identity: Vec<u8>, key: Zeroizing<Vec<u8>>) -> Self {
        Self { identity, key }
    }

    /// The identity the client names.
    pub(crate) fn identity(&self) -> &[u8] {
        &self.identity
    }
}

/// A server's keys by identity. Shared by every session of a
/// configuration, and changed by the program at any time: a handshake uses
/// the key the table holds when GnuTLS looks the identity up.
#[derive(Default)]
pub(crate) struct PskTable {
    keys: RwLock<HashMap<Vec<u8>, Zeroizing<Vec<u8>>>>,
}

impl PskTable {
    /// Adds or replaces the key of `identity` (the old key is wiped).
    pub(crate) fn insert(&self, identity: Vec<u8>, key: Zeroizing<Vec<u8>>) {
        self.write().insert(identity, key);
    }

    /// Removes `identity`; returns whether it was there.
    pub(crate) fn remove(&self, identity: &[u8]) -> bool {
        self.write().remove(identity).is_some()
    }

    pub(crate) fn contains(&self, identity: &[u8]) -> bool {
        self.read().contains_key(identity)
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Copies the key of `identity` into a GnuTLS allocation; `None` when
    /// the table has no such identity.
    fn copy_key(&self, identity: &[u8]) -> Option<Result<sys::gnutls_datum_t, GnutlsError>> {
        self.read().get(identity).map(|key| gnutls_copy(key))
    }

    // A panic while the lock was held cannot leave the map half-changed
    // (HashMap's insert and remove complete or unwind before changing it),
    // so a poisoned lock is used as it is.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Vec<u8>, Zeroizing<Vec<u8>>>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Vec<u8>, Zeroizing<Vec<u8>>>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the key callback saw during the handshake: the identity (a
/// client's own; on a server, the one its client named) and whether a key
/// was found for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PskLookup {
    pub(crate) identity: Vec<u8>,
    pub(crate) found: bool,
}

/// The PSK side of one session: the credentials GnuTLS points to and the
/// keys their callback answers from. Kept in the session's transport,
/// which outlives `gnutls_deinit`.
#[derive(Clone)]
pub(crate) enum Psk {
    Client(Arc<PskCredentials>, Arc<PskOffer>),
    Server(Arc<PskCredentials>, Arc<PskTable>),
}

impl Psk {
    pub(crate) fn credentials(&self) -> &PskCredentials {
        match self {
            Psk::Client(credentials, _) | Psk::Server(credentials, _) => credentials,
        }
    }
}

/// Owned GnuTLS PSK credentials of either side; their callback answers
/// from the session's [`Psk`].
pub(crate) enum PskCredentials {
    Client(NonNull<sys::gnutls_psk_client_credentials_st>),
    Server(NonNull<sys::gnutls_psk_server_credentials_st>),
}

// SAFETY: the credentials are set up once in `client`/`server` and only read
// afterwards (GnuTLS documents credentials as safe for concurrent read-only
// use by sessions in different threads); what changes lives in the tables,
// behind their lock.
unsafe impl Send for PskCredentials {}
// SAFETY: see `Send`: shared access is read-only.
unsafe impl Sync for PskCredentials {}

impl PskCredentials {
    /// Client credentials that ask [`client_key`] for the identity and key.
    pub(crate) fn client() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the object.
        check(unsafe { sys::gnutls_psk_allocate_client_credentials(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        // SAFETY: the credentials are live; the callback matches GnuTLS's type.
        unsafe { sys::gnutls_psk_set_client_credentials_function2(raw.as_ptr(), Some(client_key)) };
        Ok(Self::Client(raw))
    }

    /// Server credentials that ask [`server_key`] for a client's key, with
    /// the RFC 7919 group of the "medium" level for DHE-PSK.
    pub(crate) fn server() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the object.
        check(unsafe { sys::gnutls_psk_allocate_server_credentials(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        let credentials = Self::Server(raw);
        // SAFETY: the credentials are live; the callback matches GnuTLS's
        // type; GnuTLS points them at its own static DH parameters.
        unsafe {
            sys::gnutls_psk_set_server_credentials_function2(raw.as_ptr(), Some(server_key));
            check(sys::gnutls_psk_set_server_known_dh_params(
                raw.as_ptr(),
                sys::GNUTLS_SEC_PARAM_MEDIUM,
            ))?;
        }
        Ok(credentials)
    }

    /// The raw handle, to attach to a session as `GNUTLS_CRD_PSK`.
    pub(crate) fn as_raw(&self) -> *mut std::ffi::c_void {
        match self {
            Self::Client(raw) => raw.as_ptr().cast(),
            Self::Server(raw) => raw.as_ptr().cast(),
        }
    }
}

impl Drop for PskCredentials {
    fn drop(&mut self) {
        // SAFETY: we own the credentials; every session that pointed at them
        // holds an `Arc` to them (through its transport) and has been
        // deinitialised before the last reference drops.
        unsafe {
            match self {
                Self::Client(raw) => sys::gnutls_psk_free_client_credentials(raw.as_ptr()),
                Self::Server(raw) => sys::gnutls_psk_free_server_credentials(raw.as_ptr()),
            }
        }
    }
}

/// A copy of `bytes` in memory from `gnutls_malloc`, which GnuTLS frees.
fn gnutls_copy(bytes: &[u8]) -> Result<sys::gnutls_datum_t, GnutlsError> {
    let memory_error = GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR);
    let size = std::ffi::c_uint::try_from(bytes.len()).map_err(|_| memory_error)?;
    // SAFETY: gnutls_malloc is set by the library before any callback can
    // run; it returns `len` writable bytes or NULL.
    let data = unsafe {
        let malloc = sys::gnutls_malloc.ok_or(memory_error)?;
        malloc(bytes.len().max(1)).cast::<u8>()
    };
    if data.is_null() {
        return Err(memory_error);
    }
    // SAFETY: `data` has room for `bytes.len()` bytes and does not overlap it.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len()) };
    Ok(sys::gnutls_datum_t { data, size })
}

/// The bytes of a datum GnuTLS passes in (empty for NULL).
///
/// # Safety
/// `datum` is NULL or points to a datum whose `data` holds `size` readable
/// bytes for the lifetime the caller gives the result.
unsafe fn datum_bytes<'a>(datum: *const sys::gnutls_datum_t) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match datum.as_ref() {
            Some(d) if !d.data.is_null() => std::slice::from_raw_parts(d.data, d.size as usize),
            _ => &[],
        }
    }
}

/// `gnutls_psk_client_credentials_function2`: hands GnuTLS copies of the
/// offered identity and key, and records that it did (GnuTLS does not
/// keep a TLS 1.2 client's identity where `psk_identity` reads it).
unsafe extern "C" fn client_key(
    session: sys::gnutls_session_t,
    username: *mut sys::gnutls_datum_t,
    key: *mut sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: the session's user pointer is the registered transport, and
    // GnuTLS calls this only from within a handshake driven through
    // `&mut Session`; `username` and `key` are datums for us to fill, which
    // GnuTLS frees (the key wiped) with gnutls_free.
    unsafe {
        let ptr = sys::gnutls_session_get_ptr(session);
        with_transport(ptr, -1, |t: &mut Transport| {
            let Some(Psk::Client(_, offer)) = &t.psk else {
                return -1;
            };
            let (Ok(name), Ok(secret)) = (gnutls_copy(&offer.identity), gnutls_copy(&offer.key))
            else {
                return -1;
            };
            *username = name;
            *key = secret;
            t.psk_lookup = Some(PskLookup {
                identity: offer.identity.clone(),
                found: true,
            });
            0
        })
    }
}

/// `gnutls_psk_server_credentials_function2`: hands GnuTLS a copy of the
/// key the table holds for the client's identity, and records the lookup.
/// For an unknown identity it returns 1: GnuTLS then goes on with a random
/// key, so that the handshake fails the same way as with a wrong key and
/// tells the client nothing about which identities exist.
unsafe extern "C" fn server_key(
    session: sys::gnutls_session_t,
    username: *const sys::gnutls_datum_t,
    key: *mut sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: as in `client_key`; `username` holds the identity the client
    // sent, readable for the call.
    unsafe {
        let ptr = sys::gnutls_session_get_ptr(session);
        with_transport(ptr, -1, |t: &mut Transport| {
            let identity = datum_bytes(username);
            let Some(Psk::Server(_, table)) = &t.psk else {
                return -1;
            };
            let copied = table.copy_key(identity);
            t.psk_lookup = Some(PskLookup {
                identity: identity.to_vec(),
                found: copied.is_some(),
            });
            match copied {
                Some(Ok(copy)) => {
                    *key = copy;
                    0
                }
                Some(Err(_)) => -1,
                None => 1,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_replaces_and_removes_keys() {
        let table = PskTable::default();
        table.insert(b"alice".to_vec(), Zeroizing::new(vec![1; 16]));
        table.insert(b"alice".to_vec(), Zeroizing::new(vec![2; 16]));
        assert_eq!(table.len(), 1);
        assert!(table.contains(b"alice"));
        assert!(!table.contains(b"bob"));
        assert!(table.remove(b"alice"));
        assert!(!table.remove(b"alice"));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_copy_for_gnutls_holds_the_key() {
        super::super::global::init();
        let table = PskTable::default();
        table.insert(b"alice".to_vec(), Zeroizing::new(vec![7; 16]));
        assert!(table.copy_key(b"bob").is_none());
        let copy = table.copy_key(b"alice").unwrap().unwrap();
        let mut owned = super::super::datum::OwnedDatum::empty();
        // SAFETY: `owned` takes the GnuTLS allocation and frees it once.
        unsafe { *owned.as_mut_ptr() = copy };
        assert_eq!(owned.as_bytes(), &[7; 16]);
    }
}
