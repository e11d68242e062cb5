//! The key that stands in for a [`TokenKey`] in certificate credentials,
//! so a configuration can be built before the token is logged in.
//!
//! Credentials take their keys when they are filled, and are only read
//! afterwards (sessions on many threads point at them). A token key that
//! waits for its PIN has nothing to give yet, so the credentials get an
//! external key (`gnutls_privkey_import_ext4`) whose callbacks pass every
//! operation on to the token key once it is logged in. Before that they
//! fail with `GNUTLS_E_PKCS11_USER_ERROR` (the layers above keep
//! handshakes from reaching them). The callbacks only look up the token key
//! and call GnuTLS; they never run program code, and a panic never crosses
//! back into C.

use std::ffi::{c_int, c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use gnutls_sys as sys;

use super::credentials::CertificateCredentials;
use super::error::{check, code, GnutlsError};
use super::pkcs11::{PrivKey, TokenKey};
use super::x509::X509Crt;

/// `GNUTLS_FLAGS_TO_SIGN_ALGO` (a macro in `gnutls/abstract.h`): where the
/// info callback's flags carry a signature algorithm.
const SIGN_ALGORITHM_SHIFT: u32 = 20;

impl CertificateCredentials {
    /// Adds a local certificate chain (leaf first) whose key is on a token;
    /// returns the pair's index. The key need not be logged in yet.
    pub(crate) fn add_token_key_pair(
        &mut self,
        chain: &[X509Crt],
        key: &Arc<TokenKey>,
    ) -> Result<u32, GnutlsError> {
        let mut pcerts = Pcerts::import(chain)?;
        let stand_in = stand_in_for(key)?;
        let len = c_int::try_from(pcerts.list.len())
            .map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST))?;
        // GnuTLS checks a new pair by signing with its key, which a key
        // waiting for its PIN cannot do: the check is skipped here, and made
        // by `TokenKey::login` instead.
        self.set_certificate_flags(
            sys::GNUTLS_CERTIFICATE_API_V2 | sys::GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH,
        );
        // SAFETY: the credentials are live and exclusively borrowed; the
        // certificates and the key are live. On success GnuTLS owns the
        // certificates' contents (it copies the array) and the key; on
        // failure they stay ours.
        let added = check(unsafe {
            sys::gnutls_certificate_set_key(
                self.as_raw(),
                ptr::null_mut(),
                0,
                pcerts.list.as_mut_ptr(),
                len,
                stand_in.as_raw(),
            )
        });
        self.set_certificate_flags(sys::GNUTLS_CERTIFICATE_API_V2);
        let index = added?;
        pcerts.list.clear();
        let _owned_by_the_credentials = stand_in.into_raw();
        Ok(index as u32)
    }

    /// The credentials' flags, as `CertificateCredentials::new` sets them
    /// (`GNUTLS_CERTIFICATE_API_V2`), plus any for one call.
    fn set_certificate_flags(&mut self, flags: sys::gnutls_certificate_flags) {
        // SAFETY: the credentials are live and exclusively borrowed.
        unsafe { sys::gnutls_certificate_set_flags(self.as_raw(), flags) }
    }
}

/// An external key passing its operations on to `key`. It holds a
/// reference to `key`, released when GnuTLS frees it.
fn stand_in_for(key: &Arc<TokenKey>) -> Result<PrivKey, GnutlsError> {
    let stand_in = PrivKey::new()?;
    let userdata = Arc::into_raw(Arc::clone(key)).cast_mut().cast::<c_void>();
    // SAFETY: the key is live and empty; `userdata` is a reference to the
    // token key that `release` gives back when GnuTLS frees the key (also
    // when this import fails: GnuTLS then frees nothing, so we do).
    let imported = check(unsafe {
        sys::gnutls_privkey_import_ext4(
            stand_in.as_raw(),
            userdata,
            Some(sign_data),
            Some(sign_hash),
            Some(decrypt),
            Some(release),
            Some(info),
            0,
        )
    });
    if let Err(e) = imported {
        // SAFETY: the reference taken above, not handed to GnuTLS.
        drop(unsafe { Arc::from_raw(userdata.cast::<TokenKey>()) });
        return Err(e);
    }
    Ok(stand_in)
}

/// The token key behind `userdata`.
///
/// # Safety
///
/// `userdata` is the reference `stand_in_for` gave GnuTLS, not yet released
/// (GnuTLS passes it to every callback of the stand-in).
unsafe fn token_key<'a>(userdata: *mut c_void) -> &'a TokenKey {
    // SAFETY: see the function's contract: the reference keeps the token key
    // alive for as long as GnuTLS may call.
    unsafe { &*userdata.cast::<TokenKey>() }
}

/// Runs `operation` with the logged-in key, or fails as a signature on a
/// token without login does; a panic becomes `GNUTLS_E_INTERNAL_ERROR`.
fn with_signer(key: &TokenKey, operation: impl FnOnce(&PrivKey) -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(|| match key.signer() {
        Some(signer) => operation(signer),
        None => code::PKCS11_USER_ERROR,
    }))
    .unwrap_or(sys::GNUTLS_E_INTERNAL_ERROR)
}

