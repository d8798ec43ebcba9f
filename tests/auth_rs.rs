//! End-to-end tests of resource-server auth (`[auth] mode = "resource_server"`)
//! against a real OpenID provider that no one here wrote: `tests/oidc/provider.mjs`
//! (panva's `oidc-provider`) in front of the `notes` example, both real
//! processes on 127.0.0.1. Every test starts its own provider and server, so
//! key rotation and fault injection stay local to it.
//!
//! Needs Node.js and `npm ci` in `tests/oidc` (scripts/test.sh does both), and
//! the examples built (`cargo build --examples`). `AUTH_RS_DEBUG=1` shows the
//! provider's and the server's logs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_tests::{example_path, free_port, modern_meta, wait_for_http};
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const LEGACY_VERSION: &str = "2025-11-25";

fn debug() -> bool {
    std::env::var_os("AUTH_RS_DEBUG").is_some_and(|v| v == "1")
}

fn logs() -> Stdio {
    if debug() { Stdio::inherit() } else { Stdio::null() }
}

// --- the provider --------------------------------------------------------------------------

/// A running `provider.mjs`; it exits when dropped (stdin closes, and it is killed).
struct Provider {
    _child: Child,
    issuer: String,
    admin: String,
    active_kid: String,
}

async fn start_provider(resource: &str, env: &[(&str, &str)]) -> Provider {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc");
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
    let stdout = child.stdout.take().expect("stdout is piped");
    let line = tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).lines().next_line())
        .await
        .expect("the provider printed its ready line within 20 s")
        .expect("stdout is readable")
        .expect("the provider printed a ready line (AUTH_RS_DEBUG=1 shows why not)");
    let info: Value = serde_json::from_str(&line).expect("the ready line is JSON");
    let text = |key: &str| info[key].as_str().expect("a string in the ready line").to_owned();
    assert_eq!(info["mcp_resource"], resource);
    Provider { issuer: text("issuer"), admin: text("admin"), active_kid: text("active_kid"), _child: child }
}

