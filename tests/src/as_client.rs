//! An OAuth client and a browser played by hand, for end-to-end tests of
//! the `notes` example in authorization-server mode (started from
//! `examples/notes/authorization-server.toml`): discovery, dynamic
//! registration, authorize through the development login and the consent
//! page, token, refresh, revocation, and stateless tool calls on `/mcp`.
//! `AUTH_AS_DEBUG=1` shows the servers' logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub use crate::upstream::{Jar, csrf, form_action, pkce};
use crate::{example_path, modern_meta, wait_for_http};

/// The redirect URI every client here registers.
pub const REDIRECT: &str = "http://127.0.0.1/callback";

/// The servers' stdout and stderr: shown with `AUTH_AS_DEBUG=1`.
pub fn logs() -> Stdio {
    if std::env::var_os("AUTH_AS_DEBUG").is_some_and(|v| v == "1") { Stdio::inherit() } else { Stdio::null() }
}

/// `examples/notes/authorization-server.toml`.
pub fn config_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/notes/authorization-server.toml")
}

/// The `notes` example in authorization-server mode; killed when dropped.
#[derive(Debug)]
pub struct Notes {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`, or the public origin it was given.
    pub origin: String,
    /// The MCP endpoint: `origin/mcp`.
    pub url: String,
}

/// The `notes` example on `port` with a SQLite store at `store`.
pub async fn start_notes(port: u16, store: &Path) -> Notes {
    start_notes_with_stderr(port, store, logs()).await
}

/// [`start_notes`], its stderr going to `stderr`.
pub async fn start_notes_with_stderr(port: u16, store: &Path, stderr: Stdio) -> Notes {
    start_notes_on(port, &format!("sqlite://{}", store.display()), stderr).await
}

/// The `notes` example with the `store` setting `store`.
pub async fn start_notes_on(port: u16, store: &str, stderr: Stdio) -> Notes {
    start_notes_as(port, &format!("http://127.0.0.1:{port}"), store, stderr, &[]).await
}

/// The `notes` example on `port`, known to its clients as `public_origin`
/// (one instance of several behind a load balancer at that origin), with
/// the `store` setting `store` and the environment overrides `env`.
pub async fn start_notes_as(
    port: u16,
    public_origin: &str,
    store: &str,
    stderr: Stdio,
    env: &[(&str, &str)],
) -> Notes {
    let mut child = Command::new(example_path("notes"))
        .arg("--config")
        .arg(config_file())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("MCP_SERVER__PUBLIC_URL", public_origin)
        .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", store)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the notes example starts");
    wait_for_http(port, Some(&mut child), "notes (AUTH_AS_DEBUG=1 shows its log)", Duration::from_secs(15))
        .await;
    Notes { child, url: format!("{public_origin}/mcp"), origin: public_origin.to_owned() }
}

impl Notes {
    /// Kills it and waits for it to exit.
    pub async fn stop(mut self) {
        self.child.kill().await.expect("the server is killed");
    }
}

/// An HTTP client that does not follow redirects.
pub fn http() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

// --- a browser, by hand --------------------------------------------------------------------

/// The query parameters of a response's absolute `Location`.
pub fn location_params(headers: &HeaderMap) -> BTreeMap<String, String> {
    let location = headers.get(LOCATION).expect("a Location").to_str().expect("ASCII");
    Url::parse(location).expect("an absolute Location").query_pairs().into_owned().collect()
}

// --- an OAuth client, by hand --------------------------------------------------------------

/// What discovery found: the issuer and its metadata.
#[derive(Debug)]
pub struct Discovered {
    /// The issuer.
    pub issuer: String,
    /// Its RFC 8414 metadata.
    pub metadata: Value,
}

impl Discovered {
    /// The endpoint the metadata names `name`.
    pub fn endpoint(&self, name: &str) -> String {
        self.metadata[name].as_str().unwrap_or_else(|| panic!("{name} in {}", self.metadata)).to_owned()
    }
}

/// 401 -> `resource_metadata` -> the protected-resource metadata -> the AS metadata.
pub async fn discover(notes: &Notes) -> Discovered {
    let http = http();
    let denied = http.post(&notes.url).json(&json!({})).send().await.expect("answers");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let challenge = denied.headers()["www-authenticate"].to_str().expect("ASCII").to_owned();
    let prm_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("resource_metadata in {challenge}"));
    assert_eq!(prm_url, format!("{}/.well-known/oauth-protected-resource/mcp", notes.origin));
    let prm: Value = http.get(prm_url).send().await.expect("answers").json().await.expect("JSON");
    assert_eq!(prm["resource"], notes.url);
    let issuer = prm["authorization_servers"][0].as_str().expect("an issuer").to_owned();
    assert_eq!(issuer, notes.origin, "the issuer defaults to public_url without a trailing slash");
    let response =
        http.get(format!("{issuer}/.well-known/oauth-authorization-server")).send().await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = response.json().await.expect("JSON");
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(metadata["scopes_supported"], json!(["notes:read", "notes:write"]));
    Discovered { issuer, metadata }
}

/// Registers a public client (RFC 7591); returns its `client_id`.
pub async fn register(as_: &Discovered) -> String {
    let response = http()
        .post(as_.endpoint("registration_endpoint"))
        .json(&json!({
            "client_name": "auth_as e2e",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
        }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("JSON");
    assert!(body.get("client_secret").is_none(), "a public client gets no secret: {body}");
    body["client_id"].as_str().expect("a client_id").to_owned()
}

/// `/authorize` -> development login as `user` -> consent (approve), for the MCP endpoint; returns
/// the code and verifier.
pub async fn authorize(as_: &Discovered, notes: &Notes, client_id: &str, user: &str) -> (String, String) {
    authorize_for(as_, &notes.url, client_id, user).await
}

/// [`authorize`] with the RFC 8707 `resource` indicator `resource`.
pub async fn authorize_for(
    as_: &Discovered,
    resource: &str,
    client_id: &str,
    user: &str,
) -> (String, String) {
    let http = http();
    let (verifier, challenge) = pkce();
    let mut url = Url::parse(&as_.endpoint("authorization_endpoint")).expect("a URL");
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "e2e-state"),
        ("resource", resource),
        ("scope", "notes:read notes:write"),
    ]);
    let mut jar = Jar::default();
    let page = http.get(url.as_str()).send().await.expect("answers");
    assert_eq!(page.status(), StatusCode::OK);
    jar.update(page.headers());
    let html = page.text().await.expect("a page");
    assert!(html.contains("name=\"username\""), "the development login form: {html}");
    let login = http
        .post(form_action(&html, url.as_str()))
        .header("cookie", jar.header())
        .form(&[("csrf", csrf(&html).as_str()), ("username", user)])
        .send()
        .await
        .expect("answers");
    // Post/Redirect/Get: the login answers 303 to the consent page.
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    jar.update(login.headers());
    let consent_url = login.headers()[LOCATION].to_str().expect("ASCII").to_owned();
    assert!(consent_url.starts_with(&format!("{}/authorize/consent?", as_.issuer)), "{consent_url}");
    let consent = http.get(&consent_url).header("cookie", jar.header()).send().await.expect("answers");
    assert_eq!(consent.status(), StatusCode::OK);
    let html = consent.text().await.expect("a page");
    assert!(html.contains("auth_as e2e"), "the consent page names the client: {html}");
    let done = http
        .post(form_action(&html, url.as_str()))
        .header("cookie", jar.header())
        .form(&[("csrf", csrf(&html).as_str()), ("decision", "approve")])
        .send()
        .await
        .expect("answers");
    assert!(done.status().is_redirection(), "{}", done.status());
    let back = location_params(done.headers());
    assert_eq!(back.get("state").map(String::as_str), Some("e2e-state"));
    assert_eq!(back.get("iss"), Some(&as_.issuer));
    assert!(!back.contains_key("error"), "{back:?}");
    (back["code"].clone(), verifier)
}

/// An access token and a refresh token.
#[derive(Debug)]
pub struct Tokens {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// A token request with `form`; the status and the JSON body (checked `no-store`).
pub async fn token(as_: &Discovered, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http().post(as_.endpoint("token_endpoint")).form(form).send().await.expect("answers");
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.expect("JSON"))
}

/// The tokens of a successful token response.
pub fn tokens(body: &Value) -> Tokens {
    assert_eq!(body["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("bearer"), "{body}");
    Tokens {
        access: body["access_token"].as_str().expect("an access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
    }
}

/// Exchanges a code for tokens for the MCP endpoint.
pub async fn exchange(
    as_: &Discovered,
    notes: &Notes,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> Tokens {
    exchange_for(as_, &notes.url, client_id, code, verifier).await
}

/// [`exchange`] with the RFC 8707 `resource` indicator `resource`.
pub async fn exchange_for(
    as_: &Discovered,
    resource: &str,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> Tokens {
    let (status, body) = token(
        as_,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("resource", resource),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokens(&body)
}

/// A refresh-token request.
pub async fn refresh(as_: &Discovered, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(as_, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)])
        .await
}

/// [`refresh`] with the RFC 8707 `resource` indicator `resource`.
pub async fn refresh_for(
    as_: &Discovered,
    client_id: &str,
    refresh_token: &str,
    resource: &str,
) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
        ("resource", resource),
    ];
    token(as_, &form).await
}

/// Revokes `token` (RFC 7009) and checks the 200.
pub async fn revoke(as_: &Discovered, client_id: &str, token: &str) {
    let response = http()
        .post(as_.endpoint("revocation_endpoint"))
        .form(&[("token", token), ("client_id", client_id)])
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}

// --- talking MCP ---------------------------------------------------------------------------

/// A stateless 2026-07-28 `tools/call`; returns the status, the challenge and the JSON-RPC message.
pub async fn call(
    notes: &Notes,
    access_token: &str,
    tool: &str,
    arguments: Value,
) -> (StatusCode, String, Value) {
    call_at(&notes.url, access_token, tool, arguments).await
}

/// [`call`] to the MCP endpoint at `url` (one instance of several, say).
pub async fn call_at(
    url: &str,
    access_token: &str,
    tool: &str,
    arguments: Value,
) -> (StatusCode, String, Value) {
    let params = json!({"name": tool, "arguments": arguments, "_meta": modern_meta(json!({}))});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let response = http()
        .post(url)
        .bearer_auth(access_token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body)
        .send()
        .await
        .expect("answers");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("a body");
    let message = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(text.as_str()))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or(Value::Null);
    (status, challenge, message)
}

/// The `whoami` tool's structured answer, which must succeed.
pub async fn whoami(notes: &Notes, access_token: &str) -> Value {
    let (status, _, message) = call(notes, access_token, "whoami", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    message["result"]["structuredContent"].clone()
}

/// Asserts that `/mcp` refuses `access_token` with `invalid_token`.
pub async fn assert_refused(notes: &Notes, access_token: &str, what: &str) {
    let (status, challenge, _) = call(notes, access_token, "whoami", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
}
