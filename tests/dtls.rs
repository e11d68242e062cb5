//! DTLS between our own client and server on 127.0.0.1: whole datagrams
//! both ways, the MTU, verification and its ignore rules, timeouts, a lossy
//! relay (drops, duplicates, reordering), a restarting client, the cap on
//! half-open peers.

mod common;
mod udp;

use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use common::{ca, client_config, run_until, server_config, TIMEOUT};
use sslsocket::{
    DtlsProtocol, Error, PreSharedKeys, PskErrorKind, Reactor, SocketState, SslConfiguration,
    SslErrorKind, SslMode, TimeoutKind,
};
use udp::{client, echo_server, Fate, UdpRelay, Way};

/// Runs until the client's handshake completed or its association ended.
fn run_handshake(reactor: &mut Reactor, seen: &udp::Shared) {
    run_until(reactor, TIMEOUT, "the DTLS handshake to end", |_| {
        let seen = seen.borrow();
        seen.handshake_complete || seen.disconnected
    });
}

/// Our client to `address` as `localhost`, after `setup`, through a
/// handshake that must complete.
fn encrypted(
    reactor: &mut Reactor,
    address: SocketAddr,
    setup: impl FnOnce(&mut sslsocket::DtlsSocket),
) -> (sslsocket::DtlsSocketId, udp::Shared) {
    let (id, seen) = client(reactor, client_config(), address, "localhost", setup);
    run_handshake(reactor, &seen);
    assert!(
        seen.borrow().handshake_complete,
        "{:?}",
        seen.borrow().errors
    );
    (id, seen)
}

#[test]
fn client_and_server_exchange_whole_datagrams() {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let (id, seen) = encrypted(&mut reactor, address, |_| {});
    let socket = reactor.dtls(id).unwrap();
    assert_eq!(socket.state(), SocketState::Encrypted);
    assert_eq!(socket.mode(), SslMode::SslClientMode);
    assert_eq!(socket.protocol(), Some(DtlsProtocol::DtlsV1_2));
    assert_eq!(socket.peer_certificate_chain().len(), 2);
    assert_eq!(socket.peer_address(), Some(address));
    let sizes = [1, 100, socket.data_mtu().unwrap()];
    for size in sizes {
        socket.write_datagram(&vec![size as u8; size]).unwrap();
    }
    run_until(&mut reactor, TIMEOUT, "the echoes", |_| {
        seen.borrow().datagrams.len() == sizes.len()
    });
    let got: Vec<usize> = seen.borrow().datagrams.iter().map(Vec::len).collect();
    assert_eq!(got, sizes, "each datagram whole, none merged or split");
    assert!(seen
        .borrow()
        .datagrams
        .iter()
        .all(|d| d.iter().all(|&b| b == d.len() as u8)));
    let (_, theirs) = admitted.borrow()[0].clone();
    assert_eq!(theirs.borrow().datagrams.len(), sizes.len());
    assert_eq!(reactor.dtls_server(server).unwrap().connection_count(), 1);

    reactor.dtls(id).unwrap().disconnect_from_peer();
    run_until(&mut reactor, TIMEOUT, "the server's socket to end", |_| {
        theirs.borrow().disconnected
    });
    assert!(
        theirs.borrow().errors.is_empty(),
        "{:?}",
        theirs.borrow().errors
    );
    assert!(seen.borrow().disconnected && seen.borrow().errors.is_empty());
    run_until(
        &mut reactor,
        TIMEOUT,
        "the server to forget the peer",
        |r| r.dtls_server(server).unwrap().connection_count() == 0,
    );
    // The server's socket removed itself; the client stays until removed,
    // its peer's address still readable.
    assert_eq!(reactor.object_count(), 2);
    assert_eq!(reactor.dtls(id).unwrap().peer_address(), Some(address));
}

