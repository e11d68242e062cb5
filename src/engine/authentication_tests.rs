//! Pre-shared keys and raw public keys, engine against engine in memory:
//! what each path establishes, and that nothing is established when the key
//! or the raw key is not the configured one.

use super::tests::{ca, Pair};
use super::*;
use crate::config::SslConfigurationBuilder;
use crate::private_key::PrivateKey;
use crate::psk::PreSharedKeys;
use crate::raw_public_key::RawPublicKey;

const KEY: [u8; 32] = [0x5a; 32];

fn builder() -> SslConfigurationBuilder {
    SslConfiguration::builder().system_ca_certificates(false)
}

fn psk_client(key: &[u8], protocol: SslProtocol) -> SslConfiguration {
    builder()
        .protocols(protocol, protocol)
        .pre_shared_key("alice", key.to_vec())
        .build()
        .unwrap()
}

fn psk_server(keys: &PreSharedKeys) -> SslConfiguration {
    builder().pre_shared_keys(keys).build().unwrap()
}

fn alice() -> PreSharedKeys {
    let keys = PreSharedKeys::new();
    keys.insert("alice", KEY).unwrap();
    keys
}

fn raw_key(name: &str) -> RawPublicKey {
    RawPublicKey::from_private_key(&PrivateKey::from_file(ca(name), None).unwrap()).unwrap()
}

fn psk_kind(result: &Result<(), Error>) -> Option<PskErrorKind> {
    match result {
        Err(Error::PreSharedKey { kind, .. }) => Some(*kind),
        _ => None,
    }
}

fn completed(engine: &mut Engine) -> bool {
    Pair::events(engine).contains(&EngineEvent::HandshakeComplete)
}

#[test]
fn a_pre_shared_key_authenticates_both_ends_in_tls13_and_tls12() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let mut pair = Pair::new(psk_client(&KEY, protocol), psk_server(&alice()), "sensor");
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
        assert!(completed(&mut pair.client) && completed(&mut pair.server));
        assert_eq!(pair.client.protocol(), Some(protocol));
        for engine in [&pair.client, &pair.server] {
            assert_eq!(engine.psk_identity().as_deref(), Some(&b"alice"[..]));
            assert!(engine.peer_certificate_chain().is_empty());
            assert!(engine.peer_verify_errors().is_empty());
            assert_eq!(engine.peer_raw_public_key(), None);
            // (EC)DHE with the key: forward secret.
            assert!(engine.group().is_some(), "{protocol}");
        }
        if protocol == SslProtocol::TlsV1_2 {
            let suite = pair.client.cipher_suite().unwrap();
            assert!(suite.contains("DHE_PSK"), "{suite}");
        }
        pair.client.send(b"ping").unwrap();
        pair.pump().1.unwrap();
        assert_eq!(pair.server_plain.take_all(), b"ping");
    }
}

#[test]
fn a_wrong_key_establishes_nothing_and_each_end_says_why() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let wrong = [0xa5; 32];
        let mut pair = Pair::new(psk_client(&wrong, protocol), psk_server(&alice()), "sensor");
        let (c, s) = pair.pump();
        assert_eq!(
            psk_kind(&c),
            Some(PskErrorKind::Refused),
            "{protocol}: {c:?}"
        );
        assert_eq!(
            psk_kind(&s),
            Some(PskErrorKind::KeyMismatch),
            "{protocol}: {s:?}"
        );
        assert!(!pair.client.is_established() && !pair.server.is_established());
        assert!(!completed(&mut pair.client) && !completed(&mut pair.server));
        assert!(pair.client_plain.is_empty() && pair.server_plain.is_empty());
    }
}

#[test]
fn an_unknown_identity_is_reported_to_the_server_only() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let keys = PreSharedKeys::new();
        keys.insert("bob", KEY).unwrap();
        let mut pair = Pair::new(psk_client(&KEY, protocol), psk_server(&keys), "sensor");
        let (c, s) = pair.pump();
        // The client learns no more than from a wrong key.
        assert_eq!(
            psk_kind(&c),
            Some(PskErrorKind::Refused),
            "{protocol}: {c:?}"
        );
        let Err(Error::PreSharedKey { kind, identity }) = s else {
            panic!("{protocol}: {s:?}");
        };
        assert_eq!(
            (kind, identity.as_slice()),
            (PskErrorKind::UnknownIdentity, &b"alice"[..])
        );
        let events = Pair::events(&mut pair.server);
        assert!(events.contains(&EngineEvent::PreSharedKeyIdentityUnknown(b"alice".to_vec())));
        assert!(!pair.client.is_established() && !pair.server.is_established());
    }
}

