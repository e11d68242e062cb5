//! Key logging (`SslConfigurationBuilder::key_log_file`,
//! `key_log_from_env`): for one connection, the lines our end logs are the
//! lines OpenSSL's end logs (`-keylogfile`), compared as sets, TLS 1.2 and
//! 1.3, both roles; nothing is logged unless the program asks, whatever
//! `SSLKEYLOGFILE` says (checked in a child process that sets it: GnuTLS
//! alone would write there); concurrent handshakes in several threads and
//! two configurations sharing one file never mix their lines.
//!
//! OpenSSL 3.0 and GnuTLS log the same labels on a full handshake: for TLS
//! 1.3 the two handshake and two application traffic secrets and
//! `EXPORTER_SECRET`, for TLS 1.2 `CLIENT_RANDOM` with the master secret.
//! On resumed sessions they differ, and the tests say how: in TLS 1.3
//! GnuTLS also logs the PSK's `CLIENT_EARLY_TRAFFIC_SECRET` and
//! `EARLY_EXPORTER_SECRET` (OpenSSL does only with early data, which
//! neither end sends here; those two lines are checked for form, not
//! value); in TLS 1.2 GnuTLS logs nothing, so sslsocket writes the
//! restored master secret itself, the line OpenSSL writes. OpenSSL's file
//! starts with a `#` comment, which the comparison skips.

mod common;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{
    ca, ca_str, client_socket, run_until, s_server, server_cert_args, Proc, Spawn, TempDir, TIMEOUT,
};
use sslsocket::{Error, Reactor, SocketId, SslConfiguration, SslConfigurationBuilder, SslProtocol};

const TLS13_LABELS: [&str; 5] = [
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0",
    "EXPORTER_SECRET",
    "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "SERVER_TRAFFIC_SECRET_0",
];
const TLS12_LABELS: [&str; 1] = ["CLIENT_RANDOM"];

fn labels(version: SslProtocol) -> BTreeSet<String> {
    let labels: &[&str] = match version {
        SslProtocol::TlsV1_3 => &TLS13_LABELS,
        _ => &TLS12_LABELS,
    };
    labels.iter().map(|l| (*l).to_owned()).collect()
}

fn version_flag(version: SslProtocol) -> &'static str {
    match version {
        SslProtocol::TlsV1_2 => "-tls1_2",
        _ => "-tls1_3",
    }
}

fn client_builder(version: SslProtocol) -> SslConfigurationBuilder {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(version, version)
}

fn server_builder(version: SslProtocol) -> SslConfigurationBuilder {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(ca("server.pem"), ca("server.key"), None)
        .protocols(version, version)
}

/// The key log lines of `path` (none if it does not exist), comments and
/// blank lines left out.
fn logged(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// One parsed line: label, client random, secret (hex).
fn fields(line: &str) -> (&str, &str, &str) {
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3, "not a key log line: {line:?}");
    let hex = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts[0]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
        "{line:?}"
    );
    assert!(
        hex(parts[1]) && parts[1].len() == 64,
        "client random of {line:?}"
    );
    assert!(
        hex(parts[2]) && [64, 96].contains(&parts[2].len()),
        "secret of {line:?}"
    );
    (parts[0], parts[1], parts[2])
}

/// Checks that `ours` and `theirs` hold the same lines, for one connection
/// of `version`.
fn assert_same_secrets(ours: &[String], theirs: &[String], version: SslProtocol) {
    let ours_set: BTreeSet<&String> = ours.iter().collect();
    let theirs_set: BTreeSet<&String> = theirs.iter().collect();
    assert_eq!(ours_set.len(), ours.len(), "no line twice: {ours:#?}");
    assert_eq!(ours_set, theirs_set, "{version}");
    let found: BTreeSet<String> = ours.iter().map(|l| fields(l).0.to_owned()).collect();
    assert_eq!(found, labels(version));
    let randoms: BTreeSet<&str> = ours.iter().map(|l| fields(l).1).collect();
    assert_eq!(randoms.len(), 1, "one connection: {ours:#?}");
}

