//! The trust invariant (SECURITY.md): no `handshake_complete` and no
//! plaintext unless this very connection's chain passed verification for its
//! expected name, or the program ignored exactly the errors reported for
//! this connection, or the session resumed one established that way under
//! the same configuration and name.
//!
//! Each test walks a path where the invariant once broke, against real
//! peers: resumption across sockets and names (client side, against
//! `openssl s_server` and our own GnuTLS server; server side, against
//! `openssl s_client`), OCSP on resumption, ignore rules pinned to a CA
//! certificate and an attacker's chain that names it, an ignore-all that
//! outlived its connection, an empty verify name, a bracketed IPv6 literal
//! and a truncation after our own `close_notify`. The last test checks the
//! invariant over random sequences of connects, ignores, reconnects and
//! resumptions on sockets that share one configuration.

mod common;

use std::path::Path;

use common::*;
use sslsocket::{
    Certificate, PeerVerifyMode, Reactor, SocketId, SslConfiguration, SslError, SslErrorKind,
    SslProtocol, SslSocket,
};

const PROTOCOLS: [SslProtocol; 2] = [SslProtocol::TlsV1_2, SslProtocol::TlsV1_3];

/// What a client socket's `ssl_errors` slot does on its coming connection
/// (the socket's user data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InSlot {
    Nothing,
    IgnoreAll,
    IgnoreReported,
}

/// A client socket and its probe.
type Client = (SocketId, Shared);

/// A client that trusts the test root, for `protocol` only.
fn config_for(protocol: SslProtocol) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(protocol, protocol)
        .build()
        .unwrap()
}

/// A client socket whose slots send a GET once encrypted and do what its
/// [`InSlot`] says when certificate problems are reported.
fn client(reactor: &mut Reactor, config: &SslConfiguration) -> Client {
    let (id, probe) = client_socket(reactor, config.clone(), true);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(InSlot::Nothing);
    socket
        .ssl_errors()
        .connect(|s, _, errors| match *s.user_data::<InSlot>().unwrap() {
            InSlot::Nothing => {}
            InSlot::IgnoreAll => s.ignore_all_ssl_errors(),
            InSlot::IgnoreReported => s.ignore_ssl_errors(errors),
        });
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    });
    (id, probe)
}

/// One connection of `client` to `host:port` after `setup` ran on the
/// socket; runs until it is over. The probe then holds this connection's
/// record only.
fn connect(
    reactor: &mut Reactor,
    (id, probe): &Client,
    host: &str,
    port: u16,
    setup: impl FnOnce(&mut SslSocket),
) {
    *probe.borrow_mut() = Probe::default();
    let socket = reactor.socket(*id).unwrap();
    setup(socket);
    socket.connect_to_host_encrypted(host, port).unwrap();
    run_until(reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
}

/// Asserts the connection completed, serving a page.
fn assert_completed(p: &Probe, what: &str) {
    assert!(
        p.handshake_done(),
        "{what}: refused: {:?} {:?}",
        p.events,
        p.error_texts
    );
    assert!(!p.data.is_empty(), "{what}: no page: {:?}", p.events);
}

/// Asserts the connection was refused for certificate problems, before any
/// plaintext, and returns the problems reported.
fn assert_refused(p: &Probe, what: &str) -> Vec<SslError> {
    assert!(
        !p.handshake_done(),
        "{what}: the handshake completed (resumed: {}, verify errors {:?})",
        p.resumed,
        p.verify_errors
    );
    assert!(p.data.is_empty(), "{what}: plaintext was delivered");
    let errors = p.errors();
    assert!(
        matches!(errors.as_slice(), [Caught::CertificateVerification(_)]),
        "{what}: not refused for its certificate: {:?}",
        p.error_texts
    );
    p.ssl_errors.concat()
}

fn kinds(errors: &[SslError]) -> Vec<SslErrorKind> {
    errors.iter().map(SslError::kind).collect()
}

fn protocol_flag(protocol: SslProtocol) -> &'static str {
    match protocol {
        SslProtocol::TlsV1_2 => "-tls1_2",
        _ => "-tls1_3",
    }
}

/// The servers a client test runs against: `openssl s_server`, or our own
/// (GnuTLS) server in the test's reactor.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Openssl,
    Gnutls,
}

/// A server presenting `chain_file` (leaf first) with `key_file`, for
/// `protocol` only. The returned guard keeps an `s_server` running.
fn server(
    peer: Peer,
    reactor: &mut Reactor,
    chain_file: &Path,
    key_file: &Path,
    protocol: SslProtocol,
    dir: &TempDir,
) -> (u16, Option<OpensslServer>) {
    match peer {
        Peer::Openssl => {
            let args = [protocol_flag(protocol)];
            let server = s_server_chain(&split_pem(chain_file), key_file, dir, &args, false);
            (server.port, Some(server))
        }
        Peer::Gnutls => (gnutls_server(reactor, chain_file, key_file, protocol), None),
    }
}

/// Our server on 127.0.0.1: answers each request with a short page and
/// closes. Returns its port.
fn gnutls_server(
    reactor: &mut Reactor,
    chain_file: &Path,
    key_file: &Path,
    protocol: SslProtocol,
) -> u16 {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(chain_file, key_file, None)
        .protocols(protocol, protocol)
        .build()
        .unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .unwrap();
    let server = reactor.server(id).unwrap();
    server.set_handshake_timeout(None);
    server.new_connection().connect(|_, cx, &socket| {
        let socket = cx.socket(socket).unwrap();
        socket.ready_read().connect(|s, _, _| {
            s.read_all();
            s.write(b"HTTP/1.0 200 OK\r\n\r\nhello\n").unwrap();
            s.disconnect_from_host();
        });
    });
    server.local_address().port()
}