#[test]
fn a_client_with_a_key_accepts_no_certificate_in_any_verify_mode() {
    for mode in [PeerVerifyMode::VerifyNone, PeerVerifyMode::VerifyPeer] {
        for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
            let client = builder()
                .add_ca_certificates_file(ca("root-ca.pem"))
                .protocols(protocol, protocol)
                .peer_verify_mode(mode)
                .pre_shared_key("alice", KEY)
                .build()
                .unwrap();
            let server = builder()
                .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
                .build()
                .unwrap();
            let mut pair = Pair::new(client, server, "localhost");
            let (c, _) = pair.pump();
            // TLS 1.3: the server authenticates with its certificate, and
            // the client refuses it (at the certificate check, or, verifying
            // nothing, when the handshake is done). TLS 1.2: the client
            // offers only PSK key exchanges, which the server lacks, and the
            // server refuses the hello (handshake_failure).
            let refused = match protocol {
                SslProtocol::TlsV1_3 => psk_kind(&c) == Some(PskErrorKind::NotUsed),
                _ => matches!(&c, Err(Error::HandshakeRefused(r))
                    if r.alert().map(|a| a.description()) == Some(40)),
            };
            assert!(refused, "{mode:?} {protocol}: {c:?}");
            assert!(!pair.client.is_established() && !completed(&mut pair.client));
        }
    }
}

#[test]
fn a_server_cannot_impose_a_key_on_a_client_without_one() {
    for mode in [PeerVerifyMode::VerifyNone, PeerVerifyMode::VerifyPeer] {
        let client = builder().peer_verify_mode(mode).build().unwrap();
        let mut pair = Pair::new(client, psk_server(&alice()), "localhost");
        let (c, s) = pair.pump();
        assert!(c.is_err() && s.is_err(), "{mode:?}: {c:?} {s:?}");
        assert!(!pair.client.is_established() && !completed(&mut pair.client));
    }
}

#[test]
fn a_server_serves_certificate_and_key_clients_alike() {
    let server = builder()
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .pre_shared_keys(&alice())
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .build()
        .unwrap();
    let certificate_client = builder()
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("client.pem"), ca("client.key"), None)
        .build()
        .unwrap();
    let mut pair = Pair::new(certificate_client, server.clone(), "localhost");
    pair.pump().0.unwrap();
    assert!(pair.server.is_established() && pair.server.psk_identity().is_none());
    assert_eq!(pair.server.peer_certificate_chain().len(), 2);
    // A client that proves its key needs no certificate, even from a
    // server that requires one of certificate clients.
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let mut pair = Pair::new(psk_client(&KEY, protocol), server.clone(), "localhost");
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
        assert_eq!(pair.server.psk_identity().as_deref(), Some(&b"alice"[..]));
        assert!(pair.server.peer_verify_errors().is_empty());
    }
}

#[test]
fn key_sessions_are_neither_remembered_nor_ticketed() {
    let server = builder()
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .pre_shared_keys(&alice())
        .build()
        .unwrap();
    for mode in [PeerVerifyMode::AutoVerifyPeer, PeerVerifyMode::VerifyNone] {
        for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
            let client = builder()
                .protocols(protocol, protocol)
                .peer_verify_mode(mode)
                .pre_shared_key("alice", KEY)
                .session_resumption(true)
                .build()
                .unwrap();
            for round in 0..2 {
                let mut pair = Pair::new(client.clone(), server.clone(), "sensor");
                // Every session notes tickets, wanted or not.
                let (c, s) = pair.pump();
                c.unwrap();
                s.unwrap();
                pair.server.send(b"x").unwrap();
                pair.pump().0.unwrap();
                let what = format!("{mode:?} {protocol} round {round}");
                assert!(
                    !pair.client.is_resumed() && !pair.server.is_resumed(),
                    "{what}"
                );
                if protocol == SslProtocol::TlsV1_3 {
                    let ticket = pair.client.session.transport().ticket_received;
                    assert!(!ticket, "{what}: a ticket was issued");
                }
            }
        }
    }
}

