//! Soak: a churn of 100,000 TLS connections (handshake, a small exchange,
//! close) between our clients and our server in one process, with memory
//! checked for a per-connection leak; and 10,000 idle connections held
//! open, with what each costs bounded (see
//! [`ten_thousand_idle_connections_stay_small`]).
//!
//! The server runs its own reactor on a second thread, so client and server
//! use both cores (the handshakes' public-key work is what costs).
//!
//! The clients keep [`IN_FLIGHT`] connections going; each connection sends
//! a line, the server answers with 1 KiB and closes gracefully, the client
//! checks the answer and starts the next connection. One connection in ten
//! runs a full TLS 1.3 handshake (a configuration without resumption), one
//! in ten runs TLS 1.2 with resumption, the rest resume TLS 1.3 sessions.
//!
//! Memory is read at checkpoints where nothing is in flight (every socket
//! of the last batch gone, on both threads): the process's resident set,
//! the live bytes of the Rust heap (counted by this file's global
//! allocator), and the bytes glibc's malloc has in use (`mallinfo2`: the
//! Rust heap and GnuTLS's C allocations together). The
//! baseline is taken after the warm-up; at the end, the resident set, the
//! live Rust heap and malloc's bytes in use must be within [`RSS_BOUND`],
//! [`HEAP_BOUND`] and [`MALLOC_BOUND`] of it. A leak of even 100 bytes per
//! connection would add about 10 MB.
//!
//! The warm-up lasts [`WARM_UP`] connections and at least
//! [`WARM_UP_TIME`]: a finished connection leaves wake-up timers behind in
//! the reactors (the server socket's 5 s handshake deadline, both sockets'
//! 2 s close linger) until they expire, so the timer tables grow with the
//! connection rate for the first 9 s and only then reach their steady
//! size. That memory is bounded (rate × 9 s entries, the rate being capped
//! at [`MAX_RATE`]) and is not a leak.
//!
//! Sizes: a release build (`cargo test --release --test soak`, as CI runs
//! it) makes 100,000 connections after a warm-up of 5,000; a debug build
//! makes 10,000 after 2,000. `SOAK_CONNECTIONS` overrides the total.

mod common;
mod memory;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{ca, client_config, server_config};
use memory::{live_heap, malloc_in_use, rss};
use sslsocket::{Context, Reactor, SslConfiguration, SslProtocol, SslSocket};

const RELEASE: bool = !cfg!(debug_assertions);
/// Connections in all (`SOAK_CONNECTIONS` overrides it).
const CONNECTIONS: u64 = if RELEASE { 100_000 } else { 10_000 };
/// Connections before the baseline, at least.
const WARM_UP: u64 = if RELEASE { 5_000 } else { 2_000 };
/// The warm-up's shortest duration: longer than the longest timer a
/// connection leaves behind (5 s handshake deadline + 2 × 2 s close linger).
const WARM_UP_TIME: Duration = Duration::from_secs(10);
/// Connections open at once.
const IN_FLIGHT: u64 = 32;
/// The most connections started per second (on average since the start):
/// above what two cores reach here (about 1,100/s), it caps the number of
/// timers pending in the reactors (see the warm-up), so that memory does not
/// depend on how fast the machine is.
const MAX_RATE: f64 = 1500.0;
/// The server's answer.
const ANSWER_LEN: usize = 1024;
/// The growth allowed from the baseline to the end.
/// The Rust heap's bound leaves room for the timer tables' capacity to
/// double after the warm-up (+704 KiB from 8,192 to 16,384 entries, seen
/// when the machine got quieter and the rate rose mid-run); with
/// [`MAX_RATE`], no more than 13,500 timers are ever pending.
const RSS_BOUND: u64 = 4 << 20;
const HEAP_BOUND: u64 = 2 << 20;
/// glibc's bytes in use (Rust and GnuTLS): the Rust heap's bound plus room
/// for glibc's per-thread caches (tcache), which fill up over the first
/// hundred thousand connections (about 140 KiB here).
const MALLOC_BOUND: u64 = 3 << 20;
/// The longest the whole churn may take.
const LIMIT: Duration = Duration::from_secs(if RELEASE { 300 } else { 600 });

