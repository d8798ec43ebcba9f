//! The authorization endpoint, login and consent: direct 400s, error
//! redirects with `state` and `iss`, PKCE and resource rules, the loopback
//! port rule, CSRF and framing protection, deny.

#![allow(clippy::unwrap_used)]

mod as_support;

use as_support::{REDIRECT, csrf, param, pkce, redirect_params, start, txn_cookie};
use reqwest::Response;

fn assert_direct_400(response: &Response) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none(), "never a redirect");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

/// Asserts an error redirect to the registered URI with `state` and `iss`.
fn assert_error_redirect(response: &Response, issuer: &str, error: &str) {
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let params = redirect_params(response);
    assert_eq!(param(&params, "error").as_deref(), Some(error), "{location}");
    assert_eq!(param(&params, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&params, "iss").as_deref(), Some(issuer));
}

#[tokio::test]
async fn unknown_or_missing_client_gets_a_direct_400_page() {
    let s = start().await;
    let (_, challenge) = pkce();
    let response = s
        .authorize(&[
            ("client_id", "nope"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("code_challenge", &challenge),
        ])
        .await;
    assert_direct_400(&response);
    assert_direct_400(&s.authorize(&[("redirect_uri", REDIRECT)]).await);
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_a_direct_400_page() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1/callback/../x",
        "http://localhost/callback",
        "http://127.0.0.1/callback?x=1",
        "http://127.0.0.1/callbackx",
        "javascript:alert(1)",
    ] {
        let mut request = s.request(&client, &challenge);
        request.retain(|(n, _)| *n != "redirect_uri");
        request.push(("redirect_uri", evil));
        assert_direct_400(&s.authorize(&request).await);
    }
}

#[tokio::test]
async fn loopback_redirect_may_use_any_port() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let mut request = s.request(&client, &challenge);
    request.retain(|(n, _)| *n != "redirect_uri");
    request.push(("redirect_uri", "http://127.0.0.1:54321/callback"));
    assert_eq!(s.authorize(&request).await.status(), 200);
    // Omitted with exactly one registered: that one.
    request.retain(|(n, _)| *n != "redirect_uri");
    assert_eq!(s.authorize(&request).await.status(), 200);
}

/// RFC 9700 §4.11.2: anyone can register a client whose redirect URI is their own site, so until
/// a user has approved a client its request errors are shown here, not redirected (no open
/// redirect through this server's domain). Once approved, errors go back to it (RFC 6749
/// §4.1.2.1).
#[tokio::test]
async fn errors_of_a_client_nobody_approved_are_shown_not_redirected() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let mut bad = s.request(&client, &challenge);
    bad.retain(|(n, _)| *n != "response_type");
    bad.push(("response_type", "token"));
    let shown = s.authorize(&bad).await;
    assert_direct_400(&shown);
    let html = shown.text().await.unwrap();
    assert!(html.contains("unsupported_response_type"), "the error is named: {html}");

    s.code(&client).await;
    assert_error_redirect(&s.authorize(&bad).await, &s.issuer, "unsupported_response_type");
}

#[tokio::test]
async fn pkce_is_required_and_only_s256() {
    let s = start().await;
    let client = s.approved_public_client().await;
    let (_, challenge) = pkce();
    let base = s.request(&client, &challenge);

    let without: Vec<_> = base.iter().filter(|(n, _)| !n.starts_with("code_challenge")).cloned().collect();
    assert_error_redirect(&s.authorize(&without).await, &s.issuer, "invalid_request");

    for method in [Some("plain"), Some("S512"), Some("s256"), None] {
        let mut request: Vec<_> =
            base.iter().filter(|(n, _)| *n != "code_challenge_method").cloned().collect();
        if let Some(method) = method {
            request.push(("code_challenge_method", method));
        }
        assert_error_redirect(&s.authorize(&request).await, &s.issuer, "invalid_request");
    }
}

#[tokio::test]
async fn wrong_resource_is_invalid_target() {
    let s = start().await;
    let client = s.approved_public_client().await;
    let (_, challenge) = pkce();
    let other = format!("{}/mcp-other", s.base);
    for resource in [other.as_str(), "https://evil.example/mcp"] {
        let mut request = s.request(&client, &challenge);
        request.retain(|(n, _)| *n != "resource");
        request.push(("resource", resource));
        assert_error_redirect(&s.authorize(&request).await, &s.issuer, "invalid_target");
    }
}

#[tokio::test]
async fn other_request_errors_redirect_with_state_and_iss() {
    let s = start().await;
    let client = s.approved_public_client().await;
    let (_, challenge) = pkce();
    let with = |name: &'static str, value: &'static str| {
        let mut request = s.request(&client, &challenge);
        request.retain(|(n, _)| *n != name);
        request.push((name, value));
        request
    };
    assert_error_redirect(
        &s.authorize(&with("response_type", "token")).await,
        &s.issuer,
        "unsupported_response_type",
    );
    assert_error_redirect(&s.authorize(&with("scope", "admin")).await, &s.issuer, "invalid_scope");
    let mut repeated = s.request(&client, &challenge);
    repeated.push(("scope", "notes:write"));
    assert_error_redirect(&s.authorize(&repeated).await, &s.issuer, "invalid_request");
}

