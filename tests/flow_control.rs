//! Flow control, measured in memory: a fast sender and a slow reader, and a
//! producer that respects the write high-water mark against a slow peer.
//!
//! The far side is always another process (`openssl s_client`), so what is
//! measured here is our socket's buffering. Two meters, both reset after a
//! warm-up connection through the same path:
//!
//! - the process's resident set: the peak (`VmHWM`, reset through
//!   `/proc/self/clear_refs`) over the resident set at the reset. It sees
//!   everything (GnuTLS's C allocations too) but only in pages, and not
//!   memory that the allocator kept resident from the warm-up and reuses;
//! - the Rust heap, counted by this file's global allocator: the peak of
//!   live bytes over the live bytes at the reset. It sees every allocation
//!   of the library's buffers, byte for byte, but not GnuTLS's.
//!
//! The buffers the test itself needs (the data generator's, the reader's)
//! are allocated before the reset. The tests of this file take a lock, so
//! only one runs at a time, and
//! `meter_sees_unbounded_buffering_without_a_read_limit` checks that the
//! meters do see buffering when flow control is off.
//!
//! Data is a deterministic stream (one SplitMix64 word per 8 bytes) checked
//! word by word as it is read: count and content.
//!
//! Sizes: a release build (`cargo test --release --test flow_control`, as
//! CI runs it) sends 1 GiB to the slow reader at 48 MiB/s (about 22 s) and
//! has the producer write 256 MiB at the same pace; a debug build, which
//! cannot check data that fast, sends 128 MiB and writes 64 MiB at
//! 16 MiB/s. `FLOW_CONTROL_MIB` and `FLOW_CONTROL_WRITE_MIB` override the
//! two sizes.

mod common;
mod memory;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{ca_str, require, server_config, TempDir};
use memory::{peak_heap, reset_peak, rss, status_bytes};
use sslsocket::{Context, Reactor, SocketId, SocketState, SslSocket};

const KIB: usize = 1024;
const MIB: u64 = 1024 * 1024;

/// The reader's limit on buffered plaintext.
const READ_BUFFER: usize = 256 * KIB;
/// What the slow reader takes per read.
const READ_CHUNK: usize = 64 * KIB;
/// How often the slow reader's timer fires.
const TICK: Duration = Duration::from_millis(2);
/// Whether this is an optimised build: debug builds move less data, more
/// slowly (they cannot check 48 MiB/s of data on top of the TLS work).
const RELEASE: bool = !cfg!(debug_assertions);
/// The slow reader's pace (and the slow peer's): 1 GiB in about 21 s in a
/// release build.
const PACE: u64 = if RELEASE { 48 * MIB } else { 16 * MIB };
/// What the slow reader receives (`FLOW_CONTROL_MIB` overrides it).
const READ_TOTAL: u64 = if RELEASE { 1024 * MIB } else { 128 * MIB };
/// What the producer writes (`FLOW_CONTROL_WRITE_MIB` overrides it).
const WRITE_TOTAL: u64 = if RELEASE { 256 * MIB } else { 64 * MIB };
/// The producer's write high-water mark, and what it writes at a time.
const HIGH_WATER: usize = 1024 * KIB;
const WRITE_CHUNK: usize = 64 * KIB;
/// The bound on the resident set's peak growth over the baseline.
const MEMORY_BOUND: u64 = 8 * MIB;
/// The bounds on the Rust heap's peak growth, a little over what one
/// connection's buffers take from cold (measured: 1.6 MiB for the reader,
/// 4.3 MiB for the producer). The reader's socket holds at most a 512 KiB
/// read queue (256 KiB of plaintext plus a record's room, rounded up to a
/// power of two) and a 256 KiB ciphertext queue. The producer's holds up to
/// the 1 MiB mark plus one 64 KiB write, as plaintext or (written directly)
/// as ciphertext, in queues rounded up to 2 MiB; a queue that grows holds
/// its old and new buffers for a moment.
const READER_HEAP_BOUND: u64 = 3 * MIB;
const PRODUCER_HEAP_BOUND: u64 = 6 * MIB;
/// The largest TLS record's plaintext: decryption may overshoot the read
/// limit by at most one record.
const MAX_RECORD: usize = 16 * KIB;

