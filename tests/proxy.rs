//! Connecting through real proxies on loopback: tinyproxy (HTTP CONNECT,
//! with and without Basic authentication) and dante's `danted` (SOCKS5, with
//! and without username/password), to an `openssl s_server -WWW` target.
//! Each case runs twice: through the library API (`SslSocket::set_proxy`)
//! and through the getslash example (`--proxy URL`, or the environment).
//!
//! Every peer listens on 127.0.0.1 only, keeps its configuration and log in
//! a temporary directory, and is killed (with its process group: danted
//! forks workers) and reaped when its test ends, also when the test fails.
//!
//! dante's `socksmethod: username` checks the system's user database, so the
//! username tests create the system user `sslsocket-proxy-test` (no home, no
//! login shell) and set its password; they must run as root.

mod common;

use std::cell::RefCell;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ca, ca_str, client_config, require, Proc, TempDir};
use sslsocket::{
    Certificate, Error, Proxy, ProxyErrorKind, ProxyKind, Reactor, SocketId, SocketState,
    SslErrorKind, SslSocket, TimeoutKind,
};

/// The size of the large body fetched through every proxy.
const BIG: usize = 20 << 20;
/// The longest one fetch (or one getslash run) may take.
const FETCH_LIMIT: Duration = Duration::from_secs(90);
/// The longest a failing connection may take to report its error.
const FAIL_LIMIT: Duration = Duration::from_secs(20);

const HTTP_USER: &str = "user";
const HTTP_PASSWORD: &str = "pass";
/// The system user dante authenticates (created by [`socks_user`]).
const SOCKS_USER: &str = "sslsocket-proxy-test";
const SOCKS_PASSWORD: &str = "s3cret-Pr0xy";

