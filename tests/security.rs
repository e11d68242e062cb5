//! The security defaults, reviewed against real peers: verification on by
//! default, TLS 1.2 as the minimum, forward-secret AEAD suites only (unless
//! the program sets a priority string), no renegotiation, SNI sent (and not for
//! IP addresses), RFC 6125 host name matching (DNS and IP SANs, wildcards),
//! weak certificates refused, and no secret in the logs even at trace level.
//!
//! Covered elsewhere, not repeated here: SHA-1 and RSA-1024 chains refused
//! in a handshake and by `getslash` (tests/verification.rs `sha1`,
//! `rsa1024`, `getslash_names_the_problem_of_each_broken_certificate`); a
//! close-delimited body cut without close_notify is `Error::Truncated`
//! (tests/client.rs `peer_closing_tcp_without_close_notify_is_truncation`)
//! and makes `getslash` exit 1 (tests/verification.rs
//! `getslash_close_delimited_body_without_close_notify_fails`); a cut inside
//! a record: tests/faults.rs; our client refusing a server's TLS 1.2
//! HelloRequest (tests/client.rs `tls12_renegotiation_request_is_refused`).
//!
//! This file is its own test binary because of the logger: GnuTLS's log
//! bridge is installed once per process, at the first session, and only if
//! trace logging is on for `sslsocket::gnutls` then. Every test here
//! therefore installs the capturing logger before it creates anything.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Once;

use common::*;
use sslsocket::{
    Certificate, HandshakeParameter, PeerVerifyMode, Reactor, RefusedBy, SocketId,
    SslConfiguration, SslErrorKind, SslProtocol,
};

// ---------------------------------------------------------------------------
// A capturing logger
// ---------------------------------------------------------------------------

/// Keeps every `sslsocket*` record logged on a thread that asked for it
/// (tests run in parallel; each captures its own thread, where its reactor,
/// and so GnuTLS, runs).
struct Capture;

thread_local! {
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("sslsocket")
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        CAPTURED.with(|c| {
            if let Some(lines) = c.borrow_mut().as_mut() {
                lines.push(format!(
                    "{} {} {}",
                    record.level(),
                    record.target(),
                    record.args()
                ));
            }
        });
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Installs the logger at trace level, once per process: every test calls
/// this first, before any TLS session exists.
fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    assert!(
        log::log_enabled!(target: "sslsocket::gnutls", log::Level::Trace),
        "trace logging for sslsocket::gnutls"
    );
}

/// Runs `f` capturing this thread's log; returns the lines.
fn capture_log(f: impl FnOnce()) -> Vec<String> {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    CAPTURED.with(|c| c.borrow_mut().take().unwrap())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn trusting_root() -> SslConfiguration {
    client_config()
}

/// For servers that present a leaf without its intermediate (s_server's
/// `-cert2` takes no chain): the intermediate is trusted too.
fn trusting_root_and_intermediate() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_ca_certificates_file(ca("intermediate-ca.pem"))
        .build()
        .unwrap()
}

fn start_s_server(args: &[&str], ipv6: bool) -> OpensslServer {
    s_server(args, None, None, ipv6)
}

/// Connects to `host:port` with `config` (and a verify name), sends a GET
/// once encrypted and runs until the socket disconnected.
fn fetch(host: &str, port: u16, config: SslConfiguration, verify_name: Option<&str>) -> Shared {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, true);
    let socket = reactor.socket(id).unwrap();
    if let Some(name) = verify_name {
        socket.set_peer_verify_name(name);
    }
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    });
    socket.connect_to_host_encrypted(host, port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
    probe
}

fn assert_verification_failed(p: &Probe, kinds: &[SslErrorKind], what: &str) {
    assert!(!p.handshake_done(), "{what}: the handshake completed");
    assert_eq!(
        p.errors(),
        vec![Caught::CertificateVerification(kinds.to_vec())],
        "{what}: {:?}",
        p.error_texts
    );
    assert_eq!(p.data, b"", "{what}: no data from a refused peer");
}

fn assert_served(p: &Probe, what: &str) {
    assert!(p.handshake_done(), "{what}: {:?}", p.error_texts);
    assert_eq!(p.errors(), vec![], "{what}: {:?}", p.error_texts);
    assert!(
        p.data.starts_with(b"HTTP/1.0 200 ok\r\n"),
        "{what}: {:?}",
        String::from_utf8_lossy(&p.data[..p.data.len().min(80)])
    );
}

fn chain(name: &str) -> Vec<Certificate> {
    certificates(&ca(name))
}

