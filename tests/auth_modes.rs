//! One binary, three auth modes: the `github-oauth` example started from
//! each of its shipped config files (`none.toml`, `resource-server.toml`
//! against the real OpenID provider in `tests/oidc`, `github.toml` against
//! the GitHub stand-in), and its `--check-config` on valid and invalid
//! configurations.
//!
//! Needs Node.js, `npm ci` in `tests/oidc`, and the examples built.
//! `AUTH_UPSTREAM_DEBUG=1` shows the processes' logs.

use std::path::Path;

use mcp_tests::upstream::{
    GitHubOAuth, Http, OAuthClient, OidcProvider, ServerSpec, StandIn, TempDir, call_tool, check_config,
    free_port, github_login, github_oauth_config, github_spec, whoami,
};
use reqwest::StatusCode;
use serde_json::json;

fn spec(config: &str, dir: &TempDir, port: u16) -> ServerSpec {
    ServerSpec { config: Some(github_oauth_config(config)), env: Vec::new(), cwd: dir.0.clone(), port }
}

#[tokio::test]
async fn none_toml_serves_every_tool_without_a_token() {
    let dir = TempDir::new();
    let server = GitHubOAuth::start(&spec("none.toml", &dir, free_port().await)).await;
    let http = Http::new();
    assert_eq!(
        whoami(&http, &server, None).await,
        json!({"authenticated": false, "subject": null, "login": null, "name": null, "email": null})
    );
    let metadata =
        http.send(http.get(&format!("{}/.well-known/oauth-authorization-server", server.origin))).await;
    assert_eq!(metadata.status, StatusCode::NOT_FOUND, "no authorization server with auth off");
}

#[tokio::test]
async fn resource_server_toml_accepts_the_providers_tokens_only() {
    let dir = TempDir::new();
    let port = free_port().await;
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let provider = OidcProvider::start(&resource, &[]).await;
    let server = GitHubOAuth::start(
        &spec("resource-server.toml", &dir, port).env("MCP_AUTH__RESOURCE_SERVER__ISSUER", &provider.issuer),
    )
    .await;
    let http = Http::new();
    let (status, challenge, _) = call_tool(&http, &server.url, None, "whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            server.origin
        )),
        "{challenge}"
    );
    let token = provider.client_credentials("rs-test", &resource).await;
    let who = whoami(&http, &server, Some(&token)).await;
    assert_eq!(who["authenticated"], true, "{who}");
    assert_eq!(who["subject"], "rs-test", "{who}");
    // Not an authorization server itself.
    let metadata =
        http.send(http.get(&format!("{}/.well-known/oauth-authorization-server", server.origin))).await;
    assert_eq!(metadata.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn github_toml_is_an_authorization_server_with_the_github_login() {
    let standin = StandIn::start().await;
    let dir = TempDir::new();
    let spec = github_spec(&standin, &dir, free_port().await)
        .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", format!("sqlite://{}", dir.join("auth.db").display()));
    let server = GitHubOAuth::start(&spec).await;
    let http = Http::new();
    let (status, challenge, _) = call_tool(&http, &server.url, None, "whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let client = OAuthClient::register(&http, &server).await;
    assert_eq!(client.metadata["code_challenge_methods_supported"], json!(["S256"]));
    let tokens = github_login(&http, &server, &client, "octocat").await;
    assert_eq!(whoami(&http, &server, Some(&tokens.access)).await["login"], "octocat");
}

// --- --check-config ------------------------------------------------------------------------

const SECRET: &str = "check-config-secret-value-4711";

#[tokio::test]
async fn check_config_accepts_each_shipped_file_and_masks_secrets() {
    let cwd = TempDir::new();
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("none.toml", &[]),
        ("resource-server.toml", &[]),
        ("github.toml", &[("GITHUB_CLIENT_ID", "Iv1.check"), ("GITHUB_CLIENT_SECRET", SECRET)]),
        ("oidc.toml", &[("MCP_AUTH__OIDC__CLIENT_SECRET", SECRET)]),
        ("defaults.toml", &[("GITHUB_CLIENT_ID", "Iv1.check"), ("GITHUB_CLIENT_SECRET", SECRET)]),
    ];
    for (file, env) in cases {
        let (code, stdout, stderr) = check_config(Some(&github_oauth_config(file)), &cwd.0, env).await;
        assert_eq!(code, 0, "{file}: {stderr}");
        assert!(stderr.contains("configuration is valid"), "{file}: {stderr}");
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "{file} printed the secret: {stdout}");
        let printed: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{file}: JSON on stdout: {e}: {stdout}"));
        if !env.is_empty() {
            let section = if file == "oidc.toml" { "oidc" } else { "github" };
            let secret = &printed["auth"][section]["client_secret"];
            assert!(secret.is_string() && secret != "", "{file}: the secret is shown masked: {printed}");
        }
    }
    assert_eq!(std::fs::read_dir(&cwd.0).expect("a dir").count(), 0, "--check-config created files");
}

