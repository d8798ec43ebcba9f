//! Who owns a legacy session, over real HTTP on 127.0.0.1: a session
//! answers only the principal that opened it (issuer, kind of subject and
//! subject, not the subject alone), one principal holds at most its quota
//! of sessions, and making room never ends another principal's session
//! while the caller has idle ones of its own.
//!
//! The identity comes from a small layer in front of the endpoint that
//! reads it from test headers, as an auth layer would from a token: what is
//! under test is the transport's use of it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use mcp_server::transport::http::{HttpOptions, StreamableHttp};
use mcp_server::{Identity, Server};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A caller as the test headers describe it.
#[derive(Clone, Copy)]
struct Caller {
    issuer: &'static str,
    subject: &'static str,
    /// A client acting for itself (a client-credentials token without `sub`).
    client: bool,
}

const IDP: &str = "https://idp.example";
const OTHER_IDP: &str = "https://other-idp.example";

fn user(subject: &'static str) -> Caller {
    Caller { issuer: IDP, subject, client: false }
}

/// Puts the identity the `x-test-*` headers describe into the request, as
/// an auth layer does; no headers, no identity.
async fn identify(mut request: Request, next: Next) -> Response {
    if let Some(identity) = identity_in(request.headers()) {
        request.extensions_mut().insert(Arc::new(identity));
    }
    next.run(request).await
}

fn identity_in(headers: &HeaderMap) -> Option<Identity> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (issuer, subject) = (header("x-test-issuer")?, header("x-test-subject")?);
    let identity =
        if header("x-test-client").is_some() { Identity::client(subject) } else { Identity::new(subject) };
    Some(identity.with_issuer(issuer))
}

struct Harness {
    url: String,
    base: String,
    endpoint: StreamableHttp,
    client: Client,
}

async fn start(options: HttpOptions, legacy_per_principal: usize) -> Harness {
    let server = Server::new("owners-test", "1.0.0");
    let endpoint = StreamableHttp::with_options(server.clone(), options);
    let legacy = server.legacy_sse().with_max_sessions_per_principal(legacy_per_principal);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let router = axum::Router::new()
        .route_service("/mcp", endpoint.clone())
        .merge(legacy.router())
        .layer(middleware::from_fn(identify));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Harness {
        url: format!("http://{addr}/mcp"),
        base: format!("http://{addr}"),
        endpoint,
        client: Client::new(),
    }
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
}

fn ping() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
}

fn with_caller(builder: RequestBuilder, who: Option<Caller>) -> RequestBuilder {
    let Some(who) = who else { return builder };
    let builder = builder.header("x-test-issuer", who.issuer).header("x-test-subject", who.subject);
    if who.client { builder.header("x-test-client", "1") } else { builder }
}

impl Harness {
    fn post(&self, who: Option<Caller>, session: Option<&str>, body: &Value) -> RequestBuilder {
        let builder =
            self.client.post(&self.url).header("accept", "application/json, text/event-stream").json(body);
        let builder = match session {
            Some(id) => builder.header("mcp-session-id", id).header("mcp-protocol-version", "2025-11-25"),
            None => builder,
        };
        with_caller(builder, who)
    }

    /// Opens an initialized session as `who`; returns its id.
    async fn open(&self, who: Caller) -> String {
        let response = self.post(Some(who), None, &initialize()).send().await.expect("initialize");
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["mcp-session-id"].to_str().expect("a visible session id").to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = self.post(Some(who), Some(&id), &initialized).send().await.expect("initialized");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        // Sessions are ordered by last use in milliseconds: keep them apart.
        tokio::time::sleep(Duration::from_millis(5)).await;
        id
    }

    /// The status of a ping in `session` as `who`.
    async fn ping(&self, who: Option<Caller>, session: &str) -> StatusCode {
        self.post(who, Some(session), &ping()).send().await.expect("ping").status()
    }

    /// Holds the session busy with its open GET stream until the response drops.
    async fn hold(&self, who: Caller, session: &str) -> reqwest::Response {
        let request = self
            .client
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
        let response = with_caller(request, Some(who)).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::OK);
        response
    }
}

