//! Fault injection: a loopback relay the test controls ([`FaultRelay`])
//! sits between a real TLS peer and us, in both roles:
//!
//! * client role: our `SslSocket` → relay → `openssl s_server -rev` (which
//!   answers every line reversed, so data flows both ways);
//! * server role: `openssl s_client` → relay → our `SslServer`, whose
//!   accepted socket echoes what it receives.
//!
//! The relay cuts the stream into 1-byte segments or delays it at random
//! (the transfer must then succeed byte-exact), or, once a given number of
//! bytes went towards our side, truncates it (FIN without close_notify),
//! resets it (RST), replaces it with garbage, or stalls it. Every run must
//! end with our socket unconnected, with the documented error, within the
//! test's deadline, without leaking the socket, and with the data received
//! before the fault intact.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sslsocket::{PeerClose, Reactor, SocketId, SocketState};

/// Bytes sent each way in a run (a little more on the client role, whose
/// lines end where they end).
const SIZE: usize = 256 << 10;

/// Where a mid-stream fault hits: this many bytes into the direction
/// towards our socket (the handshake is a few KiB, so this is data).
const MID_STREAM: u64 = 100 << 10;

/// Where a handshake fault hits: inside the peer's first handshake record
/// (a ServerHello or a ClientHello is longer than this).
const IN_HANDSHAKE: u64 = 60;

/// The handshake and idle timeouts set for the stall runs.
const STALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a run with a fault may take: everything is local, so the
/// outcome comes within milliseconds (the stall runs: their 500 ms
/// timeouts). A socket still waiting then hangs: the test fails, saying
/// where the socket is. Deliberately no handshake or idle timeout outside
/// the stall runs: a timer wake-up services the socket again and can hide
/// a hang.
const FAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Steps the reactor until `done`; past `deadline` the test fails with
/// `report()`.
fn run_until_or_hang(
    reactor: &mut Reactor,
    deadline: Duration,
    mut done: impl FnMut(&mut Reactor) -> bool,
    report: impl Fn(&mut Reactor) -> String,
) {
    let end = std::time::Instant::now() + deadline;
    while !done(reactor) {
        if std::time::Instant::now() >= end {
            panic!("HANG: no outcome within {deadline:?}: {}", report(reactor));
        }
        reactor
            .step(Some(Duration::from_millis(20)))
            .expect("reactor step");
    }
}

/// How a truncation's last bytes and its FIN reach our socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// In the same read: both are in the socket's receive queue before the
    /// reactor runs again.
    Together,
    /// The last bytes first (the reactor consumes them), the FIN after.
    Apart,
}

/// Drives a run's fault from the test thread, between reactor steps: pokes
/// the victim of a reset, and releases a held truncation as `delivery`
/// says, once our socket consumed everything before the held partial
/// record.
struct FaultDriver {
    fault: Option<FaultAt>,
    delivery: Delivery,
    poked: bool,
    stage: HoldStage,
    steps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldStage {
    /// Not armed yet.
    Waiting,
    /// Armed: the reactor consumes what went out before the held record.
    Consuming,
    /// Apart: the held bytes went out; the reactor consumes them.
    DataOut,
    Done,
}

/// Reactor steps that let our socket take what is in its receive queue
/// (loopback delivers within the writer's system call, and each step reads
/// until the queue is empty).
const CONSUME_STEPS: u32 = 5;

impl FaultDriver {
    fn new(fault: Option<FaultAt>, delivery: Delivery) -> Self {
        Self {
            fault,
            delivery,
            poked: false,
            stage: HoldStage::Waiting,
            steps: 0,
        }
    }

