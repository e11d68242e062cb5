//! Sockets and other threads: a socket's signals forwarded as messages (to
//! a crossbeam channel, a standard channel, a closure), and workers that
//! answer through a `ReactorHandle`, learning what became of their calls,
//! also when the socket or the reactor is gone. Real TLS on loopback: an
//! echo server in the same reactor.

mod common;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{client_config, run_until, server_config, TIMEOUT};
use sslsocket::{CallError, Context, Error, Reactor, SocketId, SocketMessage, SocketState};

/// An echo server and an unconnected client socket for it; returns the
/// client and the server's port.
fn echo_pair(cx: &mut Context) -> (SocketId, u16) {
    let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = cx.listen(any, server_config()).unwrap();
    let server = cx.server(server).unwrap();
    let port = server.local_address().port();
    server.new_connection().connect(|_, cx, &id| {
        cx.socket(id).unwrap().ready_read().connect(|s, _, _| {
            let data = s.read_all();
            let _ = s.write(&data);
        });
    });
    (cx.ssl_socket(client_config()), port)
}

/// A worker: on `Encrypted` it writes `ping`, on the echo it closes (not
/// waiting for the replies). Returns the echo once the socket disconnected.
fn echo_worker(
    messages: impl Iterator<Item = SocketMessage>,
    handle: sslsocket::ReactorHandle,
) -> Vec<u8> {
    let mut echoed = Vec::new();
    for message in messages {
        match message {
            SocketMessage::Encrypted(id) => drop(handle.write(id, "ping")),
            SocketMessage::Data(id, data) => {
                echoed.extend(data);
                if echoed == b"ping" {
                    drop(handle.disconnect_from_host(id));
                }
            }
            SocketMessage::Disconnected(_) => break,
            SocketMessage::Error(_, e) => panic!("socket error: {e}"),
            _ => {}
        }
    }
    echoed
}

/// Runs the reactor until `worker` finished; returns its result.
fn run_until_joined<T>(reactor: &mut Reactor, worker: thread::JoinHandle<T>) -> T {
    run_until(reactor, TIMEOUT, "the worker thread", |_| {
        worker.is_finished()
    });
    worker.join().unwrap()
}

#[test]
fn a_worker_answers_messages_from_a_crossbeam_channel() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = echo_pair(reactor.context());
    // Through the re-export: no dependency of the program's own.
    let (sender, receiver) = sslsocket::crossbeam_channel::unbounded();
    let socket = reactor.socket(id).unwrap();
    socket.forward_to(sender);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let handle = reactor.handle();
    let worker = thread::spawn(move || echo_worker(receiver.into_iter(), handle));
    assert_eq!(run_until_joined(&mut reactor, worker), b"ping");
}

#[test]
fn a_worker_answers_messages_from_a_std_channel() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = echo_pair(reactor.context());
    let (sender, receiver) = std::sync::mpsc::channel();
    let socket = reactor.socket(id).unwrap();
    socket.forward_to(sender);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let handle = reactor.handle();
    let worker = thread::spawn(move || echo_worker(receiver.into_iter(), handle));
    assert_eq!(run_until_joined(&mut reactor, worker), b"ping");
}

#[test]
fn a_closure_gets_every_message_on_the_reactor_thread() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = echo_pair(reactor.context());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let reactor_thread = thread::current().id();
    let socket = reactor.socket(id).unwrap();
    socket.forward_to(move |message: SocketMessage| {
        assert_eq!(thread::current().id(), reactor_thread);
        log.borrow_mut().push(message);
    });
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"to the closure").unwrap();
    });
    socket
        .ready_read()
        .connect(|s, _, _| s.disconnect_from_host());
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the disconnection", |_| {
        matches!(seen.borrow().last(), Some(SocketMessage::Disconnected(_)))
    });
    let seen = seen.borrow();
    assert!(matches!(seen[0], SocketMessage::Connected(s) if s == id));
    assert!(matches!(seen[1], SocketMessage::Encrypted(s) if s == id));
    let data: Vec<u8> = seen
        .iter()
        .filter_map(|m| match m {
            SocketMessage::Data(_, data) => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data, b"to the closure");
    assert!(
        !seen.iter().any(|m| matches!(m, SocketMessage::Error(..))),
        "{seen:?}"
    );
}

