//! Our server (`Reactor::listen` + `new_connection`) with real TLS clients:
//! `openssl s_client`, `gnutls-cli` and `curl`. The reactor runs on the test
//! thread while the client process runs.

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use sslsocket::{
    PeerVerifyMode, Reactor, SslConfiguration, SslErrorKind, SslMode, SslProtocol, SslSocket,
};

/// What the server does with one accepted connection.
type Handler = fn(&mut SslSocket);

/// Listens on `address` with `ca/server.pem`; every accepted connection
/// gets a probe (not collecting data) and `handler`'s slots. Returns the
/// port and the probes of the connections, in order.
fn serve(
    reactor: &mut Reactor,
    address: &str,
    handler: Handler,
) -> (u16, Rc<RefCell<Vec<Shared>>>) {
    serve_with(reactor, address, server_config(), handler)
}

fn serve_with(
    reactor: &mut Reactor,
    address: &str,
    config: SslConfiguration,
    handler: Handler,
) -> (u16, Rc<RefCell<Vec<Shared>>>) {
    let address: SocketAddr = address.parse().unwrap();
    let id = reactor.listen(address, config).expect("listen");
    let server = reactor.server(id).unwrap();
    // No handshake deadline: on a busy machine the 5 s default could fail a
    // test that is about something else (each wait is bounded anyway).
    server.set_handshake_timeout(None);
    let port = server.local_address().port();
    assert_eq!(server.local_address().ip(), address.ip());
    let probes: Rc<RefCell<Vec<Shared>>> = Rc::default();
    let list = probes.clone();
    server.new_connection().connect(move |_, cx, &socket| {
        let socket = cx.socket(socket).expect("the new socket");
        assert_eq!(socket.mode(), SslMode::SslServerMode);
        list.borrow_mut().push(probe(socket, false));
        handler(socket);
    });
    (port, probes)
}

/// Echoes whatever arrives.
fn echo(socket: &mut SslSocket) {
    socket.ready_read().connect(|s, _, _| {
        let data = s.read_all();
        s.write(&data).unwrap();
    });
}

/// Answers the first line with "pong: LINE" and closes.
fn pong(socket: &mut SslSocket) {
    socket.ready_read().connect(|s, _, _| answer_line(s));
}

fn answer_line(s: &mut SslSocket) {
    if let Some(line) = s.take_line() {
        let mut answer = b"pong: ".to_vec();
        answer.extend_from_slice(&line);
        s.write(&answer).unwrap();
        s.disconnect_from_host();
    }
}

/// A tiny HTTP/1.1 server: answers every request head with a body naming
/// the path, then closes.
fn http(socket: &mut SslSocket) {
    socket.set_user_data(Vec::<u8>::new());
    socket.ready_read().connect(|s, _, _| {
        let data = s.read_all();
        let request = s.user_data::<Vec<u8>>().unwrap();
        request.extend_from_slice(&data);
        let Some(end) = find(request, b"\r\n\r\n") else { return };
        let head = String::from_utf8_lossy(&request[..end]).into_owned();
        let path = head.split(' ').nth(1).unwrap_or("?").to_owned();
        let body = http_body(&path);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write(response.as_bytes()).unwrap();
        s.write(&body).unwrap();
        s.disconnect_from_host();
    });
}

fn http_body(path: &str) -> Vec<u8> {
    let mut body = format!("you asked for {path}\n").into_bytes();
    body.extend_from_slice(&pattern(100_000));
    body
}

/// Runs the reactor until the client process exits; returns its status.
fn run_until_exit(reactor: &mut Reactor, client: &mut Proc) -> std::process::ExitStatus {
    run_until(reactor, TIMEOUT, "the client process to exit", |_| {
        client.try_wait().is_some()
    });
    client.wait(TIMEOUT)
}

/// Runs the reactor until every accepted connection is disconnected.
fn run_until_all_disconnected(
    reactor: &mut Reactor,
    probes: &Rc<RefCell<Vec<Shared>>>,
    count: usize,
) {
    run_until(reactor, TIMEOUT, "the server's connections to end", |_| {
        let probes = probes.borrow();
        probes.len() == count && probes.iter().all(|p| p.borrow().disconnected())
    });
}

#[test]
fn openssl_s_client_gets_an_answer_from_our_server() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", pong);
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .start();
    client.write_stdin(b"ping\n");
    let status = run_until_exit(&mut reactor, &mut client);
    assert_eq!(
        client.stdout_text(),
        "pong: ping\n",
        "stderr: {}",
        client.stderr_text()
    );
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        client.stderr_text()
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert!(p.handshake_done());
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.protocol, Some(SslProtocol::TlsV1_3));
    // The server sent its whole chain: s_client verified it against the
    // root alone (-verify_return_error would have failed otherwise).
    assert!(
        client.stderr_text().contains("verify return:1"),
        "{}",
        client.stderr_text()
    );
}

#[test]
fn openssl_s_client_tls12_to_our_server() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", pong);
    let mut client = Spawn::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-tls1_2",
        ])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .start();
    client.write_stdin(b"over tls 1.2\n");
    let status = run_until_exit(&mut reactor, &mut client);
    assert_eq!(
        client.stdout_text(),
        "pong: over tls 1.2\n",
        "stderr: {}",
        client.stderr_text()
    );
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        client.stderr_text()
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_eq!(p.protocol, Some(SslProtocol::TlsV1_2));
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
}

