//! Misuse of the API: each case is a typed error or a documented no-op,
//! never a panic, a hang or a corrupted reactor. Peers are our own server
//! in the same reactor (and, where bytes on the wire are counted, a relay).

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use sslsocket::{Error, Reactor, SlotId, SocketId, SocketState, SslSocket};

/// What our server does with an accepted connection.
type Handler = fn(&mut SslSocket);

/// Accepts and does nothing (the probe records).
fn idle(_: &mut SslSocket) {}

/// Sends a banner and closes at once (data and close_notify together).
fn banner(socket: &mut SslSocket) {
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"hello, then goodbye\n").unwrap();
        s.disconnect_from_host();
    });
}

/// A reactor with our server on 127.0.0.1 and a client socket.
struct Pair {
    reactor: Reactor,
    port: u16,
    client: SocketId,
    probe: Shared,
    /// The server's accepted sockets: id, probe (collecting data), and
    /// what they received.
    accepted: Rc<RefCell<Vec<(SocketId, Shared)>>>,
}

impl Pair {
    /// The server and an unconnected client whose probe collects data when
    /// `collect` is set.
    fn new(handler: Handler, collect: bool) -> Pair {
        let mut reactor = Reactor::new().unwrap();
        let server = reactor
            .listen("127.0.0.1:0".parse().unwrap(), server_config())
            .unwrap();
        let server = reactor.server(server).unwrap();
        server.set_handshake_timeout(None);
        let port = server.local_address().port();
        let accepted: Rc<RefCell<Vec<(SocketId, Shared)>>> = Rc::default();
        let list = accepted.clone();
        server.new_connection().connect(move |_, cx, &id| {
            let socket = cx.socket(id).unwrap();
            list.borrow_mut().push((id, probe(socket, true)));
            handler(socket);
        });
        let (client, probe) = client_socket(&mut reactor, client_config(), collect);
        Pair {
            reactor,
            port,
            client,
            probe,
            accepted,
        }
    }

    fn socket(&mut self) -> &mut SslSocket {
        self.reactor.socket(self.client).expect("the client socket")
    }

    /// Connects the client and runs until both ends are encrypted.
    fn connect(&mut self) {
        let port = self.port;
        self.socket()
            .connect_to_host_encrypted("localhost", port)
            .unwrap();
        let (probe, accepted) = (self.probe.clone(), self.accepted.clone());
        run_until(&mut self.reactor, TIMEOUT, "both ends encrypted", |_| {
            let a = accepted.borrow();
            probe.borrow().handshake_done() && a.len() == 1 && a[0].1.borrow().handshake_done()
        });
    }

    fn run_until_disconnected(&mut self) {
        let probe = self.probe.clone();
        run_until(&mut self.reactor, TIMEOUT, "disconnected", |_| {
            probe.borrow().disconnected()
        });
    }

    fn server_probe(&self) -> Shared {
        self.accepted.borrow()[0].1.clone()
    }

    fn count(&self, event: &Event) -> usize {
        self.probe
            .borrow()
            .events
            .iter()
            .filter(|e| *e == event)
            .count()
    }
}

fn is_invalid_state<T: std::fmt::Debug>(result: &sslsocket::Result<T>) -> bool {
    matches!(result, Err(Error::InvalidState(_)))
}

// ---- writing, closing, reading ----

#[test]
fn writing_after_disconnect_from_host_is_invalid_state() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    let socket = pair.socket();
    assert_eq!(socket.write(b"before\n").unwrap(), 7);
    socket.disconnect_from_host();
    let late = socket.write(b"late\n");
    assert!(is_invalid_state(&late), "closing: {late:?}");
    pair.run_until_disconnected();
    let after = pair.socket().write(b"later still\n");
    assert!(is_invalid_state(&after), "closed: {after:?}");
    // What was written before the close went out; nothing after it.
    let server = pair.server_probe();
    run_until(&mut pair.reactor, TIMEOUT, "the server's end", |_| {
        server.borrow().disconnected()
    });
    assert_eq!(server.borrow().data, b"before\n");
    assert_eq!(pair.probe.borrow().errors(), vec![]);
}

