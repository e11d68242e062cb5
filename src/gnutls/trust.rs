//! [`verify_chain`]: certificate chain verification outside a handshake,
//! through a `gnutls_x509_trust_list_t`: against a configuration's anchors,
//! or against one certificate a program may choose to trust (to learn what
//! is wrong below it).

use std::ffi::{c_uint, CString};
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::error::{check, code, GnutlsError};
use super::transport::Purpose;
use super::verify::{collect_steps, step_reported, Verification, VerifyStatus};
use super::x509::{Encoding, X509Crt};

/// An owned trust list.
struct TrustList {
    raw: NonNull<sys::gnutls_x509_trust_list_st>,
}

impl TrustList {
    fn new() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the list.
        check(unsafe { sys::gnutls_x509_trust_list_init(&mut raw, 0) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        Ok(Self { raw })
    }

    /// Adds trust anchors; the list takes ownership of them.
    fn add_anchors(&mut self, anchors: Vec<X509Crt>) -> Result<(), GnutlsError> {
        let raw: Vec<sys::gnutls_x509_crt_t> = anchors.iter().map(X509Crt::as_raw).collect();
        // SAFETY: the list is live; on success it owns the certificates and
        // frees them in gnutls_x509_trust_list_deinit(all = 1), so they must
        // not be freed here: `forget` hands them over.
        check(unsafe {
            sys::gnutls_x509_trust_list_add_cas(
                self.raw.as_ptr(),
                raw.as_ptr(),
                raw.len() as c_uint,
                0,
            )
        })?;
        anchors.into_iter().for_each(std::mem::forget);
        Ok(())
    }

    fn add_system(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: the list is live.
        check(unsafe { sys::gnutls_x509_trust_list_add_system_trust(self.raw.as_ptr(), 0, 0) })?;
        Ok(())
    }

    fn add_crls(&mut self, pem: &[u8]) -> Result<(), GnutlsError> {
        let datum = super::datum::borrowed(pem)?;
        // SAFETY: the list is live; the datum borrows `pem` for the call and
        // GnuTLS parses and keeps its own copies of the CRLs.
        check(unsafe {
            sys::gnutls_x509_trust_list_add_trust_mem(
                self.raw.as_ptr(),
                ptr::null(),
                &datum,
                Encoding::Pem.raw(),
                0,
                0,
            )
        })?;
        Ok(())
    }
}

impl Drop for TrustList {
    fn drop(&mut self) {
        // SAFETY: we own the list and everything added to it (all = 1).
        unsafe { sys::gnutls_x509_trust_list_deinit(self.raw.as_ptr(), 1) }
    }
}

/// Where verification looks for trust.
pub(crate) struct Anchors<'a> {
    pub(crate) certificates: Vec<X509Crt>,
    pub(crate) crls_pem: &'a [u8],
    pub(crate) system: bool,
}

/// Verifies `chain` (leaf first) for `purpose` and, when given, `hostname`,
/// as a handshake would, with the failing steps of the path GnuTLS built;
/// `profile_flags` are `gnutls_certificate_verify_flags`.
pub(crate) fn verify_chain(
    chain: &[X509Crt],
    anchors: Anchors<'_>,
    hostname: Option<&str>,
    purpose: Purpose,
    profile_flags: u32,
) -> Result<Verification, GnutlsError> {
    let mut list = TrustList::new()?;
    list.add_anchors(anchors.certificates)?;
    if anchors.system {
        list.add_system()?;
    }
    if !anchors.crls_pem.is_empty() {
        list.add_crls(anchors.crls_pem)?;
    }
    let purpose: &[u8] = match purpose {
        Purpose::Server => sys::GNUTLS_KP_TLS_WWW_SERVER,
        Purpose::Client => sys::GNUTLS_KP_TLS_WWW_CLIENT,
    };
    let name = hostname
        .map(|h| CString::new(h).map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST)))
        .transpose()?;
    let mut data = vec![sys::gnutls_typed_vdata_st {
        type_: sys::GNUTLS_DT_KEY_PURPOSE_OID,
        data: purpose.as_ptr().cast_mut(),
        size: 0,
    }];
    if let Some(name) = &name {
        data.push(sys::gnutls_typed_vdata_st {
            type_: sys::GNUTLS_DT_DNS_HOSTNAME,
            data: name.as_ptr().cast_mut().cast(),
            size: 0,
        });
    }
    let mut raw_chain: Vec<sys::gnutls_x509_crt_t> = chain.iter().map(X509Crt::as_raw).collect();
    let mut status: c_uint = 0;
    // SAFETY: the list and the certificates are live for the call; `data`
    // holds NUL-terminated strings that outlive it; the output callback only
    // reaches this thread's collector.
    let (rc, steps) = collect_steps(|| unsafe {
        sys::gnutls_x509_trust_list_verify_crt2(
            list.raw.as_ptr(),
            raw_chain.as_mut_ptr(),
            raw_chain.len() as c_uint,
            data.as_mut_ptr(),
            data.len() as c_uint,
            profile_flags,
            &mut status,
            Some(step_reported),
        )
    });
    check(rc)?;
    Ok(Verification {
        status: VerifyStatus(status),
        steps,
    })
}
