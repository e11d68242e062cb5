//! tlsbench: the project's benchmark, following the contract of the
//! baselines in `shared/bench` (`gnutls-raw`, `rustls-mio`) so all three run
//! side by side (`../shared/bench/compare target/release/examples/tlsbench`).
//!
//! ```text
//! tlsbench --mode throughput  [--bytes N] [--direction upload|download] [--chunk BYTES]
//!                             [--cipher AES-128-GCM|CHACHA20-POLY1305|AES-256-GCM] [--tls 1.2|1.3]
//! tlsbench --mode handshakes  [--count N] [--resume] [--reactors N]
//! tlsbench --mode connections [--count N] [--inflight K] [--reactors N]
//! common: [--certs DIR] [--group X25519|SECP256R1|default] [--quiet]
//! ```
//!
//! Defaults: `--bytes 1073741824 --direction upload --chunk 16384
//! --cipher AES-128-GCM --tls 1.3 --count 1000 --inflight 64 --group X25519`;
//! certificates (`ca.pem`, `server.pem`, `server.key`) from `--certs`, else
//! `$PERF_CERTS`, else `<dir of the binary>/../certs/ec`.
//!
//! Only the public API is used: a [`Reactor`] per thread (the server's in a
//! [`ReactorPool`]), [`SslServer`] accepting, [`SslSocket`] connecting to 127.0.0.1 and verifying the chain
//! against `ca.pem` for "localhost", and the configuration's priority string
//! for cipher, version and group.
//!
//! - **throughput**: server and client are two threads, each with its own
//!   reactor. The timer starts when the client's handshake completes. Upload:
//!   the client writes N bytes in `--chunk` writes (keeping at most about
//!   1 MiB queued, topped up from `bytes_written`), the server reads them and
//!   answers one byte; download: the server writes N bytes once its
//!   handshake completes. The timer stops when the client has the ack (or
//!   all N bytes); then both sides close with `close_notify`, untimed.
//! - **handshakes**: N sequential connections (connect, full handshake, one
//!   byte from the server, `close_notify` both ways). `--resume`: the client
//!   configuration keeps sessions and offers the last ticket; fewer than N-1
//!   resumed is a failure.
//! - **connections**: the client runs in a second process (this binary again,
//!   with the hidden `--connections-client PORT`, talking over its stdin and
//!   stdout). After one warm-up connection both take their RSS baseline; the
//!   client opens N connections, at most `--inflight` handshaking at once,
//!   each counted when the server's one-byte greeting arrives; with all N
//!   open both read VmRSS/VmHWM. One reactor thread per side (the
//!   server's: `--reactors`).
//! - `--reactors N` (handshakes, connections): the server runs N reactors
//!   in a [`ReactorPool`] on one address; the JSON adds `reactors` and the
//!   server's own CPU (`server_user_s`, `server_sys_s`: its reactor
//!   threads in handshakes mode, its process in connections mode).
//!
//! Every mode reports what the work cost beside how fast it went: CPU
//! seconds (user + system, every thread) per GiB moved, CPU milliseconds per
//! handshake or per connection, and KiB of resident memory per connection
//! pair. The JSON keeps the contract's fields (`user_s`, `sys_s`, `bytes`,
//! `count`, rates, `kib_per_conn`, ...) and adds the costs computed from
//! them: `cpu_s`, and `cpu_s_per_gib` (throughput), `cpu_ms_per_handshake`
//! (handshakes), `cpu_ms_per_connection`, `server_cpu_ms_per_connection`,
//! `client_cpu_ms_per_connection` and `kib_per_connection_pair` (the
//! contract's `kib_per_conn` under the cost table's name; connections).
//! Without `--quiet` a line on stdout says the same in words.
//!
//! Diagnostics go to stderr; the last line of stdout is one JSON object; the
//! exit status is 0 on success, 1 on any failure, 2 on bad arguments.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sslsocket::{
    Context, Error, Reactor, ReactorPool, SocketId, SslConfiguration, SslProtocol, SslServer,
    SslSocket,
};

const IMPL: &str = "sslsocket";

/// What `transport` says in the JSON: the library runs GnuTLS over its own
/// user-space buffers.
const TRANSPORT: &str = "buffered";

/// A sender keeps its write queue topped up to about this much (writes of a
/// chunk or more are encrypted at once, so the queue holds ciphertext).
const WRITE_QUEUE_TARGET: u64 = 1 << 19;

/// A run fails when it makes no progress for this long.
const STALL: Duration = Duration::from_secs(20);

/// `/proc/self/stat` counts CPU time in ticks of USER_HZ (100 on Linux).
const USER_HZ: f64 = 100.0;

/// Bytes in a GiB and a MiB, for costs and rates.
const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// The server's one byte: the greeting (handshakes, connections) or the
/// upload's acknowledgement.
const GREETING: u8 = b'H';
const ACK: u8 = b'A';

