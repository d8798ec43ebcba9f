//! End-to-end tests of authorization-server mode (`[auth] mode =
//! "authorization_server"`): the `notes` example started from
//! `examples/notes/authorization-server.toml` (store: a SQLite file in a
//! fresh temporary directory; the development login), driven over raw HTTP
//! like a client plus a browser played by hand (cookie jar, forms):
//! discovery (401 -> protected-resource metadata -> AS metadata), dynamic
//! registration, authorize through login and consent, token, tool calls on
//! `/mcp`, refresh with rotation, revocation, and restart survival; and the
//! same example on a PostgreSQL store (a throwaway server, see
//! `mcp_tests::postgres`) surviving its own restart and its database's.
//!
//! How revocation is honoured: the MCP endpoint checks every token through
//! the resource-server code (signature, `iss`, `aud`, `exp` against the
//! JWKS fetched from the issuer URL) and then looks its `jti` up in the
//! authorization store, refusing revoked tokens and tokens of revoked grants
//! at once (not at expiry).
//!
//! Needs the examples built (`cargo build --examples`). `AUTH_AS_DEBUG=1`
//! shows the server's log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_tests::postgres::TestPostgres;
use mcp_tests::{example_path, free_port, modern_meta, wait_for_http};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::process::{Child, Command};

const REDIRECT: &str = "http://127.0.0.1/callback";

fn logs() -> Stdio {
    if std::env::var_os("AUTH_AS_DEBUG").is_some_and(|v| v == "1") { Stdio::inherit() } else { Stdio::null() }
}

fn config_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/notes/authorization-server.toml")
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
        let path = std::env::temp_dir().join(format!("mcp-auth-as-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `notes` example in authorization-server mode; killed when dropped.
struct Notes {
    child: Child,
    origin: String,
    url: String,
}

async fn start_notes(port: u16, store: &Path) -> Notes {
    start_notes_with_stderr(port, store, logs()).await
}

async fn start_notes_with_stderr(port: u16, store: &Path, stderr: Stdio) -> Notes {
    start_notes_on(port, &format!("sqlite://{}", store.display()), stderr).await
}

/// The `notes` example with the `store` setting `store`.
async fn start_notes_on(port: u16, store: &str, stderr: Stdio) -> Notes {
    let origin = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(example_path("notes"))
        .arg("--config")
        .arg(config_file())
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("MCP_SERVER__PUBLIC_URL", &origin)
        .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", store)
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the notes example starts");
    wait_for_http(port, Some(&mut child), "notes (AUTH_AS_DEBUG=1 shows its log)", Duration::from_secs(15))
        .await;
    Notes { child, url: format!("{origin}/mcp"), origin }
}

impl Notes {
    async fn stop(mut self) {
        self.child.kill().await.expect("the server is killed");
    }
}

fn http() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

// --- a browser, by hand --------------------------------------------------------------------

/// The cookies of one origin.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn update(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().expect("an ASCII cookie");
            let mut parts = set.split(';');
            let (name, value) = parts.next().and_then(|p| p.split_once('=')).expect("name=value");
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

/// The value of a form's hidden `csrf` field.
fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("a csrf field in {html}")) + marker.len();
    html[start..].split('"').next().expect("a closing quote").to_owned()
}

/// The `action` of the page's (first) form, made absolute against `base`.
fn form_action(html: &str, base: &str) -> String {
    let marker = "action=\"";
    let start = html.find(marker).unwrap_or_else(|| panic!("a form in {html}")) + marker.len();
    let action = html[start..].split('"').next().expect("a closing quote").replace("&amp;", "&");
    Url::parse(base).expect("a URL").join(&action).expect("a valid action").to_string()
}

fn location_params(headers: &HeaderMap) -> BTreeMap<String, String> {
    let location = headers.get(LOCATION).expect("a Location").to_str().expect("ASCII");
    Url::parse(location).expect("an absolute Location").query_pairs().into_owned().collect()
}

// --- an OAuth client, by hand --------------------------------------------------------------

struct Discovered {
    issuer: String,
    metadata: Value,
}

impl Discovered {
    fn endpoint(&self, name: &str) -> String {
        self.metadata[name].as_str().unwrap_or_else(|| panic!("{name} in {}", self.metadata)).to_owned()
    }
}

