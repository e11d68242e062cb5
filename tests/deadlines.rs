//! Hostile peers against the deadlines and limits: a client that stops
//! reading (send timeout), one that drips bytes (the program's own
//! deadline), a close the peer never lets finish (close timeout), an idle
//! timeout that counts progress either way, the connection limit, accept
//! recovering from running out of descriptors without a new connection,
//! and the memory of stalled downloads given back. The peers are real:
//! python3 TLS and TCP clients and servers, curl, and the serve example run
//! under `prlimit`.

mod common;
mod memory;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use sslsocket::{Reactor, ServerId, SslSocket, TimeoutKind};

/// The tests of this file run one at a time: the memory test reads the
/// process's heap, which the others would fill, and the timing tests are
/// steadier alone.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// python3 TLS clients: `argv[2]` connections to port `argv[1]`, each
/// completing its handshake and sending one line, then reading nothing
/// for `argv[3]` seconds (a receive buffer of 4 KiB). Prints READY once
/// every connection sent its line.
const PY_STALLED_READERS: &str = r#"
import socket, ssl, sys, time
port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
held = []
for _ in range(count):
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"GET\n")
    held.append(s)
print("READY", flush=True)
time.sleep(hold)
"#;

/// Listens on 127.0.0.1 with `ca/server.pem`; `setup` adjusts the server,
/// `handler` wires each accepted socket; the probes record them.
fn server(
    reactor: &mut Reactor,
    setup: impl FnOnce(&mut sslsocket::SslServer),
    handler: fn(&mut SslSocket),
) -> (ServerId, u16, Rc<RefCell<Vec<Shared>>>) {
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(id).unwrap();
    setup(server);
    let probes: Rc<RefCell<Vec<Shared>>> = Rc::default();
    let list = probes.clone();
    server.new_connection().connect(move |_, cx, &socket| {
        let socket = cx.socket(socket).unwrap();
        list.borrow_mut().push(probe(socket, false));
        handler(socket);
    });
    (id, server.local_address().port(), probes)
}

/// The size of [`download`]'s answer: more than the kernel's socket
/// buffers take on loopback (up to 4 MiB of send buffer), so most of it
/// waits in the socket for a reader.
const DOWNLOAD: usize = 8 * 1024 * 1024;

/// Answers the first line with [`DOWNLOAD`] bytes.
fn download(socket: &mut SslSocket) {
    socket.ready_read().connect(|s, _, _| {
        if s.take_line().is_some() {
            s.write(&pattern(DOWNLOAD)).unwrap();
        }
    });
}

fn timeouts(probes: &Rc<RefCell<Vec<Shared>>>) -> Vec<Vec<Caught>> {
    probes
        .borrow()
        .iter()
        .map(|p| p.borrow().errors())
        .collect()
}

#[test]
fn stalled_downloads_are_cut_at_the_send_timeout_and_their_memory_freed() {
    let _serial = one_at_a_time();
    const CLIENTS: usize = 10;
    let mut reactor = Reactor::new().unwrap();
    let (_, port, probes) = server(
        &mut reactor,
        |s| s.set_send_timeout(Some(Duration::from_secs(1))),
        download,
    );
    let heap_before = memory::live_heap();
    let mut clients = Spawn::new("python3")
        .args(["-c", PY_STALLED_READERS])
        .args([port.to_string(), CLIENTS.to_string(), "30".into()])
        .start();
    run_until_stdout(&mut reactor, &mut clients, b"READY");
    let started = Instant::now();
    run_until(&mut reactor, TIMEOUT, "every download to be cut", |_| {
        let probes = probes.borrow();
        probes.len() == CLIENTS && probes.iter().all(|p| p.borrow().disconnected())
    });
    let took = started.elapsed();
    let peak = memory::peak_heap();
    let heap_after = memory::live_heap();
    clients.kill();
    for errors in timeouts(&probes) {
        assert_eq!(errors, [Caught::Timeout(TimeoutKind::Send)]);
    }
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
    eprintln!(
        "{CLIENTS} stalled downloads: heap {} KiB before, peak {} KiB, {} KiB after",
        heap_before / 1024,
        peak / 1024,
        heap_after / 1024
    );
    let held = (CLIENTS * DOWNLOAD / 2) as u64;
    assert!(peak > heap_before + held, "the downloads were not held");
    // What stays: the buffer pool (8 MiB at most) and the reactor's tables.
    assert!(
        heap_after < heap_before + 9 * 1024 * 1024,
        "memory not given back: {heap_after} after, {heap_before} before"
    );
}

