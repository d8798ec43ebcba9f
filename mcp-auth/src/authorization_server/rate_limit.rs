//! Per-client-IP rate limits on the OAuth endpoints, answering `429` with
//! `Retry-After`. Defaults follow the TypeScript SDK's authorization server:
//! register 20 per hour, token 50 per 15 minutes, authorize 100 per 15
//! minutes, revoke 50 per 15 minutes.
//!
//! The client address is the TCP peer (`axum::extract::ConnectInfo`; serve
//! with `into_make_service_with_connect_info::<SocketAddr>()`), or, behind
//! `trusted_proxy_hops` reverse proxies, the `X-Forwarded-For` entry the
//! nearest trusted proxy appended. Without either, requests are not limited
//! (and a warning says so once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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

use super::responses::json_no_store;

/// Most (endpoint, address) windows remembered; expired ones are dropped
/// first when full.
const MAX_TRACKED: usize = 100_000;

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

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// Fixed-window counters, in memory (each instance limits on its own).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    windows: Mutex<HashMap<(Bucket, IpAddr), Window>>,
    warned: AtomicBool,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self { config, windows: Mutex::new(HashMap::new()), warned: AtomicBool::new(false) }
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
        let window = Duration::from_secs(limit.window_secs.max(1));
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED {
            windows.retain(|(b, _), w| {
                now.duration_since(w.started) < Duration::from_secs(self.limit(*b).window_secs)
            });
        }
        let entry = windows.entry((bucket, ip)).or_insert(Window { started: now, count: 0 });
        if now.duration_since(entry.started) >= window {
            *entry = Window { started: now, count: 0 };
        }
        if entry.count >= limit.max {
            let left = window.saturating_sub(now.duration_since(entry.started));
            return Err(left.as_secs().max(1));
        }
        entry.count += 1;
        Ok(())
    }

    /// The client address of a request.
    fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let hops = self.config.trusted_proxy_hops;
        if hops == 0 {
            return peer;
        }
        // Each trusted proxy appends the address it received from: with n
        // trusted proxies, the n-th entry from the right is the client's.
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // A shorter list did not come through every proxy: the peer it is.
        let Some(index) = forwarded.len().checked_sub(hops) else { return peer };
        forwarded.get(index).and_then(|ip| ip.parse().ok()).or(peer)
    }
}

/// The middleware: counts the request against `bucket`.
pub(crate) async fn limit(
    State((limiter, bucket)): State<(Arc<RateLimiter>, Bucket)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some(ip) = limiter.client_ip(peer, request.headers()) else {
        if !limiter.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "mcp-auth: rate limits are off: no client address (serve with \
                 into_make_service_with_connect_info, or check trusted_proxy_hops)"
            );
        }
        return next.run(request).await;
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

    #[test]
    fn forwarded_for_is_trusted_only_for_the_configured_hops() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        let peer = Some("10.0.0.1".parse().unwrap());
        let direct = RateLimiter::new(RateLimitConfig::default());
        assert_eq!(direct.client_ip(peer, &headers), peer, "spoofable header ignored");
        let one = RateLimiter::new(RateLimitConfig { trusted_proxy_hops: 1, ..RateLimitConfig::default() });
        assert_eq!(one.client_ip(peer, &headers), Some("203.0.113.7".parse().unwrap()));
        let three = RateLimiter::new(RateLimitConfig { trusted_proxy_hops: 3, ..RateLimitConfig::default() });
        assert_eq!(three.client_ip(peer, &headers), peer);
    }
}
