//! A flood of spoofed ClientHellos keeps no state in our DTLS server.
//!
//! A real ClientHello (our client's first datagram) is sent again and
//! again from thousands of source ports on 127.0.0.1 that never echo the
//! cookie, as a spoofer's would: the server answers each with a
//! HelloVerifyRequest and admits none. Two meters show it keeps nothing
//! per address: the server's own table, and the memory in use (the Rust
//! heap, and malloc's bytes in use, which count GnuTLS's sessions too),
//! flat from a thousand hellos to four thousand (under valgrind, which
//! hides malloc's statistics, the Rust heap alone). The control: clients
//! that do echo their cookie are admitted, and each costs memory the
//! meters see.
//!
//! One test in this file: the meters are process-wide.

mod common;
mod memory;
mod udp;

use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{client_config, run_until, server_config, TIMEOUT};
use sslsocket::Reactor;

/// Spoofed hellos per batch (source sockets open at once).
const BATCH: usize = 100;

/// Our client's first datagram: a ClientHello without a cookie.
fn captured_client_hello(reactor: &mut Reactor) -> Vec<u8> {
    let catcher = UdpSocket::bind("127.0.0.1:0").unwrap();
    catcher.set_nonblocking(true).unwrap();
    let address = catcher.local_addr().unwrap();
    let (id, _) = udp::client(reactor, client_config(), address, "localhost", |_| {});
    let mut buf = [0u8; 4096];
    let mut hello = None;
    run_until(reactor, TIMEOUT, "our client's ClientHello", |_| {
        if let Ok(n) = catcher.recv(&mut buf) {
            hello = Some(buf[..n].to_vec());
        }
        hello.is_some()
    });
    reactor.remove_dtls_socket(id);
    hello.unwrap()
}

/// Whether `answer` is a HelloVerifyRequest: a handshake record holding
/// message type 3, ending in a 16-byte cookie.
fn is_hello_verify_request(answer: &[u8]) -> bool {
    answer.len() > 30 && answer[0] == 22 && answer[13] == 3 && answer[answer.len() - 17] == 16
}

/// Sends `hello` from `count` fresh source ports in batches and waits for
/// each port's answer; returns how many answers were HelloVerifyRequests
/// shorter than the hello (kept nowhere: the test's own memory stays flat
/// too).
fn spoof(reactor: &mut Reactor, server: SocketAddr, hello: &[u8], count: usize) -> usize {
    let mut answers = 0;
    for _ in 0..count.div_ceil(BATCH) {
        let sources: Vec<UdpSocket> = (0..BATCH)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_nonblocking(true).unwrap();
                s.send_to(hello, server).unwrap();
                s
            })
            .collect();
        let mut pending: Vec<&UdpSocket> = sources.iter().collect();
        let deadline = Instant::now() + TIMEOUT;
        while !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} hellos unanswered",
                pending.len()
            );
            reactor.step(Some(Duration::from_millis(5))).unwrap();
            pending.retain(|s| {
                let mut buf = [0u8; 512];
                match s.recv(&mut buf) {
                    Ok(n) => {
                        // Shorter than the hello: nothing to amplify.
                        let answer = &buf[..n];
                        answers += usize::from(is_hello_verify_request(answer) && n < hello.len());
                        false
                    }
                    Err(_) => true,
                }
            });
        }
    }
    answers
}

/// `hello` with `cookie` in its cookie field, lengths fixed up.
fn with_cookie(hello: &[u8], cookie: &[u8]) -> Vec<u8> {
    const RECORD: usize = 13;
    const HANDSHAKE: usize = 12;
    let session_id = RECORD + HANDSHAKE + 2 + 32;
    let cookie_at = session_id + 1 + usize::from(hello[session_id]);
    assert_eq!(hello[cookie_at], 0, "the captured hello has no cookie");
    let mut out = hello[..cookie_at].to_vec();
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    out.extend_from_slice(&hello[cookie_at + 1..]);
    let grow = |bytes: &mut [u8]| {
        let n = bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b)) + cookie.len();
        for (i, b) in bytes.iter_mut().rev().enumerate() {
            *b = (n >> (8 * i)) as u8;
        }
    };
    grow(&mut out[11..13]);
    grow(&mut out[RECORD + 1..RECORD + 4]);
    grow(&mut out[RECORD + 9..RECORD + 12]);
    out
}