/// The request line within 1 s: the deadline is cleared once it arrived.
fn line_within_a_second(socket: &mut SslSocket) {
    socket.set_deadline(Some(Duration::from_secs(1)));
    socket.ready_read().connect(|s, _, _| {
        if let Some(line) = s.take_line() {
            s.set_deadline(None);
            s.write(&line).unwrap();
            s.disconnect_from_host();
        }
    });
}

#[test]
fn the_program_deadline_cuts_a_client_that_drips_its_request() {
    let _serial = one_at_a_time();
    let mut reactor = Reactor::new().unwrap();
    let (_, port, probes) = server(&mut reactor, |_| {}, line_within_a_second);
    let mut dripping = Spawn::new("python3")
        .args(["-c", PY_DRIPPING_CLIENT, &port.to_string()])
        .start();
    let started = Instant::now();
    run_until(
        &mut reactor,
        TIMEOUT,
        "the dripping client to be cut",
        |_| {
            probes
                .borrow()
                .first()
                .is_some_and(|p| p.borrow().disconnected())
        },
    );
    let took = started.elapsed();
    dripping.kill();
    assert_eq!(
        timeouts(&probes),
        [[Caught::Timeout(TimeoutKind::Deadline)]]
    );
    assert!(
        took < Duration::from_secs(3),
        "cut after {took:?}, not near 1 s"
    );

    // A client that sends its line in time is answered: the deadline was
    // cleared.
    let mut client = Spawn::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-quiet",
        ])
        .start();
    client.write_stdin(b"in time\n");
    run_until_stdout(&mut reactor, &mut client, b"in time\n");
    run_until(
        &mut reactor,
        TIMEOUT,
        "the second connection to end",
        |_| probes.borrow().len() == 2 && probes.borrow()[1].borrow().disconnected(),
    );
    assert_eq!(timeouts(&probes)[1], []);
}

/// A python3 TLS server for one connection that reads everything and writes
/// nothing, for `argv[3]` seconds; with `argv[4]` = "deaf", it reads
/// nothing either. Prints its port first.
const PY_QUIET_SERVER: &str = r#"
import socket, ssl, sys, time
cert, key, hold, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print("PORT", ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s = ctx.wrap_socket(raw, server_side=True)
end = time.monotonic() + hold
s.settimeout(0.1)
while time.monotonic() < end:
    if mode == "deaf":
        time.sleep(0.1)
        continue
    try:
        if not s.recv(65536):
            break
    except socket.timeout:
        pass
    except OSError:
        break
"#;

fn quiet_server(hold_secs: u32, mode: &str) -> (Proc, u16) {
    let mut server = Spawn::new("python3")
        .args(["-c", PY_QUIET_SERVER])
        .args([ca_str("server.pem"), ca_str("server.key")])
        .args([hold_secs.to_string(), mode.to_owned()])
        .start();
    let line = server.wait_for_line("PORT ", TIMEOUT);
    let port = line[5..].trim().parse().unwrap();
    (server, port)
}

/// Connects a client with `setup` applied, runs `for_` or until it
/// disconnects, and returns its probe's errors.
fn client_against(port: u16, for_: Duration, setup: impl FnOnce(&mut SslSocket)) -> Vec<Caught> {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), false);
    let socket = reactor.socket(id).unwrap();
    setup(socket);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let deadline = Instant::now() + for_;
    run_until(&mut reactor, TIMEOUT, "the time to pass", |_| {
        probe.borrow().disconnected() || Instant::now() >= deadline
    });
    let errors = probe.borrow().errors();
    errors
}

