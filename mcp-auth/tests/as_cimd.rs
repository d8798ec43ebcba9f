//! Client ID metadata documents (MCP 2025-11-25; draft-ietf-oauth-client-id-metadata-document),
//! end to end over HTTP: the documents are served by an axum app on
//! 127.0.0.1, which only `cimd_allow_insecure_for_tests` lets the server
//! fetch; with the switch off the SSRF guard refuses loopback and private
//! addresses.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use as_support::{Browser, REDIRECT, TestClient, TestServer, param, pkce, redirect_params, start_with};
use axum::extract::{Path, State};
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
    /// Fetches of every other path, by path.
    counts: Mutex<HashMap<String, usize>>,
    /// Where `/elsewhere.json` redirects to.
    elsewhere: Mutex<String>,
}

impl Docs {
    fn count(&self, path: &str) {
        *self.counts.lock().unwrap().entry(path.to_owned()).or_default() += 1;
    }

    fn fetches(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
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
    docs.count("/mismatch.json");
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
    docs.count("/flaky.json");
    match docs.flaky_mode.load(Ordering::SeqCst) {
        0 => ([("cache-control", "max-age=0")], Json(document(&docs.base, "/flaky.json"))).into_response(),
        1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => Json(document(&docs.base, "/other.json")).into_response(),
    }
}

/// A document padded with a field to about `size` bytes.
fn padded(base: &str, path: &str, size: usize) -> Value {
    let mut doc = document(base, path);
    let len = serde_json::to_vec(&doc).unwrap().len();
    doc["padding"] = json!("x".repeat(size - len - 14));
    doc
}

async fn fits_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    docs.count("/fits.json");
    let doc = padded(&docs.base, "/fits.json", 5000);
    assert!(serde_json::to_vec(&doc).unwrap().len() <= 5120);
    Json(doc)
}

async fn over_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    docs.count("/over.json");
    let doc = padded(&docs.base, "/over.json", 5200);
    assert!(serde_json::to_vec(&doc).unwrap().len() > 5120);
    Json(doc)
}

async fn private_jwk_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    let mut doc = document(&docs.base, "/private-jwk.json");
    doc["jwks"] = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]});
    Json(doc)
}

fn key_jwt_document(base: &str, path: &str) -> Value {
    let mut doc = document(base, path);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks"] = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    doc
}

async fn key_jwt_or_none_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    let mut doc = key_jwt_document(&docs.base, "/key-jwt-or-none.json");
    doc["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt", "none"]);
    Json(doc)
}

async fn key_jwt_only_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    let mut doc = key_jwt_document(&docs.base, "/key-jwt-only.json");
    doc["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
    Json(doc)
}

async fn slow_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    docs.count("/slow.json");
    tokio::time::sleep(Duration::from_secs(5)).await;
    Json(document(&docs.base, "/slow.json"))
}

/// `/cap/{name}`: a document per name, fresh for 60 s times its length
/// (so the one closest to expiry is known).
async fn cap_json(State(docs): State<Arc<Docs>>, Path(name): Path<String>) -> Response {
    let path = format!("/cap/{name}");
    docs.count(&path);
    let max_age = format!("max-age={}", 60 * name.len());
    ([("cache-control", max_age)], Json(document(&docs.base, &path))).into_response()
}

/// Behind a CDN: the document's URL redirects once, to a copy that still
/// names the original URL.
async fn cdn_json(State(docs): State<Arc<Docs>>) -> Redirect {
    docs.count("/cdn.json");
    Redirect::temporary("/edge/cdn-copy.json")
}

async fn cdn_copy_json(State(docs): State<Arc<Docs>>) -> Json<Value> {
    docs.count("/edge/cdn-copy.json");
    Json(document(&docs.base, "/cdn.json"))
}

async fn elsewhere_json(State(docs): State<Arc<Docs>>) -> Redirect {
    docs.count("/elsewhere.json");
    Redirect::temporary(&docs.elsewhere.lock().unwrap())
}

async fn hop1() -> Redirect {
    Redirect::temporary("/hop2.json")
}

async fn hop2() -> Redirect {
    Redirect::permanent("/hop-final.json")
}

