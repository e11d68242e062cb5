//! Authentication besides X.509 chains: pre-shared keys (a client's
//! identity and key, a server's table) and RFC 7250 raw public keys (our
//! own, and the peers' keys we trust). The builder's settings, what
//! building makes of them (GnuTLS credentials, the priority string's
//! additions), and the options each session gets.
//!
//! This file configures; the engine judges the peer (`engine/authentication.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::load::Secret;
use super::{secret, SslConfiguration, SslConfigurationBuilder};
use crate::error::{Error, Result};
use crate::gnutls::{CertificateCredentials, Psk, PskCredentials, PskOffer, Role, SessionOptions};
use crate::private_key::PrivateKey;
use crate::psk::{check_identity, check_key, PreSharedKeys};
use crate::raw_public_key::RawPublicKey;

/// What the builder collected.
#[derive(Default)]
pub(super) struct AuthenticationSettings {
    psk_offer: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    psk_table: Option<PreSharedKeys>,
    raw_key: Option<LocalRawKey>,
    trusted_raw_keys: Vec<TrustedRawKey>,
}

enum LocalRawKey {
    Loaded(PrivateKey),
    File {
        path: PathBuf,
        passphrase: Option<Secret>,
    },
}

enum TrustedRawKey {
    Loaded(RawPublicKey),
    File(PathBuf),
}

/// What a built configuration authenticates with besides X.509 chains.
pub(crate) struct Authentication {
    psk_client: Option<(Arc<PskCredentials>, Arc<PskOffer>)>,
    psk_server: Option<(Arc<PskCredentials>, PreSharedKeys)>,
    local_raw_key: Option<RawPublicKey>,
    trusted_raw_keys: Vec<RawPublicKey>,
}

impl AuthenticationSettings {
    /// What the priority string needs for these settings: the
    /// forward-secret PSK key exchanges (TLS 1.2 ECDHE-PSK and DHE-PSK;
    /// TLS 1.3 `psk_dhe_ke`), never plain or RSA PSK, and with a client's
    /// key no other key exchange (it accepts no other, so it offers none:
    /// a TLS 1.2 server that has a certificate too picks the key); and raw
    /// public keys as certificate types, first where this side has a reason
    /// to prefer them (a raw key it trusts from servers, one of its own to
    /// send as a client).
    pub(super) fn priority_suffix(&self) -> String {
        let mut suffix = String::new();
        if self.psk_offer.is_some() {
            suffix.push_str(":-KX-ALL:+ECDHE-PSK:+DHE-PSK");
        } else if self.psk_table.is_some() {
            suffix.push_str(":-PSK:-RSA-PSK:+ECDHE-PSK:+DHE-PSK");
        }
        let trusting = !self.trusted_raw_keys.is_empty();
        let local = self.raw_key.is_some();
        if trusting || local {
            suffix.push_str(match trusting {
                true => ":-CTYPE-SRV-ALL:+CTYPE-SRV-RAWPK:+CTYPE-SRV-X509",
                false => ":+CTYPE-SRV-RAWPK",
            });
            suffix.push_str(match local {
                true => ":-CTYPE-CLI-ALL:+CTYPE-CLI-RAWPK:+CTYPE-CLI-X509",
                false => ":+CTYPE-CLI-RAWPK",
            });
        }
        suffix
    }