impl Provider {
    /// A client_credentials token from `client` (secret `<client>-secret`).
    async fn token_for(&self, client: &str, resource: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        form.extend(scope.map(|s| ("scope", s)));
        let response = Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&form)
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON token response");
        assert_eq!(status, StatusCode::OK, "token request failed: {body}");
        body["access_token"].as_str().expect("an access_token").to_owned()
    }

    async fn revoke(&self, token: &str) {
        let response = Client::new()
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth("introspector", Some("introspector-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .expect("the revocation endpoint answers");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Publishes the next key and signs new access tokens with it; returns its kid.
    async fn rotate(&self) -> String {
        let response =
            Client::new().post(format!("{}/rotate", self.admin)).send().await.expect("admin answers");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        body["kid"].as_str().expect("the new kid").to_owned()
    }

    /// `target` = jwks | discovery | introspection | token; `mode` = ok | error | hang | delay | garbage.
    async fn fault(&self, target: &str, mode: &str) {
        let response = Client::new()
            .post(format!("{}/fault?target={target}&mode={mode}", self.admin))
            .send()
            .await
            .expect("admin answers");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// How often each endpoint was asked (`jwks`, `discovery`, `introspection`, `token`).
    async fn requests(&self, endpoint: &str) -> u64 {
        let state: Value = Client::new()
            .get(format!("{}/state", self.admin))
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("JSON");
        state["requests"][endpoint].as_u64().expect("a counter")
    }
}

// --- the notes server ----------------------------------------------------------------------

/// A running `notes` example; killed when dropped.
struct Notes {
    _child: Child,
    /// `http://127.0.0.1:PORT`
    origin: String,
    /// The MCP endpoint, which is also the canonical resource: `origin/mcp`.
    url: String,
}

async fn start_notes(port: u16, issuer: &str, env: &[(&str, &str)]) -> Notes {
    let origin = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(example_path("notes"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .env("MCP_SERVER__PUBLIC_URL", &origin)
        .env("MCP_AUTH__MODE", "resource_server")
        .env("MCP_AUTH__RESOURCE_SERVER__ISSUER", issuer)
        .env("MCP_AUTH__RESOURCE_SERVER__SCOPES_SUPPORTED", "notes:read notes:write")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(logs())
        .kill_on_drop(true)
        .spawn()
        .expect("the notes example starts");
    wait_for_http(port, Some(&mut child), "notes", Duration::from_secs(10)).await;
    Notes { _child: child, url: format!("{origin}/mcp"), origin }
}

/// A provider for a notes server on a fresh port, and that server.
async fn start_both(provider_env: &[(&str, &str)], notes_env: &[(&str, &str)]) -> (Provider, Notes) {
    let port = free_port().await;
    let provider = start_provider(&format!("http://127.0.0.1:{port}/mcp"), provider_env).await;
    let notes = start_notes(port, &provider.issuer, notes_env).await;
    (provider, notes)
}

// --- talking MCP ---------------------------------------------------------------------------

/// An HTTP answer: status, headers, and the JSON-RPC message (JSON or the SSE event carrying it).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn challenge(&self) -> &str {
        self.headers.get("www-authenticate").map_or("", |v| v.to_str().expect("an ASCII challenge"))
    }

    fn result(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
        assert!(self.body.get("error").is_none(), "an error: {}", self.body);
        &self.body["result"]
    }

    /// Asserts a 401 `invalid_token` challenge.
    fn assert_invalid_token(&self, what: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{what}: {self:?}");
        let challenge = self.challenge();
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
        assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
        assert!(challenge.contains("resource_metadata=\""), "{what}: {challenge}");
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let sse = headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = response.text().await.expect("a body");
    let body = if sse {
        // The last `data:` line carrying a response (progress and logs may come first).
        text.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .unwrap_or(Value::Null)
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Answer { status, headers, body }
}

fn post(url: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// A stateless 2026-07-28 request.
async fn modern(url: &str, token: Option<&str>, method: &str, mut params: Value) -> Answer {
    params["_meta"] = modern_meta(json!({}));
    let mut request =
        post(url, token).header("mcp-protocol-version", "2026-07-28").header("mcp-method", method);
    if let Some(name) = params["name"].as_str() {
        request = request.header("mcp-name", name);
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    answer(request.body(body.to_string()).send().await.expect("the server answers")).await
}

async fn call(url: &str, token: &str, tool: &str, arguments: Value) -> Answer {
    modern(url, Some(token), "tools/call", json!({"name": tool, "arguments": arguments})).await
}

/// A legacy (2025-11-25) session, opened with a token.
struct Session {
    url: String,
    id: String,
    next: i64,
}

impl Session {
    async fn open(url: &str, token: &str) -> Session {
        let params = json!({
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "auth-rs", "version": "0"},
        });
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params});
        let initialized =
            answer(post(url, Some(token)).body(body.to_string()).send().await.expect("answers")).await;
        assert_eq!(initialized.result()["protocolVersion"], LEGACY_VERSION);
        let id = initialized.headers["mcp-session-id"].to_str().expect("ASCII").to_owned();
        let session = Session { url: url.to_owned(), id, next: 1 };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = session.post(token).body(note.to_string()).send().await.expect("answers");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        session
    }

    fn post(&self, token: &str) -> reqwest::RequestBuilder {
        post(&self.url, Some(token))
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", LEGACY_VERSION)
    }

    async fn request(&mut self, token: &str, method: &str, params: Value) -> Answer {
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params});
        answer(self.post(token).body(body.to_string()).send().await.expect("answers")).await
    }

    async fn call(&mut self, token: &str, tool: &str, arguments: Value) -> Answer {
        self.request(token, "tools/call", json!({"name": tool, "arguments": arguments})).await
    }
}

fn tool_names(result: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = result["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("a name"))
        .collect();
    names.sort_unstable();
    names
}

// --- JWT surgery ---------------------------------------------------------------------------

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// --- the tests -----------------------------------------------------------------------------

#[tokio::test]
async fn a_valid_token_works_in_both_eras_and_whoami_names_the_caller() {
    let (op, notes) = start_both(&[], &[]).await;
    let token = op.token_for("rs-test", &notes.url, Some("notes:read notes:write")).await;
    assert_eq!(jwt_part(&token, 1)["aud"], notes.url.as_str());

    let who = call(&notes.url, &token, "whoami", json!({})).await;
    let caller = &who.result()["structuredContent"];
    assert_eq!(caller["authenticated"], true);
    assert_eq!(caller["subject"], "rs-test");
    assert_eq!(caller["client_id"], "rs-test");
    assert_eq!(caller["scopes"], json!(["notes:read", "notes:write"]));
    // The provider puts the client in `sub` (RFC 9068 §2.2), so the
    // subject comes from `sub` and is not marked; the issuer is kept.
    assert_eq!(jwt_part(&token, 1)["sub"], "rs-test");
    assert_eq!(caller["client_acting_for_itself"], false);
    assert_eq!(caller["issuer"], op.issuer.as_str());

    let added = call(&notes.url, &token, "add_note", json!({"text": "modern"})).await;
    assert_eq!(added.result()["structuredContent"]["author"], "rs-test");

    // A legacy session opened with the token, every request carrying it.
    let mut session = Session::open(&notes.url, &token).await;
    let who = session.call(&token, "whoami", json!({})).await;
    assert_eq!(who.result()["structuredContent"]["subject"], "rs-test");
    session.call(&token, "add_note", json!({"text": "legacy"})).await.result();
    let listed = session.call(&token, "list_notes", json!({})).await;
    let texts: Vec<&Value> = listed.result()["structuredContent"]["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .map(|n| &n["text"])
        .collect();
    assert_eq!(texts, [&json!("modern"), &json!("legacy")]);

    // The session answers only the principal that opened it: another
    // client's valid token from the same issuer gets 404, and ends nothing.
    let other = op.token_for("rs-short", &notes.url, Some("notes:read")).await;
    assert_eq!(
        call(&notes.url, &other, "whoami", json!({})).await.result()["structuredContent"]["subject"],
        "rs-short"
    );
    let foreign =
        session.post(&other).body(json!({"jsonrpc": "2.0", "id": 98, "method": "ping"}).to_string());
    assert_eq!(foreign.send().await.expect("answers").status(), StatusCode::NOT_FOUND);
    let deleted = Client::new()
        .delete(&notes.url)
        .bearer_auth(&other)
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", LEGACY_VERSION)
        .send()
        .await
        .expect("answers");
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
    session.call(&token, "whoami", json!({})).await.result();

    // The session needs the token on every request, not only on initialize.
    let bare = session.post("x").body(json!({"jsonrpc": "2.0", "id": 99, "method": "ping"}).to_string());
    let bare = answer(bare.send().await.expect("answers")).await;
    bare.assert_invalid_token("a session request with a junk token");
}

#[tokio::test]
async fn no_token_gets_a_challenge_without_error_and_the_metadata_is_public() {
    let (op, notes) = start_both(&[], &[]).await;
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", notes.origin);

    let missing = modern(&notes.url, None, "tools/list", json!({})).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let challenge = missing.challenge();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&format!(r#"resource_metadata="{prm_url}""#)), "{challenge}");
    assert!(!challenge.contains("error="), "no error code for a missing token: {challenge}");
    assert!(challenge.contains(r#"scope="notes:read notes:write""#), "{challenge}");

    // Legacy clients too: initialize without a token.
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}});
    let legacy = answer(post(&notes.url, None).body(init.to_string()).send().await.expect("answers")).await;
    assert_eq!(legacy.status, StatusCode::UNAUTHORIZED);
    assert!(!legacy.challenge().contains("error="), "{}", legacy.challenge());

    // Not a bearer token: invalid.
    let basic = post(&notes.url, None).header("authorization", "Basic dXNlcjpwdw==").body("{}");
    let basic = answer(basic.send().await.expect("answers")).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED, "{basic:?}");

    // The metadata, path-inserted and root forms, without a token.
    for url in [prm_url.clone(), format!("{}/.well-known/oauth-protected-resource", notes.origin)] {
        let response = Client::new().get(&url).send().await.expect("answers");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let prm: Value = response.json().await.expect("JSON");
        assert_eq!(prm["resource"], notes.url.as_str(), "{url}: resource is the MCP URL exactly");
        assert_eq!(prm["authorization_servers"], json!([op.issuer]), "{url}");
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]), "{url}");
        assert_eq!(prm["scopes_supported"], json!(["notes:read", "notes:write"]), "{url}");
    }
}

