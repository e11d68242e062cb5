//! [`Priority`]: an owned `gnutls_priority_t`, the parsed protocol, cipher
//! and group preferences a session negotiates with.

use std::ffi::{CStr, CString};
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::error::{check, code, GnutlsError};

/// A parsed GnuTLS priority string.
pub(crate) struct Priority {
    raw: NonNull<sys::gnutls_priority_st>,
}

// SAFETY: a priority cache is immutable after gnutls_priority_init2 and GnuTLS
// documents it as shareable between sessions in different threads.
unsafe impl Send for Priority {}
// SAFETY: see the `Send` impl; sessions only read it.
unsafe impl Sync for Priority {}

/// Why a priority string was refused: GnuTLS's error and the part of the
/// string where parsing stopped.
#[derive(Debug)]
pub(crate) struct PriorityError {
    pub(crate) error: GnutlsError,
    pub(crate) at: String,
}

impl Priority {
    /// Parses `text`. With `append_to_default`, `text` is appended to the
    /// system's default priority string (so distribution policy applies)
    /// instead of replacing it.
    pub(crate) fn new(text: &str, append_to_default: bool) -> Result<Self, PriorityError> {
        let c_text = CString::new(text).map_err(|_| PriorityError {
            error: GnutlsError::from_code(code::INVALID_REQUEST),
            at: text.to_owned(),
        })?;
        let mut raw = ptr::null_mut();
        let mut err_pos: *const std::ffi::c_char = ptr::null();
        let flags = if append_to_default {
            sys::GNUTLS_PRIORITY_INIT_DEF_APPEND
        } else {
            0
        };
        // SAFETY: out-pointers are valid and `c_text` is NUL-terminated; on
        // failure `err_pos` points into `c_text`, which is still alive when we
        // read it below.
        let rc =
            unsafe { sys::gnutls_priority_init2(&mut raw, c_text.as_ptr(), &mut err_pos, flags) };
        if let Err(error) = check(rc) {
            let at = if err_pos.is_null() {
                String::new()
            } else {
                // SAFETY: err_pos points at a NUL-terminated suffix of c_text.
                unsafe { CStr::from_ptr(err_pos) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(PriorityError { error, at });
        }
        let raw = NonNull::new(raw).ok_or(PriorityError {
            error: GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR),
            at: String::new(),
        })?;
        Ok(Self { raw })
    }

    pub(crate) fn as_raw(&self) -> sys::gnutls_priority_t {
        self.raw.as_ptr()
    }
}

impl Drop for Priority {
    fn drop(&mut self) {
        // SAFETY: we own the cache; sessions that use it hold an Arc to it and
        // are deinitialised first.
        unsafe { sys::gnutls_priority_deinit(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_strings_report_where_parsing_stopped() {
        assert!(Priority::new("NORMAL", false).is_ok());
        assert!(Priority::new("-VERS-ALL:+VERS-TLS1.3", true).is_ok());
        let err = Priority::new("NORMAL:+NO-SUCH-THING", false).err().unwrap();
        assert!(err.at.contains("NO-SUCH-THING"), "{err:?}");
    }
}
