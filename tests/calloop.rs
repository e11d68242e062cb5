//! The reactor as a calloop event source (`--features calloop`): sockets,
//! reactor timers, posts from other threads and work started from another
//! source's callback all make progress inside a calloop loop, with no other
//! source to wake it.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calloop::timer::{TimeoutAction, Timer};
use calloop::{Dispatcher, EventLoop};
use common::*;
use sslsocket::{QuitRequested, Reactor, ReactorSource, SocketId, SocketState};

/// How long a test may take before it fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a loop run saw.
#[derive(Default)]
struct Outcome {
    quit: bool,
    timed_out: bool,
}

/// Runs `event_loop` until the reactor asks to quit or [`DEADLINE`] passes.
/// The reactor source must already be in the loop ([`insert_reactor`]).
fn run(event_loop: &mut EventLoop<'_, Outcome>) -> Outcome {
    let signal = event_loop.get_signal();
    event_loop
        .handle()
        .insert_source(Timer::from_duration(DEADLINE), move |_, _, outcome| {
            outcome.timed_out = true;
            signal.stop();
            TimeoutAction::Drop
        })
        .expect("deadline timer");
    let mut outcome = Outcome::default();
    event_loop
        .run(None, &mut outcome, |_| {})
        .expect("calloop loop");
    outcome
}

/// Puts `reactor` into `event_loop` as a source whose callback records the
/// quit request and stops the loop; the dispatcher reaches the source
/// afterwards.
fn insert_reactor(
    event_loop: &mut EventLoop<'static, Outcome>,
    reactor: Reactor,
) -> Dispatcher<'static, ReactorSource, Outcome> {
    let signal = event_loop.get_signal();
    let dispatcher = Dispatcher::new(
        ReactorSource::new(reactor).unwrap(),
        move |QuitRequested, _: &mut Reactor, outcome: &mut Outcome| {
            outcome.quit = true;
            signal.stop();
        },
    );
    event_loop
        .handle()
        .register_dispatcher(dispatcher.clone())
        .unwrap();
    dispatcher
}

/// The CPU time this thread has used, in clock ticks (usually 10 ms), from
/// `/proc/thread-self/stat` (utime + stime).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// `openssl s_server -rev` (answers each line reversed) with the test chain.
fn reversing_server() -> OpensslServer {
    let args = server_cert_args();
    let mut spawn_args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_args.push("-rev");
    s_server(&spawn_args, None, None, false)
}

/// A client socket for "localhost" that collects what it reads and quits
/// the reactor once `wanted` arrived.
fn reading_client(
    reactor: &mut Reactor,
    wanted: &'static [u8],
) -> (SocketId, Rc<RefCell<Vec<u8>>>) {
    let id = reactor.ssl_socket(client_config());
    let received = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&received);
    let socket = reactor.socket(id).unwrap();
    socket.ready_read().connect(move |s, _, _| {
        sink.borrow_mut().extend(s.read_all());
        if contains(&sink.borrow(), wanted) {
            s.disconnect_from_host();
        }
    });
    socket.disconnected().connect(|_, cx, _| cx.quit());
    socket
        .error_occurred()
        .connect(|_, _, e| panic!("client error: {e}"));
    (id, received)
}

#[test]
fn a_tls_exchange_with_openssl_runs_inside_a_calloop_loop() {
    let server = reversing_server();
    let mut reactor = Reactor::new().unwrap();
    let (id, received) = reading_client(&mut reactor, b"poollac olleh\n");
    let socket = reactor.socket(id).unwrap();
    socket.handshake_complete().connect(|s, _, _| {
        s.write(b"hello calloop\n").unwrap();
    });
    // A name, so the lookup's worker thread wakes the loop too.
    socket
        .connect_to_host_encrypted("localhost", server.port)
        .unwrap();

    let mut event_loop = EventLoop::try_new().unwrap();
    let dispatcher = insert_reactor(&mut event_loop, reactor);
    let outcome = run(&mut event_loop);

    assert!(!outcome.timed_out, "the exchange did not finish");
    assert!(outcome.quit);
    assert!(contains(&received.borrow(), b"poollac olleh\n"));
    let mut source = dispatcher.as_source_mut();
    let socket = source.reactor().socket(id).unwrap();
    assert_eq!(socket.state(), SocketState::Unconnected);
}