    /// Called before each reactor step; `poke` makes the victim send
    /// something.
    fn tick(&mut self, relay: &FaultRelay, poke: impl FnOnce()) {
        let Some(fault) = self.fault else { return };
        if fault.kind == FaultKind::Reset && relay.fired() && !self.poked {
            // The victim must send something the relay leaves unread, so
            // that closing its connection sends a RST.
            self.poked = true;
            poke();
        }
        if !fault.hold {
            return;
        }
        match self.stage {
            HoldStage::Waiting if relay.holding() => {
                let from = relay.held_from();
                wait_for("the relay to write what precedes the held record", || {
                    relay.forwarded(fault.flow) == from
                });
                self.stage = HoldStage::Consuming;
                self.steps = 0;
            }
            HoldStage::Consuming => {
                self.steps += 1;
                if self.steps < CONSUME_STEPS {
                    return;
                }
                relay.release_data();
                if self.delivery == Delivery::Together {
                    relay.release_fault();
                    // The reactor does not run meanwhile: our socket finds
                    // the partial record and the FIN in its queue together.
                    wait_for("the relay to truncate", || relay.fired());
                    self.stage = HoldStage::Done;
                } else {
                    wait_for("the relay to write the held bytes", || {
                        relay.forwarded(fault.flow) == fault.after
                    });
                    self.stage = HoldStage::DataOut;
                    self.steps = 0;
                }
            }
            HoldStage::DataOut => {
                self.steps += 1;
                if self.steps >= CONSUME_STEPS {
                    relay.release_fault();
                    self.stage = HoldStage::Done;
                }
            }
            _ => {}
        }
    }
}

/// Waits up to a second for `done`, without failing (the caller checks).
fn wait_for_or_not(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits (on the test thread, the reactor not running) for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn one_byte() -> RelayMode {
    RelayMode::OneByte { pause_every: 1024 }
}

fn jitter() -> RelayMode {
    RelayMode::Jitter {
        seed: 0xfa17,
        max_segment: 3000,
        max_pause_us: 2000,
    }
}

/// An event with the GnuTLS message of Handshake/Tls errors left out, for
/// exact comparisons of the sequence.
fn shape(event: &Event) -> String {
    match event {
        Event::Error(Caught::Handshake(_)) => "Error(Handshake)".into(),
        Event::Error(Caught::Tls(_)) => "Error(Tls)".into(),
        other => format!("{other:?}"),
    }
}

fn shapes(events: &[Event]) -> Vec<String> {
    events.iter().map(shape).collect()
}

fn caught_shape(c: &Caught) -> String {
    shape(&Event::Error(c.clone()))
}

// ---------------------------------------------------------------------------
// Client role: our SslSocket → relay → openssl s_server -rev
// ---------------------------------------------------------------------------

/// Lines of lowercase letters (1 to 2000 bytes each, `size` bytes or a
/// little more in all) and what `s_server -rev` answers to them.
fn rev_lines(size: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(0x11e5);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    while up.len() < size {
        let len = 1 + rng.upto(1999) as usize;
        let line: Vec<u8> = (0..len).map(|_| b'a' + rng.upto(25) as u8).collect();
        up.extend_from_slice(&line);
        up.push(b'\n');
        down.extend(line.iter().rev());
        down.push(b'\n');
    }
    (up, down)
}

struct ClientRun {
    probe: Shared,
    expected: Vec<u8>,
    state: SocketState,
    /// `reactor.object_count()` once the run ended, before removing the
    /// socket.
    objects_before_removal: usize,
    relay_fired: bool,
    reset_sent: bool,
    /// A held truncation: where the held partial record started.
    held_from: u64,
}

/// Runs our client through a relay (shaping the stream as `shaping` says,
/// injecting `fault`) against `s_server -rev`; uploads the lines, and
/// in a run without fault closes once every answer arrived.
/// What the client does with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Uploads lines to `s_server -rev` while their reversal comes back:
    /// data both ways, and our socket writes while it receives.
    Lines,
    /// Downloads a file from `s_server -WWW`: after its request our socket
    /// only receives.
    Download,
}

const WWW_HEAD: &[u8] = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";

fn client_role(shaping: RelayMode, fault: Option<FaultAt>, delivery: Delivery) -> ClientRun {
    client_role_with(Workload::Lines, shaping, fault, delivery)
}

fn client_role_with(
    workload: Workload,
    shaping: RelayMode,
    fault: Option<FaultAt>,
    delivery: Delivery,
) -> ClientRun {
    let dir = TempDir::new("faults-client");
    let mut args = server_cert_args();
    let (upload, expected) = match workload {
        Workload::Lines => {
            args.push("-rev".into());
            rev_lines(SIZE)
        }
        Workload::Download => {
            args.push("-WWW".into());
            dir.write_pattern("data.bin", SIZE as u64);
            let mut expected = WWW_HEAD.to_vec();
            expected.extend_from_slice(&pattern(SIZE));
            (b"GET /data.bin HTTP/1.0\r\n\r\n".to_vec(), expected)
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = s_server(&args, Some(dir.path()), None, false);
    let relay = FaultRelay::start(([127, 0, 0, 1], server.port).into(), shaping, fault);

    let mut reactor = Reactor::new().unwrap();
    let (id, probe) = client_socket(&mut reactor, client_config(), true);
    let socket = reactor.socket(id).unwrap();
    if fault.is_some_and(|f| f.kind == FaultKind::Stall) {
        socket.set_handshake_timeout(Some(STALL_TIMEOUT));
        socket.set_idle_timeout(Some(STALL_TIMEOUT));
    }
    // Queued before connecting: sent as soon as the session is encrypted.
    assert_eq!(socket.write(&upload).unwrap(), upload.len());
    socket
        .connect_to_host_encrypted("localhost", relay.port())
        .unwrap();
    let want = expected.len();
    let mut driver = FaultDriver::new(fault, delivery);
    let deadline = if fault.is_some() {
        FAULT_DEADLINE
    } else {
        TIMEOUT
    };
    run_until_or_hang(
        &mut reactor,
        deadline,
        |reactor| {
            driver.tick(&relay, || {
                // Unless the upload already left unread data and the RST
                // ended the connection.
                let s = reactor.socket(id).unwrap();
                if s.state() == SocketState::Encrypted {
                    s.write(b"poke\n").unwrap();
                }
            });
            let p = probe.borrow();
            p.disconnected() || (fault.is_none() && p.data.len() >= want)
        },
        |reactor| {
            let p = probe.borrow();
            format!(
                "our client is {:?} after {:?} ({} bytes received); the relay fired: {}",
                reactor.socket(id).unwrap().state(),
                p.events,
                p.data.len(),
                relay.fired()
            )
        },
    );
    if fault.is_none() {
        reactor.socket(id).unwrap().disconnect_from_host();
        run_until(&mut reactor, TIMEOUT, "disconnected", |_| {
            probe.borrow().disconnected()
        });
    }
    relay.assert_ok();
    if fault.is_some() {
        // The relay notes the fault just after doing it.
        wait_for_or_not(|| relay.fired());
    }
    let socket = reactor
        .socket(id)
        .expect("a client socket stays until removed");
    let state = socket.state();
    let objects_before_removal = reactor.object_count();
    // Removing it ends its life: the handle goes stale.
    assert!(reactor.remove_socket(id));
    assert_eq!(reactor.object_count(), 0);
    assert!(reactor.socket(id).is_none());
    assert!(!reactor.remove_socket(id), "removed twice");
    ClientRun {
        probe,
        expected,
        state,
        objects_before_removal,
        relay_fired: relay.fired(),
        held_from: relay.held_from(),
        reset_sent: relay
            .state
            .reset_sent
            .load(std::sync::atomic::Ordering::SeqCst),
    }
}

impl ClientRun {
    /// The common checks: unconnected, not leaked, the events as expected
    /// and the data received a prefix of what s_server sent.
    fn check(&self, events: &[&str]) {
        let p = self.probe.borrow();
        assert_eq!(
            shapes(&p.events),
            events,
            "events (errors: {:?})",
            p.error_texts
        );
        assert_eq!(self.state, SocketState::Unconnected);
        assert_eq!(self.objects_before_removal, 1, "the client socket stays");
        assert!(
            self.expected.starts_with(&p.data),
            "the data received before the fault differs from what was sent \
             ({} bytes received)",
            p.data.len()
        );
    }

    fn received(&self) -> usize {
        self.probe.borrow().data.len()
    }

    /// How `disconnected`'s statistics say the peer's stream ended.
    fn peer_close(&self) -> Option<PeerClose> {
        self.probe
            .borrow()
            .stats
            .as_ref()
            .and_then(|s| s.peer_close)
    }
}

fn client_success(shaping: RelayMode) {
    let run = client_role(shaping, None, Delivery::Together);
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "ReadChannelFinished",
        "Disconnected",
    ]);
    assert_eq!(run.received(), run.expected.len(), "every answer arrived");
    assert!(run.probe.borrow().data == run.expected);
    assert_eq!(run.peer_close(), Some(PeerClose::CloseNotify));
}

fn client_fault(kind: FaultKind, after: u64) -> ClientRun {
    client_fault_delivered(kind, after, Delivery::Together)
}

fn client_fault_delivered(kind: FaultKind, after: u64, delivery: Delivery) -> ClientRun {
    let run = client_role(
        RelayMode::Plain,
        Some(FaultAt {
            kind,
            flow: Flow::ToClient,
            after,
            hold: kind == FaultKind::Truncate,
        }),
        delivery,
    );
    assert!(
        run.relay_fired,
        "the relay never reached its fault point: {:?} {:?}",
        run.probe.borrow().events,
        run.probe.borrow().error_texts
    );
    run
}

#[test]
fn client_through_one_byte_segments_is_byte_exact_both_ways() {
    client_success(one_byte());
}

#[test]
fn client_through_random_delays_is_byte_exact_both_ways() {
    client_success(jitter());
}

fn client_truncated_in_the_handshake(delivery: Delivery) {
    let run = client_fault_delivered(FaultKind::Truncate, IN_HANDSHAKE, delivery);
    assert_eq!(
        run.held_from, 0,
        "the cut falls in the server's first record"
    );
    run.check(&["Connected", "Error(ClosedDuringHandshake)", "Disconnected"]);
    assert_eq!(run.received(), 0);
}

#[test]
fn client_truncated_in_the_handshake_with_the_fin_apart_is_closed_during_handshake() {
    client_truncated_in_the_handshake(Delivery::Apart);
}

#[test]
fn client_truncated_in_the_handshake_with_the_fin_in_the_same_read_is_closed_during_handshake() {
    client_truncated_in_the_handshake(Delivery::Together);
}

fn client_truncated_mid_stream(delivery: Delivery) {
    let run = client_fault_delivered(FaultKind::Truncate, MID_STREAM, delivery);
    assert!(run.held_from < MID_STREAM, "the cut falls inside a record");
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "Error(Truncated)",
        "Disconnected",
    ]);
    // Everything up to the last whole record before the cut (16 KiB
    // records, a few KiB of handshake) was decrypted and delivered.
    assert!(
        run.received() as u64 >= MID_STREAM - (24 << 10),
        "only {} bytes arrived before the cut at {MID_STREAM}",
        run.received()
    );
    assert!(run.received() < run.expected.len());
    assert_eq!(run.peer_close(), Some(PeerClose::EofMidRecord));
}