// ---------------------------------------------------------------------------
// The memory meter
// ---------------------------------------------------------------------------

/// Both meters' readings at a reset.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    rss: u64,
    heap: u64,
}

/// What the meters saw since their reset.
#[derive(Debug, Clone, Copy)]
struct Growth {
    /// `VmHWM` over the resident set at the reset.
    rss: u64,
    /// The Rust heap's peak over its live bytes at the reset.
    heap: u64,
}

impl std::fmt::Display for Growth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resident peak +{}, Rust heap peak +{} KiB",
            mib(self.rss),
            self.heap / KIB as u64
        )
    }
}

/// Resets both peaks (`VmHWM` through Linux's `clear_refs` 5) and returns
/// the readings they start from.
fn baseline() -> Baseline {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("reset VmHWM through /proc/self/clear_refs");
    let heap = reset_peak();
    let rss = rss();
    let hwm = status_bytes("VmHWM");
    assert!(
        hwm <= rss + MIB,
        "VmHWM ({hwm}) was not reset to about VmRSS ({rss})"
    );
    Baseline { rss, heap }
}

impl Baseline {
    fn growth(&self) -> Growth {
        Growth {
            rss: status_bytes("VmHWM").saturating_sub(self.rss),
            heap: peak_heap().saturating_sub(self.heap),
        }
    }
}

/// The buffers the test's own data paths use, allocated before a reset.
struct Buffers {
    /// The generator's (or the producer's) chunk.
    feed: Vec<u8>,
    /// The reader's (or the drain's) chunk.
    take: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            feed: vec![0; 256 * KIB],
            take: vec![0; READ_CHUNK],
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

/// One test at a time: they share the process's resident set.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_mib(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(default, |m| m * MIB)
}

// ---------------------------------------------------------------------------
// The data stream
// ---------------------------------------------------------------------------

/// Word `i` of the stream (SplitMix64).
fn word(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn stream_byte(offset: u64) -> u8 {
    word(offset / 8).to_le_bytes()[(offset % 8) as usize]
}

/// Fills `buf` (a multiple of 8 bytes) with the stream from `offset` (a
/// multiple of 8).
fn fill_stream(buf: &mut [u8], offset: u64) {
    debug_assert!(offset % 8 == 0 && buf.len() % 8 == 0);
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&word(offset / 8 + i as u64).to_le_bytes());
    }
}

/// Checks a stream as it arrives, in pieces of any size.
#[derive(Debug, Default)]
struct Verifier {
    received: u64,
    first_mismatch: Option<u64>,
}

impl Verifier {
    fn feed(&mut self, data: &[u8]) {
        if self.first_mismatch.is_none() {
            self.first_mismatch = self.check(data);
        }
        self.received += data.len() as u64;
    }

    fn check(&self, data: &[u8]) -> Option<u64> {
        let start = self.received;
        let mut i = 0;
        while i < data.len() {
            let at = start + i as u64;
            if at % 8 == 0 && i + 8 <= data.len() {
                let got = u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
                if got == word(at / 8) {
                    i += 8;
                    continue;
                }
            }
            if data[i] != stream_byte(at) {
                return Some(at);
            }
            i += 1;
        }
        None
    }
}

// ---------------------------------------------------------------------------
// The peer process
// ---------------------------------------------------------------------------

/// `openssl s_client` connected to our server, killed when dropped.
struct Peer {
    child: Child,
    stderr: std::path::PathBuf,
    _dir: TempDir,
}

