//! Driving a DTLS socket: receiving datagrams, advancing the handshake,
//! sending datagrams, closing, and keeping the reactor's one timer for the
//! socket at the earliest of its deadline and its next retransmission.
//!
//! Nothing here runs user code: what happens is queued for `dispatch.rs`.
//! A received datagram that is not DTLS for this association (a forgery,
//! a duplicate, a stray) is dropped inside GnuTLS and changes nothing.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::dispatch::DtlsEvent;
use super::DtlsSocket;
use crate::context::Context;
use crate::engine::{Engine, EngineEvent};
use crate::error::{Error, Result};
use crate::pkcs11::{PinRequest, Pkcs11ErrorKind};
use crate::reactor::{token_of, Readiness};
use crate::ssl_socket::SocketState;

/// How many datagrams one service round takes from the socket before the
/// reactor's other objects get a turn.
const RECEIVE_BATCH: usize = 64;

/// How many received datagrams may wait for the engine (a server's peer
/// between two services, or datagrams GnuTLS has not taken yet); more are
/// dropped, as a full UDP buffer would.
const MAX_QUEUED: usize = 64;

impl DtlsSocket {
    /// One service round: all the I/O that can be done, the reactor's wake
    /// for the next deadline or retransmission, then the signals. Returns
    /// whether another round could make progress.
    pub(crate) fn service(&mut self, cx: &mut Context, _readiness: Option<Readiness>) -> bool {
        if self.deleted {
            return false;
        }
        if let Err(error) = self.advance(cx) {
            self.fail(error);
        }
        self.schedule(cx);
        if self.events.is_empty() {
            return self.more_to_read;
        }
        self.dispatch(cx);
        !self.deleted && !cx.is_doomed(self.id.0)
    }

    fn advance(&mut self, cx: &mut Context) -> Result<()> {
        if self.link.is_none() {
            return Ok(());
        }
        self.check_deadline()?;
        if let Some(link) = self.link.as_mut() {
            link.register(cx.registry(), token_of(self.id.0))
                .map_err(Error::Network)?;
        }
        if self
            .link
            .as_ref()
            .and_then(|l| l.port())
            .is_some_and(|(port, _)| !port.is_open())
        {
            log::debug!("DTLS socket {:?}: its server is gone", self.id);
            self.close_requested = true;
        }
        self.receive()?;
        self.process()?;
        self.transmit()?;
        if self.close_requested {
            self.close();
        }
        Ok(())
    }

    /// Fails with a timeout when the current phase's deadline passed.
    fn check_deadline(&self) -> Result<()> {
        match self.deadlines.next(self.state) {
            Some((deadline, kind)) if Instant::now() >= deadline => Err(Error::Timeout(kind)),
            _ => Ok(()),
        }
    }

    /// Asks the reactor to service the socket at its next deadline, or
    /// when the handshake's last flight is due again, whichever comes
    /// first.
    fn schedule(&mut self, cx: &mut Context) {
        if self.link.is_none() {
            return;
        }
        let now = Instant::now();
        let deadline = self.deadlines.next(self.state).map(|(at, _)| at);
        let retransmission = self.engine.as_ref().and_then(|e| e.retransmission_due());
        let retransmission = retransmission.map(|due| now + due.max(Duration::from_millis(1)));
        let next = [deadline, retransmission].into_iter().flatten().min();
        if let Some(when) = next {
            self.wake.at(cx, self.id.0, when);
        }
    }

    /// A datagram a server routed to this peer.
    pub(super) fn deliver(&mut self, datagram: Vec<u8>) {
        if let Some(engine) = self.engine.as_mut() {
            queue(engine, datagram);
        }
    }

    /// Takes what the socket holds (a client's own socket), up to a batch.
    fn receive(&mut self) -> Result<()> {
        self.more_to_read = false;
        let (Some(link), Some(engine)) = (self.link.as_ref(), self.engine.as_mut()) else {
            return Ok(());
        };
        for _ in 0..RECEIVE_BATCH {
            match link.receive() {
                Ok(Some(datagram)) => queue(engine, datagram),
                Ok(None) => return Ok(()),
                Err(e) => return network_error(self.state, e),
            }
        }
        self.more_to_read = true;
        Ok(())
    }

