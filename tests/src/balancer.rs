//! A round-robin HTTP load balancer for tests: each request goes to the
//! next backend in turn (no sticky sessions), a backend that refuses the
//! connection is skipped, and every request is logged with the backend that
//! answered it and the MCP session and JSON-RPC method it carried, so a test
//! can tell that consecutive requests landed on different instances and that
//! one session was served by several. The servers' own requests through it
//! (their metadata and JWKS fetches, known by their `mcp-auth/` user agent)
//! take turns of their own, so that they do not shift the clients' turns.
//! Request bodies are read whole before they are passed on; response bodies
//! are relayed as they come, so a server-sent event stream stays open.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{self as http, HeaderMap, HeaderName, StatusCode};
use axum::response::Response;
use serde_json::Value;

/// The Streamable HTTP session header.
const MCP_SESSION_ID: &str = "mcp-session-id";

/// Headers that belong to one hop (RFC 9110 §7.6.1), not relayed.
const HOP_BY_HOP: [&str; 6] = ["connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"];

/// One request as the balancer passed it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The method.
    pub method: String,
    /// The path (without the query).
    pub path: String,
    /// The index of the backend that answered.
    pub backend: usize,
    /// The status it answered.
    pub status: u16,
    /// Whether one of the servers sent it (fetching the issuer's metadata or keys).
    pub internal: bool,
    /// The `Mcp-Session-Id` the request carried, else the one the answer
    /// assigned (to an `initialize`).
    pub session: Option<String>,
    /// The `method` of the JSON-RPC message in the request body, if any.
    pub rpc_method: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    backends: Mutex<Vec<u16>>,
    next: AtomicUsize,
    next_internal: AtomicUsize,
    log: Mutex<Vec<Served>>,
    client: reqwest::Client,
}

/// A running balancer on 127.0.0.1; stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
}

impl Balancer {
    /// Starts one with no backends yet (so its origin can be given to them).
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("an address");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let shared = Arc::new(Shared { client, ..Shared::default() });
        let app = axum::Router::new().fallback(relay).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { shared, origin: format!("http://{addr}") }
    }

    /// Sets the backends: instances on these loopback ports, taken in turn.
    pub fn set_backends(&self, ports: &[u16]) {
        *lock(&self.shared.backends) = ports.to_vec();
    }

    /// Every request of the clients passed on so far (not the servers' own),
    /// in the order their answers' headers came back.
    pub fn log(&self) -> Vec<Served> {
        lock(&self.shared.log).iter().filter(|served| !served.internal).cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn relay(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let backends = lock(&shared.backends).clone();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    let internal =
        headers.get(http::header::USER_AGENT).is_some_and(|agent| agent.as_bytes().starts_with(b"mcp-auth/"));
    let rpc_method = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|message| message.get("method")?.as_str().map(str::to_owned));
    let turns = if internal { &shared.next_internal } else { &shared.next };
    // Each backend at most once, starting with the next in turn.
    for _ in 0..backends.len() {
        let index = turns.fetch_add(1, Ordering::Relaxed) % backends.len();
        let url = format!("http://127.0.0.1:{}{path_and_query}", backends[index]);
        let sent = shared
            .client
            .request(parts.method.clone(), &url)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            // Refused: the instance is down. Nothing reached it, so the next one may serve.
            Err(e) if e.is_connect() => continue,
            Err(_) => return status(StatusCode::BAD_GATEWAY),
        };
        let session = [&parts.headers, answer.headers()]
            .into_iter()
            .find_map(|headers| headers.get(MCP_SESSION_ID)?.to_str().ok().map(str::to_owned));
        lock(&shared.log).push(Served {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            backend: index,
            status: answer.status().as_u16(),
            internal,
            session,
            rpc_method: rpc_method.clone(),
        });
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" {
                response = response.header(name, value);
            }
        }
        return response.body(relayed(answer)).unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY));
    }
    status(StatusCode::SERVICE_UNAVAILABLE)
}

/// The answer's body, chunk by chunk as the backend sends it; dropped (the
/// client went away), it closes the connection to the backend.
fn relayed(answer: reqwest::Response) -> Body {
    let chunks = futures_util::stream::try_unfold(answer, |mut answer| async move {
        Ok::<_, reqwest::Error>(answer.chunk().await?.map(|chunk| (chunk, answer)))
    });
    Body::from_stream(chunks)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}