#[test]
fn writing_after_the_peer_closed_is_invalid_state() {
    let mut pair = Pair::new(banner, true);
    pair.connect();
    pair.run_until_disconnected();
    let result = pair.socket().write(b"too late\n");
    assert!(is_invalid_state(&result), "{result:?}");
    assert_eq!(pair.probe.borrow().data, b"hello, then goodbye\n");
}

#[test]
fn closing_twice_is_a_no_op_with_one_disconnected() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    let socket = pair.socket();
    socket.disconnect_from_host();
    assert_eq!(socket.state(), SocketState::Closing);
    socket.disconnect_from_host();
    assert_eq!(socket.state(), SocketState::Closing);
    pair.run_until_disconnected();
    let socket = pair.socket();
    assert_eq!(socket.state(), SocketState::Unconnected);
    // Closing (or aborting) a closed socket does nothing.
    socket.disconnect_from_host();
    socket.abort();
    socket.disconnect_from_host();
    assert_eq!(socket.state(), SocketState::Unconnected);
    run_for(&mut pair.reactor, Duration::from_millis(100));
    assert_eq!(
        pair.count(&Event::Disconnected),
        1,
        "{:?}",
        pair.probe.borrow().events
    );
    assert_eq!(pair.probe.borrow().errors(), vec![]);
    assert!(pair.socket().last_error().is_none());
}

#[test]
fn aborting_twice_is_a_no_op_with_one_disconnected() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    pair.socket().abort();
    pair.socket().abort();
    pair.run_until_disconnected();
    pair.socket().abort();
    run_for(&mut pair.reactor, Duration::from_millis(100));
    assert_eq!(pair.count(&Event::Disconnected), 1);
    assert_eq!(pair.probe.borrow().errors(), vec![]);
}

#[test]
fn reading_an_unconnected_socket_is_invalid_state() {
    let mut reactor = Reactor::new().unwrap();
    let (id, _probe) = client_socket(&mut reactor, client_config(), false);
    let socket = reactor.socket(id).unwrap();
    let mut buf = [0u8; 16];
    let result = socket.read(&mut buf);
    assert!(is_invalid_state(&result), "{result:?}");
    assert_eq!(socket.read_all(), b"");
    assert_eq!(socket.take_line(), None);
    assert_eq!(socket.bytes_available(), 0);
}

#[test]
fn data_received_before_the_end_stays_readable_after_it() {
    // No ready_read slot: the data waits in the socket.
    let mut pair = Pair::new(banner, false);
    pair.connect();
    pair.run_until_disconnected();
    let socket = pair.socket();
    assert_eq!(socket.state(), SocketState::Unconnected);
    let text = b"hello, then goodbye\n";
    assert_eq!(socket.bytes_available(), text.len());
    let mut buf = [0u8; 6];
    assert_eq!(socket.read(&mut buf).unwrap(), 6);
    assert_eq!(&buf, b"hello,");
    assert_eq!(socket.take_line().unwrap(), b" then goodbye\n");
    // Drained: now it is an unconnected socket without data.
    let result = socket.read(&mut buf);
    assert!(is_invalid_state(&result), "{result:?}");
}

// ---- removing a socket from its own slot ----

/// What a client did after it removed itself.
#[derive(Default)]
struct AfterRemoval {
    removed: Cell<bool>,
    /// Signals that fired after the removal.
    late: RefCell<Vec<&'static str>>,
}

/// Connects every signal of `socket` to note emissions after `log.removed`.
fn watch_after_removal(socket: &mut SslSocket, log: &Rc<AfterRemoval>) {
    macro_rules! watch {
        ($signal:ident) => {{
            let log = log.clone();
            socket.$signal().connect(move |_, _, _| {
                if log.removed.get() {
                    log.late.borrow_mut().push(stringify!($signal));
                }
            });
        }};
    }
    watch!(state_changed);
    watch!(ready_read);
    watch!(bytes_written);
    watch!(read_channel_finished);
    watch!(alert_received);
    watch!(alert_sent);
    watch!(disconnected);
    watch!(error_occurred);
}