/// A download (our socket only receives) cut inside a record, the rest of
/// the record and the FIN arriving in the same read.
#[test]
fn client_download_truncated_mid_record_with_the_fin_in_the_same_read_is_truncated() {
    let run = client_role_with(
        Workload::Download,
        RelayMode::Plain,
        Some(FaultAt {
            kind: FaultKind::Truncate,
            flow: Flow::ToClient,
            after: MID_STREAM,
            hold: true,
        }),
        Delivery::Together,
    );
    assert!(run.relay_fired);
    assert!(run.held_from < MID_STREAM, "the cut falls inside a record");
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "Error(Truncated)",
        "Disconnected",
    ]);
    assert!(run.received() as u64 >= MID_STREAM - (24 << 10));
}

#[test]
fn client_truncated_mid_record_with_the_fin_apart_is_truncated() {
    client_truncated_mid_stream(Delivery::Apart);
}

#[test]
fn client_truncated_mid_record_with_the_fin_in_the_same_read_is_truncated() {
    client_truncated_mid_stream(Delivery::Together);
}

#[test]
fn client_reset_mid_stream_is_a_network_error() {
    let run = client_fault(FaultKind::Reset, MID_STREAM);
    assert!(run.reset_sent, "the relay did not force a RST");
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "Error(Network(ConnectionReset))",
        "Disconnected",
    ]);
    assert!(
        run.received() > 0 && run.received() < run.expected.len(),
        "{} of {} bytes received",
        run.received(),
        run.expected.len()
    );
    assert_eq!(run.peer_close(), Some(PeerClose::Reset));
}

