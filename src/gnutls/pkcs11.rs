//! [`TokenKey`]: a private key that stays on a PKCS#11 token, and the login
//! that makes it usable.
//!
//! # What GnuTLS allows for PINs
//!
//! GnuTLS asks for a PIN through a callback, synchronously, whenever it
//! logs in to a token: when a key is imported from its URL (a token's
//! private keys are invisible before login), and again in the middle of a
//! signature when the token forgot the login (removed and put back) or the
//! key wants a login per signature (`CKA_ALWAYS_AUTHENTICATE`). The
//! callback cannot wait for the program: an error from a signature is fatal
//! to the handshake, and `GNUTLS_E_AGAIN` is no pause either (GnuTLS 3.7
//! retries the handshake state with `again` set, which skips building the
//! message: the CertificateVerify would never be sent). So the PIN has to
//! be known before a handshake needs the key. This type logs in when asked
//! ([`TokenKey::login`]), outside any handshake; the layers above decide
//! when (at build with a configured PIN, or when the program answers a
//! `pin_required` signal).
//!
//! The PIN callback is per key (`gnutls_privkey_set_pin_function`), never
//! process-wide. It only copies the PIN it was given before the call; it
//! never runs program code and never answers twice for one login: a second
//! request within one login means the token refused the PIN, which is then
//! forgotten, so GnuTLS's own retry loop cannot count a wrong PIN down to a
//! locked token. The PIN that logged in is kept (wiped when the key is
//! dropped) for the logins GnuTLS repeats by itself, as described above.
//!
//! This module must not know about configurations, sockets or the reactor.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use gnutls_sys as sys;
use zeroize::Zeroizing;

use super::datum::{borrowed, OwnedDatum};
use super::error::{check, code, GnutlsError};
use super::x509::X509Crt;

/// `CKM_RSA_PKCS_PSS` (PKCS#11 v2.40): the mechanism TLS 1.3 needs from an
/// RSA key.
const CKM_RSA_PKCS_PSS: std::ffi::c_ulong = 0x0d;

/// What the PIN callback did the last time GnuTLS called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinAnswer {
    /// GnuTLS did not ask (the token needs no login, or is logged in).
    NotAsked,
    /// The PIN was given to GnuTLS.
    Given,
    /// GnuTLS asked, and there was no PIN to give.
    Missing,
    /// GnuTLS asked again: the token refused the PIN given.
    Wrong,
    /// GnuTLS asked for something we never give (the security officer's
    /// PIN), or the PIN does not fit its buffer.
    Refused,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// GnuTLS or the token failed; `pin` says what the PIN callback did.
    Token { error: GnutlsError, pin: PinAnswer },
    /// The key on the token is not the certificate's key.
    NotTheCertificatesKey,
}

/// What GnuTLS last said about the token when it asked for a PIN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PinPrompt {
    /// The token's label, as the token reports it.
    pub(crate) token_label: Option<String>,
    /// Only a few attempts remain before the token locks the PIN.
    pub(crate) count_low: bool,
    /// The next wrong PIN locks the token.
    pub(crate) final_try: bool,
}

/// The PIN the callback may give, and what it did.
struct PinSlot {
    pin: Option<Zeroizing<String>>,
    answer: PinAnswer,
    prompt: PinPrompt,
}

/// A private key on a PKCS#11 token, named by its URL (RFC 7512). Until a
/// login succeeds it is only a name and the certificate's public key;
/// afterwards it signs (and decrypts) on the token.
///
/// Always behind an `Arc` (see [`TokenKey::new`]): GnuTLS keeps pointers to
/// its PIN slot and, through the key that stands in for it in credentials,
/// to the whole value.
pub(crate) struct TokenKey {
    url: Zeroizing<CString>,
    certificate: PublicKey,
    /// Whether the token can sign with RSA-PSS (RSA keys only).
    rsa_pss: bool,
    pin: Mutex<PinSlot>,
    key: OnceLock<PrivKey>,
    /// Held for a whole login, so two threads do not log in at once.
    logging_in: Mutex<()>,
}

