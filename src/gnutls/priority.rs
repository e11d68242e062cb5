//! [`Priority`]: an owned `gnutls_priority_t`, the parsed protocol, cipher
//! and group preferences a session negotiates with, and [`Offer`]: what it
//! lets a handshake offer, by GnuTLS's names.

use std::ffi::{c_uint, CStr, CString};
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::error::{check, code, static_str, GnutlsError};

/// A parsed GnuTLS priority string.
pub(crate) struct Priority {
    raw: NonNull<sys::gnutls_priority_st>,
    /// The string as given to GnuTLS.
    text: String,
    /// `text` was appended to the system's default priority string.
    appended_to_default: bool,
}

/// What a priority lets a session offer, in preference order, by GnuTLS's
/// names ("TLS1.3", "TLS_AES_128_GCM_SHA256", "X25519", "RSA-PSS-RSAE-SHA256",
/// "X.509").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Offer {
    /// TLS versions (DTLS versions are left out).
    pub(crate) versions: Vec<&'static str>,
    /// Cipher suites with their TLS code points.
    pub(crate) cipher_suites: Vec<(u16, &'static str)>,
    pub(crate) groups: Vec<&'static str>,
    pub(crate) signature_algorithms: Vec<&'static str>,
    /// Certificate types for the client's and for the server's certificate.
    pub(crate) certificate_types: [Vec<&'static str>; 2],
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
        Ok(Self {
            raw,
            text: text.to_owned(),
            appended_to_default: append_to_default,
        })
    }

    pub(crate) fn as_raw(&self) -> sys::gnutls_priority_t {
        self.raw.as_ptr()
    }

    /// The priority string in force, as GnuTLS reads it: the string given,
    /// after `SYSTEM-DEFAULT:` when it was appended to the system's default
    /// (GnuTLS's built-in default, or the one `/etc/gnutls/config` sets).
    pub(crate) fn text(&self) -> String {
        match self.appended_to_default {
            true => format!("SYSTEM-DEFAULT:{}", self.text),
            false => self.text.clone(),
        }
    }

    /// What a session with this priority offers.
    pub(crate) fn offer(&self) -> Offer {
        Offer {
            versions: self
                .list(sys::gnutls_priority_protocol_list)
                .into_iter()
                // SAFETY: any number is accepted; the result is static.
                .map(|v| static_str(unsafe { sys::gnutls_protocol_get_name(v) }))
                .filter(|name| name.starts_with("TLS") || name.starts_with("SSL"))
                .collect(),
            cipher_suites: self.cipher_suites(),
            groups: names(
                self.list(sys::gnutls_priority_group_list),
                sys::gnutls_group_get_name,
            ),
            signature_algorithms: names(
                self.list(sys::gnutls_priority_sign_list),
                sys::gnutls_sign_get_name,
            ),
            certificate_types: [sys::GNUTLS_CTYPE_CLIENT, sys::GNUTLS_CTYPE_SERVER]
                .map(|target| self.certificate_types(target)),
        }
    }

    /// One of GnuTLS's `gnutls_priority_*_list` results.
    fn list(
        &self,
        get: unsafe extern "C" fn(sys::gnutls_priority_t, *mut *const c_uint) -> i32,
    ) -> Vec<c_uint> {
        let mut list: *const c_uint = ptr::null();
        // SAFETY: the cache is live; GnuTLS points `list` at an array of the
        // returned length inside the cache, which outlives this call.
        let n = unsafe { get(self.as_raw(), &mut list) };
        if n <= 0 || list.is_null() {
            return Vec::new();
        }
        // SAFETY: see above.
        unsafe { std::slice::from_raw_parts(list, n as usize) }.to_vec()
    }

    fn certificate_types(&self, target: sys::gnutls_ctype_target_t) -> Vec<&'static str> {
        let mut list: *const c_uint = ptr::null();
        // SAFETY: as in `list`.
        let n = unsafe {
            sys::gnutls_priority_certificate_type_list2(self.as_raw(), &mut list, target)
        };
        if n <= 0 || list.is_null() {
            return Vec::new();
        }
        // SAFETY: as in `list`.
        let types = unsafe { std::slice::from_raw_parts(list, n as usize) }.to_vec();
        names(types, sys::gnutls_certificate_type_get_name)
    }

    fn cipher_suites(&self) -> Vec<(u16, &'static str)> {
        let mut suites = Vec::new();
        for idx in 0.. {
            let mut table_index = 0;
            // SAFETY: the cache is live; `table_index` is a valid out-pointer.
            let rc = unsafe {
                sys::gnutls_priority_get_cipher_suite_index(self.as_raw(), idx, &mut table_index)
            };
            match rc {
                0 => suites.extend(cipher_suite_at(table_index as usize)),
                code::REQUESTED_DATA_NOT_AVAILABLE => break,
                _ => continue,
            }
        }
        suites
    }
}

