//! [`SslSocket`]: a TCP socket that can speak TLS (Qt's `QSslSocket`): the
//! one place where the TLS engine, the TCP stream and the user's signals meet.
//!
//! The public calls only change the socket's state and buffers: they never
//! do network I/O except [`flush`](SslSocket::flush), and they never run
//! slots. The reactor then drives the socket (`drive.rs`: connect, read,
//! decrypt, encrypt, write, close; no user code) and dispatches the signals
//! that produced (`dispatch.rs`).

mod accepted;
mod authentication;
mod connect;
mod deadline;
mod dispatch;
mod drive;
mod io;
mod keying;
mod statistics;
mod write_progress;

use std::any::Any;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::buffer::ByteQueue;
use crate::certificate::Certificate;
use crate::config::{ServerKey, SslConfiguration, SslProtocol};
use crate::context::SocketId;
use crate::engine::Engine;
use crate::error::{Error, Result, SslError, TimeoutKind};
use crate::lingering::Lingering;
use crate::pkcs11::PinWait;
use crate::proxy::Proxy;
use crate::resolver::parse_ip_literal;
use crate::tcp::Tcp;
use crate::timer::TimerId;
use crate::user_data::UserData;

pub(crate) use accepted::ServerLink;
use connect::Connect;
pub(crate) use deadline::{Deadlines, Timeouts};
use dispatch::{Events, SocketEvent, SocketSignals};
pub use keying::ChannelBinding;
use statistics::Statistics;
pub use statistics::{ConnectionStatistics, PeerClose};
use write_progress::WriteProgress;

/// Where a socket is in its life (Qt's `SocketState`, with the TLS phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketState {
    /// No connection.
    Unconnected,
    /// Looking up the host name.
    HostLookup,
    /// Establishing the TCP connection.
    Connecting,
    /// TCP is connected; no TLS (yet).
    Connected,
    /// The TLS handshake is running.
    Handshaking,
    /// TLS is established: data is encrypted.
    Encrypted,
    /// Closing: pending data is flushed, then `close_notify` and FIN are sent.
    Closing,
}

/// Whether and how a socket uses TLS (Qt's `SslMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Plain TCP (before `start_client_encryption`, for example).
    UnencryptedMode,
    /// TLS client.
    SslClientMode,
    /// TLS server.
    SslServerMode,
}

/// A TLS socket owned by a [`Reactor`](crate::Reactor).
///
/// Create one with [`Context::ssl_socket`](crate::Context::ssl_socket),
/// connect slots to its signals, then call
/// [`connect_to_host_encrypted`](Self::connect_to_host_encrypted) (or
/// [`connect_to_host`](Self::connect_to_host) and, after a plaintext phase,
/// [`start_client_encryption`](Self::start_client_encryption)).
///
/// Data may be written at any time after construction: what is written
/// before the connection is encrypted is queued and sent once it is.
/// Certificates are verified against the configuration's trust store and
/// the host name unless the configuration says otherwise.
///
/// # Reading
///
/// Received plaintext waits in the socket until the program takes it,
/// typically from a `ready_read` slot: [`read_all`](Self::read_all),
/// [`read`](Self::read), [`read_all_into`](Self::read_all_into),
/// [`take_line`](Self::take_line) (with
/// [`can_read_line`](Self::can_read_line)), [`skip`](Self::skip). The
/// socket also implements [`std::io::Read`] and [`std::io::BufRead`]
/// (import them to call their methods). They never block: with nothing
/// (or not enough) buffered they return
/// [`WouldBlock`](std::io::ErrorKind::WouldBlock) while the connection is
/// open, meaning "the rest comes with a later `ready_read`", and end of file
/// once it ended. `read_line`, `read_until`, `read_exact`, `lines` and
/// `split` take nothing until the whole piece is buffered, so nothing is
/// lost when a slot drops its buffer after `WouldBlock`; `read_to_end` and
/// `read_to_string` move what is there into the caller's buffer before
/// `WouldBlock`, as the standard library says they do.
///
/// A long stream is best read into memory the program keeps (`read` into
/// its own buffer, `read_all_into` a vector it reuses, or `fill_buf` and
/// `consume` where the data lies): then reading allocates nothing once the
/// transfer runs, where `read_all` allocates a vector per call.
pub struct SslSocket {
    id: SocketId,
    config: SslConfiguration,
    mode: SslMode,
    state: SocketState,
    host: String,
    port: u16,
    verify_name: Option<String>,
    encrypt_when_connected: bool,
    /// While looking up and connecting (boxed: idle afterwards).
    connect: Option<Box<Connect>>,
    tcp: Option<Tcp>,
    registered: bool,
    /// The stream after a fatal alert, until the reactor takes it.
    lingering: Option<Box<Lingering>>,
    engine: Option<Box<Engine>>,
    /// Plaintext received, not yet read by the program.
    read_buffer: ByteQueue,
    /// Plaintext written by the program, not yet encrypted (or, unencrypted,
    /// not yet sent).
    write_buffer: ByteQueue,
    /// Plaintext written before encryption started, sent before any TLS.
    plain_out: ByteQueue,
    /// Which written plaintext has reached the network.
    progress: WriteProgress,
    /// `write_buffer_full` fires when `bytes_to_write` reaches this (0: never).
    write_high_water: usize,
    /// Above the high-water mark, until drained below half of it.
    write_full: bool,
    read_buffer_size: usize,
    nodelay: bool,
    ignored: Vec<SslError>,
    ignore_all: bool,
    close: drive::Close,
    events: Events,
    signals: SocketSignals,
    last_error: Option<Rc<Error>>,
    /// The connection ended (closed or failed): writing is refused until
    /// the next `connect_to_host`.
    ended: bool,
    /// The local and the peer's address of the connection, from when it
    /// was made until the next `connect_to_host`: still there in the slots
    /// that hear of its end.
    addresses: Option<(SocketAddr, SocketAddr)>,
    auto_delete: bool,
    deleted: bool,
    user_data: UserData,
    deadlines: Deadlines,
    stats: Statistics,
    /// The reactor wake-up scheduled for this socket, and when.
    wake: Option<(Instant, TimerId)>,
    /// The server that accepted this socket.
    server: Option<ServerLink>,
    /// Boxed, as the rarely set parts below: a socket should stay small.
    proxy: Option<Box<Proxy>>,
    /// While the handshake waits for a PIN: the wake-up when it comes.
    pin_wait: Option<PinWait>,
}

