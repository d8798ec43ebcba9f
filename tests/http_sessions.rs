//! End-to-end tests of the legacy session machinery of the Streamable HTTP
//! transport over real HTTP on 127.0.0.1: priming events and `retry`,
//! resumption with `Last-Event-ID`, requests that outlive their connection,
//! polling, batches, the idle timeout and the session cap, the memory of
//! abandoned sessions, and modern `subscriptions/listen` streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt as _;
use mcp_server::prompt::{PromptCall, PromptRoute};
use mcp_server::transport::http::{HttpOptions, InMemoryEventStore, StreamableHttp};
use mcp_server::{Context, Server, tool};
use mcp_tests::modern_meta;
use mcp_tests::sse::{Event, Sse};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::RwLock;

/// The memory test takes this for writing, every other test for reading, so
/// nothing else runs while it measures the process.
static EXCLUSIVE: RwLock<()> = RwLock::const_new(());

/// Adds two numbers.
#[tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Answers after 300 ms, sending nothing before.
#[tool]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "slow done"
}

/// Logs three lines, then answers.
#[tool]
async fn chatty(ctx: Context) -> &'static str {
    for step in 1..=3 {
        ctx.info(format!("step {step}")).await;
    }
    "chatty done"
}

/// A tool added while clients listen.
#[tool]
async fn extra() -> &'static str {
    "extra"
}

struct Harness {
    url: String,
    server: Server,
    endpoint: StreamableHttp,
    client: Client,
}

async fn start(options: HttpOptions) -> Harness {
    let server = Server::new("sessions-test", "1.0.0").tool(add).tool(slow).tool(chatty);
    let endpoint = StreamableHttp::with_options(server.clone(), options);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    // SSE goes out in small writes: without TCP_NODELAY each would wait for an ACK.
    let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).expect("TCP_NODELAY"));
    let router = axum::Router::new().route_service("/mcp", endpoint.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Harness { url: format!("http://{addr}/mcp"), server, endpoint, client: Client::new() }
}

fn initialize(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
}

fn call(id: i64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

impl Harness {
    /// A legacy POST, in `session` when given.
    fn post(&self, session: Option<&str>, body: &Value) -> RequestBuilder {
        let builder =
            self.client.post(&self.url).header("accept", "application/json, text/event-stream").json(body);
        match session {
            Some(id) => builder.header("mcp-session-id", id),
            None => builder,
        }
    }

    /// GET on a session, resuming after `last_event_id` when given.
    fn get(&self, session: &str, last_event_id: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session);
        match last_event_id {
            Some(id) => builder.header("last-event-id", id),
            None => builder,
        }
    }

    /// Opens an initialized session at `version`; returns its id.
    async fn open(&self, version: &str) -> String {
        let response = self.post(None, &initialize(version)).send().await.expect("initialize");
        assert_eq!(response.status(), StatusCode::OK);
        let session = response.headers()["mcp-session-id"].to_str().expect("a visible session id").to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.post(Some(&session), &initialized).send().await.expect("initialized");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        session
    }

    /// A modern `subscriptions/listen` POST.
    fn listen(&self, id: Value, notifications: Value) -> RequestBuilder {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
            "params": {"notifications": notifications, "_meta": modern_meta(json!({}))}});
        self.client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .json(&body)
    }
}