    /// Advances the handshake and decrypts what arrived, queuing the
    /// events; the peer's `close_notify` ends the association after the
    /// datagrams that came before it.
    fn process(&mut self) -> Result<()> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        let moved = engine.incoming_datagrams() > 0;
        let mut records = VecDeque::new();
        let result = engine.process_datagrams(&mut records);
        if moved {
            self.deadlines.progressed();
        }
        let events = self.collect_engine_events();
        self.queue_datagrams(records);
        result?;
        let peer_closed = events?;
        if peer_closed {
            self.close_requested = true;
        }
        Ok(())
    }

    fn queue_datagrams(&mut self, records: VecDeque<Zeroizing<Vec<u8>>>) {
        self.events
            .extend(records.into_iter().map(DtlsEvent::Datagram));
    }

    /// Queues the engine's events; returns whether the peer's
    /// `close_notify` was among them.
    fn collect_engine_events(&mut self) -> Result<bool> {
        let mut peer_closed = false;
        while let Some(event) = self.engine.as_mut().and_then(|e| e.next_event()) {
            let event = match event {
                EngineEvent::HandshakeComplete => {
                    self.on_encrypted();
                    DtlsEvent::HandshakeComplete
                }
                EngineEvent::PeerVerifyError(e) => DtlsEvent::PeerVerifyError(e),
                EngineEvent::SslErrors(errors) => DtlsEvent::SslErrors(errors),
                EngineEvent::AlertReceived(a) => DtlsEvent::AlertReceived(a),
                EngineEvent::AlertSent(a) => DtlsEvent::AlertSent(a),
                EngineEvent::PreSharedKeyIdentityUnknown(identity) => {
                    DtlsEvent::PreSharedKeyAuthenticationRequired(identity)
                }
                EngineEvent::CloseNotify => {
                    peer_closed = true;
                    continue;
                }
                EngineEvent::PinRequired => return Err(self.pin_unanswered()),
            };
            self.events.push_back(event);
        }
        Ok(peer_closed)
    }

    /// The handshake waits for the PIN of a token key: a DTLS socket has no
    /// `pin_required` signal, so it fails at once rather than wait in
    /// silence.
    fn pin_unanswered(&self) -> Error {
        let request = self.engine.as_ref().and_then(|e| e.pin_request());
        Error::Pkcs11 {
            token: request.map(PinRequest::token_label).unwrap_or_default(),
            kind: Pkcs11ErrorKind::PinRequired,
            detail: "a DTLS socket does not ask for a PIN: give it in the configuration, or \
                     answer SslConfiguration::pin_requests before the handshake"
                .into(),
        }
    }

    fn on_encrypted(&mut self) {
        self.set_state(SocketState::Encrypted);
        if let Some((port, peer)) = self.link.as_ref().and_then(|l| l.port()) {
            port.established(peer, self.id.0);
        }
    }

    /// Sends the datagrams the engine queued, until the network pushes
    /// back (the socket is serviced again once it can take more).
    pub(super) fn transmit(&mut self) -> Result<()> {
        let (Some(link), Some(engine)) = (self.link.as_ref(), self.engine.as_mut()) else {
            return Ok(());
        };
        let mut sent = false;
        while let Some(datagram) = engine.next_datagram() {
            match link.send(datagram, self.id.0) {
                Ok(true) => {
                    engine.datagram_sent();
                    sent = true;
                }
                Ok(false) => break,
                Err(e) => {
                    // Nothing to retry: the datagram is dropped, as the
                    // network may drop any.
                    engine.datagram_sent();
                    network_error(self.state, e)?;
                }
            }
        }
        if sent {
            self.deadlines.progressed();
        }
        Ok(())
    }

    /// Ends the association the program (or the peer) asked to end: with
    /// `close_notify` once encrypted, at once during the handshake.
    fn close(&mut self) {
        if self.state == SocketState::Encrypted {
            self.set_state(SocketState::Closing);
            if let Some(engine) = self.engine.as_mut() {
                engine.close();
            }
            if let Err(e) = self.transmit() {
                log::debug!("DTLS socket {:?}: close_notify not sent: {e}", self.id);
            }
        }
        self.tear_down();
    }

    /// Ends the association after `error`: the error, then `disconnected`.
    /// An alert the engine queued goes out first, as far as it can.
    pub(super) fn fail(&mut self, error: Error) {
        log::debug!("DTLS socket {:?}: {error}", self.id);
        let _ = self.transmit();
        self.events.push_back(DtlsEvent::Error(Box::new(error)));
        self.tear_down();
    }

    /// Drops the association; `disconnected` follows if there was one. The
    /// session stays, inert, so its details remain readable.
    pub(super) fn tear_down(&mut self) {
        let was_associated = matches!(
            self.state,
            SocketState::Handshaking | SocketState::Encrypted | SocketState::Closing
        );
        if let Some(link) = self.link.take() {
            if let Some((port, peer)) = link.port() {
                port.leave(peer, self.id.0);
            }
        }
        self.close_requested = false;
        self.ignore_all = false;
        self.more_to_read = false;
        self.set_state(SocketState::Unconnected);
        if was_associated {
            self.events.push_back(DtlsEvent::Disconnected);
        }
    }

    /// Called when the reactor drops the socket.
    pub(crate) fn retire(&mut self, cx: &mut Context) {
        self.wake.cancel(&mut cx.timers);
        if let Some(mut link) = self.link.take() {
            link.deregister(cx.registry());
            if let Some((port, peer)) = link.port() {
                port.leave(peer, self.id.0);
            }
        }
        self.engine = None;
    }
}

/// Queues a received datagram for the engine, unless as many as
/// [`MAX_QUEUED`] wait already: then it is dropped, as a full UDP buffer
/// would drop it.
fn queue(engine: &mut Engine, datagram: Vec<u8>) {
    if engine.incoming_datagrams() < MAX_QUEUED {
        engine.receive_datagram(datagram);
    } else {
        log::trace!("DTLS: {MAX_QUEUED} datagrams wait already; one dropped");
    }
}

/// What a network error on the socket in `state` means. A port reported
/// closed (an ICMP error for an earlier datagram) fails a handshake at
/// once, as a refused TCP connection would; once encrypted, unauthenticated
/// ICMP does not end the association (its idle timeout does, if the peer
/// is really gone).
fn network_error(state: SocketState, error: io::Error) -> Result<()> {
    let refused = error.kind() == io::ErrorKind::ConnectionRefused;
    if refused && state != SocketState::Handshaking {
        log::debug!("DTLS: {error} (ignored once encrypted)");
        return Ok(());
    }
    Err(Error::Network(error))
}