const USAGE: &str = "usage: tlsbench --mode throughput|handshakes|connections
  [--bytes N] [--direction upload|download] [--chunk BYTES]
  [--cipher AES-128-GCM|CHACHA20-POLY1305|AES-256-GCM] [--tls 1.2|1.3]
  [--count N] [--resume] [--inflight K] [--reactors N]
  [--group X25519|SECP256R1|default] [--certs DIR] [--quiet]";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("tlsbench: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match (options.mode, options.client_of) {
        (Mode::Connections, Some(port)) => connections_client(&options, port),
        (Mode::Throughput, _) => throughput(&options),
        (Mode::Handshakes, _) => handshakes(&options),
        (Mode::Connections, None) => connections(&options, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tlsbench: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Options and configurations
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Throughput,
    Handshakes,
    Connections,
}

struct Options {
    mode: Mode,
    bytes: u64,
    download: bool,
    chunk: usize,
    cipher: String,
    tls: String,
    count: usize,
    resume: bool,
    inflight: usize,
    /// The server's reactors (handshakes, connections).
    reactors: usize,
    group: String,
    certs: PathBuf,
    quiet: bool,
    /// Set in the client process of the connections mode: the server's port.
    client_of: Option<u16>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Options {
            mode: Mode::Throughput,
            bytes: 1 << 30,
            download: false,
            chunk: 16384,
            cipher: "AES-128-GCM".into(),
            tls: "1.3".into(),
            count: 1000,
            resume: false,
            inflight: 64,
            reactors: 1,
            group: "X25519".into(),
            certs: default_certs(),
            quiet: false,
            client_of: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--mode" => {
                    options.mode = match value()?.as_str() {
                        "throughput" => Mode::Throughput,
                        "handshakes" => Mode::Handshakes,
                        "connections" => Mode::Connections,
                        other => return Err(format!("unknown mode {other}")),
                    }
                }
                "--bytes" => options.bytes = number(arg, value()?)?,
                "--direction" => {
                    options.download = match value()?.as_str() {
                        "upload" => false,
                        "download" => true,
                        other => return Err(format!("unknown direction {other}")),
                    }
                }
                "--chunk" => options.chunk = number(arg, value()?)?,
                "--cipher" => options.cipher = value()?.clone(),
                "--tls" => options.tls = value()?.clone(),
                "--count" => options.count = number(arg, value()?)?,
                "--resume" => options.resume = true,
                "--inflight" => options.inflight = number(arg, value()?)?,
                "--reactors" => options.reactors = number(arg, value()?)?,
                "--group" => options.group = value()?.clone(),
                "--certs" => options.certs = value()?.into(),
                "--quiet" => options.quiet = true,
                "--connections-client" => options.client_of = Some(number(arg, value()?)?),
                _ => return Err(format!("unknown option {arg}")),
            }
        }
        options.check()?;
        Ok(options)
    }

    fn check(&self) -> Result<(), String> {
        if self.bytes == 0 || self.chunk == 0 || self.count == 0 || self.inflight == 0 {
            return Err("--bytes, --chunk, --count and --inflight must be positive".into());
        }
        if self.reactors == 0 || (self.reactors > 1 && self.mode == Mode::Throughput) {
            return Err("--reactors must be positive, and 1 for a throughput run".into());
        }
        if !["AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"].contains(&self.cipher.as_str()) {
            return Err(format!("unsupported --cipher {}", self.cipher));
        }
        if self.protocol().is_none() {
            return Err(format!("unsupported --tls {}", self.tls));
        }
        let group_ok = !self.group.is_empty()
            && self
                .group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !group_ok {
            return Err(format!("bad --group {}", self.group));
        }
        if self.client_of.is_some() && self.mode != Mode::Connections {
            return Err("--connections-client is internal to --mode connections".into());
        }
        Ok(())
    }

    fn protocol(&self) -> Option<SslProtocol> {
        match self.tls.as_str() {
            "1.2" => Some(SslProtocol::TlsV1_2),
            "1.3" => Some(SslProtocol::TlsV1_3),
            _ => None,
        }
    }

    /// The GnuTLS priority string: one version, one bulk cipher, one group
    /// (the baselines' choice). NORMAL keeps its ECDHE key exchanges, which
    /// TLS 1.2 needs.
    fn priority(&self) -> String {
        let mut priority = format!(
            "NORMAL:-VERS-ALL:+VERS-TLS{}:-CIPHER-ALL:+{}",
            self.tls, self.cipher
        );
        if self.group != "default" {
            priority.push_str(":-GROUP-ALL:+GROUP-");
            priority.push_str(&self.group);
        }
        priority
    }

    fn server_config(&self) -> Result<SslConfiguration, String> {
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_local_certificate_files(
                self.certs.join("server.pem"),
                self.certs.join("server.key"),
                None,
            )
            .priority_string(self.priority())
            .build()
            .map_err(|e| format!("server configuration: {e}"))
    }

    /// The client's configuration: trusts only `ca.pem`; with `resumption`
    /// it remembers sessions per host and port and offers them.
    fn client_config(&self, resumption: bool) -> Result<SslConfiguration, String> {
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_ca_certificates_file(self.certs.join("ca.pem"))
            .priority_string(self.priority())
            .session_resumption(resumption)
            .build()
            .map_err(|e| format!("client configuration: {e}"))
    }

    fn expected(&self) -> Expected {
        Expected {
            protocol: self.protocol(),
            cipher: self.cipher.clone(),
        }
    }

    fn announce(&self) {
        if !self.quiet {
            eprintln!(
                "{IMPL}: priority {}, certs {}",
                self.priority(),
                self.certs.display()
            );
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name} needs a number, not {text:?}"))
}

