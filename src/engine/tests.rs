//! The engine against itself, in memory: a client and a server engine
//! joined by byte queues, no sockets.

use super::*;
use crate::config::{ServerKey, SslConfigurationBuilder};

pub(super) fn ca(name: &str) -> String {
    format!("{}/ca/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn client_config() -> SslConfigurationBuilder {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
}

fn server_config(chain: &str, key: &str) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca(chain), ca(key), None)
        .build()
        .unwrap()
}

/// A client and a server engine wired back to back.
pub(crate) struct Pair {
    pub(crate) client: Engine,
    pub(crate) server: Engine,
    pub(crate) client_plain: ByteQueue,
    pub(crate) server_plain: ByteQueue,
    /// Moves at most this many bytes per hop (1 = byte by byte).
    pub(crate) chunk: usize,
}

impl Pair {
    pub(super) fn new(client: SslConfiguration, server: SslConfiguration, host: &str) -> Self {
        Self {
            client: Engine::client(&client, ServerKey::new(host, 443, host)).unwrap(),
            server: Engine::server(&server).unwrap(),
            client_plain: ByteQueue::new(),
            server_plain: ByteQueue::new(),
            chunk: usize::MAX,
        }
    }

    fn default_pair() -> Self {
        Self::new(
            client_config().build().unwrap(),
            server_config("server.pem", "server.key"),
            "localhost",
        )
    }

    /// Moves ciphertext both ways and processes until nothing moves; returns
    /// the first error of each side.
    pub(super) fn pump(&mut self) -> (Result<(), Error>, Result<(), Error>) {
        let (mut c, mut s) = (Ok(()), Ok(()));
        let mut first = true;
        loop {
            if c.is_ok() {
                c = self.client.process(&mut self.client_plain, usize::MAX);
            }
            if s.is_ok() {
                s = self.server.process(&mut self.server_plain, usize::MAX);
            }
            let moved = hop(&mut self.client, &mut self.server, self.chunk)
                + hop(&mut self.server, &mut self.client, self.chunk);
            if moved == 0 && !first {
                return (c, s);
            }
            first = false;
        }
    }

    pub(super) fn events(engine: &mut Engine) -> Vec<EngineEvent> {
        std::iter::from_fn(|| engine.next_event()).collect()
    }
}

fn hop(from: &mut Engine, to: &mut Engine, chunk: usize) -> usize {
    let n = from.outgoing_len().min(chunk);
    let (first, second) = from.outgoing().as_slices();
    let bytes: Vec<u8> = first.iter().chain(second).take(n).copied().collect();
    from.outgoing().consume(n);
    to.receive(&bytes);
    n
}

#[test]
fn handshake_and_data_both_ways() {
    let mut pair = Pair::default_pair();
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    assert!(pair.client.is_established() && pair.server.is_established());
    assert_eq!(
        Pair::events(&mut pair.client),
        vec![EngineEvent::HandshakeComplete]
    );
    assert_eq!(pair.client.protocol(), Some(SslProtocol::TlsV1_3));
    assert_eq!(pair.client.peer_certificate_chain().len(), 2);

    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    pair.client.send(&big).unwrap();
    pair.server.send(b"pong").unwrap();
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    assert_eq!(pair.server_plain.take_all(), big);
    assert_eq!(pair.client_plain.take_all(), b"pong");
}

#[test]
fn byte_by_byte_delivery_changes_nothing() {
    let mut pair = Pair::default_pair();
    pair.chunk = 1;
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    pair.server.send(b"hello, tiny segments").unwrap();
    pair.pump().0.unwrap();
    assert_eq!(pair.client_plain.take_all(), b"hello, tiny segments");
}

#[test]
fn close_notify_is_a_clean_end_and_eof_without_it_is_truncation() {
    let mut pair = Pair::default_pair();
    pair.pump().0.unwrap();
    pair.server.send(b"last words").unwrap();
    pair.server.close();
    pair.pump().0.unwrap();
    assert!(Pair::events(&mut pair.client).contains(&EngineEvent::CloseNotify));
    assert_eq!(pair.client_plain.take_all(), b"last words");

    let mut pair = Pair::default_pair();
    pair.pump().0.unwrap();
    pair.server.send(b"cut").unwrap();
    pair.pump().0.unwrap();
    pair.client.peer_eof();
    let err = pair
        .client
        .process(&mut pair.client_plain, usize::MAX)
        .unwrap_err();
    assert!(matches!(err, Error::Truncated), "{err}");
    assert_eq!(pair.client_plain.take_all(), b"cut");
}

/// With nothing received, processing asks GnuTLS for nothing: no plaintext
/// buffer is taken (nor wiped and pooled) for a receive that could only
/// answer AGAIN, as after every completed handshake.
#[test]
fn processing_with_nothing_received_takes_no_buffer() {
    let mut pair = Pair::default_pair();
    pair.pump().0.unwrap();
    while crate::buffer::take_pooled(RECORD_ROOM).is_some() {}
    pair.client
        .process(&mut pair.client_plain, usize::MAX)
        .unwrap();
    pair.server
        .process(&mut pair.server_plain, usize::MAX)
        .unwrap();
    assert!(crate::buffer::take_pooled(RECORD_ROOM).is_none());
}

