//! `examples/getslash.rs`, the tiny HTTPS client, against a python3 TLS
//! server that sends exactly the bytes each test chooses, with pauses
//! between them where a test needs them to arrive in a later read: interim
//! responses, time limits, bytes beyond the response, the framing grammar
//! of RFC 9112, bare line feeds and the size of trailers.
//!
//! Each server listens on 127.0.0.1 for one connection and is killed when
//! its guard drops; each getslash run is bounded by `--timeout 10` (unless
//! the test sets its own) and by [`TIMEOUT`].

mod common;

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::*;

/// A TLS server (`ca/server.pem`) on 127.0.0.1 for one connection: it reads
/// the request head, then runs the steps given as arguments (`send:HEX`,
/// `pause:SECONDS`, `close_notify`, `fin`) and exits, which closes the
/// connection if no step did.
const PY_SCRIPTED_SERVER: &str = r#"
import signal, socket, ssl, sys, time
signal.alarm(30)
cert, key = sys.argv[1:3]
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
while b"\r\n\r\n" not in request:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("the client sent no request")
    request += chunk
try:
    for step in sys.argv[3:]:
        verb, _, arg = step.partition(":")
        if verb == "send":
            s.sendall(bytes.fromhex(arg))
        elif verb == "pause":
            time.sleep(float(arg))
        elif verb == "close_notify":
            try:
                s.unwrap()
            except (OSError, ssl.SSLError):
                pass
        elif verb == "fin":
            # TCP FIN without TLS close_notify.
            s.shutdown(socket.SHUT_RDWR)
except OSError as e:
    print("CLIENT-GONE", e, flush=True)
"#;

/// One thing the scripted server does.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// Sends these bytes (in records of at most 16 KiB).
    Send(&'a [u8]),
    /// Waits this many milliseconds, so that what follows arrives in a
    /// later read.
    Pause(u64),
    /// Sends TLS `close_notify` and waits for the client to close.
    CloseNotify,
    /// Closes TCP without `close_notify`.
    Fin,
}

use Step::*;

fn script_arguments(steps: &[Step]) -> Vec<String> {
    let hex = |data: &[u8]| data.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut arguments = Vec::new();
    for step in steps {
        match step {
            Send(data) => arguments.extend(
                data.chunks(16 * 1024)
                    .map(|piece| format!("send:{}", hex(piece))),
            ),
            Pause(ms) => arguments.push(format!("pause:{}", *ms as f64 / 1000.0)),
            CloseNotify => arguments.push("close_notify".into()),
            Fin => arguments.push("fin".into()),
        }
    }
    arguments
}

/// Starts the scripted server; returns it and its port.
fn scripted_server(steps: &[Step]) -> (Proc, u16) {
    let mut server = Spawn::new("python3")
        .args(["-c", PY_SCRIPTED_SERVER])
        .args([ca_str("server.pem"), ca_str("server.key")])
        .args(script_arguments(steps))
        .null_stdin()
        .start();
    let line = server.wait_for_line("PORT ", TIMEOUT);
    let port = line[5..].trim().parse().expect("python's port");
    (server, port)
}

/// What a getslash run left.
struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

impl Run {
    /// Asserts exit 0 with exactly `body` on stdout.
    fn assert_success(&self, body: &[u8], case: &str) {
        assert_eq!(
            self.status.code(),
            Some(0),
            "{case}: expected success; stderr: {}",
            self.stderr
        );
        assert_eq!(
            self.stdout,
            body,
            "{case}: stdout {:?}",
            String::from_utf8_lossy(&self.stdout)
        );
    }