// ---- resumption ----

#[test]
fn a_session_accepted_by_ignoring_errors_is_not_resumed_by_a_socket_that_ignores_nothing() {
    for peer in [Peer::Openssl, Peer::Gnutls] {
        for protocol in PROTOCOLS {
            let what = format!("{peer:?}, {protocol}");
            let dir = TempDir::new("trust-resume-ignored");
            let mut reactor = Reactor::new().unwrap();
            let (port, _guard) = server(
                peer,
                &mut reactor,
                &ca("broken/self-signed.pem"),
                &ca("broken/self-signed.key"),
                protocol,
                &dir,
            );
            let config = config_for(protocol);
            let careless = client(&mut reactor, &config);
            connect(&mut reactor, &careless, "127.0.0.1", port, |s| {
                s.ignore_all_ssl_errors()
            });
            assert_completed(&careless.1.borrow(), &what);

            let careful = client(&mut reactor, &config);
            connect(&mut reactor, &careful, "127.0.0.1", port, |_| {});
            let errors = assert_refused(&careful.1.borrow(), &what);
            assert_eq!(
                kinds(&errors),
                [SslErrorKind::SelfSignedCertificate],
                "{what}"
            );
        }
    }
}

#[test]
fn a_session_verified_for_one_name_is_not_resumed_for_another() {
    for peer in [Peer::Openssl, Peer::Gnutls] {
        for protocol in PROTOCOLS {
            let what = format!("{peer:?}, {protocol}");
            let dir = TempDir::new("trust-resume-name");
            let mut reactor = Reactor::new().unwrap();
            let (port, _guard) = server(
                peer,
                &mut reactor,
                &ca("server.pem"),
                &ca("server.key"),
                protocol,
                &dir,
            );
            let config = config_for(protocol);
            let first = client(&mut reactor, &config);
            connect(&mut reactor, &first, "127.0.0.1", port, |s| {
                s.set_peer_verify_name("localhost")
            });
            assert_completed(&first.1.borrow(), &what);
            connect(&mut reactor, &first, "127.0.0.1", port, |_| {});
            assert_completed(&first.1.borrow(), &what);
            assert!(
                first.1.borrow().resumed,
                "{what}: resumption must still work for the same name"
            );

            let other = client(&mut reactor, &config);
            connect(&mut reactor, &other, "127.0.0.1", port, |s| {
                s.set_peer_verify_name("evil.example")
            });
            let errors = assert_refused(&other.1.borrow(), &what);
            assert_eq!(kinds(&errors), [SslErrorKind::HostNameMismatch], "{what}");
        }
    }
}

/// Our server asking for client certificates (`QueryPeer`), and what its
/// probes saw.
fn querying_server(reactor: &mut Reactor) -> (u16, std::rc::Rc<std::cell::RefCell<Vec<Shared>>>) {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .peer_verify_mode(PeerVerifyMode::QueryPeer)
        .build()
        .unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .unwrap();
    let server = reactor.server(id).unwrap();
    server.set_handshake_timeout(None);
    let probes: std::rc::Rc<std::cell::RefCell<Vec<Shared>>> = Default::default();
    let list = probes.clone();
    server.new_connection().connect(move |_, cx, &socket| {
        let socket = cx.socket(socket).unwrap();
        list.borrow_mut().push(probe(socket, false));
        socket.ready_read().connect(|s, _, _| {
            if let Some(line) = s.take_line() {
                s.write(&line).unwrap();
                s.disconnect_from_host();
            }
        });
    });
    (server.local_address().port(), probes)
}

/// Two `s_client` connections presenting a client certificate (`identity`:
/// s_client's arguments), the second offering the first's session if our
/// server issued one; returns what our server saw of each (verify errors,
/// chain length, resumed) and whether a session was issued.
fn query_twice(
    protocol: SslProtocol,
    identity: &[String],
) -> (Vec<(Vec<SslErrorKind>, usize, bool)>, bool) {
    let dir = TempDir::new("trust-server-resume");
    let session = dir.join("session.pem");
    let session = session.to_str().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = querying_server(&mut reactor);
    let mut issued = false;
    for (i, flag) in ["-sess_out", "-sess_in"].iter().enumerate() {
        if i == 1 {
            issued = Path::new(session).exists();
        }
        let flag = if i == 1 && !issued { "-sess_out" } else { flag };
        let mut client = Spawn::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
            .args(identity)
            .args([protocol_flag(protocol), flag, session])
            .start();
        client.write_stdin(format!("round {i}\n").as_bytes());
        run_until(&mut reactor, TIMEOUT, "s_client to exit", |_| {
            client.try_wait().is_some()
        });
        // Exited: drain its output before reading it.
        client.wait(TIMEOUT);
        let out = client.stdout_text();
        assert!(
            out.contains(&format!("round {i}\n")),
            "{protocol} round {i}: {out}{}",
            client.stderr_text()
        );
    }
    run_until(&mut reactor, TIMEOUT, "both connections to end", |_| {
        let probes = probes.borrow();
        probes.len() == 2 && probes.iter().all(|p| p.borrow().disconnected())
    });
    let probes = probes.borrow();
    let seen = probes
        .iter()
        .map(|p| {
            let p = p.borrow();
            assert!(p.handshake_done(), "{protocol}: {:?}", p.events);
            (p.verify_errors.clone(), p.chain.len(), p.resumed)
        })
        .collect();
    (seen, issued)
}

