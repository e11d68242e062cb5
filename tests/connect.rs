//! Establishing connections, on loopback only: the connect, handshake and
//! idle timeouts; Happy Eyeballs (RFC 8305) between ::1 and 127.0.0.1; host
//! lookup failures; invalid arguments.
//!
//! A connect that stays pending is made with a listener that never accepts
//! and whose accept queue is full: Linux then drops further SYNs (unless
//! `net.ipv4.tcp_abort_on_overflow` is set, which the tests check).
//!
//! The Happy Eyeballs tests need "localhost" to resolve to both ::1 and
//! 127.0.0.1. Where it does not (an /etc/hosts without `::1 localhost`),
//! the test runs itself again in a child process inside a private mount
//! namespace (`unshare --mount`) in which a temporary hosts file is
//! bind-mounted over /etc/hosts; nothing outside that child changes.

mod common;

use std::cell::RefCell;
use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{client_config, require, server_config, Proc, TempDir};
use sslsocket::{
    Context, Error, Reactor, SocketId, SocketState, SslServer, SslSocket, TimeoutKind, TimerId,
};

/// The bound on every wait for a connection's outcome.
const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Fills the accept queue of `listener` (which never accepts) so the
/// kernel drops further SYNs; returns the connections that fill it, to be
/// kept while the test needs the queue full.
fn fill_accept_queue(listener: &TcpListener) -> Vec<TcpStream> {
    let overflow = fs::read_to_string("/proc/sys/net/ipv4/tcp_abort_on_overflow")
        .unwrap_or_else(|e| panic!("cannot read net.ipv4.tcp_abort_on_overflow: {e}"));
    assert_eq!(
        overflow.trim(),
        "0",
        "net.ipv4.tcp_abort_on_overflow is set: the kernel resets connections to a full \
         accept queue instead of dropping their SYNs, so no connect can be left pending"
    );
    let address = listener.local_addr().expect("listener address");
    let mut held = Vec::new();
    // std listens with a backlog of 128: about 129 connections fill it.
    while held.len() < 5000 {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(stream) => held.push(stream),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return held;
            }
            Err(e) => panic!(
                "connecting to {address} after {} connections: {e}; the kernel should leave \
                 the connect pending once the accept queue is full",
                held.len()
            ),
        }
    }
    panic!("the accept queue of {address} never filled");
}

/// What a socket's signals reported.
#[derive(Default)]
struct Record {
    states: Vec<SocketState>,
    host_found: bool,
    connected: bool,
    encrypted: bool,
    disconnected: bool,
    data: Vec<u8>,
    errors: Vec<Error>,
    /// Bytes received when the first error was reported.
    data_at_error: Option<usize>,
    addresses: Option<(SocketAddr, SocketAddr)>,
}

/// Records every signal of `socket` that the tests look at.
fn record(socket: &mut SslSocket) -> Rc<RefCell<Record>> {
    let record = Rc::new(RefCell::new(Record::default()));
    let r = record.clone();
    socket
        .state_changed()
        .connect(move |_, _, &state| r.borrow_mut().states.push(state));
    let r = record.clone();
    socket
        .host_found()
        .connect(move |_, _, _| r.borrow_mut().host_found = true);
    let r = record.clone();
    socket
        .connected()
        .connect(move |_, _, _| r.borrow_mut().connected = true);
    let r = record.clone();
    socket.handshake_complete().connect(move |s, _, _| {
        let mut r = r.borrow_mut();
        r.encrypted = true;
        r.addresses = s.local_address().zip(s.peer_address());
    });
    let r = record.clone();
    socket.ready_read().connect(move |s, _, _| {
        let data = s.read_all();
        r.borrow_mut().data.extend_from_slice(&data);
    });
    let r = record.clone();
    socket
        .disconnected()
        .connect(move |_, _, _| r.borrow_mut().disconnected = true);
    let r = record.clone();
    socket.error_occurred().connect(move |_, _, e| {
        let mut r = r.borrow_mut();
        if r.data_at_error.is_none() {
            r.data_at_error = Some(r.data.len());
        }
        r.errors.push(e.clone());
    });
    record
}

/// A client socket with recorded signals.
fn client(reactor: &mut Reactor) -> (SocketId, Rc<RefCell<Record>>) {
    let id = reactor.ssl_socket(client_config());
    let record = record(reactor.socket(id).expect("socket"));
    (id, record)
}

/// Steps the reactor until `done`; the test fails after `limit`.
fn run_until(
    reactor: &mut Reactor,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&mut Reactor) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(reactor) {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        reactor
            .step(Some(Duration::from_millis(20)))
            .expect("reactor step");
    }
}

