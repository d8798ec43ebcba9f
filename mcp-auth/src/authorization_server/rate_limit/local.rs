//! Fixed windows in this process's memory: each instance counts on its
//! own. Windows live in per-endpoint shards, each bounded; the oldest
//! window is forgotten when a shard is full, so no request ever sweeps the
//! table.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::client::ClientKey;
use super::{Bucket, Limit};

/// Most client windows remembered per endpoint. When full, the oldest
/// window is forgotten to make room (that client starts a fresh window).
const MAX_TRACKED_PER_BUCKET: usize = 25_000;

/// Independent locks per endpoint, so that concurrent requests from
/// different clients rarely wait on each other.
const SHARDS: usize = 16;

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// One shard of one endpoint's windows. All windows of an endpoint have the
/// same length, so the order in which they started is the order in which
/// they expire: expired windows are popped from the front, and at the cap
/// the oldest goes. Every request does O(1) amortized work.
#[derive(Debug, Default)]
struct Shard {
    windows: HashMap<ClientKey, Window>,
    /// Keys in the order their windows started; in step with `windows`.
    started: VecDeque<(ClientKey, Instant)>,
}

impl Shard {
    /// Counts a request of `key`; `Err(time to wait)` when over the limit.
    fn count(
        &mut self,
        key: ClientKey,
        limit: Limit,
        window: Duration,
        cap: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        while let Some(&(oldest, started)) = self.started.front() {
            if now.saturating_duration_since(started) < window {
                break;
            }
            self.forget_oldest(oldest);
        }
        if !self.windows.contains_key(&key) {
            if self.windows.len() >= cap.max(1)
                && let Some(&(oldest, _)) = self.started.front()
            {
                self.forget_oldest(oldest);
            }
            self.windows.insert(key, Window { started: now, count: 0 });
            self.started.push_back((key, now));
        }
        let Some(entry) = self.windows.get_mut(&key) else { return Ok(()) };
        if entry.count >= limit.max {
            return Err(window.saturating_sub(now.saturating_duration_since(entry.started)));
        }
        entry.count += 1;
        Ok(())
    }

    fn forget_oldest(&mut self, key: ClientKey) {
        self.started.pop_front();
        self.windows.remove(&key);
    }
}

/// Fixed-window counters of every endpoint, in memory.
#[derive(Debug)]
pub(super) struct LocalWindows {
    /// Per endpoint, [`SHARDS`] shards.
    shards: HashMap<Bucket, Vec<Mutex<Shard>>>,
    cap_per_shard: usize,
}

impl LocalWindows {
    pub(super) fn new() -> Self {
        Self::with_capacity(MAX_TRACKED_PER_BUCKET)
    }

    /// Windows for at most about `per_bucket` clients per endpoint.
    fn with_capacity(per_bucket: usize) -> Self {
        let shards = Bucket::ALL
            .into_iter()
            .map(|bucket| (bucket, (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect()))
            .collect();
        Self { shards, cap_per_shard: per_bucket.div_ceil(SHARDS) }
    }

    /// Counts a request of `key` against `limit` (whose `max` is not 0);
    /// `Err(time to wait)` when over it.
    pub(super) fn count(
        &self,
        bucket: Bucket,
        key: ClientKey,
        limit: Limit,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(shards) = self.shards.get(&bucket) else { return Ok(()) };
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % SHARDS as u64) as usize;
        let Some(shard) = shards.get(index) else { return Ok(()) };
        let window = Duration::from_secs(limit.window_secs.max(1));
        let mut shard = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shard.count(key, limit, window, self.cap_per_shard, now)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn key(text: &str) -> ClientKey {
        ClientKey::of(text.parse().unwrap())
    }

    #[test]
    fn fixed_window_limits_and_resets() {
        let windows = LocalWindows::new();
        let limit = Limit::new(2, 60);
        let (client, other) = (key("192.0.2.1"), key("192.0.2.2"));
        let t0 = Instant::now();
        assert!(windows.count(Bucket::Token, client, limit, t0).is_ok());
        assert!(windows.count(Bucket::Token, client, limit, t0).is_ok());
        let later = t0 + Duration::from_secs(15);
        assert_eq!(windows.count(Bucket::Token, client, limit, later), Err(Duration::from_secs(45)));
        assert!(windows.count(Bucket::Token, other, limit, t0).is_ok(), "per address");
        assert!(windows.count(Bucket::Register, client, limit, t0).is_ok(), "per endpoint");
        let next = t0 + Duration::from_secs(60);
        assert!(windows.count(Bucket::Token, client, limit, next).is_ok(), "a new window");
    }

    #[test]
    fn at_the_cap_the_oldest_window_goes_and_expired_ones_leave_first() {
        let limit = Limit::new(1, 60);
        // One client per shard at most.
        let windows = LocalWindows::with_capacity(SHARDS);
        let t0 = Instant::now();
        let clients: Vec<ClientKey> =
            (0..=255u8).map(|n| ClientKey::of(IpAddr::from([198, 51, 100, n]))).collect();
        for (i, client) in clients.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            assert!(windows.count(Bucket::Token, *client, limit, at).is_ok());
        }
        let remembered: usize =
            windows.shards[&Bucket::Token].iter().map(|s| s.lock().unwrap().windows.len()).sum();
        assert!(remembered <= SHARDS, "the cap holds: {remembered}");
        let newest = clients[255];
        let soon = t0 + Duration::from_secs(1);
        assert!(windows.count(Bucket::Token, newest, limit, soon).is_err(), "newest kept");
        let later = t0 + Duration::from_secs(61);
        assert!(windows.count(Bucket::Token, newest, limit, later).is_ok(), "an expired window is gone");
        for shard in &windows.shards[&Bucket::Token] {
            let shard = shard.lock().unwrap();
            assert_eq!(shard.windows.len(), shard.started.len(), "order and windows in step");
        }
    }
}