#[test]
fn gnutls_cli_echo_through_our_server() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", echo);
    let dir = TempDir::new("server-gnutls-cli");
    let log = dir.path().join("gnutls-cli.log");
    let mut client = Spawn::new("gnutls-cli")
        .args([
            "--x509cafile",
            &ca_str("root-ca.pem"),
            "-p",
            &port.to_string(),
        ])
        .args(["--logfile", log.to_str().unwrap(), "localhost"])
        .start();
    client.write_stdin(b"hello from gnutls-cli\n");
    run_until(
        &mut reactor,
        TIMEOUT,
        "the echo on gnutls-cli's stdout",
        |_| contains(&client.stdout(), b"hello from gnutls-cli\n") || client.try_wait().is_some(),
    );
    client.write_stdin(b"second line\n");
    run_until(&mut reactor, TIMEOUT, "the second echo", |_| {
        contains(&client.stdout(), b"second line\n") || client.try_wait().is_some()
    });
    // EOF on stdin: gnutls-cli says goodbye (close_notify) and exits.
    client.close_stdin();
    let status = run_until_exit(&mut reactor, &mut client);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "gnutls-cli: {status}\nstderr: {}\nlog: {log_text}",
        client.stderr_text()
    );
    assert_eq!(
        client.stdout_text(),
        "hello from gnutls-cli\nsecond line\n",
        "stderr: {}\nlog: {log_text}",
        client.stderr_text()
    );
    assert!(
        log_text.contains("Handshake was completed"),
        "log: {log_text}"
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert!(p.handshake_done());
    assert!(
        p.has(&Event::ReadChannelFinished),
        "gnutls-cli sent close_notify: {:?}",
        p.events
    );
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
}

fn curl(url: &str, extra: &[&str]) -> Proc {
    Spawn::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "20",
            "--cacert",
            &ca_str("root-ca.pem"),
        ])
        .args(extra)
        .arg(url)
        .null_stdin()
        .start()
}

#[test]
fn curl_fetches_from_our_https_server() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", http);
    let mut client = curl(&format!("https://localhost:{port}/some/path?x=1"), &[]);
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(status.success(), "curl: {status}\n{}", client.stderr_text());
    assert!(
        client.stdout() == http_body("/some/path?x=1"),
        "body differs (len {})",
        client.stdout().len()
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    assert_eq!(
        probes[0].borrow().errors(),
        vec![],
        "{:?}",
        probes[0].borrow().error_texts
    );
}

#[test]
fn curl_fetches_several_times_in_a_row_and_by_ip_address() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", http);
    for (i, url) in [
        format!("https://localhost:{port}/a"),
        format!("https://127.0.0.1:{port}/b"),
        format!("https://localhost:{port}/c"),
    ]
    .iter()
    .enumerate()
    {
        let mut client = curl(
            url,
            &["--tlsv1.2", "--tls-max", if i == 1 { "1.2" } else { "1.3" }],
        );
        let status = run_until_exit(&mut reactor, &mut client);
        assert!(
            status.success(),
            "curl {url}: {status}\n{}",
            client.stderr_text()
        );
        let path = &url[url.rfind('/').unwrap()..];
        assert!(client.stdout() == http_body(path), "body of {url} differs");
    }
    run_until_all_disconnected(&mut reactor, &probes, 3);
    let probes = probes.borrow();
    assert_eq!(probes[1].borrow().protocol, Some(SslProtocol::TlsV1_2));
    assert_eq!(probes[2].borrow().protocol, Some(SslProtocol::TlsV1_3));
    // Accepted sockets are removed once disconnected: only the server is left.
    assert_eq!(reactor.object_count(), 1);
}

#[test]
fn our_server_on_ipv6_loopback_with_curl() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "[::1]:0", http);
    let mut client = curl(&format!("https://[::1]:{port}/v6"), &[]);
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(status.success(), "curl: {status}\n{}", client.stderr_text());
    assert!(client.stdout() == http_body("/v6"));
    run_until_all_disconnected(&mut reactor, &probes, 1);
}

#[test]
fn client_rejecting_our_certificate_is_reported_on_the_server() {
    // s_client trusting another CA refuses our chain with an unknown_ca
    // alert (48); our server reports the alert. (TLS 1.2: in TLS 1.3
    // OpenSSL sends this alert unencrypted, which GnuTLS cannot read.)
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", echo);
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-CAfile",
            &ca_str("other-ca.pem"),
            "-verify_return_error",
            "-quiet",
            "-tls1_2",
        ])
        .start();
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(
        !status.success(),
        "s_client accepted a chain it does not trust"
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert!(!p.handshake_done());
    assert_eq!(
        p.errors(),
        vec![Caught::AlertReceived(48)],
        "{:?}",
        p.error_texts
    );
    assert_eq!(p.alerts_received, vec![48]);
    assert_eq!(
        p.events.last(),
        Some(&Event::Disconnected),
        "{:?}",
        p.events
    );
}

// ---- client certificates ----

/// A server that requires a client certificate issued under the test root.
fn mutual_tls_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .build()
        .unwrap()
}

fn s_client_with(port: u16, extra: &[&str]) -> Proc {
    Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .args(extra)
        .start()
}

/// `s_client` presenting the test client's certificate and its
/// intermediate (after `extra`).
fn s_client_with_client_certificate(port: u16, extra: &[&str]) -> Proc {
    let (cert, chain, key) = (
        ca_str("client.pem"),
        ca_str("intermediate-ca.pem"),
        ca_str("client.key"),
    );
    let mut args = extra.to_vec();
    args.extend(["-cert", &cert, "-cert_chain", &chain, "-key", &key]);
    s_client_with(port, &args)
}

/// `s_client` presenting a client certificate of another CA (after
/// `extra`).
fn s_client_with_foreign_certificate(port: u16, extra: &[&str]) -> Proc {
    let (cert, key) = (ca_str("other-client.pem"), ca_str("other-client.key"));
    let mut args = extra.to_vec();
    args.extend(["-cert", &cert, "-key", &key]);
    s_client_with(port, &args)
}

