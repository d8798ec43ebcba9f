//! End-to-end tests of the HTTP application built from configuration: the
//! Host/Origin guard, CORS, the request timeout, bad input, and graceful
//! shutdown of a real server process.

use std::process::Stdio;
use std::time::Duration;

use mcp_server::config::Config;
use mcp_server::{Context, Server, tool};
use mcp_tests::{example_path, modern_meta};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Answers after a pause.
#[tool]
async fn slow(millis: u64) -> String {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    format!("slept {millis} ms")
}

/// Reports progress, then answers.
#[tool]
async fn chatty(ctx: Context) -> &'static str {
    ctx.progress(1.0, Some(1.0), None).await;
    "done"
}

/// Starts the app on a loopback port with these `MCP_*` overrides.
async fn start(overrides: &[(&str, &str)]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    let mut env: Vec<(String, String)> = vec![("MCP_SERVER__BIND".into(), addr.to_string())];
    env.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_sources(None, env).expect("a valid configuration");
    let app =
        Server::new("app-test", "1.0.0").tool(slow).tool(chatty).http_app(&config).expect("the app builds");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

fn discover_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta(json!({}))}})
}

fn modern_post(client: &Client, url: &str, body: &Value) -> reqwest::RequestBuilder {
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = body["params"]["name"].as_str() {
        request = request.header("mcp-name", name);
    }
    request.body(body.to_string())
}

#[tokio::test]
async fn foreign_host_and_origin_are_refused_with_the_setting_to_change() {
    let url = start(&[]).await;
    let client = Client::new();
    let response =
        modern_post(&client, &url, &discover_body()).header("host", "evil.example.com").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Host") && message.contains("http.allowed_hosts"), "{message}");
    assert!(message.contains("MCP_HTTP__ALLOWED_HOSTS"), "{message}");
    assert_eq!(body["id"], Value::Null);

    let response = modern_post(&client, &url, &discover_body())
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("http.allowed_origins"));

    // Loopback origins are fine by default on a loopback bind, and the server kept serving.
    let response = modern_post(&client, &url, &discover_body())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn configured_origins_replace_the_loopback_default() {
    let url =
        start(&[("MCP_HTTP__ALLOWED_ORIGINS", "https://app.example.com"), ("MCP_HTTP__ALLOWED_HOSTS", "*")])
            .await;
    let client = Client::new();
    let allowed = modern_post(&client, &url, &discover_body())
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let refused = modern_post(&client, &url, &discover_body())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cors_preflight_is_answered_and_exposes_mcp_headers() {
    let url = start(&[]).await;
    let client = Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, mcp-protocol-version, mcp-session-id, mcp-param-region",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["authorization", "mcp-protocol-version", "mcp-session-id", "mcp-param-region"] {
        assert!(allowed.contains(header), "{header} not allowed: {allowed}");
    }
    let response = modern_post(&client, &url, &discover_body())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(exposed.contains("mcp-session-id") && exposed.contains("www-authenticate"), "{exposed}");
}

#[tokio::test]
async fn slow_requests_time_out_and_others_are_served() {
    let url = start(&[("MCP_HTTP__REQUEST_TIMEOUT_SECS", "1")]).await;
    let client = Client::new();
    let call = |millis: u64| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "slow", "arguments": {"millis": millis}, "_meta": modern_meta(json!({}))}})
    };
    let too_slow = modern_post(&client, &url, &call(3000)).send().await.unwrap();
    assert_eq!(too_slow.status(), StatusCode::REQUEST_TIMEOUT);
    let quick = modern_post(&client, &url, &call(10)).send().await.unwrap();
    assert_eq!(quick.status(), StatusCode::OK);
    let body: Value = quick.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "slept 10 ms");
}

#[tokio::test]
async fn bad_input_gets_the_named_errors_and_the_server_keeps_serving() {
    let url = start(&[("MCP_HTTP__MAX_BODY_BYTES", "1024")]).await;
    let client = Client::new();
    let post = |body: String, content_type: &str| {
        client
            .post(&url)
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body)
    };
    let malformed = post("{\"jsonrpc\":".into(), "application/json").send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json::<Value>().await.unwrap()["error"]["code"], -32700);

    let wrong_type = post(discover_body().to_string(), "text/plain").send().await.unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let unknown_session =
        post(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string(), "application/json")
            .header("mcp-session-id", "no-such-session")
            .send()
            .await
            .unwrap();
    assert_eq!(unknown_session.status(), StatusCode::NOT_FOUND);

    let ok = modern_post(&client, &url, &discover_body()).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "the server still serves after bad input");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_drains_in_flight_requests_before_exit() {
    let port = mcp_tests::free_port().await;
    let mut child = tokio::process::Command::new(example_path("conformance-server"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let client = Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if modern_post(&client, &url, &discover_body()).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the server started");
    // test_tool_with_logging takes about 100 ms.
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "test_tool_with_logging", "arguments": {}, "_meta": modern_meta(json!({}))}});
    let in_flight = tokio::spawn(modern_post(&client, &url, &call).send());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let response = in_flight.await.unwrap().expect("the in-flight request completes");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("Tool with logging executed successfully"), "{text}");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status:?}");
    assert!(modern_post(&client, &url, &discover_body()).send().await.is_err(), "no longer listening");
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn response_mode_is_chosen_by_configuration() {
    let mut meta = modern_meta(json!({}));
    meta["progressToken"] = json!("p1");
    let chatty_call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "chatty", "arguments": {}, "_meta": meta}});
    let client = Client::new();

    let auto = start(&[]).await;
    let streamed = modern_post(&client, &auto, &chatty_call).send().await.unwrap();
    assert!(content_type(&streamed).starts_with("text/event-stream"), "auto streams when progress is sent");
    let plain = modern_post(&client, &auto, &discover_body()).send().await.unwrap();
    assert!(content_type(&plain).starts_with("application/json"), "auto answers JSON otherwise");

    let json_only = start(&[("MCP_HTTP__RESPONSE_MODE", "json")]).await;
    let answered = modern_post(&client, &json_only, &chatty_call).send().await.unwrap();
    assert!(content_type(&answered).starts_with("application/json"));
    let body: Value = answered.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "done");

    let sse_only = start(&[("MCP_HTTP__RESPONSE_MODE", "sse")]).await;
    let streamed = modern_post(&client, &sse_only, &discover_body()).send().await.unwrap();
    assert!(content_type(&streamed).starts_with("text/event-stream"));
    assert!(streamed.text().await.unwrap().contains("supportedVersions"));
}
