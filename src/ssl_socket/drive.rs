//! Driving a socket: connecting, reading, decrypting, encrypting, writing
//! and closing, as far as the network allows without blocking.
//!
//! Nothing here runs user code: what happens is queued as events for
//! `dispatch.rs`. Reads and writes go until `WouldBlock` (mio is
//! edge-triggered) or until a buffer limit stops them; in the latter case
//! the socket is driven again when the program makes room, or at once when
//! the TLS engine made room by taking the ciphertext (see `can_read_more`).

use std::time::{Duration, Instant};

use mio::Registry;

use super::dispatch::SocketEvent;
use super::{PeerClose, SocketState, SslMode, SslSocket};
use crate::buffer::ByteQueue;
use crate::context::Context;
use crate::engine::EngineEvent;
use crate::error::{AlertLevel, Error, Result};
use crate::lingering::Lingering;
use crate::reactor::{token_of, Readiness};
use crate::tcp::{Received, Tcp, READ_CHUNK};
use crate::timer::Timers;

/// Ciphertext queued for the network above which no more plaintext is
/// encrypted until the network takes some: bounds memory with a slow peer.
const OUTGOING_HIGH_WATER: usize = 256 * 1024;

/// Plaintext encrypted per call into the engine (a few records).
const ENCRYPT_CHUNK: usize = 64 * 1024;

/// Writes at least this large are encrypted at once, skipping the plaintext
/// queue (smaller ones are queued, to be sealed together in full records).
const DIRECT_ENCRYPT_MIN: usize = 4 * 1024;

/// How long a graceful close waits for the peer to close its side after
/// our `close_notify` and FIN.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// A graceful close in progress.
#[derive(Debug, Default)]
pub(super) struct Close {
    /// `disconnect_from_host` was called (or the peer closed first).
    pub(super) requested: bool,
    close_notify_sent: bool,
    fin_sent: bool,
    /// The peer sent `close_notify` (or, unencrypted, FIN).
    peer_finished: bool,
    /// Plaintext arrived after our `close_notify`: the peer was still
    /// sending, so its stream must end with its own `close_notify`.
    read_after_close_notify: bool,
    deadline: Option<Instant>,
}

impl Close {
    /// Whether the peer said it sends nothing more.
    pub(super) fn peer_finished_reading(&self) -> bool {
        self.peer_finished
    }
}

impl SslSocket {
    /// One service round: applies readiness, does all the I/O that can be
    /// done, then dispatches the resulting signals. Returns whether another
    /// round could make progress (slots ran and may have written).
    pub(crate) fn service(&mut self, cx: &mut Context, readiness: Option<Readiness>) -> bool {
        if let (Some(r), Some(tcp)) = (readiness, self.tcp.as_mut()) {
            tcp.on_ready(r);
        }
        let released = self.server.as_mut().and_then(|s| s.released(cx, self.id));
        if let Some((finished, unheard)) = released {
            self.announce_again(cx, unheard);
            // Taken from the server's queue after it disconnected.
            self.deleted |= finished && self.auto_delete;
        }
        if self.deleted {
            return false;
        }
        if let Err(error) = self.advance(cx) {
            self.fail(error);
        }
        // A read error held back behind data needs another round to report.
        let deferred = self.tcp.as_ref().is_some_and(Tcp::has_deferred_error);
        if self.events.is_empty() {
            return deferred || self.can_read_more();
        }
        self.dispatch(cx);
        !self.deleted && !cx.is_doomed(self.id.0)
    }

    fn advance(&mut self, cx: &mut Context) -> Result<()> {
        self.check_deadline(cx)?;
        self.advance_connect(cx)?;
        let connected = self.tcp.is_some()
            && !matches!(
                self.state,
                SocketState::Connecting | SocketState::Unconnected
            );
        if connected {
            self.advance_connection(cx)?;
        }
        // Covers the proxy tunnel's writes too.
        self.watch_writable(cx)?;
        // The I/O may have started a wait (output the peer does not take,
        // a new phase): the reactor must wake the socket when it runs out,
        // even if nothing else happens until then.
        self.check_deadline(cx)
    }

