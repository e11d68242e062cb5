//! The reactor without TLS peers: timers, posts from other threads,
//! forwarding signals to a worker thread, and embedding in a program's poll.

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use sslsocket::{Context, Reactor, SocketMessage, SslConfiguration, TimerId};

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/");

/// Runs the reactor until it quits, failing the test after `limit`.
fn run_for(reactor: &mut Reactor, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !reactor.take_quit() {
        assert!(
            Instant::now() < deadline,
            "the reactor did not finish within {limit:?}"
        );
        reactor.step(Some(Duration::from_millis(50))).unwrap();
    }
}

#[test]
fn timers_fire_in_deadline_order_even_when_started_out_of_order() {
    let mut reactor = Reactor::new().unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // Started in a scrambled order, with deadlines 5 ms apart.
    for i in [7u32, 2, 9, 0, 4, 1, 8, 3, 6, 5] {
        let order = order.clone();
        reactor.start_timer(
            Duration::from_millis(20 + 5 * u64::from(i)),
            move |cx, _| {
                let mut order = order.lock().unwrap();
                order.push(i);
                if order.len() == 10 {
                    cx.quit();
                }
            },
        );
    }
    // Load: a repeating timer that busies the loop meanwhile.
    reactor.start_repeating_timer(Duration::from_millis(1), |_, _| {
        let until = Instant::now() + Duration::from_micros(300);
        while Instant::now() < until {}
    });
    run_for(&mut reactor, Duration::from_secs(10));
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn cancelled_and_repeating_timers() {
    let mut reactor = Reactor::new().unwrap();
    let cancelled = reactor.start_timer(Duration::from_millis(10), |_, _| {
        panic!("cancelled timer fired")
    });
    assert!(reactor.cancel_timer(cancelled));
    assert!(!reactor.cancel_timer(cancelled));
    let mut ticks = 0;
    reactor.start_repeating_timer(
        Duration::from_millis(2),
        move |cx: &mut Context, id: TimerId| {
            ticks += 1;
            if ticks == 5 {
                assert!(cx.cancel_timer(id));
                cx.start_timer(Duration::from_millis(30), |cx, _| cx.quit());
            }
            assert!(ticks <= 5, "a cancelled repeating timer fired again");
        },
    );
    run_for(&mut reactor, Duration::from_secs(10));
    // With every timer gone, run() returns at once.
    reactor.run().unwrap();
}

#[test]
fn posts_from_eight_threads_all_arrive_in_per_thread_order() {
    const THREADS: usize = 8;
    const POSTS: u64 = 5_000;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![Vec::new(); THREADS]));
    let (handles_out, handles_in) = crossbeam_channel::bounded(THREADS);
    // The reactor lives on its own thread (it is not Send); it hands out
    // handles, then runs until every handle is gone and every post ran.
    let runner = thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        for _ in 0..THREADS {
            handles_out.send(reactor.handle()).unwrap();
        }
        let started = Instant::now();
        reactor.run().unwrap();
        started.elapsed()
    });
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = handles_in.recv().unwrap();
            let seen = seen.clone();
            thread::spawn(move || {
                for n in 0..POSTS {
                    let seen = seen.clone();
                    handle
                        .post(move |_| seen.lock().unwrap()[t].push(n))
                        .expect("the reactor is alive");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    runner.join().unwrap();
    let seen = seen.lock().unwrap();
    for (t, posts) in seen.iter().enumerate() {
        assert_eq!(posts.len() as u64, POSTS, "thread {t} lost posts");
        assert!(
            posts.windows(2).all(|w| w[0] < w[1]),
            "thread {t}'s posts ran out of order"
        );
    }
}

#[test]
fn posting_to_a_dropped_reactor_fails_cleanly() {
    let mut reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    drop(reactor);
    assert!(handle.post(|_| {}).is_err());
}

fn tls_pair(cx: &mut Context) -> (sslsocket::SocketId, u16) {
    let server_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_files(format!("{CA}server.pem"), format!("{CA}server.key"), None)
        .build()
        .unwrap();
    let server = cx
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_config)
        .unwrap();
    let server = cx.server(server).unwrap();
    let port = server.local_address().port();
    // An echo server.
    server.new_connection().connect(|_, cx, &id| {
        cx.socket(id).unwrap().ready_read().connect(|s, _, _| {
            let data = s.read_all();
            s.write(&data).unwrap();
        });
    });
    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_file(format!("{CA}root-ca.pem"))
        .build()
        .unwrap();
    (cx.ssl_socket(client_config), port)
}

#[test]
fn a_worker_thread_drives_a_socket_through_messages_and_posts() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = tls_pair(reactor.context());
    let (sender, receiver) = crossbeam_channel::unbounded();
    let socket = reactor.socket(id).unwrap();
    socket.forward_to(sender);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let handle = reactor.handle();
    let worker = thread::spawn(move || {
        let mut echoed = Vec::new();
        for message in receiver.iter() {
            match message {
                SocketMessage::Encrypted(id) => {
                    handle
                        .post(move |cx| {
                            cx.socket(id).unwrap().write(b"ping from a worker").unwrap();
                        })
                        .unwrap();
                }
                SocketMessage::Data(id, data) => {
                    echoed.extend(data);
                    if echoed == b"ping from a worker" {
                        handle
                            .post(move |cx| cx.socket(id).unwrap().disconnect_from_host())
                            .unwrap();
                    }
                }
                SocketMessage::Disconnected(_) => break,
                SocketMessage::Error(_, e) => panic!("socket error: {e}"),
                _ => {}
            }
        }
        handle.post(|cx| cx.quit()).unwrap();
        echoed
    });
    run_for(&mut reactor, Duration::from_secs(20));
    assert_eq!(worker.join().unwrap(), b"ping from a worker");
}