fn default_certs() -> PathBuf {
    if let Some(dir) = env::var_os("PERF_CERTS") {
        return dir.into();
    }
    let exe_dir = env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    exe_dir.join("../certs/ec")
}

/// What a connection must negotiate.
#[derive(Debug, Clone)]
struct Expected {
    protocol: Option<SslProtocol>,
    cipher: String,
}

/// Checks that the connection negotiated what was asked for (and ECDHE on
/// TLS 1.2); returns its description for the diagnostics.
fn check_session(s: &SslSocket, wanted: &Expected) -> Result<String, String> {
    let protocol = s.protocol();
    let cipher = s.session_cipher_algorithm();
    let suite = s.session_cipher().unwrap_or_default();
    let description = format!(
        "{} {suite} ({}), resumed {}",
        protocol.map_or("?".into(), |p| p.to_string()),
        cipher.unwrap_or("?"),
        s.is_session_resumed()
    );
    let kx_ok = protocol != Some(SslProtocol::TlsV1_2) || suite.contains("ECDHE");
    if protocol != wanted.protocol || cipher != Some(wanted.cipher.as_str()) || !kx_ok {
        return Err(format!("negotiated {description}, not what was asked for"));
    }
    Ok(description)
}

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

/// Process CPU time, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    user: f64,
    sys: f64,
}

impl Cpu {
    /// utime and stime (fields 14 and 15 of `/proc/self/stat`, counted after
    /// the command name, which may hold spaces).
    fn now() -> Self {
        Cpu::of(std::path::Path::new("/proc/self/stat"))
    }

    /// From a `stat` file of `/proc` (a process's or a thread's).
    fn of(path: &std::path::Path) -> Self {
        let stat = fs::read_to_string(path).unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let mut fields = after_name.split_whitespace().skip(11);
        let mut ticks = || {
            fields
                .next()
                .and_then(|f| f.parse::<u64>().ok())
                .map_or(0.0, |t| t as f64 / USER_HZ)
        };
        let user = ticks();
        Cpu { user, sys: ticks() }
    }

    /// User and system time together: what the work cost.
    fn total(self) -> f64 {
        self.user + self.sys
    }

    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}

/// A moment: wall clock and process CPU.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    at: Instant,
    cpu: Cpu,
}

impl Stamp {
    fn now() -> Self {
        Stamp {
            at: Instant::now(),
            cpu: Cpu::now(),
        }
    }

    /// Seconds and CPU from `self` to `end`.
    fn until(self, end: Stamp) -> (f64, Cpu) {
        ((end.at - self.at).as_secs_f64(), end.cpu.since(self.cpu))
    }
}

/// What a run cost, from what it measured: CPU seconds per GiB, CPU
/// milliseconds per item (handshake, connection).
fn cpu_s_per_gib(cpu: Cpu, bytes: u64) -> f64 {
    cpu.total() / (bytes as f64 / GIB)
}

fn cpu_ms_per(cpu: Cpu, count: usize) -> f64 {
    1000.0 * cpu.total() / count as f64
}

/// The JSON object a run ends with: the contract's fields in its order,
/// then the costs. Keys and text values are ours (options are checked
/// before they get here), so nothing needs escaping.
struct Report {
    fields: Vec<String>,
}

impl Report {
    fn new(mode: &str) -> Self {
        let mut report = Report { fields: Vec::new() };
        report.text("impl", IMPL).text("mode", mode);
        report
    }

    fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.fields.push(format!("\"{key}\":\"{value}\""));
        self
    }

    /// An integer or a boolean, written as it displays.
    fn value(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.fields.push(format!("\"{key}\":{value}"));
        self
    }

    /// A number with `decimals` digits after the point; `null` if it is not
    /// finite (a run too short to time).
    fn number(&mut self, key: &str, value: f64, decimals: usize) -> &mut Self {
        match value.is_finite() {
            true => self.fields.push(format!("\"{key}\":{value:.decimals$}")),
            false => self.fields.push(format!("\"{key}\":null")),
        }
        self
    }

    /// `user_s`, `sys_s` and their sum `cpu_s`.
    fn cpu(&mut self, cpu: Cpu) -> &mut Self {
        self.number("user_s", cpu.user, 3)
            .number("sys_s", cpu.sys, 3)
            .number("cpu_s", cpu.total(), 3)
    }

    /// Prints the run's result: unless `quiet`, `words` (the costs first,
    /// the rate beside them); then the JSON object, the last line of stdout.
    fn publish(&self, quiet: bool, words: &str) {
        if !quiet {
            println!("{IMPL}: {words}");
        }
        println!("{{{}}}", self.fields.join(","));
    }
}

/// A line of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(key: &str) -> i64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(-1)
}

// ---------------------------------------------------------------------------
// Pieces shared by the modes
// ---------------------------------------------------------------------------

/// The bytes written over and over (as the baselines fill theirs).
fn payload(chunk: usize) -> Rc<[u8]> {
    (0..chunk).map(|i| (i * 31 + 7) as u8).collect()
}

/// Consumes all buffered plaintext where it lies (`BufRead`), as a program
/// that parses it in place would; returns how much.
fn drain(s: &mut SslSocket) -> u64 {
    let mut total = 0;
    while let Ok(data) = s.fill_buf() {
        if data.is_empty() {
            break;
        }
        let n = data.len();
        total += n as u64;
        s.consume(n);
    }
    total
}