// ---------------------------------------------------------------------------
// Against OpenSSL
// ---------------------------------------------------------------------------

/// Our client against `s_server -keylogfile`.
fn client_logs_as_s_server(version: SslProtocol) {
    let dir = TempDir::new("key-log-client");
    let (ours, theirs) = (dir.join("ours.keys"), dir.join("openssl.keys"));
    let mut args = server_cert_args();
    args.extend([
        version_flag(version).to_owned(),
        "-keylogfile".into(),
        theirs.to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = s_server(&args, None, None, false);
    let config = client_builder(version).key_log_file(&ours).build().unwrap();
    assert_eq!(config.key_log_file(), Some(ours.as_path()));

    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, false);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    let expected = labels(version).len();
    run_until(&mut reactor, TIMEOUT, "both ends' secrets", |_| {
        probe.borrow().handshake_done()
            && server.proc.stdout_text().contains("CIPHER is")
            && logged(&theirs).len() >= expected
    });
    assert_same_secrets(&logged(&ours), &logged(&theirs), version);
}

#[test]
fn our_client_logs_the_secrets_openssl_s_server_logs_tls13() {
    client_logs_as_s_server(SslProtocol::TlsV1_3);
}

#[test]
fn our_client_logs_the_secrets_openssl_s_server_logs_tls12() {
    client_logs_as_s_server(SslProtocol::TlsV1_2);
}

/// Our server against `s_client -keylogfile`.
fn server_logs_as_s_client(version: SslProtocol) {
    let dir = TempDir::new("key-log-server");
    let (ours, theirs) = (dir.join("ours.keys"), dir.join("openssl.keys"));
    let mut reactor = Reactor::new().unwrap();
    let config = server_builder(version).key_log_file(&ours).build().unwrap();
    let server = reactor
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
        .unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    let accepted: Rc<Cell<Option<SocketId>>> = Rc::default();
    let slot = accepted.clone();
    server
        .new_connection()
        .connect(move |_, _, &id| slot.set(Some(id)));
    let client: Proc = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-CAfile",
            &ca_str("root-ca.pem"),
        ])
        .args([
            version_flag(version),
            "-keylogfile",
            theirs.to_str().unwrap(),
        ])
        .start();
    let expected = labels(version).len();
    run_until(&mut reactor, TIMEOUT, "both ends' secrets", |r| {
        accepted
            .get()
            .and_then(|id| r.socket(id))
            .is_some_and(|s| s.is_encrypted())
            && client.stdout_text().contains("Cipher is")
            && logged(&theirs).len() >= expected
    });
    assert_same_secrets(&logged(&ours), &logged(&theirs), version);
}

#[test]
fn our_server_logs_the_secrets_openssl_s_client_logs_tls13() {
    server_logs_as_s_client(SslProtocol::TlsV1_3);
}

#[test]
fn our_server_logs_the_secrets_openssl_s_client_logs_tls12() {
    server_logs_as_s_client(SslProtocol::TlsV1_2);
}

// ---------------------------------------------------------------------------
// Off unless asked
// ---------------------------------------------------------------------------

/// Connects our client (`client`) to our server (`server`) in one reactor
/// and runs until both ends are encrypted.
fn handshake(client: SslConfiguration, server: SslConfiguration) {
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server)
        .unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    let accepted: Rc<Cell<Option<SocketId>>> = Rc::default();
    let slot = accepted.clone();
    server
        .new_connection()
        .connect(move |_, _, &id| slot.set(Some(id)));
    let (id, probe) = client_socket(&mut reactor, client, false);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "both handshakes", |r| {
        probe.borrow().handshake_done()
            && accepted
                .get()
                .and_then(|id| r.socket(id))
                .is_some_and(|s| s.is_encrypted())
    });
}

/// Set in the child process of [`sslkeylogfile_is_read_only_when_the_program_asks`].
const ENV_CHILD: &str = "SSLSOCKET_TEST_KEY_LOG_ENV_CHILD";

