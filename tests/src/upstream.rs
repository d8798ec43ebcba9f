//! Helpers for the end-to-end tests of the `github-oauth` example and its
//! upstream logins: the processes (the example, the GitHub stand-in in
//! `tests/github-standin`, the OpenID provider in `tests/oidc`), an HTTP
//! client that records everything it was answered, a hand-played browser
//! (cookie jar, consent form) and an OAuth client (registration, PKCE,
//! token, refresh, revocation) and an MCP caller.
//!
//! Every process is killed when its handle is dropped. `AUTH_UPSTREAM_DEBUG=1`
//! shows the processes' logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::{example_path, modern_meta};

/// The redirect URI of the test's MCP client (never fetched).
pub const CLIENT_REDIRECT: &str = "http://127.0.0.1:9999/cb";
/// The `state` the MCP client sends.
pub const CLIENT_STATE: &str = "client-state-e2e";
/// The stand-in's default OAuth app.
pub const STANDIN_CLIENT_ID: &str = "Iv1.standin";
/// Its secret.
pub const STANDIN_CLIENT_SECRET: &str = "standin-secret";
/// octocat's numeric id in the stand-in's default users.
pub const OCTOCAT_ID: u64 = 583231;
/// hubot's numeric id in the stand-in's default users.
pub const HUBOT_ID: u64 = 480938;

fn debug() -> bool {
    std::env::var_os("AUTH_UPSTREAM_DEBUG").is_some_and(|v| v == "1")
}

