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

use std::process::Stdio;

use mcp_tests::as_client::*;
use std::time::Duration;

use mcp_tests::postgres::TestPostgres;
use mcp_tests::upstream::TempDir;
use mcp_tests::{example_path, free_port};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

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
/// database is down the token endpoint answers `503 temporarily_unavailable`
/// and the MCP endpoint `503` with `Retry-After`, and once it is back the same
/// process serves the same tokens.
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
    // A tool call whose token's revocation state cannot be read: 503, not a
    // 401 that would send the client back through authorization.
    let (status, challenge, message) = call(&notes, &second.access, "whoami", json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{message}");
    assert!(challenge.is_empty(), "no bearer challenge: {challenge}");
    assert_eq!(message["error"]["code"], -32603, "{message}");

    pg.restart().expect("PostgreSQL starts again");
    assert_eq!(whoami(&notes, &second.access).await["subject"], "alice", "the same token once it is back");
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