/// Runs `s_client` with a foreign client certificate (after `extra`) until
/// it exits, and checks that it failed without an answer from our server.
fn foreign_client_refused(reactor: &mut Reactor, port: u16, extra: &[&str]) -> Proc {
    let mut client = s_client_with_foreign_certificate(port, extra);
    client.write_stdin(b"with a foreign certificate\n");
    let status = run_until_exit(reactor, &mut client);
    assert!(!status.success(), "s_client (foreign): {status}");
    assert_eq!(client.stdout_text(), "");
    client
}

/// Our server refused the client for `problem` with its certificate.
fn assert_client_refused(p: &Probe, problem: SslErrorKind) {
    assert!(!p.handshake_done());
    assert_eq!(
        p.errors(),
        vec![Caught::CertificateVerification(vec![problem])],
        "{:?}",
        p.error_texts
    );
}

/// A client without a certificate, refused in the handshake: the problem
/// came through `peer_verify_error` before the error, as every problem does.
fn assert_client_refused_without_certificate(p: &Probe) {
    assert_client_refused(p, SslErrorKind::NoPeerCertificate);
    let reported = p.position(&Event::PeerVerifyError(SslErrorKind::NoPeerCertificate));
    let failed = p.events.iter().position(|e| matches!(e, Event::Error(_)));
    assert!(
        reported.is_some() && reported < failed,
        "peer_verify_error(NoPeerCertificate) before the error: {:?}",
        p.events
    );
}

#[test]
fn our_server_accepts_a_valid_client_certificate() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    let mut client = s_client_with_client_certificate(port, &[]);
    client.write_stdin(b"with a certificate\n");
    let status = run_until_exit(&mut reactor, &mut client);
    assert_eq!(
        client.stdout_text(),
        "pong: with a certificate\n",
        "stderr: {}",
        client.stderr_text()
    );
    assert!(status.success(), "s_client: {status}");
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.verify_errors, vec![]);
    assert_eq!(p.chain.len(), 2, "the client's leaf and intermediate");
    assert_eq!(
        p.chain[0].subject_common_name().as_deref(),
        Some("sslsocket test client")
    );
}

#[test]
fn our_server_refuses_a_client_without_certificate() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    let mut client = s_client_with(port, &[]);
    client.write_stdin(b"without a certificate\n");
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(!status.success(), "s_client: {status}");
    assert_eq!(client.stdout_text(), "", "no answer without a certificate");
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_client_refused_without_certificate(&p);
    // TLS 1.3: certificate_required.
    assert_eq!(p.alerts_sent, vec![116]);
}

/// Our client holds one certificate, of a CA the server does not name in
/// its request: it sends it anyway (as OpenSSL and Qt do; GnuTLS alone
/// would send none), so the server reports what is wrong with it, not that
/// none came.
#[test]
fn our_client_sends_its_one_certificate_even_when_the_server_names_other_cas() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("other-client.pem"), ca("other-client.key"), None)
        .build()
        .unwrap();
    let (id, client) = client_socket(&mut reactor, config, false);
    let socket = reactor.socket(id).unwrap();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_client_refused(&p, SslErrorKind::UnableToGetLocalIssuerCertificate);
    // In TLS 1.3 the client's handshake ends before the server judges its
    // certificate; the server's unknown_ca alert then ends the connection.
    run_until(
        &mut reactor,
        TIMEOUT,
        "the client to hear the refusal",
        |_| !client.borrow().errors().is_empty(),
    );
}

#[test]
fn our_server_refuses_a_tls_1_2_client_without_certificate_with_handshake_failure() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    let mut client = s_client_with(port, &["-tls1_2"]);
    client.write_stdin(b"without a certificate\n");
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(!status.success(), "s_client: {status}");
    assert_eq!(client.stdout_text(), "", "no answer without a certificate");
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_client_refused_without_certificate(&p);
    // RFC 5246 §7.4.6: handshake_failure (GnuTLS's own choice is
    // decode_error, which blames the client's encoding).
    assert_eq!(p.alerts_sent, vec![40]);
}

#[test]
fn our_server_refuses_a_client_certificate_from_another_ca() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    let client = foreign_client_refused(&mut reactor, port, &[]);
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_client_refused(&p, SslErrorKind::UnableToGetLocalIssuerCertificate);
    assert_eq!(p.alerts_sent, vec![48]);
    assert!(
        client.stderr_text().contains("unknown ca"),
        "{}",
        client.stderr_text()
    );
}

/// TLS 1.2 sends the client's certificate in another flight than TLS 1.3;
/// the server verifies it all the same, also when it verified the same
/// chain on an earlier connection of this configuration, and still refuses
/// a foreign one afterwards.
#[test]
fn client_certificates_over_tls_1_2_are_verified_on_every_connection() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", mutual_tls_config(), pong);
    for round in ["first", "second"] {
        let mut client = s_client_with_client_certificate(port, &["-tls1_2"]);
        client.write_stdin(format!("{round}\n").as_bytes());
        let status = run_until_exit(&mut reactor, &mut client);
        assert_eq!(
            client.stdout_text(),
            format!("pong: {round}\n"),
            "stderr: {}",
            client.stderr_text()
        );
        assert!(status.success(), "s_client ({round}): {status}");
    }
    foreign_client_refused(&mut reactor, port, &["-tls1_2"]);
    run_until_all_disconnected(&mut reactor, &probes, 3);
    let probes = probes.borrow();
    for p in &probes[..2] {
        let p = p.borrow();
        assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
        assert_eq!(p.protocol, Some(SslProtocol::TlsV1_2));
        assert_eq!(p.chain.len(), 2, "the client's leaf and intermediate");
    }
    assert_client_refused(
        &probes[2].borrow(),
        SslErrorKind::UnableToGetLocalIssuerCertificate,
    );
}

