//! The TLS engine alone, in memory: a client and a server engine joined by
//! byte vectors, no sockets. Regressions in the engine or the GnuTLS layer
//! show here without network noise.
//!
//! `cargo bench --bench engine` (at the root, or `-p sslsocket-benches`)

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sslsocket::fuzzing::FuzzEngine;
use sslsocket::SslConfiguration;

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ca/");

/// A client and a server configuration; `reuse` lets the client reuse its
/// verification of the server's chain from one handshake to the next.
fn configurations(reuse: bool) -> (SslConfiguration, SslConfiguration) {
    let client = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(format!("{CA}root-ca.pem"))
        .session_resumption(false)
        .cache_verified_chains(reuse)
        .build()
        .expect("client configuration");
    let server = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(format!("{CA}server.pem"), format!("{CA}server.key"), None)
        .build()
        .expect("server configuration");
    (client, server)
}

/// Moves ciphertext between the two engines until neither has any to send.
fn pump(client: &mut FuzzEngine, server: &mut FuzzEngine) {
    loop {
        let to_server = client.take_outgoing();
        let to_client = server.take_outgoing();
        if to_server.is_empty() && to_client.is_empty() {
            return;
        }
        server.receive(&to_server, false).expect("server receives");
        client.receive(&to_client, false).expect("client receives");
    }
}

/// A connected pair.
fn handshake(client: &SslConfiguration, server: &SslConfiguration) -> (FuzzEngine, FuzzEngine) {
    let mut c = FuzzEngine::client(client, "localhost").expect("client engine");
    let mut s = FuzzEngine::server(server).expect("server engine");
    c.receive(&[], false).expect("client hello");
    pump(&mut c, &mut s);
    assert!(c.is_established() && s.is_established());
    (c, s)
}

fn bench_handshake(criterion: &mut Criterion) {
    let (client, server) = configurations(false);
    criterion.bench_function(
        "engine/full handshake (TLS 1.3, ECDSA P-256, chain verified)",
        |b| {
            b.iter(|| handshake(&client, &server));
        },
    );
    let (client, server) = configurations(true);
    criterion.bench_function(
        "engine/full handshake (TLS 1.3, ECDSA P-256, chain verification reused)",
        |b| {
            b.iter(|| handshake(&client, &server));
        },
    );
}

fn bench_transfer(criterion: &mut Criterion) {
    let (client, server) = configurations(true);
    let payload = vec![0x5a_u8; 1 << 20];
    let mut group = criterion.benchmark_group("engine");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("1 MiB client to server", |b| {
        b.iter_batched(
            || handshake(&client, &server),
            |(mut c, mut s)| {
                // Streamed in 64 KiB steps, as a socket would move it.
                let mut received = 0;
                for chunk in payload.chunks(64 * 1024) {
                    c.send(chunk).expect("send");
                    s.receive(&c.take_outgoing(), false).expect("receive");
                    received += s.take_plaintext().len();
                }
                assert_eq!(received, payload.len());
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_handshake, bench_transfer);
criterion_main!(benches);
