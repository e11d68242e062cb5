//! The TLS engine: one GnuTLS session over in-memory buffers.
//!
//! Ciphertext goes in ([`Engine::incoming`], [`Engine::peer_eof`]),
//! [`Engine::process`] drives the handshake and decrypts every complete
//! record, ciphertext to send comes out ([`Engine::outgoing`]), and what
//! happened is queued as [`EngineEvent`]s. There are no sockets, no clocks
//! and no user callbacks here: the engine is tested and fuzzed from byte
//! slices, and `ssl_socket.rs` drives it from the network.
//!
//! Certificate verification pauses the handshake: the engine reports
//! [`EngineEvent::SslErrors`] and waits for [`Engine::resolve_ssl_errors`],
//! so the application decides outside any GnuTLS call.
//!
//! # The trust invariant
//!
//! [`EngineEvent::HandshakeComplete`] is queued, and plaintext flows, only
//! from [`Engine::establish`], which takes an [`Accepted`]: the proof that
//! the peer was judged on this very connection. Only
//! [`Engine::judge_peer`] (its chain verified for this configuration and
//! the expected name, or its raw public key one the configuration trusts,
//! with no problem left unignored), [`Engine::resolve_ssl_errors`] (every
//! problem reported now ignored by the program),
//! [`Engine::judge_pre_shared_key`] (the peer proved the key the
//! configuration holds for the identity used; see `authentication.rs`) and
//! a configuration that verifies nothing (never for a client that holds a
//! pre-shared key) make one. When
//! GnuTLS finishes a handshake without having asked for the check (a
//! resumed session restores the peer's chain without verifying it), the
//! restored chain is verified and judged then. A client remembers a session
//! for resumption only after a verification that found nothing
//! ([`Engine::remember_session`]), under the server and the expected name
//! ([`ServerKey`]), in its configuration's own cache.

mod authentication;
#[cfg(test)]
mod authentication_tests;
mod checks;
mod client_hello;
mod code_points;
mod datagram;
#[cfg(test)]
mod datagram_tests;
mod keying;
mod refusal;
#[cfg(test)]
mod tests;
mod verification;
pub(crate) use verification::ssl_errors;

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::buffer::ByteQueue;
use crate::certificate::Certificate;
use crate::config::{ChainKey, ChainOf, PeerVerifyMode, ServerKey, SslConfiguration, SslProtocol};
use crate::error::{Alert, Error, PskErrorKind, SslError, SslErrorKind};
use crate::gnutls::{
    code, ClientCertificate, Framing, GnutlsError, PeerAuthentication, PeerCheck, RawAlert, Role,
    Session, Verification,
};
use crate::pkcs11::PinRequest;
use crate::refusal::{HandshakeParameter, HandshakeRefusal};
use crate::send_queue::SendQueue;

/// The most plaintext one `gnutls_record_recv` call may produce (one record).
const RECORD_ROOM: usize = 16 * 1024;

/// The most ciphertext a handshake may take from the peer. GnuTLS refuses
/// a handshake message over 128 KiB only once it arrived whole, so a peer
/// that declares a 16 MiB message would make it buffer 16 MiB first; the
/// largest real flights (a ClientHello and a client certificate chain, each
/// at most 128 KiB) stay far below this.
const MAX_HANDSHAKE_INPUT: usize = 512 * 1024;

/// How many renegotiation requests a server refuses on one connection
/// before it ends the connection.
const MAX_REFUSED_RENEGOTIATIONS: u8 = 4;

/// How many session tickets a server sends after a TLS 1.3 handshake
/// (GnuTLS's own number).
const TLS13_TICKETS: u32 = 2;

/// How many times a send is retried after `GNUTLS_E_AGAIN` or
/// `GNUTLS_E_INTERRUPTED` before giving up (the transport never blocks, so
/// one retry is the norm).
const SEND_RETRIES: usize = 8;

/// What happened inside the engine, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EngineEvent {
    /// The handshake finished; application data may flow.
    HandshakeComplete,
    /// One problem found while verifying the peer (reported in every verify
    /// mode but `VerifyNone`).
    PeerVerifyError(SslError),
    /// Verification failed: the handshake waits for
    /// [`Engine::resolve_ssl_errors`]. Carries the problems not already
    /// ignored.
    SslErrors(Vec<SslError>),
    /// The peer sent an alert (warnings do not end the session).
    AlertReceived(Alert),
    /// We sent an alert.
    AlertSent(Alert),
    /// The peer sent `close_notify`: it will send no more data.
    CloseNotify,
    /// (Server) A client named this pre-shared key identity, which the
    /// table does not hold; its handshake fails.
    PreSharedKeyIdentityUnknown(Vec<u8>),
    /// The handshake waits, before it starts, for the PIN of a local key
    /// on a PKCS#11 token ([`Engine::pin_request`]).
    PinRequired,
}

/// Whether the local keys can be used: GnuTLS cannot wait for a PIN inside
/// a handshake (see `crate::pkcs11`), so the handshake does not start
/// while a token key of the configuration waits for its PIN.
#[derive(Debug)]
enum LocalKeys {
    /// Not looked at yet.
    Unchecked,
    /// Waiting for the answer to this request.
    AwaitingPin(PinRequest),
    /// Usable: no key waits for a PIN.
    Ready,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    AwaitingDecision,
    Established,
    Failed,
}

/// Whether verification problems stop the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enforcement {
    Off,
    Report,
    Enforce,
}

/// The proof that the peer was accepted on this connection, which
/// [`Engine::establish`] takes. Made only where the module docs say.
#[derive(Debug)]
struct Accepted(());