/// `gnutls-cli --resume` presenting a client certificate (`certificate`
/// with `key`, files of `ca/`): one connection, then one that offers its
/// session (waiting for a TLS 1.3 ticket when `wait` says so); returns what
/// our server saw of each (verify errors, chain length, resumed).
fn gnutls_cli_resumes(
    protocol: SslProtocol,
    certificate: &str,
    key: &str,
    wait: bool,
) -> Vec<(Vec<SslErrorKind>, usize, bool)> {
    let version = match protocol {
        SslProtocol::TlsV1_2 => "NORMAL:-VERS-ALL:+VERS-TLS1.2",
        _ => "NORMAL:-VERS-ALL:+VERS-TLS1.3",
    };
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = querying_server(&mut reactor);
    let mut spawn = Spawn::new("gnutls-cli")
        .args([
            "--resume",
            "--priority",
            version,
            "--verify-hostname",
            "localhost",
        ])
        .args(["--x509cafile", &ca_str("root-ca.pem")])
        .args([
            "--x509certfile",
            &ca_str(certificate),
            "--x509keyfile",
            &ca_str(key),
        ])
        .args(["-p", &port.to_string(), "127.0.0.1"]);
    if wait {
        spawn = spawn.arg("--waitresumption");
    }
    let mut client = spawn.start();
    client.write_stdin(b"resumed?\n");
    run_until(&mut reactor, TIMEOUT, "gnutls-cli to exit", |_| {
        client.try_wait().is_some()
    });
    run_until(&mut reactor, TIMEOUT, "both connections to end", |_| {
        let probes = probes.borrow();
        probes.len() == 2 && probes.iter().all(|p| p.borrow().disconnected())
    });
    let probes = probes.borrow();
    probes
        .iter()
        .map(|p| {
            let p = p.borrow();
            assert!(p.handshake_done(), "{protocol}: {:?}", p.events);
            (p.verify_errors.clone(), p.chain.len(), p.resumed)
        })
        .collect()
}

#[test]
fn gnutls_cli_resuming_a_client_certificate_session_sees_the_same_problems() {
    let untrusted = vec![SslErrorKind::UnableToGetLocalIssuerCertificate];
    for protocol in PROTOCOLS {
        let tls13 = protocol == SslProtocol::TlsV1_3;
        let seen = gnutls_cli_resumes(protocol, "other-client.pem", "other-client.key", false);
        assert_eq!(seen[0], (untrusted.clone(), 1, false), "{protocol}: full");
        assert_eq!(seen[1], (untrusted.clone(), 1, !tls13), "{protocol}: again");

        let seen = gnutls_cli_resumes(protocol, "client.pem", "client.key", true);
        assert_eq!(
            seen[0],
            (vec![], 2, false),
            "{protocol}: a valid certificate"
        );
        assert_eq!(seen[1], (vec![], 2, true), "{protocol}: resumed");
    }
}

/// An s_client argument: a file of `ca/`, or the option itself.
fn ca_arg(arg: &str) -> String {
    match arg.starts_with('-') {
        true => arg.to_owned(),
        false => ca_str(arg),
    }
}

#[test]
fn a_resumed_client_certificate_session_reports_what_the_full_handshake_reported() {
    for protocol in PROTOCOLS {
        let foreign = ["-cert", "other-client.pem", "-key", "other-client.key"].map(ca_arg);
        if protocol == SslProtocol::TlsV1_2 {
            // Resumed by session ID, without tickets: verified again too.
            let by_id = [&foreign[..], &["-no_ticket".to_owned()]].concat();
            let (seen, issued) = query_twice(protocol, &by_id);
            assert!(issued && seen[1].2, "TLS 1.2 resumption by session ID");
            assert_eq!(seen[1].0, [SslErrorKind::UnableToGetLocalIssuerCertificate]);
        }
        let (seen, issued) = query_twice(protocol, &foreign);
        let untrusted = vec![SslErrorKind::UnableToGetLocalIssuerCertificate];
        assert_eq!(seen[0].0, untrusted, "{protocol}: the full handshake");
        assert_eq!(seen[0].1, 1, "{protocol}: the full handshake's chain");
        // TLS 1.3: no ticket for a client with problems left; TLS 1.2: the
        // ticket is part of the handshake, and its resumption re-verified.
        let tls13 = protocol == SslProtocol::TlsV1_3;
        assert_eq!(issued, !tls13, "{protocol}: a session was issued");
        assert_eq!(seen[1].2, !tls13, "{protocol}: resumed");
        assert_eq!(
            (&seen[1].0, seen[1].1),
            (&untrusted, 1),
            "{protocol}: the second connection (resumed: {})",
            seen[1].2
        );

        let valid = [
            "-cert",
            "client.pem",
            "-cert_chain",
            "intermediate-ca.pem",
            "-key",
            "client.key",
        ]
        .map(ca_arg);
        let (trusted, issued) = query_twice(protocol, &valid);
        assert!(issued, "{protocol}: a clean session is issued");
        assert_eq!(trusted[0].0, [], "{protocol}: a valid client certificate");
        assert_eq!(trusted[0].1, 2, "{protocol}: leaf and intermediate");
        assert!(trusted[1].2, "{protocol}: a clean session must resume");
        assert_eq!(
            (&trusted[1].0, trusted[1].1),
            (&trusted[0].0, trusted[0].1),
            "{protocol}: the resumed session's chain and problems"
        );
    }
}

