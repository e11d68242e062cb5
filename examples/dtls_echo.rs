//! dtls_echo: a DTLS echo server and a client talking to it, in one
//! reactor, over loopback: no arguments, no network.
//!
//! ```text
//! cargo run --example dtls_echo
//! ```
//!
//! The server listens on a free UDP port of 127.0.0.1 with the test
//! certificate from `ca/` and echoes every datagram it receives. The
//! client verifies the server against the test CA as `localhost`, and once
//! the handshake completed sends a few datagrams, the last as large as the
//! path MTU allows; a datagram one byte larger is refused, not cut. Each
//! echo arrives whole and is printed; then the client says goodbye
//! (`close_notify`), the server's socket ends, and the program exits 0. It
//! exits 1, with the reason on stderr, if anything fails, or after 10
//! seconds without an end.
//!
//! `RUST_LOG=debug` shows the cookie exchange, the handshake and the
//! datagrams' way.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sslsocket::{DtlsSocket, Error, Reactor, SslConfiguration};

const TEST_CA: &[u8] = include_bytes!("../ca/root-ca.pem");
const TEST_SERVER_CHAIN: &[u8] = include_bytes!("../ca/server.pem");
const TEST_SERVER_KEY: &[u8] = include_bytes!("../ca/server.key");

/// What the client sends before its largest datagram.
const MESSAGES: [&str; 3] = ["hello", "over DTLS", "in one reactor"];

/// How long the whole exchange may take.
const TIME_LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    env_logger::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dtls_echo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// How the run ended, kept in the client socket's user data.
#[derive(Default)]
struct Outcome {
    echoes: usize,
    failure: Option<String>,
}

fn run() -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    let address = serve(&mut reactor).map_err(|e| format!("cannot serve: {e}"))?;
    println!("server listening on udp {address}");

    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_data(TEST_CA)
        .build()
        .map_err(|e| e.to_string())?;
    let id = reactor.dtls_socket(client_config);
    let socket = reactor.dtls(id).expect("the new socket");
    socket.set_user_data(Outcome::default());
    socket.handshake_complete().connect(send_datagrams);
    socket.datagram_received().connect(|s, _, datagram| {
        println!(
            "client: echo of {} bytes: {}",
            datagram.len(),
            printable(datagram)
        );
        let outcome = s.user_data::<Outcome>().expect("the outcome");
        outcome.echoes += 1;
        if outcome.echoes == MESSAGES.len() + 1 {
            s.disconnect_from_peer();
        }
    });
    socket.error_occurred().connect(|s, _, e| {
        s.user_data::<Outcome>().expect("the outcome").failure = Some(e.to_string());
    });
    // A failed client ends the run; otherwise the server's side of the
    // goodbye does.
    socket.disconnected().connect(|s, cx, _| {
        if s.user_data::<Outcome>()
            .is_some_and(|o| o.failure.is_some())
        {
            cx.quit();
        }
    });
    socket
        .connect_to_peer(address, "localhost")
        .map_err(|e| e.to_string())?;

    reactor.start_timer(TIME_LIMIT, |cx, _| cx.quit());
    reactor.run().map_err(|e| e.to_string())?;

    let outcome = reactor
        .dtls(id)
        .and_then(|s| s.user_data::<Outcome>().map(std::mem::take))
        .unwrap_or_default();
    if let Some(failure) = outcome.failure {
        return Err(failure);
    }
    if outcome.echoes != MESSAGES.len() + 1 {
        return Err(format!(
            "{} of {} echoes came back",
            outcome.echoes,
            MESSAGES.len() + 1
        ));
    }
    println!("done: {} datagrams echoed whole", outcome.echoes);
    Ok(())
}

/// Starts the echo server on a free port of 127.0.0.1; returns its address.
fn serve(reactor: &mut Reactor) -> Result<SocketAddr, Error> {
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_pem(TEST_SERVER_CHAIN, TEST_SERVER_KEY, None)
        .build()?;
    let id = reactor.dtls_listen("127.0.0.1:0".parse().expect("an address"), config)?;
    let server = reactor.dtls_server(id).expect("the new server");
    server.new_connection().connect(|_, cx, &peer| {
        let socket = cx.dtls(peer).expect("the admitted socket");
        println!(
            "server: admitted {:?} (its cookie checked out)",
            socket.peer_address()
        );
        socket.datagram_received().connect(|s, _, datagram| {
            if let Err(e) = s.write_datagram(datagram) {
                eprintln!("server: cannot echo: {e}");
            }
        });
        socket
            .error_occurred()
            .connect(|_, _, e| eprintln!("server: {e}"));
        socket.disconnected().connect(|_, cx, _| {
            println!("server: the client said goodbye");
            cx.quit();
        });
    });
    Ok(server.local_address())
}

/// Once encrypted: the messages, then one datagram as large as the path
/// MTU allows, after showing that one byte more is refused.
fn send_datagrams(socket: &mut DtlsSocket, _: &mut sslsocket::Context, _: &()) {
    let protocol = socket.protocol().map(|p| p.to_string());
    println!(
        "client: encrypted with {}, {}",
        protocol.unwrap_or_default(),
        socket.session_cipher().unwrap_or_default()
    );
    let limit = socket.data_mtu().expect("a session");
    for message in MESSAGES {
        socket
            .write_datagram(message.as_bytes())
            .expect("a small datagram");
    }
    match socket.write_datagram(&vec![b'x'; limit + 1]) {
        Err(Error::DatagramTooLarge { size, limit }) => {
            println!("client: {size} bytes refused whole (the path MTU leaves {limit})")
        }
        other => println!("client: {limit} + 1 bytes: unexpected {other:?}"),
    }
    socket
        .write_datagram(&vec![b'x'; limit])
        .expect("a datagram that fits");
}

/// A datagram as text, long ones shortened.
fn printable(datagram: &[u8]) -> String {
    let text = String::from_utf8_lossy(datagram);
    match text.chars().count() > 40 {
        true => format!("{}…", text.chars().take(20).collect::<String>()),
        false => text.into_owned(),
    }
}