fn logs() -> Stdio {
    if debug() { Stdio::inherit() } else { Stdio::null() }
}

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/github-oauth/<name>`.
pub fn github_oauth_config(name: &str) -> PathBuf {
    tests_dir().join("../examples/github-oauth").join(name)
}

/// A fresh directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mcp-upstream-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub use crate::free_port;

/// Reads a child's first stdout line as JSON (its ready line).
async fn ready_line(child: &mut Child, what: &str) -> Value {
    let stdout = child.stdout.take().expect("stdout is piped");
    let line = tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).lines().next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} printed its ready line within 20 s"))
        .expect("stdout is readable")
        .unwrap_or_else(|| panic!("{what} printed no ready line (AUTH_UPSTREAM_DEBUG=1 shows why)"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}'s ready line {line:?}: {e}"))
}

// --- the GitHub stand-in -------------------------------------------------------------------

/// `tests/github-standin/server.mjs`; killed when dropped.
#[derive(Debug)]
pub struct StandIn {
    _child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl StandIn {
    /// Starts it with the default apps and users.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts it with this configuration (see its README), or the defaults.
    pub async fn start_with(config: Option<Value>) -> Self {
        let mut command = Command::new("node");
        command.arg(tests_dir().join("github-standin/server.mjs")).args(["--port", "0"]);
        if let Some(config) = config {
            command.env("GITHUB_STANDIN_CONFIG_JSON", config.to_string());
        }
        let mut child = command
            .env_remove("GITHUB_STANDIN_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(logs())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts (is Node.js installed?)");
        let info = ready_line(&mut child, "the GitHub stand-in").await;
        let url = info["url"].as_str().expect("a url in the ready line").to_owned();
        Self { _child: child, url }
    }

    async fn introspect(&self, what: &str) -> Value {
        let response =
            reqwest::get(format!("{}/_standin/{what}", self.url)).await.expect("the stand-in answers");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("JSON")
    }

    /// Every GitHub access token it issued.
    pub async fn tokens(&self) -> Vec<String> {
        let tokens = self.introspect("tokens").await;
        let list = tokens.as_array().expect("a list");
        list.iter().map(|t| t["access_token"].as_str().expect("an access_token").to_owned()).collect()
    }

    /// Renames a GitHub user, as GitHub does: the login changes, the id stays.
    pub async fn rename(&self, from: &str, to: &str) {
        let url = format!("{}/_standin/rename", self.url);
        let response =
            reqwest::Client::new().post(url).json(&serde_json::json!({"from": from, "to": to})).send().await;
        assert_eq!(response.expect("the stand-in answers").status(), StatusCode::OK, "rename {from} -> {to}");
    }

    /// The issued tokens as it lists them (`access_token`, `login`, `revoked`, ...).
    pub async fn token_records(&self) -> Vec<Value> {
        self.introspect("tokens").await.as_array().expect("a list").clone()
    }

    /// The token requests it received.
    pub async fn requests(&self) -> Vec<Value> {
        self.introspect("requests").await.as_array().expect("a list").clone()
    }

    /// The authorize requests it received (parameters as sent).
    pub async fn authorizations(&self) -> Vec<Value> {
        self.introspect("authorizations").await.as_array().expect("a list").clone()
    }

    /// The environment pointing `[auth.github]` at it.
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![
            ("MCP_AUTH__GITHUB__AUTHORIZE_URL".into(), format!("{}/login/oauth/authorize", self.url)),
            ("MCP_AUTH__GITHUB__TOKEN_URL".into(), format!("{}/login/oauth/access_token", self.url)),
            ("MCP_AUTH__GITHUB__API_URL".into(), self.url.clone()),
            ("GITHUB_CLIENT_ID".into(), STANDIN_CLIENT_ID.into()),
            ("GITHUB_CLIENT_SECRET".into(), STANDIN_CLIENT_SECRET.into()),
        ]
    }
}

// --- the OpenID provider -------------------------------------------------------------------

/// `tests/oidc/provider.mjs` (panva's oidc-provider); exits when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    _child: Child,
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
}

impl OidcProvider {
    /// Starts it for the MCP resource `resource`, with extra environment.
    pub async fn start(resource: &str, env: &[(&str, &str)]) -> Self {
        let dir = tests_dir().join("oidc");
        assert!(
            dir.join("node_modules").join("oidc-provider").exists(),
            "tests/oidc/node_modules is missing: run `npm ci` in tests/oidc first"
        );
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("MCP_RESOURCE", resource)
            .env("OIDC_EXIT_ON_STDIN_EOF", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logs())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts (is Node.js installed?)");
        let info = ready_line(&mut child, "the OpenID provider").await;
        let issuer = info["issuer"].as_str().expect("an issuer in the ready line").to_owned();
        Self { _child: child, issuer }
    }

    /// A client_credentials JWT from `client` (secret `<client>-secret`) for `resource`.
    pub async fn client_credentials(&self, client: &str, resource: &str) -> String {
        self.client_credentials_with_scope(client, resource, None).await
    }

    /// [`client_credentials`](Self::client_credentials) asking for `scope`.
    pub async fn client_credentials_with_scope(
        &self,
        client: &str,
        resource: &str,
        scope: Option<&str>,
    ) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        form.extend(scope.map(|s| ("scope", s)));
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&form)
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("an access_token").to_owned()
    }
}

// --- the github-oauth example --------------------------------------------------------------

/// How to start `github-oauth`.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// `--config` (`None`: the built-in defaults).
    pub config: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The working directory (relative store and key paths land here).
    pub cwd: PathBuf,
    /// The port (`public_url` is `http://127.0.0.1:PORT`).
    pub port: u16,
}

impl ServerSpec {
    /// Adds one environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds several.
    #[must_use]
    pub fn envs(mut self, vars: Vec<(String, String)>) -> Self {
        self.env.extend(vars);
        self
    }
}

/// A running `github-oauth`; killed when dropped.
#[derive(Debug)]
pub struct GitHubOAuth {
    child: Child,
    /// `http://127.0.0.1:PORT`, also the issuer in authorization-server mode.
    pub origin: String,
    /// `origin/mcp`.
    pub url: String,
}

impl GitHubOAuth {
    /// Starts the example and waits until it listens.
    pub async fn start(spec: &ServerSpec) -> Self {
        Self::start_program(&example_path("github-oauth"), "/mcp", spec).await
    }

