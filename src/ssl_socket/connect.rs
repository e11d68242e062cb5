//! Establishing a socket's connection: host lookup, connection attempts
//! raced as RFC 8305 (Happy Eyeballs) describes, and the tunnel through a
//! proxy when one is set.
//!
//! Everything here runs during the I/O phase (no user code). The socket is
//! `HostLookup` while names resolve and `Connecting` until TCP is up and, with
//! a proxy, the tunnel is open; only then is `connected` emitted.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::dispatch::SocketEvent;
use super::{SocketState, SslSocket};
use crate::buffer::ByteQueue;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::proxy::{Negotiation, Progress, Proxy, ProxyErrorKind, ProxyKind};
use crate::reactor::token_of;
use crate::resolver::parse_ip_literal;
use crate::tcp::Tcp;

/// How long an attempt runs alone before the next address is tried in
/// parallel (RFC 8305's "Connection Attempt Delay").
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Which name the pending lookup resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    /// The target, for a SOCKS5 proxy that wants its address.
    Target,
    /// Where TCP goes: the target, or the proxy when there is one.
    #[default]
    Endpoint,
}

/// A connection being established.
#[derive(Debug, Default)]
pub(super) struct Connect {
    lookup_needed: bool,
    /// The number of the lookup whose answer is awaited (stale answers are
    /// dropped).
    lookup: u64,
    stage: Stage,
    /// The target's address, resolved locally for a SOCKS5 proxy.
    target_address: Option<IpAddr>,
    /// Every address of the endpoint, in attempt order (kept to retry
    /// through a proxy with new credentials).
    endpoint: Vec<SocketAddr>,
    /// Addresses not tried yet.
    remaining: VecDeque<SocketAddr>,
    attempts: Vec<(SocketAddr, Tcp)>,
    next_attempt_at: Option<Instant>,
    last_failure: Option<(SocketAddr, io::Error)>,
    /// Boxed: most connections never use a proxy.
    tunnel: Option<Box<Tunnel>>,
}

/// A proxy negotiation on the connected TCP stream.
#[derive(Debug)]
struct Tunnel {
    negotiation: Negotiation,
    /// What the proxy sent, kept apart from the program's data: a proxy's
    /// error page must never read as if the target had sent it.
    input: ByteQueue,
    out: ByteQueue,
    /// The credentials the proxy refused, while its slots may supply others.
    refused: Option<Option<(String, String)>>,
}

impl Connect {
    /// A fresh connection that starts with a lookup.
    pub(super) fn new(proxy: Option<&Proxy>, host: &str) -> Self {
        let local_socks = proxy.is_some_and(|p| p.kind() == ProxyKind::Socks5);
        let literal = parse_ip_literal(host);
        Self {
            lookup_needed: true,
            stage: if local_socks && literal.is_none() {
                Stage::Target
            } else {
                Stage::Endpoint
            },
            target_address: literal,
            ..Self::default()
        }
    }
}

/// Orders addresses as RFC 8305 §4 asks: the first family the resolver
/// preferred, then alternating families.
fn interleave(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addresses.first().is_some_and(SocketAddr::is_ipv6);
    let (mut preferred, mut other): (VecDeque<_>, VecDeque<_>) =
        addresses.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    while let Some(a) = preferred.pop_front() {
        out.push(a);
        out.extend(other.pop_front());
    }
    out.extend(other);
    out
}

impl SslSocket {
    /// Advances the lookup, the connection attempts and the proxy tunnel.
    pub(super) fn advance_connect(&mut self, cx: &mut Context) -> Result<()> {
        let lookup_needed = self.connect.as_ref().is_some_and(|c| c.lookup_needed);
        if self.state == SocketState::HostLookup && lookup_needed {
            self.start_lookup(cx);
        }
        if self.state != SocketState::Connecting {
            return Ok(());
        }
        if self.tcp.is_some() {
            return self.advance_tunnel();
        }
        // A loopback connect completes (or is refused) at once, and a
        // stream registered without write interest gets no event to say so:
        // every new attempt is looked at straight away.
        loop {
            if let Some(tcp) = self.finish_attempts(cx) {
                return self.take_connection(tcp);
            }
            if !self.start_attempts(cx)? {
                return Ok(());
            }
        }
    }

    fn take_connection(&mut self, tcp: Tcp) -> Result<()> {
        self.attach(tcp);
        self.registered = true;
        self.on_tcp_connected()
    }

    fn start_lookup(&mut self, cx: &mut Context) {
        let c = self.connect.get_or_insert_with(Box::default);
        c.lookup_needed = false;
        c.lookup += 1;
        let (lookup, stage) = (c.lookup, c.stage);
        let (name, port) = match (&self.proxy, stage) {
            (Some(proxy), Stage::Endpoint) => (proxy.host().to_owned(), proxy.port()),
            _ => (self.host.clone(), self.port),
        };
        if let Some(ip) = parse_ip_literal(&name) {
            // Nothing to look up: no thread, no wake-up.
            return self.on_host_lookup(lookup, Ok(vec![SocketAddr::new(ip, port)]));
        }
        log::debug!("socket {:?}: looking up {name}", self.id);
        cx.resolver.lookup(self.id.0, lookup, &name, port);
    }

