//! Large and fragmented transfers, checked byte for byte against a
//! deterministic pattern (no copy of the data is kept).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use common::*;
use sslsocket::{Reactor, SslSocket};

const BIG: u64 = 64 << 20;
const WWW_HEAD: &[u8] = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";
const MARKER: &[u8] = b"<<<sslsocket upload starts here>>>";

fn www_server(dir: &TempDir) -> OpensslServer {
    let mut args = server_cert_args();
    args.push("-WWW".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s_server(&args, Some(dir.path()), None, false)
}

/// Downloads `/data.bin` (`len` pattern bytes) from s_server -WWW through
/// `connect_port` (the server itself or a relay in front of it).
fn download(connect_port: u16, len: u64) {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let checker = Rc::new(RefCell::new(MarkedPatternChecker::new(b"\r\n\r\n", len)));
    let head = Rc::new(RefCell::new(Vec::new()));
    let socket = reactor.socket(id).unwrap();
    socket
        .write(b"GET /data.bin HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (c, h) = (checker.clone(), head.clone());
    socket.ready_read().connect(move |s, _, _| {
        let data = s.read_all();
        let mut h = h.borrow_mut();
        if h.len() < WWW_HEAD.len() {
            let n = (WWW_HEAD.len() - h.len()).min(data.len());
            h.extend_from_slice(&data[..n]);
        }
        c.borrow_mut().feed(&data);
    });
    socket
        .connect_to_host_encrypted("localhost", connect_port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT * 4, "the download to end", |_| {
        probe.borrow().disconnected()
    });
    let p = probe.borrow();
    let c = checker.borrow();
    assert_eq!(head.borrow().as_slice(), WWW_HEAD);
    assert_eq!(c.checker.first_mismatch, None, "data differs");
    assert_eq!(c.checker.received, len, "bytes received");
    assert!(c.after.is_empty(), "{} bytes too many", c.after.len());
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
fn download_64_mib_from_openssl_s_server() {
    let dir = TempDir::new("download");
    dir.write_pattern("data.bin", BIG);
    let server = www_server(&dir);
    download(server.port, BIG);
}

/// The upload's progress, kept with the socket.
struct Upload {
    sent: u64,
    total: u64,
}

/// Keeps about 1 MiB queued until `total` pattern bytes are written.
fn feed(s: &mut SslSocket) {
    let mut chunk = Vec::new();
    loop {
        let (sent, total) = {
            let u = s.user_data::<Upload>().unwrap();
            (u.sent, u.total)
        };
        if sent == total || s.bytes_to_write() >= 1 << 20 {
            return;
        }
        let n = (total - sent).min(256 << 10) as usize;
        chunk.resize(n, 0);
        fill_pattern(&mut chunk, sent);
        s.write(&chunk).unwrap();
        s.user_data::<Upload>().unwrap().sent += n as u64;
    }
}

/// Uploads `len` pattern bytes (after a marker) to s_server's interactive
/// mode through `relay` (or directly) and checks what s_server printed.
fn upload(len: u64, relay: Option<RelayMode>) {
    let checker = Arc::new(Mutex::new(MarkedPatternChecker::new(MARKER, len)));
    let sink_checker = checker.clone();
    let args = server_cert_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sink = Box::new(move |data: &[u8]| sink_checker.lock().unwrap().feed(data));
    let server = s_server(&args, None, Some(sink), false);
    let relay = relay.map(|mode| Relay::start(([127, 0, 0, 1], server.port).into(), mode));
    let port = relay.as_ref().map_or(server.port, Relay::port);

    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(Upload {
        sent: 0,
        total: len,
    });
    socket.write(MARKER).unwrap();
    socket.handshake_complete().connect(|s, _, _| feed(s));
    socket.bytes_written().connect(|s, _, _| feed(s));
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(
        &mut reactor,
        TIMEOUT * 4,
        "s_server to receive everything",
        |_| checker.lock().unwrap().is_complete() || probe.borrow().disconnected(),
    );
    {
        let c = checker.lock().unwrap();
        assert_eq!(c.checker.first_mismatch, None, "data differs");
        assert_eq!(c.checker.received, len, "bytes s_server received");
    }
    let socket = reactor.socket(id).unwrap();
    assert_eq!(socket.user_data::<Upload>().unwrap().sent, len);
    assert_eq!(socket.bytes_to_write(), 0);
    socket.disconnect_from_host();
    run_until(&mut reactor, TIMEOUT, "disconnected", |_| {
        probe.borrow().disconnected()
    });
    let p = probe.borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.bytes_written, len + MARKER.len() as u64);
    assert_eq!(p.data, b"", "s_server sent nothing");
    // s_server's "DONE" (on our close_notify) follows the pattern: nothing
    // else came in between.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !contains(&checker.lock().unwrap().after, b"DONE\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not print DONE"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let c = checker.lock().unwrap();
    assert!(
        c.after.starts_with(b"DONE\n"),
        "after the data: {:?}",
        String::from_utf8_lossy(&c.after)
    );
    drop(server);
}

#[test]
fn upload_64_mib_to_openssl_s_server() {
    upload(BIG, None);
}

#[test]
fn our_server_receives_64_mib_from_openssl_s_client() {
    let dir = TempDir::new("server-upload");
    let file = dir.write_pattern("upload.bin", BIG);
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(server).unwrap();
    let port = server.local_address().port();
    type Accepted = Vec<(Shared, Rc<RefCell<PatternChecker>>)>;
    let accepted: Rc<RefCell<Accepted>> = Rc::default();
    let list = accepted.clone();
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        let checker = Rc::new(RefCell::new(PatternChecker::default()));
        let c = checker.clone();
        socket.ready_read().connect(move |s, _, _| {
            let data = s.read_all();
            c.borrow_mut().feed(&data);
        });
        list.borrow_mut().push((probe(socket, false), checker));
    });
    // -quiet implies -ign_eof; -no_ign_eof makes s_client close (with
    // close_notify) once its stdin, the file, is all sent.
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .args(["-quiet", "-no_ign_eof", "-nocommands"])
        .stdin_file(&file)
        .start();
    run_until(&mut reactor, TIMEOUT * 4, "the upload to end", |_| {
        let a = accepted.borrow();
        a.len() == 1 && a[0].0.borrow().disconnected()
    });
    let status = client.wait(TIMEOUT);
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        client.stderr_text()
    );
    let a = accepted.borrow();
    let (p, c) = (a[0].0.borrow(), a[0].1.borrow());
    assert_eq!(c.first_mismatch, None, "data differs");
    assert_eq!(c.received, BIG);
    assert_eq!(
        p.events,
        vec![
            Event::HandshakeComplete,
            Event::ReadChannelFinished,
            Event::Disconnected
        ],
        "{:?}",
        p.error_texts
    );
}