#[tokio::test]
async fn pages_cannot_be_framed_and_set_a_browser_bound_cookie() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let response = s.authorize(&s.request(&client, &challenge)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(
        response.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    // Plain-http loopback issuer: the documented exception (no __Host-, no Secure).
    assert!(set_cookie.starts_with("mcp-auth-txn="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(response.text().await.unwrap().contains("DEVELOPMENT LOGIN"));
}

#[tokio::test]
async fn forged_csrf_or_missing_cookie_is_refused() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = s.authorize(&s.request(&client, &challenge)).await;
    let cookie = txn_cookie(page.headers());
    let token = csrf(&page.text().await.unwrap());

    let forged = s
        .http
        .post(s.url("/authorize/login"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("username", "alice")])
        .send()
        .await
        .unwrap();
    let forged = s.follow_to_consent(forged, &cookie).await;
    assert_direct_400(&forged);
    // The right token from another browser (no cookie): refused too.
    let other_browser = s
        .http
        .post(s.url("/authorize/login"))
        .form(&[("csrf", token.as_str()), ("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_direct_400(&other_browser);

    // Consent before login is refused, and a forged consent too.
    let forged = s
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_direct_400(&forged);

    // None of that consumed the transaction: the real browser goes on.
    let login = s
        .http
        .post(s.url("/authorize/login"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("username", "alice")])
        .send()
        .await
        .unwrap();
    let login = s.follow_to_consent(login, &cookie).await;
    assert_eq!(login.status(), 200);
    let forged = s
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_direct_400(&forged);
    let approved = s
        .http
        .post(s.url("/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    assert!(param(&redirect_params(&approved), "code").is_some());
}

#[tokio::test]
async fn consent_page_names_client_redirect_host_and_scopes() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = s.authorize(&s.request(&client, &challenge)).await;
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
    assert_eq!(consent.headers()["x-frame-options"], "DENY");
    let html = consent.text().await.unwrap();
    assert!(html.contains("Test &lt;Public&gt; App"), "client name, escaped: {html}");
    assert!(html.contains("127.0.0.1"), "redirect host");
    assert!(html.contains("notes:read"), "scopes");
    assert!(!html.contains("notes:write"), "only the requested scopes");
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_and_iss() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let back = s.browser_flow(&s.request(&client, &challenge), "deny").await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
    assert!(param(&back, "code").is_none());
}

#[tokio::test]
async fn approval_redirects_with_code_state_and_iss_and_the_transaction_is_single_use() {
    let s = start().await;
    let client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = s.authorize(&s.request(&client, &challenge)).await;
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
    let approve = || {
        s.http
            .post(s.url("/authorize/consent"))
            .header("cookie", &cookie)
            .form(&[("csrf", token.as_str()), ("decision", "approve")])
            .send()
    };
    let done = approve().await.unwrap();
    assert_eq!(done.status(), 303);
    let back = redirect_params(&done);
    assert!(param(&back, "code").is_some());
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
    // The browser cookie stays (other pages of this browser may be open);
    // the transaction itself is consumed.
    assert!(done.headers().get("set-cookie").is_none());
    // Replaying the consent POST yields nothing.
    assert_direct_400(&approve().await.unwrap());
}

/// A login step other than the development one: a fixed user.
#[derive(Debug)]
struct AlwaysBob;

impl mcp_auth::UserAuthenticator for AlwaysBob {
    fn name(&self) -> &str {
        "always-bob"
    }

    fn form_fields(&self) -> String {
        "<input type=\"hidden\" name=\"who\" value=\"bob\">".into()
    }

    fn authenticate<'a>(
        &'a self,
        fields: &'a std::collections::HashMap<String, String>,
    ) -> mcp_auth::BoxFuture<'a, Result<mcp_auth::AuthenticatedUser, mcp_auth::LoginError>> {
        let user = match fields.get("who").map(String::as_str) {
            Some("bob") => Ok(mcp_auth::AuthenticatedUser::new("bob")),
            _ => Err(mcp_auth::LoginError("not bob".into())),
        };
        Box::pin(std::future::ready(user))
    }
}

#[tokio::test]
async fn https_issuer_uses_a_host_prefixed_secure_cookie_and_a_pluggable_login() {
    use axum::body::Body;
    use mcp_auth::authorization_server::store::MemoryStore;
    use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
    use tower::ServiceExt as _;

    let config = AuthorizationServerConfig::new("https://mcp.example.com");
    let server = AuthorizationServer::builder(config, "https://mcp.example.com/mcp")
        .store(std::sync::Arc::new(MemoryStore::new()))
        .authenticator(std::sync::Arc::new(AlwaysBob))
        .build()
        .await
        .unwrap();
    let registered = server
        .router()
        .oneshot(
            http::Request::post("/register")
                .body(Body::from(
                    r#"{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}"#,
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let body = axum::body::to_bytes(registered.into_body(), 1 << 16).await.unwrap();
    let client_id =
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["client_id"].as_str().unwrap().to_owned();
    let (_, challenge) = pkce();
    let uri = format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
         &code_challenge={challenge}&code_challenge_method=S256"
    );
    let page = server.router().oneshot(http::Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-mcp-auth-txn="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let html = axum::body::to_bytes(page.into_body(), 1 << 16).await.unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(html.contains("name=\"who\"") && !html.contains("DEVELOPMENT"), "{html}");
}