#[tokio::test]
async fn expired_foreign_unsigned_and_tampered_tokens_get_invalid_token() {
    // No leeway, so a token 1 s past `exp` is expired.
    let (op, notes) = start_both(&[], &[("MCP_AUTH__RESOURCE_SERVER__LEEWAY_SECS", "0")]).await;
    let short = op.token_for("rs-short", &notes.url, Some("notes:read")).await;
    let valid = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    call(&notes.url, &valid, "list_notes", json!({})).await.result();

    let foreign = op.token_for("rs-test", "https://other.example/mcp", Some("notes:read")).await;
    assert_eq!(jwt_part(&foreign, 1)["aud"], "https://other.example/mcp");
    call(&notes.url, &foreign, "list_notes", json!({})).await.assert_invalid_token("wrong audience");

    let (header, payload) = (jwt_part(&valid, 0), jwt_part(&valid, 1));
    let signature = valid.rsplit('.').next().expect("a signature");

    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", encode(&none), encode(&payload));
    call(&notes.url, &unsigned, "list_notes", json!({})).await.assert_invalid_token("alg none");
    let unsigned_kept = format!("{}.{}.{signature}", encode(&none), encode(&payload));
    call(&notes.url, &unsigned_kept, "list_notes", json!({}))
        .await
        .assert_invalid_token("alg none, signature kept");

    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let hmac = format!("{}.{}.{signature}", encode(&hs), encode(&payload));
    call(&notes.url, &hmac, "list_notes", json!({})).await.assert_invalid_token("alg HS256");

    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    bytes[10] ^= 0x01;
    let (head, _) = valid.rsplit_once('.').expect("a JWT");
    let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    call(&notes.url, &tampered, "list_notes", json!({})).await.assert_invalid_token("tampered signature");

    let mut widened = payload.clone();
    widened["scope"] = json!("notes:read notes:write");
    let forged = format!("{}.{}.{signature}", encode(&header), encode(&widened));
    call(&notes.url, &forged, "add_note", json!({"text": "x"}))
        .await
        .assert_invalid_token("tampered payload");

    call(&notes.url, "not-a-token", "list_notes", json!({})).await.assert_invalid_token("junk");

    // rs-short tokens live 1 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    call(&notes.url, &short, "list_notes", json!({})).await.assert_invalid_token("expired");
    // The server still serves good tokens.
    call(&notes.url, &valid, "list_notes", json!({})).await.result();
}

