//! [`ByteQueue`]: a FIFO of bytes over one contiguous allocation.
//!
//! Every byte stream inside a socket (ciphertext in and out, plaintext read
//! and queued for writing) is a `ByteQueue`. It owns its memory and nothing
//! else: it knows no sockets and no TLS. Writers fill the free space at the
//! tail in place (a `read(2)` lands there directly, with no staging copy) and
//! readers take from the head; the live bytes are moved to the front only
//! when the tail runs out of room. A queue gives its allocation back when it
//! drains, so an idle connection holds no buffer memory; large allocations go
//! to a small per-thread pool the next queue that needs room takes from, so
//! a busy connection does not allocate and zero a fresh buffer per event.
//!
//! # Wiping
//!
//! No buffer in the pool, and none given back to the allocator, holds
//! plaintext. A queue wipes the bytes it wrote (or offered to a reader to
//! write) before it lets its buffer go: when it drains, when it moves to a
//! bigger buffer, and on drop. Queues that only ever hold bytes as they
//! travel on the wire ([`ByteQueue::ciphertext`], the transport's incoming
//! ciphertext; the [`SendQueue`](crate::send_queue::SendQueue) ring) are not
//! wiped: an eavesdropper saw those bytes anyway. That keeps the rule
//! above, by induction: a buffer such a queue gives back holds its
//! ciphertext and, past it, whatever the pool gave it, which was zeros or
//! ciphertext. Wiping only the plaintext queues, and only as far as they
//! wrote, costs one `explicit_bzero` pass over each plaintext byte: about
//! 1.1 million instructions per MiB (callgrind), under 1 % of the CPU time
//! of a bulk transfer (wiping the ciphertext too would double that). The
//! wipe is [`gnutls::wipe`](crate::gnutls::wipe) rather than the `zeroize`
//! crate, whose byte-at-a-time writes cost about 9 times as much here.

use std::cell::RefCell;
use std::io;

use crate::gnutls::wipe;

/// The smallest allocation a queue makes when it first needs room.
pub(crate) const MIN_CAPACITY: usize = 4096;

/// Buffers at least this large are pooled when a queue lets them go.
const POOLED_MIN: usize = 16 * 1024;

/// The most bytes the pool keeps per thread.
const POOL_BYTES: usize = 8 * 1024 * 1024;

thread_local! {
    /// Initialised buffers given back by drained queues of this thread (the
    /// reactor's thread), largest last.
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A pooled buffer of exactly `capacity` bytes, if one is free.
pub(crate) fn take_pooled(capacity: usize) -> Option<Vec<u8>> {
    if capacity < POOLED_MIN {
        return None;
    }
    POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        // The most recently given back first: still in cache.
        let index = pool.iter().rposition(|b| b.len() == capacity)?;
        Some(pool.swap_remove(index))
    })
    .ok()
    .flatten()
}

/// Keeps `buf` for reuse if it is large and the pool has room; frees it
/// otherwise.
pub(crate) fn give_pooled(buf: Vec<u8>) {
    if buf.len() < POOLED_MIN {
        return;
    }
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        let held: usize = pool.iter().map(Vec::len).sum();
        if held + buf.len() <= POOL_BYTES {
            pool.push(buf);
        }
    });
}

/// A FIFO of bytes: append at the tail, consume from the head.
#[derive(Debug, Default)]
pub(crate) struct ByteQueue {
    /// Always fully initialised: `buf.len()` is the capacity.
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    /// The end of the bytes of `buf` written, or offered to be written,
    /// since the queue took it: what is wiped when it lets `buf` go.
    touched: usize,
    /// Holds only bytes as they travel on the wire: not wiped.
    ciphertext: bool,
}

impl ByteQueue {
    /// An empty queue that holds no memory; what it held is wiped when it
    /// lets its memory go.
    pub(crate) const fn new() -> Self {
        Self::holding(false)
    }

    /// An empty queue for bytes as they travel on the wire (ciphertext),
    /// never plaintext: its memory is given back without being wiped.
    pub(crate) const fn ciphertext() -> Self {
        Self::holding(true)
    }

