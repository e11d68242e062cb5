//! The socket's signals, the events that feed them, and their dispatch.
//!
//! `drive.rs` queues [`SocketEvent`]s while it does I/O; [`SslSocket::dispatch`]
//! turns them into signal emissions afterwards, when no GnuTLS call and no
//! borrow of the socket's internals is in progress.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::{ConnectionStatistics, SocketState, SslSocket};
use crate::context::Context;
use crate::error::{Alert, Error, SslError};
use crate::pkcs11::PinRequest;
use crate::proxy::Proxy;
use crate::psk::PreSharedKeyAuthenticator;
use crate::signal::{declare_signals, emit};

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
    /// The identity a client named that the table does not hold.
    PreSharedKeyAuthenticationRequired(Vec<u8>),
    PinRequired(PinRequest),
    Disconnected(Box<ConnectionStatistics>),
    /// Boxed: errors are rare and large, events frequent.
    Error(Box<Error>),
}

/// Empty event queues kept per thread for the next socket with events.
const SPARE_QUEUES: usize = 16;

/// Queues that grew beyond this many events (a handshake's burst) are
/// freed, not kept.
const SPARE_QUEUE_CAPACITY: usize = 16;

thread_local! {
    /// Empty event queues, with their memory, given back by sockets of this
    /// thread (the reactor's) once their events were emitted.
    static SPARE: RefCell<Vec<VecDeque<SocketEvent>>> = const { RefCell::new(Vec::new()) };
}

/// A socket's events waiting to be emitted.
///
/// The queue holds memory only while events wait: once they are emitted
/// its memory goes to a small per-thread stock, which the next socket with
/// events takes from. An idle socket holds no queue; a busy one allocates
/// none per event.
#[derive(Debug, Default)]
pub(super) struct Events(VecDeque<SocketEvent>);

impl Events {
    pub(super) fn push_back(&mut self, event: SocketEvent) {
        if self.0.capacity() == 0 {
            let spare = SPARE.try_with(|spare| spare.borrow_mut().pop());
            if let Ok(Some(queue)) = spare {
                self.0 = queue;
            }
        }
        self.0.push_back(event);
    }

    pub(super) fn pop_front(&mut self) -> Option<SocketEvent> {
        self.0.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &SocketEvent> {
        self.0.iter()
    }

    /// Gives the queue's memory to the stock once every event was emitted.
    fn release_if_empty(&mut self) {
        let capacity = self.0.capacity();
        if !self.0.is_empty() || capacity == 0 {
            return;
        }
        let queue = std::mem::take(&mut self.0);
        if capacity > SPARE_QUEUE_CAPACITY {
            return;
        }
        let _ = SPARE.try_with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_QUEUES {
                spare.push(queue);
            }
        });
    }
}

