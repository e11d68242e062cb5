//! [`WriteProgress`]: which written plaintext has reached the network, for
//! `bytes_written`, `bytes_to_write` and the write watermark signals.
//!
//! Plaintext is encrypted in chunks into the outgoing ciphertext queue; a
//! chunk counts as written once every ciphertext byte up to its end has been
//! handed to the kernel. Positions are counted over the whole outgoing
//! stream, so handshake messages and alerts in between are accounted for.

use std::collections::VecDeque;

/// Progress of written plaintext through encryption and the network.
#[derive(Debug, Default)]
pub(super) struct WriteProgress {
    /// `(stream position of the chunk's last ciphertext byte, plaintext
    /// length)` for chunks not fully sent, oldest first.
    in_flight: VecDeque<(u64, u64)>,
    /// Ciphertext bytes sent so far on this connection.
    sent: u64,
    /// Plaintext bytes in `in_flight`.
    unflushed: u64,
}

impl WriteProgress {
    /// `plain` bytes were encrypted; the outgoing queue now holds
    /// `outgoing_len` bytes.
    pub(super) fn encrypted(&mut self, plain: usize, outgoing_len: usize) {
        let end = self.sent + outgoing_len as u64;
        match self.in_flight.back_mut() {
            // Chunks that end together (same send) merge: no growth.
            Some((last_end, last_plain)) if *last_end == end => *last_plain += plain as u64,
            _ => self.in_flight.push_back((end, plain as u64)),
        }
        self.unflushed += plain as u64;
    }

    /// `bytes` of ciphertext were sent; returns the plaintext bytes that are
    /// now wholly on the network.
    pub(super) fn sent(&mut self, bytes: usize) -> u64 {
        self.sent += bytes as u64;
        let mut written = 0;
        while let Some(&(end, plain)) = self.in_flight.front() {
            if end > self.sent {
                break;
            }
            written += plain;
            self.in_flight.pop_front();
        }
        self.unflushed -= written;
        written
    }

    /// Plaintext encrypted but not yet wholly sent.
    pub(super) fn unflushed(&self) -> u64 {
        self.unflushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_counts_as_written_once_its_ciphertext_is_sent() {
        let mut p = WriteProgress::default();
        // 100 bytes of handshake already queued, then two chunks.
        p.encrypted(1000, 100 + 1030);
        p.encrypted(500, 100 + 1030 + 520);
        assert_eq!(p.unflushed(), 1500);
        assert_eq!(p.sent(1000), 0);
        assert_eq!(p.sent(130), 1000);
        assert_eq!(p.sent(519), 0);
        assert_eq!(p.sent(1), 500);
        assert_eq!(p.unflushed(), 0);
    }
}
