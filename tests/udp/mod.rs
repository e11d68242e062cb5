//! Helpers shared by the DTLS tests: a record of what a DTLS socket
//! signalled, our echo server, and a loopback UDP relay the test controls
//! (it drops, duplicates and reorders datagrams as told).
//!
//! Every DTLS test file does `mod common; mod udp;`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sslsocket::{
    DtlsServerId, DtlsSocket, DtlsSocketId, Error, Reactor, SslConfiguration, SslErrorKind,
};

/// What a DTLS socket signalled.
#[derive(Debug, Default)]
pub struct Seen {
    pub handshake_complete: bool,
    pub datagrams: Vec<Vec<u8>>,
    /// The kinds of each `ssl_errors` emission.
    pub ssl_errors: Vec<Vec<SslErrorKind>>,
    pub errors: Vec<Error>,
    pub disconnected: bool,
}

impl Seen {
    /// The association ended without a handshake or a datagram.
    pub fn established_nothing(&self) -> bool {
        !self.handshake_complete && self.datagrams.is_empty() && self.disconnected
    }
}

pub type Shared = Rc<RefCell<Seen>>;

/// Records `socket`'s signals.
pub fn watch(socket: &mut DtlsSocket) -> Shared {
    let seen = Shared::default();
    let s = seen.clone();
    socket
        .handshake_complete()
        .connect(move |_, _, _| s.borrow_mut().handshake_complete = true);
    let s = seen.clone();
    socket
        .datagram_received()
        .connect(move |_, _, d| s.borrow_mut().datagrams.push(d.clone()));
    let s = seen.clone();
    socket.ssl_errors().connect(move |_, _, errors| {
        let kinds = errors.iter().map(|e| e.kind()).collect();
        s.borrow_mut().ssl_errors.push(kinds);
    });
    let s = seen.clone();
    socket
        .error_occurred()
        .connect(move |_, _, e| s.borrow_mut().errors.push(e.clone()));
    let s = seen.clone();
    socket
        .disconnected()
        .connect(move |_, _, _| s.borrow_mut().disconnected = true);
    seen
}

/// The sockets our server admitted, each with its record, in order.
pub type Admitted = Rc<RefCell<Vec<(DtlsSocketId, Shared)>>>;

/// Our DTLS server on 127.0.0.1, echoing every datagram; `setup` runs on
/// each admitted socket first.
pub fn echo_server(
    reactor: &mut Reactor,
    config: SslConfiguration,
    setup: impl Fn(&mut DtlsSocket) + 'static,
) -> (DtlsServerId, SocketAddr, Admitted) {
    let id = reactor
        .dtls_listen("127.0.0.1:0".parse().unwrap(), config)
        .expect("DTLS server");
    let server = reactor.dtls_server(id).unwrap();
    let address = server.local_address();
    let admitted = Admitted::default();
    let a = admitted.clone();
    server.new_connection().connect(move |_, cx, &socket_id| {
        let socket = cx.dtls(socket_id).expect("the admitted socket");
        setup(socket);
        let seen = watch(socket);
        socket.datagram_received().connect(|s, _, d| {
            s.write_datagram(d).expect("echo");
        });
        a.borrow_mut().push((socket_id, seen));
    });
    (id, address, admitted)
}

/// Our DTLS client, connecting to `peer` and expecting `name`; `setup`
/// runs before it connects.
pub fn client(
    reactor: &mut Reactor,
    config: SslConfiguration,
    peer: SocketAddr,
    name: &str,
    setup: impl FnOnce(&mut DtlsSocket),
) -> (DtlsSocketId, Shared) {
    let id = reactor.dtls_socket(config);
    let socket = reactor.dtls(id).unwrap();
    setup(socket);
    let seen = watch(socket);
    socket.connect_to_peer(peer, name).expect("connect_to_peer");
    (id, seen)
}

// ---------------------------------------------------------------------------
// A UDP relay with faults
// ---------------------------------------------------------------------------

/// Which way a datagram travels through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    ToServer,
    ToClient,
}

/// What the relay does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Pass,
    Drop,
    /// Sent twice.
    Duplicate,
    /// Sent after an empty datagram, from the same address (anyone who
    /// knows the two ports can send one).
    AfterAnEmptyOne,
    /// Held back and sent after the next datagram the same way (or after
    /// 30 ms, if none comes).
    Delay,
}

/// Decides each datagram's fate from its way and its number on that way
/// (1 for the first).
pub type Policy = Box<dyn FnMut(Way, usize) -> Fate + Send>;

/// A loopback UDP relay between one client and a server, in a thread:
/// clients send to [`address`](Self::address). Dropping it stops it.
pub struct UdpRelay {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Datagrams seen each way (before their fate): to the server, to the
    /// client.
    pub seen: Arc<Mutex<[usize; 2]>>,
}

impl UdpRelay {
    pub fn start(server: SocketAddr, mut policy: Policy) -> UdpRelay {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
        back.connect(server).expect("connect the relay");
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        }
        let address = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new([0usize; 2]));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut held: [Option<(Vec<u8>, Instant)>; 2] = [None, None];
            let mut buf = vec![0u8; 65_536];
            while !stop2.load(Ordering::Relaxed) {
                for (way, from) in [(Way::ToServer, &front), (Way::ToClient, &back)] {
                    let slot = way as usize;
                    let received = match from.recv_from(&mut buf) {
                        Ok((n, source)) => Some((buf[..n].to_vec(), source)),
                        Err(e) if is_timeout(&e) => None,
                        Err(_) => None,
                    };
                    if let (Way::ToServer, Some((_, source))) = (way, &received) {
                        client = Some(*source);
                    }
                    let send = |datagram: &[u8]| match (way, client) {
                        (Way::ToServer, _) => drop(back.send(datagram)),
                        (Way::ToClient, Some(c)) => drop(front.send_to(datagram, c)),
                        (Way::ToClient, None) => {}
                    };
                    let Some((datagram, _)) = received else {
                        // Nothing came this way: release a late held one.
                        if let Some((d, since)) = held[slot].take() {
                            if since.elapsed() < Duration::from_millis(30) {
                                held[slot] = Some((d, since));
                            } else {
                                send(&d);
                            }
                        }
                        continue;
                    };
                    let n = {
                        let mut seen = seen2.lock().unwrap();
                        seen[slot] += 1;
                        seen[slot]
                    };
                    match policy(way, n) {
                        Fate::Pass => send(&datagram),
                        Fate::Drop => {}
                        Fate::Duplicate => {
                            send(&datagram);
                            send(&datagram);
                        }
                        Fate::AfterAnEmptyOne => {
                            send(&[]);
                            send(&datagram);
                        }
                        Fate::Delay => {
                            if let Some((older, _)) = held[slot].take() {
                                send(&older);
                            }
                            held[slot] = Some((datagram, Instant::now()));
                            continue;
                        }
                    }
                    // A datagram went past a held one: the held one follows.
                    if let Some((d, _)) = held[slot].take() {
                        send(&d);
                    }
                }
            }
        });
        UdpRelay {
            address,
            stop,
            thread: Some(thread),
            seen,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Datagrams seen going `way` so far.
    pub fn count(&self, way: Way) -> usize {
        self.seen.lock().unwrap()[way as usize]
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