#[test]
fn a_datagram_larger_than_the_data_mtu_is_refused_whole() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let (id, seen) = client(&mut reactor, client_config(), address, "localhost", |s| {
        s.set_mtu(600).unwrap();
    });
    run_handshake(&mut reactor, &seen);
    let socket = reactor.dtls(id).unwrap();
    assert_eq!(socket.mtu(), 600);
    let limit = socket.data_mtu().unwrap();
    assert!((500..600).contains(&limit), "{limit}");
    let error = socket.write_datagram(&vec![1; limit + 1]).unwrap_err();
    assert!(
        matches!(error, Error::DatagramTooLarge { size, limit: l } if size == limit + 1 && l == limit),
        "{error}"
    );
    assert!(matches!(
        socket.write_datagram(&[]),
        Err(Error::InvalidInput(_))
    ));
    assert!(socket.set_mtu(100).is_err());
    assert!(
        socket.set_mtu(20_000).is_err(),
        "GnuTLS would cap it silently"
    );
    assert_eq!(socket.mtu(), 600, "a refused MTU changes nothing");
    socket.write_datagram(&vec![2; limit]).unwrap();
    run_until(&mut reactor, TIMEOUT, "the echo", |_| {
        !seen.borrow().datagrams.is_empty()
    });
    let (_, theirs) = admitted.borrow()[0].clone();
    let theirs = theirs.borrow();
    assert_eq!(
        theirs.datagrams.len(),
        1,
        "only the datagram that fits went out"
    );
    assert_eq!(theirs.datagrams[0].len(), limit);
    assert!(
        seen.borrow().errors.is_empty(),
        "a refusal is not a failure"
    );
}

#[test]
fn a_name_mismatch_is_refused_unless_ignored_then_trusted() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let (_, refused) = client(
        &mut reactor,
        client_config(),
        address,
        "wrong.example",
        |_| {},
    );
    run_handshake(&mut reactor, &refused);
    let refused = refused.borrow();
    assert!(refused.established_nothing());
    assert_eq!(refused.ssl_errors, [vec![SslErrorKind::HostNameMismatch]]);
    assert!(
        matches!(&refused.errors[..], [Error::CertificateVerification(e)] if e[0].kind() == SslErrorKind::HostNameMismatch),
        "{:?}",
        refused.errors
    );
    run_until(&mut reactor, TIMEOUT, "the server's socket to fail", |_| {
        admitted
            .borrow()
            .first()
            .is_some_and(|(_, s)| s.borrow().disconnected)
    });
    let (_, theirs) = admitted.borrow()[0].clone();
    assert!(!theirs.borrow().handshake_complete);

    let (_, ignored) = client(
        &mut reactor,
        client_config(),
        address,
        "wrong.example",
        |s| {
            s.ssl_errors()
                .connect(|s, _, errors| s.ignore_ssl_errors(errors));
        },
    );
    run_handshake(&mut reactor, &ignored);
    assert!(
        ignored.borrow().handshake_complete,
        "{:?}",
        ignored.borrow().errors
    );
}

#[test]
fn a_closed_port_fails_the_handshake_at_once() {
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (_, seen) = client(&mut reactor, client_config(), closed, "localhost", |_| {});
    run_handshake(&mut reactor, &seen);
    let seen = seen.borrow();
    assert!(
        matches!(&seen.errors[..], [Error::Network(e)] if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{:?}",
        seen.errors
    );
}

#[test]
fn a_silent_server_times_the_handshake_out_after_a_few_retransmissions() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (id, seen) = client(
        &mut reactor,
        client_config(),
        silent.local_addr().unwrap(),
        "localhost",
        |s| {
            s.set_retransmission_timeout(Duration::from_millis(100));
            s.set_handshake_timeout(Some(Duration::from_millis(1000)));
        },
    );
    let mut hellos = 0;
    run_until(&mut reactor, TIMEOUT, "the handshake timeout", |_| {
        let mut buf = [0u8; 2048];
        while silent.recv_from(&mut buf).is_ok() {
            hellos += 1;
        }
        seen.borrow().disconnected
    });
    let seen = seen.borrow();
    assert!(
        matches!(seen.errors[..], [Error::Timeout(TimeoutKind::Handshake)]),
        "{:?}",
        seen.errors
    );
    // Sent at 0, 100, 300 and 700 ms (the timer doubles; fewer on a
    // starved machine): the reactor's timers drive the retransmissions,
    // not a loop.
    assert!((2..=6).contains(&hellos), "{hellos} ClientHellos");
    assert_eq!(reactor.dtls(id).unwrap().state(), SocketState::Unconnected);
}

