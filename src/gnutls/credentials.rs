//! [`CertificateCredentials`]: an owned `gnutls_certificate_credentials_t`,
//! the trust anchors, revocation lists and local key pairs sessions use.
//!
//! Credentials are filled once, while a configuration is built, and then
//! only read by the sessions that point at them.

use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::datum::borrowed;
use super::error::{check, code, GnutlsError};
use super::privkey::X509PrivKey;
use super::secret;
use super::x509::{Encoding, X509Crt};

/// Certificate credentials: trust store, CRLs and local certificates.
pub(crate) struct CertificateCredentials {
    raw: NonNull<sys::gnutls_certificate_credentials_st>,
}

// SAFETY: GnuTLS documents credentials as safe for concurrent read-only use
// by sessions in different threads ("read-only access to objects, for example
// the credentials holding structures, is also thread-safe"). Every mutating
// method takes `&mut self`, so once shared (behind an `Arc`) they are only read.
unsafe impl Send for CertificateCredentials {}
// SAFETY: see the `Send` impl: shared access is read-only.
unsafe impl Sync for CertificateCredentials {}

impl CertificateCredentials {
    /// Empty credentials: no trust anchors, no key.
    pub(crate) fn new() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the object.
        check(unsafe { sys::gnutls_certificate_allocate_credentials(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        // SAFETY: the credentials are live; with API_V2 the key-setting calls
        // return the index of the key pair they added.
        unsafe { sys::gnutls_certificate_set_flags(raw.as_ptr(), sys::GNUTLS_CERTIFICATE_API_V2) };
        Ok(Self { raw })
    }

    /// The raw handle, to attach to a session.
    pub(crate) fn as_raw(&self) -> sys::gnutls_certificate_credentials_t {
        self.raw.as_ptr()
    }

    /// Adds the system trust store; returns how many certificates it held.
    pub(crate) fn add_system_trust(&mut self) -> Result<usize, GnutlsError> {
        // SAFETY: the credentials are live and exclusively borrowed.
        let n = check(unsafe { sys::gnutls_certificate_set_x509_system_trust(self.as_raw()) })?;
        Ok(n as usize)
    }

    /// Adds trust anchors from memory; returns how many were added.
    pub(crate) fn add_trust(
        &mut self,
        data: &[u8],
        encoding: Encoding,
    ) -> Result<usize, GnutlsError> {
        let datum = borrowed(data)?;
        // SAFETY: the credentials are live and exclusively borrowed; GnuTLS
        // copies the certificates out of `datum` during the call.
        let n = check(unsafe {
            sys::gnutls_certificate_set_x509_trust_mem(self.as_raw(), &datum, encoding.raw())
        })?;
        Ok(n as usize)
    }

    /// Adds certificate revocation lists from memory; returns how many.
    pub(crate) fn add_crls(
        &mut self,
        data: &[u8],
        encoding: Encoding,
    ) -> Result<usize, GnutlsError> {
        let datum = borrowed(data)?;
        // SAFETY: as in `add_trust`; GnuTLS copies the CRLs.
        let n = check(unsafe {
            sys::gnutls_certificate_set_x509_crl_mem(self.as_raw(), &datum, encoding.raw())
        })?;
        Ok(n as usize)
    }

    /// Adds a local certificate chain (leaf first) and its private key;
    /// returns the pair's index. GnuTLS copies both.
    pub(crate) fn add_key_pair(
        &mut self,
        chain: &[X509Crt],
        key: &X509PrivKey,
    ) -> Result<u32, GnutlsError> {
        // GnuTLS 3.7 leaks the copied key when a certificate of the chain
        // cannot be imported inside gnutls_certificate_set_x509_key (an
        // unsupported curve, say): find that out first.
        for crt in chain {
            check_importable(crt)?;
        }
        let mut raw_chain: Vec<sys::gnutls_x509_crt_t> =
            chain.iter().map(X509Crt::as_raw).collect();
        let len = std::ffi::c_int::try_from(raw_chain.len())
            .map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST))?;
        // SAFETY: the credentials are live and exclusively borrowed; the
        // certificate handles and the key are live for the call, and GnuTLS
        // copies them (they may be freed afterwards).
        let index = check(unsafe {
            sys::gnutls_certificate_set_x509_key(
                self.as_raw(),
                raw_chain.as_mut_ptr(),
                len,
                key.as_raw(),
            )
        })?;
        Ok(index as u32)
    }

