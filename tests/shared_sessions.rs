//! Legacy sessions shared by two servers through one Redis (a throwaway
//! `redis-server`, see `mcp_tests::redis`), over real HTTP on 127.0.0.1:
//! each request of a 2025-11-25 session goes to the server the test picks,
//! alternating, as a round-robin load balancer without sticky routing would
//! send them. Progress and elicitation round trips, resumption with
//! `Last-Event-ID` on the other server, list changes reaching a `GET` stream
//! held by the other server, the end of a session, and Redis going away.

use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use mcp_server::transport::http::{HttpOptions, StreamableHttp};
use mcp_server::{Context, Identity, Server, tool};
use mcp_tests::redis::TestRedis;
use mcp_tests::sse::{Event, Sse};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Reports progress three times, 100 ms apart, then answers.
#[tool]
async fn steps(ctx: Context) -> &'static str {
    for step in 1..=3 {
        ctx.progress(f64::from(step), Some(3.0), None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    "steps done"
}

/// Asks the client for a word and answers with it.
#[tool]
async fn ask(ctx: Context) -> Result<String, mcp_server::ask::AskError> {
    let schema = json!({"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]});
    let Value::Object(schema) = schema else { unreachable!("an object") };
    let params = mcp_server::core::types::ElicitRequestParams::form("A word?", schema);
    let answer = ctx.elicit("word", params).await?;
    let word = answer.content.and_then(|c| c.get("word").cloned()).unwrap_or(Value::Null);
    Ok(format!("the word is {word}"))
}

/// A tool added while clients listen.
#[tool]
async fn extra() -> &'static str {
    "extra"
}

/// One of the servers: its URL, its `Server` (to change its tools) and its endpoint.
struct Instance {
    url: String,
    server: Server,
    endpoint: StreamableHttp,
}

/// Who the test's requests run as: the `x-test-user` header names the
/// subject, as an auth layer would put it on the request.
async fn as_test_user(mut request: axum::extract::Request) -> axum::extract::Request {
    let user = request.headers().get("x-test-user").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(user) = user {
        request.extensions_mut().insert(Arc::new(Identity::new(user)));
    }
    request
}

/// Two servers sharing sessions through one Redis, and a client.
struct Pair {
    redis: TestRedis,
    servers: [Instance; 2],
    client: Client,
}

async fn instance(redis_url: &str) -> Instance {
    instance_with(redis_url, HttpOptions::default()).await
}

async fn instance_with(redis_url: &str, options: HttpOptions) -> Instance {
    let server = Server::new("shared-sessions-test", "1.0.0").tool(steps).tool(ask);
    let options = options.redis(redis_url, "test").expect("a redis url");
    let endpoint = StreamableHttp::with_options(server.clone(), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).expect("TCP_NODELAY"));
    let legacy = server.legacy_sse().with_redis(redis_url, "test:sse").expect("a redis url");
    let router = axum::Router::new()
        .route_service("/mcp", endpoint.clone())
        .merge(legacy.router())
        .layer(axum::middleware::map_request(as_test_user));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Instance { url: format!("http://{addr}/mcp"), server, endpoint }
}

/// The keys under the tests' prefix in `redis`.
async fn keys(redis: &TestRedis) -> Vec<String> {
    let client = redis::Client::open(redis.url()).expect("a redis url");
    let mut connection = client.get_multiplexed_async_connection().await.expect("a redis connection");
    redis::cmd("KEYS").arg("test:*").query_async(&mut connection).await.expect("KEYS")
}

async fn pair() -> Pair {
    let redis = TestRedis::start().expect("a Redis server (scripts/setup.sh installs redis-server)");
    let servers = [instance(&redis.url()).await, instance(&redis.url()).await];
    Pair { redis, servers, client: Client::new() }
}

fn call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}, "_meta": {"progressToken": format!("p{id}")}}})
}

impl Pair {
    /// A POST to server `to`, in `session` when given.
    fn post(&self, to: usize, session: Option<&str>, body: &Value) -> RequestBuilder {
        let builder = self
            .client
            .post(&self.servers[to].url)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        match session {
            Some(id) => builder.header("mcp-session-id", id),
            None => builder,
        }
    }

    /// A GET on `session` at server `to`, resuming after `last_event_id` when given.
    fn get(&self, to: usize, session: &str, last_event_id: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .get(&self.servers[to].url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session);
        match last_event_id {
            Some(id) => builder.header("last-event-id", id),
            None => builder,
        }
    }

