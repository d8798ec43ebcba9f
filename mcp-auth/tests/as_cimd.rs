//! Client ID metadata documents (MCP 2025-11-25; draft-ietf-oauth-client-id-metadata-document),
//! end to end over HTTP: the documents are served by an axum app on
//! 127.0.0.1, which only `cimd_allow_insecure_for_tests` lets the server
//! fetch; with the switch off the SSRF guard refuses loopback and private
//! addresses.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use as_support::{Browser, REDIRECT, TestClient, TestServer, param, pkce, redirect_params, start_with};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use mcp_auth::authorization_server::is_public_address;
use mcp_auth::authorization_server::store::MemoryStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The document host: counts fetches of each path.
#[derive(Default)]
struct Docs {
    base: String,
    hits: AtomicUsize,
    nostore_hits: AtomicUsize,
    /// What `/flaky.json` does: 0 a valid document (`max-age=0`), 1 a 503,
    /// 2 a document that no longer validates.
    flaky_mode: AtomicUsize,
}

fn document(base: &str, path: &str) -> Value {
    json!({
        "client_id": format!("{base}{path}"),
        "client_name": "Doc <Client>",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
}

async fn client_json(State(docs): State<Arc<Docs>>) -> Response {
    docs.hits.fetch_add(1, Ordering::SeqCst);
    ([("cache-control", "public, max-age=60")], Json(document(&docs.base, "/client.json"))).into_response()
}

async fn nostore_json(State(docs): State<Arc<Docs>>) -> Response {
    docs.nostore_hits.fetch_add(1, Ordering::SeqCst);
    ([("cache-control", "no-store")], Json(document(&docs.base, "/nostore.json"))).into_response()
}

async fn mismatch_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    // Names another document: CIMD §4.1 requires the exact URL.
    Json(document(&docs.base, "/client.json"))
}

async fn big_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    let mut doc = document(&docs.base, "/big.json");
    doc["logo_note"] = json!("x".repeat(70 * 1024));
    Json(doc)
}

async fn secret_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    let mut doc = document(&docs.base, "/secret.json");
    doc["token_endpoint_auth_method"] = json!("client_secret_basic");
    Json(doc)
}

async fn flaky_json(State(docs): State<Arc<Docs>>) -> Response {
    match docs.flaky_mode.load(Ordering::SeqCst) {
        0 => ([("cache-control", "max-age=0")], Json(document(&docs.base, "/flaky.json"))).into_response(),
        1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => Json(document(&docs.base, "/other.json")).into_response(),
    }
}

async fn html() -> impl IntoResponse {
    ([("content-type", "text/html")], "<html>not a document</html>")
}

async fn moved() -> Redirect {
    Redirect::temporary("/client.json")
}

async fn serve_documents() -> Arc<Docs> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let docs = Arc::new(Docs { base, ..Docs::default() });
    let app = Router::new()
        .route("/client.json", get(client_json))
        .route("/nostore.json", get(nostore_json))
        .route("/mismatch.json", get(mismatch_json))
        .route("/big.json", get(big_json))
        .route("/secret.json", get(secret_json))
        .route("/page.json", get(html))
        .route("/moved.json", get(moved))
        .route("/flaky.json", get(flaky_json))
        .with_state(docs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    docs
}

async fn server(insecure_for_tests: bool) -> TestServer {
    start_with(|c| c.with_cimd_allow_insecure_for_tests(insecure_for_tests), Arc::new(MemoryStore::new()), "")
        .await
}

fn doc_client(url: String) -> TestClient {
    TestClient { id: url, secret: None }
}

