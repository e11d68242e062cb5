//! Wiping secrets: [`wipe`] for bulk buffers, and [`password`] for the
//! NUL-terminated copy of a password that GnuTLS reads.
//!
//! Small secrets (keys, passwords, session data) are held in the `zeroize`
//! crate's `Zeroizing` wrapper wherever they live; this module only adds what
//! that crate cannot do cheaply or without `unsafe`.

use std::ffi::CString;

use zeroize::Zeroizing;

use super::error::{code, GnutlsError};

/// Overwrites `bytes` with zeros; the compiler may not remove the writes, even
/// when the memory is freed next.
///
/// This is the C library's `explicit_bzero` where it has one (glibc and
/// musl), else GnuTLS's `gnutls_memset`: a plain `memset` at memory speed,
/// one pass. (`gnutls_memset` makes two: GnuTLS 3.7.9 calls
/// `explicit_bzero` and then `memset`, which doubled the cost of wiping
/// the socket's plaintext.) `zeroize` 1.8 (the newest for our minimum
/// Rust) writes one volatile byte at a time, about 20 times slower, which
/// for the socket's plaintext buffers would cost as much CPU as the
/// encryption itself.
pub(crate) fn wipe(bytes: &mut [u8]) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: `bytes` is a valid, exclusively borrowed region of `len`
    // writable bytes; the call only writes within it.
    unsafe { zero(bytes.as_mut_ptr().cast(), bytes.len()) }
}

#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
use libc::explicit_bzero as zero;

/// `gnutls_memset` with zero, where the C library has no `explicit_bzero`.
///
/// # Safety
/// `data` must be valid for writes of `len` bytes.
#[cfg(not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl"))))]
unsafe fn zero(data: *mut std::ffi::c_void, len: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { gnutls_sys::gnutls_memset(data, 0, len) }
}

/// `password` as a C string for GnuTLS, wiped when dropped.
///
/// Fails for a password with a NUL byte, which C cannot represent.
pub(super) fn password(password: &str) -> Result<Zeroizing<CString>, GnutlsError> {
    let refused = || GnutlsError::from_code(code::INVALID_REQUEST);
    // Checked first: `CString::new`'s error would carry an unwiped copy.
    if password.as_bytes().contains(&0) {
        return Err(refused());
    }
    CString::new(password)
        .map(Zeroizing::new)
        .map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut bytes = vec![0xa5_u8; 70_000];
        wipe(&mut bytes[1..]);
        assert_eq!(bytes[0], 0xa5);
        assert!(bytes[1..].iter().all(|&b| b == 0));
        wipe(&mut []);
    }

    /// The ticket master key and session data come in wiping buffers (the
    /// types are the check; the buffers GnuTLS returned them in are wiped
    /// by `OwnedDatum`).
    #[test]
    fn ticket_keys_and_session_data_are_wiped_when_dropped() {
        let key: Zeroizing<Vec<u8>> = super::super::ticket_key().unwrap();
        assert_eq!(key.len(), 64);
        let _: fn(&super::super::Session) -> Result<Zeroizing<Vec<u8>>, GnutlsError> =
            super::super::Session::session_data;
    }

    #[test]
    fn a_password_with_a_nul_byte_is_refused() {
        assert_eq!(
            password("sslsocket-test").unwrap().as_bytes(),
            b"sslsocket-test"
        );
        assert!(password("a\0b").is_err());
    }
}
