//! embed: sslsocket inside a program that already runs its own `mio::Poll`.
//!
//! ```text
//! cargo run --example embed
//! ```
//!
//! The program owns the poll and a plain TCP listener of its own (token 1).
//! It embeds a [`Reactor`] with [`Reactor::embedded`]: sslsocket registers
//! its sockets on the program's poll with tokens whose top bit is set, and
//! the program hands those events over with [`Reactor::process_event`],
//! runs [`Reactor::process_pending`] after each poll, and never sleeps past
//! [`Reactor::next_timeout`].
//!
//! When a line arrives on the program's own listener, it starts a TLS
//! server and a client in the reactor and fetches a greeting over TLS; then
//! it stops.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sslsocket::mio::net::TcpListener;
use sslsocket::mio::{Events, Interest, Poll, Token};
use sslsocket::{Context, Reactor, SslConfiguration};

/// The program's own token (below 2^63, as the reactor requires).
const LISTENER: Token = Token(1);

const CA: &[u8] = include_bytes!("../ca/root-ca.pem");
const SERVER_CHAIN: &[u8] = include_bytes!("../ca/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../ca/server.key");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut reactor = Reactor::embedded(poll.registry())?;

    // Something outside the program pokes its plain listener.
    let address = listener.local_addr()?;
    std::thread::spawn(move || {
        let mut peer = std::net::TcpStream::connect(address).expect("connect to the listener");
        peer.write_all(b"fetch\n").expect("write to the listener");
    });

    let mut events = Events::with_capacity(256);
    while !reactor.take_quit() {
        poll.poll(
            &mut events,
            reactor.next_timeout().or(Some(Duration::from_secs(10))),
        )?;
        for event in &events {
            if Reactor::owns_token(event.token()) {
                reactor.process_event(event);
            } else if event.token() == LISTENER {
                if let Some(line) = accept_line(&listener)? {
                    println!("the program's own listener got {line:?}: fetching over TLS");
                    start_tls_fetch(reactor.context())?;
                }
            }
        }
        reactor.process_pending();
    }
    Ok(())
}

/// The program's own, plain, event handling: one line from one peer.
fn accept_line(listener: &TcpListener) -> io::Result<Option<String>> {
    let (mut stream, _) = match listener.accept() {
        Ok(accepted) => accepted,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e),
    };
    stream.set_nodelay(true)?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // A tiny blocking-style read is fine for a demo: the peer sends at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !line.ends_with(b"\n") && std::time::Instant::now() < deadline {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(String::from_utf8_lossy(&line).trim().to_owned()))
}

/// A TLS server and a client, both in the embedded reactor.
fn start_tls_fetch(cx: &mut Context) -> Result<(), sslsocket::Error> {
    let server_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_pem(SERVER_CHAIN, SERVER_KEY, None)
        .build()?;
    let server = cx.listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_config)?;
    let server = cx.server(server).expect("just created");
    let port = server.local_address().port();
    server.new_connection().connect(|_, cx, &id| {
        if let Some(socket) = cx.socket(id) {
            socket.handshake_complete().connect(|s, _, _| {
                let _ = s.write(b"hello from a TLS server in an embedded reactor\n");
                s.disconnect_from_host();
            });
        }
    });

    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_data(CA)
        .build()?;
    let id = cx.ssl_socket(client_config);
    let client = cx.socket(id).expect("just created");
    client
        .ready_read()
        .connect(|s, _, _| print!("{}", String::from_utf8_lossy(&s.read_all())));
    client.disconnected().connect(|_, cx, _| cx.quit());
    client.error_occurred().connect(|_, cx, e| {
        eprintln!("embed: {e}");
        cx.quit();
    });
    client.connect_to_host_encrypted("localhost", port)
}
