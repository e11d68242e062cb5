//! Helpers shared by the integration tests: real peer processes under a
//! guard that kills them, the test PKI's paths, a reactor loop bounded in
//! time, a probe that records a socket's signals, a deterministic data
//! pattern, temporary directories and a loopback TCP relay; `network.rs`
//! runs a test in a private network namespace.
//!
//! Every test file does `mod common;` and uses a part of this module.
#![allow(dead_code)]

pub mod network;

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sslsocket::{
    Certificate, ConnectionStatistics, Error, HandshakeParameter, Reactor, RefusedBy, SocketId,
    SslConfiguration, SslError, SslErrorKind, SslProtocol, SslSocket, TimeoutKind,
};

/// The longest any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The test PKI
// ---------------------------------------------------------------------------

/// `ca/NAME` in the source tree.
pub fn ca(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ca").join(name)
}

/// `ca/NAME` as a string, for command lines.
pub fn ca_str(name: &str) -> String {
    ca(name).to_str().expect("UTF-8 path").to_owned()
}

/// A client configuration that trusts only the test root CA.
pub fn client_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .build()
        .expect("client configuration")
}

/// A server configuration with `ca/server.pem` (leaf + intermediate) and
/// its key.
pub fn server_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .build()
        .expect("server configuration")
}

/// The pre-shared key `alice` holds in the tests, in hex as the tools
/// take it.
pub const KEY_HEX: &str = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Another key of the same length.
pub const WRONG_HEX: &str = "ffeeddccbbaa99887766554433221100f0e1d2c3b4a5968778695a4b3c2d1e0f";

/// The bytes a hex string spells.
pub fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The certificates of a PEM file, each as its own PEM text.
pub fn split_pem(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = Vec::new();
    let mut current = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            inside = true;
            current.clear();
        }
        if inside {
            current.push_str(line);
            current.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE-----") {
            inside = false;
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The certificates of a PEM file, parsed.
pub fn certificates(path: &Path) -> Vec<Certificate> {
    Certificate::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// Fails the test, naming the Debian package, if `program` is not on PATH.
pub fn require(program: &str, package: &str) -> PathBuf {
    if program.contains('/') {
        let path = PathBuf::from(program);
        assert!(path.is_file(), "{program} is missing");
        return path;
    }
    // The sbin folders too: daemons (danted) and admin tools (useradd)
    // live there, and a non-root PATH often lacks them.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is required by this test but was not found: \
                 install the Debian package `{package}` (apt-get install {package})"
            )
        })
}

/// The binary of the example `name`, built (or found up to date) by the
/// cargo that runs the tests (`$CARGO build --example NAME`), once per test
/// process. Needed because `cargo test --all-targets` builds examples only
/// as test harnesses, and a binary left in `target/` by an earlier build
/// may be stale.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|(n, _)| n == name) {
        let result = build_example(name);
        built.push((name.to_owned(), result));
    }
    let (_, result) = built.iter().find(|(n, _)| n == name).unwrap();
    result.clone().unwrap_or_else(|e| panic!("{e}"))
}

fn build_example(name: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let cargo = cargo.to_str().ok_or("non-UTF-8 path to cargo")?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut build = Spawn::new(cargo)
        .args(["build", "--example", name, "--message-format=json"])
        .args(["--manifest-path", manifest.to_str().unwrap()])
        .null_stdin()
        .start();
    // Usually up to date or a quick link; a cold build compiles the crate.
    let status = build.wait(Duration::from_secs(600));
    let stdout = build.stdout_text();
    if !status.success() {
        return Err(format!(
            "building the {name} example failed ({status}):\n{}",
            build.stderr_text()
        ));
    }
    const KEY: &str = "\"executable\":\"";
    let target = format!("\"name\":\"{name}\"");
    stdout
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains(&target))
        .find_map(|l| {
            let start = l.find(KEY)? + KEY.len();
            let end = start + l[start..].find('"')?;
            Some(PathBuf::from(&l[start..end]))
        })
        .filter(|p| p.is_file())
        .ok_or_else(|| format!("cargo did not report the {name} executable:\n{stdout}"))
}

/// The Debian package that provides a program the tests run.
pub fn package_of(program: &str) -> &'static str {
    match program {
        "openssl" => "openssl",
        "gnutls-cli" => "gnutls-bin",
        "curl" => "curl",
        "python3" => "python3",
        "p11tool" => "gnutls-bin",
        "softhsm2-util" => "softhsm2",
        _ => "(unknown package)",
    }
}

type Sink = Box<dyn FnMut(&[u8]) + Send>;

/// How a spawned process's stdout is consumed.
pub enum Stdout {
    /// Collected in memory (see [`Proc::stdout`]).
    Collect,
    /// Passed to this function as it arrives; only the first 64 KiB are also
    /// kept for [`Proc::stdout`].
    Sink(Sink),
}

/// A child process that is killed and waited for when dropped, also when
/// the test panics. Its stdout and stderr are drained by threads.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    /// Started in its own process group, killed as a group.
    group: bool,
}

/// A builder for [`Proc`].
pub struct Spawn {
    program: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<(String, PathBuf)>,
    stdout: Stdout,
    stdin: Input,
}

enum Input {
    Pipe,
    Null,
    File(PathBuf),
}

impl Spawn {
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_owned(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            stdout: Stdout::Collect,
            stdin: Input::Pipe,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Sets an environment variable of the child (a path: `HOME`, …).
    pub fn env(mut self, name: &str, value: &Path) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn stdout_sink(mut self, sink: impl FnMut(&[u8]) + Send + 'static) -> Self {
        self.stdout = Stdout::Sink(Box::new(sink));
        self
    }

    /// Gives the child `/dev/null` as stdin instead of a pipe.
    pub fn null_stdin(mut self) -> Self {
        self.stdin = Input::Null;
        self
    }

    /// Gives the child a file as stdin.
    pub fn stdin_file(mut self, path: &Path) -> Self {
        self.stdin = Input::File(path.to_owned());
        self
    }

    pub fn start(self) -> Proc {
        let package = package_of(&self.program);
        require(&self.program, package);
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(match &self.stdin {
                Input::Pipe => Stdio::piped(),
                Input::Null => Stdio::null(),
                Input::File(path) => Stdio::from(
                    std::fs::File::open(path)
                        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())),
                ),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start `{}` ({e}): install the Debian package `{package}`",
                self.program
            )
        });
        let name = format!("{} {}", self.program, self.args.join(" "));
        Proc::attach(name, child, self.stdout, false)
    }
}