/// The proxy variables getslash (like curl) reads; removed from its
/// environment unless a test sets them.
const PROXY_VARIABLES: &[&str] = &[
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

// ---------------------------------------------------------------------------
// Files and programs
// ---------------------------------------------------------------------------

/// `len` pseudo-random bytes (xorshift64, seeded from the clock).
fn random_body(len: usize) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Compares without printing megabytes when they differ.
fn assert_same(what: &str, got: &[u8], expected: &[u8]) {
    if got != expected {
        let first = got.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, expected {}; first differing byte at {first:?}",
            got.len(),
            expected.len()
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// Runs a short command to completion (at most 30 s); returns its status
/// and stderr.
fn run_command(name: &str, command: Command, input: &[u8]) -> (ExitStatus, String) {
    let mut peer = Proc::in_own_group(name, command);
    if !input.is_empty() {
        peer.write_stdin(input);
    }
    peer.close_stdin();
    let status = peer.wait(Duration::from_secs(30));
    (status, peer.stderr_text())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or
/// `peer` exits (an `Err` with its output and `log`).
fn wait_listening(peer: &mut Proc, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Some(status) = peer.try_wait() {
            return Err(format!(
                "`{}` exited ({status}) before listening on port {port}\nstdout: {}\nstderr: {}\nlog:\n{}",
                peer.name,
                peer.stdout_text(),
                peer.stderr_text(),
                fs::read_to_string(log).unwrap_or_default()
            ));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "`{}` does not listen on port {port}\nlog:\n{}",
            peer.name,
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// The peers
// ---------------------------------------------------------------------------

/// `openssl s_server -WWW` serving `body.bin` from a temporary directory.
struct Target {
    _peer: Proc,
    port: u16,
    body: Vec<u8>,
}

fn start_target(dir: &TempDir, size: usize) -> Target {
    let body = random_body(size);
    fs::write(dir.join("body.bin"), &body).expect("write body.bin");
    let mut command = Command::new(require("openssl", "openssl"));
    command
        .current_dir(dir.path())
        .args(["s_server", "-WWW", "-accept", "127.0.0.1:0"])
        .args(["-cert", &ca_str("server.pem")])
        .args(["-cert_chain", &ca_str("intermediate-ca.pem")])
        .args(["-key", &ca_str("server.key")]);
    let mut peer = Proc::in_own_group("openssl s_server -WWW", command);
    // Not -quiet: s_server prints "ACCEPT ADDRESS:PORT" once it listens.
    let deadline = Instant::now() + Duration::from_secs(15);
    let port = loop {
        let text = peer.stdout_text();
        if let Some(line) = text.lines().find(|l| l.starts_with("ACCEPT")) {
            if text.contains(&format!("{line}\n")) {
                break line
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().parse::<u16>().ok())
                    .filter(|&p| p != 0)
                    .unwrap_or_else(|| panic!("no port in s_server's line {line:?}"));
            }
        }
        if let Some(status) = peer.try_wait() {
            panic!("s_server exited ({status}): {}", peer.stderr_text());
        }
        assert!(
            Instant::now() < deadline,
            "s_server did not start: {}",
            peer.stderr_text()
        );
        thread::sleep(Duration::from_millis(10));
    };
    Target {
        _peer: peer,
        port,
        body,
    }
}

/// A running proxy: its port and its log file.
struct ProxyProcess {
    _peer: Proc,
    port: u16,
    log: PathBuf,
}

impl ProxyProcess {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => {
                format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
            }
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    fn proxy(&self, kind: ProxyKind) -> Proxy {
        Proxy::new(kind, "127.0.0.1", self.port)
    }

    /// How many tunnels to 127.0.0.1:`port` (asked for as "localhost")
    /// the proxy's log shows: tinyproxy logs each CONNECT request, dante
    /// each connection it passes.
    fn tunnels_to(&self, port: u16) -> usize {
        let log = self.log();
        let connect = format!("CONNECT localhost:{port} HTTP/1.1");
        let passed = format!(" 127.0.0.1.{port}");
        log.lines()
            .filter(|line| {
                line.contains(&connect)
                    || (line.contains("pass(")
                        && line.contains("tcp/connect [:")
                        && line.ends_with(&passed))
            })
            .count()
    }
}

/// Starts a proxy whose configuration `config(port, log)` gives, on a free
/// port (tried up to three times, should another process take the port).
fn start_proxy(
    dir: &TempDir,
    name: &str,
    config: impl Fn(u16, &Path) -> String,
    command: impl Fn(&Path) -> Command,
) -> ProxyProcess {
    static INSTANCES: AtomicUsize = AtomicUsize::new(0);
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let stem = format!("{name}-{}", INSTANCES.fetch_add(1, Ordering::Relaxed));
        let conf = dir.join(&format!("{stem}.conf"));
        let log = dir.join(&format!("{stem}.log"));
        fs::write(&conf, config(port, &log)).expect("write the proxy configuration");
        let mut peer = Proc::in_own_group(name, command(&conf));
        match wait_listening(&mut peer, port, &log) {
            Ok(()) => {
                return ProxyProcess {
                    _peer: peer,
                    port,
                    log,
                }
            }
            Err(e) => failures.push(e),
        }
    }
    panic!("{name} did not start:\n{}", failures.join("\n"));
}

/// tinyproxy on 127.0.0.1 with `extra` configuration lines.
fn tinyproxy(dir: &TempDir, extra: &str) -> ProxyProcess {
    let program = require("tinyproxy", "tinyproxy");
    start_proxy(
        dir,
        "tinyproxy",
        |port, log| {
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 32\n\
                 LogFile \"{}\"\nLogLevel Connect\n{extra}\n",
                log.display()
            )
        },
        |conf| {
            let mut command = Command::new(&program);
            command.arg("-d").arg("-c").arg(conf);
            command
        },
    )
}

/// tinyproxy requiring `BasicAuth user pass`.
fn tinyproxy_with_auth(dir: &TempDir) -> ProxyProcess {
    tinyproxy(dir, &format!("BasicAuth {HTTP_USER} {HTTP_PASSWORD}"))
}

/// danted on 127.0.0.1 (in and out), with `method` (`none` or `username`)
/// and `rules` before the rule that passes every CONNECT from 127.0.0.1.
fn danted(dir: &TempDir, method: &str, rules: &str) -> ProxyProcess {
    let program = require("danted", "dante-server");
    let users = if method == "username" {
        socks_user();
        // Reading the shadow database needs root; the workers run as nobody.
        "user.privileged: root\nuser.unprivileged: nobody\n"
    } else {
        ""
    };
    start_proxy(
        dir,
        "danted",
        |port, log| {
            format!(
                "logoutput: {}\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 clientmethod: none\n\
                 socksmethod: {method}\n\
                 {users}\
                 client pass {{\n  from: 127.0.0.1/32 to: 0.0.0.0/0\n  log: error\n}}\n\
                 {rules}\n\
                 socks pass {{\n  from: 127.0.0.1/32 to: 0.0.0.0/0\n  command: connect\n  log: connect error\n}}\n",
                log.display()
            )
        },
        |conf| {
            let mut command = Command::new(&program);
            command
                .arg("-f")
                .arg(conf)
                .arg("-p")
                .arg(conf.with_extension("pid"));
            command
        },
    )
}

/// Makes sure the system user dante checks exists with the test password
/// (once per test process). dante's `socksmethod: username` authenticates
/// against the system's user database, so this needs root.
fn socks_user() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(create_socks_user)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"));
}

fn create_socks_user() -> Result<(), String> {
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot find the user id: {e}"))?;
    if uid != 0 {
        return Err(format!(
            "the SOCKS5 username/password tests need root: dante's `socksmethod: username` \
             checks the system's user database, and the test creates the system user \
             {SOCKS_USER} (useradd, chpasswd) for it; running as uid {uid}"
        ));
    }
    let exists = |user: &str| {
        let mut getent = Command::new(require("getent", "libc-bin"));
        getent.args(["passwd", user]);
        run_command("getent", getent, b"").0.success()
    };
    if !exists(SOCKS_USER) {
        let mut useradd = Command::new(require("useradd", "passwd"));
        useradd.args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "sslsocket SOCKS5 proxy tests",
            SOCKS_USER,
        ]);
        let (status, stderr) = run_command("useradd", useradd, b"");
        // Another test process may have created it meanwhile.
        if !status.success() && !exists(SOCKS_USER) {
            return Err(format!("useradd {SOCKS_USER} failed ({status}): {stderr}"));
        }
    }
    let chpasswd = Command::new(require("chpasswd", "passwd"));
    let input = format!("{SOCKS_USER}:{SOCKS_PASSWORD}\n");
    let (status, stderr) = run_command("chpasswd", chpasswd, input.as_bytes());
    if !status.success() {
        return Err(format!(
            "chpasswd for {SOCKS_USER} failed ({status}): {stderr}"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The library client
// ---------------------------------------------------------------------------

/// What the client socket's signals reported.
#[derive(Default)]
struct Record {
    connected: bool,
    encrypted: bool,
    read_finished: bool,
    disconnected: bool,
    ready_reads: usize,
    data: Vec<u8>,
    errors: Vec<Error>,
    /// The payloads of `proxy_authentication_required`.
    auth_requests: Vec<Proxy>,
    ssl_errors: Vec<SslErrorKind>,
    peer_certificate: Option<Certificate>,
}

/// A reactor with one client socket whose signals are recorded.
struct Client {
    reactor: Reactor,
    id: SocketId,
    record: Rc<RefCell<Record>>,
}

impl Client {
    fn new() -> Self {
        let mut reactor = Reactor::new().expect("reactor");
        let id = reactor.ssl_socket(client_config());
        let record = Rc::new(RefCell::new(Record::default()));
        let socket = reactor.socket(id).expect("socket");
        let r = record.clone();
        socket
            .connected()
            .connect(move |_, _, _| r.borrow_mut().connected = true);
        let r = record.clone();
        socket.handshake_complete().connect(move |s, _, _| {
            let mut r = r.borrow_mut();
            r.encrypted = true;
            r.peer_certificate = s.peer_certificate();
        });
        let r = record.clone();
        socket.ready_read().connect(move |s, _, _| {
            let data = s.read_all();
            let mut r = r.borrow_mut();
            r.ready_reads += 1;
            r.data.extend_from_slice(&data);
        });
        let r = record.clone();
        socket
            .read_channel_finished()
            .connect(move |_, _, _| r.borrow_mut().read_finished = true);
        let r = record.clone();
        socket
            .disconnected()
            .connect(move |_, _, _| r.borrow_mut().disconnected = true);
        let r = record.clone();
        socket
            .error_occurred()
            .connect(move |_, _, e| r.borrow_mut().errors.push(e.clone()));
        let r = record.clone();
        socket
            .proxy_authentication_required()
            .connect(move |_, _, p| r.borrow_mut().auth_requests.push(p.clone()));
        let r = record.clone();
        socket.ssl_errors().connect(move |_, _, errors| {
            r.borrow_mut()
                .ssl_errors
                .extend(errors.iter().map(|e| e.kind()))
        });
        Self {
            reactor,
            id,
            record,
        }
    }

    fn socket(&mut self) -> &mut SslSocket {
        self.reactor.socket(self.id).expect("the socket stays")
    }

    /// Sends `GET /PATH` to `host:port` through `proxy` and runs until the
    /// connection ends (the test fails after `limit`).
    fn fetch(&mut self, proxy: Option<Proxy>, host: &str, port: u16, path: &str, limit: Duration) {
        let socket = self.socket();
        socket.set_proxy(proxy);
        let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
        socket.write(request.as_bytes()).expect("queue the request");
        socket
            .connect_to_host_encrypted(host, port)
            .expect("connect_to_host_encrypted");
        self.run_until_unconnected(limit);
    }

    fn run_until_unconnected(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.socket().state() != SocketState::Unconnected {
            assert!(
                Instant::now() < deadline,
                "the connection did not end within {limit:?} (state {:?}, errors {:?})",
                self.socket().state(),
                self.record.borrow().errors
            );
            self.reactor
                .step(Some(Duration::from_millis(20)))
                .expect("reactor step");
        }
    }

    /// Checks a complete, clean download of `body` (after s_server's head).
    fn assert_fetched(&self, body: &[u8]) {
        let r = self.record.borrow();
        assert!(r.errors.is_empty(), "errors: {:?}", r.errors);
        assert!(
            r.connected && r.encrypted && r.read_finished && r.disconnected,
            "connected {}, encrypted {}, read finished {}, disconnected {}",
            r.connected,
            r.encrypted,
            r.read_finished,
            r.disconnected
        );
        let end = r
            .data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP response head");
        let head = String::from_utf8_lossy(&r.data[..end]);
        assert!(head.starts_with("HTTP/1.0 200"), "response head: {head:?}");
        assert_same(
            "the body received through the proxy",
            &r.data[end + 4..],
            body,
        );
    }

    /// The single error reported, which must be `Error::Proxy { kind, .. }`;
    /// returns its detail.
    fn expect_proxy_error(&self, kind: ProxyErrorKind) -> String {
        let r = self.record.borrow();
        match r.errors.as_slice() {
            [Error::Proxy { kind: k, detail }] if *k == kind => detail.clone(),
            other => {
                panic!("expected exactly one Error::Proxy {{ kind: {kind:?} }}, got {other:?}")
            }
        }
    }
}

/// The leaf of `ca/server.pem` (CN=localhost).
fn server_leaf() -> Certificate {
    Certificate::from_file(ca("server-leaf.pem"))
        .expect("ca/server-leaf.pem")
        .remove(0)
}

// ---------------------------------------------------------------------------
// getslash
// ---------------------------------------------------------------------------

/// The getslash example, built (or found up to date) by cargo.
fn getslash_binary() -> PathBuf {
    common::example("getslash")
}

/// One getslash run.
struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn assert_output(&self, body: &[u8]) {
        assert!(
            self.status.success(),
            "getslash failed ({}): {}",
            self.status,
            self.stderr
        );
        assert_same("getslash's stdout", &self.stdout, body);
    }

    /// Exit status 1, nothing on stdout, one line on stderr naming `needle`.
    fn assert_failure(&self, needle: &str) {
        assert_eq!(
            self.status.code(),
            Some(1),
            "getslash should fail; stderr: {}",
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "getslash printed {} bytes",
            self.stdout.len()
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("getslash: ") && lines[0].contains(needle),
            "expected one stderr line containing {needle:?}, got {:?}",
            self.stderr
        );
    }
}

/// Runs getslash on `https://localhost:PORT/PATH` with `--proxy` (unless
/// `None`) and the environment variables `env` (every other proxy variable
/// removed).
fn getslash(proxy: Option<&str>, port: u16, path: &str, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(getslash_binary());
    command.args(["--cafile", &ca_str("root-ca.pem"), "--timeout", "60"]);
    if let Some(proxy) = proxy {
        command.args(["--proxy", proxy]);
    }
    command.arg(format!("https://localhost:{port}/{path}"));
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut peer = Proc::in_own_group("getslash", command);
    peer.close_stdin();
    let status = peer.wait(FETCH_LIMIT);
    Run {
        status,
        stdout: peer.stdout(),
        stderr: peer.stderr_text(),
    }
}

// ---------------------------------------------------------------------------
// Large bodies through each proxy
// ---------------------------------------------------------------------------

#[test]
fn http_connect_proxy_without_authentication() {
    let dir = TempDir::new("http");
    let target = start_target(&dir, BIG);
    let proxy = tinyproxy(&dir, "");

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FETCH_LIMIT);
    client.assert_fetched(&target.body);
    // TLS ran end to end: the certificate is the target's, checked against
    // the target's name.
    assert_eq!(client.record.borrow().peer_certificate, Some(server_leaf()));
    assert_eq!(
        proxy.tunnels_to(target.port),
        1,
        "the proxy's log:\n{}",
        proxy.log()
    );

    let run = getslash(Some(&proxy.url("http", None)), target.port, "body.bin", &[]);
    run.assert_output(&target.body);
    assert_eq!(proxy.tunnels_to(target.port), 2);
}

#[test]
fn http_connect_proxy_with_basic_authentication() {
    let dir = TempDir::new("http-auth");
    let target = start_target(&dir, BIG);
    let proxy = tinyproxy_with_auth(&dir);

    let mut client = Client::new();
    let via = proxy
        .proxy(ProxyKind::HttpConnect)
        .with_credentials(HTTP_USER, HTTP_PASSWORD);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FETCH_LIMIT);
    client.assert_fetched(&target.body);
    assert!(client.record.borrow().auth_requests.is_empty());
    assert_eq!(proxy.tunnels_to(target.port), 1, "{}", proxy.log());

    let url = proxy.url("http", Some((HTTP_USER, HTTP_PASSWORD)));
    getslash(Some(&url), target.port, "body.bin", &[]).assert_output(&target.body);
    assert_eq!(proxy.tunnels_to(target.port), 2, "{}", proxy.log());
}

#[test]
fn socks5_proxy_with_local_resolution() {
    let dir = TempDir::new("socks5");
    let target = start_target(&dir, BIG);
    let proxy = danted(&dir, "none", "");

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::Socks5);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FETCH_LIMIT);
    client.assert_fetched(&target.body);
    assert_eq!(client.record.borrow().peer_certificate, Some(server_leaf()));
    assert_eq!(proxy.tunnels_to(target.port), 1, "{}", proxy.log());

    getslash(
        Some(&proxy.url("socks5", None)),
        target.port,
        "body.bin",
        &[],
    )
    .assert_output(&target.body);
    assert_eq!(proxy.tunnels_to(target.port), 2, "{}", proxy.log());

    // socks5:// resolves the target locally: a name nobody resolves fails
    // before the proxy hears of it.
    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::Socks5);
    client.fetch(Some(via), "sslsocket-test.invalid", 443, "", FAIL_LIMIT);
    let errors = &client.record.borrow().errors;
    assert!(
        matches!(errors.as_slice(), [Error::HostNotFound { host, .. }] if host == "sslsocket-test.invalid"),
        "{errors:?}"
    );
}

