//! [`Resolver`]: host name lookups off the reactor thread.
//!
//! `getaddrinfo` blocks, and the reactor must never block. Each lookup runs
//! on a short-lived helper thread that sends its answer back over a
//! crossbeam channel and wakes the reactor through its `mio::Waker`; the
//! reactor hands the answer to the socket that asked. IP literals need no
//! lookup and are answered at once, on the reactor thread.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use crate::context::ObjectKey;

/// A finished lookup, for the socket `socket`'s lookup number `lookup`.
pub(crate) struct Resolved {
    pub(crate) socket: ObjectKey,
    pub(crate) lookup: u64,
    pub(crate) addresses: io::Result<Vec<SocketAddr>>,
}

/// Runs lookups on helper threads and collects their answers.
pub(crate) struct Resolver {
    sender: Sender<Resolved>,
    receiver: Receiver<Resolved>,
    waker: Arc<Waker>,
    in_flight: usize,
}

impl Resolver {
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Self {
            sender,
            receiver,
            waker,
            in_flight: 0,
        }
    }

    /// Starts resolving `host:port` for `socket`; the answer arrives through
    /// [`take_answers`](Self::take_answers).
    pub(crate) fn lookup(&mut self, socket: ObjectKey, lookup: u64, host: &str, port: u16) {
        self.in_flight += 1;
        if let Some(ip) = parse_ip_literal(host) {
            let _ = self.sender.send(Resolved {
                socket,
                lookup,
                addresses: Ok(vec![SocketAddr::new(ip, port)]),
            });
            let _ = self.waker.wake();
            return;
        }
        let sender = self.sender.clone();
        let waker = Arc::clone(&self.waker);
        let name = host.to_owned();
        let spawned = thread::Builder::new()
            .name("sslsocket-dns".into())
            .spawn(move || {
                let addresses = (name.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect);
                log::debug!("resolved {name}: {addresses:?}");
                let _ = sender.send(Resolved {
                    socket,
                    lookup,
                    addresses,
                });
                let _ = waker.wake();
            });
        if let Err(e) = spawned {
            let _ = self.sender.send(Resolved {
                socket,
                lookup,
                addresses: Err(e),
            });
        }
    }

    /// Whether answers may still arrive.
    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight > 0
    }

    /// The answers that have arrived.
    pub(crate) fn take_answers(&mut self) -> Vec<Resolved> {
        let answers: Vec<Resolved> = self.receiver.try_iter().collect();
        self.in_flight -= answers.len();
        answers
    }
}

/// An IP address literal, also in URL brackets (`[::1]`).
pub(crate) fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}