#[test]
fn an_embedded_reactor_shares_the_programs_poll() {
    let mut poll = mio::Poll::new().unwrap();
    let mut reactor = Reactor::embedded(poll.registry()).unwrap();
    let (id, port) = tls_pair(reactor.context());
    let socket = reactor.socket(id).unwrap();
    socket.set_user_data(Vec::<u8>::new());
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"embedded").unwrap();
    });
    socket.ready_read().connect(|s, cx, _| {
        let data = s.read_all();
        let got = s.user_data::<Vec<u8>>().unwrap();
        got.extend(data);
        if got.as_slice() == b"embedded" {
            cx.quit();
        }
    });
    socket.connect_to_host_encrypted("127.0.0.1", port).unwrap();
    assert!(
        reactor.step(None).is_err(),
        "an embedded reactor has no poll of its own"
    );
    let mut events = mio::Events::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reactor.take_quit() {
        assert!(
            Instant::now() < deadline,
            "no echo through the embedded reactor"
        );
        let timeout = reactor.next_timeout().unwrap_or(Duration::from_millis(100));
        poll.poll(&mut events, Some(timeout.min(Duration::from_millis(100))))
            .unwrap();
        for event in &events {
            assert!(
                Reactor::owns_token(event.token()),
                "only the reactor registered here"
            );
            reactor.process_event(event);
        }
        reactor.process_pending();
    }
    assert_eq!(
        reactor
            .socket(id)
            .unwrap()
            .user_data::<Vec<u8>>()
            .unwrap()
            .as_slice(),
        b"embedded"
    );
}

#[test]
fn a_panicking_slot_leaves_the_reactor_consistent_and_usable() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = tls_pair(reactor.context());
    let socket = reactor.socket(id).unwrap();
    socket
        .handshake_complete()
        .connect(|_, _, _| panic!("boom in a slot"));
    socket.ready_read().connect(|s, cx, _| {
        if s.read_all() == b"after the panic" {
            cx.quit();
        }
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_for(&mut reactor, Duration::from_secs(20));
    }));
    let message = caught.expect_err("the slot's panic reaches the caller");
    assert_eq!(message.downcast_ref::<&str>(), Some(&"boom in a slot"));
    // The socket is back in place, encrypted, and the loop goes on.
    let socket = reactor.socket(id).expect("the socket survived the panic");
    assert!(socket.is_encrypted());
    socket.write(b"after the panic").unwrap();
    run_for(&mut reactor, Duration::from_secs(20));
}

#[test]
fn an_id_of_another_reactor_reaches_nothing() {
    // Every reactor's first socket takes the same slot: the id must still
    // name only the socket of the reactor that made it (a pool's threads
    // each run a reactor).
    let config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .build()
        .unwrap();
    let mut a = Reactor::new().unwrap();
    let mut b = Reactor::new().unwrap();
    let of_a = a.ssl_socket(config.clone());
    let of_b = b.ssl_socket(config.clone());
    assert_eq!(of_a.to_string(), of_b.to_string(), "the same slot");
    assert_ne!(of_a, of_b);
    assert!(b.socket(of_a).is_none());
    assert!(a.socket(of_b).is_none());
    assert!(!b.context().remove_socket(of_a));
    assert!(
        a.socket(of_a).is_some(),
        "removing a foreign id removed nothing"
    );

    let handle = b.handle();
    let worker = thread::spawn(move || handle.call(of_a, |_| ()).wait());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !worker.is_finished() && Instant::now() < deadline {
        b.step(Some(Duration::from_millis(10))).unwrap();
    }
    let answer = worker.join().unwrap();
    assert!(
        matches!(answer, Err(sslsocket::CallError::NoSuchSocket(id)) if id == of_a),
        "{answer:?}"
    );
}