#[test]
fn client_garbage_in_the_handshake_is_a_handshake_error() {
    let run = client_fault(FaultKind::Garbage, IN_HANDSHAKE);
    run.check(&["Connected", "Error(Handshake)", "Disconnected"]);
    let p = run.probe.borrow();
    assert_eq!(p.alerts_sent.len(), 1, "our client tells the peer why");
    assert_eq!(run.received(), 0);
}

#[test]
fn client_garbage_mid_stream_is_a_tls_error_with_the_data_before_intact() {
    let run = client_fault(FaultKind::Garbage, MID_STREAM);
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "Error(Tls)",
        "Disconnected",
    ]);
    assert!(
        run.received() as u64 >= MID_STREAM - (24 << 10),
        "only {} bytes arrived before the garbage at {MID_STREAM}",
        run.received()
    );
}

#[test]
fn client_stalled_in_the_handshake_times_out() {
    let run = client_fault(FaultKind::Stall, IN_HANDSHAKE);
    run.check(&["Connected", "Error(Timeout(Handshake))", "Disconnected"]);
}

#[test]
fn client_stalled_mid_stream_times_out_idle() {
    let run = client_fault(FaultKind::Stall, MID_STREAM);
    run.check(&[
        "Connected",
        "HandshakeComplete",
        "Error(Timeout(Idle))",
        "Disconnected",
    ]);
    assert!(run.received() as u64 >= MID_STREAM - (24 << 10));
}

