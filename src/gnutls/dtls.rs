//! DTLS on a [`Session`] made with [`Framing::Datagram`](super::Framing):
//! the handshake's retransmission timer, the path MTU, and the state a
//! cookie exchange hands to the session it admits ([`Prestate`]). The
//! cookies themselves are made and checked in `cookie.rs`.
//!
//! GnuTLS keeps the retransmission timer but, in non-blocking mode, never
//! waits: it retransmits when `gnutls_handshake` is called after the timer
//! ran out. The layer above asks [`Session::retransmission_due`] and calls
//! the handshake again then; nothing here sleeps or spawns.

use std::ffi::c_uint;
use std::time::Duration;

use gnutls_sys as sys;

use super::session::Session;

/// The first retransmission timeout (RFC 6347 §4.2.4.1 recommends 1 s);
/// GnuTLS doubles it on each retransmission of a flight.
pub(crate) const DEFAULT_RETRANSMISSION: Duration = Duration::from_secs(1);

/// GnuTLS's total handshake timeout for DTLS sessions, in milliseconds:
/// about 25 days, standing for "never". GnuTLS 3.7 stores
/// `GNUTLS_INDEFINITE_TIMEOUT` as 0, which its DTLS code reads as a timeout
/// that has already passed; the socket keeps its own handshake deadline.
const NO_TOTAL_TIMEOUT: c_uint = c_uint::MAX / 2;

/// The smallest MTU accepted: GnuTLS subtracts its record and handshake
/// headers from the MTU without checking for underflow.
pub(crate) const MIN_MTU: usize = 256;

/// The largest path MTU GnuTLS keeps (it caps larger values to this).
pub(crate) const MAX_MTU: usize = 16_384;

/// What a verified cookie tells the session that answers its ClientHello:
/// the sequence numbers to continue from (`gnutls_dtls_prestate_st`).
#[derive(Clone, Copy)]
pub(crate) struct Prestate(pub(super) sys::gnutls_dtls_prestate_st);

impl Prestate {
    /// The state before any cookie was verified, with the record sequence
    /// number a HelloVerifyRequest must echo (RFC 6347 §4.2.1; GnuTLS
    /// writes its low byte).
    pub(crate) fn new(record_seq: u8) -> Self {
        Self(sys::gnutls_dtls_prestate_st {
            record_seq: c_uint::from(record_seq),
            hsk_read_seq: 0,
            hsk_write_seq: 0,
        })
    }
}

impl Session {
    /// Sets GnuTLS's DTLS timers for a new session: the default first
    /// retransmission, no total timeout of its own.
    pub(super) fn install_datagram_timeouts(&mut self) {
        self.set_retransmission_timeout(DEFAULT_RETRANSMISSION);
    }

    /// The first retransmission timeout of each flight (GnuTLS doubles it
    /// for every retransmission of the same flight).
    pub(crate) fn set_retransmission_timeout(&mut self, first: Duration) {
        let ms = c_uint::try_from(first.as_millis().max(1)).unwrap_or(NO_TOTAL_TIMEOUT);
        // SAFETY: the session is live; this only stores two numbers.
        unsafe { sys::gnutls_dtls_set_timeouts(self.as_raw(), ms, NO_TOTAL_TIMEOUT) }
    }

    /// How long until the flight sent last is due for retransmission
    /// (`gnutls_dtls_get_timeout`): the next `gnutls_handshake` after that
    /// sends it again, unless the peer's answer came first.
    pub(crate) fn retransmission_due(&self) -> Duration {
        // SAFETY: the session is live; this only reads its timer.
        let ms = unsafe { sys::gnutls_dtls_get_timeout(self.as_raw()) };
        Duration::from_millis(u64::from(ms))
    }

    /// Sets the path MTU: the largest datagram, without IP and UDP headers
    /// (at least [`MIN_MTU`]; GnuTLS caps it at 16384).
    pub(crate) fn set_mtu(&mut self, mtu: usize) {
        let mtu = c_uint::try_from(mtu.max(MIN_MTU)).unwrap_or(c_uint::MAX);
        // SAFETY: the session is live; this only stores the number.
        unsafe { sys::gnutls_dtls_set_mtu(self.as_raw(), mtu) }
    }

    /// The path MTU in force.
    pub(crate) fn mtu(&self) -> usize {
        // SAFETY: the session is live; this only reads a number.
        unsafe { sys::gnutls_dtls_get_mtu(self.as_raw()) as usize }
    }

    /// The largest plaintext one datagram can carry with the current
    /// record protection (before the handshake: the MTU less the record
    /// header).
    pub(crate) fn data_mtu(&self) -> usize {
        // SAFETY: the session is live; this only reads its parameters.
        unsafe { sys::gnutls_dtls_get_data_mtu(self.as_raw()) as usize }
    }

    /// How many received records GnuTLS discarded so far: duplicates,
    /// records that failed authentication, records of an unknown epoch.
    pub(crate) fn discarded(&self) -> u32 {
        // SAFETY: the session is live; this only reads a counter.
        unsafe { sys::gnutls_record_get_discarded(self.as_raw()) }
    }

    /// Continues from a verified cookie exchange: the ServerHello follows
    /// the HelloVerifyRequest's sequence numbers. Only on a new server
    /// session, before its handshake starts.
    pub(crate) fn set_prestate(&mut self, prestate: Prestate) {
        let mut raw = prestate.0;
        // SAFETY: the session is live; GnuTLS copies the numbers.
        unsafe { sys::gnutls_dtls_prestate_set(self.as_raw(), &mut raw) }
    }
}