/// A TLS session over in-memory buffers.
pub(crate) struct Engine {
    session: Session,
    role: Role,
    phase: Phase,
    enforcement: Enforcement,
    ignore_all: bool,
    ignored: Vec<SslError>,
    peer_verify_errors: Vec<SslError>,
    pending_errors: Vec<SslError>,
    events: VecDeque<EngineEvent>,
    /// GnuTLS finished the handshake (the peer may still be being judged).
    handshake_done: bool,
    /// Ciphertext the handshake took from the peer so far.
    handshake_input: usize,
    /// Records of data decrypted and sealed.
    records: (u64, u64),
    /// The peer's stream ended in the middle of a record (it was cut).
    eof_mid_record: bool,
    /// Renegotiation requests refused so far; while a client's refused
    /// hello waits in GnuTLS's buffer, the next receive drops it.
    refused_renegotiations: u8,
    refused_hello_pending: bool,
    /// The peer was accepted on this connection; taken by `establish`.
    accepted: Option<Accepted>,
    /// Why the engine refused the peer's authentication at the certificate
    /// check, to report when GnuTLS fails the handshake for it.
    psk_refusal: Option<PskErrorKind>,
    /// This connection's verification found nothing wrong, or the
    /// configuration verifies nothing: a session that may be resumed.
    verified_clean: bool,
    peer_closed: bool,
    closed: bool,
    /// GnuTLS was given a chance to see the end of the stream.
    eof_seen: bool,
    config: SslConfiguration,
    /// On a client: the server it expects (host, port, expected name):
    /// what its session is remembered under, and what its public key is
    /// checked against in trust-on-first-use mode.
    server: Option<ServerKey>,
    /// This client remembers and offers sessions (see `may_resume`).
    resumes: bool,
    /// The program stored the peer's key in the known keys database during
    /// this handshake: the trust-on-first-use problems are answered.
    key_stored: bool,
    local_keys: LocalKeys,
}

impl Engine {
    /// A client session for `server`, whose expected name (a host name,
    /// sent in SNI, or an IP address without brackets) its certificate must
    /// carry; it resumes (then remembers) the session stored for `server`
    /// when the configuration keeps sessions.
    pub(crate) fn client(config: &SslConfiguration, server: ServerKey) -> Result<Self, Error> {
        Self::client_framed(config, server, Framing::Stream)
    }

    /// [`client`](Self::client) over a stream (TLS) or datagrams (DTLS).
    fn client_framed(
        config: &SslConfiguration,
        server: ServerKey,
        framing: Framing,
    ) -> Result<Self, Error> {
        let mut engine = Self::new(config, Role::Client, framing)?;
        let name = server.name().to_owned();
        let name = name.as_str();
        let is_address = name.parse::<std::net::IpAddr>().is_ok();
        if engine.enforcement != Enforcement::Off && name.is_empty() {
            return Err(Error::InvalidInput(
                "no name to verify the server's certificate against".into(),
            ));
        }
        engine.resumes = engine.may_resume();
        engine.server = Some(server);
        engine.offer_resumption();
        if !name.is_empty() && !is_address {
            engine
                .session
                .set_server_name(name)
                .map_err(Error::Handshake)?;
        }
        if engine.enforcement != Enforcement::Off {
            engine
                .session
                .enable_peer_check(Some(name))
                .map_err(Error::Handshake)?;
        }
        Ok(engine)
    }

    /// Where this client's session is remembered, when it resumes.
    fn session_key(&self) -> Option<&ServerKey> {
        self.server.as_ref().filter(|_| self.resumes)
    }

    /// Whether this client may resume sessions: when the configuration
    /// keeps them, does not require a stapled OCSP response (each
    /// connection must then prove the certificate's current status, which a
    /// resumed session cannot), and holds no pre-shared key (the server
    /// proves the key on every connection; with (EC)DHE that costs what a
    /// resumption costs).
    fn may_resume(&self) -> bool {
        self.config.session_cache().is_some()
            && !self.config.ocsp_stapling_required()
            && !self.requires_pre_shared_key()
    }

    /// A server session.
    pub(crate) fn server(config: &SslConfiguration) -> Result<Self, Error> {
        Self::server_framed(config, Framing::Stream)
    }

    /// [`server`](Self::server) over a stream (TLS) or datagrams (DTLS).
    fn server_framed(config: &SslConfiguration, framing: Framing) -> Result<Self, Error> {
        let mut engine = Self::new(config, Role::Server, framing)?;
        let request = match engine.enforcement {
            Enforcement::Off => ClientCertificate::Ignore,
            Enforcement::Report => ClientCertificate::Request,
            Enforcement::Enforce => ClientCertificate::Require,
        };
        engine.session.set_client_certificate(request);
        if let Some((key, lifetime)) = config.session_tickets() {
            let seconds = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
            engine
                .session
                .enable_session_tickets(key.as_bytes(), seconds)
                .map_err(Error::Handshake)?;
        }
        if let Some(db) = config.session_db() {
            engine.session.enable_session_db(db.clone());
        }
        if engine.enforcement != Enforcement::Off {
            engine
                .session
                .enable_peer_check(None)
                .map_err(Error::Handshake)?;
        }
        Ok(engine)
    }