fn write(dir: &TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("the config is written");
    path
}

async fn refused(text: &str, key: &str) {
    let files = TempDir::new();
    let cwd = TempDir::new();
    let (code, stdout, stderr) = check_config(Some(&write(&files, text)), &cwd.0, &[]).await;
    assert_eq!(code, 1, "{key}: {stdout} {stderr}");
    assert!(stderr.contains(key), "the error names {key}: {stderr}");
    assert_eq!(std::fs::read_dir(&cwd.0).expect("a dir").count(), 0, "{key}: files created");
}

const AS_LOOPBACK: &str = r#"
[server]
public_url = "http://127.0.0.1:8080"
[auth]
mode = "authorization_server"
"#;

#[tokio::test]
async fn check_config_refuses_invalid_auth_settings_naming_the_key() {
    refused("[auth]\nmode = \"bogus\"\n", "auth.mode").await;
    refused(
        &format!("{AS_LOOPBACK}[auth.authorization_server]\nlogin = \"github\"\nstore = \"memory\"\n"),
        "auth.github.client_id",
    )
    .await;
    refused(
        r#"
[server]
public_url = "https://mcp.example.com"
[auth]
mode = "authorization_server"
[auth.authorization_server]
login = "github"
store = "sqlite://auth.db"
[auth.github]
client_id = "Iv1.x"
client_secret = "y"
"#,
        "auth.authorization_server.sealing_key",
    )
    .await;
    refused(
        &format!(
            "{AS_LOOPBACK}[auth.authorization_server]\nlogin = \"github\"\nstore = \"memory\"\n\
             [auth.github]\nclient_id = \"Iv1.x\"\nclient_secret = \"y\"\nfavourite_colour = \"blue\"\n"
        ),
        "favourite_colour",
    )
    .await;
    refused(
        r#"
[server]
public_url = "https://mcp.example.com"
[auth]
mode = "authorization_server"
[auth.authorization_server]
login = "dev"
store = "sqlite://auth.db"
"#,
        "auth.authorization_server.login",
    )
    .await;
}

#[tokio::test]
async fn check_config_creates_no_store_and_no_key_file() {
    let files = TempDir::new();
    let cwd = TempDir::new();
    let config = write(
        &files,
        &format!(
            "{AS_LOOPBACK}[auth.authorization_server]\nlogin = \"github\"\nstore = \"sqlite://auth.db\"\n\
             sealing_key_file = \"seal.key\"\n[auth.github]\nclient_id = \"Iv1.x\"\nclient_secret = \"{SECRET}\"\n"
        ),
    );
    let (code, stdout, stderr) = check_config(Some(&config), &cwd.0, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    let left: Vec<_> =
        std::fs::read_dir(&cwd.0).expect("a dir").map(|e| e.expect("an entry").file_name()).collect();
    assert!(left.is_empty(), "--check-config created {left:?}");
    assert!(!Path::new(&cwd.join("auth.db")).exists());
}