#[test]
fn read_limit_keeps_the_rest_buffered() {
    let mut pair = Pair::default_pair();
    pair.pump().0.unwrap();
    pair.server.send(&[9u8; 100_000]).unwrap();
    let n = pair.server.outgoing_len();
    let bytes = pair.server.outgoing().take_all();
    assert_eq!(bytes.len(), n);
    pair.client.receive(&bytes);
    pair.client.process(&mut pair.client_plain, 20_000).unwrap();
    let first = pair.client_plain.len();
    assert!((20_000..20_000 + RECORD_ROOM).contains(&first), "{first}");
    pair.client_plain.consume(first);
    pair.client
        .process(&mut pair.client_plain, usize::MAX)
        .unwrap();
    assert_eq!(first + pair.client_plain.len(), 100_000);
}

#[test]
fn host_name_mismatch_pauses_and_can_be_refused() {
    let client = client_config().build().unwrap();
    let mut pair = Pair::new(
        client,
        server_config("server.pem", "server.key"),
        "wrong.example",
    );
    let (c, _) = pair.pump();
    c.unwrap();
    assert_eq!(pair.client.phase, Phase::AwaitingDecision);
    let events = Pair::events(&mut pair.client);
    let Some(EngineEvent::SslErrors(errors)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(errors[0].kind(), SslErrorKind::HostNameMismatch);
    pair.client.resolve_ssl_errors();
    let (c, s) = pair.pump();
    let err = c.unwrap_err();
    assert!(err.to_string().contains("HostNameMismatch"), "{err}");
    let err = s.unwrap_err();
    assert!(
        matches!(err, Error::AlertReceived(a) if a.description() == 42),
        "{err}"
    );
}

#[test]
fn ignored_errors_let_the_handshake_finish() {
    let client = client_config().build().unwrap();
    let mut pair = Pair::new(
        client,
        server_config("server.pem", "server.key"),
        "wrong.example",
    );
    pair.client
        .ignore_ssl_errors(&[SslError::new(SslErrorKind::HostNameMismatch, None)]);
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    assert!(pair.client.is_established());
    assert_eq!(
        pair.client.peer_verify_errors()[0].kind(),
        SslErrorKind::HostNameMismatch
    );
}

#[test]
fn untrusted_server_is_refused_by_kind() {
    let client = SslConfiguration::builder()
        .system_ca_certificates(false)
        .build()
        .unwrap();
    let mut pair = Pair::new(
        client,
        server_config("server.pem", "server.key"),
        "localhost",
    );
    pair.pump().0.unwrap();
    let events = Pair::events(&mut pair.client);
    let Some(EngineEvent::SslErrors(errors)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(
        errors[0].kind(),
        SslErrorKind::UnableToGetLocalIssuerCertificate
    );
}

#[test]
fn garbage_from_the_peer_is_a_handshake_error() {
    let config = client_config().build().unwrap();
    let mut client =
        Engine::client(&config, ServerKey::new("localhost", 443, "localhost")).unwrap();
    let mut plain = ByteQueue::new();
    client.process(&mut plain, usize::MAX).unwrap();
    assert!(client.outgoing_len() > 0, "a ClientHello was produced");
    client.receive(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let err = client.process(&mut plain, usize::MAX).unwrap_err();
    assert!(matches!(err, Error::Handshake(_)), "{err}");
}

#[test]
fn server_requiring_a_client_certificate_refuses_a_client_without_one() {
    let server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .build()
        .unwrap();
    let mut pair = Pair::new(
        client_config().build().unwrap(),
        server.clone(),
        "localhost",
    );
    let (_, s) = pair.pump();
    let err = s.unwrap_err();
    assert_eq!(
        err.ssl_errors()[0].kind(),
        SslErrorKind::NoPeerCertificate,
        "{err}"
    );

    let client = client_config()
        .add_local_certificate_files(ca("client.pem"), ca("client.key"), None)
        .build()
        .unwrap();
    let mut pair = Pair::new(client, server, "localhost");
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    assert_eq!(
        pair.server.peer_certificate_chain()[0]
            .subject_common_name()
            .as_deref(),
        Some("sslsocket test client")
    );
}

#[test]
fn second_connection_resumes_with_a_ticket() {
    let client = client_config().build().unwrap();
    let server = server_config("server.pem", "server.key");
    for (round, expect_resumed) in [(0, false), (1, true), (2, true)] {
        let mut pair = Pair::new(client.clone(), server.clone(), "localhost");
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
        // TLS 1.3 tickets come after the handshake, with the first data.
        pair.server.send(b"x").unwrap();
        pair.pump().0.unwrap();
        assert_eq!(pair.client.is_resumed(), expect_resumed, "round {round}");
        assert_eq!(pair.server.is_resumed(), expect_resumed, "round {round}");
    }
}

#[test]
fn tls12_sessions_resume_too() {
    let client = client_config()
        .protocols(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2)
        .build()
        .unwrap();
    let server = server_config("server.pem", "server.key");
    let mut first = Pair::new(client.clone(), server.clone(), "localhost");
    first.pump().0.unwrap();
    assert_eq!(first.client.protocol(), Some(SslProtocol::TlsV1_2));
    let mut second = Pair::new(client, server, "localhost");
    second.pump().0.unwrap();
    assert!(second.client.is_resumed());
}

#[test]
fn alpn_is_chosen_by_the_server_preference() {
    let client = client_config()
        .alpn_protocols(["http/1.1", "h2"])
        .build()
        .unwrap();
    let server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .alpn_protocols(["h2", "http/1.1"])
        .build()
        .unwrap();
    let mut pair = Pair::new(client, server, "localhost");
    pair.pump().0.unwrap();
    assert_eq!(pair.client.alpn_protocol().as_deref(), Some(&b"h2"[..]));
    assert_eq!(pair.server.alpn_protocol().as_deref(), Some(&b"h2"[..]));
}

#[test]
fn sni_picks_the_matching_certificate() {
    let server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .add_local_certificate_files(ca("server-sni.pem"), ca("server-sni.key"), None)
        .build()
        .unwrap();
    for (name, expected) in [
        ("other.localhost", "other.localhost"),
        ("localhost", "localhost"),
    ] {
        let mut pair = Pair::new(client_config().build().unwrap(), server.clone(), name);
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
        let leaf = &pair.client.peer_certificate_chain()[0];
        assert_eq!(leaf.subject_common_name().as_deref(), Some(expected));
    }
}

#[test]
fn pkcs12_and_encrypted_keys_serve() {
    for server in [
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_local_certificate_pkcs12(ca("server.p12"), "sslsocket-test")
            .build()
            .unwrap(),
        SslConfiguration::builder()
            .system_ca_certificates(false)
            .add_local_certificate_files(
                ca("server.pem"),
                ca("server-encrypted.key"),
                Some("sslsocket-test"),
            )
            .build()
            .unwrap(),
    ] {
        assert_eq!(server.local_certificate_chains()[0].len(), 2);
        let mut pair = Pair::new(client_config().build().unwrap(), server, "localhost");
        let (c, s) = pair.pump();
        c.unwrap();
        s.unwrap();
    }
    let err = SslConfiguration::builder()
        .add_local_certificate_pkcs12(ca("server.p12"), "wrong")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("server.p12"), "{err}");
    assert!(err.to_string().contains("wrong password"), "{err}");
}

#[test]
fn stapled_ocsp_reaches_the_client_and_can_be_required() {
    let server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .ocsp_response_file(ca("ocsp/server-ocsp-good.der"))
        .build()
        .unwrap();
    let client = client_config()
        .ocsp_stapling_required(true)
        .build()
        .unwrap();
    let mut pair = Pair::new(client.clone(), server, "localhost");
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    assert!(pair.client.is_established());
    assert!(pair.client.ocsp_response().is_some());

    let mut pair = Pair::new(
        client,
        server_config("server.pem", "server.key"),
        "localhost",
    );
    pair.pump().0.unwrap();
    let events = Pair::events(&mut pair.client);
    let Some(EngineEvent::SslErrors(errors)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(errors[0].kind(), SslErrorKind::OcspResponseInvalid);
}

/// A TLS 1.2 client asks the established session to renegotiate (a new
/// ClientHello, as `gnutls_handshake` sends on an established session);
/// the server refuses with a `no_renegotiation` warning and the connection
/// goes on: the client's data after it arrives. Before, the server ended
/// the connection after its warning.
#[test]
fn a_server_refuses_renegotiation_and_the_connection_goes_on() {
    let client = client_config()
        .protocols(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2)
        .build()
        .unwrap();
    let mut pair = Pair::new(
        client,
        server_config("server.pem", "server.key"),
        "localhost",
    );
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap();
    Pair::events(&mut pair.server);
    assert!(
        pair.client.session.handshake().is_err(),
        "a new ClientHello is on its way"
    );
    let (c, s) = pair.pump();
    c.unwrap();
    s.unwrap_or_else(|e| panic!("the server ended the connection: {e}"));
    let sent = Pair::events(&mut pair.server);
    assert!(
        sent.iter()
            .any(|e| matches!(e, EngineEvent::AlertSent(a) if a.description() == 100)),
        "{sent:?}"
    );
    // The client read the warning among its records and goes on.
    pair.client.send(b"still here\n").unwrap();
    pair.pump().1.unwrap();
    assert_eq!(pair.server_plain.take_all(), b"still here\n");
}