    /// Starts another server with GitHub login the same way (such as
    /// `mcp-gateway`), whose MCP endpoint is at `path`.
    pub async fn start_program(program: &Path, path: &str, spec: &ServerSpec) -> Self {
        let origin = format!("http://127.0.0.1:{}", spec.port);
        let mut command = Command::new(program);
        if let Some(config) = &spec.config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .args(["--bind", &format!("127.0.0.1:{}", spec.port)])
            .current_dir(&spec.cwd)
            .env_remove("GITHUB_CLIENT_ID")
            .env_remove("GITHUB_CLIENT_SECRET")
            .env("MCP_SERVER__PUBLIC_URL", &origin)
            .env("RUST_LOG", "info")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
        let what = format!("{} (AUTH_UPSTREAM_DEBUG=1 shows its log)", program.display());
        crate::wait_for_http(spec.port, Some(&mut child), &what, Duration::from_secs(15)).await;
        Self { child, url: format!("{origin}{path}"), origin }
    }

    /// Kills it and waits for it to exit.
    pub async fn stop(mut self) {
        self.child.kill().await.expect("the server is killed");
    }

    /// The upstream callback URL (`ISSUER/callback`).
    pub fn callback(&self) -> String {
        format!("{}/callback", self.origin)
    }
}

/// `github-oauth` with `github.toml`, a memory store, a sealing key file in `dir`, pointed at
/// `standin`, plus `extra` environment.
pub async fn start_github_server(standin: &StandIn, dir: &TempDir, extra: &[(&str, &str)]) -> GitHubOAuth {
    let mut spec =
        github_spec(standin, dir, free_port().await).env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", "memory");
    spec.env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    GitHubOAuth::start(&spec).await
}

/// `github.toml` pointed at `standin`, running in `dir` (sealing key file there) on `port`.
pub fn github_spec(standin: &StandIn, dir: &TempDir, port: u16) -> ServerSpec {
    ServerSpec {
        config: Some(github_oauth_config("github.toml")),
        env: standin.server_env(),
        cwd: dir.0.clone(),
        port,
    }
    .env("MCP_AUTH__AUTHORIZATION_SERVER__SEALING_KEY_FILE", dir.join("seal.key").display().to_string())
}

// --- HTTP that remembers what it saw -------------------------------------------------------

/// One answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Seen {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .unwrap_or_else(|| panic!("a Location in {} {}", self.status, self.body))
            .to_str()
            .expect("an ASCII Location")
    }

    /// The query parameters of the `Location`.
    pub fn location_params(&self) -> BTreeMap<String, String> {
        let url = Url::parse(self.location()).expect("an absolute Location");
        url.query_pairs().into_owned().collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON in {}: {e}", self.body))
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII").to_owned()).unwrap_or_default()
    }
}

/// An HTTP client that follows no redirects and records every answer (all header values and
/// bodies), so a test can search everything the client side was ever told.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    transcript: Arc<Mutex<Vec<String>>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A fresh client with an empty transcript.
    pub fn new() -> Self {
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        Self { client, transcript: Arc::default() }
    }

    /// A GET request, to pass to [`Http::send`].
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.client.get(url)
    }

    /// A POST request, to pass to [`Http::send`].
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.client.post(url)
    }

    /// Sends, records and returns the answer.
    pub async fn send(&self, request: RequestBuilder) -> Seen {
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a body");
        let mut transcript = self.transcript.lock().expect("not poisoned");
        for (name, value) in &headers {
            transcript.push(format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())));
        }
        transcript.push(body.clone());
        drop(transcript);
        Seen { status, headers, body }
    }

    /// Everything recorded so far.
    pub fn transcript(&self) -> Vec<String> {
        self.transcript.lock().expect("not poisoned").clone()
    }
}

