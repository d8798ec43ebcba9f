//! End-to-end tests of the Streamable HTTP transport over real HTTP on
//! 127.0.0.1, against an in-process server: both eras, header checks,
//! sessions and the transport's own rejections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcp_server::{Context, Server, tool};
use mcp_tests::fixtures::{WAITER_STOPPED, add, confirm, wait_forever};
use mcp_tests::modern_meta;
use mcp_tests::sse::Sse;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Reports progress twice, then answers.
#[tool]
async fn with_progress(ctx: Context) -> &'static str {
    ctx.progress(1.0, Some(2.0), None).await;
    ctx.progress(2.0, Some(2.0), None).await;
    "done"
}

static QUIET_WAITER_STOPPED: AtomicBool = AtomicBool::new(false);

struct SetQuietOnDrop;

impl Drop for SetQuietOnDrop {
    fn drop(&mut self) {
        QUIET_WAITER_STOPPED.store(true, Ordering::SeqCst);
    }
}

/// Waits until cancelled, sending nothing.
#[tool]
async fn wait_quietly(ctx: Context) -> &'static str {
    let _stopped = SetQuietOnDrop;
    ctx.cancellation_token().cancelled().await;
    "cancelled"
}

/// A legacy initialize body declaring `capabilities`.
fn initialize(capabilities: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": capabilities,
        "clientInfo": {"name": "t", "version": "0"}}})
}

/// Starts a server on an ephemeral port; returns the endpoint URL.
async fn start() -> String {
    start_server().await.0
}

/// Starts a server on an ephemeral port; returns the endpoint URL and the server.
async fn start_server() -> (String, Server) {
    let server = Server::new("http-test", "1.0.0")
        .tool(add)
        .tool(with_progress)
        .tool(confirm)
        .tool(wait_forever)
        .tool(wait_quietly);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let router = axum::Router::new().route_service("/mcp", server.streamable_http());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/mcp"), server)
}

/// A modern POST with all the headers the 2026-07-28 wire requires.
fn modern(client: &Client, url: &str, id: i64, method: &str, mut params: Value) -> RequestBuilder {
    params["_meta"] = modern_meta(json!({}));
    let mut builder = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        builder = builder.header("mcp-name", name);
    }
    builder.json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
}

fn legacy(client: &Client, url: &str, session: Option<&str>, body: Value) -> RequestBuilder {
    let builder = client.post(url).header("accept", "application/json, text/event-stream").json(&body);
    match session {
        Some(id) => builder.header("mcp-session-id", id),
        None => builder,
    }
}

/// The JSON-RPC messages of an answer, whether JSON or SSE.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let sse =
        response.headers()["content-type"].to_str().expect("content type").starts_with("text/event-stream");
    let text = response.text().await.expect("body");
    if !sse {
        return vec![serde_json::from_str(&text).expect("JSON body")];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("JSON event"))
        .collect()
}

async fn single(response: reqwest::Response) -> Value {
    let mut all = messages(response).await;
    assert_eq!(all.len(), 1, "expected one message, got {all:?}");
    all.remove(0)
}

#[tokio::test]
async fn modern_discover_and_tool_call_are_answered_with_json() {
    let url = start().await;
    let client = Client::new();
    let response = modern(&client, &url, 1, "server/discover", json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().get("mcp-session-id").is_none());
    let body = single(response).await;
    assert_eq!(body["id"], 1);
    assert_eq!(body["result"]["resultType"], "complete");
    assert!(body["result"]["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));

    let call = json!({"name": "add", "arguments": {"a": 2, "b": 3}});
    let response = modern(&client, &url, 2, "tools/call", call).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = single(response).await;
    assert_eq!(body["result"]["structuredContent"], json!({"result": 5}));
}

#[tokio::test]
async fn modern_notifications_before_the_result_make_an_sse_stream() {
    let url = start().await;
    let client = Client::new();
    let mut params = json!({"name": "with_progress", "arguments": {}});
    params["_meta"] = modern_meta(json!({}));
    params["_meta"]["progressToken"] = json!("p1");
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let response = client
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?d2l0aF9wcm9ncmVzcw==?=")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let all = messages(response).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0]["method"], "notifications/progress");
    assert_eq!(all[1]["params"]["progress"], 2.0);
    assert_eq!(all[2]["id"], 7, "the response comes last");
    assert_eq!(all[2]["result"]["content"][0]["text"], "done");
}

#[tokio::test]
async fn modern_header_errors_are_400_with_the_request_id() {
    let url = start().await;
    let client = Client::new();

    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": modern_meta(json!({}))}});
    let response = client
        .post(&url)
        .header("mcp-protocol-version", "2026-01-01")
        .header("mcp-method", "tools/list")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = single(response).await;
    assert_eq!(error["error"]["code"], -32020);
    assert_eq!(error["id"], 3);

    let method_mismatch = client
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("Mcp-Method", "  prompts/list ")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(method_mismatch.status(), StatusCode::BAD_REQUEST);
    assert_eq!(single(method_mismatch).await["error"]["code"], -32020);

    let name_missing = client
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "add", "arguments": {"a": 1, "b": 1}, "_meta": modern_meta(json!({}))}}))
        .send()
        .await
        .unwrap();
    assert_eq!(name_missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(single(name_missing).await["error"]["code"], -32020);

    let no_meta = client
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_meta.status(), StatusCode::BAD_REQUEST);
    let error = single(no_meta).await;
    assert_eq!(error["error"]["code"], -32602);
    assert_eq!(error["id"], 5);
}