/// A TLS 1.2 session established with a key resumes only while the
/// server's table still holds its identity. (Our client never offers such a
/// session; the test hands its session data over by hand, as another
/// client would offer it, and the client side then refuses the resumption
/// it did not ask for.)
#[test]
fn a_resumed_key_session_needs_its_identity_in_the_table() {
    for keep in [true, false] {
        let keys = alice();
        let server = psk_server(&keys);
        let client = psk_client(&KEY, SslProtocol::TlsV1_2);
        let mut first = Pair::new(client.clone(), server.clone(), "sensor");
        let (c, s) = first.pump();
        c.unwrap();
        s.unwrap();
        let data = first.client.session.session_data().unwrap();
        if !keep {
            assert!(keys.remove(b"alice"));
        }
        let mut second = Pair::new(client, server, "sensor");
        second.client.session.set_session_data(&data).unwrap();
        let (c, s) = second.pump();
        assert!(second.server.session.is_resumed(), "keep: {keep}");
        assert_eq!(psk_kind(&c), Some(PskErrorKind::NotUsed), "keep: {keep}");
        let server_events = Pair::events(&mut second.server);
        let completed = server_events.contains(&EngineEvent::HandshakeComplete);
        assert_eq!(completed, keep, "{server_events:?}");
        if !keep {
            assert_eq!(psk_kind(&s), Some(PskErrorKind::UnknownIdentity), "{s:?}");
            assert!(!second.server.is_established());
        }
    }
}

fn raw_server(key: &str) -> SslConfigurationBuilder {
    builder().local_raw_public_key_file(ca(key), None)
}

fn trusting(key: RawPublicKey) -> SslConfigurationBuilder {
    builder().add_trusted_raw_public_key(key)
}

#[test]
fn a_trusted_raw_key_is_accepted_and_another_refused_unless_ignored_exactly() {
    let server_key = raw_key("server.key");
    let server = raw_server("server.key").build().unwrap();
    let mut pair = Pair::new(
        trusting(server_key.clone()).build().unwrap(),
        server.clone(),
        "any",
    );
    pair.pump().0.unwrap();
    assert!(pair.client.is_established());
    assert_eq!(pair.client.peer_raw_public_key(), Some(server_key.clone()));
    assert!(pair.client.peer_certificate_chain().is_empty());

    let other = trusting(raw_key("client.key")).build().unwrap();
    let not_trusted =
        SslError::for_raw_public_key(SslErrorKind::RawPublicKeyNotTrusted, server_key);
    let wrong_key = SslError::for_raw_public_key(
        SslErrorKind::RawPublicKeyNotTrusted,
        raw_key("wildcard.key"),
    );
    for (ignore, accepted) in [
        (None, false),
        (Some(&wrong_key), false),
        (Some(&not_trusted), true),
    ] {
        let mut pair = Pair::new(other.clone(), server.clone(), "any");
        pair.pump().0.unwrap();
        let events = Pair::events(&mut pair.client);
        assert_eq!(
            events.last(),
            Some(&EngineEvent::SslErrors(vec![not_trusted.clone()]))
        );
        if let Some(ignore) = ignore {
            pair.client.ignore_ssl_errors(std::slice::from_ref(ignore));
        }
        pair.client.resolve_ssl_errors();
        let (c, _) = pair.pump();
        assert_eq!(pair.client.is_established(), accepted, "{ignore:?}: {c:?}");
        if !accepted {
            assert!(
                matches!(c, Err(Error::CertificateVerification(ref e)) if e == std::slice::from_ref(&not_trusted))
            );
        }
    }
}

