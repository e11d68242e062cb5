//! Library-wide set-up: GnuTLS's own debug log routed to the `log` crate.
//!
//! GnuTLS initialises itself when the library loads; what remains is the log
//! bridge, installed once, before the first session. With the target
//! `sslsocket::gnutls` enabled at trace level, GnuTLS's handshake and record
//! messages appear among ours. The level is capped below the levels at
//! which GnuTLS dumps key material.

use std::ffi::{c_char, c_int, CStr};
use std::panic::catch_unwind;
use std::sync::Once;

use gnutls_sys as sys;

/// GnuTLS log level used when trace logging is on: handshake messages and
/// record-layer events, no secrets (GnuTLS logs key material only at 9).
const LIBRARY_LOG_LEVEL: c_int = 4;

/// Installs the log bridge, once per process.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::debug!("GnuTLS {}", runtime_version());
        if !log::log_enabled!(target: "sslsocket::gnutls", log::Level::Trace) {
            return;
        }
        // SAFETY: the callback matches gnutls_log_func and is valid for the
        // life of the process; setting the level is a plain store.
        unsafe {
            sys::gnutls_global_set_log_function(Some(forward));
            sys::gnutls_global_set_log_level(LIBRARY_LOG_LEVEL);
        }
    });
}

/// The GnuTLS version the process runs with (`gnutls_check_version(NULL)`).
fn runtime_version() -> &'static str {
    // SAFETY: with NULL, gnutls_check_version returns the static version string.
    super::error::static_str(unsafe { sys::gnutls_check_version(std::ptr::null()) })
}

unsafe extern "C" fn forward(level: c_int, message: *const c_char) {
    // The logger is not user slot code, but it is code we do not control:
    // never let a panic cross back into GnuTLS.
    let _ = catch_unwind(|| {
        if message.is_null() {
            return;
        }
        // SAFETY: GnuTLS passes a NUL-terminated message valid for this call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        log::trace!(target: "sslsocket::gnutls", "<{level}> {}", text.trim_end());
    });
}
