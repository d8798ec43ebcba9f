//! End-to-end tests of the HTTP+SSE transport of 2024-11-05 (`GET /sse`,
//! `POST /messages`) over real HTTP on 127.0.0.1, against an in-process
//! server that also serves Streamable HTTP at `/mcp`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mcp_server::Server;
use mcp_server::transport::http::LegacySse;
use mcp_tests::fixtures::{WAITER_STOPPED, add, confirm, wait_forever};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn server() -> Server {
    Server::new("sse-test", "1.0.0").tool(add).tool(confirm).tool(wait_forever)
}

/// Serves `app` on an ephemeral port; returns its base URL (no trailing slash).
async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Streamable HTTP at `/mcp` with `legacy` merged beside it.
async fn start_with(server: &Server, legacy: &LegacySse) -> String {
    let app = axum::Router::new().route_service("/mcp", server.streamable_http()).merge(legacy.router());
    serve(app).await
}

/// A server with the default settings; returns its base URL and the endpoints.
async fn start() -> (String, LegacySse) {
    let server = server();
    let legacy = server.legacy_sse();
    (start_with(&server, &legacy).await, legacy)
}

/// One SSE event: its name (`message` when unnamed) and data.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        assert_eq!(self.name, "message", "expected a message event, got {self:?}");
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// Reads an SSE response block by block, as the bytes arrive.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next block up to a blank line, comments included; `None` at the end.
    async fn next_block(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                return Some(self.buffer.drain(..end + 2).collect());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("a block within 10 s")
                .expect("a readable stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event, skipping comments (keep-alives).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            let block = self.next_block().await?;
            let mut name = "message".to_owned();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    value.clone_into(&mut name);
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push(value);
                }
            }
            if !data.is_empty() {
                assert_eq!(data.len(), 1, "one data line per event: {block:?}");
                return Some(Event { name, data: data[0].to_owned() });
            }
        }
    }

    /// The next `message` event's JSON.
    async fn next_message(&mut self) -> Value {
        self.next_event().await.expect("the stream is open").json()
    }
}

/// Opens `GET {base}/sse`; returns the stream and the endpoint event's data.
async fn open(client: &Client, base: &str, path: &str) -> (Stream, String) {
    let response = client.get(format!("{base}{path}")).send().await.expect("GET");
    let mut stream = Stream::new(response);
    let first = stream.next_event().await.expect("an endpoint event");
    assert_eq!(first.name, "endpoint", "the endpoint event comes first: {first:?}");
    (stream, first.data)
}

async fn post(client: &Client, url: &str, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.expect("POST")
}

/// POSTs `body` and expects it accepted with 202 and no body.
async fn post_accepted(client: &Client, url: &str, body: &Value) {
    let response = post(client, url, body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{body}");
    assert!(response.bytes().await.expect("body").is_empty());
}

/// Initializes the session behind `url` at `version`, reading the response
/// off `stream`; returns the initialize result.
async fn initialize(client: &Client, url: &str, stream: &mut Stream, version: &str, caps: Value) -> Value {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": caps,
        "clientInfo": {"name": "t", "version": "0"}}});
    post_accepted(client, url, &init).await;
    let response = stream.next_message().await;
    assert_eq!(response["id"], 1, "{response}");
    post_accepted(client, url, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    response["result"].clone()
}