/// A handshake through a relay that makes each datagram's `fate`; returns
/// the client's record and the relay.
fn through_relay(
    fate: impl FnMut(Way, usize) -> Fate + Send + 'static,
    handshake_timeout: Duration,
) -> (udp::Shared, UdpRelay, Reactor) {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, _) = echo_server(&mut reactor, server_config(), |_| {});
    let server = reactor.dtls_server(server).unwrap();
    server.set_retransmission_timeout(Duration::from_millis(50));
    server.set_handshake_timeout(Some(handshake_timeout));
    let relay = UdpRelay::start(address, Box::new(fate));
    let (_, seen) = client(
        &mut reactor,
        client_config(),
        relay.address(),
        "localhost",
        |s| {
            s.set_retransmission_timeout(Duration::from_millis(50));
            s.set_handshake_timeout(Some(handshake_timeout));
            s.handshake_complete().connect(|s, _, _| {
                for i in 0..20u8 {
                    s.write_datagram(&[i; 300]).unwrap();
                }
            });
        },
    );
    run_handshake(&mut reactor, &seen);
    (seen, relay, reactor)
}

#[test]
fn the_handshake_completes_through_drops_duplicates_and_reordering() {
    for seed in [1u64, 2, 3, 4] {
        let mut rng = common::Rng::new(seed);
        let (seen, relay, mut reactor) = through_relay(
            move |_, n| {
                // The first datagram each way is always lost: a flight must
                // be sent again.
                if n == 1 {
                    return Fate::Drop;
                }
                match rng.upto(9) {
                    0 | 1 => Fate::Drop,
                    2 => Fate::Duplicate,
                    3 | 4 => Fate::Delay,
                    _ => Fate::Pass,
                }
            },
            Duration::from_secs(20),
        );
        assert!(
            seen.borrow().handshake_complete,
            "seed {seed}: {:?}",
            seen.borrow().errors
        );
        // Data is not retransmitted: some of the 20 echoes may be lost, and
        // none may come twice or cut.
        common::run_for(&mut reactor, Duration::from_millis(300));
        let seen = seen.borrow();
        assert!(seen.errors.is_empty(), "seed {seed}: {:?}", seen.errors);
        assert!(seen.datagrams.len() <= 20);
        let mut firsts: Vec<u8> = seen.datagrams.iter().map(|d| d[0]).collect();
        assert!(seen
            .datagrams
            .iter()
            .all(|d| d.len() == 300 && d.iter().all(|&b| b == d[0])));
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(
            firsts.len(),
            seen.datagrams.len(),
            "seed {seed}: a replay got through"
        );
        assert!(
            relay.count(Way::ToServer) > 2,
            "the client sent flights again"
        );
    }
}

#[test]
fn empty_datagrams_from_the_peers_address_are_dropped_and_end_nothing() {
    // Every datagram after the first each way, handshake and data alike,
    // follows an empty one from the same address. Before, GnuTLS took the
    // empty pull for the end of the stream: the association failed with
    // GNUTLS_E_PREMATURE_TERMINATION on both sides.
    let (seen, _relay, mut reactor) = through_relay(
        |_, n| match n {
            1 => Fate::Pass,
            _ => Fate::AfterAnEmptyOne,
        },
        Duration::from_secs(20),
    );
    assert!(
        seen.borrow().handshake_complete,
        "{:?}",
        seen.borrow().errors
    );
    run_until(&mut reactor, TIMEOUT, "the 20 echoes", |_| {
        seen.borrow().datagrams.len() == 20 || !seen.borrow().errors.is_empty()
    });
    let seen = seen.borrow();
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert_eq!(seen.datagrams.len(), 20);
}