#[test]
fn several_curl_clients_at_once() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", http);
    let mut clients: Vec<(String, Proc)> = (0..6)
        .map(|i| {
            let path = format!("/client/{i}");
            let url = format!("https://localhost:{port}{path}");
            (path, curl(&url, &[]))
        })
        .collect();
    run_until(&mut reactor, TIMEOUT, "every curl to exit", |_| {
        clients.iter_mut().all(|(_, c)| c.try_wait().is_some())
    });
    for (path, client) in &mut clients {
        let status = client.wait(TIMEOUT);
        assert!(
            status.success(),
            "curl {path}: {status}\n{}",
            client.stderr_text()
        );
        assert!(client.stdout() == http_body(path), "body of {path} differs");
    }
    run_until_all_disconnected(&mut reactor, &probes, 6);
    for p in probes.borrow().iter() {
        assert_eq!(p.borrow().errors(), vec![], "{:?}", p.borrow().error_texts);
    }
}

#[test]
fn a_plaintext_client_gets_an_alert_and_the_server_goes_on() {
    use std::io::{Read, Write};
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", http);
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_millis(10)))
        .unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    run_until(
        &mut reactor,
        TIMEOUT,
        "the server to close the plaintext connection",
        |_| {
            let mut buf = [0u8; 1024];
            match plain.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    false
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    false
                }
                Err(_) => true,
            }
        },
    );
    assert_eq!(answer.first(), Some(&21), "an alert record: {answer:?}");
    run_until_all_disconnected(&mut reactor, &probes, 1);
    {
        let probes = probes.borrow();
        let p = probes[0].borrow();
        assert!(!p.handshake_done());
        let errors = p.errors();
        assert!(
            matches!(errors.as_slice(), [Caught::Handshake(_)]),
            "{:?}",
            p.error_texts
        );
        assert_eq!(p.alerts_sent.len(), 1);
    }
    let mut client = curl(&format!("https://localhost:{port}/after"), &[]);
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(status.success(), "curl: {status}\n{}", client.stderr_text());
    assert!(client.stdout() == http_body("/after"));
}

#[test]
fn curl_negotiates_alpn_with_our_server() {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .alpn_protocols(["http/1.1"])
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", config, http);
    // curl offers h2 and http/1.1.
    let mut client = curl(&format!("https://localhost:{port}/alpn"), &["-v"]);
    let status = run_until_exit(&mut reactor, &mut client);
    assert!(status.success(), "curl: {status}\n{}", client.stderr_text());
    assert!(client.stdout() == http_body("/alpn"));
    assert!(
        client
            .stderr_text()
            .contains("ALPN: server accepted http/1.1"),
        "{}",
        client.stderr_text()
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    assert_eq!(
        probes.borrow()[0].borrow().alpn.as_deref(),
        Some(&b"http/1.1"[..])
    );
}

#[test]
fn our_server_picks_the_certificate_for_the_sni_name() {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .add_local_certificate_files(ca("server-sni.pem"), ca("server-sni.key"), None)
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", config, pong);
    for name in ["other.localhost", "localhost"] {
        let mut client = Spawn::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", name, "-verify_hostname", name])
            .args([
                "-CAfile",
                &ca_str("root-ca.pem"),
                "-verify_return_error",
                "-quiet",
            ])
            .start();
        client.write_stdin(format!("{name}\n").as_bytes());
        let status = run_until_exit(&mut reactor, &mut client);
        assert!(
            status.success(),
            "s_client for {name}: {status}\n{}",
            client.stderr_text()
        );
        assert_eq!(client.stdout_text(), format!("pong: {name}\n"));
        assert!(
            client
                .stderr_text()
                .contains(&format!("depth=0 O = sslsocket, CN = {name}\n")),
            "{name}: {}",
            client.stderr_text()
        );
    }
    run_until_all_disconnected(&mut reactor, &probes, 2);
}

#[test]
fn banner_written_and_closed_at_once_reaches_the_client() {
    // A server that greets and closes in `new_connection`, before the
    // handshake is done: the banner must still arrive, then close_notify.
    fn banner(socket: &mut SslSocket) {
        socket.write(b"banner line\n").unwrap();
        socket.disconnect_from_host();
    }
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", banner);
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .start();
    let status = run_until_exit(&mut reactor, &mut client);
    assert_eq!(
        client.stdout_text(),
        "banner line\n",
        "stderr: {}",
        client.stderr_text()
    );
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        client.stderr_text()
    );
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert!(p.handshake_done());
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
}

// ---- server features: timeouts, the pending queue, OCSP, resumption ----