impl Proc {
    /// Starts `command` in its own process group (daemons that fork, a test
    /// binary re-run under `unshare`), with piped stdio; the whole group is
    /// killed when the `Proc` is dropped or killed.
    pub fn in_own_group(name: &str, mut command: Command) -> Proc {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc::attach(name.to_owned(), child, Stdout::Collect, true)
    }

    /// Takes over a spawned child with piped stdio: its output is drained
    /// by threads.
    fn attach(name: String, mut child: Child, stdout_mode: Stdout, group: bool) -> Proc {
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let threads = vec![
            drain(out, stdout.clone(), stdout_mode),
            drain(err, stderr.clone(), Stdout::Collect),
        ];
        Proc {
            name,
            child,
            stdin,
            stdout,
            stderr,
            threads,
            status: None,
            group,
        }
    }
}

fn drain(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
    mode: Stdout,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut sink = match mode {
            Stdout::Collect => None,
            Stdout::Sink(sink) => Some(sink),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let mut kept = into.lock().unwrap();
            match &mut sink {
                None => kept.extend_from_slice(chunk),
                Some(sink) => {
                    let room = (64 * 1024usize).saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(&chunk[..room]);
                    drop(kept);
                    sink(chunk);
                }
            }
        }
    })
}

impl Proc {
    /// Everything the process wrote on stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// Stdout as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout()).into_owned()
    }

    /// Stderr as (lossy) text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Writes to the process's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(data).expect("write to the child's stdin");
        stdin.flush().expect("flush the child's stdin");
    }

    /// Closes the process's stdin (EOF for it).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the process to exit (at most `timeout`, then the test
    /// fails) and for its output to be drained.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                self.join_output();
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{}` did not exit within {timeout:?}\nstdout: {}\nstderr: {}",
                    self.name,
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn join_output(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Kills the process (SIGKILL; its whole group when it was started in
    /// its own) and reaps it.
    pub fn kill(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        if self.group {
            kill_process_group(self.child.id());
        } else {
            let _ = self.child.kill();
        }
        self.status = self.child.wait().ok();
    }

    /// Waits until stdout contains `needle` (the test fails on timeout or if
    /// the process exits first).
    pub fn wait_for_stdout(&mut self, needle: &[u8], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if contains(&self.stdout(), needle) {
                return;
            }
            if let Some(status) = self.try_wait() {
                self.join_output();
                if contains(&self.stdout(), needle) {
                    return;
                }
                panic!(
                    "`{}` exited ({status}) before printing {:?}\nstdout: {}\nstderr: {}",
                    self.name,
                    String::from_utf8_lossy(needle),
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{}` did not print {:?} within {timeout:?}\nstdout: {}\nstderr: {}",
                    self.name,
                    String::from_utf8_lossy(needle),
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for a stdout line starting with `prefix`; returns the line.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.stdout_text();
            if let Some(line) = text.lines().find(|l| l.starts_with(prefix)) {
                if text.contains(&format!("{line}\n")) {
                    return line.to_owned();
                }
            }
            if self.try_wait().is_some() || Instant::now() >= deadline {
                thread::sleep(Duration::from_millis(20));
                let status = self.try_wait();
                panic!(
                    "`{}` did not print a line starting with {prefix:?} (exited: {:?})\nstdout: {}\nstderr: {}",
                    self.name,
                    status,
                    self.stdout_text(),
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
        self.join_output();
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// openssl s_server and the python3 peers
// ---------------------------------------------------------------------------

/// A running `openssl s_server` and the port it listens on.
pub struct OpensslServer {
    pub proc: Proc,
    pub port: u16,
}

/// Starts `openssl s_server -accept 127.0.0.1:0 ARGS` (or `[::1]:0` when
/// `ipv6`) and reads the port it picked from its `ACCEPT` line. Needs
/// non-quiet mode (no `-quiet`), which prints that line.
pub fn s_server(
    spawn_args: &[&str],
    cwd: Option<&Path>,
    sink: Option<Sink>,
    ipv6: bool,
) -> OpensslServer {
    let accept = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
    let mut spawn = Spawn::new("openssl")
        .args(["s_server", "-accept", accept])
        .args(spawn_args);
    if let Some(cwd) = cwd {
        spawn = spawn.cwd(cwd);
    }
    if let Some(sink) = sink {
        spawn.stdout = Stdout::Sink(sink);
    }
    let mut proc = spawn.start();
    let line = proc.wait_for_line("ACCEPT", TIMEOUT);
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|&p| p != 0)
        .unwrap_or_else(|| panic!("cannot read the port from s_server's line {line:?}"));
    OpensslServer { proc, port }
}

/// Starts `s_server -www ARGS` presenting `chain` (PEM certificates, leaf
/// first; the rest sent as its chain) with `key_file`, on 127.0.0.1 or ::1.
/// Accepts the 1024-bit RSA and SHA-1 test certificates too.
pub fn s_server_chain(
    chain: &[String],
    key_file: &Path,
    dir: &TempDir,
    args: &[&str],
    ipv6: bool,
) -> OpensslServer {
    assert!(!chain.is_empty(), "no certificate to serve");
    let leaf = dir.write("leaf.pem", chain[0].as_bytes());
    let mut all = vec![
        "-www".to_owned(),
        "-cert".to_owned(),
        leaf.to_str().unwrap().to_owned(),
        "-key".to_owned(),
        key_file.to_str().unwrap().to_owned(),
        "-cipher".to_owned(),
        "DEFAULT:@SECLEVEL=0".to_owned(),
    ];
    if chain.len() > 1 {
        let rest = dir.write("chain.pem", chain[1..].concat().as_bytes());
        all.push("-cert_chain".into());
        all.push(rest.to_str().unwrap().to_owned());
    }
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    s_server(&all, None, None, ipv6)
}

/// The arguments that make `s_server` present `ca/server.pem` with its
/// intermediate.
pub fn server_cert_args() -> Vec<String> {
    vec![
        "-cert".into(),
        ca_str("server.pem"),
        "-cert_chain".into(),
        ca_str("intermediate-ca.pem"),
        "-key".into(),
        ca_str("server.key"),
    ]
}

/// A python3 TLS server that answers one connection (see
/// [`python_server`]).
pub const PY_ONE_SHOT_SERVER: &str = r#"
import socket, ssl, sys
cert, key, mode, response_path = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print("PORT", ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
ls.close()
s = ctx.wrap_socket(raw, server_side=True)
request = b""
if mode.endswith("-after-request"):
    while b"\r\n\r\n" not in request:
        chunk = s.recv(4096)
        if not chunk:
            break
        request += chunk
with open(response_path, "rb") as f:
    s.sendall(f.read())
if mode.startswith("abrupt"):
    # TCP FIN without TLS close_notify: SSLSocket.shutdown() drops the TLS
    # layer and shuts the TCP socket down.
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    print("ABRUPT", flush=True)
else:
    try:
        s.unwrap()
    except (OSError, ssl.SSLError):
        pass
    s.close()
    print("NOTIFY", flush=True)
"#;

/// How [`python_server`] ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyClose {
    /// TLS `close_notify`, then close.
    CloseNotify,
    /// TCP FIN without `close_notify` (a truncation).
    Abrupt,
}

/// Starts a python3 TLS server (`ca/server.pem`) on 127.0.0.1 that accepts
/// one connection, optionally waits for a request head (`\r\n\r\n`), sends
/// `response` and closes as `close` says. Returns it and its port.
pub fn python_server(
    dir: &TempDir,
    response: &[u8],
    wait_for_request: bool,
    close: PyClose,
) -> (Proc, u16) {
    let response_path = dir.path().join("python-response.bin");
    std::fs::write(&response_path, response).expect("write the response file");
    let mode = match (close, wait_for_request) {
        (PyClose::CloseNotify, false) => "notify",
        (PyClose::CloseNotify, true) => "notify-after-request",
        (PyClose::Abrupt, false) => "abrupt",
        (PyClose::Abrupt, true) => "abrupt-after-request",
    };
    let mut proc = Spawn::new("python3")
        .args(["-c", PY_ONE_SHOT_SERVER])
        .arg(ca_str("server.pem"))
        .arg(ca_str("server.key"))
        .arg(mode)
        .arg(response_path.to_str().unwrap())
        .start();
    let line = proc.wait_for_line("PORT ", TIMEOUT);
    let port = line[5..].trim().parse().expect("python's port");
    (proc, port)
}

/// Python helpers for a raw-socket peer that watches how our side ends a
/// connection, to prepend to its script. `send_all(sock, data)` and
/// `read_to_end(sock, pace)` print one line per finding:
/// `SEND-ERROR <errno name> <seconds>` when a write fails,
/// `ALERT <level> <description> <seconds>` for each plaintext alert record
/// in what arrives (a TLS 1.2 handshake, or a refused ClientHello), and
/// `END eof|reset|error <seconds>` for how the stream ended; seconds count
/// from the script's start. See [`PeerReport`].
pub const PY_PEER_WATCH: &str = r#"
import errno, socket, struct, sys, time
T0 = time.monotonic()

def since():
    return "%.3f" % (time.monotonic() - T0)

def send_all(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError as e:
        name = errno.errorcode.get(e.errno, "timeout") if e.errno else "timeout"
        print("SEND-ERROR", name, since(), flush=True)
        return False

def read_to_end(sock, pace=0.0):
    pending = b""
    while True:
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            print("END reset", since(), flush=True)
            return
        except OSError as e:
            print("END error", since(), e, flush=True)
            return
        if not data:
            print("END eof", since(), flush=True)
            return
        pending += data
        while len(pending) >= 5:
            length = struct.unpack(">H", pending[3:5])[0]
            if len(pending) < 5 + length:
                break
            if pending[0] == 21 and length == 2:
                print("ALERT", pending[5], pending[6], since(), flush=True)
            pending = pending[5 + length:]
        if pace:
            time.sleep(pace)
"#;

/// python3: opens `argv[2]` TCP connections to port `argv[1]` and prints
/// HELD; closes the first when a line arrives on stdin and prints CLOSED;
/// holds the rest until stdin ends.
pub const PY_HOLDER: &str = r#"
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("HELD", flush=True)
sys.stdin.readline()
held.pop(0).close()
print("CLOSED", flush=True)
sys.stdin.read()
"#;

/// python3 TLS client: completes the handshake, then sends one byte every
/// 200 ms (a request head that never ends) for 5 s; prints `CUT SECONDS`
/// (since the connection) when the server ended the connection, or `HELD`
/// if it never did.
pub const PY_DRIPPING_CLIENT: &str = r#"
import socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t0 = time.monotonic()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.settimeout(0.2)
try:
    for _ in range(25):
        s.sendall(b"G")
        try:
            if not s.recv(4096):
                raise ConnectionResetError
        except socket.timeout:
            pass
    print("HELD", flush=True)
except (OSError, ssl.SSLError):
    print("CUT %.2f" % (time.monotonic() - t0), flush=True)
"#;

/// What a peer using [`PY_PEER_WATCH`] printed.
#[derive(Debug, Default)]
pub struct PeerReport {
    /// `(level, description, seconds)` of each alert received.
    pub alerts: Vec<(u8, u8, f64)>,
    /// The errno names of failed writes.
    pub send_errors: Vec<String>,
    /// `eof`, `reset` or `error` (empty if the script did not get there).
    pub end: String,
}

impl PeerReport {
    pub fn parse(stdout: &str) -> Self {
        let mut report = PeerReport::default();
        for line in stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ALERT", level, description, at, ..] => report.alerts.push((
                    level.parse().unwrap(),
                    description.parse().unwrap(),
                    at.parse().unwrap(),
                )),
                ["SEND-ERROR", name, ..] => report.send_errors.push(name.to_string()),
                ["END", how, ..] => report.end = how.to_string(),
                _ => {}
            }
        }
        report
    }

    /// The one fatal alert received, intact, and a clean end after it: no
    /// write refused with a reset, and FIN rather than RST.
    pub fn assert_fatal_alert_then_eof(&self, description: Option<u8>, what: &str) {
        let fatal: Vec<_> = self.alerts.iter().filter(|a| a.0 == 2).collect();
        assert_eq!(fatal.len(), 1, "{what}: one fatal alert expected: {self:?}");
        if let Some(description) = description {
            assert_eq!(fatal[0].1, description, "{what}: {self:?}");
        }
        assert!(
            self.send_errors.is_empty(),
            "{what}: writes failed: {self:?}"
        );
        assert_eq!(self.end, "eof", "{what}: {self:?}");
    }
}