#[test]
fn handshake_and_download_through_a_one_byte_relay() {
    let dir = TempDir::new("relay-download");
    let len = 300 << 10;
    dir.write_pattern("data.bin", len);
    let server = www_server(&dir);
    let relay = Relay::start(
        ([127, 0, 0, 1], server.port).into(),
        RelayMode::OneByte { pause_every: 512 },
    );
    download(relay.port(), len);
    // The relay really carried it all.
    let down = relay.forwarded[1].load(std::sync::atomic::Ordering::Relaxed);
    assert!(down > len, "relay forwarded {down} bytes down");
}

#[test]
fn handshake_and_upload_through_a_one_byte_relay() {
    upload(300 << 10, Some(RelayMode::OneByte { pause_every: 512 }));
}

#[test]
fn both_directions_through_a_jittery_relay() {
    // s_server -rev answers every line reversed.
    let args = server_cert_args();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-rev");
    let server = s_server(&args, None, None, false);
    let relay = Relay::start(
        ([127, 0, 0, 1], server.port).into(),
        RelayMode::Jitter {
            seed: 0x5eed,
            max_segment: 700,
            max_pause_us: 300,
        },
    );
    let mut rng = Rng::new(42);
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let len = 1 + rng.upto(2000) as usize;
        let line: Vec<u8> = (0..len)
            .map(|k| b'a' + ((i + k + rng.upto(3) as usize) % 26) as u8)
            .collect();
        lines.extend_from_slice(&line);
        lines.push(b'\n');
        expected.extend(line.iter().rev());
        expected.push(b'\n');
    }
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    socket.write(&lines).unwrap();
    socket
        .connect_to_host_encrypted("localhost", relay.port())
        .unwrap();
    let want = expected.len();
    run_until(&mut reactor, TIMEOUT * 2, "all reversed lines", |_| {
        probe.borrow().data.len() >= want || probe.borrow().disconnected()
    });
    let p = probe.borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.data.len(), expected.len());
    assert!(p.data == expected, "the reversed lines differ");
}

