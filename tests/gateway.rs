//! End-to-end tests of `mcp-gateway` in front of a real MCP server no one
//! here wrote: `@modelcontextprotocol/server-everything` (pinned in
//! `tests/gateway/package.json`) over stdio, Streamable HTTP and HTTP+SSE.
//! Clients of every era talk to the gateway over HTTP on 127.0.0.1; the
//! authorization tests use the real OpenID provider of `tests/oidc`.
//!
//! Needs `npm ci` in `tests/gateway` and `tests/oidc`, and the gateway built
//! (`cargo build -p mcp-gateway`); `scripts/test.sh` does all three.
//! `GATEWAY_DEBUG=1` shows the gateway's log.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcp_tests::upstream::{OidcProvider, TempDir};
use mcp_tests::{free_port, modern_meta, wait_for_http};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

fn logs() -> Stdio {
    if std::env::var_os("GATEWAY_DEBUG").is_some_and(|v| v == "1") { Stdio::inherit() } else { Stdio::null() }
}

fn everything() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("gateway/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(path.exists(), "{} is missing: run `npm ci` in tests/gateway first", path.display());
    path
}

fn gateway_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    let path = target.join("debug").join("mcp-gateway");
    assert!(path.exists(), "{} is missing: run `cargo build -p mcp-gateway` first", path.display());
    path
}

async fn wait_for_port(port: u16, what: &str) {
    wait_for_http(port, None, what, Duration::from_secs(20)).await;
}

/// `server-everything` over HTTP (`streamableHttp` or `sse`) on a fresh port; killed when dropped.
struct HttpEverything {
    _child: Child,
    port: u16,
}

async fn everything_over(transport: &str) -> HttpEverything {
    let port = free_port().await;
    let child = Command::new("node")
        .arg(everything())
        .arg(transport)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(logs())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    wait_for_port(port, "server-everything").await;
    HttpEverything { _child: child, port }
}

/// A running gateway; killed when dropped.
struct Gateway {
    _child: Child,
    _dir: TempDir,
    origin: String,
    client: Client,
}

/// Starts the gateway with `upstreams` (TOML under `[app]`) and `extra` TOML sections.
async fn start_gateway(upstreams: &str, extra: &str) -> Gateway {
    start_gateway_on(free_port().await, upstreams, extra).await
}

/// The stdio upstream, tagged with `marker` (an argument server-everything
/// ignores) so a test can find and kill its process.
fn stdio_upstream(name: &str, marker: &str) -> String {
    format!(
        "[app.upstreams.{name}]\ncommand = \"node\"\nargs = [{:?}, \"stdio\", {marker:?}]\n",
        everything().display().to_string()
    )
}

impl Gateway {
    fn url(&self, upstream: &str) -> String {
        format!("{}/{upstream}/mcp", self.origin)
    }

    /// A modern (2026-07-28, stateless) request.
    async fn modern(
        &self,
        upstream: &str,
        token: Option<&str>,
        method: &str,
        params: Value,
    ) -> (StatusCode, Value) {
        modern(&self.client, &self.url(upstream), token, method, params).await
    }

    /// The tool names a modern `tools/list` shows, once the upstream is connected.
    async fn tool_names(&self, upstream: &str, token: Option<&str>) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, answer) = self.modern(upstream, token, "tools/list", json!({})).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            let names: Vec<String> = answer["result"]["tools"]
                .as_array()
                .map(|tools| tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if !names.is_empty() {
                return names;
            }
            assert!(Instant::now() < deadline, "upstream {upstream} offered no tools within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A modern (2026-07-28, stateless) request to the endpoint at `url`.
async fn modern(
    client: &Client,
    url: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> (StatusCode, Value) {
    let mut params = params;
    params["_meta"] = modern_meta(json!({}));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(&body);
    // SEP-2243: the name (or URI) a request acts on, mirrored in a header.
    let named = match method {
        "tools/call" | "prompts/get" => params["name"].as_str(),
        "resources/read" => params["uri"].as_str(),
        _ => None,
    };
    if let Some(name) = named {
        request = request.header("mcp-name", name);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status();
    (status, last_message(response).await)
}

/// The JSON body, or the last JSON-RPC response in an SSE body.
async fn last_message(response: reqwest::Response) -> Value {
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = response.text().await.expect("a body");
    if !sse {
        return serde_json::from_str(&text).unwrap_or(Value::String(text));
    }
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or(Value::Null)
}

/// Every SSE `data:` message of a response.
async fn all_messages(response: reqwest::Response) -> Vec<Value> {
    let text = response.text().await.expect("a body");
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .collect()
}

/// A 2025-11-25 session opened through the gateway.
struct Session {
    url: String,
    id: String,
    client: Client,
}

impl Session {
    async fn open(url: &str) -> Self {
        let client = Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "gateway-test", "version": "0"}}});
        let response = client
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
            .await
            .expect("initialize");
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["mcp-session-id"].to_str().expect("ASCII").to_owned();
        let session = Self { url: url.to_owned(), id, client };
        let done = session.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(done.status(), StatusCode::ACCEPTED);
        session
    }

    async fn post(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(body)
            .send()
            .await
            .expect("the gateway answers")
    }
}

