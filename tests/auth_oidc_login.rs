//! End-to-end tests of the OpenID Connect login of authorization-server
//! mode: the `github-oauth` example with `examples/github-oauth/oidc.toml`,
//! pointed at a real OpenID provider (`tests/oidc/provider.mjs`, panva's
//! oidc-provider, with a login client from `OIDC_LOGIN_CLIENT`). The browser
//! goes through our consent page, then follows the provider's redirects
//! through its auto-login and auto-consent interaction with its own cookie
//! jar, and comes back to our `/callback`.
//!
//! Needs Node.js, `npm ci` in `tests/oidc`, and the examples built.
//! `AUTH_UPSTREAM_DEBUG=1` shows the processes' logs.

use mcp_tests::upstream::{
    GitHubOAuth, Http, OAuthClient, OidcProvider, ServerSpec, TempDir, authorize_and_consent, callback,
    code_for_client, error_for_client, follow_until, free_port, github_oauth_config, jwt_payload, whoami,
};
use serde_json::json;

const CLIENT_ID: &str = "mcp-login";
const CLIENT_SECRET: &str = "mcp-login-secret-for-tests";

/// A provider with our login client for a server on a fresh port, and that server.
async fn start(subject: &str, dir: &TempDir, extra: &[(&str, &str)]) -> (OidcProvider, GitHubOAuth) {
    let port = free_port().await;
    let origin = format!("http://127.0.0.1:{port}");
    let login_client = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                              "redirect_uris": [format!("{origin}/callback")]});
    let provider = OidcProvider::start(
        &format!("{origin}/mcp"),
        &[("OIDC_LOGIN_CLIENT", &login_client.to_string()), ("OIDC_TEST_SUBJECT", subject)],
    )
    .await;
    let mut spec = ServerSpec {
        config: Some(github_oauth_config("oidc.toml")),
        env: Vec::new(),
        cwd: dir.0.clone(),
        port,
    }
    .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", "memory")
    .env("MCP_AUTH__AUTHORIZATION_SERVER__SEALING_KEY_FILE", dir.join("seal.key").display().to_string())
    .env("MCP_AUTH__OIDC__ISSUER", &provider.issuer)
    .env("MCP_AUTH__OIDC__CLIENT_ID", CLIENT_ID)
    .env("MCP_AUTH__OIDC__CLIENT_SECRET", CLIENT_SECRET);
    spec.env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let server = GitHubOAuth::start(&spec).await;
    (provider, server)
}

/// Consent, then the provider's login; returns our callback's answer and the client's verifier.
async fn login(
    http: &Http,
    server: &GitHubOAuth,
    client: &OAuthClient,
    issuer: &str,
) -> (mcp_tests::upstream::Seen, String) {
    let at = authorize_and_consent(http, server, client).await;
    assert!(at.upstream.as_str().starts_with(issuer), "the browser goes to the provider: {}", at.upstream);
    assert!(at.param("nonce").is_some_and(|n| !n.is_empty()), "a nonce is sent: {}", at.upstream);
    assert_eq!(at.param("code_challenge_method").as_deref(), Some("S256"));
    assert_ne!(at.param("code_challenge"), Some(at.challenge.clone()), "our own PKCE pair upstream");
    let back = follow_until(http, &at.upstream, &server.callback()).await;
    (callback(http, &back, Some(&at.jar)).await, at.verifier)
}

#[tokio::test]
async fn openid_login_puts_the_providers_subject_and_profile_in_our_tokens() {
    let dir = TempDir::new();
    let (provider, server) = start("alice", &dir, &[]).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    let (answer, verifier) = login(&http, &server, &client, &provider.issuer).await;
    let code = code_for_client(&answer, &client.issuer);
    let tokens = client.exchange(&http, &code, &verifier).await;
    assert_eq!(
        whoami(&http, &server, Some(&tokens.access)).await,
        json!({"authenticated": true, "subject": "alice", "login": "alice", "name": "Test User alice",
               "email": "alice@example.test"})
    );
    assert_eq!(jwt_payload(&tokens.access)["login_provider"], "oidc");
    let refreshed = client.refresh(&http, &tokens.refresh).await;
    assert_eq!(whoami(&http, &server, Some(&refreshed.access)).await["subject"], "alice");
}

#[tokio::test]
async fn allowed_users_refuse_an_unlisted_user_with_access_denied() {
    let dir = TempDir::new();
    let (provider, server) =
        start("mallory", &dir, &[("MCP_AUTH__OIDC__ALLOWED_USERS", r#"["alice"]"#)]).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    let (answer, _) = login(&http, &server, &client, &provider.issuer).await;
    error_for_client(&answer, &client.issuer, "access_denied");
}

#[tokio::test]
async fn allowed_users_admit_a_user_by_verified_email() {
    let dir = TempDir::new();
    let allowed = r#"["someone-else", "Bob@Example.Test"]"#;
    let (provider, server) = start("bob", &dir, &[("MCP_AUTH__OIDC__ALLOWED_USERS", allowed)]).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    let (answer, verifier) = login(&http, &server, &client, &provider.issuer).await;
    let code = code_for_client(&answer, &client.issuer);
    let tokens = client.exchange(&http, &code, &verifier).await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["email"], "bob@example.test");
}