#[test]
fn socks5h_proxy_resolves_the_target_name() {
    let dir = TempDir::new("socks5h");
    let target = start_target(&dir, BIG);
    let proxy = danted(&dir, "none", "");

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::Socks5Hostname);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FETCH_LIMIT);
    client.assert_fetched(&target.body);
    assert_eq!(client.record.borrow().peer_certificate, Some(server_leaf()));
    assert_eq!(proxy.tunnels_to(target.port), 1, "{}", proxy.log());

    getslash(
        Some(&proxy.url("socks5h", None)),
        target.port,
        "body.bin",
        &[],
    )
    .assert_output(&target.body);
    assert_eq!(proxy.tunnels_to(target.port), 2, "{}", proxy.log());

    // The name goes to the proxy: a name nobody resolves is the proxy's
    // failure (its reply "host unreachable"), not a local HostNotFound.
    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::Socks5Hostname);
    client.fetch(Some(via), "sslsocket-test.invalid", 443, "", FAIL_LIMIT);
    client.expect_proxy_error(ProxyErrorKind::TargetRefused);
}

#[test]
fn socks5_proxy_with_username_and_password() {
    let dir = TempDir::new("socks5-auth");
    let target = start_target(&dir, BIG);
    let proxy = danted(&dir, "username", "");

    for kind in [ProxyKind::Socks5, ProxyKind::Socks5Hostname] {
        let mut client = Client::new();
        let via = proxy
            .proxy(kind)
            .with_credentials(SOCKS_USER, SOCKS_PASSWORD);
        client.fetch(Some(via), "localhost", target.port, "body.bin", FETCH_LIMIT);
        client.assert_fetched(&target.body);
        assert!(client.record.borrow().auth_requests.is_empty());
    }
    assert_eq!(proxy.tunnels_to(target.port), 2, "{}", proxy.log());

    let url = proxy.url("socks5", Some((SOCKS_USER, SOCKS_PASSWORD)));
    getslash(Some(&url), target.port, "body.bin", &[]).assert_output(&target.body);
    assert_eq!(proxy.tunnels_to(target.port), 3, "{}", proxy.log());
}