#[tokio::test]
async fn every_era_reaches_a_stdio_upstream_under_its_policy() {
    let upstream = format!(
        "{}hide = [\"trigger-sampling-request\"]\n[app.upstreams.everything.tools.echo]\nrename = \"say\"\n",
        stdio_upstream("everything", "era-test")
    );
    let gateway = start_gateway(&upstream, "").await;
    let names = gateway.tool_names("everything", None).await;
    assert!(names.contains(&"say".to_owned()), "{names:?}");
    assert!(!names.contains(&"echo".to_owned()), "renamed: {names:?}");
    assert!(!names.contains(&"trigger-sampling-request".to_owned()), "hidden: {names:?}");
    assert!(names.contains(&"get-sum".to_owned()), "{names:?}");

    // 2026-07-28, stateless: forwarded under the upstream's own name.
    let (status, answer) = gateway
        .modern("everything", None, "tools/call", json!({"name": "say", "arguments": {"message": "hi"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["content"][0]["text"], "Echo: hi");
    // A hidden tool, or the old name of a renamed one, is unknown, not forwarded.
    for name in ["trigger-sampling-request", "echo"] {
        let (_, answer) =
            gateway.modern("everything", None, "tools/call", json!({"name": name, "arguments": {}})).await;
        assert_eq!(answer["error"]["code"], -32602, "{name}: {answer}");
    }
    // A name the upstream never listed goes to it, which answers as it would directly.
    let (_, answer) = gateway
        .modern("everything", None, "tools/call", json!({"name": "no-such-tool", "arguments": {}}))
        .await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(
        answer["result"]["content"][0]["text"].as_str().unwrap_or_default().contains("no-such-tool"),
        "{answer}"
    );

    // Prompts and resources (fixed and templated) are forwarded too.
    let (_, answer) = gateway
        .modern(
            "everything",
            None,
            "prompts/get",
            json!({"name": "args-prompt", "arguments": {"city": "Lyon"}}),
        )
        .await;
    let text = answer["result"]["messages"][0]["content"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("Lyon"), "{answer}");
    let (_, answer) = gateway
        .modern("everything", None, "resources/read", json!({"uri": "demo://resource/dynamic/text/7"}))
        .await;
    assert_eq!(answer["result"]["contents"][0]["uri"], "demo://resource/dynamic/text/7", "{answer}");
    let (_, answer) = gateway.modern("everything", None, "resources/templates/list", json!({})).await;
    let templates = answer["result"]["resourceTemplates"].as_array().map(Vec::len).unwrap_or_default();
    assert!(templates >= 2, "{answer}");

    // 2025-11-25 session: progress from the upstream streams through.
    let session = Session::open(&gateway.url("everything")).await;
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 3},
        "_meta": {"progressToken": "p"}}});
    let messages = all_messages(session.post(&call).await).await;
    let progress: Vec<&Value> =
        messages.iter().filter(|m| m["method"] == "notifications/progress").map(|m| &m["params"]).collect();
    assert_eq!(progress.len(), 3, "{messages:?}");
    assert_eq!(
        (progress[2]["progressToken"].clone(), progress[2]["progress"].clone()),
        (json!("p"), json!(3))
    );
    let last = messages.last().expect("a response");
    assert_eq!(last["id"], 5);
    assert!(
        last["result"]["content"][0]["text"].as_str().unwrap_or_default().contains("completed"),
        "{last}"
    );

    // 2024-11-05 HTTP+SSE, beside the upstream's endpoint.
    let mut stream = gateway
        .client
        .get(format!("{}/everything/sse", gateway.origin))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(stream.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first).to_string();
    let endpoint =
        first.lines().find_map(|l| l.strip_prefix("data: ")).expect("the endpoint event").to_owned();
    assert!(endpoint.starts_with("/everything/messages?sessionId="), "{endpoint}");
    let post = |body: Value| gateway.client.post(format!("{}{endpoint}", gateway.origin)).json(&body).send();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "old", "version": "0"}}});
    assert_eq!(post(init).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get-sum", "arguments": {"a": 2, "b": 3}}});
    assert_eq!(post(call).await.unwrap().status(), StatusCode::ACCEPTED);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"id\":2") {
        assert!(Instant::now() < deadline, "no answer on the SSE stream: {seen}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("events")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("The sum of 2 and 3 is 5"), "{seen}");
}

#[tokio::test]
async fn streamable_http_and_sse_upstreams_are_reached_too() {
    let http = everything_over("streamableHttp").await;
    let sse = everything_over("sse").await;
    let upstreams = format!(
        "[app.upstreams.modern]\nurl = \"http://127.0.0.1:{}/mcp\"\n\
         [app.upstreams.legacy]\nurl = \"http://127.0.0.1:{}/sse\"\ntransport = \"sse\"\n",
        http.port, sse.port
    );
    let gateway = start_gateway(&upstreams, "").await;
    for upstream in ["modern", "legacy"] {
        let names = gateway.tool_names(upstream, None).await;
        assert!(names.contains(&"echo".to_owned()), "{upstream}: {names:?}");
        let (status, answer) = gateway
            .modern(upstream, None, "tools/call", json!({"name": "echo", "arguments": {"message": upstream}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{upstream}: {answer}");
        assert_eq!(answer["result"]["content"][0]["text"], format!("Echo: {upstream}"), "{upstream}");
    }
}

#[tokio::test]
async fn a_killed_stdio_upstream_fails_its_call_and_the_next_call_succeeds_after_the_restart() {
    let marker = format!("kill-test-{}", std::process::id());
    let gateway = start_gateway(&stdio_upstream("everything", &marker), "").await;
    gateway.tool_names("everything", None).await;
    let long = gateway.modern(
        "everything",
        None,
        "tools/call",
        json!({"name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 2}}),
    );
    let kill = async {
        // The call is on its way to the upstream (its tools are listed, so it is connected).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = Command::new("pkill").args(["-f", &marker]).status().await.expect("pkill runs");
        assert!(status.success(), "the upstream process was found and killed");
    };
    let ((status, answer), ()) = tokio::join!(long, kill);
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "a JSON-RPC error for the call in flight: {answer}");
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("went away"), "{answer}");
    // Restarted with back-off: the next call succeeds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, answer) = gateway
            .modern(
                "everything",
                None,
                "tools/call",
                json!({"name": "echo", "arguments": {"message": "back"}}),
            )
            .await;
        if answer["result"]["content"][0]["text"] == "Echo: back" {
            break;
        }
        assert!(Instant::now() < deadline, "the upstream did not come back: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stalled_http_upstream_times_out_while_another_upstream_answers() {
    let stalling = recording_upstream().await;
    let upstreams = format!(
        "[app.upstreams.slow]\nurl = {:?}\ntimeout_secs = 1\n{}",
        stalling.url,
        stdio_upstream("fast", "stall-test-other")
    );
    let gateway = start_gateway(&upstreams, "").await;
    gateway.tool_names("slow", None).await;
    gateway.tool_names("fast", None).await;
    // The upstream takes the POST and never answers it.
    let stalled = gateway.modern("slow", None, "tools/call", json!({"name": "stall", "arguments": {}}));
    let other = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        gateway
            .modern("fast", None, "tools/call", json!({"name": "echo", "arguments": {"message": "ok"}}))
            .await
    };
    let ((_, stalled), (_, other)) = tokio::join!(stalled, other);
    assert_eq!(stalled["error"]["code"], -32603, "{stalled}");
    assert!(
        stalled["error"]["message"].as_str().unwrap_or_default().contains("did not answer within"),
        "{stalled}"
    );
    assert_eq!(other["result"]["content"][0]["text"], "Echo: ok", "{other}");
    // The stalled upstream still serves the next call.
    let (_, again) =
        gateway.modern("slow", None, "tools/call", json!({"name": "hello", "arguments": {}})).await;
    assert_eq!(again["result"]["content"][0]["text"], "hello", "{again}");
}

#[tokio::test]
async fn tokens_are_checked_per_upstream_resource_and_scope() {
    let port = free_port().await;
    let origin = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(
        &format!("{origin}/everything/mcp"),
        &[("OIDC_EXTRA_RESOURCES", &format!("{origin}/other/mcp"))],
    )
    .await;
    let upstreams = format!(
        "{}scopes = [\"notes:read\"]\n[app.upstreams.everything.tools.echo]\nscopes = [\"notes:write\"]\n{}{}",
        stdio_upstream("everything", "auth-test"),
        stdio_upstream("other", "auth-test-other"),
        "allowed_users = [\"rs-short\"]\n"
    );
    let extra = format!(
        "[auth]\nmode = \"resource_server\"\n[auth.resource_server]\nissuer = \"{}\"\nallow_insecure_http = true\n",
        provider.issuer
    );
    let gateway = start_gateway_on(port, &upstreams, &extra).await;

    // No token: 401, naming this upstream's own metadata.
    let (status, _) = gateway.modern("everything", None, "tools/list", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = gateway.client.post(gateway.url("everything")).json(&json!({})).send().await.unwrap();
    let challenge = challenge.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{origin}/.well-known/oauth-protected-resource/everything/mcp\""
        )),
        "{challenge}"
    );
    let metadata: Value = gateway
        .client
        .get(format!("{origin}/.well-known/oauth-protected-resource/everything/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], format!("{origin}/everything/mcp"));

    // A token for the other upstream's resource: 401 here. There, only its
    // allowed user gets in; another valid token gets 403.
    let for_other = provider.client_credentials("rs-test", &format!("{origin}/other/mcp")).await;
    let (status, _) = gateway.modern("everything", Some(&for_other), "tools/list", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = gateway.modern("other", Some(&for_other), "tools/list", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "rs-test is not an allowed user of other: {answer}");
    let allowed = provider.client_credentials("rs-short", &format!("{origin}/other/mcp")).await;
    assert!(!gateway.tool_names("other", Some(&allowed)).await.is_empty());

    // The right resource: a scope for the upstream as a whole, and one more per tool.
    let resource = format!("{origin}/everything/mcp");
    let read = provider.client_credentials_with_scope("rs-test", &resource, Some("notes:read")).await;
    let sum = json!({"name": "get-sum", "arguments": {"a": 1, "b": 1}});
    let (status, answer) = gateway.modern("everything", Some(&read), "tools/call", sum.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["result"]["content"][0]["text"].as_str().unwrap_or_default().contains("is 2"), "{answer}");
    let echo = json!({"name": "echo", "arguments": {"message": "x"}});
    let (status, answer) = gateway.modern("everything", Some(&read), "tools/call", echo.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "echo needs notes:write too: {answer}");
    let names = gateway.tool_names("everything", Some(&read)).await;
    assert!(!names.contains(&"echo".to_owned()), "a tool the token may not call is not listed: {names:?}");
    let write = provider.client_credentials_with_scope("rs-test", &resource, Some("notes:write")).await;
    let (status, _) = gateway.modern("everything", Some(&write), "tools/call", sum).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "every tool of the upstream needs notes:read");
    let both =
        provider.client_credentials_with_scope("rs-test", &resource, Some("notes:read notes:write")).await;
    let (status, answer) = gateway.modern("everything", Some(&both), "tools/call", echo).await;
    assert_eq!((status, answer["result"]["content"][0]["text"].clone()), (StatusCode::OK, json!("Echo: x")));
}

/// [`start_gateway`] on a given port (the provider must know the resource URL first).
async fn start_gateway_on(port: u16, upstreams: &str, extra: &str) -> Gateway {
    let origin = format!("http://127.0.0.1:{port}");
    let dir = TempDir::new();
    let config = dir.join("gateway.toml");
    let text =
        format!("[server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"{origin}\"\n{extra}\n{upstreams}\n");
    std::fs::write(&config, text).expect("the config is written");
    let child = Command::new(gateway_binary())
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(logs())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway starts");
    wait_for_port(port, "the gateway").await;
    Gateway { _child: child, _dir: dir, origin, client: Client::new() }
}

/// An upstream of our own (a server of this framework) that records the
/// headers of every request it gets, answers a `tools/call` of the tool
/// `garbage` with a body that is not JSON, and never answers one of `stall`.
struct RecordingUpstream {
    url: String,
    headers: std::sync::Arc<std::sync::Mutex<Vec<reqwest::header::HeaderMap>>>,
}

async fn recording_upstream() -> RecordingUpstream {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::middleware::Next;
    use mcp_server::core::types::CallToolResult;
    use mcp_server::tool::ToolRoute;

    let headers = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let schema = json!({"type": "object"}).as_object().cloned().unwrap_or_default();
    let server = mcp_server::Server::new("recording", "1.0.0")
        .tool(ToolRoute::new("hello", schema.clone(), |_call| async { CallToolResult::text("hello") }))
        .tool(ToolRoute::new("garbage", schema.clone(), |_call| async {
            CallToolResult::text("unreachable")
        }))
        .tool(ToolRoute::new("stall", schema, |_call| async { CallToolResult::text("unreachable") }));
    let seen = headers.clone();
    let record = move |request: Request, next: Next| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("the header log").push(request.headers().clone());
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            if String::from_utf8_lossy(&bytes).contains(r#""name":"stall""#) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if String::from_utf8_lossy(&bytes).contains(r#""name":"garbage""#) {
                return axum::response::Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from("this is not JSON"))
                    .expect("a response");
            }
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
    };
    let app = axum::Router::new()
        .route_service("/mcp", server.streamable_http())
        .layer(axum::middleware::from_fn(record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    RecordingUpstream { url, headers }
}

#[tokio::test]
async fn the_clients_token_never_reaches_the_upstream_and_garbage_is_a_clear_error() {
    let port = free_port().await;
    let origin = format!("http://127.0.0.1:{port}");
    let provider = OidcProvider::start(&format!("{origin}/recorded/mcp"), &[]).await;
    let upstream = recording_upstream().await;
    let upstreams = format!(
        "[app.upstreams.recorded]\nurl = {:?}\nheaders = {{ \"X-Upstream-Key\" = \"configured-key\" }}\n\
         identity_header = \"X-Forwarded-User\"\n",
        upstream.url
    );
    let extra = format!(
        "[auth]\nmode = \"resource_server\"\n[auth.resource_server]\nissuer = \"{}\"\nallow_insecure_http = true\n",
        provider.issuer
    );
    let gateway = start_gateway_on(port, &upstreams, &extra).await;
    let token = provider.client_credentials("rs-test", &format!("{origin}/recorded/mcp")).await;
    gateway.tool_names("recorded", Some(&token)).await;
    let (status, answer) = gateway
        .modern("recorded", Some(&token), "tools/call", json!({"name": "hello", "arguments": {}}))
        .await;
    assert_eq!((status, answer["result"]["content"][0]["text"].clone()), (StatusCode::OK, json!("hello")));

    let seen = upstream.headers.lock().expect("the header log").clone();
    assert!(!seen.is_empty());
    for headers in &seen {
        assert!(
            headers.get("authorization").is_none(),
            "the upstream saw an Authorization header: {headers:?}"
        );
        assert!(!format!("{headers:?}").contains(&token), "the token reached the upstream");
        assert_eq!(headers["x-upstream-key"], "configured-key", "the configured credential is sent");
    }
    // Asked for, the caller's subject goes with its calls, and only with them.
    let forwarded: Vec<&str> =
        seen.iter().filter_map(|h| h.get("x-forwarded-user").and_then(|v| v.to_str().ok())).collect();
    assert_eq!(forwarded, ["rs-test"], "one call, one forwarded identity");

    // An answer that is not JSON: a JSON-RPC error that says so.
    let (status, answer) = gateway
        .modern("recorded", Some(&token), "tools/call", json!({"name": "garbage", "arguments": {}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("not JSON"), "{answer}");
    // The upstream still serves everyone.
    let (_, answer) = gateway
        .modern("recorded", Some(&token), "tools/call", json!({"name": "hello", "arguments": {}}))
        .await;
    assert_eq!(answer["result"]["content"][0]["text"], "hello");
}

#[tokio::test]
async fn the_readme_filesystem_server_behind_github_login() {
    use mcp_tests::upstream::{
        GitHubOAuth, Http, OAuthClient, ServerSpec, StandIn, authorize_and_consent, callback,
        error_for_client, github_login, standin_login,
    };
    let filesystem = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("gateway/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    assert!(filesystem.exists(), "{} is missing: run `npm ci` in tests/gateway", filesystem.display());
    let standin = StandIn::start().await;
    let dir = TempDir::new();
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).expect("the docs folder");
    std::fs::write(docs.join("hello.txt"), "hello from the docs").expect("a document");
    // The README's config as it is, pointed at the stand-in, a memory store, and the
    // installed filesystem server serving `docs`.
    let config =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mcp-gateway/config/filesystem-github.toml");
    let spec = ServerSpec {
        config: Some(config),
        env: standin.server_env(),
        cwd: dir.0.clone(),
        port: free_port().await,
    }
    .env("MCP_AUTH__AUTHORIZATION_SERVER__STORE", "memory")
    .env("MCP_APP__UPSTREAMS__FS__COMMAND", "node")
    .env(
        "MCP_APP__UPSTREAMS__FS__ARGS",
        format!("[{:?}, {:?}]", filesystem.display().to_string(), docs.display().to_string()),
    );
    let server = GitHubOAuth::start_program(&gateway_binary(), "/fs/mcp", &spec).await;
    let http = Http::new();
    let client = OAuthClient::register(&http, &server).await;
    assert_eq!(client.resource, format!("{}/fs/mcp", server.origin));

    // octocat is allowed: signs in with GitHub and reads a document through the gateway.
    let tokens = github_login(&http, &server, &client, "octocat").await;
    let path = docs.join("hello.txt").display().to_string();
    let params =
        json!({"name": "read_text_file", "arguments": {"path": path}, "_meta": modern_meta(json!({}))});
    let read = http
        .post(&server.url)
        .bearer_auth(&tokens.access)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "read_text_file")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}));
    let seen = http.send(read).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert!(seen.body.contains("hello from the docs"), "{}", seen.body);

    // hubot is not in allowed_users: GitHub lets them in, the gateway does not.
    let at = authorize_and_consent(&http, &server, &client).await;
    let back = standin_login(&http, &at, Some("hubot")).await;
    let seen = callback(&http, &back, Some(&at.jar)).await;
    error_for_client(&seen, &client.issuer, "access_denied");
}

// The upstream runs in this process: on threads of its own, it answers while this test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_org_members_reach_their_upstream_which_gets_their_github_token_not_ours() {
    use mcp_tests::upstream::{GitHubOAuth, Http, OAuthClient, ServerSpec, StandIn, github_login};
    let standin = StandIn::start().await;
    let upstream = recording_upstream().await;
    let dir = TempDir::new();
    // `club` admits members of octocat's private organization and sends each caller's own
    // GitHub token; `open` admits every signed-in user and sends nothing of theirs.
    let config = dir.join("gateway.toml");
    let text = format!(
        "[auth]\nmode = \"authorization_server\"\n[auth.authorization_server]\nlogin = \"github\"\n\
         store = \"memory\"\nsealing_key_file = \"seal.key\"\n\
         [app.upstreams.club]\nurl = {url:?}\nallowed_orgs = [\"Octo-Secret-Club\"]\nlogin_token = true\n\
         [app.upstreams.open]\nurl = {url:?}\n",
        url = upstream.url
    );
    std::fs::write(&config, text).expect("the config is written");
    let spec = ServerSpec {
        config: Some(config),
        env: standin.server_env(),
        cwd: dir.0.clone(),
        port: free_port().await,
    };
    let server = GitHubOAuth::start_program(&gateway_binary(), "/club/mcp", &spec).await;
    let (http, client) = (Http::new(), Client::new());
    let registered = OAuthClient::register(&http, &server).await;
    let hello = json!({"name": "hello", "arguments": {}});

    // octocat belongs to the organization (privately: the gateway asked GitHub for read:org).
    let octocat = github_login(&http, &server, &registered, "octocat").await;
    let claims = mcp_tests::upstream::jwt_payload(&octocat.access);
    assert_eq!(
        claims["orgs"],
        json!(["Octo-Secret-Club"]),
        "only the organizations a policy names: {claims}"
    );
    let seen_before = upstream.headers.lock().expect("the header log").len();
    let (status, answer) =
        modern(&client, &server.url, Some(&octocat.access), "tools/call", hello.clone()).await;
    assert_eq!(
        (status, answer["result"]["content"][0]["text"].clone()),
        (StatusCode::OK, json!("hello")),
        "{answer}"
    );
    let seen = upstream.headers.lock().expect("the header log")[seen_before..].to_vec();
    let sent: Vec<&str> = seen.iter().filter_map(|h| h.get("authorization")?.to_str().ok()).collect();
    assert_eq!(sent.len(), 1, "the call, and only the call, carries a credential: {seen:?}");
    let github_token = sent[0].strip_prefix("Bearer ").expect("a bearer token");
    assert_ne!(github_token, octocat.access, "our own token is never forwarded");
    // It is octocat's token at GitHub: GitHub's API says whose it is.
    let me = http
        .get(&format!("{}/user", standin.url))
        .bearer_auth(github_token)
        .header("user-agent", "mcp-tests");
    let me = http.send(me).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(serde_json::from_str::<Value>(&me.body).expect("JSON")["login"], "octocat");

    // hubot signs in (GitHub admits everyone here) but belongs to no such organization.
    let hubot = github_login(&http, &server, &registered, "hubot").await;
    let (status, _) = modern(&client, &server.url, Some(&hubot.access), "tools/call", hello.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A token for `open` lets hubot use that one, and it gets no GitHub token of theirs.
    let open_url = format!("{}/open/mcp", server.origin);
    let for_open = OAuthClient { resource: open_url.clone(), ..registered.clone() };
    let hubot_open = github_login(&http, &server, &for_open, "hubot").await;
    let seen_before = upstream.headers.lock().expect("the header log").len();
    let (status, answer) = modern(&client, &open_url, Some(&hubot_open.access), "tools/call", hello).await;
    assert_eq!(
        (status, answer["result"]["content"][0]["text"].clone()),
        (StatusCode::OK, json!("hello")),
        "{answer}"
    );
    let seen = upstream.headers.lock().expect("the header log")[seen_before..].to_vec();
    assert!(seen.iter().all(|h| h.get("authorization").is_none()), "{seen:?}");
}

#[tokio::test]
async fn an_upstreams_elicitation_reaches_the_client_of_its_call_over_streamable_http() {
    // Over Streamable HTTP, the upstream's question comes on the stream of the
    // call it belongs to, so the gateway knows whose client to ask.
    let upstream = everything_over("streamableHttp").await;
    let config = format!("[app.upstreams.everything]\nurl = \"http://127.0.0.1:{}/mcp\"\n", upstream.port);
    elicitation_reaches_the_client_of_its_call(&config).await;
}

#[tokio::test]
async fn an_upstreams_elicitation_reaches_the_client_of_its_only_call_over_stdio() {
    // Over stdio nothing ties the question to a call; with one call in flight
    // it can only be that call's.
    elicitation_reaches_the_client_of_its_call(&stdio_upstream("everything", "elicit-stdio")).await;
}

#[tokio::test]
async fn an_upstreams_elicitation_reaches_the_client_of_its_only_call_over_legacy_sse() {
    let upstream = everything_over("sse").await;
    let config = format!(
        "[app.upstreams.everything]\nurl = \"http://127.0.0.1:{}/sse\"\ntransport = \"sse\"\n",
        upstream.port
    );
    elicitation_reaches_the_client_of_its_call(&config).await;
}

#[tokio::test]
async fn an_unmarked_elicitation_with_two_calls_in_flight_is_refused_not_guessed() {
    let gateway = start_gateway(&stdio_upstream("everything", "elicit-ambiguous"), "").await;
    wait_for_tool(&gateway, "trigger-elicitation-request").await;
    // A long call keeps a second request in flight while the question is asked.
    let long = gateway.modern(
        "everything",
        None,
        "tools/call",
        json!({"name": "trigger-long-running-operation", "arguments": {"duration": 3, "steps": 3}}),
    );
    let asking = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        gateway
            .modern(
                "everything",
                None,
                "tools/call",
                json!({"name": "trigger-elicitation-request", "arguments": {},
                       "_meta": modern_meta(json!({"elicitation": {"form": {}}}))}),
            )
            .await
    };
    let ((long_status, long_answer), (status, answer)) = tokio::join!(long, asking);
    assert_eq!(long_status, StatusCode::OK, "{long_answer}");
    assert_eq!(long_answer["result"]["resultType"], "complete", "{long_answer}");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(answer["result"]["resultType"], "input_required", "no client was asked: {answer}");
    assert!(answer.to_string().contains("cannot tell which"), "the upstream was refused: {answer}");
}

/// Waits until a modern `tools/list` through the gateway offers `tool` of `everything`.
async fn wait_for_tool(gateway: &Gateway, tool: &str) {
    wait_for_upstream_tool(gateway, "everything", tool).await;
}

/// server-everything's `trigger-elicitation-request`, through a gateway in
/// front of the upstream `config` describes, answered by a 2025-11-25 client
/// in its session and by a 2026-07-28 client as an input round.
async fn elicitation_reaches_the_client_of_its_call(config: &str) {
    let gateway = start_gateway(config, "").await;
    // Registered once the upstream knows its client can elicit, then listed anew.
    wait_for_tool(&gateway, "trigger-elicitation-request").await;
    // A 2025-11-25 client that can answer elicitations.
    let client = Client::new();
    let url = gateway.url("everything");
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {"form": {}}},
        "clientInfo": {"name": "asker", "version": "0"}}});
    let post = |session: Option<&str>, body: &Value| {
        let request = client.post(&url).header("accept", "application/json, text/event-stream").json(body);
        match session {
            Some(id) => request.header("mcp-session-id", id).header("mcp-protocol-version", "2025-11-25"),
            None => request,
        }
    };
    let response = post(None, &init).send().await.expect("initialize");
    let session = response.headers()["mcp-session-id"].to_str().expect("ASCII").to_owned();
    post(Some(&session), &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .expect("notifications/initialized");

    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trigger-elicitation-request", "arguments": {}}});
    let mut stream = post(Some(&session), &call).send().await.expect("tools/call");
    assert_eq!(stream.status(), StatusCode::OK);
    // The upstream's question arrives on this call's stream...
    let mut seen = String::new();
    let question = loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event")
            .expect("a readable stream");
        let Some(chunk) = chunk else { panic!("the stream ended before a question: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
        let found = seen
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m["method"] == "elicitation/create");
        if let Some(question) = found {
            break question;
        }
    };
    assert!(
        question["params"]["message"].as_str().unwrap_or_default().contains("Please provide"),
        "{question}"
    );
    // ...the client answers it, and the upstream's result carries the answer.
    let answer = json!({"jsonrpc": "2.0", "id": question["id"], "result": {
        "action": "accept", "content": {"name": "Ada Lovelace", "check": true}}});
    assert_eq!(
        post(Some(&session), &answer).send().await.expect("the answer is posted").status(),
        StatusCode::ACCEPTED
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"id\":7") {
        assert!(Instant::now() < deadline, "no result: {seen}");
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("events")
            .expect("a readable stream");
        match chunk {
            Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            None => break,
        }
    }
    assert!(seen.contains("Ada Lovelace"), "the upstream saw the client's answer: {seen}");

    // A 2026-07-28 client: the question comes back as an input round, and the
    // call runs again with the answer.
    let call = |extra: Value| {
        let mut params = json!({"name": "trigger-elicitation-request", "arguments": {},
            "_meta": modern_meta(json!({"elicitation": {"form": {}}}))});
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            params[key] = value;
        }
        client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "trigger-elicitation-request")
            .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": params}))
            .send()
    };
    let first = last_message(call(json!({})).await.expect("round one")).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let question = &first["result"]["inputRequests"]["upstream-1"];
    assert_eq!(question["method"], "elicitation/create", "{first}");
    let state = first["result"]["requestState"].clone();
    let answers = json!({"upstream-1": {"action": "accept", "content": {"name": "Grace Hopper"}}});
    let second = last_message(
        call(json!({"inputResponses": answers, "requestState": state})).await.expect("round two"),
    )
    .await;
    assert_eq!(second["result"]["resultType"], "complete", "{second}");
    assert!(second.to_string().contains("Grace Hopper"), "{second}");
}