#[tokio::test]
async fn modern_unsupported_version_is_32022_with_the_supported_list() {
    let url = start().await;
    let mut meta = modern_meta(json!({}));
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2030-01-01");
    let response = Client::new()
        .post(&url)
        .header("mcp-protocol-version", "2030-01-01")
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": {"_meta": meta}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = single(response).await;
    assert_eq!(error["error"]["code"], -32022);
    assert!(error["error"]["data"]["supported"].as_array().unwrap().contains(&json!("2026-07-28")));
}

#[tokio::test]
async fn modern_unknown_and_legacy_only_methods_are_404_32601() {
    let url = start().await;
    let client = Client::new();
    for (id, method) in [(8, "no/such/method"), (9, "ping"), (10, "initialize")] {
        let response = modern(&client, &url, id, method, json!({})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
        let error = single(response).await;
        assert_eq!(error["error"]["code"], -32601);
        assert_eq!(error["id"], id);
    }
}

#[tokio::test]
async fn legacy_session_lifecycle() {
    let url = start().await;
    let client = Client::new();
    let response = legacy(&client, &url, None, initialize(json!({}))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    assert!(session.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    assert_eq!(single(response).await["result"]["protocolVersion"], "2025-06-18");

    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = legacy(&client, &url, Some(&session), initialized).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let response = legacy(&client, &url, Some(&session), list.clone())
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tools = single(response).await;
    assert_eq!(tools["result"]["tools"][0]["name"], "add");

    let missing = legacy(&client, &url, None, list.clone()).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);

    let deleted = client.delete(&url).header("mcp-session-id", &session).send().await.unwrap();
    assert!(deleted.status().is_success());
    let gone = legacy(&client, &url, Some(&session), list).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn transport_rejections() {
    let url = start().await;
    let client = Client::new();

    let malformed = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", \"id\": 1,")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let error = single(malformed).await;
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
    let error = single(invalid).await;
    assert_eq!(error["error"]["code"], -32600);
    assert_eq!(error["id"], "x");

    let wrong_type = client
        .post(&url)
        .header("content-type", "text/plain")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(5 << 20));
    let oversized =
        client.post(&url).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn legacy_elicitation_travels_on_the_post_stream_and_its_answer_on_a_later_post() {
    let url = start().await;
    let client = Client::new();
    let response = legacy(&client, &url, None, initialize(json!({"elicitation": {}}))).send().await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    legacy(&client, &url, Some(&session), initialized).send().await.unwrap();

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "confirm"}});
    let response = legacy(&client, &url, Some(&session), call).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Sse::new(response);
    let ask = events.next_message().await.unwrap();
    assert_eq!(ask["method"], "elicitation/create");

    let answer =
        json!({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"ok": true}}});
    let posted = legacy(&client, &url, Some(&session), answer).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::ACCEPTED);

    let result = events.next_message().await.unwrap();
    assert_eq!(result["id"], 2);
    assert_eq!(result["result"]["content"][0]["text"], "\"accept\"");
    assert!(events.next_message().await.is_none(), "the stream ends after the response");
}

#[tokio::test]
async fn legacy_get_stream_carries_list_changed() {
    let (url, server) = start_server().await;
    let client = Client::new();
    let response = legacy(&client, &url, None, initialize(json!({}))).send().await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();

    let get = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let mut events = Sse::new(get);
    // The stream subscribes when the response is built; give the server a moment anyway.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.remove_tool("add");
    let note = events.next_message().await.unwrap();
    assert_eq!(note["method"], "notifications/tools/list_changed");

    let deleted = client.delete(&url).header("mcp-session-id", &session).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(events.next_message().await.is_none(), "ending the session closes its GET stream");

    let unknown = client.get(&url).header("mcp-session-id", "nope").send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn closing_a_modern_stream_cancels_the_request() {
    let url = start().await;
    let client = Client::new();
    let mut params = json!({"name": "wait_forever", "arguments": {}});
    params["_meta"] = modern_meta(json!({}));
    params["_meta"]["progressToken"] = json!(1);
    let response = client
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "wait_forever")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        .send()
        .await
        .unwrap();
    let mut events = Sse::new(response);
    assert_eq!(events.next_message().await.unwrap()["method"], "notifications/progress");
    assert!(!WAITER_STOPPED.load(Ordering::SeqCst));
    drop(events);
    for _ in 0..100 {
        if WAITER_STOPPED.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the handler kept running after the stream closed");
}

#[tokio::test]
async fn a_client_gone_before_any_output_cancels_a_modern_request() {
    let url = start().await;
    let mut params = json!({"name": "wait_quietly", "arguments": {}});
    params["_meta"] = modern_meta(json!({}));
    let request = Client::new()
        .post(&url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "wait_quietly")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}));
    let pending = tokio::spawn(request.send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!QUIET_WAITER_STOPPED.load(Ordering::SeqCst));
    pending.abort();
    for _ in 0..100 {
        if QUIET_WAITER_STOPPED.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the handler kept running after the client went away");
}
