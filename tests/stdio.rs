//! End-to-end tests of the stdio transport against the conformance example,
//! speaking raw JSON-RPC lines: framing errors, both protocol eras,
//! cancellation, batching and shutdown.

use std::time::Duration;

use mcp_tests::{StdioServer, modern_meta};
use serde_json::{Value, json};

const SERVER: &str = "conformance-server";

fn error_code(response: &Value) -> i64 {
    response["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {response}"))
}

#[tokio::test]
async fn malformed_input_gets_precise_errors_and_the_server_keeps_serving() {
    let mut server = StdioServer::start(SERVER);
    server.send_raw("{\"jsonrpc\": \"2.0\", \"id\": 1, ").await;
    let parse_error = server.recv().await.unwrap();
    assert_eq!(error_code(&parse_error), -32700);
    assert_eq!(parse_error["id"], Value::Null);

    server.send_raw(r#"{"jsonrpc":"2.0","id":"x","method":42}"#).await;
    let invalid = server.recv().await.unwrap();
    assert_eq!(error_code(&invalid), -32600);
    assert_eq!(invalid["id"], "x", "the id is echoed when it can be read");

    let init = server.initialize("2025-06-18", json!({})).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let ping = server.request(2, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
}

#[tokio::test]
async fn requests_before_initialize_are_refused_except_ping() {
    let mut server = StdioServer::start(SERVER);
    let refused = server.request(1, "tools/list", json!({})).await;
    assert_eq!(error_code(&refused), -32600);
    let ping = server.request(2, "ping", json!({})).await;
    assert_eq!(ping["result"], json!({}));
}

#[tokio::test]
async fn initialize_negotiates_versions() {
    let mut server = StdioServer::start(SERVER);
    let init = server.initialize("1999-01-01", json!({})).await;
    assert_eq!(
        init["result"]["protocolVersion"], "2025-11-25",
        "an unknown version gets the newest legacy one"
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-conformance-test-server");
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);
    let again = server.request(1, "initialize", json!({
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}
    })).await;
    assert_eq!(error_code(&again), -32600, "a second initialize is refused");
}

#[tokio::test]
async fn ids_keep_their_type() {
    let mut server = StdioServer::start(SERVER);
    server.initialize("2025-11-25", json!({})).await;
    server.send(json!({"jsonrpc": "2.0", "id": "7", "method": "ping"})).await;
    let (response, _) = server.response_to(json!("7")).await;
    assert_eq!(response["id"], json!("7"));
    assert_eq!(server.request(7, "ping", json!({})).await["id"], json!(7));
}

#[tokio::test]
async fn cancelled_requests_get_no_response() {
    let mut server = StdioServer::start(SERVER);
    server.initialize("2025-11-25", json!({"elicitation": {}})).await;
    let call = json!({"name": "test_elicitation", "arguments": {"message": "wait"}});
    server.send(json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": call})).await;
    let asked = server.recv().await.unwrap();
    assert_eq!(asked["method"], "elicitation/create", "the tool asks the client first");
    server
        .send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5, "reason": "test"}}))
        .await;
    // Answering the elicitation after the cancellation must not revive the request.
    server.send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"action": "cancel"}})).await;
    let (ping, before) = server.response_to_ping(6).await;
    assert_eq!(ping["result"], json!({}));
    assert!(
        before.iter().all(|m| m.get("id") != Some(&json!(5))),
        "no response for a cancelled request: {before:?}"
    );
}

trait PingExt {
    async fn response_to_ping(&mut self, id: i64) -> (Value, Vec<Value>);
}

impl PingExt for StdioServer {
    async fn response_to_ping(&mut self, id: i64) -> (Value, Vec<Value>) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"})).await;
        self.response_to(json!(id)).await
    }
}

#[tokio::test]
async fn end_of_input_stops_the_server_promptly_even_mid_request() {
    let mut server = StdioServer::start(SERVER);
    server.initialize("2025-11-25", json!({"elicitation": {}})).await;
    let call = json!({"name": "test_elicitation", "arguments": {"message": "never answered"}});
    server.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})).await;
    assert_eq!(server.recv().await.unwrap()["method"], "elicitation/create");
    server.close_stdin();
    let status = server.wait(Duration::from_secs(3)).await.expect("the server exits within 3 s of EOF");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn batches_are_served_only_for_2025_03_26() {
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/progress","params":{}}]"#;

    let mut old = StdioServer::start(SERVER);
    old.initialize("2025-03-26", json!({})).await;
    old.send_raw(batch).await;
    let replies = old.recv().await.unwrap();
    let replies = replies.as_array().expect("a batch is answered with an array");
    let mut ids: Vec<_> = replies.iter().map(|r| r["id"].clone()).collect();
    ids.sort_by_key(|v| v.as_i64());
    assert_eq!(ids, [json!(1), json!(2)], "notifications in a batch get no reply");

    let mut new = StdioServer::start(SERVER);
    new.initialize("2025-06-18", json!({})).await;
    new.send_raw(batch).await;
    let refused = new.recv().await.unwrap();
    assert_eq!(error_code(&refused), -32600);
}

