//! Sockets and other threads: a socket's signals forwarded as messages (to
//! a crossbeam channel, a standard channel, a closure), and workers that
//! answer through a `ReactorHandle`. Real TLS on loopback: an echo server
//! in the same reactor.

mod common;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::thread;

use common::{client_config, run_until, server_config, TIMEOUT};
use sslsocket::{Context, Reactor, SocketId, SocketMessage};

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

/// What a worker does with one message: on `Encrypted` it sends `ping`
/// through `post`, on the echo it closes. Returns the echo once the
/// socket disconnected.
fn echo_worker(
    messages: impl Iterator<Item = SocketMessage>,
    handle: sslsocket::ReactorHandle,
) -> Vec<u8> {
    let mut echoed = Vec::new();
    for message in messages {
        match message {
            SocketMessage::Encrypted(id) => {
                let write = move |cx: &mut Context| {
                    cx.socket(id).unwrap().write(b"ping").unwrap();
                };
                handle.post(write).unwrap();
            }
            SocketMessage::Data(id, data) => {
                echoed.extend(data);
                if echoed == b"ping" {
                    let close =
                        move |cx: &mut Context| cx.socket(id).unwrap().disconnect_from_host();
                    handle.post(close).unwrap();
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
