//! [`RawPublicKey`]: an RFC 7250 raw public key as a value — a
//! SubjectPublicKeyInfo without a certificate around it.
//!
//! A raw public key names no one and no CA vouches for it: the only way to
//! trust one is to know it beforehand. So a peer's raw key is accepted only
//! when it is one of the keys the configuration trusts
//! ([`SslConfigurationBuilder::add_trusted_raw_public_key`](crate::SslConfigurationBuilder::add_trusted_raw_public_key)),
//! compared as the DER encoding GnuTLS makes of the parsed key; anything
//! else is [`SslErrorKind::RawPublicKeyNotTrusted`](crate::SslErrorKind::RawPublicKeyNotTrusted).
//! This module parses and describes keys; it decides nothing.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::certificate::{base64, invalid, looks_like_pem, read_file, DigestAlgorithm};
use crate::error::Result;
use crate::gnutls::{digest, Encoding, PubKey};
use crate::private_key::PrivateKey;

/// A raw public key (RFC 7250): a SubjectPublicKeyInfo. Equality and
/// hashing compare its DER encoding, as GnuTLS encodes the parsed key.
///
/// ```
/// use sslsocket::{PrivateKey, RawPublicKey};
/// # fn main() -> Result<(), sslsocket::Error> {
/// let key = PrivateKey::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.key"), None)?;
/// let public = RawPublicKey::from_private_key(&key)?;
/// assert_eq!(public.algorithm(), "EC/ECDSA");
/// let pem = public.to_pem();
/// assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
/// assert_eq!(RawPublicKey::from_pem(pem.as_bytes())?, public);
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawPublicKey {
    der: Arc<[u8]>,
}

impl RawPublicKey {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        Self::parse(der, Encoding::Der, "DER data")
    }

    /// Parses a PEM `-----BEGIN PUBLIC KEY-----` block (as
    /// `openssl pkey -pubout` and `certtool --pubkey-info` write them).
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        Self::parse(pem, Encoding::Pem, "PEM data")
    }

    /// Reads a file holding a public key in PEM or DER.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let data = read_file(path)?;
        let encoding = match looks_like_pem(&data) {
            true => Encoding::Pem,
            false => Encoding::Der,
        };
        Self::parse(&data, encoding, &path.display().to_string())
    }

    /// The public half of a private key: what a peer sees when `key` is
    /// used as a raw public key.
    pub fn from_private_key(key: &PrivateKey) -> Result<Self> {
        let public = PubKey::from_private_key(key.raw())
            .map_err(|e| invalid("private key", format!("no public key: {e}")))?;
        Self::from_parsed(&public, "private key")
    }

    fn parse(data: &[u8], encoding: Encoding, origin: &str) -> Result<Self> {
        let public = PubKey::import(data, encoding)
            .map_err(|e| invalid(origin, format!("not a public key: {e}")))?;
        Self::from_parsed(&public, origin)
    }

    fn from_parsed(public: &PubKey, origin: &str) -> Result<Self> {
        let der = public
            .export(Encoding::Der)
            .map_err(|e| invalid(origin, format!("cannot encode the public key: {e}")))?;
        Ok(Self { der: der.into() })
    }

    fn parsed(&self) -> Option<PubKey> {
        PubKey::import(&self.der, Encoding::Der).ok()
    }

    /// The DER encoding (a SubjectPublicKeyInfo).
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        self.parsed()
            .and_then(|k| k.export(Encoding::Pem).ok())
            .map(|pem| String::from_utf8_lossy(&pem).into_owned())
            .unwrap_or_default()
    }

    /// The digest of the DER encoding (for pins written as SPKI hashes).
    pub fn digest(&self, algorithm: DigestAlgorithm) -> Vec<u8> {
        digest(&self.der, algorithm == DigestAlgorithm::Sha256)
    }

    /// The key's pin, as
    /// [`Certificate::public_key_pin`](crate::Certificate::public_key_pin)
    /// gives it: `sha256//` and the base64 of the SHA-256 digest of the
    /// key's DER (SubjectPublicKeyInfo), the form
    /// [`pin_public_keys`](crate::SslConfigurationBuilder::pin_public_keys)
    /// takes; pins restrict raw keys too.
    pub fn public_key_pin(&self) -> String {
        format!("sha256//{}", base64(&self.digest(DigestAlgorithm::Sha256)))
    }

    /// The algorithm's name as GnuTLS spells it ("RSA", "EC/ECDSA",
    /// "EdDSA (Ed25519)", …).
    pub fn algorithm(&self) -> String {
        self.parsed()
            .map(|k| k.algorithm().0.to_owned())
            .unwrap_or_default()
    }

    /// The key size in bits.
    pub fn bits(&self) -> u32 {
        self.parsed().map_or(0, |k| k.algorithm().1)
    }

    /// The first bytes of the SHA-256 digest, in hex: enough to tell keys
    /// apart in a message.
    pub(crate) fn short_fingerprint(&self) -> String {
        self.digest(DigestAlgorithm::Sha256)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for RawPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPublicKey")
            .field("algorithm", &self.algorithm())
            .field("bits", &self.bits())
            .field("sha256", &self.short_fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> String {
        format!("{}/ca/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn keys_parse_from_every_form_and_compare_by_key() {
        let private = PrivateKey::from_file(ca("server.key"), None).unwrap();
        let key = RawPublicKey::from_private_key(&private).unwrap();
        assert_eq!(RawPublicKey::from_der(key.to_der()).unwrap(), key);
        assert_eq!(
            RawPublicKey::from_pem(key.to_pem().as_bytes()).unwrap(),
            key
        );
        assert_eq!(key.bits(), 256);
        assert_eq!(key.digest(DigestAlgorithm::Sha256).len(), 32);
        let other = PrivateKey::from_file(ca("client.key"), None).unwrap();
        assert_ne!(RawPublicKey::from_private_key(&other).unwrap(), key);
        // A certificate is not a raw public key.
        let certificate = std::fs::read(ca("server-leaf.der")).unwrap();
        assert!(RawPublicKey::from_der(&certificate).is_err());
        assert!(RawPublicKey::from_file(ca("no-such-file")).is_err());
    }
}
