//! A running bulk stream costs no allocation per event: once a transfer is
//! under way, reading into the program's own buffer (`read`) or where the
//! data lies (`BufRead::fill_buf` and `consume`), while the other end
//! writes in chunks, asks the Rust heap for nothing, however many events
//! the stream takes. `read_all`, which returns a vector, allocates one per
//! event: the same run with it shows that the meter sees allocations.
//!
//! Both ends run in one reactor over loopback; the meter is the counting
//! allocator of `memory/` (calls, every thread). GnuTLS's own allocations
//! (a record buffer per record, from C's `malloc`) are not counted: they
//! are GnuTLS's to make, and glibc serves them from its free lists.

mod common;
mod memory;

use std::cell::RefCell;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use common::{client_config, pattern, run_until, server_config, TIMEOUT};
use memory::allocation_calls;
use sslsocket::{Reactor, SslSocket};

/// What the sender writes at a time, over and over.
const BLOCK: usize = 16 * 1024;
/// The sender keeps at most this much queued.
const QUEUED: u64 = 256 * 1024;
/// Received before the meter starts: the buffers have grown to their size.
const WARM_UP: u64 = 4 << 20;
/// Received while the meter runs.
const MEASURED: u64 = 32 << 20;
/// Allocations allowed while the meter runs: a queue that grows to a new
/// high-water mark now and then, none per event.
const ALLOWED: u64 = 8;

/// How the reading slot takes the data.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// `read` into a buffer the slot owns.
    IntoBuffer,
    /// `fill_buf` and `consume`, where the data lies.
    InPlace,
    /// `read_all`: a vector per event.
    ReadAll,
}

/// What the reader saw.
#[derive(Default)]
struct Seen {
    received: u64,
    mismatch: Option<u64>,
    /// Events while the meter ran.
    events: u64,
    /// Allocation calls when the meter started and stopped.
    start: Option<u64>,
    end: Option<u64>,
}

impl Seen {
    /// Checks `data` against the repeated block and counts it; starts and
    /// stops the meter as the stream passes its marks.
    fn take(&mut self, data: &[u8], block: &[u8]) {
        let mut offset = self.received;
        for piece in data.chunks(BLOCK) {
            let at = (offset % BLOCK as u64) as usize;
            let n = piece.len().min(BLOCK - at);
            let expected = block[at..at + n].iter().chain(&block[..piece.len() - n]);
            if self.mismatch.is_none() && !piece.iter().eq(expected) {
                self.mismatch = Some(offset);
            }
            offset += piece.len() as u64;
        }
        self.received = offset;
    }

    /// After each event: counts it if the meter ran all through it.
    fn note_event(&mut self) {
        if self.start.is_some() && self.end.is_none() {
            self.events += 1;
        }
        if self.received >= WARM_UP && self.start.is_none() {
            self.start = Some(allocation_calls());
        }
        if self.received >= WARM_UP + MEASURED && self.end.is_none() {
            self.end = Some(allocation_calls());
        }
    }
}

/// Queues blocks while less than [`QUEUED`] waits; closes once all is out.
fn top_up(s: &mut SslSocket, block: &[u8]) {
    let total = WARM_UP + MEASURED;
    let Some(&mut mut sent) = s.user_data::<u64>() else {
        return;
    };
    while sent < total && s.bytes_to_write() < QUEUED {
        let n = (total - sent).min(BLOCK as u64) as usize;
        s.write(&block[..n]).expect("write");
        sent += n as u64;
    }
    *s.user_data::<u64>().expect("sent") = sent;
    if sent == total {
        s.disconnect_from_host();
    }
}

/// Streams the data from our server to our client, read as `reading` says;
/// returns what the reader saw.
fn stream(reading: Reading) -> Seen {
    let block: Rc<[u8]> = pattern(BLOCK).into();
    let mut reactor = Reactor::new().unwrap();
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = reactor.listen(any, server_config()).unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    let b = block.clone();
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        socket.set_user_data(0u64);
        let b1 = b.clone();
        socket
            .handshake_complete()
            .connect(move |s, _, _| top_up(s, &b1));
        let b2 = b.clone();
        socket
            .bytes_written()
            .connect(move |s, _, _| top_up(s, &b2));
    });

    let seen = Rc::new(RefCell::new(Seen::default()));
    let id = reactor.ssl_socket(client_config());
    let socket = reactor.socket(id).unwrap();
    socket.set_peer_verify_name("localhost");
    let (s2, b3) = (seen.clone(), block.clone());
    let mut buffer = vec![0; 64 * 1024];
    socket.ready_read().connect(move |s, _, _| {
        let mut seen = s2.borrow_mut();
        match reading {
            Reading::IntoBuffer => {
                while let Ok(n @ 1..) = s.read(&mut buffer) {
                    seen.take(&buffer[..n], &b3);
                }
            }
            Reading::InPlace => {
                while let Ok(data @ [_, ..]) = s.fill_buf() {
                    let n = data.len();
                    seen.take(data, &b3);
                    s.consume(n);
                }
            }
            Reading::ReadAll => seen.take(&s.read_all(), &b3),
        }
        seen.note_event();
    });
    socket.connect_to_host_encrypted("127.0.0.1", port).unwrap();
    run_until(&mut reactor, TIMEOUT * 2, "the stream to arrive", |_| {
        seen.borrow().end.is_some()
    });
    seen.take()
}

#[test]
fn reading_a_running_stream_allocates_nothing_per_event() {
    for reading in [Reading::IntoBuffer, Reading::InPlace, Reading::ReadAll] {
        let seen = stream(reading);
        assert_eq!(seen.mismatch, None, "{reading:?}: the data differs");
        let calls = seen.end.unwrap() - seen.start.unwrap();
        eprintln!(
            "{reading:?}: {calls} allocation calls over {} MiB in {} events",
            MEASURED >> 20,
            seen.events
        );
        assert!(seen.events >= 16, "{reading:?}: too few events to judge");
        match reading {
            Reading::ReadAll => assert!(
                calls >= seen.events,
                "read_all: the meter saw {calls} allocations for {} events",
                seen.events
            ),
            _ => assert!(
                calls <= ALLOWED,
                "{reading:?}: {calls} allocation calls over {} events",
                seen.events
            ),
        }
    }
}
