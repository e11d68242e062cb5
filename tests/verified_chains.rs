//! Reusing a recent verification of the same peer chain
//! (`cache_verified_chains`, on by default), against `openssl s_server`:
//! a second full handshake presenting the chain the configuration verified
//! before skips the chain's verification, and nothing else does: another
//! name, another chain or the cache turned off verify in full.
//!
//! What the engine did is read from its debug log, captured per thread
//! (each test drives its reactor on its own thread).

mod common;

use std::cell::RefCell;
use std::sync::Once;

use common::*;
use sslsocket::{Reactor, SslConfiguration, SslErrorKind};

/// The engine's debug line for a reused verification.
const REUSED: &str = "peer chain verified before";

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Keeps sslsocket's log lines of the current thread.
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target().starts_with("sslsocket")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            LINES.with(|l| l.borrow_mut().push(record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

/// How many handshakes of this thread reused a verification so far.
fn reuses() -> usize {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
    });
    LINES.with(|l| l.borrow().iter().filter(|l| l.contains(REUSED)).count())
}

/// Trusts the test root; no resumption, so every handshake is a full one
/// with the server's certificates.
fn config(cache: bool) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .session_resumption(false)
        .cache_verified_chains(cache)
        .build()
        .unwrap()
}

fn serve(args: Vec<String>) -> OpensslServer {
    let mut all = vec!["-www".to_owned()];
    all.extend(args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    s_server(&all, None, None, false)
}

/// One GET over a fresh connection verified for `verify_name`; returns the
/// probe when the connection is over.
fn fetch(port: u16, config: &SslConfiguration, verify_name: &str) -> Shared {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config.clone(), true);
    let socket = reactor.socket(id).unwrap();
    socket.set_peer_verify_name(verify_name);
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    });
    socket.connect_to_host_encrypted("127.0.0.1", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
    probe
}

fn assert_fetched(probe: &Shared, what: &str) {
    let p = probe.borrow();
    assert!(p.handshake_done(), "{what}: {:?}", p.error_texts);
    assert!(
        contains(&p.data, b"HTTP/1.0 200 ok"),
        "{what}: no page: {:?}",
        String::from_utf8_lossy(&p.data)
    );
}

fn verification_errors(probe: &Shared) -> Vec<Caught> {
    probe.borrow().errors()
}

/// Fetches from `port` and checks that the chain was verified in full (no
/// reuse) and refused for `problem` alone.
fn fetch_refused_in_full(
    port: u16,
    config: &SslConfiguration,
    verify_name: &str,
    problem: SslErrorKind,
) -> Shared {
    let before = reuses();
    let refused = fetch(port, config, verify_name);
    assert_eq!(reuses(), before, "the chain was verified in full");
    assert_eq!(
        verification_errors(&refused),
        vec![Caught::CertificateVerification(vec![problem])]
    );
    refused
}

#[test]
fn the_second_handshake_with_the_same_chain_reuses_the_verification() {
    let server = serve(server_cert_args());
    let config = config(true);
    let before = reuses();
    assert_fetched(&fetch(server.port, &config, "localhost"), "first");
    assert_eq!(reuses(), before, "nothing to reuse on the first handshake");
    assert_fetched(&fetch(server.port, &config, "localhost"), "second");
    assert_eq!(reuses(), before + 1, "the second handshake reused it");
    assert_fetched(&fetch(server.port, &config.clone(), "localhost"), "third");
    assert_eq!(reuses(), before + 2, "clones share what was verified");
}

#[test]
fn another_name_is_verified_in_full() {
    let server = serve(server_cert_args());
    let config = config(true);
    assert_fetched(&fetch(server.port, &config, "localhost"), "first");
    fetch_refused_in_full(
        server.port,
        &config,
        "not-localhost.example",
        SslErrorKind::HostNameMismatch,
    );
}

#[test]
fn another_chain_under_the_same_name_is_verified_in_full() {
    let good = serve(server_cert_args());
    let config = config(true);
    assert_fetched(&fetch(good.port, &config, "localhost"), "good");
    // The same name, the same key, but a certificate that has expired.
    let expired = serve(vec![
        "-cert".into(),
        ca_str("broken/expired.pem"),
        "-cert_chain".into(),
        ca_str("intermediate-ca.pem"),
        "-key".into(),
        ca_str("broken/expired.key"),
    ]);
    let expired_once = || {
        fetch_refused_in_full(
            expired.port,
            &config,
            "localhost",
            SslErrorKind::CertificateExpired,
        )
    };
    expired_once();
    // A failure is not remembered either.
    assert!(!expired_once().borrow().handshake_done());
}

#[test]
fn with_the_cache_off_every_handshake_verifies() {
    let server = serve(server_cert_args());
    let config = config(false);
    let before = reuses();
    for round in 0..3 {
        assert_fetched(
            &fetch(server.port, &config, "localhost"),
            &round.to_string(),
        );
    }
    assert_eq!(reuses(), before);
}
