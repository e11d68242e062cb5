//! Stateless DTLS cookies (RFC 6347 §4.2.1): the HelloVerifyRequest a
//! server answers a ClientHello with, and the check that a later
//! ClientHello echoes the cookie made for its source address
//! (`gnutls_dtls_cookie_send`, `gnutls_dtls_cookie_verify`).
//!
//! A cookie is a MAC of the client's address under a secret
//! ([`CookieKey`]); nothing is kept per client. Which address, which
//! secret, and what to do with the answer is the layer above's business.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use gnutls_sys as sys;
use zeroize::Zeroizing;

use super::datum::{borrowed, OwnedDatum};
use super::dtls::Prestate;
use super::error::{check, code, GnutlsError};

/// The secret cookies are made under, wiped when dropped.
#[derive(Clone)]
pub(crate) struct CookieKey(Zeroizing<Vec<u8>>);

impl CookieKey {
    /// A fresh random key (`gnutls_key_generate`, `GNUTLS_COOKIE_KEY_SIZE`
    /// bytes).
    pub(crate) fn generate() -> Result<Self, GnutlsError> {
        let mut datum = OwnedDatum::empty();
        // SAFETY: the datum receives a GnuTLS allocation that OwnedDatum
        // wipes and frees.
        check(unsafe {
            sys::gnutls_key_generate(datum.as_mut_ptr(), sys::GNUTLS_COOKIE_KEY_SIZE)
        })?;
        Ok(Self(Zeroizing::new(datum.as_bytes().to_vec())))
    }

    /// A key from the program's own secret bytes (copied).
    pub(crate) fn from_secret(secret: &[u8]) -> Self {
        Self(Zeroizing::new(secret.to_vec()))
    }

    /// Whether two keys are the same secret.
    pub(crate) fn same_as(&self, other: &CookieKey) -> bool {
        self.0 == other.0
    }
}

/// The HelloVerifyRequest datagram that answers a ClientHello from the
/// client `client` (its address, as bytes) with the cookie for it under
/// `key`.
pub(crate) fn hello_verify_request(
    key: &CookieKey,
    client: &[u8],
    prestate: Prestate,
) -> Result<Vec<u8>, GnutlsError> {
    let mut key_datum = borrowed(&key.0)?;
    let mut prestate = prestate.0;
    let mut out: Vec<u8> = Vec::new();
    // SAFETY: the key datum and `client` are readable for the call and
    // GnuTLS only reads them (it MACs the client data under the key);
    // `prestate` is a valid struct; `collect` gets `out` back as its
    // transport pointer, alive and not otherwise borrowed during the call.
    let rc = unsafe {
        sys::gnutls_dtls_cookie_send(
            &mut key_datum,
            client.as_ptr().cast_mut().cast(),
            client.len(),
            &mut prestate,
            std::ptr::from_mut(&mut out).cast(),
            Some(collect),
        )
    };
    check(rc)?;
    Ok(out)
}

/// Whether `hello`, a ClientHello datagram from `client`, echoes the
/// cookie made for that address under `key`: then the state the session
/// that answers it continues from.
pub(crate) fn verify_cookie(key: &CookieKey, client: &[u8], hello: &[u8]) -> Option<Prestate> {
    let mut key_datum = borrowed(&key.0).ok()?;
    let mut prestate = Prestate::new(0).0;
    // SAFETY: the key datum, `client` and `hello` are readable for the
    // call; GnuTLS reads them only, checking every offset against
    // `hello.len()` before it reads; `prestate` is a valid struct it fills.
    let rc = unsafe {
        sys::gnutls_dtls_cookie_verify(
            &mut key_datum,
            client.as_ptr().cast_mut().cast(),
            client.len(),
            hello.as_ptr().cast_mut().cast(),
            hello.len(),
            &mut prestate,
        )
    };
    (rc == 0).then_some(Prestate(prestate))
}

/// `gnutls_push_func` for [`hello_verify_request`]: appends the datagram
/// to the `Vec<u8>` behind `ptr`.
unsafe extern "C" fn collect(ptr: *mut c_void, data: *const c_void, len: usize) -> isize {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ptr` is the `Vec<u8>` hello_verify_request passed, alive
        // and exclusively ours for the call; GnuTLS passes `len` readable
        // bytes at `data`.
        unsafe {
            let out = &mut *ptr.cast::<Vec<u8>>();
            out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
        }
    }));
    match result {
        Ok(()) => isize::try_from(len).unwrap_or(isize::MAX),
        Err(_) => code::INTERRUPTED as isize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_made_for_one_address_under_one_key() {
        let key = CookieKey::generate().unwrap();
        let other = CookieKey::generate().unwrap();
        assert!(!key.same_as(&other));
        let reply = hello_verify_request(&key, b"192.0.2.1:4433", Prestate::new(7)).unwrap();
        // A DTLS handshake record holding a HelloVerifyRequest (type 3).
        assert_eq!(reply[0], 22);
        assert_eq!(reply[13], 3);
        assert_eq!(reply[10], 7, "the ClientHello's record sequence number");
        let cookie = &reply[reply.len() - 16..];
        let hello = client_hello_with(cookie);
        assert!(verify_cookie(&key, b"192.0.2.1:4433", &hello).is_some());
        assert!(verify_cookie(&key, b"192.0.2.1:4434", &hello).is_none());
        assert!(verify_cookie(&other, b"192.0.2.1:4433", &hello).is_none());
        assert!(verify_cookie(&key, b"192.0.2.1:4433", &hello[..40]).is_none());
    }

    /// The fields of a ClientHello the cookie check reads: record and
    /// handshake headers, version, random, an empty session ID, the cookie.
    fn client_hello_with(cookie: &[u8]) -> Vec<u8> {
        let mut hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        hello.extend_from_slice(&[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        hello.extend_from_slice(&[0xfe, 0xfd]);
        hello.extend_from_slice(&[0x42; 32]);
        hello.push(0);
        hello.push(cookie.len() as u8);
        hello.extend_from_slice(cookie);
        hello.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]);
        hello
    }
}
