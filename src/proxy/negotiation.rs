//! [`Negotiation`]: opening a tunnel through a proxy, as a state machine
//! over byte queues (HTTP CONNECT, RFC 7231 §4.3.6; SOCKS5, RFC 1928 and
//! RFC 1929). No sockets here: the socket feeds what the proxy sent and
//! sends what the negotiation queued.

use std::net::IpAddr;

use super::{Proxy, ProxyErrorKind, ProxyKind};
use crate::buffer::ByteQueue;
use crate::error::{Error, Result};
use crate::resolver::parse_ip_literal;

/// The longest HTTP response head accepted from a proxy.
const MAX_HEAD: usize = 16 * 1024;

/// Where a negotiation stands after the proxy's latest bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More bytes from the proxy are needed.
    NeedMore,
    /// The tunnel is open: what follows is the target's byte stream.
    Done,
    /// The proxy wants (other) credentials; the text says what it answered.
    AuthenticationRequired(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    HttpResponse,
    SocksMethod,
    SocksAuth,
    SocksReply,
    Done,
}

/// One tunnel negotiation with a proxy.
#[derive(Debug)]
pub(crate) struct Negotiation {
    proxy: Proxy,
    host: String,
    port: u16,
    address: Option<IpAddr>,
    state: State,
}

impl Negotiation {
    /// Starts a negotiation for a tunnel to `host:port` (`address`: the
    /// target resolved locally, needed for [`ProxyKind::Socks5`]) and queues
    /// the first message in `out`.
    pub(crate) fn start(
        proxy: &Proxy,
        host: &str,
        port: u16,
        address: Option<IpAddr>,
        out: &mut ByteQueue,
    ) -> Result<Self> {
        let mut negotiation = Self {
            proxy: proxy.clone(),
            host: host.to_owned(),
            port,
            address,
            state: State::Done,
        };
        match proxy.kind() {
            ProxyKind::HttpConnect => {
                out.extend(negotiation.connect_request().as_bytes());
                negotiation.state = State::HttpResponse;
            }
            ProxyKind::Socks5 | ProxyKind::Socks5Hostname => {
                let methods: &[u8] = match proxy.credentials() {
                    Some(_) => &[0x00, 0x02],
                    None => &[0x00],
                };
                out.extend(&[5, methods.len() as u8]);
                out.extend(methods);
                negotiation.state = State::SocksMethod;
            }
        }
        Ok(negotiation)
    }

    fn connect_request(&self) -> String {
        let host = match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        let authority = format!("{host}:{}", self.port);
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some((user, password)) = self.proxy.credentials() {
            let token = base64(format!("{user}:{password}").as_bytes());
            request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        request.push_str("\r\n");
        request
    }

    /// Consumes what the proxy sent (leaving any tunnel bytes after the
    /// negotiation in `input`) and queues replies in `out`.
    pub(crate) fn receive(
        &mut self,
        input: &mut ByteQueue,
        out: &mut ByteQueue,
    ) -> Result<Progress> {
        loop {
            let before = self.state;
            let progress = match self.state {
                State::HttpResponse => self.http_response(input)?,
                State::SocksMethod => self.socks_method(input, out)?,
                State::SocksAuth => self.socks_auth(input, out)?,
                State::SocksReply => self.socks_reply(input)?,
                State::Done => Progress::Done,
            };
            if progress != Progress::NeedMore || self.state == before {
                return Ok(progress);
            }
        }
    }

    fn http_response(&mut self, input: &mut ByteQueue) -> Result<Progress> {
        let data = input.as_slice();
        let Some(end) = head_end(data) else {
            if data.len() > MAX_HEAD {
                return Err(proxy_error(
                    ProxyErrorKind::ProtocolError,
                    "the proxy's answer head is too long",
                ));
            }
            return Ok(Progress::NeedMore);
        };
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        input.consume(end);
        let status_line = head.lines().next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| {
                proxy_error(
                    ProxyErrorKind::ProtocolError,
                    &format!("not an HTTP answer: {status_line:?}"),
                )
            })?;
        let answer = format!("the proxy answered {}", status_line.trim());
        match status {
            200..=299 => {
                self.state = State::Done;
                Ok(Progress::Done)
            }
            // 407 is the proxy's answer; some proxies (tinyproxy) say 401.
            401 | 407 => Ok(Progress::AuthenticationRequired(answer)),
            _ => Err(proxy_error(ProxyErrorKind::TargetRefused, &answer)),
        }
    }

