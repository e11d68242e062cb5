//! [`KnownKeys`]: GnuTLS's stored public key database (trust on first use,
//! as SSH does): which key a host and service presented before.
//!
//! The database is a text file the program chose, read and written by
//! `gnutls_verify_stored_pubkey` and `gnutls_store_pubkey` (the format
//! `gnutls-cli --tofu` uses). The calls read or append to the file on the
//! calling thread, and storing a key first rewrites the file without the
//! host's earlier entries; the file is small. What a match means for trust is the
//! engine's decision.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr;

use gnutls_sys as sys;

use super::datum::borrowed;
use super::error::{check, code, GnutlsError};

/// What the database says of a host's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownKey {
    /// The host presented this very key before.
    Same,
    /// The host is not in the database.
    Unknown,
    /// The host presented another key before.
    Changed,
}

/// A stored public key database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownKeys {
    path: PathBuf,
}

/// The C strings the database calls take.
struct Names {
    db: CString,
    host: CString,
    service: CString,
}

impl KnownKeys {
    /// The database in `path` (created on the first store).
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    fn names(&self, host: &str, service: &str) -> Result<Names, GnutlsError> {
        let invalid = |_| GnutlsError::from_code(code::INVALID_REQUEST);
        let db = self
            .path
            .to_str()
            .ok_or(GnutlsError::from_code(code::INVALID_REQUEST))?;
        Ok(Names {
            db: CString::new(db).map_err(invalid)?,
            host: CString::new(host).map_err(invalid)?,
            service: CString::new(service).map_err(invalid)?,
        })
    }

    /// Whether `host`'s `service` presented the key of `certificate` (DER)
    /// before.
    pub(crate) fn check(
        &self,
        host: &str,
        service: &str,
        certificate: &[u8],
    ) -> Result<KnownKey, GnutlsError> {
        let names = self.names(host, service)?;
        let cert = borrowed(certificate)?;
        // SAFETY: the strings are NUL-terminated and, like the datum, live
        // for the call; a NULL tdb selects GnuTLS's file backend.
        let rc = unsafe {
            sys::gnutls_verify_stored_pubkey(
                names.db.as_ptr(),
                ptr::null_mut(),
                names.host.as_ptr(),
                names.service.as_ptr(),
                sys::GNUTLS_CRT_X509,
                &cert,
                0,
            )
        };
        match rc {
            sys::GNUTLS_E_NO_CERTIFICATE_FOUND => Ok(KnownKey::Unknown),
            sys::GNUTLS_E_CERTIFICATE_KEY_MISMATCH => Ok(KnownKey::Changed),
            rc => check(rc).map(|_| KnownKey::Same),
        }
    }

    /// Remembers the key of `certificate` (DER) as the one `host`'s
    /// `service` is known by: the keys stored for it before are removed
    /// first (`gnutls_store_pubkey` only appends, and
    /// `gnutls_verify_stored_pubkey` accepts any key stored for the host, so
    /// a key replaced would stay trusted).
    pub(crate) fn store(
        &self,
        host: &str,
        service: &str,
        certificate: &[u8],
    ) -> Result<(), GnutlsError> {
        let names = self.names(host, service)?;
        let cert = borrowed(certificate)?;
        self.forget(host, service)
            .map_err(|_| GnutlsError::from_code(code::FILE_ERROR))?;
        // SAFETY: as in `check`; expiration 0 keeps the key until replaced.
        check(unsafe {
            sys::gnutls_store_pubkey(
                names.db.as_ptr(),
                ptr::null_mut(),
                names.host.as_ptr(),
                names.service.as_ptr(),
                sys::GNUTLS_CRT_X509,
                &cert,
                0,
                0,
            )
        })?;
        Ok(())
    }

    /// Removes the entries of `host`'s `service` from the file, rewriting
    /// it whole (written beside it, then renamed over it).
    fn forget(&self, host: &str, service: &str) -> std::io::Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let kept = without_entries_of(&text, host, service);
        if kept.len() == text.len() {
            return Ok(());
        }
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".new");
        std::fs::write(&temporary, kept)?;
        std::fs::rename(&temporary, &self.path)
    }
}

/// The lines of a database (`|g0|host|service|expiration|key` for keys,
/// `|c0|host|service|…` for commitments) that are not about `host`'s
/// `service`.
fn without_entries_of(text: &str, host: &str, service: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| {
            let mut fields = line.split('|').skip(2);
            (fields.next(), fields.next()) != (Some(host), Some(service))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_one_host_and_service_are_removed_and_nothing_else() {
        let text = "|g0|a.example|443|0|KEYA\n|g0|a.example|8443|0|KEYB\n\
                    |c0|a.example|443|0|1|HASH\n|g0|b.example|443|0|KEYC\n|g0|a.example|443|0|KEYD";
        assert_eq!(
            without_entries_of(text, "a.example", "443"),
            "|g0|a.example|8443|0|KEYB\n|g0|b.example|443|0|KEYC\n"
        );
        assert_eq!(without_entries_of(text, "c.example", "443"), text);
    }
}
