//! [`GnutlsError`]: a GnuTLS return code with the library's own message, and
//! [`check`], the one place where a return code becomes a `Result`.

use std::ffi::CStr;
use std::fmt;

use gnutls_sys as sys;

/// An error reported by GnuTLS: its numeric code, its symbolic name
/// (`GNUTLS_E_…`) and the library's message (`gnutls_strerror`).
///
/// ```
/// let e = sslsocket::GnutlsError::from_code(-28);
/// assert_eq!(e.name(), "GNUTLS_E_AGAIN");
/// assert!(!e.is_fatal());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GnutlsError {
    code: i32,
}

impl GnutlsError {
    /// Wraps a GnuTLS return code (a negative number).
    pub fn from_code(code: i32) -> Self {
        Self { code }
    }

    /// The numeric code, as GnuTLS returned it.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// GnuTLS's description of the error (`gnutls_strerror`).
    pub fn message(&self) -> &'static str {
        // SAFETY: gnutls_strerror accepts any integer and returns a pointer to
        // a static NUL-terminated string (never NULL).
        static_str(unsafe { sys::gnutls_strerror(self.code) })
    }

    /// The symbolic name, such as `GNUTLS_E_AGAIN` (empty for unknown codes).
    pub fn name(&self) -> &'static str {
        // SAFETY: gnutls_strerror_name accepts any integer and returns a
        // static string or NULL for unknown codes; static_str handles NULL.
        static_str(unsafe { sys::gnutls_strerror_name(self.code) })
    }

    /// Whether GnuTLS considers the session unusable after this error
    /// (`gnutls_error_is_fatal`).
    pub fn is_fatal(&self) -> bool {
        // SAFETY: gnutls_error_is_fatal is a pure function of its argument.
        unsafe { sys::gnutls_error_is_fatal(self.code) != 0 }
    }
}

impl fmt::Debug for GnutlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GnutlsError({} {}: {})",
            self.code,
            self.name(),
            self.message()
        )
    }
}

impl fmt::Display for GnutlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.name())
    }
}

impl std::error::Error for GnutlsError {}

/// Turns a GnuTLS return code into a `Result`: negative is an error, zero and
/// positive values are returned unchanged.
pub(crate) fn check(rc: i32) -> Result<i32, GnutlsError> {
    if rc < 0 {
        Err(GnutlsError::from_code(rc))
    } else {
        Ok(rc)
    }
}

/// Same as [`check`] for the `ssize_t` results of the record functions.
pub(crate) fn check_size(rc: isize) -> Result<usize, GnutlsError> {
    usize::try_from(rc).map_err(|_| GnutlsError::from_code(i32::try_from(rc).unwrap_or(i32::MIN)))
}

/// Reads a static C string returned by GnuTLS; NULL reads as "".
pub(crate) fn static_str(ptr: *const std::ffi::c_char) -> &'static str {
    if ptr.is_null() {
        return "";
    }
    // SAFETY: every caller passes a pointer GnuTLS documents as a static,
    // NUL-terminated string that lives as long as the library.
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap_or("")
}

/// The GnuTLS error codes the layers above act on, by name.
pub(crate) mod code {
    use gnutls_sys as sys;

