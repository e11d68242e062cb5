//! Turning a GnuTLS [`Verification`] into [`SslError`]s, each attached to
//! the certificate on the built path where the problem arises.
//!
//! GnuTLS reports one status for a whole chain and the failing steps of the
//! path it built, from the top down, stopping at the first link that fails.
//! Qt users expect the list of every problem with its certificate, and an
//! ignore rule pinned to one certificate must never be satisfied by another:
//! a certificate the peer sent that is not on the path names no problem, and
//! when a link fails, the links below it are verified too, as if the failing
//! certificate were trusted ([`complete`]), so that a program that chooses
//! to trust it still has every problem below it reported. This file makes
//! the list; it decides nothing about ignoring.

use std::time::SystemTime;

use crate::certificate::Certificate;
use crate::error::{SslError, SslErrorKind};
use crate::gnutls::{code, GnutlsError, PathStep, Verification, VerifyStatus};

/// How many times the path below a failing certificate is verified again:
/// one more than GnuTLS's longest chain.
const MAX_ROUNDS: usize = 17;

/// The problems `verification` found in the peer's `chain` (leaf first).
/// `below(anchor)` verifies the chain trusting only `anchor`, a certificate
/// of the path, for [`complete`].
pub(crate) fn ssl_errors(
    verification: Result<Verification, GnutlsError>,
    chain: &[Certificate],
    below: impl Fn(&Certificate) -> Result<Verification, GnutlsError>,
) -> Vec<SslError> {
    let verification = match verification {
        Ok(verification) => verification,
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
    if verification.status.is_trusted() {
        return Vec::new();
    }
    let mut report = Report::new(chain);
    report.add(&verification);
    complete(&mut report, &verification, below);
    report.finish()
}

/// Verifies, round after round, the part of the path below its highest
/// failing certificate, trusting that certificate alone, until a round
/// finds nothing more or the leaf is reached.
fn complete(
    report: &mut Report<'_>,
    first: &Verification,
    below: impl Fn(&Certificate) -> Result<Verification, GnutlsError>,
) {
    let mut anchor = report.next_anchor(first);
    for _ in 0..MAX_ROUNDS {
        let Some(current) = anchor.take() else { return };
        if report.chain.first() == Some(&current) {
            return;
        }
        let verification = match below(&current) {
            Ok(v) => v,
            Err(e) => {
                log::debug!("verifying below {}: {e}", current.subject_dn());
                return report.push(SslErrorKind::UnspecifiedError, report.chain.first());
            }
        };
        if verification.status.is_trusted() {
            return;
        }
        report.add(&verification);
        anchor = report.next_anchor(&verification).filter(|a| *a != current);
    }
}

/// The problems found so far, without repeats.
struct Report<'a> {
    chain: &'a [Certificate],
    now: SystemTime,
    errors: Vec<SslError>,
}

impl<'a> Report<'a> {
    fn new(chain: &'a [Certificate]) -> Self {
        Self {
            chain,
            now: SystemTime::now(),
            errors: Vec::new(),
        }
    }