async fn hop_final(State(docs): State<Arc<Docs>>) -> Json<Value> {
    docs.count("/hop-final.json");
    Json(document(&docs.base, "/hop1.json"))
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
        .route("/fits.json", get(fits_json))
        .route("/over.json", get(over_json))
        .route("/private-jwk.json", get(private_jwk_json))
        .route("/key-jwt-or-none.json", get(key_jwt_or_none_json))
        .route("/key-jwt-only.json", get(key_jwt_only_json))
        .route("/slow.json", get(slow_json))
        .route("/cap/{name}", get(cap_json))
        .route("/cdn.json", get(cdn_json))
        .route("/edge/cdn-copy.json", get(cdn_copy_json))
        .route("/elsewhere.json", get(elsewhere_json))
        .route("/hop1.json", get(hop1))
        .route("/hop2.json", get(hop2))
        .route("/hop-final.json", get(hop_final))
        .with_state(docs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    docs
}

/// A server that may fetch documents from the port of `base` (the only one
/// allowed), and with `insecure_for_tests` from 127.0.0.1 over http.
async fn server(insecure_for_tests: bool, base: &str) -> TestServer {
    server_with(insecure_for_tests, base, |c| c).await
}

async fn server_with(
    insecure_for_tests: bool,
    base: &str,
    tweak: impl FnOnce(mcp_auth::AuthorizationServerConfig) -> mcp_auth::AuthorizationServerConfig,
) -> TestServer {
    let port = port_of(base);
    start_with(
        |c| tweak(c.with_cimd_allow_insecure_for_tests(insecure_for_tests).with_cimd_allowed_ports([port])),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await
}

fn port_of(base: &str) -> u16 {
    reqwest::Url::parse(base).unwrap().port().unwrap()
}

/// A raw HTTP/1.1 document host on 127.0.0.1 that answers every request
/// with `head` then `body` (written chunk by chunk, 100 ms apart), and
/// holds the connection open for 30 s. Returns its base URL.
fn raw_document_host(head: String, body: Vec<Vec<u8>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let head = head.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(head.as_bytes());
                for chunk in body {
                    if stream.write_all(&chunk).is_err() {
                        return; // the reader hung up
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                std::thread::sleep(Duration::from_secs(30));
            });
        }
    });
    base
}

