//! DTLS 1.2 against real peers, both roles: our client against
//! `gnutls-serv --udp` and `openssl s_server -dtls1_2`, our server against
//! `gnutls-cli --udp` and `openssl s_client -dtls1_2`; certificates,
//! certificate problems on either side, and pre-shared keys.
//!
//! `gnutls-serv` listens on every address, so its tests run in a private
//! network namespace (see `common/network.rs`); `s_server` binds
//! 127.0.0.1, and the clients connect to our server on 127.0.0.1.

mod common;
mod udp;

use std::net::SocketAddr;
use std::time::Duration;

use common::network::{gnutls_serv, in_private_network, PORT};
use common::{
    bytes, ca, ca_str, client_config, run_until, run_until_stdout, s_server, server_config, Proc,
    Spawn, KEY_HEX, TIMEOUT, WRONG_HEX,
};
use sslsocket::{
    DtlsProtocol, DtlsSocket, Error, PeerVerifyMode, PreSharedKeys, Reactor, SslConfiguration,
    SslErrorKind, TimeoutKind,
};
use udp::{client, echo_server, Shared};

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Sends a datagram once the handshake completed, and ends the
/// association (with `close_notify`) once the echo came back; runs until
/// the association ended, whichever way.
fn exchange(reactor: &mut Reactor, config: SslConfiguration, port: u16, name: &str) -> Shared {
    exchange_with(reactor, config, port, name, |_| {})
}

/// [`exchange`], with `setup` run on the socket first.
fn exchange_with(
    reactor: &mut Reactor,
    config: SslConfiguration,
    port: u16,
    name: &str,
    setup: impl FnOnce(&mut DtlsSocket),
) -> Shared {
    let (_, seen) = client(reactor, config, local(port), name, |s| {
        setup(s);
        s.set_handshake_timeout(Some(Duration::from_secs(3)));
        s.handshake_complete().connect(|s, _, _| {
            assert_eq!(s.protocol(), Some(DtlsProtocol::DtlsV1_2));
            s.write_datagram(b"ping over DTLS\n").unwrap();
        });
        s.datagram_received()
            .connect(|s, _, _| s.disconnect_from_peer());
    });
    run_until(reactor, TIMEOUT, "the association to end", |_| {
        seen.borrow().disconnected
    });
    seen
}

// ---------------------------------------------------------------------------
// gnutls-serv and gnutls-cli
// ---------------------------------------------------------------------------

#[test]
fn our_client_talks_to_gnutls_serv_and_refuses_a_wrong_name_unless_ignored() {
    in_private_network(
        "our_client_talks_to_gnutls_serv_and_refuses_a_wrong_name_unless_ignored",
        || {
            let _server = gnutls_serv(&[
                "--udp",
                "--x509certfile",
                &ca_str("server.pem"),
                "--x509keyfile",
                &ca_str("server.key"),
            ]);
            let mut reactor = Reactor::new().unwrap();
            let good = exchange(&mut reactor, client_config(), PORT, "localhost");
            let good = good.borrow();
            assert!(good.handshake_complete, "{:?}", good.errors);
            assert_eq!(good.datagrams, [b"ping over DTLS\n".to_vec()]);
            assert!(good.errors.is_empty(), "{:?}", good.errors);

            let refused = exchange(&mut reactor, client_config(), PORT, "wrong.example");
            let refused = refused.borrow();
            assert!(refused.established_nothing());
            assert_eq!(refused.ssl_errors, [vec![SslErrorKind::HostNameMismatch]]);
            assert!(
                matches!(&refused.errors[..], [Error::CertificateVerification(_)]),
                "{:?}",
                refused.errors
            );

            // Ignoring exactly that problem lets the handshake through.
            let ignored =
                exchange_with(&mut reactor, client_config(), PORT, "wrong.example", |s| {
                    s.ssl_errors()
                        .connect(|s, _, errors| s.ignore_ssl_errors(errors));
                });
            let ignored = ignored.borrow();
            assert!(ignored.handshake_complete, "{:?}", ignored.errors);
            assert_eq!(ignored.datagrams, [b"ping over DTLS\n".to_vec()]);
        },
    );
}

