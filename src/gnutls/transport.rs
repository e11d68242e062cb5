//! [`Transport`]: what GnuTLS's pull, push and verify callbacks reach, and
//! the `extern "C"` callbacks themselves.
//!
//! The callbacks only move bytes between GnuTLS and the two ciphertext
//! queues (for DTLS, whole datagrams: see `datagrams.rs`), or record the
//! peer's verification status (the pre-shared key
//! callbacks, in `psk.rs`, reach the transport the same way); they never
//! call user code. Each body runs under `catch_unwind`; a caught panic is stored here
//! and re-raised by the session after the GnuTLS call returns, so nothing
//! unwinds through C.

use std::any::Any;
use std::ffi::{c_int, c_uint, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gnutls_sys as sys;

use super::datagrams::Datagrams;
use super::error::code;
use super::key_log::KeyLogLine;
use super::psk::{Psk, PskLookup};
use crate::buffer::ByteQueue;
use crate::send_queue::SendQueue;

/// The certificate check GnuTLS runs mid-handshake, as a small state
/// machine. The verify callback pauses the handshake (`GNUTLS_E_AGAIN`) and
/// leaves the work to the layer above: it verifies the chain (or finds the
/// result it remembered for the very same chain) outside the callback, then
/// decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerCheck {
    /// Not reached yet.
    Idle,
    /// The peer's certificates are in: the layer above is to verify them.
    Requested,
    /// The layer above verified them and is deciding.
    Deciding,
    /// The layer above accepted the peer: the handshake goes on.
    Accepted,
    /// The layer above refused the peer: the handshake fails.
    Rejected,
}

/// How the session's records travel: TLS over a byte stream, or DTLS in
/// datagrams (`GNUTLS_DATAGRAM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Stream,
    Datagram,
}

/// Which key purpose the peer's certificate must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The peer is a TLS server (we are the client).
    Server,
    /// The peer is a TLS client (we are the server).
    Client,
}

/// The state GnuTLS's callbacks share with the session: ciphertext queues,
/// end of stream, and the peer check.
pub(crate) struct Transport {
    /// Ciphertext received from the peer, not yet pulled by GnuTLS (not
    /// wiped: see [`ByteQueue::ciphertext`]).
    pub(crate) incoming: ByteQueue,
    /// Ciphertext GnuTLS pushed, not yet sent to the peer.
    pub(crate) outgoing: SendQueue,
    /// For DTLS: whole datagrams in and out, instead of the two queues above.
    pub(crate) datagrams: Option<Box<Datagrams>>,
    /// The peer's stream ended: once `incoming` is empty, pull reports EOF.
    pub(crate) eof: bool,
    /// The peer check and what it verifies against.
    pub(crate) peer_check: PeerCheck,
    pub(crate) check_name: Option<CString>,
    pub(crate) purpose: Purpose,
    /// A session ticket arrived since the flag was last cleared.
    pub(crate) ticket_received: bool,
    /// On a server: the body of the last ClientHello received (at most
    /// [`MAX_KEPT_HELLO`] bytes), to explain a refused handshake.
    pub(crate) client_hello: Vec<u8>,
    /// On a client: the server answered the ClientHello (a ServerHello or a
    /// HelloRetryRequest arrived).
    pub(crate) server_hello_received: bool,
    /// Key log lines queued by `key_log::secret_derived`, for the engine to
    /// write out (only when the configuration logs keys).
    pub(crate) key_log_lines: Vec<KeyLogLine>,
    /// The pre-shared key credentials and keys, if the session has any
    /// (kept here so that they outlive `gnutls_deinit`).
    pub(crate) psk: Option<Psk>,
    /// What the pre-shared key callback saw in this handshake.
    pub(crate) psk_lookup: Option<PskLookup>,
    errno: c_int,
    panic: Option<Box<dyn Any + Send>>,
}

impl Transport {
    pub(crate) fn new(purpose: Purpose, framing: Framing) -> Self {
        Self {
            incoming: ByteQueue::ciphertext(),
            outgoing: SendQueue::new(),
            datagrams: (framing == Framing::Datagram).then(Box::default),
            eof: false,
            peer_check: PeerCheck::Idle,
            check_name: None,
            purpose,
            ticket_received: false,
            client_hello: Vec::new(),
            server_hello_received: false,
            key_log_lines: Vec::new(),
            psk: None,
            psk_lookup: None,
            errno: 0,
            panic: None,
        }
    }

