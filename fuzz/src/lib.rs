//! What the fuzz targets (and the seed generator, `examples/gen_corpus.rs`)
//! share: the test PKI compiled in, configurations built once, a cursor over
//! the fuzz input, and [`Harness`], which drives a [`FuzzEngine`] from a
//! small operation language read from the input, optionally behind a prefix
//! of a real handshake with a genuine peer engine.
//!
//! # Input format of the engine targets
//!
//! ```text
//! engine_client / engine_server:               FLAGS OP*
//! engine_client_stages / engine_server_stages: FLAGS STAGE OP*
//! ```
//!
//! `FLAGS`: bits 0–1 protocol range (0 and 3: TLS 1.2–1.3, 1: TLS 1.2 only,
//! 2: TLS 1.3 only); bit 2 client certificates (a client that has one, a
//! server that requires one); bit 3 accept certificate problems; bit 4 stop
//! at the first error instead of going on feeding.
//!
//! `STAGE`: how many TLS records of a genuine peer's stream the target gets
//! before the fuzz operations start (modulo 16). When the handshake is over
//! and records are still due, the genuine peer sends application data
//! records: 0 stops before the first record, 1 after the ClientHello or
//! ServerHello, a large number after the handshake and some application
//! records.
//!
//! `OP` (the low three bits of a byte select it):
//!
//! | op | arguments | effect |
//! |---|---|---|
//! | 0, 1 | `LEN:u16be BYTES` | `receive(BYTES)` |
//! | 2 | `LEN:u16be BYTES` | `BYTES` wrapped in a record header (content type 20–23 from bits 3–4, version 3.1 or 3.3 from bit 5), received |
//! | 3 | `TYPE:u8 LEN:u16be BYTES` | `BYTES` wrapped in a handshake message header of `TYPE` and a handshake record, received |
//! | 4 | `LEN:u8 BYTES` | `send(BYTES)`; with bit 3 set, also 20 000 more bytes (several records) |
//! | 5 | | `peer_eof()` |
//! | 6 | | `close()` |
//! | 7 | | the genuine peer's next record (without a peer: the next input byte) |
//!
//! Missing argument bytes count as absent (short reads), never as an error.
//!
//! # Oracles
//!
//! Besides "no panic, no crash, no hang": without a genuine peer the target
//! must never complete a handshake (the fuzzer cannot forge the peer's
//! signature or Finished MAC), and with one, the plaintext either side
//! delivers must be a prefix of what the other side really sent.
//!
//! Also: the end of the stream during the handshake must fail it at once
//! (`peer_eof` returns an error). This oracle found the engine stalling on a
//! stream that ended inside a record (fixed; the reproducers stay in
//! `fuzz/artifacts/` as regression inputs).

use std::collections::VecDeque;
use std::sync::OnceLock;

use sslsocket::fuzzing::FuzzEngine;
use sslsocket::{PeerVerifyMode, SslConfiguration, SslProtocol};

/// The test PKI (`../ca`), compiled into the targets.
pub mod ca {
    /// The root CA every configuration trusts.
    pub const ROOT_CA_PEM: &[u8] = include_bytes!("../../ca/root-ca.pem");
    /// The server chain (leaf for `localhost` + intermediate).
    pub const SERVER_PEM: &[u8] = include_bytes!("../../ca/server.pem");
    /// The server leaf's key.
    pub const SERVER_KEY: &[u8] = include_bytes!("../../ca/server.key");
    /// The client chain.
    pub const CLIENT_PEM: &[u8] = include_bytes!("../../ca/client.pem");
    /// The client leaf's key.
    pub const CLIENT_KEY: &[u8] = include_bytes!("../../ca/client.key");
}

/// The name the client engines connect to and verify.
pub const HOST: &str = "localhost";

/// Which side of the TLS connection the fuzzed engine plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client (the input plays the server).
    Client,
    /// A server (the input plays the client).
    Server,
}

