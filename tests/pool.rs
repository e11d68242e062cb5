//! A [`ReactorPool`]: N reactors serve one loopback address, each
//! connection on exactly one of them (its slots on that reactor's thread);
//! shutting the pool down stops every thread and closes every socket; a
//! panic in one reactor's slot ends the pool and is reported. Clients are
//! our own sockets and `openssl s_client`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use sslsocket::{PoolError, Reactor, ReactorPool, SslServer};

/// The thread names of a pool's reactors start with this.
const REACTOR_THREAD: &str = "sslsocket-r";

/// The tests count the process's reactor threads: one test at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's threads that run a pool's reactor.
fn reactor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(REACTOR_THREAD))
        .count()
}

/// Who served one connection: the thread that accepted it, the one its
/// slot ran on, and what the client sent.
#[derive(Debug, Clone)]
struct Served {
    accepted_on: ThreadId,
    read_on: ThreadId,
    reactor: String,
    line: String,
}

/// A server that answers every connection's first line with "served\n"
/// and closes it, noting who served it.
fn answering(
    log: Arc<Mutex<Vec<Served>>>,
) -> impl Fn(&mut SslServer, &mut sslsocket::Context) + Send + Sync + 'static {
    move |server, _cx| {
        let log = Arc::clone(&log);
        server.new_connection().connect(move |_, cx, &id| {
            let accepted_on = thread::current().id();
            let log = Arc::clone(&log);
            let socket = cx.socket(id).expect("just accepted");
            let mut line = Vec::new();
            socket.ready_read().connect(move |s, _, _| {
                line.extend(s.read_all());
                if !line.ends_with(b"\n") {
                    return;
                }
                log.lock().unwrap().push(Served {
                    accepted_on,
                    read_on: thread::current().id(),
                    reactor: thread::current().name().unwrap_or_default().to_owned(),
                    line: String::from_utf8_lossy(&line).trim().to_owned(),
                });
                s.write(b"served\n").expect("write");
                s.disconnect_from_host();
            });
        });
    }
}

/// Opens `count` connections to `address` at once; each sends "client N"
/// and must get the answer. Returns once all have been answered and closed.
fn clients(address: SocketAddr, count: usize) {
    let mut reactor = Reactor::new().unwrap();
    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    for n in 0..count {
        let id = reactor.ssl_socket(client_config());
        let s = reactor.socket(id).unwrap();
        s.set_peer_verify_name("localhost");
        s.write(format!("client {n}\n").as_bytes()).unwrap();
        let answered = Arc::clone(&answered);
        let mut reply = Vec::new();
        s.ready_read().connect(move |s, _, _| {
            reply.extend(s.read_all());
            if reply == b"served\n" {
                answered.lock().unwrap().insert(n);
            }
        });
        s.error_occurred()
            .connect(move |_, _, e| panic!("client {n}: {e}"));
        s.disconnected().connect(|s, cx, _| {
            let id = s.id();
            cx.remove_socket(id);
        });
        s.connect_to_host_encrypted("127.0.0.1", address.port())
            .unwrap();
    }
    run_until(&mut reactor, TIMEOUT, "every answer", |r| {
        answered.lock().unwrap().len() == count && r.object_count() == 0
    });
}

/// `openssl s_client` sends `line` and must get the answer.
fn s_client(address: SocketAddr, line: &str) {
    let mut client = Spawn::new("openssl")
        .args(["s_client", "-connect", &address.to_string()])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args([
            "-CAfile",
            &ca_str("root-ca.pem"),
            "-verify_return_error",
            "-quiet",
        ])
        .start();
    client.write_stdin(format!("{line}\n").as_bytes());
    let status = client.wait(TIMEOUT);
    assert_eq!(client.stdout_text(), "served\n", "{}", client.stderr_text());
    assert!(status.success(), "s_client: {status}");
}

/// Waits for the pool to end, failing the test if it does not in time.
fn ends_within_timeout(
    pool: ReactorPool,
    end: impl FnOnce(ReactorPool) -> Result<(), PoolError> + Send + 'static,
) -> Result<(), PoolError> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || sender.send(end(pool)));
    receiver
        .recv_timeout(TIMEOUT)
        .expect("the pool did not end in time")
}

#[test]
fn reactors_serve_one_address_each_connection_once() {
    let _serial = one_at_a_time();
    let pool = ReactorPool::new(3).unwrap();
    assert_eq!(reactor_threads(), 3);
    let log = Arc::new(Mutex::new(Vec::new()));
    let address = pool
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            server_config(),
            answering(Arc::clone(&log)),
        )
        .unwrap();
    const OURS: usize = 60;
    clients(address, OURS);
    for n in 0..3 {
        s_client(address, &format!("s_client {n}"));
    }
    let served = log.lock().unwrap().clone();
    let mut times = BTreeMap::new();
    for s in &served {
        *times.entry(s.line.clone()).or_insert(0) += 1;
        assert_eq!(
            s.accepted_on, s.read_on,
            "{s:?}: slots run on the accepting reactor"
        );
        assert!(s.reactor.starts_with(REACTOR_THREAD), "{s:?}");
    }
    let expected: BTreeMap<_, _> = (0..OURS)
        .map(|n| format!("client {n}"))
        .chain((0..3).map(|n| format!("s_client {n}")))
        .map(|line| (line, 1))
        .collect();
    assert_eq!(times, expected, "every connection served exactly once");
    // The kernel spread 63 connections over the three listeners (all on
    // one would be a chance of 3^-62).
    let reactors: BTreeSet<_> = served.iter().map(|s| s.reactor.clone()).collect();
    assert!(reactors.len() > 1, "only {reactors:?} served");
    ends_within_timeout(pool, ReactorPool::shutdown).expect("a clean end");
    assert_eq!(reactor_threads(), 0);
}