/// The banner server's data, close_notify and FIN reach the client in the
/// same round; its `ready_read` slot removes the socket (`how`), and nothing
/// of the rest may be emitted.
fn remove_from_own_slot(how: fn(&mut SslSocket, &mut sslsocket::Context)) {
    let mut pair = Pair::new(banner, false);
    let log = Rc::new(AfterRemoval::default());
    let socket = pair.socket();
    watch_after_removal(socket, &log);
    let l = log.clone();
    socket.ready_read().connect(move |s, cx, _| {
        assert!(!l.removed.get(), "ready_read after the removal");
        assert_eq!(s.read_all(), b"hello, then goodbye\n");
        how(s, cx);
        l.removed.set(true);
    });
    let client = pair.client;
    let count_before = pair.reactor.object_count();
    assert_eq!(count_before, 2, "the server and the client");
    let port = pair.port;
    pair.socket()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    let server = pair.accepted.clone();
    run_until(
        &mut pair.reactor,
        TIMEOUT,
        "the removal and the server's end",
        |r| {
            let a = server.borrow();
            log.removed.get()
                && r.socket(client).is_none()
                && a.len() == 1
                && a[0].1.borrow().disconnected()
        },
    );
    run_for(&mut pair.reactor, Duration::from_millis(100));
    assert_eq!(
        *log.late.borrow(),
        Vec::<&str>::new(),
        "signals after the removal"
    );
    assert!(pair.reactor.socket(client).is_none());
    assert!(!pair.reactor.remove_socket(client), "already removed");
    // The server is left (its accepted socket deleted itself).
    assert_eq!(pair.reactor.object_count(), 1);
    // The probe saw nothing after the removal either.
    let p = pair.probe.borrow();
    assert_eq!(p.events, vec![Event::Connected, Event::HandshakeComplete]);
}

#[test]
fn a_socket_removed_inside_its_own_slot_emits_nothing_more() {
    remove_from_own_slot(|s, cx| {
        assert!(cx.remove_socket(s.id()), "the socket exists");
        // Not reachable through the context while its slot runs.
        assert!(cx.socket(s.id()).is_none());
    });
}

#[test]
fn a_socket_deleted_later_inside_its_own_slot_emits_nothing_more() {
    remove_from_own_slot(|s, _| s.delete_later());
}

#[test]
fn delete_later_from_outside_removes_the_socket_at_the_next_step() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    let client = pair.client;
    pair.socket().delete_later();
    run_until(&mut pair.reactor, TIMEOUT, "the removal", |r| {
        r.socket(client).is_none()
    });
    let server = pair.server_probe();
    run_until(&mut pair.reactor, TIMEOUT, "the server's end", |_| {
        server.borrow().disconnected()
    });
    assert_eq!(pair.reactor.object_count(), 1);
    assert!(
        !pair.probe.borrow().disconnected(),
        "no signal after deletion"
    );
}

// ---- arguments and states ----

#[test]
fn invalid_host_names_and_ports_are_invalid_input() {
    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let long_name = format!("{}.example", "a".repeat(300));
    let very_long_name = "b".repeat(70_000);
    let cases: [(&str, u16); 9] = [
        ("", 443),
        ("localhost", 0),
        ("", 0),
        ("local host", 443),
        (" localhost", 443),
        ("localhost\n", 443),
        ("local\0host", 443),
        (&long_name, 443),
        (&very_long_name, 443),
    ];
    let socket = reactor.socket(id).unwrap();
    for (host, port) in cases {
        let shown = &host[..host.len().min(20)];
        let plain = socket.connect_to_host(host, port);
        assert!(
            matches!(plain, Err(Error::InvalidInput(_))),
            "connect_to_host({shown:?}, {port}): {plain:?}"
        );
        let tls = socket.connect_to_host_encrypted(host, port);
        assert!(
            matches!(tls, Err(Error::InvalidInput(_))),
            "connect_to_host_encrypted({shown:?}, {port}): {tls:?}"
        );
        assert_eq!(socket.state(), SocketState::Unconnected);
    }
    run_for(&mut reactor, Duration::from_millis(50));
    assert_eq!(probe.borrow().events, vec![], "refused calls emit nothing");
    // The socket is still usable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host("127.0.0.1", port)
        .unwrap();
    run_until(&mut reactor, TIMEOUT, "connected", |_| {
        probe.borrow().has(&Event::Connected)
    });
}