#[test]
fn a_handshake_whose_flights_are_all_lost_fails_in_bounded_time() {
    let (seen, relay, _reactor) = through_relay(
        |way, _| match way {
            Way::ToServer => Fate::Pass,
            Way::ToClient => Fate::Drop,
        },
        Duration::from_millis(1500),
    );
    let seen = seen.borrow();
    assert!(seen.established_nothing());
    assert!(
        matches!(seen.errors[..], [Error::Timeout(TimeoutKind::Handshake)]),
        "{:?}",
        seen.errors
    );
    // The client sent its hello again and again (50 ms, doubling), and the
    // server challenged each without admitting anyone (the answers were
    // lost; the last may still be on its way).
    let (up, down) = (relay.count(Way::ToServer), relay.count(Way::ToClient));
    assert!(up >= 3 && down + 1 >= up, "{up} hellos, {down} challenges");
}

#[test]
fn the_server_caps_half_open_peers_and_admits_the_next_when_one_ends() {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let server_socket = reactor.dtls_server(server).unwrap();
    server_socket.set_max_half_open(1);
    server_socket.set_handshake_timeout(Some(Duration::from_millis(800)));
    // At each admission, every peer admitted before has ended or completed
    // its handshake: never two handshaking at once.
    let overlaps = Rc::new(Cell::new(0));
    let (a, o) = (admitted.clone(), overlaps.clone());
    server_socket.new_connection().connect(move |_, _, _| {
        let admitted = a.borrow();
        let (_, before) = admitted.split_last().expect("the new peer");
        let handshaking = before.iter().filter(|(_, s)| {
            let s = s.borrow();
            !s.disconnected && !s.handshake_complete
        });
        o.set(o.get() + handshaking.count());
    });
    // The first client's handshake stalls: its relay loses everything to
    // it after the cookie exchange.
    let stall = UdpRelay::start(
        address,
        Box::new(|way, n| match (way, n) {
            (Way::ToClient, 1) => Fate::Pass,
            (Way::ToClient, _) => Fate::Drop,
            _ => Fate::Pass,
        }),
    );
    // It retransmits late, so it does not take the slot again at once.
    let (_, stalled) = client(
        &mut reactor,
        client_config(),
        stall.address(),
        "localhost",
        |s| {
            s.set_retransmission_timeout(Duration::from_secs(5));
        },
    );
    run_until(&mut reactor, TIMEOUT, "the first peer's admission", |_| {
        admitted.borrow().len() == 1
    });
    assert_eq!(reactor.dtls_server(server).unwrap().half_open_count(), 1);
    encrypted(&mut reactor, address, |s| {
        s.set_retransmission_timeout(Duration::from_millis(100));
    });
    let (_, first) = admitted.borrow()[0].clone();
    // The second was admitted only once the first timed out (the stalled
    // client, still retransmitting, may have been admitted again since).
    assert!(
        matches!(
            first.borrow().errors[..],
            [Error::Timeout(TimeoutKind::Handshake)]
        ),
        "{:?}",
        first.borrow().errors
    );
    assert_eq!(overlaps.get(), 0);
    assert!(admitted.borrow().len() >= 2);
    assert!(!stalled.borrow().handshake_complete);
}

