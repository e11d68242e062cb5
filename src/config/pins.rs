//! [`PublicKeyPins`]: the public keys a configuration expects of each host
//! (curl's `--pinnedpubkey`, RFC 7469's pin form), checked on top of the
//! certificate's verification.
//!
//! A pin is `sha256//` and the base64 of the SHA-256 digest of a
//! certificate's SubjectPublicKeyInfo ([`Certificate::public_key_pin`](crate::Certificate::public_key_pin)).
//! Pins only restrict: a host with pins is accepted only if its leaf's key
//! is one of them (and its certificate verifies as usual). This file parses
//! and looks up; the engine checks.

use crate::error::{Error, Result};
use crate::resolver::parse_ip_literal;

/// Pins per host name; `*` names every host. Hosts are kept in the form
/// [`host_key`] gives, and looked up in it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PublicKeyPins {
    entries: Vec<(String, Vec<String>)>,
}

impl PublicKeyPins {
    /// Adds `pins` for `host` (`*`: every host); each pin may hold several,
    /// separated by `;` as curl writes them.
    pub(crate) fn add<P: AsRef<str>>(
        &mut self,
        host: &str,
        pins: impl IntoIterator<Item = P>,
    ) -> Result<()> {
        let mut parsed = Vec::new();
        for pin in pins {
            for one in pin.as_ref().split(';').map(str::trim) {
                parsed.push(valid(one)?.to_owned());
            }
        }
        if parsed.is_empty() {
            return Err(Error::InvalidConfiguration(format!(
                "no public key pin given for {host:?}"
            )));
        }
        self.entries.push((valid_host(host)?, parsed));
        Ok(())
    }

    /// Whether no pin was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pins that apply to a connection expecting `name`, if any.
    pub(crate) fn for_name(&self, name: &str) -> Option<Vec<&str>> {
        let name = host_key(name);
        let pins: Vec<&str> = self
            .entries
            .iter()
            .filter(|(host, _)| host == "*" || *host == name)
            .flat_map(|(_, pins)| pins.iter().map(String::as_str))
            .collect();
        (!pins.is_empty()).then_some(pins)
    }
}

/// The form a host is compared in: an IP address (with or without
/// brackets, in any of its spellings) as its canonical text, a name in
/// lower case without a trailing dot.
fn host_key(host: &str) -> String {
    if let Some(ip) = parse_ip_literal(host) {
        return ip.to_string();
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    name.to_ascii_lowercase()
}

/// The key of a host given with pins: `*` (every host), an IP address or
/// a host name. A wildcard name (`*.example.org`) or an empty one is an
/// error: a pin for it would apply to no connection, silently.
fn valid_host(host: &str) -> Result<String> {
    if host == "*" {
        return Ok(host.to_owned());
    }
    let key = host_key(host);
    if key.is_empty() || key.contains('*') {
        return Err(Error::InvalidConfiguration(format!(
            "public key pins name one host exactly (a name or an IP address), or \"*\" \
             for every host; {host:?} would match no connection"
        )));
    }
    Ok(key)
}

/// `pin` if it has the form `sha256//` + 44 characters of base64.
fn valid(pin: &str) -> Result<&str> {
    let digest = pin.strip_prefix("sha256//").unwrap_or("");
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    let well_formed =
        digest.len() == 44 && digest.ends_with('=') && digest[..43].chars().all(base64);
    match well_formed {
        true => Ok(pin),
        false => Err(Error::InvalidConfiguration(format!(
            "{pin:?} is not a public key pin: sha256// and the base64 of a SHA-256 digest \
             (44 characters) expected"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256//EaBqB9KvpTmjXnlWMcH/dn2g2dsgJiwOHr80ZLT6xQM=";
    const B: &str = "sha256//AAAAB9KvpTmjXnlWMcH/dn2g2dsgJiwOHr80ZLT6xQM=";

    #[test]
    fn pins_apply_to_their_host_and_star_to_all() {
        let mut pins = PublicKeyPins::default();
        pins.add("Example.ORG", [format!("{A};{B}")]).unwrap();
        pins.add("*", [A]).unwrap();
        assert_eq!(pins.for_name("example.org"), Some(vec![A, B, A]));
        assert_eq!(pins.for_name("other.example"), Some(vec![A]));
        assert_eq!(PublicKeyPins::default().for_name("example.org"), None);
    }

    #[test]
    fn a_host_is_matched_in_every_spelling_of_it() {
        let mut pins = PublicKeyPins::default();
        pins.add("[::1]", [A]).unwrap();
        pins.add("a.Wild.test.", [B]).unwrap();
        for spelling in ["::1", "[::1]", "0:0:0:0:0:0:0:1", "[0::1]"] {
            assert_eq!(pins.for_name(spelling), Some(vec![A]), "{spelling}");
        }
        assert_eq!(pins.for_name("a.wild.test"), Some(vec![B]));
        assert_eq!(pins.for_name("A.WILD.TEST."), Some(vec![B]));
        assert_eq!(pins.for_name("b.wild.test"), None);
    }

    #[test]
    fn a_host_no_connection_could_have_is_refused() {
        let mut pins = PublicKeyPins::default();
        for bad in ["*.wild.test", "", ".", "a*.example"] {
            assert!(pins.add(bad, [A]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_pins_are_refused() {
        let mut pins = PublicKeyPins::default();
        for bad in [
            "",
            "sha256//",
            "sha1//AAAA",
            "EaBqB9KvpTmjXnlWMcH/dn2g2dsgJiwOHr80ZLT6xQM=",
        ] {
            assert!(pins.add("h", [bad]).is_err(), "{bad:?}");
        }
        assert!(pins.add("h", Vec::<&str>::new()).is_err());
    }
}
