//! A short-lived local cache of revocation checks, so that the check on
//! every MCP request does not cost store reads when the store tells of
//! revocations
//! ([`AuthStore::revocation_feed`](super::store::AuthStore::revocation_feed):
//! the PostgreSQL store relays every instance's through LISTEN/NOTIFY; the
//! memory and SQLite stores, written by one process, tell of their own).
//!
//! Only "active" answers are cached, by `jti`, with the token's grant; an
//! entry goes when the feed names its token or its grant, everything goes
//! when the feed (re)connects or lags, and nothing is cached while it is
//! disconnected. An entry lives at most [`TTL`] whatever the feed says.
//!
//! Staleness bound: a revocation committed on one instance is honoured by
//! the others within the NOTIFY delivery time (measured on loopback: at
//! most 52 ms over 160 trials, 2 to 7 ms on average per run of 20, on a
//! loaded 2-core machine, HTTP round trips of the check included; the test
//! `a_revocation_on_one_instance_is_honoured_by_another_within_a_bound` in
//! `mcp-auth/tests/as_revocation_cache.rs` prints it and asserts < 1 s).
//! While an instance's listener is disconnected it does not cache; the
//! [`TTL`] (60 s) bounds anything else, such as a listener whose
//! connection died without an error yet.
//!
//! A check that read "active" from the store just before a revocation
//! committed must not cache that answer after the revocation's event was
//! applied: every invalidation bumps a generation, a check takes the
//! generation before reading the store, and its answer is cached only if
//! the generation is unchanged.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::store::{RevocationEvent, UnixTime};

/// How long an entry is trusted at most, whatever the feed says.
pub(crate) const TTL: Duration = Duration::from_secs(60);
/// Entries at most; a full cache is emptied (revocation checks are cheap
/// to redo, and a simple bound cannot be gamed into keeping stale entries).
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// A generation taken before reading the store (see [`RevocationCache::ticket`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

#[derive(Debug)]
struct Entry {
    grant_id: String,
    /// The earlier of the token's and the grant's expiry.
    valid_until: UnixTime,
    checked_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether the feed is connected: only then may answers be cached.
    enabled: bool,
    generation: u64,
    entries: HashMap<String, Entry>,
}

impl Inner {
    fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }
}

/// The cache of one authorization server; disabled until its feed says
/// it is connected.
#[derive(Debug)]
pub(crate) struct RevocationCache {
    /// Read on every MCP request (a hit changes nothing), written on misses and events.
    inner: RwLock<Inner>,
    ttl: Duration,
    max_entries: usize,
}

impl Default for RevocationCache {
    fn default() -> Self {
        Self::new(TTL, MAX_ENTRIES)
    }
}