    /// `initialize` on server `to`, `notifications/initialized` on the other.
    async fn open(&self, to: usize) -> String {
        let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"elicitation": {"form": {}}},
            "clientInfo": {"name": "t", "version": "0"}}});
        let response = self.post(to, None, &initialize).send().await.expect("initialize");
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"].to_str().expect("a session id").to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.post(1 - to, Some(&session), &initialized).send().await.expect("initialized");
        assert_eq!(response.status(), StatusCode::ACCEPTED, "the other server knows the session");
        session
    }

    /// A call on server `to`, answered with an SSE stream.
    async fn stream(&self, to: usize, session: &str, body: &Value) -> Sse {
        Sse::new(self.post(to, Some(session), body).send().await.expect("a call"))
    }
}

/// The messages of `events` (the priming event has none).
fn messages(events: &[Event]) -> Vec<Value> {
    events.iter().filter(|e| e.data.as_deref().is_some_and(|d| !d.is_empty())).map(Event::message).collect()
}

fn progress_of(messages: &[Value]) -> Vec<f64> {
    messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| m["params"]["progress"].as_f64().expect("a progress value"))
        .collect()
}

fn text_of(message: &Value) -> &str {
    message["result"]["content"][0]["text"].as_str().expect("a text result")
}

/// The sequence number of an event id (`<stream>-<seq>`).
fn seq(event: &Event) -> u64 {
    let id = event.id.as_deref().expect("an event id");
    id.rsplit_once('-').expect("<stream>-<seq>").1.parse().expect("a number")
}

#[tokio::test]
async fn a_session_whose_posts_alternate_servers_gets_its_progress_and_elicitations() {
    let p = pair().await;
    let session = p.open(0).await;

    for (round, to) in [1, 0, 1].into_iter().enumerate() {
        let id = i64::try_from(round).expect("small") + 1;
        let events = p.stream(to, &session, &call(id, "steps")).await.rest().await;
        let messages = messages(&events);
        assert_eq!(progress_of(&messages), [1.0, 2.0, 3.0], "server {to}: {messages:?}");
        let last = messages.last().expect("an answer");
        assert_eq!(last["id"], id);
        assert_eq!(text_of(last), "steps done");
    }

    // The tool on server 0 asks; the answer is POSTed to server 1.
    for (asker, answerer, word) in [(0, 1, "blue"), (1, 0, "green")] {
        let mut sse = p.stream(asker, &session, &call(10, "ask")).await;
        let request = sse.next_message().await.expect("the elicitation request");
        assert_eq!(request["method"], "elicitation/create");
        let answer = json!({"jsonrpc": "2.0", "id": request["id"],
            "result": {"action": "accept", "content": {"word": word}}});
        let response = p.post(answerer, Some(&session), &answer).send().await.expect("the answer");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let rest = messages(&sse.rest().await);
        let last = rest.last().expect("the tool's answer");
        assert_eq!(last["id"], 10);
        assert_eq!(text_of(last), format!("the word is \"{word}\""));
    }
}

#[tokio::test]
async fn server_requests_of_two_servers_never_share_an_id() {
    let p = pair().await;
    let session = p.open(0).await;
    let mut ids = Vec::new();
    let mut streams = Vec::new();
    for to in [0, 1] {
        let mut sse = p.stream(to, &session, &call(20 + i64::try_from(to).expect("small"), "ask")).await;
        let request = sse.next_message().await.expect("the elicitation request");
        ids.push(request["id"].clone());
        streams.push(sse);
    }
    assert_ne!(ids[0], ids[1], "both servers' first request to the client");
    // Each answer, POSTed to the other server, reaches the one that asked.
    for (to, id) in ids.iter().enumerate() {
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"action": "accept", "content": {"word": format!("w{to}")}}});
        let response = p.post(1 - to, Some(&session), &answer).send().await.expect("the answer");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    for (to, sse) in streams.into_iter().enumerate() {
        let rest = messages(&sse.rest().await);
        assert_eq!(text_of(rest.last().expect("an answer")), format!("the word is \"w{to}\""));
    }
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_on_the_other_server_loses_no_event() {
    let p = pair().await;
    let session = p.open(0).await;

    // Progress: the connection to server 0 breaks after the first notification.
    let mut sse = p.stream(0, &session, &call(1, "steps")).await;
    let priming = sse.next().await.expect("the priming event");
    assert_eq!(seq(&priming), 0);
    let first = sse.next().await.expect("the first progress");
    assert_eq!(progress_of(&[first.message()]), [1.0]);
    drop(sse);
    let resumed = Sse::new(p.get(1, &session, first.id.as_deref()).send().await.expect("a resuming GET"));
    let events = resumed.rest().await;
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    assert_eq!(seqs, [2, 3, 4], "every event after the first, once, in order");
    let messages = messages(&events);
    assert_eq!(progress_of(&messages), [2.0, 3.0]);
    assert_eq!(text_of(&messages[2]), "steps done");
    assert!(events.iter().all(|e| e.stream() == first.stream()));

    // Elicitation: the resuming GET on server 1 follows the stream live while
    // the tool on server 0 still waits for its answer.
    let mut sse = p.stream(0, &session, &call(2, "ask")).await;
    let _priming = sse.next().await.expect("the priming event");
    let request = sse.next().await.expect("the elicitation request");
    drop(sse);
    let resumed = Sse::new(p.get(1, &session, request.id.as_deref()).send().await.expect("a resuming GET"));
    let answer = json!({"jsonrpc": "2.0", "id": request.message()["id"],
        "result": {"action": "accept", "content": {"word": "late"}}});
    let response = p.post(1, Some(&session), &answer).send().await.expect("the answer");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let events = resumed.rest().await;
    assert_eq!(events.iter().map(seq).collect::<Vec<_>>(), [seq(&request) + 1]);
    assert_eq!(text_of(&events[0].message()), "the word is \"late\"");
}