/// This framework's conformance server over Streamable HTTP on a fresh
/// port, as an upstream whose tools log on their call's own stream.
async fn conformance_server() -> (tokio::process::Child, u16) {
    let port = free_port().await;
    let child = Command::new(mcp_tests::example_path("conformance-server"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(logs())
        .stderr(logs())
        .kill_on_drop(true)
        .spawn()
        .expect("the conformance server starts");
    wait_for_port(port, "the conformance server").await;
    (child, port)
}

#[tokio::test]
async fn an_upstreams_log_messages_during_a_call_reach_that_calls_client_under_its_level() {
    let (_upstream, port) = conformance_server().await;
    let config = format!("[app.upstreams.conf]\nurl = \"http://127.0.0.1:{port}/mcp\"\n");
    let gateway = start_gateway(&config, "").await;
    wait_for_upstream_tool(&gateway, "conf", "test_tool_with_logging").await;
    let session = Session::open(&gateway.url("conf")).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "test_tool_with_logging", "arguments": {}}});
    let messages = all_messages(session.post(&call).await).await;
    let logged: Vec<&str> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/message")
        .filter_map(|m| m["params"]["data"].as_str())
        .collect();
    assert_eq!(
        logged,
        ["Tool execution started", "Tool processing data", "Tool execution completed"],
        "{messages:?}"
    );
    let answer = messages.last().expect("the answer");
    assert_eq!(answer["id"], 1, "the logs come before the answer: {messages:?}");

    // The client's own level applies: above info, none of them.
    let set_level =
        json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "error"}});
    assert_eq!(session.post(&set_level).await.status(), StatusCode::OK);
    let messages = all_messages(session.post(&call).await).await;
    assert!(messages.iter().all(|m| m["method"] != "notifications/message"), "{messages:?}");
    assert!(messages.iter().any(|m| m["id"] == 1 && m.get("result").is_some()), "{messages:?}");
}