    fn push(&mut self, kind: SslErrorKind, certificate: Option<&Certificate>) {
        let error = SslError::new(kind, certificate.cloned());
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// Every problem of one verification: each step's on its certificate,
    /// and what no step explains (the name, the leaf's purpose, OCSP) on
    /// the leaf.
    ///
    /// A step counts only for the bits the overall status kept: when a path
    /// fails for an expired or insecure certificate, GnuTLS tries another
    /// path and, if that fails too, keeps the first one's result; the
    /// second path's steps are then not part of it.
    fn add(&mut self, verification: &Verification) {
        let mut explained = VerifyStatus::TRUSTED;
        for step in &verification.steps {
            let status = step.status.intersection(verification.status);
            if status.is_bare_invalid() && !step.status.is_bare_invalid() {
                continue;
            }
            let certificate = Certificate::from_der(&step.certificate).ok();
            let issuer = step
                .issuer
                .as_deref()
                .and_then(|der| Certificate::from_der(der).ok());
            self.add_step(status, certificate.as_ref(), issuer.as_ref());
            explained = explained.union(status);
        }
        let rest = verification.status.without(explained);
        if !rest.is_bare_invalid() || verification.steps.is_empty() {
            self.add_step(rest, self.chain.first(), None);
        }
    }

    /// The problems of one step: `certificate` checked against `issuer`.
    fn add_step(
        &mut self,
        status: VerifyStatus,
        certificate: Option<&Certificate>,
        issuer: Option<&Certificate>,
    ) {
        let before = self.errors.len();
        if status.expired() {
            self.dated(
                SslErrorKind::CertificateExpired,
                certificate,
                issuer,
                |c, now| c.is_expired_at(now),
            );
        }
        if status.not_activated() {
            self.dated(
                SslErrorKind::CertificateNotYetValid,
                certificate,
                issuer,
                |c, now| c.is_not_yet_valid_at(now),
            );
        }
        if status.signer_not_found() {
            let (kind, on) = self.missing_issuer(certificate);
            self.push(kind, on);
        }
        if status.signer_not_ca() {
            self.push(SslErrorKind::InvalidCaCertificate, issuer.or(certificate));
        }
        if status.purpose_mismatch() {
            self.push(SslErrorKind::InvalidPurpose, issuer.or(certificate));
        }
        if status.unknown_critical_extension() {
            // GnuTLS checks the certificate and its issuer alike: both are
            // named, so that no rule for one accepts the other.
            self.push(SslErrorKind::UnknownCriticalExtension, certificate);
            if issuer.is_some() {
                self.push(SslErrorKind::UnknownCriticalExtension, issuer);
            }
        }
        let on_certificate = [
            (status.unexpected_owner(), SslErrorKind::HostNameMismatch),
            (status.revoked(), SslErrorKind::CertificateRevoked),
            (status.insecure_algorithm(), SslErrorKind::InsecureAlgorithm),
            (
                status.signature_failure(),
                SslErrorKind::CertificateSignatureFailed,
            ),
            (status.ocsp_problem(), SslErrorKind::OcspResponseInvalid),
            (
                status.revocation_data_invalid(),
                SslErrorKind::RevocationDataInvalid,
            ),
            (status.mismatch(), SslErrorKind::CertificateUntrusted),
            (status.unknown_bits() != 0, SslErrorKind::UnspecifiedError),
        ];
        for (found, kind) in on_certificate {
            if found {
                self.push(kind, certificate);
            }
        }
        let named_nothing = self.errors.len() == before && !status.is_trusted();
        if named_nothing && status.is_bare_invalid() {
            self.push(SslErrorKind::CertificateUntrusted, certificate);
        }
    }

    /// A date problem on whichever of `certificate` and `issuer` is out of
    /// its validity (the certificate when neither seems to be).
    fn dated(
        &mut self,
        kind: SslErrorKind,
        certificate: Option<&Certificate>,
        issuer: Option<&Certificate>,
        is_bad: impl Fn(&Certificate, SystemTime) -> bool,
    ) {
        let mut found = false;
        for c in [certificate, issuer].into_iter().flatten() {
            if is_bad(c, self.now) {
                self.push(kind, Some(c));
                found = true;
            }
        }
        if !found {
            self.push(kind, certificate);
        }
    }

    /// Why no trusted issuer of `certificate` was found, and the
    /// certificate that problem names: a lone self-signed certificate, a
    /// path ending in a self-signed root the peer sent (GnuTLS drops such a
    /// root before it verifies), or a missing issuer.
    fn missing_issuer(
        &self,
        certificate: Option<&'a Certificate>,
    ) -> (SslErrorKind, Option<&'a Certificate>) {
        let Some(certificate) = certificate else {
            return (SslErrorKind::UnableToGetLocalIssuerCertificate, None);
        };
        if certificate.is_self_signed() {
            let kind = match self.chain.first() == Some(certificate) {
                true => SslErrorKind::SelfSignedCertificate,
                false => SslErrorKind::SelfSignedCertificateInChain,
            };
            return (kind, Some(certificate));
        }
        match self.self_signed_issuer(certificate) {
            Some(root) => (SslErrorKind::SelfSignedCertificateInChain, Some(root)),
            None => (
                SslErrorKind::UnableToGetLocalIssuerCertificate,
                Some(certificate),
            ),
        }
    }

    /// The self-signed root the peer sent as `certificate`'s issuer.
    fn self_signed_issuer(&self, certificate: &Certificate) -> Option<&'a Certificate> {
        self.chain
            .iter()
            .find(|c| *c != certificate && c.is_self_signed() && certificate.is_issued_by(c))
    }