    fn new(config: &SslConfiguration, role: Role, framing: Framing) -> Result<Self, Error> {
        let priority = match framing {
            Framing::Stream => config.priority().clone(),
            Framing::Datagram => config.dtls_priority()?,
        };
        let mut session = Session::new(
            role,
            framing,
            config.credentials().clone(),
            priority,
            config.authentication().session_options(role),
        )
        .map_err(Error::Handshake)?;
        if config.key_log().is_some() {
            session.log_keys();
        }
        if !config.alpn_protocols().is_empty() {
            session
                .set_alpn_protocols(config.alpn_protocols(), role == Role::Server)
                .map_err(Error::Handshake)?;
        }
        let enforcement =
            match (config.peer_verify_mode(), role) {
                (PeerVerifyMode::VerifyNone, _)
                | (PeerVerifyMode::AutoVerifyPeer, Role::Server) => Enforcement::Off,
                (PeerVerifyMode::QueryPeer, _) => Enforcement::Report,
                (PeerVerifyMode::VerifyPeer, _)
                | (PeerVerifyMode::AutoVerifyPeer, Role::Client) => Enforcement::Enforce,
            };
        Ok(Self {
            session,
            role,
            phase: Phase::Handshaking,
            enforcement,
            ignore_all: false,
            ignored: Vec::new(),
            peer_verify_errors: Vec::new(),
            pending_errors: Vec::new(),
            events: VecDeque::new(),
            handshake_done: false,
            handshake_input: 0,
            records: (0, 0),
            eof_mid_record: false,
            refused_renegotiations: 0,
            refused_hello_pending: false,
            // A configuration that verifies nothing accepts any peer.
            accepted: (enforcement == Enforcement::Off).then_some(Accepted(())),
            psk_refusal: None,
            verified_clean: enforcement == Enforcement::Off,
            peer_closed: false,
            closed: false,
            eof_seen: false,
            config: config.clone(),
            server: None,
            resumes: false,
            key_stored: false,
            local_keys: LocalKeys::Unchecked,
        })
    }

    /// Offers the session remembered for this server, and watches for new
    /// tickets to remember.
    fn offer_resumption(&mut self) {
        let config = self.config.clone();
        let (Some(key), Some(cache)) = (self.session_key().cloned(), config.session_cache()) else {
            return;
        };
        if let Some(data) = cache.get(&key) {
            if let Err(e) = self.session.set_session_data(&data) {
                log::debug!("cannot offer the session remembered for {key}: {e}");
            }
        }
    }

    /// Remembers the session for resumption: at the end of a TLS 1.2
    /// handshake, and whenever a TLS 1.3 ticket arrives; only when this
    /// connection's verification found nothing wrong (a session accepted by
    /// ignoring problems is not offered again).
    fn remember_session(&mut self, at_handshake: bool) {
        // Checked first: this runs after every decryption.
        let ticket = std::mem::take(&mut self.session.transport_mut().ticket_received);
        let tls12 = self.session.protocol_name() != "TLS1.3";
        if !(ticket || at_handshake && tls12) {
            return;
        }
        let config = self.config.clone();
        let (Some(key), Some(cache)) = (self.session_key().cloned(), config.session_cache()) else {
            return;
        };
        if !self.verified_clean {
            log::debug!("not remembering the session for {key}: verification found problems");
            return;
        }
        match self.session.session_data() {
            Ok(data) => {
                log::debug!("remembering the session for {key} ({} bytes)", data.len());
                cache.put(&key, data);
            }
            Err(e) => log::debug!("no session data to remember: {e}"),
        }
    }

    /// On a server, after a TLS 1.3 handshake: sends session tickets, unless
    /// the client's certificate has problems the program did not ignore (in
    /// `QueryPeer` mode the handshake goes on regardless; such a session is
    /// not worth resuming). A TLS 1.2 ticket is part of the handshake
    /// itself; its resumption verifies the chain again.
    fn issue_tickets(&mut self) {
        let tls13 = self.session.protocol_name() == "TLS1.3";
        if self.role != Role::Server || !tls13 || self.config.session_tickets().is_none() {
            return;
        }
        // A client that proved a pre-shared key proves it again next time:
        // with (EC)DHE that costs what a resumption costs, and a ticket
        // would outlive the key's removal from the table.
        if self.session.peer_authentication() == PeerAuthentication::PreSharedKey {
            return;
        }
        // A client without a certificate is no problem worth a ticket's
        // refusal: its resumption has no certificate either.
        let unresolved = self
            .peer_verify_errors
            .iter()
            .any(|e| e.kind() != SslErrorKind::NoPeerCertificate && !self.is_ignored(e));
        if unresolved {
            log::debug!("no session ticket: the client's certificate has problems");
            return;
        }
        if let Err(e) = self.session.send_session_tickets(TLS13_TICKETS) {
            log::debug!("session tickets not sent: {e}");
        }
    }

    /// Ciphertext received from the peer and not yet processed; the socket
    /// reads into it directly.
    pub(crate) fn incoming(&mut self) -> &mut ByteQueue {
        &mut self.session.transport_mut().incoming
    }

    /// Appends ciphertext from the peer.
    #[cfg(test)]
    pub(crate) fn receive(&mut self, ciphertext: &[u8]) {
        self.incoming().extend(ciphertext);
    }

    /// The peer's byte stream ended (TCP FIN). Whether that is a clean end
    /// depends on `close_notify`; [`process`](Self::process) tells.
    pub(crate) fn peer_eof(&mut self) {
        self.session.transport_mut().eof = true;
    }

    /// Ciphertext waiting to be sent to the peer.
    pub(crate) fn outgoing(&mut self) -> &mut SendQueue {
        &mut self.session.transport_mut().outgoing
    }

    /// Bytes of ciphertext waiting to be sent.
    pub(crate) fn outgoing_len(&self) -> usize {
        self.session.transport().outgoing.len()
    }

    /// Advances the handshake and decrypts every complete record into
    /// `plaintext`, stopping once it holds `limit` bytes or more (the rest
    /// stays buffered until the next call).
    pub(crate) fn process(&mut self, plaintext: &mut ByteQueue, limit: usize) -> Result<(), Error> {
        self.drive(|engine| engine.decrypt(plaintext, limit))
    }

    /// Advances the handshake and, once established, runs `decrypt`.
    fn drive(&mut self, decrypt: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        let result = self.advance(decrypt);
        // The secrets these GnuTLS calls derived, now that they returned.
        self.write_key_log();
        result
    }

