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

/// The datagram queues of one DTLS session.
#[derive(Debug, Default)]
pub(crate) struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    /// The bytes in `incoming`.
    incoming_bytes: usize,
    outgoing: VecDeque<Vec<u8>>,
}

impl Datagrams {
    /// Queues a datagram received from the peer.
    pub(crate) fn receive(&mut self, datagram: Vec<u8>) {
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
        d.receive(b"first".to_vec());
        d.receive(b"second!".to_vec());
        assert_eq!(d.incoming_len(), 12);
        let mut out = [0u8; 64];
        assert_eq!(d.pull(&mut out), Some(5));
        assert_eq!(&out[..5], b"first");
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
}