#[test]
fn ocsp_stapling_required_is_enforced_on_every_connection() {
    for protocol in PROTOCOLS {
        let dir = TempDir::new("trust-ocsp");
        let mut args = server_cert_args();
        args.extend([
            "-www".to_owned(),
            "-status_file".to_owned(),
            ca_str("ocsp/server-ocsp-good.der"),
            protocol_flag(protocol).to_owned(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = s_server(&args, Some(dir.path()), None, false);
        let config = SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_ca_certificates_file(ca("root-ca.pem"))
            .protocols(protocol, protocol)
            .ocsp_stapling_required(true)
            .build()
            .unwrap();
        let mut reactor = Reactor::new().unwrap();
        for round in 0..2 {
            let c = client(&mut reactor, &config);
            connect(&mut reactor, &c, "localhost", server.port, |_| {});
            let p = c.1.borrow();
            let what = format!("{protocol}, connection {round}");
            assert_completed(&p, &what);
            assert!(p.ocsp.is_some(), "{what}: no OCSP response was checked");
            assert!(!p.resumed, "{what}: resumed without an OCSP response");
        }
    }
}

// ---- ignore rules pinned to a certificate ----

fn first_certificate(file: &str) -> Certificate {
    Certificate::from_file(ca(file)).unwrap().remove(0)
}

/// A client that trusts only an unrelated CA, so the test chains' issuers
/// are unknown unless an ignore rule pins them.
fn trusting_nothing_here() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("other-ca.pem"))
        .session_resumption(false)
        .build()
        .unwrap()
}

/// Connects a fresh socket that ignores only `pin` to `s_server`
/// presenting `chain` with `key`.
fn pinned_fetch(pin: &SslError, chain: &[String], key: &str, what: &str) -> Probe {
    let dir = TempDir::new("trust-pin");
    let server = s_server_chain(chain, &ca(key), &dir, &[], false);
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, &trusting_nothing_here());
    connect(&mut reactor, &c, "localhost", server.port, |s| {
        s.ignore_ssl_errors(std::slice::from_ref(pin))
    });
    let probe = std::mem::take(&mut *c.1.borrow_mut());
    eprintln!("{what}: {:?} {:?}", probe.events, probe.error_texts);
    probe
}

/// Asserts `p` was refused and blamed a signature on the forged leaf.
fn assert_forgery_refused(p: &Probe, forged: &str, what: &str) {
    let errors = assert_refused(p, what);
    let leaf = first_certificate(forged);
    assert!(
        errors
            .iter()
            .any(|e| e.kind() == SslErrorKind::CertificateSignatureFailed
                && e.certificate() == Some(&leaf)),
        "{what}: the forged leaf's signature is not reported: {errors:?}"
    );
}

#[test]
fn an_ignore_pinned_to_an_intermediate_is_not_satisfied_by_another_leaf() {
    let intermediate = first_certificate("intermediate-ca.pem");
    let pin = SslError::new(
        SslErrorKind::UnableToGetLocalIssuerCertificate,
        Some(intermediate.clone()),
    );
    let p = pinned_fetch(
        &pin,
        &split_pem(&ca("server.pem")),
        "server.key",
        "legitimate",
    );
    assert_completed(&p, "the pinned intermediate's own chain");

    let mut impostor = split_pem(&ca("broken/self-signed.pem"));
    impostor.push(intermediate.to_pem());
    let p = pinned_fetch(&pin, &impostor, "broken/self-signed.key", "impostor");
    assert_refused(&p, "a self-signed leaf sent with the pinned intermediate");

    let forged = split_pem(&ca("broken/forged-intermediate.pem"));
    let p = pinned_fetch(&pin, &forged, "broken/forged-intermediate.key", "forged");
    assert_forgery_refused(
        &p,
        "broken/forged-intermediate.pem",
        "a leaf naming the pinned intermediate",
    );
}

#[test]
fn an_ignore_pinned_to_a_root_is_not_satisfied_by_another_leaf() {
    let root = first_certificate("root-ca.pem");
    let pin = SslError::new(
        SslErrorKind::SelfSignedCertificateInChain,
        Some(root.clone()),
    );
    let mut legitimate = split_pem(&ca("server.pem"));
    legitimate.push(root.to_pem());
    let p = pinned_fetch(&pin, &legitimate, "server.key", "legitimate");
    assert_completed(&p, "the pinned root's own chain");

    let mut impostor = split_pem(&ca("broken/self-signed.pem"));
    impostor.push(root.to_pem());
    let p = pinned_fetch(&pin, &impostor, "broken/self-signed.key", "impostor");
    assert_refused(&p, "a self-signed leaf sent with the pinned root");

    let forged = split_pem(&ca("broken/forged-root.pem"));
    let p = pinned_fetch(&pin, &forged, "broken/forged-root.key", "forged");
    assert_forgery_refused(
        &p,
        "broken/forged-root.pem",
        "a leaf naming the pinned root",
    );
}

// ---- what an ignore applies to ----

/// `s_server` presenting the self-signed localhost certificate, and a
/// client configuration without resumption.
fn untrusted_server(dir: &TempDir) -> (OpensslServer, SslConfiguration) {
    let server = s_server_chain(
        &split_pem(&ca("broken/self-signed.pem")),
        &ca("broken/self-signed.key"),
        dir,
        &[],
        false,
    );
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .session_resumption(false)
        .build()
        .unwrap();
    (server, config)
}