#[tokio::test]
async fn a_2024_11_05_session_lists_and_calls_tools_over_the_stream() {
    let (base, legacy) = start().await;
    let client = Client::new();
    let (mut stream, endpoint) = open(&client, &base, "/sse").await;
    let id = endpoint.strip_prefix("/messages?sessionId=").expect("the conventional endpoint");
    assert_eq!(id.len(), 64);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(legacy.session_count(), 1);
    let url = format!("{base}{endpoint}");

    let result = initialize(&client, &url, &mut stream, "2024-11-05", json!({})).await;
    assert_eq!(result["protocolVersion"], "2024-11-05");
    assert_eq!(result["serverInfo"]["name"], "sse-test");

    post_accepted(&client, &url, &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let list = stream.next_message().await;
    assert_eq!(list["id"], 2);
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["add", "confirm", "wait_forever"]);

    let call = json!({"jsonrpc": "2.0", "id": "c", "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
    post_accepted(&client, &url, &call).await;
    let result = stream.next_message().await;
    assert_eq!(result["id"], "c", "request ids keep their type");
    assert_eq!(result["result"]["content"][0]["text"], "5", "{result}");
    assert_ne!(result["result"]["isError"], true);

    // A second stream is a second, independent session.
    let (_other, other_endpoint) = open(&client, &base, "/sse").await;
    assert_ne!(other_endpoint, endpoint);
    assert_eq!(legacy.session_count(), 2);
}

#[tokio::test]
async fn requests_before_initialize_are_refused_on_the_stream() {
    let (base, _legacy) = start().await;
    let client = Client::new();
    let (mut stream, endpoint) = open(&client, &base, "/sse").await;
    let url = format!("{base}{endpoint}");
    post_accepted(&client, &url, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    let error = stream.next_message().await;
    assert_eq!(error["id"], 1);
    assert_eq!(error["error"]["code"], -32600);
    // ping works at any time.
    post_accepted(&client, &url, &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await;
    assert_eq!(stream.next_message().await, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

#[tokio::test]
async fn message_post_rejections() {
    let (base, _legacy) = start().await;
    let client = Client::new();
    let (_stream, endpoint) = open(&client, &base, "/sse").await;
    let url = format!("{base}{endpoint}");
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    let unknown = post(&client, &format!("{base}/messages?sessionId={}", "0".repeat(64)), &ping).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = post(&client, &format!("{base}/messages"), &ping).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let empty = post(&client, &format!("{base}/messages?sessionId="), &ping).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);

    let malformed = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1,")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let error: Value = malformed.json().await.expect("a JSON-RPC error body");
    assert_eq!(error["error"]["code"], -32700);
    assert_eq!(error["id"], Value::Null);

    let invalid = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":"x","method":42}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let error: Value = invalid.json().await.expect("a JSON-RPC error body");
    assert_eq!(error["error"]["code"], -32600);
    assert_eq!(error["id"], "x");

    let batch = post(&client, &url, &json!([ping])).await;
    assert_eq!(batch.status(), StatusCode::BAD_REQUEST);

    let wrong_type =
        client.post(&url).header("content-type", "text/plain").body(ping.to_string()).send().await.unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(5 << 20));
    let oversized =
        client.post(&url).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let get_messages = client.get(&url).send().await.unwrap();
    assert_eq!(get_messages.status(), StatusCode::METHOD_NOT_ALLOWED);
    let post_sse = post(&client, &format!("{base}/sse"), &ping).await;
    assert_eq!(post_sse.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn disconnecting_ends_the_session_and_cancels_its_requests() {
    let (base, legacy) = start().await;
    let client = Client::new();
    let (mut stream, endpoint) = open(&client, &base, "/sse").await;
    let url = format!("{base}{endpoint}");
    initialize(&client, &url, &mut stream, "2024-11-05", json!({})).await;

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "wait_forever", "arguments": {}, "_meta": {"progressToken": "p"}}});
    post_accepted(&client, &url, &call).await;
    let progress = stream.next_message().await;
    assert_eq!(progress["method"], "notifications/progress");
    assert_eq!(progress["params"]["progressToken"], "p");
    assert!(!WAITER_STOPPED.load(Ordering::SeqCst));
    assert_eq!(legacy.session_count(), 1);

    drop(stream);
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    for _ in 0..250 {
        let status = post(&client, &url, &ping).await.status();
        if status == StatusCode::NOT_FOUND {
            assert_eq!(legacy.session_count(), 0);
            for _ in 0..100 {
                if WAITER_STOPPED.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the handler kept running after the stream closed");
        }
        assert_eq!(status, StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the session outlived its stream");
}

#[tokio::test]
async fn elicitation_goes_out_on_the_stream_and_its_answer_comes_by_post() {
    let (base, _legacy) = start().await;
    let client = Client::new();
    let (mut stream, endpoint) = open(&client, &base, "/sse").await;
    let url = format!("{base}{endpoint}");
    // Elicitation arrived in 2025-06-18; SSE clients of that era (the
    // TypeScript SDK's SSEClientTransport) negotiate it over this transport.
    let caps = json!({"elicitation": {}});
    let result = initialize(&client, &url, &mut stream, "2025-06-18", caps).await;
    assert_eq!(result["protocolVersion"], "2025-06-18");

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "confirm"}});
    post_accepted(&client, &url, &call).await;
    let ask = stream.next_message().await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    assert_eq!(ask["params"]["message"], "Proceed?");
    assert!(ask.get("id").is_some_and(|id| !id.is_null()));

    let answer =
        json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"ok": true}}});
    post_accepted(&client, &url, &answer).await;
    let result = stream.next_message().await;
    assert_eq!(result["id"], 2);
    assert_eq!(result["result"]["content"][0]["text"], "\"accept\"", "{result}");
}