/// Our server listening on a free loopback port, and what it reported.
struct OurServer {
    port: u16,
    /// What `error_occurred` reported, in order.
    errors: Rc<RefCell<Vec<Caught>>>,
    /// The same errors, as `Display` tells them.
    error_texts: Rc<RefCell<Vec<String>>>,
    /// How many of its sockets completed a handshake.
    handshakes: Rc<Cell<usize>>,
}

fn our_server(reactor: &mut Reactor, config: SslConfiguration) -> OurServer {
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .unwrap();
    let server_ref = reactor.server(server).unwrap();
    server_ref.set_handshake_timeout(None);
    let errors: Rc<RefCell<Vec<Caught>>> = Rc::default();
    let error_texts: Rc<RefCell<Vec<String>>> = Rc::default();
    let handshakes: Rc<Cell<usize>> = Rc::default();
    let (e, t) = (errors.clone(), error_texts.clone());
    server_ref
        .error_occurred()
        .connect(move |_, _, (_, error)| {
            e.borrow_mut().push(Caught::of(error));
            t.borrow_mut().push(error.to_string());
        });
    let h = handshakes.clone();
    server_ref.new_connection().connect(move |_, cx, &id| {
        let h = h.clone();
        cx.socket(id)
            .unwrap()
            .handshake_complete()
            .connect(move |_, _, _| h.set(h.get() + 1));
    });
    OurServer {
        port: server_ref.local_address().port(),
        errors,
        error_texts,
        handshakes,
    }
}

// ---------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------

#[test]
fn the_default_configuration_is_the_secure_one() {
    install_logger();
    for config in [
        SslConfiguration::default_configuration().unwrap(),
        SslConfiguration::builder().build().unwrap(),
    ] {
        assert_eq!(config.peer_verify_mode(), PeerVerifyMode::AutoVerifyPeer);
        assert!(config.uses_system_ca_certificates());
        assert!(config.ca_certificates().is_empty());
        assert_eq!(
            config.protocols(),
            (SslProtocol::TlsV1_2, SslProtocol::TlsV1_3)
        );
        assert!(config.local_certificate().is_none());
        assert!(!config.handshake_must_interrupt_on_error());
    }
}

#[test]
fn the_default_configuration_refuses_a_self_signed_server() {
    install_logger();
    let args = [
        "-www",
        "-cert",
        &ca_str("broken/self-signed.pem"),
        "-key",
        &ca_str("broken/self-signed.key"),
    ];
    let server = start_s_server(&args, false);
    let config = SslConfiguration::default_configuration().unwrap();
    let p = fetch("localhost", server.port, config, None);
    let p = p.borrow();
    assert_verification_failed(&p, &[SslErrorKind::SelfSignedCertificate], "self-signed");
    // unknown_ca tells the server why.
    assert_eq!(p.alerts_sent, vec![48]);
}

#[test]
fn the_default_configuration_refuses_a_chain_to_a_root_outside_the_system_store() {
    install_logger();
    let args = server_cert_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-www");
    let server = start_s_server(&args, false);
    let default = SslConfiguration::default_configuration().unwrap();
    let p = fetch("localhost", server.port, default, None);
    assert_verification_failed(
        &p.borrow(),
        &[SslErrorKind::UnableToGetLocalIssuerCertificate],
        "test root not trusted",
    );
    // The control: trusting the test root, the same server is accepted.
    let p = fetch("localhost", server.port, trusting_root(), None);
    assert_served(&p.borrow(), "test root trusted");
}

// ---------------------------------------------------------------------------
// TLS 1.2 minimum
// ---------------------------------------------------------------------------

/// Arguments for an s_server that speaks only `version_flag` (`-tls1` or
/// `-tls1_1`): OpenSSL 3 allows TLS < 1.2 only at security level 0.
fn old_tls_server_args(version_flag: &str) -> Vec<String> {
    let mut args = server_cert_args();
    args.extend(
        [version_flag, "-cipher", "DEFAULT:@SECLEVEL=0", "-www"]
            .iter()
            .map(|s| s.to_string()),
    );
    args
}