    /// Adds the key and certificate chain of a PKCS#12 bundle; returns the
    /// pair's index.
    pub(crate) fn add_pkcs12(
        &mut self,
        data: &[u8],
        encoding: Encoding,
        password: &str,
    ) -> Result<u32, GnutlsError> {
        let datum = borrowed(data)?;
        let password = secret::password(password)?;
        // SAFETY: the credentials are live and exclusively borrowed; the datum
        // borrows `data` and the password is NUL-terminated (and wiped when
        // dropped, after the call); GnuTLS copies.
        let index = check(unsafe {
            sys::gnutls_certificate_set_x509_simple_pkcs12_mem(
                self.as_raw(),
                &datum,
                encoding.raw(),
                password.as_ptr(),
            )
        })?;
        Ok(index as u32)
    }

    /// The certificate chain of key pair `index`, leaf first.
    pub(crate) fn chain(&self, index: u32) -> Result<Vec<X509Crt>, GnutlsError> {
        let mut list: *mut sys::gnutls_x509_crt_t = std::ptr::null_mut();
        let mut size = 0;
        // SAFETY: the credentials are live; GnuTLS returns copies of the
        // certificates in an array it allocates: we own both.
        check(unsafe {
            sys::gnutls_certificate_get_x509_crt(self.as_raw(), index, &mut list, &mut size)
        })?;
        // SAFETY: `list` holds `size` certificates we now own.
        Ok(unsafe { X509Crt::take_array(list, size) })
    }

    /// Staples the DER OCSP response in `data` for key pair `index`.
    pub(crate) fn set_ocsp_response(&mut self, data: &[u8], index: u32) -> Result<(), GnutlsError> {
        let datum = borrowed(data)?;
        // SAFETY: the credentials are live and exclusively borrowed; GnuTLS
        // copies the response (and checks that it is for that certificate).
        check(unsafe {
            sys::gnutls_certificate_set_ocsp_status_request_mem(
                self.as_raw(),
                &datum,
                index,
                sys::GNUTLS_X509_FMT_DER,
            )
        })?;
        Ok(())
    }

    /// Limits the peer's key size and chain length accepted in verification.
    /// Offers DHE with the RFC 7919 group of the "medium" security level
    /// (ffdhe2048) to clients that do not name a group, as `gnutls-serv`
    /// does; clients that name groups get one of theirs.
    pub(crate) fn set_known_dh_params(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: the credentials are live and exclusively borrowed; GnuTLS
        // points them at its own static parameters.
        check(unsafe {
            sys::gnutls_certificate_set_known_dh_params(self.as_raw(), sys::GNUTLS_SEC_PARAM_MEDIUM)
        })?;
        Ok(())
    }

    pub(crate) fn set_verify_limits(&mut self, max_bits: u32, max_depth: u32) {
        // SAFETY: the credentials are live and exclusively borrowed.
        unsafe { sys::gnutls_certificate_set_verify_limits(self.as_raw(), max_bits, max_depth) }
    }
}

/// Whether GnuTLS can use `crt` as part of a local chain (it imports it the
/// same way `gnutls_certificate_set_x509_key` does).
fn check_importable(crt: &X509Crt) -> Result<(), GnutlsError> {
    let mut pcert = sys::gnutls_pcert_st {
        pubkey: ptr::null_mut(),
        cert: sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        },
        type_: 0,
    };
    // SAFETY: `pcert` is a zeroed structure for GnuTLS to fill; the
    // certificate is live. On success the pcert owns copies, freed by
    // gnutls_pcert_deinit; on failure GnuTLS has freed what it allocated.
    unsafe {
        check(sys::gnutls_pcert_import_x509(&mut pcert, crt.as_raw(), 0))?;
        sys::gnutls_pcert_deinit(&mut pcert);
    }
    Ok(())
}

impl Drop for CertificateCredentials {
    fn drop(&mut self) {
        // SAFETY: we own the credentials; every session that pointed at them
        // holds an `Arc` to them and has been deinitialised before the last
        // reference drops.
        unsafe { sys::gnutls_certificate_free_credentials(self.raw.as_ptr()) }
    }
}
