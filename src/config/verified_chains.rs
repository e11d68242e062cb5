//! [`VerifiedChains`]: the peer certificate chains a configuration verified
//! recently, so a handshake that presents the very same chain for the same
//! name need not verify its signatures again.
//!
//! Verifying a chain is the largest single cost of a client's full
//! handshake after the key exchange itself (an ECDSA P-256 chain: about a
//! third of the client's CPU per connection, most of it in GMP and ASN.1
//! parsing). Browsers keep such a cache for the same reason. What a hit
//! skips is only the chain's verification against the trust list; every
//! handshake still checks the peer's proof that it holds the leaf's key.
//!
//! An entry is the exact bytes of the chain as the peer sent it, the name
//! it was verified for and the direction (a server's chain, or a client's);
//! it holds only successes, lasts [`MAX_AGE`] at most and never past the
//! earliest expiry date in the chain. The trust list it was verified against
//! cannot change: a configuration is immutable once built. Shared by every
//! socket of one configuration (and across threads); bounded, oldest dropped
//! first. It knows no GnuTLS: the engine asks and tells it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long a verification is reused at most.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// How many chains a configuration remembers.
const CAPACITY: usize = 64;

/// Whose chain was verified: the purpose checked differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainOf {
    /// A server's, checked for TLS server authentication.
    Server,
    /// A client's, checked for TLS client authentication.
    Client,
}

/// What a verification was asked: the key of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainKey(Vec<u8>);

impl ChainKey {
    /// The key for `chain` (DER, as the peer sent it) verified for `name`.
    pub(crate) fn new(chain: &[&[u8]], name: Option<&[u8]>, of: ChainOf) -> Self {
        let size = chain.iter().map(|c| c.len() + 4).sum::<usize>() + 6;
        let mut key = Vec::with_capacity(size + name.map_or(0, <[u8]>::len));
        // Counted and length-prefixed: no two questions share a key.
        key.push(of as u8);
        key.extend_from_slice(&(chain.len() as u32).to_be_bytes());
        for certificate in chain {
            key.extend_from_slice(&(certificate.len() as u32).to_be_bytes());
            key.extend_from_slice(certificate);
        }
        match name {
            Some(name) => {
                key.push(1);
                key.extend_from_slice(name);
            }
            None => key.push(0),
        }
        Self(key)
    }
}

/// Recently verified chains.
#[derive(Debug, Default)]
pub(crate) struct VerifiedChains {
    entries: Mutex<VecDeque<(ChainKey, SystemTime)>>,
}

impl VerifiedChains {
    /// Whether `key` was verified and its entry is still good at `now`.
    pub(crate) fn contains(&self, key: &ChainKey, now: SystemTime) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(_, until)| now < *until);
        entries.iter().any(|(k, _)| k == key)
    }

    /// Remembers that `key` verified, until `until` (clamped to
    /// [`MAX_AGE`] from `now`).
    pub(crate) fn insert(&self, key: ChainKey, now: SystemTime, until: SystemTime) {
        let until = until.min(now + MAX_AGE);
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back((key, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAF: &[u8] = b"leaf certificate";
    const CA: &[u8] = b"intermediate";

    fn key(name: Option<&str>) -> ChainKey {
        ChainKey::new(&[LEAF, CA], name.map(str::as_bytes), ChainOf::Server)
    }

    #[test]
    fn a_hit_needs_the_same_chain_name_and_direction() {
        let cache = VerifiedChains::default();
        let now = SystemTime::now();
        cache.insert(key(Some("a.example")), now, now + MAX_AGE);
        assert!(cache.contains(&key(Some("a.example")), now));
        assert!(!cache.contains(&key(Some("b.example")), now));
        assert!(!cache.contains(&key(None), now));
        let other_direction = ChainKey::new(&[LEAF, CA], Some(b"a.example"), ChainOf::Client);
        assert!(!cache.contains(&other_direction, now));
        let leaf_only = ChainKey::new(&[LEAF], Some(b"a.example"), ChainOf::Server);
        assert!(!cache.contains(&leaf_only, now));
        // The same bytes cut differently are another chain.
        let recut = ChainKey::new(
            &[&LEAF[..4], &LEAF[4..], CA],
            Some(b"a.example"),
            ChainOf::Server,
        );
        assert!(!cache.contains(&recut, now));
    }

    #[test]
    fn entries_end_at_the_chain_expiry_or_max_age() {
        let cache = VerifiedChains::default();
        let now = SystemTime::now();
        let expiry = now + Duration::from_secs(60);
        cache.insert(key(None), now, expiry);
        assert!(cache.contains(&key(None), expiry - Duration::from_secs(1)));
        assert!(!cache.contains(&key(None), expiry));

        cache.insert(key(None), now, now + Duration::from_secs(86_400));
        assert!(cache.contains(&key(None), now + MAX_AGE - Duration::from_secs(1)));
        assert!(!cache.contains(&key(None), now + MAX_AGE));

        cache.insert(key(None), now, now);
        assert!(
            !cache.contains(&key(None), now),
            "already expired: not kept"
        );
    }

    #[test]
    fn stays_bounded_oldest_dropped_first() {
        let cache = VerifiedChains::default();
        let now = SystemTime::now();
        let names: Vec<String> = (0..CAPACITY + 1).map(|i| format!("h{i}")).collect();
        for name in &names {
            cache.insert(key(Some(name)), now, now + MAX_AGE);
        }
        assert!(!cache.contains(&key(Some(&names[0])), now));
        assert!(cache.contains(&key(Some(&names[1])), now));
        assert!(cache.contains(&key(Some(&names[CAPACITY])), now));
    }
}
