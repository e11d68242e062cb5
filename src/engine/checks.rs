//! What a client checks of a server beyond its chain: the public key pins
//! and, in trust-on-first-use mode, the key the program stored for the
//! server. Each adds problems to the list verification made (or, for the
//! stored key, takes the place of the authorities' problems); none can
//! remove a problem of another kind, so the trust invariant holds with
//! them: a pin only restricts, and a stored key is the program's own
//! earlier decision for this very host and port.

use crate::certificate::Certificate;
use crate::config::{ServerKey, SslConfiguration};
use crate::error::{SslError, SslErrorKind};
use crate::gnutls::KnownKey;

/// Whether `config` checks anything of a server expecting `name` beyond
/// its chain.
pub(super) fn any(config: &SslConfiguration, name: &str) -> bool {
    config.known_keys().is_some() || config.pins_for(name).is_some()
}

/// A leaf whose key is none of the configuration's pins for `name` is
/// [`SslErrorKind::PublicKeyPinMismatch`].
pub(super) fn pins(
    config: &SslConfiguration,
    name: &str,
    leaf: Option<&Certificate>,
    errors: &mut Vec<SslError>,
) {
    let pin = leaf.map(Certificate::public_key_pin);
    if !pinned(config, name, pin.as_deref()) {
        errors.push(SslError::new(
            SslErrorKind::PublicKeyPinMismatch,
            leaf.cloned(),
        ));
    }
}

/// Whether the key with `pin` (none: no key) passes the configuration's
/// pins for `name` (true when there are none).
pub(super) fn pinned(config: &SslConfiguration, name: &str, pin: Option<&str>) -> bool {
    let Some(pins) = config.pins_for(name) else {
        return true;
    };
    let pinned = pin.is_some_and(|pin| pins.contains(&pin));
    if !pinned {
        log::debug!(
            "{name}: the public key is none of the {} pin(s)",
            pins.len()
        );
    }
    pinned
}

/// The problems with the chain's issuers, which a stored key stands in for.
fn about_the_issuers(kind: SslErrorKind) -> bool {
    matches!(
        kind,
        SslErrorKind::UnableToGetLocalIssuerCertificate
            | SslErrorKind::SelfSignedCertificate
            | SslErrorKind::SelfSignedCertificateInChain
            | SslErrorKind::CertificateUntrusted
    )
}

/// In trust-on-first-use mode: the key the program stored for `server`
/// replaces the authorities, so the issuers' problems give way to what the
/// database says of the leaf's key: nothing when it is the key stored,
/// [`SslErrorKind::PublicKeyUnknown`] or [`SslErrorKind::PublicKeyChanged`]
/// otherwise. A database that cannot be read fails the check.
pub(super) fn known_key(
    config: &SslConfiguration,
    server: &ServerKey,
    leaf: Option<&Certificate>,
    errors: &mut Vec<SslError>,
) {
    let Some(keys) = config.known_keys() else {
        return;
    };
    errors.retain(|e| !about_the_issuers(e.kind()));
    let found = match leaf {
        Some(leaf) => keys.check(server.name(), &server.service(), leaf.to_der()),
        None => Ok(KnownKey::Unknown),
    };
    let kind = match found {
        Ok(KnownKey::Same) => return,
        Ok(KnownKey::Unknown) => SslErrorKind::PublicKeyUnknown,
        Ok(KnownKey::Changed) => SslErrorKind::PublicKeyChanged,
        Err(e) => {
            log::debug!("{server}: the known keys cannot be read: {e}");
            SslErrorKind::UnspecifiedError
        }
    };
    log::debug!("{server}: {kind}");
    errors.push(SslError::new(kind, leaf.cloned()));
}