    const fn holding(ciphertext: bool) -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            tail: 0,
            touched: 0,
            ciphertext,
        }
    }

    /// Number of bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.tail - self.head
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// The queued bytes, oldest first.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    /// Appends `data`.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        self.spare(data.len())[..data.len()].copy_from_slice(data);
        self.tail += data.len();
        self.touched = self.touched.max(self.tail);
    }

    /// Removes `n` bytes from the head (at most [`len`](Self::len)).
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.tail {
            self.release();
        }
    }

    /// Copies up to `out.len()` bytes from the head into `out` and removes
    /// them; returns how many were copied.
    pub(crate) fn take_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.buf[self.head..self.head + n]);
        self.consume(n);
        n
    }

    /// Removes everything and returns it as a vector.
    pub(crate) fn take_all(&mut self) -> Vec<u8> {
        let out = self.as_slice().to_vec();
        self.release();
        out
    }

    /// Fills the tail from `source` with a single `read` call of at most
    /// `limit` bytes. Returns what `read` returned: `Ok(0)` is end of stream.
    pub(crate) fn fill_from(
        &mut self,
        source: &mut impl io::Read,
        limit: usize,
    ) -> io::Result<usize> {
        self.fill_with(limit, |room| source.read(room))
    }

    /// Offers `fill` up to `limit` bytes of room at the tail and keeps the
    /// first `n` bytes it reports written. Returns `fill`'s result.
    pub(crate) fn fill_with<E>(
        &mut self,
        limit: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let limit = limit.max(1);
        let room_len = self.spare(limit).len().min(limit);
        self.touched = self.touched.max(self.tail + room_len);
        let result = fill(&mut self.buf[self.tail..self.tail + room_len]);
        if let Ok(n) = result {
            self.tail += n.min(room_len);
        }
        if self.is_empty() {
            self.release();
        }
        result
    }

    /// Makes room for at least `additional` more bytes at the tail in one
    /// step, so a burst of appends of known total size moves the live bytes
    /// at most once instead of at every doubling.
    pub(crate) fn reserve(&mut self, additional: usize) {
        if self.buf.len() - self.tail < additional {
            self.make_room(additional);
        }
    }

    /// Returns at least `wanted` bytes of writable room at the tail, moving
    /// the live bytes to the front or growing the allocation as needed.
    fn spare(&mut self, wanted: usize) -> &mut [u8] {
        if self.buf.len() - self.tail < wanted {
            self.make_room(wanted);
        }
        &mut self.buf[self.tail..]
    }

    fn make_room(&mut self, wanted: usize) {
        let live = self.len();
        // Moving the live bytes to the front pays for itself only when it
        // frees at least as much room as it copies (so appends stay
        // amortised O(1)); otherwise the buffer grows.
        if self.head >= live && self.buf.len() - live >= wanted {
            self.buf.copy_within(self.head..self.tail, 0);
            self.head = 0;
            self.tail = live;
            return;
        }
        let capacity = (live + wanted).max(MIN_CAPACITY).next_power_of_two();
        let mut bigger = take_pooled(capacity).unwrap_or_else(|| vec![0; capacity]);
        bigger[..live].copy_from_slice(&self.buf[self.head..self.tail]);
        self.let_go(bigger);
        self.head = 0;
        self.tail = live;
        self.touched = live;
    }

    /// Empties the queue and gives its memory back.
    fn release(&mut self) {
        self.let_go(Vec::new());
        self.head = 0;
        self.tail = 0;
        self.touched = 0;
    }

    /// Replaces the buffer with `next`; the old one is wiped as far as it
    /// was touched (unless it held only ciphertext) and given back.
    fn let_go(&mut self, next: Vec<u8>) {
        let mut old = std::mem::replace(&mut self.buf, next);
        if !self.ciphertext {
            wipe(&mut old[..self.touched]);
        }
        give_pooled(old);
    }
}

/// A queue the network drains: [`ByteQueue`] and the ciphertext ring,
/// [`SendQueue`](crate::send_queue::SendQueue).
pub(crate) trait Drain {
    /// Whether nothing is queued.
    fn is_empty(&self) -> bool;

    /// How many bytes the next [`drain_to`](Self::drain_to) offers: a
    /// write of fewer means the sink is full.
    fn front_len(&self) -> usize;

    /// Writes from the head to `sink` with a single write call and removes
    /// what was written.
    fn drain_to(&mut self, sink: &mut impl io::Write) -> io::Result<usize>;
}

impl Drain for ByteQueue {
    fn is_empty(&self) -> bool {
        ByteQueue::is_empty(self)
    }

    fn front_len(&self) -> usize {
        self.len()
    }