#[test]
fn handshake_timeout_drops_a_silent_client_and_reports_it() {
    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    server.set_handshake_timeout(Some(std::time::Duration::from_millis(300)));
    let port = server.local_address().port();
    let accepted: Rc<RefCell<Vec<(sslsocket::SocketId, Shared)>>> = Rc::default();
    let reported: Rc<RefCell<Vec<(sslsocket::SocketId, Caught)>>> = Rc::default();
    let a = accepted.clone();
    server.new_connection().connect(move |_, cx, &id| {
        a.borrow_mut()
            .push((id, probe(cx.socket(id).unwrap(), false)));
    });
    let r = reported.clone();
    server
        .error_occurred()
        .connect(move |_, _, (id, e)| r.borrow_mut().push((*id, Caught::of(e))));
    // Connects and sends nothing.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    run_until(&mut reactor, TIMEOUT, "error_occurred", |_| {
        !reported.borrow().is_empty()
    });
    run_for(&mut reactor, std::time::Duration::from_millis(50));
    drop(silent);
    let accepted = accepted.borrow();
    assert_eq!(accepted.len(), 1);
    let (id, p) = &accepted[0];
    assert_eq!(
        *reported.borrow(),
        vec![(*id, Caught::Timeout(sslsocket::TimeoutKind::Handshake))]
    );
    let p = p.borrow();
    assert_eq!(
        p.events,
        vec![
            Event::Error(Caught::Timeout(sslsocket::TimeoutKind::Handshake)),
            Event::Disconnected
        ]
    );
    // The failed socket was removed; the server stays.
    assert!(reactor.socket(*id).is_none());
    assert_eq!(reactor.object_count(), 1);
}

#[test]
fn pending_connections_are_taken_once_encrypted() {
    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    server.set_handshake_timeout(None);
    let port = server.local_address().port();
    let taken: Rc<RefCell<Vec<(bool, Shared)>>> = Rc::default();
    let t = taken.clone();
    server
        .pending_connection_available()
        .connect(move |server, cx, _| {
            while let Some(id) = server.next_pending_connection() {
                let socket = cx.socket(id).unwrap();
                let encrypted = socket.is_encrypted();
                t.borrow_mut().push((encrypted, probe(socket, false)));
                pong(socket);
                // What arrived before the socket was taken was announced
                // already (ready_read fires once per arrival).
                answer_line(socket);
            }
        });
    let mut clients: Vec<Proc> = (0..3)
        .map(|i| {
            let mut c = Spawn::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
                .args([
                    "-CAfile",
                    &ca_str("root-ca.pem"),
                    "-verify_return_error",
                    "-quiet",
                ])
                .start();
            c.write_stdin(format!("client {i}\n").as_bytes());
            c
        })
        .collect();
    run_until(&mut reactor, TIMEOUT, "every s_client to exit", |_| {
        clients.iter_mut().all(|c| c.try_wait().is_some())
    });
    for (i, c) in clients.iter_mut().enumerate() {
        let status = c.wait(TIMEOUT);
        assert_eq!(
            c.stdout_text(),
            format!("pong: client {i}\n"),
            "{}",
            c.stderr_text()
        );
        assert!(status.success());
    }
    let taken = taken.borrow();
    assert_eq!(taken.len(), 3);
    assert!(
        taken.iter().all(|(encrypted, _)| *encrypted),
        "queued sockets are encrypted"
    );
    assert!(!reactor.server(server_id).unwrap().has_pending_connections());
}

#[test]
fn our_server_staples_its_ocsp_response() {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .ocsp_response_file(ca("ocsp/server-ocsp-good.der"))
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", config, pong);
    // Without -quiet, s_client prints the stapled response.
    let mut client = Spawn::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-status",
        ])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .start();
    client.write_stdin(b"stapled?\n");
    run_until_stdout(&mut reactor, &mut client, b"pong: stapled?\n");
    client.close_stdin();
    let status = run_until_exit(&mut reactor, &mut client);
    let out = client.stdout_text();
    assert!(status.success(), "{}", client.stderr_text());
    assert!(
        out.contains("OCSP Response Status: successful (0x0)"),
        "{out}"
    );
    assert!(out.contains("Cert Status: good"), "{out}");
    run_until_all_disconnected(&mut reactor, &probes, 1);
}

#[test]
fn s_client_resumes_a_session_with_our_server() {
    let dir = TempDir::new("server-resume");
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", pong);
    for (i, flag) in ["-sess_out", "-sess_in"].iter().enumerate() {
        let mut client = Spawn::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
            .args([flag, &session])
            .start();
        client.write_stdin(format!("round {i}\n").as_bytes());
        let status = run_until_exit(&mut reactor, &mut client);
        let out = client.stdout_text();
        assert!(status.success(), "{}", client.stderr_text());
        assert!(out.contains(&format!("pong: round {i}\n")), "{out}");
        let expected = if i == 0 {
            "New, TLSv1.3"
        } else {
            "Reused, TLSv1.3"
        };
        assert!(out.contains(expected), "round {i}: {out}");
    }
    run_until_all_disconnected(&mut reactor, &probes, 2);
    let probes = probes.borrow();
    assert!(!probes[0].borrow().resumed);
    assert!(
        probes[1].borrow().resumed,
        "our server did not see a resumption"
    );
}

// ---- malformed peers ----

/// TLS's `decode_error` alert, GnuTLS's answer to a handshake message over
/// its size limit (`GNUTLS_E_HANDSHAKE_TOO_LARGE`).
const DECODE_ERROR: u8 = 50;

/// A client (after [`PY_PEER_WATCH`]) that sends a ClientHello declared as
/// almost 16 MiB in 16 KiB handshake records, as TLS test suites do, then
/// `argv[2]` more bytes of such records, and reads what comes back; with
/// `argv[3]` above 0, it sends only that many bytes of it all.
const PY_HUGE_CLIENT_HELLO: &str = r#"
port, extra, cut = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DECLARED = 0xFFFFF0
FRAGMENT = 16384

def records(data):
    return b"".join(
        b"\x16\x03\x01" + struct.pack(">H", len(data[i:i + FRAGMENT])) + data[i:i + FRAGMENT]
        for i in range(0, len(data), FRAGMENT))

hello = bytes([1]) + DECLARED.to_bytes(3, "big") + b"\x03\x03" + bytes(DECLARED - 2)
stream = records(hello) + records(bytes(extra))
if cut:
    stream = stream[:cut]