    fn advance(
        &mut self,
        decrypt: impl FnOnce(&mut Self) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.phase == Phase::Handshaking {
            self.handshake()?;
        }
        if self.phase == Phase::Established {
            decrypt(self)?;
        }
        Ok(())
    }

    fn handshake(&mut self) -> Result<(), Error> {
        if self.handshake_done {
            return self.conclude();
        }
        if !self.local_keys_ready()? {
            return Ok(());
        }
        // One more call when GnuTLS answered AGAIN with datagrams still
        // queued and nothing else moved (see below); reset by progress.
        let mut nudged = false;
        loop {
            let before = self.buffered();
            let result = self.session.handshake();
            self.handshake_input += before.0.saturating_sub(self.buffered().0);
            if self.handshake_input > MAX_HANDSHAKE_INPUT {
                log::debug!("the handshake took {} bytes", self.handshake_input);
                let too_large = GnutlsError::from_code(code::HANDSHAKE_TOO_LARGE);
                return Err(self.fail_handshake(too_large));
            }
            let Err(error) = result else {
                return self.on_handshake_done();
            };
            match error.code() {
                code::AGAIN => {
                    if self.check_requested_peer() {
                        continue;
                    }
                    if self.unknown_identity_shown() {
                        let dropped = GnutlsError::from_code(code::DECRYPTION_FAILED);
                        return Err(self.fail_handshake(dropped));
                    }
                    if self.phase == Phase::AwaitingDecision {
                        return Ok(());
                    }
                    if self.again_can_progress(before) {
                        nudged = false;
                        continue;
                    }
                    // DTLS: GnuTLS may answer AGAIN after a record it held
                    // from an earlier datagram (a fragment of the next
                    // message) without pulling the datagrams that complete
                    // it. No readiness event will come for those, already
                    // received: ask once more, or the handshake waits for
                    // the peer's retransmission.
                    if !nudged && self.incoming_datagrams() > 0 {
                        nudged = true;
                        continue;
                    }
                    return Ok(());
                }
                code::INTERRUPTED => {}
                code::WARNING_ALERT_RECEIVED => self.warning_alert(),
                _ => return Err(self.fail_handshake(error)),
            }
        }
    }

    /// Whether the handshake may use the local keys; when a token key waits
    /// for its PIN, asks for it once ([`EngineEvent::PinRequired`]) and
    /// waits for the answer, failing with the login's error.
    fn local_keys_ready(&mut self) -> Result<bool, Error> {
        match &self.local_keys {
            LocalKeys::Ready => return Ok(true),
            LocalKeys::AwaitingPin(request) => match request.outcome() {
                None => return Ok(false),
                Some(Err(error)) => {
                    self.phase = Phase::Failed;
                    return Err(error);
                }
                // Logged in: another key may wait too.
                Some(Ok(())) => {}
            },
            LocalKeys::Unchecked => {}
        }
        match self.config.awaiting_pin() {
            None => {
                self.local_keys = LocalKeys::Ready;
                Ok(true)
            }
            Some(request) => {
                log::debug!("the handshake waits for a PIN: {request:?}");
                self.local_keys = LocalKeys::AwaitingPin(request);
                self.events.push_back(EngineEvent::PinRequired);
                Ok(false)
            }
        }
    }

    /// The request a handshake that waits for a PIN made
    /// ([`EngineEvent::PinRequired`]).
    pub(crate) fn pin_request(&self) -> Option<&PinRequest> {
        match &self.local_keys {
            LocalKeys::AwaitingPin(request) => Some(request),
            _ => None,
        }
    }

    /// GnuTLS finished the handshake. A peer that authenticated with a
    /// pre-shared key, or a client that required one, is judged on the key
    /// (`authentication.rs`). Otherwise, if GnuTLS never asked for the peer
    /// check (a resumed session restores the peer's chain unverified), the
    /// chain is verified and judged now; the connection is established only
    /// once the peer is accepted.
    fn on_handshake_done(&mut self) -> Result<(), Error> {
        self.handshake_done = true;
        self.log_resumed_master_secret();
        if let Some(judged) = self.judge_pre_shared_key() {
            return judged;
        }
        if self.accepted.is_none() {
            log::debug!(
                "handshake done without a certificate check (resumed: {}): verifying the peer now",
                self.session.is_resumed()
            );
            self.session.transport_mut().peer_check = PeerCheck::Deciding;
            let problems = self.peer_problems();
            self.judge_peer(problems);
        }
        if let Some(accepted) = self.accepted.take() {
            self.establish(accepted);
        }
        Ok(())
    }

    /// A finished handshake whose peer was judged after a pause: establishes
    /// it, or fails if it was refused.
    fn conclude(&mut self) -> Result<(), Error> {
        if let Some(accepted) = self.accepted.take() {
            self.establish(accepted);
            return Ok(());
        }
        match self.session.transport().peer_check {
            PeerCheck::Rejected => Err(self.refuse_peer()),
            _ => Ok(()),
        }
    }

    /// The only way to [`Phase::Established`], given the proof that the
    /// peer was accepted on this connection.
    fn establish(&mut self, _: Accepted) {
        log::debug!("handshake complete: {}", self.session.description());
        self.session.transport_mut().client_hello = Vec::new();
        self.phase = Phase::Established;
        self.events.push_back(EngineEvent::HandshakeComplete);
        self.remember_session(true);
        self.issue_tickets();
    }