#[test]
fn an_empty_write_is_ok_zero_and_sends_nothing() {
    let mut pair = Pair::new(idle, true);
    // Before connecting, too.
    assert_eq!(pair.socket().write(b"").unwrap(), 0);
    assert_eq!(pair.socket().bytes_to_write(), 0);
    // Through a relay that counts the bytes.
    let relay = FaultRelay::start(([127, 0, 0, 1], pair.port).into(), RelayMode::Plain, None);
    pair.socket()
        .connect_to_host_encrypted("localhost", relay.port())
        .unwrap();
    let (probe, accepted) = (pair.probe.clone(), pair.accepted.clone());
    run_until(&mut pair.reactor, TIMEOUT, "both ends encrypted", |_| {
        let a = accepted.borrow();
        probe.borrow().handshake_done() && a.len() == 1 && a[0].1.borrow().handshake_done()
    });
    run_for(&mut pair.reactor, Duration::from_millis(50));
    let up = relay.forwarded(Flow::ToTarget);
    let written = pair.probe.borrow().bytes_written;
    let socket = pair.socket();
    assert_eq!(socket.write(b"").unwrap(), 0);
    assert_eq!(socket.bytes_to_write(), 0);
    assert!(socket.flush());
    run_for(&mut pair.reactor, Duration::from_millis(200));
    assert_eq!(relay.forwarded(Flow::ToTarget), up, "no byte went out");
    assert_eq!(
        pair.probe.borrow().bytes_written,
        written,
        "no bytes_written"
    );
    assert_eq!(pair.server_probe().borrow().data, b"");
    // A real write does go out (the count can move; the relay counts
    // after its write returns, so wait for it too).
    pair.socket().write(b"x").unwrap();
    let server = pair.server_probe();
    run_until(&mut pair.reactor, TIMEOUT, "the byte", |_| {
        server.borrow().data == b"x" && relay.forwarded(Flow::ToTarget) > up
    });
}

#[test]
fn a_64_mib_write_in_one_call_is_delivered_byte_exact() {
    const LEN: usize = 64 << 20;
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let port = reactor.server(server).unwrap().local_address().port();
    let checker = Rc::new(RefCell::new(PatternChecker::default()));
    let c = checker.clone();
    reactor
        .server(server)
        .unwrap()
        .new_connection()
        .connect(move |_, cx, &id| {
            let c = c.clone();
            cx.socket(id)
                .unwrap()
                .ready_read()
                .connect(move |s, _, _| c.borrow_mut().feed(&s.read_all()));
        });
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    socket.handshake_complete().connect(|s, _, _| {
        let data = pattern(LEN);
        assert_eq!(s.write(&data).unwrap(), LEN);
        assert_eq!(s.bytes_to_write(), LEN as u64);
    });
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT * 2, "all 64 MiB", |_| {
        checker.borrow().received >= LEN as u64 || probe.borrow().disconnected()
    });
    let c = checker.borrow();
    assert_eq!(c.first_mismatch, None, "data differs");
    assert_eq!(c.received, LEN as u64);
    assert_eq!(probe.borrow().bytes_written, LEN as u64);
    assert_eq!(reactor.socket(id).unwrap().bytes_to_write(), 0);
    assert_eq!(probe.borrow().errors(), vec![]);
}