#[test]
fn a_client_authenticates_with_a_raw_key() {
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let client_key = raw_key("client.key");
        let server = trusting(client_key.clone())
            .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
            .peer_verify_mode(PeerVerifyMode::VerifyPeer)
            .build()
            .unwrap();
        let client = builder()
            .add_ca_certificates_file(ca("root-ca.pem"))
            .protocols(protocol, protocol)
            .local_raw_public_key_file(ca("client.key"), None)
            .build()
            .unwrap();
        let mut pair = Pair::new(client.clone(), server, "localhost");
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
        assert_eq!(pair.server.peer_raw_public_key(), Some(client_key));
        // The server still authenticated with its certificate.
        assert_eq!(pair.client.peer_certificate_chain().len(), 2);
        // A server that trusts another key refuses it.
        let server = trusting(raw_key("server.key"))
            .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
            .peer_verify_mode(PeerVerifyMode::VerifyPeer)
            .build()
            .unwrap();
        let mut pair = Pair::new(client, server, "localhost");
        pair.pump().1.unwrap();
        let refused = SslError::for_raw_public_key(
            SslErrorKind::RawPublicKeyNotTrusted,
            raw_key("client.key"),
        );
        let events = Pair::events(&mut pair.server);
        assert_eq!(
            events.last(),
            Some(&EngineEvent::SslErrors(vec![refused.clone()]))
        );
        pair.server.resolve_ssl_errors();
        let (_, s) = pair.pump();
        assert!(
            matches!(s, Err(Error::CertificateVerification(ref e)) if e == std::slice::from_ref(&refused)),
            "{protocol}: {s:?}"
        );
        assert!(!pair.server.is_established());
    }
}

#[test]
fn a_resumed_raw_key_session_is_judged_again() {
    // The server only queries the client's raw key and does not trust it:
    // the full handshake and its TLS 1.2 resumption report the same problem.
    let server = trusting(raw_key("server.key"))
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .peer_verify_mode(PeerVerifyMode::QueryPeer)
        .build()
        .unwrap();
    let client = builder()
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2)
        .local_raw_public_key_file(ca("client.key"), None)
        .build()
        .unwrap();
    for resumed in [false, true] {
        let mut pair = Pair::new(client.clone(), server.clone(), "localhost");
        pair.pump().0.unwrap();
        assert_eq!(pair.server.is_resumed(), resumed);
        let kinds: Vec<_> = pair
            .server
            .peer_verify_errors()
            .iter()
            .map(SslError::kind)
            .collect();
        assert_eq!(
            kinds,
            [SslErrorKind::RawPublicKeyNotTrusted],
            "resumed: {resumed}"
        );
        assert_eq!(
            pair.server.peer_raw_public_key(),
            Some(raw_key("client.key"))
        );
    }
}

#[test]
fn a_client_resumes_a_raw_key_session_and_judges_the_key_again() {
    let server = raw_server("server.key").build().unwrap();
    for protocol in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let client = trusting(raw_key("server.key"))
            .protocols(protocol, protocol)
            .build()
            .unwrap();
        for resumed in [false, true] {
            let mut pair = Pair::new(client.clone(), server.clone(), "any");
            pair.pump().0.unwrap();
            // TLS 1.3 tickets come after the handshake, with the first data.
            pair.server.send(b"x").unwrap();
            pair.pump().0.unwrap();
            assert_eq!(pair.client.is_resumed(), resumed, "{protocol}");
            assert_eq!(
                pair.client.peer_raw_public_key(),
                Some(raw_key("server.key"))
            );
            assert!(pair.client.peer_verify_errors().is_empty());
        }
    }
}

#[test]
fn a_raw_key_has_no_status_for_a_client_that_requires_one() {
    let client = trusting(raw_key("server.key"))
        .ocsp_stapling_required(true)
        .build()
        .unwrap();
    let mut pair = Pair::new(client, raw_server("server.key").build().unwrap(), "any");
    pair.pump().0.unwrap();
    let events = Pair::events(&mut pair.client);
    let missing = SslError::new(SslErrorKind::OcspResponseInvalid, None);
    assert_eq!(events.last(), Some(&EngineEvent::SslErrors(vec![missing])));
}

#[test]
fn pins_restrict_raw_keys_as_they_restrict_certificates() {
    let server_key = raw_key("server.key");
    let other_pin = raw_key("client.key").public_key_pin();
    for (pin, accepted) in [(server_key.public_key_pin(), true), (other_pin, false)] {
        let client = trusting(server_key.clone())
            .pin_public_keys("sensor", [pin.as_str()])
            .build()
            .unwrap();
        let mut pair = Pair::new(client, raw_server("server.key").build().unwrap(), "sensor");
        pair.pump().0.unwrap();
        assert_eq!(pair.client.is_established(), accepted, "{pin}");
        if !accepted {
            let events = Pair::events(&mut pair.client);
            let mismatch = SslError::for_raw_public_key(
                SslErrorKind::PublicKeyPinMismatch,
                server_key.clone(),
            );
            assert_eq!(events.last(), Some(&EngineEvent::SslErrors(vec![mismatch])));
        }
    }
}