// ---------------------------------------------------------------------------
// Running the reactor
// ---------------------------------------------------------------------------

/// Steps the reactor until `done` says so; the test fails after `timeout`,
/// naming `what` it waited for.
pub fn run_until(
    reactor: &mut Reactor,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&mut Reactor) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if done(reactor) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        let wait = (deadline - now).min(Duration::from_millis(20));
        reactor.step(Some(wait)).expect("reactor step");
    }
}

/// Steps the reactor until `proc` printed `needle` on stdout.
pub fn run_until_stdout(reactor: &mut Reactor, proc: &mut Proc, needle: &[u8]) {
    let what = format!(
        "`{}` to print {:?}",
        proc.name,
        String::from_utf8_lossy(needle)
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if contains(&proc.stdout(), needle) {
            return;
        }
        if proc.try_wait().is_some() {
            // It exited: its last output may still be on the way; this
            // returns once it is there, and panics (naming why) if it never
            // comes.
            proc.wait_for_stdout(needle, Duration::from_millis(100));
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        reactor
            .step(Some(Duration::from_millis(20)))
            .expect("reactor step");
    }
}

/// Steps the reactor for `duration` (to let late events arrive).
pub fn run_for(reactor: &mut Reactor, duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        reactor.step(Some(wait)).expect("reactor step");
    }
}

