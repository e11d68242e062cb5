//! [`Proxy`]: connecting through an HTTP CONNECT or SOCKS5 proxy, and
//! finding the proxy a program should use from the environment, as curl does.
//!
//! The negotiation itself (`negotiation.rs`) is a sans-IO state machine:
//! bytes from the proxy in, bytes for the proxy out. The socket runs it on
//! its TCP stream before TLS starts, so TLS runs end to end through the
//! tunnel and the certificate is checked against the target host, never the
//! proxy.

mod environment;
mod negotiation;

use std::fmt;

pub(crate) use negotiation::{Negotiation, Progress};

use crate::error::{Error, Result};

/// The proxy protocols sslsocket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// An HTTP proxy, through `CONNECT host:port` (with Basic
    /// authentication when credentials are set).
    HttpConnect,
    /// SOCKS5 (RFC 1928, with RFC 1929 username/password authentication):
    /// the target name is resolved locally and the proxy gets its address.
    Socks5,
    /// SOCKS5 with the target name resolved by the proxy (curl's
    /// `socks5h://`).
    Socks5Hostname,
}

/// A proxy to connect through (Qt's `QNetworkProxy`).
///
/// ```
/// use sslsocket::{Proxy, ProxyKind};
/// let proxy = Proxy::parse("socks5h://alice:s3cret@127.0.0.1:1080").unwrap();
/// assert_eq!(proxy.kind(), ProxyKind::Socks5Hostname);
/// assert_eq!((proxy.host(), proxy.port()), ("127.0.0.1", 1080));
/// assert_eq!(proxy.user(), Some("alice"));
/// assert!(Proxy::parse("ftp://example.org").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

/// The port proxies listen on when a URL names none (curl's default).
const DEFAULT_PROXY_PORT: u16 = 1080;

impl Proxy {
    /// A proxy of `kind` at `host:port`, without credentials.
    pub fn new(kind: ProxyKind, host: &str, port: u16) -> Self {
        Self {
            kind,
            host: host.to_owned(),
            port,
            credentials: None,
        }
    }

    /// The same proxy with a user name and password (Basic for HTTP,
    /// RFC 1929 for SOCKS5).
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Parses a proxy URL as curl writes it:
    /// `http://[user:password@]host[:port]`, `socks5://…`, `socks5h://…`
    /// (a bare `host:port` means HTTP). User and password may be
    /// percent-encoded; the port defaults to 1080.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| {
            let shown = without_password(url);
            Error::InvalidInput(format!("proxy URL {shown:?}: {why}"))
        };
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::HttpConnect,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5Hostname,
            other => return Err(invalid(&format!("unsupported proxy scheme {other}://"))),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| invalid("bad host or port"))?;
        let mut proxy = Self::new(kind, &host, port.unwrap_or(DEFAULT_PROXY_PORT));
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            proxy = proxy.with_credentials(&percent_decode(user), &percent_decode(password));
        }
        Ok(proxy)
    }

    /// The proxy the environment asks for when connecting to `host` with
    /// `scheme` (`"https"`, …): `<scheme>_proxy` (lower case first, then
    /// upper case), then `all_proxy`/`ALL_PROXY`, unless `no_proxy`/
    /// `NO_PROXY` exempts the host. `None` when no proxy applies; an
    /// unparsable variable is an error.
    pub fn from_env(scheme: &str, host: &str) -> Result<Option<Self>> {
        environment::proxy_for(scheme, host, |name| std::env::var(name).ok())
    }

    /// The protocol.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, when credentials are set.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(u, _)| u.as_str())
    }

    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }
}

/// `url` with the password of its user information, if any, replaced by
/// `***` (for error messages: the URL often comes from the environment).
fn without_password(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let Some(at) = url[start..authority_end].rfind('@').map(|i| start + i) else {
        return url.to_owned();
    };
    match url[start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..start + colon], &url[at..]),
        None => url.to_owned(),
    }
}

/// Never shows the password.
impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user())
            .finish()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::HttpConnect => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5Hostname => "socks5h",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{host}:{}", self.port)
    }
}

/// Why going through a proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The proxy could not be reached.
    ConnectionRefused,
    /// The proxy closed the connection during the negotiation.
    ConnectionClosed,
    /// The proxy wants credentials, or refused the ones given.
    AuthenticationRequired,
    /// The proxy refused to connect to the target, or could not.
    TargetRefused,
    /// The proxy's answer made no sense.
    ProtocolError,
}

impl fmt::Display for ProxyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']')?;
            (&rest[..end], rest[end + 1..].strip_prefix(':'))
        }
        None => match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some((host.to_owned(), port))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
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
    fn a_refused_url_is_shown_without_its_password() {
        for url in [
            "http://alice:S3cretPW@127.0.0.1:80800",
            "ftp://alice:S3cretPW@proxy.example",
            "socks5://alice:S3cret@PW@[::1:1080",
        ] {
            let error = Proxy::parse(url).unwrap_err().to_string();
            assert!(!error.contains("S3cret"), "{error}");
            assert!(error.contains("alice:***@"), "{error}");
        }
        assert_eq!(without_password("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(without_password("u@h:1"), "u@h:1");
    }

    #[test]
    fn parses_curl_style_urls() {
        let p = Proxy::parse("http://user%40corp:p%3Ass@proxy.example:3128").unwrap();
        assert_eq!(p.kind(), ProxyKind::HttpConnect);
        assert_eq!(p.credentials(), Some(("user@corp", "p:ss")));
        assert_eq!(p.port(), 3128);
        let p = Proxy::parse("[::1]:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 8080));
        assert_eq!(Proxy::parse("socks5://10.0.0.1").unwrap().port(), 1080);
        assert!(Proxy::parse("http://:80").is_err());
        assert!(Proxy::parse("http://host:99999").is_err());
        assert!(Proxy::parse("https://host:443").is_err());
        assert!(!format!("{:?}", Proxy::parse("http://u:secret@h:1").unwrap()).contains("secret"));
    }
}