impl SslSocket {
    pub(crate) fn new(id: SocketId, config: SslConfiguration) -> Self {
        Self {
            id,
            config,
            mode: SslMode::UnencryptedMode,
            state: SocketState::Unconnected,
            host: String::new(),
            port: 0,
            verify_name: None,
            encrypt_when_connected: false,
            connect: None,
            tcp: None,
            registered: false,
            lingering: None,
            engine: None,
            read_buffer: ByteQueue::new(),
            write_buffer: ByteQueue::new(),
            plain_out: ByteQueue::new(),
            progress: WriteProgress::default(),
            write_high_water: 0,
            write_full: false,
            read_buffer_size: 0,
            nodelay: true,
            ignored: Vec::new(),
            ignore_all: false,
            close: drive::Close::default(),
            events: Events::default(),
            signals: SocketSignals::default(),
            last_error: None,
            ended: false,
            addresses: None,
            auto_delete: false,
            deleted: false,
            user_data: UserData::default(),
            deadlines: Deadlines::new(Timeouts::default()),
            stats: Statistics::default(),
            wake: None,
            server: None,
            proxy: None,
            pin_wait: None,
        }
    }

    /// A socket for a connection `server` accepted: handshaking with
    /// `engine`, or unencrypted until `start_server_encryption` when there is
    /// no engine.
    pub(crate) fn accepted(
        id: SocketId,
        server: ServerLink,
        config: SslConfiguration,
        tcp: Tcp,
        engine: Option<Engine>,
        timeouts: Timeouts,
    ) -> Self {
        let mut socket = Self::new(id, config);
        tcp.set_nodelay(socket.nodelay);
        socket.attach(tcp);
        socket.server = Some(server);
        socket.auto_delete = true;
        socket.deadlines = Deadlines::new(timeouts);
        socket.state = SocketState::Connected;
        if let Some(engine) = engine {
            socket.engine = Some(Box::new(engine));
            socket.mode = SslMode::SslServerMode;
            socket.state = SocketState::Handshaking;
            socket.stats.handshake_started();
        }
        socket
    }

    /// Connects through `proxy` (HTTP CONNECT or SOCKS5) from the next
    /// [`connect_to_host`](Self::connect_to_host) on; `None` connects
    /// directly (the default; see [`Proxy::from_env`] for the environment's
    /// choice). TLS runs end to end through the tunnel and the certificate is
    /// verified against the target host. When the proxy asks for credentials,
    /// `proxy_authentication_required` is emitted: a slot may call `set_proxy`
    /// with credentials and the connection is tried again.
    pub fn set_proxy(&mut self, proxy: Option<Proxy>) {
        self.proxy = proxy.map(Box::new);
    }

