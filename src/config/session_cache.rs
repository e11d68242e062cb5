//! [`SessionCache`]: the client's memory of TLS sessions, per server, so a
//! later connection to the same host and port can resume instead of running
//! a full handshake.
//!
//! Shared by every socket of one configuration (and across threads). It
//! holds opaque GnuTLS session data, a bounded number of entries, oldest
//! dropped first.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many servers a cache remembers.
const CAPACITY: usize = 256;

/// Resumption data per `host:port`.
#[derive(Default)]
pub(crate) struct SessionCache {
    entries: Mutex<VecDeque<(String, Vec<u8>)>>,
}

impl SessionCache {
    /// The data to resume a session with `server`, if any.
    pub(crate) fn get(&self, server: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == server)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `data` for `server`, replacing what was there.
    pub(crate) fn put(&self, server: &str, data: Vec<u8>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k != server);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back((server.to_owned(), data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_per_server_and_stays_bounded() {
        let cache = SessionCache::default();
        cache.put("a:1", vec![1]);
        cache.put("a:1", vec![2]);
        assert_eq!(cache.get("a:1"), Some(vec![2]));
        for i in 0..CAPACITY + 10 {
            cache.put(&format!("h{i}:443"), vec![0]);
        }
        assert_eq!(cache.get("a:1"), None);
        assert!(cache.get(&format!("h{}:443", CAPACITY + 9)).is_some());
    }
}
