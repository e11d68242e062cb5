//! Reading through `std::io::Read` and `BufRead`: `WouldBlock` while more
//! may come, whole lines or nothing (a slot that drops its `String` after
//! `WouldBlock` loses no data), the last unterminated line at the end, and
//! the errors for lines that cannot complete or are not UTF-8. Our server
//! in the same reactor sends the text in timed pieces.

mod common;

use std::io::{BufRead, ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{client_config, run_until, server_config, TIMEOUT};
use sslsocket::{Reactor, SocketId, SslSocket};

/// A server that sends `pieces` 50 ms apart once encrypted, then closes;
/// returns an unconnected client for it and the port.
fn piecewise_server(reactor: &mut Reactor, pieces: &'static [&'static [u8]]) -> (SocketId, u16) {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = reactor.listen(any, server_config()).unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    server.new_connection().connect(move |_, cx, &id| {
        let mut next = 0;
        cx.start_repeating_timer(Duration::from_millis(50), move |cx, timer| {
            let Some(socket) = cx.socket(id) else {
                cx.cancel_timer(timer);
                return;
            };
            if !socket.is_encrypted() {
                return;
            }
            match pieces.get(next) {
                Some(piece) => drop(socket.write(piece).unwrap()),
                None => {
                    socket.disconnect_from_host();
                    cx.cancel_timer(timer);
                }
            }
            next += 1;
        });
    });
    (reactor.ssl_socket(client_config()), port)
}

/// What a reading slot saw.
#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    /// Bytes buffered each time `read_line` said `WouldBlock`.
    would_block: Vec<usize>,
    ended: bool,
}

/// Reads lines the careless way: a fresh `String` per call, dropped on
/// `WouldBlock`.
fn read_lines(socket: &mut SslSocket) {
    loop {
        let mut line = String::new();
        let result = socket.read_line(&mut line);
        let available = socket.bytes_available();
        let seen = socket.user_data::<Seen>().unwrap();
        match result {
            Ok(0) => return seen.ended = true,
            Ok(_) => seen.lines.push(line),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(line.is_empty(), "nothing is moved before WouldBlock");
                return seen.would_block.push(available);
            }
            Err(e) => panic!("read_line: {e}"),
        }
    }
}

#[test]
fn lines_arrive_whole_and_a_dropped_string_loses_nothing() {
    let mut reactor = Reactor::new().unwrap();
    let pieces: &[&[u8]] = &[b"first li", b"ne\nsecond line\nta", b"il"];
    let (id, port) = piecewise_server(&mut reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(Seen::default());
    socket.ready_read().connect(|s, _, _| read_lines(s));
    socket
        .read_channel_finished()
        .connect(|s, _, _| read_lines(s));
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the end of the stream", |r| {
        r.socket(id).unwrap().user_data::<Seen>().unwrap().ended
    });
    let seen = reactor.socket(id).unwrap().user_data::<Seen>().unwrap();
    // The unterminated last line comes at the end of the stream.
    assert_eq!(seen.lines, ["first line\n", "second line\n", "tail"]);
    // The partial first line waited in the socket.
    assert_eq!(seen.would_block.first(), Some(&b"first li".len()));
}