/// `/authorize` for a document client; the status and page.
async fn try_authorize(s: &TestServer, client_id: &str) -> (StatusCode, String) {
    let (_, challenge) = pkce();
    let client = doc_client(client_id.to_owned());
    let response = s.authorize(&s.request(&client, &challenge)).await;
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_metadata_document_client_completes_the_flow() {
    let docs = serve_documents().await;
    let s = server(true).await;
    let meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    let client = doc_client(format!("{}/client.json", docs.base));
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();
    let login = browser.authorize(&s, &s.request(&client, &challenge)).await;
    assert_eq!(login.status(), StatusCode::OK);
    let consent = browser.login(&s, &login.text().await.unwrap(), "alice").await;
    let html = consent.text().await.unwrap();
    // The name is the document's (escaped, flagged as unverified); the
    // redirect host is shown; a localhost-only client is warned about.
    assert!(html.contains("Doc &lt;Client&gt;"), "{html}");
    assert!(html.contains("document published at <strong>127.0.0.1</strong>"), "{html}");
    assert!(html.contains("class=\"redirect-host\">127.0.0.1</strong>"), "{html}");
    assert!(html.contains("this computer</strong> (localhost)"), "{html}");
    let back = redirect_params(&browser.decide(&s, &html, "approve", false).await);
    assert_eq!(param(&back, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&back, "iss").as_deref(), Some(s.issuer.as_str()));
    let code = param(&back, "code").unwrap();

    // A public client: the token request carries only the client_id URL.
    let tokens = s.exchange(&client, &code, &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    let me: Value = s.call_mcp(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["client_id"], client.id);
    let refreshed = s.refresh(&client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK);

    // Cache-Control: max-age=60 -> one fetch served every lookup.
    assert_eq!(docs.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_store_documents_are_fetched_every_time() {
    let docs = serve_documents().await;
    let s = server(true).await;
    let url = format!("{}/nostore.json", docs.base);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    assert_eq!(docs.nostore_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unusable_documents_are_an_unknown_client_never_a_redirect() {
    let docs = serve_documents().await;
    let s = server(true).await;
    for path in [
        "/mismatch.json", // client_id is not the URL
        "/big.json",      // larger than the limit
        "/secret.json",   // asks for a secret-based method
        "/page.json",     // HTML, not JSON
        "/moved.json",    // redirects are not followed
        "/missing.json",  // 404
    ] {
        let (status, html) = try_authorize(&s, &format!("{}{path}", docs.base)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(html.contains("Unknown client."), "{path}: {html}");
    }
    // Malformed client_id URLs are refused before any fetch.
    for bad in [format!("{}/", docs.base), format!("{}/a/../client.json", docs.base)] {
        assert_eq!(try_authorize(&s, &bad).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(docs.hits.load(Ordering::SeqCst), 0, "nothing fetched /client.json");
}

#[tokio::test]
async fn without_the_test_switch_loopback_and_http_are_refused() {
    let docs = serve_documents().await;
    let s = server(false).await;
    let port = docs.base.rsplit(':').next().unwrap().to_owned();
    for url in [
        // plain http
        format!("{}/client.json", docs.base),
        // IP literals checked before connecting
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
        // a name resolving to loopback: refused by the resolver, not connected to
        format!("https://localhost:{port}/client.json"),
    ] {
        let (status, html) = try_authorize(&s, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert!(html.contains("Unknown client."), "{url}");
    }
    assert_eq!(docs.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stale_copy_serves_during_an_outage_but_not_after_it_stops_validating() {
    let docs = serve_documents().await;
    let s = server(true).await;
    let url = format!("{}/flaky.json", docs.base);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    // max-age=0: refetched, the host answers 503, the copy that validated serves.
    docs.flaky_mode.store(1, Ordering::SeqCst);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    // Now it no longer validates: dropped at once...
    docs.flaky_mode.store(2, Ordering::SeqCst);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::BAD_REQUEST);
    // ...so a later outage has nothing stale to serve.
    docs.flaky_mode.store(1, Ordering::SeqCst);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_insecure_test_switch_refuses_a_non_loopback_issuer() {
    let config = mcp_auth::AuthorizationServerConfig::new("https://mcp.example.com")
        .with_cimd_allow_insecure_for_tests(true);
    let error = mcp_auth::AuthorizationServer::builder(config, "https://mcp.example.com/mcp")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("auth.authorization_server.cimd_allow_insecure_for_tests"), "{error}");
}

#[tokio::test]
async fn disabled_cimd_is_not_advertised_nor_fetched() {
    let docs = serve_documents().await;
    let s = start_with(
        |c| c.with_cimd_enabled(false).with_cimd_allow_insecure_for_tests(true),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    let meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("client_id_metadata_document_supported").is_none());
    let (status, _) = try_authorize(&s, &format!("{}/client.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(docs.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn only_public_addresses_may_be_fetched() {
    for private in [
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "127.0.0.1",
        "127.8.9.10",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:c0a8:101::1",
        "2001:db8::1",
    ] {
        let ip: IpAddr = private.parse().unwrap();
        assert!(!is_public_address(ip), "{private} must be refused");
    }
    for public in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
        let ip: IpAddr = public.parse().unwrap();
        assert!(is_public_address(ip), "{public} is public");
    }
}