impl RevocationCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { inner: RwLock::default(), ttl, max_entries }
    }

    // Every update leaves the map consistent: a panic elsewhere changes nothing.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `jti` was found active within the TTL and is still unexpired
    /// at `now` (its grant too), with nothing heard of it since.
    pub(crate) fn is_active(&self, jti: &str, now: UnixTime, at: Instant) -> bool {
        let inner = self.read();
        inner.enabled
            && inner
                .entries
                .get(jti)
                .is_some_and(|e| e.valid_until > now && at.saturating_duration_since(e.checked_at) < self.ttl)
    }

    /// The generation, to be taken before the store is read.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.read().generation)
    }

    /// Remembers that `jti` (of `grant_id`) was found active, unless
    /// anything was invalidated since `ticket` was taken.
    pub(crate) fn insert(
        &self,
        ticket: Ticket,
        jti: &str,
        grant_id: &str,
        valid_until: UnixTime,
        at: Instant,
    ) {
        let mut inner = self.write();
        if !inner.enabled || inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= self.max_entries && !inner.entries.contains_key(jti) {
            inner.entries.clear();
        }
        inner
            .entries
            .insert(jti.to_owned(), Entry { grant_id: grant_id.to_owned(), valid_until, checked_at: at });
    }

    /// Applies an event of the feed.
    pub(crate) fn apply(&self, event: &RevocationEvent) {
        let mut inner = self.write();
        inner.invalidate();
        match event {
            RevocationEvent::AccessToken(jti) => {
                inner.entries.remove(jti);
            }
            // Revocations are rare: a scan beats keeping a second index.
            RevocationEvent::Grant(grant_id) => inner.entries.retain(|_, e| e.grant_id != *grant_id),
            RevocationEvent::Connected => {
                inner.entries.clear();
                inner.enabled = true;
            }
            RevocationEvent::Disconnected => {
                inner.entries.clear();
                inner.enabled = false;
            }
        }
    }

    /// Forgets everything and caches nothing more (the feed ended).
    pub(crate) fn disable(&self) {
        self.apply(&RevocationEvent::Disconnected);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_000;

    fn connected() -> RevocationCache {
        let cache = RevocationCache::new(Duration::from_secs(60), 3);
        cache.apply(&RevocationEvent::Connected);
        cache
    }

    fn put(cache: &RevocationCache, jti: &str, grant: &str, at: Instant) {
        cache.insert(cache.ticket(), jti, grant, NOW + 100, at);
    }

    #[test]
    fn nothing_is_cached_before_the_feed_is_connected() {
        let cache = RevocationCache::new(TTL, MAX_ENTRIES);
        let at = Instant::now();
        put(&cache, "j", "g", at);
        assert!(!cache.is_active("j", NOW, at));
        cache.apply(&RevocationEvent::Connected);
        put(&cache, "j", "g", at);
        assert!(cache.is_active("j", NOW, at));
    }

    #[test]
    fn an_access_token_event_removes_that_token_only() {
        let cache = connected();
        let at = Instant::now();
        put(&cache, "j1", "g", at);
        put(&cache, "j2", "g", at);
        cache.apply(&RevocationEvent::AccessToken("j1".into()));
        assert!(!cache.is_active("j1", NOW, at));
        assert!(cache.is_active("j2", NOW, at));
    }

    #[test]
    fn a_grant_event_removes_every_token_of_the_grant() {
        let cache = connected();
        let at = Instant::now();
        put(&cache, "j1", "g1", at);
        put(&cache, "j2", "g1", at);
        put(&cache, "j3", "g2", at);
        cache.apply(&RevocationEvent::Grant("g1".into()));
        assert!(!cache.is_active("j1", NOW, at));
        assert!(!cache.is_active("j2", NOW, at));
        assert!(cache.is_active("j3", NOW, at));
    }

    #[test]
    fn a_disconnection_clears_and_stops_caching_until_reconnected() {
        let cache = connected();
        let at = Instant::now();
        put(&cache, "j", "g", at);
        cache.apply(&RevocationEvent::Disconnected);
        assert!(!cache.is_active("j", NOW, at));
        put(&cache, "j", "g", at);
        assert!(!cache.is_active("j", NOW, at), "cached while disconnected");
        cache.apply(&RevocationEvent::Connected);
        assert!(!cache.is_active("j", NOW, at));
        put(&cache, "j", "g", at);
        assert!(cache.is_active("j", NOW, at));
        // A reconnection clears too: events may have been missed.
        cache.apply(&RevocationEvent::Connected);
        assert!(!cache.is_active("j", NOW, at));
    }

    #[test]
    fn entries_lapse_after_the_ttl_and_at_expiry() {
        let cache = connected();
        let at = Instant::now();
        put(&cache, "j", "g", at);
        assert!(cache.is_active("j", NOW, at + Duration::from_secs(59)));
        assert!(!cache.is_active("j", NOW, at + Duration::from_secs(60)));
        assert!(cache.is_active("j", NOW + 99, at));
        assert!(!cache.is_active("j", NOW + 100, at), "past the token's or grant's expiry");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = connected();
        let at = Instant::now();
        for i in 0..10 {
            put(&cache, &format!("j{i}"), "g", at);
            assert!(cache.len() <= 3);
        }
        assert!(cache.is_active("j9", NOW, at));
    }

    #[test]
    fn an_answer_read_before_an_invalidation_is_not_cached_after_it() {
        let cache = connected();
        let at = Instant::now();
        // A check takes its ticket and reads "active"; meanwhile the token
        // is revoked and the event applied; then the check tries to cache.
        let ticket = cache.ticket();
        cache.apply(&RevocationEvent::AccessToken("j".into()));
        cache.insert(ticket, "j", "g", NOW + 100, at);
        assert!(!cache.is_active("j", NOW, at), "a stale answer was cached");
        // Any invalidation counts, even of another token: the check cannot tell.
        let ticket = cache.ticket();
        cache.apply(&RevocationEvent::Grant("other".into()));
        cache.insert(ticket, "j", "g", NOW + 100, at);
        assert!(!cache.is_active("j", NOW, at));
        let ticket = cache.ticket();
        cache.apply(&RevocationEvent::Connected);
        cache.insert(ticket, "j", "g", NOW + 100, at);
        assert!(!cache.is_active("j", NOW, at));
        // Without an invalidation in between it is cached.
        let ticket = cache.ticket();
        cache.insert(ticket, "j", "g", NOW + 100, at);
        assert!(cache.is_active("j", NOW, at));
    }
}
