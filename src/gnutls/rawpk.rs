//! Raw public keys (RFC 7250): [`PubKey`], an owned `gnutls_pubkey_t` that
//! parses and re-encodes a SubjectPublicKeyInfo, and the credentials call
//! that makes a private key our raw public key.
//!
//! This file parses and describes keys; whether a peer's raw key is
//! trusted is the engine's decision (against the keys the configuration
//! trusts), never GnuTLS's: `gnutls_certificate_verify_peers` cannot verify
//! a raw key and refuses to try.

use std::ffi::c_uint;
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::credentials::CertificateCredentials;
use super::datum::{borrowed, OwnedDatum};
use super::error::{check, static_str, GnutlsError};
use super::privkey::X509PrivKey;
use super::x509::Encoding;

/// An owned, parsed public key (`gnutls_pubkey_t`).
pub(crate) struct PubKey {
    raw: NonNull<sys::gnutls_pubkey_st>,
}

impl PubKey {
    fn init() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the key.
        check(unsafe { sys::gnutls_pubkey_init(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        Ok(Self { raw })
    }

    /// Parses a SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----` in PEM).
    pub(crate) fn import(data: &[u8], encoding: Encoding) -> Result<Self, GnutlsError> {
        let key = Self::init()?;
        let datum = borrowed(data)?;
        // SAFETY: the key is live and `datum` borrows `data` for the call;
        // GnuTLS copies what it keeps.
        check(unsafe { sys::gnutls_pubkey_import(key.raw.as_ptr(), &datum, encoding.raw()) })?;
        Ok(key)
    }

    /// The public half of `private`.
    pub(crate) fn from_private_key(private: &X509PrivKey) -> Result<Self, GnutlsError> {
        let key = Self::init()?;
        let mut abstract_key = ptr::null_mut();
        // SAFETY: `abstract_key` is a valid out-pointer; on success we own it
        // and free it below, once, whatever happens in between.
        check(unsafe { sys::gnutls_privkey_init(&mut abstract_key) })?;
        // SAFETY: both keys are live; with IMPORT_COPY the abstract key holds
        // its own copy of `private`, and the public key its own values.
        let rc = unsafe {
            let rc = sys::gnutls_privkey_import_x509(
                abstract_key,
                private.as_raw(),
                sys::GNUTLS_PRIVKEY_IMPORT_COPY,
            );
            let rc = if rc < 0 {
                rc
            } else {
                sys::gnutls_pubkey_import_privkey(key.raw.as_ptr(), abstract_key, 0, 0)
            };
            sys::gnutls_privkey_deinit(abstract_key);
            rc
        };
        check(rc)?;
        Ok(key)
    }

    /// The SubjectPublicKeyInfo, encoded by GnuTLS.
    pub(crate) fn export(&self, encoding: Encoding) -> Result<Vec<u8>, GnutlsError> {
        let mut datum = OwnedDatum::empty();
        // SAFETY: the key is live; the datum receives a GnuTLS allocation that
        // OwnedDatum frees.
        check(unsafe {
            sys::gnutls_pubkey_export2(self.raw.as_ptr(), encoding.raw(), datum.as_mut_ptr())
        })?;
        Ok(datum.as_bytes().to_vec())
    }

    /// The algorithm's name ("RSA", "EC/ECDSA", …) and the key size in bits.
    pub(crate) fn algorithm(&self) -> (&'static str, u32) {
        let mut bits: c_uint = 0;
        // SAFETY: the key is live and `bits` is a valid out-pointer.
        let algorithm =
            unsafe { sys::gnutls_pubkey_get_pk_algorithm(self.raw.as_ptr(), &mut bits) };
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

impl Drop for PubKey {
    fn drop(&mut self) {
        // SAFETY: we own the key and free it once.
        unsafe { sys::gnutls_pubkey_deinit(self.raw.as_ptr()) }
    }
}

/// The SHA-256 (`sha256 == true`) or SHA-1 digest of `data`.
pub(crate) fn digest(data: &[u8], sha256: bool) -> Vec<u8> {
    let (algorithm, len) = match sha256 {
        true => (sys::GNUTLS_DIG_SHA256, 32),
        false => (sys::GNUTLS_DIG_SHA1, 20),
    };
    let mut out = vec![0u8; len];
    // SAFETY: `data` is readable for its length and `out` has room for the
    // digest of `algorithm`.
    let rc = unsafe {
        sys::gnutls_hash_fast(
            algorithm,
            data.as_ptr().cast(),
            data.len(),
            out.as_mut_ptr().cast(),
        )
    };
    match rc {
        0 => out,
        _ => Vec::new(),
    }
}

impl CertificateCredentials {
    /// Adds `key` as our raw public key pair, presented as the
    /// SubjectPublicKeyInfo `spki` (DER) when raw public keys are
    /// negotiated; returns the pair's index.
    pub(crate) fn add_raw_key_pair(
        &mut self,
        spki: &[u8],
        key: &X509PrivKey,
    ) -> Result<u32, GnutlsError> {
        let mut pkcs8 = OwnedDatum::empty();
        // SAFETY: the key is live; the datum receives a GnuTLS allocation
        // that OwnedDatum wipes and frees.
        check(unsafe {
            sys::gnutls_x509_privkey_export2_pkcs8(
                key.as_raw(),
                sys::GNUTLS_X509_FMT_DER,
                ptr::null(),
                sys::GNUTLS_PKCS_PLAIN,
                pkcs8.as_mut_ptr(),
            )
        })?;
        let spki = borrowed(spki)?;
        let pkcs8 = borrowed(pkcs8.as_bytes())?;
        // SAFETY: the credentials are live and exclusively borrowed; both
        // datums borrow live buffers for the call and GnuTLS copies them; no
        // names are given (a NULL list of length 0).
        let index = check(unsafe {
            sys::gnutls_certificate_set_rawpk_key_mem(
                self.as_raw(),
                &spki,
                &pkcs8,
                sys::GNUTLS_X509_FMT_DER,
                ptr::null(),
                0,
                ptr::null_mut(),
                0,
                0,
            )
        })?;
        Ok(index as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_key() -> X509PrivKey {
        let pem = include_bytes!("../../ca/server.key");
        X509PrivKey::import(pem, Encoding::Pem, None).unwrap()
    }

    #[test]
    fn the_public_half_of_a_key_round_trips() {
        let key = PubKey::from_private_key(&server_key()).unwrap();
        assert_eq!(key.algorithm(), ("EC/ECDSA", 256));
        let der = key.export(Encoding::Der).unwrap();
        let pem = key.export(Encoding::Pem).unwrap();
        assert!(pem.starts_with(b"-----BEGIN PUBLIC KEY-----"));
        let again = PubKey::import(&pem, Encoding::Pem).unwrap();
        assert_eq!(again.export(Encoding::Der).unwrap(), der);
        assert!(PubKey::import(b"not a key", Encoding::Der).is_err());
        assert_eq!(digest(&der, true).len(), 32);
        assert_eq!(digest(&der, false).len(), 20);
    }

    #[test]
    fn credentials_take_a_raw_key_pair() {
        super::super::global::init();
        let key = server_key();
        let spki = PubKey::from_private_key(&key)
            .unwrap()
            .export(Encoding::Der)
            .unwrap();
        let mut credentials = CertificateCredentials::new().unwrap();
        credentials.add_raw_key_pair(&spki, &key).unwrap();
        let client_key =
            X509PrivKey::import(include_bytes!("../../ca/client.key"), Encoding::Pem, None)
                .unwrap();
        let other = PubKey::from_private_key(&client_key)
            .unwrap()
            .export(Encoding::Der)
            .unwrap();
        let mut mismatched = CertificateCredentials::new().unwrap();
        assert!(mismatched.add_raw_key_pair(&other, &key).is_err());
    }
}
