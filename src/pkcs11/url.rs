//! Reading PKCS#11 URLs (RFC 7512) for messages: the token's name, and the
//! URL without the PIN it may carry (`pin-value`), which is never shown.

/// The value of the path attribute `name` (`token`, `object`, …),
/// percent-decoded.
pub(super) fn attribute(url: &str, name: &str) -> Option<String> {
    let path = url.strip_prefix("pkcs11:")?;
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    path.split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decoded(value))
}

/// The URL without its `pin-value` and `pin-source` query attributes.
pub(super) fn redacted(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("pin-value=") && !pair.starts_with("pin-source="))
        .collect();
    match kept.is_empty() {
        true => path.to_owned(),
        false => format!("{path}?{}", kept.join("&")),
    }
}

/// Whether `url` is a PKCS#11 URL at all.
pub(super) fn is_pkcs11(url: &str) -> bool {
    url.starts_with("pkcs11:")
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_read_from_the_path_and_decoded() {
        let url =
            "pkcs11:model=SoftHSM%20v2;token=my%20token;object=server;type=private?pin-value=1234";
        assert_eq!(attribute(url, "token").as_deref(), Some("my token"));
        assert_eq!(attribute(url, "object").as_deref(), Some("server"));
        assert_eq!(attribute(url, "pin-value"), None);
        assert_eq!(attribute("pkcs11:object=a", "token"), None);
        assert_eq!(attribute("file:key.pem", "token"), None);
        assert_eq!(attribute("pkcs11:token=%4", "token").as_deref(), Some("%4"));
    }

    #[test]
    fn a_pin_in_the_url_is_never_shown() {
        assert_eq!(
            redacted("pkcs11:token=t;object=k?pin-value=1234"),
            "pkcs11:token=t;object=k"
        );
        assert_eq!(
            redacted("pkcs11:token=t?module-name=softhsm2&pin-source=file:/pin&pin-value=1"),
            "pkcs11:token=t?module-name=softhsm2"
        );
        assert_eq!(redacted("pkcs11:token=t"), "pkcs11:token=t");
        assert!(is_pkcs11("pkcs11:token=t"));
        assert!(!is_pkcs11("/etc/ssl/key.pem"));
    }
}