    /// The certificate to trust for the next round: the one the highest
    /// failing step of `verification` names (the self-signed root above it
    /// when its issuer was missing), so that the links below it are checked.
    fn next_anchor(&self, verification: &Verification) -> Option<Certificate> {
        let step: &PathStep = verification.steps.last()?;
        let certificate = Certificate::from_der(&step.certificate).ok()?;
        if step.status.signer_not_found() {
            if let Some(root) = self.self_signed_issuer(&certificate) {
                return Some(root.clone());
            }
        }
        Some(certificate)
    }

    fn finish(mut self) -> Vec<SslError> {
        if self.errors.is_empty() {
            self.push(SslErrorKind::CertificateUntrusted, self.chain.first());
        }
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Certificate {
        let pem = include_bytes!("../../ca/server-leaf.pem");
        Certificate::from_pem(pem).unwrap()
    }

    fn never_below(_: &Certificate) -> Result<Verification, GnutlsError> {
        panic!("no round below the leaf")
    }

    #[test]
    fn every_status_bit_is_reported() {
        let chain = [leaf()];
        let status = VerifyStatus::INVALID
            .union(VerifyStatus::UNEXPECTED_OWNER)
            .union(VerifyStatus::REVOCATION_DATA_ISSUED_IN_FUTURE)
            .union(VerifyStatus(1 << 30));
        let errors = ssl_errors(
            Ok(Verification {
                status,
                steps: Vec::new(),
            }),
            &chain,
            never_below,
        );
        let kinds: Vec<SslErrorKind> = errors.iter().map(SslError::kind).collect();
        assert_eq!(
            kinds,
            [
                SslErrorKind::HostNameMismatch,
                SslErrorKind::RevocationDataInvalid,
                SslErrorKind::UnspecifiedError
            ]
        );
        assert!(errors.iter().all(|e| e.certificate() == Some(&chain[0])));
    }

    #[test]
    fn a_problem_is_named_on_the_step_where_it_arose() {
        let chain = [leaf()];
        let intermediate =
            Certificate::from_pem(include_bytes!("../../ca/intermediate-ca.pem")).unwrap();
        let step = PathStep {
            certificate: chain[0].to_der().to_vec(),
            issuer: Some(intermediate.to_der().to_vec()),
            status: VerifyStatus::INVALID.union(VerifyStatus::SIGNER_NOT_CA),
        };
        let errors = ssl_errors(
            Ok(Verification {
                status: step.status,
                steps: vec![step],
            }),
            &chain,
            never_below,
        );
        assert_eq!(
            errors,
            [SslError::new(
                SslErrorKind::InvalidCaCertificate,
                Some(intermediate)
            )]
        );
    }

    #[test]
    fn bare_invalid_is_untrusted() {
        let chain = [leaf()];
        let errors = ssl_errors(
            Ok(Verification {
                status: VerifyStatus::INVALID,
                steps: Vec::new(),
            }),
            &chain,
            never_below,
        );
        assert_eq!(
            errors,
            [SslError::new(
                SslErrorKind::CertificateUntrusted,
                Some(chain[0].clone())
            )]
        );
    }
}
