//! A handshake that fails for want of common parameters explains itself:
//! `Error::HandshakeRefused` says which side refused what (protocol
//! versions, cipher suites, groups, signature algorithms), what each side
//! offered and the priority string in force. Each mismatch is forced
//! against a real peer: `openssl s_client` and `gnutls-cli` against our
//! server, `openssl s_server` against our client, and our own two ends.
//!
//! Refusals read from the peer's alert (`handshake_failure`,
//! `protocol_version`) and the plain-language texts of the other refusals
//! are also covered in tests/client.rs and tests/security.rs; getslash
//! printing one: tests/getslash.rs.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use sslsocket::{
    Error, HandshakeParameter, HandshakeRefusal, Reactor, RefusedBy, SslConfiguration, SslProtocol,
};

/// Our server, what it reported and the port it listens on.
struct Refusing {
    port: u16,
    refusals: Rc<RefCell<Vec<HandshakeRefusal>>>,
    other_errors: Rc<RefCell<Vec<String>>>,
}

fn our_server(reactor: &mut Reactor, config: SslConfiguration) -> Refusing {
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), config)
        .unwrap();
    let server = reactor.server(id).unwrap();
    let refusals: Rc<RefCell<Vec<HandshakeRefusal>>> = Rc::default();
    let other_errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let (r, o) = (refusals.clone(), other_errors.clone());
    server
        .error_occurred()
        .connect(move |_, _, (_, error)| match error {
            Error::HandshakeRefused(refusal) => r.borrow_mut().push((**refusal).clone()),
            other => o.borrow_mut().push(other.to_string()),
        });
    Refusing {
        port: server.local_address().port(),
        refusals,
        other_errors,
    }
}

/// A server configuration with the ECDSA test chain and `priority`.
fn ecdsa_server(priority: Option<&str>) -> SslConfiguration {
    let builder = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None);
    match priority {
        Some(p) => builder.priority_string(p),
        None => builder,
    }
    .build()
    .unwrap()
}

/// Runs `client` (a command line) against our server with `config` until
/// the server reports the refusal; the client must fail.
fn refusal_of(config: SslConfiguration, client: &[&str]) -> HandshakeRefusal {
    let mut reactor = Reactor::new().unwrap();
    let server = our_server(&mut reactor, config);
    let port = server.port.to_string();
    let args: Vec<String> = client.iter().map(|a| a.replace("PORT", &port)).collect();
    let mut proc = Spawn::new(&args[0]).args(&args[1..]).null_stdin().start();
    run_until(&mut reactor, TIMEOUT, "the server's error", |_| {
        !server.refusals.borrow().is_empty() || !server.other_errors.borrow().is_empty()
    });
    let status = proc.wait(TIMEOUT);
    assert!(!status.success(), "{client:?} succeeded");
    assert_eq!(
        server.other_errors.borrow().len(),
        0,
        "{:?}",
        server.other_errors.borrow()
    );
    let refusal = server.refusals.borrow_mut().remove(0);
    refusal
}

