//! [`SessionCache`]: the client's memory of TLS sessions, per server and
//! expected name, so a later connection to the same server can resume
//! instead of running a full handshake.
//!
//! Shared by every socket of one configuration (and across threads), so an
//! entry was made under the same trust anchors, verification mode and
//! settings as the connection that would resume it. It holds opaque GnuTLS
//! session data (secret: wiped when dropped or replaced), a bounded number
//! of entries, oldest dropped first. What may be stored is the engine's
//! decision (only sessions whose verification found nothing); this file
//! only keeps them apart by [`ServerKey`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroizing;

/// How many servers a cache remembers.
const CAPACITY: usize = 256;

/// What a client session is remembered under: the server as the program
/// named it (host and port, over TCP or UDP) and the name its certificate
/// was verified for (also the name sent in SNI). A session is offered again
/// only to a connection that expects the very same server under the very
/// same name, over the same transport (a TLS session is never offered to a
/// DTLS server on the same port, nor the reverse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerKey {
    host: String,
    port: u16,
    name: String,
    datagram: bool,
}

impl ServerKey {
    /// The key for a connection to `host:port` that expects `name`.
    pub(crate) fn new(host: &str, port: u16, name: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            name: name.to_owned(),
            datagram: false,
        }
    }

    /// The same server over UDP (DTLS).
    pub(crate) fn datagram(self) -> Self {
        Self {
            datagram: true,
            ..self
        }
    }
}

impl ServerKey {
    /// The name the server's certificate must carry.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The port, as a service name for the known keys database.
    pub(crate) fn service(&self) -> String {
        self.port.to_string()
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = if self.datagram { "/udp" } else { "" };
        write!(
            f,
            "{}:{}{transport} as {:?}",
            self.host, self.port, self.name
        )
    }
}

/// Resumption data per [`ServerKey`].
#[derive(Default)]
pub(crate) struct SessionCache {
    entries: Mutex<VecDeque<(ServerKey, Zeroizing<Vec<u8>>)>>,
}

impl SessionCache {
    /// The data to resume a session with `server`, if any.
    pub(crate) fn get(&self, server: &ServerKey) -> Option<Zeroizing<Vec<u8>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == server)
            .map(|(_, v)| v.clone())
    }

    /// Remembers `data` for `server`, replacing what was there.
    pub(crate) fn put(&self, server: &ServerKey, data: Zeroizing<Vec<u8>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| k != server);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back((server.clone(), data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, name: &str) -> ServerKey {
        ServerKey::new(host, 443, name)
    }

    #[test]
    fn keeps_the_latest_per_server_and_stays_bounded() {
        let cache = SessionCache::default();
        let a = key("a", "a");
        cache.put(&a, Zeroizing::new(vec![1]));
        cache.put(&a, Zeroizing::new(vec![2]));
        assert_eq!(cache.get(&a).as_deref(), Some(&vec![2]));
        for i in 0..CAPACITY + 10 {
            let host = format!("h{i}");
            cache.put(&key(&host, &host), Zeroizing::new(vec![0]));
        }
        assert_eq!(cache.get(&a), None);
        let last = format!("h{}", CAPACITY + 9);
        assert!(cache.get(&key(&last, &last)).is_some());
    }

    #[test]
    fn a_session_is_kept_apart_by_host_port_and_name() {
        let cache = SessionCache::default();
        cache.put(&key("127.0.0.1", "localhost"), Zeroizing::new(vec![1]));
        assert!(cache.get(&key("127.0.0.1", "localhost")).is_some());
        assert_eq!(cache.get(&key("127.0.0.1", "evil.example")), None);
        assert_eq!(cache.get(&key("localhost", "localhost")), None);
        assert_eq!(
            cache.get(&ServerKey::new("127.0.0.1", 444, "localhost")),
            None
        );
        let over_udp = key("127.0.0.1", "localhost").datagram();
        assert_eq!(cache.get(&over_udp), None, "a TLS session for DTLS");
        assert_eq!(over_udp.to_string(), "127.0.0.1:443/udp as \"localhost\"");
    }
}
