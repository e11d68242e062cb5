//! What an established session's keys give the program beyond encryption:
//! keying material exports (RFC 5705, RFC 8446 §7.5), the `tls-exporter`
//! (RFC 9266) and `tls-server-end-point` (RFC 5929) channel bindings, and
//! writing the key log lines GnuTLS's callback queued.
//!
//! Exports and bindings exist only once the connection is established,
//! that is once the peer was judged ([`Engine::establish`]): nothing here
//! moves that point or lets data flow.

use super::Engine;
use crate::error::Error;
use crate::gnutls::{self, Role};

/// The label of the `tls-exporter` channel binding (RFC 9266 §2).
const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// The length of the `tls-exporter` channel binding.
const TLS_EXPORTER_LEN: usize = 32;

/// The longest exporter label. GnuTLS refuses longer ones in TLS 1.3; the
/// limit applies to every version, so a label that works does so whichever
/// version the peer negotiates.
pub(crate) const MAX_EXPORTER_LABEL: usize = 63;

/// The longest exporter context: TLS 1.2 sends its length in 16 bits
/// (RFC 5705 §4).
pub(crate) const MAX_EXPORTER_CONTEXT: usize = u16::MAX as usize;

/// The most keying material one export gives: 255 blocks of SHA-256, what
/// HKDF can expand with TLS 1.3's smallest hash (RFC 5869 §2.3), for every
/// version alike.
pub(crate) const MAX_EXPORTED: usize = 255 * 32;

impl Engine {
    /// `len` bytes of keying material exported under `label` and `context`
    /// (`None`: no context, which TLS 1.2 distinguishes from an empty one).
    pub(crate) fn export_keying_material(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Result<Vec<u8>, Error> {
        self.require_established()?;
        check_export(label, context, len)?;
        let mut out = vec![0u8; len];
        self.session
            .export_keying_material(label, context, &mut out)
            .map_err(Error::Tls)?;
        Ok(out)
    }

    /// The `tls-exporter` channel binding: the exporter with the label
    /// `EXPORTER-Channel-Binding`, an empty context and 32 bytes, defined
    /// only when the master secret is unique to the connection: TLS 1.3, or
    /// TLS 1.2 with the extended master secret (RFC 9266 §2, RFC 7627).
    pub(crate) fn tls_exporter(&self) -> Result<Vec<u8>, Error> {
        self.require_established()?;
        let tls13 = self.session.protocol_name() == "TLS1.3";
        if !tls13 && !self.session.has_extended_master_secret() {
            return Err(Error::InvalidState(
                "tls-exporter needs TLS 1.3 or the extended master secret (RFC 9266 §2), \
                 and this TLS 1.2 connection has no extended master secret",
            ));
        }
        self.export_keying_material(TLS_EXPORTER_LABEL, Some(&[]), TLS_EXPORTER_LEN)
    }

    /// The `tls-server-end-point` channel binding: the hash of the server's
    /// certificate (the peer's on a client, ours on a server), see
    /// [`gnutls::server_end_point`].
    pub(crate) fn tls_server_end_point(&self) -> Result<Vec<u8>, Error> {
        self.require_established()?;
        if !self.session.server_uses_x509() {
            return Err(Error::InvalidState(
                "tls-server-end-point needs a server authenticated by an X.509 certificate",
            ));
        }
        let certificate = match self.role {
            Role::Client => self.session.peer_certificates().first().copied(),
            Role::Server => self.session.our_certificate(),
        };
        let certificate = certificate.ok_or(Error::InvalidState(
            "the server sent no certificate on this connection",
        ))?;
        gnutls::server_end_point(certificate).map_err(Error::InvalidState)
    }

    /// Writes the key log lines the last GnuTLS calls queued, when the
    /// configuration logs keys; the queue is emptied (and wiped) either way.
    pub(super) fn write_key_log(&mut self) {
        let lines = std::mem::take(&mut self.session.transport_mut().key_log_lines);
        if let (false, Some(key_log)) = (lines.is_empty(), self.config.key_log()) {
            key_log.write(&lines);
        }
    }

    /// Queues the `CLIENT_RANDOM` line of a resumed TLS 1.2 session, when
    /// the configuration logs keys: resuming derives no master secret, so
    /// GnuTLS logs none, where OpenSSL and NSS log the one restored, which
    /// Wireshark needs to decrypt the connection.
    pub(super) fn log_resumed_master_secret(&mut self) {
        let tls13 = self.session.protocol_name() == "TLS1.3";
        if self.config.key_log().is_none() || !self.session.is_resumed() || tls13 {
            return;
        }
        let line = self.session.master_secret_line();
        self.session.transport_mut().key_log_lines.push(line);
    }

    fn require_established(&self) -> Result<(), Error> {
        match self.is_established() {
            true => Ok(()),
            false => Err(Error::InvalidState("TLS is not established")),
        }
    }
}

/// Refuses what some TLS version or GnuTLS would refuse, for every version
/// alike.
fn check_export(label: &[u8], context: Option<&[u8]>, len: usize) -> Result<(), Error> {
    if label.is_empty() || label.len() > MAX_EXPORTER_LABEL {
        return Err(Error::InvalidInput(format!(
            "an exporter label has 1 to {MAX_EXPORTER_LABEL} bytes, not {}",
            label.len()
        )));
    }
    if let Some(context) = context.filter(|c| c.len() > MAX_EXPORTER_CONTEXT) {
        return Err(Error::InvalidInput(format!(
            "an exporter context has at most {MAX_EXPORTER_CONTEXT} bytes, not {}",
            context.len()
        )));
    }
    if len == 0 || len > MAX_EXPORTED {
        return Err(Error::InvalidInput(format!(
            "keying material is exported 1 to {MAX_EXPORTED} bytes at a time, not {len}"
        )));
    }
    Ok(())
}