#[test]
fn ignore_all_ssl_errors_applies_to_one_connection() {
    let dir = TempDir::new("trust-ignore-all");
    let (server, config) = untrusted_server(&dir);
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, &config);
    let port = server.port;
    connect(&mut reactor, &c, "localhost", port, |s| {
        s.ignore_all_ssl_errors()
    });
    assert_completed(&c.1.borrow(), "ignore all, before connecting");
    connect(&mut reactor, &c, "localhost", port, |_| {});
    assert_refused(&c.1.borrow(), "the next connection");

    connect(&mut reactor, &c, "localhost", port, |s| {
        s.set_user_data(InSlot::IgnoreAll)
    });
    assert_completed(&c.1.borrow(), "ignore all, from the ssl_errors slot");
    connect(&mut reactor, &c, "localhost", port, |s| {
        s.set_user_data(InSlot::Nothing)
    });
    assert_refused(&c.1.borrow(), "the connection after");
}

#[test]
fn an_ignore_list_stays_until_it_is_replaced() {
    let dir = TempDir::new("trust-ignore-list");
    let (server, config) = untrusted_server(&dir);
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, &config);
    let port = server.port;
    let expected = SslError::new(
        SslErrorKind::SelfSignedCertificate,
        Some(first_certificate("broken/self-signed.pem")),
    );
    connect(&mut reactor, &c, "localhost", port, |s| {
        s.ignore_ssl_errors(std::slice::from_ref(&expected))
    });
    assert_completed(&c.1.borrow(), "the expected error ignored");
    connect(&mut reactor, &c, "localhost", port, |_| {});
    assert_completed(&c.1.borrow(), "the list stays for the next connection");
    connect(&mut reactor, &c, "localhost", port, |s| {
        s.ignore_ssl_errors(&[])
    });
    assert_refused(&c.1.borrow(), "an empty list replaces it");
}

// ---- names ----

#[test]
fn an_empty_peer_verify_name_still_checks_the_host() {
    let dir = TempDir::new("trust-empty-name");
    let other = s_server_chain(
        &split_pem(&ca("server-sni.pem")),
        &ca("server-sni.key"),
        &dir,
        &[],
        false,
    );
    let mut reactor = Reactor::new().unwrap();
    let config = client_config();
    let c = client(&mut reactor, &config);
    connect(&mut reactor, &c, "127.0.0.1", other.port, |s| {
        s.set_peer_verify_name("")
    });
    let errors = assert_refused(&c.1.borrow(), "other.localhost's certificate at 127.0.0.1");
    assert_eq!(kinds(&errors), [SslErrorKind::HostNameMismatch]);

    let dir = TempDir::new("trust-empty-name-ok");
    let right = s_server_chain(
        &split_pem(&ca("server.pem")),
        &ca("server.key"),
        &dir,
        &[],
        false,
    );
    let c = client(&mut reactor, &config);
    connect(&mut reactor, &c, "127.0.0.1", right.port, |s| {
        s.set_peer_verify_name("")
    });
    assert_completed(&c.1.borrow(), "the address is checked instead");
}

#[test]
fn a_bracketed_ipv6_literal_is_verified_as_the_address() {
    let dir = TempDir::new("trust-ipv6");
    let server = s_server_chain(
        &split_pem(&ca("server.pem")),
        &ca("server.key"),
        &dir,
        &[],
        true,
    );
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, &client_config());
    connect(&mut reactor, &c, "[::1]", server.port, |_| {});
    assert_completed(&c.1.borrow(), "[::1]");
}

// ---- the end of the stream after our close_notify ----