impl TokenKey {
    /// The key named by `url`, for the certificate `leaf`. Touches the
    /// token only to ask, for an RSA key, whether it can sign with RSA-PSS.
    pub(crate) fn new(url: &str, leaf: &X509Crt) -> Result<Arc<Self>, GnutlsError> {
        // Checked first: `CString::new`'s error would carry an unwiped copy
        // of a URL that may hold a PIN (`pin-value`).
        if url.as_bytes().contains(&0) {
            return Err(GnutlsError::from_code(code::INVALID_REQUEST));
        }
        // Logins log too (with trace logging on): the bridge comes first.
        super::global::init();
        let url = Zeroizing::new(
            CString::new(url).map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST))?,
        );
        let certificate = PublicKey::of(leaf)?;
        let rsa_pss = certificate.algorithm == sys::GNUTLS_PK_RSA as c_int && signs_rsa_pss(&url);
        Ok(Arc::new(Self {
            url,
            certificate,
            rsa_pss,
            pin: Mutex::new(PinSlot {
                pin: None,
                answer: PinAnswer::NotAsked,
                prompt: PinPrompt::default(),
            }),
            key: OnceLock::new(),
            logging_in: Mutex::new(()),
        }))
    }

    /// Whether a login succeeded: the key is usable.
    pub(crate) fn is_logged_in(&self) -> bool {
        self.key.get().is_some()
    }

    /// What GnuTLS said about the token the last time it asked for a PIN.
    pub(crate) fn prompt(&self) -> PinPrompt {
        lock(&self.pin).prompt.clone()
    }

    /// Whether a token the URL names is present (the key may still be
    /// missing from it).
    pub(crate) fn token_is_present(&self) -> bool {
        let mut flags: c_uint = 0;
        // SAFETY: the URL is NUL-terminated and `flags` a valid out-pointer.
        unsafe { sys::gnutls_pkcs11_token_get_flags(self.url.as_ptr(), &mut flags) >= 0 }
    }

    /// Logs in to the token with `pin` (or with none, which succeeds when
    /// the token needs no login or the process is logged in already), finds
    /// the key and checks that it is the certificate's key. Does nothing
    /// when logged in already; waits while another thread logs in.
    pub(crate) fn login(&self, pin: Option<&str>) -> Result<(), LoginFailure> {
        let one_at_a_time = lock(&self.logging_in);
        self.login_alone(&one_at_a_time, pin)
    }

    /// Tries to log in without a PIN, unless another thread is logging in
    /// (`None`: its end wakes whoever waits for it).
    pub(crate) fn try_login_without_pin(&self) -> Option<Result<(), LoginFailure>> {
        let one_at_a_time = match self.logging_in.try_lock() {
            Ok(held) => held,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(self.login_alone(&one_at_a_time, None))
    }

    /// A login, with `logging_in` held.
    fn login_alone(
        &self,
        _held: &MutexGuard<'_, ()>,
        pin: Option<&str>,
    ) -> Result<(), LoginFailure> {
        if self.is_logged_in() {
            return Ok(());
        }
        self.offer(pin);
        let imported = self.import();
        let answer = self.take_answer();
        let key = imported.map_err(|error| {
            self.offer(None);
            LoginFailure::Token { error, pin: answer }
        })?;
        if !self.certificate.matches(&key) {
            self.offer(None);
            return Err(LoginFailure::NotTheCertificatesKey);
        }
        // Only one thread at a time gets here (`logging_in`).
        let _ = self.key.set(key);
        Ok(())
    }

    /// Puts `pin` (or nothing) where the PIN callback finds it, wiping the
    /// previous one.
    fn offer(&self, pin: Option<&str>) {
        let mut slot = lock(&self.pin);
        slot.pin = pin.map(|p| Zeroizing::new(p.to_owned()));
        slot.answer = PinAnswer::NotAsked;
    }

    fn take_answer(&self) -> PinAnswer {
        std::mem::replace(&mut lock(&self.pin).answer, PinAnswer::NotAsked)
    }

    /// Imports the key from its URL, GnuTLS logging in on the way.
    fn import(&self) -> Result<PrivKey, GnutlsError> {
        let key = PrivKey::new()?;
        let slot: *const Mutex<PinSlot> = &self.pin;
        // SAFETY: the key is live; the callback's data points into this
        // `TokenKey`, which lives behind an `Arc` (it never moves) and owns
        // every key that may call the callback (this one, once stored in
        // `self.key`, or dropped below on failure).
        unsafe {
            sys::gnutls_privkey_set_pin_function(
                key.as_raw(),
                Some(answer_pin),
                slot.cast_mut().cast(),
            )
        };
        // SAFETY: the key is live and empty, the URL NUL-terminated; GnuTLS
        // copies the URL.
        check(unsafe { sys::gnutls_privkey_import_url(key.as_raw(), self.url.as_ptr(), 0) })?;
        Ok(key)
    }

    /// The certificate's public key algorithm (`gnutls_pk_algorithm_t`)
    /// and size in bits: what the key answers before it is logged in.
    pub(crate) fn algorithm(&self) -> (c_int, c_uint) {
        (self.certificate.algorithm, self.certificate.bits)
    }

    /// Whether the key can make signatures of `algorithm`.
    pub(crate) fn supports(&self, algorithm: sys::gnutls_sign_algorithm_t) -> bool {
        let pk = self.certificate.algorithm as sys::gnutls_pk_algorithm_t;
        // SAFETY: both functions accept any number and only look it up.
        let (fits, signs_with) = unsafe {
            (
                sys::gnutls_sign_supports_pk_algorithm(algorithm, pk) != 0,
                sys::gnutls_sign_get_pk_algorithm(algorithm),
            )
        };
        fits && (signs_with != sys::GNUTLS_PK_RSA_PSS || self.rsa_pss)
    }

    /// The logged-in key on the token, if any.
    pub(super) fn signer(&self) -> Option<&PrivKey> {
        self.key.get()
    }
}