// ---------------------------------------------------------------------------
// Server role: openssl s_client → relay → our SslServer (echo)
// ---------------------------------------------------------------------------

struct Accepted {
    id: SocketId,
    probe: Shared,
    /// What the accepted socket received, checked against the pattern.
    checker: Rc<RefCell<PatternChecker>>,
}

struct ServerRun {
    accepted: Vec<Accepted>,
    /// `error_occurred` of the server.
    reported: Vec<(SocketId, Caught)>,
    /// `object_count()` at the end, and whether the socket's id still
    /// resolves.
    objects: usize,
    socket_alive: bool,
    /// What s_client received back (the echo), checked against the pattern.
    echoed: PatternChecker,
    client_status: Option<std::process::ExitStatus>,
    client_stderr: String,
    relay_fired: bool,
    reset_sent: bool,
    /// A held truncation: where the held partial record started.
    held_from: u64,
}

/// s_client uploads `SIZE` pattern bytes through the relay to our server,
/// which echoes them and, once it has them all, closes.
fn server_role(shaping: RelayMode, fault: Option<FaultAt>, delivery: Delivery) -> ServerRun {
    let stall = fault.is_some_and(|f| f.kind == FaultKind::Stall);
    let dir = TempDir::new("faults-server");
    let file = dir.write_pattern("upload.bin", SIZE as u64);
    let mut reactor = Reactor::new().unwrap();
    let server_id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), server_config())
        .unwrap();
    let server = reactor.server(server_id).unwrap();
    // Not the default 5 s outside the stall runs: a timeout would hide a
    // hang (see FAULT_DEADLINE).
    server.set_handshake_timeout(stall.then_some(STALL_TIMEOUT));
    let port = server.local_address().port();
    let accepted: Rc<RefCell<Vec<Accepted>>> = Rc::default();
    let reported: Rc<RefCell<Vec<(SocketId, Caught)>>> = Rc::default();
    let list = accepted.clone();
    server.new_connection().connect(move |_, cx, &id| {
        let socket = cx.socket(id).unwrap();
        if stall {
            socket.set_idle_timeout(Some(STALL_TIMEOUT));
        }
        let checker = Rc::new(RefCell::new(PatternChecker::default()));
        let c = checker.clone();
        socket.ready_read().connect(move |s, _, _| {
            let data = s.read_all();
            c.borrow_mut().feed(&data);
            // When the same round ended the connection (data, then an
            // error), the socket is already unconnected: writing is refused.
            match s.write(&data) {
                Ok(n) => assert_eq!(n, data.len()),
                Err(e) => assert_eq!(s.state(), SocketState::Unconnected, "{e}"),
            }
            if c.borrow().received == SIZE as u64 {
                s.disconnect_from_host();
            }
        });
        list.borrow_mut().push(Accepted {
            id,
            probe: probe(socket, false),
            checker,
        });
    });
    let r = reported.clone();
    server
        .error_occurred()
        .connect(move |_, _, (id, e)| r.borrow_mut().push((*id, Caught::of(e))));

    let relay = FaultRelay::start(([127, 0, 0, 1], port).into(), shaping, fault);
    let echoed = Arc::new(Mutex::new(PatternChecker::default()));
    let sink = echoed.clone();
    // -quiet implies -ign_eof: s_client keeps reading the echo after its
    // stdin (the file) ended, until our server closes.
    let mut client = Spawn::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", relay.port()),
        ])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-CAfile", &ca_str("root-ca.pem"), "-verify_return_error"])
        .args(["-quiet", "-nocommands"])
        .stdin_file(&file)
        .stdout_sink(move |data| sink.lock().unwrap().feed(data))
        .start();
    let mut driver = FaultDriver::new(fault, delivery);
    let deadline = if fault.is_some() {
        FAULT_DEADLINE
    } else {
        TIMEOUT
    };
    run_until_or_hang(
        &mut reactor,
        deadline,
        |reactor| {
            driver.tick(&relay, || {
                // The echo may have left unread data already, and the RST
                // ended (and removed) the socket.
                let id = accepted.borrow()[0].id;
                if let Some(s) = reactor.socket(id) {
                    if s.state() == SocketState::Encrypted {
                        s.write(b"poke").unwrap();
                    }
                }
            });
            let a = accepted.borrow();
            a.len() == 1 && a[0].probe.borrow().disconnected()
        },
        |reactor| {
            let a = accepted.borrow();
            match a.first() {
                None => "no connection was accepted".into(),
                Some(a) => format!(
                    "our server's socket is {:?} after {:?} ({} bytes received); the relay fired: {}",
                    reactor.socket(a.id).map(|s| s.state()),
                    a.probe.borrow().events,
                    a.checker.borrow().received,
                    relay.fired()
                ),
            }
        },
    );
    let client_status = if fault.is_none() {
        // It exits once our close_notify arrived.
        Some(client.wait(TIMEOUT))
    } else {
        None
    };
    relay.assert_ok();
    if fault.is_some() {
        wait_for_or_not(|| relay.fired());
    }
    // Late events (a second connection, a late report) would show here.
    run_for(&mut reactor, Duration::from_millis(50));
    let id = accepted.borrow()[0].id;
    let socket_alive = reactor.socket(id).is_some();
    let objects = reactor.object_count();
    let echoed = echoed.lock().unwrap().clone();
    let run = ServerRun {
        accepted: std::mem::take(&mut *accepted.borrow_mut()),
        reported: reported.borrow().clone(),
        objects,
        socket_alive,
        echoed,
        client_status,
        client_stderr: client.stderr_text(),
        relay_fired: relay.fired(),
        held_from: relay.held_from(),
        reset_sent: relay
            .state
            .reset_sent
            .load(std::sync::atomic::Ordering::SeqCst),
    };
    drop(client);
    run
}