impl Peer {
    /// Starts `openssl s_client -quiet ARGS` against 127.0.0.1:`port`,
    /// verifying our chain, with stdin and stdout piped.
    fn start(port: u16, args: &[&str]) -> Peer {
        let openssl = require("openssl", "openssl");
        let dir = TempDir::new("flow-control");
        let stderr = dir.path().join("s_client.stderr");
        let child = Command::new(openssl)
            .args(["s_client", "-quiet", "-nocommands", "-verify_return_error"])
            .args(["-CAfile", &ca_str("root-ca.pem")])
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create the stderr file"))
            .spawn()
            .expect("start openssl s_client");
        Peer {
            child,
            stderr,
            _dir: dir,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the process to exit; the test fails after `timeout`.
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "s_client did not exit within {timeout:?}; stderr:\n{}",
                self.stderr_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes `total` bytes of the stream into the peer's stdin, then closes
/// it; returns what it wrote (less if the peer went away).
fn generator(mut stdin: ChildStdin, total: u64, mut buf: Vec<u8>) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut offset = 0;
        while offset < total {
            let n = (total - offset).min(buf.len() as u64) as usize;
            fill_stream(&mut buf[..n], offset);
            if stdin.write_all(&buf[..n]).is_err() {
                break;
            }
            offset += n as u64;
        }
        offset
    })
}

/// Waits until `elapsed` since `start` matches `done` bytes at `pace`.
fn keep_pace(start: Instant, done: u64, pace: u64) {
    let due = Duration::from_secs_f64(done as f64 / pace as f64);
    if let Some(wait) = due.checked_sub(start.elapsed()) {
        thread::sleep(wait);
    }
}

/// Reads the peer's stdout at `pace`, checking the stream; returns the
/// verifier at EOF.
fn slow_drain(
    mut stdout: impl Read + Send + 'static,
    pace: u64,
    mut buf: Vec<u8>,
) -> JoinHandle<Verifier> {
    thread::spawn(move || {
        let mut verifier = Verifier::default();
        let start = Instant::now();
        loop {
            keep_pace(start, verifier.received, pace);
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return verifier,
                Ok(n) => verifier.feed(&buf[..n]),
            }
        }
    })
}

// ---------------------------------------------------------------------------
// The reactor side
// ---------------------------------------------------------------------------

/// Listens on 127.0.0.1 with `ca/server.pem`; `setup` runs on every
/// accepted socket. Returns the port.
fn listen(reactor: &mut Reactor, setup: impl FnMut(&mut SslSocket) + 'static) -> u16 {
    let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let id = reactor.listen(address, server_config()).expect("listen");
    let server = reactor.server(id).unwrap();
    server.set_handshake_timeout(None);
    let port = server.local_address().port();
    let setup = Rc::new(RefCell::new(setup));
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).expect("the accepted socket");
        socket
            .error_occurred()
            .connect(|s, _, e| panic!("socket {:?}: {e}", s.id()));
        (setup.borrow_mut())(socket);
    });
    port
}

/// Steps the reactor until `done`; fails after `limit`.
fn run_until(reactor: &mut Reactor, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        reactor.step(Some(Duration::from_millis(20))).expect("step");
    }
}

/// What the slow reader saw.
#[derive(Debug, Default)]
struct ReadReport {
    verifier: Verifier,
    /// The most plaintext the socket held when the reader came by.
    max_available: usize,
    /// Reader visits that found the read buffer at its limit (the sender
    /// was waiting for the reader).
    visits_at_limit: u64,
    visits: u64,
    finished: bool,
    /// `(seconds, VmRSS)` once a second.
    rss_samples: Vec<(f64, u64)>,
    elapsed: Duration,
}

/// How the reader's timer reads.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// At this many bytes per second.
    Paced(u64),
    /// Everything available, at every visit.
    Fast,
    /// Nothing until the peer has closed, then everything.
    AfterClose,
}