// ---------------------------------------------------------------------------
// Recording a socket's signals
// ---------------------------------------------------------------------------

/// An [`Error`] reduced to what tests compare (errors are not `Clone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caught {
    Truncated,
    ClosedDuringHandshake,
    CertificateVerification(Vec<SslErrorKind>),
    AlertReceived(u8),
    /// A handshake refused for want of common parameters: by whom, and the
    /// parameter when known.
    Refused(RefusedBy, Option<HandshakeParameter>),
    Handshake(String),
    Tls(String),
    Network(io::ErrorKind),
    ConnectionFailed(io::ErrorKind),
    Timeout(TimeoutKind),
    Other(String),
}

impl Caught {
    pub fn of(error: &Error) -> Self {
        match error {
            Error::Truncated => Caught::Truncated,
            Error::ClosedDuringHandshake => Caught::ClosedDuringHandshake,
            Error::CertificateVerification(errors) => {
                Caught::CertificateVerification(errors.iter().map(SslError::kind).collect())
            }
            Error::AlertReceived(alert) => Caught::AlertReceived(alert.description()),
            Error::HandshakeRefused(r) => Caught::Refused(r.refused_by(), r.parameter()),
            Error::Handshake(e) => Caught::Handshake(e.to_string()),
            Error::Tls(e) => Caught::Tls(e.to_string()),
            Error::Network(e) => Caught::Network(e.kind()),
            Error::ConnectionFailed { source, .. } => Caught::ConnectionFailed(source.kind()),
            Error::Timeout(kind) => Caught::Timeout(*kind),
            other => Caught::Other(format!("{other:?}")),
        }
    }
}

/// What a socket's signals reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Connected,
    HandshakeComplete,
    PeerVerifyError(SslErrorKind),
    SslErrors(Vec<SslErrorKind>),
    ReadChannelFinished,
    Disconnected,
    Error(Caught),
}

/// The record a [`probe`] keeps.
#[derive(Default)]
pub struct Probe {
    pub events: Vec<Event>,
    /// Plaintext received (when the probe collects it).
    pub data: Vec<u8>,
    /// `Display` of every error, in order.
    pub error_texts: Vec<String>,
    /// The `ssl_errors` payloads, in order.
    pub ssl_errors: Vec<Vec<SslError>>,
    /// Seen from the `handshake_complete` slot.
    pub protocol: Option<SslProtocol>,
    pub cipher: Option<String>,
    pub cipher_algorithm: Option<&'static str>,
    pub chain: Vec<Certificate>,
    /// `peer_verify_errors()` seen from the `handshake_complete` slot.
    pub verify_errors: Vec<SslErrorKind>,
    /// `alpn_protocol()` seen from the `handshake_complete` slot.
    pub alpn: Option<Vec<u8>>,
    /// `is_session_resumed()` and `ocsp_response()` seen from the
    /// `handshake_complete` slot.
    pub resumed: bool,
    pub ocsp: Option<Vec<u8>>,
    pub bytes_written: u64,
    /// Descriptions of the alerts received and sent.
    pub alerts_received: Vec<u8>,
    pub alerts_sent: Vec<u8>,
    /// What came with `disconnected`.
    pub stats: Option<ConnectionStatistics>,
}

impl Probe {
    pub fn has(&self, event: &Event) -> bool {
        self.events.contains(event)
    }

    pub fn position(&self, event: &Event) -> Option<usize> {
        self.events.iter().position(|e| e == event)
    }

    pub fn disconnected(&self) -> bool {
        self.has(&Event::Disconnected)
    }

    pub fn handshake_done(&self) -> bool {
        self.has(&Event::HandshakeComplete)
    }