/// The names of `values`, by one of GnuTLS's `*_get_name` functions.
fn names(
    values: Vec<c_uint>,
    name: unsafe extern "C" fn(c_uint) -> *const std::ffi::c_char,
) -> Vec<&'static str> {
    values
        .into_iter()
        // SAFETY: the `*_get_name` functions accept any number and return a
        // static string or null.
        .map(|v| static_str(unsafe { name(v) }))
        .filter(|name| !name.is_empty())
        .collect()
}

/// The code point and name of the cipher suite at `index` in GnuTLS's
/// table.
fn cipher_suite_at(index: usize) -> Option<(u16, &'static str)> {
    let mut id = [0u8; 2];
    // SAFETY: `id` has the two bytes GnuTLS writes; the other out-pointers
    // may be null; the name is static (or null past the table's end).
    let name = unsafe {
        sys::gnutls_cipher_suite_info(
            index,
            id.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    (!name.is_null()).then(|| (u16::from_be_bytes(id), static_str(name)))
}

/// GnuTLS's name for the cipher suite with TLS code point `id`, if it
/// knows the suite.
pub(crate) fn cipher_suite_name(id: u16) -> Option<&'static str> {
    (0..)
        .map_while(cipher_suite_at)
        .find(|&(code_point, _)| code_point == id)
        .map(|(_, name)| name)
}

/// Whether a key of the public key algorithm GnuTLS names `key` ("RSA",
/// "EC/ECDSA", "EdDSA (Ed25519)", …) can make signatures of the algorithm
/// it names `signature` ("RSA-PSS-RSAE-SHA256", …).
pub(crate) fn signature_fits_key(signature: &str, key: &str) -> bool {
    let (Ok(signature), Ok(key)) = (CString::new(signature), CString::new(key)) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; the functions only read them
    // and accept any ids.
    unsafe {
        let sign = sys::gnutls_sign_get_id(signature.as_ptr());
        let pk = sys::gnutls_pk_get_id(key.as_ptr());
        sys::gnutls_sign_supports_pk_algorithm(sign, pk) != 0
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

    #[test]
    fn the_offer_follows_the_priority_string() {
        let p = Priority::new("NONE:+VERS-TLS1.3:+VERS-TLS1.2:+AES-128-GCM:+AEAD:+ECDHE-RSA:+SIGN-RSA-PSS-RSAE-SHA256:+GROUP-X25519:+CTYPE-X509:+COMP-NULL", false).unwrap();
        let offer = p.offer();
        assert_eq!(offer.versions, ["TLS1.3", "TLS1.2"]);
        assert_eq!(
            offer.cipher_suites,
            [
                (0x1301, "TLS_AES_128_GCM_SHA256"),
                (0xc02f, "TLS_ECDHE_RSA_AES_128_GCM_SHA256")
            ]
        );
        assert_eq!(offer.groups, ["X25519"]);
        assert_eq!(offer.signature_algorithms, ["RSA-PSS-RSAE-SHA256"]);
        assert_eq!(offer.certificate_types[1], ["X.509"]);
        assert_eq!(p.text(), p.text);
        let appended = Priority::new("-VERS-TLS1.2", true).unwrap();
        assert_eq!(appended.text(), "SYSTEM-DEFAULT:-VERS-TLS1.2");
    }

    #[test]
    fn suites_and_signatures_are_named() {
        assert_eq!(cipher_suite_name(0x1302), Some("TLS_AES_256_GCM_SHA384"));
        assert_eq!(cipher_suite_name(0xfefe), None);
        assert!(signature_fits_key("RSA-PSS-RSAE-SHA256", "RSA"));
        assert!(signature_fits_key("ECDSA-SECP256R1-SHA256", "EC/ECDSA"));
        assert!(!signature_fits_key("ECDSA-SECP256R1-SHA256", "RSA"));
    }
}