declare_signals! {
    SslSocket, SocketSignals;
    /// The state changed; the payload is the new state.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.state_changed().connect(|s, _, state| println!("{}: {state:?}", s.id()));
    /// ```
    state_changed: SocketState,
    /// The host name was resolved; connecting starts.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.host_found().connect(|s, _, _| println!("{} resolved", s.peer_name()));
    /// ```
    host_found: (),
    /// The proxy asks for credentials, or refused the ones given; the
    /// payload is the proxy. A slot may call [`SslSocket::set_proxy`] with
    /// new credentials: the socket then connects again. Otherwise the
    /// connection fails with [`Error::Proxy`].
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.proxy_authentication_required().connect(|s, _, proxy| {
    ///     if proxy.user().is_none() {
    ///         s.set_proxy(Some(proxy.clone().with_credentials("user", "secret")));
    ///     } // refused again: the connection fails
    /// });
    /// ```
    proxy_authentication_required: Proxy,
    /// TCP is connected.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.connected().connect(|s, _, _| println!("connected to {:?}", s.peer_address()));
    /// ```
    connected: (),
    /// The TLS handshake completed: data is now encrypted (Qt's `encrypted`).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.handshake_complete().connect(|s, _, _| {
    ///     println!("{:?} with {:?}", s.protocol(), s.session_cipher());
    ///     s.write(b"GET / HTTP/1.0\r\n\r\n").ok();
    /// });
    /// ```
    handshake_complete: (),
    /// One problem found while verifying the peer's certificate, as it is
    /// found (every verify mode but `VerifyNone`).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.peer_verify_error().connect(|_, _, problem| eprintln!("verification: {problem}"));
    /// ```
    peer_verify_error: SslError,
    /// Verification of the peer failed. The handshake waits until the slots
    /// return: if they ignored every problem listed (with
    /// [`SslSocket::ignore_ssl_errors`] or
    /// [`SslSocket::ignore_all_ssl_errors`]) it continues, otherwise it
    /// fails with [`Error::CertificateVerification`].
    ///
    /// ```
    /// use sslsocket::SslErrorKind;
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.ssl_errors().connect(|s, _, problems| {
    ///     // Accept an expired certificate, and nothing else.
    ///     if problems.iter().all(|p| p.kind() == SslErrorKind::CertificateExpired) {
    ///         s.ignore_ssl_errors(problems);
    ///     }
    /// });
    /// ```
    ///
    /// Qt's classic pattern, trusting exactly one self-signed certificate
    /// (a pin on the whole certificate; for the key alone, see
    /// [`pin_public_keys`](crate::SslConfigurationBuilder::pin_public_keys)):
    ///
    /// ```
    /// use sslsocket::{Certificate, SslErrorKind};
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ca/server.pem");
    /// let trusted: Certificate = Certificate::from_file(path)?.remove(0);
    /// socket.ssl_errors().connect(move |s, _, problems| {
    ///     // Only the self-signed problem, and only for that certificate
    ///     // (certificates are equal when their DER encodings are).
    ///     let pinned = problems.iter().all(|p| {
    ///         p.kind() == SslErrorKind::SelfSignedCertificate && p.certificate() == Some(&trusted)
    ///     });
    ///     if pinned {
    ///         s.ignore_ssl_errors(problems);
    ///     }
    /// });
    /// # Ok::<(), sslsocket::Error>(())
    /// ```
    ssl_errors: Vec<SslError>,
    /// With [`handshake_must_interrupt_on_error`](crate::SslConfigurationBuilder::handshake_must_interrupt_on_error):
    /// emitted after `ssl_errors`; the handshake stays paused until
    /// [`SslSocket::continue_interrupted_handshake`] or [`SslSocket::abort`].
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.handshake_interrupted_on_error().connect(|s, cx, problems| {
    ///     // Ask someone, then answer from a timer (or a posted task).
    ///     eprintln!("{} problems; continuing in a second", problems.len());
    ///     let id = s.id();
    ///     cx.start_timer(std::time::Duration::from_secs(1), move |cx, _| {
    ///         if let Some(s) = cx.socket(id) {
    ///             s.ignore_all_ssl_errors();
    ///             s.continue_interrupted_handshake();
    ///         }
    ///     });
    /// });
    /// ```
    handshake_interrupted_on_error: Vec<SslError>,
    /// On a server socket: a client named a pre-shared key identity that
    /// the server's table ([`SslConfigurationBuilder::pre_shared_keys`](crate::SslConfigurationBuilder::pre_shared_keys))
    /// does not hold, and its handshake failed (`error_occurred` follows,
    /// with [`PskErrorKind::UnknownIdentity`](crate::PskErrorKind::UnknownIdentity)).
    /// Qt's `preSharedKeyAuthenticationRequired`, except that the key a slot
    /// gives ([`PreSharedKeyAuthenticator::set_pre_shared_key`]) serves the
    /// client's next handshake, not this one: GnuTLS looks the key up inside
    /// the handshake, where no slot may run, and cannot resume after the
    /// lookup (see [`PreSharedKeys`](crate::PreSharedKeys)).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.pre_shared_key_authentication_required().connect(|_, _, authenticator| {
    ///     eprintln!("unknown identity {:?}", String::from_utf8_lossy(authenticator.identity()));
    /// });
    /// ```
    pre_shared_key_authentication_required: PreSharedKeyAuthenticator,
    /// The handshake is about to start and a local key on a PKCS#11 token
    /// (see [`add_local_certificate_pkcs11`](crate::SslConfigurationBuilder::add_local_certificate_pkcs11))
    /// waits for its PIN. The handshake waits, within its timeout, until the
    /// program answers with [`PinRequest::provide`](crate::PinRequest::provide),
    /// here, later, or from another thread; it then goes on, or fails with
    /// the login's error ([`Error::Pkcs11`]). Every socket of the
    /// configuration that starts a handshake meanwhile asks too, and all go
    /// on with one answer. GnuTLS cannot ask in the middle of a handshake,
    /// so a client asks before it starts, whether or not the server will
    /// want its certificate. On a server, connect it in `new_connection`.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.pin_required().connect(|_, _, request| {
    ///     if request.is_retry() {
    ///         eprintln!("the last PIN for {} was wrong", request.token_label());
    ///     }
    ///     if let Err(e) = request.provide("1234") {
    ///         eprintln!("{e}");
    ///     }
    /// });
    /// ```
    pin_required: PinRequest,
    /// The peer sent a TLS alert.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.alert_received().connect(|_, _, alert| eprintln!("the peer says: {alert}"));
    /// ```
    alert_received: Alert,
    /// We sent a TLS alert.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.alert_sent().connect(|_, _, alert| eprintln!("we said: {alert}"));
    /// ```
    alert_sent: Alert,
    /// New plaintext can be read. Emitted once per arrival: data left unread
    /// is not announced again until more arrives.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.ready_read().connect(|s, _, _| {
    ///     let data = s.read_all();
    ///     s.write(&data).ok(); // an echo
    /// });
    /// ```
    ready_read: (),
    /// Plaintext bytes (the payload) were handed to the network.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.bytes_written().connect(|s, _, &n| println!("{n} sent, {} to go", s.bytes_to_write()));
    /// ```
    bytes_written: u64,
    /// [`SslSocket::bytes_to_write`] reached the high-water mark (see
    /// [`SslSocket::set_write_high_water_mark`]); the payload is its value.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.set_write_high_water_mark(1 << 20);
    /// socket.set_user_data(false); // whether the producer is paused
    /// socket.write_buffer_full().connect(|s, _, &queued| {
    ///     println!("{queued} bytes queued: pausing");
    ///     s.set_user_data(true);
    /// });
    /// socket.write_buffer_drained().connect(|s, _, _| s.set_user_data(false));
    /// ```
    write_buffer_full: u64,
    /// The write queue drained below half the high-water mark.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.set_write_high_water_mark(1 << 20);
    /// socket.write_buffer_drained().connect(|s, _, _| {
    ///     // Produce more, up to the mark again.
    ///     s.write(&[0; 64 * 1024]).ok();
    /// });
    /// ```
    write_buffer_drained: (),
    /// The peer will send nothing more (TLS `close_notify`, or FIN on an
    /// unencrypted socket).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.read_channel_finished().connect(|s, _, _| {
    ///     let request = s.read_all();
    ///     s.write(format!("got {} bytes\n", request.len()).as_bytes()).ok();
    ///     s.disconnect_from_host(); // after the answer
    /// });
    /// ```
    read_channel_finished: (),
    /// The connection is closed; the payload is what it moved and how it
    /// ended (see [`SslSocket::statistics`]). Only a connection that was
    /// up ends: a connection that never came up (the name not found, TCP
    /// refused, the proxy failed) reports `error_occurred` and
    /// `state_changed(Unconnected)`, without `disconnected` (as in Qt).
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.disconnected().connect(|_, cx, _| cx.quit());
    /// ```
    disconnected: Box<ConnectionStatistics>,
    /// Something failed; the payload says what (Qt's `errorOccurred`, as
    /// the server's signal is named), and [`SslSocket::last_error`] says the
    /// same. Emitted before `state_changed(Unconnected)` and `disconnected`
    /// when a connection breaks; the state is already `Unconnected`.
    ///
    /// As in Qt, reconnect from the event loop rather than from this slot:
    /// a connection started here is under way when the failed one's
    /// `state_changed` and `disconnected` follow, and their slots would
    /// take them for the new one's. A timer of zero delay does it:
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// # let socket = reactor.socket(id).unwrap();
    /// socket.error_occurred().connect(|s, cx, error| {
    ///     eprintln!("{}: {error}", s.id());
    ///     let id = s.id();
    ///     cx.start_timer(std::time::Duration::ZERO, move |cx, _| {
    ///         if let Some(socket) = cx.socket(id) {
    ///             socket.connect_to_host_encrypted("example.org", 443).ok();
    ///         }
    ///     });
    /// });
    /// ```
    error_occurred: Error,
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
        self.events.release_if_empty();
    }

    /// Keeps `event` for the program, if no slot hears it while the socket
    /// waits in its server's queue (see `accepted.rs`).
    fn keep_if_unheard(&mut self, event: SocketEvent, heard: bool) {
        if let Some(link) = self.server.as_mut().filter(|l| l.is_held() && !heard) {
            link.keep_unheard(event);
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
            SocketEvent::ReadyRead => {
                let heard = self.signals.ready_read.is_connected();
                emit(self, cx, |s| &mut s.signals.ready_read, &());
                self.keep_if_unheard(SocketEvent::ReadyRead, heard);
            }
            SocketEvent::BytesWritten(n) => emit(self, cx, |s| &mut s.signals.bytes_written, &n),
            SocketEvent::WriteBufferFull(n) => {
                emit(self, cx, |s| &mut s.signals.write_buffer_full, &n)
            }
            SocketEvent::WriteBufferDrained => {
                emit(self, cx, |s| &mut s.signals.write_buffer_drained, &())
            }
            SocketEvent::ReadChannelFinished => {
                let heard = self.signals.read_channel_finished.is_connected();
                emit(self, cx, |s| &mut s.signals.read_channel_finished, &());
                self.keep_if_unheard(SocketEvent::ReadChannelFinished, heard);
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
            SocketEvent::PreSharedKeyAuthenticationRequired(identity) => {
                if let Some(keys) = self.config.pre_shared_keys().cloned() {
                    let authenticator = PreSharedKeyAuthenticator::new(identity, keys);
                    emit(
                        self,
                        cx,
                        |s| &mut s.signals.pre_shared_key_authentication_required,
                        &authenticator,
                    );
                }
            }
            SocketEvent::PinRequired(request) => {
                // Registered before the slots run: one may answer at once.
                self.pin_wait = Some(request.wake_on_answer(cx.handle(), self.id));
                emit(self, cx, |s| &mut s.signals.pin_required, &request);
            }
            SocketEvent::Disconnected(stats) => {
                let heard = self.signals.disconnected.is_connected();
                emit(self, cx, |s| &mut s.signals.disconnected, &stats);
                self.keep_if_unheard(SocketEvent::Disconnected(stats), heard);
                let may_go = self.server.as_mut().is_none_or(|s| s.disconnected());
                self.deleted |= self.auto_delete && may_go;
            }
            SocketEvent::Error(boxed) => {
                // As Qt sets error() before errorOccurred: the slot reads
                // this error from last_error(), and a connection it starts
                // there clears it.
                let e: Rc<Error> = Rc::from(boxed);
                self.last_error = Some(Rc::clone(&e));
                emit(self, cx, |s| &mut s.signals.error_occurred, &*e);
                if let Some(server) = &mut self.server {
                    server.failed(cx, self.id, &e);
                }
            }
        }
    }
}
