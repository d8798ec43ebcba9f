//! Cases of the audit (AUTH.md §d) not covered elsewhere: lifetimes on a
//! test clock (client secret, code, refresh token), the consent POST never
//! taking the redirect from the form, re-authorization revoking earlier
//! grants, redirect URI resolution, missing parameters, scope narrowing on
//! refresh, CORS, `/authorize` methods, and two authorize pages open in one
//! browser.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{
    Browser, ManualClock, REDIRECT, TestClient, TestServer, assert_oauth_error, csrf, param, pkce,
    redirect_params, start, txn_cookie,
};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth::authorization_server::store::{AuthStore, MemoryStore, SqliteStore};
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig, Identity};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

async fn whoami(Extension(caller): Extension<Arc<Identity>>) -> Json<Value> {
    Json(json!({"subject": caller.subject, "scopes": caller.scopes}))
}

/// A server on a manual clock, with the MCP stand-in behind its gate.
async fn start_clocked(
    tweak: impl FnOnce(AuthorizationServerConfig) -> AuthorizationServerConfig,
) -> (TestServer, Arc<ManualClock>) {
    start_clocked_on(tweak, Arc::new(MemoryStore::new())).await
}

async fn start_clocked_on(
    tweak: impl FnOnce(AuthorizationServerConfig) -> AuthorizationServerConfig,
    store: Arc<dyn AuthStore>,
) -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{issuer}/mcp");
    let config =
        tweak(AuthorizationServerConfig::new(&issuer).with_scopes_supported(["notes:read", "notes:write"]));
    let server = AuthorizationServer::builder(config, &resource)
        .store(store)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let mcp = Router::new().route("/mcp", post(whoami)).layer(server.layer().unwrap());
    let app = server.router().merge(mcp).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    (TestServer { base: issuer.clone(), issuer, resource, server, http }, clock)
}

