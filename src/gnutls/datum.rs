//! Moving bytes across the boundary as `gnutls_datum_t`: borrowed views of
//! Rust slices, and buffers that GnuTLS allocated and we must free (wiped
//! first: some hold secrets).

use std::ffi::c_uint;

use gnutls_sys as sys;

use super::error::{code, GnutlsError};
use super::secret::wipe;

/// A `gnutls_datum_t` that borrows `bytes` for a call.
///
/// Fails for inputs of 4 GiB or more, which a `gnutls_datum_t` cannot
/// describe.
pub(crate) fn borrowed(bytes: &[u8]) -> Result<sys::gnutls_datum_t, GnutlsError> {
    let size =
        c_uint::try_from(bytes.len()).map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST))?;
    Ok(sys::gnutls_datum_t {
        // GnuTLS only reads through this pointer in every function we pass
        // a borrowed datum to (its parameter is `const gnutls_datum_t *`).
        data: bytes.as_ptr().cast_mut(),
        size,
    })
}

/// A buffer that GnuTLS allocated (for example by `gnutls_x509_crt_export2`);
/// wiped and freed with `gnutls_free` on drop.
///
/// Every datum is wiped, not only those known to hold secrets (session data,
/// ticket keys): they are small, and no caller can forget to ask.
pub(crate) struct OwnedDatum(sys::gnutls_datum_t);

impl OwnedDatum {
    /// An empty datum for GnuTLS to fill.
    pub(crate) fn empty() -> Self {
        Self(sys::gnutls_datum_t {
            data: std::ptr::null_mut(),
            size: 0,
        })
    }

    /// The pointer GnuTLS writes the allocation into.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut sys::gnutls_datum_t {
        &mut self.0
    }

    /// The bytes GnuTLS wrote.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        if self.0.data.is_null() {
            return &[];
        }
        // SAFETY: GnuTLS filled `data` with an allocation of `size` bytes that
        // stays valid until we free it in Drop.
        unsafe { std::slice::from_raw_parts(self.0.data, self.0.size as usize) }
    }

    /// The bytes as UTF-8 text (lossy).
    pub(crate) fn to_string_lossy(&self) -> String {
        let bytes = self.as_bytes();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
}

impl Drop for OwnedDatum {
    fn drop(&mut self) {
        if self.0.data.is_null() {
            return;
        }
        // SAFETY: GnuTLS filled `data` with an allocation of `size` bytes that
        // nothing else references; it is freed just below.
        wipe(unsafe { std::slice::from_raw_parts_mut(self.0.data, self.0.size as usize) });
        // SAFETY: `gnutls_free` is initialised by the library before any
        // function that allocates can return; `data` was allocated by GnuTLS
        // and is freed exactly once here.
        unsafe {
            if let Some(free) = sys::gnutls_free {
                free(self.0.data.cast());
            }
        }
    }
}

/// Calls a GnuTLS "fill this buffer of size *n" function: first with a
/// small buffer, then once more with the size GnuTLS asked for.
pub(crate) fn with_sized_buffer(
    mut call: impl FnMut(*mut std::ffi::c_void, *mut usize) -> i32,
) -> Result<Vec<u8>, GnutlsError> {
    let mut buf = vec![0u8; 256];
    let mut size = buf.len();
    let mut rc = call(buf.as_mut_ptr().cast(), &mut size);
    if rc == sys::GNUTLS_E_SHORT_MEMORY_BUFFER {
        buf.resize(size, 0);
        rc = call(buf.as_mut_ptr().cast(), &mut size);
    }
    super::error::check(rc)?;
    buf.truncate(size);
    Ok(buf)
}
