//! [`DtlsSocket`]: one DTLS association with one peer (Qt's `QDtls`), its
//! settings and what the program reads of it.
//!
//! As with [`SslSocket`](crate::SslSocket), the public calls only change
//! state and queues and never run slots; the reactor drives the socket
//! (`drive.rs`) and dispatches its signals (`dispatch.rs`).

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::dispatch::{DtlsEvent, DtlsSignals};
use super::link::Link;
use super::port::Port;
use super::DtlsSocketId;
use crate::certificate::Certificate;
use crate::config::{ServerKey, SslConfiguration};
use crate::engine::Engine;
use crate::error::{Error, Result, SslError, TimeoutKind};
use crate::gnutls::{DEFAULT_RETRANSMISSION, MAX_MTU, MIN_MTU};
use crate::raw_public_key::RawPublicKey;
use crate::ssl_socket::{Deadlines, SocketState, SslMode, Timeouts};
use crate::timer::Wake;
use crate::user_data::UserData;

/// The handshake timeout of a socket the program creates (RFC 6347
/// §4.2.4.1 suggests giving up after 60 s of retransmissions).
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// GnuTLS's path MTU when none is set.
const DEFAULT_MTU: usize = 1200;

/// A DTLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DtlsProtocol {
    /// DTLS 1.0 (TLS 1.1's record protection; only with a protocol range
    /// that reaches TLS 1.1).
    DtlsV1_0,
    /// DTLS 1.2.
    DtlsV1_2,
}

impl fmt::Display for DtlsProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DtlsV1_0 => "DTLS 1.0",
            Self::DtlsV1_2 => "DTLS 1.2",
        })
    }
}

/// The settings a socket's session is made with: the ones a server passes
/// to the sockets it admits, or a program sets on its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) timeouts: Timeouts,
    pub(super) mtu: Option<usize>,
    pub(super) retransmission: Duration,
}

impl Settings {
    /// What a socket has unless told otherwise.
    pub(super) fn with_handshake_timeout(timeout: Duration) -> Self {
        let mut timeouts = Timeouts::default();
        timeouts.set(TimeoutKind::Handshake, Some(timeout));
        Self {
            timeouts,
            mtu: None,
            retransmission: DEFAULT_RETRANSMISSION,
        }
    }

    /// Checks an MTU a program gives.
    pub(super) fn check_mtu(mtu: usize) -> Result<usize> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(Error::InvalidInput(format!(
                "an MTU of {mtu} bytes: {MIN_MTU} to {MAX_MTU} are accepted"
            )));
        }
        Ok(mtu)
    }
}