#[test]
fn our_client_proves_its_pre_shared_key_to_gnutls_serv_and_a_wrong_key_establishes_nothing() {
    in_private_network(
        "our_client_proves_its_pre_shared_key_to_gnutls_serv_and_a_wrong_key_establishes_nothing",
        || {
            let dir = common::TempDir::new("dtls-psk-serv");
            let passwd = dir.write("passwd.psk", format!("alice:{KEY_HEX}\n").as_bytes());
            let _server = gnutls_serv(&[
                "--udp",
                "--pskpasswd",
                passwd.to_str().unwrap(),
                "--priority",
                "NORMAL:+ECDHE-PSK:+DHE-PSK",
            ]);
            let mut reactor = Reactor::new().unwrap();
            let config = |key: &str| {
                SslConfiguration::builder()
                    .system_ca_certificates(false)
                    .pre_shared_key("alice", bytes(key))
                    .build()
                    .unwrap()
            };
            let good = exchange(&mut reactor, config(KEY_HEX), PORT, "localhost");
            let good = good.borrow();
            assert!(good.handshake_complete, "{:?}", good.errors);
            assert_eq!(good.datagrams, [b"ping over DTLS\n".to_vec()]);
            assert!(good.errors.is_empty(), "{:?}", good.errors);

            // DTLS drops records that fail authentication (RFC 6347
            // §4.1.2.7), the server's Finished under the wrong key among
            // them: a wrong key looks like loss, and the handshake times
            // out with nothing established.
            let bad = exchange(&mut reactor, config(WRONG_HEX), PORT, "localhost");
            let bad = bad.borrow();
            assert!(bad.established_nothing());
            assert!(
                matches!(bad.errors[..], [Error::Timeout(TimeoutKind::Handshake)]),
                "{:?}",
                bad.errors
            );
        },
    );
}

/// Runs `gnutls-cli --udp ARGS` against our server on `port`: sends a
/// line, waits for its echo (or its exit), ends it with end of input.
/// Returns its stdout and its stderr.
fn gnutls_cli(reactor: &mut Reactor, port: u16, args: &[&str]) -> (String, String) {
    let mut cli = Spawn::new("gnutls-cli")
        .args(["--udp", "--x509cafile", &ca_str("root-ca.pem")])
        .args(["--verify-hostname", "localhost"])
        .args(args)
        .args(["-p", &port.to_string(), "127.0.0.1"])
        .start();
    cli.write_stdin(b"ping\n");
    run_until(reactor, TIMEOUT, "gnutls-cli's echo or exit", |_| {
        common::contains(&cli.stdout(), b"ping\n") || cli.try_wait().is_some()
    });
    cli.close_stdin();
    run_until(reactor, TIMEOUT, "gnutls-cli to exit", |_| {
        cli.try_wait().is_some()
    });
    (cli.stdout_text(), cli.stderr_text())
}