    /// After `GNUTLS_E_AGAIN` in the handshake: when GnuTLS paused for the
    /// peer check, verifies and judges the peer (a client that holds a
    /// pre-shared key refuses a certificate at once). Returns whether the
    /// handshake can go on at once.
    fn check_requested_peer(&mut self) -> bool {
        if self.session.transport().peer_check != PeerCheck::Requested {
            return false;
        }
        self.session.transport_mut().peer_check = PeerCheck::Deciding;
        if self.requires_pre_shared_key() {
            self.refuse_certificate_authentication();
            return true;
        }
        let problems = self.peer_problems();
        self.judge_peer(problems)
    }

    /// Verifies the peer's chain, or finds it among the chains the
    /// configuration verified recently (see
    /// [`cache_verified_chains`](crate::SslConfigurationBuilder::cache_verified_chains)).
    fn verify_peer(&self) -> Result<Verification, GnutlsError> {
        let Some(verified) = self.config.verified_chains() else {
            return self.session.verify_peer();
        };
        let chain = self.session.peer_certificates();
        // A stapled OCSP response is checked as part of each verification.
        if chain.is_empty() || self.session.ocsp_response().is_some() {
            return self.session.verify_peer();
        }
        let of = match self.role {
            Role::Client => ChainOf::Server,
            Role::Server => ChainOf::Client,
        };
        let name = self.session.transport().check_name.as_deref();
        let key = ChainKey::new(&chain, name.map(|n| n.to_bytes()), of);
        let now = SystemTime::now();
        if verified.contains(&key, now) {
            log::debug!("peer chain verified before: the result is reused");
            return Ok(Verification::trusted());
        }
        let verification = self.session.verify_peer();
        let trusted = verification.as_ref().is_ok_and(|v| v.status.is_trusted());
        if trusted {
            if let Some(expiry) = earliest_expiry(&chain) {
                verified.insert(key, now, expiry);
            }
        }
        verification
    }

    /// Judges the peer on the problems verification found (GnuTLS paused
    /// on the peer check, or a resumed handshake is done): reports every
    /// problem, then accepts the peer when none is left unignored (or the
    /// mode only reports), or pauses for the program's decision. Returns
    /// whether it accepted.
    fn judge_peer(&mut self, errors: Vec<SslError>) -> bool {
        log::debug!("peer verification: {} problem(s)", errors.len());
        for error in &errors {
            log::debug!("peer verification: {error}");
            self.events
                .push_back(EngineEvent::PeerVerifyError(error.clone()));
        }
        self.verified_clean = errors.is_empty();
        self.peer_verify_errors = errors.clone();
        let remaining: Vec<SslError> = errors.into_iter().filter(|e| !self.is_ignored(e)).collect();
        if self.enforcement != Enforcement::Enforce || remaining.is_empty() {
            self.accept_peer();
            return true;
        }
        self.pending_errors = remaining.clone();
        self.phase = Phase::AwaitingDecision;
        self.events.push_back(EngineEvent::SslErrors(remaining));
        false
    }

    /// Every problem with the peer: what `verification` found, each on the
    /// certificate of the path where it arose, and a missing OCSP response
    /// when the configuration requires one.
    fn problems(&self, verification: Result<Verification, GnutlsError>) -> Vec<SslError> {
        let ocsp_missing = self.role == Role::Client
            && self.config.ocsp_stapling_required()
            && !self.session.ocsp_checked();
        let server = self.server.as_ref();
        let checks = server.is_some_and(|s| checks::any(&self.config, s.name()));
        let trusted = verification.as_ref().is_ok_and(|v| v.status.is_trusted());
        if trusted && !ocsp_missing && !checks {
            return Vec::new();
        }
        // The chain is parsed only when there is a problem to attach it to.
        let chain = self.peer_certificate_chain();
        let of = match self.role {
            Role::Client => ChainOf::Server,
            Role::Server => ChainOf::Client,
        };
        let mut errors = verification::ssl_errors(verification, &chain, |anchor| {
            self.config.verify_below(anchor, &chain, of)
        });
        if ocsp_missing {
            let leaf = chain.first().cloned();
            errors.push(SslError::new(SslErrorKind::OcspResponseInvalid, leaf));
        }
        if let Some(server) = server {
            checks::pins(&self.config, server.name(), chain.first(), &mut errors);
            checks::known_key(&self.config, server, chain.first(), &mut errors);
        }
        errors
    }

    fn is_ignored(&self, error: &SslError) -> bool {
        let answered = self.key_stored && is_known_key_problem(error);
        answered || self.ignore_all || self.ignored.iter().any(|i| i.covers(error))
    }

    /// Trust on first use: stores the server's key (its leaf's) as the one
    /// it is known by, and takes that as the answer to this handshake's
    /// `PublicKeyUnknown` or `PublicKeyChanged`.
    pub(crate) fn store_peer_public_key(&mut self) -> Result<(), Error> {
        let (Some(keys), Some(server)) = (self.config.known_keys(), &self.server) else {
            return Err(Error::InvalidState(
                "storing a key needs a client configuration with trust on first use",
            ));
        };
        let chain = self.session.peer_certificates();
        let Some(leaf) = chain.first() else {
            return Err(Error::InvalidState("the server sent no certificate yet"));
        };
        // A key is stored for a handshake that will be accepted: one whose
        // other problems the program ignored already.
        let unresolved = self
            .pending_errors
            .iter()
            .any(|e| !is_known_key_problem(e) && !self.is_ignored(e));
        if unresolved {
            return Err(Error::InvalidState(
                "the handshake has other problems the program did not ignore: ignore them \
                 first, or refuse",
            ));
        }
        keys.store(server.name(), &server.service(), leaf)
            .map_err(|e| {
                Error::InvalidConfiguration(format!("cannot store {server}'s key: {e}"))
            })?;
        log::debug!("{server}: its public key is stored");
        self.key_stored = true;
        Ok(())
    }