    pub fn errors(&self) -> Vec<Caught> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Error(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

pub type Shared = Rc<RefCell<Probe>>;

/// Connects recording slots to every signal of `socket`. With
/// `collect_data`, a `ready_read` slot takes all received plaintext into
/// [`Probe::data`].
pub fn probe(socket: &mut SslSocket, collect_data: bool) -> Shared {
    let shared: Shared = Rc::default();
    let p = shared.clone();
    socket
        .connected()
        .connect(move |_, _, _| p.borrow_mut().events.push(Event::Connected));
    let p = shared.clone();
    socket.handshake_complete().connect(move |s, _, _| {
        let mut p = p.borrow_mut();
        p.events.push(Event::HandshakeComplete);
        p.protocol = s.protocol();
        p.cipher = s.session_cipher();
        p.cipher_algorithm = s.session_cipher_algorithm();
        p.chain = s.peer_certificate_chain();
        p.alpn = s.alpn_protocol();
        p.resumed = s.is_session_resumed();
        p.ocsp = s.ocsp_response();
        p.verify_errors = s.peer_verify_errors().iter().map(SslError::kind).collect();
    });
    let p = shared.clone();
    socket
        .peer_verify_error()
        .connect(move |_, _, e| p.borrow_mut().events.push(Event::PeerVerifyError(e.kind())));
    let p = shared.clone();
    socket.ssl_errors().connect(move |_, _, errors| {
        let mut p = p.borrow_mut();
        p.events.push(Event::SslErrors(
            errors.iter().map(SslError::kind).collect(),
        ));
        p.ssl_errors.push(errors.clone());
    });
    let p = shared.clone();
    socket
        .read_channel_finished()
        .connect(move |_, _, _| p.borrow_mut().events.push(Event::ReadChannelFinished));
    let p = shared.clone();
    socket.disconnected().connect(move |_, _, stats| {
        let mut p = p.borrow_mut();
        p.events.push(Event::Disconnected);
        p.stats = Some((**stats).clone());
    });
    let p = shared.clone();
    socket.error_occurred().connect(move |_, _, e| {
        let mut p = p.borrow_mut();
        p.events.push(Event::Error(Caught::of(e)));
        p.error_texts.push(e.to_string());
    });
    let p = shared.clone();
    socket
        .alert_received()
        .connect(move |_, _, a| p.borrow_mut().alerts_received.push(a.description()));
    let p = shared.clone();
    socket
        .alert_sent()
        .connect(move |_, _, a| p.borrow_mut().alerts_sent.push(a.description()));
    let p = shared.clone();
    socket
        .bytes_written()
        .connect(move |_, _, &n| p.borrow_mut().bytes_written += n);
    if collect_data {
        let p = shared.clone();
        socket.ready_read().connect(move |s, _, _| {
            let data = s.read_all();
            p.borrow_mut().data.extend_from_slice(&data);
        });
    }
    shared
}

/// A client socket with a probe, not connected yet.
pub fn client_socket(
    reactor: &mut Reactor,
    config: SslConfiguration,
    collect: bool,
) -> (SocketId, Shared) {
    let id = reactor.ssl_socket(config);
    let p = probe(reactor.socket(id).unwrap(), collect);
    (id, p)
}

// ---------------------------------------------------------------------------
// A deterministic data pattern
// ---------------------------------------------------------------------------

/// The pattern's byte at `offset`: not periodic over any short range, so a
/// lost, repeated or reordered segment is caught.
#[inline]
pub fn pattern_byte(offset: u64) -> u8 {
    let x = (offset ^ (offset >> 17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8
}

/// Fills `buf` with the pattern from `offset`.
pub fn fill_pattern(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + i as u64);
    }
}

/// `len` bytes of the pattern from offset 0.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill_pattern(&mut v, 0);
    v
}

/// Checks a stream against the pattern as it arrives.
#[derive(Debug, Default, Clone)]
pub struct PatternChecker {
    /// Bytes checked so far.
    pub received: u64,
    /// Offset of the first byte that differed.
    pub first_mismatch: Option<u64>,
}

impl PatternChecker {
    pub fn feed(&mut self, data: &[u8]) {
        if self.first_mismatch.is_none() {
            for (i, &b) in data.iter().enumerate() {
                let offset = self.received + i as u64;
                if b != pattern_byte(offset) {
                    self.first_mismatch = Some(offset);
                    break;
                }
            }
        }
        self.received += data.len() as u64;
    }
}

/// Finds `marker` in a stream, then checks the next `len` bytes against
/// the pattern and counts whatever follows them. For peers that print
/// other text before the data (openssl s_server on stdout).
pub struct MarkedPatternChecker {
    marker: Vec<u8>,
    /// The tail of the text before the marker (to find a marker split
    /// across reads).
    before: Vec<u8>,
    found: bool,
    len: u64,
    pub checker: PatternChecker,
    /// Bytes received after the `len` pattern bytes.
    pub after: Vec<u8>,
}

impl MarkedPatternChecker {
    pub fn new(marker: &[u8], len: u64) -> Self {
        Self {
            marker: marker.to_vec(),
            before: Vec::new(),
            found: false,
            len,
            checker: PatternChecker::default(),
            after: Vec::new(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.found && self.checker.received == self.len
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        if !self.found {
            let keep = self.before.len();
            self.before.extend_from_slice(data);
            match find(&self.before, &self.marker) {
                Some(at) => {
                    self.found = true;
                    let start = at + self.marker.len() - keep;
                    data = &data[start..];
                    self.before.clear();
                }
                None => {
                    let tail = self.before.len().saturating_sub(self.marker.len());
                    self.before.drain(..tail);
                    return;
                }
            }
        }
        let left = (self.len - self.checker.received) as usize;
        let n = left.min(data.len());
        self.checker.feed(&data[..n]);
        if self.after.len() < 4096 {
            self.after.extend_from_slice(&data[n..]);
        }
    }
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/// A directory removed (with its contents) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sslsocket-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` in the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` in the directory; returns its path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, data).expect("write a temporary file");
        path
    }

    /// Writes `len` bytes of the pattern to `name` without holding them all.
    pub fn write_pattern(&self, name: &str, len: u64) -> PathBuf {
        let path = self.0.join(name);
        let mut file = io::BufWriter::new(std::fs::File::create(&path).expect("create a file"));
        let mut chunk = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(chunk.len() as u64) as usize;
            fill_pattern(&mut chunk[..n], offset);
            file.write_all(&chunk[..n]).expect("write a file");
            offset += n as u64;
        }
        file.flush().expect("flush a file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// A loopback TCP relay
// ---------------------------------------------------------------------------

/// How a [`Relay`] forwards bytes.
#[derive(Debug, Clone, Copy)]
pub enum RelayMode {
    /// As they come.
    Plain,
    /// One byte per write, with TCP_NODELAY, and a short pause every
    /// `pause_every` bytes, so the peer receives 1-byte segments.
    OneByte { pause_every: usize },
    /// Random segment sizes (1..=max) with random pauses (0..=max_pause_us
    /// microseconds), from a seed.
    Jitter {
        seed: u64,
        max_segment: usize,
        max_pause_us: u64,
    },
}

/// A thread that accepts one connection on 127.0.0.1 and forwards it to a
/// target in both directions. Dropping it closes both connections and
/// joins its threads.
pub struct Relay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes forwarded client→target and target→client.
    pub forwarded: Arc<[AtomicU64; 2]>,
}

impl Relay {
    pub fn start(target: SocketAddr, mode: RelayMode) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let forwarded: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (stop2, streams2, forwarded2) = (stop.clone(), streams.clone(), forwarded.clone());
        let thread = thread::spawn(move || {
            let client = loop {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => return,
                }
            };
            drop(listener);
            client.set_nonblocking(false).unwrap();
            let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                return;
            };
            for s in [&client, &server] {
                s.set_nodelay(true).unwrap();
                streams2.lock().unwrap().push(s.try_clone().unwrap());
            }
            let up = {
                let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (stop, fw) = (stop2.clone(), forwarded2.clone());
                thread::spawn(move || pump(from, to, mode, 1, &stop, &fw[0]))
            };
            let down = {
                let (stop, fw) = (stop2.clone(), forwarded2.clone());
                thread::spawn(move || pump(server, client, mode, 2, &stop, &fw[1]))
            };
            let _ = up.join();
            let _ = down.join();
        });
        Relay {
            addr,
            stop,
            streams,
            thread: Some(thread),
            forwarded,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.streams.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..=max`.
    pub fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mode: RelayMode,
    salt: u64,
    stop: &AtomicBool,
    count: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut rng = match mode {
        RelayMode::Jitter { seed, .. } => Rng::new(seed.wrapping_mul(31).wrapping_add(salt)),
        _ => Rng::new(salt),
    };
    let mut since_pause = 0usize;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let data = &buf[..n];
        // Counted as written, so a reader that has everything also sees
        // everything counted.
        let mut send = |bytes: &[u8]| {
            let ok = to.write_all(bytes).is_ok();
            if ok {
                count.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            ok
        };
        let ok = match mode {
            RelayMode::Plain => send(data),
            RelayMode::OneByte { pause_every } => data.iter().all(|b| {
                let ok = send(std::slice::from_ref(b));
                since_pause += 1;
                if pause_every > 0 && since_pause >= pause_every {
                    since_pause = 0;
                    thread::sleep(Duration::from_micros(50));
                }
                ok
            }),
            RelayMode::Jitter {
                max_segment,
                max_pause_us,
                ..
            } => {
                let mut rest = data;
                let mut ok = true;
                while ok && !rest.is_empty() {
                    let k = (1 + rng.upto(max_segment as u64 - 1) as usize).min(rest.len());
                    ok = send(&rest[..k]);
                    rest = &rest[k..];
                    let pause = rng.upto(max_pause_us);
                    if pause > 0 {
                        thread::sleep(Duration::from_micros(pause));
                    }
                }
                ok
            }
        };
        if !ok {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Reads lines from a reader (for parsing a child's output in tests).
pub fn lines_of(data: &[u8]) -> Vec<String> {
    BufReader::new(data)
        .lines()
        .map(|l| l.unwrap_or_default())
        .collect()
}

// ---------------------------------------------------------------------------
// A loopback relay that injects faults
// ---------------------------------------------------------------------------

/// Which way bytes go through a [`FaultRelay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// From the connecting client to the target.
    ToTarget,
    /// From the target back to the client.
    ToClient,
}

impl Flow {
    fn index(self) -> usize {
        match self {
            Flow::ToTarget => 0,
            Flow::ToClient => 1,
        }
    }
}

/// What a [`FaultRelay`] does once `after` bytes went one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Forwards exactly `after` bytes, then closes both TCP connections with
    /// FIN (no TLS `close_notify`), draining what either peer still sends so
    /// that no RST follows.
    Truncate,
    /// Forwards exactly `after` bytes, then stops reading from the victim
    /// (the peer the bytes flow to) and, as soon as the victim has sent
    /// something that stays unread, closes its connection: Linux answers a
    /// close with unread data with a RST (std has no stable SO_LINGER).
    /// The victim must send something after the fault ([`FaultRelay::fired`]
    /// tells when to make it).
    Reset,
    /// Forwards exactly `after` bytes, then replaces every further byte of
    /// that direction with seeded pseudo-random garbage (same lengths);
    /// the other direction is forwarded as before.
    Garbage,
    /// Forwards exactly `after` bytes, then forwards nothing more in either
    /// direction and keeps both connections open until dropped.
    Stall,
}

/// A fault: `kind` once `after` bytes went the `flow` way.
#[derive(Debug, Clone, Copy)]
pub struct FaultAt {
    pub kind: FaultKind,
    pub flow: Flow,
    pub after: u64,
    /// With `true`, the relay follows the TLS records the `flow` way and
    /// holds back the part of the record in which the fault falls (from
    /// the record's first byte up to `after`, see
    /// [`FaultState::held_from`]): [`FaultRelay::release_data`] lets it go,
    /// [`FaultRelay::release_fault`] lets the fault fire once it went. The
    /// test controls the timing: released together (before the victim runs
    /// again), the victim reads a partial record and the fault in one go;
    /// released separately, it reads them apart.
    pub hold: bool,
}

/// What a [`FaultRelay`] reports to the test.
#[derive(Default)]
pub struct FaultState {
    /// The fault happened (the first `after` bytes were all written).
    pub fired: AtomicBool,
    /// A RST was forced on the victim's connection ([`FaultKind::Reset`]).
    pub reset_sent: AtomicBool,
    /// A client connected and the relay reached the target.
    pub connected: AtomicBool,
    /// Bytes written towards the target and towards the client.
    pub forwarded: [AtomicU64; 2],
    /// Why the relay could not do its job, if it could not.
    pub failure: Mutex<Option<String>>,
    /// A held fault ([`FaultAt::hold`]) is armed and waits for the test.
    pub holding: AtomicBool,
    pub data_released: AtomicBool,
    pub fault_released: AtomicBool,
    /// A held fault: the stream offset of the first byte held back (the
    /// start of the TLS record the fault falls in; `after` when it falls on
    /// a record boundary); `u64::MAX` until known.
    pub held_from: AtomicU64,
}

/// A single-threaded relay on 127.0.0.1 for one connection, shaping the
/// stream as a [`RelayMode`] says and injecting at most one [`FaultAt`].
/// Unlike [`Relay`], one thread owns both connections (no clones of the
/// sockets), so closing one really closes it (needed to force a RST).
/// Dropping it stops the thread and closes whatever is still open.
pub struct FaultRelay {
    pub addr: SocketAddr,
    pub state: Arc<FaultState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultRelay {
    pub fn start(target: SocketAddr, shaping: RelayMode, fault: Option<FaultAt>) -> FaultRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(FaultState::default());
        state.held_from.store(u64::MAX, Ordering::SeqCst);
        let (stop2, state2) = (stop.clone(), state.clone());
        let thread = thread::spawn(move || {
            let client = loop {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => {
                        *state2.failure.lock().unwrap() = Some(format!("accept: {e}"));
                        return;
                    }
                }
            };
            drop(listener);
            let target = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
                Ok(s) => s,
                Err(e) => {
                    *state2.failure.lock().unwrap() = Some(format!("connect to the target: {e}"));
                    return;
                }
            };
            for s in [&client, &target] {
                s.set_nodelay(true).unwrap();
                s.set_nonblocking(true).unwrap();
            }
            state2.connected.store(true, Ordering::SeqCst);
            FaultLoop::new([client, target], shaping, fault, &state2).run(&stop2);
        });
        FaultRelay {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether the fault happened.
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// Whether a held fault is armed (see [`FaultAt::hold`]).
    pub fn holding(&self) -> bool {
        self.state.holding.load(Ordering::SeqCst)
    }

    /// See [`FaultState::held_from`].
    pub fn held_from(&self) -> u64 {
        self.state.held_from.load(Ordering::SeqCst)
    }

    /// Lets a held fault's last bytes go out.
    pub fn release_data(&self) {
        self.state.data_released.store(true, Ordering::SeqCst);
    }

    /// Lets a held fault fire once its last bytes went out.
    pub fn release_fault(&self) {
        self.state.fault_released.store(true, Ordering::SeqCst);
    }

    /// Bytes written the `flow` way.
    pub fn forwarded(&self, flow: Flow) -> u64 {
        self.state.forwarded[flow.index()].load(Ordering::SeqCst)
    }

    /// Fails the test if the relay could not do its job.
    pub fn assert_ok(&self) {
        if let Some(failure) = self.state.failure.lock().unwrap().as_ref() {
            panic!("the fault relay failed: {failure}");
        }
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One direction of a [`FaultLoop`].
struct Leg {
    /// Indexes into the stream array: 0 is the client, 1 the target.
    from: usize,
    to: usize,
    pending: Vec<u8>,
    start: usize,
    eof: bool,
    shut: bool,
    read_total: u64,
    rng: Rng,
    since_pause: usize,
    /// The current jitter segment's remaining bytes.
    segment_left: usize,
}

impl Leg {
    fn pending_len(&self) -> usize {
        self.pending.len() - self.start
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopPhase {
    Forwarding,
    /// Truncated: draining both peers until they close.
    Draining,
    /// Waiting for unread data from the victim, then closing it.
    Resetting,
    Stalled,
    Done,
}

/// Follows the TLS record framing of a byte stream (5-byte headers, the
/// last two the body's length).
#[derive(Default)]
struct RecordTracker {
    /// Stream offset of the record being read.
    start: u64,
    header: Vec<u8>,
    body_left: u64,
}

impl RecordTracker {
    /// Feeds the bytes at stream offset `offset`; calls `found(start, end)`
    /// for every record header completed.
    fn feed(&mut self, mut offset: u64, data: &[u8], mut found: impl FnMut(u64, u64)) {
        let mut rest = data;
        while !rest.is_empty() {
            if self.body_left > 0 {
                let k = (self.body_left as usize).min(rest.len());
                self.body_left -= k as u64;
                rest = &rest[k..];
                offset += k as u64;
                continue;
            }
            if self.header.is_empty() {
                self.start = offset;
            }
            self.header.push(rest[0]);
            rest = &rest[1..];
            offset += 1;
            if self.header.len() == 5 {
                self.body_left = u64::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header.clear();
                found(self.start, self.start + 5 + self.body_left);
            }
        }
    }

    /// Where a record's header is being read, if one is.
    fn partial_header_at(&self) -> Option<u64> {
        (!self.header.is_empty()).then_some(self.start)
    }
}

struct FaultLoop<'a> {
    streams: [Option<TcpStream>; 2],
    legs: [Leg; 2],
    shaping: RelayMode,
    fault: Option<FaultAt>,
    records: RecordTracker,
    /// With a held fault: no byte from this offset on goes out until the
    /// test releases it.
    hold_from: Option<u64>,
    armed: bool,
    garbage: Rng,
    phase: LoopPhase,
    state: &'a FaultState,
}

impl<'a> FaultLoop<'a> {
    fn new(
        streams: [TcpStream; 2],
        shaping: RelayMode,
        fault: Option<FaultAt>,
        state: &'a FaultState,
    ) -> Self {
        let seed = match shaping {
            RelayMode::Jitter { seed, .. } => seed,
            _ => 0x000f_a017,
        };
        let leg = |from, to, salt: u64| Leg {
            from,
            to,
            pending: Vec::new(),
            start: 0,
            eof: false,
            shut: false,
            read_total: 0,
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(salt)),
            since_pause: 0,
            segment_left: 0,
        };
        let [client, target] = streams;
        Self {
            streams: [Some(client), Some(target)],
            legs: [leg(0, 1, 1), leg(1, 0, 2)],
            shaping,
            fault,
            records: RecordTracker::default(),
            hold_from: None,
            armed: false,
            garbage: Rng::new(seed ^ 0x6a7b_a6e0),
            phase: LoopPhase::Forwarding,
            state,
        }
    }

    fn fail(&mut self, why: String) {
        self.state.failure.lock().unwrap().get_or_insert(why);
        self.streams = [None, None];
        self.phase = LoopPhase::Done;
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) && self.phase != LoopPhase::Done {
            let progress = match self.phase {
                LoopPhase::Forwarding => self.forward(&mut buf),
                LoopPhase::Draining => self.drain(&mut buf),
                LoopPhase::Resetting => self.reset(),
                LoopPhase::Stalled | LoopPhase::Done => false,
            };
            if !progress {
                thread::sleep(Duration::from_micros(200));
            }
        }
        // Dropping closes whatever is open.
    }

    fn forward(&mut self, buf: &mut [u8]) -> bool {
        let mut progress = false;
        for i in 0..2 {
            if self.phase != LoopPhase::Forwarding {
                break;
            }
            progress |= self.read_leg(i, buf);
            progress |= self.write_leg(i);
            let leg = &mut self.legs[i];
            if leg.eof && leg.pending_len() == 0 && !leg.shut {
                leg.shut = true;
                if let Some(s) = &self.streams[leg.to] {
                    let _ = s.shutdown(Shutdown::Write);
                }
            }
            self.maybe_fire(i);
        }
        if self.legs.iter().all(|l| l.shut) {
            self.phase = LoopPhase::Done;
        }
        progress
    }

    fn read_leg(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let leg = &self.legs[i];
        if leg.eof || leg.pending_len() >= 256 * 1024 {
            return false;
        }
        let Some(stream) = self.streams[leg.from].as_mut() else {
            return false;
        };
        match stream.read(buf) {
            Ok(0) => {
                self.legs[i].eof = true;
                true
            }
            Ok(n) => {
                self.ingest(i, n, buf);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                // A peer reset its connection: pass that on as a close.
                let _ = e;
                self.legs[i].eof = true;
                true
            }
        }
    }

    fn ingest(&mut self, i: usize, n: usize, buf: &[u8]) {
        let data = &buf[..n];
        let leg = &mut self.legs[i];
        let Some(fault) = self.fault.filter(|f| f.flow.index() == i) else {
            leg.pending.extend_from_slice(data);
            return;
        };
        if self.armed {
            if fault.kind == FaultKind::Garbage {
                for _ in 0..n {
                    leg.pending.push(self.garbage.next() as u8);
                }
            }
            return;
        }
        let room = fault.after.saturating_sub(leg.read_total);
        let take = (room as usize).min(n);
        if fault.hold && self.hold_from.is_none() {
            let after = fault.after;
            let hold_from = &mut self.hold_from;
            self.records
                .feed(leg.read_total, &data[..take], |start, end| {
                    if start < after && after < end && hold_from.is_none() {
                        *hold_from = Some(start);
                    }
                });
        }
        leg.pending.extend_from_slice(&data[..take]);
        leg.read_total += take as u64;
        if leg.read_total >= fault.after {
            self.armed = true;
            if fault.hold {
                // On a record boundary, or inside a header: nothing or the
                // partial header is held.
                let from = self
                    .hold_from
                    .or(self.records.partial_header_at())
                    .unwrap_or(fault.after);
                self.hold_from = Some(from);
                self.state.held_from.store(from, Ordering::SeqCst);
                self.state.holding.store(true, Ordering::SeqCst);
            }
            if fault.kind == FaultKind::Garbage {
                for _ in take..n {
                    leg.pending.push(self.garbage.next() as u8);
                }
                self.state.fired.store(true, Ordering::SeqCst);
            }
        }
    }

    /// How many more bytes leg `i` may write now (a held fault holds back
    /// the record it falls in, and a header not complete yet).
    fn write_allowance(&self, i: usize) -> u64 {
        let held = self.fault.is_some_and(|f| f.hold && f.flow.index() == i)
            && !self.state.data_released.load(Ordering::SeqCst);
        if !held {
            return u64::MAX;
        }
        let limit = self
            .hold_from
            .or(self.records.partial_header_at())
            .unwrap_or(u64::MAX);
        limit.saturating_sub(self.state.forwarded[i].load(Ordering::SeqCst))
    }

    fn write_leg(&mut self, i: usize) -> bool {
        let shaping = self.shaping;
        let allowance = self.write_allowance(i);
        if allowance == 0 {
            return false;
        }
        let leg = &mut self.legs[i];
        let Some(stream) = self.streams[leg.to].as_mut() else {
            return false;
        };
        let mut written = 0usize;
        // Bounded work per turn, so that the other direction gets its turn.
        while leg.pending_len() > 0 && written < 64 * 1024 && (written as u64) < allowance {
            let want = match shaping {
                RelayMode::Plain => leg.pending_len(),
                RelayMode::OneByte { .. } => 1,
                RelayMode::Jitter { max_segment, .. } => {
                    if leg.segment_left == 0 {
                        leg.segment_left = 1 + leg.rng.upto(max_segment as u64 - 1) as usize;
                    }
                    leg.segment_left.min(leg.pending_len())
                }
            };
            let want = want.min((allowance - written as u64).min(usize::MAX as u64) as usize);
            match stream.write(&leg.pending[leg.start..leg.start + want]) {
                Ok(0) => break,
                Ok(k) => {
                    leg.start += k;
                    written += k;
                    self.state.forwarded[i].fetch_add(k as u64, Ordering::SeqCst);
                    match shaping {
                        RelayMode::Plain => {}
                        RelayMode::OneByte { pause_every } => {
                            leg.since_pause += k;
                            if pause_every > 0 && leg.since_pause >= pause_every {
                                leg.since_pause = 0;
                                thread::sleep(Duration::from_micros(50));
                            }
                        }
                        RelayMode::Jitter { max_pause_us, .. } => {
                            leg.segment_left -= k.min(leg.segment_left);
                            if leg.segment_left == 0 {
                                let pause = leg.rng.upto(max_pause_us);
                                if pause > 0 {
                                    thread::sleep(Duration::from_micros(pause));
                                }
                                // One segment per turn: pauses apply to both
                                // directions in turn.
                                break;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The receiver is gone: drop what it will never get.
                    leg.start = leg.pending.len();
                    leg.eof = true;
                    break;
                }
            }
        }
        if leg.start == leg.pending.len() {
            leg.pending.clear();
            leg.start = 0;
        }
        written > 0
    }

    /// Fires a Truncate, Reset or Stall fault once the first `after` bytes
    /// are all written.
    fn maybe_fire(&mut self, i: usize) {
        let Some(fault) = self.fault else { return };
        if !self.armed
            || fault.flow.index() != i
            || fault.kind == FaultKind::Garbage
            || self.legs[i].pending_len() > 0
            || self.state.fired.load(Ordering::SeqCst)
            || (fault.hold && !self.state.fault_released.load(Ordering::SeqCst))
        {
            return;
        }
        self.phase = match fault.kind {
            FaultKind::Truncate => {
                for s in self.streams.iter().flatten() {
                    let _ = s.shutdown(Shutdown::Write);
                }
                for leg in &mut self.legs {
                    leg.eof = false;
                }
                LoopPhase::Draining
            }
            FaultKind::Reset => LoopPhase::Resetting,
            FaultKind::Stall => LoopPhase::Stalled,
            FaultKind::Garbage => unreachable!(),
        };
        // After the fault is done (a FIN is out when a test sees this); a
        // test that saw the victim react first waits for it.
        self.state.fired.store(true, Ordering::SeqCst);
    }

    /// Reads and discards until both peers closed, then closes.
    fn drain(&mut self, buf: &mut [u8]) -> bool {
        let mut progress = false;
        for i in 0..2 {
            let from = self.legs[i].from;
            if self.legs[i].eof {
                continue;
            }
            let Some(stream) = self.streams[from].as_mut() else {
                self.legs[i].eof = true;
                continue;
            };
            match stream.read(buf) {
                Ok(0) => {
                    self.legs[i].eof = true;
                    progress = true;
                }
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.legs[i].eof = true;
                    progress = true;
                }
            }
        }
        if self.legs.iter().all(|l| l.eof) {
            self.streams = [None, None];
            self.phase = LoopPhase::Done;
        }
        progress
    }

    /// Closes the victim's connection as soon as it holds unread data.
    fn reset(&mut self) -> bool {
        let fault = self.fault.expect("a reset fault");
        let victim = self.legs[fault.flow.index()].to;
        let Some(stream) = self.streams[victim].as_ref() else {
            self.phase = LoopPhase::Done;
            return false;
        };
        let mut probe = [0u8; 1];
        match stream.peek(&mut probe) {
            Ok(0) => self.fail("the victim closed before a RST could be forced".into()),
            Ok(_) => {
                // Unread data: this close sends a RST (noted first, so
                // that the test never sees the RST before the note).
                self.state.reset_sent.store(true, Ordering::SeqCst);
                self.streams = [None, None];
                self.phase = LoopPhase::Done;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.fail(format!("peek at the victim: {e}")),
        }
        false
    }
}

/// SIGKILL to the process group `leader` leads (made by `process_group(0)`),
/// with procps' kill(1). The leader is not reaped yet, so its id cannot
/// name another group.
fn kill_process_group(leader: u32) {
    let status = Command::new(require("kill", "procps"))
        .args(["-s", "KILL", "--", &format!("-{leader}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("could not kill process group {leader}: {status:?}");
    }
}