fn unconnected(reactor: &mut Reactor, id: SocketId) -> bool {
    reactor.socket(id).expect("socket").state() == SocketState::Unconnected
}

fn loopback(v6: bool) -> IpAddr {
    if v6 {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    }
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

#[test]
fn connect_timeout_when_the_peer_drops_syns() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let _held = fill_accept_queue(&listener);

    let mut reactor = Reactor::new().unwrap();
    let (id, record) = client(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    socket.set_connect_timeout(Some(Duration::from_millis(300)));
    socket.connect_to_host_encrypted("127.0.0.1", port).unwrap();
    // Without the timeout the kernel would retry SYNs for minutes.
    run_until(&mut reactor, LIMIT, "the connect timeout", |r| {
        unconnected(r, id)
    });
    let r = record.borrow();
    assert!(
        matches!(r.errors.as_slice(), [Error::Timeout(TimeoutKind::Connect)]),
        "{:?}",
        r.errors
    );
    assert!(!r.connected && !r.disconnected);
    assert_eq!(
        r.states,
        vec![
            SocketState::HostLookup,
            SocketState::Connecting,
            SocketState::Unconnected
        ]
    );
}

#[test]
fn handshake_timeout_when_the_peer_never_answers() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let mut reactor = Reactor::new().unwrap();
    let (id, record) = client(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    socket.set_handshake_timeout(Some(Duration::from_millis(300)));
    socket.connect_to_host_encrypted("127.0.0.1", port).unwrap();
    let mut accepted = Vec::new();
    run_until(&mut reactor, LIMIT, "the handshake timeout", |r| {
        if let Ok((stream, _)) = listener.accept() {
            accepted.push(stream);
        }
        unconnected(r, id)
    });
    assert_eq!(accepted.len(), 1);
    let r = record.borrow();
    assert!(
        matches!(
            r.errors.as_slice(),
            [Error::Timeout(TimeoutKind::Handshake)]
        ),
        "{:?}",
        r.errors
    );
    assert!(r.connected && !r.encrypted && r.disconnected);
}

/// An SslServer in `reactor` on 127.0.0.1; its port.
fn tls_server(reactor: &mut Reactor) -> (sslsocket::ServerId, u16) {
    let server = reactor
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_config())
        .expect("listen");
    let port = reactor.server(server).unwrap().local_address().port();
    (server, port)
}

#[test]
fn idle_timeout_when_an_encrypted_peer_stays_silent() {
    let mut reactor = Reactor::new().unwrap();
    let (_server, port) = tls_server(&mut reactor);
    let (id, record) = client(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    socket.set_idle_timeout(Some(Duration::from_millis(300)));
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, LIMIT, "the idle timeout", |r| {
        unconnected(r, id)
    });
    let r = record.borrow();
    assert!(
        matches!(r.errors.as_slice(), [Error::Timeout(TimeoutKind::Idle)]),
        "{:?}",
        r.errors
    );
    assert!(r.connected && r.encrypted && r.disconnected);
}