#[tokio::test]
async fn a_change_on_one_server_reaches_the_get_stream_held_by_the_other() {
    let p = pair().await;
    let session = p.open(0).await;
    let mut standalone = Sse::new(p.get(0, &session, None).send().await.expect("a GET"));
    let priming = standalone.next().await.expect("the priming event");
    // Server 0 has subscribed to the notes once its GET answered; give the
    // subscription a moment to reach Redis, then change server 1's tools.
    tokio::time::sleep(Duration::from_millis(200)).await;
    p.servers[1].server.add_tool(extra);
    let changed = standalone.next().await.expect("a notification");
    assert_eq!(changed.message()["method"], "notifications/tools/list_changed");
    assert_eq!(seq(&changed), seq(&priming) + 1);
    drop(standalone);

    // The stream moves to server 1, resuming after the last event seen;
    // numbering goes on after server 0's, past a gap.
    let mut moved = Sse::new(p.get(1, &session, changed.id.as_deref()).send().await.expect("a resuming GET"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(p.servers[0].server.remove_tool("steps"));
    let next = moved.next().await.expect("a notification");
    assert_eq!(next.message()["method"], "notifications/tools/list_changed");
    assert!(seq(&next) > seq(&changed), "{} after {}", seq(&next), seq(&changed));
    assert_eq!(next.stream(), changed.stream(), "the same standalone stream");
}

#[tokio::test]
async fn a_session_ended_on_one_server_is_gone_on_the_other() {
    let p = pair().await;
    let session = p.open(0).await;
    let ping = json!({"jsonrpc": "2.0", "id": 5, "method": "ping"});
    assert_eq!(p.post(1, Some(&session), &ping).send().await.expect("ping").status(), StatusCode::OK);
    // A stream whose events went to Redis.
    let events = p.stream(1, &session, &call(6, "steps")).await.rest().await;
    assert_eq!(progress_of(&messages(&events)), [1.0, 2.0, 3.0]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(keys(&p.redis).await.iter().any(|k| k.contains(":events:")), "{:?}", keys(&p.redis).await);
    let response = p.client.delete(&p.servers[1].url).header("mcp-session-id", &session).send().await;
    assert_eq!(response.expect("DELETE").status(), StatusCode::NO_CONTENT);
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = p.post(0, Some(&session), &ping).send().await.expect("ping").status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND, "the server that opened it ended it too");
    let left = keys(&p.redis).await;
    assert!(left.iter().all(|k| !k.contains(&session)), "the record and the events are gone: {left:?}");
}

#[tokio::test]
async fn a_session_copied_to_another_server_still_answers_only_its_owner() {
    let p = pair().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let response =
        p.post(0, None, &initialize).header("x-test-user", "alice").send().await.expect("initialize");
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"].to_str().expect("a session id").to_owned();
    let third = instance(&p.redis.url()).await;
    let ping = json!({"jsonrpc": "2.0", "id": 5, "method": "ping"});
    let post = |user: Option<&'static str>| {
        let builder = p.client.post(&third.url).header("accept", "application/json, text/event-stream");
        let builder = builder.header("mcp-session-id", &session).json(&ping);
        match user {
            Some(user) => builder.header("x-test-user", user),
            None => builder,
        }
    };
    for intruder in [Some("mallory"), None] {
        let response = post(intruder).send().await.expect("ping");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{intruder:?}");
    }
    assert_eq!(third.endpoint.session_count(), 0, "no copy made for another principal");
    assert_eq!(post(Some("alice")).send().await.expect("ping").status(), StatusCode::OK);
    assert_eq!(third.endpoint.session_count(), 1);
}

#[tokio::test]
async fn a_get_stream_longer_than_the_idle_timeout_keeps_the_session_alive_everywhere() {
    let redis = TestRedis::start().expect("a Redis server");
    let idle = Duration::from_millis(400);
    let options = || HttpOptions::default().idle_timeout(idle).keep_alive(None);
    let servers =
        [instance_with(&redis.url(), options()).await, instance_with(&redis.url(), options()).await];
    let p = Pair { redis, servers, client: Client::new() };
    let session = p.open(0).await;
    let mut standalone = Sse::new(p.get(0, &session, None).send().await.expect("a GET"));
    let _priming = standalone.next().await.expect("the priming event");
    // Nothing but the open stream for four idle timeouts: server 1's copy is
    // reaped, and only server 0's stream keeps the session in use.
    tokio::time::sleep(idle * 4).await;
    assert_eq!(p.servers[1].endpoint.session_count(), 0, "server 1's idle copy was reaped");
    let ping = json!({"jsonrpc": "2.0", "id": 5, "method": "ping"});
    let response = p.post(1, Some(&session), &ping).send().await.expect("ping");
    assert_eq!(response.status(), StatusCode::OK, "the record outlived the idle timeout");
    drop(standalone);
}

#[tokio::test]
async fn while_redis_is_down_a_session_held_elsewhere_gets_503_and_its_own_server_serves_it() {
    let mut p = pair().await;
    let session = p.open(0).await;
    p.redis.stop();
    let ping = json!({"jsonrpc": "2.0", "id": 5, "method": "ping"});
    // Server 1 copied the session at `notifications/initialized`: it serves it still.
    assert_eq!(p.post(1, Some(&session), &ping).send().await.expect("ping").status(), StatusCode::OK);
    assert_eq!(p.post(0, Some(&session), &ping).send().await.expect("ping").status(), StatusCode::OK);
    // A third server never saw it: it cannot tell whether the session exists.
    let third = instance(&p.redis.url()).await;
    let response = p.client.post(&third.url).header("accept", "application/json, text/event-stream");
    let response = response.header("mcp-session-id", &session).json(&ping).send().await.expect("ping");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("a JSON-RPC error");
    assert_eq!(body["id"], 5);
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("try again")));
}

