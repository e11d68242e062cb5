//! [`Verification`]: what one GnuTLS path validation found, overall
//! ([`VerifyStatus`]) and step by step ([`PathStep`]: each certificate on
//! the path GnuTLS built that failed a check, with the issuer it was
//! checked against).
//!
//! GnuTLS reports one status for a whole chain. Which certificate a problem
//! belongs to is a question of the path GnuTLS actually built, not of the
//! position of a certificate in what the peer sent, so the steps come from
//! GnuTLS itself, through its verification output callback
//! (`gnutls_verify_output_function`). That callback has no user pointer:
//! [`collect_steps`] gathers what it reports on the calling thread, around
//! one verification call. The callback only copies certificates; it never
//! runs code from the layers above.

use std::cell::RefCell;
use std::ffi::{c_int, c_uint};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gnutls_sys as sys;

use super::x509::{export_raw, Encoding};

/// The `gnutls_certificate_status_t` bits of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct VerifyStatus(pub(crate) u32);

/// Every bit the predicates below name, and `GNUTLS_CERT_INVALID`.
const KNOWN: u32 = sys::GNUTLS_CERT_INVALID
    | sys::GNUTLS_CERT_REVOKED
    | sys::GNUTLS_CERT_SIGNER_NOT_FOUND
    | sys::GNUTLS_CERT_SIGNER_NOT_CA
    | sys::GNUTLS_CERT_INSECURE_ALGORITHM
    | sys::GNUTLS_CERT_NOT_ACTIVATED
    | sys::GNUTLS_CERT_EXPIRED
    | sys::GNUTLS_CERT_SIGNATURE_FAILURE
    | sys::GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED
    | sys::GNUTLS_CERT_UNEXPECTED_OWNER
    | sys::GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE
    | sys::GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE
    | sys::GNUTLS_CERT_MISMATCH
    | sys::GNUTLS_CERT_PURPOSE_MISMATCH
    | sys::GNUTLS_CERT_MISSING_OCSP_STATUS
    | sys::GNUTLS_CERT_INVALID_OCSP_STATUS
    | sys::GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS;

impl VerifyStatus {
    /// No problem found.
    pub(crate) const TRUSTED: Self = Self(0);

    pub(crate) fn is_trusted(self) -> bool {
        self.0 == 0
    }
    /// The bits of `self` that are not in `other`.
    pub(crate) fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
    /// The bits of either.
    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    /// The bits of both.
    pub(crate) fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
    /// Only `GNUTLS_CERT_INVALID` (or nothing): "not trusted", no reason given.
    pub(crate) fn is_bare_invalid(self) -> bool {
        self.0 & !sys::GNUTLS_CERT_INVALID == 0
    }
    /// Bits this version of the mapping does not know (a newer GnuTLS's).
    pub(crate) fn unknown_bits(self) -> u32 {
        self.0 & !KNOWN
    }
    pub(crate) fn expired(self) -> bool {
        self.0 & sys::GNUTLS_CERT_EXPIRED != 0
    }
    pub(crate) fn not_activated(self) -> bool {
        self.0 & sys::GNUTLS_CERT_NOT_ACTIVATED != 0
    }
    pub(crate) fn signer_not_found(self) -> bool {
        self.0 & sys::GNUTLS_CERT_SIGNER_NOT_FOUND != 0
    }
    pub(crate) fn signer_not_ca(self) -> bool {
        self.0 & (sys::GNUTLS_CERT_SIGNER_NOT_CA | sys::GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE) != 0
    }
    pub(crate) fn unexpected_owner(self) -> bool {
        self.0 & sys::GNUTLS_CERT_UNEXPECTED_OWNER != 0
    }
    pub(crate) fn revoked(self) -> bool {
        self.0 & sys::GNUTLS_CERT_REVOKED != 0
    }
    pub(crate) fn insecure_algorithm(self) -> bool {
        self.0 & sys::GNUTLS_CERT_INSECURE_ALGORITHM != 0
    }
    pub(crate) fn purpose_mismatch(self) -> bool {
        self.0 & sys::GNUTLS_CERT_PURPOSE_MISMATCH != 0
    }
    pub(crate) fn signature_failure(self) -> bool {
        self.0 & sys::GNUTLS_CERT_SIGNATURE_FAILURE != 0
    }
    pub(crate) fn ocsp_problem(self) -> bool {
        self.0 & (sys::GNUTLS_CERT_MISSING_OCSP_STATUS | sys::GNUTLS_CERT_INVALID_OCSP_STATUS) != 0
    }
    /// A CRL or OCSP response that is superseded or dated in the future.
    pub(crate) fn revocation_data_invalid(self) -> bool {
        self.0
            & (sys::GNUTLS_CERT_REVOCATION_DATA_SUPERSEDED
                | sys::GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE)
            != 0
    }
    /// The certificate is not the one expected (`GNUTLS_CERT_MISMATCH`).
    pub(crate) fn mismatch(self) -> bool {
        self.0 & sys::GNUTLS_CERT_MISMATCH != 0
    }
    pub(crate) fn unknown_critical_extension(self) -> bool {
        self.0 & sys::GNUTLS_CERT_UNKNOWN_CRIT_EXTENSIONS != 0
    }
}