#[test]
fn no_idle_timeout_while_data_keeps_arriving() {
    const TICKS: usize = 30;
    const TICK: &[u8] = b"tick\n";
    let mut reactor = Reactor::new().unwrap();
    let (server, port) = tls_server(&mut reactor);
    // The server sends a tick every 50 ms, 30 times (1.5 s, far longer than
    // the client's idle timeout), then stays silent.
    reactor.server(server).unwrap().new_connection().connect(
        |_: &mut SslServer, cx: &mut Context, &peer: &SocketId| {
            let mut sent = 0;
            cx.start_repeating_timer(
                Duration::from_millis(50),
                move |cx: &mut Context, timer: TimerId| match cx.socket(peer) {
                    Some(s) if sent < TICKS => {
                        s.write(TICK).expect("write a tick");
                        sent += 1;
                    }
                    _ => {
                        cx.cancel_timer(timer);
                    }
                },
            );
        },
    );
    let (id, record) = client(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    socket.set_idle_timeout(Some(Duration::from_millis(600)));
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(
        &mut reactor,
        LIMIT,
        "the idle timeout after the ticks",
        |r| unconnected(r, id),
    );
    let r = record.borrow();
    assert!(
        matches!(r.errors.as_slice(), [Error::Timeout(TimeoutKind::Idle)]),
        "{:?}",
        r.errors
    );
    // The timeout came only once the ticks had stopped.
    assert_eq!(r.data_at_error, Some(TICKS * TICK.len()));
    assert_eq!(r.data, TICK.repeat(TICKS));
}

// ---------------------------------------------------------------------------
// Happy Eyeballs
// ---------------------------------------------------------------------------

/// Set in the child process that runs one test with a dual-stack localhost.
const DUAL_STACK_CHILD: &str = "SSLSOCKET_TEST_DUAL_STACK_CHILD";

/// The addresses "localhost" resolves to, in the resolver's order.
fn localhost_addresses() -> Vec<IpAddr> {
    ("localhost", 0)
        .to_socket_addrs()
        .map(|addresses| addresses.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Runs `body` where "localhost" resolves to both ::1 and 127.0.0.1 and ::1
/// can be bound: here if that is so, else in a child process that runs only
/// the test `name`, in a private mount namespace with its own /etc/hosts.
fn with_dual_stack_localhost(name: &str, body: impl FnOnce()) {
    let addresses = localhost_addresses();
    let dual = addresses.iter().any(IpAddr::is_ipv6) && addresses.iter().any(IpAddr::is_ipv4);
    if dual || std::env::var_os(DUAL_STACK_CHILD).is_some() {
        assert!(
            dual,
            "localhost resolves to {addresses:?} even with the bind-mounted hosts file"
        );
        TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind [::1]:0 ({e}): IPv6 loopback is needed"));
        return body();
    }
    let dir = TempDir::new(name);
    let hosts = dir.join("hosts");
    fs::write(
        &hosts,
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    )
    .expect("write the hosts file");
    let unshare = require("unshare", "util-linux");
    require("mount", "mount");
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let mut command = Command::new(unshare);
    if !root {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args(["--mount", "--propagation", "private", "--"])
        .arg(require("sh", "dash"))
        .arg("-c")
        .arg(r#"mount --bind "$1" /etc/hosts && exec "$2" --exact "$3" --nocapture --test-threads=1"#)
        .arg("sh")
        .arg(&hosts)
        .arg(std::env::current_exe().expect("current_exe"))
        .arg(name)
        .env(DUAL_STACK_CHILD, "1");
    let mut child = Proc::in_own_group("the test under unshare", command);
    let status = child.wait(Duration::from_secs(60));
    let stdout = child.stdout_text();
    let stderr = child.stderr_text();
    assert!(
        status.success() && stdout.contains("test result: ok. 1 passed"),
        "the test {name} in a namespace where localhost is ::1 and 127.0.0.1 failed \
         ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// The order Happy Eyeballs tries: whether "localhost"'s first address is
/// IPv6.
fn first_family_is_v6() -> bool {
    localhost_addresses()
        .first()
        .expect("localhost resolves")
        .is_ipv6()
}

/// Binds an SslServer on the loopback of the family `v6` at `port`; `None`
/// when the port is taken there.
fn listen_at(reactor: &mut Reactor, v6: bool, port: u16) -> Option<u16> {
    reactor
        .listen(SocketAddr::new(loopback(v6), port), server_config())
        .ok()
        .map(|id| reactor.server(id).unwrap().local_address().port())
}

/// Connects to "localhost":`port` and runs until the handshake completed or
/// the connection failed.
fn connect_localhost(reactor: &mut Reactor, port: u16) -> Rc<RefCell<Record>> {
    let (id, record) = client(reactor);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    let r = record.clone();
    run_until(reactor, LIMIT, "the connection to localhost", move |_| {
        let r = r.borrow();
        r.encrypted || !r.errors.is_empty()
    });
    record
}

#[test]
fn happy_eyeballs_falls_back_when_the_first_family_is_refused() {
    with_dual_stack_localhost(
        "happy_eyeballs_falls_back_when_the_first_family_is_refused",
        || {
            let first_v6 = first_family_is_v6();
            let mut reactor = Reactor::new().unwrap();
            // A port nothing listens on in the first family; the server on
            // the same port in the second.
            let port = (0..20)
                .find_map(|_| {
                    let probe = TcpListener::bind((loopback(first_v6), 0)).ok()?;
                    let port = probe.local_addr().ok()?.port();
                    drop(probe);
                    listen_at(&mut reactor, !first_v6, port)
                })
                .expect("a port free in both families");
            let record = connect_localhost(&mut reactor, port);
            let r = record.borrow();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            let (local, peer) = r.addresses.expect("addresses");
            assert_eq!(peer, SocketAddr::new(loopback(!first_v6), port));
            assert_eq!(local.is_ipv6(), !first_v6);
        },
    );
}

#[test]
fn happy_eyeballs_races_past_a_first_family_that_hangs() {
    with_dual_stack_localhost(
        "happy_eyeballs_races_past_a_first_family_that_hangs",
        || {
            let first_v6 = first_family_is_v6();
            let mut reactor = Reactor::new().unwrap();
            // The first family's listener drops SYNs (its accept queue is
            // full): that attempt hangs. The server listens on the same port
            // in the second family.
            let (port, _blackhole, _held) = (0..20)
                .find_map(|_| {
                    let blackhole = TcpListener::bind((loopback(first_v6), 0)).ok()?;
                    let port = blackhole.local_addr().ok()?.port();
                    listen_at(&mut reactor, !first_v6, port)?;
                    let held = fill_accept_queue(&blackhole);
                    Some((port, blackhole, held))
                })
                .expect("a port free in both families");
            // Without a second attempt the connect would wait for the
            // kernel's SYN retries (minutes); LIMIT ends the test first.
            let record = connect_localhost(&mut reactor, port);
            let r = record.borrow();
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            let (local, peer) = r.addresses.expect("addresses");
            assert_eq!(peer, SocketAddr::new(loopback(!first_v6), port));
            assert_eq!(local.is_ipv6(), !first_v6);
        },
    );
}

#[test]
fn happy_eyeballs_reports_the_last_failure_when_every_address_is_refused() {
    with_dual_stack_localhost(
        "happy_eyeballs_reports_the_last_failure_when_every_address_is_refused",
        || {
            let first_v6 = first_family_is_v6();
            let port = (0..20)
                .find_map(|_| {
                    let a = TcpListener::bind((loopback(first_v6), 0)).ok()?;
                    let port = a.local_addr().ok()?.port();
                    let _b = TcpListener::bind((loopback(!first_v6), port)).ok()?;
                    Some(port)
                })
                .expect("a port free in both families");
            let mut reactor = Reactor::new().unwrap();
            let record = connect_localhost(&mut reactor, port);
            let r = record.borrow();
            match r.errors.as_slice() {
                [Error::ConnectionFailed {
                    host,
                    address,
                    source,
                }] => {
                    assert_eq!(host, "localhost");
                    assert_eq!(*address, SocketAddr::new(loopback(!first_v6), port));
                    assert_eq!(source.kind(), ErrorKind::ConnectionRefused);
                }
                other => panic!("expected ConnectionFailed, got {other:?}"),
            }
            assert!(!r.connected);
        },
    );
}

// ---------------------------------------------------------------------------
// Lookup failures and invalid arguments
// ---------------------------------------------------------------------------

#[test]
fn an_unresolvable_name_is_host_not_found() {
    const NAME: &str = "sslsocket-test.invalid";
    let mut reactor = Reactor::new().unwrap();
    let (id, record) = client(&mut reactor);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted(NAME, 443)
        .unwrap();
    run_until(&mut reactor, LIMIT, "the lookup failure", |r| {
        unconnected(r, id)
    });
    let r = record.borrow();
    assert!(
        matches!(r.errors.as_slice(), [Error::HostNotFound { host, .. }] if host == NAME),
        "{:?}",
        r.errors
    );
    assert!(!r.host_found && !r.connected && !r.disconnected);
    assert_eq!(
        r.states,
        vec![SocketState::HostLookup, SocketState::Unconnected]
    );
    assert_eq!(
        reactor.socket(id).unwrap().state(),
        SocketState::Unconnected
    );
}

#[test]
fn invalid_arguments_are_refused_at_once() {
    let mut reactor = Reactor::new().unwrap();
    let (id, record) = client(&mut reactor);
    let socket = reactor.socket(id).unwrap();
    for (host, port) in [
        ("", 443),
        ("localhost", 0),
        ("bad host", 443),
        ("bad\thost", 443),
    ] {
        for encrypted in [false, true] {
            let result = if encrypted {
                socket.connect_to_host_encrypted(host, port)
            } else {
                socket.connect_to_host(host, port)
            };
            assert!(
                matches!(result, Err(Error::InvalidInput(_))),
                "{host:?}:{port} (encrypted: {encrypted}): {result:?}"
            );
            assert_eq!(socket.state(), SocketState::Unconnected);
        }
    }
    // A valid call still works afterwards, and a second one while the
    // first is under way is refused.
    socket
        .connect_to_host("sslsocket-test.invalid", 443)
        .unwrap();
    assert!(matches!(
        socket.connect_to_host("localhost", 443),
        Err(Error::InvalidState(_))
    ));
    run_until(&mut reactor, LIMIT, "the lookup failure", |r| {
        unconnected(r, id)
    });
    let r = record.borrow();
    // Only the valid call produced signals.
    assert_eq!(
        r.states,
        vec![SocketState::HostLookup, SocketState::Unconnected]
    );
    assert!(
        matches!(r.errors.as_slice(), [Error::HostNotFound { .. }]),
        "{:?}",
        r.errors
    );
}