#[test]
fn disconnect_right_after_a_large_write_delivers_everything_first() {
    const LEN: u64 = 8 << 20;
    let checker = Arc::new(Mutex::new(MarkedPatternChecker::new(MARKER, LEN)));
    let sink_checker = checker.clone();
    let args = server_cert_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sink = Box::new(move |data: &[u8]| sink_checker.lock().unwrap().feed(data));
    let _server = s_server(&args, None, Some(sink), false);
    let port = _server.port;

    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    socket.handshake_complete().connect(|s, _, _| {
        let mut data = MARKER.to_vec();
        data.extend_from_slice(&pattern(LEN as usize));
        s.write(&data).unwrap();
        s.disconnect_from_host();
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT * 2, "disconnected", |_| {
        probe.borrow().disconnected()
    });
    let p = probe.borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(p.bytes_written, LEN + MARKER.len() as u64);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !contains(&checker.lock().unwrap().after, b"DONE\n") {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not see our close_notify after the data (received {} of {LEN})",
            checker.lock().unwrap().checker.received
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let c = checker.lock().unwrap();
    assert_eq!(c.checker.first_mismatch, None, "data differs");
    assert_eq!(c.checker.received, LEN);
    assert!(c.after.starts_with(b"DONE\n"));
}

#[test]
fn read_buffer_limit_pushes_back_until_the_program_reads() {
    const LEN: u64 = 3 << 20;
    const LIMIT: usize = 64 << 10;
    let dir = TempDir::new("read-limit");
    dir.write_pattern("data.bin", LEN);
    let server = www_server(&dir);
    let mut reactor = Reactor::new().unwrap();
    // No ready_read slot: the test reads from outside, a little at a time.
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let socket = reactor.socket(id).unwrap();
    socket.set_read_buffer_size(LIMIT);
    assert_eq!(socket.read_buffer_size(), LIMIT);
    socket.write(b"GET /data.bin HTTP/1.0\r\n\r\n").unwrap();
    socket
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();
    let mut checker = MarkedPatternChecker::new(b"\r\n\r\n", LEN);
    let mut most_buffered = 0;
    let mut buf = vec![0u8; 20 << 10];
    run_until(
        &mut reactor,
        TIMEOUT * 2,
        "the download to end",
        |reactor| {
            let socket = reactor.socket(id).unwrap();
            most_buffered = most_buffered.max(socket.bytes_available());
            // Take what is buffered; the reactor reads more on its next
            // step.
            while let Ok(n @ 1..) = socket.read(&mut buf) {
                checker.feed(&buf[..n]);
            }
            probe.borrow().disconnected() && socket.bytes_available() == 0
        },
    );
    let p = probe.borrow();
    assert_eq!(p.errors(), vec![], "{:?}", p.error_texts);
    assert_eq!(checker.checker.first_mismatch, None, "data differs");
    assert_eq!(checker.checker.received, LEN);
    // Reading stops once the limit is reached; the record being decrypted
    // (16 KiB at most) may go over it.
    assert!(
        most_buffered <= LIMIT + (16 << 10),
        "{most_buffered} bytes were buffered with a {LIMIT}-byte limit"
    );
}