/// A python3 TLS server for one connection: sends "first\n", waits for the
/// client's close_notify, then sends SIZE more bytes and closes TCP without
/// a close_notify of its own.
const PY_AFTER_CLOSE_NOTIFY: &str = r#"
import socket, ssl, sys
cert, key, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print("PORT", ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
s = ctx.wrap_socket(raw, server_side=True)
s.sendall(b"first\n")
while s.recv(4096):
    pass
if size:
    s.sendall(b"x" * size)
s.shutdown(socket.SHUT_RDWR)
s.close()
print("DONE", flush=True)
"#;

/// Our client reads "first", closes, and sees what the server does next.
fn close_then_bare_fin(after: usize) -> Probe {
    let mut server = Spawn::new("python3")
        .args(["-c", PY_AFTER_CLOSE_NOTIFY])
        .args([
            ca_str("server.pem"),
            ca_str("server.key"),
            after.to_string(),
        ])
        .start();
    let line = server.wait_for_line("PORT ", TIMEOUT);
    let port: u16 = line[5..].trim().parse().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let socket = reactor.socket(id).unwrap();
    socket.ready_read().connect(|s, _, _| {
        if s.read_all().starts_with(b"first") {
            s.disconnect_from_host();
        }
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
    server.wait_for_stdout(b"DONE", TIMEOUT);
    let p = std::mem::take(&mut *probe.borrow_mut());
    p
}

#[test]
fn data_after_our_close_notify_then_a_bare_fin_is_a_truncation() {
    let p = close_then_bare_fin(32 * 1024);
    assert_eq!(p.errors(), [Caught::Truncated], "{:?}", p.events);
    let p = close_then_bare_fin(0);
    assert_eq!(
        p.errors(),
        [],
        "a bare FIN answering our close_notify: {:?}",
        p.events
    );
    let close = p.stats.as_ref().and_then(|s| s.peer_close);
    assert_eq!(close, Some(sslsocket::PeerClose::EofAtRecordBoundary));
}

// ---- the invariant over random sequences ----

/// The servers of the random test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Good,
    SelfSigned,
    WrongHost,
}

const KINDS: [Kind; 3] = [Kind::Good, Kind::SelfSigned, Kind::WrongHost];

impl Kind {
    fn files(self) -> (&'static str, &'static str) {
        match self {
            Kind::Good => ("server.pem", "server.key"),
            Kind::SelfSigned => ("broken/self-signed.pem", "broken/self-signed.key"),
            Kind::WrongHost => ("broken/wrong-host.pem", "broken/wrong-host.key"),
        }
    }

    /// The problems a connection to this server reports when verified for
    /// `name`.
    fn problems(self, name: &str) -> Vec<SslErrorKind> {
        let mut problems = Vec::new();
        if self == Kind::SelfSigned {
            problems.push(SslErrorKind::SelfSignedCertificate);
        }
        if self == Kind::WrongHost || name == "evil.example" {
            problems.push(SslErrorKind::HostNameMismatch);
        }
        problems
    }
}

/// What the test knows of one socket: its ignore list, as (problem, the
/// server whose certificate it names, if any).
#[derive(Default)]
struct Model {
    ignored: Vec<(SslErrorKind, Option<Kind>)>,
}

impl Model {
    fn covers(&self, problem: SslErrorKind, server: Kind) -> bool {
        self.ignored
            .iter()
            .any(|&(k, s)| k == problem && s.is_none_or(|s| s == server))
    }
}

fn invariant_over_random_sequences(protocol: SslProtocol, seed: u64) {
    let dirs: Vec<TempDir> = KINDS
        .iter()
        .map(|kind| TempDir::new(&format!("trust-random-{kind:?}")))
        .collect();
    let mut reactor = Reactor::new().unwrap();
    // Per kind, an s_server and our own server: ports and guards.
    let servers: Vec<[(u16, Option<OpensslServer>); 2]> = KINDS
        .iter()
        .zip(&dirs)
        .map(|(kind, dir)| {
            let (chain, key) = kind.files();
            let (chain, key) = (ca(chain), ca(key));
            [Peer::Openssl, Peer::Gnutls]
                .map(|peer| server(peer, &mut reactor, &chain, &key, protocol, dir))
        })
        .collect();
    let config = config_for(protocol);
    let clients: Vec<Client> = (0..3).map(|_| client(&mut reactor, &config)).collect();
    let mut models: Vec<Model> = (0..3).map(|_| Model::default()).collect();
    let mut rng = Rng::new(seed);
    let (mut completed, mut refused, mut resumed) = (0, 0, 0);
    for step in 0..100 {
        let which = rng.upto(2) as usize;
        let server = KINDS[rng.upto(2) as usize];
        let peer = rng.upto(1) as usize;
        // "" falls back to the host, 127.0.0.1, which every certificate
        // here but wrong-host names.
        let name = ["localhost", "evil.example", ""][rng.upto(2) as usize];
        let action = Action::ALL[rng.upto(5) as usize];
        let model = &mut models[which];
        let expected = server.problems(name);
        let what = format!(
            "step {step}: socket {which} -> {server:?} ({}) as {name:?}, {action:?}, list {:?}",
            ["openssl", "gnutls"][peer],
            model.ignored
        );
        let preset: Vec<SslErrorKind> = expected
            .iter()
            .copied()
            .filter(|_| rng.upto(1) == 1)
            .collect();
        let port = servers[server as usize][peer].0;
        connect(&mut reactor, &clients[which], "127.0.0.1", port, |s| {
            s.set_peer_verify_name(name);
            s.set_user_data(action.in_slot());
            match action {
                Action::IgnoreAllBefore => s.ignore_all_ssl_errors(),
                Action::PresetList => {
                    let list: Vec<SslError> =
                        preset.iter().map(|&k| SslError::new(k, None)).collect();
                    s.ignore_ssl_errors(&list);
                }
                Action::ClearList => s.ignore_ssl_errors(&[]),
                _ => {}
            }
        });
        match action {
            Action::PresetList => model.ignored = preset.iter().map(|&k| (k, None)).collect(),
            Action::ClearList => model.ignored.clear(),
            _ => {}
        }
        let remaining: Vec<SslErrorKind> = expected
            .iter()
            .copied()
            .filter(|&k| !model.covers(k, server))
            .collect();
        let accepted = remaining.is_empty()
            || action == Action::IgnoreAllBefore
            || action.in_slot() != InSlot::Nothing;
        let p = clients[which].1.borrow();
        if accepted {
            assert_completed(&p, &what);
            assert_eq!(
                sorted(p.verify_errors.clone()),
                sorted(expected.clone()),
                "{what}: peer_verify_errors (resumed: {})",
                p.resumed
            );
            completed += 1;
            resumed += usize::from(p.resumed);
        } else {
            let errors = assert_refused(&p, &what);
            assert_eq!(
                sorted(kinds(&errors)),
                sorted(remaining.clone()),
                "{what}: the problems reported"
            );
            refused += 1;
        }
        if action == Action::IgnoreReportedInSlot && !remaining.is_empty() {
            // The slot replaced the list with what this connection reported.
            model.ignored = remaining.iter().map(|&k| (k, Some(server))).collect();
        }
    }
    eprintln!("{protocol}: {completed} completed ({resumed} resumed), {refused} refused");
    assert!(
        completed > 5 && refused > 5 && resumed > 2,
        "{protocol}: the sequence must walk every path"
    );
}

/// What the random test does before or during one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    IgnoreAllInSlot,
    IgnoreReportedInSlot,
    IgnoreAllBefore,
    /// A list of some expected problems, without certificates.
    PresetList,
    ClearList,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::Nothing,
        Action::IgnoreAllInSlot,
        Action::IgnoreReportedInSlot,
        Action::IgnoreAllBefore,
        Action::PresetList,
        Action::ClearList,
    ];

    fn in_slot(self) -> InSlot {
        match self {
            Action::IgnoreAllInSlot => InSlot::IgnoreAll,
            Action::IgnoreReportedInSlot => InSlot::IgnoreReported,
            _ => InSlot::Nothing,
        }
    }
}

