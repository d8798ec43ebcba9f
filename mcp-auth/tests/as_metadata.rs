//! Authorization-server metadata (RFC 8414), the OpenID alias, the JWKS and
//! issuer configuration, over real HTTP.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{start, start_with};
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig, AuthorizationServerError};
use serde_json::{Value, json};

#[tokio::test]
async fn metadata_names_the_configured_issuer_and_only_what_is_implemented() {
    let s = start().await;
    // Not an OpenID Provider (it issues no ID tokens): no OpenID discovery document, which would
    // have to promise ID-token fields (OpenID Connect Discovery 1.0 §3).
    let openid = s.http.get(format!("{}/.well-known/openid-configuration", s.base)).send().await.unwrap();
    assert_eq!(openid.status(), 404);
    for path in ["/.well-known/oauth-authorization-server"] {
        // A forged Host header changes nothing: the issuer is configured.
        let response =
            s.http.get(format!("{}{path}", s.base)).header("host", "evil.example").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], s.issuer);
        assert_eq!(doc["authorization_endpoint"], format!("{}/authorize", s.issuer));
        assert_eq!(doc["token_endpoint"], format!("{}/token", s.issuer));
        assert_eq!(doc["registration_endpoint"], format!("{}/register", s.issuer));
        assert_eq!(doc["revocation_endpoint"], format!("{}/revoke", s.issuer));
        assert_eq!(doc["introspection_endpoint"], format!("{}/introspect", s.issuer));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert_eq!(doc["scopes_supported"], json!(["notes:read", "notes:write"]));
        // CIMD is on by default (its off switch is tested in as_cimd.rs).
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        // Not implemented, so not advertised.
        assert!(doc.get("id_token_signing_alg_values_supported").is_none());
    }
}

#[tokio::test]
async fn registration_disabled_is_not_advertised_nor_served() {
    let s = start_with(
        |mut c| {
            c.registration_enabled = false;
            c
        },
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    let doc: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("registration_endpoint").is_none());
    // Not routed: the request falls to the app behind the bearer gate.
    let response = s.register_raw(&json!({"redirect_uris": ["https://a.example/cb"]})).await;
    assert!(matches!(response.status().as_u16(), 401 | 404), "{}", response.status());
}

#[tokio::test]
async fn issuer_with_a_path_uses_path_insertion_and_keeps_origin_fallbacks() {
    let s = start_with(|c| c, Arc::new(MemoryStore::new()), "/auth").await;
    for path in ["/.well-known/openid-configuration/auth", "/auth/.well-known/openid-configuration"] {
        let response = s.http.get(format!("{}{path}", s.base)).send().await.unwrap();
        // Not served (a path outside the well-known prefix meets the bearer gate instead).
        assert!(matches!(response.status().as_u16(), 401 | 404), "{path}: not an OpenID Provider");
    }
    for path in ["/.well-known/oauth-authorization-server/auth"] {
        let doc: Value = s.http.get(format!("{}{path}", s.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["issuer"], s.issuer, "{path}");
        assert_eq!(doc["token_endpoint"], format!("{}/auth/token", s.base));
    }
    // 2025-03-26 clients fall back to /authorize, /token and /register at the origin.
    let response = s
        .http
        .post(format!("{}/register", s.base))
        .json(&json!({"redirect_uris": ["https://a.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response =
        s.http.post(format!("{}/token", s.base)).form(&[("grant_type", "x")]).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = s.http.get(format!("{}/authorize", s.base)).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn jwks_publishes_the_es256_key() {
    let s = start().await;
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "never the private part");
    // Rotation keeps the previous key published.
    s.server.rotate_signing_key().await.unwrap();
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unsafe_issuers_and_dev_login_off_loopback_are_refused() {
    for issuer in
        ["http://mcp.example.com", "https://mcp.example.com/", "https://mcp.example.com?x=1", "", "ftp://x"]
    {
        let config = AuthorizationServerConfig::new(issuer).with_store("memory");
        let built = AuthorizationServer::builder(config, "https://mcp.example.com/mcp").build().await;
        assert!(matches!(built, Err(AuthorizationServerError::Config(_))), "{issuer:?} must be refused");
    }
    // The development login refuses a public issuer.
    let config = AuthorizationServerConfig::new("https://mcp.example.com").with_store("memory");
    let error =
        AuthorizationServer::builder(config, "https://mcp.example.com/mcp").build().await.unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}