    /// Reads, decrypts, encrypts, writes and closes on a connected stream.
    fn advance_connection(&mut self, cx: &mut Context) -> Result<()> {
        self.register(cx)?;
        if self.encrypt_when_connected
            && self.engine.is_none()
            && self.state == SocketState::Connected
        {
            self.start_client_encryption()?;
        }
        self.receive()?;
        if let Err(error) = self.transmit() {
            // Serviced without a readable event, the socket has not looked
            // at what arrived before the failure (data, then a reset): take
            // it first. A fatal alert found there (then the peer's close)
            // is why the write failed: it is the error to report, not the
            // broken pipe that followed. Anything else the receive finds
            // (the reset itself, a stream cut short) yields to the write's
            // error.
            if let Some(tcp) = self.tcp.as_mut() {
                tcp.assume_readable();
                if let Err(cause) = self.receive() {
                    if matches!(cause, Error::AlertReceived(_) | Error::HandshakeRefused(_)) {
                        return Err(cause);
                    }
                }
            }
            return Err(error);
        }
        self.advance_close(cx)
    }

    fn register(&mut self, cx: &mut Context) -> Result<()> {
        if self.registered {
            return Ok(());
        }
        if let Some(tcp) = &mut self.tcp {
            tcp.register(cx.registry(), token_of(self.id.0))
                .map_err(Error::Network)?;
            self.registered = true;
        }
        Ok(())
    }

    /// Asks for writable edges when a write (here, or from a slot since the
    /// last round) stopped at a full socket.
    fn watch_writable(&mut self, cx: &mut Context) -> Result<()> {
        match &mut self.tcp {
            Some(tcp) if self.registered => tcp
                .watch_writable(cx.registry(), token_of(self.id.0))
                .map_err(Error::Network),
            _ => Ok(()),
        }
    }

    // ---- timeouts ----