#[test]
fn shutdown_stops_every_thread_and_closes_every_socket() {
    let _serial = one_at_a_time();
    let pool = ReactorPool::new(2).unwrap();
    let accepted = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&accepted);
    let address = pool
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            server_config(),
            move |server, _| {
                let counter = Arc::clone(&counter);
                server.new_connection().connect(move |_, cx, &id| {
                    *counter.lock().unwrap() += 1;
                    // Greets, and keeps the connection open.
                    cx.socket(id).unwrap().write(b"hello\n").unwrap();
                });
            },
        )
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let probes: Vec<Shared> = (0..8)
        .map(|_| {
            let id = reactor.ssl_socket(client_config());
            let s = reactor.socket(id).unwrap();
            let probe = probe(s, true);
            s.set_peer_verify_name("localhost");
            s.connect_to_host_encrypted("127.0.0.1", address.port())
                .unwrap();
            probe
        })
        .collect();
    run_until(&mut reactor, TIMEOUT, "every greeting", |_| {
        probes.iter().all(|p| p.borrow().data == b"hello\n")
    });
    assert_eq!(*accepted.lock().unwrap(), 8);

    ends_within_timeout(pool, ReactorPool::shutdown).expect("a clean end");
    assert_eq!(reactor_threads(), 0, "every reactor thread ended");
    // Every server socket was closed: each client sees its connection end
    // (without close_notify: the pool closes at once).
    run_until(&mut reactor, TIMEOUT, "every connection to end", |_| {
        probes.iter().all(|p| p.borrow().disconnected())
    });
    for probe in &probes {
        let p = probe.borrow();
        assert!(
            !p.errors().is_empty(),
            "an abrupt end is reported: {:?}",
            p.events
        );
    }
    // And every listener: nothing accepts on the address any more.
    let refused = TcpStream::connect_timeout(&address, Duration::from_secs(5));
    assert!(refused.is_err(), "the address still accepts");
}

#[test]
fn a_panicking_slot_ends_the_pool_and_is_reported() {
    let _serial = one_at_a_time();
    let pool = ReactorPool::new(2).unwrap();
    let address = pool
        .listen(
            "127.0.0.1:0".parse().unwrap(),
            server_config(),
            |server, _| {
                server.new_connection().connect(|_, cx, &id| {
                    cx.socket(id)
                        .unwrap()
                        .ready_read()
                        .connect(|_, _, _| panic!("a slot panicked on purpose"));
                });
            },
        )
        .unwrap();
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let s = reactor.socket(id).unwrap();
    let probe = probe(s, false);
    s.set_peer_verify_name("localhost");
    s.write(b"anything\n").unwrap();
    s.connect_to_host_encrypted("127.0.0.1", address.port())
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "the connection to end", |_| {
        probe.borrow().disconnected()
    });
    let error = ends_within_timeout(pool, ReactorPool::wait).expect_err("the panic is reported");
    match &error {
        PoolError::Panicked { reactor, .. } => assert!(*reactor < 2),
        other => panic!("not the panic: {other}"),
    }
    assert_eq!(error.panic_message(), Some("a slot panicked on purpose"));
    assert!(error.to_string().contains("panicked on purpose"), "{error}");
    assert_eq!(reactor_threads(), 0, "the other reactor was stopped too");
}

#[test]
fn a_quit_on_one_reactor_ends_the_pool() {
    let _serial = one_at_a_time();
    let pool = ReactorPool::new(2).unwrap();
    pool.run_on_each(|cx, index| {
        if index == 1 {
            cx.quit();
        }
    })
    .unwrap();
    ends_within_timeout(pool, ReactorPool::wait).expect("a quit is a clean end");
    assert_eq!(reactor_threads(), 0);
}

#[test]
fn listening_on_an_address_in_use_fails_and_leaves_nothing() {
    let _serial = one_at_a_time();
    // A listener without SO_REUSEPORT holds the port alone.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pool = ReactorPool::new(2).unwrap();
    let error = pool
        .listen(taken.local_addr().unwrap(), server_config(), |_, _| {})
        .expect_err("the port is taken");
    assert!(matches!(error, sslsocket::Error::Listen { .. }), "{error}");
    // The pool still works: another address listens.
    let address = pool
        .listen("127.0.0.1:0".parse().unwrap(), server_config(), |_, _| {})
        .unwrap();
    assert_ne!(address.port(), 0);
    ends_within_timeout(pool, ReactorPool::shutdown).expect("a clean end");
}