    /// Takes a panic caught in a callback, to re-raise outside GnuTLS.
    pub(crate) fn take_panic(&mut self) -> Option<Box<dyn Any + Send>> {
        self.panic.take()
    }

    /// Received ciphertext not yet pulled by GnuTLS, in bytes.
    pub(crate) fn incoming_len(&self) -> usize {
        self.incoming.len() + self.datagrams.as_ref().map_or(0, |d| d.incoming_len())
    }

    fn pull(&mut self, out: &mut [u8]) -> isize {
        if let Some(datagrams) = self.datagrams.as_mut() {
            return match datagrams.pull(out) {
                Some(n) => n as isize,
                None => {
                    self.errno = libc::EAGAIN;
                    -1
                }
            };
        }
        if self.incoming.is_empty() {
            if self.eof {
                return 0;
            }
            self.errno = libc::EAGAIN;
            return -1;
        }
        self.incoming.take_into(out) as isize
    }

    /// Queues one push's bytes: for DTLS, one datagram.
    fn push(&mut self, data: &[u8]) {
        match self.datagrams.as_mut() {
            Some(datagrams) => datagrams.push(data.to_vec()),
            None => self.outgoing.extend(data),
        }
    }

    fn readable(&self) -> bool {
        let datagram = self.datagrams.as_ref().is_some_and(|d| d.has_incoming());
        datagram || !self.incoming.is_empty() || self.eof
    }
}

/// Runs `body` on the transport behind `ptr`, catching any panic.
///
/// # Safety
/// `ptr` must be the `Transport` registered with the session, alive and not
/// otherwise borrowed for the duration of the call (true while GnuTLS runs
/// one of its functions on behalf of `Session`'s `&mut self` methods).
pub(super) unsafe fn with_transport<R>(
    ptr: *mut c_void,
    failed: R,
    body: impl FnOnce(&mut Transport) -> R,
) -> R {
    // SAFETY: guaranteed by the caller.
    let transport = unsafe { &mut *ptr.cast::<Transport>() };
    match catch_unwind(AssertUnwindSafe(|| body(&mut *transport))) {
        Ok(result) => result,
        Err(panic) => {
            transport.panic = Some(panic);
            transport.errno = libc::EIO;
            failed
        }
    }
}

/// `gnutls_pull_func`: hands GnuTLS what is buffered, up to `len` bytes.
pub(crate) unsafe extern "C" fn pull(
    ptr: sys::gnutls_transport_ptr_t,
    data: *mut c_void,
    len: usize,
) -> isize {
    // SAFETY: GnuTLS passes the transport pointer registered by Session::new
    // and a writable buffer of `len` bytes.
    unsafe {
        with_transport(ptr, -1, |t| {
            let out = std::slice::from_raw_parts_mut(data.cast::<u8>(), len);
            t.pull(out)
        })
    }
}

/// `gnutls_push_func`: queues one buffer of ciphertext.
pub(crate) unsafe extern "C" fn push(
    ptr: sys::gnutls_transport_ptr_t,
    data: *const c_void,
    len: usize,
) -> isize {
    // SAFETY: GnuTLS passes the registered transport and a readable buffer.
    unsafe {
        with_transport(ptr, -1, |t| {
            t.push(std::slice::from_raw_parts(data.cast::<u8>(), len));
            len as isize
        })
    }
}

/// `gnutls_vec_push_func`: queues a record's pieces in one call (for DTLS,
/// as one datagram).
pub(crate) unsafe extern "C" fn vec_push(
    ptr: sys::gnutls_transport_ptr_t,
    iov: *const sys::giovec_t,
    iovcnt: c_int,
) -> isize {
    // SAFETY: GnuTLS passes the registered transport and `iovcnt` readable
    // iovecs.
    unsafe {
        with_transport(ptr, -1, |t| {
            let pieces = std::slice::from_raw_parts(iov, usize::try_from(iovcnt).unwrap_or(0));
            if let Some(datagrams) = t.datagrams.as_mut() {
                return push_datagram(datagrams, pieces);
            }
            let mut total = 0usize;
            for piece in pieces.iter().filter(|p| p.iov_len > 0) {
                t.push(std::slice::from_raw_parts(
                    piece.iov_base.cast::<u8>(),
                    piece.iov_len,
                ));
                total += piece.iov_len;
            }
            total as isize
        })
    }
}

