//! [`TokenLogin`]: one token key of a configuration, its login state, and
//! the sockets waiting for its PIN; [`load_token_identity`], which puts a
//! certificate and its token key into a configuration's credentials.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{url, PinRequest, Pkcs11ErrorKind};
use crate::certificate::{invalid, Certificate};
use crate::context::SocketId;
use crate::error::{Error, Result};
use crate::gnutls::{code, CertificateCredentials, LoginFailure, PinAnswer, TokenKey};
use crate::handle::ReactorHandle;

/// Successful logins in this process. A key that waits for its PIN tries
/// again without one after another key's login: PKCS#11 logs the process in
/// to the whole token, so a key on the same token needs no PIN of its own.
static LOGINS: AtomicU64 = AtomicU64::new(0);

/// A token key of one configuration.
pub(crate) struct TokenLogin {
    key: Arc<TokenKey>,
    /// The URL without the PIN it may carry.
    url: String,
    state: Mutex<LoginState>,
    /// `LOGINS` when this key last tried to log in without a PIN.
    tried_at: AtomicU64,
}

#[derive(Default)]
struct LoginState {
    /// Logins with a PIN that failed, and the last one's error.
    failures: u64,
    last_failure: Option<Error>,
    /// Sockets to wake when a login ends.
    waiters: Vec<Waiter>,
    next_ticket: u64,
}

struct Waiter {
    ticket: u64,
    handle: ReactorHandle,
    socket: SocketId,
}

/// A socket's place among those waiting for a PIN; leaving it (dropping
/// this) stops the wake-up.
pub(crate) struct PinWait {
    login: Arc<TokenLogin>,
    ticket: Option<u64>,
}

impl Drop for PinWait {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            lock(&self.login.state)
                .waiters
                .retain(|w| w.ticket != ticket);
        }
    }
}

/// Loads the certificate chain in `chain` (PEM, leaf first) with the key
/// the PKCS#11 URL `key_url` names into `credentials`, logging in with
/// `pin` when one is given (else the key waits for a [`PinRequest`] unless
/// the token needs none). Returns the pair's index, the chain and the key's
/// login state.
pub(crate) fn load_token_identity(
    credentials: &mut CertificateCredentials,
    chain: &Path,
    key_url: &str,
    pin: Option<&str>,
) -> Result<(u32, Vec<Certificate>, Arc<TokenLogin>)> {
    let origin = chain.display().to_string();
    if !url::is_pkcs11(key_url) {
        return Err(invalid(
            &url::redacted(key_url),
            "not a PKCS#11 URL (pkcs11:…)".into(),
        ));
    }
    let certificates = Certificate::from_file(chain)?;
    let parsed: Vec<_> = certificates
        .iter()
        .filter_map(Certificate::parsed)
        .collect();
    let Some(leaf) = parsed.first() else {
        return Err(invalid(&origin, "the certificate chain is empty".into()));
    };
    let key = TokenKey::new(key_url, leaf).map_err(|e| {
        invalid(
            &url::redacted(key_url),
            format!("not a usable PKCS#11 key URL: {e}"),
        )
    })?;
    let login = Arc::new(TokenLogin {
        key: Arc::clone(&key),
        url: url::redacted(key_url),
        state: Mutex::new(LoginState::default()),
        tried_at: AtomicU64::new(LOGINS.load(Ordering::SeqCst)),
    });
    match pin {
        Some(pin) => login.log_in(Some(pin))?,
        None => login.log_in_without_pin()?,
    }
    let index = credentials.add_token_key_pair(&parsed, &key).map_err(|e| {
        invalid(
            &origin,
            format!("cannot use this certificate with {}: {e}", login.url),
        )
    })?;
    Ok((index, certificates, login))
}