impl Role {
    fn other(self) -> Self {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// The configuration bits of the `FLAGS` byte.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// 0: TLS 1.2–1.3, 1: TLS 1.2 only, 2: TLS 1.3 only.
    pub versions: usize,
    /// Client certificates: the client has one, the server requires one.
    pub client_certificates: bool,
    /// Resolve a pause for certificate problems by accepting the peer.
    pub accept_problems: bool,
    /// Stop feeding at the first error.
    pub stop_on_error: bool,
}

impl Flags {
    /// Decodes a `FLAGS` byte.
    pub fn from_byte(byte: u8) -> Self {
        Self {
            versions: usize::from(byte & 3) % 3,
            client_certificates: byte & 4 != 0,
            accept_problems: byte & 8 != 0,
            stop_on_error: byte & 16 != 0,
        }
    }

    /// Encodes these flags as a `FLAGS` byte.
    pub fn to_byte(self) -> u8 {
        self.versions as u8
            | u8::from(self.client_certificates) << 2
            | u8::from(self.accept_problems) << 3
            | u8::from(self.stop_on_error) << 4
    }
}

const VERSIONS: [(SslProtocol, SslProtocol); 3] = [
    (SslProtocol::TlsV1_2, SslProtocol::TlsV1_3),
    (SslProtocol::TlsV1_2, SslProtocol::TlsV1_2),
    (SslProtocol::TlsV1_3, SslProtocol::TlsV1_3),
];

/// The configuration of a `role` engine, built once per process for each
/// combination of protocol range and client certificates.
pub fn config(role: Role, flags: Flags) -> &'static SslConfiguration {
    static CLIENT: OnceLock<Vec<SslConfiguration>> = OnceLock::new();
    static SERVER: OnceLock<Vec<SslConfiguration>> = OnceLock::new();
    let cell = match role {
        Role::Client => &CLIENT,
        Role::Server => &SERVER,
    };
    let all = cell.get_or_init(|| {
        let mut all = Vec::new();
        for client_certificates in [false, true] {
            for (low, high) in VERSIONS {
                all.push(build_config(role, low, high, client_certificates));
            }
        }
        all
    });
    &all[usize::from(flags.client_certificates) * VERSIONS.len() + flags.versions]
}

fn build_config(
    role: Role,
    low: SslProtocol,
    high: SslProtocol,
    client_certificates: bool,
) -> SslConfiguration {
    let builder = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_data(ca::ROOT_CA_PEM)
        .protocols(low, high);
    let builder = match (role, client_certificates) {
        (Role::Client, false) => builder,
        (Role::Client, true) => {
            builder.add_local_certificate_pem(ca::CLIENT_PEM, ca::CLIENT_KEY, None)
        }
        (Role::Server, require) => {
            let builder = builder.add_local_certificate_pem(ca::SERVER_PEM, ca::SERVER_KEY, None);
            match require {
                true => builder.peer_verify_mode(PeerVerifyMode::VerifyPeer),
                false => builder,
            }
        }
    };
    builder.build().expect("the fuzz targets' configuration")
}

/// A new engine of `role`; a client has already queued its ClientHello.
pub fn engine(role: Role, flags: Flags) -> FuzzEngine {
    let config = config(role, flags);
    let mut engine = match role {
        Role::Client => FuzzEngine::client(config, HOST),
        Role::Server => FuzzEngine::server(config),
    }
    .expect("a fresh engine");
    if role == Role::Client {
        // Nothing received yet: this only starts the handshake.
        let _ = engine.receive(&[], flags.accept_problems);
    }
    engine
}

/// A cursor over the fuzz input; reads past the end come back short.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from the start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    /// The next two bytes, big-endian (a missing byte reads as 0).
    pub fn u16(&mut self) -> u16 {
        let high = self.byte().unwrap_or(0);
        let low = self.byte().unwrap_or(0);
        u16::from_be_bytes([high, low])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A TLS record with this content type and version around `payload`
/// (the length field saturates at 65535).
pub fn record(content_type: u8, version: [u8; 2], payload: &[u8]) -> Vec<u8> {
    let length = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut out = vec![content_type, version[0], version[1]];
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A handshake message of `kind` around `body`.
pub fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX).min(0xff_ffff);
    let mut out = vec![kind];
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

/// Splits a byte stream into TLS records (5-byte header + its length).
#[derive(Default)]
pub struct RecordSplitter {
    buffer: Vec<u8>,
}

impl RecordSplitter {
    /// Appends stream bytes and returns the records now complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.buffer.extend_from_slice(bytes);
        let mut records = Vec::new();
        while self.buffer.len() >= 5 {
            let length = 5 + usize::from(u16::from_be_bytes([self.buffer[3], self.buffer[4]]));
            if self.buffer.len() < length {
                break;
            }
            records.push(self.buffer.drain(..length).collect());
        }
        records
    }
}