/// Queues the pieces of one vectored push as one datagram: its records
/// travel together.
///
/// # Safety
/// Each piece must describe `iov_len` readable bytes at `iov_base`.
unsafe fn push_datagram(datagrams: &mut Datagrams, pieces: &[sys::giovec_t]) -> isize {
    let mut datagram = Vec::with_capacity(pieces.iter().map(|p| p.iov_len).sum());
    for piece in pieces.iter().filter(|p| p.iov_len > 0) {
        // SAFETY: guaranteed by the caller.
        datagram.extend_from_slice(unsafe {
            std::slice::from_raw_parts(piece.iov_base.cast::<u8>(), piece.iov_len)
        });
    }
    let len = datagram.len();
    datagrams.push(datagram);
    len as isize
}

/// `gnutls_pull_timeout_func`: never waits; says whether pull has something.
pub(crate) unsafe extern "C" fn pull_timeout(
    ptr: sys::gnutls_transport_ptr_t,
    _ms: c_uint,
) -> c_int {
    // SAFETY: GnuTLS passes the registered transport.
    unsafe { with_transport(ptr, -1, |t| c_int::from(t.readable())) }
}

/// `gnutls_errno_func`: the errno of the last failed pull or push.
pub(crate) unsafe extern "C" fn errno(ptr: sys::gnutls_transport_ptr_t) -> c_int {
    // SAFETY: GnuTLS passes the registered transport.
    unsafe { with_transport(ptr, libc::EIO, |t| t.errno) }
}

/// `GNUTLS_HANDSHAKE_ANY` (a macro bindgen does not carry): the hook sees
/// every handshake message.
pub(crate) const ANY_HANDSHAKE_MESSAGE: c_uint = c_uint::MAX;

/// How much of a ClientHello is kept: real ones are well under 2 KiB; the
/// lists that explain a refusal come first, and a cut hello is read up to
/// the cut.
pub(crate) const MAX_KEPT_HELLO: usize = 16 * 1024;

/// `gnutls_handshake_hook_func` for every message: before a received
/// ClientHello is processed, keeps a copy; notes a ServerHello or
/// HelloRetryRequest, and a processed NewSessionTicket.
pub(crate) unsafe extern "C" fn handshake_message(
    session: sys::gnutls_session_t,
    htype: c_uint,
    when: c_uint,
    incoming: c_uint,
    msg: *const sys::gnutls_datum_t,
) -> c_int {
    if incoming == 0 {
        return 0;
    }
    let before = when == sys::GNUTLS_HOOK_PRE;
    // SAFETY: GnuTLS passes the message it is about to process (or has
    // processed) and keeps it alive for the call; a null datum or data
    // pointer means an empty message.
    let body = unsafe { msg.as_ref() }
        .filter(|m| !m.data.is_null())
        // SAFETY: see above: `data` points at `size` readable bytes.
        .map_or(&[][..], |m| unsafe {
            std::slice::from_raw_parts(m.data, m.size as usize)
        });
    // SAFETY: the session's user pointer is the registered transport; GnuTLS
    // runs hooks only inside calls made through `&mut Session`.
    unsafe {
        let ptr = sys::gnutls_session_get_ptr(session);
        with_transport(ptr, 0, |t| {
            match (htype, before) {
                (sys::GNUTLS_HANDSHAKE_CLIENT_HELLO, true) => {
                    t.client_hello.clear();
                    t.client_hello
                        .extend_from_slice(&body[..body.len().min(MAX_KEPT_HELLO)]);
                }
                (sys::GNUTLS_HANDSHAKE_SERVER_HELLO, true)
                | (sys::GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST, true) => {
                    t.server_hello_received = true
                }
                (sys::GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, false) => t.ticket_received = true,
                _ => {}
            }
            0
        })
    }
}

/// `gnutls_certificate_verify_function`: asks the layer above to verify
/// the peer, and pauses the handshake until it accepts or rejects.
pub(crate) unsafe extern "C" fn verify_peer(session: sys::gnutls_session_t) -> c_int {
    // SAFETY: the session's user pointer is the registered transport (set in
    // Session::new), and GnuTLS calls this only from within a handshake
    // driven through `&mut Session`.
    unsafe {
        let ptr = sys::gnutls_session_get_ptr(session);
        with_transport(ptr, sys::GNUTLS_E_CERTIFICATE_ERROR, |t| {
            match t.peer_check {
                PeerCheck::Accepted => 0,
                PeerCheck::Rejected => code::CERTIFICATE_VERIFICATION_ERROR,
                PeerCheck::Requested | PeerCheck::Deciding => code::AGAIN,
                PeerCheck::Idle => {
                    t.peer_check = PeerCheck::Requested;
                    code::AGAIN
                }
            }
        })
    }
}
