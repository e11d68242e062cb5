//! [`DtlsClientVerifier`]: a server's stateless check that a client can
//! receive at the address its datagrams come from (Qt's
//! `QDtlsClientVerifier`, RFC 6347 §4.2.1).
//!
//! A ClientHello without the right cookie is answered with a
//! HelloVerifyRequest carrying a cookie (a MAC of the client's address
//! under a secret) and forgotten; only a ClientHello that echoes it admits
//! the client. The secret can be replaced at any time; cookies made under
//! the previous one stay good until the next replacement, so handshakes in
//! flight survive a rotation.

use std::net::SocketAddr;

use super::hello::record_sequence;
use crate::error::{Error, Result};
use crate::gnutls::{hello_verify_request, verify_cookie, CookieKey, Prestate};

/// The shortest secret a program may give.
const MIN_SECRET: usize = 16;

/// What a server does with an initial ClientHello.
pub(super) enum Verdict {
    /// The cookie is good: admit the client, continuing from here.
    Admit(Prestate),
    /// No cookie, or a wrong one: send this HelloVerifyRequest and forget.
    Challenge(Vec<u8>),
}

/// The cookie secrets of a [`DtlsServer`](crate::DtlsServer), reached with
/// [`DtlsServer::client_verifier`](crate::DtlsServer::client_verifier).
///
/// A server starts with a random secret. Rotating it now and then (say
/// hourly, from a timer) limits how long a cookie stays valid: a cookie
/// proves the address could receive, and a cookie that leaked can be
/// replayed from anywhere until its secret is gone.
///
/// ```no_run
/// use std::time::Duration;
/// use sslsocket::{Reactor, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let config: SslConfiguration = unimplemented!();
/// let mut reactor = Reactor::new()?;
/// let server = reactor.dtls_listen("127.0.0.1:0".parse()?, config)?;
/// reactor.start_repeating_timer(Duration::from_secs(3600), move |cx, _| {
///     if let Some(server) = cx.dtls_server(server) {
///         server.client_verifier().rotate_secret().expect("a random secret");
///     }
/// });
/// # Ok(()) }
/// ```
pub struct DtlsClientVerifier {
    current: CookieKey,
    /// The secret before the last rotation, still accepted.
    previous: Option<CookieKey>,
}

impl DtlsClientVerifier {
    /// A verifier with a random secret.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            current: random_key()?,
            previous: None,
        })
    }

    /// Makes cookies from now on under a fresh random secret; cookies made
    /// under the secret it replaces are still accepted until the next
    /// rotation.
    pub fn rotate_secret(&mut self) -> Result<()> {
        self.replace(random_key()?);
        Ok(())
    }

    /// Makes cookies from now on under `secret` (at least 16 bytes, copied
    /// and wiped when replaced), for servers that share one secret; cookies
    /// made under the secret it replaces are still accepted until the next
    /// change. Qt's `setCookieGeneratorParameters`.
    pub fn set_secret(&mut self, secret: &[u8]) -> Result<()> {
        if secret.len() < MIN_SECRET {
            return Err(Error::InvalidInput(format!(
                "a cookie secret of {} bytes: at least {MIN_SECRET} are needed",
                secret.len()
            )));
        }
        self.replace(CookieKey::from_secret(secret));
        Ok(())
    }

    fn replace(&mut self, key: CookieKey) {
        if key.same_as(&self.current) {
            return;
        }
        self.previous = Some(std::mem::replace(&mut self.current, key));
    }

    /// Judges `hello`, an initial ClientHello from `client`: admits it if
    /// it echoes a cookie made for that address under the current or the
    /// previous secret, or else says how to challenge it.
    pub(super) fn check(&self, hello: &[u8], client: SocketAddr) -> Result<Verdict> {
        let address = address_bytes(client);
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        for key in keys {
            if let Some(prestate) = verify_cookie(key, &address, hello) {
                return Ok(Verdict::Admit(prestate));
            }
        }
        let prestate = Prestate::new(record_sequence(hello));
        hello_verify_request(&self.current, &address, prestate)
            .map(Verdict::Challenge)
            .map_err(Error::Tls)
    }
}

fn random_key() -> Result<CookieKey> {
    CookieKey::generate()
        .map_err(|e| Error::InvalidConfiguration(format!("no random cookie secret: {e}")))
}

/// What a cookie is made for: the address family, address and port.
fn address_bytes(address: SocketAddr) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(19);
    match address {
        SocketAddr::V4(a) => {
            bytes.push(4);
            bytes.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            bytes.push(6);
            bytes.extend_from_slice(&a.ip().octets());
        }
    }
    bytes.extend_from_slice(&address.port().to_be_bytes());
    bytes
}

impl std::fmt::Debug for DtlsClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsClientVerifier")
            .field("previous_secret_accepted", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cookie a HelloVerifyRequest carries: its last 16 bytes.
    fn cookie(verdict: Verdict) -> Vec<u8> {
        match verdict {
            Verdict::Challenge(reply) => reply[reply.len() - 16..].to_vec(),
            Verdict::Admit(_) => panic!("admitted without a cookie"),
        }
    }

    /// A ClientHello with `cookie`, as far as the check reads it.
    fn hello_with(cookie: &[u8]) -> Vec<u8> {
        let mut hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
        hello.extend_from_slice(&[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xfe, 0xfd]);
        hello.extend_from_slice(&[0x42; 32]);
        hello.extend_from_slice(&[0, cookie.len() as u8]);
        hello.extend_from_slice(cookie);
        hello.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]);
        hello
    }

    #[test]
    fn a_rotation_keeps_the_previous_secret_for_one_more_round() {
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut verifier = DtlsClientVerifier::new().unwrap();
        let first = cookie(verifier.check(&hello_with(&[]), client).unwrap());
        let admitted = |v: &DtlsClientVerifier, cookie: &[u8], from| {
            matches!(
                v.check(&hello_with(cookie), from).unwrap(),
                Verdict::Admit(_)
            )
        };
        assert!(admitted(&verifier, &first, client));
        assert!(!admitted(
            &verifier,
            &first,
            "127.0.0.1:5001".parse().unwrap()
        ));
        assert!(!admitted(&verifier, &first, "[::1]:5000".parse().unwrap()));
        verifier.rotate_secret().unwrap();
        assert!(admitted(&verifier, &first, client), "still good once");
        let second = cookie(verifier.check(&hello_with(&[]), client).unwrap());
        assert_ne!(first, second);
        verifier.set_secret(&[9; 32]).unwrap();
        assert!(
            !admitted(&verifier, &first, client),
            "gone after two changes"
        );
        assert!(admitted(&verifier, &second, client));
        assert!(verifier.set_secret(b"short").is_err());
    }
}