#[test]
fn the_idle_timeout_counts_progress_either_way() {
    let _serial = one_at_a_time();
    // Only writing, to a peer that only reads: progress, never idle.
    let (mut server, port) = quiet_server(4, "reader");
    let errors = client_against(port, Duration::from_millis(2500), |s| {
        s.set_idle_timeout(Some(Duration::from_secs(1)));
        s.handshake_complete().connect(|s, cx, _| {
            let id = s.id();
            cx.start_repeating_timer(Duration::from_millis(200), move |cx, _| {
                if let Some(s) = cx.socket(id) {
                    let _ = s.write(&[b'x'; 100]);
                }
            });
        });
    });
    server.kill();
    assert_eq!(errors, [], "a writing socket was taken for idle");

    // Silent both ways: idle after 1 s.
    let (mut server, port) = quiet_server(4, "reader");
    let started = Instant::now();
    let errors = client_against(port, Duration::from_secs(5), |s| {
        s.set_idle_timeout(Some(Duration::from_secs(1)))
    });
    server.kill();
    assert_eq!(errors, [Caught::Timeout(TimeoutKind::Idle)]);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn the_idle_timeout_bounds_a_close_the_peer_never_lets_finish() {
    let _serial = one_at_a_time();
    // No close or send timeout: the idle timeout alone ends a close whose
    // peer takes nothing and says nothing (it applies once connected).
    let (mut server, port) = quiet_server(10, "deaf");
    let errors = client_against(port, Duration::from_secs(6), |s| {
        s.set_idle_timeout(Some(Duration::from_secs(1)));
        s.set_send_timeout(None);
        s.handshake_complete().connect(|s, _, _| {
            s.write(&pattern(8 * 1024 * 1024)).unwrap();
            s.disconnect_from_host();
        });
    });
    server.kill();
    assert_eq!(errors, [Caught::Timeout(TimeoutKind::Idle)]);
}

#[test]
fn a_close_the_peer_never_lets_finish_is_aborted_at_the_close_timeout() {
    let _serial = one_at_a_time();
    let (mut server, port) = quiet_server(10, "deaf");
    let started = Instant::now();
    let errors = client_against(port, Duration::from_secs(8), |s| {
        s.set_close_timeout(Some(Duration::from_secs(1)));
        s.handshake_complete().connect(|s, _, _| {
            s.write(&pattern(8 * 1024 * 1024)).unwrap();
            s.disconnect_from_host();
        });
    });
    server.kill();
    assert_eq!(errors, [Caught::Timeout(TimeoutKind::Close)]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn at_the_connection_limit_new_connections_wait_in_the_backlog() {
    let _serial = one_at_a_time();
    let mut reactor = Reactor::new().unwrap();
    let (id, port, probes) = server(
        &mut reactor,
        |s| {
            s.set_max_connections(Some(2));
            s.set_handshake_timeout(None);
        },
        |_| {},
    );
    let mut holder = Spawn::new("python3")
        .args(["-c", PY_HOLDER, &port.to_string(), "3"])
        .start();
    run_until_stdout(&mut reactor, &mut holder, b"HELD");
    run_for(&mut reactor, Duration::from_millis(300));
    assert_eq!(probes.borrow().len(), 2, "only two accepted");
    assert_eq!(reactor.server(id).unwrap().connection_count(), 2);
    holder.write_stdin(b"close one\n");
    run_until_stdout(&mut reactor, &mut holder, b"CLOSED");
    run_until(&mut reactor, TIMEOUT, "the third connection", |_| {
        probes.borrow().len() == 3
    });
    run_until(&mut reactor, TIMEOUT, "the closed one to go", |r| {
        r.server(id).unwrap().connection_count() == 2
    });
    holder.kill();
}

/// Runs the serve example with at most `files` descriptors; returns it and
/// its port.
fn serve_limited(root: &TempDir, files: u32) -> (Proc, u16) {
    let limit = format!("--nofile={files}:{files}");
    let mut serve = Spawn::new(require("prlimit", "util-linux").to_str().unwrap())
        .arg(limit)
        .arg(example("serve").to_str().unwrap())
        .args([
            "--cert",
            &ca_str("server.pem"),
            "--key",
            &ca_str("server.key"),
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.path().to_str().unwrap(),
        ])
        .start();
    let line = serve.wait_for_line("127.0.0.1:", TIMEOUT);
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    (serve, port)
}

#[test]
fn accept_recovers_when_descriptors_are_freed_without_a_new_connection() {
    let _serial = one_at_a_time();
    let root = TempDir::new("deadlines-emfile");
    root.write("page.txt", b"served after all\n");
    let (mut serve, port) = serve_limited(&root, 24);
    let mut holder = Spawn::new("python3")
        .args(["-c", PY_HOLDER, &port.to_string(), "40"])
        .start();
    holder.wait_for_stdout(b"HELD", TIMEOUT);
    // Out of descriptors: curl's connection waits in the backlog.
    let mut curl = Spawn::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            &ca_str("root-ca.pem"),
        ])
        .arg(format!("https://localhost:{port}/page.txt"))
        .start();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        curl.try_wait().is_none(),
        "curl was served while out of descriptors"
    );
    // Several attempts so far (10, 20, 40, 80, 160, 320 ms apart), one report.
    let log = serve.stderr_text();
    let episodes = log.matches("accept failed").count();
    assert_eq!(episodes, 1, "one accept error per episode:\n{log}");
    // The held connections go: nothing new arrives but curl's, queued.
    holder.close_stdin();
    let released = Instant::now();
    let status = curl.wait(TIMEOUT);
    let took = released.elapsed();
    assert!(status.success(), "curl: {}", curl.stderr_text());
    assert_eq!(curl.stdout_text(), "served after all\n");
    assert!(
        took < Duration::from_secs(3),
        "served {took:?} after the release"
    );
    serve.kill();
}