#[tokio::test]
async fn a_token_signed_with_the_right_key_by_another_issuer_is_refused() {
    let keys =
        std::env::temp_dir().join(format!("auth-rs-keys-{}-{}.json", std::process::id(), free_port().await));
    let keys_env = keys.to_str().expect("a UTF-8 temp path").to_owned();
    let (op, notes) = start_both(&[("OIDC_KEYS_FILE", &keys_env)], &[]).await;
    let other = start_provider(&notes.url, &[("OIDC_KEYS_FILE", &keys_env)]).await;
    let _ = std::fs::remove_file(&keys);
    assert_ne!(other.issuer, op.issuer);
    assert_eq!(other.active_kid, op.active_kid, "both providers sign with the same key");

    let good = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    call(&notes.url, &good, "list_notes", json!({})).await.result();
    let stranger = other.token_for("rs-test", &notes.url, Some("notes:read")).await;
    assert_eq!(jwt_part(&stranger, 0)["kid"], jwt_part(&good, 0)["kid"]);
    assert_eq!(jwt_part(&stranger, 1)["iss"], other.issuer.as_str());
    call(&notes.url, &stranger, "list_notes", json!({})).await.assert_invalid_token("wrong issuer");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_junk_kids_do_not_hammer_the_issuer() {
    let (op, notes) = start_both(&[], &[("MCP_AUTH__RESOURCE_SERVER__JWKS_MIN_REFETCH_SECS", "1")]).await;
    let before = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    call(&notes.url, &before, "list_notes", json!({})).await.result();
    let fetches = op.requests("jwks").await;

    // Tokens with unknown kids, many at once: at most one refetch per cooldown.
    let mut header = jwt_part(&before, 0);
    header["kid"] = json!("no-such-key");
    let (_, rest) = before.split_once('.').expect("a JWT");
    let junk = format!("{}.{rest}", encode(&header));
    let junk_calls = (0..10).map(|_| {
        let (url, junk) = (notes.url.clone(), junk.clone());
        async move { call(&url, &junk, "list_notes", json!({})).await }
    });
    for answer in futures_join(junk_calls).await {
        answer.assert_invalid_token("unknown kid");
    }
    assert!(op.requests("jwks").await <= fetches + 1, "unknown kids refetched the JWKS more than once");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let kid = op.rotate().await;
    let after = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    assert_eq!(jwt_part(&after, 0)["kid"], kid.as_str());
    call(&notes.url, &after, "list_notes", json!({})).await.result();
    // The old key is still published, and still accepted.
    call(&notes.url, &before, "list_notes", json!({})).await.result();
}

/// Runs the futures concurrently (no `futures` crate here).
async fn futures_join<F: Future<Output = Answer> + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<Answer> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.expect("the task ran"));
    }
    answers
}