impl TokenLogin {
    /// The token's name for messages: the URL's `token`, else the label
    /// the token reported, else the URL.
    pub(super) fn token_name(&self) -> String {
        url::attribute(&self.url, "token")
            .or_else(|| self.key.prompt().token_label)
            .unwrap_or_else(|| self.url.clone())
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// A request for this key's PIN, or `None` when the key is usable
    /// (also when it could log in without a PIN because another key logged
    /// the process in to its token).
    pub(crate) fn awaiting_pin(self: &Arc<Self>) -> Option<PinRequest> {
        if self.key.is_logged_in() {
            return None;
        }
        let logins = LOGINS.load(Ordering::SeqCst);
        if self.tried_at.swap(logins, Ordering::SeqCst) != logins
            && self.key.try_login_without_pin() == Some(Ok(()))
        {
            self.logged_in();
            return None;
        }
        Some(PinRequest {
            login: Arc::clone(self),
            failures_before: lock(&self.state).failures,
            prompt: self.key.prompt(),
        })
    }

    /// Logs in with `pin`; a failure with a PIN counts, and fails the
    /// sockets that waited.
    pub(super) fn log_in(&self, pin: Option<&str>) -> Result<()> {
        if self.key.is_logged_in() {
            return Ok(());
        }
        match self.key.login(pin) {
            Ok(()) => {
                self.logged_in();
                Ok(())
            }
            Err(failure) => {
                let error = self.error(failure);
                log::debug!("PKCS#11 login for {} failed: {error}", self.url);
                if pin.is_some() {
                    let mut state = lock(&self.state);
                    state.failures += 1;
                    state.last_failure = Some(error.clone());
                    drop(state);
                    self.wake_waiters();
                }
                Err(error)
            }
        }
    }

    /// At build without a configured PIN: logged in when the token needs no
    /// PIN (or the process is logged in already); waiting for one when it
    /// does; an error for anything else (no such token or key).
    fn log_in_without_pin(&self) -> Result<()> {
        match self.log_in(None) {
            Err(Error::Pkcs11 {
                kind: Pkcs11ErrorKind::PinRequired,
                ..
            }) => {
                log::debug!("{} waits for its PIN", self.url);
                Ok(())
            }
            other => other,
        }
    }

    fn logged_in(&self) {
        LOGINS.fetch_add(1, Ordering::SeqCst);
        log::debug!(
            "logged in to PKCS#11 token {:?} for {}",
            self.token_name(),
            self.url
        );
        self.wake_waiters();
    }

    /// Since `failures_before` failures: `Some(Ok)` logged in, `Some(Err)`
    /// a login failed, `None` still waiting.
    pub(super) fn outcome_since(&self, failures_before: u64) -> Option<Result<()>> {
        if self.key.is_logged_in() {
            return Some(Ok(()));
        }
        let state = lock(&self.state);
        let failed = state.failures > failures_before;
        failed.then(|| Err(state.last_failure.clone().unwrap_or_else(|| self.unknown())))
    }

    pub(super) fn wake_on_answer(
        self: &Arc<Self>,
        failures_before: u64,
        handle: ReactorHandle,
        socket: SocketId,
    ) -> PinWait {
        let mut state = lock(&self.state);
        // Answered between the request and now: wake at once.
        if self.key.is_logged_in() || state.failures > failures_before {
            drop(state);
            wake(&handle, socket);
            return PinWait {
                login: Arc::clone(self),
                ticket: None,
            };
        }
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        state.waiters.push(Waiter {
            ticket,
            handle,
            socket,
        });
        PinWait {
            login: Arc::clone(self),
            ticket: Some(ticket),
        }
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut lock(&self.state).waiters);
        for waiter in &waiters {
            wake(&waiter.handle, waiter.socket);
        }
    }

    /// The error for a failed login, naming the token.
    fn error(&self, failure: LoginFailure) -> Error {
        let (kind, detail) = classify(failure, || self.key.token_is_present());
        let final_try = self.key.prompt().final_try;
        let detail = match (kind, final_try) {
            (Pkcs11ErrorKind::WrongPin, true) => format!("{detail}; the next wrong PIN locks it"),
            _ => detail,
        };
        Error::Pkcs11 {
            token: self.token_name(),
            kind,
            detail,
        }
    }

    fn unknown(&self) -> Error {
        Error::Pkcs11 {
            token: self.token_name(),
            kind: Pkcs11ErrorKind::Other,
            detail: "the login failed".into(),
        }
    }
}

