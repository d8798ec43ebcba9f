//! Rate limits counted in Redis by two authorization servers, as two
//! instances behind one load balancer (each test starts its own Redis, see
//! tests/src/redis.rs): requests alternating between the instances are
//! limited by their combined count, clients, endpoints and key prefixes
//! count apart, and while Redis is down or silent (or one counter is
//! spoiled) each instance limits on its own, without failing or holding up
//! a request, until shared counting resumes.

// A panic is the report.
#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use as_support::test_redis::TestRedis;
use as_support::{TestServer, assert_oauth_error, start_built};
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::{
    AuthorizationServer, AuthorizationServerConfig, AuthorizationServerError, ConfigError, Limit,
    RateLimitConfig,
};
use reqwest::Response;
use serde_json::json;

/// Requests to `/register` allowed per client and hour.
const LIMIT: u32 = 3;

fn server() -> TestRedis {
    TestRedis::start().expect("a Redis server (scripts/setup.sh installs Debian's `redis-server`)")
}

/// An instance counting in the Redis at `url` under `prefix`, behind one
/// trusted proxy (so each test names its clients in `X-Forwarded-For`).
async fn instance(url: &str, prefix: &str) -> TestServer {
    let mut limits = RateLimitConfig::default();
    limits.register = Limit::new(LIMIT, 3600);
    limits.trusted_proxy_hops = 1;
    start_built(
        |c| c.with_rate_limits(limits),
        |b| b.store(Arc::new(MemoryStore::new())).redis_rate_limits(url, prefix),
        "",
    )
    .await
}

/// A registration at `server` from `client`; an answer must come within 5 s.
async fn register(server: &TestServer, client: &str) -> Response {
    let metadata = json!({"redirect_uris": ["https://app.example/cb"]});
    let request = server.http.post(server.url("/register")).header("x-forwarded-for", client).json(&metadata);
    tokio::time::timeout(Duration::from_secs(5), request.send()).await.expect("an answer within 5 s").unwrap()
}

async fn status(server: &TestServer, client: &str) -> u16 {
    register(server, client).await.status().as_u16()
}

/// A `429 too_many_requests` with a `Retry-After` within the window.
async fn assert_limited(response: Response) {
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "Retry-After: {retry_after}");
    assert_oauth_error(response, 429, "too_many_requests").await;
}

