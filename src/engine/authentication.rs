//! Judging a peer that did not authenticate with an X.509 chain: one that
//! proved a pre-shared key, and one that presented an RFC 7250 raw public
//! key. Both end in the same gate as certificates ([`Engine::establish`],
//! which takes an [`Accepted`]).
//!
//! # Pre-shared keys
//!
//! GnuTLS finishes a PSK handshake only when the peer proved the key (TLS
//! 1.3: the client's binder and both Finished messages; TLS 1.2: both
//! Finished messages, keyed from the PSK and the (EC)DHE secret). It never
//! runs the certificate check for such a handshake, so the engine judges it
//! when the handshake is done ([`Engine::judge_pre_shared_key`]), and mints
//! the proof itself only when the key that was proved is the one this
//! configuration holds for the identity used:
//!
//! - a client: it offered one identity, its own, and GnuTLS asked for no
//!   other key; the server accepted that identity and proved the key. A
//!   client never offers a stored PSK session (see `Engine::may_resume`),
//!   so a resumed PSK session is refused. A client that holds a key
//!   accepts nothing else: a certificate is refused at the certificate
//!   check, or when the handshake is done if no check ran
//!   (`PeerVerifyMode::VerifyNone`), before anything is established.
//! - a server: the identity the client named is the one its lookup found
//!   in the table in this handshake (GnuTLS proved the key the table held
//!   then); a resumed session (TLS 1.2; TLS 1.3 tickets are not issued for
//!   PSK clients) is accepted while its identity is still in the table.
//!
//! A client without a key never negotiates a PSK key exchange (its
//! priority string does not allow one and GnuTLS has no key to offer), and
//! a PSK handshake it did not configure is refused all the same.
//!
//! # Raw public keys
//!
//! A raw key goes through the certificate check like a chain, but is
//! judged against the configuration's trusted raw keys instead of GnuTLS's
//! verification (which cannot verify one): [`Engine::peer_problems`] reports
//! [`SslErrorKind::RawPublicKeyNotTrusted`] for a key that is not among
//! them, on that key, so that ignoring it names that key. A resumed
//! session's restored key is judged again the same way.

use super::refusal::HANDSHAKE_FAILURE;
use super::{checks, Accepted, Engine, EngineEvent, Phase};
use crate::error::{Alert, Error, PskErrorKind, SslError, SslErrorKind};
use crate::gnutls::{code, GnutlsError, PeerAuthentication, RawAlert, Role};
use crate::raw_public_key::RawPublicKey;

/// Alerts (RFC 8446 §6.2).
const BAD_RECORD_MAC: u8 = 20;
const ILLEGAL_PARAMETER: u8 = 47;
const ACCESS_DENIED: u8 = 49;
const DECRYPT_ERROR: u8 = 51;
const UNKNOWN_PSK_IDENTITY: u8 = 115;

impl Engine {
    /// Whether this is a client that holds a pre-shared key, and so accepts
    /// no other authentication from its server.
    pub(super) fn requires_pre_shared_key(&self) -> bool {
        self.role == Role::Client && self.config.authentication().offered_identity().is_some()
    }

    /// At the certificate check of a client that holds a pre-shared key:
    /// refuses the certificate; the handshake fails with
    /// [`PskErrorKind::NotUsed`].
    pub(super) fn refuse_certificate_authentication(&mut self) {
        log::debug!("the server authenticated with a certificate, not the pre-shared key");
        self.psk_refusal = Some(PskErrorKind::NotUsed);
        self.session.decide_peer_check(false);
    }

    /// When the handshake is done: judges a peer that authenticated with a
    /// pre-shared key, and refuses any other peer of a client that requires
    /// one. `None` when neither applies (the peer is judged on its
    /// certificate or raw key).
    pub(super) fn judge_pre_shared_key(&mut self) -> Option<Result<(), Error>> {
        let psk = self.session.peer_authentication() == PeerAuthentication::PreSharedKey;
        if !psk && !self.requires_pre_shared_key() {
            return None;
        }
        // "The configuration verifies nothing" speaks of certificates; it
        // never stands in for a key.
        self.accepted = None;
        let judged = match psk {
            true => self.pre_shared_key_proof(),
            false => Err(PskErrorKind::NotUsed),
        };
        Some(match judged {
            Ok(()) => {
                log::debug!("the peer proved the pre-shared key");
                self.peer_verify_errors.clear();
                self.establish(Accepted(()));
                Ok(())
            }
            Err(kind) => Err(self.refuse_pre_shared_key(kind)),
        })
    }

