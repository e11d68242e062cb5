//! Keying material exports and channel bindings, each checked against
//! OpenSSL computing the same value on the same connection: our client
//! against `openssl s_server`, our server against `openssl s_client`, TLS
//! 1.2 and 1.3.
//!
//! - Exports: OpenSSL's `-keymatexport LABEL -keymatexportlen N` prints
//!   `Keying material: HEX` after the handshake; it exports with *no*
//!   context, which we compare with `export_keying_material(LABEL, None, N)`.
//! - `tls-exporter` (RFC 9266) uses an *empty* context. In TLS 1.3 that is
//!   the same as none, so OpenSSL's `-keymatexport EXPORTER-Channel-Binding
//!   -keymatexportlen 32` is the binding itself. In TLS 1.2 (RFC 5705) the
//!   two differ and OpenSSL's command line cannot pass a context, so the
//!   test recomputes the exporter with `openssl kdf TLS1-PRF` from the
//!   master secret OpenSSL logged (`-keylogfile`) and the randoms (the
//!   server's from `-msg`): first with no context, which must give what
//!   `-keymatexport` printed (the recomputation is right), then with the
//!   empty context, which must give our binding.
//! - `tls-server-end-point` (RFC 5929) against `openssl x509 -fingerprint`
//!   of the server's certificate, with SHA-256 (ECDSA-SHA256, the RSA key
//!   `ca/server-rsa.pem`, and SHA-1 signatures) and SHA-384 (a leaf signed
//!   with ecdsa-with-SHA384, made by the test).

mod common;

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;

use common::{
    ca, ca_str, client_socket, run_until, s_server, s_server_chain, server_cert_args, split_pem,
    OpensslServer, Proc, Spawn, TempDir, TIMEOUT,
};
use sslsocket::{
    ChannelBinding, Error, PeerVerifyMode, Reactor, SocketId, SslConfiguration, SslProtocol,
};

/// A label of our own (RFC 5705 §4: unregistered labels start with
/// EXPERIMENTAL).
const LABEL: &str = "EXPERIMENTAL sslsocket keying test";

const TLS_EXPORTER_LABEL: &str = "EXPORTER-Channel-Binding";

// ---------------------------------------------------------------------------
// Peers and connections
// ---------------------------------------------------------------------------

fn version_flag(version: SslProtocol) -> &'static str {
    match version {
        SslProtocol::TlsV1_2 => "-tls1_2",
        SslProtocol::TlsV1_3 => "-tls1_3",
        other => panic!("no test for {other}"),
    }
}

/// Our client configuration, trusting the test root, for `version` only.
fn client_config(version: SslProtocol) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .protocols(version, version)
        .build()
        .unwrap()
}

/// Our server configuration with `chain` and `key`, for `version` only.
fn server_config(chain: &Path, key: &Path, version: SslProtocol) -> SslConfiguration {
    SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(chain, key, None)
        .protocols(version, version)
        .build()
        .unwrap()
}

/// `openssl s_server` presenting `ca/server.pem` for `version` only,
/// exporting `len` bytes under `label` after each handshake.
fn exporting_s_server(
    version: SslProtocol,
    label: &str,
    len: usize,
    extra: &[&str],
) -> OpensslServer {
    let mut args = server_cert_args();
    args.extend([
        version_flag(version).to_owned(),
        "-keymatexport".into(),
        label.to_owned(),
        "-keymatexportlen".into(),
        len.to_string(),
    ]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s_server(&args, None, None, false)
}

/// Connects a client with `config` to localhost:`port` and runs until the
/// handshake completed (the test fails on an error).
fn connect(config: SslConfiguration, port: u16) -> (Reactor, SocketId) {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, config, false);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the handshake", |_| {
        let p = probe.borrow();
        p.handshake_done() || !p.errors().is_empty()
    });
    assert!(
        probe.borrow().handshake_done(),
        "{:?}",
        probe.borrow().events
    );
    (reactor, id)
}