#[test]
fn getslash_honours_the_proxy_environment_variables() {
    let dir = TempDir::new("env");
    let target = start_target(&dir, BIG);
    let proxy = tinyproxy(&dir, "");

    let url = proxy.url("http", None);
    getslash(None, target.port, "body.bin", &[("https_proxy", &url)]).assert_output(&target.body);
    assert_eq!(
        proxy.tunnels_to(target.port),
        1,
        "getslash did not go through https_proxy:\n{}",
        proxy.log()
    );

    // all_proxy when no https_proxy is set.
    let socks = danted(&dir, "none", "");
    getslash(
        None,
        target.port,
        "body.bin",
        &[("all_proxy", &socks.url("socks5h", None))],
    )
    .assert_output(&target.body);
    assert_eq!(
        socks.tunnels_to(target.port),
        1,
        "getslash did not go through all_proxy:\n{}",
        socks.log()
    );

    // no_proxy exempts localhost: the (dead) proxy is not used.
    let dead = format!("http://127.0.0.1:{}", free_port());
    getslash(
        None,
        target.port,
        "body.bin",
        &[
            ("https_proxy", &dead),
            ("no_proxy", "example.org,localhost"),
        ],
    )
    .assert_output(&target.body);
    // Without the exemption, the dead proxy is used and refuses.
    getslash(None, target.port, "body.bin", &[("https_proxy", &dead)])
        .assert_failure("proxy error (ConnectionRefused)");
    assert_eq!(proxy.tunnels_to(target.port), 1);
    assert_eq!(socks.tunnels_to(target.port), 1);
}