    /// Whether the key the peer proved is the one this configuration holds
    /// for the identity used (see the module docs).
    fn pre_shared_key_proof(&self) -> Result<(), PskErrorKind> {
        let authentication = self.config.authentication();
        let resumed = self.session.is_resumed();
        let lookup = self.session.transport().psk_lookup.as_ref();
        match self.role {
            Role::Client => {
                let offered = authentication.offered_identity();
                let gave = lookup.filter(|l| l.found).map(|l| l.identity.as_slice());
                match offered.is_some() && offered == gave && !resumed {
                    true => Ok(()),
                    false => Err(PskErrorKind::NotUsed),
                }
            }
            Role::Server => {
                let identity = self.session.psk_identity().unwrap_or_default();
                let table = authentication
                    .table()
                    .ok_or(PskErrorKind::UnknownIdentity)?;
                let proved = match resumed {
                    true => table.contains(&identity),
                    false => lookup.is_some_and(|l| l.found && l.identity == identity),
                };
                proved.then_some(()).ok_or(PskErrorKind::UnknownIdentity)
            }
        }
    }

    /// Ends an established-at-GnuTLS-level handshake whose peer is refused
    /// on its key, with an alert that tells the peer no more than needed.
    fn refuse_pre_shared_key(&mut self, kind: PskErrorKind) -> Error {
        self.phase = Phase::Failed;
        let description = match kind {
            PskErrorKind::NotUsed => HANDSHAKE_FAILURE,
            _ => ACCESS_DENIED,
        };
        self.send_alert(RawAlert {
            fatal: true,
            description,
        });
        self.pre_shared_key_error(kind)
    }

    fn pre_shared_key_error(&self, kind: PskErrorKind) -> Error {
        let identity = match self.role {
            Role::Client => self.config.authentication().offered_identity(),
            Role::Server => None,
        };
        let identity = identity
            .map(<[u8]>::to_vec)
            .or_else(|| self.session.psk_identity())
            .or_else(|| {
                let lookup = self.session.transport().psk_lookup.as_ref();
                lookup.map(|l| l.identity.clone())
            })
            .unwrap_or_default();
        log::debug!("pre-shared key authentication failed: {kind}");
        Error::PreSharedKey { kind, identity }
    }

    /// When the handshake failed: the pre-shared key failure behind it, if
    /// that is what it was. A server whose lookup found no key, or whose
    /// client's proof did not verify, answers `decrypt_error` (the same for
    /// both, as RFC 4279 §2 allows, and RFC 8446's alert for a bad binder)
    /// and reports the identity; a client that offered a key and got the
    /// alert a server sends for a bad one reports it refused.
    pub(super) fn pre_shared_key_failure(&mut self, error: GnutlsError) -> Option<Error> {
        if let Some(kind) = self.psk_refusal.take() {
            self.send_alert(RawAlert {
                fatal: true,
                description: HANDSHAKE_FAILURE,
            });
            return Some(self.pre_shared_key_error(kind));
        }
        match self.role {
            Role::Server => self.server_key_failure(error),
            Role::Client => self.client_key_failure(error),
        }
    }

    /// A DTLS server whose lookup found no key for the client's identity
    /// (GnuTLS then goes on with a random one, RFC 4279 §2) has seen the
    /// client's Finished dropped: DTLS drops records that fail
    /// authentication instead of failing, so without this the handshake
    /// would only end at its timeout. It can no longer succeed; failing now
    /// reports the identity as TLS does after the same Finished.
    pub(super) fn unknown_identity_shown(&self) -> bool {
        let transport = self.session.transport();
        if self.role != Role::Server || transport.datagrams.is_none() {
            return false;
        }
        let lookup = transport.psk_lookup.as_ref();
        lookup.is_some_and(|l| !l.found) && self.session.discarded() > 0
    }

