//! Opaque tokens through RFC 7662 introspection, end to end over real HTTP on
//! 127.0.0.1, with a stand-in authorization server.

// Helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mcp_auth::{ClientAuthMethod, Clock, IntrospectionConfig, ResourceServer, ResourceServerConfig};
use serde_json::{Value, json};
use support::{App, Issuer, assert_invalid_token, now, setup, setup_with};

fn introspection_setup(
    method: ClientAuthMethod,
) -> impl FnOnce(ResourceServerConfig) -> ResourceServerConfig {
    move |c| {
        c.with_introspection(
            IntrospectionConfig::new("rs client", "s3cret:/")
                .with_auth_method(method)
                .with_cache_ttl_secs(60),
        )
    }
}

#[tokio::test]
async fn introspection_accepts_active_tokens_and_caches_them() {
    let (issuer, _key, app) = setup_with(introspection_setup(ClientAuthMethod::ClientSecretBasic)).await;
    issuer.introspects(
        "opaque-1",
        json!({"active": true, "sub": "carol", "client_id": "cli", "scope": "notes:read notes:write",
               "aud": app.resource, "iss": issuer.url, "exp": now() + 600}),
    );
    let response = app.call("opaque-1").await;
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["subject"], "carol");
    assert_eq!(seen["scopes"], json!(["notes:read", "notes:write"]));
    assert_eq!(app.call("opaque-1").await.status(), 200);
    assert_eq!(issuer.introspection_hits(), 1, "the second call used the cache");
    // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
    let (auth, form) = issuer.last_introspection();
    let expected = b64std("rs+client:s3cret%3A%2F");
    assert_eq!(auth.as_deref(), Some(format!("Basic {expected}").as_str()));
    assert!(form.contains("token=opaque-1") && form.contains("token_type_hint=access_token"), "{form}");
    assert!(!form.contains("client_secret"), "{form}");
}

fn b64std(s: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s)
}

#[tokio::test]
async fn introspection_with_client_secret_post() {
    let (issuer, _key, app) = setup_with(introspection_setup(ClientAuthMethod::ClientSecretPost)).await;
    issuer.introspects("opaque-2", json!({"active": true, "sub": "dan", "aud": [app.resource]}));
    assert_eq!(app.call("opaque-2").await.status(), 200);
    let (auth, form) = issuer.last_introspection();
    assert_eq!(auth, None);
    assert!(form.contains("client_id=rs+client") && form.contains("client_secret=s3cret%3A%2F"), "{form}");
}

#[tokio::test]
async fn introspection_refuses_inactive_unknown_and_foreign_tokens() {
    let (issuer, _key, app) = setup_with(introspection_setup(ClientAuthMethod::ClientSecretBasic)).await;
    issuer.introspects("revoked", json!({"active": false, "sub": "x", "aud": app.resource}));
    issuer.introspects("other-aud", json!({"active": true, "sub": "x", "aud": "https://other.example.com"}));
    issuer.introspects("no-aud", json!({"active": true, "sub": "x"}));
    issuer
        .introspects("expired", json!({"active": true, "sub": "x", "aud": app.resource, "exp": now() - 600}));
    issuer.introspects("truthy", json!({"active": "true", "sub": "x", "aud": app.resource}));
    for token in ["revoked", "never-issued", "other-aud", "no-aud", "expired", "truthy"] {
        assert_invalid_token(app.call(token).await).await;
    }
    // Refusals are not cached: a token activated later works at once.
    issuer.introspects("revoked", json!({"active": true, "sub": "x", "aud": app.resource}));
    assert_eq!(app.call("revoked").await.status(), 200);
}

#[tokio::test]
async fn opaque_tokens_without_introspection_are_refused() {
    let (_issuer, _key, app) = setup().await;
    assert_invalid_token(app.call("opaque-1").await).await;
}

/// A clock the test moves.
#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, secs: u64) {
        *self.0.lock().unwrap() += Duration::from_secs(secs);
    }
}

async fn introspection_with_clock(ttl: u64) -> (Issuer, App, Arc<ManualClock>) {
    let issuer = Issuer::start().await;
    let clock = Arc::new(ManualClock(Mutex::new(SystemTime::now())));
    let config = ResourceServerConfig::new(&issuer.url)
        .with_leeway_secs(0)
        .with_introspection(IntrospectionConfig::new("rs", "pw").with_cache_ttl_secs(ttl));
    let shared = clock.clone();
    let app =
        App::start(move |resource| ResourceServer::builder(config, resource).clock(shared).build().unwrap())
            .await;
    (issuer, app, clock)
}

#[tokio::test]
async fn introspection_cache_never_outlives_the_token() {
    let (issuer, app, clock) = introspection_with_clock(600).await;
    issuer.introspects("short", json!({"active": true, "sub": "x", "aud": app.resource, "exp": now() + 30}));
    assert_eq!(app.call("short").await.status(), 200);
    clock.advance(20);
    assert_eq!(app.call("short").await.status(), 200);
    assert_eq!(issuer.introspection_hits(), 1);
    clock.advance(15); // past exp, well within the TTL
    assert_invalid_token(app.call("short").await).await;
    assert_eq!(issuer.introspection_hits(), 2, "asked again once the token expired");
}

#[tokio::test]
async fn introspection_cache_is_bounded_by_the_configured_ttl() {
    let (issuer, app, clock) = introspection_with_clock(10).await;
    issuer.introspects("long", json!({"active": true, "sub": "x", "aud": app.resource, "exp": now() + 3600}));
    assert_eq!(app.call("long").await.status(), 200);
    clock.advance(5);
    assert_eq!(app.call("long").await.status(), 200);
    assert_eq!(issuer.introspection_hits(), 1);
    // Revoked meanwhile: noticed once the TTL has passed.
    issuer.introspects("long", json!({"active": false}));
    clock.advance(6);
    assert_invalid_token(app.call("long").await).await;
    assert_eq!(issuer.introspection_hits(), 2);
}