/// `openssl s_client` speaking `version_flag` to `port`; returns its
/// output (stdout and stderr).
fn old_tls_client(port: u16, version_flag: &str) -> (bool, String) {
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([version_flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
        .args([
            "-servername",
            "localhost",
            "-CAfile",
            &ca_str("root-ca.pem"),
        ])
        .null_stdin()
        .start();
    let status = client.wait(TIMEOUT);
    let out = format!("{}\n{}", client.stdout_text(), client.stderr_text());
    (status.success(), out)
}

#[test]
fn tls_1_0_and_1_1_servers_are_refused_by_the_default_client() {
    install_logger();
    for (flag, name) in [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")] {
        let args = old_tls_server_args(flag);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = start_s_server(&args, false);
        // The control: the server does speak the old version (this OpenSSL
        // can, at security level 0).
        let (ok, out) = old_tls_client(server.port, flag);
        assert!(
            ok && out.contains(&format!("Protocol  : {name}\n")),
            "{flag}: openssl s_client could not speak {name} to s_server: {out}"
        );
        // Our client, with the default protocols (trusting the test root so
        // that only the version matters), is refused: it offers only TLS
        // 1.2 and 1.3 (supported_versions), so OpenSSL answers with a
        // protocol_version alert (70) instead of a ServerHello.
        let p = fetch("localhost", server.port, trusting_root(), None);
        let p = p.borrow();
        assert!(!p.handshake_done(), "{flag}: the handshake completed");
        assert_eq!(
            p.events,
            vec![
                Event::Connected,
                Event::Error(Caught::Refused(
                    RefusedBy::Peer,
                    Some(HandshakeParameter::ProtocolVersion)
                )),
                Event::Disconnected
            ],
            "{flag}: {:?}",
            p.error_texts
        );
        assert!(
            p.error_texts[0].contains("protocol version"),
            "{flag}: not a clear error: {}",
            p.error_texts[0]
        );
        assert_eq!(p.data, b"");
    }
}

#[test]
fn tls_1_0_and_1_1_clients_are_refused_by_our_server() {
    install_logger();
    for flag in ["-tls1", "-tls1_1"] {
        let mut reactor = Reactor::new().unwrap();
        let server = our_server(&mut reactor, server_config());
        let mut client = Spawn::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", server.port),
            ])
            .args([flag, "-cipher", "DEFAULT:@SECLEVEL=0"])
            .null_stdin()
            .start();
        run_until(&mut reactor, TIMEOUT, "the refusal", |_| {
            !server.errors.borrow().is_empty()
        });
        let status = client.wait(TIMEOUT);
        assert!(!status.success(), "{flag}: s_client succeeded");
        assert_eq!(
            server.handshakes.get(),
            0,
            "{flag}: our server completed a handshake"
        );
        let reported = server.errors.borrow();
        assert_eq!(reported.len(), 1);
        assert_eq!(
            reported[0],
            Caught::Refused(RefusedBy::Us, Some(HandshakeParameter::ProtocolVersion)),
            "{flag}"
        );
        let offered = if flag == "-tls1" { "TLS1.0" } else { "TLS1.1" };
        let text = &server.error_texts.borrow()[0];
        assert!(
            text.contains(&format!(
                "no protocol version in common with the client: we accept TLS1.2, TLS1.3; \
                 it offered {offered} or earlier"
            )),
            "{flag}: {text}"
        );
        let out = client.stderr_text();
        assert!(out.contains("protocol version"), "{flag}: s_client: {out}");
    }
}

// ---------------------------------------------------------------------------
// Forward-secret AEAD suites only
// ---------------------------------------------------------------------------

/// The arguments that make `s_server` present the ECDSA chain
/// (`server.pem`) or the RSA one (`server-rsa.pem`), with its intermediate.
fn chain_args(rsa: bool) -> Vec<String> {
    let (leaf, key) = match rsa {
        true => ("server-rsa.pem", "server-rsa.key"),
        false => ("server.pem", "server.key"),
    };
    [
        "-cert",
        &ca_str(leaf),
        "-cert_chain",
        &ca_str("intermediate-ca.pem"),
    ]
    .into_iter()
    .chain(["-key", &ca_str(key)])
    .map(str::to_owned)
    .collect()
}

