//! Proxy negotiation (HTTP CONNECT, SOCKS5, SOCKS5 with credentials and
//! remote name resolution) against arbitrary proxy replies.
//!
//! Input: `SETUP (LEN:u8 REPLY)*`; `SETUP` bits 0–1 the proxy kind (0 and 3
//! HTTP CONNECT, 1 SOCKS5, 2 SOCKS5 with the name resolved by the proxy),
//! bit 2 credentials, bits 3–4 the target (a name, an IPv4 address, an IPv6
//! address, a 300-byte name), bit 5 credentials over SOCKS5's 255-byte
//! limit; a `LEN` of 255 means the rest of the input.
//!
//! Oracle: how the replies are split must not change the outcome, so the
//! result is compared with the same bytes in one reply and byte by byte
//! (only below the 16 KiB HTTP head limit, which is checked on what has
//! arrived so far).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket::fuzzing::proxy_negotiation;
use sslsocket::{Proxy, ProxyKind};
use sslsocket_fuzz::Input;

/// The negotiation's limit on an HTTP answer head.
const MAX_HEAD: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let setup = input.byte().unwrap_or(0);
    let kind = match setup & 3 {
        1 => ProxyKind::Socks5,
        2 => ProxyKind::Socks5Hostname,
        _ => ProxyKind::HttpConnect,
    };
    let mut proxy = Proxy::new(kind, "proxy.invalid", 1080);
    if setup & 4 != 0 {
        let long = "u".repeat(300);
        let user = if setup & 32 != 0 {
            long.as_str()
        } else {
            "Aladdin"
        };
        proxy = proxy.with_credentials(user, "open sesame");
    }
    let long_name = "a".repeat(300);
    let host = match setup >> 3 & 3 {
        0 => "example.org",
        1 => "203.0.113.7",
        2 => "2001:db8::7",
        _ => long_name.as_str(),
    };
    let mut replies = Vec::new();
    while let Some(length) = input.byte() {
        let reply = match length {
            255 => input.rest(),
            n => input.take(usize::from(n)),
        };
        replies.push(reply);
    }
    let outcome = format!("{:?}", proxy_negotiation(&proxy, host, &replies));
    let all: Vec<u8> = replies.concat();
    if all.len() <= MAX_HEAD {
        let whole = format!("{:?}", proxy_negotiation(&proxy, host, &[&all]));
        assert_eq!(outcome, whole, "one reply instead of {}", replies.len());
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        let single = format!("{:?}", proxy_negotiation(&proxy, host, &bytes));
        assert_eq!(outcome, single, "byte by byte instead of {}", replies.len());
    }
});
