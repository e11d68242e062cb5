//! STARTTLS: a plaintext exchange, then `start_client_encryption` on the
//! same connection, against a python3 `ssl` server; and the server side,
//! `start_server_encryption` on a socket our server accepted unencrypted,
//! against `openssl s_client -starttls smtp`.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use sslsocket::{Reactor, SocketState, SslMode, SslProtocol, SslSocket};

/// Greets in plaintext, waits for `STARTTLS`, answers, upgrades, then
/// reads one encrypted line, answers it, sends close_notify and reports on
/// stdout what it saw.
const PY_STARTTLS_SERVER: &str = r#"
import socket, ssl, sys
cert, key = sys.argv[1:3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print("PORT", ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
ls.close()
f = raw.makefile("rb", buffering=0)
raw.sendall(b"220 plain greeting\r\n")
line = b""
while not line.endswith(b"\n"):
    c = raw.recv(1)
    if not c:
        sys.exit("EOF before STARTTLS")
    line += c
print("PLAIN", line.decode().strip(), flush=True)
if line != b"STARTTLS\r\n":
    sys.exit("expected STARTTLS")
raw.sendall(b"220 go ahead\r\n")
s = ctx.wrap_socket(raw, server_side=True)
print("TLS", s.version(), flush=True)
data = b""
while not data.endswith(b"\n"):
    c = s.recv(4096)
    if not c:
        sys.exit("EOF before the encrypted line")
    data += c
print("SECRET", data.decode().strip(), flush=True)
s.sendall(b"encrypted answer to " + data)
try:
    s.unwrap()
except (OSError, ssl.SSLError):
    pass
s.close()
print("END", flush=True)
"#;

/// Where the client is in the dialogue.
#[derive(Default)]
struct Dialogue {
    plain_lines: Vec<Vec<u8>>,
    encrypted: Vec<u8>,
    upgraded: bool,
    modes_seen: Vec<(SslMode, bool)>,
}

#[test]
fn client_upgrades_a_plaintext_connection_with_start_client_encryption() {
    let mut py = Spawn::new("python3")
        .args(["-c", PY_STARTTLS_SERVER])
        .arg(ca_str("server.pem"))
        .arg(ca_str("server.key"))
        .start();
    let port: u16 = py.wait_for_line("PORT ", TIMEOUT)[5..].parse().unwrap();

    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let dialogue = Rc::new(RefCell::new(Dialogue::default()));
    let d = dialogue.clone();
    let socket = reactor.socket(id).unwrap();
    socket.ready_read().connect(move |s, _, _| {
        let mut d = d.borrow_mut();
        d.modes_seen.push((s.mode(), s.is_encrypted()));
        if d.upgraded {
            let data = s.read_all();
            d.encrypted.extend_from_slice(&data);
            return;
        }
        while let Some(line) = s.take_line() {
            match line.as_slice() {
                b"220 plain greeting\r\n" => {
                    s.write(b"STARTTLS\r\n").unwrap();
                }
                b"220 go ahead\r\n" => {
                    assert_eq!(s.state(), SocketState::Connected);
                    s.start_client_encryption().unwrap();
                    d.upgraded = true;
                    assert_eq!(s.mode(), SslMode::SslClientMode);
                    assert_eq!(s.state(), SocketState::Handshaking);
                    // Queued until the handshake is complete.
                    s.write(b"secret line\n").unwrap();
                    d.plain_lines.push(line);
                    // Anything after this line is TLS.
                    return;
                }
                _ => {}
            }
            d.plain_lines.push(line);
        }
    });
    socket.connect_to_host("localhost", port).unwrap();
    assert_eq!(socket.mode(), SslMode::UnencryptedMode);
    run_until(&mut reactor, TIMEOUT, "the end of the dialogue", |_| {
        probe.borrow().disconnected()
    });
    let status = py.wait(TIMEOUT);
    assert!(status.success(), "python: {status}\n{}", py.stderr_text());
    assert_eq!(
        py.stdout_text(),
        format!("PORT {port}\nPLAIN STARTTLS\nTLS TLSv1.3\nSECRET secret line\nEND\n")
    );
    let d = dialogue.borrow();
    assert_eq!(
        d.plain_lines,
        vec![
            b"220 plain greeting\r\n".to_vec(),
            b"220 go ahead\r\n".to_vec()
        ]
    );
    assert_eq!(d.encrypted, b"encrypted answer to secret line\n");
    assert_eq!(
        d.modes_seen.first(),
        Some(&(SslMode::UnencryptedMode, false))
    );
    let p = probe.borrow();
    assert_eq!(p.protocol, Some(SslProtocol::TlsV1_3));
    assert_eq!(p.chain.len(), 2);
    assert_eq!(
        p.events,
        vec![
            Event::Connected,
            Event::HandshakeComplete,
            Event::ReadChannelFinished,
            Event::Disconnected
        ],
        "{:?}",
        p.error_texts
    );
}

#[test]
fn start_client_encryption_verifies_the_server_like_connect_to_host_encrypted() {
    // The same dialogue, but the client trusts another CA: the upgrade
    // fails with a verification error naming the missing issuer.
    let mut py = Spawn::new("python3")
        .args(["-c", PY_STARTTLS_SERVER])
        .arg(ca_str("server.pem"))
        .arg(ca_str("server.key"))
        .start();
    let port: u16 = py.wait_for_line("PORT ", TIMEOUT)[5..].parse().unwrap();
    let config = sslsocket::SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("other-ca.pem"))
        .build()
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, false);
    let socket = reactor.socket(id).unwrap();
    socket.ready_read().connect(|s, _, _| {
        while let Some(line) = s.take_line() {
            if line == b"220 plain greeting\r\n" {
                s.write(b"STARTTLS\r\n").unwrap();
            } else if line == b"220 go ahead\r\n" {
                s.start_client_encryption().unwrap();
            }
        }
    });
    socket.connect_to_host("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the failure", |_| {
        probe.borrow().disconnected()
    });
    let p = probe.borrow();
    assert!(!p.handshake_done());
    assert_eq!(
        p.errors(),
        vec![Caught::CertificateVerification(vec![
            sslsocket::SslErrorKind::UnableToGetLocalIssuerCertificate
        ])],
        "{:?}",
        p.error_texts
    );
    let status = py.wait(TIMEOUT);
    assert!(!status.success(), "python must see the handshake fail");
}