/// An `s_server -www` that speaks TLS 1.2 with the suites of `cipher` (an
/// OpenSSL cipher list) only.
fn tls12_server(cipher: &str, rsa: bool) -> OpensslServer {
    let mut args = chain_args(rsa);
    args.extend(["-tls1_2", "-cipher", cipher, "-www"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_s_server(&args, false)
}

/// A client configuration trusting the test root, with the priority string
/// `priority` instead of the default when given.
fn client_with_priority(priority: Option<&str>) -> SslConfiguration {
    let builder = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"));
    match priority {
        Some(priority) => builder.priority_string(priority),
        None => builder,
    }
    .build()
    .unwrap()
}

/// The suites GnuTLS 3.7.9 still offered by default in TLS 1.2 that are
/// not forward secret (static RSA key exchange) or not AEAD (CBC), as
/// OpenSSL names them, and which chain the server needs for each.
const REFUSED_SUITES: [(&str, bool); 4] = [
    ("ECDHE-ECDSA-AES128-SHA", false),
    ("ECDHE-RSA-AES256-SHA", true),
    ("AES128-SHA", true),
    ("AES128-GCM-SHA256", true),
];

#[test]
fn the_default_client_refuses_cbc_and_static_rsa_servers() {
    install_logger();
    for (cipher, rsa) in REFUSED_SUITES {
        let server = tls12_server(cipher, rsa);
        let p = fetch("localhost", server.port, client_with_priority(None), None);
        let p = p.borrow();
        // No suite in common: OpenSSL answers the ClientHello with a
        // handshake_failure alert (40), which does not say what it wanted.
        assert!(!p.handshake_done(), "{cipher}: negotiated {:?}", p.cipher);
        assert_eq!(
            p.errors(),
            vec![Caught::Refused(RefusedBy::Peer, None)],
            "{cipher}: {:?}",
            p.error_texts
        );
        assert_eq!(p.alerts_received, vec![40], "{cipher}");
        // The program's own priority string is its choice: NORMAL still
        // negotiates the suite.
        let p = fetch(
            "localhost",
            server.port,
            client_with_priority(Some("NORMAL")),
            None,
        );
        assert_served(&p.borrow(), &format!("{cipher} with NORMAL"));
    }
    for (cipher, rsa, iana) in [
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            false,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            true,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            false,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
    ] {
        let server = tls12_server(cipher, rsa);
        let p = fetch("localhost", server.port, client_with_priority(None), None);
        let p = p.borrow();
        assert_served(&p, cipher);
        assert_eq!(p.cipher.as_deref(), Some(iana));
    }
}

/// A server configuration with both an ECDSA and an RSA chain, so that a
/// static RSA key exchange would be possible.
fn dual_chain_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .add_local_certificate_files(ca("server-rsa.pem"), ca("server-rsa.key"), None)
        .build()
        .unwrap()
}

/// Runs `openssl s_client -tls1_2 -cipher CIPHER` against our server on
/// `port` until it exits; returns whether it succeeded and its output.
fn tls12_client(reactor: &mut Reactor, port: u16, cipher: &str) -> (bool, String) {
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-tls1_2", "-cipher", cipher, "-servername", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .null_stdin()
        .start();
    run_until(reactor, TIMEOUT, "s_client to exit", |_| {
        client.try_wait().is_some()
    });
    let status = client.wait(TIMEOUT);
    let out = format!("{}\n{}", client.stdout_text(), client.stderr_text());
    (status.success(), out)
}

#[test]
fn our_server_refuses_cbc_and_static_rsa_clients() {
    install_logger();
    let mut reactor = Reactor::new().unwrap();
    let server = our_server(&mut reactor, dual_chain_config());
    let (errors, handshakes) = (&server.errors, &server.handshakes);
    for (cipher, _) in REFUSED_SUITES {
        let (ok, out) = tls12_client(&mut reactor, server.port, cipher);
        assert!(!ok, "{cipher}: s_client succeeded: {out}");
        assert!(
            out.contains("handshake failure"),
            "{cipher}: s_client: {out}"
        );
        run_until(&mut reactor, TIMEOUT, "the refusal", |_| {
            !errors.borrow().is_empty()
        });
        let error = errors.borrow_mut().remove(0);
        assert_eq!(
            error,
            Caught::Refused(RefusedBy::Us, Some(HandshakeParameter::CipherSuite)),
            "{cipher}"
        );
        assert_eq!(
            handshakes.get(),
            0,
            "{cipher}: our server completed a handshake"
        );
    }
    for cipher in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ] {
        let before = handshakes.get();
        let (ok, out) = tls12_client(&mut reactor, server.port, cipher);
        assert!(ok, "{cipher}: s_client failed: {out}");
        assert!(
            out.contains(&format!("Cipher is {cipher}")),
            "{cipher}: {out}"
        );
        run_until(&mut reactor, TIMEOUT, "our handshake", |_| {
            handshakes.get() > before
        });
    }
    assert_eq!(errors.borrow().len(), 0, "{:?}", errors.borrow());
}

// ---------------------------------------------------------------------------
// Renegotiation
// ---------------------------------------------------------------------------