/// Serves one `openssl s_client` that sends `total` bytes of the stream;
/// our socket (read buffer limited to `read_buffer`, 0: no limit) is read
/// by a timer every [`TICK`], as `pace` says.
fn receive(total: u64, read_buffer: usize, pace: Pace, buffers: Buffers) -> ReadReport {
    let mut reactor = Reactor::new().unwrap();
    let accepted: Rc<RefCell<Option<SocketId>>> = Rc::default();
    let slot = accepted.clone();
    let port = listen(&mut reactor, move |socket| {
        socket.set_read_buffer_size(read_buffer);
        // Keep the socket (and its unread data) after the peer closes.
        socket.set_auto_delete(false);
        *slot.borrow_mut() = Some(socket.id());
    });
    let mut peer = Peer::start(port, &["-no_ign_eof"]);
    let writer = generator(peer.child.stdin.take().unwrap(), total, buffers.feed);
    let report = Rc::new(RefCell::new(ReadReport::default()));
    let start = Instant::now();
    let (r, id_slot) = (report.clone(), accepted.clone());
    let mut buf = buffers.take;
    let mut next_sample = 0.0;
    let timer = reactor.start_repeating_timer(TICK, move |cx: &mut Context, _| {
        let Some(id) = *id_slot.borrow() else { return };
        let mut r = r.borrow_mut();
        if r.finished {
            return;
        }
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= next_sample {
            r.rss_samples.push((elapsed, rss()));
            next_sample += 1.0;
        }
        let socket = cx.socket(id).expect("the accepted socket");
        let available = socket.bytes_available();
        r.max_available = r.max_available.max(available);
        r.visits += 1;
        if available >= read_buffer && read_buffer > 0 {
            r.visits_at_limit += 1;
        }
        let closed = socket.state() == SocketState::Unconnected;
        let budget = match pace {
            Pace::Paced(pace) => (elapsed * pace as f64) as u64,
            Pace::Fast => u64::MAX,
            Pace::AfterClose if closed => u64::MAX,
            Pace::AfterClose => 0,
        };
        while r.verifier.received < budget && socket.bytes_available() > 0 {
            let n = socket.read(&mut buf).expect("read");
            r.verifier.feed(&buf[..n]);
        }
        if closed && socket.bytes_available() == 0 {
            r.finished = true;
            r.elapsed = start.elapsed();
            cx.remove_socket(id);
        }
    });
    let limit = match pace {
        Pace::Paced(p) => Duration::from_secs(60 + total * 3 / p),
        _ => Duration::from_secs(60),
    };
    run_until(&mut reactor, limit, "the transfer to end", || {
        report.borrow().finished
    });
    reactor.cancel_timer(timer);
    drop(reactor);
    let written = writer.join().expect("the generator thread");
    let status = peer.wait(Duration::from_secs(30));
    assert_eq!(
        written,
        total,
        "the generator could not write everything; s_client {status}:\n{}",
        peer.stderr_text()
    );
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        peer.stderr_text()
    );
    Rc::try_unwrap(report).ok().unwrap().into_inner()
}