#[tokio::test]
async fn http_sse_messages_posted_to_the_other_server_reach_the_stream() {
    let p = pair().await;
    let origin = |to: usize| p.servers[to].url.trim_end_matches("/mcp").to_owned();
    let get = p.client.get(format!("{}/sse", origin(0))).header("x-test-user", "alice").send().await;
    let mut stream = Sse::new(get.expect("GET /sse"));
    let endpoint = stream.next().await.expect("the endpoint event").data.expect("a URL");
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");
    let post = |user: &'static str, body: Value| {
        p.client.post(format!("{}{endpoint}", origin(1))).header("x-test-user", user).json(&body).send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "old", "version": "0"}}});
    assert_eq!(post("alice", initialize).await.expect("initialize").status(), StatusCode::ACCEPTED);
    let answer = stream.next_message().await.expect("the initialize answer");
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post("alice", initialized).await.expect("initialized").status(), StatusCode::ACCEPTED);

    // Progress and the answer of a call POSTed to server 1 arrive on server 0's stream.
    assert_eq!(post("alice", call(2, "steps")).await.expect("a call").status(), StatusCode::ACCEPTED);
    let mut seen = Vec::new();
    while seen.last().is_none_or(|m: &Value| m["id"] != 2) {
        seen.push(stream.next_message().await.expect("a message"));
    }
    assert_eq!(progress_of(&seen), [1.0, 2.0, 3.0]);
    assert_eq!(text_of(seen.last().expect("the answer")), "steps done");

    // An elicitation: asked on server 0's stream, answered through server 1.
    assert_eq!(post("alice", call(3, "ask")).await.expect("a call").status(), StatusCode::ACCEPTED);
    let request = stream.next_message().await.expect("the elicitation request");
    assert_eq!(request["method"], "elicitation/create");
    let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": {"action": "accept", "content": {"word": "old"}}});
    assert_eq!(post("alice", reply).await.expect("the answer").status(), StatusCode::ACCEPTED);
    let answer = stream.next_message().await.expect("the tool's answer");
    assert_eq!(answer["id"], 3);
    assert_eq!(text_of(&answer), "the word is \"old\"");

    // Another principal, or an unknown session, gets 404 there.
    let ping = json!({"jsonrpc": "2.0", "id": 4, "method": "ping"});
    assert_eq!(post("mallory", ping.clone()).await.expect("ping").status(), StatusCode::NOT_FOUND);
    let unknown = format!("{}/messages?sessionId={}", origin(1), "0".repeat(64));
    let response = p.client.post(unknown).header("x-test-user", "alice").json(&ping).send().await;
    assert_eq!(response.expect("ping").status(), StatusCode::NOT_FOUND);

    // The stream closed, its record goes: the session is gone on the other server too.
    drop(stream);
    let mut status = StatusCode::ACCEPTED;
    for _ in 0..100 {
        status = post("alice", ping.clone()).await.expect("ping").status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND);
}