/// A DTLS socket owned by a [`Reactor`](crate::Reactor): one association
/// with one peer over UDP, in the client or the server role (Qt's `QDtls`
/// with its `QUdpSocket`).
///
/// A client is made with [`Context::dtls_socket`](crate::Context::dtls_socket)
/// and started with [`connect_to_peer`](Self::connect_to_peer); a server's
/// sockets come from a [`DtlsServer`](crate::DtlsServer)'s
/// `new_connection`, handshaking. Either way the handshake's lost flights
/// are sent again on the reactor's timers, doubling from
/// [`set_retransmission_timeout`](Self::set_retransmission_timeout), until
/// the [handshake timeout](Self::set_handshake_timeout).
///
/// Data is datagrams, never a stream: [`write_datagram`](Self::write_datagram)
/// sends one datagram (one DTLS record), and each datagram received comes
/// whole through `datagram_received`. As UDP, DTLS may lose, duplicate and
/// reorder datagrams: it drops duplicates, replays and forgeries, and
/// delivers the rest as they come. The peer is verified exactly as an
/// [`SslSocket`](crate::SslSocket)'s, with the same configuration, ignore
/// rules and trust invariant: no `handshake_complete` and no datagram
/// before the peer was accepted. (A key on a PKCS#11 token needs its PIN
/// given before the handshake: a DTLS socket has no `pin_required` signal,
/// and fails with [`Error::Pkcs11`] instead of waiting.)
///
/// ```no_run
/// use sslsocket::{Reactor, SslConfiguration};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SslConfiguration::builder()
///     .add_ca_certificates_file("ca.pem")
///     .build()?;
/// let mut reactor = Reactor::new()?;
/// let id = reactor.dtls_socket(config);
/// let socket = reactor.dtls(id).unwrap();
/// socket.handshake_complete().connect(|s, _, _| {
///     s.write_datagram(b"ping").unwrap();
/// });
/// socket.datagram_received().connect(|s, cx, datagram| {
///     println!("{}", String::from_utf8_lossy(datagram));
///     s.disconnect_from_peer();
///     cx.quit();
/// });
/// socket.error_occurred().connect(|_, cx, e| {
///     eprintln!("{e}");
///     cx.quit();
/// });
/// socket.connect_to_peer("192.0.2.7:5684".parse()?, "sensors.example")?;
/// reactor.run()?;
/// # Ok(()) }
/// ```
pub struct DtlsSocket {
    pub(super) id: DtlsSocketId,
    pub(super) config: SslConfiguration,
    mode: SslMode,
    pub(super) state: SocketState,
    pub(super) link: Option<Link>,
    /// The address a client binds, if the program chose one.
    local: Option<SocketAddr>,
    /// The name a client expects the server's certificate to carry.
    verify_name: String,
    /// The local and the peer's address of the association, from its start
    /// until the next one: still there in the slots that hear of its end.
    addresses: Option<(SocketAddr, SocketAddr)>,
    pub(super) engine: Option<Box<Engine>>,
    settings: Settings,
    pub(super) deadlines: Deadlines,
    ignored: Vec<SslError>,
    /// Covers one association (as in Qt).
    pub(super) ignore_all: bool,
    /// `disconnect_from_peer` was called (or the server went away).
    pub(super) close_requested: bool,
    pub(super) events: std::collections::VecDeque<DtlsEvent>,
    pub(super) signals: DtlsSignals,
    pub(super) last_error: Option<Rc<Error>>,
    pub(super) auto_delete: bool,
    pub(super) deleted: bool,
    user_data: UserData,
    pub(super) wake: Wake,
    /// The last receive stopped at its batch size, not at an empty socket.
    pub(super) more_to_read: bool,
}

impl DtlsSocket {
    pub(super) fn new(id: DtlsSocketId, config: SslConfiguration) -> Self {
        let settings = Settings::with_handshake_timeout(DEFAULT_HANDSHAKE_TIMEOUT);
        Self {
            id,
            config,
            mode: SslMode::SslClientMode,
            state: SocketState::Unconnected,
            link: None,
            local: None,
            verify_name: String::new(),
            addresses: None,
            engine: None,
            deadlines: Deadlines::new(settings.timeouts),
            settings,
            ignored: Vec::new(),
            ignore_all: false,
            close_requested: false,
            events: Default::default(),
            signals: DtlsSignals::default(),
            last_error: None,
            auto_delete: false,
            deleted: false,
            user_data: UserData::default(),
            wake: Wake::default(),
            more_to_read: false,
        }
    }

    /// The socket a server made for the peer at `peer`, handshaking with
    /// `engine` over the server's `port`; removed once it disconnects.
    pub(super) fn accepted(
        id: DtlsSocketId,
        config: SslConfiguration,
        port: Rc<Port>,
        peer: SocketAddr,
        engine: Engine,
        settings: Settings,
    ) -> Self {
        let mut socket = Self::new(id, config);
        socket.mode = SslMode::SslServerMode;
        socket.auto_delete = true;
        socket.settings = settings;
        socket.deadlines = Deadlines::new(settings.timeouts);
        socket.link = Some(Link::Shared { port, peer });
        socket.start(engine);
        socket
    }

    /// This socket's handle.
    pub fn id(&self) -> DtlsSocketId {
        self.id
    }