    /// Asserts exit 1 with one line on stderr containing `reason`.
    fn assert_failure(&self, reason: &str, case: &str) {
        let stderr = self.stderr.trim_end();
        assert_eq!(
            self.status.code(),
            Some(1),
            "{case}: expected failure ({reason}); stderr: {stderr:?}, stdout: {:?}",
            String::from_utf8_lossy(&self.stdout)
        );
        assert!(
            stderr.starts_with("getslash: ") && stderr.contains(reason),
            "{case}: expected {reason:?} in stderr: {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "{case}: {stderr}");
    }
}

/// Runs getslash with `--cafile ca/root-ca.pem` and `arguments`, and waits
/// for it to exit.
fn run_getslash(arguments: &[&str]) -> Run {
    let started = Instant::now();
    let mut run = start_getslash(arguments, None);
    let status = run.wait(TIMEOUT);
    Run {
        status,
        stdout: run.stdout(),
        stderr: run.stderr_text(),
        took: started.elapsed(),
    }
}

/// Starts getslash with `--cafile ca/root-ca.pem` and `arguments`, with
/// `RUST_LOG` set to `log` or unset.
fn start_getslash(arguments: &[&str], log: Option<&str>) -> Proc {
    let mut command = std::process::Command::new(example("getslash"));
    command
        .args(["--cafile", &ca_str("root-ca.pem")])
        .args(arguments)
        .env_remove("RUST_LOG");
    if let Some(log) = log {
        command.env("RUST_LOG", log);
    }
    Proc::in_own_group("getslash", command)
}

/// Serves `steps` to one getslash run with `--timeout 10`, `arguments` (a
/// later `--timeout` wins) and the server's URL.
fn fetch(steps: &[Step], arguments: &[&str]) -> Run {
    let (_server, port) = scripted_server(steps);
    let url = format!("https://localhost:{port}/");
    run_getslash(&[&["--timeout", "10"], arguments, &[&url]].concat())
}

/// A script for the server, and what getslash should make of it.
struct Case<'a> {
    name: String,
    steps: Vec<Step<'a>>,
    expect: Expect<'a>,
}

#[derive(Clone, Copy)]
enum Expect<'a> {
    /// Exit 0 with this body.
    Body(&'a [u8]),
    /// Exit 1 with this in the message.
    Failure(&'a str),
}

impl<'a> Case<'a> {
    fn new(name: impl Into<String>, steps: Vec<Step<'a>>, expect: Expect<'a>) -> Self {
        let name = name.into();
        Case {
            name,
            steps,
            expect,
        }
    }
}

/// Runs all `cases` at once, each with its own server, checks each run and
/// returns them.
fn check_all(cases: &[Case]) -> Vec<Run> {
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let threads: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(|| fetch(&case.steps, &[])))
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    for (case, run) in cases.iter().zip(&runs) {
        match case.expect {
            Expect::Body(body) => run.assert_success(body, &case.name),
            Expect::Failure(reason) => run.assert_failure(reason, &case.name),
        }
    }
    runs
}

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn interim_responses_are_skipped_and_shown_with_include() {
    let early_hints = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
    let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
    let together = [early_hints.as_slice(), continue_, HELLO].concat();
    fetch(&[Send(&together), CloseNotify], &[]).assert_success(b"hello", "in one read");
    let apart = [
        Send(early_hints),
        Pause(100),
        Send(continue_),
        Pause(100),
        Send(HELLO),
        CloseNotify,
    ];
    fetch(&apart, &[]).assert_success(b"hello", "in three reads");
    fetch(&apart, &["-i"]).assert_success(&together, "-i");

    let switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n";
    let run = fetch(
        &[Send(switching), Pause(100), Send(HELLO), CloseNotify],
        &[],
    );
    run.assert_failure("101", "101 Switching Protocols");
}

#[test]
fn a_silent_server_meets_the_time_limit() {
    let silent = [Pause(20_000)];
    let run = fetch(&silent, &["--timeout", "0.5"]);
    run.assert_failure("timed out after 500ms", "--timeout 0.5");
    assert!(run.took < Duration::from_secs(3), "took {:?}", run.took);

    // Without --timeout, and with --timeout 0: the limit is logged at the
    // start, and getslash waits on.
    let runs: Vec<(Proc, Proc, &str)> = [
        (&[][..], "time limit: 60s"),
        (&["--timeout", "0"], "no time limit"),
    ]
    .into_iter()
    .map(|(arguments, expected)| {
        let (server, port) = scripted_server(&silent);
        let url = format!("https://localhost:{port}/");
        let getslash = start_getslash(&[arguments, &[&url]].concat(), Some("info"));
        (server, getslash, expected)
    })
    .collect();
    std::thread::sleep(Duration::from_millis(700));
    for (_server, mut getslash, expected) in runs {
        let log = getslash.stderr_text();
        assert!(
            getslash.try_wait().is_none(),
            "{expected}: getslash gave up: {log}"
        );
        assert!(log.contains(expected), "{expected:?} not logged: {log}");
    }
}

