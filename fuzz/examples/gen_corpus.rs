//! Writes the seed corpora under `fuzz/corpus/<target>/`: real handshakes
//! recorded from a client and a server engine talking to each other, test
//! PKI files, and proxy replies, in each target's input format (see
//! `src/lib.rs`).
//!
//! ```sh
//! cd fuzz && cargo run --example gen_corpus
//! ```
//!
//! Handshakes are random (key shares, nonces), so every run writes
//! different bytes; the seeds only need to be realistic.

use std::fs;
use std::path::{Path, PathBuf};

use sslsocket_fuzz::{engine, op, Flags, RecordSplitter, Role};

fn corpus_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    dir
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let path = corpus_dir(target).join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("{:>6} bytes  {}", bytes.len(), path.display());
}

fn ca(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ca")
        .join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The records each side sent in one session: a handshake, one request and
/// one answer, then `close_notify` both ways.
struct Session {
    client_to_server: Vec<Vec<u8>>,
    server_to_client: Vec<Vec<u8>>,
}

fn record_session(flags: Flags) -> Session {
    let mut client = engine(Role::Client, flags);
    let mut server = engine(Role::Server, flags);
    let (mut up, mut down) = (RecordSplitter::default(), RecordSplitter::default());
    let mut session = Session {
        client_to_server: Vec::new(),
        server_to_client: Vec::new(),
    };
    let mut pump = |client: &mut sslsocket::fuzzing::FuzzEngine,
                    server: &mut sslsocket::fuzzing::FuzzEngine| loop {
        let c = client.take_outgoing();
        let s = server.take_outgoing();
        if c.is_empty() && s.is_empty() {
            break;
        }
        session.client_to_server.extend(up.push(&c));
        session.server_to_client.extend(down.push(&s));
        server.receive(&c, false).expect("genuine server");
        client.receive(&s, false).expect("genuine client");
    };
    pump(&mut client, &mut server);
    assert!(client.is_established() && server.is_established());
    client
        .send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    pump(&mut client, &mut server);
    server
        .send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    pump(&mut client, &mut server);
    client.close();
    server.close();
    pump(&mut client, &mut server);
    session
}

fn flags(versions: usize, client_certificates: bool) -> Flags {
    Flags {
        versions,
        client_certificates,
        accept_problems: false,
        stop_on_error: false,
    }
}

const VARIANTS: [(&str, usize, bool); 4] = [
    ("tls13", 2, false),
    ("tls12", 1, false),
    ("tls13-client-cert", 0, true),
    ("tls12-client-cert", 1, true),
];

fn engine_seeds() {
    for (name, versions, certs) in VARIANTS {
        let flags = flags(versions, certs);
        let session = record_session(flags);
        for (target, records) in [
            ("engine_client", &session.server_to_client),
            ("engine_server", &session.client_to_server),
        ] {
            // Record by record, then the end of the stream.
            let mut seed = vec![flags.to_byte()];
            for record in records {
                seed.extend(op::receive(record));
            }
            seed.push(op::PEER_EOF);
            write(target, &format!("{name}-records"), &seed);
        }
    }
    // The whole server flight in one chunk, then a send and a close.
    let session = record_session(flags(0, false));
    let mut seed = vec![flags(0, false).to_byte()];
    seed.extend(op::receive(&session.server_to_client.concat()));
    seed.extend(op::send(b"early"));
    seed.push(op::CLOSE);
    write("engine_client", "tls13-one-chunk", &seed);
    // A TLS 1.2 server flight as framed handshake messages (op 3): the
    // fuzzer mutates message bodies without breaking the framing.
    let session = record_session(flags(1, false));
    let mut seed = vec![flags(1, false).to_byte() | 8];
    for record in session.server_to_client.iter().take(4) {
        if record[0] == 22 && record.len() > 9 {
            seed.extend(op::handshake(record[5], &record[9..]));
        }
    }
    write("engine_client", "tls12-framed-messages", &seed);
    let mut seed = vec![flags(1, true).to_byte()];
    let session = record_session(flags(1, true));
    for record in session.client_to_server.iter().take(4) {
        if record[0] == 22 && record.len() > 9 {
            seed.extend(op::handshake(record[5], &record[9..]));
        }
    }
    write("engine_server", "tls12-framed-messages", &seed);
    // A fatal alert, and garbage.
    for target in ["engine_client", "engine_server"] {
        let mut seed = vec![0];
        seed.extend(op::framed(21, &[2, 40]));
        write(target, "alert", &seed);
        let mut seed = vec![0];
        seed.extend(op::receive(b"GET / HTTP/1.1\r\n\r\n"));
        seed.push(op::PEER_EOF);
        write(target, "http", &seed);
    }
}

fn stage_seeds() {
    for target in ["engine_client_stages", "engine_server_stages"] {
        for (name, versions, certs) in VARIANTS {
            let flags = flags(versions, certs).to_byte();
            // Right after the peer's first flight: a forged record, then the
            // real stream goes on.
            let mut seed = vec![flags, 1];
            seed.extend(op::framed(22, &[20, 0, 0, 4, 1, 2, 3, 4]));
            seed.extend([op::GENUINE; 4]);
            write(target, &format!("{name}-stage1"), &seed);
            // After the handshake and two application records: a forged
            // application record, a send, and the end.
            let mut seed = vec![flags, 12];
            seed.extend(op::framed(23, &[0x55; 40]));
            seed.extend(op::send(b"hello"));
            seed.extend([op::GENUINE, op::CLOSE, op::PEER_EOF]);
            write(target, &format!("{name}-stage12"), &seed);
        }
        // After the peer's first record, the rest of a TLS 1.2 flight from
        // another session as framed handshake messages (op 3): message
        // bodies for the fuzzer to mutate, in plaintext.
        let flags = flags(1, true);
        let session = record_session(flags);
        let records = match target {
            "engine_client_stages" => &session.server_to_client,
            _ => &session.client_to_server,
        };
        let mut seed = vec![flags.to_byte(), 1];
        for record in records.iter().skip(1).take(4) {
            match record[0] {
                22 if record.len() > 9 => seed.extend(op::handshake(record[5], &record[9..])),
                content_type => seed.extend(op::framed(content_type, &record[5..])),
            }
        }
        write(target, "tls12-client-cert-stage1-messages", &seed);
        // The whole handshake through op 7 only.
        let mut seed = vec![0, 0];
        seed.extend([op::GENUINE; 12]);
        write(target, "genuine-only", &seed);
    }
}

fn proxy_seeds() {
    let http = |name: &str, setup: u8, reply: &[u8]| {
        let mut seed = vec![setup];
        for chunk in reply.chunks(200) {
            seed.push(chunk.len() as u8);
            seed.extend_from_slice(chunk);
        }
        write("proxy_negotiation", name, &seed);
    };
    http(
        "http-200",
        0,
        b"HTTP/1.1 200 Connection established\r\nVia: 1.1 proxy\r\n\r\n",
    );
    http(
        "http-407",
        4,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n",
    );
    http("http-403-ipv6", 16, b"HTTP/1.0 403 Forbidden\r\n\r\n");
    let socks: [(&str, &[u8]); 6] = [
        (
            "socks5-ipv4",
            &[1, 2, 5, 0, 10, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80],
        ),
        (
            "socks5h-auth-name",
            &[6, 2, 5, 2, 2, 1, 0, 7, 5, 0, 0, 3, 1, b'x', 0, 80],
        ),
        (
            "socks5-ipv6",
            &[
                1, 2, 5, 0, 22, 5, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                1, 187,
            ],
        ),
        ("socks5-refused", &[9, 2, 5, 0, 4, 5, 5, 0, 1]),
        ("socks5-no-method", &[1, 2, 5, 0xff]),
        ("socks5h-auth-failed", &[6, 2, 5, 2, 2, 1, 1]),
    ];
    for (name, seed) in socks {
        write("proxy_negotiation", name, seed);
    }
}

fn loader_seeds() {
    let seed = |name: &str, host: u8, chain: &[u8], key: &[u8]| {
        let split = u16::try_from(chain.len()).expect("small files");
        let mut bytes = vec![host];
        bytes.extend(split.to_be_bytes());
        bytes.extend_from_slice(chain);
        bytes.extend_from_slice(key);
        write("certificate_loaders", name, &bytes);
    };
    seed(
        "server-chain-and-key",
        0,
        &ca("server.pem"),
        &ca("server.key"),
    );
    seed(
        "rsa-chain-and-key",
        1,
        &ca("server-rsa.pem"),
        &ca("server-rsa.key"),
    );
    seed(
        "client-chain-and-key",
        2,
        &ca("client.pem"),
        &ca("client.key"),
    );
    seed("root-der", 0, &ca("root-ca.der"), b"");
    seed("leaf-der", 0, &ca("server-leaf.der"), b"");
    seed("key-der", 0, b"", &ca("server.key.der"));
    seed("key-encrypted", 0, b"", &ca("server-encrypted.key"));
    seed(
        "root-intermediate-crl",
        3,
        &ca("broken/root-and-intermediate-with-crl.pem"),
        b"",
    );
    seed("sni-chain", 3, &ca("server-sni.pem"), &ca("server-sni.key"));
}

fn main() {
    engine_seeds();
    stage_seeds();
    proxy_seeds();
    loader_seeds();
}