/// Our server on 127.0.0.1 and the last socket it accepted.
struct OurServer {
    reactor: Reactor,
    port: u16,
    accepted: Rc<Cell<Option<SocketId>>>,
}

impl OurServer {
    fn start(config: SslConfiguration) -> Self {
        let mut reactor = Reactor::new().unwrap();
        let id = reactor
            .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
            .unwrap();
        let server = reactor.server(id).unwrap();
        let port = server.local_address().port();
        let accepted = Rc::new(Cell::new(None));
        let slot = accepted.clone();
        server
            .new_connection()
            .connect(move |_, _, &socket| slot.set(Some(socket)));
        Self {
            reactor,
            port,
            accepted,
        }
    }

    /// Runs until the accepted socket is encrypted and `peer` printed
    /// `needle`; returns the socket.
    fn until_encrypted(&mut self, peer: &mut Proc, needle: &str) -> SocketId {
        let accepted = self.accepted.clone();
        run_until(
            &mut self.reactor,
            TIMEOUT,
            "the accepted socket's handshake",
            |r| {
                let encrypted = accepted
                    .get()
                    .and_then(|id| r.socket(id))
                    .is_some_and(|s| s.is_encrypted());
                encrypted && peer.stdout_text().contains(needle)
            },
        );
        self.accepted.get().unwrap()
    }
}

/// `openssl s_client` for `version` connected to our server at `port`,
/// with `extra` arguments; its stdin stays open, so it stays connected.
fn s_client(port: u16, version: SslProtocol, extra: &[&str]) -> Proc {
    Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-CAfile",
            &ca_str("root-ca.pem"),
        ])
        .arg(version_flag(version))
        .args(extra)
        .start()
}

// ---------------------------------------------------------------------------
// What OpenSSL computes
// ---------------------------------------------------------------------------

/// The `Keying material: HEX` line an s_server or s_client printed.
fn keying_material(peer: &mut Proc) -> Vec<u8> {
    let line = peer.wait_for_line("    Keying material: ", TIMEOUT);
    unhex(line.trim().trim_start_matches("Keying material: "))
}

/// Runs `openssl ARGS` to completion; returns its stdout.
fn openssl(args: &[&str]) -> String {
    let mut proc = Spawn::new("openssl").args(args).null_stdin().start();
    let status = proc.wait(TIMEOUT);
    assert!(
        status.success(),
        "openssl {args:?}: {status}\n{}",
        proc.stderr_text()
    );
    proc.stdout_text()
}

/// `openssl x509 -fingerprint -DIGEST` of the first certificate in `pem`.
fn fingerprint(pem: &Path, digest: &str) -> Vec<u8> {
    let out = openssl(&[
        "x509",
        "-in",
        pem.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        &format!("-{digest}"),
    ]);
    let (_, hex) = out.trim().split_once('=').expect("a fingerprint line");
    unhex(hex)
}

/// The TLS 1.2 PRF (RFC 5246 §5) with `digest` ("SHA2-256"), computed by
/// `openssl kdf`; `seed` includes the label.
fn tls12_prf(digest: &str, secret: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let out = openssl(&[
        "kdf",
        "-keylen",
        &len.to_string(),
        "-kdfopt",
        &format!("digest:{digest}"),
        "-kdfopt",
        &format!("hexsecret:{}", hex(secret)),
        "-kdfopt",
        &format!("hexseed:{}", hex(seed)),
        "TLS1-PRF",
    ]);
    unhex(out.trim())
}

/// The `CLIENT_RANDOM <client random> <master secret>` line of an OpenSSL
/// key log.
fn client_random_and_master(key_log: &Path) -> (Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(key_log).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("CLIENT_RANDOM "))
        .unwrap_or_else(|| panic!("no CLIENT_RANDOM in {text}"));
    let fields: Vec<&str> = line.split(' ').collect();
    (unhex(fields[1]), unhex(fields[2]))
}