/// Waits until a modern `tools/list` through the gateway offers `tool` of `upstream`.
async fn wait_for_upstream_tool(gateway: &Gateway, upstream: &str, tool: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !gateway.tool_names(upstream, None).await.contains(&tool.to_owned()) {
        assert!(Instant::now() < deadline, "{tool} was never offered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_clients_resource_subscription_is_made_upstream_and_its_updates_reach_that_client() {
    let upstream = everything_over("streamableHttp").await;
    let config = format!("[app.upstreams.everything]\nurl = \"http://127.0.0.1:{}/mcp\"\n", upstream.port);
    let gateway = start_gateway(&config, "").await;
    wait_for_tool(&gateway, "toggle-subscriber-updates").await;
    let session = Session::open(&gateway.url("everything")).await;
    let mut stream = session
        .client
        .get(&session.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("the GET stream");
    assert_eq!(stream.status(), StatusCode::OK);

    let uri = "demo://resource/static/document/architecture.md";
    let subscribe =
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": uri}});
    let answer = last_message(session.post(&subscribe).await).await;
    assert_eq!(answer["result"], json!({}), "{answer}");
    // server-everything sends its subscribers an update at once and every 5 s once asked to.
    let toggle = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "toggle-subscriber-updates", "arguments": {}}});
    let answer = last_message(session.post(&toggle).await).await;
    assert!(answer.get("result").is_some(), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no resources/updated within 15 s: {seen}"))
            .expect("a readable stream");
        let Some(chunk) = chunk else { panic!("the stream ended: {seen}") };
        seen.push_str(&String::from_utf8_lossy(&chunk));
        let updated = seen
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .any(|m| m["method"] == "notifications/resources/updated" && m["params"]["uri"] == uri);
        if updated {
            break;
        }
    }
}
