//! Randomized tests through the public API only (no `fuzzing` feature).
//!
//! * A real [`SslServer`] and [`SslSocket`] client in one [`Reactor`] talk
//!   through a loopback relay thread that re-chunks the TCP stream both ways
//!   into random segments (1 byte to 32 KiB) with small random delays, for
//!   several seeds, over TLS 1.2 and TLS 1.3: the bytes each side delivers
//!   must be exactly what the other wrote, and both ends must close cleanly.
//! * Random garbage (pure noise, record-shaped noise, a real ClientHello
//!   followed by noise or with bytes flipped) sent to a real server through a
//!   raw TCP socket must end every connection with a handshake error that
//!   the server reports, and the server must close the connection; nothing
//!   may panic or time out. Two tests pin down the end of the stream inside
//!   a record (a bug the garbage test found: the handshake used to stall).
//!
//! Randomness comes from a seeded xorshift generator: a failure names its
//! seed and replays exactly (apart from the kernel's own segmentation).

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sslsocket::{Error, Reactor, SslConfiguration, SslProtocol, SslSocket};

/// The longest any one scenario may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes each side sends in one chunking run (3 seeds × 2 protocols × 2
/// directions: 6 MiB in all).
const TRANSFER: u64 = 512 << 10;

const SEEDS: [u64; 3] = [0x5eed_0001, 0x5eed_0002, 0xdead_beef_cafe_f00d];

// ---------------------------------------------------------------------------
// Randomness and data
// ---------------------------------------------------------------------------

