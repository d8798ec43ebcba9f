//! What the layer answers by itself, over real HTTP on 127.0.0.1 in front of a
//! plain axum handler: challenges, step-up, protected-resource metadata, CORS
//! preflight.

// Helpers outside #[test] functions may unwrap too: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::{assert_invalid_token, challenge, setup, setup_with};

#[tokio::test]
async fn missing_token_gets_401_with_resource_metadata_and_scope_but_no_error() {
    let (_issuer, _key, app) = setup().await;
    let response = app.client.post(app.url("/mcp")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        format!(
            r#"Bearer resource_metadata="http://{}/.well-known/oauth-protected-resource/mcp", scope="notes:read notes:write""#,
            app.addr
        )
    );
    // A token in the query string is never read (RFC 6750 §2.3 is not supported).
    let response = app.client.post(app.url("/mcp?access_token=abc")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(!challenge(&response).contains("error="));
    // Another scheme is no bearer token either.
    let response = app.client.post(app.url("/mcp")).basic_auth("u", Some("p")).send().await.unwrap();
    assert!(!challenge(&response).contains("error="));
}

#[tokio::test]
async fn malformed_or_repeated_authorization_headers_are_refused() {
    let (_issuer, _key, app) = setup().await;
    let response =
        app.client.post(app.url("/mcp")).header("authorization", "Bearer a b").send().await.unwrap();
    assert_invalid_token(response).await;
    let response = app
        .client
        .post(app.url("/mcp"))
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(challenge(&response).starts_with(r#"Bearer error="invalid_request""#));
}

#[tokio::test]
async fn insufficient_scope_marker_becomes_a_403_naming_every_scope() {
    let (issuer, key, app) = setup().await;
    let token = key.sign(&issuer.claims(&app.resource)); // notes:read only
    let response = app.client.post(app.url("/mcp/notes")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"This operation needs the scopes: notes:read notes:write\", \
             resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\", scope=\"notes:read notes:write\"",
            app.addr
        )
    );
    let body = response.text().await.unwrap();
    assert!(!body.contains("the layer must replace this"), "{body}");
    // With both scopes the handler answers.
    let mut claims = issuer.claims(&app.resource);
    claims["scope"] = json!("notes:read notes:write");
    let response =
        app.client.post(app.url("/mcp/notes")).bearer_auth(key.sign(&claims)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "added");
}

#[tokio::test]
async fn required_scopes_are_enforced_by_the_layer() {
    let (issuer, key, app) = setup_with(|c| c.with_required_scopes(["notes:read", "mcp"])).await;
    let response = app.call(&key.sign(&issuer.claims(&app.resource))).await;
    assert_eq!(response.status(), 403);
    assert!(challenge(&response).contains(r#"scope="notes:read mcp""#), "{}", challenge(&response));
    let mut claims = issuer.claims(&app.resource);
    claims["scope"] = json!("mcp notes:read");
    assert_eq!(app.call(&key.sign(&claims)).await.status(), 200);
}

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_paths() {
    let (issuer, _key, app) = setup_with(|c| c.with_resource_name("Notes")).await;
    let expected = json!({
        "resource": app.resource,
        "authorization_servers": [issuer.url],
        "scopes_supported": ["notes:read", "notes:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Notes",
    });
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp/",
    ] {
        let response =
            app.client.get(app.url(path)).header("origin", "https://app.example.com").send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(response.headers()["content-type"], "application/json");
        let text = response.text().await.unwrap();
        assert!(
            text.contains(&format!("\"resource\":\"{}\"", app.resource)),
            "character for character: {text}"
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
    }
    let head = app.client.head(app.url("/.well-known/oauth-protected-resource/mcp")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/.well-known/oauth-protected-resource/mcp"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    // Another resource's metadata is not ours, and needs no token either.
    let other = app.client.get(app.url("/.well-known/oauth-protected-resource/other")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(issuer.metadata_hits(), 0, "serving metadata needs no discovery");
}

#[tokio::test]
async fn protected_resource_metadata_refuses_other_methods_with_allow() {
    let (_issuer, _key, app) = setup().await;
    for method in [reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = app
            .client
            .request(method.clone(), app.url("/.well-known/oauth-protected-resource"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");
    }
}

#[tokio::test]
async fn options_requests_pass_through_without_a_token() {
    let (_issuer, _key, app) = setup().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/mcp"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    // The plain router has no OPTIONS route: its own 405, not the layer's 401.
    assert_eq!(response.status(), 405);
    assert!(response.headers().get("www-authenticate").is_none());
}
