//! Keys that never leave hardware, against SoftHSM2: a server key and a
//! client key on a PKCS#11 token, with the PIN in the configuration or
//! answered later (from another thread, from a timer), and the errors of a
//! wrong PIN, a missing token or key, and a key that is not the
//! certificate's. The peers are `openssl s_client` and `openssl s_server`.
//!
//! SoftHSM reads where its tokens live from the environment variable
//! `SOFTHSM2_CONF` when the module loads, once per process. Each test
//! therefore makes its own token in a temporary directory (`softhsm2-util`,
//! then `p11tool` imports `ca/server.key`, `ca/client.key` and
//! `ca/server-rsa.key`), and runs itself again in a child process (this
//! test binary with `--exact NAME`) whose environment points SoftHSM there:
//! the test process's own environment is never changed. The module is
//! found the way a program finds it, through p11-kit (Debian's softhsm2
//! registers it). In the child a logger keeps every record, GnuTLS's own
//! at trace level included, so each test also checks that no PIN was
//! logged.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use sslsocket::{
    Context, Error, PinRequest, Pkcs11ErrorKind, Reactor, SslConfiguration, SslProtocol, SslSocket,
};

/// Set in the child process that runs one test with a SoftHSM token.
const CHILD: &str = "SSLSOCKET_TEST_SOFTHSM_CHILD";

/// The token's label and user PIN, and a wrong PIN. Distinctive digits, so
/// the log check finds any copy.
const TOKEN: &str = "sslsocket";
const PIN: &str = "264817";
const WRONG_PIN: &str = "590373";
const SO_PIN: &str = "0000";

/// The keys put on the token: (file in ca/, object label, id).
const KEYS: [(&str, &str, &str); 3] = [
    ("server.key", "server", "01"),
    ("client.key", "client", "02"),
    ("server-rsa.key", "server-rsa", "03"),
];

fn key_url(object: &str) -> String {
    format!("pkcs11:token={TOKEN};object={object};type=private")
}

// ---------------------------------------------------------------------------
// The token and the child process
// ---------------------------------------------------------------------------

/// Runs `body` in a process whose SoftHSM holds a fresh token with the
/// keys of [`KEYS`]: here when this is that process, else in a child that
/// runs only the test `name`.
fn on_token(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        install_logger();
        body();
        assert_no_pin_logged();
        return;
    }
    let dir = TempDir::new(name);
    let conf = make_token(&dir);
    let mut command = Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD, "1");
    let mut child = Proc::in_own_group(&format!("{name} with a SoftHSM token"), command);
    let status = child.wait(Duration::from_secs(120));
    let stdout = child.stdout_text();
    assert!(
        status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test {name} with a SoftHSM token failed ({status})\nstdout:\n{stdout}\nstderr:\n{}",
        child.stderr_text()
    );
}

/// Makes a token in `dir` and imports the keys; returns the SoftHSM
/// configuration file that points at it.
fn make_token(dir: &TempDir) -> PathBuf {
    require("softhsm2-util", "softhsm2");
    require("p11tool", "gnutls-bin");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("create the token directory");
    let conf = dir.write(
        "softhsm2.conf",
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        )
        .as_bytes(),
    );
    run_tool(
        Spawn::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .env("SOFTHSM2_CONF", &conf),
    );
    for (file, label, id) in KEYS {
        run_tool(
            Spawn::new("p11tool")
                .args(["--login", "--write", "--load-privkey", &ca_str(file)])
                .args(["--label", label, "--id", id])
                .arg(format!("pkcs11:token={TOKEN}"))
                .env("SOFTHSM2_CONF", &conf)
                .env("GNUTLS_PIN", Path::new(PIN)),
        );
    }
    conf
}

fn run_tool(spawn: Spawn) {
    let mut tool = spawn.null_stdin().start();
    let status = tool.wait(TIMEOUT);
    assert!(
        status.success(),
        "`{}` failed ({status})\nstdout: {}\nstderr: {}",
        tool.name,
        tool.stdout_text(),
        tool.stderr_text()
    );
}

