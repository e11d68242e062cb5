//! Stateless TLS termination across hosts: two servers with their own
//! configurations (as two hosts have) that share a session ticket key
//! resume each other's sessions, TLS 1.3 and 1.2; with different keys, or
//! after a rotation, an old ticket makes a full, verified handshake, never
//! an error; and a host verifies a resumed client certificate again against
//! its own trust. Clients: `openssl s_client` (`-sess_out`, `-sess_in`) and
//! our own socket behind a round-robin TCP balancer (one address, two
//! hosts, as behind an L4 load balancer).

mod common;

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread;

use common::*;
use sslsocket::{
    PeerVerifyMode, Reactor, SessionTicketKey, SslConfiguration, SslConfigurationBuilder,
    SslErrorKind, SslProtocol, SslSocket,
};

/// The key the hosts of one service share.
fn shared_key() -> SessionTicketKey {
    SessionTicketKey::from_bytes(&[0x5a; SessionTicketKey::LEN]).unwrap()
}

fn other_key() -> SessionTicketKey {
    SessionTicketKey::from_bytes(&[0xa5; SessionTicketKey::LEN]).unwrap()
}

/// One host's configuration: the test server certificate, and `key`.
fn host(key: SessionTicketKey) -> SslConfigurationBuilder {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .session_ticket_key(key)
}

/// A host that requires a client certificate issued under `trusted`.
fn host_requiring_clients_of(key: SessionTicketKey, trusted: &str) -> SslConfiguration {
    host(key)
        .add_ca_certificates_file(ca(trusted))
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .build()
        .unwrap()
}

/// The connections one host accepted, each with its probe.
type Accepted = Rc<RefCell<Vec<Shared>>>;

/// Listens with `config`; every connection answers its first line with
/// "pong: LINE" and closes.
fn listen(reactor: &mut Reactor, config: SslConfiguration) -> (u16, Accepted) {
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .unwrap();
    let server = reactor.server(id).unwrap();
    server.set_handshake_timeout(None);
    let accepted: Accepted = Rc::default();
    let list = Rc::clone(&accepted);
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        list.borrow_mut().push(probe(socket, false));
        socket.ready_read().connect(|s: &mut SslSocket, _, _| {
            if let Some(line) = s.take_line() {
                let mut answer = b"pong: ".to_vec();
                answer.extend_from_slice(&line);
                s.write(&answer).unwrap();
                s.disconnect_from_host();
            }
        });
    });
    (server.local_address().port(), accepted)
}

/// What one `s_client` run showed.
struct Visit {
    /// Its stdout and stderr.
    out: String,
    succeeded: bool,
}

impl Visit {
    fn reused(&self) -> bool {
        self.out.contains("Reused, TLSv1.")
    }

    fn new_session(&self) -> bool {
        self.out.contains("New, TLSv1.")
    }
}

/// `openssl s_client` to `port`, verifying the server, saving its session
/// to `session` (`-sess_out`) or offering it (`-sess_in`), sending a line.
fn visit(reactor: &mut Reactor, port: u16, flag: &str, session: &str, extra: &[&str]) -> Visit {
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .args([flag, session])
        .args(extra)
        .start();
    client.write_stdin(b"hello\n");
    run_until(reactor, TIMEOUT, "s_client to exit", |_| {
        client.try_wait().is_some()
    });
    let status = client.wait(TIMEOUT);
    let out = format!("{}\n{}", client.stdout_text(), client.stderr_text());
    let succeeded = status.success() && out.contains("pong: hello");
    Visit { out, succeeded }
}

/// A session file in `dir`.
fn session_file(dir: &TempDir) -> String {
    dir.path().join("session.pem").to_str().unwrap().to_owned()
}

/// `-tls1_2` or `-tls1_3`.
fn version_flag(protocol: SslProtocol) -> &'static str {
    match protocol {
        SslProtocol::TlsV1_2 => "-tls1_2",
        _ => "-tls1_3",
    }
}

/// Runs until host `accepted` saw `count` connections end.
fn until_ended(reactor: &mut Reactor, accepted: &Accepted, count: usize) {
    run_until(reactor, TIMEOUT, "the host's connections to end", |_| {
        let list = accepted.borrow();
        list.len() == count && list.iter().all(|p| p.borrow().disconnected())
    });
}