#[test]
fn connecting_twice_is_invalid_state() {
    let mut pair = Pair::new(idle, true);
    let port = pair.port;
    let socket = pair.socket();
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    assert_eq!(socket.state(), SocketState::HostLookup);
    for result in [
        socket.connect_to_host("localhost", port),
        socket.connect_to_host_encrypted("localhost", port),
        socket.connect_to_host("127.0.0.1", port),
    ] {
        assert!(is_invalid_state(&result), "{result:?}");
    }
    // The first connection goes on undisturbed.
    let probe = pair.probe.clone();
    run_until(&mut pair.reactor, TIMEOUT, "encrypted", |_| {
        probe.borrow().handshake_done()
    });
    let again = pair.socket().connect_to_host_encrypted("localhost", port);
    assert!(is_invalid_state(&again), "while encrypted: {again:?}");
    assert_eq!(pair.probe.borrow().errors(), vec![]);
    assert_eq!(pair.count(&Event::Connected), 1);
}

#[test]
fn starting_encryption_on_an_unconnected_or_encrypted_socket_is_invalid_state() {
    let mut pair = Pair::new(idle, true);
    let socket = pair.socket();
    for result in [
        socket.start_client_encryption(),
        socket.start_server_encryption(),
    ] {
        assert!(is_invalid_state(&result), "unconnected: {result:?}");
    }
    assert_eq!(socket.state(), SocketState::Unconnected);
    pair.connect();
    let socket = pair.socket();
    for result in [
        socket.start_client_encryption(),
        socket.start_server_encryption(),
    ] {
        assert!(is_invalid_state(&result), "encrypted: {result:?}");
    }
    assert!(socket.is_encrypted());
}

#[test]
fn changing_the_configuration_while_connected_is_invalid_state() {
    let mut pair = Pair::new(idle, true);
    assert!(pair.socket().set_ssl_configuration(client_config()).is_ok());
    pair.connect();
    let result = pair.socket().set_ssl_configuration(server_config());
    assert!(is_invalid_state(&result), "{result:?}");
    // The configuration in use did not change.
    assert!(pair
        .socket()
        .ssl_configuration()
        .local_certificate()
        .is_none());
    pair.socket().disconnect_from_host();
    pair.run_until_disconnected();
    assert!(pair.socket().set_ssl_configuration(client_config()).is_ok());
}

#[test]
fn a_stale_socket_id_resolves_to_nothing() {
    let mut reactor = Reactor::new().unwrap();
    let stale = reactor.ssl_socket(client_config());
    assert!(reactor.remove_socket(stale));
    assert!(reactor.socket(stale).is_none());
    assert!(!reactor.remove_socket(stale));
    // A new socket may reuse the slot; the old id must not reach it.
    let fresh = reactor.ssl_socket(client_config());
    assert_ne!(fresh, stale);
    assert!(reactor.socket(stale).is_none());
    assert!(reactor.socket(fresh).is_some());
    assert!(!reactor.remove_socket(stale));
    assert!(
        reactor.socket(fresh).is_some(),
        "the stale id removed the new socket"
    );
    assert_eq!(reactor.object_count(), 1);
}

// ---- panics in user code ----

/// Runs `f`, expecting it to panic with `message`.
fn expect_panic(message: &str, f: impl FnOnce()) {
    let caught = catch_unwind(AssertUnwindSafe(f)).expect_err("the panic reaches the caller");
    let text = caught
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| caught.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert_eq!(text, message);
}

#[test]
fn a_panicking_timer_callback_leaves_the_reactor_consistent_and_usable() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    let fired = Rc::new(Cell::new(0));
    let f = fired.clone();
    pair.reactor
        .start_timer(Duration::from_millis(10), |_, _| panic!("boom in a timer"));
    // Due later than the panicking one: it still fires, after the panic.
    pair.reactor
        .start_timer(Duration::from_millis(30), move |_, _| f.set(f.get() + 1));
    let reactor = &mut pair.reactor;
    expect_panic("boom in a timer", || {
        run_for(reactor, Duration::from_secs(5));
    });
    run_until(&mut pair.reactor, TIMEOUT, "the second timer", |_| {
        fired.get() == 1
    });
    // The socket is in place and works.
    assert_eq!(pair.reactor.object_count(), 3);
    assert!(pair.socket().is_encrypted());
    pair.socket().write(b"after the panic\n").unwrap();
    let server = pair.server_probe();
    run_until(&mut pair.reactor, TIMEOUT, "the data", |_| {
        server.borrow().data == b"after the panic\n"
    });
    assert_eq!(fired.get(), 1, "the timer fired once");
}