fn sorted(mut kinds: Vec<SslErrorKind>) -> Vec<SslErrorKind> {
    kinds.sort_by_key(|k| format!("{k:?}"));
    kinds
}

#[test]
fn the_invariant_holds_over_random_connects_ignores_reconnects_and_resumptions() {
    invariant_over_random_sequences(SslProtocol::TlsV1_3, 0x5eed_0001);
    invariant_over_random_sequences(SslProtocol::TlsV1_2, 0x5eed_0002);
}

// ---- public key pins and trust on first use ----

fn pin_of(file: &str) -> String {
    first_certificate(file).public_key_pin()
}

/// Connects a fresh socket of `config` to `s_server` presenting `chain`;
/// `in_slot` runs in the `ssl_errors` slot.
fn fetch_with(
    config: &SslConfiguration,
    port: u16,
    in_slot: fn(&mut SslSocket, &[SslError]),
) -> Probe {
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, config);
    let socket = reactor.socket(c.0).unwrap();
    socket
        .ssl_errors()
        .connect(move |s, _, errors| in_slot(s, errors));
    connect(&mut reactor, &c, "localhost", port, |_| {});
    let probe = std::mem::take(&mut *c.1.borrow_mut());
    probe
}

fn nothing(_: &mut SslSocket, _: &[SslError]) {}

fn served(chain: &str, key: &str, dir: &TempDir) -> OpensslServer {
    s_server_chain(&split_pem(&ca(chain)), &ca(key), dir, &[], false)
}

#[test]
fn a_public_key_pin_is_required_on_top_of_verification() {
    let dir = TempDir::new("trust-pins");
    let good = served("server.pem", "server.key", &dir);
    let pinned = |host: &str, pin: String| {
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_ca_certificates_file(ca("root-ca.pem"))
            .pin_public_keys(host, [pin])
            .build()
            .unwrap()
    };
    let p = fetch_with(
        &pinned("localhost", pin_of("server.pem")),
        good.port,
        nothing,
    );
    assert_completed(&p, "the pinned key");
    let other = format!("{};{}", pin_of("server-rsa.pem"), pin_of("server.pem"));
    let p = fetch_with(&pinned("*", other), good.port, nothing);
    assert_completed(&p, "one of several pins, for every host");

    let p = fetch_with(
        &pinned("localhost", pin_of("server-rsa.pem")),
        good.port,
        nothing,
    );
    let errors = assert_refused(&p, "another key");
    assert_eq!(kinds(&errors), [SslErrorKind::PublicKeyPinMismatch]);
    let p = fetch_with(
        &pinned("other.example", pin_of("server-rsa.pem")),
        good.port,
        nothing,
    );
    assert_completed(&p, "pins for another host do not apply");

    // A pin only restricts: the self-signed server's own key, pinned, does
    // not make its certificate trusted.
    let dir = TempDir::new("trust-pins-self-signed");
    let self_signed = served("broken/self-signed.pem", "broken/self-signed.key", &dir);
    let config = pinned("localhost", pin_of("broken/self-signed.pem"));
    let p = fetch_with(&config, self_signed.port, nothing);
    let errors = assert_refused(&p, "a pinned but untrusted certificate");
    assert_eq!(kinds(&errors), [SslErrorKind::SelfSignedCertificate]);

    let malformed = SslConfiguration::builder()
        .pin_public_keys("localhost", ["sha256//not-a-digest"])
        .build();
    assert!(malformed.is_err(), "a malformed pin is refused at build");
    let wildcard = SslConfiguration::builder()
        .pin_public_keys("*.wild.test", [pin_of("server.pem")])
        .build();
    assert!(
        wildcard.is_err(),
        "a wildcard host would match no connection"
    );

    let unchecked = SslConfiguration::builder()
        .peer_verify_mode(sslsocket::PeerVerifyMode::VerifyNone)
        .pin_public_keys("localhost", [pin_of("server.pem")])
        .build();
    assert!(unchecked.is_err(), "pins that VerifyNone would never check");
}

#[test]
fn a_trust_on_first_use_path_gnutls_cannot_take_fails_build() {
    // Before: built, then every handshake failed with an ignorable
    // UnspecifiedError, a configuration mistake shown as a peer's problem.
    let built = SslConfiguration::builder()
        .trust_on_first_use("/tmp/known\0hosts")
        .build();
    assert!(
        matches!(&built, Err(sslsocket::Error::InvalidConfiguration(text)) if text.contains("NUL")),
        "{built:?}"
    );
}

fn tofu(db: &std::path::Path) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .trust_on_first_use(db)
        .build()
        .unwrap()
}

fn store_unknown(s: &mut SslSocket, errors: &[SslError]) {
    if errors
        .iter()
        .all(|e| e.kind() == SslErrorKind::PublicKeyUnknown)
    {
        s.store_peer_public_key().unwrap();
    }
}