// ---------------------------------------------------------------------------
// A logger that keeps everything (in the child, which runs one test)
// ---------------------------------------------------------------------------

static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        LOGGED.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

fn install_logger() {
    static KEEP: Keep = Keep;
    log::set_logger(&KEEP).expect("no other logger in this process");
    log::set_max_level(log::LevelFilter::Trace);
}

/// Whether a record containing `text` was logged.
fn logged(text: &str) -> bool {
    let logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    logged.iter().any(|l| l.contains(text))
}

fn assert_no_pin_logged() {
    let logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    for line in logged.iter() {
        assert!(
            !line.contains(PIN) && !line.contains(WRONG_PIN),
            "a PIN was logged: {line}"
        );
    }
}

// ---------------------------------------------------------------------------
// Configurations, a server, peers
// ---------------------------------------------------------------------------

/// `chain` (in ca/) with the token key `object`, trusting the test root.
fn token_config(chain: &str, object: &str, pin: Option<&str>) -> Result<SslConfiguration, Error> {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_pkcs11(ca(chain), &key_url(object), pin)
        .build()
}

/// What the server's accepted sockets saw.
#[derive(Default)]
struct Served {
    probes: Vec<Shared>,
    pin_requests: Vec<PinRequest>,
}

/// Listens on 127.0.0.1 with `config`; every connection answers its first
/// line with "pong: LINE" and closes, and `on_pin` answers its PIN
/// requests.
fn serve(
    reactor: &mut Reactor,
    config: SslConfiguration,
    on_pin: fn(&mut Context, &PinRequest),
) -> (u16, Rc<RefCell<Served>>) {
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .expect("listen");
    let server = reactor.server(id).unwrap();
    let port = server.local_address().port();
    let served = Rc::new(RefCell::new(Served::default()));
    let record = served.clone();
    server.new_connection().connect(move |_, cx, &socket| {
        let socket = cx.socket(socket).expect("the accepted socket");
        record.borrow_mut().probes.push(probe(socket, false));
        let record = record.clone();
        socket.pin_required().connect(move |_, cx, request| {
            record.borrow_mut().pin_requests.push(request.clone());
            on_pin(cx, request);
        });
        socket.ready_read().connect(|s, _, _| pong(s));
    });
    (port, served)
}

fn pong(socket: &mut SslSocket) {
    if let Some(line) = socket.take_line() {
        let mut answer = b"pong: ".to_vec();
        answer.extend_from_slice(&line);
        socket.write(&answer).unwrap();
        socket.disconnect_from_host();
    }
}

/// `openssl s_client` to our server on `port`, verifying it as
/// "localhost" against the test root; sends "ping".
fn s_client(port: u16, extra: &[&str]) -> Proc {
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .args(extra)
        .start();
    client.write_stdin(b"ping\n");
    client
}