#[test]
fn a_panicking_repeating_timer_keeps_its_schedule() {
    let mut reactor = Reactor::new().unwrap();
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let id = reactor.start_repeating_timer(Duration::from_millis(5), move |_, _| {
        t.set(t.get() + 1);
        if t.get() == 2 {
            panic!("boom on the second tick");
        }
    });
    expect_panic("boom on the second tick", || loop {
        reactor.step(Some(Duration::from_millis(20))).unwrap();
    });
    run_until(&mut reactor, TIMEOUT, "more ticks", |_| ticks.get() >= 4);
    assert!(reactor.cancel_timer(id), "still scheduled after its panic");
}

#[test]
fn a_panicking_posted_task_leaves_the_rest_for_the_next_step() {
    let mut pair = Pair::new(idle, true);
    pair.connect();
    let handle = pair.reactor.handle();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let client = pair.client;
    std::thread::spawn(move || {
        handle.post(move |_| o1.lock().unwrap().push(1)).unwrap();
        handle.post(|_| panic!("boom in a task")).unwrap();
        handle
            .post(move |cx| {
                o2.lock().unwrap().push(3);
                // The context is consistent: the socket is reachable.
                cx.socket(client).unwrap().write(b"from a task\n").unwrap();
            })
            .unwrap();
    })
    .join()
    .unwrap();
    let reactor = &mut pair.reactor;
    expect_panic("boom in a task", || {
        run_for(reactor, Duration::from_secs(5));
    });
    let server = pair.server_probe();
    let order2 = order.clone();
    run_until(
        &mut pair.reactor,
        TIMEOUT,
        "the task after the panic",
        |_| order2.lock().unwrap().len() == 2 && server.borrow().data == b"from a task\n",
    );
    assert_eq!(*order.lock().unwrap(), vec![1, 3]);
    assert_eq!(pair.reactor.object_count(), 3);
}

#[test]
fn a_panicking_server_slot_leaves_the_connection_usable() {
    let mut reactor = Reactor::new().unwrap();
    let server = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let port = reactor.server(server).unwrap().local_address().port();
    let accepted = Rc::new(Cell::new(None));
    let a = accepted.clone();
    reactor
        .server(server)
        .unwrap()
        .new_connection()
        .connect(move |_, cx, &id| {
            a.set(Some(id));
            // Echo, connected before the panic.
            cx.socket(id).unwrap().ready_read().connect(|s, _, _| {
                let data = s.read_all();
                s.write(&data).unwrap();
            });
            panic!("boom in new_connection");
        });
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    reactor
        .socket(id)
        .unwrap()
        .connect_to_host_encrypted("localhost", port)
        .unwrap();
    let r = &mut reactor;
    expect_panic("boom in new_connection", || {
        run_for(r, Duration::from_secs(5));
    });
    reactor.socket(id).unwrap().write(b"echo me\n").unwrap();
    run_until(&mut reactor, TIMEOUT, "the echo", |_| {
        probe.borrow().data == b"echo me\n"
    });
    assert!(reactor.socket(accepted.get().unwrap()).is_some());
    assert_eq!(reactor.object_count(), 3);
}

// ---- slots changing slots during an emission ----