#[tokio::test]
async fn a_session_answers_only_the_issuer_kind_and_subject_that_opened_it() {
    let h = start(HttpOptions::default(), 10).await;
    let alice = user("alice");
    let session = h.open(alice).await;
    assert_eq!(h.ping(Some(alice), &session).await, StatusCode::OK);
    for stranger in [
        // the same subject at another issuer
        Caller { issuer: OTHER_IDP, subject: "alice", client: false },
        // an OAuth client whose id happens to be the user's subject
        Caller { issuer: IDP, subject: "alice", client: true },
        user("bob"),
    ] {
        assert_eq!(h.ping(Some(stranger), &session).await, StatusCode::NOT_FOUND, "{}", stranger.subject);
        let delete = with_caller(h.client.delete(&h.url).header("mcp-session-id", &session), Some(stranger));
        assert_eq!(delete.send().await.unwrap().status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(h.ping(None, &session).await, StatusCode::NOT_FOUND, "an anonymous caller");
    // None of them ended it.
    assert_eq!(h.ping(Some(alice), &session).await, StatusCode::OK);
}

#[tokio::test]
async fn the_quota_makes_room_only_among_the_callers_own_sessions() {
    let options = HttpOptions::default().max_sessions(100).max_sessions_per_principal(2);
    let h = start(options, 10).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let bobs = h.open(bob).await;
    let first = h.open(alice).await;
    let second = h.open(alice).await;
    // A third of alice's: her least recently used session makes room, bob's
    // older idle one is untouched.
    let third = h.open(alice).await;
    assert_eq!(h.ping(Some(alice), &first).await, StatusCode::NOT_FOUND);
    assert_eq!(h.ping(Some(alice), &second).await, StatusCode::OK);
    assert_eq!(h.ping(Some(bob), &bobs).await, StatusCode::OK);
    assert_eq!(h.endpoint.session_count(), 3);

    // With both of hers busy, alice is refused with 429; others are not.
    let _streams = [h.hold(alice, &second).await, h.hold(alice, &third).await];
    let refused = h.post(Some(alice), None, &initialize()).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("mcp-session-id").is_none());
    assert_eq!(refused.headers()["retry-after"], "5");
    let error: Value = refused.json().await.unwrap();
    assert_eq!((error["id"].clone(), error["error"]["code"].clone()), (json!(0), json!(-32603)));
    // The same subject at another issuer is another principal, with its own quota.
    h.open(Caller { issuer: OTHER_IDP, subject: "alice", client: false }).await;
    h.open(bob).await;
    assert_eq!(h.ping(Some(bob), &bobs).await, StatusCode::OK);
}

#[tokio::test]
async fn at_the_cap_the_callers_own_idle_sessions_go_before_anyone_elses() {
    let options = HttpOptions::default().max_sessions(3).max_sessions_per_principal(10);
    let h = start(options, 10).await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let bobs = h.open(bob).await;
    let alices_first = h.open(alice).await;
    let alices_second = h.open(alice).await;
    // Full. Bob's session is the least recently used, but alice's own goes.
    let alices_third = h.open(alice).await;
    assert_eq!(h.ping(Some(alice), &alices_first).await, StatusCode::NOT_FOUND);
    assert_eq!(h.ping(Some(bob), &bobs).await, StatusCode::OK);
    assert_eq!(h.ping(Some(alice), &alices_second).await, StatusCode::OK);
    // A caller with no session of its own takes the least recently used
    // idle one, whoever holds it: now alice's third, unused since it opened.
    h.open(carol).await;
    assert_eq!(h.endpoint.session_count(), 3);
    assert_eq!(h.ping(Some(alice), &alices_third).await, StatusCode::NOT_FOUND);
    assert_eq!(h.ping(Some(bob), &bobs).await, StatusCode::OK);
    assert_eq!(h.ping(Some(alice), &alices_second).await, StatusCode::OK);
}

#[tokio::test]
async fn legacy_sse_streams_are_capped_per_principal() {
    let h = start(HttpOptions::default(), 1).await;
    let open = |who: Caller| {
        let request = h.client.get(format!("{}/sse", h.base)).header("accept", "text/event-stream");
        with_caller(request, Some(who)).send()
    };
    let alices = open(user("alice")).await.unwrap();
    assert_eq!(alices.status(), StatusCode::OK);
    let second = open(user("alice")).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "5");
    // Another principal still gets a stream.
    let bobs = open(user("bob")).await.unwrap();
    assert_eq!(bobs.status(), StatusCode::OK);
    // Once alice's stream closes, her slot is free again.
    drop(alices);
    let mut reopened = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        reopened = open(user("alice")).await.unwrap().status();
        if reopened == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reopened, StatusCode::OK);
    drop(bobs);
}
