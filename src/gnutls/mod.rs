//! The safe layer over GnuTLS: the only module that names `gnutls_sys` or
//! writes `unsafe`.
//!
//! Each GnuTLS object has one owner type that frees it in `Drop`
//! ([`Session`], [`CertificateCredentials`], [`PskCredentials`],
//! [`Priority`], [`X509Crt`], [`PubKey`], [`TokenKey`]);
//! [`check`](error::check) turns every return code into a `Result` with a
//! [`GnutlsError`] that keeps the code and GnuTLS's message. No raw pointer
//! leaves this module. The `extern "C"` callbacks live in `transport.rs`
//! (they only move bytes), `psk.rs` (pre-shared keys, copied from a table
//! filled beforehand), `key_log.rs` (they only queue key log lines),
//! `pkcs11.rs` (the PIN callback, which only copies a PIN given beforehand)
//! and `stand_in.rs` (a token key's operations, passed on to the token);
//! they never run code from the layers above. DTLS adds datagram framing
//! to the transport (`datagrams.rs`), the retransmission timer and MTU
//! (`dtls.rs`) and stateless cookies (`cookie.rs`).
//!
//! This module must not know about sockets, the reactor or user callbacks.
#![allow(unsafe_code)]

mod auth;
mod cookie;
mod credentials;
mod datagrams;
mod datum;
mod dtls;
mod end_point;
mod error;
mod global;
mod key_log;
mod known_keys;
mod pkcs11;
mod priority;
mod privkey;
mod psk;
mod rawpk;
mod secret;
mod session;
mod session_db;
mod stand_in;
mod transport;
mod trust;
mod verify;
mod x509;

pub(crate) use auth::{PeerAuthentication, SessionOptions};
pub(crate) use cookie::{hello_verify_request, verify_cookie, CookieKey};
pub(crate) use credentials::CertificateCredentials;
pub(crate) use dtls::{Prestate, DEFAULT_RETRANSMISSION, MAX_MTU, MIN_MTU};
pub(crate) use end_point::server_end_point;
pub(crate) use error::code;
pub use error::GnutlsError;
pub(crate) use key_log::KeyLogLine;
pub(crate) use known_keys::{KnownKey, KnownKeys};
pub(crate) use pkcs11::{LoginFailure, PinAnswer, PinPrompt, TokenKey};
pub(crate) use priority::{cipher_suite_name, signature_fits_key, Offer, Priority};
pub(crate) use privkey::X509PrivKey;
pub(crate) use psk::{Psk, PskCredentials, PskOffer, PskTable};
pub(crate) use rawpk::{digest, PubKey};
pub(crate) use secret::wipe;
pub(crate) use session::{alert_name, ticket_key, ClientCertificate, RawAlert, Role, Session};
pub(crate) use session_db::SessionDb;
pub(crate) use transport::{Framing, PeerCheck, Purpose};
pub(crate) use trust::{verify_chain, Anchors};
pub(crate) use verify::{PathStep, Verification, VerifyStatus};
pub(crate) use x509::{AltName, Encoding, X509Crt};