    /// Ignores these problems, and no others, if verification finds them
    /// (Qt's `ignoreSslErrors(list)`: the list replaces the previous one);
    /// entries without a certificate match any.
    pub(crate) fn ignore_ssl_errors(&mut self, errors: &[SslError]) {
        self.ignored = errors.to_vec();
    }

    /// Ignores every verification problem of this handshake.
    pub(crate) fn ignore_all_ssl_errors(&mut self) {
        self.ignore_all = true;
    }

    fn accept_peer(&mut self) {
        self.accepted = Some(Accepted(()));
        self.session.decide_peer_check(true);
    }

    /// Continues a handshake paused by [`EngineEvent::SslErrors`]: accepts
    /// the peer if every problem reported is now ignored, and refuses it
    /// otherwise (the next [`process`](Self::process) then fails with
    /// [`Error::CertificateVerification`] and the peer gets an alert).
    pub(crate) fn resolve_ssl_errors(&mut self) {
        if self.phase != Phase::AwaitingDecision {
            return;
        }
        self.phase = Phase::Handshaking;
        if self.pending_errors.iter().all(|e| self.is_ignored(e)) {
            return self.accept_peer();
        }
        self.session.decide_peer_check(false);
    }

    fn warning_alert(&mut self) {
        let alert = Alert::from_raw(self.session.received_alert(false));
        log::debug!("received {alert}");
        self.events.push_back(EngineEvent::AlertReceived(alert));
    }

    /// Ends the session after a fatal handshake error: tells the peer with
    /// an alert where that makes sense, and classifies the error.
    fn fail_handshake(&mut self, error: GnutlsError) -> Error {
        self.phase = Phase::Failed;
        log::debug!("handshake failed: {error}");
        if let Some(refused) = self.pre_shared_key_failure(error) {
            return refused;
        }
        match error.code() {
            code::FATAL_ALERT_RECEIVED => self.refused_by_alert(),
            code::CERTIFICATE_VERIFICATION_ERROR if !self.pending_errors.is_empty() => {
                self.refuse_peer()
            }
            code::NO_CERTIFICATE_FOUND | code::CERTIFICATE_REQUIRED
                if self.role == Role::Server =>
            {
                self.refuse_missing_certificate(error);
                let missing = SslError::new(SslErrorKind::NoPeerCertificate, None);
                self.events
                    .push_back(EngineEvent::PeerVerifyError(missing.clone()));
                self.peer_verify_errors = vec![missing.clone()];
                Error::CertificateVerification(vec![missing])
            }
            // Only what the end of the stream itself causes; any other
            // error (garbage before the FIN, a bad alert) is reported as is.
            code::PREMATURE_TERMINATION | code::UNEXPECTED_PACKET_LENGTH
                if self.session.transport().eof =>
            {
                self.eof_mid_record = error.code() == code::UNEXPECTED_PACKET_LENGTH;
                Error::ClosedDuringHandshake
            }
            _ => {
                let Some(refusal) = self.failure().explain_error(error) else {
                    self.send_alert_for(error);
                    return Error::Handshake(error);
                };
                self.send_refusal_alert(&refusal, error);
                Error::HandshakeRefused(Box::new(refusal))
            }
        }
    }

    /// Ends the session because the peer was refused: the alert for the
    /// first problem, and the problems as the error.
    fn refuse_peer(&mut self) -> Error {
        self.phase = Phase::Failed;
        let errors = std::mem::take(&mut self.pending_errors);
        if let Some(first) = errors.first() {
            self.send_alert(RawAlert {
                fatal: true,
                description: first.kind().alert_description(),
            });
        }
        Error::CertificateVerification(errors)
    }

    fn fatal_alert(&mut self) -> Alert {
        let alert = Alert::from_raw(self.session.received_alert(true));
        log::debug!("received {alert}");
        self.events.push_back(EngineEvent::AlertReceived(alert));
        alert
    }

    /// A fatal alert during the handshake: a refusal of our offer, or else
    /// the alert.
    fn refused_by_alert(&mut self) -> Error {
        let alert = self.fatal_alert();
        match self.failure().explain_alert(alert) {
            Some(refusal) => Error::HandshakeRefused(Box::new(refusal)),
            None => Error::AlertReceived(alert),
        }
    }