/// The server random, from the ServerHello an s_server or s_client with
/// `-msg` printed (`... Handshake [length 0041], ServerHello` and the
/// message in hex: type, 3 bytes of length, 2 of version, then the random).
fn server_random(msg_output: &str) -> Vec<u8> {
    let mut lines = msg_output.lines();
    lines
        .find(|l| l.ends_with(", ServerHello"))
        .expect("a ServerHello in the -msg output");
    let bytes: Vec<u8> = lines
        .take_while(|l| l.starts_with(' '))
        .flat_map(|l| {
            l.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
        })
        .collect();
    bytes[6..38].to_vec()
}

/// The digest of the TLS 1.2 PRF of a cipher suite (by its name's end).
fn prf_digest(suite: &str) -> &'static str {
    match suite.ends_with("SHA384") {
        true => "SHA2-384",
        false => "SHA2-256",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex in either case, with or without colons.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert!(
        !digits.is_empty() && digits.len() % 2 == 0,
        "not hex: {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------

/// Our client exports what s_server exports, with no context; in TLS 1.2
/// an empty context gives other material, in TLS 1.3 the same.
fn client_exports_as_s_server(version: SslProtocol) {
    let mut server = exporting_s_server(version, LABEL, 48, &[]);
    let (mut reactor, id) = connect(client_config(version), server.port);
    let theirs = keying_material(&mut server.proc);
    let socket = reactor.socket(id).unwrap();
    let ours = socket
        .export_keying_material(LABEL.as_bytes(), None, 48)
        .unwrap();
    assert_eq!(hex(&ours), hex(&theirs));
    let empty_context = socket
        .export_keying_material(LABEL.as_bytes(), Some(&[]), 48)
        .unwrap();
    assert_eq!(empty_context == ours, version == SslProtocol::TlsV1_3);
    let with_context = socket
        .export_keying_material(LABEL.as_bytes(), Some(b"context"), 48)
        .unwrap();
    assert_ne!(with_context, ours);
}

#[test]
fn our_client_exports_what_openssl_s_server_exports_tls13() {
    client_exports_as_s_server(SslProtocol::TlsV1_3);
}

#[test]
fn our_client_exports_what_openssl_s_server_exports_tls12() {
    client_exports_as_s_server(SslProtocol::TlsV1_2);
}

/// Our server exports what s_client exports.
fn server_exports_as_s_client(version: SslProtocol) {
    let mut server = OurServer::start(server_config(&ca("server.pem"), &ca("server.key"), version));
    let mut client = s_client(
        server.port,
        version,
        &["-keymatexport", LABEL, "-keymatexportlen", "48"],
    );
    let id = server.until_encrypted(&mut client, "Keying material: ");
    let theirs = keying_material(&mut client);
    let socket = server.reactor.socket(id).unwrap();
    let ours = socket
        .export_keying_material(LABEL.as_bytes(), None, 48)
        .unwrap();
    assert_eq!(hex(&ours), hex(&theirs));
}

#[test]
fn our_server_exports_what_openssl_s_client_exports_tls13() {
    server_exports_as_s_client(SslProtocol::TlsV1_3);
}

#[test]
fn our_server_exports_what_openssl_s_client_exports_tls12() {
    server_exports_as_s_client(SslProtocol::TlsV1_2);
}

/// The limits: a 63-byte label and 8160 bytes (255 SHA-256 blocks, the
/// most HKDF gives with TLS 1.3's SHA-256 suites) work in both versions
/// and match OpenSSL; past them, and for empty labels or lengths, the
/// call is refused as invalid input, never passed to GnuTLS.
#[test]
fn the_longest_label_and_output_match_openssl_and_beyond_them_is_invalid_input() {
    let label = "EXPERIMENTAL ".to_owned() + &"x".repeat(50);
    assert_eq!(label.len(), 63);
    for (version, suite) in [
        (
            SslProtocol::TlsV1_3,
            ["-ciphersuites", "TLS_AES_128_GCM_SHA256"],
        ),
        (
            SslProtocol::TlsV1_2,
            ["-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        ),
    ] {
        let mut server = exporting_s_server(version, &label, 8160, &suite);
        let (mut reactor, id) = connect(client_config(version), server.port);
        let theirs = keying_material(&mut server.proc);
        let socket = reactor.socket(id).unwrap();
        let ours = socket
            .export_keying_material(label.as_bytes(), None, 8160)
            .unwrap();
        assert_eq!(ours, theirs, "{version}");

        let too_long = "x".repeat(64);
        let big_context = vec![0u8; 65536];
        for (label, context, len) in [
            (too_long.as_bytes(), None, 32),
            (b"".as_slice(), None, 32),
            (LABEL.as_bytes(), Some(big_context.as_slice()), 32),
            (LABEL.as_bytes(), None, 0),
            (LABEL.as_bytes(), None, 8161),
        ] {
            let result = socket.export_keying_material(label, context, len);
            assert!(
                matches!(result, Err(Error::InvalidInput(_))),
                "{} {:?} {len}: {result:?}",
                label.len(),
                context.map(<[u8]>::len)
            );
        }
        let max_context =
            socket.export_keying_material(LABEL.as_bytes(), Some(&big_context[1..]), 32);
        assert!(max_context.is_ok(), "{max_context:?}");
    }
}

// ---------------------------------------------------------------------------
// tls-exporter
// ---------------------------------------------------------------------------

#[test]
fn tls_exporter_is_openssls_exporter_for_its_label_tls13_both_roles() {
    // Our client.
    let mut server = exporting_s_server(SslProtocol::TlsV1_3, TLS_EXPORTER_LABEL, 32, &[]);
    let (mut reactor, id) = connect(client_config(SslProtocol::TlsV1_3), server.port);
    let theirs = keying_material(&mut server.proc);
    let binding = reactor
        .socket(id)
        .unwrap()
        .channel_binding(ChannelBinding::TlsExporter)
        .unwrap();
    assert_eq!(hex(&binding), hex(&theirs));

    // Our server.
    let mut ours = OurServer::start(server_config(
        &ca("server.pem"),
        &ca("server.key"),
        SslProtocol::TlsV1_3,
    ));
    let mut client = s_client(
        ours.port,
        SslProtocol::TlsV1_3,
        &[
            "-keymatexport",
            TLS_EXPORTER_LABEL,
            "-keymatexportlen",
            "32",
        ],
    );
    let id = ours.until_encrypted(&mut client, "Keying material: ");
    let theirs = keying_material(&mut client);
    let binding = ours
        .reactor
        .socket(id)
        .unwrap()
        .channel_binding(ChannelBinding::TlsExporter)
        .unwrap();
    assert_eq!(hex(&binding), hex(&theirs));
}

/// Checks a TLS 1.2 `tls-exporter` binding against the PRF recomputed
/// from what OpenSSL logged and printed on the same connection (see the
/// file's docs).
fn check_tls12_exporter(
    binding: &[u8],
    none: &[u8],
    suite: &str,
    openssl_out: &str,
    key_log: &Path,
) {
    let printed = unhex(
        openssl_out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Keying material: "))
            .expect("OpenSSL printed the keying material"),
    );
    let (client_random, master) = client_random_and_master(key_log);
    let seed = [
        TLS_EXPORTER_LABEL.as_bytes(),
        &client_random,
        &server_random(openssl_out),
    ]
    .concat();
    let digest = prf_digest(suite);
    // With no context, the recomputation gives what OpenSSL printed, and
    // what we export with no context.
    assert_eq!(hex(&tls12_prf(digest, &master, &seed, 32)), hex(&printed));
    assert_eq!(hex(none), hex(&printed));
    // With the empty context of RFC 9266 (a zero length after the seed),
    // it gives our binding.
    let empty_context = [seed.as_slice(), &[0, 0]].concat();
    assert_eq!(
        hex(binding),
        hex(&tls12_prf(digest, &master, &empty_context, 32))
    );
    assert_ne!(binding, none);
}

#[test]
fn tls_exporter_in_tls12_uses_the_empty_context_our_client() {
    let dir = TempDir::new("tls12-exporter-client");
    let key_log = dir.join("openssl.keys");
    let mut server = exporting_s_server(
        SslProtocol::TlsV1_2,
        TLS_EXPORTER_LABEL,
        32,
        &["-msg", "-keylogfile", key_log.to_str().unwrap()],
    );
    let (mut reactor, id) = connect(client_config(SslProtocol::TlsV1_2), server.port);
    keying_material(&mut server.proc);
    let socket = reactor.socket(id).unwrap();
    let binding = socket.channel_binding(ChannelBinding::TlsExporter).unwrap();
    let none = socket
        .export_keying_material(TLS_EXPORTER_LABEL.as_bytes(), None, 32)
        .unwrap();
    let suite = socket.session_cipher().unwrap();
    check_tls12_exporter(
        &binding,
        &none,
        &suite,
        &server.proc.stdout_text(),
        &key_log,
    );
}

#[test]
fn tls_exporter_in_tls12_uses_the_empty_context_our_server() {
    let dir = TempDir::new("tls12-exporter-server");
    let key_log = dir.join("openssl.keys");
    let mut server = OurServer::start(server_config(
        &ca("server.pem"),
        &ca("server.key"),
        SslProtocol::TlsV1_2,
    ));
    let mut client = s_client(
        server.port,
        SslProtocol::TlsV1_2,
        &[
            "-msg",
            "-keylogfile",
            key_log.to_str().unwrap(),
            "-keymatexport",
            TLS_EXPORTER_LABEL,
            "-keymatexportlen",
            "32",
        ],
    );
    let id = server.until_encrypted(&mut client, "Keying material: ");
    let socket = server.reactor.socket(id).unwrap();
    let binding = socket.channel_binding(ChannelBinding::TlsExporter).unwrap();
    let none = socket
        .export_keying_material(TLS_EXPORTER_LABEL.as_bytes(), None, 32)
        .unwrap();
    let suite = socket.session_cipher().unwrap();
    check_tls12_exporter(&binding, &none, &suite, &client.stdout_text(), &key_log);
}

/// Without the extended master secret a TLS 1.2 master secret is not
/// unique to the connection (the triple handshake attack): no
/// tls-exporter binding (RFC 9266 §2), while exports still work.
#[test]
fn tls_exporter_is_refused_in_tls12_without_the_extended_master_secret() {
    let mut server = exporting_s_server(SslProtocol::TlsV1_2, LABEL, 32, &[]);
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(ca("root-ca.pem"))
        .priority_string("NORMAL:-VERS-ALL:+VERS-TLS1.2:%NO_SESSION_HASH")
        .build()
        .unwrap();
    let (mut reactor, id) = connect(config, server.port);
    let theirs = keying_material(&mut server.proc);
    let socket = reactor.socket(id).unwrap();
    match socket.channel_binding(ChannelBinding::TlsExporter) {
        Err(Error::InvalidState(why)) => assert!(why.contains("extended master secret"), "{why}"),
        other => panic!("{other:?}"),
    }
    let ours = socket
        .export_keying_material(LABEL.as_bytes(), None, 32)
        .unwrap();
    assert_eq!(ours, theirs);
    // The same server (one connection at a time) gives the binding to a
    // client that negotiates the extended master secret.
    drop(reactor);
    let (mut reactor, id) = connect(client_config(SslProtocol::TlsV1_2), server.port);
    let binding = reactor
        .socket(id)
        .unwrap()
        .channel_binding(ChannelBinding::TlsExporter);
    assert!(binding.is_ok(), "{binding:?}");
}

// ---------------------------------------------------------------------------
// tls-server-end-point
// ---------------------------------------------------------------------------

/// Our client's and our server's binding for a server presenting `chain`
/// (leaf first) with `key`, in TLS 1.3 and TLS 1.2, must be `expected`;
/// also with `openssl s_server` and `openssl s_client` as the other end.
fn check_end_point(chain: &Path, key: &Path, expected: &[u8]) {
    let pems = split_pem(chain);
    let dir = TempDir::new("end-point");
    for version in [SslProtocol::TlsV1_3, SslProtocol::TlsV1_2] {
        let server = s_server_chain(&pems, key, &dir, &[version_flag(version)], false);
        let config = SslConfiguration::builder()
            .system_ca_certificates(false)
            .peer_verify_mode(PeerVerifyMode::VerifyNone)
            .protocols(version, version)
            .build()
            .unwrap();
        let (mut reactor, id) = connect(config, server.port);
        let binding = reactor
            .socket(id)
            .unwrap()
            .channel_binding(ChannelBinding::TlsServerEndPoint)
            .unwrap();
        assert_eq!(hex(&binding), hex(expected), "our client, {version}");

        let mut ours = OurServer::start(server_config(chain, key, version));
        let mut client = s_client(ours.port, version, &[]);
        let id = ours.until_encrypted(&mut client, "Cipher is");
        let binding = ours
            .reactor
            .socket(id)
            .unwrap()
            .channel_binding(ChannelBinding::TlsServerEndPoint)
            .unwrap();
        assert_eq!(hex(&binding), hex(expected), "our server, {version}");
    }
}

#[test]
fn tls_server_end_point_is_the_sha256_fingerprint_for_sha256_signatures() {
    // ECDSA key, ecdsa-with-SHA256 signature.
    let expected = fingerprint(&ca("server.pem"), "sha256");
    check_end_point(&ca("server.pem"), &ca("server.key"), &expected);
    // RSA key, still an ECDSA-SHA256 signature (by the intermediate).
    let expected = fingerprint(&ca("server-rsa.pem"), "sha256");
    check_end_point(&ca("server-rsa.pem"), &ca("server-rsa.key"), &expected);
}

/// RFC 5929 §4.1: SHA-256 for a certificate signed with SHA-1.
#[test]
fn tls_server_end_point_uses_sha256_for_a_sha1_signature() {
    let chain = ca("broken/sha1.pem");
    let expected = fingerprint(&chain, "sha256");
    assert_ne!(expected.len(), fingerprint(&chain, "sha1").len());
    let pems = split_pem(&chain);
    let dir = TempDir::new("end-point-sha1");
    let server = s_server_chain(&pems, &ca("broken/sha1.key"), &dir, &[], false);
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .peer_verify_mode(PeerVerifyMode::VerifyNone)
        .build()
        .unwrap();
    let (mut reactor, id) = connect(config, server.port);
    let binding = reactor
        .socket(id)
        .unwrap()
        .channel_binding(ChannelBinding::TlsServerEndPoint)
        .unwrap();
    assert_eq!(hex(&binding), hex(&expected));
}

/// The hash follows the signature: a leaf the intermediate signed with
/// ecdsa-with-SHA384, made here, binds with its SHA-384 fingerprint.
#[test]
fn tls_server_end_point_follows_a_sha384_signature() {
    let dir = TempDir::new("end-point-sha384");
    let (chain, key) = sha384_leaf(&dir);
    let expected = fingerprint(&chain, "sha384");
    assert_eq!(expected.len(), 48);
    check_end_point(&chain, &key, &expected);
}

/// A leaf for localhost signed by the test intermediate with SHA-384, and
/// its key; the chain file holds the intermediate too.
fn sha384_leaf(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("sha384.key");
    let csr = dir.join("sha384.csr");
    let leaf = dir.join("sha384-leaf.pem");
    let extensions = dir.write(
        "sha384.ext",
        b"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
          extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/O=sslsocket/CN=localhost",
        "-out",
        csr.to_str().unwrap(),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-sha384",
        "-days",
        "2",
        "-CA",
        &ca_str("intermediate-ca.pem"),
        "-CAkey",
        &ca_str("intermediate-ca.key"),
        "-set_serial",
        "0x5eed384",
        "-extfile",
        extensions.to_str().unwrap(),
        "-out",
        leaf.to_str().unwrap(),
    ]);
    let text = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("ecdsa-with-SHA384"), "{text}");
    let chain = [
        std::fs::read(&leaf).unwrap(),
        std::fs::read(ca("intermediate-ca.pem")).unwrap(),
    ]
    .concat();
    (dir.write("sha384-chain.pem", &chain), key)
}

/// EdDSA signatures hash internally: RFC 5929 leaves the binding undefined,
/// and both ends say so rather than pick a hash a peer may not.
#[test]
fn tls_server_end_point_is_refused_for_an_ed25519_signature() {
    let dir = TempDir::new("end-point-ed25519");
    let key = dir.join("ed25519.key");
    let cert = dir.join("ed25519.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ed25519",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
    ]);
    let mut ours = OurServer::start(server_config(&cert, &key, SslProtocol::TlsV1_3));
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .peer_verify_mode(PeerVerifyMode::VerifyNone)
        .build()
        .unwrap();
    let (id, probe) = client_socket(&mut ours.reactor, config, false);
    let port = ours.port;
    ours.reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    let accepted = ours.accepted.clone();
    run_until(&mut ours.reactor, TIMEOUT, "both handshakes", |r| {
        probe.borrow().handshake_done()
            && accepted
                .get()
                .and_then(|s| r.socket(s))
                .is_some_and(|s| s.is_encrypted())
    });
    let server_side = ours.accepted.get().unwrap();
    for socket in [id, server_side] {
        let socket = ours.reactor.socket(socket).unwrap();
        match socket.channel_binding(ChannelBinding::TlsServerEndPoint) {
            Err(Error::InvalidState(why)) => assert!(why.contains("EdDSA"), "{why}"),
            other => panic!("{other:?}"),
        }
        // tls-exporter does not depend on the certificate.
        assert!(socket.channel_binding(ChannelBinding::TlsExporter).is_ok());
    }
}

// ---------------------------------------------------------------------------
// Only once encrypted
// ---------------------------------------------------------------------------

/// Nothing is exported before the peer is accepted: not before
/// connecting, not while the handshake waits on certificate problems in
/// the `ssl_errors` slot (TLS 1.3 has derived its exporter secret by
/// then), not after the connection ended.
#[test]
fn nothing_is_exported_unless_the_socket_is_encrypted() {
    let server = exporting_s_server(SslProtocol::TlsV1_3, LABEL, 32, &[]);
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(SslProtocol::TlsV1_3), false);
    let socket = reactor.socket(id).unwrap();
    let unavailable =
        |result: sslsocket::Result<Vec<u8>>| matches!(result, Err(Error::InvalidState(_)));
    assert!(unavailable(socket.export_keying_material(
        LABEL.as_bytes(),
        None,
        32
    )));
    assert!(unavailable(
        socket.channel_binding(ChannelBinding::TlsExporter)
    ));
    let seen_in_slot = Rc::new(Cell::new(None));
    let seen = seen_in_slot.clone();
    socket.ssl_errors().connect(move |s, _, _| {
        seen.set(Some([
            unavailable(s.export_keying_material(LABEL.as_bytes(), None, 32)),
            unavailable(s.channel_binding(ChannelBinding::TlsExporter)),
            unavailable(s.channel_binding(ChannelBinding::TlsServerEndPoint)),
        ]));
    });
    socket.set_peer_verify_name("not-this-server.example");
    socket
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the refusal", |_| {
        probe.borrow().disconnected()
    });
    assert_eq!(
        seen_in_slot.get(),
        Some([true; 3]),
        "{:?}",
        probe.borrow().events
    );
    assert!(!probe.borrow().handshake_done());
    let socket = reactor.socket(id).unwrap();
    assert!(unavailable(socket.export_keying_material(
        LABEL.as_bytes(),
        None,
        32
    )));

    // An encrypted connection that ended exports nothing either.
    let (mut reactor, id) = connect(client_config(SslProtocol::TlsV1_3), server.port);
    let socket = reactor.socket(id).unwrap();
    assert!(socket
        .export_keying_material(LABEL.as_bytes(), None, 32)
        .is_ok());
    socket.abort();
    assert!(unavailable(socket.export_keying_material(
        LABEL.as_bytes(),
        None,
        32
    )));
    assert!(unavailable(
        socket.channel_binding(ChannelBinding::TlsServerEndPoint)
    ));
}