#[test]
fn a_second_sink_gets_the_events_and_no_empty_data() {
    // The first sink takes the data; the second, connected after it, used
    // to get a Data message with nothing in it for every arrival.
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = echo_pair(reactor.context());
    let first = Rc::new(RefCell::new(Vec::new()));
    let second = Rc::new(RefCell::new(Vec::new()));
    let socket = reactor.socket(id).unwrap();
    for log in [Rc::clone(&first), Rc::clone(&second)] {
        socket.forward_to(move |message: SocketMessage| log.borrow_mut().push(message));
    }
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"to the first sink").unwrap();
    });
    socket
        .ready_read()
        .connect(|s, _, _| s.disconnect_from_host());
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    run_until(&mut reactor, TIMEOUT, "the disconnection", |_| {
        matches!(second.borrow().last(), Some(SocketMessage::Disconnected(_)))
    });
    let data = |log: &Rc<RefCell<Vec<SocketMessage>>>| -> Vec<Vec<u8>> {
        log.borrow()
            .iter()
            .filter_map(|m| match m {
                SocketMessage::Data(_, data) => Some(data.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(data(&first).concat(), b"to the first sink");
    assert_eq!(data(&second), Vec::<Vec<u8>>::new());
    assert!(matches!(second.borrow()[1], SocketMessage::Encrypted(s) if s == id));
}

#[test]
fn a_worker_learns_what_became_of_its_writes_and_calls() {
    let mut reactor = Reactor::new().unwrap();
    let (id, port) = echo_pair(reactor.context());
    let (sender, receiver) = sslsocket::crossbeam_channel::unbounded();
    let socket = reactor.socket(id).unwrap();
    socket.forward_to(sender);
    socket.connect_to_host_encrypted("localhost", port).unwrap();
    let handle = reactor.handle();
    let worker = thread::spawn(move || {
        let mut echoed = Vec::new();
        for message in receiver {
            match message {
                SocketMessage::Encrypted(id) => {
                    assert_eq!(handle.write(id, "ping").wait().unwrap().unwrap(), 4);
                }
                SocketMessage::Data(id, data) => {
                    echoed.extend(data);
                    if echoed == b"ping" {
                        handle.disconnect_from_host(id).wait().unwrap();
                    }
                }
                SocketMessage::Disconnected(_) => break,
                _ => {}
            }
        }
        // Closed: the socket is there, and refuses the write.
        let refused = handle.write(id, b"late".to_vec()).wait().unwrap();
        assert!(
            matches!(refused, Err(Error::InvalidState(_))),
            "{refused:?}"
        );
        let state = handle.call(id, |s| s.state()).wait();
        assert_eq!(state, Ok(SocketState::Unconnected));
        // Removed: the closure does not run.
        handle
            .post(move |cx| assert!(cx.remove_socket(id)))
            .unwrap();
        let gone = handle.call(id, |_| unreachable!("no socket to run on"));
        assert_eq!(gone.wait(), Err(CallError::NoSuchSocket(id)));
        assert_eq!(
            handle.write(id, "x").wait().unwrap_err(),
            CallError::NoSuchSocket(id)
        );
        echoed
    });
    assert_eq!(run_until_joined(&mut reactor, worker), b"ping");
}

#[test]
fn calls_fail_at_once_when_the_reactor_goes() {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let handle = reactor.handle();
    let (posted, was_posted) = mpsc::channel();
    let waiter = thread::spawn(move || {
        // Posted to a reactor that will never run it.
        let reply = handle.call(id, |s| s.state());
        posted.send(()).unwrap();
        let pending = reply.wait();
        // Made after the reactor is gone.
        let late = handle.write(id, "x").wait().map(|_| ());
        (pending, late)
    });
    was_posted.recv_timeout(TIMEOUT).unwrap();
    drop(reactor);
    let (pending, late) = waiter.join().unwrap();
    assert_eq!(pending, Err(CallError::ReactorGone));
    assert_eq!(late, Err(CallError::ReactorGone));
}

#[test]
fn waiting_gives_up_after_its_timeout() {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let handle = reactor.handle();
    let waiter = thread::spawn(move || {
        let reply = handle.call(id, |s| s.state());
        reply.wait_timeout(Duration::from_millis(50))
    });
    // The reactor is not stepped meanwhile.
    assert_eq!(waiter.join().unwrap(), Err(CallError::Timeout));
    drop(reactor);
}

#[test]
fn waiting_on_the_reactor_thread_is_an_error_not_a_deadlock() {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let handle = reactor.handle();
    assert_eq!(
        handle.call(id, |s| s.state()).wait(),
        Err(CallError::OnReactorThread)
    );
    // An answer already there is handed out, on any thread.
    let reply = handle.call(id, |s| s.state());
    run_until(&mut reactor, TIMEOUT, "the answer", |_| reply.is_ready());
    assert_eq!(reply.wait(), Ok(SocketState::Unconnected));
}

#[test]
fn a_call_that_panics_says_so_and_the_panic_reaches_the_reactor() {
    let mut reactor = Reactor::new().unwrap();
    let id = reactor.ssl_socket(client_config());
    let handle = reactor.handle();
    let waiter = thread::spawn(move || handle.call(id, |_| panic!("in a call")).wait());
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run_until(&mut reactor, TIMEOUT, "the call", |_| waiter.is_finished());
    }));
    let panic = caught.expect_err("the call's panic leaves run");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"in a call"));
    assert_eq!(waiter.join().unwrap(), Err(CallError::Panicked));
    assert!(reactor.socket(id).is_some(), "the reactor stays usable");
}
