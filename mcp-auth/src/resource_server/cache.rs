//! Tokens already verified, keyed by their SHA-256 (the token itself is never
//! stored), each forgotten when it expires. Only well-formed tokens are kept.
//! Bounded: when full, expired entries go first, then those expiring soonest.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use mcp_core::Identity;
use sha2::{Digest as _, Sha256};

pub(crate) struct TokenCache {
    capacity: usize,
    entries: Mutex<HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>>,
}

/// A token's SHA-256.
#[derive(Clone, Copy, PartialEq, Eq)]
struct TokenDigest([u8; 32]);

/// Digests are uniformly distributed already, and only tokens that passed
/// verification are stored, so nobody can choose keys to flood a bucket:
/// the first eight bytes serve as the hash, with no keyed hashing per lookup.
impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

/// The hasher for [`TokenDigest`] keys: the `u64` it is given is the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `TokenDigest` keys; folds bytes in for any other use.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug)]
struct Entry {
    identity: Arc<Identity>,
    expires_at: SystemTime,
}

// Counts only: the identities' claims stay out of debug output.
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("TokenCache").field("capacity", &self.capacity).field("entries", &len).finish()
    }
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, entries: Mutex::new(HashMap::default()) }
    }

    pub(crate) fn get(&self, token: &str, now: SystemTime) -> Option<Arc<Identity>> {
        if self.capacity == 0 {
            return None;
        }
        let key = digest(token);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&key) {
            Some(entry) if now < entry.expires_at => Some(entry.identity.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(
        &self,
        token: &str,
        identity: Arc<Identity>,
        expires_at: SystemTime,
        now: SystemTime,
    ) {
        // Only well-formed tokens (RFC 6750 §2.1): the layer serves cached ones unchecked.
        if self.capacity == 0 || expires_at <= now || !crate::layer::is_b64token(token) {
            return;
        }
        let key = digest(token);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| now < entry.expires_at);
            if entries.len() >= self.capacity {
                // Full of live tokens: drop the one that would leave first.
                let soonest = entries.iter().min_by_key(|(_, e)| e.expires_at).map(|(k, _)| *k);
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(key, Entry { identity, expires_at });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn digest(token: &str) -> TokenDigest {
    TokenDigest(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn entries_expire_with_the_token() {
        let cache = TokenCache::new(10);
        cache.insert("t", Arc::new(Identity::new("u")), at(100), at(0));
        assert_eq!(cache.get("t", at(99)).unwrap().subject, "u");
        assert!(cache.get("t", at(100)).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded_evicting_expired_then_soonest() {
        let cache = TokenCache::new(2);
        cache.insert("a", Arc::new(Identity::new("a")), at(50), at(0));
        cache.insert("b", Arc::new(Identity::new("b")), at(200), at(0));
        cache.insert("c", Arc::new(Identity::new("c")), at(300), at(0));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", at(1)).is_none(), "the soonest to expire goes first");
        assert!(cache.get("b", at(1)).is_some() && cache.get("c", at(1)).is_some());
    }

    #[test]
    fn malformed_tokens_are_never_cached() {
        let cache = TokenCache::new(10);
        cache.insert("a b", Arc::new(Identity::new("u")), at(100), at(0));
        assert!(cache.get("a b", at(1)).is_none());
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let cache = TokenCache::new(0);
        cache.insert("t", Arc::new(Identity::new("u")), at(100), at(0));
        assert!(cache.get("t", at(1)).is_none());
    }
}
