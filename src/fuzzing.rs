//! Entry points for fuzz targets and micro-benchmarks (feature `fuzzing`).
//!
//! Not part of the stable API: it exposes the crate-private TLS engine (and
//! its DTLS side with a server's cookie check), proxy negotiation and
//! signal emission so that `fuzz/` can feed them
//! arbitrary bytes and `benches/` can time them, without sockets.
//! Everything here is safe; misuse yields errors, never panics.

use std::collections::VecDeque;

use zeroize::Zeroizing;

use crate::buffer::ByteQueue;
use crate::config::{ServerKey, SslConfiguration};
use crate::dtls::DtlsClientVerifier;
use crate::engine::{Engine, EngineEvent};
use crate::error::Error;
use crate::gnutls::Prestate;
use crate::proxy::{Negotiation, Progress, Proxy};
use crate::reactor::Reactor;
use crate::signal::{emit, Signal};

/// A TLS engine driven from byte slices.
pub struct FuzzEngine {
    engine: Engine,
    plaintext: ByteQueue,
}

impl FuzzEngine {
    /// A client engine for `host`, verifying against `host`.
    pub fn client(config: &SslConfiguration, host: &str) -> Result<Self, Error> {
        Ok(Self::wrap(Engine::client(
            config,
            ServerKey::new(host, 443, host),
        )?))
    }

    /// A server engine.
    pub fn server(config: &SslConfiguration) -> Result<Self, Error> {
        Ok(Self::wrap(Engine::server(config)?))
    }

    fn wrap(engine: Engine) -> Self {
        Self {
            engine,
            plaintext: ByteQueue::new(),
        }
    }

    /// Feeds ciphertext from the peer and processes it. A pause for
    /// certificate problems is resolved at once with `accept_problems`.
    pub fn receive(&mut self, ciphertext: &[u8], accept_problems: bool) -> Result<(), Error> {
        self.engine.incoming().extend(ciphertext);
        self.process(accept_problems)
    }

    /// The peer's stream ended.
    pub fn peer_eof(&mut self, accept_problems: bool) -> Result<(), Error> {
        self.engine.peer_eof();
        self.process(accept_problems)
    }

    fn process(&mut self, accept_problems: bool) -> Result<(), Error> {
        self.engine.process(&mut self.plaintext, usize::MAX)?;
        while let Some(event) = self.engine.next_event() {
            if let EngineEvent::SslErrors(_) = event {
                if accept_problems {
                    self.engine.ignore_all_ssl_errors();
                }
                self.engine.resolve_ssl_errors();
                self.engine.process(&mut self.plaintext, usize::MAX)?;
            }
        }
        Ok(())
    }

    /// Encrypts application data (fails before the handshake completes).
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.engine.send(data)
    }

    /// Sends `close_notify`.
    pub fn close(&mut self) {
        self.engine.close();
    }

    /// Takes the ciphertext to send to the peer.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        self.engine.outgoing().take_all()
    }

    /// Takes the plaintext received so far.
    pub fn take_plaintext(&mut self) -> Vec<u8> {
        self.plaintext.take_all()
    }

    /// Whether the handshake completed.
    pub fn is_established(&self) -> bool {
        self.engine.is_established()
    }
}

/// What a DTLS server does with untrusted datagrams from one address: the
/// stateless cookie check, then a session fed them as if the first one's
/// cookie had been good (a fuzzer cannot forge a cookie).
pub struct FuzzDtlsServer {
    config: SslConfiguration,
    verifier: DtlsClientVerifier,
    engine: Option<Engine>,
    records: VecDeque<Zeroizing<Vec<u8>>>,
}

impl FuzzDtlsServer {
    /// A server with `config`'s certificate and a random cookie secret.
    pub fn new(config: &SslConfiguration) -> Result<Self, Error> {
        Ok(Self {
            config: config.clone(),
            verifier: DtlsClientVerifier::new()?,
            engine: None,
            records: VecDeque::new(),
        })
    }

    /// Takes one datagram from 127.0.0.1:40000; returns whether its cookie
    /// admitted it (never, for a fuzzer's input).
    pub fn receive(&mut self, datagram: &[u8]) -> Result<bool, Error> {
        let from = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
        let admitted = crate::dtls::admits(&self.verifier, datagram, from);
        let engine = match self.engine.as_mut() {
            Some(engine) => {
                engine.receive_datagram(datagram.to_vec());
                engine
            }
            None => {
                let engine =
                    Engine::dtls_server(&self.config, Prestate::new(0), datagram.to_vec())?;
                self.engine.insert(engine)
            }
        };
        engine.process_datagrams(&mut self.records)?;
        while engine.next_datagram().is_some() {
            engine.datagram_sent();
        }
        while engine.next_event().is_some() {}
        Ok(admitted)
    }

    /// Whether the session's handshake completed.
    pub fn is_established(&self) -> bool {
        self.engine.as_ref().is_some_and(Engine::is_established)
    }

    /// How many application records the session delivered.
    pub fn records(&self) -> usize {
        self.records.len()
    }
}

/// Runs a proxy negotiation for `host:443` through `proxy`, feeding the
/// proxy's `replies` one by one. Returns whether the tunnel opened.
pub fn proxy_negotiation(proxy: &Proxy, host: &str, replies: &[&[u8]]) -> Result<bool, Error> {
    let mut out = ByteQueue::new();
    let address = "192.0.2.1".parse().ok();
    let mut negotiation = Negotiation::start(proxy, host, 443, address, &mut out)?;
    let mut input = ByteQueue::new();
    for reply in replies {
        input.extend(reply);
        match negotiation.receive(&mut input, &mut out)? {
            Progress::Done => return Ok(true),
            Progress::AuthenticationRequired(_) => return Ok(false),
            Progress::NeedMore => {}
        }
    }
    Ok(false)
}

/// An object with one signal, to time emission without sockets.
pub struct SignalBench {
    signal: Signal<SignalBench, u64>,
    /// What the connected slots add up.
    pub total: u64,
}

impl SignalBench {
    /// A signal with `slots` connected slots, each adding the payload to
    /// [`total`](Self::total).
    pub fn new(slots: usize) -> Self {
        let mut bench = Self {
            signal: Signal::default(),
            total: 0,
        };
        for _ in 0..slots {
            bench
                .signal
                .connect(|b: &mut SignalBench, _, &n| b.total += n);
        }
        bench
    }

    /// Emits the signal once with `payload`.
    pub fn emit(&mut self, reactor: &mut Reactor, payload: u64) {
        emit(self, reactor.context(), |b| &mut b.signal, &payload);
    }
}