sock = socket.create_connection(("127.0.0.1", port), timeout=3)
T0 = time.monotonic()
send_all(sock, stream)
read_to_end(sock)
"#;

/// Runs [`PY_HUGE_CLIENT_HELLO`] against a server of ours, with `extra`
/// bytes after the message; returns what the client saw, and the server
/// with the probes of its connections.
fn huge_client_hello(extra: usize, cut: usize) -> (PeerReport, Reactor, Rc<RefCell<Vec<Shared>>>) {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", echo);
    let script = format!("{PY_PEER_WATCH}{PY_HUGE_CLIENT_HELLO}");
    let mut client = Spawn::new("python3")
        .args(["-c", &script])
        .args([port.to_string(), extra.to_string(), cut.to_string()])
        .start();
    run_until_exit(&mut reactor, &mut client);
    (PeerReport::parse(&client.stdout_text()), reactor, probes)
}

/// Our server refused the connection for a handshake message over
/// GnuTLS's size limit, with `decode_error`.
fn assert_refused_as_too_large(reactor: &mut Reactor, probes: &Rc<RefCell<Vec<Shared>>>) {
    run_until_all_disconnected(reactor, probes, 1);
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert_eq!(p.alerts_sent, vec![DECODE_ERROR]);
    assert!(
        matches!(&p.errors()[..], [Caught::Handshake(e)] if e.contains("HANDSHAKE_TOO_LARGE")),
        "{:?}",
        p.error_texts
    );
}

/// GnuTLS assembles a handshake message whole before it checks its size
/// against the 128 KiB limit, so a ClientHello declared as 16 MiB is
/// refused once 16 MiB arrived: `gnutls-serv` does so within ~30 ms on
/// loopback. Our server used to stop reading while the message grew (each
/// read stopped at the 256 KiB chunk, GnuTLS took it without an event, and
/// no edge announced the rest) and held the connection until its handshake
/// timeout, then closed it without an alert.
#[test]
fn a_huge_client_hello_is_refused_at_once_with_decode_error() {
    let (report, mut reactor, probes) = huge_client_hello(0, 0);
    report.assert_fatal_alert_then_eof(Some(DECODE_ERROR), "huge ClientHello");
    let at = report.alerts[0].2;
    assert!(at < 2.0, "the alert came after {at} s");
    assert_refused_as_too_large(&mut reactor, &probes);
}

/// A peer that goes on writing after our alert must still read it, and an
/// end of stream after it: the closing side drains what arrives instead of
/// answering it with a reset (before, the client's writes failed with
/// ECONNRESET and its read ended in one).
#[test]
fn a_client_writing_on_after_our_alert_reads_it_and_a_clean_end() {
    let (report, mut reactor, probes) = huge_client_hello(512 * 1024, 0);
    report.assert_fatal_alert_then_eof(Some(DECODE_ERROR), "huge ClientHello and more");
    assert_refused_as_too_large(&mut reactor, &probes);
}

/// The refusal does not wait for the whole declared message: a client that
/// sends the first MiB of its 16 MiB ClientHello and then only reads gets
/// the alert at once. (Before, GnuTLS buffered what came, waiting for the
/// rest: the client's read timed out after 3 s with no alert.)
#[test]
fn a_huge_client_hello_is_refused_before_it_is_complete() {
    let (report, mut reactor, probes) = huge_client_hello(0, 1024 * 1024);
    report.assert_fatal_alert_then_eof(Some(DECODE_ERROR), "the first MiB of it");
    assert_refused_as_too_large(&mut reactor, &probes);
}

/// A TLS 1.2 client (after [`PY_PEER_WATCH`]) with a receive window smaller
/// than the server's first flight: it sends its ClientHello, lets the
/// flight fill its window, answers with a handshake message of an unknown
/// type and `argv[2]` more bytes, and only then reads, slowly.
const PY_SLOW_READER_AFTER_A_BAD_RECORD: &str = r#"
import select, ssl
port, extra = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
sock.settimeout(5)
sock.connect(("127.0.0.1", port))
send_all(sock, outgoing.read())
select.select([sock], [], [], 5)
time.sleep(0.1)
send_all(sock, b"\x16\x03\x03\x00\x04\xee\x00\x00\x00" + bytes(extra))
read_to_end(sock, pace=0.002)
"#;

/// Our alert waits behind the end of our first flight until the peer reads:
/// closing then, with the peer's bytes unread, made Linux send a reset and
/// drop the flight's end and the alert (the peer read 1152 bytes, then
/// ECONNRESET; `gnutls-serv` does the same). A lingering close sends FIN
/// after the alert and drains the peer until it has read them.
#[test]
fn our_alert_reaches_a_client_that_reads_only_later() {
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", echo);
    let script = format!("{PY_PEER_WATCH}{PY_SLOW_READER_AFTER_A_BAD_RECORD}");
    let mut client = Spawn::new("python3")
        .args(["-c", &script])
        .args([port.to_string(), (256 * 1024).to_string()])
        .start();
    run_until_exit(&mut reactor, &mut client);
    run_until_all_disconnected(&mut reactor, &probes, 1);
    let report = PeerReport::parse(&client.stdout_text());
    let probes = probes.borrow();
    let p = probes[0].borrow();
    assert!(!p.handshake_done());
    assert_eq!(p.alerts_sent.len(), 1, "{:?}", p.error_texts);
    report.assert_fatal_alert_then_eof(Some(p.alerts_sent[0]), "slow reader");
}

// ---- the pending queue keeps what it hands out ----