#[test]
fn a_client_that_restarts_on_the_same_port_replaces_its_association_a_spoofer_does_not() {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let local: SocketAddr = {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let (old, first) = client(&mut reactor, client_config(), address, "localhost", |s| {
        s.set_local_address(Some(local));
    });
    run_handshake(&mut reactor, &first);
    assert!(first.borrow().handshake_complete);
    // The client's process "restarts": its socket vanishes without a word.
    reactor.remove_dtls_socket(old);

    // A ClientHello from that very address without the cookie (a
    // spoofer's) is only challenged: the association stays.
    let spoofer = UdpSocket::bind(local).unwrap();
    spoofer.set_nonblocking(true).unwrap();
    let (probe, _) = client(&mut reactor, client_config(), local, "localhost", |_| {});
    let mut buf = [0u8; 2048];
    let mut challenged = false;
    run_until(
        &mut reactor,
        TIMEOUT,
        "the spoofed hello's challenge",
        |_| {
            while let Ok((n, from)) = spoofer.recv_from(&mut buf) {
                match from == address {
                    true => challenged = buf[13] == 3, // a HelloVerifyRequest
                    false => drop(spoofer.send_to(&buf[..n], address)), // the hello
                }
            }
            challenged
        },
    );
    common::run_for(&mut reactor, Duration::from_millis(100));
    assert!(!admitted.borrow()[0].1.borrow().disconnected);
    assert_eq!(admitted.borrow().len(), 1);
    reactor.remove_dtls_socket(probe);
    drop(spoofer);

    encrypted(&mut reactor, address, |s| {
        s.set_local_address(Some(local));
    });
    run_until(&mut reactor, TIMEOUT, "the old association to end", |_| {
        admitted.borrow()[0].1.borrow().disconnected
    });
    assert_eq!(admitted.borrow().len(), 2);
    assert_eq!(reactor.dtls_server(server).unwrap().connection_count(), 1);
}

#[test]
fn a_client_without_trust_in_the_server_ca_is_refused() {
    let untrusting = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("other-ca.pem"))
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (_, address, _) = echo_server(&mut reactor, server_config(), |_| {});
    let (_, seen) = client(&mut reactor, untrusting, address, "localhost", |_| {});
    run_handshake(&mut reactor, &seen);
    let seen = seen.borrow();
    assert!(seen.established_nothing());
    assert!(
        matches!(&seen.errors[..], [Error::CertificateVerification(_)]),
        "{:?}",
        seen.errors
    );
}

#[test]
fn the_dtls_echo_example_runs_with_no_arguments_and_no_network() {
    let mut run = common::Spawn::new(common::example("dtls_echo").to_str().unwrap())
        .null_stdin()
        .start();
    let status = run.wait(TIMEOUT);
    let stdout = run.stdout_text();
    assert!(
        status.success(),
        "{status}\nstdout: {stdout}\nstderr: {}",
        run.stderr_text()
    );
    assert!(stdout.contains("refused whole"), "{stdout}");
    assert!(
        stdout.contains("done: 4 datagrams echoed whole"),
        "{stdout}"
    );
}

#[test]
fn removing_the_server_ends_its_associations_with_close_notify() {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    let (_, seen) = client(&mut reactor, client_config(), address, "localhost", |_| {});
    run_handshake(&mut reactor, &seen);
    assert!(reactor.remove_dtls_server(server));
    run_until(
        &mut reactor,
        TIMEOUT,
        "the client to hear the goodbye",
        |_| seen.borrow().disconnected,
    );
    assert!(
        seen.borrow().errors.is_empty(),
        "{:?}",
        seen.borrow().errors
    );
    let (_, theirs) = admitted.borrow()[0].clone();
    assert!(theirs.borrow().disconnected && theirs.borrow().errors.is_empty());
}

#[test]
fn an_idle_association_ends_on_its_idle_timeout_and_ipv6_loopback_serves() {
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .dtls_listen("[::1]:0".parse().unwrap(), server_config())
        .unwrap();
    let dtls = reactor.dtls_server(server).unwrap();
    dtls.set_idle_timeout(Some(Duration::from_millis(300)));
    let address = dtls.local_address();
    let idle = Rc::new(Cell::new(false));
    let i = idle.clone();
    dtls.new_connection().connect(move |_, cx, &id| {
        let i = i.clone();
        let socket = cx.dtls(id).unwrap();
        socket.error_occurred().connect(move |_, _, e| {
            i.set(matches!(e, Error::Timeout(TimeoutKind::Idle)));
        });
    });
    let (id, _) = encrypted(&mut reactor, address, |_| {});
    let socket = reactor.dtls(id).unwrap();
    assert!(socket.local_address().unwrap().is_ipv6());
    run_until(&mut reactor, TIMEOUT, "the server's idle timeout", |_| {
        idle.get()
    });
    run_until(
        &mut reactor,
        TIMEOUT,
        "the server to forget the peer",
        |r| r.dtls_server(server).unwrap().connection_count() == 0,
    );
}

