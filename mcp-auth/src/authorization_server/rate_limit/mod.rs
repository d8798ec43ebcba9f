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
//! Each instance counts in its own memory (`local`). With
//! `AuthorizationServerBuilder::redis_rate_limits` (feature `redis`),
//! instances behind one load balancer count together in Redis (`redis`),
//! and each falls back to its own memory while Redis does not answer:
//! limits hold, per instance, and no request fails for it.

mod client;
mod local;
#[cfg(feature = "redis")]
mod redis;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::client::{ClientKey, NoClient, client_ip};
use self::local::LocalWindows;
#[cfg(feature = "redis")]
pub(crate) use self::redis::RedisWindows;
use super::error::OAuthError;
use super::responses::{json_no_store, oauth_error};

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

impl Bucket {
    const ALL: [Self; 4] = [Self::Register, Self::Token, Self::Authorize, Self::Revoke];

    /// Its name in logs and Redis keys.
    fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Token => "token",
            Self::Authorize => "authorize",
            Self::Revoke => "revoke",
        }
    }
}

/// The limits of every endpoint, counted in memory or, with
/// [`RedisWindows`], in Redis with the memory as fallback.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    local: LocalWindows,
    #[cfg(feature = "redis")]
    shared: Option<RedisWindows>,
    warned: AtomicBool,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            local: LocalWindows::new(),
            #[cfg(feature = "redis")]
            shared: None,
            warned: AtomicBool::new(false),
        }
    }

    /// Counts in `shared` first; in memory only when Redis does not answer.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_through(mut self, shared: RedisWindows) -> Self {
        self.shared = Some(shared);
        self
    }

    fn limit(&self, bucket: Bucket) -> Limit {
        match bucket {
            Bucket::Register => self.config.register,
            Bucket::Token => self.config.token,
            Bucket::Authorize => self.config.authorize,
            Bucket::Revoke => self.config.revoke,
        }
    }

    /// Counts a request of `client`; `Err(time to wait)` when over the limit.
    async fn check(&self, bucket: Bucket, client: ClientKey) -> Result<(), Duration> {
        let limit = self.limit(bucket);
        if limit.max == 0 {
            return Ok(());
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared.count(bucket, client, limit).await
        {
            return verdict;
        }
        self.local.count(bucket, client, limit, Instant::now())
    }
}

/// The middleware: counts the request against `bucket`.
pub(crate) async fn limit(
    State((limiter, bucket)): State<(Arc<RateLimiter>, Bucket)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = match client_ip(limiter.config.trusted_proxy_hops, peer, request.headers()) {
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
    match limiter.check(bucket, ClientKey::of(ip)).await {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            tracing::info!(%ip, bucket = bucket.name(), "mcp-auth: rate limit reached");
            too_many_requests(wait)
        }
    }
}

/// `429` with `Retry-After` in whole seconds (at least 1).
fn too_many_requests(wait: Duration) -> Response {
    let body = json!({"error": "too_many_requests", "error_description": "too many requests; retry later"});
    let mut response = json_no_store(StatusCode::TOO_MANY_REQUESTS, &body);
    if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}