#[test]
fn slots_connected_or_disconnected_during_an_emission() {
    let mut pair = Pair::new(idle, true);
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let socket = pair.socket();
    // A disconnects itself on its first run: it runs exactly once.
    let a_id: Rc<Cell<Option<SlotId>>> = Rc::default();
    let (l, me) = (log.clone(), a_id.clone());
    a_id.set(Some(socket.state_changed().connect(move |s, _, state| {
        l.borrow_mut().push(format!("A {state:?}"));
        assert!(s.state_changed().disconnect(me.get().unwrap()));
    })));
    // B, on its first run, connects C (which runs from the next emission
    // on) and disconnects D (connected after B: it never runs).
    let d_id: Rc<Cell<Option<SlotId>>> = Rc::default();
    let (l, d, first) = (log.clone(), d_id.clone(), Rc::new(Cell::new(true)));
    socket.state_changed().connect(move |s, _, state| {
        l.borrow_mut().push(format!("B {state:?}"));
        if first.replace(false) {
            let l2 = l.clone();
            s.state_changed()
                .connect(move |_, _, state| l2.borrow_mut().push(format!("C {state:?}")));
            assert!(s.state_changed().disconnect(d.get().unwrap()));
            // Disconnecting twice is refused.
            assert!(!s.state_changed().disconnect(d.get().unwrap()));
        }
    });
    let l = log.clone();
    d_id.set(Some(socket.state_changed().connect(move |_, _, state| {
        l.borrow_mut().push(format!("D {state:?}"));
    })));
    pair.connect();
    let log = log.borrow();
    assert_eq!(
        *log,
        vec![
            "A HostLookup",
            "B HostLookup",
            "B Connecting",
            "C Connecting",
            "B Connected",
            "C Connected",
            "B Handshaking",
            "C Handshaking",
            "B Encrypted",
            "C Encrypted",
        ]
    );
    // A and D are gone for good: disconnecting them again fails.
    let socket = pair.socket();
    assert!(!socket.state_changed().disconnect(a_id.get().unwrap()));
    assert!(!socket.state_changed().disconnect(d_id.get().unwrap()));
}

#[test]
fn disconnect_all_during_an_emission_stops_the_remaining_slots() {
    let mut pair = Pair::new(idle, true);
    let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let socket = pair.socket();
    let l = log.clone();
    socket.state_changed().connect(move |s, _, _| {
        l.borrow_mut().push("first");
        s.state_changed().disconnect_all();
    });
    let l = log.clone();
    socket
        .state_changed()
        .connect(move |_, _, _| l.borrow_mut().push("second"));
    pair.connect();
    assert_eq!(*log.borrow(), vec!["first"]);
    assert!(!pair.socket().state_changed().is_connected());
}

#[test]
fn start_server_encryption_without_a_certificate_is_refused_at_the_call() {
    // As listen refuses such a configuration: said at once, the socket
    // untouched (before: Ok, then a refusal blaming cipher suites, or a
    // wait for the handshake timeout).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let seen = outcome.clone();
    let socket = reactor.socket(id).unwrap();
    socket.connected().connect(move |s, _, _| {
        let result = s.start_server_encryption();
        *seen.borrow_mut() = Some(match result {
            Err(sslsocket::Error::InvalidConfiguration(text)) => text,
            other => format!("unexpected: {other:?}"),
        });
        s.write(b"still plaintext\n").unwrap();
    });
    socket.connect_to_host("127.0.0.1", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the call's outcome", |_| {
        outcome.borrow().is_some()
    });
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let text = outcome.borrow().clone().unwrap();
    assert!(text.contains("needs a local certificate"), "{text}");
    let socket = reactor.socket(id).unwrap();
    assert_eq!(socket.state(), SocketState::Connected);
    assert_eq!(socket.mode(), sslsocket::SslMode::UnencryptedMode);
    run_for(&mut reactor, Duration::from_millis(50));
    let mut line = [0u8; 16];
    std::io::Read::read_exact(&mut peer, &mut line).unwrap();
    assert_eq!(&line, b"still plaintext\n");
}

#[test]
fn a_peer_verify_name_with_a_nul_is_refused_at_the_connect_call() {
    // Before: accepted, then the handshake failed with GnuTLS's opaque
    // "The request is invalid".
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let socket = reactor.socket(id).unwrap();
    socket.set_peer_verify_name("localhost\0.evil");
    let result = socket.connect_to_host_encrypted("localhost", 443);
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    assert_eq!(socket.state(), SocketState::Unconnected);
}
