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
use mcp_auth::authorization_server::PreRegisteredClient;
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

/// RFC 7636 §4.6 and RFC 6749 §4.1.3: a redemption that fails the client,
/// redirect URI or PKCE check does not spend the code, so whoever holds a
/// leaked code cannot burn it (and make the real client's redemption look
/// like a replay); a real replay still revokes what the code issued.
#[tokio::test]
async fn a_failed_redemption_leaves_the_code_to_its_client_and_a_real_replay_still_revokes() {
    let s = start().await;
    let client = s.public_client().await;
    let thief = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let (wrong, _) = pkce();

    assert_oauth_error(s.exchange(&client, &code, &wrong).await, 400, "invalid_grant").await;
    assert_oauth_error(s.exchange(&thief, &code, &verifier).await, 400, "invalid_grant").await;
    let wrong_redirect = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &client.id),
                ("redirect_uri", "http://127.0.0.1/elsewhere"),
            ],
        )
        .await;
    assert_oauth_error(wrong_redirect, 400, "invalid_grant").await;

    // The real client still redeems it, and its tokens work.
    let response = s.exchange(&client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(s.call_mcp(access).await.status(), 200);
    let refresh = body["refresh_token"].as_str().unwrap();

    // A second correct redemption is a replay: refused, and the grant revoked.
    assert_oauth_error(s.exchange(&client, &code, &verifier).await, 400, "invalid_grant").await;
    assert_eq!(s.call_mcp(access).await.status(), 401);
    assert_oauth_error(s.refresh(&client, refresh).await, 400, "invalid_grant").await;
}