/// xorshift64* (Vigna): small, fast, and good enough for test data.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // A zero state would stay zero; mix the seed first.
        Self(splitmix64(seed) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A segment length: mostly small or medium, sometimes one byte,
    /// sometimes large.
    fn segment(&mut self) -> usize {
        let high = match self.below(8) {
            0 | 1 => 8,
            2 | 3 => 300,
            4..=6 => 4096,
            _ => 32 << 10,
        };
        self.range(1, high) as usize
    }

    /// Sometimes a pause of up to 1.5 ms.
    fn maybe_pause(&mut self) {
        if self.below(32) == 0 {
            thread::sleep(Duration::from_micros(self.below(1500)));
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Byte `position` of the data stream named `stream` (no copy is kept).
fn pattern(stream: u64, position: u64) -> u8 {
    (splitmix64(stream ^ (position / 8).wrapping_mul(0x1000_0000_01b3)) >> (8 * (position % 8)))
        as u8
}

fn fill(stream: u64, start: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(stream, start + i as u64);
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

fn ca(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("ca")
        .join(name)
}

fn client_config(protocol: SslProtocol) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(protocol, protocol)
        .build()
        .expect("client configuration")
}

fn server_config(protocol: SslProtocol) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .protocols(protocol, protocol)
        .build()
        .expect("server configuration")
}

/// Steps the reactor until `done`, failing after [`TIMEOUT`].
fn run_until(reactor: &mut Reactor, what: &str, mut done: impl FnMut(&mut Reactor) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(reactor) {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        reactor
            .step(Some(Duration::from_millis(10)))
            .expect("reactor step");
    }
}

// ---------------------------------------------------------------------------
// The re-chunking relay
// ---------------------------------------------------------------------------

/// Accepts one connection on 127.0.0.1 and forwards it to `target` in both
/// directions, re-chunked at random.
struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<[usize; 2]>>,
}

impl Relay {
    fn start(target: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + TIMEOUT;
            let client = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if stop2.load(Ordering::Relaxed) || Instant::now() > deadline {
                            return [0, 0];
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("relay accept: {e}"),
                }
            };
            client.set_nonblocking(false).unwrap();
            let server = TcpStream::connect(target).expect("relay connects to the server");
            for s in [&client, &server] {
                s.set_nodelay(true).unwrap();
            }
            let up = pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                Rng::new(seed ^ 0x0075_7075),
            );
            let down = pump(server, client, Rng::new(seed ^ 0x646f_776e));
            [up.join().unwrap(), down.join().unwrap()]
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for both directions to end; returns how many segments each
    /// direction was cut into.
    fn finish(mut self) -> [usize; 2] {
        self.thread.take().unwrap().join().expect("relay thread")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` in random segments until `from` ends, then passes
/// the end on (half-close). Returns the number of segments written.
fn pump(mut from: TcpStream, mut to: TcpStream, mut rng: Rng) -> JoinHandle<usize> {
    thread::spawn(move || {
        from.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut buf = vec![0; 64 << 10];
        let mut segments = 0;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut offset = 0;
            while offset < n {
                let end = (offset + rng.segment()).min(n);
                if to.write_all(&buf[offset..end]).is_err() {
                    let _ = from.shutdown(Shutdown::Read);
                    return segments;
                }
                segments += 1;
                offset = end;
                rng.maybe_pause();
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        segments
    })
}

// ---------------------------------------------------------------------------
// Transfers through the relay
// ---------------------------------------------------------------------------

/// One side's transfer, kept with its socket.
struct Transfer {
    /// Name of the data stream this side sends, and of the one it expects.
    send_stream: u64,
    receive_stream: u64,
    sent: u64,
    received: u64,
    first_mismatch: Option<u64>,
    rng: Rng,
}

impl Transfer {
    fn new(send_stream: u64, receive_stream: u64, seed: u64) -> Self {
        Self {
            send_stream,
            receive_stream,
            sent: 0,
            received: 0,
            first_mismatch: None,
            rng: Rng::new(seed),
        }
    }
}

/// What one side saw, reported when it disconnects.
#[derive(Debug, Default, Clone)]
struct Outcome {
    protocol: Option<SslProtocol>,
    handshake_complete: bool,
    read_channel_finished: bool,
    disconnected: bool,
    errors: Vec<String>,
    sent: u64,
    received: u64,
    first_mismatch: Option<u64>,
}

type Shared = Rc<RefCell<Outcome>>;

/// Writes pattern data in random-sized pieces, keeping about 256 KiB queued.
fn feed(s: &mut SslSocket) {
    while s.bytes_to_write() < 256 << 10 {
        let t = s.user_data::<Transfer>().unwrap();
        if t.sent == TRANSFER {
            return;
        }
        let n = (t.rng.segment() as u64).min(TRANSFER - t.sent) as usize;
        let mut piece = vec![0; n];
        fill(t.send_stream, t.sent, &mut piece);
        t.sent += n as u64;
        s.write(&piece).expect("write");
    }
}

/// Checks what arrived against the expected stream.
fn check(s: &mut SslSocket) {
    let data = s.read_all();
    let t = s.user_data::<Transfer>().unwrap();
    for (i, &b) in data.iter().enumerate() {
        let position = t.received + i as u64;
        if t.first_mismatch.is_none()
            && (position >= TRANSFER || b != pattern(t.receive_stream, position))
        {
            t.first_mismatch = Some(position);
        }
    }
    t.received += data.len() as u64;
}

/// Connects the signals both sides share; `on_finished` runs when the peer
/// sent close_notify.
fn instrument(s: &mut SslSocket, outcome: &Shared, on_finished: fn(&mut SslSocket)) {
    let o = outcome.clone();
    s.handshake_complete().connect(move |s, _, _| {
        let mut o = o.borrow_mut();
        o.handshake_complete = true;
        o.protocol = s.protocol();
        drop(o);
        feed(s);
    });
    s.bytes_written().connect(|s, _, _| feed(s));
    s.ready_read().connect(|s, _, _| check(s));
    let o = outcome.clone();
    s.read_channel_finished().connect(move |s, _, _| {
        check(s);
        o.borrow_mut().read_channel_finished = true;
        on_finished(s);
    });
    let o = outcome.clone();
    s.error_occurred()
        .connect(move |_, _, e| o.borrow_mut().errors.push(format!("{e} ({e:?})")));
    let o = outcome.clone();
    s.disconnected().connect(move |s, _, _| {
        check(s);
        let t = s.user_data::<Transfer>().unwrap();
        let mut o = o.borrow_mut();
        o.disconnected = true;
        o.sent = t.sent;
        o.received = t.received;
        o.first_mismatch = t.first_mismatch;
    });
}

fn transfer_through_random_chunks(protocol: SslProtocol, seed: u64) {
    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config(protocol))
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    let server_address = server.local_address();
    let (client_stream, server_stream) = (seed.rotate_left(17), !seed);
    let server_outcome: Shared = Rc::default();
    let o = server_outcome.clone();
    server.new_connection().connect(move |_, cx, &id| {
        let s = cx.socket(id).unwrap();
        s.set_user_data(Transfer::new(server_stream, client_stream, seed ^ 1));
        // Once the client's data ended with close_notify, close too.
        instrument(s, &o, |s| s.disconnect_from_host());
    });
    let server_errors = server_outcome.clone();
    server.error_occurred().connect(move |_, _, (_, e)| {
        server_errors
            .borrow_mut()
            .errors
            .push(format!("server: {e}"))
    });

    let relay = Relay::start(server_address, seed);
    let client_outcome: Shared = Rc::default();
    let id = reactor.ssl_socket(client_config(protocol));
    let client = reactor.socket(id).unwrap();
    client.set_user_data(Transfer::new(client_stream, server_stream, seed ^ 2));
    instrument(client, &client_outcome, |_| {});
    // The client closes once it has all the server's data and has queued
    // all its own (closing flushes it first).
    client.ready_read().connect(|s, _, _| {
        let t = s.user_data::<Transfer>().unwrap();
        if t.received >= TRANSFER && t.sent == TRANSFER {
            s.disconnect_from_host();
        }
    });
    client.bytes_written().connect(|s, _, _| {
        let t = s.user_data::<Transfer>().unwrap();
        if t.received >= TRANSFER && t.sent == TRANSFER {
            s.disconnect_from_host();
        }
    });
    client
        .connect_to_host_encrypted("localhost", relay.port)
        .unwrap();

    let what = format!("both ends to disconnect ({protocol}, seed {seed:#x})");
    run_until(&mut reactor, &what, |_| {
        let (c, s) = (client_outcome.borrow(), server_outcome.borrow());
        (c.disconnected || !c.errors.is_empty()) && (s.disconnected || !s.errors.is_empty())
    });
    let segments = relay.finish();
    let c = client_outcome.borrow().clone();
    let s = server_outcome.borrow().clone();
    let context = format!("{protocol}, seed {seed:#x}: client {c:?}, server {s:?}");
    assert!(
        c.errors.is_empty() && s.errors.is_empty(),
        "errors: {context}"
    );
    assert_eq!(c.protocol, Some(protocol), "{context}");
    assert_eq!(s.protocol, Some(protocol), "{context}");
    for side in [&c, &s] {
        assert!(side.handshake_complete, "{context}");
        assert!(side.read_channel_finished, "no close_notify: {context}");
        assert!(side.disconnected, "{context}");
        assert_eq!(side.sent, TRANSFER, "bytes written: {context}");
        assert_eq!(side.received, TRANSFER, "bytes delivered: {context}");
        assert_eq!(side.first_mismatch, None, "data differs: {context}");
    }
    eprintln!(
        "{protocol}, seed {seed:#x}: {TRANSFER} bytes each way through {} and {} random segments",
        segments[0], segments[1]
    );
    // Tiny segments really happened: far more segments than TLS records.
    assert!(segments[0] > 100 && segments[1] > 100, "{segments:?}");
}

#[test]
fn tls13_random_chunking_never_changes_the_bytes() {
    for seed in SEEDS {
        transfer_through_random_chunks(SslProtocol::TlsV1_3, seed);
    }
}

#[test]
fn tls12_random_chunking_never_changes_the_bytes() {
    for seed in SEEDS {
        transfer_through_random_chunks(SslProtocol::TlsV1_2, seed);
    }
}

// ---------------------------------------------------------------------------
// Garbage to a real server
// ---------------------------------------------------------------------------

/// A real ClientHello record, as our client sends it (captured by a plain
/// TCP listener).
fn capture_client_hello() -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config(SslProtocol::TlsV1_3));
    let socket = reactor.socket(id).unwrap();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let mut stream: Option<TcpStream> = None;
    let mut hello = Vec::new();
    run_until(&mut reactor, "a ClientHello", |_| {
        if stream.is_none() {
            if let Ok((s, _)) = listener.accept() {
                s.set_nonblocking(true).unwrap();
                stream = Some(s);
            }
        }
        if let Some(s) = &mut stream {
            let mut buf = [0; 4096];
            if let Ok(n) = s.read(&mut buf) {
                hello.extend_from_slice(&buf[..n]);
            }
        }
        hello.len() >= 5 && hello.len() >= 5 + usize::from(u16::from_be_bytes([hello[3], hello[4]]))
    });
    reactor.socket(id).unwrap().abort();
    hello.truncate(5 + usize::from(u16::from_be_bytes([hello[3], hello[4]])));
    hello
}

fn record(content_type: u8, payload: &[u8], length: u16) -> Vec<u8> {
    let mut out = vec![content_type, 3, 3];
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Garbage of kind `seed % 8`.
fn garbage(rng: &mut Rng, hello: &[u8], kind: u64) -> Vec<u8> {
    let n = rng.range(1, 3000) as usize;
    match kind {
        // Noise.
        0 => rng.bytes(n),
        // A record of some type, with a length that may lie.
        1 => {
            let body = rng.bytes(n);
            let content_type = [20, 21, 22, 23, rng.next_u64() as u8][rng.below(5) as usize];
            let length = match rng.below(3) {
                0 => n as u16,
                1 => rng.next_u64() as u16,
                _ => (n as u16).saturating_sub(rng.range(1, 5) as u16),
            };
            record(content_type, &body, length)
        }
        // A ClientHello-shaped record full of noise.
        2 => {
            let mut body = vec![1, 0, (n >> 8) as u8, n as u8, 3, 3];
            body.extend(rng.bytes(n));
            record(22, &body, body.len() as u16)
        }
        // The real ClientHello with a few bytes flipped.
        3 => {
            let mut bytes = hello.to_vec();
            for _ in 0..rng.range(1, 4) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= rng.range(1, 255) as u8;
            }
            bytes
        }
        // The real ClientHello, then noise as the next flight.
        4 => {
            let mut bytes = hello.to_vec();
            bytes.extend(rng.bytes(n));
            bytes
        }
        // The real ClientHello, then record-shaped noise.
        5 => {
            let mut bytes = hello.to_vec();
            let content_type = [20, 21, 22, 23][rng.below(4) as usize];
            bytes.extend(record(content_type, &rng.bytes(n), n as u16));
            bytes
        }
        // The real ClientHello, cut short.
        6 => hello[..rng.below(hello.len() as u64) as usize].to_vec(),
        // Plain text.
        _ => b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
    }
}

/// The server's verdict on one garbage connection.
fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::Handshake(_) => "Handshake",
        Error::HandshakeRefused(_) => "HandshakeRefused",
        Error::ClosedDuringHandshake => "ClosedDuringHandshake",
        Error::AlertReceived(_) => "AlertReceived",
        Error::Network(_) => "Network",
        Error::Timeout(_) => "Timeout",
        _ => "other",
    }
}

#[test]
fn garbage_to_a_real_server_ends_in_a_defined_error() {
    const CONNECTIONS: u64 = 96;
    let hello = capture_client_hello();
    assert_eq!(hello[0], 22, "not a handshake record");

    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            server_config(SslProtocol::TlsV1_3),
        )
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    let address = server.local_address();
    // Short: a stalled handshake (the bug this test once found) fails fast.
    server.set_handshake_timeout(Some(Duration::from_secs(2)));
    // One connection at a time: the errors arrive in connection order.
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let accepted = Rc::new(RefCell::new(0u64));
    let e = errors.clone();
    server.error_occurred().connect(move |_, _, (_, error)| {
        e.borrow_mut()
            .push(format!("{}: {error}", error_kind(error)));
    });
    let a = accepted.clone();
    server
        .new_connection()
        .connect(move |_, _, _| *a.borrow_mut() += 1);

    let (done_tx, done_rx) = mpsc::channel();
    let client = thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..CONNECTIONS {
            let mut rng = Rng::new(0x6a7b_0000 + i);
            let bytes = garbage(&mut rng, &hello, i % 8);
            let mut stream = TcpStream::connect(address).expect("connect to the server");
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            // The server may give up before all is written.
            let mut offset = 0;
            while offset < bytes.len() {
                let end = (offset + rng.segment()).min(bytes.len());
                if stream.write_all(&bytes[offset..end]).is_err() {
                    break;
                }
                offset = end;
            }
            let _ = stream.shutdown(Shutdown::Write);
            let mut sink = Vec::new();
            if let Err(e) = stream.read_to_end(&mut sink) {
                // A reset is a close too; only silence is wrong.
                assert!(
                    !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                    "connection {i}: the server did not close within {TIMEOUT:?}"
                );
            }
            sent.push(bytes[..offset].to_vec());
        }
        done_tx.send(()).unwrap();
        sent
    });

    let mut finished = false;
    run_until(&mut reactor, "every connection to fail", |_| {
        finished = finished || done_rx.try_recv().is_ok();
        finished && errors.borrow().len() as u64 >= CONNECTIONS
    });
    let sent = client.join().expect("client thread");
    let errors = errors.borrow();
    assert_eq!(*accepted.borrow(), CONNECTIONS);
    assert_eq!(errors.len() as u64, CONNECTIONS, "{errors:?}");
    let mut histogram: Vec<(&str, usize)> = Vec::new();
    for (i, (error, bytes)) in errors.iter().zip(&sent).enumerate() {
        let kind = error.split(':').next().unwrap();
        match histogram.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => histogram.push((kind, 1)),
        }
        assert!(
            matches!(
                kind,
                "Handshake"
                    | "HandshakeRefused"
                    | "ClosedDuringHandshake"
                    | "AlertReceived"
                    | "Network"
            ),
            "connection {i} (garbage kind {}, {} bytes {:02x?}): not a handshake failure: {error}",
            i % 8,
            bytes.len(),
            &bytes[..bytes.len().min(16)]
        );
    }
    eprintln!("{CONNECTIONS} garbage connections: {histogram:?}");
    // The server is still fine: a real client completes a handshake.
    assert!(handshake_completes(&mut reactor, address.port()));
}

/// Whether a real client completes a handshake with the server on `port`.
fn handshake_completes(reactor: &mut Reactor, port: u16) -> bool {
    let id = reactor.ssl_socket(client_config(SslProtocol::TlsV1_3));
    let socket = reactor.socket(id).unwrap();
    let encrypted = Rc::new(RefCell::new(false));
    let flag = encrypted.clone();
    socket
        .handshake_complete()
        .connect(move |_, _, _| *flag.borrow_mut() = true);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(reactor, "a real handshake", |_| *encrypted.borrow());
    true
}

// ---------------------------------------------------------------------------
// The end of the stream inside a record (known bug, reproducers)
// ---------------------------------------------------------------------------

/// A complete handshake record whose message (of `kind`) claims 100 bytes
/// but carries 6, then the first byte of another record's header.
fn incomplete_message_then_partial_record(kind: u8) -> Vec<u8> {
    let mut bytes = record(22, &[kind, 0, 0, 100, 3, 3, 0, 0, 0, 0], 10);
    bytes.push(22);
    bytes
}

/// The engine bug the garbage test tolerates: when the peer's stream ends
/// (FIN) while GnuTLS holds an incomplete handshake message and part of the
/// next record, the first `Engine::process` after the end returns `Ok`
/// (GnuTLS answers `GNUTLS_E_AGAIN`) and nothing calls it again, so the
/// connection stays in the handshake until a timeout. Expected: the
/// `ClosedDuringHandshake` error, at once.
#[test]
fn a_server_fails_when_the_stream_ends_inside_a_record() {
    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            server_config(SslProtocol::TlsV1_3),
        )
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    let address = server.local_address();
    let error: Rc<RefCell<Option<String>>> = Rc::default();
    let e = error.clone();
    server
        .error_occurred()
        .connect(move |_, _, (_, error)| *e.borrow_mut() = Some(format!("{error:?}")));
    let client = thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .write_all(&incomplete_message_then_partial_record(1))
            .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let started = Instant::now();
    run_until(&mut reactor, "the server's error", |_| {
        error.borrow().is_some()
    });
    client.join().unwrap();
    let error = error.borrow().clone().unwrap();
    assert_eq!(
        error,
        "ClosedDuringHandshake",
        "after {:?}",
        started.elapsed()
    );
}

/// The same bug on the client side, where it is worse: a client has no
/// handshake timeout by default, so it waits forever, neither failing nor
/// disconnecting. This test gives up after 10 seconds.
#[test]
fn a_client_fails_when_the_stream_ends_inside_a_record() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut hello = [0; 5];
        stream.read_exact(&mut hello).unwrap();
        let mut rest = vec![0; usize::from(u16::from_be_bytes([hello[3], hello[4]]))];
        stream.read_exact(&mut rest).unwrap();
        // A ServerHello that never ends, then the end of the stream.
        stream
            .write_all(&incomplete_message_then_partial_record(2))
            .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config(SslProtocol::TlsV1_3));
    let socket = reactor.socket(id).unwrap();
    let error: Rc<RefCell<Option<String>>> = Rc::default();
    let e = error.clone();
    socket
        .error_occurred()
        .connect(move |_, _, error| *e.borrow_mut() = Some(format!("{error:?}")));
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while error.borrow().is_none() && Instant::now() < deadline {
        reactor.step(Some(Duration::from_millis(10))).unwrap();
    }
    let state = reactor.socket(id).map(|s| s.state());
    reactor.socket(id).unwrap().abort();
    server.join().unwrap();
    assert_eq!(
        error.borrow().as_deref(),
        Some("ClosedDuringHandshake"),
        "socket state after 10 s: {state:?}"
    );
}