/// Operation encoders, for seeds.
pub mod op {
    /// `receive(bytes)` (op 0).
    pub fn receive(bytes: &[u8]) -> Vec<u8> {
        let length = u16::try_from(bytes.len()).expect("a chunk of at most 65535 bytes");
        let mut out = vec![0];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(bytes);
        out
    }

    /// A record of `content_type` (20–23) around `payload`, version 3.3 (op 2).
    pub fn framed(content_type: u8, payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len()).expect("a payload of at most 65535 bytes");
        let mut out = vec![2 | (content_type.wrapping_sub(20) & 3) << 3];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A handshake message of `kind` in a record (op 3).
    pub fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len()).expect("a body of at most 65535 bytes");
        let mut out = vec![3, kind];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// `send(bytes)` (op 4).
    pub fn send(bytes: &[u8]) -> Vec<u8> {
        let length = u8::try_from(bytes.len()).expect("at most 255 bytes");
        let mut out = vec![4, length];
        out.extend_from_slice(bytes);
        out
    }

    /// `peer_eof()` (op 5).
    pub const PEER_EOF: u8 = 5;
    /// `close()` (op 6).
    pub const CLOSE: u8 = 6;
    /// The genuine peer's next record (op 7).
    pub const GENUINE: u8 = 7;
}

/// The most operations one input runs.
const MAX_OPS: usize = 4096;

/// Records a genuine peer sends once its handshake is over, when a stage
/// asks for more records than the handshake has.
fn genuine_application_data(index: usize) -> Vec<u8> {
    format!("genuine application data #{index}\n").into_bytes()
}

/// A fuzzed engine, the genuine peer it may talk to, and what each sent.
pub struct Harness {
    /// The engine under test.
    pub target: FuzzEngine,
    /// A real peer whose records the target can be given (op 7, stages).
    pub peer: Option<FuzzEngine>,
    flags: Flags,
    /// The genuine peer's records, not yet given to the target.
    queued: VecDeque<Vec<u8>>,
    splitter: RecordSplitter,
    /// Plaintext the peer sent, and what the target delivered of it.
    peer_sent: Vec<u8>,
    target_received: Vec<u8>,
    /// Plaintext the target sent, and what the peer delivered of it.
    target_sent: Vec<u8>,
    peer_received: Vec<u8>,
    peer_failed: bool,
    /// The target's receiving side failed (its engine is finished).
    target_failed: bool,
    application_records: usize,
}

impl Harness {
    /// A target of `role` configured by `flags`, with a genuine peer when
    /// `genuine` is set.
    pub fn new(role: Role, flags: Flags, genuine: bool) -> Self {
        let peer = genuine.then(|| engine(role.other(), flags));
        let mut harness = Self {
            target: engine(role, flags),
            peer,
            flags,
            queued: VecDeque::new(),
            splitter: RecordSplitter::default(),
            peer_sent: Vec::new(),
            target_received: Vec::new(),
            target_sent: Vec::new(),
            peer_received: Vec::new(),
            peer_failed: false,
            target_failed: false,
            application_records: 0,
        };
        harness.exchange();
        harness
    }

    /// Gives the peer what the target sent (until neither has anything
    /// new), queues the peer's records and checks the plaintext oracles.
    pub fn exchange(&mut self) {
        loop {
            let out = self.target.take_outgoing();
            let mut moved = false;
            if let Some(peer) = &mut self.peer {
                if !out.is_empty() && !self.peer_failed {
                    self.peer_failed = peer.receive(&out, true).is_err();
                }
                self.peer_received.extend(peer.take_plaintext());
                let back = peer.take_outgoing();
                moved = !back.is_empty();
                self.queued.extend(self.splitter.push(&back));
            }
            self.target_received.extend(self.target.take_plaintext());
            if !moved {
                break;
            }
        }
        self.check();
    }

    fn check(&self) {
        assert!(
            self.peer_sent.starts_with(&self.target_received),
            "the target delivered plaintext its peer never sent"
        );
        assert!(
            self.target_sent.starts_with(&self.peer_received),
            "the genuine peer delivered plaintext the target never sent"
        );
        if self.peer.is_none() {
            assert!(
                !self.target.is_established(),
                "the handshake completed without a genuine peer"
            );
        }
    }