/// One end of a bulk transfer, kept as the socket's user data.
#[derive(Default)]
struct Transfer {
    /// Payload bytes not yet handed to the socket.
    to_send: u64,
    received: u64,
    /// Client: when the handshake completed, and when the transfer did.
    started: Option<Stamp>,
    finished: Option<Stamp>,
    session: Option<String>,
    failure: Option<String>,
}

/// Writes `--chunk` pieces of the payload while the socket's write queue is
/// below [`WRITE_QUEUE_TARGET`] and payload is left to send.
fn top_up(s: &mut SslSocket, payload: &[u8]) -> Result<(), Error> {
    let Some(mut left) = s.user_data::<Transfer>().map(|t| t.to_send) else {
        return Ok(());
    };
    while left > 0 && s.bytes_to_write() < WRITE_QUEUE_TARGET {
        let n = usize::try_from(left).map_or(payload.len(), |l| l.min(payload.len()));
        s.write(&payload[..n])?;
        left -= n as u64;
    }
    if let Some(t) = s.user_data::<Transfer>() {
        t.to_send = left;
    }
    Ok(())
}

/// Records the first failure of a transfer and stops the reactor.
fn fail_transfer(s: &mut SslSocket, cx: &mut Context, message: String) {
    if let Some(t) = s.user_data::<Transfer>() {
        t.failure.get_or_insert(message);
    }
    s.abort();
    cx.quit();
}

/// Adds "raise ulimit -n" to errors caused by the open-file limit.
fn explain(error: &Error) -> String {
    let source = match error {
        Error::ConnectionFailed { source, .. } | Error::Network(source) => Some(source),
        _ => None,
    };
    match source.and_then(std::io::Error::raw_os_error) {
        Some(24) => format!("{error} (the open-file limit: raise ulimit -n)"),
        _ => error.to_string(),
    }
}

