//! Per-client-IP rate limits on the OAuth endpoints: `429` with
//! `Retry-After`, separate counters per endpoint and per client address.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{assert_oauth_error, start_with};
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::{Limit, RateLimitConfig};
use serde_json::json;

fn limits(hops: usize) -> RateLimitConfig {
    let mut limits = RateLimitConfig::default();
    limits.register = Limit::new(2, 3600);
    limits.trusted_proxy_hops = hops;
    limits
}

#[tokio::test]
async fn register_over_the_limit_gets_429_with_retry_after() {
    let s = start_with(|c| c.with_rate_limits(limits(0)), Arc::new(MemoryStore::new()), "").await;
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    assert_eq!(s.register_raw(&metadata).await.status(), 201);
    assert_eq!(s.register_raw(&metadata).await.status(), 201);
    let refused = s.register_raw(&metadata).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after));
    assert_oauth_error(refused, 429, "too_many_requests").await;
    // Other endpoints count separately.
    let token = s.post_form("/token", &[("grant_type", "refresh_token"), ("client_id", "x")]).await;
    assert_eq!(token.status(), 401);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_counts_alone() {
    let s = start_with(|c| c.with_rate_limits(limits(1)), Arc::new(MemoryStore::new()), "").await;
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    let register = |client: &'static str| {
        s.http.post(s.url("/register")).header("x-forwarded-for", client).json(&metadata).send()
    };
    assert_eq!(register("203.0.113.1").await.unwrap().status(), 201);
    assert_eq!(register("203.0.113.1").await.unwrap().status(), 201);
    assert_eq!(register("203.0.113.1").await.unwrap().status(), 429);
    // A spoofed leftmost entry does not help: the proxy's own entry is the rightmost.
    assert_eq!(register("198.51.100.9, 203.0.113.1").await.unwrap().status(), 429);
    assert_eq!(register("203.0.113.2").await.unwrap().status(), 201);
}

#[tokio::test]
async fn ipv6_clients_behind_a_proxy_count_per_64() {
    let s = start_with(|c| c.with_rate_limits(limits(1)), Arc::new(MemoryStore::new()), "").await;
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    let register = |client: &'static str| {
        s.http.post(s.url("/register")).header("x-forwarded-for", client).json(&metadata).send()
    };
    assert_eq!(register("2001:db8:1:2::1").await.unwrap().status(), 201);
    assert_eq!(register("[2001:db8:1:2::2]:51000").await.unwrap().status(), 201);
    // A fresh address in the same /64 is the same client.
    assert_eq!(register("2001:db8:1:2:ffff:ffff:ffff:fffe").await.unwrap().status(), 429);
    assert_eq!(register("2001:db8:1:3::1").await.unwrap().status(), 201, "another /64");
}

#[tokio::test]
async fn an_unparsable_forwarded_entry_is_refused_not_merged_with_the_proxy() {
    let s = start_with(|c| c.with_rate_limits(limits(1)), Arc::new(MemoryStore::new()), "").await;
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    let register = |client: &'static str| {
        s.http.post(s.url("/register")).header("x-forwarded-for", client).json(&metadata).send()
    };
    // Were these counted as the proxy's own address (the TCP peer), the
    // third would be refused and then so would every client without a header.
    for _ in 0..3 {
        assert_oauth_error(register("unknown").await.unwrap(), 400, "invalid_request").await;
    }
    assert_eq!(s.register_raw(&metadata).await.status(), 201, "the peer's own window is untouched");
    assert_eq!(s.register_raw(&metadata).await.status(), 201);
}
