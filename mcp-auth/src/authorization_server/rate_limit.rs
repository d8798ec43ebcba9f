//! Per-client-IP rate limits on the OAuth endpoints, answering `429` with
//! `Retry-After`. Defaults follow the TypeScript SDK's authorization server:
//! register 20 per hour, token 50 per 15 minutes, authorize 100 per 15
//! minutes, revoke 50 per 15 minutes.
//!
//! The client address is the TCP peer (`axum::extract::ConnectInfo`; serve
//! with `into_make_service_with_connect_info::<SocketAddr>()`), or, behind
//! `trusted_proxy_hops` reverse proxies, the `X-Forwarded-For` entry the
//! nearest trusted proxy appended; an entry there that is not an address is
//! refused with `400 invalid_request` rather than counted as the proxy. IPv6
//! clients are counted per /64. Without any address, requests are not
//! limited (and a warning says so once).
//!
//! Windows live in per-endpoint shards, each bounded; the oldest window is
//! forgotten when a shard is full, so no request ever sweeps the table.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::OAuthError;
use super::responses::{json_no_store, oauth_error};

/// Most client windows remembered per endpoint. When full, the oldest
/// window is forgotten to make room (that client starts a fresh window).
const MAX_TRACKED_PER_BUCKET: usize = 25_000;

/// Independent locks per endpoint, so that concurrent requests from
/// different clients rarely wait on each other.
const SHARDS: usize = 16;

/// One limit: at most `max` requests per `window_secs` per client address
/// (`max = 0` turns it off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Limit {
    /// Requests allowed per window.
    pub max: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl Limit {
    /// `max` requests per `window_secs`.
    pub fn new(max: u32, window_secs: u64) -> Self {
        Self { max, window_secs }
    }
}

/// `[auth.authorization_server.rate_limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// `/register` (default 20 per hour).
    pub register: Limit,
    /// `/token` (default 50 per 15 minutes).
    pub token: Limit,
    /// `/authorize` and its login and consent forms (default 100 per 15 minutes).
    pub authorize: Limit,
    /// `/revoke` and `/introspect` (default 50 per 15 minutes).
    pub revoke: Limit,
    /// Reverse proxies in front of the server whose `X-Forwarded-For` is
    /// trusted (default 0: the TCP peer is the client).
    pub trusted_proxy_hops: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            register: Limit::new(20, 3600),
            token: Limit::new(50, 900),
            authorize: Limit::new(100, 900),
            revoke: Limit::new(50, 900),
            trusted_proxy_hops: 0,
        }
    }
}

/// Which limit a route counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Register,
    Token,
    Authorize,
    Revoke,
}

/// Whom a window counts: an IPv4 address, or an IPv6 /64 (one
/// customer's network is commonly a whole /64, so counting single IPv6
/// addresses would let one client take a fresh window per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(Ipv4Addr),
    V6Prefix(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 client.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

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
    /// Counts a request of `key`; `Err(seconds)` to wait when over the limit.
    fn count(
        &mut self,
        key: ClientKey,
        limit: Limit,
        window: Duration,
        cap: usize,
        now: Instant,
    ) -> Result<(), u64> {
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
            let left = window.saturating_sub(now.saturating_duration_since(entry.started));
            return Err(left.as_secs().max(1));
        }
        entry.count += 1;
        Ok(())
    }

    fn forget_oldest(&mut self, key: ClientKey) {
        self.started.pop_front();
        self.windows.remove(&key);
    }
}

/// Fixed-window counters, in memory (each instance limits on its own).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    /// Per endpoint, [`SHARDS`] shards.
    shards: HashMap<Bucket, Vec<Mutex<Shard>>>,
    cap_per_shard: usize,
    warned: AtomicBool,
}