async fn tokens(s: &TestServer, client: &TestClient) -> Value {
    let (code, verifier) = s.code(client).await;
    let response = s.exchange(client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn assert_direct_400(response: &Response) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none(), "never a redirect");
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

// 1. Client secret lifetime.

#[tokio::test]
async fn an_expired_client_secret_is_invalid_client_and_dcr_reports_its_expiry() {
    let (s, clock) = start_clocked(|mut c| {
        c.client_secret_ttl_secs = 60;
        c
    })
    .await;
    let response =
        s.register_raw(&json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Conf"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let issued = body["client_id_issued_at"].as_u64().unwrap();
    assert_eq!(body["client_secret_expires_at"].as_u64(), Some(issued + 60), "{body}");
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    let attempt = || {
        s.http
            .post(s.url("/token"))
            .header("authorization", basic(id, secret))
            .form(&[("grant_type", "authorization_code"), ("code", "nope"), ("code_verifier", "x")])
            .send()
    };
    // Authenticated: the (bogus) code is what fails.
    assert_oauth_error(attempt().await.unwrap(), 400, "invalid_grant").await;
    clock.advance(61);
    assert_oauth_error(attempt().await.unwrap(), 401, "invalid_client").await;
    // A public client gets no secret and no expiry.
    let public = s
        .register_raw(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(public.get("client_secret").is_none() && public.get("client_secret_expires_at").is_none());
}

// 2. Code and refresh token lifetimes.

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let (s, clock) = start_clocked(|c| c).await;
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    clock.advance(601);
    assert_oauth_error(s.exchange(&client, &code, &verifier).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let (s, clock) = start_clocked(|mut c| {
        c.refresh_token_ttl_secs = 3600;
        c
    })
    .await;
    let client = s.public_client().await;
    let body = tokens(&s, &client).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    clock.advance(3601);
    assert_oauth_error(s.refresh(&client, refresh).await, 400, "invalid_grant").await;
}

// 3. The consent POST never takes the redirect from the form.

#[tokio::test]
async fn a_redirect_uri_injected_into_the_consent_post_is_ignored() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = s.authorize(&s.request(&client, &challenge)).await;
    let cookie = txn_cookie(page.headers());
    let token = csrf(&page.text().await.unwrap());
    let evil = "https://evil.example/steal";
    let consent = s
        .http
        .post(s.url("/authorize/login"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("username", "alice"), ("redirect_uri", evil)])
        .send()
        .await
        .unwrap();
    let consent = s.follow_to_consent(consent, &cookie).await;
    assert_eq!(consent.status(), 200);
    let token = csrf(&consent.text().await.unwrap());
    let done = s
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("decision", "approve"), ("redirect_uri", evil)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let location = done.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    assert!(!location.contains("evil"), "{location}");
    assert!(param(&redirect_params(&done), "code").is_some());
}

// 4. Re-authorization revokes earlier grants.

#[tokio::test]
async fn reauthorization_revokes_the_earlier_grant_of_the_same_user_client_and_redirect() {
    reauthorization_revokes_the_earlier_grant(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn reauthorization_revokes_the_earlier_grant_with_sqlite() {
    reauthorization_revokes_the_earlier_grant(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn reauthorization_revokes_the_earlier_grant_with_postgres() {
    let (_server, store) = as_support::postgres_store().await;
    reauthorization_revokes_the_earlier_grant(store).await;
}

async fn reauthorization_revokes_the_earlier_grant(store: Arc<dyn AuthStore>) {
    let (s, clock) = start_clocked_on(|c| c, store).await;
    let client = s.public_client().await;
    let first = tokens(&s, &client).await;
    clock.advance(5);
    let second = tokens(&s, &client).await;
    // The earlier grant is gone: its refresh and access tokens too.
    let old = first["refresh_token"].as_str().unwrap();
    assert_oauth_error(s.refresh(&client, old).await, 400, "invalid_grant").await;
    assert_eq!(s.call_mcp(first["access_token"].as_str().unwrap()).await.status(), 401);
    // The new one works.
    assert_eq!(s.call_mcp(second["access_token"].as_str().unwrap()).await.status(), 200);
    assert_eq!(s.refresh(&client, second["refresh_token"].as_str().unwrap()).await.status(), 200);
    // Another client of the same user is not touched.
    let other = s.public_client().await;
    let theirs = tokens(&s, &other).await;
    clock.advance(5);
    let _ = tokens(&s, &client).await;
    assert_eq!(s.refresh(&other, theirs["refresh_token"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test]
async fn reauthorization_for_another_redirect_uri_keeps_the_earlier_grant() {
    let (s, clock) = start_clocked(|c| c).await;
    let second_redirect = "http://127.0.0.1/other";
    let client = s
        .client(json!({
            "redirect_uris": [REDIRECT, second_redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    let first = tokens(&s, &client).await;
    clock.advance(5);
    let (verifier, challenge) = pkce();
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "redirect_uri");
    request.push(("redirect_uri", second_redirect));
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
                ("redirect_uri", second_redirect),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(s.refresh(&client, first["refresh_token"].as_str().unwrap()).await.status(), 200);
}

// 5. Redirect URI resolution.

#[tokio::test]
async fn an_omitted_redirect_uri_with_several_registered_is_a_direct_400() {
    let s = start().await;
    let client = s
        .client(json!({
            "redirect_uris": [REDIRECT, "http://127.0.0.1/other"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let (_, challenge) = pkce();
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "redirect_uri");
    assert_direct_400(&s.authorize(&request).await);
}

#[tokio::test]
async fn a_non_loopback_redirect_needs_the_exact_port() {
    let s = start().await;
    let registered = "https://app.example:8443/cb";
    let client = s.client(json!({"redirect_uris": [registered], "token_endpoint_auth_method": "none"})).await;
    let (_, challenge) = pkce();
    for presented in ["https://app.example:9443/cb", "https://app.example/cb"] {
        let mut request = s.request(&client, &challenge);
        request.retain(|(n, _)| *n != "redirect_uri");
        request.push(("redirect_uri", presented));
        assert_direct_400(&s.authorize(&request).await);
    }
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "redirect_uri");
    request.push(("redirect_uri", registered));
    assert_eq!(s.authorize(&request).await.status(), 200);
}

// 6. Missing parameters, narrowing, resource, CORS, methods.

#[tokio::test]
async fn missing_code_verifier_and_refresh_token_are_invalid_request() {
    let s = start().await;
    let client = s.public_client().await;
    let (code, _) = s.code(&client).await;
    let response = s
        .post_form(
            "/token",
            &[("grant_type", "authorization_code"), ("code", &code), ("client_id", &client.id)],
        )
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = s.post_form("/token", &[("grant_type", "refresh_token"), ("client_id", &client.id)]).await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_missing_response_type_is_redirected_as_unsupported_response_type() {
    let s = start().await;
    let client = s.approved_public_client().await;
    let (_, challenge) = pkce();
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "response_type");
    let response = s.authorize(&request).await;
    assert_eq!(response.status(), 303);
    let back = redirect_params(&response);
    assert_eq!(param(&back, "error").as_deref(), Some("unsupported_response_type"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
}

#[tokio::test]
async fn a_missing_csrf_field_is_refused_at_login_and_consent() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = s.authorize(&s.request(&client, &challenge)).await;
    let cookie = txn_cookie(page.headers());
    let token = csrf(&page.text().await.unwrap());
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        s.http.post(s.url(path)).header("cookie", &cookie).form(&form).send()
    };
    assert_direct_400(&post("/authorize/login", vec![("username", "alice".into())]).await.unwrap());
    let consent =
        post("/authorize/login", vec![("csrf", token), ("username", "alice".into())]).await.unwrap();
    let consent = s.follow_to_consent(consent, &cookie).await;
    assert_eq!(consent.status(), 200);
    let token = csrf(&consent.text().await.unwrap());
    assert_direct_400(&post("/authorize/consent", vec![("decision", "approve".into())]).await.unwrap());
    // The refused POST did not consume the transaction.
    let done =
        post("/authorize/consent", vec![("csrf", token), ("decision", "approve".into())]).await.unwrap();
    assert_eq!(done.status(), 303);
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_and_the_tokens_carry_it() {
    let s = start().await;
    let client = s.public_client().await;
    let (verifier, challenge) = pkce();
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "scope");
    request.push(("scope", "notes:read notes:write"));
    let back = s.browser_flow(&request, "approve").await;
    let response = s.exchange(&client, &param(&back, "code").unwrap(), &verifier).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "notes:read notes:write");
    // The code carried the resource: the token response echoes it.
    assert_eq!(body["resource"], s.resource.as_str());
    let refresh = body["refresh_token"].as_str().unwrap();
    let narrowed = s
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", &client.id),
                ("scope", "notes:read"),
            ],
        )
        .await;
    assert_eq!(narrowed.status(), 200);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(narrowed["scope"], "notes:read");
    assert_eq!(narrowed["resource"], s.resource.as_str());
    let me: Value = s.call_mcp(narrowed["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["scopes"], json!(["notes:read"]));
}

#[tokio::test]
async fn token_and_revoke_answer_cross_origin_requests_with_cors_headers() {
    let s = start().await;
    let client = s.public_client().await;
    let body = tokens(&s, &client).await;
    let origin = "https://app.example";
    for (path, form) in [
        (
            "/token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "unknown"), ("client_id", &client.id)],
        ),
        ("/revoke", vec![("token", body["access_token"].as_str().unwrap()), ("client_id", &client.id)]),
    ] {
        let response = s.http.post(s.url(path)).header("origin", origin).form(&form).send().await.unwrap();
        assert!(response.headers().get("access-control-allow-origin").is_some(), "{path}");
        let preflight = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(preflight.status().is_success(), "{path}: {}", preflight.status());
        assert!(preflight.headers().get("access-control-allow-origin").is_some(), "{path}");
    }
}

#[tokio::test]
async fn authorize_by_post_works_like_get_and_other_methods_are_405() {
    let s = start().await;
    let client = s.public_client().await;
    let (verifier, challenge) = pkce();
    let page = s.http.post(s.url("/authorize")).form(&s.request(&client, &challenge)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = txn_cookie(page.headers());
    let token = csrf(&page.text().await.unwrap());
    let consent = s
        .http
        .post(s.url("/authorize/login"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("username", "alice")])
        .send()
        .await
        .unwrap();
    let consent = s.follow_to_consent(consent, &cookie).await;
    let token = csrf(&consent.text().await.unwrap());
    let done = s
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    let back = redirect_params(&done);
    assert_eq!(s.exchange(&client, &param(&back, "code").unwrap(), &verifier).await.status(), 200);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = s.http.request(method.clone(), s.url("/authorize")).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
    }
}

// 7. Two authorize pages in one browser.

#[tokio::test]
async fn two_authorize_pages_in_one_browser_each_work_exactly_once() {
    let s = start().await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    let (verifier_a, challenge_a) = pkce();
    let (verifier_b, challenge_b) = pkce();
    let mut request_a = s.request(&client, &challenge_a);
    request_a.retain(|(n, _)| *n != "state");
    request_a.push(("state", "page-a"));
    let mut request_b = s.request(&client, &challenge_b);
    request_b.retain(|(n, _)| *n != "state");
    request_b.push(("state", "page-b"));
    let page_a = browser.authorize(&s, &request_a).await.text().await.unwrap();
    let page_b = browser.authorize(&s, &request_b).await.text().await.unwrap();
    // Both login forms still work, in either order.
    let consent_b = browser.login(&s, &page_b, "alice").await;
    assert_eq!(consent_b.status(), 200);
    let consent_b = consent_b.text().await.unwrap();
    let consent_a = browser.login(&s, &page_a, "alice").await;
    assert_eq!(consent_a.status(), 200);
    let consent_a = consent_a.text().await.unwrap();
    let done_a = browser.decide(&s, &consent_a, "approve", false).await;
    let back_a = redirect_params(&done_a);
    assert_eq!(param(&back_a, "state").as_deref(), Some("page-a"));
    let done_b = browser.decide(&s, &consent_b, "approve", false).await;
    let back_b = redirect_params(&done_b);
    assert_eq!(param(&back_b, "state").as_deref(), Some("page-b"));
    // Each code belongs to its own page's PKCE challenge.
    let code_a = param(&back_a, "code").unwrap();
    let code_b = param(&back_b, "code").unwrap();
    assert_eq!(s.exchange(&client, &code_a, &verifier_a).await.status(), 200);
    assert_eq!(s.exchange(&client, &code_b, &verifier_b).await.status(), 200);
    // Each form works exactly once.
    for html in [&consent_a, &consent_b] {
        let again =
            browser.post(&s, "/authorize/consent", &[("csrf", &csrf(html)), ("decision", "approve")]).await;
        assert_direct_400(&again);
    }
    // Another browser cannot use a page's CSRF token.
    let (_, challenge_c) = pkce();
    let page_c = browser.authorize(&s, &s.request(&client, &challenge_c)).await.text().await.unwrap();
    let mut stranger = Browser::new();
    let stolen =
        stranger.post(&s, "/authorize/consent", &[("csrf", &csrf(&page_c)), ("decision", "approve")]).await;
    assert_direct_400(&stolen);
}