/// The cookies of one origin (latest `Set-Cookie` wins; expired ones are dropped).
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Takes the `Set-Cookie` headers of an answer.
    pub fn update(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().expect("an ASCII cookie");
            let mut parts = set.split(';');
            let (name, value) = parts.next().and_then(|p| p.split_once('=')).expect("name=value");
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// The `Cookie` header.
    pub fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The value of a form's hidden `csrf` field.
pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("a csrf field in {html}")) + marker.len();
    html[start..].split('"').next().expect("a closing quote").to_owned()
}

/// The `action` of the page's (first) form, made absolute against `base`.
pub fn form_action(html: &str, base: &str) -> String {
    let marker = "action=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("a form in {html}")) + marker.len();
    let action = html[start..].split('"').next().expect("a closing quote").replace("&amp;", "&");
    Url::parse(base).expect("a URL").join(&action).expect("a valid action").to_string()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let verifier = format!("e2e-verifier-{nanos}-{n}-{}-padding-to-be-long-enough", std::process::id());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The payload of a JWT, decoded (not verified).
pub fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("a JSON payload")
}

// --- the OAuth client and the browser ------------------------------------------------------

/// The access and refresh token of one token answer.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token (our JWT).
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// An MCP client registered at the server, with the endpoints from its AS metadata.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// Its client_id.
    pub client_id: String,
    /// The issuer.
    pub issuer: String,
    /// The AS metadata.
    pub metadata: Value,
    /// The MCP endpoint (also the resource).
    pub resource: String,
}

impl OAuthClient {
    /// Reads the AS metadata and registers a public client with [`CLIENT_REDIRECT`].
    pub async fn register(http: &Http, server: &GitHubOAuth) -> Self {
        let seen =
            http.send(http.get(&format!("{}/.well-known/oauth-authorization-server", server.origin))).await;
        assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
        let metadata = seen.json();
        assert_eq!(metadata["issuer"], server.origin);
        let endpoint = metadata["registration_endpoint"].as_str().expect("a registration_endpoint");
        let seen = http
            .send(http.post(endpoint).json(&json!({
                "client_name": "upstream e2e",
                "redirect_uris": [CLIENT_REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            })))
            .await;
        assert_eq!(seen.status, StatusCode::CREATED, "{}", seen.body);
        let client_id = seen.json()["client_id"].as_str().expect("a client_id").to_owned();
        Self { client_id, issuer: server.origin.clone(), metadata, resource: server.url.clone() }
    }

    /// An endpoint from the metadata.
    pub fn endpoint(&self, name: &str) -> String {
        self.metadata[name].as_str().unwrap_or_else(|| panic!("{name} in {}", self.metadata)).to_owned()
    }

    /// A POST to the token endpoint.
    pub async fn token(&self, http: &Http, form: &[(&str, &str)]) -> Seen {
        http.send(http.post(&self.endpoint("token_endpoint")).form(form)).await
    }

    /// Exchanges our code; asserts success.
    pub async fn exchange(&self, http: &Http, code: &str, verifier: &str) -> Tokens {
        let seen = self
            .token(
                http,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("code_verifier", verifier),
                    ("client_id", &self.client_id),
                    ("redirect_uri", CLIENT_REDIRECT),
                    ("resource", &self.resource),
                ],
            )
            .await;
        assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
        tokens(&seen.json())
    }

    /// Refreshes; asserts success.
    pub async fn refresh(&self, http: &Http, refresh_token: &str) -> Tokens {
        let seen = self
            .token(
                http,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", &self.client_id),
                ],
            )
            .await;
        assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
        tokens(&seen.json())
    }

    /// Revokes a token (RFC 7009); asserts 200.
    pub async fn revoke(&self, http: &Http, token: &str) {
        let seen = http
            .send(
                http.post(&self.endpoint("revocation_endpoint"))
                    .form(&[("token", token), ("client_id", &self.client_id)]),
            )
            .await;
        assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    }
}