/// Runs `reactor` until a slot calls `quit`. Every [`STALL`] it asks
/// `progress` for a number that moves while the run makes progress, and
/// fails when it stood still.
fn run_watched(
    reactor: &mut Reactor,
    what: &str,
    mut progress: impl FnMut(&mut Reactor) -> u64,
) -> Result<(), String> {
    let mut last = progress(reactor);
    let mut check_at = Instant::now() + STALL;
    loop {
        let wait = check_at.saturating_duration_since(Instant::now());
        reactor
            .step(Some(wait))
            .map_err(|e| format!("reactor: {e}"))?;
        if reactor.take_quit() {
            return Ok(());
        }
        if Instant::now() >= check_at {
            let now = progress(reactor);
            if now == last {
                return Err(format!("{what}: no progress for {STALL:?} (at {now})"));
            }
            last = now;
            check_at = Instant::now() + STALL;
        }
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What the server does with each connection.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Read this many bytes, then answer [`ACK`].
    Receive(u64),
    /// Write this many bytes in pieces of `chunk` once the handshake is done.
    Send { bytes: u64, chunk: usize },
    /// Write [`GREETING`] once encrypted, then wait for the client to close.
    Greet,
}

/// Connects a listening server's slots: every accepted connection follows
/// `plan`; problems go to `failures`.
fn serve(server: &mut SslServer, plan: Plan, failures: mpsc::Sender<String>) {
    let payload = match plan {
        Plan::Send { chunk, .. } => payload(chunk),
        _ => payload(0),
    };
    let on_accept = failures.clone();
    server.new_connection().connect(move |_, cx, &id| {
        accept(cx, id, plan, &payload, &on_accept);
    });
    server.accept_error().connect(move |_, _, e| {
        let _ = failures.send(format!("server accept: {}", explain(e)));
    });
}

/// Sets up one accepted connection according to `plan`.
fn accept(
    cx: &mut Context,
    id: SocketId,
    plan: Plan,
    payload: &Rc<[u8]>,
    failures: &mpsc::Sender<String>,
) {
    let Some(s) = cx.socket(id) else { return };
    let report = failures.clone();
    s.error_occurred().connect(move |_, _, e| {
        let _ = report.send(format!("server connection: {}", explain(e)));
    });
    match plan {
        Plan::Greet => {
            // Queued now, sent as soon as the connection is encrypted.
            if let Err(e) = s.write(&[GREETING]) {
                let _ = failures.send(format!("server write: {e}"));
            }
        }
        Plan::Receive(bytes) => {
            let mut received = 0;
            let report = failures.clone();
            s.ready_read().connect(move |s, _, _| {
                let before = received;
                received += drain(s);
                if before < bytes && received >= bytes {
                    if let Err(e) = s.write(&[ACK]) {
                        let _ = report.send(format!("server ack: {e}"));
                    }
                }
            });
        }
        Plan::Send { bytes, .. } => {
            s.set_user_data(Transfer {
                to_send: bytes,
                ..Transfer::default()
            });
            let (first, more) = (Rc::clone(payload), Rc::clone(payload));
            let (report, report_more) = (failures.clone(), failures.clone());
            s.handshake_complete().connect(move |s, _, _| {
                if let Err(e) = top_up(s, &first) {
                    let _ = report.send(format!("server write: {e}"));
                }
            });
            s.bytes_written().connect(move |s, _, _| {
                if let Err(e) = top_up(s, &more) {
                    let _ = report_more.send(format!("server write: {e}"));
                }
            });
        }
    }
}

/// The server: its reactors, each on its own thread, on one port.
struct ServerThread {
    port: u16,
    pool: ReactorPool,
    failures: mpsc::Receiver<String>,
}

impl ServerThread {
    fn start(config: SslConfiguration, plan: Plan, reactors: usize) -> Result<Self, String> {
        let (failures_tx, failures) = mpsc::channel();
        let pool = ReactorPool::new(reactors).map_err(|e| format!("server reactors: {e}"))?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let port = pool
            .listen(address, config, move |server, _| {
                serve(server, plan, failures_tx.clone());
            })
            .map_err(|e| format!("server: {e}"))?
            .port();
        Ok(ServerThread {
            port,
            pool,
            failures,
        })
    }

    /// Stops the server; fails if it reported a problem.
    fn stop(self) -> Result<(), String> {
        self.pool
            .shutdown()
            .map_err(|e| format!("server reactors: {e}"))?;
        match self.failures.try_iter().next() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// The CPU time of the server's reactor threads so far (ReactorPool names
/// them `sslsocket-r…`), from `/proc/self/task/*/stat`.
fn server_threads_cpu() -> Cpu {
    let tasks = fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten();
    tasks
        .filter(|task| {
            fs::read_to_string(task.path().join("comm")).is_ok_and(|n| n.starts_with("sslsocket-r"))
        })
        .map(|task| Cpu::of(&task.path().join("stat")))
        .fold(Cpu::default(), |sum, cpu| Cpu {
            user: sum.user + cpu.user,
            sys: sum.sys + cpu.sys,
        })
}

/// Creates a client socket that verifies its server as "localhost" (it
/// connects to 127.0.0.1: a name would cost a lookup per connection).
fn client_socket(cx: &mut Context, config: &SslConfiguration) -> SocketId {
    let id = cx.ssl_socket(config.clone());
    cx.socket(id)
        .expect("just created")
        .set_peer_verify_name("localhost");
    id
}

// ---------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------

fn throughput(options: &Options) -> Result<(), String> {
    options.announce();
    let plan = match options.download {
        true => Plan::Send {
            bytes: options.bytes,
            chunk: options.chunk,
        },
        false => Plan::Receive(options.bytes),
    };
    let server = ServerThread::start(options.server_config()?, plan, 1)?;
    let client = options.client_config(false)?;
    let mut reactor = Reactor::new().map_err(|e| format!("client reactor: {e}"))?;
    let id = client_socket(&mut reactor, &client);
    let socket = reactor.socket(id).expect("just created");
    transfer_client(socket, options, server.port)?;
    let run = run_watched(&mut reactor, "transfer", |r| {
        r.socket(id)
            .and_then(|s| s.user_data::<Transfer>())
            .map_or(0, |t| t.received + (options.bytes - t.to_send))
    });
    let transfer = reactor
        .socket(id)
        .and_then(|s| s.user_data::<Transfer>())
        .map(std::mem::take)
        .unwrap_or_default();
    reactor.remove_socket(id);
    let stopped = server.stop();
    run?;
    if let Some(failure) = transfer.failure {
        return Err(failure);
    }
    let (Some(started), Some(finished)) = (transfer.started, transfer.finished) else {
        return Err(format!(
            "the connection ended early: {} bytes received, {} left to send",
            transfer.received, transfer.to_send
        ));
    };
    stopped?;
    if !options.quiet {
        eprintln!("{IMPL}: session {}", transfer.session.unwrap_or_default());
    }
    let (seconds, cpu) = started.until(finished);
    let direction = if options.download {
        "download"
    } else {
        "upload"
    };
    let (rate, cost) = (
        options.bytes as f64 / MIB / seconds,
        cpu_s_per_gib(cpu, options.bytes),
    );
    Report::new("throughput")
        .text("direction", direction)
        .text("cipher", &options.cipher)
        .text("tls", &options.tls)
        .text("group", &options.group)
        .text("transport", TRANSPORT)
        .value("chunk", options.chunk)
        .value("ktls", false)
        .value("bytes", options.bytes)
        .number("seconds", seconds, 4)
        .number("mib_per_s", rate, 1)
        .cpu(cpu)
        .number("cpu_s_per_gib", cost, 3)
        .publish(
            options.quiet,
            &format!(
                "{direction} {} TLS {}: {cost:.3} CPU s per GiB (user {:.2} s + sys {:.2} s for {:.2} GiB), {rate:.1} MiB/s",
                options.cipher,
                options.tls,
                cpu.user,
                cpu.sys,
                options.bytes as f64 / GIB,
            ),
        );
    Ok(())
}

/// Wires the client end of the transfer and connects.
fn transfer_client(s: &mut SslSocket, options: &Options, port: u16) -> Result<(), String> {
    let expected = if options.download { options.bytes } else { 1 };
    s.set_user_data(Transfer {
        to_send: if options.download { 0 } else { options.bytes },
        ..Transfer::default()
    });
    let payload = payload(options.chunk);
    let more = Rc::clone(&payload);
    let wanted = options.expected();
    s.handshake_complete().connect(move |s, cx, _| {
        let started = Stamp::now();
        let session = check_session(s, &wanted);
        let t = s.user_data::<Transfer>().expect("transfer state");
        t.started = Some(started);
        match session {
            Ok(description) => t.session = Some(description),
            Err(message) => return fail_transfer(s, cx, message),
        }
        if let Err(e) = top_up(s, &payload) {
            fail_transfer(s, cx, format!("client write: {e}"));
        }
    });
    s.bytes_written().connect(move |s, cx, _| {
        if let Err(e) = top_up(s, &more) {
            fail_transfer(s, cx, format!("client write: {e}"));
        }
    });
    s.ready_read().connect(move |s, _, _| {
        let n = drain(s);
        let t = s.user_data::<Transfer>().expect("transfer state");
        t.received += n;
        if t.finished.is_none() && t.received >= expected {
            t.finished = Some(Stamp::now());
            s.disconnect_from_host();
        }
    });
    s.error_occurred()
        .connect(|s, cx, e| fail_transfer(s, cx, format!("client: {}", explain(e))));
    s.disconnected().connect(|_, cx, _| cx.quit());
    s.connect_to_host_encrypted("127.0.0.1", port)
        .map_err(|e| format!("client connect: {e}"))
}

// ---------------------------------------------------------------------------
// handshakes
// ---------------------------------------------------------------------------

fn handshakes(options: &Options) -> Result<(), String> {
    options.announce();
    let server = ServerThread::start(options.server_config()?, Plan::Greet, options.reactors)?;
    let client = options.client_config(options.resume)?;
    let mut reactor = Reactor::new().map_err(|e| format!("client reactor: {e}"))?;
    let wanted = options.expected();
    let mut resumed = 0;
    let mut outcome = Ok(());
    let start = Stamp::now();
    let server_start = server_threads_cpu();
    for i in 0..options.count {
        let check = (i == 0).then_some(&wanted);
        match handshake_once(&mut reactor, &client, server.port, check) {
            Ok(exchange) => {
                resumed += usize::from(exchange.resumed);
                if let (Some(session), false) = (exchange.session, options.quiet) {
                    eprintln!("{IMPL}: first session {session}");
                }
            }
            Err(e) => {
                outcome = Err(format!("connection #{i}: {e}"));
                break;
            }
        }
    }
    let end = Stamp::now();
    let server_cpu = server_threads_cpu().since(server_start);
    let stopped = server.stop();
    outcome?;
    stopped?;
    if options.resume && resumed + 1 < options.count {
        return Err(format!(
            "only {resumed} of {} handshakes were resumed",
            options.count - 1
        ));
    }
    let (seconds, cpu) = start.until(end);
    let (rate, cost) = (
        options.count as f64 / seconds,
        cpu_ms_per(cpu, options.count),
    );
    let kind = if options.resume { "resumed" } else { "full" };
    Report::new("handshakes")
        .text("cipher", &options.cipher)
        .text("tls", &options.tls)
        .text("group", &options.group)
        .value("count", options.count)
        .value("resume", options.resume)
        .value("resumed", resumed)
        .number("seconds", seconds, 4)
        .number("per_s", rate, 1)
        .cpu(cpu)
        .number("cpu_ms_per_handshake", cost, 4)
        .value("reactors", options.reactors)
        .number("server_user_s", server_cpu.user, 3)
        .number("server_sys_s", server_cpu.sys, 3)
        .publish(
            options.quiet,
            &format!(
                "{} handshakes ({kind}, {resumed} resumed): {cost:.3} CPU ms per handshake (client and server), {rate:.1}/s",
                options.count
            ),
        );
    Ok(())
}

/// One handshakes-mode connection, kept as the socket's user data.
#[derive(Default)]
struct Exchange {
    greeted: bool,
    resumed: bool,
    session: Option<String>,
    failure: Option<String>,
}

/// Connects, completes the handshake, reads the greeting, closes with
/// `close_notify` both ways. `check`: verify what was negotiated.
fn handshake_once(
    reactor: &mut Reactor,
    config: &SslConfiguration,
    port: u16,
    check: Option<&Expected>,
) -> Result<Exchange, String> {
    let id = client_socket(reactor, config);
    let s = reactor.socket(id).expect("just created");
    s.set_user_data(Exchange::default());
    if let Some(wanted) = check.cloned() {
        s.handshake_complete().connect(move |s, cx, _| {
            let session = check_session(s, &wanted);
            let exchange = s.user_data::<Exchange>().expect("exchange state");
            match session {
                Ok(description) => exchange.session = Some(description),
                Err(message) => {
                    exchange.failure = Some(message);
                    s.abort();
                    cx.quit();
                }
            }
        });
    }
    s.ready_read().connect(move |s, _, _| {
        let n = drain(s);
        let resumed = s.is_session_resumed();
        let exchange = s.user_data::<Exchange>().expect("exchange state");
        if n > 0 && !exchange.greeted {
            exchange.greeted = true;
            exchange.resumed = resumed;
            s.disconnect_from_host();
        }
    });
    s.error_occurred().connect(|s, cx, e| {
        let exchange = s.user_data::<Exchange>().expect("exchange state");
        exchange.failure.get_or_insert_with(|| explain(e));
        cx.quit();
    });
    s.disconnected().connect(|_, cx, _| cx.quit());
    s.connect_to_host_encrypted("127.0.0.1", port)
        .map_err(|e| format!("connect: {e}"))?;
    let run = run_watched(reactor, "handshake", |_| 0);
    let exchange = reactor
        .socket(id)
        .and_then(|s| s.user_data::<Exchange>())
        .map(std::mem::take)
        .unwrap_or_default();
    reactor.remove_socket(id);
    run?;
    if let Some(failure) = exchange.failure {
        return Err(failure);
    }
    if !exchange.greeted {
        return Err("the connection closed before the server's byte".into());
    }
    Ok(exchange)
}

// ---------------------------------------------------------------------------
// connections
// ---------------------------------------------------------------------------

/// The server process: serves every connection from its reactors (one
/// unless `--reactors`); this thread talks to the client process and
/// measures.
fn connections(options: &Options, args: &[String]) -> Result<(), String> {
    options.announce();
    let serving = ServerThread::start(options.server_config()?, Plan::Greet, options.reactors)?;
    let mut child = spawn_client(args, serving.port)?;
    let to_child = child.stdin.take().expect("piped");
    let from_child = child.stdout.take().expect("piped");
    let supervised = supervise(to_child, from_child);
    let (to_child, server, client) = match supervised {
        Ok(measured) => measured,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    // The server stops first (its connections close at once, unread), then
    // closing its stdin lets the client process exit.
    let stopped = serving.stop();
    drop(to_child);
    let status = child.wait().map_err(|e| format!("client process: {e}"))?;
    stopped?;
    if !status.success() {
        return Err(format!("the client process failed ({status})"));
    }
    let n = options.count as f64;
    let server_kib = (server.rss_after - server.rss_before) as f64 / n;
    let client_kib = (client.rss_after - client.rss_before) as f64 / n;
    let (pair_kib, rate) = (server_kib + client_kib, n / client.seconds);
    let cpu = Cpu {
        user: server.cpu.user + client.cpu.user,
        sys: server.cpu.sys + client.cpu.sys,
    };
    let (cost, server_cost, client_cost) = (
        cpu_ms_per(cpu, options.count),
        cpu_ms_per(server.cpu, options.count),
        cpu_ms_per(client.cpu, options.count),
    );
    Report::new("connections")
        .text("cipher", &options.cipher)
        .text("tls", &options.tls)
        .text("group", &options.group)
        .value("count", options.count)
        .value("inflight", options.inflight)
        .number("seconds", client.seconds, 4)
        .number("per_s", rate, 1)
        .number("kib_per_conn", pair_kib, 2)
        .number("server_kib_per_conn", server_kib, 2)
        .number("client_kib_per_conn", client_kib, 2)
        .value("peak_rss_kib", server.hwm + client.hwm)
        .value("server_peak_rss_kib", server.hwm)
        .value("client_peak_rss_kib", client.hwm)
        .value("server_rss_before_kib", server.rss_before)
        .value("server_rss_after_kib", server.rss_after)
        .value("client_rss_before_kib", client.rss_before)
        .value("client_rss_after_kib", client.rss_after)
        .cpu(cpu)
        .number("cpu_ms_per_connection", cost, 4)
        .number("server_cpu_ms_per_connection", server_cost, 4)
        .number("client_cpu_ms_per_connection", client_cost, 4)
        .number("kib_per_connection_pair", pair_kib, 2)
        .value("reactors", options.reactors)
        .number("server_user_s", server.cpu.user, 3)
        .number("server_sys_s", server.cpu.sys, 3)
        .publish(
            options.quiet,
            &format!(
                "{} connections ({} in flight): {cost:.3} CPU ms per connection (server {server_cost:.3} + client {client_cost:.3}), {pair_kib:.1} KiB per connection pair (server {server_kib:.1} + client {client_kib:.1}), {rate:.1}/s",
                options.count, options.inflight
            ),
        );
    Ok(())
}

/// This binary again, as the client process, with the same options.
fn spawn_client(args: &[String], port: u16) -> Result<Child, String> {
    let exe = env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    Command::new(exe)
        .args(args)
        .arg("--connections-client")
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the client process: {e}"))
}

/// Memory and CPU of one process over the establishment phase.
#[derive(Debug, Default)]
struct Usage {
    seconds: f64,
    cpu: Cpu,
    rss_before: i64,
    rss_after: i64,
    hwm: i64,
}

impl Usage {
    /// The client's report line: seconds, user, sys, RSS before and after,
    /// peak RSS.
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.seconds, self.cpu.user, self.cpu.sys, self.rss_before, self.rss_after, self.hwm
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let mut float = || fields.next()?.parse::<f64>().ok();
        let (seconds, user, sys) = (float()?, float()?, float()?);
        let (before, after, hwm) = (float()?, float()?, float()?);
        Some(Usage {
            seconds,
            cpu: Cpu { user, sys },
            rss_before: before as i64,
            rss_after: after as i64,
            hwm: hwm as i64,
        })
    }
}

/// The server process's side of the protocol with the client process: on
/// "warm" take the baseline and answer "go"; on "done …" measure again.
/// Returns the client's stdin (closing it releases the client), the server's
/// usage and the client's.
fn supervise(
    mut to_child: ChildStdin,
    from_child: ChildStdout,
) -> Result<(ChildStdin, Usage, Usage), String> {
    let mut lines = BufReader::new(from_child).lines();
    let mut next = move || {
        lines
            .next()
            .and_then(Result::ok)
            .ok_or("the client process stopped (see its message above)")
    };
    if next()? != "warm" {
        return Err("unexpected message from the client process".into());
    }
    let mut server = Usage {
        rss_before: status_kib("VmRSS"),
        ..Usage::default()
    };
    let cpu_before = Cpu::now();
    writeln!(to_child, "go")
        .and_then(|()| to_child.flush())
        .map_err(|e| format!("cannot talk to the client process: {e}"))?;
    let report = next()?;
    server.rss_after = status_kib("VmRSS");
    server.hwm = status_kib("VmHWM");
    server.cpu = Cpu::now().since(cpu_before);
    let client = report
        .strip_prefix("done ")
        .and_then(Usage::from_line)
        .ok_or_else(|| format!("bad report from the client process: {report:?}"))?;
    Ok((to_child, server, client))
}

/// The client process: a warm-up connection, "warm", wait for "go", N
/// connections, "done …", then hold them until the server process lets go.
fn connections_client(options: &Options, port: u16) -> Result<(), String> {
    let config = options.client_config(false)?;
    let mut reactor = Reactor::new().map_err(|e| format!("client reactor: {e}"))?;
    let mut pool = Pool::new(&config, port, options.inflight);
    pool.connect(&mut reactor, 1, Some(options.expected()), options.quiet)?;
    let mut stdout = std::io::stdout().lock();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    writeln!(stdout, "warm")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot talk to the server process: {e}"))?;
    stdin
        .read_line(&mut line)
        .map_err(|e| format!("cannot hear the server process: {e}"))?;
    if line.trim() != "go" {
        return Err("the server process did not say go".into());
    }
    let rss_before = status_kib("VmRSS");
    let start = Stamp::now();
    pool.connect(&mut reactor, options.count, None, options.quiet)?;
    let (seconds, cpu) = start.until(Stamp::now());
    let usage = Usage {
        seconds,
        cpu,
        rss_before,
        rss_after: status_kib("VmRSS"),
        hwm: status_kib("VmHWM"),
    };
    writeln!(stdout, "done {}", usage.to_line())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot talk to the server process: {e}"))?;
    // Hold every connection until the server process has measured.
    line.clear();
    let _ = stdin.read_line(&mut line);
    Ok(())
}

/// What a client connection reports to the pool.
type Note = Result<(), String>;

/// Client connections opened with a bound on how many handshake at once.
struct Pool<'a> {
    config: &'a SslConfiguration,
    port: u16,
    inflight: usize,
    notes: mpsc::Sender<Note>,
    inbox: mpsc::Receiver<Note>,
}

impl<'a> Pool<'a> {
    fn new(config: &'a SslConfiguration, port: u16, inflight: usize) -> Self {
        let (notes, inbox) = mpsc::channel();
        Pool {
            config,
            port,
            inflight,
            notes,
            inbox,
        }
    }

    /// Opens `n` connections, each counted once the server's byte arrived;
    /// they stay open. `check`: verify what the first one negotiated.
    fn connect(
        &mut self,
        reactor: &mut Reactor,
        n: usize,
        mut check: Option<Expected>,
        quiet: bool,
    ) -> Result<(), String> {
        let (mut started, mut established) = (0, 0);
        let mut last_progress = Instant::now();
        while established < n {
            while started < n && started - established < self.inflight {
                self.open(reactor, check.take(), quiet)
                    .map_err(|e| format!("connection #{started}: {e}"))?;
                started += 1;
            }
            reactor
                .step(Some(STALL))
                .map_err(|e| format!("client reactor: {e}"))?;
            let before = established;
            for note in self.inbox.try_iter() {
                note?;
                established += 1;
            }
            if established > before {
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= STALL {
                return Err(format!(
                    "no progress for {STALL:?}: {established} of {n} established, {} handshaking",
                    started - established
                ));
            }
        }
        Ok(())
    }

    fn open(
        &self,
        reactor: &mut Reactor,
        check: Option<Expected>,
        quiet: bool,
    ) -> Result<(), String> {
        let id = client_socket(reactor, self.config);
        let s = reactor.socket(id).expect("just created");
        if let Some(wanted) = check {
            let report = self.notes.clone();
            s.handshake_complete()
                .connect(move |s, _, _| match check_session(s, &wanted) {
                    Ok(session) if !quiet => eprintln!("{IMPL}: first session {session}"),
                    Ok(_) => {}
                    Err(message) => {
                        let _ = report.send(Err(message));
                    }
                });
        }
        let greeted = self.notes.clone();
        let mut counted = false;
        s.ready_read().connect(move |s, _, _| {
            if drain(s) > 0 && !counted {
                counted = true;
                let _ = greeted.send(Ok(()));
            }
        });
        let failed = self.notes.clone();
        s.error_occurred().connect(move |_, _, e| {
            let _ = failed.send(Err(format!("client connection: {}", explain(e))));
        });
        s.connect_to_host_encrypted("127.0.0.1", self.port)
            .map_err(|e| format!("connect: {e}"))
    }
}