#[test]
fn misuse_is_refused_with_typed_errors_and_changes_nothing() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, _) = echo_server(&mut reactor, server_config(), |_| {});
    let id = reactor.dtls_socket(client_config());
    let socket = reactor.dtls(id).unwrap();
    assert!(matches!(
        socket.write_datagram(b"early"),
        Err(Error::InvalidState(_))
    ));
    for bad in ["127.0.0.1:0", "0.0.0.0:5684", "224.0.0.1:5684"] {
        let error = socket.connect_to_peer(bad.parse().unwrap(), "localhost");
        assert!(
            matches!(error, Err(Error::InvalidInput(_))),
            "{bad}: {error:?}"
        );
    }
    assert_eq!(socket.data_mtu(), None);
    assert_eq!(socket.mtu(), 1200);
    socket.connect_to_peer(address, "localhost").unwrap();
    let again = socket.connect_to_peer(address, "localhost");
    assert!(matches!(again, Err(Error::InvalidState(_))));
    assert!(matches!(
        socket.write_datagram(b"still early"),
        Err(Error::InvalidState(_))
    ));
    assert!(socket
        .export_keying_material(b"EXPERIMENTAL x", None, 16)
        .is_err());
    let no_dtls = SslConfiguration::builder()
        .system_ca_certificates(false)
        .protocols(
            sslsocket::SslProtocol::TlsV1_3,
            sslsocket::SslProtocol::TlsV1_3,
        )
        .build()
        .unwrap();
    let other = reactor.dtls_socket(no_dtls);
    let error = reactor
        .dtls(other)
        .unwrap()
        .connect_to_peer(address, "localhost");
    assert!(
        matches!(error, Err(Error::InvalidConfiguration(_))),
        "{error:?}"
    );
    let error = reactor.dtls_listen("127.0.0.1:0".parse().unwrap(), client_config());
    assert!(
        matches!(error, Err(Error::InvalidConfiguration(_))),
        "a server without a key"
    );
}

#[test]
fn at_its_connection_cap_the_server_admits_no_one_new() {
    let mut reactor = Reactor::new().unwrap();
    let (server, address, admitted) = echo_server(&mut reactor, server_config(), |_| {});
    reactor
        .dtls_server(server)
        .unwrap()
        .set_max_connections(Some(1));
    let (_, first) = client(&mut reactor, client_config(), address, "localhost", |_| {});
    run_handshake(&mut reactor, &first);
    let (_, second) = client(&mut reactor, client_config(), address, "localhost", |s| {
        s.set_retransmission_timeout(Duration::from_millis(100));
        s.set_handshake_timeout(Some(Duration::from_millis(800)));
    });
    run_handshake(&mut reactor, &second);
    assert!(first.borrow().handshake_complete);
    assert!(
        matches!(
            second.borrow().errors[..],
            [Error::Timeout(TimeoutKind::Handshake)]
        ),
        "{:?}",
        second.borrow().errors
    );
    assert_eq!(admitted.borrow().len(), 1);
    assert_eq!(reactor.dtls_server(server).unwrap().connection_count(), 1);
}

#[test]
fn a_second_association_resumes_the_session_and_one_under_another_name_does_not() {
    let mut reactor = Reactor::new().unwrap();
    let (_, address, _) = echo_server(&mut reactor, server_config(), |_| {});
    let config = client_config();
    let mut resumed = Vec::new();
    for _ in 0..2 {
        let (id, seen) = client(&mut reactor, config.clone(), address, "localhost", |_| {});
        run_handshake(&mut reactor, &seen);
        assert!(
            seen.borrow().handshake_complete,
            "{:?}",
            seen.borrow().errors
        );
        let socket = reactor.dtls(id).unwrap();
        resumed.push(socket.is_session_resumed());
        assert_eq!(socket.peer_certificate_chain().len(), 2);
        socket.disconnect_from_peer();
        run_until(&mut reactor, TIMEOUT, "the goodbye", |_| {
            seen.borrow().disconnected
        });
    }
    assert_eq!(resumed, [false, true]);
    // Under another name the session is not offered: a full handshake,
    // and the name is checked.
    let (_, other) = client(&mut reactor, config, address, "wrong.example", |_| {});
    run_handshake(&mut reactor, &other);
    assert_eq!(
        other.borrow().ssl_errors,
        [vec![SslErrorKind::HostNameMismatch]]
    );
}

