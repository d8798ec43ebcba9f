//! Login sessions and remembered approvals, over HTTP with one cookie jar
//! per browser.
//!
//! - A login session spares the password in the browser that logged in,
//!   never the consent.
//! - Remembered approvals are off by default; when on they are kept per
//!   (user, client, redirect URI, browser) and cover only the approved
//!   scopes (MCP security best practices, "Confused Deputy"; AUTH.md (c)
//!   "AS-in-the-middle abusing remembered consent").

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{
    Browser, ManualClock, TestClient, TestServer, param, pkce, redirect_params, start, start_built,
    start_with,
};
use mcp_auth::authorization_server::store::MemoryStore;
use reqwest::StatusCode;
use serde_json::Value;

fn with_scope<'a>(params: &[(&'a str, &'a str)], scope: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut params: Vec<_> = params.iter().filter(|(k, _)| *k != "scope").copied().collect();
    params.push(("scope", scope));
    params
}

/// Full first authorization in `browser`: login as `user`, approve.
async fn first_approval(
    s: &TestServer,
    browser: &mut Browser,
    client: &TestClient,
    scope: &str,
    remember: bool,
) -> Vec<(String, String)> {
    let (_, challenge) = pkce();
    let params = with_scope(&s.request(client, &challenge), scope);
    let login = browser.authorize(s, &params).await;
    let consent = browser.login(s, &login.text().await.unwrap(), "alice").await;
    let html = consent.text().await.unwrap();
    redirect_params(&browser.decide(s, &html, "approve", remember).await)
}

#[tokio::test]
async fn a_login_session_spares_the_password_not_the_consent() {
    let s = start().await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    first_approval(&s, &mut browser, &client, "notes:read", false).await;
    assert!(browser.has_cookie("mcp-auth-session"), "plain-http loopback issuer: no __Host- prefix");

    // Same browser, second authorization: straight to the consent page.
    let (verifier, challenge) = pkce();
    let page = browser.authorize(&s, &s.request(&client, &challenge)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("name=\"username\""), "no second password prompt: {html}");
    assert!(html.contains("as <strong>alice</strong>"), "{html}");
    let back = redirect_params(&browser.decide(&s, &html, "approve", false).await);
    let tokens = s.exchange(&client, &param(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let me: Value = s.call_mcp(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["subject"], "alice");

    // Another browser has no session; nor does a forged cookie.
    let mut other = Browser::new();
    let page = other.authorize(&s, &s.request(&client, &challenge)).await;
    assert!(page.text().await.unwrap().contains("name=\"username\""));
    let forged = s
        .http
        .get(format!("{}?{}", s.url("/authorize"), serde_urlencoded(&s.request(&client, &challenge))))
        .header("cookie", "mcp-auth-session=forged-value")
        .send()
        .await
        .unwrap();
    assert!(forged.text().await.unwrap().contains("name=\"username\""));
}

fn serde_urlencoded(params: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.query().unwrap().to_owned()
}

#[tokio::test]
async fn login_sessions_can_be_turned_off() {
    let s = start_with(|c| c.with_login_session_secs(0), Arc::new(MemoryStore::new()), "").await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    first_approval(&s, &mut browser, &client, "notes:read", false).await;
    assert!(!browser.has_cookie("mcp-auth-session"));
    let (_, challenge) = pkce();
    let page = browser.authorize(&s, &s.request(&client, &challenge)).await;
    assert!(page.text().await.unwrap().contains("name=\"username\""));
}

#[tokio::test]
async fn approvals_are_not_remembered_by_default() {
    let s = start().await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    // Even a forged `remember=yes` is ignored when the feature is off.
    first_approval(&s, &mut browser, &client, "notes:read", true).await;
    assert!(!browser.has_cookie("mcp-auth-browser"));
    let (_, challenge) = pkce();
    let page = browser.authorize(&s, &s.request(&client, &challenge)).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"approve\""), "asked again: {html}");
    assert!(!html.contains("name=\"remember\""), "no remember box when off: {html}");
}