/// With `SSLKEYLOGFILE` set (in a child process: the test process's
/// environment is shared by its tests), configurations that do not ask log
/// nothing, on either side and in either version; GnuTLS's own default
/// key log function would have written there. One that calls
/// `key_log_from_env` logs to it.
#[test]
fn sslkeylogfile_is_read_only_when_the_program_asks() {
    let name = "sslkeylogfile_is_read_only_when_the_program_asks";
    if std::env::var_os(ENV_CHILD).is_none() {
        let dir = TempDir::new("key-log-env");
        let path = dir.join("env.keys");
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ENV_CHILD, "1")
            .env("SSLKEYLOGFILE", &path);
        let mut child = Proc::in_own_group("the test with SSLKEYLOGFILE set", command);
        let status = child.wait(Duration::from_secs(60));
        let stdout = child.stdout_text();
        assert!(
            status.success() && stdout.contains("test result: ok. 1 passed"),
            "{status}\nstdout:\n{stdout}\nstderr:\n{}",
            child.stderr_text()
        );
        return;
    }
    let path = PathBuf::from(std::env::var_os("SSLKEYLOGFILE").unwrap());
    for version in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let client = client_builder(version).build().unwrap();
        assert_eq!(client.key_log_file(), None);
        handshake(client, server_builder(version).build().unwrap());
        assert!(!path.exists(), "{} written unasked", path.display());
    }
    let client = client_builder(SslProtocol::TlsV1_3)
        .key_log_from_env()
        .build()
        .unwrap();
    assert_eq!(client.key_log_file(), Some(path.as_path()));
    handshake(
        client,
        server_builder(SslProtocol::TlsV1_3).build().unwrap(),
    );
    let lines = logged(&path);
    let found: BTreeSet<String> = lines.iter().map(|l| fields(l).0.to_owned()).collect();
    assert_eq!(found, labels(SslProtocol::TlsV1_3), "{lines:#?}");
}

// ---------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------

#[test]
fn a_key_log_that_cannot_be_opened_fails_the_build() {
    let dir = TempDir::new("key-log-open");
    let result = client_builder(SslProtocol::TlsV1_3)
        .key_log_file(dir.join("no-such-folder/keys"))
        .build();
    assert!(matches!(result, Err(Error::File { .. })), "{result:?}");
}

/// A new file is readable by its owner only; an existing one is appended
/// to.
#[test]
fn the_key_log_is_created_private_and_appended_to() {
    let dir = TempDir::new("key-log-file");
    let fresh = dir.join("fresh.keys");
    client_builder(SslProtocol::TlsV1_3)
        .key_log_file(&fresh)
        .build()
        .unwrap();
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");

    let existing = dir.write("existing.keys", b"# kept\n");
    let client = client_builder(SslProtocol::TlsV1_2)
        .key_log_file(&existing)
        .build()
        .unwrap();
    handshake(
        client,
        server_builder(SslProtocol::TlsV1_2).build().unwrap(),
    );
    let text = std::fs::read_to_string(&existing).unwrap();
    assert!(text.starts_with("# kept\nCLIENT_RANDOM "), "{text}");
    assert_eq!(logged(&existing).len(), 1);
}