/// What a failed login means; `token_is_present` tells a missing token
/// from a missing key when GnuTLS found neither.
fn classify(
    failure: LoginFailure,
    token_is_present: impl Fn() -> bool,
) -> (Pkcs11ErrorKind, String) {
    let (error, pin) = match failure {
        LoginFailure::NotTheCertificatesKey => {
            return (
                Pkcs11ErrorKind::KeyMismatch,
                "the key on the token does not belong to the certificate".into(),
            )
        }
        LoginFailure::Token { error, pin } => (error, pin),
    };
    match (error.code(), pin) {
        // Not asked: the PIN came from the URL (`pin-value`).
        (_, PinAnswer::Wrong)
        | (code::PKCS11_PIN_ERROR, PinAnswer::Given | PinAnswer::NotAsked) => (
            Pkcs11ErrorKind::WrongPin,
            "wrong PIN (CKR_PIN_INCORRECT): the token counts failed attempts, check the PIN \
             before trying again"
                .into(),
        ),
        (code::PKCS11_PIN_LOCKED, _) => (
            Pkcs11ErrorKind::PinLocked,
            "the PIN is locked after too many wrong ones (CKR_PIN_LOCKED)".into(),
        ),
        (code::PKCS11_PIN_EXPIRED, _) => (
            Pkcs11ErrorKind::PinExpired,
            "the PIN expired (CKR_PIN_EXPIRED): change it first".into(),
        ),
        (_, PinAnswer::Missing) => (
            Pkcs11ErrorKind::PinRequired,
            "a PIN is needed to log in".into(),
        ),
        (code::REQUESTED_DATA_NOT_AVAILABLE | code::PKCS11_OBJECT_NOT_AVAILABLE, _)
            if token_is_present() =>
        {
            (
                Pkcs11ErrorKind::KeyNotFound,
                "the token holds no private key that matches the URL".into(),
            )
        }
        (code::REQUESTED_DATA_NOT_AVAILABLE | code::PKCS11_OBJECT_NOT_AVAILABLE, _) => (
            Pkcs11ErrorKind::TokenNotPresent,
            "no such token: not inserted, or its PKCS#11 module is not loaded".into(),
        ),
        (_, PinAnswer::Refused) => (
            Pkcs11ErrorKind::Other,
            format!("the token asked for a PIN sslsocket does not give (a security officer's, or one too long): {error}"),
        ),
        _ => (Pkcs11ErrorKind::Other, error.to_string()),
    }
}

/// Has the reactor behind `handle` service `socket` (a reactor that is gone
/// has nothing to wake).
fn wake(handle: &ReactorHandle, socket: SocketId) {
    let _ = handle.post(move |cx| {
        cx.socket(socket);
    });
}

/// Locks, whatever a panic elsewhere left behind: the data stays valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutls::GnutlsError;

    fn failure(code: i32, pin: PinAnswer) -> LoginFailure {
        LoginFailure::Token {
            error: GnutlsError::from_code(code),
            pin,
        }
    }

    #[test]
    fn login_failures_are_named() {
        let kind = |f, present| classify(f, || present).0;
        let pin_error = code::PKCS11_PIN_ERROR;
        assert_eq!(
            kind(failure(pin_error, PinAnswer::Wrong), true),
            Pkcs11ErrorKind::WrongPin
        );
        assert_eq!(
            kind(failure(pin_error, PinAnswer::Given), true),
            Pkcs11ErrorKind::WrongPin
        );
        assert_eq!(
            kind(failure(pin_error, PinAnswer::NotAsked), true),
            Pkcs11ErrorKind::WrongPin
        );
        assert_eq!(
            kind(failure(pin_error, PinAnswer::Missing), true),
            Pkcs11ErrorKind::PinRequired
        );
        let locked = code::PKCS11_PIN_LOCKED;
        assert_eq!(
            kind(failure(locked, PinAnswer::Given), true),
            Pkcs11ErrorKind::PinLocked
        );
        for absent in [
            code::REQUESTED_DATA_NOT_AVAILABLE,
            code::PKCS11_OBJECT_NOT_AVAILABLE,
        ] {
            assert_eq!(
                kind(failure(absent, PinAnswer::NotAsked), false),
                Pkcs11ErrorKind::TokenNotPresent
            );
            assert_eq!(
                kind(failure(absent, PinAnswer::Given), true),
                Pkcs11ErrorKind::KeyNotFound
            );
        }
        assert_eq!(
            kind(LoginFailure::NotTheCertificatesKey, true),
            Pkcs11ErrorKind::KeyMismatch
        );
        let (_, detail) = classify(failure(pin_error, PinAnswer::Wrong), || true);
        assert!(detail.contains("wrong PIN (CKR_PIN_INCORRECT)"), "{detail}");
    }
}