    /// Checks and loads everything: the local raw key pair into
    /// `credentials`, the PSK credentials, the trusted keys.
    pub(super) fn load(self, credentials: &mut CertificateCredentials) -> Result<Authentication> {
        let psk_client = match self.psk_offer {
            Some((identity, key)) => {
                check_identity(&identity)
                    .and(check_key(&key))
                    .map_err(misuse)?;
                let offer = Arc::new(PskOffer::new(identity, key));
                Some((Arc::new(PskCredentials::client().map_err(gnutls)?), offer))
            }
            None => None,
        };
        let psk_server = match self.psk_table {
            Some(table) => Some((Arc::new(PskCredentials::server().map_err(gnutls)?), table)),
            None => None,
        };
        let local_raw_key = self
            .raw_key
            .map(|source| load_local_raw_key(credentials, source))
            .transpose()?;
        let trusted_raw_keys = self
            .trusted_raw_keys
            .into_iter()
            .map(|key| match key {
                TrustedRawKey::Loaded(key) => Ok(key),
                TrustedRawKey::File(path) => RawPublicKey::from_file(path),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Authentication {
            psk_client,
            psk_server,
            local_raw_key,
            trusted_raw_keys,
        })
    }
}

fn load_local_raw_key(
    credentials: &mut CertificateCredentials,
    source: LocalRawKey,
) -> Result<RawPublicKey> {
    let (key, origin) = match source {
        LocalRawKey::Loaded(key) => (key, "the local raw public key".to_owned()),
        LocalRawKey::File { path, passphrase } => {
            let key = PrivateKey::from_file(&path, passphrase.as_deref().map(String::as_str))?;
            (key, path.display().to_string())
        }
    };
    let public = RawPublicKey::from_private_key(&key)?;
    credentials
        .add_raw_key_pair(public.to_der(), key.raw())
        .map_err(|e| Error::InvalidCertificateData {
            origin,
            reason: format!("cannot use the key as a raw public key: {e}"),
        })?;
    Ok(public)
}

fn misuse(e: Error) -> Error {
    Error::InvalidConfiguration(e.to_string().replace("invalid argument: ", ""))
}

fn gnutls(e: crate::gnutls::GnutlsError) -> Error {
    Error::InvalidConfiguration(e.to_string())
}

impl Authentication {
    /// What a session of `role` gets: raw public keys when the
    /// configuration uses them, and its side of the pre-shared keys.
    pub(crate) fn session_options(&self, role: Role) -> SessionOptions {
        let psk = match role {
            Role::Client => self
                .psk_client
                .as_ref()
                .map(|(credentials, offer)| Psk::Client(credentials.clone(), offer.clone())),
            Role::Server => self
                .psk_server
                .as_ref()
                .map(|(credentials, keys)| Psk::Server(credentials.clone(), keys.table().clone())),
        };
        SessionOptions {
            raw_public_keys: self.local_raw_key.is_some() || !self.trusted_raw_keys.is_empty(),
            psk,
        }
    }

    /// The identity a client names, when it holds a pre-shared key.
    pub(crate) fn offered_identity(&self) -> Option<&[u8]> {
        self.psk_client.as_ref().map(|(_, offer)| offer.identity())
    }

    /// The server's table of pre-shared keys.
    pub(crate) fn table(&self) -> Option<&PreSharedKeys> {
        self.psk_server.as_ref().map(|(_, keys)| keys)
    }

    /// Whether `key` is one of the raw public keys trusted for a peer.
    pub(crate) fn trusts(&self, key: &RawPublicKey) -> bool {
        self.trusted_raw_keys.contains(key)
    }

    /// Whether a server can authenticate itself without an X.509
    /// certificate: with a raw public key, or with pre-shared keys.
    pub(crate) fn serves(&self) -> bool {
        self.local_raw_key.is_some() || self.psk_server.is_some()
    }

    pub(crate) fn local_raw_key(&self) -> Option<&RawPublicKey> {
        self.local_raw_key.as_ref()
    }
}

/// # Pre-shared keys and raw public keys
impl SslConfigurationBuilder {
    /// On a client: authenticate with this pre-shared key (TLS 1.3 external
    /// PSK, TLS 1.2 PSK cipher suites) instead of the server's certificate.
    /// `identity` is 1 to 128 bytes, sent in the clear; `key` is 16 to 65535
    /// random bytes, never sent. The key is taken over (a `Vec` is moved,
    /// not copied) and wiped when the configuration is dropped.
    ///
    /// Only the forward-secret key exchanges are used (TLS 1.3 `psk_dhe_ke`,
    /// TLS 1.2 ECDHE-PSK and DHE-PSK): a key that leaks later does not
    /// expose recorded connections. The server must prove it holds the same
    /// key: a client holding a pre-shared key offers no other key exchange
    /// and accepts no other proof, in any verify mode (a server answering
    /// with a certificate is refused with
    /// [`PskErrorKind::NotUsed`](crate::PskErrorKind::NotUsed)); its
    /// sessions are not resumed (a handshake with the key costs what a
    /// resumption costs). Used as a server, such a configuration also
    /// negotiates only pre-shared keys. [`SslSocket::psk_identity`](crate::SslSocket::psk_identity)
    /// names the identity of an established connection.
    ///
    /// ```
    /// use sslsocket::{SslConfiguration, SslProtocol};
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let config = SslConfiguration::builder()
    ///     .system_ca_certificates(false)
    ///     .pre_shared_key("sensor-17", [0x5a; 32])
    ///     .build()?;
    /// assert_eq!(config.pre_shared_key_identity(), Some(&b"sensor-17"[..]));
    /// let too_short = SslConfiguration::builder().pre_shared_key("sensor-17", *b"secret").build();
    /// assert!(too_short.is_err());
    /// # Ok(()) }
    /// ```
    pub fn pre_shared_key(mut self, identity: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.authentication.psk_offer = Some((identity.into(), Zeroizing::new(key.into())));
        self
    }