/// Runs a whole authorization and code exchange for a document client.
async fn complete_flow(s: &TestServer, client: &TestClient) -> Value {
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new();
    let login = browser.authorize(s, &s.request(client, &challenge)).await;
    assert_eq!(login.status(), StatusCode::OK);
    let consent = browser.login(s, &login.text().await.unwrap(), "alice").await;
    let html = consent.text().await.unwrap();
    let back = redirect_params(&browser.decide(s, &html, "approve", false).await);
    let code = param(&back, "code").unwrap();
    let tokens = s.exchange(client, &code, &verifier).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    tokens.json().await.unwrap()
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
    let s = server(true, &docs.base).await;
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
    let s = server(true, &docs.base).await;
    let url = format!("{}/nostore.json", docs.base);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    assert_eq!(docs.nostore_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unusable_documents_are_an_unknown_client_never_a_redirect() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    for path in [
        "/mismatch.json", // client_id is not the URL
        "/big.json",      // larger than the limit
        "/secret.json",   // asks for a secret-based method
        "/page.json",     // HTML, not JSON
        "/moved.json",    // redirects to another client's document (client_id is not the URL)
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
    // Only /moved.json's one redirect reached /client.json (whose client_id
    // is not the URL the client gave).
    assert_eq!(docs.hits.load(Ordering::SeqCst), 1, "only the redirect fetched /client.json");
}

#[tokio::test]
async fn without_the_test_switch_loopback_and_http_are_refused() {
    let docs = serve_documents().await;
    let s = server(false, &docs.base).await;
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
    // Failures not remembered: every request below fetches.
    let s = server_with(true, &docs.base, |c| c.with_cimd_failure_cache_secs(0)).await;
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
        // IPv4-translated (::ffff:0:a.b.c.d), compatible, NAT64 and 6to4
        // forms of loopback and the cloud metadata address
        "::ffff:0:127.0.0.1",
        "::ffff:0:169.254.169.254",
        "::ffff:0:a00:1",
        "::127.0.0.1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::",
    ] {
        let ip: IpAddr = private.parse().unwrap();
        assert!(!is_public_address(ip), "{private} must be refused");
    }
    for public in [
        "93.184.216.34",
        "1.1.1.1",
        "172.32.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "::ffff:0:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ] {
        let ip: IpAddr = public.parse().unwrap();
        assert!(is_public_address(ip), "{public} is public");
    }
}

#[tokio::test]
async fn documents_are_capped_at_5_kb() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    // Just under 5 KB: accepted.
    assert_eq!(try_authorize(&s, &format!("{}/fits.json", docs.base)).await.0, StatusCode::OK);
    // Just over, with a Content-Length: refused.
    let (status, html) = try_authorize(&s, &format!("{}/over.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert_eq!(docs.fetches("/over.json"), 1);
}

#[tokio::test]
async fn a_too_large_content_length_is_refused_before_the_body_arrives() {
    // Declares 6,000 bytes, then sends nothing: only the header can refuse
    // it (reading would wait until the 10 s time limit).
    let base = raw_document_host(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 6000\r\n\r\n".into(),
        Vec::new(),
    );
    let s = server(true, &base).await;
    let started = Instant::now();
    let (status, html) = try_authorize(&s, &format!("{base}/client.json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_streamed_body_is_cut_off_past_5_kb() {
    // Chunked, no Content-Length, 1 KB a chunk for 100 KB: refused once the
    // sixth chunk passes the limit, long before the body would end.
    let chunk = |data: &[u8]| {
        let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
        framed.extend_from_slice(data);
        framed.extend_from_slice(b"\r\n");
        framed
    };
    let mut body = vec![chunk(b"{\"padding\": \"")];
    body.extend(std::iter::repeat_n(chunk(&[b'x'; 1024]), 100));
    let base = raw_document_host(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".into(),
        body,
    );
    let s = server(true, &base).await;
    let started = Instant::now();
    let (status, html) = try_authorize(&s, &format!("{base}/client.json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_slow_document_host_times_out_as_an_unknown_client() {
    let docs = serve_documents().await;
    let s = server_with(true, &docs.base, |c| c.with_cimd_fetch_timeout_secs(1)).await;
    let started = Instant::now();
    let (status, html) = try_authorize(&s, &format!("{}/slow.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(docs.fetches("/slow.json"), 1);
    assert_eq!(mcp_auth::AuthorizationServerConfig::default().cimd_fetch_timeout_secs, 10);
}

#[tokio::test]
async fn user_information_or_a_fragment_is_refused_before_any_fetch() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    let authority = docs.base.trim_start_matches("http://");
    for url in [
        format!("http://user@{authority}/client.json"),
        format!("http://user:password@{authority}/client.json"),
        format!("{}/client.json#fragment", docs.base),
        format!("{}/client.json#", docs.base),
    ] {
        let (_, challenge) = pkce();
        let client = doc_client(url.clone());
        let response = s.authorize(&s.request(&client, &challenge)).await;
        // The direct error page: no redirect to the client.
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get("location").is_none(), "{url}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Unknown client."), "{url}: {html}");
    }
    assert_eq!(docs.hits.load(Ordering::SeqCst), 0, "nothing was fetched");
}

#[tokio::test]
async fn a_document_with_a_private_key_is_refused() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    let (status, html) = try_authorize(&s, &format!("{}/private-jwk.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
}

#[tokio::test]
async fn private_key_jwt_with_none_is_negotiated_down_to_none() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    // Also lists `none`: a public client, through the whole flow.
    let client = doc_client(format!("{}/key-jwt-or-none.json", docs.base));
    let tokens = complete_flow(&s, &client).await;
    let me: Value = s.call_mcp(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["client_id"], client.id);
    // private_key_jwt alone: refused (not implemented).
    let (status, html) = try_authorize(&s, &format!("{}/key-jwt-only.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
}

#[tokio::test]
async fn the_cache_is_capped_and_evicts_the_entry_closest_to_expiry() {
    let docs = serve_documents().await;
    let s = server_with(true, &docs.base, |c| c.with_cimd_cache_capacity(2)).await;
    let url = |name: &str| format!("{}/cap/{name}", docs.base);
    // Fresh for 60, 120 and 180 s: storing the third evicts `a`.
    for name in ["a", "bb", "ccc"] {
        assert_eq!(try_authorize(&s, &url(name)).await.0, StatusCode::OK, "{name}");
    }
    // `bb` and `ccc` are served from the cache...
    assert_eq!(try_authorize(&s, &url("bb")).await.0, StatusCode::OK);
    assert_eq!(try_authorize(&s, &url("ccc")).await.0, StatusCode::OK);
    assert_eq!((docs.fetches("/cap/a"), docs.fetches("/cap/bb"), docs.fetches("/cap/ccc")), (1, 1, 1));
    // ...`a` was evicted and is fetched again (evicting `bb` in its turn).
    assert_eq!(try_authorize(&s, &url("a")).await.0, StatusCode::OK);
    assert_eq!(docs.fetches("/cap/a"), 2);
    assert_eq!(try_authorize(&s, &url("ccc")).await.0, StatusCode::OK);
    assert_eq!(try_authorize(&s, &url("bb")).await.0, StatusCode::OK);
    assert_eq!((docs.fetches("/cap/a"), docs.fetches("/cap/bb"), docs.fetches("/cap/ccc")), (2, 2, 1));
}

#[tokio::test]
async fn one_redirect_is_followed_and_the_document_still_names_the_original_url() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    let client = doc_client(format!("{}/cdn.json", docs.base));
    let tokens = complete_flow(&s, &client).await;
    let me: Value = s.call_mcp(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    // The client is the URL it gave, not the one redirected to.
    assert_eq!(me["client_id"], client.id);
    assert_eq!((docs.fetches("/cdn.json"), docs.fetches("/edge/cdn-copy.json")), (1, 1));
}

#[tokio::test]
async fn a_second_redirect_is_refused() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    let (status, html) = try_authorize(&s, &format!("{}/hop1.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert_eq!(docs.fetches("/hop-final.json"), 0, "the second redirect was not followed");
}

#[tokio::test]
async fn a_failed_fetch_is_remembered_so_a_flood_costs_one_fetch() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    assert_eq!(mcp_auth::AuthorizationServerConfig::default().cimd_failure_cache_secs, 30);
    // An invalid document, then a host that never answers in time: each is
    // fetched once however many requests name it.
    let mismatch = format!("{}/mismatch.json", docs.base);
    for _ in 0..3 {
        assert_eq!(try_authorize(&s, &mismatch).await.0, StatusCode::BAD_REQUEST);
    }
    assert_eq!(docs.fetches("/mismatch.json"), 1);
    let slow = server_with(true, &docs.base, |c| c.with_cimd_fetch_timeout_secs(1)).await;
    let url = format!("{}/slow.json", docs.base);
    for _ in 0..3 {
        let (status, html) = try_authorize(&slow, &url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("Unknown client."), "{html}");
    }
    assert_eq!(docs.fetches("/slow.json"), 1);
    // With the memory turned off, each request fetches again.
    let forgetful = server_with(true, &docs.base, |c| c.with_cimd_failure_cache_secs(0)).await;
    for _ in 0..2 {
        assert_eq!(try_authorize(&forgetful, &mismatch).await.0, StatusCode::BAD_REQUEST);
    }
    assert_eq!(docs.fetches("/mismatch.json"), 3);
}

#[tokio::test]
async fn during_a_remembered_outage_the_stale_copy_serves_without_refetching() {
    let docs = serve_documents().await;
    let s = server(true, &docs.base).await;
    let url = format!("{}/flaky.json", docs.base);
    assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    // max-age=0, then the host answers 503: the copy that validated serves,
    // and the outage is remembered, so the next requests do not fetch.
    docs.flaky_mode.store(1, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(try_authorize(&s, &url).await.0, StatusCode::OK);
    }
    assert_eq!(docs.fetches("/flaky.json"), 2);
}

#[tokio::test]
async fn documents_are_fetched_only_from_allowed_ports() {
    let docs = serve_documents().await;
    let other = serve_documents().await;
    // The default allows 443 alone: a document on the test host's port is
    // refused before any connection, even with the test switch on.
    let default_ports =
        start_with(|c| c.with_cimd_allow_insecure_for_tests(true), Arc::new(MemoryStore::new()), "").await;
    let (status, html) = try_authorize(&default_ports, &format!("{}/client.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert_eq!(docs.hits.load(Ordering::SeqCst), 0, "nothing was fetched");
    assert_eq!(mcp_auth::AuthorizationServerConfig::default().cimd_allowed_ports, [443]);
    // An allowed port: fetched. A redirect from it to another port: not followed.
    let s = server(true, &docs.base).await;
    assert_eq!(try_authorize(&s, &format!("{}/client.json", docs.base)).await.0, StatusCode::OK);
    *docs.elsewhere.lock().unwrap() = format!("{}/client.json", other.base);
    let (status, html) = try_authorize(&s, &format!("{}/elsewhere.json", docs.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Unknown client."), "{html}");
    assert_eq!(docs.fetches("/elsewhere.json"), 1);
    assert_eq!(other.hits.load(Ordering::SeqCst), 0, "the redirect to another port was not followed");
}
