//! The proxy environment variables, read the way curl reads them.
//!
//! `<scheme>_proxy` (curl accepts only the lower-case `http_proxy`, and both
//! cases for the others), then `all_proxy`/`ALL_PROXY`; `no_proxy`/
//! `NO_PROXY` lists hosts that go direct: `*` for all, a name that also
//! covers its subdomains (a leading dot is allowed), an IP address, or an
//! IP network in CIDR notation.

use std::net::IpAddr;

use super::Proxy;
use crate::error::Result;
use crate::resolver::parse_ip_literal;

/// The proxy for `host` reached with `scheme`, looking variables up with
/// `var`.
pub(super) fn proxy_for(
    scheme: &str,
    host: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>> {
    let lower = format!("{}_proxy", scheme.to_ascii_lowercase());
    let mut names = vec![lower.clone()];
    if lower != "http_proxy" {
        names.push(lower.to_ascii_uppercase());
    }
    names.extend(["all_proxy".to_owned(), "ALL_PROXY".to_owned()]);
    let Some(url) = names
        .iter()
        .filter_map(|n| var(n))
        .find(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let exempt = var("no_proxy")
        .or_else(|| var("NO_PROXY"))
        .is_some_and(|list| is_exempt(&list, host));
    if exempt {
        return Ok(None);
    }
    Proxy::parse(url.trim()).map(Some)
}

/// Whether `no_proxy`'s `list` exempts `host`.
fn is_exempt(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip = parse_ip_literal(&host);
    list.split(',')
        .map(|entry| entry.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            entry == "*"
                || match (host_ip, entry.split_once('/')) {
                    (Some(ip), Some((network, bits))) => in_network(ip, network, bits),
                    (Some(ip), None) => parse_ip_literal(&entry) == Some(ip),
                    (None, _) => host == entry || host.ends_with(&format!(".{entry}")),
                }
        })
}

fn in_network(ip: IpAddr, network: &str, bits: &str) -> bool {
    let (Some(network), Ok(bits)) = (parse_ip_literal(network), bits.parse::<u32>()) else {
        return false;
    };
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    bits == 0 || ip >> shift == network >> shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyKind;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn scheme_variable_wins_over_all_proxy() {
        let vars = [
            ("HTTPS_PROXY", "http://a:1"),
            ("all_proxy", "socks5h://b:2"),
        ];
        let p = proxy_for("https", "example.org", env(&vars))
            .unwrap()
            .unwrap();
        assert_eq!((p.host(), p.port()), ("a", 1));
        let p = proxy_for("ftp", "example.org", env(&vars))
            .unwrap()
            .unwrap();
        assert_eq!(p.kind(), ProxyKind::Socks5Hostname);
        assert!(proxy_for("https", "x", env(&[])).unwrap().is_none());
        assert!(proxy_for("https", "x", env(&[("https_proxy", "gopher://x")])).is_err());
    }

    #[test]
    fn no_proxy_matches_names_suffixes_ips_and_networks() {
        let list = "localhost, .internal.example, 10.0.0.0/8, ::1, 192.168.1.7";
        assert!(is_exempt(list, "localhost"));
        assert!(is_exempt(list, "a.b.internal.example"));
        assert!(is_exempt(list, "internal.example"));
        assert!(!is_exempt(list, "notinternal.example"));
        assert!(is_exempt(list, "10.20.30.40"));
        assert!(!is_exempt(list, "11.0.0.1"));
        assert!(is_exempt(list, "[::1]"));
        assert!(is_exempt(list, "192.168.1.7"));
        assert!(!is_exempt(list, "192.168.1.8"));
        assert!(is_exempt("*", "anything"));
        let vars = [("https_proxy", "http://p:1"), ("NO_PROXY", "example.org")];
        assert!(proxy_for("https", "www.example.org", env(&vars))
            .unwrap()
            .is_none());
    }
}