    /// Starts a DTLS client handshake with the server at `address`, whose
    /// certificate must carry `verify_name` (empty: the address itself, as
    /// an IP address entry); the name is also sent in SNI. Qt's `setPeer`
    /// followed by `doHandshake`. With a pre-shared key the server shows
    /// no certificate, and the name is only sent in SNI: `""` will do.
    ///
    /// The socket binds the address set with
    /// [`set_local_address`](Self::set_local_address), or else the loopback
    /// address for a loopback peer and the unspecified address otherwise,
    /// on a port the system picks, and connects it to the peer: it takes
    /// datagrams from that address only. Fails at once when the socket
    /// cannot be bound or the configuration cannot speak DTLS; what
    /// happens later comes through the signals.
    pub fn connect_to_peer(&mut self, address: SocketAddr, verify_name: &str) -> Result<()> {
        if self.state != SocketState::Unconnected {
            return Err(Error::InvalidState(
                "connect_to_peer needs an unconnected socket",
            ));
        }
        if address.port() == 0 || address.ip().is_unspecified() || address.ip().is_multicast() {
            return Err(Error::InvalidInput(format!(
                "{address} is not one peer's address"
            )));
        }
        let name = match verify_name {
            "" => address.ip().to_string(),
            name => name.to_owned(),
        };
        let host = address.ip().to_string();
        let key = ServerKey::new(&host, address.port(), &name);
        let engine = Engine::dtls_client(&self.config, key)?;
        let link = Link::connect(address, self.local).map_err(Error::Network)?;
        log::debug!(
            "DTLS socket {:?}: connecting to {address} as {name:?}",
            self.id
        );
        self.verify_name = name;
        self.mode = SslMode::SslClientMode;
        self.last_error = None;
        self.link = Some(link);
        self.start(engine);
        Ok(())
    }

    /// Gives `engine` this socket's settings and ignore rules, and starts
    /// the handshake.
    fn start(&mut self, mut engine: Engine) {
        engine.set_retransmission_timeout(self.settings.retransmission);
        if let Some(mtu) = self.settings.mtu {
            engine.set_mtu(mtu);
        }
        engine.ignore_ssl_errors(&self.ignored);
        if self.ignore_all {
            engine.ignore_all_ssl_errors();
        }
        self.engine = Some(Box::new(engine));
        self.addresses = self
            .link
            .as_ref()
            .and_then(|l| l.local_address().zip(l.peer_address()));
        self.set_state(SocketState::Handshaking);
    }

    /// The local address a client binds from its next
    /// [`connect_to_peer`](Self::connect_to_peer) on (`None`: the default,
    /// see there).
    pub fn set_local_address(&mut self, address: Option<SocketAddr>) {
        self.local = address;
    }

    /// Sends `data` as one datagram: one DTLS record, encrypted at once.
    /// Only once encrypted ([`Error::InvalidState`] before); a datagram
    /// larger than [`data_mtu`](Self::data_mtu) is refused with
    /// [`Error::DatagramTooLarge`] and an empty one with
    /// [`Error::InvalidInput`], and nothing is sent: DTLS never splits or
    /// cuts a datagram. As with UDP, a datagram sent may be lost.
    pub fn write_datagram(&mut self, data: &[u8]) -> Result<()> {
        let Some(engine) = self
            .engine
            .as_mut()
            .filter(|_| self.state == SocketState::Encrypted)
        else {
            return Err(Error::InvalidState("the DTLS socket is not encrypted"));
        };
        engine.send_datagram(data)
    }

    /// Ends the association: on an encrypted socket, sends `close_notify`
    /// (Qt's `shutdown`); during the handshake, abandons it (Qt's
    /// `abortHandshake`). `disconnected` follows.
    pub fn disconnect_from_peer(&mut self) {
        if matches!(
            self.state,
            SocketState::Handshaking | SocketState::Encrypted
        ) {
            self.close_requested = true;
        }
    }

    /// Ends the association at once, without `close_notify`;
    /// `disconnected` follows if there was one.
    pub fn abort(&mut self) {
        self.tear_down();
    }

    /// Removes the socket from its reactor once the current slot returns;
    /// no further signal is emitted.
    pub fn delete_later(&mut self) {
        self.deleted = true;
    }

    /// Whether the reactor removes the socket once it has disconnected and
    /// its `disconnected` slots ran: on for a server's sockets, off
    /// otherwise.
    pub fn set_auto_delete(&mut self, enabled: bool) {
        self.auto_delete = enabled;
    }

    /// Sets the path MTU: the largest datagram the path carries, without
    /// IP and UDP headers (1500-byte Ethernet: 1472 over IPv4, 1452 over
    /// IPv6); 256 to 16384 bytes (GnuTLS's largest), others are refused
    /// with [`Error::InvalidInput`]. Handshake
    /// messages are fragmented to fit it, and it bounds
    /// [`data_mtu`](Self::data_mtu). Takes effect at once. Qt's
    /// `setMtuHint`. Default: 1200 bytes (GnuTLS's), or the server's
    /// setting for a server's sockets.
    pub fn set_mtu(&mut self, mtu: usize) -> Result<()> {
        let mtu = Settings::check_mtu(mtu)?;
        self.settings.mtu = Some(mtu);
        if let Some(engine) = &mut self.engine {
            engine.set_mtu(mtu);
        }
        Ok(())
    }