// ---- server side ----

/// The SMTP server's side of one connection.
#[derive(Default)]
struct Smtp {
    upgraded: bool,
    lines: Vec<String>,
}

/// How the server sends "220 go ahead" before starting TLS.
#[derive(Clone, Copy)]
enum GoAhead {
    /// `write`, `flush`, then `start_server_encryption`.
    Flushed,
    /// `write`, then `start_server_encryption` at once: the reply was
    /// written in unencrypted mode, so it must still go out as plaintext.
    Written,
}

fn smtp_server(go_ahead: GoAhead) -> (Reactor, u16, Rc<RefCell<Vec<Shared>>>) {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(id).unwrap();
    server.set_immediate_encryption(false);
    // Ends the bugged variant's wait; generous for a busy machine.
    server.set_handshake_timeout(Some(std::time::Duration::from_secs(10)));
    let port = server.local_address().port();
    let probes: Rc<RefCell<Vec<Shared>>> = Rc::default();
    let list = probes.clone();
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        assert_eq!(socket.mode(), SslMode::UnencryptedMode);
        assert!(!socket.is_encrypted());
        list.borrow_mut().push(probe(socket, false));
        socket.set_user_data(Smtp::default());
        socket.write(b"220 localhost ESMTP sslsocket\r\n").unwrap();
        socket
            .ready_read()
            .connect(move |s, _, _| smtp_read(s, go_ahead));
    });
    (reactor, port, probes)
}

fn smtp_read(s: &mut SslSocket, go_ahead: GoAhead) {
    while let Some(line) = s.take_line() {
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let upgraded = {
            let smtp = s.user_data::<Smtp>().unwrap();
            smtp.lines.push(text.clone());
            smtp.upgraded
        };
        if upgraded {
            s.write(format!("encrypted: {text}\r\n").as_bytes())
                .unwrap();
            s.disconnect_from_host();
        } else if text.starts_with("EHLO ") {
            s.write(b"250-localhost greets you\r\n250 STARTTLS\r\n")
                .unwrap();
        } else if text == "STARTTLS" {
            s.write(b"220 go ahead\r\n").unwrap();
            if let GoAhead::Flushed = go_ahead {
                assert!(s.flush(), "the reply was not sent at once");
            }
            s.start_server_encryption().unwrap();
            assert_eq!(s.mode(), SslMode::SslServerMode);
            s.user_data::<Smtp>().unwrap().upgraded = true;
            // Anything after STARTTLS is TLS.
            return;
        } else {
            s.write(b"500 what?\r\n").unwrap();
        }
    }
}

fn s_client_starttls_smtp(port: u16) -> Proc {
    Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-starttls", "smtp", "-name", "client.example"])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .start()
}

fn check_server_starttls(go_ahead: GoAhead) {
    let (mut reactor, port, probes) = smtp_server(go_ahead);
    let mut client = s_client_starttls_smtp(port);
    client.write_stdin(b"MAIL FROM:<a@example.org>\n");
    run_until(&mut reactor, TIMEOUT, "s_client to exit", |_| {
        client.try_wait().is_some()
    });
    let status = client.wait(TIMEOUT);
    assert_eq!(
        client.stdout_text(),
        "encrypted: MAIL FROM:<a@example.org>\r\n",
        "stderr: {}",
        client.stderr_text()
    );
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        client.stderr_text()
    );
    run_until(
        &mut reactor,
        TIMEOUT,
        "the server's socket to close",
        |_| probes.borrow().iter().all(|p| p.borrow().disconnected()),
    );
    let probes = probes.borrow();
    assert_eq!(probes.len(), 1);
    let p = probes[0].borrow();
    assert!(p.handshake_done());
    assert_eq!(p.protocol, Some(SslProtocol::TlsV1_3));
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
}

#[test]
fn server_upgrades_an_accepted_plaintext_socket_for_s_client_starttls_smtp() {
    check_server_starttls(GoAhead::Flushed);
}

#[test]
fn reply_written_in_plaintext_before_start_server_encryption_is_sent_in_plaintext() {
    // Qt semantics, and `write`'s documentation ("in unencrypted mode it is
    // sent as is"): bytes written while unencrypted are plaintext even if
    // start_server_encryption follows before the reactor sent them.
    check_server_starttls(GoAhead::Written);
}