// ---------------------------------------------------------------------------
// Authentication failures and the proxy_authentication_required signal
// ---------------------------------------------------------------------------

/// A target for the cases that need no large body.
fn small_target(dir: &TempDir) -> Target {
    start_target(dir, 4096)
}

#[test]
fn http_proxy_with_wrong_credentials() {
    let dir = TempDir::new("http-wrong");
    let target = small_target(&dir);
    let proxy = tinyproxy_with_auth(&dir);

    let mut client = Client::new();
    let via = proxy
        .proxy(ProxyKind::HttpConnect)
        .with_credentials(HTTP_USER, "wrong");
    client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
    client.expect_proxy_error(ProxyErrorKind::AuthenticationRequired);
    {
        let r = client.record.borrow();
        assert_eq!(r.auth_requests.len(), 1);
        assert_eq!(r.auth_requests[0].user(), Some(HTTP_USER));
        assert!(!r.connected && !r.encrypted && !r.disconnected);
    }

    let url = proxy.url("http", Some((HTTP_USER, "wrong")));
    getslash(Some(&url), target.port, "body.bin", &[])
        .assert_failure("proxy error (AuthenticationRequired)");
}

#[test]
fn http_proxy_without_credentials_asks_for_them() {
    let dir = TempDir::new("http-none");
    let target = small_target(&dir);
    let proxy = tinyproxy_with_auth(&dir);

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(
        Some(via.clone()),
        "localhost",
        target.port,
        "body.bin",
        FAIL_LIMIT,
    );
    client.expect_proxy_error(ProxyErrorKind::AuthenticationRequired);
    assert_eq!(client.record.borrow().auth_requests, vec![via]);
    assert_eq!(client.socket().state(), SocketState::Unconnected);

    getslash(Some(&proxy.url("http", None)), target.port, "body.bin", &[])
        .assert_failure("proxy error (AuthenticationRequired)");
}