/// Waits until `done` holds, for at most `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test]
async fn a_2025_11_25_stream_opens_with_a_priming_event_and_retry() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default().retry_interval(Duration::from_millis(1500))).await;
    let session = h.open("2025-11-25").await;

    // A fast answer is plain JSON.
    let response = h.post(Some(&session), &call(1, "add", json!({"a": 2, "b": 3}))).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");

    // A slow one becomes a stream that opens with the priming event.
    let response = h.post(Some(&session), &call(2, "slow", json!({}))).send().await.unwrap();
    let events = Sse::new(response).rest().await;
    assert_eq!(events.len(), 2, "{events:?}");
    let priming = &events[0];
    assert!(priming.id.as_deref().is_some_and(|id| id.ends_with("-0")), "{priming:?}");
    assert_eq!(priming.retry, Some(1500));
    assert_eq!(priming.data.as_deref(), Some(""), "the priming event has empty data");
    assert_eq!(events[1].stream(), priming.stream());
    assert!(events[1].id.as_deref().is_some_and(|id| id.ends_with("-1")));
    assert_eq!(events[1].message()["result"]["content"][0]["text"], "slow done");

    // So does the standalone GET stream, whose events can be resumed too.
    let mut get = Sse::new(h.get(&session, None).send().await.unwrap());
    let primed = get.next().await.unwrap();
    assert_eq!((primed.retry, primed.data.as_deref()), (Some(1500), Some("")));
    assert_ne!(primed.stream(), priming.stream(), "each stream has its own identity");
    h.server.remove_tool("add");
    let changed = get.next().await.unwrap();
    assert_eq!(changed.message()["method"], "notifications/tools/list_changed");
    assert_eq!(changed.stream(), primed.stream());
    drop(get);
    let mut resumed = Sse::new(h.get(&session, primed.id.as_deref()).send().await.unwrap());
    let replayed = resumed.next().await.unwrap();
    assert_eq!(replayed.id, changed.id);
    assert_eq!(replayed.data, changed.data);
}

#[tokio::test]
async fn older_sessions_get_event_ids_without_priming() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default()).await;
    let session = h.open("2025-06-18").await;
    let response = h.post(Some(&session), &call(1, "chatty", json!({}))).send().await.unwrap();
    let events = Sse::new(response).rest().await;
    assert_eq!(events.len(), 4, "three log messages and the response: {events:?}");
    assert!(events.iter().all(|e| e.data.as_deref().is_some_and(|d| !d.is_empty())), "no priming event");
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_deref().unwrap()).collect();
    assert!(ids.iter().all(|id| id.starts_with(events[0].stream())));
    assert_eq!(events[3].message()["id"], 1);
}

#[tokio::test]
async fn resumption_replays_the_same_stream_only() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default()).await;
    let session = h.open("2025-11-25").await;
    let first = Sse::new(h.post(Some(&session), &call(1, "chatty", json!({}))).send().await.unwrap());
    let first = first.rest().await;
    let second = Sse::new(h.post(Some(&session), &call(2, "chatty", json!({}))).send().await.unwrap());
    let second = second.rest().await;
    assert_eq!((first.len(), second.len()), (5, 5), "priming, three logs, the response");
    assert_ne!(first[0].stream(), second[0].stream());

    // After the first log message of the first stream: the rest of that stream, and nothing else.
    let replay = Sse::new(h.get(&session, first[1].id.as_deref()).send().await.unwrap()).rest().await;
    let ids = |events: &[Event]| events.iter().map(|e| e.id.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&replay), ids(&first[2..]));
    assert_eq!(replay[2].message()["id"], 1);

    // After the last event: nothing.
    let done = h.get(&session, second[4].id.as_deref()).send().await.unwrap();
    assert!(Sse::new(done).rest().await.is_empty());

    // An id this session never issued, or garbage: no replay at all.
    for foreign in ["00000000000000f0-0", "not-an-event-id"] {
        let response = h.get(&session, Some(foreign)).send().await.unwrap();
        assert!(Sse::new(response).rest().await.is_empty(), "{foreign}");
    }

    // Another session cannot read this one's streams.
    let other = h.open("2025-11-25").await;
    let response = h.get(&other, first[1].id.as_deref()).send().await.unwrap();
    assert!(Sse::new(response).rest().await.is_empty());
}