unsafe extern "C" fn sign_hash(
    _stand_in: sys::gnutls_privkey_t,
    algorithm: sys::gnutls_sign_algorithm_t,
    userdata: *mut c_void,
    flags: c_uint,
    hash: *const sys::gnutls_datum_t,
    signature: *mut sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: GnuTLS passes the userdata `stand_in_for` registered.
    let key = unsafe { token_key(userdata) };
    with_signer(key, |signer| {
        // SAFETY: the key is live; GnuTLS's hash and signature pointers are
        // valid for this call, and GnuTLS allocates the signature for its
        // caller. RSA PKCS#1 arrives as GNUTLS_SIGN_RSA_RAW over a
        // DigestInfo, which sign_hash2 signs as it is.
        unsafe {
            sys::gnutls_privkey_sign_hash2(signer.as_raw(), algorithm, flags, hash, signature)
        }
    })
}

unsafe extern "C" fn sign_data(
    _stand_in: sys::gnutls_privkey_t,
    algorithm: sys::gnutls_sign_algorithm_t,
    userdata: *mut c_void,
    flags: c_uint,
    data: *const sys::gnutls_datum_t,
    signature: *mut sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: GnuTLS passes the userdata `stand_in_for` registered.
    let key = unsafe { token_key(userdata) };
    with_signer(key, |signer| {
        // SAFETY: as in `sign_hash` (Ed25519 and Ed448 sign the data
        // itself).
        unsafe {
            sys::gnutls_privkey_sign_data2(signer.as_raw(), algorithm, flags, data, signature)
        }
    })
}

unsafe extern "C" fn decrypt(
    _stand_in: sys::gnutls_privkey_t,
    userdata: *mut c_void,
    ciphertext: *const sys::gnutls_datum_t,
    plaintext: *mut sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: GnuTLS passes the userdata `stand_in_for` registered.
    let key = unsafe { token_key(userdata) };
    with_signer(key, |signer| {
        // SAFETY: as in `sign_hash`; only the static RSA key exchange, which
        // the default priorities leave out, decrypts.
        unsafe { sys::gnutls_privkey_decrypt_data(signer.as_raw(), 0, ciphertext, plaintext) }
    })
}

/// What GnuTLS asks of the key: its algorithm and size (the
/// certificate's), and whether it can make a kind of signature. -1 for
/// anything else, as GnuTLS requires.
unsafe extern "C" fn info(
    _stand_in: sys::gnutls_privkey_t,
    flags: c_uint,
    userdata: *mut c_void,
) -> c_int {
    // SAFETY: GnuTLS passes the userdata `stand_in_for` registered.
    let key = unsafe { token_key(userdata) };
    catch_unwind(AssertUnwindSafe(|| {
        let (algorithm, bits) = key.algorithm();
        if flags & sys::GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO != 0 {
            return c_int::from(key.supports(flags >> SIGN_ALGORITHM_SHIFT));
        }
        match flags {
            sys::GNUTLS_PRIVKEY_INFO_PK_ALGO => algorithm,
            sys::GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS => c_int::try_from(bits).unwrap_or(-1),
            _ => -1,
        }
    }))
    .unwrap_or(-1)
}

/// GnuTLS frees the stand-in: the reference to the token key goes.
unsafe extern "C" fn release(_stand_in: sys::gnutls_privkey_t, userdata: *mut c_void) {
    let _ = catch_unwind(|| {
        // SAFETY: the reference `stand_in_for` gave GnuTLS, released once,
        // here, when GnuTLS frees the key.
        drop(unsafe { Arc::from_raw(userdata.cast::<TokenKey>()) });
    });
}

/// Certificates in GnuTLS's `pcert` form, freed on drop unless given away
/// (by clearing the list).
struct Pcerts {
    list: Vec<sys::gnutls_pcert_st>,
}

impl Pcerts {
    fn import(chain: &[X509Crt]) -> Result<Self, GnutlsError> {
        let mut pcerts = Self {
            list: Vec::with_capacity(chain.len()),
        };
        for crt in chain {
            let mut pcert = sys::gnutls_pcert_st {
                pubkey: ptr::null_mut(),
                cert: sys::gnutls_datum_t {
                    data: ptr::null_mut(),
                    size: 0,
                },
                type_: 0,
            };
            // SAFETY: `pcert` is a zeroed structure for GnuTLS to fill; the
            // certificate is live. On failure GnuTLS frees what it
            // allocated.
            check(unsafe { sys::gnutls_pcert_import_x509(&mut pcert, crt.as_raw(), 0) })?;
            pcerts.list.push(pcert);
        }
        Ok(pcerts)
    }
}

impl Drop for Pcerts {
    fn drop(&mut self) {
        for pcert in &mut self.list {
            // SAFETY: each entry was filled by gnutls_pcert_import_x509 and
            // is ours (entries given to GnuTLS were removed from the list).
            unsafe { sys::gnutls_pcert_deinit(pcert) }
        }
    }
}
