//! [`SendQueue`]: the ciphertext waiting for the network, in a ring.
//!
//! GnuTLS appends records at the tail while the kernel takes from the head,
//! during a bulk transfer both at once and with much of the queue live. A
//! contiguous queue must move its live bytes to the front whenever its tail
//! reaches the end (at steady state about one extra copy of every byte); a
//! ring never moves them: it hands the kernel its oldest contiguous region
//! per write (two writes when the live bytes wrap, once per trip round the
//! ring). Plain writes, not `writev`: std sends them with `MSG_NOSIGNAL`, so
//! a peer's reset is an error, never a `SIGPIPE`. It grows geometrically
//! when full (moving the live bytes once per doubling) and gives its memory
//! back when it drains, sharing [`ByteQueue`](crate::buffer::ByteQueue)'s
//! per-thread pool. When it fills again it starts at the size its previous
//! fill reached: a bulk sender drains and refills its ring on every
//! writable edge, and growing it from the smallest size each time would
//! copy every byte once more and cycle through cache-cold buffers.
//!
//! It holds only ciphertext, so it gives its memory back without wiping it
//! (see "Wiping" in [`buffer`](crate::buffer): a buffer it took from the
//! pool holds no plaintext either).
//!
//! It owns bytes and nothing else: no socket, no TLS.

use std::io;

use crate::buffer::{give_pooled, take_pooled, Drain, MIN_CAPACITY};

/// A FIFO of bytes over a ring buffer: append at the tail, drain from the
/// head.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// Always fully initialised: `buf.len()` is the capacity.
    buf: Vec<u8>,
    /// Where the oldest byte is.
    head: usize,
    /// How many bytes are queued.
    len: usize,
    /// The most bytes queued since the queue last drained.
    peak: usize,
    /// What `peak` was when the queue last drained: the size a refill
    /// starts at.
    previous_peak: usize,
}

impl SendQueue {
    /// An empty queue that holds no memory.
    pub(crate) const fn new() -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            len: 0,
            peak: 0,
            previous_peak: 0,
        }
    }

    /// Number of bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The queued bytes, oldest first, as one or two slices.
    pub(crate) fn as_slices(&self) -> (&[u8], &[u8]) {
        let first_end = (self.head + self.len).min(self.buf.len());
        let first = &self.buf[self.head..first_end];
        let second = &self.buf[..self.len - first.len()];
        (first, second)
    }

    /// Appends `data`.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.buf.len() - self.len < data.len() {
            self.grow(self.len + data.len());
        }
        let capacity = self.buf.len();
        let tail = (self.head + self.len) % capacity;
        let (before_end, wrapped) = data.split_at(data.len().min(capacity - tail));
        self.buf[tail..tail + before_end.len()].copy_from_slice(before_end);
        self.buf[..wrapped.len()].copy_from_slice(wrapped);
        self.len += data.len();
        self.peak = self.peak.max(self.len);
    }

    /// Removes `n` bytes from the head (at most [`len`](Self::len)).
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 {
            self.release();
            return;
        }
        self.head = (self.head + n) % self.buf.len();
    }

    /// Removes everything and returns it as a vector (for the in-memory
    /// engine pairs of the tests and fuzz targets).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let (first, second) = self.as_slices();
        let out = [first, second].concat();
        self.release();
        out
    }

    /// Moves the live bytes to the front of a buffer of at least `needed`
    /// bytes.
    fn grow(&mut self, needed: usize) {
        let capacity = needed
            .max(self.previous_peak)
            .max(MIN_CAPACITY)
            .next_power_of_two();
        let mut bigger = take_pooled(capacity).unwrap_or_else(|| vec![0; capacity]);
        let (first, second) = self.as_slices();
        bigger[..first.len()].copy_from_slice(first);
        bigger[first.len()..self.len].copy_from_slice(second);
        give_pooled(std::mem::replace(&mut self.buf, bigger));
        self.head = 0;
    }

    /// Empties the queue and gives its memory back.
    fn release(&mut self) {
        give_pooled(std::mem::take(&mut self.buf));
        self.head = 0;
        self.len = 0;
        self.previous_peak = std::mem::take(&mut self.peak);
    }
}

impl Drain for SendQueue {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn front_len(&self) -> usize {
        self.as_slices().0.len()
    }

    /// Writes the oldest contiguous region with one `write` and removes
    /// what was written (the caller calls again for the wrapped rest).
    fn drain_to(&mut self, sink: &mut impl io::Write) -> io::Result<usize> {
        let n = sink.write(self.as_slices().0)?;
        self.consume(n);
        Ok(n)
    }
}

impl Drop for SendQueue {
    fn drop(&mut self) {
        give_pooled(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends and drains in uneven steps, through wrap-arounds and growth,
    /// and checks the order against a plain vector.
    #[test]
    fn fifo_order_survives_wrapping_and_growth() {
        let mut q = SendQueue::new();
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0u8;
        for round in 0..400usize {
            let chunk: Vec<u8> = (0..(round * 37) % 9000)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            q.extend(&chunk);
            expected.extend(chunk);
            if round % 16 == 0 {
                let (first, second) = q.as_slices();
                assert!(first.iter().chain(second).eq(expected.iter()));
            }
            let mut sink = Vec::new();
            let mut limited = Limited(&mut sink, (round * 53) % 10_000);
            let n = q.drain_to(&mut limited).unwrap();
            let drained: Vec<u8> = expected.drain(..n).collect();
            assert_eq!(sink, drained);
            assert_eq!(q.len(), expected.len());
        }
        assert_eq!(q.take_all(), expected.into_iter().collect::<Vec<_>>());
        assert!(q.is_empty());
    }

    #[test]
    fn a_wrapped_queue_drains_in_two_writes_in_order() {
        let mut q = SendQueue::new();
        q.extend(&[1; 3000]);
        q.consume(2500);
        q.extend(&[2; 3000]); // 500 + 3000 live in 4096: wraps
        let (first, second) = q.as_slices();
        assert_eq!((first.len(), second.len()), (1596, 1904));
        let mut sink = Vec::new();
        assert_eq!(q.drain_to(&mut sink).unwrap(), 1596);
        assert_eq!(q.drain_to(&mut sink).unwrap(), 1904);
        assert_eq!(sink, [vec![1; 500], vec![2; 3000]].concat());
        assert!(q.is_empty());
    }

    #[test]
    fn draining_releases_memory() {
        let mut q = SendQueue::new();
        q.extend(&[0; 100_000]);
        q.consume(100_000);
        assert_eq!(q.buf.capacity(), 0);
    }

    /// A refill starts at the size the previous fill reached (one buffer,
    /// no regrowth); a small fill after a large one starts small again.
    #[test]
    fn a_refill_starts_at_the_previous_peak() {
        let mut q = SendQueue::new();
        for _ in 0..20 {
            q.extend(&[0; 16 * 1024]);
        }
        q.consume(usize::MAX);
        q.extend(&[0; 16 * 1024]);
        assert_eq!(q.buf.len(), 512 * 1024);
        q.consume(usize::MAX);
        q.extend(&[0; 100]);
        assert_eq!(q.buf.len(), 16 * 1024);
    }

    /// A writer that takes at most `.1` bytes in all.
    struct Limited<'a>(&'a mut Vec<u8>, usize);

    impl io::Write for Limited<'_> {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let n = data.len().min(self.1);
            self.0.extend_from_slice(&data[..n]);
            self.1 -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