    /// On a server: accept clients that prove the key this table holds for
    /// the identity they name (see [`PreSharedKeys`]). The table is shared,
    /// not copied: the program may change it at any time. Certificate
    /// clients are served as before when the server also has a certificate;
    /// a client that names an unknown identity fails
    /// ([`PskErrorKind::UnknownIdentity`](crate::PskErrorKind::UnknownIdentity))
    /// and the server socket emits `pre_shared_key_authentication_required`.
    /// A client authenticated by its key needs no certificate, whatever the
    /// verify mode asks of certificate clients. TLS 1.3 session tickets are
    /// not issued for such clients; a TLS 1.2 session resumes only while
    /// its identity is still in the table.
    pub fn pre_shared_keys(mut self, keys: &PreSharedKeys) -> Self {
        self.authentication.psk_table = Some(keys.clone());
        self
    }

    /// Uses `key` as this side's RFC 7250 raw public key: presented (a
    /// server) or sent when asked (a client) instead of an X.509 chain to
    /// peers that accept raw public keys. A server may also have a
    /// certificate, for peers that do not.
    ///
    /// ```
    /// use sslsocket::{PrivateKey, SslConfiguration};
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let key = PrivateKey::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.key"), None)?;
    /// let config = SslConfiguration::builder().local_raw_public_key(key).build()?;
    /// assert_eq!(config.local_raw_public_key().unwrap().algorithm(), "EC/ECDSA");
    /// # Ok(()) }
    /// ```
    pub fn local_raw_public_key(mut self, key: PrivateKey) -> Self {
        self.authentication.raw_key = Some(LocalRawKey::Loaded(key));
        self
    }

    /// Same as [`local_raw_public_key`](Self::local_raw_public_key) with the
    /// private key read from a file (PEM or DER; encrypted PKCS#8 needs the
    /// passphrase). The file's bytes and the builder's copy of the
    /// passphrase are wiped once no longer needed.
    pub fn local_raw_public_key_file(
        mut self,
        key: impl AsRef<Path>,
        passphrase: Option<&str>,
    ) -> Self {
        self.authentication.raw_key = Some(LocalRawKey::File {
            path: key.as_ref().to_owned(),
            passphrase: passphrase.map(secret),
        });
        self
    }

    /// Trusts a peer that authenticates with this RFC 7250 raw public key.
    ///
    /// A raw key carries no name and no CA vouches for it: it is trusted
    /// only if it is one of the keys given here, compared as a whole, for
    /// any host this configuration connects to (give servers that must not
    /// stand in for one another configurations of their own). A
    /// peer's raw key is judged in the same verify modes and reported
    /// through the same signals as a certificate chain, against these keys
    /// instead of the CAs: a key that is not among them is
    /// [`SslErrorKind::RawPublicKeyNotTrusted`](crate::SslErrorKind::RawPublicKeyNotTrusted),
    /// which the program may ignore for that key like any other problem;
    /// with [`PeerVerifyMode::VerifyNone`](crate::PeerVerifyMode::VerifyNone)
    /// nothing is checked, raw keys included, as for certificates.
    /// A client that trusts raw keys asks servers for one before a
    /// certificate; a server accepts one from clients whenever it asks for
    /// a certificate (verify mode `QueryPeer` or `VerifyPeer`). Which type
    /// a client presents follows the client's order of preference (TLS
    /// lets the server pick from the client's list, and GnuTLS takes the
    /// client's first choice it supports): a client that lists X.509 before
    /// raw keys (`gnutls-cli --priority NORMAL:+CTYPE-CLI-RAWPK`) is asked
    /// for an X.509 certificate, and with none to send it fails as
    /// `NoPeerCertificate`; `-CTYPE-CLI-ALL:+CTYPE-CLI-RAWPK` puts raw keys
    /// first.
    ///
    /// ```
    /// use sslsocket::{PrivateKey, RawPublicKey, SslConfiguration};
    /// # fn main() -> Result<(), sslsocket::Error> {
    /// let server_key = PrivateKey::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.key"), None)?;
    /// let pinned = RawPublicKey::from_private_key(&server_key)?; // known beforehand
    /// let config = SslConfiguration::builder()
    ///     .system_ca_certificates(false)
    ///     .add_trusted_raw_public_key(pinned.clone())
    ///     .build()?;
    /// assert_eq!(config.trusted_raw_public_keys(), [pinned]);
    /// # Ok(()) }
    /// ```
    pub fn add_trusted_raw_public_key(mut self, key: RawPublicKey) -> Self {
        self.authentication
            .trusted_raw_keys
            .push(TrustedRawKey::Loaded(key));
        self
    }

