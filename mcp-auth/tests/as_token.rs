//! The token endpoint end to end: the code flow through login and consent,
//! tokens checked by the resource-server code, code replay, refresh rotation
//! and reuse detection, revocation, introspection, client authentication,
//! `no-store` everywhere, and restart survival with SQLite.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{
    ManualClock, REDIRECT, TestClient, TestServer, assert_no_store, assert_oauth_error, param, pkce, start,
    start_with,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_auth::authorization_server::store::{AuthStore, MemoryStore, SqliteStore};
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use serde_json::Value;

async fn tokens(s: &TestServer, client: &TestClient) -> Value {
    let (code, verifier) = s.code(client).await;
    let response = s.exchange(client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_eq!(response.headers()["pragma"], "no-cache");
    response.json().await.unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn code_flow_issues_a_jwt_the_resource_server_code_accepts() {
    let s = start().await;
    let client = s.public_client().await;
    let body = tokens(&s, &client).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "notes:read");
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();

    let c = claims(access);
    assert_eq!(c["iss"], s.issuer);
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], s.resource);
    assert_eq!(c["client_id"], client.id);
    assert_eq!(c["scope"], "notes:read");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 3600);
    assert!(c["jti"].is_string());

    // One validation path: the ResourceServer discovers this issuer over HTTP.
    let rs = s.server.resource_server().unwrap();
    let identity = rs.verify(access).await.unwrap();
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.scopes, ["notes:read"]);

    // And the MCP endpoint behind the gate accepts it.
    let response = s.call_mcp(access).await;
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["subject"], "alice");
    assert_eq!(seen["client_id"], client.id);
    assert_eq!(s.call_mcp("not-a-token").await.status(), 401);
}

#[tokio::test]
async fn replayed_code_is_invalid_grant_and_revokes_what_it_issued() {
    let s = start().await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let first: Value = s.exchange(&client, &code, &verifier).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(s.call_mcp(access).await.status(), 200);

    assert_oauth_error(s.exchange(&client, &code, &verifier).await, 400, "invalid_grant").await;
    // Everything issued from the code is dead now.
    assert_eq!(s.call_mcp(access).await.status(), 401);
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_oauth_error(s.refresh(&client, refresh).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn code_exchange_checks_verifier_client_and_redirect_uri() {
    let s = start().await;
    let client = s.public_client().await;
    let other = s.public_client().await;

    let (code, _) = s.code(&client).await;
    let (wrong, _) = as_support::pkce();
    assert_oauth_error(s.exchange(&client, &code, &wrong).await, 400, "invalid_grant").await;

    let (code, verifier) = s.code(&client).await;
    assert_oauth_error(s.exchange(&other, &code, &verifier).await, 400, "invalid_grant").await;

    let (code, verifier) = s.code(&client).await;
    let response = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client.id),
                ("redirect_uri", "http://127.0.0.1:9999/callback"),
            ],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_grant").await;

    let (code, verifier) = s.code(&client).await;
    let response = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
                ("resource", "https://evil.example/mcp"),
            ],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_target").await;

    let missing =
        s.post_form("/token", &[("grant_type", "authorization_code"), ("client_id", &client.id)]).await;
    assert_oauth_error(missing, 400, "invalid_request").await;
    let unsupported = s.post_form("/token", &[("grant_type", "password"), ("client_id", &client.id)]).await;
    assert_oauth_error(unsupported, 400, "unsupported_grant_type").await;
    let not_registered = s.public_client_without_refresh().await;
    let response = s.refresh(&not_registered, "x").await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
    let none = s.post_form("/token", &[("client_id", &client.id)]).await;
    assert_oauth_error(none, 400, "invalid_request").await;
    assert_eq!(s.http.get(s.url("/token")).send().await.unwrap().status(), 405);
}