    pub(crate) const AGAIN: i32 = sys::GNUTLS_E_AGAIN;
    pub(crate) const INTERRUPTED: i32 = sys::GNUTLS_E_INTERRUPTED;
    pub(crate) const REHANDSHAKE: i32 = sys::GNUTLS_E_REHANDSHAKE;
    pub(crate) const WARNING_ALERT_RECEIVED: i32 = sys::GNUTLS_E_WARNING_ALERT_RECEIVED;
    pub(crate) const FATAL_ALERT_RECEIVED: i32 = sys::GNUTLS_E_FATAL_ALERT_RECEIVED;
    pub(crate) const PREMATURE_TERMINATION: i32 = sys::GNUTLS_E_PREMATURE_TERMINATION;
    pub(crate) const UNEXPECTED_PACKET_LENGTH: i32 = sys::GNUTLS_E_UNEXPECTED_PACKET_LENGTH;
    pub(crate) const CERTIFICATE_VERIFICATION_ERROR: i32 =
        sys::GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
    pub(crate) const NO_CERTIFICATE_FOUND: i32 = sys::GNUTLS_E_NO_CERTIFICATE_FOUND;
    pub(crate) const CERTIFICATE_REQUIRED: i32 = sys::GNUTLS_E_CERTIFICATE_REQUIRED;
    pub(crate) const INVALID_REQUEST: i32 = sys::GNUTLS_E_INVALID_REQUEST;
    pub(crate) const DECRYPTION_FAILED: i32 = sys::GNUTLS_E_DECRYPTION_FAILED;
    pub(crate) const MAC_VERIFY_FAILED: i32 = sys::GNUTLS_E_MAC_VERIFY_FAILED;
    pub(crate) const FILE_ERROR: i32 = sys::GNUTLS_E_FILE_ERROR;
    pub(crate) const HANDSHAKE_TOO_LARGE: i32 = sys::GNUTLS_E_HANDSHAKE_TOO_LARGE;
    pub(crate) const UNEXPECTED_PACKET: i32 = sys::GNUTLS_E_UNEXPECTED_PACKET;
    pub(crate) const REQUESTED_DATA_NOT_AVAILABLE: i32 = sys::GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE;
    // What a handshake fails with when the two sides find nothing in common.
    pub(crate) const UNSUPPORTED_VERSION_PACKET: i32 = sys::GNUTLS_E_UNSUPPORTED_VERSION_PACKET;
    pub(crate) const NO_CIPHER_SUITES: i32 = sys::GNUTLS_E_NO_CIPHER_SUITES;
    pub(crate) const UNKNOWN_CIPHER_SUITE: i32 = sys::GNUTLS_E_UNKNOWN_CIPHER_SUITE;
    pub(crate) const NO_COMMON_KEY_SHARE: i32 = sys::GNUTLS_E_NO_COMMON_KEY_SHARE;
    pub(crate) const INSUFFICIENT_CREDENTIALS: i32 = sys::GNUTLS_E_INSUFFICIENT_CREDENTIALS;
    pub(crate) const UNSUPPORTED_SIGNATURE_ALGORITHM: i32 =
        sys::GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM;
    pub(crate) const UNSUPPORTED_CERTIFICATE_TYPE: i32 = sys::GNUTLS_E_UNSUPPORTED_CERTIFICATE_TYPE;
    pub(crate) const RECEIVED_ILLEGAL_PARAMETER: i32 = sys::GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER;
    pub(crate) const ERROR_IN_FINISHED_PACKET: i32 = sys::GNUTLS_E_ERROR_IN_FINISHED_PACKET;
    pub(crate) const PKCS11_OBJECT_NOT_AVAILABLE: i32 =
        sys::GNUTLS_E_PKCS11_REQUESTED_OBJECT_NOT_AVAILBLE;
    pub(crate) const PKCS11_PIN_ERROR: i32 = sys::GNUTLS_E_PKCS11_PIN_ERROR;
    pub(crate) const PKCS11_PIN_LOCKED: i32 = sys::GNUTLS_E_PKCS11_PIN_LOCKED;
    pub(crate) const PKCS11_PIN_EXPIRED: i32 = sys::GNUTLS_E_PKCS11_PIN_EXPIRED;
    pub(crate) const PKCS11_USER_ERROR: i32 = sys::GNUTLS_E_PKCS11_USER_ERROR;
    // DTLS: a handshake that ran out of GnuTLS's total time.
    pub(crate) const TIMEDOUT: i32 = sys::GNUTLS_E_TIMEDOUT;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_name_and_message() {
        let e = GnutlsError::from_code(code::PREMATURE_TERMINATION);
        assert_eq!(e.name(), "GNUTLS_E_PREMATURE_TERMINATION");
        assert!(e
            .message()
            .contains("TLS connection was non-properly terminated"));
        assert!(e.is_fatal());
        assert!(e.to_string().contains("GNUTLS_E_PREMATURE_TERMINATION"));
        assert_eq!(check(-28), Err(GnutlsError::from_code(-28)));
        assert_eq!(check(5), Ok(5));
        assert_eq!(check_size(-28), Err(GnutlsError::from_code(-28)));
    }

    #[test]
    fn unknown_codes_do_not_crash() {
        let e = GnutlsError::from_code(-99_999);
        let _ = e.to_string();
    }
}