    fn socks_method(&mut self, input: &mut ByteQueue, out: &mut ByteQueue) -> Result<Progress> {
        let Some(&[version, method]) = input.as_slice().get(..2) else {
            return Ok(Progress::NeedMore);
        };
        input.consume(2);
        if version != 5 {
            return Err(proxy_error(
                ProxyErrorKind::ProtocolError,
                "not a SOCKS5 proxy",
            ));
        }
        match (method, self.proxy.credentials()) {
            (0x00, _) => self.socks_request(out)?,
            (0x02, Some((user, password))) => {
                if user.len() > 255 || password.len() > 255 {
                    return Err(Error::InvalidInput(
                        "SOCKS5 user names and passwords are limited to 255 bytes".into(),
                    ));
                }
                out.extend(&[1, user.len() as u8]);
                out.extend(user.as_bytes());
                out.extend(&[password.len() as u8]);
                out.extend(password.as_bytes());
                self.state = State::SocksAuth;
            }
            (0xff | 0x02, _) => {
                return Ok(Progress::AuthenticationRequired(
                    "the SOCKS5 proxy accepts none of the offered authentication methods".into(),
                ));
            }
            (other, _) => {
                return Err(proxy_error(
                    ProxyErrorKind::ProtocolError,
                    &format!("the SOCKS5 proxy chose a method that was not offered ({other:#04x})"),
                ));
            }
        }
        Ok(Progress::NeedMore)
    }

    fn socks_auth(&mut self, input: &mut ByteQueue, out: &mut ByteQueue) -> Result<Progress> {
        let Some(&[_, status]) = input.as_slice().get(..2) else {
            return Ok(Progress::NeedMore);
        };
        input.consume(2);
        if status != 0 {
            return Ok(Progress::AuthenticationRequired(
                "the SOCKS5 proxy refused the user name or password".into(),
            ));
        }
        self.socks_request(out)?;
        Ok(Progress::NeedMore)
    }

    fn socks_request(&mut self, out: &mut ByteQueue) -> Result<()> {
        out.extend(&[5, 1, 0]);
        // "[::1]" is an address too, not a name for the proxy to look up.
        let literal = parse_ip_literal(&self.host);
        let address = match self.proxy.kind() {
            ProxyKind::Socks5Hostname => literal,
            _ => literal.or(self.address),
        };
        match address {
            Some(IpAddr::V4(ip)) => {
                out.extend(&[1]);
                out.extend(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                out.extend(&[4]);
                out.extend(&ip.octets());
            }
            None if self.proxy.kind() == ProxyKind::Socks5Hostname => {
                let name = self.host.as_bytes();
                if name.len() > 255 {
                    return Err(Error::InvalidInput(
                        "host names for SOCKS5 are limited to 255 bytes".into(),
                    ));
                }
                out.extend(&[3, name.len() as u8]);
                out.extend(name);
            }
            None => return Err(Error::InvalidState("SOCKS5 needs the target's address")),
        }
        out.extend(&self.port.to_be_bytes());
        self.state = State::SocksReply;
        Ok(())
    }

    fn socks_reply(&mut self, input: &mut ByteQueue) -> Result<Progress> {
        let data = input.as_slice();
        let Some(&[version, reply, _, address_type]) = data.get(..4) else {
            return Ok(Progress::NeedMore);
        };
        if version != 5 {
            return Err(proxy_error(
                ProxyErrorKind::ProtocolError,
                "bad SOCKS5 reply",
            ));
        }
        if reply != 0 {
            return Err(proxy_error(
                ProxyErrorKind::TargetRefused,
                socks_reply_text(reply),
            ));
        }
        let length = match address_type {
            1 => 4 + 4 + 2,
            4 => 4 + 16 + 2,
            3 => match data.get(4) {
                Some(&n) => 4 + 1 + usize::from(n) + 2,
                None => return Ok(Progress::NeedMore),
            },
            _ => {
                return Err(proxy_error(
                    ProxyErrorKind::ProtocolError,
                    "bad address type in the SOCKS5 reply",
                ))
            }
        };
        if data.len() < length {
            return Ok(Progress::NeedMore);
        }
        input.consume(length);
        self.state = State::Done;
        Ok(Progress::Done)
    }
}

fn socks_reply_text(reply: u8) -> &'static str {
    match reply {
        1 => "the SOCKS5 proxy reports a general failure",
        2 => "the SOCKS5 proxy's rules do not allow this connection",
        3 => "the SOCKS5 proxy reports the network unreachable",
        4 => "the SOCKS5 proxy reports the host unreachable",
        5 => "the SOCKS5 proxy's connection to the target was refused",
        6 => "the SOCKS5 proxy reports a TTL expiry",
        7 => "the SOCKS5 proxy does not support CONNECT",
        8 => "the SOCKS5 proxy does not support this address type",
        _ => "the SOCKS5 proxy refused the connection",
    }
}