/// The Rust heap's live bytes and malloc's bytes in use.
fn meters() -> (i64, i64) {
    (memory::live_heap() as i64, memory::malloc_in_use() as i64)
}

#[test]
fn a_flood_of_spoofed_client_hellos_keeps_no_state_in_the_server() {
    let mut reactor = Reactor::new().unwrap();
    let hello = captured_client_hello(&mut reactor);
    let server = reactor
        .dtls_listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let admitted = Rc::new(Cell::new(0));
    let a = admitted.clone();
    let dtls = reactor.dtls_server(server).unwrap();
    let address = dtls.local_address();
    dtls.new_connection()
        .connect(move |_, _, _| a.set(a.get() + 1));
    let objects = reactor.object_count();

    let warm_up = spoof(&mut reactor, address, &hello, 1000);
    let before = meters();
    let flood = spoof(&mut reactor, address, &hello, 3000);
    let after = meters();

    // Every hello got a HelloVerifyRequest, shorter than itself, and
    // nothing more.
    assert_eq!((warm_up, flood), (1000, 3000));
    let server_state = reactor.dtls_server(server).unwrap();
    assert_eq!(admitted.get(), 0);
    assert_eq!(
        (
            server_state.connection_count(),
            server_state.half_open_count()
        ),
        (0, 0)
    );
    assert_eq!(reactor.object_count(), objects);
    // Under valgrind, which replaces malloc, glibc's statistics read 0:
    // then only the Rust heap meter counts (GnuTLS's sessions go unseen).
    let malloc_meter_works = before.1 > 0;
    let grown = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "3000 spoofed hellos: Rust heap {:+} bytes, malloc in use {:+} bytes",
        grown.0, grown.1
    );
    assert!(
        grown.0 < 16 * 1024 && grown.1 < 64 * 1024,
        "3000 more spoofed hellos grew the Rust heap by {} bytes and malloc's use by {}",
        grown.0,
        grown.1
    );

    // The control: peers that echo their cookie are admitted, and the
    // meters see what each costs.
    let peers: Vec<UdpSocket> = (0..20)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for peer in &peers {
        peer.set_read_timeout(Some(TIMEOUT)).unwrap();
        peer.send_to(&hello, address).unwrap();
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + TIMEOUT;
        let n = loop {
            reactor.step(Some(Duration::from_millis(5))).unwrap();
            peer.set_nonblocking(true).unwrap();
            if let Ok(n) = peer.recv(&mut buf) {
                break n;
            }
            assert!(Instant::now() < deadline, "no HelloVerifyRequest");
        };
        peer.send_to(&with_cookie(&hello, &buf[n - 16..n]), address)
            .unwrap();
    }
    run_until(&mut reactor, TIMEOUT, "the peers' admission", |_| {
        admitted.get() == 20
    });
    let control = meters();
    let server_state = reactor.dtls_server(server).unwrap();
    assert_eq!(server_state.connection_count(), 20);
    assert_eq!(server_state.half_open_count(), 20);
    let per_peer = ((control.0 - after.0) / 20, (control.1 - after.1) / 20);
    eprintln!(
        "an admitted peer: Rust heap {} bytes, malloc in use {} bytes",
        per_peer.0, per_peer.1
    );
    assert!(
        per_peer.0 > 1024 && (per_peer.1 > 8 * 1024 || !malloc_meter_works),
        "an admitted peer costs {per_peer:?} bytes: the meters would not see per-peer state"
    );
}