    fn server_key_failure(&mut self, error: GnutlsError) -> Option<Error> {
        let lookup = self.session.transport().psk_lookup.clone()?;
        let proof_failed = matches!(
            error.code(),
            code::RECEIVED_ILLEGAL_PARAMETER
                | code::DECRYPTION_FAILED
                | code::ERROR_IN_FINISHED_PACKET
        );
        let kind = match (lookup.found, proof_failed) {
            (false, _) if error.code() != code::FATAL_ALERT_RECEIVED => {
                PskErrorKind::UnknownIdentity
            }
            (true, true) => PskErrorKind::KeyMismatch,
            _ => return None,
        };
        if kind == PskErrorKind::UnknownIdentity {
            let identity = lookup.identity.clone();
            self.events
                .push_back(EngineEvent::PreSharedKeyIdentityUnknown(identity));
        }
        self.send_alert(RawAlert {
            fatal: true,
            description: DECRYPT_ERROR,
        });
        Some(self.pre_shared_key_error(kind))
    }

    fn client_key_failure(&mut self, error: GnutlsError) -> Option<Error> {
        let offered = self.requires_pre_shared_key();
        if !offered || error.code() != code::FATAL_ALERT_RECEIVED {
            return None;
        }
        let alert = self.session.received_alert(true);
        let refused = matches!(
            alert.description,
            BAD_RECORD_MAC | ILLEGAL_PARAMETER | DECRYPT_ERROR | UNKNOWN_PSK_IDENTITY
        );
        if !refused || !self.session.key_exchange_may_be_psk() {
            return None;
        }
        let alert = Alert::from_raw(alert);
        log::debug!("received {alert}");
        self.events.push_back(EngineEvent::AlertReceived(alert));
        Some(self.pre_shared_key_error(PskErrorKind::Refused))
    }

    /// Every problem with the peer's certificate chain or raw public key.
    pub(super) fn peer_problems(&self) -> Vec<SslError> {
        if !self.peer_uses_raw_public_key() {
            return self.problems(self.verify_peer());
        }
        let presented = !self.session.peer_certificates().is_empty();
        let mut problems = match self.peer_raw_public_key() {
            None if presented => vec![SslError::new(SslErrorKind::UnspecifiedError, None)],
            None => vec![SslError::new(SslErrorKind::NoPeerCertificate, None)],
            Some(key) if self.config.authentication().trusts(&key) => Vec::new(),
            Some(key) => vec![SslError::for_raw_public_key(
                SslErrorKind::RawPublicKeyNotTrusted,
                key,
            )],
        };
        // Pins restrict raw keys as they restrict certificates' keys.
        if let (Some(server), Some(key)) = (&self.server, self.peer_raw_public_key()) {
            if !checks::pinned(&self.config, server.name(), Some(&key.public_key_pin())) {
                problems.push(SslError::for_raw_public_key(
                    SslErrorKind::PublicKeyPinMismatch,
                    key,
                ));
            }
        }
        // A raw key has no status to staple: a configuration that requires
        // one is not satisfied.
        if self.role == Role::Client && self.config.ocsp_stapling_required() {
            problems.push(SslError::new(SslErrorKind::OcspResponseInvalid, None));
        }
        problems
    }

    pub(super) fn peer_uses_raw_public_key(&self) -> bool {
        self.session.peer_authentication() == PeerAuthentication::RawPublicKey
    }

    /// The raw public key the peer presented, if it authenticated with one.
    pub(crate) fn peer_raw_public_key(&self) -> Option<RawPublicKey> {
        if !self.peer_uses_raw_public_key() {
            return None;
        }
        let key = self.session.peer_certificates().first().copied()?;
        RawPublicKey::from_der(key).ok()
    }

    /// The PSK identity of an established PSK connection: a client's own
    /// (the one its key callback gave), or the one a server's client named.
    pub(crate) fn psk_identity(&self) -> Option<Vec<u8>> {
        let psk = self.session.peer_authentication() == PeerAuthentication::PreSharedKey;
        if !(self.is_established() && psk) {
            return None;
        }
        match self.role {
            Role::Client => {
                let lookup = self.session.transport().psk_lookup.as_ref();
                lookup.map(|l| l.identity.clone())
            }
            Role::Server => self.session.psk_identity(),
        }
    }
}
