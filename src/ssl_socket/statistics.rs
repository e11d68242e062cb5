//! [`ConnectionStatistics`]: what one connection moved and how it went —
//! bytes on each layer, records, the handshake's duration, resumption, the
//! time to the first byte of data, and how the peer's stream ended
//! ([`PeerClose`]).
//!
//! The socket updates the counters as `drive.rs` moves bytes; the program
//! reads them at any time ([`SslSocket::statistics`](super::SslSocket::statistics))
//! and gets them with the final event (`disconnected`). This file only
//! counts.

use std::time::{Duration, Instant};

/// How the peer's side of the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerClose {
    /// TLS `close_notify`: a clean end (or, unencrypted, FIN).
    CloseNotify,
    /// TCP FIN without `close_notify`, between two records: a truncation
    /// (the data received so far is whole records, but may not be all).
    EofAtRecordBoundary,
    /// TCP FIN in the middle of a record: a truncation that cut a record.
    EofMidRecord,
    /// TCP reset.
    Reset,
}

/// What one connection moved and how it went. Counts start at zero with
/// each connection (`connect_to_host*`, or a server's accept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStatistics {
    /// Bytes read from the network (TLS records, or plaintext when
    /// unencrypted; a proxy's answer included).
    pub bytes_received: u64,
    /// Bytes written to the network.
    pub bytes_sent: u64,
    /// Plaintext bytes received (read or not yet read).
    pub plaintext_received: u64,
    /// Plaintext bytes the program wrote that reached the network.
    pub plaintext_sent: u64,
    /// TLS records of data decrypted.
    pub records_received: u64,
    /// TLS records of data sealed.
    pub records_sent: u64,
    /// From the start of the TLS handshake to its completion.
    pub handshake_duration: Option<Duration>,
    /// Whether the handshake resumed an earlier session.
    pub resumed: bool,
    /// From the start of the connection (the call that started it, or the
    /// accept) to the first byte of plaintext received.
    pub time_to_first_byte: Option<Duration>,
    /// How the peer's stream ended, once it did.
    pub peer_close: Option<PeerClose>,
}

/// The counters and the moments they are measured from.
#[derive(Debug)]
pub(super) struct Statistics {
    counts: ConnectionStatistics,
    started: Instant,
    handshake_started: Option<Instant>,
}

impl Default for Statistics {
    fn default() -> Self {
        Self {
            counts: ConnectionStatistics::default(),
            started: Instant::now(),
            handshake_started: None,
        }
    }
}

impl Statistics {
    /// A new connection starts: everything from zero.
    pub(super) fn restart(&mut self) {
        *self = Self::default();
    }

    pub(super) fn network_in(&mut self, bytes: usize) {
        self.counts.bytes_received += bytes as u64;
    }

    pub(super) fn network_out(&mut self, bytes: usize) {
        self.counts.bytes_sent += bytes as u64;
    }

    pub(super) fn plaintext_in(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        if self.counts.time_to_first_byte.is_none() {
            self.counts.time_to_first_byte = Some(self.started.elapsed());
        }
        self.counts.plaintext_received += bytes as u64;
    }

    pub(super) fn plaintext_out(&mut self, bytes: u64) {
        self.counts.plaintext_sent += bytes;
    }

    pub(super) fn handshake_started(&mut self) {
        self.handshake_started = Some(Instant::now());
    }

    pub(super) fn handshake_completed(&mut self, resumed: bool) {
        self.counts.handshake_duration = self.handshake_started.map(|at| at.elapsed());
        self.counts.resumed = resumed;
    }

    /// The peer's stream ended (the first reason found stands).
    pub(super) fn peer_closed(&mut self, how: PeerClose) {
        self.counts.peer_close.get_or_insert(how);
    }

    /// The counts, with the records the TLS session counted.
    pub(super) fn snapshot(&self, records: (u64, u64)) -> ConnectionStatistics {
        ConnectionStatistics {
            records_received: records.0,
            records_sent: records.1,
            ..self.counts.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_the_first_close_reason_stands() {
        let mut stats = Statistics::default();
        stats.network_in(100);
        stats.network_in(50);
        stats.plaintext_in(0);
        assert_eq!(stats.snapshot((0, 0)).time_to_first_byte, None);
        stats.plaintext_in(7);
        stats.plaintext_out(3);
        stats.peer_closed(PeerClose::EofMidRecord);
        stats.peer_closed(PeerClose::Reset);
        let s = stats.snapshot((2, 1));
        assert_eq!(
            (s.bytes_received, s.plaintext_received, s.plaintext_sent),
            (150, 7, 3)
        );
        assert_eq!((s.records_received, s.records_sent), (2, 1));
        assert!(s.time_to_first_byte.is_some());
        assert_eq!(s.peer_close, Some(PeerClose::EofMidRecord));
        stats.restart();
        assert_eq!(stats.snapshot((0, 0)), ConnectionStatistics::default());
    }
}