    /// Same as [`add_trusted_raw_public_key`](Self::add_trusted_raw_public_key)
    /// with the key read from a file (`-----BEGIN PUBLIC KEY-----` PEM, or
    /// DER).
    pub fn add_trusted_raw_public_key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.authentication
            .trusted_raw_keys
            .push(TrustedRawKey::File(path.as_ref().to_owned()));
        self
    }
}

/// # Pre-shared keys and raw public keys
impl SslConfiguration {
    /// The identity a client names with its pre-shared key, if it has one.
    pub fn pre_shared_key_identity(&self) -> Option<&[u8]> {
        self.authentication().offered_identity()
    }

    /// A server's table of pre-shared keys, if it has one.
    pub fn pre_shared_keys(&self) -> Option<&PreSharedKeys> {
        self.authentication().table()
    }

    /// This side's raw public key, if it has one.
    pub fn local_raw_public_key(&self) -> Option<&RawPublicKey> {
        self.authentication().local_raw_key()
    }

    /// The raw public keys trusted for a peer.
    pub fn trusted_raw_public_keys(&self) -> &[RawPublicKey] {
        &self.authentication().trusted_raw_keys
    }

    pub(crate) fn authentication(&self) -> &Authentication {
        &self.inner.authentication
    }

    /// Whether a server with this configuration can authenticate itself:
    /// with a certificate, a raw public key or pre-shared keys; if not, the
    /// error that says so, naming `server` ("a server", "a DTLS server").
    pub(crate) fn check_can_serve(&self, server: &str) -> Result<()> {
        if self.local_certificate().is_some() || self.authentication().serves() {
            return Ok(());
        }
        Err(Error::InvalidConfiguration(format!(
            "{server} needs a local certificate and private key, a raw public key or \
             pre-shared keys"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnutls::Priority;

    #[test]
    fn the_priority_gains_only_what_is_configured() {
        let none = AuthenticationSettings::default();
        assert_eq!(none.priority_suffix(), "");
        let psk = AuthenticationSettings {
            psk_table: Some(PreSharedKeys::new()),
            ..Default::default()
        };
        let suffix = psk.priority_suffix();
        assert!(
            suffix.contains("+ECDHE-PSK") && suffix.contains("-PSK:"),
            "{suffix}"
        );
        assert!(!suffix.contains("CTYPE"), "{suffix}");
        let client = AuthenticationSettings {
            psk_offer: Some((b"a".to_vec(), Zeroizing::new(vec![0; 16]))),
            ..Default::default()
        };
        assert!(client.priority_suffix().starts_with(":-KX-ALL:"));
        let raw = AuthenticationSettings {
            trusted_raw_keys: vec![TrustedRawKey::File("k.pem".into())],
            ..Default::default()
        };
        let suffix = raw.priority_suffix();
        assert!(
            suffix.starts_with(":-CTYPE-SRV-ALL:+CTYPE-SRV-RAWPK"),
            "{suffix}"
        );
        for settings in [psk, client, raw] {
            let text = format!("NORMAL{}", settings.priority_suffix());
            Priority::new(&text, false).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        }
    }
}