pub(crate) fn proxy_error(kind: ProxyErrorKind, detail: &str) -> Error {
    Error::Proxy {
        kind,
        detail: detail.to_owned(),
    }
}

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The length of the response head in `data`, its empty last line
/// included, once it is all there. Lines end in CRLF or, as RFC 9112 §2.2
/// lets a recipient accept (and curl does), in LF alone.
fn head_end(data: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, _) in data.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        if matches!(&data[line_start..i], b"" | b"\r") {
            return Some(i + 1);
        }
        line_start = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(proxy: &Proxy, host: &str, replies: &[&[u8]]) -> (Result<Progress>, Vec<u8>) {
        let mut out = ByteQueue::new();
        let mut negotiation =
            Negotiation::start(proxy, host, 443, "192.0.2.1".parse().ok(), &mut out).unwrap();
        let mut input = ByteQueue::new();
        let mut result = Ok(Progress::NeedMore);
        for reply in replies {
            input.extend(reply);
            result = negotiation.receive(&mut input, &mut out);
        }
        (result, out.take_all())
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn http_connect_with_basic_auth() {
        let proxy =
            Proxy::new(ProxyKind::HttpConnect, "p", 1).with_credentials("Aladdin", "open sesame");
        let (result, sent) = run(
            &proxy,
            "example.org",
            &[b"HTTP/1.1 200 Connection established\r\n", b"\r\n"],
        );
        assert_eq!(result.unwrap(), Progress::Done);
        let sent = String::from_utf8(sent).unwrap();
        assert!(sent.starts_with("CONNECT example.org:443 HTTP/1.1\r\n"));
        assert!(sent.contains("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
        let (result, _) = run(
            &proxy,
            "::1",
            &[b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"],
        );
        assert!(matches!(
            result.unwrap(),
            Progress::AuthenticationRequired(_)
        ));
        let (result, _) = run(&proxy, "x", &[b"HTTP/1.1 403 Forbidden\r\n\r\n"]);
        assert!(matches!(
            result,
            Err(Error::Proxy {
                kind: ProxyErrorKind::TargetRefused,
                ..
            })
        ));
        let (result, _) = run(&proxy, "x", &[b"SSH-2.0-OpenSSH\r\n\r\n"]);
        assert!(matches!(
            result,
            Err(Error::Proxy {
                kind: ProxyErrorKind::ProtocolError,
                ..
            })
        ));
    }

    #[test]
    fn an_http_head_may_end_its_lines_in_lf_alone() {
        let proxy = Proxy::new(ProxyKind::HttpConnect, "p", 1);
        for reply in [
            &b"HTTP/1.1 200 OK\n\ntunnel"[..],
            b"HTTP/1.1 200 OK\nVia: x\r\n\r\ntunnel",
            b"HTTP/1.1 200 OK\r\nVia: x\n\ntunnel",
        ] {
            let mut out = ByteQueue::new();
            let mut negotiation = Negotiation::start(&proxy, "h", 443, None, &mut out).unwrap();
            let mut input = ByteQueue::new();
            input.extend(reply);
            let progress = negotiation.receive(&mut input, &mut out).unwrap();
            assert_eq!(progress, Progress::Done, "{reply:?}");
            assert_eq!(input.as_slice(), b"tunnel", "{reply:?}");
        }
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r"), None);
    }

    #[test]
    fn socks5_with_a_bracketed_ipv6_literal_sends_the_address() {
        let proxy = Proxy::new(ProxyKind::Socks5Hostname, "p", 1);
        let (result, sent) = run(&proxy, "[::1]", &[&[5, 0], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]]);
        assert_eq!(result.unwrap(), Progress::Done);
        let mut expected = vec![5, 1, 0, 5, 1, 0, 4];
        expected.extend(std::net::Ipv6Addr::LOCALHOST.octets());
        expected.extend([1, 187]);
        assert_eq!(sent, expected);
    }

    #[test]
    fn socks5_with_user_and_password_and_remote_dns() {
        let proxy = Proxy::new(ProxyKind::Socks5Hostname, "p", 1).with_credentials("u", "pw");
        let replies: [&[u8]; 3] = [&[5, 2], &[1, 0], &[5, 0, 0, 1, 127, 0, 0, 1, 0, 80]];
        let (result, sent) = run(&proxy, "example.org", &replies);
        assert_eq!(result.unwrap(), Progress::Done);
        let mut expected = vec![5, 2, 0, 2, 1, 1, b'u', 2, b'p', b'w', 5, 1, 0, 3, 11];
        expected.extend(b"example.org");
        expected.extend([1, 187]);
        assert_eq!(sent, expected);
    }

    #[test]
    fn socks5_local_resolution_sends_the_address_and_failures_are_typed() {
        let proxy = Proxy::new(ProxyKind::Socks5, "p", 1);
        let (result, sent) = run(
            &proxy,
            "example.org",
            &[&[5, 0], &[5, 0, 0, 3, 1, b'x', 0, 1]],
        );
        assert_eq!(result.unwrap(), Progress::Done);
        assert_eq!(&sent[3..], &[5, 1, 0, 1, 192, 0, 2, 1, 1, 187]);
        let (result, _) = run(&proxy, "h", &[&[5, 0], &[5, 5, 0, 1]]);
        assert!(matches!(
            result,
            Err(Error::Proxy {
                kind: ProxyErrorKind::TargetRefused,
                ..
            })
        ));
        let (result, _) = run(&proxy, "h", &[&[5, 0xff]]);
        assert!(matches!(
            result.unwrap(),
            Progress::AuthenticationRequired(_)
        ));
        let (result, _) = run(&proxy, "h", &[&[4, 0]]);
        assert!(matches!(
            result,
            Err(Error::Proxy {
                kind: ProxyErrorKind::ProtocolError,
                ..
            })
        ));
    }
}
