//! A DTLS socket's signals, the events that feed them, and their dispatch:
//! `drive.rs` queues [`DtlsEvent`]s during I/O, [`DtlsSocket::dispatch`]
//! emits them afterwards, outside any GnuTLS call.

use std::rc::Rc;

use zeroize::Zeroizing;

use super::DtlsSocket;
use crate::context::Context;
use crate::error::{Alert, Error, SslError};
use crate::psk::PreSharedKeyAuthenticator;
use crate::signal::{declare_signals, emit};
use crate::ssl_socket::SocketState;

/// Something that happened to a DTLS socket, waiting to be emitted.
#[derive(Debug)]
pub(super) enum DtlsEvent {
    StateChanged(SocketState),
    HandshakeComplete,
    PeerVerifyError(SslError),
    SslErrors(Vec<SslError>),
    /// The identity a client named that the server's table does not hold.
    PreSharedKeyAuthenticationRequired(Vec<u8>),
    AlertReceived(Alert),
    AlertSent(Alert),
    /// One application record's plaintext, wiped once emitted.
    Datagram(Zeroizing<Vec<u8>>),
    Disconnected,
    Error(Box<Error>),
}

declare_signals! {
    DtlsSocket, DtlsSignals;
    /// The state changed; the payload is the new state.
    state_changed: SocketState,
    /// The handshake completed and the peer was accepted: datagrams flow.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.dtls_socket(config);
    /// # let socket = reactor.dtls(id).unwrap();
    /// socket.handshake_complete().connect(|s, _, _| {
    ///     println!("{:?} {:?}, up to {:?} bytes a datagram", s.protocol(), s.session_cipher(), s.data_mtu());
    /// });
    /// ```
    handshake_complete: (),
    /// One problem found verifying the peer, as it is found.
    peer_verify_error: SslError,
    /// Verification of the peer failed; as for
    /// [`SslSocket::ssl_errors`](crate::SslSocket::ssl_errors) (see its
    /// example), the handshake goes on only if the slots ignored every
    /// problem listed, and fails with [`Error::CertificateVerification`]
    /// otherwise.
    ssl_errors: Vec<SslError>,
    /// With [`handshake_must_interrupt_on_error`](crate::SslConfigurationBuilder::handshake_must_interrupt_on_error):
    /// emitted after `ssl_errors`; the handshake waits for
    /// [`DtlsSocket::continue_interrupted_handshake`] or
    /// [`DtlsSocket::abort`] (its handshake timeout still runs).
    handshake_interrupted_on_error: Vec<SslError>,
    /// On a server's socket: the client named a pre-shared key identity
    /// the table does not hold (see
    /// [`SslSocket::pre_shared_key_authentication_required`](crate::SslSocket::pre_shared_key_authentication_required)).
    pre_shared_key_authentication_required: PreSharedKeyAuthenticator,
    /// The peer sent an alert.
    alert_received: Alert,
    /// We sent an alert.
    alert_sent: Alert,
    /// A datagram arrived: the payload is its plaintext, whole, as the
    /// peer wrote it (one DTLS record). Qt's `decryptDatagram`.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.dtls_socket(config);
    /// # let socket = reactor.dtls(id).unwrap();
    /// socket.datagram_received().connect(|s, _, datagram| {
    ///     s.write_datagram(datagram).ok(); // an echo
    /// });
    /// ```
    datagram_received: Vec<u8>,
    /// The association ended: `close_notify` either way, an error, a
    /// timeout or `abort`.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.dtls_socket(config);
    /// # let socket = reactor.dtls(id).unwrap();
    /// socket.disconnected().connect(|_, cx, _| cx.quit());
    /// ```
    disconnected: (),
    /// Something failed; the payload says what. Emitted before
    /// `disconnected`.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.dtls_socket(config);
    /// # let socket = reactor.dtls(id).unwrap();
    /// socket.error_occurred().connect(|s, _, error| eprintln!("{}: {error}", s.id()));
    /// ```
    error_occurred: Error,
}

impl DtlsSocket {
    /// Emits the queued events, oldest first; stops when a slot deletes
    /// the socket.
    pub(super) fn dispatch(&mut self, cx: &mut Context) {
        while !cx.has_panic() {
            let Some(event) = self.events.pop_front() else {
                break;
            };
            self.emit_event(cx, event);
            if self.deleted || cx.is_doomed(self.id.0) {
                self.events.clear();
            }
        }
    }

    fn emit_event(&mut self, cx: &mut Context, event: DtlsEvent) {
        match event {
            DtlsEvent::StateChanged(state) => {
                emit(self, cx, |s| &mut s.signals.state_changed, &state)
            }
            DtlsEvent::HandshakeComplete => {
                emit(self, cx, |s| &mut s.signals.handshake_complete, &())
            }
            DtlsEvent::PeerVerifyError(e) => {
                emit(self, cx, |s| &mut s.signals.peer_verify_error, &e)
            }
            DtlsEvent::SslErrors(errors) => self.emit_ssl_errors(cx, errors),
            DtlsEvent::PreSharedKeyAuthenticationRequired(identity) => {
                let Some(keys) = self.config.pre_shared_keys().cloned() else {
                    return;
                };
                let authenticator = PreSharedKeyAuthenticator::new(identity, keys);
                emit(
                    self,
                    cx,
                    |s| &mut s.signals.pre_shared_key_authentication_required,
                    &authenticator,
                );
            }
            DtlsEvent::AlertReceived(a) => emit(self, cx, |s| &mut s.signals.alert_received, &a),
            DtlsEvent::AlertSent(a) => emit(self, cx, |s| &mut s.signals.alert_sent, &a),
            DtlsEvent::Datagram(datagram) => {
                emit(self, cx, |s| &mut s.signals.datagram_received, &*datagram)
            }
            DtlsEvent::Disconnected => {
                emit(self, cx, |s| &mut s.signals.disconnected, &());
                self.deleted |= self.auto_delete;
            }
            DtlsEvent::Error(error) => {
                // Set before the slots run, as SslSocket's (Qt's order).
                let error: Rc<Error> = Rc::from(error);
                self.last_error = Some(Rc::clone(&error));
                emit(self, cx, |s| &mut s.signals.error_occurred, &*error);
            }
        }
    }

    /// `ssl_errors`, then either `handshake_interrupted_on_error` (the
    /// handshake waits) or the decision at once.
    fn emit_ssl_errors(&mut self, cx: &mut Context, errors: Vec<SslError>) {
        emit(self, cx, |s| &mut s.signals.ssl_errors, &errors);
        if !self.config.handshake_must_interrupt_on_error() {
            return self.continue_interrupted_handshake();
        }
        emit(
            self,
            cx,
            |s| &mut s.signals.handshake_interrupted_on_error,
            &errors,
        );
    }
}