/// A counter in Redis: its count and milliseconds left.
async fn counter(redis: &TestRedis, key: &str) -> (u64, i64) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let count: Option<u64> = redis::cmd("GET").arg(key).query_async(&mut connection).await.unwrap();
    let left: i64 = redis::cmd("PTTL").arg(key).query_async(&mut connection).await.unwrap();
    (count.unwrap_or(0), left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_alternating_between_instances_are_limited_by_their_combined_count() {
    let redis = server();
    let (a, b) = (instance(&redis.url(), "mcp").await, instance(&redis.url(), "mcp").await);
    let client = "203.0.113.1";
    assert_eq!(status(&a, client).await, 201);
    assert_eq!(status(&b, client).await, 201);
    assert_eq!(status(&a, client).await, 201);
    // Each instance has seen at most two: only the shared count refuses.
    assert_limited(register(&b, client).await).await;
    assert_limited(register(&a, client).await).await;

    // The counter is in Redis under `<prefix>:rl:<endpoint>:<client>`, expiring with the window.
    let (count, left) = counter(&redis, "mcp:rl:register:203.0.113.1").await;
    assert!(count > u64::from(LIMIT), "{count}");
    assert!(left > 3_500_000 && left <= 3_600_000, "{left} ms left");

    // Another endpoint counts apart.
    let token = a.http.post(a.url("/token")).header("x-forwarded-for", client);
    let token = token.form(&[("grant_type", "refresh_token"), ("client_id", "x")]).send().await.unwrap();
    assert_eq!(token.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_count_apart_ipv6_per_64_and_prefixes_apart() {
    let redis = server();
    let (a, b) = (instance(&redis.url(), "mcp").await, instance(&redis.url(), "mcp").await);
    for _ in 0..LIMIT {
        assert_eq!(status(&a, "203.0.113.1").await, 201);
    }
    assert_eq!(status(&b, "203.0.113.1").await, 429);
    assert_eq!(status(&b, "203.0.113.2").await, 201, "another client");
    assert_eq!(status(&b, "::ffff:203.0.113.2").await, 201, "the same client, IPv4-mapped");
    assert_eq!(counter(&redis, "mcp:rl:register:203.0.113.2").await.0, 2);

    // Every address of one /64 is one client, on either instance.
    assert_eq!(status(&a, "2001:db8:1:2::1").await, 201);
    assert_eq!(status(&b, "[2001:db8:1:2::2]:443").await, 201);
    assert_eq!(status(&a, "2001:db8:1:2:ffff::3").await, 201);
    assert_eq!(status(&b, "2001:db8:1:2::4").await, 429, "same /64");
    assert_eq!(status(&b, "2001:db8:1:3::1").await, 201, "next /64");
    assert!(counter(&redis, "mcp:rl:register:2001:db8:1:2::/64").await.0 > u64::from(LIMIT));

    // A server with another prefix shares the Redis, not the counts.
    let other = instance(&redis.url(), "other").await;
    assert_eq!(status(&other, "203.0.113.1").await, 201);
    assert_eq!(counter(&redis, "other:rl:register:203.0.113.1").await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_each_instance_limits_alone_then_sharing_resumes() {
    let mut redis = server();
    let a = instance(&redis.url(), "mcp").await;
    assert_eq!(status(&a, "203.0.113.1").await, 201, "connected");
    redis.stop();
    // Starts, and answers, without Redis.
    let b = instance(&redis.url(), "mcp").await;

    // Each instance counts alone: the limit per instance, then 429; never a 5xx.
    let client = "203.0.113.2";
    for server in [&a, &b] {
        for _ in 0..LIMIT {
            assert_eq!(status(server, client).await, 201);
        }
        assert_limited(register(server, client).await).await;
    }

    redis.restart().unwrap();
    // Shared counting resumes within seconds: a fresh client alternating
    // between the instances is refused after LIMIT requests in all.
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 1.. {
        let client = format!("198.51.100.{n}");
        let mut statuses = Vec::new();
        for server in [&a, &b, &a, &b] {
            statuses.push(status(server, &client).await);
        }
        assert!(statuses.iter().all(|s| *s == 201 || *s == 429), "{statuses:?}");
        if statuses == [201, 201, 201, 429] {
            assert!(counter(&redis, &format!("mcp:rl:register:{client}")).await.0 > u64::from(LIMIT));
            break;
        }
        assert!(Instant::now() < deadline, "shared counting did not resume: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_spoiled_by_a_foreign_write_falls_back_for_that_client_alone() {
    let redis = server();
    let (a, b) = (instance(&redis.url(), "mcp").await, instance(&redis.url(), "mcp").await);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let spoiled = "mcp:rl:register:203.0.113.9";
    let () = redis::cmd("SET").arg(spoiled).arg("not a number").query_async(&mut connection).await.unwrap();
    // INCR fails for this client: it is limited in memory, per instance.
    for _ in 0..LIMIT {
        assert_eq!(status(&a, "203.0.113.9").await, 201);
    }
    assert_eq!(status(&a, "203.0.113.9").await, 429);
    assert_eq!(status(&b, "203.0.113.9").await, 201);
    // Everyone else is still counted in Redis, at once.
    let mut statuses = Vec::new();
    for server in [&a, &b, &a, &b] {
        statuses.push(status(server, "203.0.113.1").await);
    }
    assert_eq!(statuses, [201, 201, 201, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_answers_delays_no_request_by_more_than_a_moment() {
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let (a, b) = (instance(&url, "mcp").await, instance(&url, "mcp").await);
    for server in [&a, &b] {
        for expected in [201, 201, 201, 429] {
            let started = Instant::now();
            assert_eq!(status(server, "203.0.113.1").await, expected);
            assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        }
    }
}

#[test]
fn an_unusable_redis_url_is_refused_at_startup_without_showing_its_password() {
    for url in ["http://:hunter2@cache.internal/", "redis://:hunter2@cache.internal/db-seven"] {
        let config = AuthorizationServerConfig::new("http://127.0.0.1:8080");
        let builder =
            AuthorizationServer::builder(config, "http://127.0.0.1:8080/mcp").redis_rate_limits(url, "mcp");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let error = builder.validate().unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        let AuthorizationServerError::Config(ConfigError::Invalid { key, .. }) = error else {
            panic!("{error:?}")
        };
        assert_eq!(key, "redis.url");
    }
}