#[test]
fn http_proxy_credentials_supplied_by_a_slot() {
    let dir = TempDir::new("http-slot");
    let target = small_target(&dir);
    let proxy = tinyproxy_with_auth(&dir);

    let mut client = Client::new();
    client
        .socket()
        .proxy_authentication_required()
        .connect(|s, _, proxy| {
            s.set_proxy(Some(
                proxy.clone().with_credentials(HTTP_USER, HTTP_PASSWORD),
            ));
        });
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(
        Some(via.clone()),
        "localhost",
        target.port,
        "body.bin",
        FETCH_LIMIT,
    );
    client.assert_fetched(&target.body);
    assert_eq!(client.record.borrow().auth_requests, vec![via]);
}

#[test]
fn http_proxy_slot_repeating_refused_credentials_fails() {
    let dir = TempDir::new("http-slot-wrong");
    let target = small_target(&dir);
    let proxy = tinyproxy_with_auth(&dir);

    let mut client = Client::new();
    client
        .socket()
        .proxy_authentication_required()
        .connect(|s, _, proxy| {
            s.set_proxy(Some(proxy.clone().with_credentials(HTTP_USER, "wrong")));
        });
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
    client.expect_proxy_error(ProxyErrorKind::AuthenticationRequired);
    // Asked once without credentials, once more after the wrong ones; the
    // same wrong ones again end it.
    assert_eq!(client.record.borrow().auth_requests.len(), 2);
}

#[test]
fn socks5_proxy_with_wrong_password() {
    let dir = TempDir::new("socks-wrong");
    let target = small_target(&dir);
    let proxy = danted(&dir, "username", "");

    let mut client = Client::new();
    let via = proxy
        .proxy(ProxyKind::Socks5)
        .with_credentials(SOCKS_USER, "wrong");
    client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
    client.expect_proxy_error(ProxyErrorKind::AuthenticationRequired);
    {
        let r = client.record.borrow();
        assert_eq!(r.auth_requests.len(), 1);
        assert_eq!(r.auth_requests[0].user(), Some(SOCKS_USER));
    }

    let url = proxy.url("socks5h", Some((SOCKS_USER, "wrong")));
    getslash(Some(&url), target.port, "body.bin", &[])
        .assert_failure("proxy error (AuthenticationRequired)");
}

#[test]
fn socks5_proxy_without_credentials_asks_for_them() {
    let dir = TempDir::new("socks-none");
    let target = small_target(&dir);
    let proxy = danted(&dir, "username", "");

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::Socks5Hostname);
    client.fetch(
        Some(via.clone()),
        "localhost",
        target.port,
        "body.bin",
        FAIL_LIMIT,
    );
    client.expect_proxy_error(ProxyErrorKind::AuthenticationRequired);
    assert_eq!(client.record.borrow().auth_requests, vec![via]);

    getslash(
        Some(&proxy.url("socks5", None)),
        target.port,
        "body.bin",
        &[],
    )
    .assert_failure("proxy error (AuthenticationRequired)");
}

#[test]
fn socks5_proxy_credentials_supplied_by_a_slot() {
    let dir = TempDir::new("socks-slot");
    let target = small_target(&dir);
    let proxy = danted(&dir, "username", "");

    for kind in [ProxyKind::Socks5, ProxyKind::Socks5Hostname] {
        let mut client = Client::new();
        client
            .socket()
            .proxy_authentication_required()
            .connect(|s, _, proxy| {
                s.set_proxy(Some(
                    proxy.clone().with_credentials(SOCKS_USER, SOCKS_PASSWORD),
                ));
            });
        // Wrong credentials first: the slot replaces them.
        let via = proxy.proxy(kind).with_credentials(SOCKS_USER, "wrong");
        client.fetch(
            Some(via.clone()),
            "localhost",
            target.port,
            "body.bin",
            FETCH_LIMIT,
        );
        client.assert_fetched(&target.body);
        assert_eq!(client.record.borrow().auth_requests, vec![via]);
    }
}

// ---------------------------------------------------------------------------
// Proxies that are down, refuse the target, or misbehave
// ---------------------------------------------------------------------------

