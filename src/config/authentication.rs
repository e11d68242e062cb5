//! Authentication besides X.509 chains: pre-shared keys (a client's
//! identity and key, a server's table). The builder's settings, what
//! building makes of them (GnuTLS credentials, the priority string's
//! additions), and the options each session gets.
//!
//! This file configures; the engine judges the peer (`engine/authentication.rs`).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{SslConfiguration, SslConfigurationBuilder};
use crate::error::{Error, Result};
use crate::gnutls::{Psk, PskCredentials, PskOffer, Role, SessionOptions};
use crate::psk::{check_identity, check_key, PreSharedKeys};

/// What the builder collected.
#[derive(Default)]
pub(super) struct AuthenticationSettings {
    psk_offer: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    psk_table: Option<PreSharedKeys>,
}

/// What a built configuration authenticates with besides X.509 chains.
pub(crate) struct Authentication {
    psk_client: Option<(Arc<PskCredentials>, Arc<PskOffer>)>,
    psk_server: Option<(Arc<PskCredentials>, PreSharedKeys)>,
}

impl AuthenticationSettings {
    /// What the priority string needs for these settings: the
    /// forward-secret PSK key exchanges (TLS 1.2 ECDHE-PSK and DHE-PSK;
    /// TLS 1.3 `psk_dhe_ke`), never plain or RSA PSK, and with a client's
    /// key no other key exchange (it accepts no other, so it offers none:
    /// a TLS 1.2 server that has a certificate too picks the key).
    pub(super) fn priority_suffix(&self) -> String {
        let mut suffix = String::new();
        if self.psk_offer.is_some() {
            suffix.push_str(":-KX-ALL:+ECDHE-PSK:+DHE-PSK");
        } else if self.psk_table.is_some() {
            suffix.push_str(":-PSK:-RSA-PSK:+ECDHE-PSK:+DHE-PSK");
        }
        suffix
    }

    /// Checks the keys and makes the PSK credentials.
    pub(super) fn load(self) -> Result<Authentication> {
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
        Ok(Authentication {
            psk_client,
            psk_server,
        })
    }
}

fn misuse(e: Error) -> Error {
    Error::InvalidConfiguration(e.to_string().replace("invalid argument: ", ""))
}

fn gnutls(e: crate::gnutls::GnutlsError) -> Error {
    Error::InvalidConfiguration(e.to_string())
}

impl Authentication {
    /// What a session of `role` gets: its side of the pre-shared keys.
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
        SessionOptions { psk }
    }

    /// The identity a client names, when it holds a pre-shared key.
    pub(crate) fn offered_identity(&self) -> Option<&[u8]> {
        self.psk_client.as_ref().map(|(_, offer)| offer.identity())
    }

    /// The server's table of pre-shared keys.
    pub(crate) fn table(&self) -> Option<&PreSharedKeys> {
        self.psk_server.as_ref().map(|(_, keys)| keys)
    }

    /// Whether a server can authenticate itself without an X.509
    /// certificate: with pre-shared keys.
    pub(crate) fn serves(&self) -> bool {
        self.psk_server.is_some()
    }
}

/// # Pre-shared keys
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
}

/// # Pre-shared keys
impl SslConfiguration {
    /// The identity a client names with its pre-shared key, if it has one.
    pub fn pre_shared_key_identity(&self) -> Option<&[u8]> {
        self.authentication().offered_identity()
    }

    /// A server's table of pre-shared keys, if it has one.
    pub fn pre_shared_keys(&self) -> Option<&PreSharedKeys> {
        self.authentication().table()
    }

    pub(crate) fn authentication(&self) -> &Authentication {
        &self.inner.authentication
    }

    /// Whether a server with this configuration can authenticate itself:
    /// with a certificate or pre-shared keys.
    pub(crate) fn can_serve(&self) -> bool {
        self.local_certificate().is_some() || self.authentication().serves()
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
        let client = AuthenticationSettings {
            psk_offer: Some((b"a".to_vec(), Zeroizing::new(vec![0; 16]))),
            ..Default::default()
        };
        assert!(client.priority_suffix().starts_with(":-KX-ALL:"));
        for settings in [psk, client] {
            let text = format!("NORMAL{}", settings.priority_suffix());
            Priority::new(&text, false).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        }
    }
}