// ---------------------------------------------------------------------------
// The meters
// ---------------------------------------------------------------------------

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The meters' readings at a checkpoint.
#[derive(Debug, Clone, Copy)]
struct Reading {
    done: u64,
    seconds: f64,
    rss: u64,
    heap: u64,
    malloc: u64,
}

// ---------------------------------------------------------------------------
// The churn
// ---------------------------------------------------------------------------

/// Which handshake a connection makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TLS 1.3, resuming the last session.
    Resumed13,
    /// TLS 1.3 with resumption off: a full handshake every time.
    Full13,
    /// TLS 1.2, resuming.
    Resumed12,
}

impl Kind {
    fn of(n: u64) -> Kind {
        match n % 10 {
            0 => Kind::Full13,
            5 => Kind::Resumed12,
            _ => Kind::Resumed13,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the churn counts.
#[derive(Debug, Default)]
struct Stats {
    started: u64,
    /// Connections that ended with the whole answer and no error.
    done: u64,
    /// Per [`Kind`]: handshakes completed, and how many resumed.
    handshakes: [u64; 3],
    resumed: [u64; 3],
    wrong_protocol: u64,
    errors: u64,
    first_errors: Vec<String>,
}

/// Everything the client's slots share.
struct Churn {
    port: u16,
    configs: [SslConfiguration; 3],
    /// No connection is started past this number.
    limit: Cell<u64>,
    /// When the churn started (for [`MAX_RATE`]).
    start: Instant,
    stats: RefCell<Stats>,
}

impl Churn {
    fn error(&self, what: String) {
        let mut stats = self.stats.borrow_mut();
        if stats.first_errors.len() < 10 {
            stats.first_errors.push(what);
        }
    }
}

/// A client connection's state.
struct Client {
    n: u64,
    kind: Kind,
    answer: Vec<u8>,
}

/// Starts connections until [`IN_FLIGHT`] are open, the limit is reached
/// or the churn is ahead of [`MAX_RATE`].
fn start_connections(cx: &mut Context, churn: &Rc<Churn>, in_flight: u64) {
    let mut open = in_flight;
    while open < IN_FLIGHT {
        let n = {
            let mut stats = churn.stats.borrow_mut();
            let allowed = churn.start.elapsed().as_secs_f64() * MAX_RATE + IN_FLIGHT as f64;
            if stats.started >= churn.limit.get() || stats.started as f64 >= allowed {
                return;
            }
            stats.started += 1;
            stats.started
        };
        start_connection(cx, churn, n);
        open += 1;
    }
}

fn start_connection(cx: &mut Context, churn: &Rc<Churn>, n: u64) {
    let kind = Kind::of(n);
    let id = cx.ssl_socket(churn.configs[kind.index()].clone());
    let socket = cx.socket(id).expect("the new socket");
    socket.set_auto_delete(true);
    socket.set_user_data(Client {
        n,
        kind,
        answer: Vec::with_capacity(ANSWER_LEN),
    });
    socket
        .write(format!("ping {n}\n").as_bytes())
        .expect("write the request");
    let c = churn.clone();
    socket.handshake_complete().connect(move |s, _, _| {
        let resumed = s.is_session_resumed();
        let protocol = s.protocol();
        let kind = s.user_data::<Client>().unwrap().kind;
        let mut stats = c.stats.borrow_mut();
        stats.handshakes[kind.index()] += 1;
        stats.resumed[kind.index()] += u64::from(resumed);
        let expected = match kind {
            Kind::Resumed12 => SslProtocol::TlsV1_2,
            _ => SslProtocol::TlsV1_3,
        };
        if protocol != Some(expected) {
            stats.wrong_protocol += 1;
        }
    });
    socket.ready_read().connect(|s, _, _| {
        let data = s.read_all();
        s.user_data::<Client>()
            .unwrap()
            .answer
            .extend_from_slice(&data);
    });
    let c = churn.clone();
    socket.error_occurred().connect(move |s, _, e| {
        c.stats.borrow_mut().errors += 1;
        let n = s.user_data::<Client>().map_or(0, |c| c.n);
        c.error(format!("client {n}: {e}"));
    });
    let c = churn.clone();
    socket.disconnected().connect(move |s, cx, _| {
        let client = s.user_data::<Client>().unwrap();
        if client.answer == answer(client.n) {
            c.stats.borrow_mut().done += 1;
        } else {
            c.stats.borrow_mut().errors += 1;
            let got = String::from_utf8_lossy(&client.answer[..client.answer.len().min(40)]);
            c.error(format!(
                "client {}: {} bytes of answer, starting {got:?}",
                client.n,
                client.answer.len()
            ));
        }
        // This socket is deleted once the slot returns: it no longer counts.
        let in_flight = {
            let stats = c.stats.borrow();
            stats.started - stats.done - stats.errors
        };
        start_connections(cx, &c, in_flight);
    });
    socket
        .connect_to_host_encrypted("localhost", churn.port)
        .expect("connect");
}

/// The server's answer to connection `n`.
fn answer(n: u64) -> Vec<u8> {
    let mut out = format!("pong {n}\n").into_bytes();
    let fill = ANSWER_LEN - out.len();
    out.extend((0..fill).map(|i| b'a' + ((n as usize + i) % 26) as u8));
    out
}

/// The server: answers the request line and closes.
fn serve(socket: &mut SslSocket) {
    socket.set_user_data(Vec::<u8>::new());
    socket.ready_read().connect(|s, _, _| {
        let data = s.read_all();
        let request = s.user_data::<Vec<u8>>().unwrap();
        request.extend_from_slice(&data);
        if request.last() != Some(&b'\n') {
            return;
        }
        let n: u64 = std::str::from_utf8(request)
            .ok()
            .and_then(|r| r.trim_end().strip_prefix("ping "))
            .and_then(|n| n.parse().ok())
            .expect("a request line");
        s.write(&answer(n)).expect("write the answer");
        s.disconnect_from_host();
    });
}

fn tls12_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2)
        .build()
        .expect("TLS 1.2 client configuration")
}

fn full_handshake_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .session_resumption(false)
        .build()
        .expect("client configuration without resumption")
}