#[test]
fn a_proxy_that_is_down_is_connection_refused() {
    let port = free_port();
    for kind in [
        ProxyKind::HttpConnect,
        ProxyKind::Socks5,
        ProxyKind::Socks5Hostname,
    ] {
        let mut client = Client::new();
        let via = Proxy::new(kind, "127.0.0.1", port);
        client.fetch(Some(via), "localhost", 443, "", FAIL_LIMIT);
        let detail = client.expect_proxy_error(ProxyErrorKind::ConnectionRefused);
        assert!(detail.contains(&port.to_string()), "{kind:?}: {detail}");
        assert!(!client.record.borrow().connected);
    }
    for scheme in ["http", "socks5", "socks5h"] {
        getslash(Some(&format!("{scheme}://127.0.0.1:{port}")), 443, "", &[])
            .assert_failure("proxy error (ConnectionRefused)");
    }
}

#[test]
fn http_proxy_refusing_the_target_port() {
    let dir = TempDir::new("http-refuse");
    let target = small_target(&dir);
    // CONNECT is allowed to port 443 only (the target's port is ephemeral).
    let proxy = tinyproxy(&dir, "ConnectPort 443");
    assert_ne!(target.port, 443);

    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
    let detail = client.expect_proxy_error(ProxyErrorKind::TargetRefused);
    assert!(detail.contains("403"), "{detail}");
    assert!(!client.record.borrow().connected);

    getslash(Some(&proxy.url("http", None)), target.port, "body.bin", &[])
        .assert_failure("proxy error (TargetRefused)");

    // A target nothing listens on: the proxy cannot connect (500).
    let proxy = tinyproxy(&dir, "");
    let mut client = Client::new();
    let via = proxy.proxy(ProxyKind::HttpConnect);
    client.fetch(Some(via), "localhost", free_port(), "", FAIL_LIMIT);
    client.expect_proxy_error(ProxyErrorKind::TargetRefused);
}

#[test]
fn socks5_proxy_refusing_the_target() {
    let dir = TempDir::new("socks-refuse");
    let target = small_target(&dir);
    let block = format!(
        "socks block {{\n  from: 127.0.0.1/32 to: 127.0.0.1/32 port = {}\n  log: connect error\n}}",
        target.port
    );
    let proxy = danted(&dir, "none", &block);

    for kind in [ProxyKind::Socks5, ProxyKind::Socks5Hostname] {
        let mut client = Client::new();
        let via = proxy.proxy(kind);
        client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
        let detail = client.expect_proxy_error(ProxyErrorKind::TargetRefused);
        assert!(detail.contains("rules"), "{kind:?}: {detail}");
        assert!(!client.record.borrow().connected);
    }
    // dante logged both refusals, the second with the name the client sent
    // (socks5h: the proxy resolves it).
    let log = proxy.log();
    assert!(
        log.contains(&format!("-> 0.0.0.0.0 127.0.0.1.{}", target.port)),
        "{log}"
    );
    assert!(
        log.contains(&format!("-> 0.0.0.0.0 localhost.{}", target.port)),
        "{log}"
    );

    getslash(
        Some(&proxy.url("socks5", None)),
        target.port,
        "body.bin",
        &[],
    )
    .assert_failure("proxy error (TargetRefused)");
}

/// dante answers a CONNECT to a port nothing listens on with reply 5
/// ("connection refused") and then resets the connection at once. The
/// reply arrived: the error is the proxy's refusal, not a dropped
/// connection, however the reply and the reset are read. Tried a few times
/// because both may or may not arrive in the same read.
#[test]
fn socks5_reply_followed_by_a_reset_is_target_refused() {
    let dir = TempDir::new("socks-reset");
    let proxy = danted(&dir, "none", "");
    let dead_port = free_port();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let mut client = Client::new();
        let via = proxy.proxy(ProxyKind::Socks5);
        client.fetch(Some(via), "localhost", dead_port, "", FAIL_LIMIT);
        let errors = client.record.borrow().errors.clone();
        let unread = client.socket().read_all();
        outcomes.push(match errors.as_slice() {
            [Error::Proxy { kind, detail }] => {
                format!("{kind:?}: {detail} (bytes left unprocessed: {unread:?})")
            }
            other => format!("{other:?}"),
        });
    }
    assert!(
        outcomes
            .iter()
            .all(|o| o.starts_with("TargetRefused") && o.contains("refused")),
        "dante replied 5 (connection refused) before resetting; the socket reported:\n{}",
        outcomes.join("\n")
    );
}