    /// The path MTU in force.
    pub fn mtu(&self) -> usize {
        match &self.engine {
            Some(engine) => engine.mtu(),
            None => self.settings.mtu.unwrap_or(DEFAULT_MTU),
        }
    }

    /// The largest datagram [`write_datagram`](Self::write_datagram) takes:
    /// the MTU less the record's header and protection, which depend on
    /// the cipher suite negotiated (before the handshake completes, an
    /// upper bound). `None` before the socket has a session.
    pub fn data_mtu(&self) -> Option<usize> {
        self.engine.as_ref().map(|e| e.data_mtu())
    }

    /// Limits the handshake, retransmissions included; expiry fails with
    /// [`Error::Timeout`]`(`[`TimeoutKind::Handshake`]`)`. Default: 60 s
    /// (the server's setting for its sockets); `None` waits for ever.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Handshake, timeout);
        self.settings.timeouts = self.deadlines.timeouts;
    }

    /// Fails the association with [`TimeoutKind::Idle`] when no datagram
    /// moves, either way, for this long once it is encrypted: UDP has no
    /// connection to break, so a peer that went away is noticed only this
    /// way. The association ends silently: the peer, presumed gone, is
    /// sent nothing. Default: never (the server's setting for its
    /// sockets).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Idle, timeout);
        self.settings.timeouts = self.deadlines.timeouts;
    }

    /// The wait before a handshake flight with no answer is sent again
    /// (GnuTLS doubles it for each further retransmission of the flight).
    /// Default: 1 s (RFC 6347 §4.2.4.1); takes effect from the next flight.
    pub fn set_retransmission_timeout(&mut self, first: Duration) {
        self.settings.retransmission = first;
        if let Some(engine) = &mut self.engine {
            engine.set_retransmission_timeout(first);
        }
    }

    /// Ignores these certificate problems, and no others, when verification
    /// finds them (as [`SslSocket::ignore_ssl_errors`](crate::SslSocket::ignore_ssl_errors);
    /// Qt's `QDtls::ignoreVerificationErrors`).
    pub fn ignore_ssl_errors(&mut self, errors: &[SslError]) {
        self.ignored = errors.to_vec();
        if let Some(engine) = &mut self.engine {
            engine.ignore_ssl_errors(errors);
        }
    }

    /// Ignores every certificate problem of the current or next handshake
    /// (as [`SslSocket::ignore_all_ssl_errors`](crate::SslSocket::ignore_all_ssl_errors)).
    pub fn ignore_all_ssl_errors(&mut self) {
        self.ignore_all = true;
        if let Some(engine) = &mut self.engine {
            engine.ignore_all_ssl_errors();
        }
    }

    /// Continues a handshake paused by `handshake_interrupted_on_error`
    /// (Qt's `resumeHandshake`): it goes on if every reported problem was
    /// ignored meanwhile, and fails otherwise.
    pub fn continue_interrupted_handshake(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.resolve_ssl_errors();
        }
    }

    /// Where the socket is: `Unconnected`, `Handshaking`, `Encrypted`, or
    /// `Closing` while the `close_notify` that
    /// [`disconnect_from_peer`](Self::disconnect_from_peer) asked for goes
    /// out (the reactor sends it once the current slot returns, so the state
    /// changes then, not in the call), before `Unconnected` again.
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// `SslClientMode` or `SslServerMode`.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Whether the handshake completed and datagrams flow.
    pub fn is_encrypted(&self) -> bool {
        self.state == SocketState::Encrypted
            && self.engine.as_ref().is_some_and(|e| e.is_established())
    }

    /// The last error reported through `error_occurred`.
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_deref()
    }

    /// The peer's address, once associated; it stays readable after the
    /// association ends, in the `error_occurred` and `disconnected` slots
    /// and after, until the next [`connect_to_peer`](Self::connect_to_peer).
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.addresses.map(|(_, peer)| peer)
    }

    /// The local address datagrams leave from (a server's sockets share the
    /// server's); like [`peer_address`](Self::peer_address), it stays
    /// readable after the association ends.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.addresses.map(|(local, _)| local)
    }

    /// The name a client verifies the server's certificate against.
    pub fn peer_verify_name(&self) -> &str {
        &self.verify_name
    }

    /// The negotiated protocol version, once encrypted.
    pub fn protocol(&self) -> Option<DtlsProtocol> {
        match self.engine.as_ref()?.dtls_version()? {
            "DTLS1.2" => Some(DtlsProtocol::DtlsV1_2),
            "DTLS1.0" => Some(DtlsProtocol::DtlsV1_0),
            _ => None,
        }
    }

    /// The negotiated cipher suite, once encrypted.
    pub fn session_cipher(&self) -> Option<String> {
        self.engine.as_ref().and_then(|e| e.cipher_suite())
    }

    /// The negotiated bulk cipher ("AES-128-GCM", …), once encrypted.
    pub fn session_cipher_algorithm(&self) -> Option<&'static str> {
        self.engine.as_ref().and_then(|e| e.cipher())
    }

    /// The negotiated key exchange group ("X25519", "SECP256R1", …), once
    /// encrypted.
    pub fn key_exchange_group(&self) -> Option<&'static str> {
        self.engine.as_ref().and_then(|e| e.group())
    }

    /// The application protocol ALPN selected from the configuration's
    /// [`alpn_protocols`](crate::SslConfigurationBuilder::alpn_protocols),
    /// once encrypted.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.engine.as_ref().and_then(|e| e.alpn_protocol())
    }

    /// The RFC 7250 raw public key the peer authenticated with, as
    /// [`SslSocket::peer_raw_public_key`](crate::SslSocket::peer_raw_public_key)
    /// says.
    pub fn peer_raw_public_key(&self) -> Option<RawPublicKey> {
        self.engine.as_ref().and_then(|e| e.peer_raw_public_key())
    }

    /// The peer's certificate chain, leaf first (empty for a peer that
    /// authenticated with a pre-shared key or a raw public key).
    pub fn peer_certificate_chain(&self) -> Vec<Certificate> {
        self.engine
            .as_ref()
            .map(|e| e.peer_certificate_chain())
            .unwrap_or_default()
    }

    /// The peer's certificate (the leaf), once received.
    pub fn peer_certificate(&self) -> Option<Certificate> {
        self.peer_certificate_chain().into_iter().next()
    }

    /// Every problem verification found on this association, ignored ones
    /// included (Qt's `peerVerificationErrors`).
    pub fn peer_verify_errors(&self) -> Vec<SslError> {
        let errors = self.engine.as_ref().map(|e| e.peer_verify_errors());
        errors.map(<[SslError]>::to_vec).unwrap_or_default()
    }

    /// The pre-shared key identity of an association authenticated by one.
    pub fn psk_identity(&self) -> Option<Vec<u8>> {
        self.engine.as_ref().and_then(|e| e.psk_identity())
    }

    /// Whether the handshake resumed an earlier session.
    pub fn is_session_resumed(&self) -> bool {
        self.engine.as_ref().is_some_and(|e| e.is_resumed())
    }

    /// Exports keying material, as
    /// [`SslSocket::export_keying_material`](crate::SslSocket::export_keying_material)
    /// does (DTLS-SRTP's keys are exported with the label
    /// `EXTRACTOR-dtls_srtp`, RFC 5764). Only once encrypted.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>> {
        let engine = self.engine.as_ref().filter(|_| self.is_encrypted());
        let engine = engine.ok_or(Error::InvalidState("the DTLS socket is not encrypted"))?;
        engine.export_keying_material(label, context, len)
    }

    /// The TLS configuration.
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        &self.config
    }

    /// Attaches the program's own state to the socket, replacing any
    /// earlier value; [`user_data`](Self::user_data) reaches it (see
    /// [`SslSocket::set_user_data`](crate::SslSocket::set_user_data)). A
    /// server's slots keep per-peer state this way.
    pub fn set_user_data<T: Any>(&mut self, data: T) {
        self.user_data.set(data);
    }

    /// The program's state, if it is a `T`.
    pub fn user_data<T: Any>(&mut self) -> Option<&mut T> {
        self.user_data.get()
    }

    /// The program's state, read only.
    pub fn user_data_ref<T: Any>(&self) -> Option<&T> {
        self.user_data.get_ref()
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted
    }

    pub(super) fn set_state(&mut self, state: SocketState) {
        if self.state != state {
            log::debug!("DTLS socket {:?}: {:?} -> {state:?}", self.id, self.state);
            self.deadlines.entered(state);
            self.state = state;
            self.events.push_back(DtlsEvent::StateChanged(state));
        }
    }
}