fn assert_complete(verifier: &Verifier, total: u64) {
    assert_eq!(
        verifier.first_mismatch, None,
        "the data differs from the stream"
    );
    assert_eq!(verifier.received, total, "bytes received");
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn slow_reader_of_1_gib_stays_within_a_few_mib() {
    let _serial = serial();
    let total = env_mib("FLOW_CONTROL_MIB", READ_TOTAL);
    // Warm-up: the same path at full speed (GnuTLS, the allocator's arenas).
    let cold = baseline();
    let warm = receive(16 * MIB, READ_BUFFER, Pace::Fast, Buffers::new());
    assert_complete(&warm.verifier, 16 * MIB);
    let warm_up = cold.growth();

    let buffers = Buffers::new();
    let base = baseline();
    let report = receive(total, READ_BUFFER, Pace::Paced(PACE), buffers);
    let growth = base.growth();
    let samples: Vec<String> = report
        .rss_samples
        .iter()
        .step_by(5)
        .map(|(t, rss)| format!("{t:.0}s:{}", mib(*rss)))
        .collect();
    eprintln!(
        "slow reader: warm-up: {warm_up}; {} in {:.1} s ({:.1} MiB/s); baseline RSS {}; {growth}; \
         most buffered {} KiB; {} of {} visits found the buffer full; RSS {}",
        mib(total),
        report.elapsed.as_secs_f64(),
        total as f64 / MIB as f64 / report.elapsed.as_secs_f64(),
        mib(base.rss),
        report.max_available / KIB,
        report.visits_at_limit,
        report.visits,
        samples.join(" "),
    );
    assert_complete(&report.verifier, total);
    assert!(
        report.max_available <= READ_BUFFER + MAX_RECORD,
        "the socket buffered {} bytes over a limit of {READ_BUFFER}",
        report.max_available
    );
    // Some visits find room when the reader catches up after a late tick;
    // most find the sender held back by the limit.
    assert!(
        report.visits_at_limit >= report.visits / 10,
        "the reader was not the bottleneck ({} of {} visits at the limit): \
         the test did not exercise flow control",
        report.visits_at_limit,
        report.visits
    );
    assert!(
        growth.rss < MEMORY_BOUND,
        "the reader's resident peak grew {} over the baseline (bound {})",
        mib(growth.rss),
        mib(MEMORY_BOUND)
    );
    assert!(
        growth.heap < READER_HEAP_BOUND,
        "the reader's heap peak grew {} KiB over the baseline (bound {} KiB)",
        growth.heap / KIB as u64,
        READER_HEAP_BOUND / KIB as u64
    );
}

#[test]
fn meter_sees_unbounded_buffering_without_a_read_limit() {
    let _serial = serial();
    let total = 64 * MIB;
    let warm = receive(4 * MIB, 0, Pace::AfterClose, Buffers::new());
    assert_complete(&warm.verifier, 4 * MIB);
    let buffers = Buffers::new();
    let base = baseline();
    // No read limit, and nothing read until the peer closed: the socket
    // holds everything.
    let report = receive(total, 0, Pace::AfterClose, buffers);
    let growth = base.growth();
    eprintln!(
        "no read limit: {} buffered; {growth}",
        mib(report.max_available as u64),
    );
    assert_complete(&report.verifier, total);
    assert!(
        growth.rss >= total && growth.heap >= total,
        "the meters missed {} of buffering ({growth})",
        mib(total),
    );
}

/// The producer's state, shared by its slots.
#[derive(Debug, Default)]
struct Producer {
    total: u64,
    written: u64,
    paused: bool,
    bytes_written: u64,
    full_signals: u64,
    drained_signals: u64,
    max_to_write: u64,
    disconnected: bool,
    buf: Vec<u8>,
}

impl Producer {
    /// Writes while below the high-water mark and not paused.
    fn produce(&mut self, s: &mut SslSocket) {
        while !self.paused && self.written < self.total && s.bytes_to_write() < HIGH_WATER as u64 {
            let n = (self.total - self.written).min(WRITE_CHUNK as u64) as usize;
            let chunk = &mut self.buf[..n];
            fill_stream(chunk, self.written);
            assert_eq!(s.write(chunk).expect("write"), n);
            self.written += n as u64;
            self.max_to_write = self.max_to_write.max(s.bytes_to_write());
        }
        self.finish(s);
    }

    /// Closes once everything written has reached the network.
    fn finish(&mut self, s: &mut SslSocket) {
        if self.written == self.total && s.bytes_to_write() == 0 {
            s.disconnect_from_host();
        }
    }
}

/// Our server writes `total` bytes to an `openssl s_client` whose stdout
/// is drained at `pace`; returns the producer's state, the drain's
/// verifier and the time from the peer's start to our disconnection.
fn produce(total: u64, pace: u64, buffers: Buffers) -> (Producer, Verifier, Duration) {
    let mut reactor = Reactor::new().unwrap();
    let mut feed = buffers.feed;
    feed.truncate(WRITE_CHUNK);
    let state = Rc::new(RefCell::new(Producer {
        total,
        buf: feed,
        ..Producer::default()
    }));
    let st = state.clone();
    let port = listen(&mut reactor, move |socket| {
        socket.set_write_high_water_mark(HIGH_WATER);
        let p = st.clone();
        socket
            .handshake_complete()
            .connect(move |s, _, _| p.borrow_mut().produce(s));
        let p = st.clone();
        socket.write_buffer_full().connect(move |s, _, &n| {
            let mut p = p.borrow_mut();
            assert!(
                n >= HIGH_WATER as u64,
                "write_buffer_full at {n} bytes queued"
            );
            assert!(s.bytes_to_write() <= n);
            p.paused = true;
            p.full_signals += 1;
        });
        let p = st.clone();
        socket.write_buffer_drained().connect(move |s, _, _| {
            let mut p = p.borrow_mut();
            assert!(s.bytes_to_write() <= HIGH_WATER as u64 / 2);
            p.paused = false;
            p.drained_signals += 1;
            p.produce(s);
        });
        let p = st.clone();
        socket.bytes_written().connect(move |s, _, &n| {
            let mut p = p.borrow_mut();
            p.bytes_written += n;
            p.finish(s);
        });
        let p = st.clone();
        socket
            .disconnected()
            .connect(move |_, _, _| p.borrow_mut().disconnected = true);
    });
    let mut peer = Peer::start(port, &[]);
    drop(peer.child.stdin.take());
    let start = Instant::now();
    let drain = slow_drain(peer.child.stdout.take().unwrap(), pace, buffers.take);
    let limit = Duration::from_secs(60 + total * 3 / pace);
    run_until(&mut reactor, limit, "the producer to finish", || {
        state.borrow().disconnected
    });
    let elapsed = start.elapsed();
    drop(reactor);
    let verifier = drain.join().expect("the drain thread");
    let status = peer.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        peer.stderr_text()
    );
    let producer = Rc::try_unwrap(state).ok().unwrap().into_inner();
    (producer, verifier, elapsed)
}