#[tokio::test]
async fn a_post_dropped_mid_call_is_not_cancelled_and_its_response_comes_on_resume() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default()).await;
    let session = h.open("2025-11-25").await;
    let mut post = Sse::new(h.post(Some(&session), &call(7, "slow", json!({}))).send().await.unwrap());
    let priming = post.next().await.unwrap();
    drop(post); // The connection breaks mid-call.

    // Resumed while the tool still runs: the response arrives live.
    let started = Instant::now();
    let resumed = Sse::new(h.get(&session, priming.id.as_deref()).send().await.unwrap()).rest().await;
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].stream(), priming.stream());
    let response = resumed[0].message();
    assert_eq!(response["id"], 7);
    assert_eq!(response["result"]["content"][0]["text"], "slow done", "the call ran to its end");
    assert!(started.elapsed() > Duration::from_millis(50), "it came live, not from the store");

    // Resumed again after the end: the same response, from the store.
    let again = Sse::new(h.get(&session, priming.id.as_deref()).send().await.unwrap()).rest().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, resumed[0].data);
}

#[tokio::test]
async fn polling_closes_the_post_connection_after_priming_and_get_continues_it() {
    let _shared = EXCLUSIVE.read().await;
    let options = HttpOptions::default().close_streams_after(Some(Duration::ZERO));
    let h = start(options).await;
    let session = h.open("2025-11-25").await;
    let post = h.post(Some(&session), &call(3, "slow", json!({}))).send().await.unwrap();
    let events = Sse::new(post).rest().await;
    assert_eq!(events.len(), 1, "only the priming event: {events:?}");

    // Poll as a client would: reconnect with the last id until the response comes.
    let mut response = None;
    for _ in 0..20 {
        let events = Sse::new(h.get(&session, events[0].id.as_deref()).send().await.unwrap()).rest().await;
        if let Some(event) = events.last() {
            assert_eq!(event.stream(), events[0].stream());
            response = Some(event.message());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = response.expect("the response after polling");
    assert_eq!(response["id"], 3);
    assert_eq!(response["result"]["content"][0]["text"], "slow done");

    // Sessions of older revisions are never closed early.
    let old = h.open("2025-06-18").await;
    let post = h.post(Some(&old), &call(4, "slow", json!({}))).send().await.unwrap();
    let events = Sse::new(post).rest().await;
    assert_eq!(events.last().unwrap().message()["result"]["content"][0]["text"], "slow done");
}

#[tokio::test]
async fn batches_are_accepted_in_2025_03_26_sessions_only() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default()).await;
    let session = h.open("2025-03-26").await;
    let batch = json!([
        call(1, "add", json!({"a": 1, "b": 2})),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": "p", "method": "ping"},
        {"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {}},
    ]);
    let response = h.post(Some(&session), &batch).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answers: Vec<Value> = response.json().await.unwrap();
    assert_eq!(answers.len(), 3, "{answers:?}");
    let by_id = |id: Value| answers.iter().find(|a| a["id"] == id).cloned().unwrap();
    assert_eq!(by_id(json!(1))["result"]["content"][0]["text"], "3");
    assert_eq!(by_id(json!("p"))["result"], json!({}));
    assert_eq!(by_id(json!(9))["error"]["code"], -32600, "initialize may not be batched");

    let notifications = json!([{"jsonrpc": "2.0", "method": "notifications/initialized"}]);
    let response = h.post(Some(&session), &notifications).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let newer = h.open("2025-06-18").await;
    let response =
        h.post(Some(&newer), &json!([call(1, "add", json!({"a": 1, "b": 2}))])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], -32600);

    let response = h.post(None, &json!([call(1, "add", json!({"a": 1, "b": 2}))])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn listen_acknowledges_then_sends_only_what_was_asked_tagged() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default()).await;
    let tools = h.listen(json!("sub-1"), json!({"toolsListChanged": true, "taskIds": ["t"]}));
    let mut tools = Sse::new(tools.send().await.unwrap());
    let ack = tools.next().await.unwrap();
    assert!(ack.id.is_none(), "no resumption in the modern era");
    let ack = ack.message();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1");
    assert_eq!(ack["params"]["notifications"], json!({"toolsListChanged": true}), "tasks are not offered");

    let prompts =
        h.listen(json!(42), json!({"promptsListChanged": true, "resourceSubscriptions": ["test://a"]}));
    let mut prompts = Sse::new(prompts.send().await.unwrap());
    let ack = prompts.next().await.unwrap().message();
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 42);

    h.server.add_tool(extra);
    h.server.notify_resource_updated("test://b");
    h.server.notify_resource_updated("test://a");
    h.server.add_prompt(PromptRoute::new("late", |_call: PromptCall| async { "late" }).description("Late."));

    let changed = tools.next().await.unwrap().message();
    assert_eq!(changed["method"], "notifications/tools/list_changed");
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1");

    // The second listener skips the tool change and the unlisted resource.
    let updated = prompts.next().await.unwrap().message();
    assert_eq!(updated["method"], "notifications/resources/updated");
    assert_eq!(updated["params"]["uri"], "test://a");
    assert_eq!(updated["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 42);
    let changed = prompts.next().await.unwrap().message();
    assert_eq!(changed["method"], "notifications/prompts/list_changed");
    assert_eq!(changed["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 42);

    // Invalid params are an error, not a stream.
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "subscriptions/listen",
        "params": {"_meta": modern_meta(json!({}))}});
    let response = h
        .client
        .post(&h.url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .json(&body)
        .send()
        .await
        .unwrap();
    let error: Value = response.json().await.unwrap();
    assert_eq!((error["id"].clone(), error["error"]["code"].clone()), (json!(5), json!(-32602)));
}

/// A listener woken again and again by changes it does not send still sends
/// its keep-alive one interval after its last frame.
#[tokio::test]
async fn listen_streams_keep_alive_through_changes_they_do_not_send() {
    let _shared = EXCLUSIVE.read().await;
    let h = start(HttpOptions::default().keep_alive(Some(Duration::from_millis(100)))).await;
    let mut response = h.listen(json!(1), json!({"toolsListChanged": true})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // An unlisted resource changes every 20 ms, for several keep-alive intervals.
    let server = h.server.clone();
    let churn = tokio::spawn(async move {
        for _ in 0..40 {
            server.notify_resource_updated("test://unlisted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let deadline = Instant::now() + Duration::from_millis(600);
    let mut seen = String::new();
    while !seen.contains(": keep-alive") {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(chunk) = tokio::time::timeout(left, response.chunk()).await else { break };
        seen.push_str(std::str::from_utf8(&chunk.unwrap().expect("the stream stays open")).unwrap());
    }
    churn.abort();
    assert!(seen.contains("notifications/subscriptions/acknowledged"), "{seen}");
    assert!(seen.contains(": keep-alive"), "no keep-alive within 600 ms: {seen}");
    assert!(!seen.contains("test://unlisted"), "{seen}");
}

#[tokio::test]
async fn idle_sessions_are_reclaimed_and_the_cap_holds() {
    let _shared = EXCLUSIVE.read().await;
    let options = HttpOptions::default()
        .idle_timeout(Duration::from_millis(400))
        .max_sessions(2)
        .keep_alive(Some(Duration::from_millis(50)));
    let h = start(options).await;
    let a = h.open("2025-11-25").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = h.open("2025-11-25").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let c = h.open("2025-11-25").await;
    assert_eq!(h.endpoint.session_count(), 2);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let evicted = h.post(Some(&a), &ping).send().await.unwrap();
    assert_eq!(evicted.status(), StatusCode::NOT_FOUND, "the least recently used session made room");

    // While every session is busy (an open stream each), initialize is refused.
    let mut streams = Vec::new();
    for session in [&b, &c] {
        let mut stream = Sse::new(h.get(session, None).send().await.unwrap());
        stream.next().await.unwrap(); // the priming event
        streams.push(stream);
    }
    let refused = h.post(None, &initialize("2025-11-25")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().get("mcp-session-id").is_none());
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["id"], 0);
    assert_eq!(error["error"]["code"], -32603);

    // Busy sessions outlive the idle timeout...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.endpoint.session_count(), 2);
    assert_eq!(h.post(Some(&b), &ping).send().await.unwrap().status(), StatusCode::OK);

    // ...idle ones do not.
    drop(streams);
    assert!(eventually(Duration::from_secs(5), || h.endpoint.session_count() == 0).await);
    assert_eq!(h.post(Some(&c), &ping).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

/// The resident set size of this process, in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

const MIB: usize = 1024 * 1024;

/// How many times `pattern` occurs in `haystack`.
fn occurrences(haystack: &[u8], pattern: &[u8]) -> usize {
    haystack.windows(pattern.len()).filter(|w| *w == pattern).count()
}

/// Opens `count` sessions and walks away from them. The `initialize`
/// requests are pipelined on a few raw connections, so the client costs
/// next to nothing and the server does nearly all the work.
async fn abandon_sessions(h: &Harness, count: usize) {
    let addr = h.url.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
    let body = initialize("2025-11-25").to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let connections = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let requests = (connection..count).step_by(connections).count();
        let (addr, request) = (addr.clone(), request.clone());
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let (mut read, mut write) = stream.into_split();
            let writer = tokio::spawn(async move {
                write.write_all(request.repeat(requests).as_bytes()).await.expect("write");
                write
            });
            let pattern = b"\r\nmcp-session-id: ";
            let (mut seen, mut carry, mut buffer) = (0, Vec::new(), vec![0; 64 * 1024]);
            while seen < requests {
                let read = read.read(&mut buffer).await.expect("read");
                assert!(read > 0, "the server closed the connection after {seen} sessions");
                carry.extend_from_slice(&buffer[..read]);
                seen += occurrences(&carry, pattern);
                // Keep a tail too short to hold a whole match, for one split across reads.
                carry.drain(..carry.len().saturating_sub(pattern.len() - 1));
            }
            drop(writer.await.expect("the writer"));
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_abandoned_sessions_are_reclaimed() {
    let _alone = EXCLUSIVE.write().await;
    const SESSIONS: usize = 10_000;

    // How fast does this machine open sessions right now? The idle timeout
    // must outlast opening them all, or the first would go before the last
    // came. (This also warms up the allocator and the runtime.)
    let probe = start(HttpOptions::default()).await;
    let started = Instant::now();
    abandon_sessions(&probe, SESSIONS / 10).await;
    let idle = (started.elapsed() * 20).clamp(Duration::from_secs(2), Duration::from_secs(60));

    let store = Arc::new(InMemoryEventStore::default());
    let h = start(HttpOptions::default().idle_timeout(idle).event_store(store.clone())).await;
    let baseline = rss();
    let started = Instant::now();
    abandon_sessions(&h, SESSIONS).await;
    let opened_in = started.elapsed();
    let open = rss();
    assert_eq!(h.endpoint.session_count(), SESSIONS, "opening took {opened_in:?}, idle timeout {idle:?}");
    let growth = open.saturating_sub(baseline);
    assert!(eventually(idle * 3, || h.endpoint.session_count() == 0).await, "the sessions were reaped");
    assert_eq!(store.session_count(), 0, "their events went with them");
    let after = rss();
    eprintln!(
        "{SESSIONS} sessions opened in {opened_in:?}: RSS {} KiB before, {} KiB open ({} bytes per \
         session), {} KiB after the idle timeout of {idle:?}",
        baseline / 1024,
        open / 1024,
        growth / SESSIONS,
        after / 1024,
    );
    assert!(growth > 8 * MIB, "open sessions should cost memory: grew only {growth} bytes");
    assert!(
        after < baseline + 20 * MIB,
        "RSS stayed at {} MiB, baseline {} MiB",
        after / MIB,
        baseline / MIB
    );

    // The allocator may keep freed pages resident, but then what the first
    // crowd left behind must serve a second one: nothing leaked.
    abandon_sessions(&h, SESSIONS).await;
    let again = rss();
    eprintln!("a second crowd of {SESSIONS}: RSS {} KiB", again / 1024);
    assert!(again < open + 4 * MIB, "the second crowd needed fresh memory: {again} bytes after {open}");
}