/// Named bits, for tests above this module.
#[cfg(test)]
impl VerifyStatus {
    pub(crate) const INVALID: Self = Self(sys::GNUTLS_CERT_INVALID);
    pub(crate) const UNEXPECTED_OWNER: Self = Self(sys::GNUTLS_CERT_UNEXPECTED_OWNER);
    pub(crate) const REVOCATION_DATA_ISSUED_IN_FUTURE: Self =
        Self(sys::GNUTLS_CERT_REVOCATION_DATA_ISSUED_IN_FUTURE);
    pub(crate) const SIGNER_NOT_CA: Self = Self(sys::GNUTLS_CERT_SIGNER_NOT_CA);
}

/// One certificate on the path GnuTLS built that failed a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathStep {
    /// The certificate checked (DER).
    pub(crate) certificate: Vec<u8>,
    /// The issuer it was checked against (DER): the next certificate on the
    /// path or a trust anchor; `None` when no issuer was found.
    pub(crate) issuer: Option<Vec<u8>>,
    /// What this step found.
    pub(crate) status: VerifyStatus,
}

/// What one verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Verification {
    /// Everything found, the checks of the whole chain included (the name,
    /// the leaf's purpose, OCSP), which belong to no single step.
    pub(crate) status: VerifyStatus,
    /// The failing steps, in the order GnuTLS checked them: from the top of
    /// the path down, stopping at the first link that failed.
    pub(crate) steps: Vec<PathStep>,
}

impl Verification {
    /// A verification that found nothing wrong.
    pub(crate) fn trusted() -> Self {
        Self::default()
    }
}

thread_local! {
    /// The steps reported during the current [`collect_steps`], if any.
    static STEPS: RefCell<Option<Vec<PathStep>>> = const { RefCell::new(None) };
}

/// Runs `verify` (one GnuTLS verification call that reports to
/// [`step_reported`]) and returns its result with the failing steps it
/// reported.
pub(super) fn collect_steps<R>(verify: impl FnOnce() -> R) -> (R, Vec<PathStep>) {
    STEPS.with(|steps| *steps.borrow_mut() = Some(Vec::new()));
    let result = verify();
    let steps = STEPS
        .with(|steps| steps.borrow_mut().take())
        .unwrap_or_default();
    (result, steps)
}

/// `gnutls_verify_output_function`: records a failing step of the path
/// validation in progress on this thread.
pub(super) unsafe extern "C" fn step_reported(
    cert: sys::gnutls_x509_crt_t,
    issuer: sys::gnutls_x509_crt_t,
    _crl: sys::gnutls_x509_crl_t,
    status: c_uint,
) -> c_int {
    if status == 0 || cert.is_null() {
        return 0;
    }
    let record = || {
        // SAFETY: GnuTLS passes live certificate handles (or a NULL issuer)
        // for the duration of the callback.
        let certificate = unsafe { export_raw(cert, Encoding::Der) }.ok()?;
        let issuer = match issuer.is_null() {
            true => None,
            // SAFETY: as above.
            false => unsafe { export_raw(issuer, Encoding::Der) }.ok(),
        };
        let step = PathStep {
            certificate,
            issuer,
            status: VerifyStatus(status),
        };
        STEPS.with(|steps| steps.borrow_mut().as_mut().map(|s| s.push(step)))
    };
    // Nothing may unwind into GnuTLS; a step lost to a panic only makes the
    // report less precise (the overall status still fails the chain).
    let _ = catch_unwind(AssertUnwindSafe(record));
    0
}