#[tokio::test]
async fn while_the_jwks_is_down_cached_keys_work_and_unknown_kids_get_401() {
    let (op, notes) = start_both(&[], &[("MCP_AUTH__RESOURCE_SERVER__JWKS_MIN_REFETCH_SECS", "1")]).await;
    let first = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    call(&notes.url, &first, "list_notes", json!({})).await.result();

    op.fault("jwks", "error").await;
    // A token never seen before, signed with the cached key.
    let second = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    call(&notes.url, &second, "list_notes", json!({})).await.result();

    // A rotated key cannot be fetched: 401, not 500.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    op.rotate().await;
    let rotated = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    let refused = call(&notes.url, &rotated, "list_notes", json!({})).await;
    refused.assert_invalid_token("unknown kid while the JWKS answers 503");

    // A JWKS endpoint that hangs: 401 within the fetch time limit, not a hang.
    op.fault("jwks", "hang").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let refused = call(&notes.url, &rotated, "list_notes", json!({})).await;
    refused.assert_invalid_token("unknown kid while the JWKS hangs");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    call(&notes.url, &second, "list_notes", json!({})).await.result();

    // Back up: the rotated key is fetched.
    op.fault("jwks", "ok").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    call(&notes.url, &rotated, "list_notes", json!({})).await.result();
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_inactive_ones_get_401() {
    let introspection = [
        ("MCP_AUTH__RESOURCE_SERVER__INTROSPECTION__CLIENT_ID", "introspector"),
        ("MCP_AUTH__RESOURCE_SERVER__INTROSPECTION__CLIENT_SECRET", "introspector-secret"),
    ];
    let (op, notes) = start_both(&[], &introspection).await;
    let opaque = op.token_for("rs-opaque", &notes.url, Some("notes:read")).await;
    assert!(!opaque.contains('.'), "an opaque token: {opaque}");
    let short = op.token_for("rs-short-opaque", &notes.url, Some("notes:read")).await;

    let who = call(&notes.url, &opaque, "whoami", json!({})).await;
    let caller = &who.result()["structuredContent"];
    assert_eq!(caller["client_id"], "rs-opaque");
    assert_eq!(caller["scopes"], json!(["notes:read"]));
    call(&notes.url, &opaque, "list_notes", json!({})).await.result();
    // Scopes from introspection count too.
    let denied = call(&notes.url, &opaque, "add_note", json!({"text": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");

    // Revoked before its first use: introspection says active:false.
    let revoked = op.token_for("rs-opaque", &notes.url, Some("notes:read")).await;
    op.revoke(&revoked).await;
    call(&notes.url, &revoked, "list_notes", json!({})).await.assert_invalid_token("revoked opaque token");
    call(&notes.url, "unknown-opaque-token", "list_notes", json!({})).await.assert_invalid_token("unknown");

    // Expired (1 s lifetime).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    call(&notes.url, &short, "list_notes", json!({})).await.assert_invalid_token("expired opaque token");

    // Introspection down: 401, never 500.
    op.fault("introspection", "error").await;
    let fresh = op.token_for("rs-opaque", &notes.url, Some("notes:read")).await;
    call(&notes.url, &fresh, "list_notes", json!({})).await.assert_invalid_token("introspection down");
}

#[tokio::test]
async fn step_up_a_read_token_gets_403_naming_the_scope_then_a_wider_token_succeeds() {
    let (op, notes) = start_both(&[], &[]).await;
    let read = op.token_for("rs-test", &notes.url, Some("notes:read")).await;

    let denied = call(&notes.url, &read, "add_note", json!({"text": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
    let challenge = denied.challenge();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains(r#"scope="notes:write""#), "every scope add_note needs: {challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");

    // The same in a legacy session.
    let mut session = Session::open(&notes.url, &read).await;
    let denied = session.call(&read, "add_note", json!({"text": "x"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
    assert!(denied.challenge().contains(r#"scope="notes:write""#), "{}", denied.challenge());

    // The client gets a token with more scope and retries.
    let both = op.token_for("rs-test", &notes.url, Some("notes:read notes:write")).await;
    let added = call(&notes.url, &both, "add_note", json!({"text": "modern"})).await;
    assert_eq!(added.result()["structuredContent"]["text"], "modern");
    // Same caller, same session, wider token.
    let added = session.call(&both, "add_note", json!({"text": "legacy"})).await;
    assert_eq!(added.result()["structuredContent"]["text"], "legacy");
    let listed = call(&notes.url, &read, "list_notes", json!({})).await;
    assert_eq!(listed.result()["structuredContent"]["notes"].as_array().expect("notes").len(), 2);

    // A write-only token cannot list.
    let write = op.token_for("rs-test", &notes.url, Some("notes:write")).await;
    let denied = call(&notes.url, &write, "list_notes", json!({})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
    assert!(denied.challenge().contains(r#"scope="notes:read""#), "{}", denied.challenge());
}

#[tokio::test]
async fn tools_list_shows_only_what_the_token_may_call() {
    let (op, notes) = start_both(&[], &[]).await;
    let read = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    let both = op.token_for("rs-test", &notes.url, Some("notes:read notes:write")).await;
    let none = op.token_for("rs-test", &notes.url, None).await;

    let listed = modern(&notes.url, Some(&read), "tools/list", json!({})).await;
    assert_eq!(tool_names(listed.result()), ["list_notes", "whoami"]);
    assert_eq!(listed.result()["cacheScope"], "private");
    let listed = modern(&notes.url, Some(&both), "tools/list", json!({})).await;
    assert_eq!(tool_names(listed.result()), ["add_note", "list_notes", "whoami"]);
    assert_eq!(listed.result()["cacheScope"], "private");
    let listed = modern(&notes.url, Some(&none), "tools/list", json!({})).await;
    assert_eq!(tool_names(listed.result()), ["whoami"]);

    let mut session = Session::open(&notes.url, &read).await;
    let listed = session.request(&read, "tools/list", json!({})).await;
    assert_eq!(tool_names(listed.result()), ["list_notes", "whoami"]);
}

/// The 2024-11-05 HTTP+SSE transport: an SSE stream read message by message.
struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

impl SseStream {
    /// The next event's `(event, data)`.
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .filter_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let data = field("data:");
                if data.is_empty() {
                    continue; // a comment or keep-alive
                }
                let event = field("event:");
                return (if event.is_empty() { "message".into() } else { event }, data);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("the stream is readable")
                .expect("the stream is still open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// The next JSON-RPC response (skipping notifications).
    async fn response(&mut self) -> Value {
        loop {
            let (event, data) = self.next().await;
            let message: Value = serde_json::from_str(&data).expect("JSON");
            if event == "message" && message.get("id").is_some() && message.get("method").is_none() {
                return message;
            }
        }
    }
}

#[tokio::test]
async fn step_up_works_on_the_2024_11_05_sse_transport_too() {
    let (op, notes) = start_both(&[], &[]).await;
    let read = op.token_for("rs-test", &notes.url, Some("notes:read")).await;
    let both = op.token_for("rs-test", &notes.url, Some("notes:read notes:write")).await;

    let no_token = Client::new().get(format!("{}/sse", notes.origin)).send().await.expect("answers");
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);

    let response = Client::new()
        .get(format!("{}/sse", notes.origin))
        .bearer_auth(&read)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = SseStream { response, buffer: String::new() };
    let (event, endpoint) = stream.next().await;
    assert_eq!(event, "endpoint");
    let endpoint = format!("{}{endpoint}", notes.origin);
    let send = |token: &str, message: Value| {
        Client::new()
            .post(&endpoint)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(message.to_string())
            .send()
    };

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "sse", "version": "0"}}});
    assert_eq!(send(&read, init).await.expect("answers").status(), StatusCode::ACCEPTED);
    assert_eq!(stream.response().await["result"]["protocolVersion"], "2024-11-05");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(send(&read, initialized).await.expect("answers").status(), StatusCode::ACCEPTED);

    let add = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "add_note", "arguments": {"text": "over sse"}}})
    };
    let denied = send(&read, add(2)).await.expect("answers");
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let challenge = denied.headers()["www-authenticate"].to_str().expect("ASCII").to_owned();
    assert!(challenge.contains(r#"scope="notes:write""#), "{challenge}");

    // The stepped-up token on the same stream: the call runs with its scopes.
    assert_eq!(send(&both, add(3)).await.expect("answers").status(), StatusCode::ACCEPTED);
    let added = stream.response().await;
    assert_eq!(added["id"], 3);
    // 2024-11-05 has no structuredContent: the note is the text block's JSON.
    let text =
        added["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("a text block: {added}"));
    let note: Value = serde_json::from_str(text).expect("the note as JSON");
    assert_eq!(note["text"], "over sse", "{added}");
    let list = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"});
    assert_eq!(send(&both, list).await.expect("answers").status(), StatusCode::ACCEPTED);
    assert_eq!(tool_names(&stream.response().await["result"]), ["add_note", "list_notes", "whoami"]);
}