fn tokens(body: &Value) -> Tokens {
    Tokens {
        access: body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("an access_token in {body}"))
            .to_owned(),
        refresh: body["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("a refresh_token in {body}"))
            .to_owned(),
    }
}

/// One authorization in one browser, after our consent page was approved: the browser is on
/// its way to the provider.
#[derive(Debug, Clone)]
pub struct AtProvider {
    /// The browser's cookies for our server (the transaction cookie).
    pub jar: Jar,
    /// Where our server sent the browser (the provider's authorize URL).
    pub upstream: Url,
    /// The client's PKCE verifier.
    pub verifier: String,
    /// The client's PKCE challenge.
    pub challenge: String,
}

impl AtProvider {
    /// The `state` our server sent to the provider.
    pub fn upstream_state(&self) -> String {
        self.param("state").expect("a state for the provider")
    }

    /// A parameter of the provider's authorize URL.
    pub fn param(&self, name: &str) -> Option<String> {
        self.upstream.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// `/authorize` → our consent page → approve: returns where the browser is sent.
pub async fn authorize_and_consent(http: &Http, server: &GitHubOAuth, client: &OAuthClient) -> AtProvider {
    let (verifier, challenge) = pkce();
    let mut url = Url::parse(&client.endpoint("authorization_endpoint")).expect("a URL");
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", CLIENT_REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", CLIENT_STATE),
        ("resource", &client.resource),
    ]);
    let mut jar = Jar::default();
    let page = http.send(http.get(url.as_str())).await;
    assert_eq!(page.status, StatusCode::OK, "the consent page: {}", page.body);
    jar.update(&page.headers);
    assert!(!jar.is_empty(), "the consent page sets the transaction cookie");
    assert!(page.body.contains("name=\"decision\""), "our consent page: {}", page.body);
    let done = http
        .send(
            http.post(&form_action(&page.body, url.as_str()))
                .header("cookie", jar.header())
                .header("origin", &server.origin)
                .form(&[("csrf", csrf(&page.body).as_str()), ("decision", "approve")]),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "consent: {}", done.body);
    jar.update(&done.headers);
    let upstream = Url::parse(done.location()).expect("an absolute provider URL");
    AtProvider { jar, upstream, verifier, challenge }
}

/// At the stand-in: the test shortcut logs `user` in (or denies, with `user` = `None`) and
/// returns the stand-in's redirect, our callback URL.
pub async fn standin_login(http: &Http, at: &AtProvider, user: Option<&str>) -> String {
    let mut url = at.upstream.clone();
    match user {
        Some(login) => url.query_pairs_mut().append_pair("standin_user", login),
        None => url.query_pairs_mut().append_pair("standin_deny", "1"),
    };
    let seen = http.send(http.get(url.as_str())).await;
    assert!(seen.status.is_redirection(), "the stand-in redirects: {} {}", seen.status, seen.body);
    seen.location().to_owned()
}

/// Fetches our callback with these cookies; returns the answer.
pub async fn callback(http: &Http, url: &str, cookies: Option<&Jar>) -> Seen {
    let mut request = http.get(url);
    if let Some(jar) = cookies {
        request = request.header("cookie", jar.header());
    }
    http.send(request).await
}

/// Asserts an answer is a redirect to the client with `code`, our `iss` and the client's
/// `state`, and returns the code.
pub fn code_for_client(seen: &Seen, issuer: &str) -> String {
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "back to the client: {}", seen.body);
    assert!(seen.location().starts_with(CLIENT_REDIRECT), "{}", seen.location());
    let params = seen.location_params();
    assert!(!params.contains_key("error"), "{params:?}");
    assert_eq!(params.get("state").map(String::as_str), Some(CLIENT_STATE));
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer));
    params.get("code").expect("a code").clone()
}