#[test]
fn gnutls_cli_talks_to_our_server_which_refuses_it_without_a_client_certificate() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let (stdout, stderr) = gnutls_cli(&mut reactor, address.port(), &[]);
    assert!(
        stdout.contains("ping"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("(DTLS1.2-X.509)"), "{stdout}");
    run_until(&mut reactor, TIMEOUT, "our socket to end", |_| {
        admitted
            .borrow()
            .first()
            .is_some_and(|(_, s)| s.borrow().disconnected)
    });
    let (_, seen) = admitted.borrow()[0].clone();
    let seen = seen.borrow();
    assert!(
        seen.handshake_complete && seen.errors.is_empty(),
        "{:?}",
        seen.errors
    );
    assert_eq!(seen.datagrams, [b"ping\n".to_vec()]);

    // A server that requires a client certificate.
    let requiring = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .build()
        .unwrap();
    let (_, address, admitted) = echo_server(&mut reactor, requiring, |_| {});
    let (stdout, _) = gnutls_cli(&mut reactor, address.port(), &[]);
    assert!(!stdout.contains("ping"), "{stdout}");
    run_until(&mut reactor, TIMEOUT, "our socket to refuse", |_| {
        admitted
            .borrow()
            .first()
            .is_some_and(|(_, s)| s.borrow().disconnected)
    });
    let (_, refused) = admitted.borrow()[0].clone();
    let refused = refused.borrow();
    assert!(refused.established_nothing());
    assert!(
        matches!(&refused.errors[..], [Error::CertificateVerification(e)] if e[0].kind() == SslErrorKind::NoPeerCertificate),
        "{:?}",
        refused.errors
    );
    let with_certificate = [
        "--x509certfile",
        &ca_str("client.pem"),
        "--x509keyfile",
        &ca_str("client.key"),
    ];
    let (stdout, stderr) = gnutls_cli(&mut reactor, address.port(), &with_certificate);
    assert!(
        stdout.contains("ping"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// openssl s_server and s_client
// ---------------------------------------------------------------------------

/// `openssl s_server -dtls1_2` on 127.0.0.1 presenting `leaf` (with the
/// intermediate) and its key.
fn openssl_dtls_server(leaf: &str, key: &str) -> (Proc, u16) {
    let args = [
        "-dtls1_2",
        "-cert",
        &ca_str(leaf),
        "-cert_chain",
        &ca_str("intermediate-ca.pem"),
        "-key",
        &ca_str(key),
    ];
    let server = s_server(&args, None, None, false);
    (server.proc, server.port)
}

#[test]
fn our_client_talks_to_openssl_s_server_and_refuses_an_expired_certificate() {
    let (mut server, port) = openssl_dtls_server("server.pem", "server.key");
    let mut reactor = Reactor::new().unwrap();
    let (_, seen) = client(
        &mut reactor,
        client_config(),
        local(port),
        "localhost",
        |s| {
            s.handshake_complete().connect(|s, _, _| {
                s.write_datagram(b"hello s_server\n").unwrap();
            });
        },
    );
    run_until_stdout(&mut reactor, &mut server, b"hello s_server\n");
    server.write_stdin(b"hello sslsocket\n");
    run_until(&mut reactor, TIMEOUT, "s_server's datagram", |_| {
        !seen.borrow().datagrams.is_empty()
    });
    assert_eq!(seen.borrow().datagrams, [b"hello sslsocket\n".to_vec()]);
    drop(server);

    let (_server, port) = openssl_dtls_server("broken/expired.pem", "broken/expired.key");
    let expired = exchange(&mut reactor, client_config(), port, "localhost");
    let expired = expired.borrow();
    assert!(expired.established_nothing());
    assert_eq!(expired.ssl_errors, [vec![SslErrorKind::CertificateExpired]]);
}

/// OpenSSL packs its flight densely: a datagram may end one message and
/// start the next, whose rest comes in the next datagram. When such a
/// flight is all received at once, the client must take it all at once:
/// before, it stopped after the certificate check with datagrams still
/// queued, until s_server sent its flight again a second later (seen here
/// as a second ServerHello in s_server's -msg trace).
#[test]
fn our_client_answers_an_openssl_flight_without_waiting_for_its_retransmission() {
    let args = [
        "-dtls1_2",
        "-msg",
        "-cert",
        &ca_str("server.pem"),
        "-cert_chain",
        &ca_str("intermediate-ca.pem"),
        "-key",
        &ca_str("server.key"),
    ];
    let mut server = s_server(&args, None, None, false);
    let mut reactor = Reactor::new().unwrap();
    let rounds = 6;
    for round in 0..rounds {
        let (_, seen) = client(
            &mut reactor,
            client_config(),
            local(server.port),
            "localhost",
            |s| {
                s.handshake_complete()
                    .connect(|s, _, _| s.disconnect_from_peer());
            },
        );
        run_until(&mut reactor, TIMEOUT, "the association to end", |_| {
            seen.borrow().disconnected
        });
        let seen = seen.borrow();
        assert!(seen.handshake_complete, "round {round}: {:?}", seen.errors);
    }
    // OpenSSL 3's -msg names no DTLS message: its ServerHello here is the
    // only 73-byte handshake message it sends (12 + 61 bytes).
    let trace = server.proc.stdout_text();
    let hellos = trace
        .matches(
            ">>> Not TLS data or unknown version (version=65277, content_type=22) [length 0049]",
        )
        .count();
    assert_eq!(
        hellos, rounds,
        "ServerHello sent more than once per handshake"
    );
    server.proc.kill();
}

/// `openssl s_client -dtls1_2 -quiet ARGS` connecting to our server on
/// `port`.
fn s_client(port: u16, args: &[&str]) -> Proc {
    Spawn::new("openssl")
        .args(["s_client", "-dtls1_2", "-quiet"])
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .start()
}

/// Runs [`s_client`], sends a line and waits for its echo; returns its
/// stdout and stderr.
fn openssl_s_client(reactor: &mut Reactor, port: u16, args: &[&str]) -> (String, String) {
    let mut cli = s_client(port, args);
    cli.write_stdin(b"ping\n");
    run_until(reactor, TIMEOUT, "s_client's echo or exit", |_| {
        common::contains(&cli.stdout(), b"ping\n") || cli.try_wait().is_some()
    });
    cli.kill();
    (cli.stdout_text(), cli.stderr_text())
}

#[test]
fn openssl_s_client_talks_to_our_server_with_a_certificate_and_with_a_pre_shared_key() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let verify = [
        "-CAfile",
        &ca_str("root-ca.pem"),
        "-verify_hostname",
        "localhost",
        "-verify_return_error",
    ];
    let (stdout, stderr) = openssl_s_client(&mut reactor, address.port(), &verify);
    assert_eq!(stdout, "ping\n", "stderr: {stderr}");
    let (_, seen) = admitted.borrow()[0].clone();
    assert!(seen.borrow().handshake_complete);

    let keys = PreSharedKeys::new();
    keys.insert("alice", bytes(KEY_HEX)).unwrap();
    let psk_server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .pre_shared_keys(&keys)
        .build()
        .unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, psk_server, |_| {});
    let server = reactor.dtls_server(server).unwrap();
    server.set_handshake_timeout(Some(Duration::from_secs(2)));
    let psk = [
        "-psk",
        KEY_HEX,
        "-psk_identity",
        "alice",
        "-cipher",
        "ECDHE-PSK-CHACHA20-POLY1305:DHE-PSK-AES128-GCM-SHA256",
    ];
    let (stdout, stderr) = openssl_s_client(&mut reactor, address.port(), &psk);
    assert_eq!(stdout, "ping\n", "stderr: {stderr}");
    let (id, seen) = admitted.borrow()[0].clone();
    assert!(seen.borrow().handshake_complete);
    let socket = reactor.dtls(id);
    assert_eq!(
        socket.and_then(|s| s.psk_identity()).as_deref(),
        Some(&b"alice"[..])
    );
    // A wrong key: the client's Finished fails authentication and DTLS
    // drops it, so our socket's handshake times out, with nothing
    // established and nothing echoed.
    let wrong = [&psk[..1], &[WRONG_HEX], &psk[2..]].concat();
    let mut cli = s_client(address.port(), &wrong);
    cli.write_stdin(b"ping\n");
    run_until(&mut reactor, TIMEOUT, "our socket to give up", |_| {
        admitted
            .borrow()
            .get(1)
            .is_some_and(|(_, s)| s.borrow().disconnected)
    });
    let (_, refused) = admitted.borrow()[1].clone();
    let refused = refused.borrow();
    assert!(refused.established_nothing());
    assert!(
        matches!(refused.errors[..], [Error::Timeout(TimeoutKind::Handshake)]),
        "{:?}",
        refused.errors
    );
    cli.kill();
    assert!(!cli.stdout_text().contains("ping"), "{}", cli.stdout_text());
}
