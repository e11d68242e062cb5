//! [`PrivateKey`]: a private key loaded for a local certificate (Qt's
//! `QSslKey`).
//!
//! A key is parsed (and decrypted) once and shared; it is never written
//! back out or logged. The bytes of a key file are wiped once parsed, and
//! GnuTLS wipes the parsed key when the last clone is dropped.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::certificate::{invalid, looks_like_pem, read_secret_file};
use crate::error::Result;
use crate::gnutls::{self, Encoding, X509PrivKey};

/// A private key: RSA, ECDSA or EdDSA, read from PKCS#1, SEC1 or PKCS#8
/// (optionally encrypted), PEM or DER.
///
/// ```
/// # fn main() -> Result<(), sslsocket::Error> {
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server-encrypted.key");
/// let key = sslsocket::PrivateKey::from_file(path, Some("sslsocket-test"))?;
/// assert_eq!(key.bits(), 256);
/// let wrong = sslsocket::PrivateKey::from_file(path, Some("nope")).unwrap_err();
/// assert!(wrong.to_string().contains("wrong passphrase"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PrivateKey {
    key: Arc<X509PrivKey>,
}

impl PrivateKey {
    /// Parses a key from PEM or DER data.
    pub fn from_bytes(data: &[u8], passphrase: Option<&str>) -> Result<Self> {
        Self::from_bytes_named(data, passphrase, "private key data")
    }

    /// Reads a key file.
    pub fn from_file(path: impl AsRef<Path>, passphrase: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        let data = read_secret_file(path)?;
        Self::from_bytes_named(&data, passphrase, &path.display().to_string())
    }

    pub(crate) fn from_bytes_named(
        data: &[u8],
        passphrase: Option<&str>,
        origin: &str,
    ) -> Result<Self> {
        let encoding = if looks_like_pem(data) {
            Encoding::Pem
        } else {
            Encoding::Der
        };
        let key = X509PrivKey::import(data, encoding, passphrase)
            .map_err(|e| invalid(origin, import_error(e, passphrase.is_some())))?;
        Ok(Self { key: Arc::new(key) })
    }

    /// The algorithm's name as GnuTLS spells it ("RSA", "EC/ECDSA", …).
    pub fn algorithm(&self) -> &'static str {
        self.key.algorithm().0
    }

    /// The key size in bits.
    pub fn bits(&self) -> u32 {
        self.key.algorithm().1
    }

    pub(crate) fn raw(&self) -> &X509PrivKey {
        &self.key
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm())
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

fn import_error(e: gnutls::GnutlsError, had_passphrase: bool) -> String {
    match e.code() {
        gnutls::code::DECRYPTION_FAILED if had_passphrase => {
            "cannot decrypt the private key: wrong passphrase".into()
        }
        gnutls::code::DECRYPTION_FAILED => {
            "the private key is encrypted: a passphrase is needed".into()
        }
        _ => format!("not a usable private key: {e}"),
    }
}