    /// The proxy set with [`set_proxy`](Self::set_proxy).
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_deref()
    }

    /// Limits the time from [`connect_to_host`](Self::connect_to_host) to
    /// an established TCP connection (lookup and every address included);
    /// expiry fails with [`Error::Timeout`]`(`[`TimeoutKind::Connect`]`)`.
    /// `None` (the default) waits as long as the system does.
    pub fn set_connect_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Connect, timeout);
    }

    /// Limits the TLS handshake's duration ([`TimeoutKind::Handshake`]).
    /// Sockets a server accepts get the server's handshake timeout; others
    /// have none by default.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Handshake, timeout);
    }

    /// Fails the connection with [`TimeoutKind::Idle`] when no byte moves,
    /// either way, for this long once it is connected, while it closes too
    /// (the handshake has its own timeout, which bounds it) (default: never;
    /// sockets a server accepts get the server's).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Idle, timeout);
    }

    /// Fails the connection with [`TimeoutKind::Send`] when data waits to be
    /// sent and the peer takes none of it for this long (a peer that stopped
    /// reading); every byte the peer takes starts the wait again. Default:
    /// never for sockets a program creates, the server's for sockets it
    /// accepts (60 s unless set).
    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Send, timeout);
    }

    /// Bounds a graceful close ([`disconnect_from_host`](Self::disconnect_from_host):
    /// flushing what is queued, `close_notify`, waiting for the peer's
    /// goodbye): past it, the connection is aborted with
    /// [`TimeoutKind::Close`]. Default: never for sockets a program
    /// creates, the server's for sockets it accepts. (After the flush, the
    /// wait for the peer's goodbye lasts 2 s at most anyway.)
    pub fn set_close_timeout(&mut self, timeout: Option<Duration>) {
        self.deadlines.timeouts.set(TimeoutKind::Close, timeout);
    }

    /// Sets a deadline for a phase of the program's own protocol, `after`
    /// from now ("the request head within 10 s"), whatever the socket's
    /// state and however the bytes trickle in: unless the program moves or
    /// clears it (`None`) first, the connection then fails with
    /// [`TimeoutKind::Deadline`]. It stays set across states and ends with
    /// the connection.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// use std::time::Duration;
    /// let socket = reactor.socket(id).unwrap();
    /// socket.set_deadline(Some(Duration::from_secs(10)));
    /// socket.ready_read().connect(|s, _, _| {
    ///     if s.can_read_line() {
    ///         s.set_deadline(None); // the request line arrived in time
    ///     }
    /// });
    /// ```
    pub fn set_deadline(&mut self, after: Option<Duration>) {
        self.deadlines.set_program(after);
    }

    /// The deadline set with [`set_deadline`](Self::set_deadline), if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadlines.program()
    }

    /// Whether the reactor removes the socket once it has disconnected and
    /// its `disconnected` slots ran. On for sockets a server accepted (so a
    /// server does not accumulate dead connections), off otherwise.
    pub fn set_auto_delete(&mut self, enabled: bool) {
        self.auto_delete = enabled;
    }

    /// This socket's handle.
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// Connects to `host` (a name or an IP address) on `port`, without TLS.
    /// The name is looked up off the reactor thread and every address is
    /// tried in turn. Progress is reported through `host_found`,
    /// `connected` and `state_changed`, failure through `error_occurred`.
    pub fn connect_to_host(&mut self, host: &str, port: u16) -> Result<()> {
        if self.state != SocketState::Unconnected {
            return Err(Error::InvalidState(
                "connect_to_host needs an unconnected socket",
            ));
        }
        validate_host(host, port)?;
        validate_verify_name(self.verify_name.as_deref())?;
        host.clone_into(&mut self.host);
        self.port = port;
        self.last_error = None;
        self.ended = false;
        self.addresses = None;
        self.engine = None;
        self.stats.restart();
        self.mode = SslMode::UnencryptedMode;
        self.connect = Some(Box::new(Connect::new(self.proxy.as_deref(), host)));
        self.set_state(SocketState::HostLookup);
        Ok(())
    }

    /// Connects to `host` and starts the TLS handshake as soon as TCP is
    /// connected; `handshake_complete` follows `connected`.
    pub fn connect_to_host_encrypted(&mut self, host: &str, port: u16) -> Result<()> {
        self.connect_to_host(host, port)?;
        self.encrypt_when_connected = true;
        self.mode = SslMode::SslClientMode;
        Ok(())
    }

    /// Starts the TLS handshake as a client on a connected, unencrypted
    /// socket (STARTTLS). Plaintext written before is still sent first, in
    /// plaintext; bytes received and not read yet count as the start of the
    /// TLS stream, so read the plaintext phase's data before calling this.
    pub fn start_client_encryption(&mut self) -> Result<()> {
        self.start_encryption(false)
    }

    /// Starts the TLS handshake as a server on a connected, unencrypted
    /// socket (server-side STARTTLS), with the same rules for data written
    /// and received before. The configuration must hold a local certificate
    /// and key.
    pub fn start_server_encryption(&mut self) -> Result<()> {
        self.start_encryption(true)
    }

    fn start_encryption(&mut self, server: bool) -> Result<()> {
        if self.state != SocketState::Connected || self.engine.is_some() {
            return Err(Error::InvalidState(
                "encryption starts on a connected, unencrypted socket",
            ));
        }
        if !server {
            validate_verify_name(self.verify_name.as_deref())?;
        }
        let engine = if server {
            self.config
                .check_can_serve("start_server_encryption: a server")?;
            Engine::server(&self.config)?
        } else {
            let name = self.expected_name();
            Engine::client(&self.config, ServerKey::new(&self.host, self.port, &name))?
        };
        let mut engine = Box::new(engine);
        engine.ignore_ssl_errors(&self.ignored);
        if self.ignore_all {
            engine.ignore_all_ssl_errors();
        }
        // Bytes received but not read are the start of the TLS stream (a
        // ClientHello sent right after the plaintext "go ahead").
        engine.incoming().extend(self.read_buffer.as_slice());
        self.read_buffer = ByteQueue::new();
        // On a socket that was unencrypted (STARTTLS), plaintext written
        // before encryption starts still goes out first, in plaintext (a
        // "go ahead" reply, for example). With connect_to_host_encrypted,
        // everything written is meant to be encrypted.
        if self.mode == SslMode::UnencryptedMode {
            self.plain_out = std::mem::take(&mut self.write_buffer);
        }
        self.engine = Some(engine);
        self.mode = if server {
            SslMode::SslServerMode
        } else {
            SslMode::SslClientMode
        };
        self.set_state(SocketState::Handshaking);
        Ok(())
    }

    /// The name the server's certificate must carry: the peer verify name,
    /// or else the host name; an IP address literal without its brackets.
    /// The verify name, when set, is also the name sent in SNI (as Qt
    /// does): it is the name the program expects on the other side.
    fn expected_name(&self) -> String {
        let name = self.verify_name.as_deref().unwrap_or(&self.host);
        match parse_ip_literal(name) {
            Some(address) => address.to_string(),
            None => name.to_owned(),
        }
    }

    /// Queues `data` for sending and returns its length; `bytes_written`
    /// reports progress. Data written before the connection is ready waits
    /// for it: after (or before) `connect_to_host_encrypted`, and during any
    /// handshake, it is sent encrypted once the handshake completes; after
    /// (or before) `connect_to_host`, which connects in plaintext (for
    /// STARTTLS), it is sent **in plaintext** as soon as TCP connects, until
    /// `start_client_encryption`. Write secrets after `handshake_complete`,
    /// or on a socket connected with `connect_to_host_encrypted`. When the
    /// connection fails or ends, what it had not sent is discarded with it:
    /// a later connection of the socket never sends it (to another peer, or
    /// without TLS).
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        if self.close.requested || self.ended || self.deleted {
            return Err(Error::InvalidState("the socket is closing or closed"));
        }
        if !self.encrypt_now(data)? {
            self.write_buffer.extend(data);
        }
        let mark = self.write_high_water as u64;
        if mark > 0 && !self.write_full && self.bytes_to_write() >= mark {
            self.write_full = true;
            self.events
                .push_back(SocketEvent::WriteBufferFull(self.bytes_to_write()));
        }
        Ok(data.len())
    }

    /// Sets the write high-water mark (0, the default: none). When
    /// [`bytes_to_write`](Self::bytes_to_write) reaches it, `write_buffer_full`
    /// is emitted so a producer can pause; once the queue has drained below
    /// half the mark, `write_buffer_drained` tells it to resume.
    pub fn set_write_high_water_mark(&mut self, bytes: usize) {
        self.write_high_water = bytes;
    }

    /// Copies received plaintext into `buf`; returns how many bytes: 0 when
    /// nothing is buffered yet on a socket that is connecting or connected.
    /// Data received before the connection ended stays readable after it;
    /// once it is all read, an unconnected socket answers
    /// [`Error::InvalidState`] (Qt's `read` returns -1 there), so a loop can
    /// tell "nothing yet" from "nothing more". The `std::io::Read`
    /// implementation answers `Ok(0)` there instead: its end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.read_buffer.is_empty() && self.state == SocketState::Unconnected {
            return Err(Error::InvalidState(
                "the socket is not connected and has no data",
            ));
        }
        Ok(self.read_buffer.take_into(buf))
    }

    /// Discards up to `n` bytes of received plaintext without copying them;
    /// returns how many were discarded (Qt's `skip`).
    pub fn skip(&mut self, n: usize) -> usize {
        let n = n.min(self.read_buffer.len());
        self.read_buffer.consume(n);
        n
    }

    /// Takes all buffered plaintext, in a vector allocated for it.
    ///
    /// A program that reads a stream for long should rather read into
    /// memory it keeps: [`read`](Self::read) into its own buffer,
    /// [`read_all_into`](Self::read_all_into) a vector it reuses, or
    /// [`BufRead::fill_buf`](std::io::BufRead::fill_buf) and
    /// [`consume`](std::io::BufRead::consume) to take the data where it
    /// lies. A vector per event costs more than the copy: with large
    /// reads the allocator may return the memory to the system and fault
    /// in fresh pages for the next one.
    pub fn read_all(&mut self) -> Vec<u8> {
        self.read_buffer.take_all()
    }

    /// Appends all buffered plaintext to `buf`; returns how many bytes.
    /// Reusing `buf` (cleared, or emptied by the program) keeps reading
    /// free of allocations once it is large enough.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let mut message = Vec::new();
    /// reactor.socket(id).unwrap().ready_read().connect(move |s, _, _| {
    ///     s.read_all_into(&mut message);
    ///     if message.ends_with(b"\n") {
    ///         print!("{}", String::from_utf8_lossy(&message));
    ///         message.clear(); // the memory stays for the next one
    ///     }
    /// });
    /// ```
    pub fn read_all_into(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.read_buffer.len();
        buf.extend_from_slice(self.read_buffer.as_slice());
        self.read_buffer.consume(n);
        n
    }

    /// Bytes of plaintext ready to read.
    pub fn bytes_available(&self) -> usize {
        self.read_buffer.len()
    }

    /// Whether a whole line (ending in `\n`) is buffered.
    pub fn can_read_line(&self) -> bool {
        self.length_through(b'\n').is_some()
    }

    /// Takes one line, including its `\n`, if a whole line is buffered
    /// (Qt's `readLine` after `canReadLine`). [`BufRead::read_line`](std::io::BufRead::read_line)
    /// does the same into a `String`.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// reactor.socket(id).unwrap().ready_read().connect(|s, _, _| {
    ///     while let Some(line) = s.take_line() {
    ///         print!("{}", String::from_utf8_lossy(&line));
    ///     }
    /// });
    /// ```
    pub fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.length_through(b'\n')?;
        let line = self.read_buffer.as_slice()[..end].to_vec();
        self.read_buffer.consume(end);
        Some(line)
    }

    /// The length of the buffered plaintext up to and including the first
    /// `delimiter`, if one is buffered.
    fn length_through(&self, delimiter: u8) -> Option<usize> {
        let buffered = self.read_buffer.as_slice();
        buffered.iter().position(|&b| b == delimiter).map(|i| i + 1)
    }

    /// Plaintext bytes written but not yet handed to the network.
    pub fn bytes_to_write(&self) -> u64 {
        (self.write_buffer.len() + self.plain_out.len()) as u64 + self.progress.unflushed()
    }

    /// Limits the plaintext buffered for reading (0: no limit, the
    /// default). At the limit the socket stops reading from the network, so
    /// TCP pushes back on the peer, until the program reads.
    pub fn set_read_buffer_size(&mut self, size: usize) {
        self.read_buffer_size = size;
    }

    /// The read buffer limit (0: none).
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// Whether Nagle's algorithm is off (it is by default). Takes effect on
    /// the next connection.
    pub fn set_low_delay(&mut self, enabled: bool) {
        self.nodelay = enabled;
    }

    /// Closes gracefully: pending data is flushed, then TLS `close_notify`
    /// and FIN are sent; `disconnected` follows once the peer closed too, or
    /// 2 s after our FIN if it does not. Writing is refused from then on.
    /// The flush takes as long as the peer takes to read what is queued:
    /// [`set_send_timeout`](Self::set_send_timeout) and
    /// [`set_close_timeout`](Self::set_close_timeout) bound it.
    ///
    /// Before the connection is established (not connected yet, or still
    /// handshaking) the close waits for it, as the data written before does
    /// (Qt's pending close): the data goes out once encrypted, then the
    /// goodbye. After a connection ended, there is nothing to close.
    pub fn disconnect_from_host(&mut self) {
        match self.state {
            SocketState::Closing => {}
            SocketState::Unconnected if self.ended => {}
            SocketState::Unconnected
            | SocketState::HostLookup
            | SocketState::Connecting
            | SocketState::Handshaking => self.close.requested = true,
            _ => {
                self.close.requested = true;
                self.set_state(SocketState::Closing);
            }
        }
    }

    /// Closes at once, discarding unsent data; `disconnected` is emitted if
    /// the socket was connected.
    pub fn abort(&mut self) {
        self.write_buffer = ByteQueue::new();
        self.tear_down();
    }

    /// Removes the socket from its reactor once the current slot returns
    /// (Qt's `deleteLater`); its connection is aborted and no further signal
    /// is emitted.
    pub fn delete_later(&mut self) {
        self.deleted = true;
    }

    /// Ignores these certificate problems, and no others, when
    /// verification finds them (Qt's `ignoreSslErrors(list)`): the list
    /// replaces the one given before, and an empty list clears it.
    ///
    /// From an `ssl_errors` slot, ignoring every reported problem lets the
    /// handshake continue. Given before connecting, it lists the problems
    /// the program expects (a self-signed certificate it pinned, say). As in
    /// Qt, the list stays with the socket for its later connections until it
    /// is replaced. An entry without a certificate matches its kind for any
    /// certificate; an entry with one matches only a problem found on that
    /// very certificate, on the path verification built.
    ///
    /// ```
    /// use sslsocket::{Certificate, SslError, SslErrorKind};
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let pinned = Certificate::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/ca/broken/self-signed.pem"))?;
    /// let socket = reactor.socket(id).unwrap();
    /// socket.ignore_ssl_errors(&[SslError::new(
    ///     SslErrorKind::SelfSignedCertificate,
    ///     Some(pinned[0].clone()),
    /// )]);
    /// # Ok::<(), sslsocket::Error>(())
    /// ```
    pub fn ignore_ssl_errors(&mut self, errors: &[SslError]) {
        self.ignored = errors.to_vec();
        if let Some(engine) = &mut self.engine {
            engine.ignore_ssl_errors(errors);
        }
    }

    /// Ignores every certificate problem of the current or coming
    /// connection (Qt's `ignoreSslErrors()`); the next connection is
    /// verified again. Use with care: for this connection, it turns
    /// verification off.
    pub fn ignore_all_ssl_errors(&mut self) {
        self.ignore_all = true;
        if let Some(engine) = &mut self.engine {
            engine.ignore_all_ssl_errors();
        }
    }

    /// Verifies the peer's certificate against `name` instead of the host
    /// name given to `connect_to_host`, and sends `name` in SNI (Qt's
    /// `setPeerVerifyName`): for connecting to an address, or through a
    /// name that is not the service's. An empty name means the host name
    /// again: the name is always checked unless the configuration's verify
    /// mode is [`VerifyNone`](crate::PeerVerifyMode::VerifyNone).
    pub fn set_peer_verify_name(&mut self, name: &str) {
        self.verify_name = (!name.is_empty()).then(|| name.to_owned());
    }

    /// Replaces the TLS configuration; only while unconnected.
    pub fn set_ssl_configuration(&mut self, config: SslConfiguration) -> Result<()> {
        if self.state != SocketState::Unconnected {
            return Err(Error::InvalidState(
                "the configuration can change only while unconnected",
            ));
        }
        self.config = config;
        Ok(())
    }

    /// The TLS configuration.
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        &self.config
    }

    /// Where the socket is.
    pub fn state(&self) -> SocketState {
        self.state
    }

    /// Whether and how TLS is used.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Whether the handshake is complete and data is encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.state, SocketState::Encrypted | SocketState::Closing)
            && self.engine.as_ref().is_some_and(|e| e.is_established())
    }

    /// The last error reported through the `error_occurred` signal (Qt's `error()`).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_deref()
    }

    /// The host name given to `connect_to_host`.
    pub fn peer_name(&self) -> &str {
        &self.host
    }

    /// The port given to `connect_to_host`, or the peer's port once connected.
    pub fn peer_port(&self) -> u16 {
        self.peer_address().map_or(self.port, |a| a.port())
    }

    /// The peer's address (a proxy's, through a proxy), once connected; it
    /// stays readable after the connection ends, in the `error_occurred`
    /// and `disconnected` slots and after, until the next
    /// [`connect_to_host`](Self::connect_to_host).
    pub fn peer_address(&self) -> Option<SocketAddr> {
        self.addresses.map(|(_, peer)| peer)
    }

    /// The local address, once connected; like
    /// [`peer_address`](Self::peer_address), it stays readable after the
    /// connection ends.
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.addresses.map(|(local, _)| local)
    }

    /// Takes `tcp` as the connection, and notes its addresses.
    fn attach(&mut self, tcp: Tcp) {
        self.addresses = tcp.local_addr().zip(tcp.peer_addr());
        self.tcp = Some(tcp);
    }

    /// The negotiated protocol version, once encrypted.
    pub fn protocol(&self) -> Option<SslProtocol> {
        self.engine.as_ref().and_then(|e| e.protocol())
    }

    /// The negotiated cipher suite ("TLS_AES_128_GCM_SHA256", …), once
    /// encrypted.
    pub fn session_cipher(&self) -> Option<String> {
        self.engine.as_ref().and_then(|e| e.cipher_suite())
    }

    /// The negotiated key exchange group ("X25519", "SECP256R1", …), once
    /// encrypted.
    pub fn key_exchange_group(&self) -> Option<&'static str> {
        self.engine.as_ref().and_then(|e| e.group())
    }

    /// The negotiated bulk cipher ("AES-128-GCM", …), once encrypted.
    pub fn session_cipher_algorithm(&self) -> Option<&'static str> {
        self.engine.as_ref().and_then(|e| e.cipher())
    }

    /// The application protocol ALPN selected (Qt's
    /// `nextNegotiatedProtocol`), once encrypted.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.engine.as_ref().and_then(|e| e.alpn_protocol())
    }

    /// The OCSP response the server stapled (DER), once encrypted.
    pub fn ocsp_response(&self) -> Option<Vec<u8>> {
        self.engine.as_ref().and_then(|e| e.ocsp_response())
    }

    /// Continues a handshake paused by `handshake_interrupted_on_error`
    /// (configurations with
    /// [`handshake_must_interrupt_on_error`](crate::SslConfigurationBuilder::handshake_must_interrupt_on_error)):
    /// if every reported problem was ignored meanwhile
    /// ([`ignore_ssl_errors`](Self::ignore_ssl_errors)), the handshake goes
    /// on; otherwise it fails. May be called later, from anywhere (not only
    /// from the slot). [`abort`](Self::abort) refuses the peer instead.
    pub fn continue_interrupted_handshake(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.resolve_ssl_errors();
        }
    }

    /// Trust on first use
    /// ([`trust_on_first_use`](crate::SslConfigurationBuilder::trust_on_first_use)):
    /// stores the server's public key as the one this host and port are
    /// known by from now on (replacing the one stored before, which is no
    /// longer accepted), and accepts it for this handshake (its
    /// `PublicKeyUnknown` or `PublicKeyChanged` is answered). The
    /// handshake's other problems must be ignored first: while one is not,
    /// nothing is stored and this returns [`Error::InvalidState`], so a key
    /// is never stored for a handshake that is then refused. Call it from
    /// the `ssl_errors` slot, or while the handshake is interrupted, then
    /// [`continue_interrupted_handshake`](Self::continue_interrupted_handshake).
    ///
    /// ```no_run
    /// use sslsocket::{Reactor, SslConfiguration, SslErrorKind};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = SslConfiguration::builder()
    ///     .trust_on_first_use("/var/lib/myapp/known_hosts")
    ///     .build()?;
    /// let mut reactor = Reactor::new()?;
    /// let id = reactor.ssl_socket(config);
    /// let socket = reactor.socket(id).unwrap();
    /// socket.ssl_errors().connect(|s, _, errors| {
    ///     // First contact: remember the key. A changed key is refused.
    ///     if errors.iter().all(|e| e.kind() == SslErrorKind::PublicKeyUnknown) {
    ///         s.store_peer_public_key().unwrap();
    ///     }
    /// });
    /// socket.connect_to_host_encrypted("device.local", 443)?;
    /// # Ok(()) }
    /// ```
    pub fn store_peer_public_key(&mut self) -> Result<()> {
        match &mut self.engine {
            Some(engine) => engine.store_peer_public_key(),
            None => Err(Error::InvalidState("no TLS session to take the key from")),
        }
    }

    /// What this connection moved so far and how it went: bytes on the
    /// network and in plaintext, TLS records, the handshake's duration,
    /// resumption, the time to the first byte of data, and how the peer's
    /// stream ended. The same comes with the `disconnected` signal; it stays
    /// readable until the next connection starts.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let socket = reactor.socket(id).unwrap();
    /// socket.disconnected().connect(|_, _, stats| {
    ///     eprintln!(
    ///         "{} bytes in, {} out, handshake {:?}, ended by {:?}",
    ///         stats.bytes_received, stats.bytes_sent, stats.handshake_duration, stats.peer_close
    ///     );
    /// });
    /// assert_eq!(socket.statistics().bytes_received, 0);
    /// ```
    pub fn statistics(&self) -> ConnectionStatistics {
        let records = self.engine.as_ref().map_or((0, 0), |e| e.records());
        self.stats.snapshot(records)
    }

    /// Whether the handshake resumed an earlier session.
    pub fn is_session_resumed(&self) -> bool {
        self.engine.as_ref().is_some_and(|e| e.is_resumed())
    }

    /// The peer's certificate (the leaf), once received.
    pub fn peer_certificate(&self) -> Option<Certificate> {
        self.peer_certificate_chain().into_iter().next()
    }

    /// The certificate chain the peer sent, leaf first (empty for a peer
    /// that authenticated with a pre-shared key or a raw public key).
    pub fn peer_certificate_chain(&self) -> Vec<Certificate> {
        self.engine
            .as_ref()
            .map(|e| e.peer_certificate_chain())
            .unwrap_or_default()
    }

    /// Every problem found verifying the peer on this connection, including
    /// ignored ones; a resumed session's chain is verified again, so this is
    /// what the full handshake reported.
    pub fn peer_verify_errors(&self) -> Vec<SslError> {
        self.engine
            .as_ref()
            .map(|e| e.peer_verify_errors().to_vec())
            .unwrap_or_default()
    }

    /// Attaches the program's own state to the socket, replacing any
    /// earlier value. Slots reach it through [`user_data`](Self::user_data):
    /// state shared by a socket's slots lives with the socket, with no
    /// `Rc<RefCell<_>>` needed.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let socket = reactor.socket(id).unwrap();
    /// socket.set_user_data(0usize);
    /// socket.ready_read().connect(|s, _, _| {
    ///     let n = s.read_all().len();
    ///     *s.user_data::<usize>().unwrap() += n;
    /// });
    /// assert_eq!(socket.user_data::<usize>(), Some(&mut 0));
    /// ```
    pub fn set_user_data<T: Any>(&mut self, data: T) {
        self.user_data.set(data);
    }

    /// The program's state attached with [`set_user_data`](Self::set_user_data),
    /// if it is a `T`.
    pub fn user_data<T: Any>(&mut self) -> Option<&mut T> {
        self.user_data.get()
    }

    /// The program's state, read only: for a socket behind a shared
    /// reference.
    ///
    /// ```
    /// # let mut reactor = sslsocket::Reactor::new().unwrap();
    /// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
    /// # let id = reactor.ssl_socket(config);
    /// let socket = reactor.socket(id).unwrap();
    /// socket.set_user_data(String::from("client 7"));
    /// let socket: &sslsocket::SslSocket = socket;
    /// assert_eq!(socket.user_data_ref::<String>().unwrap(), "client 7");
    /// assert_eq!(socket.user_data_ref::<u32>(), None);
    /// ```
    pub fn user_data_ref<T: Any>(&self) -> Option<&T> {
        self.user_data.get_ref()
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// The link to the server that accepted this socket, if any.
    pub(crate) fn server_link(&self) -> Option<&ServerLink> {
        self.server.as_ref()
    }

    fn set_state(&mut self, state: SocketState) {
        if self.state != state {
            log::debug!("socket {:?}: {:?} -> {state:?}", self.id, self.state);
            self.deadlines.entered(state);
            if state == SocketState::Handshaking {
                self.stats.handshake_started();
            }
            self.state = state;
            self.events.push_back(SocketEvent::StateChanged(state));
        }
    }
}

/// Refuses a peer verify name no certificate can carry (a control
/// character, a NUL above all), at the call rather than as an opaque GnuTLS
/// error in the handshake.
fn validate_verify_name(name: Option<&str>) -> Result<()> {
    match name {
        Some(name) if name.bytes().any(|b| b.is_ascii_control()) => Err(Error::InvalidInput(
            format!("invalid peer verify name {name:?}"),
        )),
        _ => Ok(()),
    }
}

fn validate_host(host: &str, port: u16) -> Result<()> {
    if host.is_empty() {
        return Err(Error::InvalidInput("empty host name".into()));
    }
    if port == 0 {
        return Err(Error::InvalidInput("port 0".into()));
    }
    if host.trim_start_matches('[').trim_end_matches(']').len() > 253
        || host
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'/')
    {
        return Err(Error::InvalidInput(format!("invalid host name {host:?}")));
    }
    Ok(())
}
