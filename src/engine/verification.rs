//! Turning GnuTLS's verification status bits into [`SslError`]s, each
//! attached to the certificate it concerns.
//!
//! GnuTLS reports one status for a whole chain; Qt users expect a list of
//! problems with their certificates. This file makes the list, from the
//! status and the chain alone; it decides nothing about ignoring them.

use std::time::SystemTime;

use crate::certificate::Certificate;
use crate::error::{SslError, SslErrorKind};
use crate::gnutls::{code, GnutlsError, VerifyStatus};

/// The problems in `status` for the peer's `chain` (leaf first).
pub(crate) fn ssl_errors(
    status: Result<VerifyStatus, GnutlsError>,
    chain: &[Certificate],
) -> Vec<SslError> {
    let status = match status {
        Ok(status) => status,
        Err(e) if e.code() == code::NO_CERTIFICATE_FOUND => {
            return vec![SslError::new(SslErrorKind::NoPeerCertificate, None)];
        }
        Err(e) => {
            log::debug!("peer verification failed inside GnuTLS: {e}");
            return vec![SslError::new(
                SslErrorKind::UnspecifiedError,
                chain.first().cloned(),
            )];
        }
    };
    if status.is_trusted() {
        return Vec::new();
    }
    let leaf = chain.first();
    let now = SystemTime::now();
    let mut errors = Vec::new();
    let mut add =
        |kind, cert: Option<&Certificate>| errors.push(SslError::new(kind, cert.cloned()));

    if status.expired() {
        for_each_or_leaf(
            chain,
            |c| c.is_expired_at(now),
            |c| add(SslErrorKind::CertificateExpired, c),
        );
    }
    if status.not_activated() {
        for_each_or_leaf(
            chain,
            |c| c.is_not_yet_valid_at(now),
            |c| add(SslErrorKind::CertificateNotYetValid, c),
        );
    }
    if status.unexpected_owner() {
        add(SslErrorKind::HostNameMismatch, leaf);
    }
    if status.signer_not_found() {
        let (kind, cert) = missing_issuer(chain);
        add(kind, cert);
    }
    if status.signer_not_ca() {
        add(SslErrorKind::InvalidCaCertificate, chain.get(1).or(leaf));
    }
    if status.purpose_mismatch() {
        add(SslErrorKind::InvalidPurpose, leaf);
    }
    if status.revoked() {
        add(SslErrorKind::CertificateRevoked, leaf);
    }
    if status.insecure_algorithm() {
        add(SslErrorKind::InsecureAlgorithm, leaf);
    }
    if status.signature_failure() {
        add(SslErrorKind::CertificateSignatureFailed, leaf);
    }
    if status.ocsp_problem() {
        add(SslErrorKind::OcspResponseInvalid, leaf);
    }
    if status.unknown_critical_extension() {
        add(SslErrorKind::UnknownCriticalExtension, leaf);
    }
    if errors.is_empty() {
        errors.push(SslError::new(
            SslErrorKind::CertificateUntrusted,
            leaf.cloned(),
        ));
    }
    errors
}

/// Calls `report` for every certificate of the chain that `is_bad` picks,
/// or once with the leaf when none does (the bad one is then an anchor from
/// the trust store, which the peer did not send).
fn for_each_or_leaf(
    chain: &[Certificate],
    is_bad: impl Fn(&Certificate) -> bool,
    mut report: impl FnMut(Option<&Certificate>),
) {
    let mut found = false;
    for cert in chain.iter().filter(|c| is_bad(c)) {
        report(Some(cert));
        found = true;
    }
    if !found {
        report(chain.first());
    }
}

/// Why no trusted issuer was found: a lone self-signed certificate, a chain
/// ending in an untrusted self-signed root, or a missing issuer.
fn missing_issuer(chain: &[Certificate]) -> (SslErrorKind, Option<&Certificate>) {
    let last = chain.last();
    match last {
        Some(cert) if cert.is_self_signed() && chain.len() == 1 => {
            (SslErrorKind::SelfSignedCertificate, last)
        }
        Some(cert) if cert.is_self_signed() => (SslErrorKind::SelfSignedCertificateInChain, last),
        _ => (SslErrorKind::UnableToGetLocalIssuerCertificate, last),
    }
}