/// Our client writes one line and closes right after its handshake; our
/// server takes connections from the pending queue only `after` the
/// handshake completed (at once from its slot, or later from a timer).
/// Returns what the server read from the socket it took, if it got one.
fn take_a_connection_that_closed_at_once(later: bool) -> Option<Vec<u8>> {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(id).unwrap();
    let port = server.local_address().port();
    let taken: Rc<RefCell<Option<Option<Vec<u8>>>>> = Rc::default();
    let t = taken.clone();
    server
        .pending_connection_available()
        .connect(move |server, cx, _| {
            let t = t.clone();
            if !later {
                let socket = server.next_pending_connection().unwrap();
                *t.borrow_mut() = Some(cx.socket(socket).map(|s| s.read_all()));
                return;
            }
            cx.start_timer(std::time::Duration::from_millis(300), move |cx, _| {
                let socket = cx.server(id).unwrap().next_pending_connection().unwrap();
                *t.borrow_mut() = Some(cx.socket(socket).map(|s| s.read_all()));
            });
        });
    let client = reactor.ssl_socket(client_config());
    let socket = reactor.socket(client).unwrap();
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"request\n").unwrap();
        s.disconnect_from_host();
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(
        &mut reactor,
        TIMEOUT,
        "the server to take the socket",
        |_| taken.borrow().is_some(),
    );
    run_for(&mut reactor, std::time::Duration::from_millis(100));
    assert_eq!(
        reactor.server(id).unwrap().connection_count(),
        0,
        "the socket taken after it disconnected is removed once read"
    );
    let got = taken.borrow_mut().take().unwrap();
    got
}

/// A client that writes its request and closes right after the handshake:
/// the id the pending queue hands out names a live socket with the request
/// (before, the closed socket was deleted while it waited and
/// `cx.socket(id)` was None: 5 of 5 runs).
#[test]
fn a_queued_connection_that_closed_at_once_keeps_its_data_until_taken() {
    for later in [false, true] {
        let data = take_a_connection_that_closed_at_once(later);
        assert_eq!(
            data.as_deref(),
            Some(&b"request\n"[..]),
            "taken {}",
            if later { "later" } else { "at once" }
        );
    }
}

/// A TLS 1.2 client that offers DHE but names no finite-field group gets
/// DHE with RFC 7919's 2048-bit group, as `gnutls-serv` gives it (before,
/// our server had no DH parameters and refused it with handshake_failure).
#[test]
fn dhe_is_served_to_a_client_that_names_no_group() {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server-rsa.pem"), ca("server-rsa.key"), None)
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve_with(&mut reactor, "127.0.0.1:0", config, pong);
    // Not -quiet: the session summary names the suite and the DH group.
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .args(["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"])
        .start();
    client.write_stdin(b"dhe\n");
    let status = run_until_exit(&mut reactor, &mut client);
    let out = client.stdout_text();
    assert!(status.success(), "{out}{}", client.stderr_text());
    assert!(out.contains("pong: dhe"), "{out}");
    assert!(out.contains("DHE-RSA-AES128-GCM-SHA256"), "{out}");
    assert!(out.contains("Server Temp Key: DH, 2048 bits"), "{out}");
    run_until_all_disconnected(&mut reactor, &probes, 1);
}

/// A TLS 1.2 client without tickets (`-no_ticket`) resumes by session ID.
#[test]
fn s_client_resumes_a_tls12_session_by_id() {
    let dir = TempDir::new("server-resume-id");
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (port, probes) = serve(&mut reactor, "127.0.0.1:0", pong);
    for (i, flag) in ["-sess_out", "-sess_in"].iter().enumerate() {
        let mut client = Spawn::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
            .args(["-tls1_2", "-no_ticket", flag, session])
            .start();
        client.write_stdin(format!("round {i}\n").as_bytes());
        let status = run_until_exit(&mut reactor, &mut client);
        let out = client.stdout_text();
        assert!(status.success(), "{}", client.stderr_text());
        let expected = if i == 0 {
            "New, TLSv1.2"
        } else {
            "Reused, TLSv1.2"
        };
        assert!(out.contains(expected), "round {i}: {out}");
        assert!(
            !out.contains("TLS session ticket:"),
            "round {i}: a ticket: {out}"
        );
    }
    run_until_all_disconnected(&mut reactor, &probes, 2);
    assert!(probes.borrow()[1].borrow().resumed);
}

/// The natural way to take queued connections: take each, connect
/// `ready_read`, read there. What arrived while a socket waited in the
/// queue (announced then, to no slot) is announced again once it is taken,
/// with `read_channel_finished` when the peer already closed: no request
/// is lost (before, 3 to 10 of 20 arrived).
#[test]
fn what_arrived_while_a_connection_waited_is_announced_when_it_is_taken() {
    const CLIENTS: usize = 20;
    let mut reactor = Reactor::new().unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(id).unwrap();
    let port = server.local_address().port();
    let requests: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let finished: Rc<RefCell<usize>> = Rc::default();
    let disconnected: Rc<RefCell<usize>> = Rc::default();
    let (r, f, d) = (requests.clone(), finished.clone(), disconnected.clone());
    server
        .pending_connection_available()
        .connect(move |server, cx, _| {
            while let Some(id) = server.next_pending_connection() {
                let socket = cx.socket(id).unwrap();
                let r = r.clone();
                socket
                    .ready_read()
                    .connect(move |s, _, _| r.borrow_mut().push(s.read_all()));
                let f = f.clone();
                socket
                    .read_channel_finished()
                    .connect(move |_, _, _| *f.borrow_mut() += 1);
                let d = d.clone();
                socket
                    .disconnected()
                    .connect(move |_, _, _| *d.borrow_mut() += 1);
            }
        });
    for i in 0..CLIENTS {
        let client = reactor.ssl_socket(client_config());
        let socket = reactor.socket(client).unwrap();
        socket.handshake_complete().connect(move |s, _, _| {
            s.write(format!("request {i}\n").as_bytes()).unwrap();
            s.disconnect_from_host();
        });
        socket.connect_to_host_encrypted("localhost", port).unwrap();
    }
    run_until(&mut reactor, TIMEOUT, "every request", |_| {
        requests
            .borrow()
            .concat()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            == CLIENTS
            && *finished.borrow() == CLIENTS
            && *disconnected.borrow() == CLIENTS
    });
    // Announced once each, not again.
    run_for(&mut reactor, std::time::Duration::from_millis(100));
    assert_eq!(
        (*finished.borrow(), *disconnected.borrow()),
        (CLIENTS, CLIENTS)
    );
    assert_eq!(reactor.server(id).unwrap().connection_count(), 0);
    let mut got: Vec<String> = requests
        .borrow()
        .concat()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    got.sort();
    let mut expected: Vec<String> = (0..CLIENTS).map(|i| format!("request {i}")).collect();
    expected.sort();
    assert_eq!(got, expected);
}

