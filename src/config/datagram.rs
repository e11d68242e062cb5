//! The DTLS side of a configuration: the priority string DTLS sessions
//! negotiate with. Everything else (certificates, trust, verification,
//! pre-shared keys, raw public keys) is the configuration's, unchanged.
//!
//! GnuTLS names DTLS versions apart from TLS versions, so a DTLS session
//! needs a priority string of its own: the TLS one with DTLS 1.2 where the
//! protocol range allows TLS 1.2 (DTLS 1.2 is TLS 1.2 over datagrams; DTLS
//! 1.0, TLS 1.1's, where the range reaches TLS 1.1), built when the
//! configuration is, parsed the first time a DTLS session needs it. A
//! program's own priority string is used as it is for both.

use std::sync::{Arc, OnceLock};

use super::{narrowing, SslConfiguration, SslConfigurationBuilder, SslProtocol};
use crate::error::{Error, Result};
use crate::gnutls::Priority;

/// A configuration's DTLS priority: its text, and the parsed priority once
/// a DTLS session asked for it.
pub(super) struct DatagramPriority {
    /// The string and whether it is appended to the system's default, or
    /// why this configuration cannot speak DTLS.
    text: std::result::Result<(String, bool), String>,
    parsed: OnceLock<std::result::Result<Arc<Priority>, String>>,
}

impl SslConfigurationBuilder {
    /// The DTLS priority of the configuration being built.
    pub(super) fn datagram_priority(&self) -> DatagramPriority {
        let text = match &self.priority {
            Some(text) => Ok((text.clone(), false)),
            None => datagram_protocol_priority(self.protocols),
        };
        let suffix = self.authentication.priority_suffix();
        DatagramPriority {
            text: text.map(|(text, append)| (text + &suffix, append)),
            parsed: OnceLock::new(),
        }
    }
}

/// The default priority's counterpart for DTLS: the same profile and
/// suites, with the DTLS versions that match the TLS range.
fn datagram_protocol_priority(
    (minimum, maximum): (SslProtocol, SslProtocol),
) -> std::result::Result<(String, bool), String> {
    let range = minimum..=maximum;
    let versions: Vec<&str> = [
        (SslProtocol::TlsV1_1, "+VERS-DTLS1.0"),
        (SslProtocol::TlsV1_2, "+VERS-DTLS1.2"),
    ]
    .into_iter()
    .filter(|(tls, _)| range.contains(tls))
    .map(|(_, dtls)| dtls)
    .collect();
    if versions.is_empty() {
        return Err(format!(
            "DTLS needs TLS 1.2 (or 1.1) in the protocol range, which is {minimum} to {maximum} \
             (GnuTLS has no DTLS 1.3)"
        ));
    }
    let text = format!(
        "%PROFILE_MEDIUM:-VERS-ALL:{}{}",
        versions.join(":"),
        narrowing(minimum)
    );
    Ok((text, true))
}

impl SslConfiguration {
    /// The priority DTLS sessions of this configuration use, parsed on
    /// first use. Fails when the configuration's protocol range has no
    /// DTLS counterpart, or GnuTLS refuses the string.
    pub(crate) fn dtls_priority(&self) -> Result<Arc<Priority>> {
        let datagram = &self.inner.datagram_priority;
        let parsed = datagram.parsed.get_or_init(|| {
            let (text, append) = datagram.text.clone()?;
            Priority::new(&text, append).map(Arc::new).map_err(|e| {
                format!(
                    "DTLS priority string {text:?} refused at {:?}: {}",
                    e.at, e.error
                )
            })
        });
        parsed.clone().map_err(Error::InvalidConfiguration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dtls_priority_follows_the_tls_range() {
        let default = datagram_protocol_priority((SslProtocol::TlsV1_2, SslProtocol::TlsV1_3));
        let (text, append) = default.unwrap();
        assert!(append);
        assert!(
            text.starts_with("%PROFILE_MEDIUM:-VERS-ALL:+VERS-DTLS1.2:-AES-128-CBC"),
            "{text}"
        );
        Priority::new(&text, true).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let legacy = datagram_protocol_priority((SslProtocol::TlsV1_0, SslProtocol::TlsV1_2));
        assert!(legacy.unwrap().0.ends_with("+VERS-DTLS1.0:+VERS-DTLS1.2"));
        let tls13 = datagram_protocol_priority((SslProtocol::TlsV1_3, SslProtocol::TlsV1_3));
        assert!(tls13.unwrap_err().contains("no DTLS 1.3"));
    }

    #[test]
    fn a_tls_1_3_only_configuration_refuses_dtls_when_a_dtls_socket_asks() {
        let config = SslConfiguration::builder()
            .system_ca_certificates(false)
            .protocols(SslProtocol::TlsV1_3, SslProtocol::TlsV1_3)
            .build()
            .unwrap();
        let error = config.dtls_priority().err().unwrap();
        assert!(matches!(error, Error::InvalidConfiguration(_)), "{error}");
        let dtls = SslConfiguration::builder()
            .system_ca_certificates(false)
            .build()
            .unwrap();
        let first = dtls.dtls_priority().unwrap();
        assert!(
            Arc::ptr_eq(&first, &dtls.dtls_priority().unwrap()),
            "parsed once"
        );
    }
}
