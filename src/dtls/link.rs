//! [`Link`]: how a DTLS socket reaches its peer: a client's own UDP socket,
//! connected to the peer (so it receives from no one else), or the port of
//! the server that admitted the peer, which receives for it.
//!
//! Sending is the same call either way; receiving is the client's alone
//! (a server routes its peers' datagrams, see `server.rs`). This file
//! knows nothing of TLS.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::port::Port;
use crate::context::ObjectKey;

/// The way to the peer.
#[derive(Debug)]
pub(super) enum Link {
    /// A client's socket, connected to the peer.
    Own { udp: UdpSocket, registered: bool },
    /// The port of the server that admitted the peer.
    Shared { port: Rc<Port>, peer: SocketAddr },
}

impl Link {
    /// A UDP socket connected to `peer`, bound to `local`, or else to the
    /// loopback address when the peer is on it (nothing else can reach
    /// the socket then) and to the unspecified address otherwise, on a port
    /// the system picks.
    pub(super) fn connect(peer: SocketAddr, local: Option<SocketAddr>) -> io::Result<Self> {
        let local = local.unwrap_or_else(|| SocketAddr::new(any_for(peer.ip()), 0));
        let udp = UdpSocket::bind(local)?;
        udp.connect(peer)?;
        Ok(Self::Own {
            udp,
            registered: false,
        })
    }

    /// Registers a client's socket for readiness (once; a server's peers
    /// are woken by their server).
    pub(super) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self {
            Self::Own { udp, registered } if !*registered => {
                registry.register(udp, token, Interest::READABLE | Interest::WRITABLE)?;
                *registered = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Sends one datagram: whether it went out. When it did not, the
    /// socket `waiter` is serviced again once it can (a writable edge of
    /// its own socket, or its server's).
    pub(super) fn send(&self, datagram: &[u8], waiter: ObjectKey) -> io::Result<bool> {
        match self {
            Self::Own { udp, .. } => match udp.send(datagram) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
            Self::Shared { port, peer } => port.send_to(datagram, *peer, waiter),
        }
    }

    /// Receives one datagram (a client's own socket), or `None` when
    /// nothing more is queued (always for a server's peer, whose datagrams
    /// its server routes).
    pub(super) fn receive(&self) -> io::Result<Option<Vec<u8>>> {
        let Self::Own { udp, .. } = self else {
            return Ok(None);
        };
        let received = receive_datagram(|buf| udp.recv(buf).map(|n| (n, ())))?;
        Ok(received.map(|(datagram, ())| datagram))
    }

    /// The peer's address.
    pub(super) fn peer_address(&self) -> Option<SocketAddr> {
        match self {
            Self::Own { udp, .. } => udp.peer_addr().ok(),
            Self::Shared { peer, .. } => Some(*peer),
        }
    }

    /// The local address datagrams leave from.
    pub(super) fn local_address(&self) -> Option<SocketAddr> {
        match self {
            Self::Own { udp, .. } => udp.local_addr().ok(),
            Self::Shared { port, .. } => port.local_address().ok(),
        }
    }

    /// The server's port, for a server's peer.
    pub(super) fn port(&self) -> Option<(&Rc<Port>, SocketAddr)> {
        match self {
            Self::Own { .. } => None,
            Self::Shared { port, peer } => Some((port, *peer)),
        }
    }

    /// Stops readiness events (a client's socket; dropping it closes it).
    pub(super) fn deregister(&mut self, registry: &Registry) {
        if let Self::Own {
            udp,
            registered: registered @ true,
        } = self
        {
            let _ = registry.deregister(udp);
            *registered = false;
        }
    }
}

/// The largest UDP datagram.
const MAX_DATAGRAM: usize = 65_536;

thread_local! {
    /// Where datagrams land before they are copied out at their size: one
    /// buffer per reactor thread (only ciphertext passes through it).
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; MAX_DATAGRAM].into_boxed_slice());
}

/// Receives one datagram with `recv` (which returns its length and
/// whatever else the call tells) and copies it out at its size; `None` when
/// the socket has nothing queued.
pub(super) fn receive_datagram<T>(
    recv: impl FnOnce(&mut [u8]) -> io::Result<(usize, T)>,
) -> io::Result<Option<(Vec<u8>, T)>> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        match recv(&mut buf) {
            Ok((n, also)) => Ok(Some((buf[..n].to_vec(), also))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    })
}

/// The address a client bound for `peer` takes: loopback for a loopback
/// peer, else the unspecified address of the peer's family.
fn any_for(peer: IpAddr) -> IpAddr {
    match (peer, peer.is_loopback()) {
        (IpAddr::V4(_), true) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (IpAddr::V6(_), true) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        (IpAddr::V4(_), false) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (IpAddr::V6(_), false) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}
