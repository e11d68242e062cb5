//! Key logging: the `gnutls_keylog_func` callback and the lines it queues.
//!
//! GnuTLS calls [`secret_derived`] inside a handshake each time it derives
//! a secret. The callback only formats one line of the NSS key log format
//! (`LABEL <client random> <secret>`, both in lowercase hex) and queues it
//! in the [`Transport`](super::transport::Transport); the engine writes the
//! queue out once the GnuTLS call has returned. Nothing here does I/O or
//! runs code from the layers above. The lines hold secrets: they are wiped
//! when dropped.

use std::ffi::{c_char, c_int, CStr};

use gnutls_sys as sys;
use zeroize::Zeroizing;

use super::transport::with_transport;

/// The label of a TLS 1.2 (or older) master secret.
pub(crate) const CLIENT_RANDOM: &[u8] = b"CLIENT_RANDOM";

/// One line of the key log, newline included; wiped when dropped.
pub(crate) type KeyLogLine = Zeroizing<Vec<u8>>;

/// `gnutls_keylog_func`: queues the line for a secret GnuTLS just derived.
/// Always returns 0 (a negative value would fail the handshake).
pub(crate) unsafe extern "C" fn secret_derived(
    session: sys::gnutls_session_t,
    label: *const c_char,
    secret: *const sys::gnutls_datum_t,
) -> c_int {
    // SAFETY: GnuTLS passes the live session, whose user pointer is the
    // registered transport, and calls this only from within a handshake
    // driven through `&mut Session`; `label` is a static NUL-terminated
    // string and `secret` a datum of `size` readable bytes, both valid for
    // the call (NULL is taken as empty). The client random belongs to the
    // session and is copied before the callback returns.
    unsafe {
        let label = match label.is_null() {
            true => &[][..],
            false => CStr::from_ptr(label).to_bytes(),
        };
        let secret = datum_bytes(secret);
        let client_random = client_random(session);
        let ptr = sys::gnutls_session_get_ptr(session);
        with_transport(ptr, 0, |t| {
            t.key_log_lines.push(nss_line(label, client_random, secret));
            0
        })
    }
}

/// The session's client random, borrowed from the session.
///
/// # Safety
/// `session` is live, and the caller does not use the result past the
/// next GnuTLS call on it.
pub(crate) unsafe fn client_random<'a>(session: sys::gnutls_session_t) -> &'a [u8] {
    let mut client = sys::gnutls_datum_t {
        data: std::ptr::null_mut(),
        size: 0,
    };
    let mut server = client;
    // SAFETY: guaranteed by the caller; the datums point into the session.
    unsafe {
        sys::gnutls_session_get_random(session, &mut client, &mut server);
        datum_bytes(&client)
    }
}

/// The bytes a datum describes (none for NULL).
///
/// # Safety
/// `datum` is NULL or points to a datum whose `data` is NULL or readable for
/// `size` bytes, for the lifetime the caller gives the result.
pub(crate) unsafe fn datum_bytes<'a>(datum: *const sys::gnutls_datum_t) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe {
        match datum.as_ref() {
            Some(d) if !d.data.is_null() => std::slice::from_raw_parts(d.data, d.size as usize),
            _ => &[],
        }
    }
}

/// `LABEL <client random> <secret>\n`, hex in lowercase, built in a buffer
/// of the final size so that no copy of the secret is left behind by a
/// reallocation.
pub(crate) fn nss_line(label: &[u8], client_random: &[u8], secret: &[u8]) -> KeyLogLine {
    let size = label.len() + 2 * client_random.len() + 2 * secret.len() + 3;
    let mut line = Zeroizing::new(Vec::with_capacity(size));
    line.extend_from_slice(label);
    line.push(b' ');
    push_hex(&mut line, client_random);
    line.push(b' ');
    push_hex(&mut line, secret);
    line.push(b'\n');
    line
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0f)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_label_client_random_and_secret_in_lowercase_hex() {
        let line = nss_line(b"CLIENT_RANDOM", &[0x00, 0xab, 0x7f], &[0xff, 0x10]);
        assert_eq!(line.as_slice(), b"CLIENT_RANDOM 00ab7f ff10\n");
        assert_eq!(line.capacity(), line.len(), "built without reallocating");
    }
}