/// `s_client` makes a session with host A (the shared key), then offers
/// its ticket to host B (holding `b_key`); whether it was resumed, as
/// `s_client` and as host B saw it. Both visits succeed, verified
/// (`-verify_return_error`), without an error on host B.
fn from_a_to_b(protocol: SslProtocol, b_key: SessionTicketKey) -> (bool, bool) {
    let dir = TempDir::new("tickets-across");
    let session = session_file(&dir);
    let mut reactor = Reactor::new().unwrap();
    let (a, on_a) = listen(&mut reactor, host(shared_key()).build().unwrap());
    let (b, on_b) = listen(&mut reactor, host(b_key).build().unwrap());
    let version = [version_flag(protocol)];
    let first = visit(&mut reactor, a, "-sess_out", &session, &version);
    assert!(
        first.succeeded && first.new_session(),
        "{protocol:?}: {}",
        first.out
    );
    let second = visit(&mut reactor, b, "-sess_in", &session, &version);
    assert!(second.succeeded, "{protocol:?}: {}", second.out);
    assert!(second.reused() != second.new_session(), "{}", second.out);
    until_ended(&mut reactor, &on_a, 1);
    until_ended(&mut reactor, &on_b, 1);
    let on_b = on_b.borrow();
    let p = on_b[0].borrow();
    assert_eq!(p.errors(), vec![], "{protocol:?}: {:?}", p.error_texts);
    (second.reused(), p.resumed)
}

#[test]
fn a_ticket_from_one_host_resumes_on_another_sharing_the_key() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let seen = from_a_to_b(protocol, shared_key());
        assert_eq!(seen, (true, true), "{protocol:?}: (client, host B) resumed");
    }
}

#[test]
fn with_different_keys_a_ticket_makes_a_full_verified_handshake() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let seen = from_a_to_b(protocol, other_key());
        assert_eq!(
            seen,
            (false, false),
            "{protocol:?}: (client, host B) resumed"
        );
    }
}

#[test]
fn after_a_rotation_old_tickets_make_a_full_handshake_and_new_ones_resume() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let dir = TempDir::new("tickets-rotation");
        let (old, new) = (session_file(&dir), format!("{}.new", session_file(&dir)));
        let mut reactor = Reactor::new().unwrap();
        let config = host(shared_key()).build().unwrap();
        let (port, accepted) = listen(&mut reactor, config.clone());
        let version = [version_flag(protocol)];
        let first = visit(&mut reactor, port, "-sess_out", &old, &version);
        assert!(
            first.succeeded && first.new_session(),
            "{protocol:?}: {}",
            first.out
        );
        // Before the rotation, the ticket resumes.
        let again = visit(&mut reactor, port, "-sess_in", &old, &version);
        assert!(
            again.succeeded && again.reused(),
            "{protocol:?}: {}",
            again.out
        );

        config.rotate_session_ticket_key(other_key()).unwrap();
        let after = visit(
            &mut reactor,
            port,
            "-sess_in",
            &old,
            &[version[0], "-sess_out", &new],
        );
        assert!(after.succeeded, "{protocol:?}: {}", after.out);
        assert!(
            after.new_session(),
            "{protocol:?}: an old ticket resumed: {}",
            after.out
        );
        let fresh = visit(&mut reactor, port, "-sess_in", &new, &version);
        assert!(
            fresh.succeeded && fresh.reused(),
            "{protocol:?}: {}",
            fresh.out
        );
        until_ended(&mut reactor, &accepted, 4);
        let resumed: Vec<bool> = accepted
            .borrow()
            .iter()
            .map(|p| p.borrow().resumed)
            .collect();
        assert_eq!(resumed, [false, true, false, true], "{protocol:?}");
        for p in accepted.borrow().iter() {
            assert_eq!(p.borrow().errors(), vec![], "{protocol:?}");
        }
    }
}

#[test]
fn rotating_a_configuration_without_tickets_is_refused() {
    let client = client_config();
    let error = client.rotate_session_ticket_key(other_key()).unwrap_err();
    assert!(
        matches!(error, sslsocket::Error::InvalidState(_)),
        "{error}"
    );
    let no_resumption = host(shared_key())
        .session_resumption(false)
        .build()
        .unwrap();
    assert!(no_resumption
        .rotate_session_ticket_key(other_key())
        .is_err());
}