#[test]
fn proxy_error_pages_are_not_delivered_as_data() {
    let dir = TempDir::new("http-pages");
    let target = small_target(&dir);
    // tinyproxy sends an HTML page after its 403 and 407 heads.
    let refusing = tinyproxy(&dir, "ConnectPort 443");
    let asking = tinyproxy_with_auth(&dir);
    for (proxy, kind) in [
        (&refusing, ProxyErrorKind::TargetRefused),
        (&asking, ProxyErrorKind::AuthenticationRequired),
    ] {
        let mut client = Client::new();
        let via = proxy.proxy(ProxyKind::HttpConnect);
        client.fetch(Some(via), "localhost", target.port, "body.bin", FAIL_LIMIT);
        client.expect_proxy_error(kind);
        assert_eq!(client.record.borrow().ready_reads, 0);
        let leftover = client.socket().read_all();
        assert!(
            leftover.is_empty(),
            "{kind:?}: the proxy's answer ({} bytes: {:?}…) is readable as if the target had sent it",
            leftover.len(),
            String::from_utf8_lossy(&leftover[..leftover.len().min(60)])
        );
    }
}

#[test]
fn a_silent_or_closing_proxy_fails_the_connection() {
    // A "proxy" that accepts and never answers: the negotiation is part of
    // connecting, so the connect timeout ends it.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = silent.local_addr().unwrap().port();
    for kind in [ProxyKind::HttpConnect, ProxyKind::Socks5] {
        let mut client = Client::new();
        client
            .socket()
            .set_connect_timeout(Some(Duration::from_millis(300)));
        let via = Proxy::new(kind, "127.0.0.1", port);
        client.fetch(Some(via), "localhost", 443, "", FAIL_LIMIT);
        let r = client.record.borrow();
        assert!(
            matches!(r.errors.as_slice(), [Error::Timeout(TimeoutKind::Connect)]),
            "{kind:?}: {:?}",
            r.errors
        );
    }
    drop(silent);

    // A "proxy" that accepts and closes at once.
    let closing = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    closing.set_nonblocking(true).unwrap();
    let port = closing.local_addr().unwrap().port();
    for kind in [ProxyKind::HttpConnect, ProxyKind::Socks5Hostname] {
        let mut client = Client::new();
        let via = Proxy::new(kind, "127.0.0.1", port);
        let socket = client.socket();
        socket.set_proxy(Some(via));
        socket.connect_to_host_encrypted("localhost", 443).unwrap();
        let deadline = Instant::now() + FAIL_LIMIT;
        while client.socket().state() != SocketState::Unconnected {
            assert!(Instant::now() < deadline, "{kind:?}: no failure");
            if let Ok((stream, _)) = closing.accept() {
                // Read the request first, so closing sends FIN, not RST.
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let _ = (&stream).read(&mut [0u8; 512]);
                drop(stream);
            }
            client
                .reactor
                .step(Some(Duration::from_millis(20)))
                .unwrap();
        }
        client.expect_proxy_error(ProxyErrorKind::ConnectionClosed);
    }
}

// ---------------------------------------------------------------------------
// TLS through the tunnel is checked against the target
// ---------------------------------------------------------------------------

#[test]
fn tls_through_the_tunnel_verifies_the_target_name() {
    let dir = TempDir::new("tls-name");
    let target = small_target(&dir);
    let http = tinyproxy(&dir, "");
    let socks = danted(&dir, "none", "");

    for (via, proxy) in [
        (http.proxy(ProxyKind::HttpConnect), &http),
        (socks.proxy(ProxyKind::Socks5), &socks),
        (socks.proxy(ProxyKind::Socks5Hostname), &socks),
    ] {
        // The right name: the target's certificate, verified.
        let tunnels = proxy.tunnels_to(target.port);
        let mut client = Client::new();
        client.fetch(
            Some(via.clone()),
            "localhost",
            target.port,
            "body.bin",
            FETCH_LIMIT,
        );
        client.assert_fetched(&target.body);
        assert_eq!(
            proxy.tunnels_to(target.port),
            tunnels + 1,
            "{via:?}: {}",
            proxy.log()
        );
        let cert = client
            .record
            .borrow()
            .peer_certificate
            .clone()
            .expect("a peer certificate");
        assert_eq!(cert, server_leaf(), "{via:?}");
        assert_eq!(cert.subject_common_name().as_deref(), Some("localhost"));
        assert!(client.socket().peer_verify_errors().is_empty());

        // Another name to verify: the same certificate does not match it,
        // whatever the proxy's address.
        let mut client = Client::new();
        client.socket().set_peer_verify_name("example.org");
        client.fetch(
            Some(via.clone()),
            "localhost",
            target.port,
            "body.bin",
            FAIL_LIMIT,
        );
        assert_eq!(
            proxy.tunnels_to(target.port),
            tunnels + 2,
            "{via:?}: {}",
            proxy.log()
        );
        let r = client.record.borrow();
        assert!(!r.encrypted, "{via:?}: the handshake succeeded");
        let kinds: Vec<SslErrorKind> = match r.errors.as_slice() {
            [Error::CertificateVerification(errors)] => errors.iter().map(|e| e.kind()).collect(),
            other => panic!("{via:?}: expected a verification failure, got {other:?}"),
        };
        assert_eq!(kinds, vec![SslErrorKind::HostNameMismatch], "{via:?}");
        assert_eq!(
            r.ssl_errors,
            vec![SslErrorKind::HostNameMismatch],
            "{via:?}"
        );
    }
}