/// Two correct redemptions of one code at the same moment: the code is
/// spent atomically, so at most one succeeds, and the other is a replay
/// that revokes the grant.
async fn concurrent_code_redemptions(store: Arc<dyn AuthStore>) {
    let s = start_with(|c| c, store, "").await;
    let client = s.public_client().await;
    for _ in 0..5 {
        let (code, verifier) = s.code(&client).await;
        let (a, b) =
            tokio::join!(s.exchange(&client, &code, &verifier), s.exchange(&client, &code, &verifier));
        let mut winners = Vec::new();
        for response in [a, b] {
            if response.status() == 200 {
                winners.push(response.json::<Value>().await.unwrap());
            } else {
                assert_oauth_error(response, 400, "invalid_grant").await;
            }
        }
        assert!(winners.len() <= 1, "a code is redeemed at most once");
        for w in &winners {
            assert_eq!(s.call_mcp(w["access_token"].as_str().unwrap()).await.status(), 401);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_a_code_succeed_at_most_once() {
    concurrent_code_redemptions(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_a_code_succeed_at_most_once_with_sqlite() {
    concurrent_code_redemptions(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_a_code_succeed_at_most_once_with_postgres() {
    let (_server, store) = as_support::postgres_store().await;
    concurrent_code_redemptions(store).await;
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

/// A retry of a rotated refresh token in the grace window (A -> B, then A
/// again -> C) must not fork the family: C supersedes B, so one chain stays
/// live. B's access token dies at once; presenting B afterwards is reuse
/// and revokes the whole grant.
async fn grace_retry_keeps_one_chain(store: Arc<dyn AuthStore>) {
    let s = start_with(|c| c, store, "").await;
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    let a = first["refresh_token"].as_str().unwrap();
    let lost: Value = s.refresh(&client, a).await.json().await.unwrap();
    let retry = s.refresh(&client, a).await;
    assert_eq!(retry.status(), 200);
    let retried: Value = retry.json().await.unwrap();
    let (b, c) = (lost["refresh_token"].as_str().unwrap(), retried["refresh_token"].as_str().unwrap());

    // Only the retry's chain is live.
    assert_eq!(s.call_mcp(lost["access_token"].as_str().unwrap()).await.status(), 401);
    assert_eq!(s.call_mcp(retried["access_token"].as_str().unwrap()).await.status(), 200);
    let next = s.refresh(&client, c).await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    assert_eq!(s.call_mcp(next["access_token"].as_str().unwrap()).await.status(), 200);

    // The superseded B: refused, and reuse detection revokes the family.
    assert_oauth_error(s.refresh(&client, b).await, 400, "invalid_grant").await;
    assert_eq!(s.call_mcp(next["access_token"].as_str().unwrap()).await.status(), 401);
    assert_oauth_error(
        s.refresh(&client, next["refresh_token"].as_str().unwrap()).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_grace_window_retry_supersedes_the_first_rotation() {
    grace_retry_keeps_one_chain(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_grace_window_retry_supersedes_the_first_rotation_with_sqlite() {
    grace_retry_keeps_one_chain(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_grace_window_retry_supersedes_the_first_rotation_with_postgres() {
    let (_server, store) = as_support::postgres_store().await;
    grace_retry_keeps_one_chain(store).await;
}

/// A -> B, B -> B2, then A again inside the grace window: the response of
/// the first rotation was not lost (B was used), so two parties hold the
/// family, and the grant is revoked.
#[tokio::test]
async fn a_grace_window_retry_after_the_successor_was_used_revokes_the_grant() {
    let s = start().await;
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    let a = first["refresh_token"].as_str().unwrap();
    let second: Value = s.refresh(&client, a).await.json().await.unwrap();
    let third: Value =
        s.refresh(&client, second["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(s.call_mcp(third["access_token"].as_str().unwrap()).await.status(), 200);

    assert_oauth_error(s.refresh(&client, a).await, 400, "invalid_grant").await;
    assert_eq!(s.call_mcp(third["access_token"].as_str().unwrap()).await.status(), 401);
    let newest = third["refresh_token"].as_str().unwrap();
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

const RS_SECRET: &str = "resource-server-secret-0123456789abcdef";

/// A configured client marked `introspect = true` (the resource server) and
/// one that is not.
fn introspection_clients(config: AuthorizationServerConfig) -> AuthorizationServerConfig {
    config
        .with_client(
            PreRegisteredClient::new("rs", ["https://rs.example/cb"])
                .with_secret(RS_SECRET)
                .with_introspection(),
        )
        .with_client(
            PreRegisteredClient::new("reporting", ["https://reports.example/cb"]).with_secret(RS_SECRET),
        )
}

/// RFC 7662 §2.1 and §4: introspection is for the configured resource
/// servers only; every other client, even an authenticated confidential
/// one, is refused, so nobody can register a client and scan for tokens.
#[tokio::test]
async fn introspection_is_for_configured_resource_servers_only() {
    let s = start_with(introspection_clients, Arc::new(MemoryStore::new()), "").await;
    let public = s.public_client().await;
    let registered = s.confidential_client().await;
    let body = tokens(&s, &public).await;
    let access = body["access_token"].as_str().unwrap();
    let introspect = |id: &str, secret: &str| {
        s.http.post(s.url("/introspect")).basic_auth(id, Some(secret)).form(&[("token", access)]).send()
    };

    // A self-registered confidential client, and a configured one without
    // `introspect`: authenticated, not allowed.
    let response = introspect(&registered.id, registered.secret.as_deref().unwrap()).await.unwrap();
    assert_eq!(assert_oauth_error(response, 403, "unauthorized_client").await.get("active"), None);
    let response = introspect("reporting", RS_SECRET).await.unwrap();
    assert_oauth_error(response, 403, "unauthorized_client").await;
    // Bad credentials, or none (a public client): 401.
    let response = introspect("rs", "wrong-secret").await.unwrap();
    assert!(response.headers().contains_key("www-authenticate"));
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = s.post_form("/introspect", &[("token", access), ("client_id", &public.id)]).await;
    assert_oauth_error(response, 401, "invalid_client").await;

    // The resource server.
    let response = introspect("rs", RS_SECRET).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_no_store(&response);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["client_id"], public.id);
    assert_eq!(answer["aud"], s.resource);
    assert_eq!(answer["scope"], "notes:read");
}

async fn introspect_as_rs(s: &TestServer, token: &str) -> Value {
    let response =
        s.http.post(s.url("/introspect")).basic_auth("rs", Some(RS_SECRET)).form(&[("token", token)]).send();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// RFC 7662 §2.2: a refresh token that was rotated is spent, so it is
/// `active: false` (else introspection tells a thief which stolen token is
/// still worth trying); revoked and unknown tokens too.
#[tokio::test]
async fn introspection_reports_rotated_refresh_tokens_as_inactive() {
    let s = start_with(introspection_clients, Arc::new(MemoryStore::new()), "").await;
    let client = s.public_client().await;
    let body = tokens(&s, &client).await;
    let old = body["refresh_token"].as_str().unwrap();
    let answer = introspect_as_rs(&s, old).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], client.id);

    let rotated: Value = s.refresh(&client, old).await.json().await.unwrap();
    assert_eq!(introspect_as_rs(&s, old).await, serde_json::json!({"active": false}));
    let new = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(introspect_as_rs(&s, new).await["active"], true);

    assert_eq!(introspect_as_rs(&s, "garbage").await, serde_json::json!({"active": false}));
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(introspect_as_rs(&s, access).await["active"], true);
    s.post_form("/revoke", &[("token", access), ("client_id", &client.id)]).await;
    assert_eq!(introspect_as_rs(&s, access).await["active"], false);
}

/// Introspection needs client authentication (RFC 7662 §2.1): a public
/// configured client with `introspect = true` is refused at start.
#[tokio::test]
async fn a_public_client_marked_for_introspection_is_refused_at_start() {
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9")
        .with_client(PreRegisteredClient::new("rs", [REDIRECT]).with_introspection());
    let error = AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("introspect") && error.contains("`rs`"), "{error}");
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
/// rotation plus the grace answer, and never two live chains: when both
/// succeed, the later one supersedes the other (its access token is revoked
/// at once). Revoking the live refresh token leaves nothing alive.
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
        let mut live = Vec::new();
        for w in &winners {
            assert_eq!(claims(w["access_token"].as_str().unwrap())["aud"], s.resource);
            assert_ne!(w["refresh_token"], first["refresh_token"]);
            if s.call_mcp(w["access_token"].as_str().unwrap()).await.status() == 200 {
                live.push(w);
            }
        }
        assert_eq!(live.len(), 1, "exactly one chain is live");
        // Revoking the live chain's refresh token leaves nothing of either
        // answer alive (nor of the original response).
        let revoke = live[0]["refresh_token"].as_str().unwrap().to_owned();
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

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_double_refresh_never_forks_the_token_family_with_postgres() {
    let (_server, store) = as_support::postgres_store().await;
    concurrent_double_refresh(store).await;
}

/// Two authorization servers on one PostgreSQL database, as two instances
/// behind a load balancer: a code issued by one is redeemed at the other,
/// whose tokens the first accepts (one signing key), and a refresh token
/// rotated at one is reuse at the other.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_database_act_as_one_server() {
    let (_server, store) = as_support::postgres_store().await;
    let one = start_with(|c| c, store.clone(), "").await;
    let client = one.public_client().await;
    let (code, verifier) = one.code(&client).await;
    // The second instance: the same issuer and resource, its own listener and
    // pool, the same database.
    let config =
        AuthorizationServerConfig::new(&one.issuer).with_scopes_supported(["notes:read", "notes:write"]);
    let server = AuthorizationServer::builder(config, &one.resource).store(store).build().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = server.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // (`url()` addresses requests to `issuer`: here, the second listener.)
    let two = TestServer {
        base: base.clone(),
        issuer: base,
        resource: one.resource.clone(),
        server,
        http: one.http.clone(),
    };
    let response = two.exchange(&client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // A token issued by the second instance is accepted by the first.
    assert_eq!(one.call_mcp(body["access_token"].as_str().unwrap()).await.status(), 200);
    // Rotated at the second, its successor rotates at the first.
    let original = body["refresh_token"].as_str().unwrap();
    let rotated = two.refresh(&client, original).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let next = one.refresh(&client, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    // The code replayed at the first instance: refused, and the grant revoked
    // for both.
    assert_oauth_error(one.exchange(&client, &code, &verifier).await, 400, "invalid_grant").await;
    assert_eq!(one.call_mcp(next["access_token"].as_str().unwrap()).await.status(), 401);
    let again = two.refresh(&client, next["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(again, 400, "invalid_grant").await;
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
