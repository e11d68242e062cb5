//! `examples/serve.rs`, the HTTPS static-file server, run as a process and
//! exercised by real clients on loopback: curl, `openssl s_client`,
//! `gnutls-cli`, and an sslsocket client for raw requests and a slow reader.
//!
//! Each server listens on `127.0.0.1:0` and announces its address on the
//! first line of stdout; every process is killed when its guard drops.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use sslsocket::Reactor;

/// The size of the large file: not a multiple of the server's chunk size.
const BIG: u64 = 20 * 1024 * 1024 + 12_345;

const SMALL_TEXT: &[u8] = b"Hello from serve.\nA second line.\n";

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// The serve example, built (or found up to date) by cargo.
fn serve_binary() -> PathBuf {
    common::example("serve")
}

/// A running `serve` and the address it announced.
struct Server {
    proc: Proc,
    port: u16,
}

impl Server {
    /// Starts `serve` with `ca/server.pem` on `127.0.0.1:0`, serving `root`.
    fn start(root: &Path, extra: &[&str]) -> Server {
        let mut proc = serve_command(&[
            "--cert",
            &ca_str("server.pem"),
            "--key",
            &ca_str("server.key"),
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().expect("UTF-8 path"),
        ])
        .args(extra)
        .start();
        let line = first_line(&mut proc);
        let address: SocketAddr = line
            .parse()
            .unwrap_or_else(|_| panic!("serve's first line is not an address: {line:?}"));
        assert_eq!(address.ip().to_string(), "127.0.0.1");
        assert_ne!(address.port(), 0);
        Server {
            proc,
            port: address.port(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Waits until the server's stderr contains `needle`; returns it all.
    fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.proc.stderr_text();
            if log.contains(needle) {
                return log;
            }
            assert!(
                self.proc.try_wait().is_none(),
                "serve exited while the test waited for {needle:?} in its log:\n{log}"
            );
            assert!(
                Instant::now() < deadline,
                "serve did not log {needle:?} within {TIMEOUT:?}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve_command(args: &[&str]) -> Spawn {
    Spawn::new(serve_binary().to_str().expect("UTF-8 path"))
        .args(args)
        .null_stdin()
}

/// The first line the process prints on stdout (it must come in time).
fn first_line(proc: &mut Proc) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out = proc.stdout_text();
        if let Some((line, _)) = out.split_once('\n') {
            return line.to_owned();
        }
        if proc.try_wait().is_some() || Instant::now() >= deadline {
            std::thread::sleep(Duration::from_millis(20));
            panic!(
                "serve printed no address (exited: {:?})\nstdout: {out}\nstderr: {}",
                proc.try_wait(),
                proc.stderr_text()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A served root with `hello.txt` (small) and `big.bin` (`BIG` bytes of the
/// test pattern), inside a base folder that also holds `secret.txt`, which
/// must never be served. The base is removed on drop.
struct Site {
    base: TempDir,
    root: PathBuf,
    secret: Vec<u8>,
}

impl Site {
    fn new(tag: &str) -> Site {
        let base = TempDir::new(tag);
        let root = base.path().join("root");
        std::fs::create_dir(&root).expect("create the root");
        std::fs::write(root.join("hello.txt"), SMALL_TEXT).expect("write hello.txt");
        let secret = format!("TOP-SECRET-{}-{tag}\n", std::process::id()).into_bytes();
        base.write("secret.txt", &secret);
        Site { base, root, secret }
    }

    fn with_big_file(tag: &str) -> Site {
        let site = Site::new(tag);
        let relative = Path::new("root").join("big.bin");
        site.base
            .write_pattern(relative.to_str().expect("UTF-8 path"), BIG);
        site
    }

    fn big(&self) -> Vec<u8> {
        std::fs::read(self.root.join("big.bin")).expect("read big.bin")
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// What a finished client process left.
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Output {
    fn of(mut proc: Proc) -> Output {
        let status = proc.wait(TIMEOUT);
        Output {
            status,
            stdout: proc.stdout(),
            stderr: proc.stderr_text(),
        }
    }
}

/// `curl -sS` against `port`, with `localhost` pinned to 127.0.0.1 and the
/// test root CA trusted.
fn curl_start(port: u16, args: &[&str]) -> Proc {
    Spawn::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            &ca_str("root-ca.pem"),
        ])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(args)
        .null_stdin()
        .start()
}

fn curl(port: u16, args: &[&str]) -> Output {
    Output::of(curl_start(port, args))
}

/// The status code curl saw for `path` (`-w %{http_code}`, body discarded).
fn status_code(server: &Server, path: &str, extra: &[&str]) -> String {
    let url = server.url(path);
    let args = [
        &["--path-as-is", "-o", "/dev/null", "-w", "%{http_code}"],
        extra,
        &[&url],
    ];
    let out = curl(server.port, &args.concat());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `request` as is over TLS with an sslsocket client and returns all
/// that came back before the server closed.
fn raw_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    raw_exchange_within(port, request, TIMEOUT)
}

/// [`raw_exchange`], failing the test unless the server closed within
/// `timeout`.
fn raw_exchange_within(port: u16, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut reactor = Reactor::new().expect("reactor");
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    socket.write(request).unwrap();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, timeout, "the server to close", |_| {
        probe.borrow().disconnected()
    });
    let probe = probe.borrow();
    assert!(
        probe.handshake_done(),
        "no handshake with serve: {:?}",
        probe.events
    );
    probe.data.clone()
}

fn status_line(response: &[u8]) -> String {
    let text = String::from_utf8_lossy(response);
    text.lines().next().unwrap_or_default().to_owned()
}

/// The body of an HTTP response (after the head).
fn body_of(response: &[u8]) -> &[u8] {
    let end = find(response, b"\r\n\r\n").expect("a response head");
    &response[end + 4..]
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn curl_gets_files_byte_exact() {
    let site = Site::with_big_file("files");
    let mut server = Server::start(&site.root, &[]);

    let out = curl(server.port, &["-D", "-", &server.url("/hello.txt")]);
    assert!(out.status.success(), "curl failed: {}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(&format!("Content-Length: {}\r\n", SMALL_TEXT.len())));
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    assert_eq!(body_of(&out.stdout), SMALL_TEXT);

    let out = curl(server.port, &[&server.url("/big.bin")]);
    assert!(out.status.success(), "curl failed: {}", out.stderr);
    assert_eq!(out.stdout.len() as u64, BIG);
    assert!(out.stdout == site.big(), "big.bin differs");

    let log = server.wait_for_log(&format!("GET /big.bin 200 {BIG}"));
    assert!(log.contains(&format!("GET /hello.txt 200 {}", SMALL_TEXT.len())));
    assert!(log.lines().all(|l| l.starts_with("127.0.0.1:")), "{log}");
}

#[test]
fn ten_parallel_curls_all_get_the_big_file() {
    let site = Site::with_big_file("parallel");
    let server = Server::start(&site.root, &[]);
    let downloads = TempDir::new("parallel-downloads");
    let clients: Vec<(PathBuf, Proc)> = (0..10)
        .map(|i| {
            let path = downloads.path().join(format!("big-{i}.bin"));
            let output = path.to_str().unwrap().to_owned();
            let proc = curl_start(server.port, &["-o", &output, &server.url("/big.bin")]);
            (path, proc)
        })
        .collect();
    let expected = site.big();
    for (i, (path, proc)) in clients.into_iter().enumerate() {
        let out = Output::of(proc);
        assert!(out.status.success(), "curl {i} failed: {}", out.stderr);
        let got = std::fs::read(&path).expect("the download");
        assert_eq!(got.len(), expected.len(), "curl {i}: length");
        assert!(got == expected, "curl {i}: content differs");
    }
}

#[test]
fn head_and_index_and_missing_files() {
    let site = Site::new("head");
    std::fs::create_dir(site.root.join("docs")).unwrap();
    std::fs::write(site.root.join("docs/index.html"), "<h1>index</h1>\n").unwrap();
    std::fs::create_dir(site.root.join("empty")).unwrap();
    let server = Server::start(&site.root, &[]);

    let out = curl(server.port, &["-I", &server.url("/hello.txt")]);
    assert!(out.status.success(), "curl -I failed: {}", out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(&format!("Content-Length: {}", SMALL_TEXT.len())));
    assert!(body_of(&out.stdout).is_empty(), "HEAD sent a body: {text}");

    let out = curl(server.port, &["-D", "-", &server.url("/docs/")]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Content-Type: text/html"));
    assert_eq!(body_of(&out.stdout), b"<h1>index</h1>\n");

    assert_eq!(status_code(&server, "/hello.txt?x=1&y=2", &[]), "200");
    assert_eq!(status_code(&server, "/hello%2Etxt", &[]), "200");
    assert_eq!(status_code(&server, "/missing.txt", &[]), "404");
    assert_eq!(status_code(&server, "/empty/", &[]), "404");
    assert_eq!(status_code(&server, "/hello.txt/more", &[]), "404");
}

#[test]
fn path_traversal_is_refused() {
    let site = Site::new("traversal");
    let outside = site.base.path();
    std::os::unix::fs::symlink(outside.join("secret.txt"), site.root.join("link.txt"))
        .expect("symlink to a file outside the root");
    std::os::unix::fs::symlink(outside, site.root.join("up")).expect("symlink to a folder");
    let secret_abs = outside.join("secret.txt");
    let mut server = Server::start(&site.root, &[]);

    let attempts = [
        "/../secret.txt".to_owned(),
        "/%2e%2e/secret.txt".to_owned(),
        "/%2E%2E%2Fsecret.txt".to_owned(),
        "/hello.txt/../../secret.txt".to_owned(),
        "/./../secret.txt".to_owned(),
        "/link.txt".to_owned(),
        "/up/secret.txt".to_owned(),
        format!("/{}", secret_abs.display()),
        format!("/%2F{}", &secret_abs.display().to_string()[1..]),
    ];
    for path in &attempts {
        let out = curl(server.port, &["--path-as-is", "-D", "-", &server.url(path)]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.starts_with("HTTP/1.1 200"),
            "{path} was served:\n{text}"
        );
        assert!(
            text.starts_with("HTTP/1.1 403") || text.starts_with("HTTP/1.1 404"),
            "{path}: expected 403 or 404:\n{text}\n{}",
            out.stderr
        );
        assert!(
            !contains(&out.stdout, &site.secret),
            "{path} leaked the secret"
        );
    }
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/link.txt",
        "/up/secret.txt",
    ] {
        assert_eq!(status_code(&server, path, &[]), "403", "{path}");
    }
    // Without curl's help: the raw request target.
    let response = raw_exchange(server.port, b"GET /../secret.txt HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 403 Forbidden");
    assert!(!contains(&response, &site.secret));

    // The root itself is still served.
    assert_eq!(status_code(&server, "/hello.txt", &[]), "200");
    server.wait_for_log("GET /hello.txt 200");
}

/// How long a request about a FIFO may take to be answered.
const PROMPTLY: Duration = Duration::from_secs(2);

/// Makes a FIFO at `path` with `mkfifo`.
fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// A thread that puts a FIFO and a regular file in turn at one path, each
/// by an atomic rename, so that a request for that path finds either, and
/// the type may change between a check of the path and an `open` of it.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Swapper {
    /// Swaps hard links of `fifo` and `file` over `target`, through `spare`
    /// (all on one file system).
    fn start(fifo: PathBuf, file: PathBuf, spare: PathBuf, target: PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !stopped.load(Ordering::Relaxed) {
                for source in [&fifo, &file] {
                    std::fs::hard_link(source, &spare).expect("link the spare name");
                    std::fs::rename(&spare, &target).expect("rename over the target");
                    swaps += 1;
                }
            }
            swaps
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the thread; returns how many renames it made.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("the swapper thread failed")
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_fifo_in_the_root_is_refused_without_stalling_other_clients() {
    let site = Site::new("fifo");
    make_fifo(&site.root.join("pipe"));
    let server = Server::start(&site.root, &[]);
    // A client in the middle of its request while the FIFO is asked for.
    let mut waiting = Spawn::new("gnutls-cli")
        .args(["--x509cafile", &ca_str("root-ca.pem")])
        .args(["-p", &server.port.to_string(), "localhost"])
        .start();
    waiting.wait_for_stdout(b"- Handshake was completed", TIMEOUT);
    waiting.write_stdin(b"GET /hello.txt HTTP/1.1\r\n");

    let response = raw_exchange_within(server.port, b"GET /pipe HTTP/1.1\r\n\r\n", PROMPTLY);
    assert_eq!(status_line(&response), "HTTP/1.1 404 Not Found");

    // A FIFO renamed over a file between a check of the path and its
    // opening: every request is still answered, with the file or 404.
    std::fs::write(site.base.join("file.txt"), SMALL_TEXT).unwrap();
    make_fifo(&site.base.join("fifo"));
    let swapper = Swapper::start(
        site.base.join("fifo"),
        site.base.join("file.txt"),
        site.base.join("spare"),
        site.root.join("swapped.txt"),
    );
    let (mut served, mut refused) = (0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) && served + refused < 300 {
        let request = b"GET /swapped.txt HTTP/1.1\r\n\r\n";
        let response = raw_exchange_within(server.port, request, PROMPTLY);
        match status_line(&response).as_str() {
            "HTTP/1.1 200 OK" => {
                assert_eq!(body_of(&response), SMALL_TEXT);
                served += 1;
            }
            "HTTP/1.1 404 Not Found" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let swaps = swapper.stop();
    assert!(swaps > 1000, "only {swaps} renames: no race to speak of");
    assert!(
        served > 0 && refused > 0,
        "{served} served, {refused} refused"
    );

    waiting.write_stdin(b"Host: localhost\r\n\r\n");
    waiting.wait_for_stdout(b"- Peer has closed the GnuTLS connection", PROMPTLY);
    assert!(
        contains(&waiting.stdout(), SMALL_TEXT),
        "{}",
        waiting.stdout_text()
    );
}

#[test]
fn bad_methods_and_malformed_requests() {
    let site = Site::new("malformed");
    let server = Server::start(&site.root, &[]);

    assert_eq!(status_code(&server, "/hello.txt", &["-X", "POST"]), "405");
    let response = raw_exchange(server.port, b"DELETE /hello.txt HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 405 Method Not Allowed");
    assert!(String::from_utf8_lossy(&response).contains("Allow: GET, HEAD\r\n"));

    let too_long = format!(
        "GET /hello.txt HTTP/1.1\r\nX-Fill: {}\r\n\r\n",
        "a".repeat(17 * 1024)
    );
    let bad: [&[u8]; 6] = [
        b"GARBAGE\r\n\r\n",
        b"GET hello.txt HTTP/1.1\r\n\r\n",
        b"GET /hello.txt\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        too_long.as_bytes(),
    ];
    for request in bad {
        let response = raw_exchange(server.port, request);
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 400 Bad Request",
            "request {:?}",
            String::from_utf8_lossy(&request[..request.len().min(40)])
        );
    }
    // A head that ends in plain newlines is accepted.
    let response = raw_exchange(server.port, b"GET /hello.txt HTTP/1.0\n\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert_eq!(body_of(&response), SMALL_TEXT);
}

#[test]
fn a_slow_reader_does_not_make_the_server_buffer_the_file() {
    let site = Site::with_big_file("slow");
    let server = Server::start(&site.root, &[]);
    let pid = serve_pid(&site.root);
    // Warm up, then take the baseline.
    raw_exchange(server.port, b"GET /hello.txt HTTP/1.1\r\n\r\n");
    let baseline = resident_kib(pid);

    let mut reactor = Reactor::new().expect("reactor");
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let socket = reactor.socket(id).unwrap();
    socket.set_read_buffer_size(64 * 1024);
    socket.write(b"GET /big.bin HTTP/1.1\r\n\r\n").unwrap();
    socket
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    // Read nothing for a while: the server must wait, not read ahead.
    run_for(&mut reactor, Duration::from_millis(1500));
    let stalled = resident_kib(pid);
    assert!(
        stalled < baseline + 8 * 1024,
        "the server grew from {baseline} KiB to {stalled} KiB for a stalled client"
    );
    let mut received = Vec::new();
    run_until(&mut reactor, TIMEOUT, "the whole file", |r| {
        if let Some(s) = r.socket(id) {
            received.extend_from_slice(&s.read_all());
        }
        probe.borrow().disconnected()
    });
    if let Some(s) = reactor.socket(id) {
        received.extend_from_slice(&s.read_all());
    }
    assert_eq!(status_line(&received), "HTTP/1.1 200 OK");
    let body = body_of(&received);
    assert_eq!(body.len() as u64, BIG);
    assert!(body == site.big().as_slice(), "big.bin differs");
}

/// The pid of the `serve` process serving `root` (found in `/proc`, since
/// the process guard does not expose it).
fn serve_pid(root: &Path) -> u32 {
    let binary = serve_binary();
    let root = root.to_str().expect("UTF-8 path");
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first() == Some(&binary.as_os_str().as_encoded_bytes())
            && args.contains(&root.as_bytes())
        {
            return pid;
        }
    }
    panic!("no serve process for {root} in /proc");
}

/// The resident set size of process `pid`, in KiB (Linux).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn mutual_tls_required() {
    let site = Site::new("mtls");
    let mut server = Server::start(
        &site.root,
        &["--ca", &ca_str("root-ca.pem"), "--require-client-cert"],
    );
    let url = server.url("/hello.txt");

    let out = curl(server.port, &[&url]);
    assert!(
        !out.status.success(),
        "curl without a client certificate succeeded"
    );
    assert!(!contains(&out.stdout, SMALL_TEXT));
    server.wait_for_log("NoPeerCertificate");

    let (cert, key) = (ca_str("client.pem"), ca_str("client.key"));
    let out = curl(server.port, &["--cert", &cert, "--key", &key, &url]);
    assert!(
        out.status.success(),
        "curl with client.pem failed: {}",
        out.stderr
    );
    assert_eq!(out.stdout, SMALL_TEXT);
    let line = format!(
        "GET /hello.txt 200 {} cn=\"sslsocket test client\"",
        SMALL_TEXT.len()
    );
    server.wait_for_log(&line);

    let (cert, key) = (ca_str("other-client.pem"), ca_str("other-client.key"));
    let out = curl(server.port, &["--cert", &cert, "--key", &key, &url]);
    assert!(
        !out.status.success(),
        "curl with other-client.pem succeeded"
    );
    assert!(!contains(&out.stdout, SMALL_TEXT));
    let log = server.wait_for_log("UnableToGetLocalIssuerCertificate");
    assert!(log.contains("CN=sslsocket other client"), "{log}");
    assert!(log.contains("certificate verification failed"), "{log}");
}

#[test]
fn client_certificate_requested_but_optional_with_ca_alone() {
    let site = Site::new("query");
    let mut server = Server::start(&site.root, &["--ca", &ca_str("root-ca.pem")]);
    let url = server.url("/hello.txt");

    let out = curl(server.port, &[&url]);
    assert!(
        out.status.success(),
        "curl without a certificate: {}",
        out.stderr
    );
    assert_eq!(out.stdout, SMALL_TEXT);
    let (cert, key) = (ca_str("client.pem"), ca_str("client.key"));
    let out = curl(server.port, &["--cert", &cert, "--key", &key, &url]);
    assert!(out.status.success(), "curl with client.pem: {}", out.stderr);
    assert_eq!(out.stdout, SMALL_TEXT);
    server.wait_for_log("cn=\"sslsocket test client\"");
}

#[test]
fn openssl_s_client_negotiates_alpn_http11() {
    let site = Site::new("alpn");
    let server = Server::start(&site.root, &[]);
    let out = Output::of(
        Spawn::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", server.port),
            ])
            .args(["-alpn", "http/1.1", "-servername", "localhost"])
            .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
            .null_stdin()
            .start(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ALPN protocol: http/1.1"),
        "no ALPN in s_client's output:\n{text}\n{}",
        out.stderr
    );
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

#[test]
fn gnutls_cli_gets_a_file() {
    let site = Site::new("gnutls");
    let server = Server::start(&site.root, &[]);
    let mut client = Spawn::new("gnutls-cli")
        .args(["--x509cafile", &ca_str("root-ca.pem")])
        .args(["-p", &server.port.to_string(), "localhost"])
        .start();
    client.write_stdin(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // stdin stays open: at its end gnutls-cli would send close_notify.
    client.wait_for_stdout(b"- Peer has closed the GnuTLS connection", TIMEOUT);
    let status = client.wait(TIMEOUT);
    let text = client.stdout_text();
    assert!(
        status.success(),
        "gnutls-cli: {status}\n{}",
        client.stderr_text()
    );
    assert!(
        text.contains("- Status: The certificate is trusted."),
        "{text}"
    );
    assert!(text.contains("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(&format!("Content-Length: {}\r\n", SMALL_TEXT.len())));
    assert!(contains(client.stdout().as_slice(), SMALL_TEXT), "{text}");
}

/// Runs `serve` with `args` and expects it to exit with `code` and one line
/// on stderr containing `expected`.
fn expect_failure(args: &[&str], code: i32, expected: &str) {
    let out = Output::of(serve_command(args).start());
    let stderr = out.stderr.trim_end();
    assert_eq!(out.status.code(), Some(code), "serve {args:?}: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "serve {args:?} panicked: {stderr}"
    );
    assert!(out.stdout.is_empty(), "serve {args:?} printed on stdout");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("serve: "), "{stderr}");
    assert!(
        first.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    if code == 1 {
        assert_eq!(stderr.lines().count(), 1, "more than one line: {stderr}");
    }
}

/// `--cert CERT --key KEY --listen 127.0.0.1:0`, then `extra`.
fn with_identity<'a>(cert: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--cert", cert, "--key", key, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn bad_inputs_fail_with_one_clear_line() {
    let (cert, key) = (ca_str("server.pem"), ca_str("server.key"));
    let (missing, encrypted) = (ca_str("no-such-file.pem"), ca_str("server-encrypted.key"));
    let fail = |args: Vec<&str>, expected: &str| expect_failure(&args, 1, expected);
    fail(with_identity(&missing, &key, &[]), "no-such-file.pem");
    fail(
        with_identity(&cert, &encrypted, &["--pass", "nope"]),
        "wrong passphrase",
    );
    fail(with_identity(&cert, &encrypted, &[]), "passphrase");
    fail(with_identity(&key, &key, &[]), "no PEM certificate");
    let other_key = ca_str("client.key");
    fail(with_identity(&cert, &other_key, &[]), "do not match");
    fail(
        with_identity(&cert, &key, &["--ca", &missing]),
        "no-such-file.pem",
    );
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = busy.local_addr().unwrap().to_string();
    fail(
        with_identity(&cert, &key, &["--listen", &address]),
        "Address already in use",
    );
    let site = Site::new("bad-root");
    let file = site.root.join("hello.txt");
    fail(
        with_identity(&cert, &key, &["--root", file.to_str().unwrap()]),
        "not a folder",
    );

    let usage = |args: Vec<&str>, expected: &str| expect_failure(&args, 2, expected);
    usage(vec!["--cert", &cert], "--key is required");
    usage(
        with_identity(&cert, &key, &["--listen", "localhost"]),
        "--listen",
    );
    usage(
        with_identity(&cert, &key, &["--require-client-cert"]),
        "--require-client-cert needs --ca",
    );
    usage(with_identity(&cert, &key, &["--bogus"]), "--bogus");
}

// ---------------------------------------------------------------------------
// Hostile clients against serve's limits
// ---------------------------------------------------------------------------

/// Seconds after which a python client printed `CUT`.
fn cut_after(client: &mut Proc) -> f64 {
    let line = client.wait_for_line("", TIMEOUT);
    line.strip_prefix("CUT ")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("the client was not cut: {line:?}"))
}

#[test]
fn a_request_head_dripped_byte_by_byte_is_cut_at_the_request_deadline() {
    let site = Site::new("serve-drip");
    let mut server = Server::start(&site.root, &["--request-timeout", "1"]);
    let mut client = Spawn::new("python3")
        .args(["-c", PY_DRIPPING_CLIENT, &server.port.to_string()])
        .start();
    let after = cut_after(&mut client);
    assert!((0.9..2.5).contains(&after), "cut after {after} s");
    server.wait_for_log("the program's deadline timed out");
}

/// python3 TLS client: asks for `argv[2]` and reads none of the answer
/// (a 4 KiB receive buffer), for 10 s.
const PY_NOT_READING: &str = r#"
import socket, ssl, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.connect(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
print("ASKED", flush=True)
time.sleep(10)
"#;

#[test]
fn a_client_that_stops_reading_is_cut_at_the_send_timeout() {
    let site = Site::with_big_file("serve-stalled");
    let mut server = Server::start(&site.root, &["--send-timeout", "1"]);
    let mut client = Spawn::new("python3")
        .args(["-c", PY_NOT_READING, &server.port.to_string(), "/big.bin"])
        .start();
    client.wait_for_stdout(b"ASKED", TIMEOUT);
    let asked = Instant::now();
    server.wait_for_log("sending (the peer took nothing) timed out");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    client.kill();
}

#[test]
fn at_most_max_connections_are_served_and_the_rest_wait() {
    let site = Site::new("serve-cap");
    let server = Server::start(&site.root, &["--max-connections", "2"]);
    let mut holder = Spawn::new("python3")
        .args(["-c", PY_HOLDER, &server.port.to_string(), "2"])
        .start();
    holder.wait_for_stdout(b"HELD", TIMEOUT);
    let mut waiting = curl_start(server.port, &[&server.url("/hello.txt")]);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        waiting.try_wait().is_none(),
        "a third connection was served"
    );
    holder.write_stdin(b"let one go\n");
    let out = Output::of(waiting);
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, SMALL_TEXT);
    holder.kill();
}

/// A folder on the path swapped, again and again, for a symbolic link to
/// a folder outside the root: whatever moment serve checks and opens the
/// path at, it never serves the file outside.
#[test]
fn a_folder_swapped_for_a_link_outside_the_root_is_never_followed() {
    let site = Site::new("swap");
    let outside = site.base.path().join("elsewhere");
    std::fs::create_dir(&outside).expect("create the outside folder");
    std::fs::write(outside.join("page.txt"), &site.secret).expect("write the outside page");
    let real = site.root.join("real");
    std::fs::create_dir(&real).expect("create the inside folder");
    std::fs::write(real.join("page.txt"), b"inside\n").expect("write the inside page");
    let link = site.root.join("link");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink to the outside folder");
    let swapped = site.root.join("d");
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for from in [&real, &link] {
                    let _ = std::fs::rename(from, &swapped);
                    let _ = std::fs::rename(&swapped, from);
                }
            }
        })
    };
    let mut server = Server::start(&site.root, &[]);
    let mut served_inside = 0;
    for _ in 0..300 {
        let response = raw_exchange(server.port, b"GET /d/page.txt HTTP/1.1\r\n\r\n");
        assert!(
            !contains(&response, &site.secret),
            "the outside file was served"
        );
        served_inside += usize::from(body_of(&response) == b"inside\n");
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().expect("the flipper thread");
    // The race was run: the inside page was served some of the time.
    assert!(served_inside > 0, "the inside page was never served");
    server.wait_for_log("GET /d/page.txt 200");
}