/// A client's identity that the server's table lacks: DTLS drops the
/// client's Finished (made with a key the server does not have) instead of
/// failing, so the server must tell that the handshake cannot succeed. Both
/// ends fail at once with the identity named (not at the handshake
/// timeout), the server asks its `pre_shared_key_authentication_required`
/// slot, and the key that slot adds serves the client's next attempt.
#[test]
fn an_unknown_identity_fails_at_once_and_the_key_added_for_it_serves_the_next_attempt() {
    let mut reactor = Reactor::new().unwrap();
    let keys = PreSharedKeys::new();
    keys.insert("sensor-1", [0x11; 32]).unwrap();
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .pre_shared_keys(&keys)
        .build()
        .unwrap();
    let asked = Rc::new(Cell::new(0));
    let a = asked.clone();
    let (server, address, admitted) = echo_server(&mut reactor, config, move |socket| {
        let a = a.clone();
        socket
            .pre_shared_key_authentication_required()
            .connect(move |_, _, authenticator| {
                a.set(a.get() + 1);
                assert_eq!(authenticator.identity(), b"sensor-2");
                authenticator.set_pre_shared_key([0x22; 32]).unwrap();
            });
    });
    // Long enough that only the failure, not the timeout, can end it.
    reactor
        .dtls_server(server)
        .unwrap()
        .set_handshake_timeout(Some(TIMEOUT * 2));
    let psk_client = || {
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .pre_shared_key("sensor-2", [0x22; 32])
            .build()
            .unwrap()
    };
    let long_handshake = |s: &mut sslsocket::DtlsSocket| s.set_handshake_timeout(Some(TIMEOUT * 2));

    let (_, seen) = client(&mut reactor, psk_client(), address, "", long_handshake);
    run_handshake(&mut reactor, &seen);
    let unknown =
        |e: &Error| matches!(e, Error::PreSharedKey { identity, .. } if identity == b"sensor-2");
    assert!(!seen.borrow().handshake_complete);
    assert!(
        seen.borrow().errors.iter().any(unknown),
        "{:?}",
        seen.borrow().errors
    );
    run_until(&mut reactor, TIMEOUT, "the server's socket to fail", |_| {
        !admitted.borrow()[0].1.borrow().errors.is_empty()
    });
    let theirs = admitted.borrow()[0].1.clone();
    assert!(
        matches!(
            theirs.borrow().errors[..],
            [Error::PreSharedKey { kind: PskErrorKind::UnknownIdentity, ref identity }]
                if identity == b"sensor-2"
        ),
        "{:?}",
        theirs.borrow().errors
    );
    assert!(theirs.borrow().established_nothing());
    assert_eq!(asked.get(), 1);

    let (_, again) = client(&mut reactor, psk_client(), address, "", long_handshake);
    run_handshake(&mut reactor, &again);
    assert!(
        again.borrow().handshake_complete,
        "{:?}",
        again.borrow().errors
    );
    assert_eq!(asked.get(), 1);
}

/// What was negotiated is readable on a DTLS socket as on an `SslSocket`:
/// the ALPN protocol both configurations offered, the group and the cipher.
#[test]
fn an_association_tells_what_was_negotiated() {
    let mut reactor = Reactor::new().unwrap();
    let server_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .alpn_protocols(["h2", "coap"])
        .build()
        .unwrap();
    let (_, address, _) = echo_server(&mut reactor, server_config, |_| {});
    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .alpn_protocols(["coap"])
        .build()
        .unwrap();
    let (id, seen) = client(&mut reactor, client_config, address, "localhost", |_| {});
    run_handshake(&mut reactor, &seen);
    assert!(
        seen.borrow().handshake_complete,
        "{:?}",
        seen.borrow().errors
    );
    let socket = reactor.dtls(id).unwrap();
    assert_eq!(socket.alpn_protocol().as_deref(), Some(&b"coap"[..]));
    assert!(socket.key_exchange_group().is_some());
    assert!(socket.session_cipher_algorithm().is_some());
    assert_eq!(
        socket.peer_raw_public_key(),
        None,
        "a certificate chain came"
    );
}