#[test]
fn bad_time_limits_are_usage_errors() {
    for value in ["1e300", "-1", "NaN", "inf", "soon", "1e10"] {
        let run = run_getslash(&["--timeout", value, "https://localhost:1/"]);
        let stderr = run.stderr.trim_end();
        assert_eq!(run.status.code(), Some(2), "--timeout {value}: {stderr}");
        assert!(
            stderr.starts_with("getslash: --timeout"),
            "--timeout {value}: {stderr}"
        );
    }
    let run = run_getslash(&["--help"]);
    assert_eq!(run.status.code(), Some(0), "--help: {}", run.stderr);
    let help = String::from_utf8_lossy(&run.stdout);
    assert!(help.contains("--timeout SECS"), "{help}");
    assert!(help.contains("default 60"), "{help}");
}

#[test]
fn bytes_beyond_the_response_are_an_error_whenever_they_arrive() {
    use Expect::*;
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let framings = [("Content-Length", HELLO), ("chunked", chunked.as_slice())];
    let with_extra: Vec<Vec<u8>> = framings
        .iter()
        .map(|(_, r)| [r, &b"EXTRA"[..]].concat())
        .collect();
    let mut cases = Vec::new();
    for ((framing, response), with_extra) in framings.iter().zip(&with_extra) {
        let extra = Failure("the server sent more than the response");
        cases.extend([
            Case::new(
                format!("{framing}, more in the same read"),
                vec![Send(with_extra), CloseNotify],
                extra,
            ),
            Case::new(
                format!("{framing}, more in a later read"),
                vec![Send(response), Pause(200), Send(b"EXTRA"), CloseNotify],
                extra,
            ),
            // A clean end after a pause, or a TCP close once the length is
            // known, completes the response.
            Case::new(
                format!("{framing}, close_notify after a pause"),
                vec![Send(response), Pause(300), CloseNotify],
                Body(b"hello"),
            ),
            Case::new(
                format!("{framing}, TCP close"),
                vec![Send(response), Fin],
                Body(b"hello"),
            ),
        ]);
    }
    // A server that keeps the connection open after a complete response:
    // getslash waits a moment for the close, then takes it as complete.
    cases.push(Case::new(
        "no close",
        vec![Send(HELLO), Pause(10_000)],
        Body(b"hello"),
    ));
    let runs = check_all(&cases);
    let took = runs.last().expect("the no-close run").took;
    assert!(took < Duration::from_secs(5), "no close: took {took:?}");
}

/// `status_line`, then `headers` (lines separated by CRLF), an empty line
/// and `body`.
fn response(status_line: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("{status_line}\r\n{headers}\r\n\r\n{body}").into_bytes()
}