    fn drain_to(&mut self, sink: &mut impl io::Write) -> io::Result<usize> {
        let n = sink.write(self.as_slice())?;
        self.consume(n);
        Ok(n)
    }
}

impl Drop for ByteQueue {
    fn drop(&mut self) {
        self.let_go(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_survives_compaction_and_growth() {
        let mut q = ByteQueue::new();
        let mut expected = Vec::new();
        let mut next = 0u8;
        for round in 0..200 {
            let chunk: Vec<u8> = (0..(round * 37) % 5000)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            q.extend(&chunk);
            expected.extend_from_slice(&chunk);
            let mut out = vec![0; (round * 53) % 4000];
            let n = q.take_into(&mut out);
            assert_eq!(&out[..n], &expected[..n]);
            expected.drain(..n);
            assert_eq!(q.as_slice(), &expected[..]);
        }
    }

    #[test]
    fn large_buffers_are_reused_through_the_pool() {
        let mut q = ByteQueue::new();
        q.extend(&[1; 100_000]);
        let capacity = q.buf.len();
        let address = q.buf.as_ptr() as usize;
        q.consume(100_000);
        let mut other = ByteQueue::new();
        other.extend(&[2; 100_000]);
        assert_eq!(other.buf.len(), capacity);
        assert_eq!(
            other.buf.as_ptr() as usize,
            address,
            "the drained buffer was reused"
        );
        assert_eq!(other.as_slice(), &[2; 100_000][..]);
    }

    #[test]
    fn draining_releases_memory() {
        let mut q = ByteQueue::new();
        q.extend(&[1; 10_000]);
        q.consume(10_000);
        assert!(q.is_empty());
        assert_eq!(q.buf.capacity(), 0);
    }

    /// Takes the buffer of `capacity` bytes a queue just gave back.
    fn pooled(capacity: usize) -> Vec<u8> {
        take_pooled(capacity).expect("the buffer went to the pool")
    }

    fn is_wiped(buf: &[u8]) -> bool {
        buf.iter().all(|&b| b == 0)
    }

    #[test]
    fn a_drained_queue_wipes_its_buffer_before_pooling_it() {
        let mut q = ByteQueue::new();
        q.extend(&[0xa5; 100_000]);
        let capacity = q.buf.len();
        q.consume(60_000);
        q.consume(40_000);
        assert!(is_wiped(&pooled(capacity)));
    }

    #[test]
    fn a_growing_queue_wipes_the_buffer_it_leaves() {
        let mut q = ByteQueue::new();
        q.extend(&[0xa5; 20_000]);
        let small = q.buf.len();
        q.extend(&[0x5a; 40_000]);
        assert!(q.buf.len() > small);
        assert!(is_wiped(&pooled(small)));
        assert_eq!(q.len(), 60_000, "the live bytes moved");
    }

    #[test]
    fn a_dropped_queue_wipes_its_buffer() {
        let mut q = ByteQueue::new();
        q.extend(&[0xa5; 100_000]);
        let capacity = q.buf.len();
        drop(q);
        assert!(is_wiped(&pooled(capacity)));
    }

    /// A reader may write past what it reports (a decryption that fails
    /// halfway): the whole room it was offered is wiped.
    #[test]
    fn room_offered_to_a_reader_is_wiped_even_if_unused() {
        let mut q = ByteQueue::new();
        let n = q
            .fill_with(30_000, |room| {
                room.fill(0xa5);
                Ok::<_, ()>(10)
            })
            .unwrap();
        assert_eq!(n, 10);
        let capacity = q.buf.len();
        q.consume(10);
        assert!(is_wiped(&pooled(capacity)));
    }

    /// The choice, shown: bytes as they were on the wire are not wiped.
    #[test]
    fn a_ciphertext_queue_is_not_wiped() {
        let mut q = ByteQueue::ciphertext();
        q.extend(&[0xa5; 100_000]);
        let capacity = q.buf.len();
        q.consume(100_000);
        assert!(pooled(capacity)[..100_000].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn fill_from_reads_once_and_respects_the_limit() {
        let mut q = ByteQueue::new();
        let mut source: &[u8] = &[7; 100_000];
        assert_eq!(q.fill_from(&mut source, 1000).unwrap(), 1000);
        assert_eq!(q.len(), 1000);
        let mut empty: &[u8] = &[];
        assert_eq!(q.fill_from(&mut empty, 1000).unwrap(), 0);
        assert_eq!(q.len(), 1000);
    }
}
