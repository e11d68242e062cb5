//! [`Datagrams`]: what a DTLS session's transport holds instead of byte
//! streams: whole datagrams received, not yet pulled by GnuTLS, and whole
//! datagrams GnuTLS pushed, not yet sent.
//!
//! With `GNUTLS_DATAGRAM`, each pull must return exactly one datagram and
//! each push (or vectored push) call is one datagram; `transport.rs` routes
//! its callbacks here. This file only keeps the two queues: it knows
//! nothing of sockets, and never sees plaintext (only ciphertext crosses
//! the transport).

use std::collections::VecDeque;

/// A DTLS record header's length (RFC 6347 §4.1): a datagram shorter than
/// this holds no record.
const RECORD_HEADER: usize = 13;

/// The datagram queues of one DTLS session.
#[derive(Debug, Default)]
pub(crate) struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    /// The bytes in `incoming`.
    incoming_bytes: usize,
    outgoing: VecDeque<Vec<u8>>,
}

impl Datagrams {
    /// Queues a datagram received from the peer; one too short to hold a
    /// record is dropped, as DTLS drops invalid records (RFC 6347
    /// §4.1.2.7). An empty one must never reach GnuTLS: a pull of 0 bytes
    /// is the end of the stream to it, which would end the association for
    /// anyone who can send one datagram from the peer's address.
    pub(crate) fn receive(&mut self, datagram: Vec<u8>) {
        if datagram.len() < RECORD_HEADER {
            log::trace!("DTLS: a {}-byte datagram dropped", datagram.len());
            return;
        }
        self.incoming_bytes += datagram.len();
        self.incoming.push_back(datagram);
    }

    /// The bytes received and not yet pulled by GnuTLS.
    pub(crate) fn incoming_len(&self) -> usize {
        self.incoming_bytes
    }

    /// Whether a received datagram waits for GnuTLS.
    pub(crate) fn has_incoming(&self) -> bool {
        !self.incoming.is_empty()
    }

    /// How many received datagrams wait for GnuTLS.
    pub(crate) fn incoming_count(&self) -> usize {
        self.incoming.len()
    }

    /// Hands GnuTLS the next datagram, cut to `out`'s length (GnuTLS offers
    /// room for the largest record it accepts, so a cut datagram is one it
    /// would refuse anyway); `None` when none is queued.
    pub(crate) fn pull(&mut self, out: &mut [u8]) -> Option<usize> {
        let datagram = self.incoming.pop_front()?;
        self.incoming_bytes -= datagram.len();
        let n = datagram.len().min(out.len());
        out[..n].copy_from_slice(&datagram[..n]);
        Some(n)
    }

    /// Queues one datagram GnuTLS pushed.
    pub(crate) fn push(&mut self, datagram: Vec<u8>) {
        self.outgoing.push_back(datagram);
    }

    /// The next datagram to send, left queued (see
    /// [`sent`](Self::sent)).
    pub(crate) fn next_outgoing(&self) -> Option<&[u8]> {
        self.outgoing.front().map(Vec::as_slice)
    }

    /// The datagram [`next_outgoing`](Self::next_outgoing) showed went out.
    pub(crate) fn sent(&mut self) {
        self.outgoing.pop_front();
    }

    /// How many datagrams wait to be sent.
    #[cfg(test)]
    pub(crate) fn outgoing_count(&self) -> usize {
        self.outgoing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pull_returns_one_whole_datagram_and_each_push_stays_one() {
        let mut d = Datagrams::default();
        d.receive(b"first record.".to_vec());
        d.receive(b"second record!".to_vec());
        assert_eq!(d.incoming_len(), 27);
        let mut out = [0u8; 64];
        assert_eq!(d.pull(&mut out), Some(13));
        assert_eq!(&out[..13], b"first record.");
        let mut small = [0u8; 3];
        assert_eq!(d.pull(&mut small), Some(3), "cut to the room given");
        assert_eq!(d.pull(&mut out), None);
        assert!(!d.has_incoming());
        assert_eq!(d.incoming_len(), 0);
        d.push(b"a".to_vec());
        d.push(b"bc".to_vec());
        assert_eq!(d.outgoing_count(), 2);
        assert_eq!(d.next_outgoing(), Some(&b"a"[..]));
        d.sent();
        assert_eq!(d.next_outgoing(), Some(&b"bc"[..]));
    }

    #[test]
    fn a_datagram_too_short_for_a_record_is_dropped() {
        let mut d = Datagrams::default();
        d.receive(Vec::new());
        d.receive(vec![0x17; 12]);
        assert!(!d.has_incoming(), "an empty pull would end the session");
        d.receive(vec![0x17; 13]);
        assert_eq!(d.incoming_count(), 1);
    }
}