#[test]
fn our_server_refuses_a_client_initiated_renegotiation() {
    install_logger();
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server_ref = reactor.server(server).unwrap();
    server_ref.set_handshake_timeout(None);
    let port = server_ref.local_address().port();
    let accepted: std::rc::Rc<RefCell<Vec<Shared>>> = Default::default();
    let handshakes = std::rc::Rc::new(std::cell::Cell::new(0));
    let (a, h) = (accepted.clone(), handshakes.clone());
    server_ref.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        let h = h.clone();
        socket
            .handshake_complete()
            .connect(move |_, _, _| h.set(h.get() + 1));
        // Answers every line with "echo: LINE".
        socket.ready_read().connect(|s, _, _| {
            while let Some(line) = s.take_line() {
                let mut answer = b"echo: ".to_vec();
                answer.extend_from_slice(&line);
                s.write(&answer).unwrap();
            }
        });
        a.borrow_mut().push(probe(socket, false));
    });
    // Not -quiet: its -ign_eof would turn the "R" command off.
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-tls1_2", "-servername", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .start();
    client.write_stdin(b"before\n");
    run_until_stdout(&mut reactor, &mut client, b"echo: before\n");
    // "R" makes s_client send a new ClientHello: a renegotiation.
    client.write_stdin(b"R\n");
    run_until(&mut reactor, TIMEOUT, "the end of the connection", |_| {
        let a = accepted.borrow();
        a.len() == 1 && a[0].borrow().disconnected()
    });
    let status = client.wait(TIMEOUT);
    let stderr = client.stderr_text();
    let a = accepted.borrow();
    let p = a[0].borrow();
    assert!(stderr.contains("RENEGOTIATING"), "s_client: {stderr}");
    assert_eq!(handshakes.get(), 1, "no second handshake");
    // Refused with a no_renegotiation warning (100), and that is all our
    // server says: it would go on (GnuTLS's buffered ClientHello is dropped
    // on the next read; see the engine test
    // a_server_refuses_renegotiation_and_the_connection_goes_on), but
    // s_client gives up the connection itself with a fatal alert.
    assert_eq!(p.alerts_sent, vec![100], "{:?}", p.error_texts);
    assert!(
        matches!(&p.errors()[..], [Caught::AlertReceived(_)]),
        "{:?}",
        p.error_texts
    );
    assert!(!status.success());
}

/// TLS 1.3 has no renegotiation but KeyUpdate, which must keep working:
/// refusing renegotiation must not break legitimate post-handshake
/// messages.
#[test]
fn tls13_key_updates_from_openssl_are_followed() {
    install_logger();
    let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = sink.clone();
    let args = server_cert_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    // -msg: s_server logs the KeyUpdate messages it sends (>>>) and
    // receives (<<<).
    args.extend(["-tls1_3", "-msg"]);
    let mut server = s_server(
        &args,
        None,
        Some(Box::new(move |d: &[u8]| {
            s2.lock().unwrap().extend_from_slice(d)
        })),
        false,
    );
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, trusting_root(), true);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the handshake", |_| {
        probe.borrow().handshake_done()
    });
    let mut expected = Vec::new();
    // "k": a KeyUpdate; "K": a KeyUpdate asking us to update ours too.
    for (i, command) in [b"k\n", b"K\n", b"k\n"].iter().enumerate() {
        server.proc.write_stdin(*command);
        // One command per read of s_server's stdin: wait for the update
        // before the data line.
        let sink2 = sink.clone();
        run_until(&mut reactor, TIMEOUT, "s_server's KeyUpdate", |_| {
            key_updates(&sink2.lock().unwrap(), ">>>") == i + 1
        });
        let line = format!("after key update {i}\n");
        server.proc.write_stdin(line.as_bytes());
        expected.extend_from_slice(line.as_bytes());
        let want = expected.clone();
        run_until(&mut reactor, TIMEOUT, "data after a key update", |_| {
            probe.borrow().data == want || probe.borrow().disconnected()
        });
        // And our direction, after the update.
        let up = format!("from the client {i}\n");
        reactor.socket(id).unwrap().write(up.as_bytes()).unwrap();
        let sink = sink.clone();
        run_until(&mut reactor, TIMEOUT, "s_server to print our data", |_| {
            contains(&sink.lock().unwrap(), up.as_bytes()) || probe.borrow().disconnected()
        });
    }
    let p = probe.borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.data, expected);
    assert_eq!(p.alerts_sent, Vec::<u8>::new());
    // "K" asked for our update: exactly one came back.
    assert_eq!(key_updates(&sink.lock().unwrap(), "<<<"), 1);
}

/// How many KeyUpdate messages s_server -msg logged going `direction`
/// (">>>" sent, "<<<" received).
fn key_updates(output: &[u8], direction: &str) -> usize {
    String::from_utf8_lossy(output)
        .lines()
        .filter(|l| l.starts_with(direction) && l.ends_with("KeyUpdate"))
        .count()
}

// ---------------------------------------------------------------------------
// SNI
// ---------------------------------------------------------------------------