#[test]
fn trust_on_first_use_asks_once_remembers_and_refuses_a_changed_key() {
    let dir = TempDir::new("trust-tofu");
    let db = dir.join("known_hosts");
    let first = served("broken/self-signed.pem", "broken/self-signed.key", &dir);
    let port = first.port;

    // First contact, unanswered: refused for the unknown key alone (the
    // self-signed issuer is the stored key's business now).
    let p = fetch_with(&tofu(&db), port, nothing);
    let errors = assert_refused(&p, "first contact, not answered");
    assert_eq!(kinds(&errors), [SslErrorKind::PublicKeyUnknown]);
    assert!(!db.exists(), "nothing stored");

    // Accepted and stored; known afterwards, with no question.
    let p = fetch_with(&tofu(&db), port, store_unknown);
    assert_completed(&p, "first contact, stored");
    let p = fetch_with(&tofu(&db), port, nothing);
    assert_completed(&p, "the known key");
    assert_eq!(p.verify_errors, [], "the known key has no problem");

    // gnutls-cli reads the same database: without it the host is unknown
    // to it, with it the host is known.
    let strict_tofu = || {
        let mut cli = Spawn::new("gnutls-cli")
            .args([
                "--tofu",
                "--strict-tofu",
                "-p",
                &port.to_string(),
                "localhost",
            ])
            .env("HOME", dir.path())
            .start();
        cli.close_stdin();
        let status = cli.wait(TIMEOUT);
        (
            status.success(),
            format!("{}{}", cli.stdout_text(), cli.stderr_text()),
        )
    };
    let (known, out) = strict_tofu();
    assert!(!known, "gnutls-cli knew the host without a database: {out}");
    std::fs::create_dir_all(dir.join(".gnutls")).unwrap();
    std::fs::copy(&db, dir.join(".gnutls/known_hosts")).unwrap();
    let (known, out) = strict_tofu();
    assert!(known, "gnutls-cli --strict-tofu with our database: {out}");

    // Another key on the same host and port: refused as changed, even when
    // the slot would store an unknown one.
    drop(first);
    let mut changed = Spawn::new("openssl")
        .args(["s_server", "-www", "-accept", &format!("127.0.0.1:{port}")])
        .args(server_cert_args())
        .start();
    changed.wait_for_line("ACCEPT", TIMEOUT);
    let p = fetch_with(&tofu(&db), port, store_unknown);
    let errors = assert_refused(&p, "a changed key");
    assert_eq!(kinds(&errors), [SslErrorKind::PublicKeyChanged]);
    // The program may accept the change once, or store the new key.
    let p = fetch_with(&tofu(&db), port, |s, _| s.store_peer_public_key().unwrap());
    assert_completed(&p, "the new key stored");
    let p = fetch_with(&tofu(&db), port, nothing);
    assert_completed(&p, "the new key known");

    // The new key replaced the old one: the first server's key, back on
    // the port, is a changed key now (before, both stayed trusted).
    changed.kill();
    let mut back = Spawn::new("openssl")
        .args(["s_server", "-www", "-accept", &format!("127.0.0.1:{port}")])
        .args(["-cert", &ca_str("broken/self-signed.pem")])
        .args(["-key", &ca_str("broken/self-signed.key")])
        .start();
    back.wait_for_line("ACCEPT", TIMEOUT);
    let p = fetch_with(&tofu(&db), port, nothing);
    let errors = assert_refused(&p, "the replaced key");
    assert_eq!(kinds(&errors), [SslErrorKind::PublicKeyChanged]);
    back.kill();
}

#[test]
fn trust_on_first_use_still_checks_the_name_and_can_answer_later() {
    let dir = TempDir::new("trust-tofu-name");
    let db = dir.join("known_hosts");
    let wrong = served("broken/wrong-host.pem", "broken/wrong-host.key", &dir);
    // A key is not stored for a handshake with another problem left.
    thread_local!(static STORED: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) });
    let p = fetch_with(&tofu(&db), wrong.port, |s, _| {
        STORED.set(Some(s.store_peer_public_key().is_ok()));
    });
    assert_refused(&p, "a key for a wrong name");
    assert_eq!(STORED.get(), Some(false), "stored despite HostNameMismatch");
    assert!(!db.exists(), "the database was written");
    let p = fetch_with(&tofu(&db), wrong.port, store_unknown);
    let errors = assert_refused(&p, "a stored key does not excuse the name");
    assert_eq!(
        sorted(kinds(&errors)),
        sorted(vec![
            SslErrorKind::HostNameMismatch,
            SslErrorKind::PublicKeyUnknown
        ])
    );

    // Interrupted, answered later from a timer.
    let right = served("broken/self-signed.pem", "broken/self-signed.key", &dir);
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .trust_on_first_use(&db)
        .handshake_must_interrupt_on_error(true)
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let c = client(&mut reactor, &config);
    let id = c.0;
    reactor
        .socket(id)
        .unwrap()
        .handshake_interrupted_on_error()
        .connect(move |_, cx, _| {
            cx.start_timer(std::time::Duration::from_millis(100), move |cx, _| {
                let s = cx.socket(id).unwrap();
                s.store_peer_public_key().unwrap();
                s.continue_interrupted_handshake();
            });
        });
    connect(&mut reactor, &c, "localhost", right.port, |_| {});
    assert_completed(&c.1.borrow(), "answered later");
}