/// Why no client address could be found for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NoClient {
    /// No TCP peer address and no trusted forwarding header: not limited.
    Unknown,
    /// The entry the nearest trusted proxy wrote is not an address.
    Unparsable(String),
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self::with_capacity(config, MAX_TRACKED_PER_BUCKET)
    }

    /// A limiter remembering at most about `per_bucket` clients per endpoint.
    fn with_capacity(config: RateLimitConfig, per_bucket: usize) -> Self {
        let buckets = [Bucket::Register, Bucket::Token, Bucket::Authorize, Bucket::Revoke];
        let shards = buckets
            .into_iter()
            .map(|bucket| (bucket, (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect()))
            .collect();
        Self { config, shards, cap_per_shard: per_bucket.div_ceil(SHARDS), warned: AtomicBool::new(false) }
    }

    fn limit(&self, bucket: Bucket) -> Limit {
        match bucket {
            Bucket::Register => self.config.register,
            Bucket::Token => self.config.token,
            Bucket::Authorize => self.config.authorize,
            Bucket::Revoke => self.config.revoke,
        }
    }

    /// Counts a request; `Err(seconds)` to wait when over the limit.
    fn check(&self, bucket: Bucket, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let limit = self.limit(bucket);
        if limit.max == 0 {
            return Ok(());
        }
        let key = ClientKey::of(ip);
        let Some(shards) = self.shards.get(&bucket) else { return Ok(()) };
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % SHARDS as u64) as usize;
        let Some(shard) = shards.get(index) else { return Ok(()) };
        let window = Duration::from_secs(limit.window_secs.max(1));
        let mut shard = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shard.count(key, limit, window, self.cap_per_shard, now)
    }

    /// The client address of a request.
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Result<IpAddr, NoClient> {
        let hops = self.config.trusted_proxy_hops;
        if hops == 0 {
            return peer.ok_or(NoClient::Unknown);
        }
        // Each trusted proxy appends the address it received from: with n
        // trusted proxies, the n-th entry from the right is the client's.
        // A shorter list was written by trusted proxies only, so its first
        // entry is the client; an empty one means the peer is the client.
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let Some(entry) = forwarded.get(forwarded.len().saturating_sub(hops)) else {
            return peer.ok_or(NoClient::Unknown);
        };
        // Never fall back to the peer here: behind a proxy, the peer is the
        // proxy, and every client would share its window.
        parse_forwarded_address(entry).ok_or_else(|| NoClient::Unparsable((*entry).to_owned()))
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`, `[2001:db8::1]`).
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// The middleware: counts the request against `bucket`.
pub(crate) async fn limit(
    State((limiter, bucket)): State<(Arc<RateLimiter>, Bucket)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = match limiter.client_ip(peer, request.headers()) {
        Ok(ip) => ip,
        Err(NoClient::Unknown) => {
            if !limiter.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "mcp-auth: rate limits are off: no client address (serve with \
                     into_make_service_with_connect_info, or check trusted_proxy_hops)"
                );
            }
            return next.run(request).await;
        }
        Err(NoClient::Unparsable(entry)) => {
            tracing::warn!(
                entry = %entry.escape_debug(),
                "mcp-auth: the X-Forwarded-For entry of the nearest trusted proxy is not an address \
                 (check trusted_proxy_hops)"
            );
            return oauth_error(&OAuthError::invalid_request(
                "the X-Forwarded-For entry of the trusted proxy is not an IP address",
            ));
        }
    };
    match limiter.check(bucket, ip, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            tracing::info!(%ip, ?bucket, "mcp-auth: rate limit reached");
            let body =
                json!({"error": "too_many_requests", "error_description": "too many requests; retry later"});
            let mut response = json_no_store(StatusCode::TOO_MANY_REQUESTS, &body);
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_limits_and_resets() {
        let limiter =
            RateLimiter::new(RateLimitConfig { token: Limit::new(2, 60), ..RateLimitConfig::default() });
        let (ip, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limiter.check(Bucket::Token, ip, t0).is_ok());
        assert!(limiter.check(Bucket::Token, ip, t0).is_ok());
        assert_eq!(limiter.check(Bucket::Token, ip, t0 + Duration::from_secs(15)), Err(45));
        assert!(limiter.check(Bucket::Token, other, t0).is_ok(), "per address");
        assert!(limiter.check(Bucket::Register, ip, t0).is_ok(), "per endpoint");
        assert!(limiter.check(Bucket::Token, ip, t0 + Duration::from_secs(60)).is_ok(), "a new window");
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter =
            RateLimiter::new(RateLimitConfig { token: Limit::new(1, 60), ..RateLimitConfig::default() });
        let t0 = Instant::now();
        assert!(limiter.check(Bucket::Token, ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limiter.check(Bucket::Token, ip("2001:db8:1:2:ffff::9"), t0).is_err(), "same /64");
        assert!(limiter.check(Bucket::Token, ip("2001:db8:1:3::1"), t0).is_ok(), "next /64");
        assert!(limiter.check(Bucket::Token, ip("192.0.2.7"), t0).is_ok());
        assert!(limiter.check(Bucket::Token, ip("::ffff:192.0.2.7"), t0).is_err(), "mapped IPv4");
    }

    #[test]
    fn at_the_cap_the_oldest_window_goes_and_expired_ones_leave_first() {
        let config = RateLimitConfig { token: Limit::new(1, 60), ..RateLimitConfig::default() };
        // One client per shard at most.
        let limiter = RateLimiter::with_capacity(config, SHARDS);
        let t0 = Instant::now();
        let clients: Vec<IpAddr> = (0..=255u8).map(|n| IpAddr::from([198, 51, 100, n])).collect();
        for (i, client) in clients.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            assert!(limiter.check(Bucket::Token, *client, at).is_ok());
        }
        let remembered: usize =
            limiter.shards[&Bucket::Token].iter().map(|s| s.lock().unwrap().windows.len()).sum();
        assert!(remembered <= SHARDS, "the cap holds: {remembered}");
        let newest = clients[255];
        assert!(limiter.check(Bucket::Token, newest, t0 + Duration::from_secs(1)).is_err(), "newest kept");
        let later = t0 + Duration::from_secs(61);
        assert!(limiter.check(Bucket::Token, newest, later).is_ok(), "an expired window is gone");
        for shard in &limiter.shards[&Bucket::Token] {
            let shard = shard.lock().unwrap();
            assert_eq!(shard.windows.len(), shard.started.len(), "order and windows in step");
        }
    }

    #[test]
    fn forwarded_for_is_trusted_only_for_the_configured_hops() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        let peer = Some(ip("10.0.0.1"));
        let direct = RateLimiter::new(RateLimitConfig::default());
        assert_eq!(direct.client_ip(peer, &headers), Ok(ip("10.0.0.1")), "spoofable header ignored");
        let one = RateLimiter::new(RateLimitConfig { trusted_proxy_hops: 1, ..RateLimitConfig::default() });
        assert_eq!(one.client_ip(peer, &headers), Ok(ip("203.0.113.7")));
        // Fewer entries than trusted hops: all were written by trusted proxies.
        let three = RateLimiter::new(RateLimitConfig { trusted_proxy_hops: 3, ..RateLimitConfig::default() });
        assert_eq!(three.client_ip(peer, &headers), Ok(ip("6.6.6.6")));
        assert_eq!(three.client_ip(peer, &HeaderMap::new()), Ok(ip("10.0.0.1")), "no header: the peer");
        assert_eq!(three.client_ip(None, &HeaderMap::new()), Err(NoClient::Unknown));
    }

    #[test]
    fn forwarded_entries_parse_with_ports_or_are_refused() {
        let one = RateLimiter::new(RateLimitConfig { trusted_proxy_hops: 1, ..RateLimitConfig::default() });
        let peer = Some(ip("10.0.0.1"));
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", HeaderValue::from_static(value));
            one.client_ip(peer, &headers)
        };
        assert_eq!(with("192.0.2.1:4711"), Ok(ip("192.0.2.1")));
        assert_eq!(with("[2001:db8::1]:443"), Ok(ip("2001:db8::1")));
        assert_eq!(with("[2001:db8::1]"), Ok(ip("2001:db8::1")));
        assert_eq!(with("unknown"), Err(NoClient::Unparsable("unknown".into())));
        assert_eq!(with("192.0.2.1, "), Err(NoClient::Unparsable(String::new())));
    }
}