/// Whether the token `url` names can sign with RSA-PSS (which TLS 1.3
/// requires of an RSA key). Needs no login.
fn signs_rsa_pss(url: &CStr) -> bool {
    // SAFETY: the URL is NUL-terminated; the query reads the token's
    // mechanism list and writes nothing back (NULL, 0).
    let found = unsafe {
        sys::gnutls_pkcs11_token_check_mechanism(
            url.as_ptr(),
            CKM_RSA_PKCS_PSS,
            ptr::null_mut(),
            0,
            0,
        )
    };
    found != 0
}

/// GnuTLS's PIN callback for a [`TokenKey`]: gives the PIN offered for this
/// login, once. Runs inside GnuTLS: no program code, no panic across C.
unsafe extern "C" fn answer_pin(
    userdata: *mut c_void,
    attempt: c_int,
    _token_url: *const c_char,
    token_label: *const c_char,
    flags: c_uint,
    pin: *mut c_char,
    pin_max: usize,
) -> c_int {
    let answered = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `userdata` is the `PinSlot` mutex of the `TokenKey` that
        // owns the key calling us (see `TokenKey::import`).
        let slot = unsafe { &*userdata.cast::<Mutex<PinSlot>>() };
        let mut slot = lock(slot);
        slot.prompt = PinPrompt {
            // SAFETY: GnuTLS passes a NUL-terminated label, or NULL, valid
            // for this call.
            token_label: unsafe { text_of(token_label) },
            count_low: flags & sys::GNUTLS_PIN_COUNT_LOW != 0,
            final_try: flags & sys::GNUTLS_PIN_FINAL_TRY != 0,
        };
        let (answer, given) = match slot.pin.as_deref() {
            _ if attempt > 0 || flags & sys::GNUTLS_PIN_WRONG != 0 => (PinAnswer::Wrong, None),
            _ if flags & sys::GNUTLS_PIN_SO != 0 => (PinAnswer::Refused, None),
            None => (PinAnswer::Missing, None),
            Some(text) if text.len() >= pin_max => (PinAnswer::Refused, None),
            Some(text) => {
                // SAFETY: GnuTLS gives a writable buffer of `pin_max` bytes;
                // the PIN and its NUL fit (checked above).
                unsafe {
                    ptr::copy_nonoverlapping(text.as_ptr(), pin.cast::<u8>(), text.len());
                    *pin.add(text.len()) = 0;
                }
                (PinAnswer::Given, Some(()))
            }
        };
        if answer == PinAnswer::Wrong {
            // Never again: a PIN the token refused is not offered twice.
            slot.pin = None;
        }
        slot.answer = answer;
        given.is_some()
    }));
    match answered {
        Ok(true) => 0,
        _ => code::PKCS11_PIN_ERROR,
    }
}