#[test]
fn reactor_timers_wake_the_calloop_loop() {
    let mut reactor = Reactor::new().unwrap();
    let start = Instant::now();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&fired);
    reactor.start_timer(Duration::from_millis(300), move |cx, _| {
        log.borrow_mut().push(("single", start.elapsed()));
        cx.quit();
    });
    let log = Rc::clone(&fired);
    let mut ticks = 0;
    reactor.start_repeating_timer(Duration::from_millis(40), move |cx, id| {
        ticks += 1;
        log.borrow_mut().push(("repeating", start.elapsed()));
        if ticks == 3 {
            cx.cancel_timer(id);
        }
    });

    let mut event_loop = EventLoop::try_new().unwrap();
    insert_reactor(&mut event_loop, reactor);
    let ticks_before = thread_cpu_ticks();
    let outcome = run(&mut event_loop);
    let cpu_ticks = thread_cpu_ticks() - ticks_before;

    assert!(
        !outcome.timed_out,
        "the timers did not fire: {:?}",
        fired.borrow()
    );
    let fired = fired.borrow();
    let names: Vec<_> = fired.iter().map(|&(name, _)| name).collect();
    assert_eq!(names, ["repeating", "repeating", "repeating", "single"]);
    for (i, &(_, at)) in fired.iter().take(3).enumerate() {
        assert!(
            at >= Duration::from_millis(40) * (i as u32 + 1),
            "tick {i} early: {at:?}"
        );
    }
    assert!(fired[3].1 >= Duration::from_millis(300));
    // The loop slept between the expiries instead of spinning: the thread
    // used a small part of the 300 ms on the CPU (a spinning loop uses all
    // of it).
    assert!(
        cpu_ticks < 10,
        "the loop used {cpu_ticks} clock ticks of CPU while waiting for its timers"
    );
}

#[test]
fn posts_from_eight_threads_wake_the_calloop_loop() {
    const THREADS: usize = 8;
    const POSTS: usize = 200;
    let mut reactor = Reactor::new().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let handle = reactor.handle();
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                for _ in 0..POSTS {
                    let count = Arc::clone(&count);
                    handle
                        .post(move |cx| {
                            if count.fetch_add(1, Ordering::SeqCst) + 1 == THREADS * POSTS {
                                cx.quit();
                            }
                        })
                        .expect("the reactor is alive");
                }
            })
        })
        .collect();

    let mut event_loop = EventLoop::try_new().unwrap();
    insert_reactor(&mut event_loop, reactor);
    let outcome = run(&mut event_loop);
    for worker in workers {
        worker.join().unwrap();
    }

    assert!(
        !outcome.timed_out,
        "{} posts arrived",
        count.load(Ordering::SeqCst)
    );
    assert_eq!(count.load(Ordering::SeqCst), THREADS * POSTS);
}

/// A write made from another source's callback marks the socket dirty, with
/// no event to come: the source must still flush it before calloop sleeps.
#[test]
fn a_write_from_another_sources_callback_is_sent_without_an_event() {
    let server = reversing_server();
    let mut reactor = Reactor::new().unwrap();
    let (id, received) = reading_client(&mut reactor, b"gnip\n");
    let socket = reactor.socket(id).unwrap();
    socket.set_peer_verify_name("localhost");
    socket
        .connect_to_host_encrypted("127.0.0.1", server.port)
        .unwrap();

    let mut event_loop = EventLoop::try_new().unwrap();
    let dispatcher = insert_reactor(&mut event_loop, reactor);
    // Polls the socket from a calloop timer; writes once it is encrypted,
    // and stops polling.
    let reactor_source = dispatcher.clone();
    event_loop
        .handle()
        .insert_source(Timer::immediate(), move |_, _, _| {
            let mut source = reactor_source.as_source_mut();
            let socket = source.reactor().socket(id).expect("the client socket");
            if !socket.is_encrypted() {
                return TimeoutAction::ToDuration(Duration::from_millis(10));
            }
            socket.write(b"ping\n").unwrap();
            TimeoutAction::Drop
        })
        .unwrap();
    let outcome = run(&mut event_loop);

    assert!(!outcome.timed_out, "received {:?}", received.borrow());
    assert!(contains(&received.borrow(), b"gnip\n"));
}

#[test]
fn an_embedded_reactor_is_refused() {
    let poll = mio::Poll::new().unwrap();
    let reactor = Reactor::embedded(poll.registry()).unwrap();
    let error = ReactorSource::new(reactor).err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