/// s_server presenting `default` unless the client's SNI is `name`, then
/// `for_name`; -msg makes it print the SNI it receives.
fn sni_server(default: &str, name: &str, for_name: &str, ipv6: bool) -> OpensslServer {
    let pem = |n: &str| ca_str(&format!("{n}.pem"));
    let key = |n: &str| ca_str(&format!("{n}.key"));
    let args = [
        "-www".to_owned(),
        "-msg".to_owned(),
        "-cert".to_owned(),
        pem(default),
        "-key".to_owned(),
        key(default),
        "-servername".to_owned(),
        name.to_owned(),
        "-cert2".to_owned(),
        pem(for_name),
        "-key2".to_owned(),
        key(for_name),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    start_s_server(&args, ipv6)
}

/// The SNI lines s_server printed for its (one) connection: it prints them
/// while it reads the ClientHello, before it logs its ServerHello.
fn sni_seen(server: &mut OpensslServer) -> Vec<String> {
    server.proc.wait_for_stdout(b"], ServerHello\n", TIMEOUT);
    let text = server.proc.stdout_text();
    text.lines()
        .filter(|l| l.starts_with("Hostname in TLS extension"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn sni_is_sent_for_a_host_name() {
    install_logger();
    // Only with SNI "localhost" does the server present the certificate
    // for localhost; without, a certificate for wrong.example.
    let mut server = sni_server("broken/wrong-host", "localhost", "server", false);
    let p = fetch(
        "localhost",
        server.port,
        trusting_root_and_intermediate(),
        None,
    );
    let p = p.borrow();
    assert_served(&p, "SNI localhost");
    assert_eq!(p.chain[0].subject_dn(), chain("server.pem")[0].subject_dn());
    assert_eq!(
        sni_seen(&mut server),
        vec!["Hostname in TLS extension: \"localhost\""]
    );
}

#[test]
fn sni_is_not_sent_for_ip_addresses() {
    install_logger();
    std::net::TcpListener::bind("[::1]:0")
        .expect("IPv6 loopback (::1) is not available on this machine");
    for (host, ipv6) in [("127.0.0.1", false), ("::1", true)] {
        // Were the address sent as SNI, the server would present the
        // certificate for wrong.example.
        let mut server = sni_server("server", host, "broken/wrong-host", ipv6);
        let p = fetch(host, server.port, trusting_root_and_intermediate(), None);
        assert_served(&p.borrow(), host);
        assert_eq!(sni_seen(&mut server), Vec::<String>::new(), "{host}");
    }
}

// ---------------------------------------------------------------------------
// Host names (RFC 6125)
// ---------------------------------------------------------------------------

/// `verify_chain` for each `(name, matches)`.
fn check_names(chain_file: &str, cases: &[(&str, bool)]) {
    let config = trusting_root();
    let chain = chain(chain_file);
    for &(name, matches) in cases {
        let problems: Vec<SslErrorKind> = config
            .verify_chain(&chain, Some(name))
            .iter()
            .map(|e| e.kind())
            .collect();
        let expected = if matches {
            vec![]
        } else {
            vec![SslErrorKind::HostNameMismatch]
        };
        assert_eq!(problems, expected, "{chain_file} for {name:?}");
    }
    // No name: no name check.
    assert_eq!(config.verify_chain(&chain, None), vec![]);
}

#[test]
fn dns_and_ip_subject_alternative_names() {
    install_logger();
    check_names(
        "server.pem",
        &[
            ("localhost", true),
            ("LOCALHOST", true),
            ("LocalHost", true),
            ("127.0.0.1", true),
            ("::1", true),
            ("0:0:0:0:0:0:0:1", true),
            ("127.0.0.2", false),
            ("::2", false),
            ("localhost.example", false),
            ("sub.localhost", false),
            ("localhos", false),
            ("example.org", false),
        ],
    );
}

#[test]
fn wildcards_match_exactly_one_leftmost_label() {
    install_logger();
    check_names(
        "wildcard.pem",
        &[
            ("a.wild.test", true),
            ("A.WILD.TEST", true),
            ("xn--bcher-kva.wild.test", true),
            ("a.b.wild.test", false),
            ("wild.test", false),
            ("awild.test", false),
            ("a.wild.test.example", false),
            ("a.wild.testx", false),
            ("127.0.0.1", false),
        ],
    );
}

#[test]
fn wildcard_certificate_in_a_handshake_with_a_peer_verify_name() {
    install_logger();
    let args = [
        "-www".to_owned(),
        "-cert".to_owned(),
        ca_str("wildcard.pem"),
        "-cert_chain".to_owned(),
        ca_str("intermediate-ca.pem"),
        "-key".to_owned(),
        ca_str("wildcard.key"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = start_s_server(&args, false);
    let p = fetch(
        "localhost",
        server.port,
        trusting_root(),
        Some("a.wild.test"),
    );
    assert_served(&p.borrow(), "a.wild.test");
    for name in ["a.b.wild.test", "wild.test"] {
        let p = fetch("localhost", server.port, trusting_root(), Some(name));
        assert_verification_failed(&p.borrow(), &[SslErrorKind::HostNameMismatch], name);
    }
    // Without a verify name the host name counts: localhost is not
    // *.wild.test.
    let p = fetch("localhost", server.port, trusting_root(), None);
    assert_verification_failed(&p.borrow(), &[SslErrorKind::HostNameMismatch], "localhost");
}

#[test]
fn sha1_and_rsa1024_chains_fail_offline_verification_too() {
    install_logger();
    // The handshakes: tests/verification.rs (sha1, rsa1024).
    let config = trusting_root();
    for name in ["broken/sha1.pem", "broken/rsa1024.pem"] {
        let kinds: Vec<SslErrorKind> = config
            .verify_chain(&chain(name), Some("localhost"))
            .iter()
            .map(|e| e.kind())
            .collect();
        assert_eq!(kinds, vec![SslErrorKind::InsecureAlgorithm], "{name}");
    }
    // The control: the same check passes a good chain.
    assert_eq!(
        config.verify_chain(&chain("server.pem"), Some("localhost")),
        vec![]
    );
}

// ---------------------------------------------------------------------------
// Secrets in the logs
// ---------------------------------------------------------------------------

const MARKER_UP: &str = "sslsocket-secret-marker-from-the-client-7f3a9c";
const MARKER_DOWN: &str = "sslsocket-secret-marker-from-the-server-c9a3f7";
const PASSPHRASE: &str = "sslsocket-test";

/// The base64 body lines of a PEM key file.
fn pem_body_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(ca(name))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

/// The private value of an EC key as hex (from `openssl pkey -text`).
fn private_scalar_hex(name: &str) -> String {
    let mut p = Spawn::new("openssl")
        .args(["pkey", "-in", &ca_str(name), "-noout", "-text"])
        .null_stdin()
        .start();
    assert!(
        p.wait(TIMEOUT).success(),
        "openssl pkey: {}",
        p.stderr_text()
    );
    let text = p.stdout_text();
    let mut hex = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("priv:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') {
                break;
            }
            hex.extend(line.trim().split(':').filter(|b| !b.is_empty()));
        }
    }
    // OpenSSL may print a leading 00 byte.
    let hex = hex.trim_start_matches("00").to_lowercase();
    assert!(hex.len() >= 60, "no private value in: {text}");
    hex
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A mutually authenticated session at `protocol` between our server (its
/// key encrypted with a passphrase) and our client, with data both ways.
fn session_with_data(protocol: SslProtocol) {
    let server_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(
            ca("server.pem"),
            ca("server-encrypted.key"),
            Some(PASSPHRASE),
        )
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .protocols(protocol, protocol)
        .build()
        .unwrap();
    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("client.pem"), ca("client.key"), None)
        .protocols(protocol, protocol)
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config)
        .unwrap();
    let port = reactor.server(server).unwrap().local_address().port();
    let accepted: std::rc::Rc<RefCell<Vec<(SocketId, Shared)>>> = Default::default();
    let a = accepted.clone();
    reactor
        .server(server)
        .unwrap()
        .new_connection()
        .connect(move |_, cx, &id| {
            let socket = cx.socket(id).unwrap();
            socket.handshake_complete().connect(|s, _, _| {
                s.write(MARKER_DOWN.repeat(100).as_bytes()).unwrap();
            });
            a.borrow_mut().push((id, probe(socket, true)));
        });
    let (id, probe) = client_socket(&mut reactor, client_config, true);
    let socket = reactor.socket(id).unwrap();
    socket.write(MARKER_UP.repeat(100).as_bytes()).unwrap();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let want_up = MARKER_UP.len() * 100;
    let want_down = MARKER_DOWN.len() * 100;
    run_until(&mut reactor, TIMEOUT, "data both ways", |_| {
        let a = accepted.borrow();
        probe.borrow().data.len() >= want_down
            && a.len() == 1
            && a[0].1.borrow().data.len() >= want_up
    });
    reactor.socket(id).unwrap().disconnect_from_host();
    run_until(&mut reactor, TIMEOUT, "both ends closed", |_| {
        let a = accepted.borrow();
        probe.borrow().disconnected() && a[0].1.borrow().disconnected()
    });
    let p = probe.borrow();
    assert_eq!(p.protocol, Some(protocol));
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.data, MARKER_DOWN.repeat(100).as_bytes());
    assert_eq!(
        accepted.borrow()[0].1.borrow().data,
        MARKER_UP.repeat(100).as_bytes()
    );
}

#[test]
fn secrets_and_data_are_never_logged_even_at_trace_level() {
    install_logger();
    let lines = capture_log(|| {
        session_with_data(SslProtocol::TlsV1_3);
        session_with_data(SslProtocol::TlsV1_2);
    });
    let log = lines.join("\n");
    // The log is on, at trace level, GnuTLS's own messages included: the
    // handshakes are there (otherwise the checks below prove nothing).
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert!(count("sslsocket::gnutls") > 50, "GnuTLS's log is missing");
    assert!(count("CLIENT HELLO") >= 2, "no ClientHello in the log");
    assert!(count("handshake complete") >= 4, "no handshake in the log");
    assert!(count("TRACE sslsocket::") > 0);

    let mut forbidden: Vec<(String, String)> = Vec::new();
    for key in ["server.key", "server-encrypted.key", "client.key"] {
        for line in pem_body_lines(key) {
            forbidden.push((format!("a line of {key}"), line));
        }
    }
    for key in ["server.key", "client.key"] {
        let scalar = private_scalar_hex(key);
        forbidden.push((format!("the private value of {key}"), scalar.clone()));
        forbidden.push((
            format!("the private value of {key} (upper case)"),
            scalar.to_uppercase(),
        ));
    }
    forbidden.push(("the key's passphrase".into(), PASSPHRASE.into()));
    for marker in [MARKER_UP, MARKER_DOWN] {
        forbidden.push(("application data".into(), marker.into()));
        forbidden.push(("application data (hex)".into(), hex(marker.as_bytes())));
        forbidden.push((
            "application data (hex, upper case)".into(),
            hex(marker.as_bytes()).to_uppercase(),
        ));
    }
    for (what, needle) in &forbidden {
        if let Some(line) = lines.iter().find(|l| l.contains(needle.as_str())) {
            panic!("{what} is in the log: {line}");
        }
    }
    // What GnuTLS prints at the levels that dump key material (9): session
    // keys and secrets.
    for pattern in [
        "SECRET",
        "WRITE KEY",
        "PREMASTER",
        "MASTER",
        "CLIENT_RANDOM",
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(pattern)),
            "{pattern} in the log: {:?}",
            lines.iter().find(|l| l.contains(pattern))
        );
    }
    assert!(!log.is_empty());
}

/// The test above would catch a leak: the same checks find the markers
/// in a log line that contains them (a self-test of the capture).
#[test]
fn the_capture_sees_what_is_logged_on_this_thread() {
    install_logger();
    let lines = capture_log(|| {
        log::trace!(target: "sslsocket::gnutls", "a test line with {MARKER_UP}");
        std::thread::spawn(|| log::trace!(target: "sslsocket::gnutls", "another thread"))
            .join()
            .unwrap();
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(MARKER_UP));
}

/// Handshakes signed with SHA-1 (TLS 1.2) are refused by default, in both
/// roles, as SHA-1 certificates are; a program's own priority string can
/// still allow them.
#[test]
fn sha1_handshake_signatures_are_refused_by_default() {
    install_logger();
    let mut args = chain_args(true);
    args.extend(
        [
            "-tls1_2",
            "-sigalgs",
            "RSA+SHA1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-www",
        ]
        .map(str::to_owned),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = start_s_server(&args, false);
    let p = fetch("localhost", server.port, client_with_priority(None), None);
    let p = p.borrow();
    assert!(!p.handshake_done(), "negotiated {:?}", p.cipher);
    assert_eq!(
        p.errors(),
        vec![Caught::Refused(RefusedBy::Peer, None)],
        "{:?}",
        p.error_texts
    );
    // The control: this server does sign with SHA-1 for a client that
    // allows it.
    let p = fetch(
        "localhost",
        server.port,
        client_with_priority(Some("NORMAL")),
        None,
    );
    assert_served(&p.borrow(), "RSA+SHA1 with NORMAL");

    let mut reactor = Reactor::new().unwrap();
    let ours = our_server(&mut reactor, dual_chain_config());
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", ours.port)])
        .args(["-tls1_2", "-sigalgs", "RSA+SHA1:ECDSA+SHA1"])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .null_stdin()
        .start();
    run_until(&mut reactor, TIMEOUT, "the refusal", |_| {
        !ours.errors.borrow().is_empty()
    });
    assert!(!client.wait(TIMEOUT).success());
    assert_eq!(
        ours.errors.borrow()[0],
        Caught::Refused(RefusedBy::Us, Some(HandshakeParameter::SignatureAlgorithm))
    );
    assert_eq!(ours.handshakes.get(), 0);
}