/// A C string GnuTLS passed, or `None` for NULL.
///
/// # Safety
///
/// `text` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn text_of(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: see the function's contract.
    Some(
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Locks, whatever a panic elsewhere left behind: the data is plain.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// An owned abstract private key (`gnutls_privkey_t`).
pub(super) struct PrivKey {
    raw: NonNull<sys::gnutls_privkey_st>,
}

// SAFETY: GnuTLS locks a PKCS#11 key's session for each operation ("a
// single gnutls_pkcs11_privkey_t can be re-used by many threads", 3.5.11 and
// later); the key is only signed with, never changed, after import.
unsafe impl Send for PrivKey {}
// SAFETY: see `Send`.
unsafe impl Sync for PrivKey {}

impl PrivKey {
    pub(super) fn new() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the key.
        check(unsafe { sys::gnutls_privkey_init(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        Ok(Self { raw })
    }

    pub(super) fn as_raw(&self) -> sys::gnutls_privkey_t {
        self.raw.as_ptr()
    }

    /// Gives the key up to an owner that frees it (credentials).
    pub(super) fn into_raw(self) -> sys::gnutls_privkey_t {
        let raw = self.as_raw();
        std::mem::forget(self);
        raw
    }
}

impl Drop for PrivKey {
    fn drop(&mut self) {
        // SAFETY: we own the key and free it once.
        unsafe { sys::gnutls_privkey_deinit(self.raw.as_ptr()) }
    }
}

/// A certificate's public key, to tell whether a token key belongs to it.
struct PublicKey {
    raw: NonNull<sys::gnutls_pubkey_st>,
    algorithm: c_int,
    bits: c_uint,
}

// SAFETY: only read after import (verification and the getters).
unsafe impl Send for PublicKey {}
// SAFETY: see `Send`.
unsafe impl Sync for PublicKey {}

/// What a key signs to show it is the certificate's.
const KEY_CHECK_TEXT: &[u8] = b"sslsocket: is this the certificate's key?";

impl PublicKey {
    fn of(crt: &X509Crt) -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the key.
        check(unsafe { sys::gnutls_pubkey_init(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        let mut key = Self {
            raw,
            algorithm: 0,
            bits: 0,
        };
        // SAFETY: both objects are live; GnuTLS copies the key's values.
        check(unsafe { sys::gnutls_pubkey_import_x509(key.raw.as_ptr(), crt.as_raw(), 0) })?;
        // SAFETY: the key is live and `bits` a valid out-pointer.
        key.algorithm =
            check(unsafe { sys::gnutls_pubkey_get_pk_algorithm(key.raw.as_ptr(), &mut key.bits) })?;
        Ok(key)
    }

    /// Whether `key` signs what this key verifies.
    fn matches(&self, key: &PrivKey) -> bool {
        let Ok(algorithm) = self.signature_algorithm() else {
            return false;
        };
        let Ok(text) = borrowed(KEY_CHECK_TEXT) else {
            return false;
        };
        let mut signature = OwnedDatum::empty();
        // SAFETY: the key is live; `text` borrows a static; GnuTLS allocates
        // the signature into `signature`, which frees it.
        let signed = unsafe {
            sys::gnutls_privkey_sign_data2(
                key.as_raw(),
                algorithm,
                0,
                &text,
                signature.as_mut_ptr(),
            )
        };
        if signed < 0 {
            log::debug!(
                "the token key cannot sign: {}",
                GnutlsError::from_code(signed)
            );
            return false;
        }
        let Ok(signature) = borrowed(signature.as_bytes()) else {
            return false;
        };
        // SAFETY: the public key is live; both data borrow live buffers.
        let verified = unsafe {
            sys::gnutls_pubkey_verify_data2(self.raw.as_ptr(), algorithm, 0, &text, &signature)
        };
        verified >= 0
    }

    /// The signature algorithm the certificate's key prefers.
    fn signature_algorithm(&self) -> Result<sys::gnutls_sign_algorithm_t, GnutlsError> {
        let mut hash: sys::gnutls_digest_algorithm_t = 0;
        // SAFETY: the key is live and `hash` a valid out-pointer.
        check(unsafe {
            sys::gnutls_pubkey_get_preferred_hash_algorithm(
                self.raw.as_ptr(),
                &mut hash,
                ptr::null_mut(),
            )
        })?;
        // SAFETY: a pure lookup.
        let algorithm =
            unsafe { sys::gnutls_pk_to_sign(self.algorithm as sys::gnutls_pk_algorithm_t, hash) };
        match algorithm {
            0 => Err(GnutlsError::from_code(code::INVALID_REQUEST)),
            algorithm => Ok(algorithm),
        }
    }
}

impl Drop for PublicKey {
    fn drop(&mut self) {
        // SAFETY: we own the key and free it once.
        unsafe { sys::gnutls_pubkey_deinit(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(pin: Option<&str>) -> Mutex<PinSlot> {
        Mutex::new(PinSlot {
            pin: pin.map(|p| Zeroizing::new(p.to_owned())),
            answer: PinAnswer::NotAsked,
            prompt: PinPrompt::default(),
        })
    }

    /// Calls the PIN callback as GnuTLS does; returns its result and the
    /// PIN it wrote.
    fn ask(slot: &Mutex<PinSlot>, attempt: c_int, flags: c_uint) -> (c_int, String) {
        let mut buf = [0x55u8; 32];
        let label = c"test token";
        let data: *const Mutex<PinSlot> = slot;
        // SAFETY: `data` is a live slot, the label is NUL-terminated and the
        // buffer writable for its length, as GnuTLS guarantees.
        let rc = unsafe {
            answer_pin(
                data.cast_mut().cast(),
                attempt,
                ptr::null(),
                label.as_ptr(),
                flags,
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let written = CStr::from_bytes_until_nul(&buf)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (rc, written)
    }

    /// GnuTLS asks again (attempt 1) after the token refused a PIN, in a
    /// loop that ends only when the callback fails: the callback answers
    /// once, then fails and forgets the PIN, so a wrong PIN costs the
    /// token's counter one attempt.
    #[test]
    fn the_pin_is_given_once_and_forgotten_when_refused() {
        let slot = slot(Some("1234"));
        assert_eq!(ask(&slot, 0, sys::GNUTLS_PIN_USER), (0, "1234".into()));
        assert_eq!(lock(&slot).answer, PinAnswer::Given);
        assert_eq!(
            lock(&slot).prompt.token_label.as_deref(),
            Some("test token")
        );
        let flags = sys::GNUTLS_PIN_USER | sys::GNUTLS_PIN_WRONG | sys::GNUTLS_PIN_COUNT_LOW;
        let (rc, written) = ask(&slot, 1, flags);
        assert!(rc < 0 && written.is_empty(), "{rc} {written:?}");
        assert_eq!(lock(&slot).answer, PinAnswer::Wrong);
        assert!(lock(&slot).pin.is_none(), "a refused PIN is forgotten");
        assert!(lock(&slot).prompt.count_low);
        // A later login without a new PIN gets none.
        assert!(ask(&slot, 0, sys::GNUTLS_PIN_USER).0 < 0);
        assert_eq!(lock(&slot).answer, PinAnswer::Missing);
    }

    #[test]
    fn no_security_officer_pin_and_no_overlong_pin() {
        let slot = slot(Some("1234"));
        assert!(ask(&slot, 0, sys::GNUTLS_PIN_SO).0 < 0);
        assert_eq!(lock(&slot).answer, PinAnswer::Refused);
        let long = "9".repeat(32);
        let slot = super::tests::slot(Some(&long));
        assert!(ask(&slot, 0, sys::GNUTLS_PIN_USER).0 < 0);
        assert_eq!(lock(&slot).answer, PinAnswer::Refused);
    }
}