/// What each end heard, with the peer address it read in that slot.
type Heard = Rc<RefCell<Vec<(&'static str, Option<SocketAddr>)>>>;

fn hear_the_end(socket: &mut SslSocket, heard: &Heard, side: &'static str) {
    let h = heard.clone();
    socket
        .error_occurred()
        .connect(move |s, _, _| h.borrow_mut().push((side, s.peer_address())));
    let h = heard.clone();
    socket
        .disconnected()
        .connect(move |s, _, _| h.borrow_mut().push((side, s.peer_address())));
}

/// A server logs which peer failed or left: the addresses stay readable in
/// the `error_occurred` and `disconnected` slots (and after), on both ends,
/// although the connection is gone by then.
#[test]
fn the_peer_address_stays_readable_in_the_slots_that_hear_of_the_end() {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(id).unwrap();
    let server_address = server.local_address();
    let heard = Heard::default();
    let h = heard.clone();
    server.new_connection().connect(move |_, cx, &socket| {
        hear_the_end(cx.socket(socket).unwrap(), &h, "server");
    });
    // A client that trusts no CA refuses the server's certificate.
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .build()
        .unwrap();
    let client = reactor.ssl_socket(config);
    hear_the_end(reactor.socket(client).unwrap(), &heard, "client");
    let socket = reactor.socket(client).unwrap();
    socket
        .connect_to_host_encrypted("127.0.0.1", server_address.port())
        .unwrap();
    run_until(
        &mut reactor,
        TIMEOUT,
        "both ends to hear of the end",
        |_| {
            let heard = heard.borrow();
            ["client", "server"]
                .iter()
                .all(|side| heard.iter().any(|(s, _)| s == side))
        },
    );
    let socket = reactor.socket(client).unwrap();
    assert_eq!(socket.peer_address(), Some(server_address));
    let client_address = socket.local_address().expect("the client's address");
    let heard = heard.borrow();
    for (side, address) in heard.iter() {
        let expected = if *side == "client" {
            server_address
        } else {
            client_address
        };
        assert_eq!(*address, Some(expected), "{heard:?}");
    }
}

/// What a program changes through `cx.server(id)` outside the server's own
/// slots (here, from timers) takes effect at once: a raised connection
/// limit admits the clients waiting in the backlog, and `close` stops
/// listening (before, neither happened until something else serviced the
/// server).
#[test]
fn changes_made_from_a_timer_through_context_server_take_effect() {
    let mut reactor = Reactor::new().unwrap();
    let sid = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(sid).unwrap();
    server.set_handshake_timeout(None);
    server.set_max_connections(Some(1));
    let address = server.local_address();
    let _first = std::net::TcpStream::connect(address).unwrap();
    let _second = std::net::TcpStream::connect(address).unwrap();
    run_until(&mut reactor, TIMEOUT, "one connection", |r| {
        r.server(sid).unwrap().connection_count() == 1
    });
    reactor.start_timer(Duration::from_millis(20), move |cx, _| {
        cx.server(sid).unwrap().set_max_connections(None);
    });
    run_until(&mut reactor, TIMEOUT, "the second connection", |r| {
        r.server(sid).unwrap().connection_count() == 2
    });

    reactor.start_timer(Duration::from_millis(20), move |cx, _| {
        cx.server(sid).unwrap().close();
    });
    run_until(&mut reactor, TIMEOUT, "the server's removal", |r| {
        r.server(sid).is_none()
    });
    let refused = std::net::TcpStream::connect(address);
    assert!(refused.is_err(), "the listener is still open: {refused:?}");
}

#[test]
fn an_accepted_socket_knows_how_long_its_handshake_took() {
    let mut reactor = Reactor::new().unwrap();
    let sid = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let measured: Rc<RefCell<Option<Option<Duration>>>> = Rc::default();
    let seen = measured.clone();
    let server = reactor.server(sid).unwrap();
    let port = server.local_address().port();
    server.new_connection().connect(move |_, cx, &id| {
        let seen = seen.clone();
        cx.socket(id)
            .unwrap()
            .handshake_complete()
            .connect(move |s, _, _| {
                *seen.borrow_mut() = Some(s.statistics().handshake_duration);
            });
    });
    let (id, _client) = client_socket(&mut reactor, client_config(), false);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the server's handshake", |_| {
        measured.borrow().is_some()
    });
    let duration = measured.borrow().unwrap();
    assert!(
        duration.is_some(),
        "no handshake duration on the server side"
    );
}
