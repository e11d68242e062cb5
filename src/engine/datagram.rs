//! DTLS in the engine: the same session, handshake, judgement and trust
//! invariant as TLS (`mod.rs`), over datagrams instead of a byte stream.
//!
//! What differs is what goes in and out. Each datagram received is queued
//! whole ([`Engine::receive_datagram`]) and handed to GnuTLS as one pull;
//! each application record decrypted comes out as one datagram of
//! plaintext ([`Engine::process_datagrams`]); each one written is sealed
//! into one record that fits the data MTU ([`Engine::send_datagram`]), and
//! each push of GnuTLS's is one datagram to send. GnuTLS drops records
//! that fail authentication, duplicates and replays without ending the
//! session. The handshake's lost flights are sent again when the caller
//! processes after [`Engine::retransmission_due`]: there is no clock here.

use std::collections::VecDeque;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{Engine, Phase, RECORD_ROOM};
use crate::config::{ServerKey, SslConfiguration};
use crate::error::{Error, Result};
use crate::gnutls::{code, Framing, Prestate};

impl Engine {
    /// A DTLS client for `server` (remembered, for resumption, apart from
    /// TLS sessions to the same host and port).
    pub(crate) fn dtls_client(config: &SslConfiguration, server: ServerKey) -> Result<Self> {
        Self::client_framed(config, server.datagram(), Framing::Datagram)
    }

    /// A DTLS server for a client whose cookie was verified: it continues
    /// from the cookie exchange's `prestate` and starts from `hello`, the
    /// ClientHello that carried the cookie.
    pub(crate) fn dtls_server(
        config: &SslConfiguration,
        prestate: Prestate,
        hello: Vec<u8>,
    ) -> Result<Self> {
        let mut engine = Self::server_framed(config, Framing::Datagram)?;
        engine.session.set_prestate(prestate);
        engine.receive_datagram(hello);
        Ok(engine)
    }

    /// Queues a datagram received from the peer.
    pub(crate) fn receive_datagram(&mut self, datagram: Vec<u8>) {
        if let Some(datagrams) = self.session.transport_mut().datagrams.as_mut() {
            datagrams.receive(datagram);
        }
    }

    /// How many received datagrams wait to be processed.
    pub(crate) fn incoming_datagrams(&self) -> usize {
        let datagrams = self.session.transport().datagrams.as_ref();
        datagrams.map_or(0, |d| d.incoming_count())
    }

    /// The next datagram to send, if any (it stays queued until
    /// [`datagram_sent`](Self::datagram_sent)).
    pub(crate) fn next_datagram(&self) -> Option<&[u8]> {
        self.session.transport().datagrams.as_ref()?.next_outgoing()
    }

    /// The datagram [`next_datagram`](Self::next_datagram) gave went out.
    pub(crate) fn datagram_sent(&mut self) {
        if let Some(datagrams) = self.session.transport_mut().datagrams.as_mut() {
            datagrams.sent();
        }
    }

    /// How many datagrams wait to be sent.
    #[cfg(test)]
    pub(crate) fn outgoing_datagrams(&self) -> usize {
        let datagrams = self.session.transport().datagrams.as_ref();
        datagrams.map_or(0, |d| d.outgoing_count())
    }

    /// Advances the handshake (sending a flight again when its time came)
    /// and decrypts every application record received into `records`, one
    /// entry per record.
    pub(crate) fn process_datagrams(
        &mut self,
        records: &mut VecDeque<Zeroizing<Vec<u8>>>,
    ) -> Result<()> {
        self.drive(|engine| engine.decrypt_records(records))
    }

    /// Decrypts records until GnuTLS has nothing left: a call that moved
    /// nothing (no datagram taken, no record delivered or dropped) ends it.
    fn decrypt_records(&mut self, records: &mut VecDeque<Zeroizing<Vec<u8>>>) -> Result<()> {
        let mut room = Zeroizing::new(vec![0u8; RECORD_ROOM]);
        while !self.peer_closed {
            let before = (self.buffered(), self.session.discarded());
            match self.session.recv(&mut room) {
                Ok(0) => self.close_notify_received(),
                Ok(n) => {
                    self.records.0 += 1;
                    records.push_back(Zeroizing::new(room[..n].to_vec()));
                }
                // A lost flight is answered inside GnuTLS; a session's
                // first handshake timer never ends it once established.
                Err(e) if matches!(e.code(), code::AGAIN | code::TIMEDOUT) => {
                    if (self.buffered(), self.session.discarded()) == before {
                        break;
                    }
                }
                Err(e) => {
                    if !self.on_receive_error(e, before.0)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals `data` into one record, one datagram. Refused, with nothing
    /// sent, when it does not fit the data MTU (GnuTLS itself would only
    /// refuse records above 16 KiB and leave the datagram to IP
    /// fragmentation or the kernel's refusal) or is empty (DTLS 1.2 drops
    /// empty records on receipt).
    pub(crate) fn send_datagram(&mut self, data: &[u8]) -> Result<()> {
        let limit = self.session.data_mtu();
        if data.len() > limit {
            return Err(Error::DatagramTooLarge {
                size: data.len(),
                limit,
            });
        }
        if data.is_empty() {
            return Err(Error::InvalidInput(
                "an empty datagram: DTLS would deliver nothing".into(),
            ));
        }
        self.send(data)
    }

    /// While the handshake waits for the peer: how long until the flight
    /// sent last is due again (then call
    /// [`process_datagrams`](Self::process_datagrams)).
    pub(crate) fn retransmission_due(&self) -> Option<Duration> {
        (self.phase == Phase::Handshaking && self.session.transport().datagrams.is_some())
            .then(|| self.session.retransmission_due())
    }

    /// The first retransmission timeout of each flight (doubled for each
    /// retransmission of the same flight).
    pub(crate) fn set_retransmission_timeout(&mut self, first: Duration) {
        self.session.set_retransmission_timeout(first);
    }

    /// Sets the path MTU (see [`Session::set_mtu`](crate::gnutls::Session::set_mtu)).
    pub(crate) fn set_mtu(&mut self, mtu: usize) {
        self.session.set_mtu(mtu);
    }

    /// The path MTU in force.
    pub(crate) fn mtu(&self) -> usize {
        self.session.mtu()
    }

    /// The largest datagram of plaintext [`send_datagram`](Self::send_datagram)
    /// takes now (before the handshake, an upper bound).
    pub(crate) fn data_mtu(&self) -> usize {
        self.session.data_mtu()
    }

    /// The negotiated DTLS version as GnuTLS names it ("DTLS1.2"), once
    /// established.
    pub(crate) fn dtls_version(&self) -> Option<&'static str> {
        self.is_established().then(|| self.session.protocol_name())
    }
}