#[test]
fn framing_follows_the_grammar_of_rfc_9112() {
    use Expect::*;
    let ok = "HTTP/1.1 200 OK";
    let te = "Transfer-Encoding: chunked";
    let chunked = |size_line: &str| response(ok, te, &format!("{size_line}\r\nhello\r\n0\r\n\r\n"));
    let length = |value: &str| response(ok, &format!("Content-Length: {value}"), "hello");
    let table: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "Content-Length +5",
            length("+5"),
            Failure("bad Content-Length"),
        ),
        (
            "Content-Length -5",
            length("-5"),
            Failure("bad Content-Length"),
        ),
        (
            "Content-Length 0x5",
            length("0x5"),
            Failure("bad Content-Length"),
        ),
        (
            "Content-Length list",
            length("5, 5"),
            Failure("bad Content-Length"),
        ),
        (
            "Content-Length 2^64",
            length("18446744073709551616"),
            Failure("bad Content-Length"),
        ),
        (
            "Content-Length 5 and 6",
            length("5\r\nContent-Length: 6"),
            Failure("conflicting Content-Length"),
        ),
        (
            "Content-Length and chunked",
            response(
                ok,
                &format!("Content-Length: 5\r\n{te}"),
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Failure("both Transfer-Encoding and Content-Length"),
        ),
        (
            "space before the colon",
            response(ok, "Content-Length : 5", "hello"),
            Failure("bad header line"),
        ),
        (
            "HTTP/1.0 chunked",
            response("HTTP/1.0 200 OK", te, "5\r\nhello\r\n0\r\n\r\n"),
            Failure("HTTP/1.0 response with Transfer-Encoding"),
        ),
        (
            "status +200",
            response("HTTP/1.1 +200 OK", "Content-Length: 5", "hello"),
            Failure("not an HTTP/1.x response"),
        ),
        (
            "chunk size +5",
            chunked("+5"),
            Failure("bad chunk size line"),
        ),
        (
            "chunk size ' 5'",
            chunked(" 5"),
            Failure("bad chunk size line"),
        ),
        (
            "chunk size '5 '",
            chunked("5 "),
            Failure("bad chunk size line"),
        ),
        (
            "chunk size 0x5",
            chunked("0x5"),
            Failure("bad chunk size line"),
        ),
        (
            "chunk size missing",
            chunked(";ext"),
            Failure("bad chunk size line"),
        ),
        (
            "chunk size 2^64",
            chunked("10000000000000000"),
            Failure("chunk size 10000000000000000 is too large"),
        ),
        ("Content-Length 005", length("005"), Body(b"hello")),
        (
            "Content-Length twice",
            length("5\r\nContent-Length: 5"),
            Body(b"hello"),
        ),
        (
            "Content-Length between tabs",
            length("\t5\t"),
            Body(b"hello"),
        ),
        (
            "chunk extension",
            chunked("5;name=\"value\""),
            Body(b"hello"),
        ),
        (
            "chunk extension after whitespace",
            chunked("05 ; name"),
            Body(b"hello"),
        ),
        (
            "gzip, chunked",
            response(
                ok,
                "Transfer-Encoding: gzip, chunked",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Body(b"hello"),
        ),
        (
            "gzip alone: to the close",
            response(ok, "Transfer-Encoding: gzip", "hello"),
            Body(b"hello"),
        ),
        (
            "a folded header line",
            response(ok, "X-Folded: one\r\n two\r\nContent-Length: 5", "hello"),
            Body(b"hello"),
        ),
    ];
    let cases: Vec<Case> = table
        .iter()
        .map(|(name, bytes, expect)| Case::new(*name, vec![Send(bytes), CloseNotify], *expect))
        .collect();
    check_all(&cases);
}

#[test]
fn a_head_with_bare_line_feeds_is_read_and_a_bare_cr_refused() {
    use Expect::*;
    let bare_lf = b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello";
    let mixed = b"HTTP/1.1 200 OK\r\nServer: x\nContent-Length: 5\n\r\nhello";
    let bare_cr = b"HTTP/1.1 200 OK\rContent-Length: 5\r\n\r\nhello";
    let byte_by_byte: Vec<Step> = mixed
        .chunks(1)
        .flat_map(|byte| [Send(byte), Pause(5)])
        .chain([CloseNotify])
        .collect();
    check_all(&[
        Case::new("bare LF", vec![Send(bare_lf), CloseNotify], Body(b"hello")),
        Case::new(
            "CRLF and LF",
            vec![Send(mixed), CloseNotify],
            Body(b"hello"),
        ),
        Case::new("a byte a read", byte_by_byte, Body(b"hello")),
        Case::new(
            "bare CR",
            vec![Send(bare_cr), CloseNotify],
            Failure("a bare CR in the response head"),
        ),
    ]);
}

/// Sends `response`, then `close_notify`.
fn send(response: &str) -> Vec<Step<'_>> {
    vec![Send(response.as_bytes()), CloseNotify]
}