/// Four client threads, each with its own reactor, and a server thread
/// log to one file through two configurations (two open files): every
/// line is whole, and each connection's client and server lines are the
/// same five.
#[test]
fn concurrent_handshakes_never_mix_their_lines() {
    const THREADS: usize = 4;
    const CONNECTIONS: usize = 5;
    let dir = TempDir::new("key-log-threads");
    let path = dir.join("shared.keys");
    let server_config = server_builder(SslProtocol::TlsV1_3)
        .key_log_file(&path)
        .build()
        .unwrap();
    let client_config = client_builder(SslProtocol::TlsV1_3)
        .session_resumption(false)
        .key_log_file(&path)
        .build()
        .unwrap();

    let (port_sender, port) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let id = reactor
            .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_config)
            .unwrap();
        let server = reactor.server(id).unwrap();
        port_sender.send(server.local_address().port()).unwrap();
        // Counted from handshake_complete, emitted once the lines are
        // written.
        let encrypted = Rc::new(Cell::new(0));
        let count = encrypted.clone();
        server.new_connection().connect(move |_, cx, &id| {
            let count = count.clone();
            cx.socket(id)
                .unwrap()
                .handshake_complete()
                .connect(move |_, _, _| count.set(count.get() + 1));
        });
        run_until(&mut reactor, TIMEOUT, "every handshake", |_| {
            encrypted.get() == THREADS * CONNECTIONS
        });
    });
    let port = port.recv().unwrap();
    let clients: Vec<_> = (0..THREADS)
        .map(|_| {
            let config = client_config.clone();
            thread::spawn(move || {
                let mut reactor = Reactor::new().unwrap();
                for _ in 0..CONNECTIONS {
                    let (id, probe) = client_socket(&mut reactor, config.clone(), false);
                    let socket = reactor.socket(id).unwrap();
                    socket.connect_to_host_encrypted("localhost", port).unwrap();
                    run_until(&mut reactor, TIMEOUT, "a handshake", |_| {
                        probe.borrow().handshake_done()
                    });
                    reactor.socket(id).unwrap().disconnect_from_host();
                    run_until(&mut reactor, TIMEOUT, "a goodbye", |_| {
                        probe.borrow().disconnected()
                    });
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    server.join().unwrap();

    let lines = logged(&path);
    let mut by_connection: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in &lines {
        let (_, random, _) = fields(line);
        by_connection
            .entry(random.to_owned())
            .or_default()
            .push(line.clone());
    }
    assert_eq!(by_connection.len(), THREADS * CONNECTIONS, "{lines:#?}");
    for connection in by_connection.values() {
        let distinct: BTreeSet<&String> = connection.iter().collect();
        assert_eq!(connection.len(), 10, "client and server: {connection:#?}");
        assert_eq!(
            distinct.len(),
            5,
            "the same five on both ends: {connection:#?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Resumed sessions
// ---------------------------------------------------------------------------

/// The labels GnuTLS logs, and OpenSSL without early data does not, for a
/// resumed TLS 1.3 session (its PSK's early secrets).
const RESUMED_TLS13_EXTRA: [&str; 2] = ["CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET"];

/// The lines of `lines` for the connection whose client random is that of
/// the last line.
fn last_connection(lines: &[String]) -> Vec<String> {
    let last = fields(lines.last().expect("lines")).1.to_owned();
    lines
        .iter()
        .filter(|l| fields(l).1 == last)
        .cloned()
        .collect()
}

/// For a resumed connection: TLS 1.2, the same lines (the restored master
/// secret under the new client random, which GnuTLS alone would not log);
/// TLS 1.3, ours are OpenSSL's plus the two early secrets.
fn assert_same_resumed_secrets(ours: &[String], theirs: &[String], version: SslProtocol) {
    let ours_set: BTreeSet<&String> = ours.iter().collect();
    let theirs_set: BTreeSet<&String> = theirs.iter().collect();
    let extra: BTreeSet<&str> = ours_set
        .difference(&theirs_set)
        .map(|l| fields(l).0)
        .collect();
    assert!(theirs_set.is_subset(&ours_set), "{ours:#?}\n{theirs:#?}");
    match version {
        SslProtocol::TlsV1_3 => assert_eq!(extra, BTreeSet::from(RESUMED_TLS13_EXTRA)),
        _ => assert_eq!(extra, BTreeSet::new(), "{ours:#?}"),
    }
    let found: BTreeSet<String> = theirs.iter().map(|l| fields(l).0.to_owned()).collect();
    assert_eq!(found, labels(version));
}

/// Our client connects twice to `s_server -keylogfile`, resuming the
/// first session the second time.
fn client_logs_resumed_as_s_server(version: SslProtocol) {
    let dir = TempDir::new("key-log-client-resumed");
    let (ours, theirs) = (dir.join("ours.keys"), dir.join("openssl.keys"));
    let mut args = server_cert_args();
    args.extend([
        version_flag(version).to_owned(),
        "-keylogfile".into(),
        theirs.to_str().unwrap().to_owned(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = s_server(&args, None, None, false);
    let config = client_builder(version).key_log_file(&ours).build().unwrap();
    let mut resumed = Vec::new();
    for connection in 1..=2 {
        let mut reactor = Reactor::new().unwrap();
        let (id, probe) = client_socket(&mut reactor, config.clone(), true);
        reactor
            .socket(id)
            .unwrap()
            .connect_to_host_encrypted("localhost", server.port)
            .unwrap();
        // s_server has finished (and logged) the handshake once it prints
        // our ping; its reply follows the TLS 1.3 session tickets on the
        // stream, so once it arrived the ticket has been remembered.
        reactor.socket(id).unwrap().write(b"ping\n").unwrap();
        run_until(&mut reactor, TIMEOUT, "s_server to print our ping", |_| {
            server.proc.stdout_text().matches("ping").count() == connection
        });
        server
            .proc
            .write_stdin(format!("pong {connection}\n").as_bytes());
        run_until(&mut reactor, TIMEOUT, "s_server's reply", |_| {
            common::contains(
                &probe.borrow().data,
                format!("pong {connection}").as_bytes(),
            )
        });
        resumed.push(reactor.socket(id).unwrap().is_session_resumed());
    }
    assert_eq!(resumed, [false, true]);
    assert_same_resumed_secrets(
        &last_connection(&logged(&ours)),
        &last_connection(&logged(&theirs)),
        version,
    );
}

#[test]
fn our_client_logs_resumed_sessions_as_openssl_s_server_does_tls13() {
    client_logs_resumed_as_s_server(SslProtocol::TlsV1_3);
}

#[test]
fn our_client_logs_resumed_sessions_as_openssl_s_server_does_tls12() {
    client_logs_resumed_as_s_server(SslProtocol::TlsV1_2);
}

/// `s_client -sess_out`, then `s_client -sess_in` resuming against our
/// server.
fn server_logs_resumed_as_s_client(version: SslProtocol) {
    let dir = TempDir::new("key-log-server-resumed");
    let (ours, theirs) = (dir.join("ours.keys"), dir.join("openssl.keys"));
    let session = dir.join("session.pem");
    let mut reactor = Reactor::new().unwrap();
    let config = server_builder(version).key_log_file(&ours).build().unwrap();
    let server = reactor
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
        .unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    let accepted: Rc<Cell<Option<SocketId>>> = Rc::default();
    let slot = accepted.clone();
    server
        .new_connection()
        .connect(move |_, _, &id| slot.set(Some(id)));
    let mut resumed = Vec::new();
    for (option, connection) in [("-sess_out", 1), ("-sess_in", 2)] {
        let client: Proc = Spawn::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args([
                "-servername",
                "localhost",
                "-CAfile",
                &ca_str("root-ca.pem"),
            ])
            .args([
                version_flag(version),
                "-keylogfile",
                theirs.to_str().unwrap(),
            ])
            .args([option, session.to_str().unwrap()])
            .start();
        let expected = labels(version).len() * connection;
        run_until(
            &mut reactor,
            TIMEOUT,
            "the handshake and the session",
            |r| {
                accepted
                    .get()
                    .and_then(|id| r.socket(id))
                    .is_some_and(|s| s.is_encrypted())
                    && client.stdout_text().contains("Cipher is")
                    && logged(&theirs).len() >= expected
                    && std::fs::metadata(&session).is_ok_and(|m| m.len() > 0)
            },
        );
        let socket = reactor.socket(accepted.take().unwrap()).unwrap();
        resumed.push(socket.is_session_resumed());
        socket.abort();
    }
    assert_eq!(resumed, [false, true]);
    assert_same_resumed_secrets(
        &last_connection(&logged(&ours)),
        &last_connection(&logged(&theirs)),
        version,
    );
}

#[test]
fn our_server_logs_resumed_sessions_as_openssl_s_client_does_tls13() {
    server_logs_resumed_as_s_client(SslProtocol::TlsV1_3);
}

#[test]
fn our_server_logs_resumed_sessions_as_openssl_s_client_does_tls12() {
    server_logs_resumed_as_s_client(SslProtocol::TlsV1_2);
}