/// Runs the reactor until `client` exits; checks that it got the answer
/// and verified the chain.
fn expect_pong(reactor: &mut Reactor, client: &mut Proc) {
    run_until(reactor, TIMEOUT, "s_client to exit", |_| {
        client.try_wait().is_some()
    });
    let status = client.wait(TIMEOUT);
    let (stdout, stderr) = (client.stdout_text(), client.stderr_text());
    assert!(status.success(), "s_client: {status}\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("pong: ping"),
        "s_client's output: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("verify return:1"), "{stderr}");
}

/// The subject of the certificate `s_client` printed.
fn served_subject(client: &Proc) -> String {
    client
        .stdout_text()
        .lines()
        .find_map(|l| l.strip_prefix("subject="))
        .unwrap_or_else(|| panic!("no subject in s_client's output: {}", client.stdout_text()))
        .trim()
        .to_owned()
}

/// The attributes of the leaf's subject in `ca/NAME`.
fn leaf_subject(name: &str) -> BTreeSet<String> {
    attributes(&certificates(&ca(name))[0].subject_dn())
}

/// A distinguished name's attributes, however it is printed: GnuTLS says
/// "CN=localhost,O=sslsocket", openssl "O = sslsocket, CN = localhost".
fn attributes(name: &str) -> BTreeSet<String> {
    name.replace(' ', "")
        .split(',')
        .map(str::to_owned)
        .collect()
}

fn without_spaces(text: &str) -> String {
    text.replace(' ', "")
}

/// The kind of a PKCS#11 error, and its text.
fn pkcs11_kind(error: &Error) -> Pkcs11ErrorKind {
    match error {
        Error::Pkcs11 { kind, token, .. } => {
            assert_eq!(token, TOKEN, "{error}");
            *kind
        }
        other => panic!("not a PKCS#11 error: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The server's key on the token
// ---------------------------------------------------------------------------

#[test]
fn server_key_on_a_token_serves_openssl_s_client() {
    on_token("server_key_on_a_token_serves_openssl_s_client", || {
        let config = token_config("server.pem", "server", Some(PIN)).expect("configuration");
        assert!(config.pin_requests().is_empty(), "logged in at build");
        let mut reactor = Reactor::new().unwrap();
        let (port, served) = serve(&mut reactor, config, |_, _| panic!("no PIN asked"));
        for version in ["-tls1_3", "-tls1_2"] {
            let mut client = s_client(port, &[version]);
            expect_pong(&mut reactor, &mut client);
            assert_eq!(
                attributes(&served_subject(&client)),
                leaf_subject("server.pem")
            );
        }
        let served = served.borrow();
        let protocols: Vec<_> = served.probes.iter().map(|p| p.borrow().protocol).collect();
        assert_eq!(
            protocols,
            [Some(SslProtocol::TlsV1_3), Some(SslProtocol::TlsV1_2)]
        );
        for p in &served.probes {
            assert_eq!(p.borrow().errors(), vec![], "{:?}", p.borrow().error_texts);
        }
    });
}

/// An RSA key signs with RSA-PSS (TLS 1.3, and TLS 1.2 by preference) and
/// with PKCS#1 v1.5 (TLS 1.2 when the client offers nothing else): every
/// way the key that stands in for the token key passes signatures on.
#[test]
fn rsa_server_key_on_a_token_signs_pss_and_pkcs1() {
    on_token("rsa_server_key_on_a_token_signs_pss_and_pkcs1", || {
        let config =
            token_config("server-rsa.pem", "server-rsa", Some(PIN)).expect("configuration");
        let mut reactor = Reactor::new().unwrap();
        let (port, _) = serve(&mut reactor, config, |_, _| panic!("no PIN asked"));
        let ways: [&[&str]; 3] = [
            &["-tls1_3"],
            &["-tls1_2", "-sigalgs", "RSA-PSS+SHA256"],
            &["-tls1_2", "-sigalgs", "RSA+SHA256"],
        ];
        for args in ways {
            let mut client = s_client(port, args);
            expect_pong(&mut reactor, &mut client);
            assert_eq!(
                attributes(&served_subject(&client)),
                leaf_subject("server-rsa.pem"),
                "{args:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// The client's key on the token
// ---------------------------------------------------------------------------

/// `openssl s_server` that requires a client certificate from the test PKI.
fn s_server_requiring_a_client_certificate() -> OpensslServer {
    let mut args = server_cert_args();
    args.extend(
        [
            "-Verify",
            "1",
            "-verify_return_error",
            "-CAfile",
            &ca_str("root-ca.pem"),
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s_server(&args, None, None, false)
}

/// Connects a client with `config` to `server`, sending "hello"; returns
/// the reactor, the socket and its probe.
fn connect_client(
    config: SslConfiguration,
    server: &OpensslServer,
) -> (Reactor, sslsocket::SocketId, Shared) {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, true);
    let socket = reactor.socket(id).unwrap();
    socket.write(b"hello from the token\n").unwrap();
    socket
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    (reactor, id, probe)
}

fn expect_client_authenticated(server: &mut OpensslServer) {
    let out = server.proc.stdout_text();
    assert!(
        without_spaces(&out).contains(&without_spaces(
            "subject=O = sslsocket, CN = sslsocket test client"
        )),
        "s_server's output: {out}"
    );
}

#[test]
fn client_key_on_a_token_authenticates_to_openssl_s_server() {
    on_token(
        "client_key_on_a_token_authenticates_to_openssl_s_server",
        || {
            let mut server = s_server_requiring_a_client_certificate();
            let config = token_config("client.pem", "client", Some(PIN)).expect("configuration");
            let (mut reactor, id, probe) = connect_client(config, &server);
            run_until_stdout(&mut reactor, &mut server.proc, b"hello from the token\n");
            expect_client_authenticated(&mut server);
            reactor.socket(id).unwrap().disconnect_from_host();
            run_until(&mut reactor, TIMEOUT, "disconnected", |_| {
                probe.borrow().disconnected()
            });
            let p = probe.borrow();
            assert!(p.handshake_done());
            assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
        },
    );
}

// ---------------------------------------------------------------------------
// The PIN answered later
// ---------------------------------------------------------------------------

/// A server without a configured PIN: the accepted socket asks; another
/// thread answers a moment later; the waiting handshake then completes,
/// and the next connection does not ask again.
#[test]
fn server_pin_answered_later_from_another_thread() {
    on_token("server_pin_answered_later_from_another_thread", || {
        let config = token_config("server.pem", "server", None).expect("configuration");
        let requests = config.pin_requests();
        assert_eq!(requests.len(), 1, "the key waits for its PIN");
        assert_eq!(requests[0].token_label(), TOKEN);
        assert_eq!(requests[0].key_url(), key_url("server"));
        assert!(!requests[0].is_retry());
        let mut reactor = Reactor::new().unwrap();
        let (port, served) = serve(&mut reactor, config.clone(), |_, request| {
            let request = request.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                request.provide(PIN).expect("the right PIN");
            });
        });
        let started = Instant::now();
        let mut client = s_client(port, &[]);
        expect_pong(&mut reactor, &mut client);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(config.pin_requests().is_empty(), "logged in");
        // The log is caught (GnuTLS's too), so the PIN check after each
        // test looks at something.
        assert!(logged("logged in to PKCS#11 token \"sslsocket\""));
        assert!(logged("sslsocket::gnutls"));
        let mut again = s_client(port, &[]);
        expect_pong(&mut reactor, &mut again);
        assert_eq!(served.borrow().pin_requests.len(), 1, "asked once");
    });
}

/// A client without a configured PIN asks before its handshake; a wrong
/// PIN given from a timer fails that connection with a clear error (and
/// is not tried again); the next connection asks again, as a retry, and
/// the right PIN lets it authenticate.
#[test]
fn client_wrong_pin_from_a_timer_then_the_right_one() {
    on_token("client_wrong_pin_from_a_timer_then_the_right_one", || {
        let mut server = s_server_requiring_a_client_certificate();
        let config = token_config("client.pem", "client", None).expect("configuration");

        let (mut reactor, id, probe) = connect_client(config.clone(), &server);
        let asked: Rc<RefCell<Vec<PinRequest>>> = Rc::default();
        let record = asked.clone();
        reactor
            .socket(id)
            .unwrap()
            .pin_required()
            .connect(move |_, cx, request| {
                record.borrow_mut().push(request.clone());
                let request = request.clone();
                cx.start_timer(Duration::from_millis(100), move |_, _| {
                    let error = request.provide(WRONG_PIN).expect_err("a wrong PIN");
                    assert_eq!(pkcs11_kind(&error), Pkcs11ErrorKind::WrongPin);
                });
            });
        let started = Instant::now();
        run_until(&mut reactor, TIMEOUT, "the connection to fail", |_| {
            !probe.borrow().errors().is_empty()
        });
        assert!(started.elapsed() < Duration::from_secs(10), "no hang");
        {
            let p = probe.borrow();
            assert!(!p.handshake_done());
            let text = &p.error_texts[0];
            assert!(
                text.contains(&format!("PKCS#11 token \"{TOKEN}\""))
                    && text.contains("wrong PIN (CKR_PIN_INCORRECT)"),
                "{text}"
            );
        }
        assert_eq!(asked.borrow().len(), 1);
        assert!(!asked.borrow()[0].is_retry());

        // The next connection asks again; answered at once, in the slot.
        let (mut reactor, id, probe) = connect_client(config, &server);
        let record = asked.clone();
        reactor
            .socket(id)
            .unwrap()
            .pin_required()
            .connect(move |_, _, request| {
                record.borrow_mut().push(request.clone());
                request.provide(PIN).expect("the right PIN");
            });
        run_until_stdout(&mut reactor, &mut server.proc, b"hello from the token\n");
        expect_client_authenticated(&mut server);
        let second = &asked.borrow()[1];
        assert!(second.is_retry(), "the request says the last PIN was wrong");
        assert!(probe.borrow().handshake_done());
    });
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A wrong configured PIN fails the build at once, naming the token and
/// the problem; the token is not locked by it (the right PIN works next).
#[test]
fn a_wrong_pin_fails_the_build_with_a_clear_error() {
    on_token("a_wrong_pin_fails_the_build_with_a_clear_error", || {
        let started = Instant::now();
        let error = token_config("server.pem", "server", Some(WRONG_PIN)).expect_err("a wrong PIN");
        assert!(started.elapsed() < Duration::from_secs(10), "no hang");
        assert_eq!(pkcs11_kind(&error), Pkcs11ErrorKind::WrongPin);
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "PKCS#11 token \"{TOKEN}\": wrong PIN (CKR_PIN_INCORRECT)"
            )),
            "{text}"
        );
        // The token now warns that attempts are running out; a request
        // made now says so.
        let waiting = token_config("server.pem", "server", None).expect("configuration");
        let request = &waiting.pin_requests()[0];
        assert!(
            request.is_count_low(),
            "SoftHSM flags a low count after a failure"
        );
        token_config("server.pem", "server", Some(PIN)).expect("the right PIN still works");
    });
}

#[test]
fn a_missing_token_or_key_or_the_wrong_key_is_named() {
    on_token("a_missing_token_or_key_or_the_wrong_key_is_named", || {
        let build = |chain: &str, url: &str| {
            SslConfiguration::builder()
                .system_ca_certificates(false)
                .add_local_certificate_pkcs11(ca(chain), url, Some(PIN))
                .build()
                .expect_err("refused")
        };
        let absent = build(
            "server.pem",
            "pkcs11:token=absent;object=server;type=private",
        );
        assert!(
            matches!(&absent, Error::Pkcs11 { token, kind: Pkcs11ErrorKind::TokenNotPresent, .. } if token == "absent"),
            "{absent:?}"
        );
        assert!(absent.to_string().contains("no such token"), "{absent}");
        let no_key = build("server.pem", &key_url("nothing"));
        assert_eq!(
            pkcs11_kind(&no_key),
            Pkcs11ErrorKind::KeyNotFound,
            "{no_key}"
        );
        let wrong_key = build("server.pem", &key_url("client"));
        assert_eq!(
            pkcs11_kind(&wrong_key),
            Pkcs11ErrorKind::KeyMismatch,
            "{wrong_key}"
        );
        let not_a_url = build("server.pem", "/etc/ssl/private/server.key");
        assert!(
            matches!(not_a_url, Error::InvalidCertificateData { .. }),
            "{not_a_url:?}"
        );
        // A PIN in the URL is used, and never shown.
        let in_url = format!("{}?pin-value={WRONG_PIN}", key_url("server"));
        let error = build("server.pem", &in_url);
        assert_eq!(pkcs11_kind(&error), Pkcs11ErrorKind::WrongPin, "{error}");
        assert!(!format!("{error:?}").contains(WRONG_PIN), "{error:?}");
    });
}

/// A server socket that waits for a PIN nobody gives fails with its
/// handshake timeout: nothing hangs.
#[test]
fn an_unanswered_pin_request_ends_with_the_handshake_timeout() {
    on_token(
        "an_unanswered_pin_request_ends_with_the_handshake_timeout",
        || {
            let config = token_config("server.pem", "server", None).expect("configuration");
            let mut reactor = Reactor::new().unwrap();
            let id = reactor
                .listen("127.0.0.1:0".parse().unwrap(), config)
                .expect("listen");
            let server = reactor.server(id).unwrap();
            server.set_handshake_timeout(Some(Duration::from_millis(500)));
            let port = server.local_address().port();
            let failures: Rc<RefCell<Vec<String>>> = Rc::default();
            let record = failures.clone();
            server
                .error_occurred()
                .connect(move |_, _, (_, error)| record.borrow_mut().push(error.to_string()));
            let mut client = s_client(port, &[]);
            run_until(&mut reactor, TIMEOUT, "the handshake timeout", |_| {
                !failures.borrow().is_empty()
            });
            assert!(
                failures.borrow()[0].contains("the handshake timed out"),
                "{:?}",
                failures.borrow()
            );
            let status = client.wait(TIMEOUT);
            assert!(!status.success(), "s_client got no handshake");
        },
    );
}

// ---------------------------------------------------------------------------
// The serve example with its key on the token, and curl
// ---------------------------------------------------------------------------

/// Starts `serve` with `ca/server.pem` and the token's server key, on
/// 127.0.0.1:0, serving `root`.
fn start_serve(root: &Path, pass: Option<&str>) -> Proc {
    let mut args = vec![
        "--cert".to_owned(),
        ca_str("server.pem"),
        "--key".to_owned(),
        key_url("server"),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--root".to_owned(),
        root.to_str().expect("UTF-8 path").to_owned(),
    ];
    if let Some(pass) = pass {
        args.extend(["--pass".to_owned(), pass.to_owned()]);
    }
    Spawn::new(example("serve").to_str().expect("UTF-8 path"))
        .args(args)
        .null_stdin()
        .start()
}

#[test]
fn serve_with_a_token_key_answers_curl() {
    on_token("serve_with_a_token_key_answers_curl", || {
        let site = TempDir::new("pkcs11-site");
        site.write(
            "hello.txt",
            b"served with a key that never left the token\n",
        );
        let mut serve = start_serve(site.path(), Some(PIN));
        let address = serve.wait_for_line("127.0.0.1:", TIMEOUT);
        let port = address.rsplit(':').next().unwrap().to_owned();
        let mut curl = Spawn::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "--cacert",
                &ca_str("root-ca.pem"),
            ])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/hello.txt"))
            .null_stdin()
            .start();
        let status = curl.wait(TIMEOUT);
        assert!(status.success(), "curl: {status}\n{}", curl.stderr_text());
        assert_eq!(
            curl.stdout_text(),
            "served with a key that never left the token\n"
        );

        // A wrong PIN, or none: serve says so and stops.
        for (pass, says) in [
            (Some(WRONG_PIN), "wrong PIN (CKR_PIN_INCORRECT)"),
            (None, "needs its PIN: give it with --pass"),
        ] {
            let mut refused = start_serve(site.path(), pass);
            let status = refused.wait(TIMEOUT);
            let stderr = refused.stderr_text();
            assert_eq!(status.code(), Some(1), "{stderr}");
            assert!(stderr.contains(says), "{stderr}");
            assert!(!stderr.contains(WRONG_PIN), "{stderr}");
        }
    });
}