/// 401 -> `resource_metadata` -> the protected-resource metadata -> the AS metadata.
async fn discover(notes: &Notes) -> Discovered {
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

async fn register(as_: &Discovered) -> String {
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

fn pkce() -> (String, String) {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
    let verifier = format!("e2e-verifier-{nanos}-{}-padding-to-be-long-enough", std::process::id());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// `/authorize` -> development login as `user` -> consent (approve), for the MCP endpoint; returns
/// the code and verifier.
async fn authorize(as_: &Discovered, notes: &Notes, client_id: &str, user: &str) -> (String, String) {
    authorize_for(as_, &notes.url, client_id, user).await
}

/// [`authorize`] with the RFC 8707 `resource` indicator `resource`.
async fn authorize_for(as_: &Discovered, resource: &str, client_id: &str, user: &str) -> (String, String) {
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

struct Tokens {
    access: String,
    refresh: String,
}

async fn token(as_: &Discovered, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http().post(as_.endpoint("token_endpoint")).form(form).send().await.expect("answers");
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.expect("JSON"))
}

fn tokens(body: &Value) -> Tokens {
    assert_eq!(body["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("bearer"), "{body}");
    Tokens {
        access: body["access_token"].as_str().expect("an access_token").to_owned(),
        refresh: body["refresh_token"].as_str().expect("a refresh_token").to_owned(),
    }
}

async fn exchange(as_: &Discovered, notes: &Notes, client_id: &str, code: &str, verifier: &str) -> Tokens {
    exchange_for(as_, &notes.url, client_id, code, verifier).await
}

/// [`exchange`] with the RFC 8707 `resource` indicator `resource`.
async fn exchange_for(
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

async fn refresh(as_: &Discovered, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(as_, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)])
        .await
}

async fn refresh_for(
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

async fn revoke(as_: &Discovered, client_id: &str, token: &str) {
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
async fn call(
    notes: &Notes,
    access_token: &str,
    tool: &str,
    arguments: Value,
) -> (StatusCode, String, Value) {
    let params = json!({"name": tool, "arguments": arguments, "_meta": modern_meta(json!({}))});
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let response = http()
        .post(&notes.url)
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

async fn whoami(notes: &Notes, access_token: &str) -> Value {
    let (status, _, message) = call(notes, access_token, "whoami", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{message}");
    message["result"]["structuredContent"].clone()
}

async fn assert_refused(notes: &Notes, access_token: &str, what: &str) {
    let (status, challenge, _) = call(notes, access_token, "whoami", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
}

// --- the tests -----------------------------------------------------------------------------

#[tokio::test]
async fn discovery_registration_login_consent_token_tool_call_refresh_revoke_and_restart() {
    let dir = TempDir::new();
    let store = dir.0.join("auth.db");
    let port = free_port().await;
    let notes = start_notes(port, &store).await;

    let as_ = discover(&notes).await;
    let client_id = register(&as_).await;
    let (code, verifier) = authorize(&as_, &notes, &client_id, "alice").await;
    let first = exchange(&as_, &notes, &client_id, &code, &verifier).await;

    // The token works on /mcp, validated by the resource-server code against our own JWKS.
    let who = whoami(&notes, &first.access).await;
    assert_eq!(
        who,
        json!({"authenticated": true, "issuer": notes.origin, "subject": "alice",
               "client_acting_for_itself": false, "client_id": client_id,
               "scopes": ["notes:read", "notes:write"]})
    );
    let (status, _, added) = call(&notes, &first.access, "add_note", json!({"text": "hello"})).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["result"]["structuredContent"]["author"], "alice");

    // A code is single use; a replay also revokes what it issued (RFC 6749 §4.1.2).
    let (status, body) = token(
        &as_,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert_refused(&notes, &first.access, "an access token from a replayed code").await;
    let (status, _) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a refresh token from a replayed code");

    // A second authorization (the same browser-less flow) for the rest.
    let (code, verifier) = authorize(&as_, &notes, &client_id, "alice").await;
    let first = exchange(&as_, &notes, &client_id, &code, &verifier).await;

    // Refresh rotates the refresh token; the new access token works.
    let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = tokens(&body);
    assert_ne!(second.refresh, first.refresh, "rotated");
    assert_ne!(second.access, first.access);
    assert_eq!(whoami(&notes, &second.access).await["subject"], "alice");

    // Restart on the same SQLite file: the refresh token issued before still works, and so does
    // the access token (the signing key is in the store).
    notes.stop().await;
    let notes = start_notes(port, &store).await;
    assert_eq!(whoami(&notes, &second.access).await["subject"], "alice", "access token after restart");
    let (status, body) = refresh(&as_, &client_id, &second.refresh).await;
    assert_eq!(status, StatusCode::OK, "refresh after restart: {body}");
    let third = tokens(&body);
    assert_eq!(whoami(&notes, &third.access).await["subject"], "alice");

    // Revoking an access token refuses it on /mcp at once (the revocation check looks its jti up
    // in the store on every request); the grant lives on.
    revoke(&as_, &client_id, &third.access).await;
    assert_refused(&notes, &third.access, "a revoked access token").await;
    let (status, body) = refresh(&as_, &client_id, &third.refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fourth = tokens(&body);
    assert_eq!(whoami(&notes, &fourth.access).await["subject"], "alice");

    // Revoking the refresh token revokes the grant: its access tokens and refresh tokens die.
    revoke(&as_, &client_id, &fourth.refresh).await;
    assert_refused(&notes, &fourth.access, "an access token of a revoked grant").await;
    let (status, body) = refresh(&as_, &client_id, &fourth.refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    notes.stop().await;
}

/// `store = "postgres://…"` in the notes example (set through the
/// environment, as a password would be): tokens survive a restart of the
/// server (the signing key and the grants are in the database); while the
/// database is down the token endpoint answers `503 temporarily_unavailable`,
/// and once it is back the same process serves the same refresh token.
#[tokio::test]
async fn the_notes_example_on_postgres_survives_restarts_of_itself_and_of_its_database() {
    let mut pg = TestPostgres::start().expect("a PostgreSQL server (scripts/setup.sh installs it)");
    let store = pg.create_database("notes").expect("a database");
    let port = free_port().await;
    let notes = start_notes_on(port, &store, logs()).await;
    let as_ = discover(&notes).await;
    let client_id = register(&as_).await;
    let (code, verifier) = authorize(&as_, &notes, &client_id, "alice").await;
    let first = exchange(&as_, &notes, &client_id, &code, &verifier).await;
    assert_eq!(whoami(&notes, &first.access).await["subject"], "alice");

    notes.stop().await;
    let notes = start_notes_on(port, &store, logs()).await;
    assert_eq!(whoami(&notes, &first.access).await["subject"], "alice", "access token after restart");
    let (status, body) = refresh(&as_, &client_id, &first.refresh).await;
    assert_eq!(status, StatusCode::OK, "refresh after restart: {body}");
    let second = tokens(&body);

    pg.stop().expect("PostgreSQL stops");
    let (status, body) = refresh(&as_, &client_id, &second.refresh).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");

    pg.restart().expect("PostgreSQL starts again");
    let (status, body) = refresh(&as_, &client_id, &second.refresh).await;
    assert_eq!(status, StatusCode::OK, "refresh once the database is back: {body}");
    assert_eq!(whoami(&notes, &tokens(&body).access).await["subject"], "alice");
    notes.stop().await;
}

/// The legacy HTTP+SSE endpoints publish protected-resource metadata of their own (RFC 9728
/// §3.3: clients such as the TypeScript SDK refuse metadata whose `resource` does not match the
/// URL they connect to), their challenges name it, their URLs are accepted as `resource`
/// indicators, and one token serves every endpoint of the server.
#[tokio::test]
async fn legacy_sse_endpoints_have_their_own_metadata_and_share_tokens() {
    let dir = TempDir::new();
    let port = free_port().await;
    let notes = start_notes(port, &dir.0.join("auth.db")).await;
    let as_ = discover(&notes).await;
    let http = http();

    for (path, request) in [
        ("/sse", http.get(format!("{}/sse", notes.origin))),
        ("/messages", http.post(format!("{}/messages?sessionId=x", notes.origin)).json(&json!({}))),
    ] {
        let denied = request.send().await.expect("answers");
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = denied.headers()["www-authenticate"].to_str().expect("ASCII").to_owned();
        let prm_url = format!("{}/.well-known/oauth-protected-resource{path}", notes.origin);
        assert!(challenge.contains(&format!("resource_metadata=\"{prm_url}\"")), "{path}: {challenge}");
        let prm: Value = http.get(&prm_url).send().await.expect("answers").json().await.expect("JSON");
        assert_eq!(prm["resource"], format!("{}{path}", notes.origin), "{prm}");
        assert_eq!(prm["authorization_servers"], json!([as_.issuer]), "{prm}");
        assert_eq!(prm["scopes_supported"], json!(["notes:read", "notes:write"]), "{prm}");
    }
    // Unknown endpoints have none.
    let other = http.get(format!("{}/.well-known/oauth-protected-resource/other", notes.origin));
    assert_eq!(other.send().await.expect("answers").status(), StatusCode::NOT_FOUND);

    // A client that connected to /sse asks for that resource; the token it gets works on /sse and /mcp.
    let sse = format!("{}/sse", notes.origin);
    let client_id = register(&as_).await;
    let (code, verifier) = authorize_for(&as_, &sse, &client_id, "alice").await;
    let issued = exchange_for(&as_, &sse, &client_id, &code, &verifier).await;
    assert_eq!(whoami(&notes, &issued.access).await["subject"], "alice");
    let stream = http.get(&sse).bearer_auth(&issued.access).send().await.expect("answers");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().expect("ASCII").starts_with("text/event-stream"));
    let (status, body) = refresh_for(&as_, &client_id, &issued.refresh, &sse).await;
    assert_eq!(status, StatusCode::OK, "refresh naming the /sse resource: {body}");

    // Any other resource is refused (RFC 8707 §2).
    let (status, body) =
        refresh_for(&as_, &client_id, &tokens(&body).refresh, "http://elsewhere.example/sse").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
    drop(stream);
    notes.stop().await;
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// Every refusal of an OAuth endpoint is logged at `info` with the endpoint, the error code and
/// the reason, so an operator can see why a client failed.
#[tokio::test]
async fn oauth_refusals_are_logged_with_endpoint_and_reason() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = TempDir::new();
    let port = free_port().await;
    let mut notes = start_notes_with_stderr(port, &dir.0.join("auth.db"), Stdio::piped()).await;
    let stderr = notes.child.stderr.take().expect("piped stderr");
    let register = format!("{}/register", notes.origin);
    let refused = http()
        .post(&register)
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "no-such-scope"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let logged = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.expect("stderr is readable") {
            if line.contains("OAuth request refused") {
                return strip_ansi(&line);
            }
        }
        panic!("notes ended without logging the refusal");
    })
    .await
    .expect("the refusal is logged within 10 s");
    assert!(logged.contains("INFO"), "{logged}");
    assert!(logged.contains("endpoint=/register"), "{logged}");
    assert!(logged.contains("invalid_client_metadata"), "{logged}");
    assert!(logged.contains("no-such-scope"), "the reason: {logged}");
    notes.stop().await;
}

#[tokio::test]
async fn invalid_configuration_fails_at_start_naming_the_key() {
    let dir = TempDir::new();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("MCP_AUTH__AUTHORIZATION_SERVER__STORE", "mysql://x")], "auth.authorization_server.store"),
        (&[("MCP_AUTH__AUTHORIZATION_SERVER__LOGIN", "magic")], "auth.authorization_server.login"),
        (
            &[("MCP_AUTH__AUTHORIZATION_SERVER__ISSUER", "http://mcp.example.com")],
            "auth.authorization_server.issuer",
        ),
        (&[("MCP_AUTH__AUTHORIZATION_SERVER__NO_SUCH_KEY", "1")], "no_such_key"),
    ];
    for (env, key) in cases {
        let output = Command::new(example_path("notes"))
            .arg("--config")
            .arg(config_file())
            .args(["--bind", "127.0.0.1:0"])
            .env("MCP_SERVER__PUBLIC_URL", "http://127.0.0.1:1")
            .env(
                "MCP_AUTH__AUTHORIZATION_SERVER__STORE",
                format!("sqlite://{}", dir.0.join("x.db").display()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(Duration::from_secs(15), output)
            .await
            .expect("exits within 15 s")
            .expect("runs");
        assert!(!output.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{env:?}: the error names {key}: {stderr}");
    }
}
