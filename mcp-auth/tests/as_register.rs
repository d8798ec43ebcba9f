//! Dynamic client registration (RFC 7591): validation, defaults, secrets
//! returned once and stored hashed.

#![allow(clippy::unwrap_used)]

mod as_support;

use as_support::{assert_no_store, assert_oauth_error, start};
use serde_json::{Value, json};

#[tokio::test]
async fn public_client_gets_no_secret() {
    let s = start().await;
    let response = s
        .register_raw(
            &json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_no_store(&response);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("client_secret").is_none());
    assert_eq!(body["application_type"], "native", "inferred from the loopback redirect");
    assert_eq!(body["grant_types"], json!(["authorization_code"]), "RFC 7591 default");
    assert_eq!(body["response_types"], json!(["code"]));
}

#[tokio::test]
async fn confidential_client_secret_is_returned_once_and_stored_hashed() {
    let s = start().await;
    let body: Value =
        s.register_raw(&json!({"redirect_uris": ["https://app.example/cb"]})).await.json().await.unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["client_secret_expires_at"], 0);
    assert_eq!(body["application_type"], "web");
    let stored = s.server.store().client(body["client_id"].as_str().unwrap(), 0).await.unwrap().unwrap();
    let stored_hash = stored.secret_hash.clone().unwrap();
    assert_ne!(stored_hash, secret);
    assert!(!format!("{stored:?}").contains(secret));
    assert_eq!(stored_hash.len(), 64);
}

#[tokio::test]
async fn native_private_use_scheme_is_accepted() {
    let s = start().await;
    let response = s
        .register_raw(&json!({
            "redirect_uris": ["com.example.notes:/oauth"],
            "application_type": "native",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn redirect_uri_bypass_corpus_is_refused() {
    let s = start().await;
    for uri in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "https://app.example/cb\n",
        "https://app.example/\u{0}cb",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "blob:https://app.example/x",
        "file:///etc/passwd",
        "http://app.example/cb",
        "https://app.example/cb#fragment",
        "https://user:pass@app.example/cb",
        "//app.example/cb",
        "custom:/cb",
        "",
    ] {
        let response =
            s.register_raw(&json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"})).await;
        assert_oauth_error(response, 400, "invalid_redirect_uri").await;
    }
}

#[tokio::test]
async fn application_type_must_fit_the_redirects() {
    let s = start().await;
    for uri in ["http://127.0.0.1:3000/cb", "https://localhost/cb", "com.example.app:/cb"] {
        let response = s.register_raw(&json!({"redirect_uris": [uri], "application_type": "web"})).await;
        assert_oauth_error(response, 400, "invalid_redirect_uri").await;
    }
    let response = s
        .register_raw(&json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}))
        .await;
    assert_oauth_error(response, 400, "invalid_client_metadata").await;
}

#[tokio::test]
async fn inconsistent_or_unsupported_metadata_is_refused() {
    let s = start().await;
    let cb = ["https://app.example/cb"];
    for metadata in [
        json!({"redirect_uris": cb, "grant_types": ["client_credentials"]}),
        json!({"redirect_uris": cb, "grant_types": ["refresh_token"]}),
        json!({"redirect_uris": cb, "grant_types": ["implicit"], "response_types": ["token"]}),
        json!({"redirect_uris": cb, "response_types": ["code", "token"]}),
        json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": cb, "scope": "admin"}),
        json!({"redirect_uris": cb, "client_name": "x".repeat(500)}),
        json!({"redirect_uris": "https://app.example/cb"}),
    ] {
        let response = s.register_raw(&metadata).await;
        assert_oauth_error(response, 400, "invalid_client_metadata").await;
    }
    let response = s.register_raw(&json!({"client_name": "no redirects"})).await;
    assert_oauth_error(response, 400, "invalid_redirect_uri").await;
    let huge = json!({"redirect_uris": cb, "padding": "x".repeat(20_000)});
    assert_oauth_error(s.register_raw(&huge).await, 400, "invalid_client_metadata").await;
    let response = s.http.post(s.url("/register")).body("not json").send().await.unwrap();
    assert_oauth_error(response, 400, "invalid_client_metadata").await;
    let response = s.http.get(s.url("/register")).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

/// Clients send `"scope": ""` when the server publishes no scopes (the MCP Inspector does): an
/// empty or blank scope says nothing and registers like an absent one (RFC 7591 §2).
#[tokio::test]
async fn empty_or_blank_scope_counts_as_absent() {
    let s = as_support::start_with(
        |config| config.with_scopes_supported(Vec::<String>::new()),
        std::sync::Arc::new(mcp_auth::authorization_server::store::MemoryStore::new()),
        "",
    )
    .await;
    for scope in ["", "   "] {
        let response = s
            .register_raw(&json!({
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
                "scope": scope,
            }))
            .await;
        assert_eq!(response.status(), 201, "scope {scope:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("scope").is_none(), "no scope is recorded for {scope:?}: {body}");
    }
    // A real scope the server does not publish is still refused.
    let refused =
        s.register_raw(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "notes:read"})).await;
    assert_oauth_error(refused, 400, "invalid_client_metadata").await;
}
