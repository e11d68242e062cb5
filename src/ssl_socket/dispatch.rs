//! The socket's signals, the events that feed them, and their dispatch.
//!
//! `drive.rs` queues [`SocketEvent`]s while it does I/O; [`SslSocket::dispatch`]
//! turns them into signal emissions afterwards, when no GnuTLS call and no
//! borrow of the socket's internals is in progress.

use super::{SocketState, SslSocket};
use crate::context::Context;
use crate::error::{Alert, Error, SslError};
use crate::proxy::Proxy;
use crate::signal::{emit, Signal};

/// Something that happened to a socket, waiting to be emitted.
#[derive(Debug)]
pub(super) enum SocketEvent {
    StateChanged(SocketState),
    HostFound,
    Connected,
    HandshakeComplete,
    PeerVerifyError(SslError),
    SslErrors(Vec<SslError>),
    AlertReceived(Alert),
    AlertSent(Alert),
    ReadyRead,
    BytesWritten(u64),
    WriteBufferFull(u64),
    WriteBufferDrained,
    ReadChannelFinished,
    ProxyAuthenticationRequired(String),
    Disconnected,
    /// Boxed: errors are rare and large, events frequent.
    Error(Box<Error>),
}

macro_rules! socket_signals {
    ($( $(#[$doc:meta])* $name:ident : $payload:ty ),* $(,)?) => {
        /// The signals of one socket.
        #[derive(Default)]
        pub(super) struct SocketSignals {
            $( $name: Signal<SslSocket, $payload>, )*
        }

        /// # Signals
        ///
        /// Each method returns a signal to [`connect`](Signal::connect)
        /// slots to. A slot gets the socket, the reactor's
        /// [`Context`] and the payload.
        impl SslSocket {
            $(
                $(#[$doc])*
                pub fn $name(&mut self) -> &mut Signal<SslSocket, $payload> {
                    &mut self.signals.$name
                }
            )*
        }
    };
}

socket_signals! {
    /// The state changed; the payload is the new state.
    state_changed: SocketState,
    /// The host name was resolved; connecting starts.
    host_found: (),
    /// The proxy asks for credentials, or refused the ones given; the
    /// payload is the proxy. A slot may call [`SslSocket::set_proxy`] with
    /// new credentials: the socket then connects again. Otherwise the
    /// connection fails with [`Error::Proxy`].
    proxy_authentication_required: Proxy,
    /// TCP is connected.
    connected: (),
    /// The TLS handshake completed: data is now encrypted (Qt's `encrypted`).
    handshake_complete: (),
    /// One problem found while verifying the peer's certificate, as it is
    /// found (every verify mode but `VerifyNone`).
    peer_verify_error: SslError,
    /// Verification of the peer failed. The handshake waits until the slots
    /// return: if they ignored every problem listed (with
    /// [`SslSocket::ignore_ssl_errors`] or
    /// [`SslSocket::ignore_all_ssl_errors`]) it continues, otherwise it
    /// fails with [`Error::CertificateVerification`].
    ssl_errors: Vec<SslError>,
    /// With [`handshake_must_interrupt_on_error`](crate::SslConfigurationBuilder::handshake_must_interrupt_on_error):
    /// emitted after `ssl_errors`; the handshake stays paused until
    /// [`SslSocket::continue_interrupted_handshake`] or [`SslSocket::abort`].
    handshake_interrupted_on_error: Vec<SslError>,
    /// The peer sent a TLS alert.
    alert_received: Alert,
    /// We sent a TLS alert.
    alert_sent: Alert,
    /// New plaintext can be read. Emitted once per arrival: data left unread
    /// is not announced again until more arrives.
    ready_read: (),
    /// Plaintext bytes (the payload) were handed to the network.
    bytes_written: u64,
    /// [`SslSocket::bytes_to_write`] reached the high-water mark (see
    /// [`SslSocket::set_write_high_water_mark`]); the payload is its value.
    write_buffer_full: u64,
    /// The write queue drained below half the high-water mark.
    write_buffer_drained: (),
    /// The peer will send nothing more (TLS `close_notify`, or FIN on an
    /// unencrypted socket).
    read_channel_finished: (),
    /// The connection is closed.
    disconnected: (),
    /// Something failed; the payload says what. Emitted before
    /// `disconnected` when a connection breaks.
    error: Error,
}

impl SslSocket {
    /// Emits the queued events, oldest first. Stops early when a slot
    /// deletes the socket.
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

    fn emit_event(&mut self, cx: &mut Context, event: SocketEvent) {
        match event {
            SocketEvent::StateChanged(state) => {
                emit(self, cx, |s| &mut s.signals.state_changed, &state)
            }
            SocketEvent::HostFound => emit(self, cx, |s| &mut s.signals.host_found, &()),
            SocketEvent::Connected => emit(self, cx, |s| &mut s.signals.connected, &()),
            SocketEvent::HandshakeComplete => {
                emit(self, cx, |s| &mut s.signals.handshake_complete, &());
                if let Some(server) = &mut self.server {
                    server.encrypted(cx, self.id);
                }
            }
            SocketEvent::PeerVerifyError(e) => {
                emit(self, cx, |s| &mut s.signals.peer_verify_error, &e)
            }
            SocketEvent::SslErrors(errors) => {
                emit(self, cx, |s| &mut s.signals.ssl_errors, &errors);
                if self.config.handshake_must_interrupt_on_error() {
                    emit(
                        self,
                        cx,
                        |s| &mut s.signals.handshake_interrupted_on_error,
                        &errors,
                    );
                } else {
                    self.continue_interrupted_handshake();
                }
            }
            SocketEvent::AlertReceived(a) => emit(self, cx, |s| &mut s.signals.alert_received, &a),
            SocketEvent::AlertSent(a) => emit(self, cx, |s| &mut s.signals.alert_sent, &a),
            SocketEvent::ReadyRead => emit(self, cx, |s| &mut s.signals.ready_read, &()),
            SocketEvent::BytesWritten(n) => emit(self, cx, |s| &mut s.signals.bytes_written, &n),
            SocketEvent::WriteBufferFull(n) => {
                emit(self, cx, |s| &mut s.signals.write_buffer_full, &n)
            }
            SocketEvent::WriteBufferDrained => {
                emit(self, cx, |s| &mut s.signals.write_buffer_drained, &())
            }
            SocketEvent::ReadChannelFinished => {
                emit(self, cx, |s| &mut s.signals.read_channel_finished, &())
            }
            SocketEvent::ProxyAuthenticationRequired(detail) => {
                if let Some(proxy) = self.proxy.as_deref().cloned() {
                    emit(
                        self,
                        cx,
                        |s| &mut s.signals.proxy_authentication_required,
                        &proxy,
                    );
                }
                self.retry_proxy_authentication(detail);
            }
            SocketEvent::Disconnected => {
                emit(self, cx, |s| &mut s.signals.disconnected, &());
                let may_go = self.server.as_mut().is_none_or(|s| s.disconnected());
                self.deleted |= self.auto_delete && may_go;
            }
            SocketEvent::Error(boxed) => {
                let e = *boxed;
                emit(self, cx, |s| &mut s.signals.error, &e);
                if let Some(server) = &mut self.server {
                    server.failed(cx, self.id, &e);
                }
                self.last_error = Some(Box::new(e));
            }
        }
    }
}