    /// Gives the target the genuine peer's next record; when none is queued
    /// and both ends are established, the peer first sends application
    /// data. Returns `None` when there is nothing to give.
    pub fn deliver_genuine(&mut self) -> Option<Result<(), sslsocket::Error>> {
        if self.queued.is_empty() && !self.peer_failed && self.target.is_established() {
            let peer = self.peer.as_mut()?;
            if peer.is_established() {
                let data = genuine_application_data(self.application_records);
                self.application_records += 1;
                if peer.send(&data).is_ok() {
                    self.peer_sent.extend_from_slice(&data);
                }
                let back = peer.take_outgoing();
                self.queued.extend(self.splitter.push(&back));
            }
        }
        let record = self.queued.pop_front()?;
        let result = self.target.receive(&record, self.flags.accept_problems);
        self.target_failed |= result.is_err();
        self.exchange();
        Some(result)
    }

    /// Gives the target `stage` of the genuine peer's records (fewer if the
    /// stream stops or the target fails).
    pub fn run_stage(&mut self, stage: usize) {
        for _ in 0..stage {
            match self.deliver_genuine() {
                Some(Ok(())) => {}
                Some(Err(_)) | None => break,
            }
        }
    }

    /// Runs the operations of `input` (see the crate documentation).
    pub fn run_ops(&mut self, input: &mut Input<'_>) {
        let accept = self.flags.accept_problems;
        for _ in 0..MAX_OPS {
            let Some(op) = input.byte() else { break };
            let result = match op & 7 {
                0 | 1 => {
                    let n = usize::from(input.u16());
                    let result = self.target.receive(input.take(n), accept);
                    self.target_failed |= result.is_err();
                    result
                }
                2 => {
                    let content_type = 20 + (op >> 3 & 3);
                    let version = if op & 32 != 0 { [3, 1] } else { [3, 3] };
                    let n = usize::from(input.u16());
                    let bytes = record(content_type, version, input.take(n));
                    let result = self.target.receive(&bytes, accept);
                    self.target_failed |= result.is_err();
                    result
                }
                3 => {
                    let kind = input.byte().unwrap_or(0);
                    let n = usize::from(input.u16());
                    let message = handshake_message(kind, input.take(n));
                    let result = self.target.receive(&record(22, [3, 3], &message), accept);
                    self.target_failed |= result.is_err();
                    result
                }
                4 => {
                    let n = usize::from(input.byte().unwrap_or(0));
                    let mut data = input.take(n).to_vec();
                    if op & 8 != 0 {
                        data.extend((0..20_000u32).map(|i| i as u8));
                    }
                    let result = self.target.send(&data);
                    if result.is_ok() {
                        self.target_sent.extend_from_slice(&data);
                    }
                    result
                }
                5 => {
                    let result = self.target.peer_eof(accept);
                    assert!(
                        result.is_err() || self.target_failed || self.target.is_established(),
                        "the stream ended during the handshake, yet the engine still waits"
                    );
                    self.target_failed |= result.is_err();
                    result
                }
                6 => {
                    self.target.close();
                    Ok(())
                }
                _ => match self.peer {
                    Some(_) => self.deliver_genuine().unwrap_or(Ok(())),
                    None => {
                        let result = self.target.receive(input.take(1), accept);
                        self.target_failed |= result.is_err();
                        result
                    }
                },
            };
            self.exchange();
            if result.is_err() && self.flags.stop_on_error {
                break;
            }
        }
    }
}

/// The whole engine target: `FLAGS [STAGE] OP*`.
pub fn run_engine_target(role: Role, data: &[u8], stages: bool) {
    let mut input = Input::new(data);
    let flags = Flags::from_byte(input.byte().unwrap_or(0));
    let mut harness = Harness::new(role, flags, stages);
    if stages {
        let stage = usize::from(input.byte().unwrap_or(0) % 16);
        harness.run_stage(stage);
    }
    harness.run_ops(&mut input);
}

/// Standard base64 (for wrapping fuzz bytes in PEM armour).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4 + data.len() / 48);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 16 == 0 {
            out.push('\n');
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * j) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `der` as a PEM block labelled `label`.
pub fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        base64(der)
    )
    .into_bytes()
}