#[tokio::test]
async fn remembered_approvals_skip_the_page_only_within_their_bounds() {
    let clock = Arc::new(ManualClock::default());
    let store = Arc::new(MemoryStore::new());
    let s = start_built(|c| c.with_remember_consent(true), |b| b.store(store).clock(clock.clone()), "").await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    let back = first_approval(&s, &mut browser, &client, "notes:read", true).await;
    assert!(param(&back, "code").is_some());
    assert!(browser.has_cookie("mcp-auth-browser"));
    // A later second: the grant made below replaces this one, and the
    // approval it was made with must outlive the grant it replaces.
    clock.advance(2);

    // Same browser, same client and redirect URI, same scope: no page, a code at once.
    let (verifier, challenge) = pkce();
    let params = s.request(&client, &challenge);
    let direct = browser.authorize(&s, &params).await;
    assert_eq!(direct.status(), StatusCode::SEE_OTHER);
    let back = redirect_params(&direct);
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
    let tokens = s.exchange(&client, &param(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);

    // A loopback redirect on another port is the same registered redirect URI.
    let mut ported = params.clone();
    for (k, v) in &mut ported {
        if *k == "redirect_uri" {
            *v = "http://127.0.0.1:48123/callback";
        }
    }
    assert_eq!(browser.authorize(&s, &ported).await.status(), StatusCode::SEE_OTHER);

    // Asking for more scope asks again; approving it remembers the union.
    let wider = with_scope(&params, "notes:read notes:write");
    let page = browser.authorize(&s, &wider).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<code>notes:write</code>"), "{html}");
    browser.decide(&s, &html, "approve", true).await;
    assert_eq!(browser.authorize(&s, &wider).await.status(), StatusCode::SEE_OTHER);
    let narrower = with_scope(&params, "notes:write");
    assert_eq!(browser.authorize(&s, &narrower).await.status(), StatusCode::SEE_OTHER);

    // Not inside a frame, nor for a script (Fetch Metadata).
    let mut url = reqwest::Url::parse(&s.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(&params);
    let framed =
        browser.get(&s, url.clone(), &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")]).await;
    assert_eq!(framed.status(), StatusCode::OK, "a framed request gets the (unframeable) consent page");

    // Nor without Fetch Metadata at all: no evidence of a navigation the user made.
    let bare = browser.get(&s, url.clone(), &[]).await;
    assert_eq!(bare.status(), StatusCode::OK, "no Fetch Metadata headers: the consent page");
    assert!(bare.text().await.unwrap().contains("value=\"approve\""));

    // Nor for a navigation another site started; same-origin and typed URLs still skip.
    let fetch = |site: &'static str| {
        [("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document"), ("sec-fetch-site", site)]
    };
    for (site, status) in [
        ("cross-site", StatusCode::OK),
        ("same-site", StatusCode::OK),
        ("same-origin", StatusCode::SEE_OTHER),
        ("none", StatusCode::SEE_OTHER),
    ] {
        let response = browser.get(&s, url.clone(), &fetch(site)).await;
        assert_eq!(response.status(), status, "sec-fetch-site: {site}");
        if status == StatusCode::OK {
            assert!(response.text().await.unwrap().contains("value=\"approve\""), "{site}: the consent page");
        }
    }

    // Another client: asked.
    let other_client = s.public_client().await;
    let (_, challenge) = pkce();
    let page = browser.authorize(&s, &s.request(&other_client, &challenge)).await;
    assert_eq!(page.status(), StatusCode::OK);

    // Another browser: even after the same user logs in there, asked.
    let mut other = Browser::new();
    let login = other.authorize(&s, &params).await;
    let consent = other.login(&s, &login.text().await.unwrap(), "alice").await;
    assert_eq!(consent.status(), StatusCode::OK);
    assert!(consent.text().await.unwrap().contains("value=\"approve\""));
}

#[tokio::test]
async fn a_remembered_approval_applies_after_logging_in_again() {
    // No login session: the password is asked each time, then the
    // remembered approval skips the consent page.
    let s = start_with(
        |c| c.with_remember_consent(true).with_login_session_secs(0),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    first_approval(&s, &mut browser, &client, "notes:read", true).await;
    let (verifier, challenge) = pkce();
    let login = browser.authorize(&s, &s.request(&client, &challenge)).await;
    let done = browser.login(&s, &login.text().await.unwrap(), "alice").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let back = redirect_params(&done);
    let tokens = s.exchange(&client, &param(&back, "code").unwrap(), &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    // The transaction was consumed; the cookie binding the browser stays
    // for its other open pages.
    assert!(browser.has_cookie("mcp-auth-txn"));
    // Bob, logging in in the same browser, has no remembered approval.
    let (_, challenge) = pkce();
    let login = browser.authorize(&s, &s.request(&client, &challenge)).await;
    let consent = browser.login(&s, &login.text().await.unwrap(), "bob").await;
    assert_eq!(consent.status(), StatusCode::OK);
}

/// The consent page names the server being granted (its name and the issuer's host) in its title
/// and text, marks Allow as the primary action, and with no scopes says what access means.
#[tokio::test]
async fn the_consent_page_names_the_server_and_what_access_means() {
    let s = as_support::start_built(
        |c| c.with_scopes_supported(Vec::<String>::new()),
        |b| b.store(Arc::new(MemoryStore::new())).server_name("Notes <demo>"),
        "",
    )
    .await;
    let host = s.issuer.trim_start_matches("http://").to_owned();
    let client = s.public_client().await;
    let mut browser = Browser::new();
    let (_, challenge) = pkce();
    let params: Vec<_> = s.request(&client, &challenge).into_iter().filter(|(k, _)| *k != "scope").collect();
    let login = browser.authorize(&s, &params).await;
    let html = browser.login(&s, &login.text().await.unwrap(), "alice").await.text().await.unwrap();
    let server = format!("Notes &lt;demo&gt; ({host})");
    assert!(
        html.contains(&format!("<title>Allow Test &lt;Public&gt; App to use {server}?</title>")),
        "{html}"
    );
    assert!(html.contains(&format!("access <strong class=\"server\">{server}</strong> as")), "{html}");
    assert!(html.contains("class=\"primary\" name=\"decision\" value=\"approve\""), "{html}");
    assert!(html.contains("class=\"secondary\" name=\"decision\" value=\"deny\""), "{html}");
    assert!(html.contains("no narrower scope"), "{html}");
    assert!(!html.contains("no specific scopes"), "{html}");
}

/// Post/Redirect/Get: the login form answers `303 See Other` to the consent page, which is a
/// GET (a reload does not post the login again) and needs the transaction's cookie and token.
#[tokio::test]
async fn the_login_form_redirects_to_the_consent_page() {
    let s = start().await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    let (_, challenge) = pkce();
    let login = browser.authorize(&s, &s.request(&client, &challenge)).await;
    let html = login.text().await.unwrap();
    let csrf =
        html.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    let posted = browser.post(&s, "/authorize/login", &[("csrf", &csrf), ("username", "alice")]).await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let location = posted.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/authorize/consent?csrf={csrf}", s.issuer));
    for _reload in 0..2 {
        let page = s.http.get(&location).header("cookie", browser.cookie_header()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("value=\"approve\"") && html.contains("as <strong>alice</strong>"), "{html}");
    }
    // Without the browser's cookie the page is not shown.
    let elsewhere = s.http.get(&location).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
}

/// Revoking a grant (RFC 7009) also forgets the approval its user remembered for that client:
/// the next authorization shows the consent page again, in both stores.
async fn revoking_a_grant_forgets_its_remembered_approval(
    store: Arc<dyn mcp_auth::authorization_server::store::AuthStore>,
) {
    let s = start_with(|c| c.with_remember_consent(true), store, "").await;
    let client = s.public_client().await;
    let mut browser = Browser::new();
    first_approval(&s, &mut browser, &client, "notes:read", true).await;
    let (verifier, challenge) = pkce();
    let params = s.request(&client, &challenge);
    let direct = browser.authorize(&s, &params).await;
    assert_eq!(direct.status(), StatusCode::SEE_OTHER, "remembered: no page");
    let code = param(&redirect_params(&direct), "code").unwrap();
    let tokens: Value = s.exchange(&client, &code, &verifier).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();

    let revoked =
        s.post_form("/revoke", &[("token", refresh.as_str()), ("client_id", client.id.as_str())]).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let (_, challenge) = pkce();
    let again = browser.authorize(&s, &s.request(&client, &challenge)).await;
    assert_eq!(again.status(), StatusCode::OK, "asked again after the revocation");
    assert!(again.text().await.unwrap().contains("value=\"approve\""));
}

#[tokio::test]
async fn revoking_a_grant_forgets_its_remembered_approval_in_memory() {
    revoking_a_grant_forgets_its_remembered_approval(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn revoking_a_grant_forgets_its_remembered_approval_in_sqlite() {
    let store = mcp_auth::authorization_server::store::SqliteStore::in_memory().unwrap();
    revoking_a_grant_forgets_its_remembered_approval(Arc::new(store)).await;
}