#[tokio::test]
async fn legacy_resource_not_found_is_32002() {
    let mut server = StdioServer::start(SERVER);
    server.initialize("2025-11-25", json!({})).await;
    let missing = server.request(1, "resources/read", json!({"uri": "test://nope"})).await;
    assert_eq!(error_code(&missing), -32002);
    assert_eq!(missing["error"]["data"]["uri"], "test://nope");
}

#[tokio::test]
async fn modern_requests_are_stateless_and_decorated() {
    let mut server = StdioServer::start(SERVER);
    let discover = server.request(1, "server/discover", json!({"_meta": modern_meta(json!({}))})).await;
    let result = &discover["result"];
    assert_eq!(result["resultType"], "complete");
    assert!(result["supportedVersions"].as_array().unwrap().contains(&json!("2026-07-28")));
    assert!(result["ttlMs"].as_u64().is_some());
    assert_eq!(result["cacheScope"], "public");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "mcp-conformance-test-server");

    let call = json!({"name": "test_simple_text", "_meta": modern_meta(json!({}))});
    let simple = server.request(2, "tools/call", call).await;
    assert_eq!(simple["result"]["resultType"], "complete");
    assert!(simple["result"].get("ttlMs").is_none(), "tool results are not cacheable");

    let missing = server
        .request(3, "resources/read", json!({"uri": "test://nope", "_meta": modern_meta(json!({}))}))
        .await;
    assert_eq!(error_code(&missing), -32602, "2026-07-28 reports a missing resource as invalid params");
    for legacy_only in ["ping", "logging/setLevel", "initialize", "resources/subscribe"] {
        let refused = server.request(4, legacy_only, json!({"_meta": modern_meta(json!({}))})).await;
        assert_eq!(error_code(&refused), -32601, "{legacy_only} does not exist in 2026-07-28");
    }
}

#[tokio::test]
async fn modern_meta_is_validated() {
    let mut server = StdioServer::start(SERVER);
    let no_caps = json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
    assert_eq!(error_code(&server.request(1, "server/discover", no_caps).await), -32602);
    let future = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2099-01-01",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    let unsupported = server.request(2, "server/discover", future).await;
    assert_eq!(error_code(&unsupported), -32022);
    assert_eq!(unsupported["error"]["data"]["requested"], "2099-01-01");
    assert!(unsupported["error"]["data"]["supported"].as_array().unwrap().contains(&json!("2026-07-28")));
}

fn modern_call(tool: &str, extra: Value) -> Value {
    let mut params = json!({"name": tool, "arguments": {}, "_meta": modern_meta(json!({"elicitation": {}, "sampling": {}, "roots": {}}))});
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    params
}

#[tokio::test]
async fn multi_round_input_is_carried_in_sealed_state() {
    let mut server = StdioServer::start(SERVER);
    let tool = "test_input_required_result_multi_round";
    let round1 = server.request(1, "tools/call", modern_call(tool, json!({}))).await["result"].clone();
    assert_eq!(round1["resultType"], "input_required");
    assert_eq!(round1["inputRequests"]["step1"]["method"], "elicitation/create");
    let state1 = round1["requestState"].as_str().unwrap().to_owned();

    let answer1 = json!({"inputResponses": {"step1": {"action": "accept", "content": {"name": "Alice"}}}, "requestState": state1});
    let round2 = server.request(2, "tools/call", modern_call(tool, answer1)).await["result"].clone();
    assert_eq!(round2["resultType"], "input_required");
    assert!(round2["inputRequests"].get("step2").is_some());
    let state2 = round2["requestState"].as_str().unwrap().to_owned();
    assert_ne!(state1, state2);

    let answer2 = json!({"inputResponses": {"step2": {"action": "accept", "content": {"color": "blue"}}}, "requestState": state2});
    let done = server.request(3, "tools/call", modern_call(tool, answer2)).await["result"].clone();
    assert_eq!(done["resultType"], "complete");
    assert_eq!(done["content"][0]["text"], "name=\"Alice\", color=\"blue\"");
}