    /// What explains a failed handshake: our offer, and what we know of
    /// the peer's.
    fn failure(&self) -> refusal::Failure<'_> {
        let transport = self.session.transport();
        let (key_algorithms, certificate_types) = match self.role {
            Role::Server => self.local_keys(),
            Role::Client => (Vec::new(), Vec::new()),
        };
        refusal::Failure {
            server: self.role == Role::Server,
            offer: self.config.priority().offer(),
            priority: self.config.priority().text(),
            client_hello: &transport.client_hello,
            server_hello_received: transport.server_hello_received,
            key_algorithms,
            certificate_types,
        }
    }

    /// A server's keys: their public key algorithms ("RSA", "EC/ECDSA"),
    /// and the certificate types it can present them as.
    fn local_keys(&self) -> (Vec<String>, Vec<&'static str>) {
        let leaves = self
            .config
            .local_certificate_chains()
            .iter()
            .filter_map(|c| c.first());
        let mut algorithms: Vec<String> = leaves.map(Certificate::public_key_algorithm).collect();
        let mut types = Vec::new();
        if !algorithms.is_empty() {
            types.push("X.509");
        }
        if let Some(raw) = self.config.local_raw_public_key() {
            algorithms.push(raw.algorithm());
            types.push("RAWPK");
        }
        (algorithms, types)
    }

    fn send_alert(&mut self, alert: RawAlert) {
        if let Some(sent) = self.session.send_alert(alert) {
            self.alert_sent(sent);
        }
    }

    /// The alert for a refusal: `protocol_version` when no version was in
    /// common (RFC 8446 §4.2.1 requires it; GnuTLS's server reports a
    /// TLS 1.3-only client to a TLS 1.2-only server as "no cipher suites"
    /// and would send `handshake_failure`), else GnuTLS's alert for its
    /// error.
    fn send_refusal_alert(&mut self, refusal: &HandshakeRefusal, error: GnutlsError) {
        if refusal.parameter() != Some(HandshakeParameter::ProtocolVersion) {
            return self.send_alert_for(error);
        }
        self.send_alert(RawAlert {
            fatal: true,
            description: refusal::PROTOCOL_VERSION,
        });
    }

    /// Tells a client that sent no certificate, where one is required, why
    /// it is refused: TLS 1.3's `certificate_required`, and TLS 1.2's
    /// `handshake_failure` (RFC 5246 §7.4.6), where GnuTLS would send
    /// `decode_error`, which says the client's message was malformed.
    fn refuse_missing_certificate(&mut self, error: GnutlsError) {
        if error.code() != code::NO_CERTIFICATE_FOUND {
            return self.send_alert_for(error);
        }
        self.send_alert(RawAlert {
            fatal: true,
            description: refusal::HANDSHAKE_FAILURE,
        });
    }

    fn send_alert_for(&mut self, error: GnutlsError) {
        if let Some(sent) = self.session.send_alert_for(error) {
            self.alert_sent(sent);
        }
    }

    fn alert_sent(&mut self, raw: RawAlert) {
        let alert = Alert::from_raw(raw);
        log::debug!("sent {alert}");
        self.events.push_back(EngineEvent::AlertSent(alert));
    }

    /// Decrypts records until GnuTLS has nothing complete left, including
    /// what it holds internally, or `plaintext` reaches `limit`.
    fn decrypt(&mut self, plaintext: &mut ByteQueue, limit: usize) -> Result<(), Error> {
        if !self.has_input() {
            return Ok(());
        }
        // The plaintext of what is buffered is no longer than its
        // ciphertext: room for all of it at once, plus the record-sized room
        // each receive call asks for, so the loop never moves the bytes.
        let (ciphertext, held) = self.buffered();
        let room = (ciphertext + held).min(limit.saturating_sub(plaintext.len()));
        plaintext.reserve(room + RECORD_ROOM);
        while !self.peer_closed && plaintext.len() < limit {
            let before = self.buffered();
            let session = &mut self.session;
            let result = plaintext.fill_with(RECORD_ROOM, |room| session.recv(room));
            match result {
                Ok(0) => self.close_notify_received(),
                Ok(n) => {
                    self.records.0 += 1;
                    log::trace!("decrypted {n} bytes");
                }
                Err(e) => {
                    if !self.on_receive_error(e, before)? {
                        break;
                    }
                }
            }
        }
        self.remember_session(false);
        Ok(())
    }

    /// `gnutls_record_recv` returned 0: the peer sent `close_notify`.
    fn close_notify_received(&mut self) {
        log::debug!("peer sent close_notify");
        self.peer_closed = true;
        self.events.push_back(EngineEvent::CloseNotify);
    }

    /// Whether a receive call can produce anything: ciphertext or plaintext
    /// is buffered, the stream ended, or a refused hello waits to be
    /// dropped. Otherwise `gnutls_record_recv` could only answer AGAIN (it
    /// pulls exactly the bytes of the record it reads, so no whole record
    /// waits inside it unseen), and offering it room would cost a buffer
    /// and its wipe for nothing: after a handshake completes, and at every
    /// readiness event that brought no bytes.
    fn has_input(&self) -> bool {
        self.buffered() != (0, 0) || self.session.transport().eof || self.refused_hello_pending
    }

    /// After `GNUTLS_E_AGAIN`: whether calling GnuTLS again can make
    /// progress: it took some of what is buffered and something is left, or
    /// the stream ended and GnuTLS has not seen it yet (it answers a short
    /// read with AGAIN without pulling again, so a FIN that came with a
    /// partial record would otherwise go unnoticed).
    fn again_can_progress(&mut self, before: (usize, usize)) -> bool {
        let now = self.buffered();
        if now != (0, 0) && now != before {
            return true;
        }
        let transport = self.session.transport();
        if transport.eof && transport.incoming.is_empty() && !self.eof_seen {
            self.eof_seen = true;
            return true;
        }
        false
    }

    /// What GnuTLS still holds for us: undelivered ciphertext and decrypted
    /// plaintext.
    fn buffered(&self) -> (usize, usize) {
        (
            self.session.transport().incoming_len(),
            self.session.pending(),
        )
    }

    /// Handles a non-data result of `gnutls_record_recv`. Returns whether to
    /// call it again.
    fn on_receive_error(
        &mut self,
        error: GnutlsError,
        before: (usize, usize),
    ) -> Result<bool, Error> {
        match error.code() {
            // After a post-handshake message (a TLS 1.3 session ticket or key
            // update), GnuTLS can return AGAIN with records still buffered:
            // go on while that made progress and something is left.
            code::AGAIN => Ok(self.again_can_progress(before)),
            code::INTERRUPTED => Ok(true),
            code::REHANDSHAKE => self.refuse_renegotiation(error),
            // GnuTLS keeps a client's refused hello in its record buffer;
            // the next receive drops it with this code, and the connection
            // goes on.
            code::UNEXPECTED_PACKET if self.refused_hello_pending => {
                self.refused_hello_pending = false;
                Ok(true)
            }
            code::PREMATURE_TERMINATION | code::UNEXPECTED_PACKET_LENGTH
                if self.session.transport().eof =>
            {
                // GnuTLS says UNEXPECTED_PACKET_LENGTH when the stream ended
                // inside a record, PREMATURE_TERMINATION between records.
                self.eof_mid_record = error.code() == code::UNEXPECTED_PACKET_LENGTH;
                self.phase = Phase::Failed;
                Err(Error::Truncated)
            }
            code::WARNING_ALERT_RECEIVED => {
                self.warning_alert();
                Ok(true)
            }
            code::FATAL_ALERT_RECEIVED => {
                self.phase = Phase::Failed;
                Err(Error::AlertReceived(self.fatal_alert()))
            }
            _ if error.is_fatal() => {
                self.phase = Phase::Failed;
                self.send_alert_for(error);
                Err(Error::Tls(error))
            }
            _ => {
                log::debug!("ignoring non-fatal receive result: {error}");
                Ok(false)
            }
        }
    }

    /// Refuses the peer's request to renegotiate with a `no_renegotiation`
    /// warning (RFC 5246 §7.2.2), and goes on with the connection, as
    /// servers that do not renegotiate do. A server that is asked again and
    /// again ends the connection.
    fn refuse_renegotiation(&mut self, error: GnutlsError) -> Result<bool, Error> {
        log::debug!("refusing the peer's renegotiation request");
        if let Some(sent) = self.session.refuse_renegotiation() {
            self.alert_sent(sent);
        }
        if self.role == Role::Client {
            return Ok(true);
        }
        self.refused_renegotiations += 1;
        if self.refused_renegotiations > MAX_REFUSED_RENEGOTIATIONS {
            self.phase = Phase::Failed;
            return Err(Error::Tls(error));
        }
        self.refused_hello_pending = true;
        Ok(true)
    }

    /// Encrypts all of `data` into the outgoing ciphertext. Only once the
    /// handshake is complete.
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.phase != Phase::Established || self.closed {
            return Err(Error::InvalidState("TLS is not established for writing"));
        }
        let mut offset = 0;
        while offset < data.len() {
            offset += self.send_record(&data[offset..])?;
        }
        Ok(())
    }

    /// One `gnutls_record_send`, retried as GnuTLS documents: after AGAIN or
    /// INTERRUPTED, call again with no data to finish the same record.
    fn send_record(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut result = self.session.send(data);
        for _ in 0..SEND_RETRIES {
            match result {
                Err(e) if e.code() == code::AGAIN || e.code() == code::INTERRUPTED => {
                    result = self.session.send(&[])
                }
                _ => break,
            }
        }
        if result.is_ok() {
            self.records.1 += 1;
        }
        result.map_err(|e| {
            self.phase = Phase::Failed;
            Error::Tls(e)
        })
    }

    /// Queues `close_notify`: we send no more data.
    pub(crate) fn close(&mut self) {
        if self.closed || self.phase != Phase::Established {
            return;
        }
        self.closed = true;
        if let Err(e) = self.session.bye() {
            log::debug!("close_notify not sent: {e}");
        }
    }

    /// The next event, oldest first. Once none is left, the queue gives
    /// its memory back: events come with the handshake, alerts and the
    /// close, not with data.
    pub(crate) fn next_event(&mut self) -> Option<EngineEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
        event
    }

    /// Whether application data may flow.
    pub(crate) fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// The peer's certificate chain, leaf first (empty when the peer
    /// authenticated with a raw public key or a pre-shared key).
    pub(crate) fn peer_certificate_chain(&self) -> Vec<Certificate> {
        if self.peer_uses_raw_public_key() {
            return Vec::new();
        }
        self.session
            .peer_certificates()
            .iter()
            .filter_map(|der| Certificate::from_der(der).ok())
            .collect()
    }

    /// Every problem verification found (including ignored ones).
    pub(crate) fn peer_verify_errors(&self) -> &[SslError] {
        &self.peer_verify_errors
    }

    /// The negotiated protocol version.
    pub(crate) fn protocol(&self) -> Option<SslProtocol> {
        self.is_established()
            .then(|| SslProtocol::from_gnutls_name(self.session.protocol_name()))
            .flatten()
    }

    /// The negotiated cipher suite's name.
    pub(crate) fn cipher_suite(&self) -> Option<String> {
        self.is_established()
            .then(|| self.session.cipher_suite_name())
    }

    /// The negotiated key exchange group ("X25519").
    pub(crate) fn group(&self) -> Option<&'static str> {
        self.is_established()
            .then(|| self.session.group_name())
            .filter(|g| !g.is_empty())
    }

    /// The negotiated bulk cipher's name ("AES-128-GCM").
    pub(crate) fn cipher(&self) -> Option<&'static str> {
        self.is_established().then(|| self.session.cipher_name())
    }

    /// The protocol ALPN selected, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.session.alpn_protocol()
    }

    /// The OCSP response the server stapled (DER), if any.
    pub(crate) fn ocsp_response(&self) -> Option<Vec<u8>> {
        self.session.ocsp_response()
    }

    /// Records of data decrypted and sealed so far.
    pub(crate) fn records(&self) -> (u64, u64) {
        self.records
    }

    /// Whether the peer's stream ended in the middle of a record.
    pub(crate) fn ended_mid_record(&self) -> bool {
        self.eof_mid_record
    }

    /// Whether the session was resumed.
    pub(crate) fn is_resumed(&self) -> bool {
        self.is_established() && self.session.is_resumed()
    }
}

/// The earliest expiry date in `chain` (DER); `None` if a certificate does
/// not parse.
fn earliest_expiry(chain: &[&[u8]]) -> Option<SystemTime> {
    chain
        .iter()
        .map(|der| Certificate::from_der(der).ok().map(|c| c.expiry_date()))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// A trust-on-first-use problem, which storing the peer's key answers.
fn is_known_key_problem(error: &SslError) -> bool {
    matches!(
        error.kind(),
        SslErrorKind::PublicKeyUnknown | SslErrorKind::PublicKeyChanged
    )
}