impl ServerRun {
    /// The common checks: one connection, auto-deleted after it ended
    /// (only the server is left), the events as expected, the server's
    /// report as expected, and the data received a prefix of the upload.
    fn check(&self, events: &[&str], reported: Option<&str>) {
        assert_eq!(self.accepted.len(), 1, "one connection");
        let a = &self.accepted[0];
        let p = a.probe.borrow();
        assert_eq!(
            shapes(&p.events),
            events,
            "events (errors: {:?})",
            p.error_texts
        );
        let got: Vec<(SocketId, String)> = self
            .reported
            .iter()
            .map(|(id, c)| (*id, caught_shape(c)))
            .collect();
        let want: Vec<(SocketId, String)> =
            reported.map(|r| (a.id, r.to_owned())).into_iter().collect();
        assert_eq!(got, want, "error_occurred");
        assert!(!self.socket_alive, "the accepted socket was not deleted");
        assert_eq!(self.objects, 1, "only the server is left");
        let c = a.checker.borrow();
        assert_eq!(c.first_mismatch, None, "the data received differs");
        assert_eq!(self.echoed.first_mismatch, None, "the echo differs");
    }

    fn received(&self) -> u64 {
        self.accepted[0].checker.borrow().received
    }
}

fn server_success(shaping: RelayMode) {
    let run = server_role(shaping, None, Delivery::Together);
    run.check(
        &["HandshakeComplete", "ReadChannelFinished", "Disconnected"],
        None,
    );
    assert_eq!(run.received(), SIZE as u64);
    assert_eq!(run.echoed.received, SIZE as u64, "s_client got the echo");
    let status = run.client_status.unwrap();
    assert!(
        status.success(),
        "s_client: {status}\n{}",
        run.client_stderr
    );
}