#[test]
fn lines_iterates_until_would_block_and_resumes() {
    let mut reactor = Reactor::new().unwrap();
    let pieces: &[&[u8]] = &[b"one\ntw", b"o\nthree\n"];
    let (id, port) = piecewise_server(&mut reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(Vec::<String>::new());
    socket.ready_read().connect(|s, _, _| {
        let lines: Vec<_> = s.lines().map_while(|line| line.ok()).collect();
        s.user_data::<Vec<String>>().unwrap().extend(lines);
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "three lines", |r| {
        r.socket(id)
            .unwrap()
            .user_data::<Vec<String>>()
            .unwrap()
            .len()
            == 3
    });
    let lines = reactor
        .socket(id)
        .unwrap()
        .user_data::<Vec<String>>()
        .unwrap();
    assert_eq!(lines, &["one", "two", "three"]);
}

#[test]
fn read_exact_takes_nothing_until_enough_is_there() {
    let mut reactor = Reactor::new().unwrap();
    let pieces: &[&[u8]] = &[b"12", b"345678"];
    let (id, port) = piecewise_server(&mut reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(Vec::<[u8; 4]>::new());
    socket.ready_read().connect(|s, _, _| {
        let mut word = [0u8; 4];
        while s.read_exact(&mut word).is_ok() {
            s.user_data::<Vec<[u8; 4]>>().unwrap().push(word);
        }
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "two words", |r| {
        r.socket(id)
            .unwrap()
            .user_data::<Vec<[u8; 4]>>()
            .unwrap()
            .len()
            == 2
    });
    let socket = reactor.socket(id).unwrap();
    assert_eq!(
        socket.user_data::<Vec<[u8; 4]>>().unwrap(),
        &[*b"1234", *b"5678"]
    );
    let mut word = [0u8; 4];
    let error = socket.read_exact(&mut word).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::WouldBlock);
}

/// A client whose read buffer (limited to 100 bytes) is full of 300 `x`
/// the server sent: it reads nothing more until the program takes some.
fn full_read_buffer(reactor: &mut Reactor) -> SocketId {
    let pieces: &[&[u8]] = &[&[b'x'; 300]];
    let (id, port) = piecewise_server(reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.set_read_buffer_size(100);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(reactor, TIMEOUT, "a full read buffer", |r| {
        r.socket(id).unwrap().bytes_available() >= 100
    });
    id
}

#[test]
fn a_line_longer_than_the_read_buffer_is_an_error_and_keeps_its_data() {
    let mut reactor = Reactor::new().unwrap();
    let id = full_read_buffer(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    let available = socket.bytes_available();
    let mut line = String::new();
    let error = socket.read_line(&mut line).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    assert_eq!(socket.bytes_available(), available);
    let mut start = [0u8; 10];
    assert_eq!(Read::read(socket, &mut start).unwrap(), 10);
    assert_eq!(start, [b'x'; 10]);
}

#[test]
fn a_line_that_is_not_utf8_is_taken_and_reported() {
    let mut reactor = Reactor::new().unwrap();
    let pieces: &[&[u8]] = &[b"bad \xff\ngood\n"];
    let (id, port) = piecewise_server(&mut reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "both lines", |r| {
        r.socket(id).unwrap().bytes_available() == 11
    });
    let socket = reactor.socket(id).unwrap();
    let mut line = String::from("kept: ");
    let error = socket.read_line(&mut line).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert_eq!(line, "kept: ");
    assert_eq!(socket.read_line(&mut line).unwrap(), 5);
    assert_eq!(line, "kept: good\n");
}

#[test]
fn read_exact_beyond_a_full_read_buffer_is_an_error_and_keeps_its_data() {
    // Before: WouldBlock for ever (the full buffer stops reading, so no
    // ready_read comes again).
    let mut reactor = Reactor::new().unwrap();
    let id = full_read_buffer(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    let available = socket.bytes_available();
    let mut wanted = vec![0u8; 1000];
    let error = socket.read_exact(&mut wanted).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    assert_eq!(socket.bytes_available(), available);
    let mut fits = [0u8; 50];
    socket.read_exact(&mut fits).unwrap();
    assert_eq!(fits, [b'x'; 50]);
}

#[test]
fn read_to_string_keeps_a_character_split_between_arrivals() {
    // "café" with its é cut in two, in two records 50 ms apart. The
    // standard read_to_string dropped the four bytes it had read.
    let mut reactor = Reactor::new().unwrap();
    let pieces: &[&[u8]] = &[b"caf\xc3", b"\xa9 ok"];
    let (id, port) = piecewise_server(&mut reactor, pieces);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(String::new());
    socket.ready_read().connect(|s, _, _| {
        let mut text = std::mem::take(s.user_data::<String>().unwrap());
        let result = s.read_to_string(&mut text);
        assert!(
            matches!(&result, Err(e) if e.kind() == ErrorKind::WouldBlock) || result.is_ok(),
            "{result:?}"
        );
        *s.user_data::<String>().unwrap() = text;
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the whole text", |r| {
        r.socket(id).unwrap().user_data::<String>().unwrap() == "café ok"
    });
}
