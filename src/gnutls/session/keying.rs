//! What a session's keys give beyond encryption: keying material exports
//! (RFC 5705, RFC 8446 §7.5) and what channel bindings need to know about
//! the session.

use std::ptr;

use gnutls_sys as sys;

use super::Session;
use crate::gnutls::error::{check, GnutlsError};

impl Session {
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