fn server_fault(kind: FaultKind, after: u64) -> ServerRun {
    server_fault_delivered(kind, after, Delivery::Together)
}

fn server_fault_delivered(kind: FaultKind, after: u64, delivery: Delivery) -> ServerRun {
    let run = server_role(
        RelayMode::Plain,
        Some(FaultAt {
            kind,
            flow: Flow::ToTarget,
            after,
            hold: kind == FaultKind::Truncate,
        }),
        delivery,
    );
    assert!(run.relay_fired, "the relay never reached its fault point");
    run
}

#[test]
fn server_through_one_byte_segments_is_byte_exact_both_ways() {
    server_success(one_byte());
}

#[test]
fn server_through_random_delays_is_byte_exact_both_ways() {
    server_success(jitter());
}

fn server_truncated_in_the_handshake(delivery: Delivery) {
    let run = server_fault_delivered(FaultKind::Truncate, IN_HANDSHAKE, delivery);
    assert_eq!(
        run.held_from, 0,
        "the cut falls in the client's first record"
    );
    run.check(
        &["Error(ClosedDuringHandshake)", "Disconnected"],
        Some("Error(ClosedDuringHandshake)"),
    );
    assert_eq!(run.received(), 0);
}

#[test]
fn server_truncated_in_the_handshake_with_the_fin_apart_is_closed_during_handshake() {
    server_truncated_in_the_handshake(Delivery::Apart);
}

#[test]
fn server_truncated_in_the_handshake_with_the_fin_in_the_same_read_is_closed_during_handshake() {
    server_truncated_in_the_handshake(Delivery::Together);
}

#[test]
fn server_truncated_mid_record_with_the_fin_apart_is_truncated() {
    server_truncated_mid_stream(Delivery::Apart);
}

#[test]
fn server_truncated_mid_record_with_the_fin_in_the_same_read_is_truncated() {
    server_truncated_mid_stream(Delivery::Together);
}

fn server_truncated_mid_stream(delivery: Delivery) {
    let run = server_fault_delivered(FaultKind::Truncate, MID_STREAM, delivery);
    assert!(run.held_from < MID_STREAM, "the cut falls inside a record");
    // After the handshake the server no longer reports the connection.
    run.check(
        &["HandshakeComplete", "Error(Truncated)", "Disconnected"],
        None,
    );
    assert!(
        run.received() >= MID_STREAM - (24 << 10),
        "only {} bytes arrived before the cut at {MID_STREAM}",
        run.received()
    );
    assert!(run.received() < SIZE as u64);
}

#[test]
fn server_reset_mid_stream_is_a_network_error() {
    let run = server_fault(FaultKind::Reset, MID_STREAM);
    assert!(run.reset_sent, "the relay did not force a RST");
    run.check(
        &[
            "HandshakeComplete",
            "Error(Network(ConnectionReset))",
            "Disconnected",
        ],
        None,
    );
    assert!(run.received() > 0 && run.received() < SIZE as u64);
}

#[test]
fn server_garbage_in_the_handshake_is_a_handshake_error() {
    let run = server_fault(FaultKind::Garbage, IN_HANDSHAKE);
    run.check(
        &["Error(Handshake)", "Disconnected"],
        Some("Error(Handshake)"),
    );
    assert_eq!(run.received(), 0);
}

#[test]
fn server_garbage_mid_stream_is_a_tls_error_with_the_data_before_intact() {
    let run = server_fault(FaultKind::Garbage, MID_STREAM);
    run.check(&["HandshakeComplete", "Error(Tls)", "Disconnected"], None);
    assert!(run.received() >= MID_STREAM - (24 << 10));
    assert!(run.received() < SIZE as u64);
}

#[test]
fn server_stalled_in_the_handshake_times_out() {
    let run = server_fault(FaultKind::Stall, IN_HANDSHAKE);
    run.check(
        &["Error(Timeout(Handshake))", "Disconnected"],
        Some("Error(Timeout(Handshake))"),
    );
}

#[test]
fn server_stalled_mid_stream_times_out_idle() {
    let run = server_fault(FaultKind::Stall, MID_STREAM);
    run.check(
        &["HandshakeComplete", "Error(Timeout(Idle))", "Disconnected"],
        None,
    );
    assert!(run.received() >= MID_STREAM - (24 << 10));
}
