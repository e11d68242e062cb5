//! DTLS engines against each other, in memory: datagrams carried by hand,
//! the cookie exchange done as a server does it, losses made on purpose.

use std::collections::VecDeque;
use std::time::Duration;

use zeroize::Zeroizing;

use super::tests::ca;
use super::*;
use crate::config::ServerKey;
use crate::gnutls::{hello_verify_request, verify_cookie, CookieKey, Prestate};

const CLIENT_ADDRESS: &[u8] = b"127.0.0.1:40000";

fn client_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .build()
        .unwrap()
}

fn server_config() -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .build()
        .unwrap()
}

fn client(name: &str) -> Engine {
    let key = ServerKey::new("127.0.0.1", 4433, name);
    let mut engine = Engine::dtls_client(&client_config(), key).unwrap();
    engine.set_retransmission_timeout(Duration::from_millis(20));
    engine
}

type Records = VecDeque<Zeroizing<Vec<u8>>>;

fn sent(engine: &mut Engine) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(datagram) = engine.next_datagram() {
        out.push(datagram.to_vec());
        engine.datagram_sent();
    }
    out
}

/// The client's hellos until one carries a valid cookie, answered as a
/// server does: a HelloVerifyRequest for each that does not. Returns the
/// server engine made from the verified hello.
fn admit(client: &mut Engine, key: &CookieKey) -> Engine {
    let mut records = Records::new();
    for _ in 0..3 {
        client.process_datagrams(&mut records).unwrap();
        for hello in sent(client) {
            if let Some(prestate) = verify_cookie(key, CLIENT_ADDRESS, &hello) {
                let mut server = Engine::dtls_server(&server_config(), prestate, hello).unwrap();
                server.set_retransmission_timeout(Duration::from_millis(20));
                return server;
            }
            let reply = hello_verify_request(key, CLIENT_ADDRESS, Prestate::new(hello[10]));
            client.receive_datagram(reply.unwrap());
        }
    }
    panic!("the client never echoed the cookie");
}

/// Carries datagrams both ways until nothing moves, dropping those `lose`
/// picks (by direction and count so far); returns the records each side
/// decrypted.
fn pump(
    client: &mut Engine,
    server: &mut Engine,
    mut lose: impl FnMut(bool, usize) -> bool,
) -> (Records, Records) {
    let (mut to_client, mut to_server) = (Records::new(), Records::new());
    let mut counts = [0usize; 2];
    for _ in 0..50 {
        client.process_datagrams(&mut to_client).unwrap();
        server.process_datagrams(&mut to_server).unwrap();
        let mut moved = 0;
        for (from_client, datagrams) in [(true, sent(client)), (false, sent(server))] {
            for datagram in datagrams {
                moved += 1;
                let n = &mut counts[usize::from(from_client)];
                *n += 1;
                if lose(from_client, *n) {
                    continue;
                }
                match from_client {
                    true => server.receive_datagram(datagram),
                    false => client.receive_datagram(datagram),
                }
            }
        }
        if moved > 0 {
            continue;
        }
        // A side waits for its peer: let its timer run out, unless the
        // peer cannot answer (it is paused) and the timer only doubles.
        let due = [client.retransmission_due(), server.retransmission_due()];
        match due.into_iter().flatten().min() {
            Some(due) if due < Duration::from_millis(200) => {
                std::thread::sleep(due + Duration::from_millis(1))
            }
            _ => break,
        }
    }
    (to_client, to_server)
}

#[test]
fn a_cookie_exchange_then_a_handshake_then_one_record_per_datagram() {
    let key = CookieKey::generate().unwrap();
    let mut client = client("localhost");
    let mut server = admit(&mut client, &key);
    pump(&mut client, &mut server, |_, _| false);
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.dtls_version(), Some("DTLS1.2"));
    assert!(client.retransmission_due().is_none());

    client.send_datagram(b"first").unwrap();
    client.send_datagram(b"second").unwrap();
    assert_eq!(client.outgoing_datagrams(), 2, "one datagram per write");
    server.send_datagram(&[7; 1000]).unwrap();
    let (to_client, to_server) = pump(&mut client, &mut server, |_, _| false);
    let got: Vec<&[u8]> = to_server.iter().map(|r| r.as_slice()).collect();
    assert_eq!(got, [&b"first"[..], &b"second"[..]]);
    assert_eq!(to_client.len(), 1);
    assert_eq!(to_client[0].as_slice(), &[7; 1000][..]);
}

#[test]
fn a_datagram_larger_than_the_data_mtu_is_refused_and_nothing_is_sent() {
    let key = CookieKey::generate().unwrap();
    let mut client = client("localhost");
    let mut server = admit(&mut client, &key);
    pump(&mut client, &mut server, |_, _| false);
    client.set_mtu(600);
    let limit = client.data_mtu();
    assert!(limit < 600 && limit > 500, "{limit}");
    client.send_datagram(&vec![1; limit]).unwrap();
    let error = client.send_datagram(&vec![1; limit + 1]).unwrap_err();
    assert!(
        matches!(error, Error::DatagramTooLarge { size, limit: l } if size == limit + 1 && l == limit),
        "{error}"
    );
    assert!(client.send_datagram(&[]).is_err(), "an empty datagram");
    assert_eq!(client.outgoing_datagrams(), 1, "only the one that fits");
    assert!(
        client.is_established(),
        "a refusal leaves the session as it was"
    );
    let (_, to_server) = pump(&mut client, &mut server, |_, _| false);
    assert_eq!(to_server.len(), 1);
    assert_eq!(to_server[0].len(), limit);
}

#[test]
fn lost_flights_are_sent_again_and_duplicates_are_dropped() {
    let key = CookieKey::generate().unwrap();
    let mut client = client("localhost");
    let mut server = admit(&mut client, &key);
    // The server's first flight and the client's second are lost once.
    pump(&mut client, &mut server, |from_client, n| {
        (!from_client && n == 1) || (from_client && n == 2)
    });
    assert!(client.is_established() && server.is_established());

    client.send_datagram(b"once").unwrap();
    let datagram = client.next_datagram().unwrap().to_vec();
    server.receive_datagram(datagram.clone());
    server.receive_datagram(datagram);
    client.datagram_sent();
    let mut records = Records::new();
    server.process_datagrams(&mut records).unwrap();
    assert_eq!(records.len(), 1, "the replayed copy is dropped");
    assert_eq!(server.session.discarded(), 1);
}

#[test]
fn a_verification_problem_pauses_the_dtls_handshake_like_tls() {
    let key = CookieKey::generate().unwrap();
    let mut client = client("wrong.example");
    let mut server = admit(&mut client, &key);
    pump(&mut client, &mut server, |_, _| false);
    assert_eq!(client.phase, Phase::AwaitingDecision);
    assert!(
        client.retransmission_due().is_none(),
        "no timer while paused"
    );
    let events: Vec<EngineEvent> = std::iter::from_fn(|| client.next_event()).collect();
    assert!(
        matches!(events.last(), Some(EngineEvent::SslErrors(e)) if e[0].kind() == SslErrorKind::HostNameMismatch)
    );
    client.ignore_all_ssl_errors();
    client.resolve_ssl_errors();
    pump(&mut client, &mut server, |_, _| false);
    assert!(client.is_established() && server.is_established());
}
