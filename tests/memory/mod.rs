//! Memory meters shared by the soak, flow-control and steady-state tests:
//! a counting global allocator (installed in every test binary that
//! includes this module: bytes live, their peak, and calls), the resident
//! set from `/proc/self/status`, and glibc's bytes in use.
//!
//! This is the only unsafe code of the test suite, in one place: an
//! allocator wrapper must implement the unsafe `GlobalAlloc` trait (it
//! forwards every call to the system allocator), and glibc's `mallinfo2`
//! has no safe binding.
#![allow(unsafe_code)]
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Calls that asked for memory: `alloc`, `alloc_zeroed` and `realloc`.
static CALLS: AtomicUsize = AtomicUsize::new(0);

#[global_allocator]
static ALLOCATOR: Counting = Counting;

impl Counting {
    fn grew(by: usize) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments;
// the counting only touches atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from System.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from System with `layout`; the caller upholds
        // the rest of `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                Self::grew(new_size - layout.size());
            } else {
                CALLS.fetch_add(1, Ordering::Relaxed);
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Bytes of the Rust heap live now.
pub fn live_heap() -> u64 {
    LIVE.load(Ordering::Relaxed) as u64
}

/// The most bytes of the Rust heap live at once since the last
/// [`reset_peak`].
pub fn peak_heap() -> u64 {
    PEAK.load(Ordering::Relaxed) as u64
}

/// How many times the Rust heap was asked for memory (allocations and
/// reallocations) so far, by every thread.
pub fn allocation_calls() -> u64 {
    CALLS.load(Ordering::Relaxed) as u64
}

/// Starts measuring the peak from what is live now; returns that.
pub fn reset_peak() -> u64 {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live as u64
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot parse {line:?}"));
    kib * 1024
}

/// The resident set (`VmRSS`) in bytes.
pub fn rss() -> u64 {
    status_bytes("VmRSS")
}

/// Bytes glibc's allocator has handed out and not taken back, over all
/// arenas: the Rust heap and GnuTLS's allocations together.
pub fn malloc_in_use() -> u64 {
    // SAFETY: mallinfo2 takes no arguments and only reads the allocator's
    // statistics (glibc 2.33 and later).
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}
