//! [`X509PrivKey`]: an owned `gnutls_x509_privkey_t`.

use std::ffi::c_uint;
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::datum::borrowed;
use super::error::{check, static_str, GnutlsError};
use super::secret;
use super::x509::Encoding;

/// A parsed private key (RSA, ECDSA, Ed25519, …).
pub(crate) struct X509PrivKey {
    raw: NonNull<sys::gnutls_x509_privkey_int>,
}

// SAFETY: after import the key is only read (by gnutls_certificate_set_x509_key,
// which copies it, and by the getters); GnuTLS objects may move between threads
// when not used concurrently for writing.
unsafe impl Send for X509PrivKey {}
// SAFETY: see `Send`: shared access is read-only.
unsafe impl Sync for X509PrivKey {}

impl X509PrivKey {
    /// Parses a key in PKCS#1, SEC1 or PKCS#8 form, decrypting encrypted
    /// PKCS#8 with `password` (its C copy is wiped; GnuTLS wipes the key's
    /// values when the key is deinitialised).
    pub(crate) fn import(
        data: &[u8],
        encoding: Encoding,
        password: Option<&str>,
    ) -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the key.
        check(unsafe { sys::gnutls_x509_privkey_init(&mut raw) })?;
        let key = Self {
            raw: NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?,
        };
        let datum = borrowed(data)?;
        let password = password.map(secret::password).transpose()?;
        let password_ptr = password.as_ref().map_or(ptr::null(), |p| p.as_ptr());
        // SAFETY: the key is live; `datum` borrows `data` and the password is
        // NUL-terminated or NULL; GnuTLS copies what it keeps.
        check(unsafe {
            sys::gnutls_x509_privkey_import2(key.as_raw(), &datum, encoding.raw(), password_ptr, 0)
        })?;
        Ok(key)
    }

    pub(crate) fn as_raw(&self) -> sys::gnutls_x509_privkey_t {
        self.raw.as_ptr()
    }

    /// The algorithm's name and the key size in bits.
    pub(crate) fn algorithm(&self) -> (&'static str, u32) {
        let mut bits: c_uint = 0;
        // SAFETY: the key is live and `bits` is a valid out-pointer.
        let algorithm =
            unsafe { sys::gnutls_x509_privkey_get_pk_algorithm2(self.as_raw(), &mut bits) };
        if algorithm < 0 {
            return ("", 0);
        }
        // SAFETY: any algorithm number is accepted; the name is static.
        let name = static_str(unsafe {
            sys::gnutls_pk_algorithm_get_name(algorithm as sys::gnutls_pk_algorithm_t)
        });
        (name, bits)
    }
}

impl Drop for X509PrivKey {
    fn drop(&mut self) {
        // SAFETY: we own the key and free it once.
        unsafe { sys::gnutls_x509_privkey_deinit(self.raw.as_ptr()) }
    }
}