#[test]
fn a_host_verifies_a_resumed_client_certificate_against_its_own_trust() {
    let dir = TempDir::new("tickets-client-certificate");
    let session = session_file(&dir);
    let mut reactor = Reactor::new().unwrap();
    let (a, on_a) = listen(
        &mut reactor,
        host_requiring_clients_of(shared_key(), "root-ca.pem"),
    );
    let (b, on_b) = listen(
        &mut reactor,
        host_requiring_clients_of(shared_key(), "root-ca.pem"),
    );
    // Host C shares the key but trusts another CA for its clients.
    let (c, on_c) = listen(
        &mut reactor,
        host_requiring_clients_of(shared_key(), "other-ca.pem"),
    );
    let (cert, chain, key) = (
        ca_str("client.pem"),
        ca_str("intermediate-ca.pem"),
        ca_str("client.key"),
    );
    let client_certificate = [
        "-tls1_2",
        "-cert",
        &cert,
        "-cert_chain",
        &chain,
        "-key",
        &key,
    ];
    let first = visit(&mut reactor, a, "-sess_out", &session, &client_certificate);
    assert!(first.succeeded && first.new_session(), "{}", first.out);
    until_ended(&mut reactor, &on_a, 1);
    assert_eq!(on_a.borrow()[0].borrow().verify_errors, vec![]);

    let on_b_visit = visit(&mut reactor, b, "-sess_in", &session, &client_certificate);
    assert!(
        on_b_visit.succeeded && on_b_visit.reused(),
        "{}",
        on_b_visit.out
    );
    until_ended(&mut reactor, &on_b, 1);
    {
        let on_b = on_b.borrow();
        let p = on_b[0].borrow();
        assert!(p.resumed && p.handshake_done());
        assert_eq!(p.verify_errors, vec![], "verified again, and clean");
        assert_eq!(p.chain.first(), certificates(&ca("client.pem")).first());
    }

    // C resumes the session (same key) but judges the restored certificate
    // by its own trust: refused, nothing established, no answer.
    let on_c_visit = visit(&mut reactor, c, "-sess_in", &session, &client_certificate);
    assert!(!on_c_visit.succeeded, "{}", on_c_visit.out);
    // The abbreviated handshake carried no certificate: what C refused is
    // the one restored from A's ticket.
    assert!(on_c_visit.reused(), "{}", on_c_visit.out);
    until_ended(&mut reactor, &on_c, 1);
    let on_c = on_c.borrow();
    let p = on_c[0].borrow();
    assert!(!p.handshake_done(), "{:?}", p.events);
    let refused = p.errors().into_iter().any(|e| {
        matches!(e, Caught::CertificateVerification(kinds)
            if kinds.contains(&SslErrorKind::UnableToGetLocalIssuerCertificate))
    });
    assert!(refused, "{:?}", p.error_texts);
}

/// A round-robin TCP balancer on one loopback address: connection `i` goes
/// to `hosts[i % hosts.len()]`, bytes pumped both ways until either side
/// closes. For `connections` connections, then it stops listening.
fn balancer(hosts: Vec<SocketAddr>, connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for i in 0..connections {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let Ok(server) = TcpStream::connect(hosts[i % hosts.len()]) else {
                return;
            };
            pump_both_ways(client, server);
        }
    });
    address
}

fn pump_both_ways(client: TcpStream, server: TcpStream) {
    let (mut client_in, mut server_out) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut server_in, mut client_out) = (server, client);
    thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(std::net::Shutdown::Write);
    });
    thread::spawn(move || {
        let _ = io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(std::net::Shutdown::Write);
    });
}

/// Our client connects twice to `address` with one configuration (which
/// remembers the first session); returns each connection's probe.
fn our_client_twice(
    reactor: &mut Reactor,
    address: SocketAddr,
    protocol: SslProtocol,
) -> Vec<Shared> {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(protocol, protocol)
        .build()
        .unwrap();
    (0..2)
        .map(|round| {
            let id = reactor.ssl_socket(config.clone());
            let s = reactor.socket(id).unwrap();
            let p = probe(s, true);
            s.set_peer_verify_name("localhost");
            s.write(format!("round {round}\n").as_bytes()).unwrap();
            s.connect_to_host_encrypted("127.0.0.1", address.port())
                .unwrap();
            run_until(reactor, TIMEOUT, "the answer and the close", |_| {
                p.borrow().disconnected()
            });
            assert_eq!(p.borrow().data, format!("pong: round {round}\n").as_bytes());
            p
        })
        .collect()
}

#[test]
fn our_client_behind_a_balancer_resumes_on_the_other_host() {
    for (protocol, shared) in [
        (SslProtocol::TlsV1_3, true),
        (SslProtocol::TlsV1_2, true),
        (SslProtocol::TlsV1_3, false),
        (SslProtocol::TlsV1_2, false),
    ] {
        let mut reactor = Reactor::new().unwrap();
        let b_key = if shared { shared_key() } else { other_key() };
        let (a, on_a) = listen(&mut reactor, host(shared_key()).build().unwrap());
        let (b, on_b) = listen(&mut reactor, host(b_key).build().unwrap());
        let hosts = [a, b].map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
        let address = balancer(hosts.to_vec(), 2);
        let visits = our_client_twice(&mut reactor, address, protocol);
        until_ended(&mut reactor, &on_a, 1);
        until_ended(&mut reactor, &on_b, 1);
        let what = format!("{protocol:?}, shared key: {shared}");
        // The first on A, the second on B: resumed exactly when B holds A's
        // key, and verified either way (the client verifies a resumed
        // chain again; any problem would have failed the connection).
        assert!(!visits[0].borrow().resumed, "{what}");
        assert_eq!(visits[1].borrow().resumed, shared, "{what}");
        assert_eq!(on_b.borrow()[0].borrow().resumed, shared, "{what}");
        for p in &visits {
            let p = p.borrow();
            assert_eq!(p.errors(), vec![], "{what}: {:?}", p.error_texts);
            assert_eq!(p.protocol, Some(protocol), "{what}");
            assert!(!p.chain.is_empty(), "{what}: the chain was verified");
        }
    }
}