#[tokio::test]
async fn refresh_rotates_and_may_only_narrow() {
    let s = start().await;
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    let old = first["refresh_token"].as_str().unwrap();
    let response = s.refresh(&client, old).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let second: Value = response.json().await.unwrap();
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(new, old, "rotated");
    assert_eq!(s.call_mcp(second["access_token"].as_str().unwrap()).await.status(), 200);

    let wider = s
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", new),
                ("client_id", &client.id),
                ("scope", "notes:read notes:write"),
            ],
        )
        .await;
    assert_oauth_error(wider, 400, "invalid_scope").await;
    let other = s.public_client().await;
    assert_oauth_error(s.refresh(&other, new).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn previous_refresh_token_works_once_in_the_grace_window_then_reuse_revokes_the_grant() {
    let s = start().await;
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: Value = s.refresh(&client, old).await.json().await.unwrap();
    // The response was "lost": the old token is accepted once more, in the grace window.
    let retry = s.refresh(&client, old).await;
    assert_eq!(retry.status(), 200);
    let retried: Value = retry.json().await.unwrap();
    // A third use is theft: the whole grant goes.
    assert_oauth_error(s.refresh(&client, old).await, 400, "invalid_grant").await;
    for body in [&first, &second, &retried] {
        assert_eq!(s.call_mcp(body["access_token"].as_str().unwrap()).await.status(), 401);
    }
    let newest = retried["refresh_token"].as_str().unwrap();
    assert_oauth_error(s.refresh(&client, newest).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn refresh_reuse_after_the_grace_window_revokes_the_grant() {
    let clock = Arc::new(ManualClock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthorizationServerConfig::new(&issuer)
        .with_scopes_supported(["notes:read"])
        .with_refresh_grace_secs(30);
    let server = AuthorizationServer::builder(config, &format!("{issuer}/mcp"))
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = TestServer {
        base: issuer.clone(),
        resource: format!("{issuer}/mcp"),
        issuer,
        server,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
    };
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: Value = s.refresh(&client, old).await.json().await.unwrap();
    clock.advance(31);
    assert_oauth_error(s.refresh(&client, old).await, 400, "invalid_grant").await;
    let new = second["refresh_token"].as_str().unwrap();
    assert_oauth_error(s.refresh(&client, new).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn revocation_kills_tokens_and_answers_200_for_unknown_ones() {
    let s = start().await;
    let client = s.public_client().await;

    // An access token: it alone.
    let body = tokens(&s, &client).await;
    let access = body["access_token"].as_str().unwrap();
    let response = s.post_form("/revoke", &[("token", access), ("client_id", &client.id)]).await;
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    assert_eq!(s.call_mcp(access).await.status(), 401);
    assert_eq!(s.refresh(&client, body["refresh_token"].as_str().unwrap()).await.status(), 200);

    // A refresh token: the whole grant.
    let body = tokens(&s, &client).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    let response = s
        .post_form(
            "/revoke",
            &[("token", refresh), ("token_type_hint", "refresh_token"), ("client_id", &client.id)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_oauth_error(s.refresh(&client, refresh).await, 400, "invalid_grant").await;
    assert_eq!(s.call_mcp(body["access_token"].as_str().unwrap()).await.status(), 401);

    // Unknown tokens: 200. Another client's token: 200, and untouched.
    assert_eq!(
        s.post_form("/revoke", &[("token", "unknown"), ("client_id", &client.id)]).await.status(),
        200
    );
    let other = s.public_client().await;
    let body = tokens(&s, &client).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(s.post_form("/revoke", &[("token", access), ("client_id", &other.id)]).await.status(), 200);
    assert_eq!(s.call_mcp(access).await.status(), 200);

    // Client authentication is required; a missing token is a bad request.
    assert_oauth_error(s.post_form("/revoke", &[("token", access)]).await, 401, "invalid_client").await;
    assert_oauth_error(s.post_form("/revoke", &[("client_id", &client.id)]).await, 400, "invalid_request")
        .await;
}

#[tokio::test]
async fn introspection_is_for_confidential_clients() {
    let s = start().await;
    let public = s.public_client().await;
    let rs = s.confidential_client().await;
    let secret = rs.secret.clone().unwrap();
    let body = tokens(&s, &public).await;
    let access = body["access_token"].as_str().unwrap();

    let introspect = |token: &str| {
        s.http.post(s.url("/introspect")).basic_auth(&rs.id, Some(&secret)).form(&[("token", token)]).send()
    };
    let response = introspect(access).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["client_id"], public.id);
    assert_eq!(answer["aud"], s.resource);
    assert_eq!(answer["scope"], "notes:read");
    let answer: Value =
        introspect(body["refresh_token"].as_str().unwrap()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "refresh_token");
    let answer: Value = introspect("garbage").await.unwrap().json().await.unwrap();
    assert_eq!(answer, serde_json::json!({"active": false}));

    s.post_form("/revoke", &[("token", access), ("client_id", &public.id)]).await;
    let answer: Value = introspect(access).await.unwrap().json().await.unwrap();
    assert_eq!(answer["active"], false);

    // A public client may not introspect.
    let response = s.post_form("/introspect", &[("token", access), ("client_id", &public.id)]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn client_authentication_follows_the_registered_method() {
    let s = start().await;
    let client = s.confidential_client().await;
    let secret = client.secret.clone().unwrap();
    let token = |builder: reqwest::RequestBuilder| builder.send();
    let post = || s.http.post(s.url("/token"));

    // Wrong secret over Basic: 401 with WWW-Authenticate.
    let response = token(
        post()
            .basic_auth(&client.id, Some("wrong"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
    )
    .await
    .unwrap();
    assert!(response.headers().contains_key("www-authenticate"));
    assert_oauth_error(response, 401, "invalid_client").await;
    // The right secret, but by the unregistered method (post): refused.
    let response = token(post().form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", &client.id),
        ("client_secret", &secret),
    ]))
    .await
    .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    // No secret at all for a confidential client: refused.
    let response = token(post().form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", &client.id),
    ]))
    .await
    .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    // Malformed Basic, and a body client_id that disagrees.
    let response =
        token(post().header("authorization", "Basic !!!").form(&[("grant_type", "refresh_token")]))
            .await
            .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = token(
        post()
            .header("authorization", format!("Basic {}", STANDARD.encode("nocolon")))
            .form(&[("grant_type", "refresh_token")]),
    )
    .await
    .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = token(post().basic_auth(&client.id, Some(&secret)).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", "someone-else"),
    ]))
    .await
    .unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
    // The right way: authenticated, and then the grant is judged.
    let response = token(
        post()
            .basic_auth(&client.id, Some(&secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
    )
    .await
    .unwrap();
    assert_oauth_error(response, 400, "invalid_grant").await;
}

#[tokio::test]
async fn refresh_token_survives_a_restart_with_sqlite() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-as-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("restart.db");
    let _ = std::fs::remove_file(&path);

    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let s = start_with(|c| c, store, "").await;
    let client = s.public_client().await;
    let body = tokens(&s, &client).await;
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    drop(s);

    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let s = start_with(|c| c, store, "").await;
    let again: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], again["keys"][0]["kid"], "the signing key persisted");
    let response = s.refresh(&client, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two refresh requests with the same token at the same moment: at most one
/// rotation plus the grace answer, and whatever both got is one family (one
/// grant): revoking either side's refresh token kills the other side's
/// tokens too.
async fn concurrent_double_refresh(store: Arc<dyn AuthStore>) {
    let s = start_with(|c| c, store, "").await;
    let client = s.public_client().await;
    for _ in 0..5 {
        let first = tokens(&s, &client).await;
        let original = first["refresh_token"].as_str().unwrap();
        let (a, b) = tokio::join!(s.refresh(&client, original), s.refresh(&client, original));
        let mut winners = Vec::new();
        for response in [a, b] {
            if response.status() == 200 {
                winners.push(response.json::<Value>().await.unwrap());
            } else {
                assert_oauth_error(response, 400, "invalid_grant").await;
            }
        }
        assert!(!winners.is_empty(), "one of the two refreshes rotates");
        let grant_of = |t: &Value| claims(t["access_token"].as_str().unwrap());
        for w in &winners {
            assert_eq!(s.call_mcp(w["access_token"].as_str().unwrap()).await.status(), 200);
            assert_eq!(grant_of(w)["aud"], s.resource);
            assert_ne!(w["refresh_token"], first["refresh_token"]);
        }
        // One family: revoking the first winner's refresh token leaves nothing
        // of either answer alive (nor of the original response).
        let revoke = winners[0]["refresh_token"].as_str().unwrap().to_owned();
        let revoked = s.post_form("/revoke", &[("token", &revoke), ("client_id", &client.id)]).await;
        assert_eq!(revoked.status(), 200);
        for w in winners.iter().chain([&first]) {
            assert_eq!(s.call_mcp(w["access_token"].as_str().unwrap()).await.status(), 401);
            let again = s.refresh(&client, w["refresh_token"].as_str().unwrap()).await;
            assert_oauth_error(again, 400, "invalid_grant").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_double_refresh_never_forks_the_token_family() {
    concurrent_double_refresh(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_double_refresh_never_forks_the_token_family_with_sqlite() {
    concurrent_double_refresh(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

/// A 2025-03-26 client sends no `resource` anywhere: the flow works and the
/// token is for the canonical resource.
#[tokio::test]
async fn a_flow_without_resource_gets_the_canonical_resource_as_audience() {
    let s = start().await;
    let client = s.public_client().await;
    let (verifier, challenge) = pkce();
    let request: Vec<_> =
        s.request(&client, &challenge).into_iter().filter(|(k, _)| *k != "resource").collect();
    let back = s.browser_flow(&request, "approve").await;
    let code = param(&back, "code").unwrap();
    let response = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], s.resource);
    assert_eq!(body["resource"], s.resource.as_str());
    assert_eq!(s.call_mcp(body["access_token"].as_str().unwrap()).await.status(), 200);
    // A refresh without resource keeps it.
    let refreshed: Value =
        s.refresh(&client, body["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["aud"], s.resource);
}