#[tokio::test]
async fn tampered_or_misbound_state_is_rejected() {
    let mut server = StdioServer::start(SERVER);
    let tool = "test_input_required_result_tampered_state";
    let first = server.request(1, "tools/call", modern_call(tool, json!({}))).await["result"].clone();
    let state = first["requestState"].as_str().unwrap().to_owned();
    let ok = json!({"confirm": {"action": "accept", "content": {"ok": true}}});

    let tampered = json!({"inputResponses": ok, "requestState": format!("{state}-TAMPERED")});
    assert_eq!(error_code(&server.request(2, "tools/call", modern_call(tool, tampered)).await), -32602);

    // A state issued for one tool cannot be replayed against another.
    let other = "test_input_required_result_request_state";
    let replayed = json!({"inputResponses": ok, "requestState": state});
    assert_eq!(error_code(&server.request(3, "tools/call", modern_call(other, replayed)).await), -32602);
}

#[tokio::test]
async fn undeclared_capabilities_are_never_assumed() {
    let mut server = StdioServer::start(SERVER);
    let call = json!({"name": "test_missing_capability", "arguments": {}, "_meta": modern_meta(json!({}))});
    let refused = server.request(1, "tools/call", call).await;
    assert_eq!(error_code(&refused), -32021);
    assert_eq!(refused["error"]["data"]["requiredCapabilities"]["sampling"], json!({}));

    let only_sampling = json!({"name": "test_input_required_result_capabilities", "arguments": {}, "_meta": modern_meta(json!({"sampling": {}}))});
    let result = server.request(2, "tools/call", only_sampling).await["result"].clone();
    let methods: Vec<_> =
        result["inputRequests"].as_object().unwrap().values().map(|r| r["method"].clone()).collect();
    assert_eq!(methods, [json!("sampling/createMessage")]);
}

#[tokio::test]
async fn malformed_input_responses_are_invalid_params() {
    let mut server = StdioServer::start(SERVER);
    let bad = json!({"inputResponses": {"user_name": 12345}});
    let response =
        server.request(1, "tools/call", modern_call("test_input_required_result_elicitation", bad)).await;
    assert_eq!(error_code(&response), -32602);
}

#[tokio::test]
async fn modern_logs_flow_only_with_a_log_level() {
    let mut server = StdioServer::start(SERVER);
    let quiet = json!({"name": "test_tool_with_logging", "_meta": modern_meta(json!({}))});
    server.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": quiet})).await;
    let (_, before) = server.response_to(json!(1)).await;
    assert!(before.is_empty(), "no log without logLevel: {before:?}");

    let mut meta = modern_meta(json!({}));
    meta["io.modelcontextprotocol/logLevel"] = json!("info");
    let loud = json!({"name": "test_tool_with_logging", "_meta": meta});
    server.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": loud})).await;
    let (_, before) = server.response_to(json!(2)).await;
    let logs: Vec<_> = before.iter().filter(|m| m["method"] == "notifications/message").collect();
    assert_eq!(logs.len(), 3);
}

#[tokio::test]
async fn list_changes_reach_initialized_clients() {
    let mut server = StdioServer::start(SERVER);
    server.initialize("2025-11-25", json!({})).await;
    server.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_trigger_tool_change"}})).await;
    let mut saw_change = false;
    for _ in 0..2 {
        let message = server.recv().await.unwrap();
        saw_change |= message["method"] == "notifications/tools/list_changed";
    }
    assert!(saw_change, "tools/list_changed arrives");
    let tools = server.request(2, "tools/list", json!({})).await;
    let names: Vec<_> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert!(names.contains(&json!("test_dynamic_tool")));
}

#[tokio::test]
async fn structured_output_is_only_sent_to_clients_that_know_it() {
    let call = json!({"name": "test_structured_content", "arguments": {"city": "Oslo"}});
    for (version, structured) in [("2025-03-26", false), ("2025-06-18", true)] {
        let mut server = StdioServer::start(SERVER);
        server.initialize(version, json!({})).await;
        let tools = server.request(1, "tools/list", json!({})).await;
        let tool = tools["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "test_structured_content")
            .cloned()
            .unwrap();
        assert_eq!(tool.get("outputSchema").is_some(), structured, "{version}");
        let result = server.request(2, "tools/call", call.clone()).await["result"].clone();
        assert_eq!(result.get("structuredContent").is_some(), structured, "{version}");
        assert!(result["content"][0]["text"].as_str().unwrap().contains("Oslo"), "the text block stays");
    }
}
