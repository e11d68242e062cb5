//! [`Port`]: a DTLS server's UDP socket and its table of admitted peers,
//! shared (`Rc`) by the server, which receives on it, and the sockets of
//! its peers, which send on it.
//!
//! The table maps a peer's address to its socket, which is how the server
//! demultiplexes; it holds only peers that proved their address (see
//! `verifier.rs`). Sockets add and remove themselves; nothing here runs
//! user code, and no borrow of the table outlives a call.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::link::receive_datagram;
use crate::context::ObjectKey;

/// An admitted peer: its socket, and whether its handshake completed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub(super) socket: ObjectKey,
    pub(super) established: bool,
}

/// A server's UDP socket and its peers.
#[derive(Debug)]
pub(super) struct Port {
    /// In a cell only so the server can deregister it while its peers
    /// share the port; every other use reads it.
    udp: RefCell<UdpSocket>,
    peers: RefCell<HashMap<SocketAddr, Peer>>,
    /// How many peers are still handshaking.
    half_open: Cell<usize>,
    /// Sockets whose datagram the port could not take, to wake once it can.
    blocked: RefCell<Vec<ObjectKey>>,
    /// False once the server is gone: its sockets close.
    open: Cell<bool>,
}

impl Port {
    pub(super) fn bind(address: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            udp: RefCell::new(UdpSocket::bind(address)?),
            peers: RefCell::default(),
            half_open: Cell::new(0),
            blocked: RefCell::default(),
            open: Cell::new(true),
        })
    }

    pub(super) fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        registry.register(&mut *self.udp.borrow_mut(), token, interest)
    }

    /// The server is gone: deregisters the socket; its peers close (they
    /// may still send their goodbye on it).
    pub(super) fn close(&self, registry: &Registry) {
        self.open.set(false);
        let _ = registry.deregister(&mut *self.udp.borrow_mut());
    }

    pub(super) fn is_open(&self) -> bool {
        self.open.get()
    }

    pub(super) fn local_address(&self) -> io::Result<SocketAddr> {
        self.udp.borrow().local_addr()
    }

    /// Receives one datagram and its source, or `None` when nothing more is
    /// queued.
    pub(super) fn receive(&self) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
        receive_datagram(|buf| self.udp.borrow().recv_from(buf))
    }

    /// Sends one datagram to `peer`: whether the kernel took it. When it
    /// did not, `waiter` is serviced again once the port is writable.
    pub(super) fn send_to(
        &self,
        datagram: &[u8],
        peer: SocketAddr,
        waiter: ObjectKey,
    ) -> io::Result<bool> {
        match self.udp.borrow().send_to(datagram, peer) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked.borrow_mut().push(waiter);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A reply that needs no retry (a HelloVerifyRequest: the client
    /// sends its hello again if it is lost).
    pub(super) fn send_once(&self, datagram: &[u8], peer: SocketAddr) {
        if let Err(e) = self.udp.borrow().send_to(datagram, peer) {
            log::debug!("DTLS reply to {peer} not sent: {e}");
        }
    }

    /// The sockets that wait for the port to be writable.
    pub(super) fn take_blocked(&self) -> Vec<ObjectKey> {
        std::mem::take(&mut *self.blocked.borrow_mut())
    }

    /// The admitted peer at `address`, if any.
    pub(super) fn peer(&self, address: SocketAddr) -> Option<Peer> {
        self.peers.borrow().get(&address).copied()
    }

    /// Every admitted peer's socket.
    pub(super) fn sockets(&self) -> Vec<ObjectKey> {
        self.peers.borrow().values().map(|p| p.socket).collect()
    }

    /// How many peers are admitted, and how many of them still handshake.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.peers.borrow().len(), self.half_open.get())
    }

    /// Admits the peer at `address`, handled by `socket`, handshaking.
    pub(super) fn admit(&self, address: SocketAddr, socket: ObjectKey) {
        let peer = Peer {
            socket,
            established: false,
        };
        if let Some(old) = self.peers.borrow_mut().insert(address, peer) {
            self.forget(old);
        }
        self.half_open.set(self.half_open.get() + 1);
    }

    /// The handshake of `socket`, the peer at `address`, completed.
    pub(super) fn established(&self, address: SocketAddr, socket: ObjectKey) {
        let mut peers = self.peers.borrow_mut();
        if let Some(peer) = peers.get_mut(&address).filter(|p| p.socket == socket) {
            if !peer.established {
                peer.established = true;
                self.half_open.set(self.half_open.get() - 1);
            }
        }
    }

    /// `socket`, the peer at `address`, is gone (a newer socket for the same
    /// address stays).
    pub(super) fn leave(&self, address: SocketAddr, socket: ObjectKey) {
        let mut peers = self.peers.borrow_mut();
        if peers.get(&address).is_some_and(|p| p.socket == socket) {
            if let Some(old) = peers.remove(&address) {
                self.forget(old);
            }
        }
    }

    fn forget(&self, peer: Peer) {
        if !peer.established {
            self.half_open.set(self.half_open.get() - 1);
        }
    }
}