    /// The resolver's answer for lookup number `lookup`.
    pub(crate) fn on_host_lookup(&mut self, lookup: u64, addresses: io::Result<Vec<SocketAddr>>) {
        let current = self.connect.as_ref().is_some_and(|c| c.lookup == lookup);
        if self.state != SocketState::HostLookup || !current {
            return;
        }
        let list = match addresses {
            Ok(list) if !list.is_empty() => list,
            Ok(_) => return self.lookup_failed("no addresses".into()),
            Err(e) => return self.lookup_failed(e.to_string()),
        };
        let c = self.connect.get_or_insert_with(Box::default);
        if c.stage == Stage::Target {
            c.target_address = Some(list[0].ip());
            c.stage = Stage::Endpoint;
            c.lookup_needed = true;
            return;
        }
        log::debug!("socket {:?}: {} address(es) to try", self.id, list.len());
        c.endpoint = interleave(list);
        c.remaining = c.endpoint.iter().copied().collect();
        self.events.push_back(SocketEvent::HostFound);
        self.set_state(SocketState::Connecting);
    }

    fn lookup_failed(&mut self, reason: String) {
        let endpoint_stage = self
            .connect
            .as_ref()
            .is_none_or(|c| c.stage == Stage::Endpoint);
        let proxy_lookup = self.proxy.is_some() && endpoint_stage;
        let error = match &self.proxy {
            Some(proxy) if proxy_lookup => Error::Proxy {
                kind: ProxyErrorKind::ConnectionRefused,
                detail: format!("cannot resolve the proxy {proxy}: {reason}"),
            },
            _ => Error::HostNotFound {
                host: self.host.clone(),
                reason,
            },
        };
        self.fail(error);
    }

    /// Checks the attempts in flight; returns the first that connected and
    /// drops the others.
    fn finish_attempts(&mut self, cx: &mut Context) -> Option<Tcp> {
        let c = self.connect.as_deref_mut()?;
        let mut index = 0;
        while index < c.attempts.len() {
            let (address, tcp) = &mut c.attempts[index];
            let address = *address;
            match tcp.finish_connect() {
                Ok(true) => {
                    let (_, tcp) = c.attempts.swap_remove(index);
                    log::debug!("socket {:?}: connected to {address}", self.id);
                    for (_, mut loser) in c.attempts.drain(..) {
                        loser.deregister(cx.registry());
                    }
                    return Some(tcp);
                }
                Ok(false) => index += 1,
                Err(e) => {
                    log::debug!("socket {:?}: connecting to {address} failed: {e}", self.id);
                    let (_, mut tcp) = c.attempts.swap_remove(index);
                    tcp.deregister(cx.registry());
                    c.last_failure = Some((address, e));
                    // The next address need not wait for the attempt delay.
                    c.next_attempt_at = None;
                }
            }
        }
        None
    }

    /// Starts the next attempt when none runs or the attempt delay passed;
    /// fails when every address failed. Returns whether it started one.
    fn start_attempts(&mut self, cx: &mut Context) -> Result<bool> {
        let now = Instant::now();
        let c = self.connect.get_or_insert_with(Box::default);
        let due = c.attempts.is_empty() || c.next_attempt_at.is_none_or(|t| now >= t);
        let mut started = false;
        if due {
            while let Some(address) = c.remaining.pop_front() {
                log::debug!("socket {:?}: connecting to {address}", self.id);
                match Tcp::connect(address) {
                    Ok(mut tcp) => {
                        tcp.register(cx.registry(), token_of(self.id.0))
                            .map_err(Error::Network)?;
                        c.attempts.push((address, tcp));
                        c.next_attempt_at = Some(now + ATTEMPT_DELAY);
                        started = true;
                        break;
                    }
                    Err(e) => c.last_failure = Some((address, e)),
                }
            }
        }
        if c.attempts.is_empty() && c.remaining.is_empty() {
            return Err(self.connect_failure());
        }
        if let Some(next) = c.next_attempt_at.filter(|_| !c.remaining.is_empty()) {
            self.request_wake(cx, next);
        }
        Ok(started)
    }

    fn connect_failure(&mut self) -> Error {
        let failure = self.connect.as_mut().and_then(|c| c.last_failure.take());
        let (address, source) = failure.unwrap_or_else(|| {
            (
                SocketAddr::from(([0, 0, 0, 0], self.port)),
                io::ErrorKind::NotFound.into(),
            )
        });
        match &self.proxy {
            Some(proxy) => Error::Proxy {
                kind: ProxyErrorKind::ConnectionRefused,
                detail: format!("cannot connect to the proxy {proxy} ({address}): {source}"),
            },
            None => Error::ConnectionFailed {
                host: self.host.clone(),
                address,
                source,
            },
        }
    }