#[test]
fn heads_and_trailers_are_bounded() {
    use Expect::*;
    let line = format!("X-Filler: {}\r\n", "a".repeat(90));
    let many_lines = line.repeat(700); // 70,000 bytes
    let trailers = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n{many_lines}\r\n"
    );
    let head = format!("HTTP/1.1 200 OK\r\n{many_lines}Content-Length: 5\r\n\r\nhello");
    let room = line.repeat(600); // 60,000 bytes
    let trailers_within = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n{room}\r\n"
    );
    let head_within = format!("HTTP/1.1 200 OK\r\n{room}Content-Length: 5\r\n\r\nhello");
    let (long_head, long_chunk) = (
        "the response head is too long",
        "the trailer section is too long",
    );
    check_all(&[
        Case::new(
            "70,000 bytes of trailers",
            send(&trailers),
            Failure(long_chunk),
        ),
        Case::new("a 70,000-byte head", send(&head), Failure(long_head)),
        Case::new(
            "60,000 bytes of trailers",
            send(&trailers_within),
            Body(b"hello"),
        ),
        Case::new("a 60,000-byte head", send(&head_within), Body(b"hello")),
    ]);
}

/// `--pinnedpubkey` as curl takes it: on top of verification, or with
/// `--insecure` in place of it.
#[test]
fn pinned_public_keys_are_checked_like_curls() {
    let pin = |file: &str| sslsocket::Certificate::from_file(ca(file)).unwrap()[0].public_key_pin();
    let (right, wrong) = (pin("server.pem"), pin("server-rsa.pem"));
    let both = format!("{wrong};{right}");
    let untrusting = ca_str("other-ca.pem");
    let hello = [Send(HELLO), CloseNotify];
    let cases: [(&[&str], bool); 6] = [
        (&["--pinnedpubkey", &right], true),
        (&["--pinnedpubkey", &both], true),
        (&["--pinnedpubkey", &wrong], false),
        // Only the key with -k: an untrusted chain with the right key.
        (
            &["--cafile", &untrusting, "-k", "--pinnedpubkey", &right],
            true,
        ),
        (
            &["--cafile", &untrusting, "-k", "--pinnedpubkey", &wrong],
            false,
        ),
        (&["--cafile", &untrusting, "--pinnedpubkey", &right], false),
    ];
    for (arguments, accepted) in cases {
        let run = fetch(&hello, arguments);
        let case = format!("{arguments:?}");
        if accepted {
            run.assert_success(b"hello", &case);
        } else {
            let reason = if arguments.contains(&"-k") || !arguments.contains(&untrusting.as_str()) {
                "PublicKeyPinMismatch"
            } else {
                "UnableToGetLocalIssuerCertificate"
            };
            run.assert_failure(reason, &case);
        }
    }
    let bad = run_getslash(&["--pinnedpubkey", "sha256//nope", "https://localhost:1/"]);
    assert!(!bad.status.success());
    assert!(
        bad.stderr.contains("not a public key pin"),
        "{}",
        bad.stderr
    );
}

/// `--tlsv1.3` and `--tls-max` as curl takes them; a handshake refused
/// for want of a common version is told in plain words, naming the
/// priority string.
#[test]
fn a_refused_handshake_is_explained() {
    let mut args = server_cert_args();
    args.extend(["-www", "-tls1_2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = s_server(&args, None, None, false);
    let url = format!("https://localhost:{}/", server.port);
    let run = run_getslash(&["--tlsv1.3", &url]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "getslash: TLS handshake refused: the server refused every protocol version we \
             offered (fatal alert: "
        ) && run
            .stderr
            .contains("(70)): we offered TLS1.3 (priority string \"SYSTEM-DEFAULT:"),
        "{}",
        run.stderr
    );
    let run = run_getslash(&["--tls-max", "1.2", &url]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        contains(&run.stdout, b"Protocol  : TLSv1.2"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let run = run_getslash(&["--tls-max", "1.1", &url]);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--tls-max takes 1.2 or 1.3"),
        "{}",
        run.stderr
    );
}
