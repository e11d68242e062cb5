//! [`KeyLog`]: the file a configuration writes TLS secrets to, in the NSS
//! key log format that Wireshark reads (`SSLKEYLOGFILE`).
//!
//! Anyone who can read the file can decrypt every connection logged in it.
//! It is opened for appending when the configuration is built (created,
//! readable by its owner only, if missing) and shared by every socket of the
//! configuration, in any thread: each line is written whole, in one `write`
//! under a mutex, so lines from concurrent handshakes never interleave.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gnutls::KeyLogLine;

/// The environment variable [`key_log_from_env`](crate::SslConfigurationBuilder::key_log_from_env)
/// reads.
pub(crate) const SSLKEYLOGFILE: &str = "SSLKEYLOGFILE";

/// An open key log file.
pub(crate) struct KeyLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl KeyLog {
    /// Opens `path` for appending, creating it (mode 0600) if missing.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|source| Error::File {
            path: path.to_owned(),
            source,
        })?;
        log::warn!(
            "TLS secrets are logged to {}: anyone who reads it can decrypt the connections",
            path.display()
        );
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines`, each in one write. A failure is logged, not
    /// reported: the connection does not depend on its key log.
    pub(crate) fn write(&self, lines: &[KeyLogLine]) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        for line in lines {
            if let Err(e) = file.write_all(line) {
                log::warn!("cannot write to the key log {}: {e}", self.path.display());
                return;
            }
        }
    }
}