/// Asserts an answer is an error redirect to the client with `error`, its `state` and our `iss`.
pub fn error_for_client(seen: &Seen, issuer: &str, error: &str) {
    assert!(seen.status.is_redirection(), "back to the client: {} {}", seen.status, seen.body);
    assert!(seen.location().starts_with(CLIENT_REDIRECT), "{}", seen.location());
    let params = seen.location_params();
    assert_eq!(params.get("error").map(String::as_str), Some(error), "{params:?}");
    assert_eq!(params.get("state").map(String::as_str), Some(CLIENT_STATE), "{params:?}");
    assert_eq!(params.get("iss").map(String::as_str), Some(issuer), "{params:?}");
    assert!(!params.contains_key("code"), "{params:?}");
}

/// The whole GitHub login of `user` through the stand-in, and the token exchange.
pub async fn github_login(http: &Http, server: &GitHubOAuth, client: &OAuthClient, user: &str) -> Tokens {
    let at = authorize_and_consent(http, server, client).await;
    let back = standin_login(http, &at, Some(user)).await;
    assert!(back.starts_with(&server.callback()), "the stand-in sends the browser to our callback: {back}");
    let seen = callback(http, &back, Some(&at.jar)).await;
    let code = code_for_client(&seen, &client.issuer);
    client.exchange(http, &code, &at.verifier).await
}

/// Follows the provider's redirects with its own cookie jar until one points at `stop`
/// (returned, not fetched).
pub async fn follow_until(http: &Http, start: &Url, stop: &str) -> String {
    let mut jar = Jar::default();
    let mut url = start.to_string();
    for _ in 0..12 {
        if url.starts_with(stop) {
            return url;
        }
        let mut request = http.get(&url);
        if !jar.is_empty() {
            request = request.header("cookie", jar.header());
        }
        let seen = http.send(request).await;
        jar.update(&seen.headers);
        assert!(seen.status.is_redirection(), "the provider stopped at {url}: {} {}", seen.status, seen.body);
        url = Url::parse(&url).expect("a URL").join(seen.location()).expect("a Location").to_string();
    }
    panic!("too many redirects from {start}");
}

// --- MCP -----------------------------------------------------------------------------------

/// A stateless 2026-07-28 `tools/call` (with a bearer token if given): status, the
/// `WWW-Authenticate` challenge, the JSON-RPC message.
pub async fn call_tool(
    http: &Http,
    url: &str,
    access_token: Option<&str>,
    tool: &str,
) -> (StatusCode, String, Value) {
    let params = json!({"name": tool, "arguments": {}, "_meta": modern_meta(json!({}))});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body);
    if let Some(token) = access_token {
        request = request.bearer_auth(token);
    }
    let seen = http.send(request).await;
    let challenge = seen.header("www-authenticate");
    let message = seen
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .chain(std::iter::once(seen.body.as_str()))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or(Value::Null);
    (seen.status, challenge, message)
}

/// A successful tool call's result (asserts status 200 and no JSON-RPC error).
pub async fn tool_result(http: &Http, url: &str, access_token: Option<&str>, tool: &str) -> Value {
    let (status, challenge, message) = call_tool(http, url, access_token, tool).await;
    assert_eq!(status, StatusCode::OK, "{tool}: {challenge} {message}");
    assert!(message.get("error").is_none(), "{tool}: {message}");
    message["result"].clone()
}

/// `whoami`'s structured content.
pub async fn whoami(http: &Http, server: &GitHubOAuth, access_token: Option<&str>) -> Value {
    tool_result(http, &server.url, access_token, "whoami").await["structuredContent"].clone()
}

/// Runs the example with `--check-config` (and `--config` if given) in `cwd`: exit code,
/// stdout, stderr.
pub async fn check_config(config: Option<&Path>, cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(example_path("github-oauth"));
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = command
        .arg("--check-config")
        .current_dir(cwd)
        .env_remove("GITHUB_CLIENT_ID")
        .env_remove("GITHUB_CLIENT_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("--check-config exits within 20 s")
        .expect("the example runs");
    (
        output.status.code().expect("an exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