    /// Fails with a timeout when the current phase's deadline passed, and
    /// otherwise makes sure the reactor wakes the socket at that deadline.
    fn check_deadline(&mut self, cx: &mut Context) -> Result<()> {
        let Some((deadline, kind)) = self.deadlines.next(self.state) else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout(kind));
        }
        self.request_wake(cx, deadline);
        Ok(())
    }

    /// Makes sure the reactor services the socket at `when`. One timer per
    /// socket: the earliest wanted. Every deadline is checked, and its wake
    /// asked for again, on each service, so a later one is not lost when an
    /// earlier wake replaces it.
    pub(super) fn request_wake(&mut self, cx: &mut Context, when: Instant) {
        let now = Instant::now();
        if self.wake.is_some_and(|(at, _)| at > now && at <= when) {
            return;
        }
        if let Some((_, timer)) = self.wake.take() {
            cx.cancel_timer(timer);
        }
        self.wake = Some((when, cx.wake_at(self.id.0, when)));
    }

    // ---- receiving ----

    fn read_limit(&self) -> usize {
        match self.read_buffer_size {
            0 => usize::MAX,
            n => n,
        }
    }

    fn receive(&mut self) -> Result<()> {
        let limit = self.read_limit();
        let before = self.read_buffer.len();
        let received = self.read_network(limit)?;
        if received.bytes > 0 {
            self.deadlines.progressed();
            self.stats.network_in(received.bytes);
        }
        if let Some(engine) = self.engine.as_mut() {
            let mut result = engine.process(&mut self.read_buffer, limit);
            if self.close.close_notify_sent && self.read_buffer.len() > before {
                self.close.read_after_close_notify = true;
            }
            // Once our close_notify is out, a bare FIN is the peer's answer
            // to it, unless the peer was still sending data: then its
            // stream may have been cut, which only its close_notify rules
            // out.
            let fin_counts = !self.close.close_notify_sent || self.close.read_after_close_notify;
            if received.eof && fin_counts && result.is_ok() {
                engine.peer_eof();
                result = engine.process(&mut self.read_buffer, limit);
            }
            let close_notify = self.collect_engine_events();
            if received.eof && !fin_counts && !close_notify {
                // A bare FIN answering our goodbye: no close_notify of the
                // peer's, but nothing was cut.
                self.stats.peer_closed(PeerClose::EofAtRecordBoundary);
            }
            self.stats.plaintext_in(self.read_buffer.len() - before);
            if self.read_buffer.len() > before {
                self.events.push_back(SocketEvent::ReadyRead);
            }
            result?;
            if close_notify {
                self.on_peer_finished();
            }
            return Ok(());
        }
        self.stats.plaintext_in(self.read_buffer.len() - before);
        if self.read_buffer.len() > before {
            self.events.push_back(SocketEvent::ReadyRead);
        }
        if received.eof {
            self.stats.peer_closed(PeerClose::CloseNotify);
            self.on_peer_finished();
        }
        Ok(())
    }

    /// Whether the last read stopped at a buffer limit that processing has
    /// lifted since: the kernel may hold more, and mio, edge-triggered, does
    /// not announce it again. A handshake message that GnuTLS assembles from
    /// many records takes the ciphertext and produces no event: without
    /// another round the socket would stall until its peer sends more.
    fn can_read_more(&mut self) -> bool {
        let reading = matches!(
            self.state,
            SocketState::Connected
                | SocketState::Handshaking
                | SocketState::Encrypted
                | SocketState::Closing
        );
        let room = self.read_buffer.len() < self.read_limit();
        if !(reading && room && self.tcp.as_ref().is_some_and(Tcp::may_read)) {
            return false;
        }
        self.engine
            .as_mut()
            .is_none_or(|engine| engine.incoming().len() < READ_CHUNK)
    }

    /// Reads from TCP into the engine (ciphertext) or the read buffer
    /// (unencrypted), as far as the read buffer limit allows.
    fn read_network(&mut self, limit: usize) -> Result<Received> {
        let Some(tcp) = self.tcp.as_mut() else {
            return Ok(Received::default());
        };
        let received = match self.engine.as_mut() {
            Some(engine) => {
                let room = if self.read_buffer.len() < limit {
                    READ_CHUNK
                } else {
                    0
                };
                tcp.receive(engine.incoming(), room)
            }
            None => tcp.receive(&mut self.read_buffer, limit),
        };
        received.map_err(Error::Network)
    }

    /// Queues the engine's events; returns whether the peer's
    /// `close_notify` was among them (it is reported after the data before
    /// it).
    fn collect_engine_events(&mut self) -> bool {
        let mut close_notify = false;
        while let Some(event) = self.engine.as_mut().and_then(|e| e.next_event()) {
            match event {
                EngineEvent::HandshakeComplete => {
                    let resumed = self.engine.as_ref().is_some_and(|e| e.is_resumed());
                    self.stats.handshake_completed(resumed);
                    self.pin_wait = None;
                    if self.state == SocketState::Handshaking {
                        self.set_state(SocketState::Encrypted);
                    }
                    self.events.push_back(SocketEvent::HandshakeComplete);
                }
                EngineEvent::PeerVerifyError(e) => {
                    self.events.push_back(SocketEvent::PeerVerifyError(e))
                }
                EngineEvent::SslErrors(errors) => {
                    self.events.push_back(SocketEvent::SslErrors(errors))
                }
                EngineEvent::AlertReceived(a) => {
                    self.events.push_back(SocketEvent::AlertReceived(a))
                }
                EngineEvent::AlertSent(a) => self.events.push_back(SocketEvent::AlertSent(a)),
                EngineEvent::CloseNotify => {
                    self.stats.peer_closed(PeerClose::CloseNotify);
                    close_notify = true;
                }
                EngineEvent::PreSharedKeyIdentityUnknown(identity) => self
                    .events
                    .push_back(SocketEvent::PreSharedKeyAuthenticationRequired(identity)),
                EngineEvent::PinRequired => {
                    if let Some(request) = self.engine.as_ref().and_then(|e| e.pin_request()) {
                        self.events
                            .push_back(SocketEvent::PinRequired(request.clone()));
                    }
                }
            }
        }
        close_notify
    }

    /// Just taken from the server's queue: announces again what no slot
    /// heard while the socket waited (`ready_read` only if the data is
    /// still unread), to the slots the program connected when it took it.
    fn announce_again(&mut self, cx: &mut Context, unheard: Vec<SocketEvent>) {
        let unread = !self.read_buffer.is_empty();
        unheard
            .into_iter()
            .filter(|e| unread || !matches!(e, SocketEvent::ReadyRead))
            .for_each(|event| self.events.push_back(event));
        self.dispatch(cx);
    }

    /// The peer will send nothing more: tell the program. Our side closes
    /// too (see `advance_close`), but only after the slots of this round ran,
    /// so they may still answer what arrived before the peer's goodbye.
    fn on_peer_finished(&mut self) {
        self.close.peer_finished = true;
        self.events.push_back(SocketEvent::ReadChannelFinished);
    }

    // ---- sending ----

    /// Encrypts queued plaintext and writes ciphertext (or, unencrypted, the
    /// plaintext) until the network pushes back.
    fn transmit(&mut self) -> Result<()> {
        let sent = self.send_queued()?;
        self.stats.network_out(sent);
        self.note_output(sent);
        Ok(())
    }

    /// The work of [`transmit`](Self::transmit); returns how many bytes the
    /// network took.
    fn send_queued(&mut self) -> Result<usize> {
        let Some(tcp) = self.tcp.as_mut() else {
            return Ok(0);
        };
        if !self.plain_out.is_empty() {
            let sent = tcp.send(&mut self.plain_out).map_err(Error::Network)?;
            let pending = !self.plain_out.is_empty();
            self.report_written(sent as u64);
            if pending {
                return Ok(sent);
            }
            return Ok(sent + self.send_queued()?);
        }
        match self.engine.as_mut() {
            Some(engine) => {
                if engine.is_established() {
                    while !self.write_buffer.is_empty()
                        && engine.outgoing_len() < OUTGOING_HIGH_WATER
                    {
                        let n = self.write_buffer.len().min(ENCRYPT_CHUNK);
                        engine.send(&self.write_buffer.as_slice()[..n])?;
                        self.write_buffer.consume(n);
                        self.progress.encrypted(n, engine.outgoing_len());
                    }
                }
                let sent = tcp.send(engine.outgoing()).map_err(Error::Network)?;
                let written = self.progress.sent(sent);
                self.report_written(written);
                Ok(sent)
            }
            None if self.mode == SslMode::UnencryptedMode => {
                let sent = tcp.send(&mut self.write_buffer).map_err(Error::Network)?;
                self.report_written(sent as u64);
                Ok(sent)
            }
            None => Ok(0),
        }
    }

    /// Tells the deadlines whether output still waits for the network after
    /// a write that moved `sent` bytes.
    fn note_output(&mut self, sent: usize) {
        if sent > 0 {
            self.deadlines.progressed();
        }
        let unencrypted = self.mode == SslMode::UnencryptedMode && !self.write_buffer.is_empty();
        let queued = match &self.engine {
            Some(engine) => engine.outgoing_len() > 0,
            None => unencrypted,
        };
        let waiting = self.tcp.is_some() && (queued || !self.plain_out.is_empty());
        self.deadlines.output(waiting, sent > 0);
    }

    /// Encrypts `data` straight into the outgoing ciphertext when nothing is
    /// queued before it and the network keeps up; returns whether it did
    /// (otherwise the caller queues it). Saves one copy of bulk writes.
    pub(super) fn encrypt_now(&mut self, data: &[u8]) -> Result<bool> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(false);
        };
        // No limit on the ciphertext queued here: what the program writes
        // is held either way (its flow control is bytes_to_write), and
        // holding it encrypted saves a copy.
        let direct = data.len() >= DIRECT_ENCRYPT_MIN
            && self.write_buffer.is_empty()
            && self.plain_out.is_empty()
            && engine.is_established();
        if !direct {
            return Ok(false);
        }
        if let Err(error) = engine.send(data) {
            // The session is broken: report it once, through `error_occurred`.
            self.fail(error.clone());
            return Err(error);
        }
        self.progress.encrypted(data.len(), engine.outgoing_len());
        Ok(true)
    }

    /// Queues `bytes_written` (and `write_buffer_drained` when the queue
    /// fell back below half the high-water mark).
    fn report_written(&mut self, written: u64) {
        if written == 0 {
            return;
        }
        self.stats.plaintext_out(written);
        self.events.push_back(SocketEvent::BytesWritten(written));
        if self.write_full && self.bytes_to_write() <= self.write_high_water as u64 / 2 {
            self.write_full = false;
            self.events.push_back(SocketEvent::WriteBufferDrained);
        }
    }

    /// Writes what can be written now, without waiting for the reactor (Qt's
    /// `flush`). Returns whether everything queued went out; a failure is
    /// reported through the `error_occurred` signal.
    pub fn flush(&mut self) -> bool {
        if self.tcp.is_some() {
            if let Err(error) = self.transmit() {
                self.fail(error);
            }
        }
        self.bytes_to_write() == 0 && self.engine.as_ref().is_none_or(|e| e.outgoing_len() == 0)
    }

    // ---- closing ----

    /// A graceful close, step by step: queued data out, `close_notify`, FIN,
    /// then wait (briefly) for the peer to finish too.
    fn advance_close(&mut self, cx: &mut Context) -> Result<()> {
        if self.close.peer_finished && !self.close.requested && self.events.is_empty() {
            // The peer's goodbye has been dispatched: close our side too.
            self.close.requested = true;
        }
        if !self.close.requested || self.state == SocketState::Unconnected {
            return Ok(());
        }
        if self.engine.as_ref().is_some_and(|e| !e.is_established()) {
            // Qt's pending close: the handshake finishes first, then the
            // data written meanwhile goes out, then the goodbye.
            return Ok(());
        }
        self.set_state(SocketState::Closing);
        let established = self.engine.as_ref().is_none_or(|e| e.is_established());
        if established && !self.write_buffer.is_empty() {
            return Ok(());
        }
        if let Some(engine) = self.engine.as_mut().filter(|e| e.is_established()) {
            if !self.close.close_notify_sent {
                engine.close();
                self.close.close_notify_sent = true;
                self.transmit()?;
            }
        }
        if self.engine.as_ref().is_some_and(|e| e.outgoing_len() > 0) {
            return Ok(());
        }
        if !self.close.fin_sent {
            self.close.fin_sent = true;
            if let Some(tcp) = &self.tcp {
                tcp.shutdown_write();
            }
            self.close.deadline = Some(Instant::now() + CLOSE_LINGER);
        }
        if let Some(deadline) = self.close.deadline {
            self.request_wake(cx, deadline);
        }
        let peer_gone = self.close.peer_finished || self.tcp.as_ref().is_none_or(Tcp::is_eof);
        let timed_out = self.close.deadline.is_some_and(|d| Instant::now() >= d);
        if timed_out && !peer_gone {
            log::debug!(
                "socket {:?}: the peer did not close in time; closing",
                self.id
            );
        }
        if peer_gone || timed_out {
            self.tear_down();
        }
        Ok(())
    }

    /// Ends the connection after an error: the error, then `disconnected`.
    /// After a fatal alert, the stream lingers (see `lingering.rs`) so that
    /// the alert reaches the peer.
    pub(super) fn fail(&mut self, error: Error) {
        log::debug!("socket {:?}: {error}", self.id);
        self.note_peer_close(&error);
        if let (Some(engine), Some(tcp)) = (self.engine.as_mut(), self.tcp.as_mut()) {
            // Best effort: let an alert reach the peer.
            let _ = tcp.send(engine.outgoing());
        }
        if self.fatal_alert_sent() {
            self.linger();
        }
        self.events.push_back(SocketEvent::Error(Box::new(error)));
        self.tear_down();
    }

    /// How the peer's stream ended, when `error` says so: a truncation
    /// (between records or inside one) or a reset.
    fn note_peer_close(&mut self, error: &Error) {
        let mid_record = self.engine.as_ref().is_some_and(|e| e.ended_mid_record());
        let how = match error {
            Error::Truncated | Error::ClosedDuringHandshake if mid_record => {
                PeerClose::EofMidRecord
            }
            Error::Truncated | Error::ClosedDuringHandshake => PeerClose::EofAtRecordBoundary,
            Error::Network(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                PeerClose::Reset
            }
            _ => return,
        };
        self.stats.peer_closed(how);
    }

    /// Whether this round told the peer, with a fatal alert, why the
    /// connection ends.
    fn fatal_alert_sent(&self) -> bool {
        self.events.iter().any(
            |e| matches!(e, SocketEvent::AlertSent(alert) if alert.level() == AlertLevel::Fatal),
        )
    }

    /// Hands the stream, with what is left to send, to a lingering close,
    /// which the reactor takes over (`take_lingering`).
    fn linger(&mut self) {
        let (Some(tcp), Some(engine)) = (self.tcp.take(), self.engine.as_mut()) else {
            return;
        };
        let registered = std::mem::take(&mut self.registered);
        self.lingering = Lingering::start(tcp, registered, engine.outgoing()).map(Box::new);
    }

    /// The stream left in its lingering close by the last failure, if any.
    pub(crate) fn take_lingering(&mut self) -> Option<Box<Lingering>> {
        self.lingering.take()
    }

    /// Drops the connection and the TLS session; `disconnected` follows if
    /// there was a connection. Received data stays readable.
    pub(super) fn tear_down(&mut self) {
        let was_connected = matches!(
            self.state,
            SocketState::Connected
                | SocketState::Handshaking
                | SocketState::Encrypted
                | SocketState::Closing
        );
        // Dropping the stream closes it, which also removes it from epoll.
        self.tcp = None;
        self.registered = false;
        self.pin_wait = None;
        // The engine stays, inert, so the session's details (protocol,
        // certificates) remain readable until the next connection.
        // What was written for this connection goes with it: a later
        // connection, to another peer or without TLS, must not send it.
        self.write_buffer = ByteQueue::new();
        self.plain_out = ByteQueue::new();
        self.progress = super::write_progress::WriteProgress::default();
        self.write_full = false;
        self.connect = None;
        self.close = Close::default();
        self.deadlines.set_program(None);
        self.encrypt_when_connected = false;
        // An ignore-all covers one connection (Qt resets it too).
        self.ignore_all = false;
        self.ended = true;
        self.set_state(SocketState::Unconnected);
        if was_connected {
            let stats = self.statistics();
            self.events
                .push_back(SocketEvent::Disconnected(Box::new(stats)));
        }
    }

    /// Called when the reactor drops the socket.
    pub(crate) fn retire(&mut self, registry: &Registry, timers: &mut Timers) {
        if let Some(tcp) = &mut self.tcp {
            tcp.deregister(registry);
        }
        if let Some((_, timer)) = self.wake.take() {
            timers.cancel(timer);
        }
        self.tcp = None;
        self.engine = None;
    }
}