/// The server's reactor, on its own thread.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    /// The server reactor's objects (the listener and its sockets), as of
    /// its last step.
    objects: Arc<AtomicUsize>,
    errors: Arc<AtomicU64>,
    first_errors: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let objects = Arc::new(AtomicUsize::new(usize::MAX));
        let errors = Arc::new(AtomicU64::new(0));
        let first_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let (port_in, port_out) = std::sync::mpsc::channel();
        let (s, o, e, f) = (
            stop.clone(),
            objects.clone(),
            errors.clone(),
            first_errors.clone(),
        );
        let thread = thread::spawn(move || {
            let mut reactor = Reactor::new().unwrap();
            let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let id = reactor.listen(address, server_config()).expect("listen");
            let server = reactor.server(id).unwrap();
            port_in.send(server.local_address().port()).unwrap();
            server.new_connection().connect(|_, cx, &id| {
                serve(cx.socket(id).expect("the accepted socket"));
            });
            server.error_occurred().connect(move |_, _, (_, error)| {
                e.fetch_add(1, Ordering::Relaxed);
                let mut first = f.lock().unwrap();
                if first.len() < 10 {
                    first.push(format!("server: {error}"));
                }
            });
            while !s.load(Ordering::Relaxed) {
                reactor
                    .step(Some(Duration::from_millis(20)))
                    .expect("server reactor step");
                o.store(reactor.object_count(), Ordering::Relaxed);
            }
        });
        let port = port_out
            .recv_timeout(Duration::from_secs(30))
            .expect("the server's port");
        Server {
            port,
            stop,
            objects,
            errors,
            first_errors,
            thread: Some(thread),
        }
    }

    /// Whether only the listener is left.
    fn is_idle(&self) -> bool {
        self.objects.load(Ordering::Relaxed) == 1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the client reactor until the connections up to `limit` are done
/// and every socket of both reactors is gone; the test fails at `deadline`.
fn churn_until(
    reactor: &mut Reactor,
    churn: &Rc<Churn>,
    server: &Server,
    limit: u64,
    deadline: Instant,
) {
    churn.limit.set(limit);
    loop {
        let in_flight = {
            let stats = churn.stats.borrow();
            stats.started - stats.done - stats.errors
        };
        start_connections(reactor.context(), churn, in_flight);
        {
            let stats = churn.stats.borrow();
            let server_errors = server.errors.load(Ordering::Relaxed);
            assert!(
                stats.errors == 0 && server_errors == 0,
                "{} client and {server_errors} server errors after {} connections: {:?} {:?}",
                stats.errors,
                stats.done,
                stats.first_errors,
                server.first_errors.lock().unwrap()
            );
            if stats.done == limit && reactor.object_count() == 0 && server.is_idle() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the churn did not finish in {LIMIT:?}: {:?}",
            churn.stats.borrow()
        );
        reactor
            .step(Some(Duration::from_millis(20)))
            .expect("reactor step");
    }
}

/// CPU time (user + system) this process used so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The tests of this file measure the whole process: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn churn_of_100k_connections_keeps_memory_flat() {
    let _serial = serial();
    let total = std::env::var("SOAK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CONNECTIONS);
    let warm_up = WARM_UP.min(total / 2);
    let server = Server::start();
    let mut reactor = Reactor::new().unwrap();
    let churn = Rc::new(Churn {
        port: server.port,
        configs: [client_config(), full_handshake_config(), tls12_config()],
        limit: Cell::new(0),
        start: Instant::now(),
        stats: RefCell::default(),
    });

    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let deadline = start + LIMIT;
    let read = |done| Reading {
        done,
        seconds: start.elapsed().as_secs_f64(),
        rss: rss(),
        heap: live_heap(),
        malloc: malloc_in_use(),
    };
    // The warm-up, in batches of 1,000 (at most half of the connections).
    let mut done = 0;
    let mut at_warm_up = None;
    loop {
        done = (done + 1000).min(total / 2);
        churn_until(&mut reactor, &churn, &server, done, deadline);
        if done >= warm_up && at_warm_up.is_none() {
            at_warm_up = Some(read(done));
        }
        if done == total / 2 || at_warm_up.is_some() && start.elapsed() >= WARM_UP_TIME {
            break;
        }
    }
    let at_warm_up = at_warm_up.unwrap_or_else(|| read(done));
    let mut readings = vec![read(done)];
    for checkpoint in (1..=10).map(|k| total * k / 10).filter(|&c| c > done) {
        churn_until(&mut reactor, &churn, &server, checkpoint, deadline);
        readings.push(read(checkpoint));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    drop(server);

    let stats = churn.stats.borrow();
    let base = readings[0];
    let end = *readings.last().unwrap();
    let trail: Vec<String> = readings
        .iter()
        .map(|r| {
            format!(
                "{}k@{:.1}s: RSS {}, Rust heap {} KiB, malloc in use {} KiB",
                r.done / 1000,
                r.seconds,
                mib(r.rss),
                r.heap / 1024,
                r.malloc / 1024
            )
        })
        .collect();
    eprintln!(
        "churn: {total} connections in {elapsed:.1} s ({:.0}/s; {:.0}/s after the warm-up), \
         {:.2} ms of CPU each (both ends); handshakes: full TLS 1.3 {} (resumed {}), \
         resumed TLS 1.3 {}/{}, TLS 1.2 {}/{}; after {} connections: RSS {}, heap {} KiB; \
         baseline after {} connections ({:.1} s): RSS {}, heap {} KiB; end: RSS {} ({:+} KiB), \
         heap {} KiB ({:+} B), malloc in use {} KiB ({:+} KiB)\n{}",
        total as f64 / elapsed,
        (total - base.done) as f64 / (end.seconds - base.seconds),
        cpu * 1000.0 / total as f64,
        stats.handshakes[Kind::Full13.index()],
        stats.resumed[Kind::Full13.index()],
        stats.resumed[Kind::Resumed13.index()],
        stats.handshakes[Kind::Resumed13.index()],
        stats.resumed[Kind::Resumed12.index()],
        stats.handshakes[Kind::Resumed12.index()],
        at_warm_up.done,
        mib(at_warm_up.rss),
        at_warm_up.heap / 1024,
        base.done,
        base.seconds,
        mib(base.rss),
        base.heap / 1024,
        mib(end.rss),
        (end.rss as i64 - base.rss as i64) / 1024,
        end.heap / 1024,
        end.heap as i64 - base.heap as i64,
        end.malloc / 1024,
        (end.malloc as i64 - base.malloc as i64) / 1024,
        trail.join("\n"),
    );
    assert_eq!(stats.done, total);
    assert_eq!(stats.handshakes.iter().sum::<u64>(), total);
    assert_eq!(
        stats.wrong_protocol, 0,
        "connections with the wrong protocol"
    );
    assert_eq!(
        stats.resumed[Kind::Full13.index()],
        0,
        "a configuration without resumption resumed"
    );
    for kind in [Kind::Resumed13, Kind::Resumed12] {
        let (resumed, all) = (stats.resumed[kind.index()], stats.handshakes[kind.index()]);
        assert!(
            resumed * 10 >= all * 9,
            "{kind:?}: only {resumed} of {all} handshakes resumed"
        );
    }
    assert!(
        end.heap <= base.heap + HEAP_BOUND,
        "the live Rust heap grew from {} to {} bytes over {} connections",
        base.heap,
        end.heap,
        total - base.done
    );
    assert!(
        end.malloc <= base.malloc + MALLOC_BOUND,
        "malloc's bytes in use grew from {} to {} over {} connections",
        base.malloc,
        end.malloc,
        total - base.done
    );
    assert!(
        end.rss <= base.rss + RSS_BOUND,
        "the resident set grew from {} to {} over {} connections",
        mib(base.rss),
        mib(end.rss),
        total - base.done
    );
}

// ---------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------

/// Idle connections held open (`SOAK_IDLE_CONNECTIONS` overrides it).
const IDLE_CONNECTIONS: u64 = 10_000;
/// Handshakes in flight while the idle connections are opened.
const IDLE_IN_FLIGHT: u64 = 64;
/// What one idle connection may cost the server's end and the client's,
/// in glibc's bytes in use (the Rust heap and GnuTLS's allocations
/// together) and in resident memory alike. Measured (release build): the
/// server 11.5 KiB (GnuTLS's session 10.0 KiB: its 7.3 KiB structure and
/// the record layer's state; ours 1.5 KiB: the socket, its engine and
/// transport, no buffer), the client 12.8 KiB (GnuTLS 11.2 KiB, with the
/// server's certificates; ours 1.6 KiB). The C program of the shared
/// benchmark, on the same GnuTLS, holds 10.1 and 10.4 KiB of resident
/// memory. A client that resumed a session holds 2.6 KiB more in GnuTLS
/// (the session it resumed); this test makes full handshakes, as the
/// benchmark does.
const IDLE_SERVER_BOUND: u64 = 12 * 1024;
const IDLE_CLIENT_BOUND: u64 = 13 * 1024 + 512;
/// Set in the child process that holds the client ends: the server's port.
const IDLE_SERVER_PORT: &str = "SOAK_IDLE_SERVER_PORT";
/// How long the idle connections settle (their session tickets arrive and
/// are taken) before they are measured.
const SETTLE: Duration = Duration::from_secs(1);

/// What holding the idle connections cost one process.
#[derive(Debug, Clone, Copy)]
struct IdleCost {
    rss: i64,
    malloc: i64,
    heap: i64,
}

impl IdleCost {
    /// The meters now, less `base`.
    fn since(base: IdleCost) -> IdleCost {
        let now = IdleCost::now();
        IdleCost {
            rss: now.rss - base.rss,
            malloc: now.malloc - base.malloc,
            heap: now.heap - base.heap,
        }
    }

    fn now() -> IdleCost {
        IdleCost {
            rss: rss() as i64,
            malloc: malloc_in_use() as i64,
            heap: live_heap() as i64,
        }
    }

    /// `idle: held RSS MALLOC HEAP`, as the client process reports it.
    fn to_line(self) -> String {
        format!("idle: held {} {} {}", self.rss, self.malloc, self.heap)
    }

    fn parse(line: &str) -> IdleCost {
        let numbers: Vec<i64> = line
            .split(' ')
            .skip(2)
            .map(|n| n.parse().expect("a number"))
            .collect();
        IdleCost {
            rss: numbers[0],
            malloc: numbers[1],
            heap: numbers[2],
        }
    }

    /// Per connection, in KiB, for the report.
    fn describe(self, n: u64) -> String {
        let kib = |bytes: i64| bytes as f64 / n as f64 / 1024.0;
        format!(
            "RSS {:.2} KiB, malloc in use {:.2} KiB (Rust heap {:.2} KiB) per connection",
            kib(self.rss),
            kib(self.malloc),
            kib(self.heap)
        )
    }

    /// Fails unless both meters stay within `bound` bytes per connection.
    fn assert_within(self, bound: u64, n: u64, side: &str) {
        for (meter, bytes) in [("malloc'd", self.malloc), ("resident", self.rss)] {
            assert!(
                bytes <= (bound * n) as i64,
                "{side}: {n} idle connections took {bytes} bytes of {meter} memory, \
                 more than {bound} per connection ({})",
                self.describe(n)
            );
        }
    }
}

/// The number of idle connections this run holds.
fn idle_connections() -> u64 {
    std::env::var("SOAK_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(IDLE_CONNECTIONS)
}

/// Makes sure this process may open `needed` files: raises the soft limit
/// to the hard one (`prlimit`) when it is lower, and fails the test when
/// even the hard limit is too low.
fn allow_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open-file limit");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    assert!(
        hard >= needed,
        "{needed} open files are needed, the hard limit is {hard} (raise it, or set \
         SOAK_IDLE_CONNECTIONS lower)"
    );
    if soft >= needed {
        return;
    }
    let status = std::process::Command::new(common::require("prlimit", "util-linux"))
        .args(["--pid", &std::process::id().to_string()])
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed: {status}");
}

/// Ten thousand idle connections, after their handshakes (TLS 1.3, the
/// session tickets taken), between our server in this process and our
/// clients in a child process (one process cannot hold both ends: the
/// open-file limit is 20,000 here), which runs this same test with
/// [`IDLE_SERVER_PORT`] set. Each process measures what the connections
/// cost it over a baseline taken with one warm-up connection open, and
/// each end must stay within its bound per connection
/// ([`IDLE_SERVER_BOUND`], [`IDLE_CLIENT_BOUND`]).
#[test]
fn ten_thousand_idle_connections_stay_small() {
    let n = idle_connections();
    allow_open_files(n + 100);
    if let Ok(port) = std::env::var(IDLE_SERVER_PORT) {
        return hold_idle_clients(port.parse().expect("a port"), n);
    }
    let _serial = serial();
    let mut reactor = Reactor::new().unwrap();
    let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let id = reactor.listen(address, server_config()).expect("listen");
    let server = reactor.server(id).unwrap();
    server.set_max_connections(None);
    let port = server.local_address().port();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    server
        .error_occurred()
        .connect(move |_, _, (_, error)| e.borrow_mut().push(error.to_string()));

    let mut command = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", "ten_thousand_idle_connections_stay_small"])
        .args(["--nocapture", "--test-threads=1"])
        .env(IDLE_SERVER_PORT, port.to_string());
    let mut clients = common::Proc::in_own_group("the client process", command);
    let deadline = Instant::now() + LIMIT;
    let run_until_line = |reactor: &mut Reactor, clients: &mut common::Proc, prefix: &str| {
        // The test harness may print the test's name on the same line.
        let found = |clients: &common::Proc| {
            let out = clients.stdout_text();
            let (_, line) = out.split_once(prefix)?;
            let (rest, _) = line.split_once('\n')?;
            Some(format!("{prefix}{rest}"))
        };
        loop {
            if let Some(line) = found(clients) {
                return line;
            }
            assert!(
                clients.try_wait().is_none() && Instant::now() < deadline,
                "the client process did not say {prefix:?} (server errors: {:?})\nstdout: {}\nstderr: {}",
                errors.borrow(),
                clients.stdout_text(),
                clients.stderr_text()
            );
            reactor
                .step(Some(Duration::from_millis(20)))
                .expect("reactor step");
        }
    };
    run_until_line(&mut reactor, &mut clients, "idle: warm");
    let base = IdleCost::now();
    clients.write_stdin(b"go\n");
    let held = IdleCost::parse(&run_until_line(&mut reactor, &mut clients, "idle: held"));
    common::run_for(&mut reactor, SETTLE);
    let connections = reactor.server(id).unwrap().connection_count() as u64;
    let served = IdleCost::since(base);
    clients.close_stdin();
    let status = clients.wait(Duration::from_secs(60));
    eprintln!(
        "{n} idle connections: server {}; client {}",
        served.describe(n),
        held.describe(n)
    );
    assert!(
        errors.borrow().is_empty(),
        "server errors: {:?}",
        errors.borrow()
    );
    assert!(
        status.success() && clients.stdout_text().contains("test result: ok. 1 passed"),
        "the client process failed ({status})\nstdout: {}\nstderr: {}",
        clients.stdout_text(),
        clients.stderr_text()
    );
    assert_eq!(connections, n + 1, "connections held by the server");
    served.assert_within(IDLE_SERVER_BOUND, n, "server");
    held.assert_within(IDLE_CLIENT_BOUND, n, "client");
}

/// The child process: opens one warm-up connection to `port` (full
/// handshakes, as the benchmark's connections) and says
/// `idle: warm`; on `go`, opens `n` more ([`IDLE_IN_FLIGHT`] handshaking
/// at once), lets them settle and says what they cost (`idle: held …`);
/// holds them until stdin closes.
fn hold_idle_clients(port: u16, n: u64) {
    let mut reactor = Reactor::new().unwrap();
    let config = full_handshake_config();
    let established = Rc::new(Cell::new(0u64));
    let errors = Rc::new(RefCell::new(Vec::new()));
    let open = |reactor: &mut Reactor, count: u64| {
        let before = established.get();
        let done = || established.get() - before;
        let mut started = 0;
        let deadline = Instant::now() + LIMIT;
        while done() < count {
            while started < count && started - done() < IDLE_IN_FLIGHT {
                let id = reactor.ssl_socket(config.clone());
                let socket = reactor.socket(id).unwrap();
                let done = established.clone();
                socket
                    .handshake_complete()
                    .connect(move |_, _, _| done.set(done.get() + 1));
                let e = errors.clone();
                socket
                    .error_occurred()
                    .connect(move |_, _, error| e.borrow_mut().push(error.to_string()));
                socket.set_peer_verify_name("localhost");
                socket
                    .connect_to_host_encrypted("127.0.0.1", port)
                    .expect("connect");
                started += 1;
            }
            assert!(
                errors.borrow().is_empty(),
                "client errors: {:?}",
                errors.borrow()
            );
            assert!(
                Instant::now() < deadline,
                "{} of {count} connections established",
                done()
            );
            reactor
                .step(Some(Duration::from_millis(20)))
                .expect("reactor step");
        }
        common::run_for(reactor, SETTLE);
        assert!(
            errors.borrow().is_empty(),
            "client errors: {:?}",
            errors.borrow()
        );
    };
    open(&mut reactor, 1);
    let base = IdleCost::now();
    let mut line = String::new();
    println!("idle: warm");
    std::io::stdin().read_line(&mut line).expect("read stdin");
    assert_eq!(line, "go\n");
    open(&mut reactor, n);
    println!("{}", IdleCost::since(base).to_line());
    // Held until the server has measured too.
    line.clear();
    std::io::stdin().read_line(&mut line).expect("read stdin");
    assert_eq!(reactor.object_count() as u64, n + 1);
}