/// `openssl s_client` to our server, with `args`.
fn s_client(args: &[&'static str]) -> Vec<&'static str> {
    let mut all = vec![
        "openssl",
        "s_client",
        "-connect",
        "127.0.0.1:PORT",
        "-servername",
        "localhost",
    ];
    all.extend(args);
    all
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A client that lacks something, and what our server must say.
struct Case {
    what: &'static str,
    /// Our server's priority string (else the default).
    priority: Option<&'static str>,
    client: Vec<&'static str>,
    parameter: HandshakeParameter,
    /// A part of the refusal's `Display`.
    text: &'static str,
}

#[test]
fn our_server_names_what_an_openssl_client_lacked() {
    let cases = [
        Case {
            what: "TLS 1.1",
            priority: None,
            client: s_client(&["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
            parameter: HandshakeParameter::ProtocolVersion,
            text: "no protocol version in common with the client: we accept TLS1.2, TLS1.3; it \
                   offered TLS1.1 or earlier",
        },
        Case {
            what: "static RSA",
            priority: None,
            client: s_client(&["-tls1_2", "-cipher", "AES128-GCM-SHA256"]),
            parameter: HandshakeParameter::CipherSuite,
            text: "; it offered TLS_RSA_AES_128_GCM_SHA256 (priority string \"SYSTEM-DEFAULT:",
        },
        Case {
            what: "a suite for an RSA certificate",
            priority: None,
            client: s_client(&["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]),
            parameter: HandshakeParameter::CipherSuite,
            text: "; it offered TLS_ECDHE_RSA_AES_128_GCM_SHA256 (",
        },
        Case {
            what: "groups",
            priority: Some("NORMAL:-GROUP-ALL:+GROUP-SECP384R1"),
            client: s_client(&["-groups", "X25519"]),
            parameter: HandshakeParameter::Group,
            text: "no key exchange group in common with the client: we accept SECP384R1; it \
                   offered X25519 (priority string \"NORMAL:-GROUP-ALL:+GROUP-SECP384R1\"; ours are set with SslConfigurationBuilder::priority_string",
        },
        Case {
            what: "signature algorithms",
            priority: None,
            client: s_client(&["-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"]),
            parameter: HandshakeParameter::SignatureAlgorithm,
            text: "; it offered RSA-PSS-RSAE-SHA256, RSA-SHA256 (",
        },
    ];
    for Case {
        what,
        priority,
        client,
        parameter,
        text,
    } in cases
    {
        let refusal = refusal_of(ecdsa_server(priority), &client);
        assert_eq!(refusal.refused_by(), RefusedBy::Us, "{what}");
        assert_eq!(refusal.parameter(), Some(parameter), "{what}: {refusal}");
        assert!(refusal.to_string().contains(text), "{what}: {refusal}");
        assert!(refusal.theirs().is_some(), "{what}");
        // What we accept is only what our ECDSA key can use.
        let ours = refusal.ours();
        assert!(
            ours.cipher_suites.iter().all(|s| !s.contains("_RSA_")),
            "{what}: {:?}",
            ours.cipher_suites
        );
        if parameter == HandshakeParameter::SignatureAlgorithm {
            assert!(
                ours.signature_algorithms
                    .iter()
                    .all(|s| s.starts_with("ECDSA-")),
                "{what}: {:?}",
                ours.signature_algorithms
            );
        }
    }
}

#[test]
fn our_server_names_what_a_gnutls_client_lacked() {
    require("gnutls-cli", "gnutls-bin");
    let refusal = refusal_of(
        ecdsa_server(None),
        &[
            "gnutls-cli",
            "--port",
            "PORT",
            "--x509cafile",
            &ca_str("root-ca.pem"),
            "--priority",
            "NORMAL:-SIGN-ALL:+SIGN-RSA-PSS-RSAE-SHA256:+SIGN-RSA-SHA256",
            "127.0.0.1",
        ],
    );
    assert_eq!(
        refusal.parameter(),
        Some(HandshakeParameter::SignatureAlgorithm),
        "{refusal}"
    );
    assert_eq!(
        refusal.theirs().unwrap().signature_algorithms,
        names(&["RSA-PSS-RSAE-SHA256", "RSA-SHA256"])
    );
    assert_eq!(
        refusal.gnutls_error().map(|e| e.name()),
        Some("GNUTLS_E_NO_CIPHER_SUITES")
    );
}

/// Connects a client with `config` to `port`; returns its probe once it
/// disconnected.
fn connect(port: u16, config: SslConfiguration) -> Shared {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, true);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
    probe
}

fn client_with(priority: &str, protocols: Option<(SslProtocol, SslProtocol)>) -> SslConfiguration {
    let builder = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"));
    match protocols {
        Some((min, max)) => builder.protocols(min, max),
        None => builder.priority_string(priority),
    }
    .build()
    .unwrap()
}

#[test]
fn our_client_tells_what_it_offered_when_the_server_refuses() {
    let mut args = server_cert_args();
    args.extend(["-www", "-groups", "P-384"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = s_server(&args, None, None, false);
    let priority = "NORMAL:-GROUP-ALL:+GROUP-X25519";
    let p = connect(server.port, client_with(priority, None));
    let p = p.borrow();
    assert!(!p.handshake_done());
    assert_eq!(
        p.errors(),
        vec![Caught::Refused(RefusedBy::Peer, None)],
        "{:?}",
        p.error_texts
    );
    assert_eq!(p.alerts_received, vec![40]);
    let text = &p.error_texts[0];
    assert!(
        text.starts_with("TLS handshake refused: the server refused our hello (fatal alert: ")
            && text.contains("nothing we offered suited it; we offered protocol versions ")
            && text.contains("; key exchange groups X25519; signature algorithms ")
            && text.contains(&format!(
                "(priority string {priority:?}; our versions are set with"
            )),
        "{text}"
    );
}

#[test]
fn our_client_refuses_a_version_the_server_chose() {
    // Offering only TLS 1.2, the client sends no supported_versions: a TLS
    // 1.1 server answers with TLS 1.1, which the client refuses itself.
    let mut args = server_cert_args();
    args.extend(["-www", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = s_server(&args, None, None, false);
    // CBC suites too: TLS 1.1 has no AEAD suite, and without a suite in
    // common the server would refuse first.
    let p = connect(
        server.port,
        client_with("NORMAL:-VERS-ALL:+VERS-TLS1.2", None),
    );
    let p = p.borrow();
    assert_eq!(
        p.errors(),
        vec![Caught::Refused(
            RefusedBy::Us,
            Some(HandshakeParameter::ProtocolVersion)
        )],
        "{:?}",
        p.error_texts
    );
    assert!(
        p.error_texts[0].contains(
            "no protocol version in common with the server: we accept TLS1.2; it chose another"
        ),
        "{}",
        p.error_texts[0]
    );
}

#[test]
fn both_of_our_ends_explain_the_same_refusal() {
    let mut reactor = Reactor::new().unwrap();
    let tls12_server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .protocols(SslProtocol::TlsV1_2, SslProtocol::TlsV1_2)
        .build()
        .unwrap();
    let server = our_server(&mut reactor, tls12_server);
    let tls13 = Some((SslProtocol::TlsV1_3, SslProtocol::TlsV1_3));
    let (id, probe) = client_socket(&mut reactor, client_with("", tls13), false);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "both ends to fail", |_| {
        probe.borrow().disconnected() && !server.refusals.borrow().is_empty()
    });
    let ours = server.refusals.borrow()[0].clone();
    assert_eq!(ours.refused_by(), RefusedBy::Us);
    assert_eq!(ours.parameter(), Some(HandshakeParameter::ProtocolVersion));
    assert_eq!(ours.ours().protocol_versions, names(&["TLS1.2"]));
    assert_eq!(ours.theirs().unwrap().protocol_versions, names(&["TLS1.3"]));
    let p = probe.borrow();
    assert_eq!(
        p.errors(),
        vec![Caught::Refused(
            RefusedBy::Peer,
            Some(HandshakeParameter::ProtocolVersion)
        )],
        "{:?}",
        p.error_texts
    );
    assert_eq!(p.alerts_received, vec![70]);
}

#[test]
fn our_server_names_a_certificate_type_an_openssl_client_lacked() {
    // A server with only a raw public key (RFC 7250); s_client sends no
    // server_certificate_type extension, so it takes only X.509.
    let raw_key_server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .local_raw_public_key_file(ca("server.key"), None)
        .build()
        .unwrap();
    let refusal = refusal_of(raw_key_server, &s_client(&[]));
    assert_eq!(
        refusal.parameter(),
        Some(HandshakeParameter::CertificateType),
        "{refusal}"
    );
    assert_eq!(
        refusal.theirs().unwrap().certificate_types,
        names(&["X.509"])
    );
    assert_eq!(refusal.ours().certificate_types, names(&["RAWPK"]));
    assert!(
        refusal.to_string().starts_with(
            "no certificate type in common with the client: we accept RAWPK; it offered X.509"
        ),
        "{refusal}"
    );
}

#[test]
fn an_alert_instead_of_a_client_hello_is_an_alert_not_a_refusal() {
    // A fatal handshake_failure as a client's first bytes: the server sent
    // no hello for it to refuse.
    let mut reactor = Reactor::new().unwrap();
    let server = our_server(&mut reactor, ecdsa_server(None));
    let mut client = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    run_for(&mut reactor, Duration::from_millis(100));
    std::io::Write::write_all(&mut client, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).unwrap();
    run_until(&mut reactor, TIMEOUT, "the server's error", |_| {
        !server.refusals.borrow().is_empty() || !server.other_errors.borrow().is_empty()
    });
    assert_eq!(
        server.refusals.borrow().len(),
        0,
        "{:?}",
        server.refusals.borrow()
    );
    assert_eq!(
        *server.other_errors.borrow(),
        ["the peer sent a fatal alert: Handshake failed (40)"]
    );
}
