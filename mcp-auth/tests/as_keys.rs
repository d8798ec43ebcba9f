//! Signing settings over HTTP: RS256 tokens through the one validation path,
//! a signing key file, and the memory store refused off loopback.

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{TestServer, start_with};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use serde_json::Value;

async fn access_token(s: &TestServer) -> String {
    let client = s.public_client().await;
    let (code, verifier) = s.code(&client).await;
    let response = s.exchange(&client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

async fn jwks(s: &TestServer) -> Vec<Value> {
    let jwks: Value = s.http.get(s.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_rs256_server_issues_rs256_tokens_that_work_at_mcp() {
    let s = start_with(|c| c.with_signing_algorithm("RS256"), Arc::new(MemoryStore::new()), "").await;
    let keys = jwks(&s).await;
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["alg"].as_str()), (Some("RSA"), Some("RS256")));

    let access = access_token(&s).await;
    let header = header(&access);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], keys[0]["kid"]);
    // The ResourceServer path, then the gated MCP endpoint.
    assert_eq!(s.server.resource_server().unwrap().verify(&access).await.unwrap().subject, "alice");
    let response = s.call_mcp(&access).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["subject"], "alice");
}

#[tokio::test]
async fn the_default_is_es256() {
    let s = start_with(|c| c, Arc::new(MemoryStore::new()), "").await;
    let keys = jwks(&s).await;
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["alg"].as_str()), (Some("EC"), Some("ES256")));
    assert_eq!(header(&access_token(&s).await)["alg"], "ES256");
}

#[tokio::test]
async fn a_signing_key_file_is_generated_then_reused_across_restarts() {
    let dir = std::env::temp_dir().join(format!("mcp-auth-as-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("signing.pem");
    let file = path.to_str().unwrap().to_owned();

    let first = start_with(
        |c| c.with_signing_algorithm("RS256").with_signing_key_file(&file),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    assert!(std::fs::read_to_string(&path).unwrap().contains("BEGIN PRIVATE KEY"));
    let kid = jwks(&first).await[0]["kid"].clone();
    assert_eq!(first.call_mcp(&access_token(&first).await).await.status(), 200);

    // Another server (another store) with the same file publishes the same key.
    let second = start_with(
        |c| c.with_signing_algorithm("RS256").with_signing_key_file(&file),
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    assert_eq!(jwks(&second).await[0]["kid"], kid);

    // The wrong algorithm for the file's key is refused at start, naming it.
    let config = AuthorizationServerConfig::new(&second.issuer).with_signing_key_file(&file);
    let error = AuthorizationServer::builder(config, &second.resource)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("signing.pem") && error.contains("RS256") && error.contains("ES256"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unknown_signing_algorithm_is_refused() {
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9").with_signing_algorithm("HS256");
    let error = AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.authorization_server.signing_algorithm"), "{error}");
}

#[tokio::test]
async fn the_memory_store_is_refused_off_loopback() {
    let config = AuthorizationServerConfig::new("https://auth.example.com").with_store("memory");
    let error = AuthorizationServer::builder(config, "https://auth.example.com/mcp")
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.authorization_server.store"), "{error}");
    assert!(error.contains("sqlite://PATH"), "{error}");

    // On loopback it still starts (with its warning).
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9").with_store("memory");
    assert!(AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp").build().await.is_ok());
}
