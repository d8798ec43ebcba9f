//! Clients registered from configuration (`[[auth.authorization_server.clients]]`):
//! checked at startup with the rules of dynamic registration (RFC 7591 §2),
//! and usable end to end, confidential ones authenticating at `/token`
//! (RFC 6749 §2.3.1).

#![allow(clippy::unwrap_used)]

mod as_support;

use std::sync::Arc;

use as_support::{Browser, param, pkce, redirect_params, start_with};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcp_auth::authorization_server::PreRegisteredClient;
use mcp_auth::authorization_server::store::MemoryStore;
use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const SECRET: &str = "0123456789abcdef0123456789abcdef-reporting";
const CALLBACK: &str = "https://reports.example.com/oauth/callback";

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[tokio::test]
async fn a_configured_confidential_client_completes_the_flow() {
    let hashed_secret = "another-secret-of-at-least-thirty-two-chars";
    let hash: String = Sha256::digest(hashed_secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let s = start_with(
        |c| {
            c.with_client(
                PreRegisteredClient::new("reporting", [CALLBACK])
                    .with_secret(SECRET)
                    .with_scopes(["notes:read"])
                    .with_name("Reporting"),
            )
            .with_client({
                let mut c =
                    PreRegisteredClient::new("poster", [CALLBACK]).with_auth_method("client_secret_post");
                c.client_secret_hash = Some(hash);
                c
            })
        },
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;

    let (verifier, challenge) = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", "reporting"),
        ("redirect_uri", CALLBACK),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s1"),
        ("scope", "notes:read"),
        ("resource", s.resource.as_str()),
    ];
    let mut browser = Browser::new();
    let login = browser.authorize(&s, &params).await;
    assert_eq!(login.status(), StatusCode::OK);
    let consent = browser.login(&s, &login.text().await.unwrap(), "carol").await;
    let html = consent.text().await.unwrap();
    assert!(html.contains("<strong>Reporting</strong> (an application configured by"), "{html}");
    assert!(html.contains("reports.example.com"), "{html}");
    assert!(!html.contains("(localhost)"), "no localhost warning for an https client: {html}");
    let back = redirect_params(&browser.decide(&s, &html, "approve", false).await);
    let code = param(&back, "code").unwrap();

    // The scopes are capped by the configuration.
    let mut wider = params.to_vec();
    wider.retain(|(k, _)| *k != "scope");
    wider.push(("scope", "notes:read notes:write"));
    let refused = redirect_params(&browser.authorize(&s, &wider).await);
    assert_eq!(param(&refused, "error").as_deref(), Some("invalid_scope"));

    let exchange = |code: String, auth: String| {
        let s = &s;
        let verifier = verifier.clone();
        async move {
            s.http
                .post(s.url("/token"))
                .header("authorization", auth)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("code_verifier", verifier.as_str()),
                    ("redirect_uri", CALLBACK),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // A wrong secret is invalid_client, and does not burn the code.
    let wrong = exchange(code.clone(), basic("reporting", "not-the-secret-not-the-secret-xx")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"], "invalid_client");
    // Without authentication: the registered method is required.
    let none = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", CALLBACK),
                ("client_id", "reporting"),
            ],
        )
        .await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    let tokens = exchange(code, basic("reporting", SECRET)).await;
    assert_eq!(tokens.status(), StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(tokens["scope"], "notes:read");
    let me: Value = s.call_mcp(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(me["subject"], "carol");
    assert_eq!(me["client_id"], "reporting");

    // Refresh, authenticated.
    let refreshed = s
        .http
        .post(s.url("/token"))
        .header("authorization", basic("reporting", SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);

    // The hashed-secret client authenticates with client_secret_post.
    let (verifier, challenge) = pkce();
    let mut params = params.to_vec();
    for (k, v) in &mut params {
        match *k {
            "client_id" => *v = "poster",
            "code_challenge" => *v = challenge.as_str(),
            _ => {}
        }
    }
    let login = browser.authorize(&s, &params).await;
    let html = login.text().await.unwrap();
    // The login session of this browser spares the password.
    let back = redirect_params(&browser.decide(&s, &html, "approve", false).await);
    let code = param(&back, "code").unwrap();
    let tokens = s
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", CALLBACK),
                ("client_id", "poster"),
                ("client_secret", hashed_secret),
            ],
        )
        .await;
    assert_eq!(tokens.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_configured_clients_stop_the_start_naming_the_key() {
    let cases: Vec<(PreRegisteredClient, &str)> = vec![
        (PreRegisteredClient::new("a", ["http://app.example/cb"]).with_secret(SECRET), "loopback"),
        (PreRegisteredClient::new("a", ["javascript:alert(1)"]), "scheme"),
        (PreRegisteredClient::new("a", Vec::<String>::new()), "redirect_uris"),
        (PreRegisteredClient::new("a", [CALLBACK]).with_secret("short"), "at least 32"),
        (
            PreRegisteredClient::new("a", [CALLBACK]).with_auth_method("client_secret_basic"),
            "needs client_secret",
        ),
        (
            PreRegisteredClient::new("a", [CALLBACK]).with_secret(SECRET).with_auth_method("none"),
            "has no secret",
        ),
        (PreRegisteredClient::new("a", [CALLBACK]).with_auth_method("private_key_jwt"), "not supported"),
        (PreRegisteredClient::new("a", [CALLBACK]).with_scopes(["admin"]), "scope `admin`"),
        (PreRegisteredClient::new("", [CALLBACK]), "client_id must be"),
        (
            {
                let mut c = PreRegisteredClient::new("a", [CALLBACK]).with_secret(SECRET);
                c.client_secret_hash = Some("ab".repeat(32));
                c
            },
            "not both",
        ),
        (
            {
                let mut c = PreRegisteredClient::new("a", [CALLBACK]);
                c.client_secret_hash = Some("not-hex".into());
                c
            },
            "64 lower-case hex",
        ),
    ];
    for (client, expected) in cases {
        let config = AuthorizationServerConfig::new("http://127.0.0.1:9")
            .with_scopes_supported(["notes:read"])
            .with_client(client);
        let error = AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp")
            .store(Arc::new(MemoryStore::new()))
            .build()
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("auth.authorization_server.clients"), "{error}");
        assert!(error.contains("clients[0]"), "{error}");
        assert!(error.contains(expected), "{expected:?} not in {error}");
    }

    // A duplicate id names the second entry.
    let config = AuthorizationServerConfig::new("http://127.0.0.1:9")
        .with_client(PreRegisteredClient::new("dup", [CALLBACK]))
        .with_client(PreRegisteredClient::new("dup", [CALLBACK]));
    let error = AuthorizationServer::builder(config, "http://127.0.0.1:9/mcp")
        .store(Arc::new(MemoryStore::new()))
        .build()
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("clients[1]") && error.contains("twice"), "{error}");
}

#[test]
fn configured_clients_parse_from_toml_and_hide_secrets_in_debug() {
    let config: AuthorizationServerConfig = toml::from_str(
        r#"
        issuer = "http://localhost:8080"
        remember_consent = true
        login_session_secs = 300
        cimd_enabled = false

        [[clients]]
        client_id = "reporting"
        client_secret = "0123456789abcdef0123456789abcdef"
        redirect_uris = ["https://reports.example.com/oauth/callback"]
        token_endpoint_auth_method = "client_secret_basic"
        scopes = ["notes:read"]
        application_type = "web"
        "#,
    )
    .unwrap();
    assert_eq!(config.clients.len(), 1);
    assert!(config.remember_consent && !config.cimd_enabled);
    assert_eq!(config.login_session_secs, 300);
    let debug = format!("{config:?}");
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded, then Base64-encoded, so a
/// secret may hold `&`, `=`, `+`, `%` and `:`. Decoding treats `&` and `=` as themselves and `+`
/// as a space, exactly as the encoding step defined them.
#[tokio::test]
async fn basic_credentials_decode_as_rfc_6749_says() {
    let secret = "s&e=c+r%t:a-long-enough-secret-value-0123456789";
    let s = start_with(
        |c| {
            c.with_client(PreRegisteredClient::new("id&co", [CALLBACK]).with_secret(secret))
                .with_client(PreRegisteredClient::new("plain", [CALLBACK]).with_secret(PLAIN_SECRET))
        },
        Arc::new(MemoryStore::new()),
        "",
    )
    .await;
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let revoke = |authorization: String| {
        s.http
            .post(s.url("/revoke"))
            .header("authorization", authorization)
            .form(&[("token", "unknown")])
            .send()
    };
    let good = revoke(basic(&encode("id&co"), &encode(secret))).await.unwrap();
    assert_eq!(good.status(), StatusCode::OK, "{}", good.text().await.unwrap());
    // Not encoded: the `+` reads as a space and `%t:` is not an escape, so the secret differs.
    let raw = revoke(basic("id&co", secret)).await.unwrap();
    assert_eq!(raw.status(), StatusCode::UNAUTHORIZED);
    let wrong = revoke(basic(&encode("id&co"), &encode("s&e=c"))).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // A client that leaves `&` and `=` unencoded (they need no escape to survive decoding) is
    // understood: the value does not end at the `&`.
    let unencoded = revoke(basic("plain", PLAIN_SECRET)).await.unwrap();
    assert_eq!(unencoded.status(), StatusCode::OK, "{}", unencoded.text().await.unwrap());
}

const PLAIN_SECRET: &str = "amp&ersand=equals-and-long-enough-0123456789";
