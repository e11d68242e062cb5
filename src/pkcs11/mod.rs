//! Keys that never leave hardware: local certificates whose private key is
//! on a PKCS#11 token (a smart card, an HSM, SoftHSM), named by a
//! `pkcs11:` URL (RFC 7512), and the PIN that unlocks them.
//!
//! This module owns a configuration's token keys' login state
//! ([`TokenLogin`]), the [`PinRequest`] a program answers, and the
//! [`Pkcs11ErrorKind`]s of [`Error::Pkcs11`]. It must not touch sockets
//! or the reactor beyond waking the sockets that wait for a PIN.
//!
//! # When the PIN is needed
//!
//! PKCS#11 logs a process in to a token once; GnuTLS asks for the PIN
//! through a callback when it first opens the key (a token shows its
//! private keys only after login), synchronously. It cannot wait inside a
//! handshake: GnuTLS 3.7 has no way to pause a handshake in its signature
//! (see `src/gnutls/pkcs11.rs`). So the login happens before a handshake
//! needs the key:
//!
//! - with a PIN in the configuration, when it is built (a wrong PIN fails
//!   [`build`](crate::SslConfigurationBuilder::build));
//! - otherwise when the program answers a [`PinRequest`]: from
//!   [`SslConfiguration::pin_requests`](crate::SslConfiguration::pin_requests)
//!   before any connection, or from a socket's `pin_required` signal, which
//!   a socket emits when its handshake is about to start and a token key of
//!   its configuration waits for its PIN. The handshake then waits (bounded
//!   by the socket's handshake timeout) until some thread calls
//!   [`PinRequest::provide`]: it continues once the login succeeded, or
//!   fails with the login's error. A client asks before its first
//!   handshake, whether or not the server will ask for its certificate.
//!
//! A wrong PIN is tried once: never again by sslsocket on its own, so a
//! token that locks after a few failures is not locked by a retry loop.
//! The PIN that logged in is kept, wiped when the configuration is dropped,
//! for the logins GnuTLS repeats by itself (a token that was removed and
//! put back, a key that wants a login per signature).

mod login;
mod url;

use std::fmt;
use std::sync::Arc;

pub(crate) use login::{load_token_identity, PinWait, TokenLogin};

use crate::error::Result;
use crate::gnutls::PinPrompt;

/// What went wrong with a PKCS#11 token, in [`Error::Pkcs11`](crate::Error::Pkcs11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pkcs11ErrorKind {
    /// The token refused the PIN (`CKR_PIN_INCORRECT`). It counts failed
    /// attempts: many tokens lock the PIN after a few.
    WrongPin,
    /// The token needs a PIN and none was given.
    PinRequired,
    /// The token locked the PIN after too many wrong ones
    /// (`CKR_PIN_LOCKED`); its security officer must unlock it.
    PinLocked,
    /// The PIN expired (`CKR_PIN_EXPIRED`) and must be changed first.
    PinExpired,
    /// No token matches the URL: not inserted, another label, or its module
    /// is not registered with p11-kit (see
    /// [`add_local_certificate_pkcs11`](crate::SslConfigurationBuilder::add_local_certificate_pkcs11)).
    TokenNotPresent,
    /// The token holds no private key that matches the URL.
    KeyNotFound,
    /// The key on the token does not belong to the certificate.
    KeyMismatch,
    /// Another failure of the token or its module.
    Other,
}

impl fmt::Display for Pkcs11ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A token key that waits for its PIN (GIO's `GTlsPassword`, asked for
/// through a `GTlsInteraction`).
///
/// A socket emits one with its `pin_required` signal;
/// [`SslConfiguration::pin_requests`](crate::SslConfiguration::pin_requests)
/// lists them before any connection. It is `Send`: answer it at once, or
/// later from another thread, with [`provide`](Self::provide). Sockets
/// waiting for it go on (or fail, for a wrong PIN) on their own.
///
/// ```
/// # fn main() -> Result<(), sslsocket::Error> {
/// # let mut reactor = sslsocket::Reactor::new().unwrap();
/// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build()?;
/// # let id = reactor.ssl_socket(config);
/// # let socket = reactor.socket(id).unwrap();
/// socket.pin_required().connect(|_, _, request| {
///     let request = request.clone();
///     std::thread::spawn(move || {
///         let pin = String::from("1234"); // asked of the user, say
///         if let Err(e) = request.provide(&pin) {
///             eprintln!("{e}"); // the waiting handshakes fail with it too
///         }
///     });
/// });
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PinRequest {
    login: Arc<TokenLogin>,
    /// The login's failures when the request was made.
    failures_before: u64,
    prompt: PinPrompt,
}

impl PinRequest {
    /// The token's name: its label as the URL or the token gives it.
    pub fn token_label(&self) -> String {
        self.login.token_name()
    }

    /// The key's URL, without any PIN it carried.
    pub fn key_url(&self) -> &str {
        self.login.url()
    }

    /// Whether a PIN given before for this key was refused.
    pub fn is_retry(&self) -> bool {
        self.failures_before > 0
    }

    /// The token warns that few attempts remain before it locks the PIN.
    pub fn is_count_low(&self) -> bool {
        self.prompt.count_low
    }

    /// The token warns that a wrong PIN now locks it.
    pub fn is_final_try(&self) -> bool {
        self.prompt.final_try
    }

    /// Logs in to the token with `pin`, on the calling thread (the token
    /// may take a moment), and lets the handshakes waiting for it go on.
    /// Does nothing when the key is logged in already.
    ///
    /// A wrong PIN returns [`Error::Pkcs11`](crate::Error::Pkcs11) with
    /// [`Pkcs11ErrorKind::WrongPin`], and the handshakes that waited fail
    /// with it; the next connection asks again.
    pub fn provide(&self, pin: &str) -> Result<()> {
        self.login.log_in(Some(pin))
    }

    /// `Some(Ok)` once the key is logged in, `Some(Err)` when a login
    /// failed since the request was made, `None` while it waits.
    pub(crate) fn outcome(&self) -> Option<Result<()>> {
        self.login.outcome_since(self.failures_before)
    }

    /// Wakes `socket` of the reactor behind `handle` when the request is
    /// answered, for as long as the returned value lives.
    pub(crate) fn wake_on_answer(
        &self,
        handle: crate::ReactorHandle,
        socket: crate::SocketId,
    ) -> PinWait {
        self.login
            .wake_on_answer(self.failures_before, handle, socket)
    }
}

impl fmt::Debug for PinRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinRequest")
            .field("token", &self.token_label())
            .field("key", &self.key_url())
            .field("retry", &self.is_retry())
            .finish_non_exhaustive()
    }
}