#[tokio::test]
async fn list_changed_notifications_reach_the_stream() {
    let server = server();
    let legacy = server.legacy_sse();
    let base = start_with(&server, &legacy).await;
    let client = Client::new();
    let (mut stream, endpoint) = open(&client, &base, "/sse").await;
    let url = format!("{base}{endpoint}");
    initialize(&client, &url, &mut stream, "2024-11-05", json!({})).await;
    server.remove_tool("add");
    let note = stream.next_message().await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
}

#[tokio::test]
async fn sessions_beyond_the_cap_get_503() {
    let server = server();
    let legacy = server.legacy_sse().with_max_sessions(1);
    let base = start_with(&server, &legacy).await;
    let client = Client::new();
    let (first, _) = open(&client, &base, "/sse").await;
    let refused = client.get(format!("{base}/sse")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(legacy.session_count(), 1);

    drop(first);
    for _ in 0..250 {
        if legacy.session_count() == 0 {
            let (_again, _) = open(&client, &base, "/sse").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed session still counts against the cap");
}

#[tokio::test]
async fn the_endpoint_follows_where_the_router_is_mounted() {
    let server = server();
    let nested = server.legacy_sse();
    let rewritten = server.legacy_sse().with_endpoint_prefix("/");
    let app = axum::Router::new()
        .route_service("/mcp", server.streamable_http())
        .nest("/legacy", nested.router())
        .nest("/proxied", rewritten.router());
    let base = serve(app).await;
    let client = Client::new();

    let (mut stream, endpoint) = open(&client, &base, "/legacy/sse").await;
    assert!(endpoint.starts_with("/legacy/messages?sessionId="), "{endpoint}");
    let url = format!("{base}{endpoint}");
    post_accepted(&client, &url, &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    assert_eq!(stream.next_message().await["id"], 1);

    // A proxy that strips /proxied: the client must POST to /messages.
    let (_stream, endpoint) = open(&client, &base, "/proxied/sse").await;
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let server = server();
    let legacy = server.legacy_sse().with_keep_alive(Duration::from_millis(50));
    let base = start_with(&server, &legacy).await;
    let client = Client::new();
    let (mut stream, _) = open(&client, &base, "/sse").await;
    let block = stream.next_block().await.expect("the stream is open");
    assert_eq!(block, ": keep-alive\n\n");
}

#[tokio::test]
async fn close_all_ends_every_stream() {
    let (base, legacy) = start().await;
    let client = Client::new();
    let (mut first, _) = open(&client, &base, "/sse").await;
    let (mut second, endpoint) = open(&client, &base, "/sse").await;
    legacy.close_all();
    assert_eq!(legacy.session_count(), 0);
    assert!(first.next_event().await.is_none(), "the first stream ends");
    assert!(second.next_event().await.is_none(), "the second stream ends");
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(post(&client, &format!("{base}{endpoint}"), &ping).await.status(), StatusCode::NOT_FOUND);
}