    /// TCP is up: open the proxy tunnel first if there is a proxy.
    fn on_tcp_connected(&mut self) -> Result<()> {
        if let Some(tcp) = &self.tcp {
            tcp.set_nodelay(self.nodelay);
        }
        match &self.proxy {
            Some(proxy) => {
                let mut out = ByteQueue::new();
                let c = self.connect.get_or_insert_with(Box::default);
                let negotiation =
                    Negotiation::start(proxy, &self.host, self.port, c.target_address, &mut out)?;
                c.tunnel = Some(Box::new(Tunnel {
                    negotiation,
                    input: ByteQueue::new(),
                    out,
                    refused: None,
                }));
                self.advance_tunnel()
            }
            None => {
                self.become_connected();
                Ok(())
            }
        }
    }

    fn become_connected(&mut self) {
        self.connect = None;
        self.set_state(SocketState::Connected);
        self.events.push_back(SocketEvent::Connected);
    }

    /// Runs the proxy negotiation as far as the proxy's bytes allow.
    fn advance_tunnel(&mut self) -> Result<()> {
        let tunnel = self.connect.as_mut().and_then(|c| c.tunnel.as_mut());
        let (Some(tcp), Some(tunnel)) = (self.tcp.as_mut(), tunnel) else {
            return Ok(());
        };
        if tunnel.refused.is_some() {
            return Ok(());
        }
        tcp.send(&mut tunnel.out).map_err(proxy_dropped)?;
        let received = tcp
            .receive(&mut tunnel.input, usize::MAX)
            .map_err(proxy_dropped)?;
        match tunnel
            .negotiation
            .receive(&mut tunnel.input, &mut tunnel.out)?
        {
            Progress::Done => {
                log::debug!(
                    "socket {:?}: tunnel to {}:{} open",
                    self.id,
                    self.host,
                    self.port
                );
                // Whatever followed the proxy's answer is the target's.
                let early = tunnel.input.take_all();
                self.become_connected();
                self.read_buffer.extend(&early);
                if !early.is_empty() && !self.encrypt_when_connected {
                    self.events.push_back(SocketEvent::ReadyRead);
                }
            }
            Progress::NeedMore if received.eof => {
                return Err(Error::Proxy {
                    kind: ProxyErrorKind::ConnectionClosed,
                    detail: "the proxy closed the connection during the negotiation".into(),
                });
            }
            Progress::NeedMore => {
                tcp.send(&mut tunnel.out).map_err(proxy_dropped)?;
            }
            Progress::AuthenticationRequired(detail) => {
                log::debug!("socket {:?}: {detail}", self.id);
                let used = self
                    .proxy
                    .as_ref()
                    .and_then(|p| p.credentials())
                    .map(|(u, p)| (u.to_owned(), p.to_owned()));
                tunnel.refused = Some(used);
                self.events
                    .push_back(SocketEvent::ProxyAuthenticationRequired(detail));
            }
        }
        Ok(())
    }

    /// After the `proxy_authentication_required` slots ran: connect again
    /// if they set new credentials, fail otherwise.
    pub(super) fn retry_proxy_authentication(&mut self, detail: String) {
        let tunnel = self.connect.as_mut().and_then(|c| c.tunnel.as_mut());
        let Some(refused) = tunnel.and_then(|t| t.refused.take()) else {
            return;
        };
        let offered = self
            .proxy
            .as_ref()
            .and_then(|p| p.credentials())
            .map(|(u, p)| (u.to_owned(), p.to_owned()));
        if offered.is_none() || offered == refused {
            return self.fail(Error::Proxy {
                kind: ProxyErrorKind::AuthenticationRequired,
                detail,
            });
        }
        log::debug!(
            "socket {:?}: retrying the proxy with new credentials",
            self.id
        );
        self.tcp = None;
        self.registered = false;
        let c = self.connect.get_or_insert_with(Box::default);
        c.tunnel = None;
        c.remaining = c.endpoint.iter().copied().collect();
        c.next_attempt_at = None;
    }
}

/// A network error while negotiating with the proxy.
fn proxy_dropped(e: io::Error) -> Error {
    Error::Proxy {
        kind: ProxyErrorKind::ConnectionClosed,
        detail: format!("the connection to the proxy failed during the negotiation: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_alternate_families_starting_with_the_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let list = vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("10.0.0.1:1"),
            a("10.0.0.2:1"),
        ];
        let order = interleave(list);
        assert_eq!(
            order,
            [
                a("[::1]:1"),
                a("10.0.0.1:1"),
                a("[::2]:1"),
                a("10.0.0.2:1"),
                a("[::3]:1")
            ]
        );
        let order = interleave(vec![a("10.0.0.1:1"), a("[::1]:1")]);
        assert_eq!(order[0], a("10.0.0.1:1"));
    }
}
