//! What a session's keys give beyond encryption: keying material exports
//! (RFC 5705, RFC 8446 §7.5), what channel bindings need to know about the
//! session, and key logging (the callback is in `key_log.rs`).

use std::ptr;

use gnutls_sys as sys;

use super::Session;
use crate::gnutls::error::{check, GnutlsError};
use crate::gnutls::key_log;

impl Session {
    /// From now on, queues a key log line in the transport for each secret
    /// the handshake derives. Without this call nothing is logged:
    /// `Session::new` removes GnuTLS's default key log function, which
    /// writes to the file `SSLKEYLOGFILE` names.
    pub(crate) fn log_keys(&mut self) {
        // SAFETY: the session is live; the callback reaches the transport
        // through the session's user pointer, valid until after
        // gnutls_deinit (see Drop for Session).
        unsafe {
            sys::gnutls_session_set_keylog_function(
                self.raw.as_ptr(),
                Some(key_log::secret_derived),
            )
        }
    }

    /// The key log line of a TLS 1.2 (or older) session's master secret:
    /// GnuTLS logs it only when a full handshake derives it, not when a
    /// session is resumed.
    pub(crate) fn master_secret_line(&self) -> key_log::KeyLogLine {
        let mut secret = sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        };
        // SAFETY: the session is live and no GnuTLS call is in progress
        // (`&self`); both the master secret and the client random point
        // into the session and are copied into the line before returning.
        unsafe {
            sys::gnutls_session_get_master_secret(self.raw.as_ptr(), &mut secret);
            let master = key_log::datum_bytes(&secret);
            let client_random = key_log::client_random(self.raw.as_ptr());
            key_log::nss_line(key_log::CLIENT_RANDOM, client_random, master)
        }
    }

    /// Fills `out` with keying material exported under `label` and
    /// `context` (`gnutls_prf_rfc5705`). `None` is no context, which in TLS
    /// 1.2 differs from an empty one; TLS 1.3 makes them the same.
    pub(crate) fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), GnutlsError> {
        let (context_size, context) = match context {
            // A slice's pointer is never NULL, also when it is empty.
            Some(c) => (c.len(), c.as_ptr()),
            None => (0, ptr::null()),
        };
        // SAFETY: the session is live and no GnuTLS call is in progress
        // (`&self`); the label and context are readable for their lengths,
        // `out` writable for its own; GnuTLS calls no callback here.
        check(unsafe {
            sys::gnutls_prf_rfc5705(
                self.raw.as_ptr(),
                label.len(),
                label.as_ptr().cast(),
                context_size,
                context.cast(),
                out.len(),
                out.as_mut_ptr().cast(),
            )
        })?;
        Ok(())
    }

    /// Whether the handshake negotiated the extended master secret (RFC
    /// 7627), which makes a TLS 1.2 master secret unique to the connection.
    pub(crate) fn has_extended_master_secret(&self) -> bool {
        // SAFETY: the session is live.
        unsafe { sys::gnutls_session_ext_master_secret_status(self.raw.as_ptr()) != 0 }
    }

    /// Whether the server authenticated with an X.509 certificate (not a
    /// raw public key, not a pre-shared key alone).
    pub(crate) fn server_uses_x509(&self) -> bool {
        // SAFETY: the session is live.
        let kind = unsafe {
            sys::gnutls_certificate_type_get2(self.raw.as_ptr(), sys::GNUTLS_CTYPE_SERVER)
        };
        kind == sys::GNUTLS_CRT_X509
    }

    /// The certificate we sent in the handshake (DER, the leaf only),
    /// borrowed from the session.
    pub(crate) fn our_certificate(&self) -> Option<&[u8]> {
        // SAFETY: the session is live; the datum (or NULL) belongs to the
        // credentials the session keeps alive, and stays valid while this
        // shared borrow prevents another handshake step.
        unsafe {
            let datum = sys::gnutls_certificate_get_ours(self.raw.as_ptr()).as_ref()?;
            (!datum.data.is_null())
                .then(|| std::slice::from_raw_parts(datum.data, datum.size as usize))
        }
    }
}