#[test]
fn producer_pausing_at_the_high_water_mark_stays_within_a_few_mib() {
    let _serial = serial();
    let total = env_mib("FLOW_CONTROL_WRITE_MIB", WRITE_TOTAL);
    let cold = baseline();
    let (warm, verifier, _) = produce(8 * MIB, 1 << 40, Buffers::new());
    assert_complete(&verifier, 8 * MIB);
    assert_eq!(warm.bytes_written, 8 * MIB);
    let warm_up = cold.growth();

    let buffers = Buffers::new();
    let base = baseline();
    let (p, verifier, elapsed) = produce(total, PACE, buffers);
    let growth = base.growth();
    eprintln!(
        "producer: warm-up: {warm_up}; {} in {:.1} s; baseline RSS {}; {growth}; \
         bytes_written total {}; {} write_buffer_full, {} write_buffer_drained; \
         most queued {} KiB",
        mib(total),
        elapsed.as_secs_f64(),
        mib(base.rss),
        p.bytes_written,
        p.full_signals,
        p.drained_signals,
        p.max_to_write / KIB as u64,
    );
    assert_complete(&verifier, total);
    assert_eq!(p.written, total);
    assert_eq!(p.bytes_written, total, "bytes_written totals");
    assert!(
        p.full_signals > 10,
        "the peer was not slow enough to fill the queue ({} write_buffer_full)",
        p.full_signals
    );
    assert!(
        p.drained_signals + 1 >= p.full_signals && p.drained_signals <= p.full_signals,
        "{} write_buffer_full but {} write_buffer_drained",
        p.full_signals,
        p.drained_signals
    );
    assert!(
        p.max_to_write < (HIGH_WATER + WRITE_CHUNK) as u64,
        "bytes_to_write reached {}",
        p.max_to_write
    );
    assert!(
        growth.rss < MEMORY_BOUND,
        "the producer's resident peak grew {} over the baseline (bound {})",
        mib(growth.rss),
        mib(MEMORY_BOUND)
    );
    assert!(
        growth.heap < PRODUCER_HEAP_BOUND,
        "the producer's heap peak grew {} KiB over the baseline (bound {} KiB)",
        growth.heap / KIB as u64,
        PRODUCER_HEAP_BOUND / KIB as u64
    );
}
