//! The deprecated HTTP+SSE transport of protocol revision 2024-11-05
//! (SPEC §3.3), for clients that predate Streamable HTTP.
//!
//! A client opens `GET /sse` and keeps it open: that stream is its session.
//! The first event, `endpoint`, names the URL for its messages
//! (`/messages?sessionId=…`). Each message is POSTed there on its own and
//! answered `202 Accepted` at once; the reply, like every other server→client
//! message (notifications, `elicitation/create` and other server requests),
//! arrives later as a `message` event on the stream. Closing the stream ends
//! the session and cancels whatever it still has running.
//!
//! The same tools, prompts and resources serve this transport; whichever
//! legacy revision `initialize` negotiates shapes the replies.
//!
//! Shared through Redis ([`LegacySse::with_redis`], or `[redis] url`), a
//! message POSTed to a server other than the one holding the session's
//! stream is passed on to that server over Redis pub/sub, so no sticky
//! routing is needed.
//!
//! ```no_run
//! use mcp_server::{tool, Server};
//!
//! /// Says hello.
//! #[tool]
//! async fn hello() -> &'static str {
//!     "Hello!"
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = Server::new("hello", "1.0.0").tool(hello);
//!     // Streamable HTTP at /mcp, and the old endpoints beside it (SPEC §3.3 back-compat).
//!     let app = axum::Router::new()
//!         .route_service("/mcp", server.streamable_http())
//!         .merge(server.legacy_sse().router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app).await
//! }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{NestedPath, State};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use mcp_core::Identity;
use mcp_core::error::codes;
use mcp_core::jsonrpc::{Incoming, Message, parse};
use mcp_core::types::methods;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::MAX_BODY_BYTES;
use super::backplane::{Backplane, Caller, Note, Owner};
use super::common::{
    OwnerCounts, caller, is_json, is_session_id, new_session_id, read_body, same_principal, scope_refusal,
};
use super::post::Unreachable;
use super::reply::{self, OUTBOUND_CAPACITY};
use crate::changes::{ChangeFeed, Changed};
use crate::connection::Connection;
use crate::server::Server;

/// The request paths of the 2024-11-05 HTTP+SSE endpoints: the event stream
/// and the endpoint its `endpoint` event names for posting messages.
pub(crate) const LEGACY_SSE_PATHS: [&str; 2] = ["/sse", "/messages"];
/// How many SSE sessions may be open at once unless
/// [`LegacySse::with_max_sessions`] says otherwise; beyond it `GET /sse` is
/// answered with 503.
pub const DEFAULT_MAX_SSE_SESSIONS: usize = 1_000;
/// How many SSE sessions one authenticated principal may hold unless
/// [`LegacySse::with_max_sessions_per_principal`] says otherwise; beyond it
/// its `GET /sse` is answered with 429.
pub const DEFAULT_MAX_SSE_SESSIONS_PER_PRINCIPAL: usize = 100;

/// How often an idle SSE stream gets a keep-alive comment unless
/// [`LegacySse::with_keep_alive`] says otherwise.
pub const DEFAULT_SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query parameter of the message endpoint that names the session.
const SESSION_PARAM: &str = "sessionId";

/// The HTTP+SSE (2024-11-05) endpoints of a [`Server`]: `GET /sse` and
/// `POST /messages`.
///
/// Each `GET /sse` is one session: its first event is `endpoint`, whose data
/// is the URL to POST messages to (`/messages?sessionId=<64 hex digits>`).
/// A POST there is answered `202 Accepted` at once (400 for a missing
/// session id or bad JSON, 404 for an unknown session, 415 when not
/// `application/json`, 413 beyond [`MAX_BODY_BYTES`]); the reply, and every
/// other server→client message, arrives as a `message` event on the stream.
/// Closing the stream ends the session and cancels its running requests.
///
/// Cheap to clone; clones share the open sessions. Build one with
/// [`Server::legacy_sse`] and mount [`router`](Self::router) beside the
/// Streamable HTTP endpoint (SPEC §3.3 asks servers to keep serving old
/// clients this way). The router does not check `Host` or `Origin` itself:
/// put it under the same [`HostOriginGuardLayer`](super::HostOriginGuardLayer)
/// as the rest of the application.
///
/// ```
/// use std::time::Duration;
/// use mcp_server::Server;
///
/// let server = Server::new("demo", "1.0.0");
/// let legacy = server
///     .legacy_sse()
///     .with_max_sessions(100)
///     .with_keep_alive(Duration::from_secs(30));
/// let app: axum::Router = axum::Router::new().nest("/legacy", legacy.router());
/// assert_eq!(legacy.session_count(), 0);
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct LegacySse {
    server: Server,
    sessions: Arc<Sessions>,
    /// Where sessions are shared with other servers, if anywhere.
    shared: Option<Arc<dyn Backplane>>,
    /// The task running messages other servers pass on, once started.
    listening: Arc<Mutex<Option<AbortHandle>>>,
    endpoint_prefix: Option<Arc<str>>,
    max_sessions: usize,
    max_per_principal: usize,
    keep_alive: Duration,
}

impl LegacySse {
    /// The endpoints for `server`, with the default limits.
    ///
    /// ```
    /// use mcp_server::Server;
    /// use mcp_server::transport::http::LegacySse;
    ///
    /// let legacy = LegacySse::new(Server::new("demo", "1.0.0"));
    /// assert_eq!(legacy.session_count(), 0);
    /// ```
    pub fn new(server: Server) -> Self {
        Self {
            server,
            sessions: Arc::default(),
            shared: None,
            listening: Arc::default(),
            endpoint_prefix: None,
            max_sessions: DEFAULT_MAX_SSE_SESSIONS,
            max_per_principal: DEFAULT_MAX_SSE_SESSIONS_PER_PRINCIPAL,
            keep_alive: DEFAULT_SSE_KEEP_ALIVE,
        }
    }

    /// The path the router is reachable at, as the client sees it, for the
    /// URL of the `endpoint` event: with prefix `/legacy` it is
    /// `/legacy/messages?sessionId=…`. `""` and `"/"` both mean the root.
    ///
    /// Without it the prefix is the path the router is
    /// [nested](axum::Router::nest) at, or the root when it is merged. Set it
    /// when a proxy rewrites paths in front of the server.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse().with_endpoint_prefix("/api/mcp-legacy");
    /// # let _ = legacy;
    /// ```
    #[must_use]
    pub fn with_endpoint_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.endpoint_prefix = Some(Arc::from(prefix.into()));
        self
    }

    /// How many SSE sessions may be open at once; `GET /sse` beyond that is
    /// answered with 503 Service Unavailable. The default is
    /// [`DEFAULT_MAX_SSE_SESSIONS`].
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse().with_max_sessions(10);
    /// # let _ = legacy;
    /// ```
    #[must_use]
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// How many SSE sessions one authenticated principal (issuer and
    /// subject) may hold at once, so no caller can take every slot; its
    /// `GET /sse` beyond that is answered with 429 Too Many Requests. The
    /// default is [`DEFAULT_MAX_SSE_SESSIONS_PER_PRINCIPAL`]; anonymous
    /// sessions are bounded by [`with_max_sessions`](Self::with_max_sessions) alone.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse().with_max_sessions_per_principal(5);
    /// # let _ = legacy;
    /// ```
    #[must_use]
    pub fn with_max_sessions_per_principal(mut self, max: usize) -> Self {
        self.max_per_principal = max;
        self
    }

    /// How often an SSE stream gets a keep-alive comment (`: keep-alive`), so
    /// proxies do not close idle streams and a vanished client is noticed.
    /// The default is [`DEFAULT_SSE_KEEP_ALIVE`]; zero is taken as one millisecond.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse().with_keep_alive(Duration::from_secs(5));
    /// # let _ = legacy;
    /// ```
    #[must_use]
    pub fn with_keep_alive(mut self, every: Duration) -> Self {
        self.keep_alive = every.max(Duration::from_millis(1));
        self
    }

    /// Shares the sessions with every server using the same Redis and
    /// `key_prefix`: a message POSTed for a session whose stream another
    /// server holds is passed on to it, so clients need no sticky routing.
    /// Each open stream keeps a record of who opened it in Redis (no token,
    /// no secret), so the server a message lands on can refuse anyone else.
    /// While Redis is unreachable, messages for streams held elsewhere get
    /// 503. Connects on first use.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse().with_redis("redis://127.0.0.1:6379/", "mcp:sse");
    /// assert!(legacy.is_ok());
    /// ```
    #[cfg(feature = "redis")]
    pub fn with_redis(mut self, url: &str, key_prefix: &str) -> Result<Self, super::InvalidRedisUrl> {
        let backplane = super::redis_backplane::RedisBackplane::new(url, key_prefix, SHARED_RECORD_TTL)
            .map_err(|e| super::InvalidRedisUrl(e.to_string()))?;
        self.shared = Some(Arc::new(backplane));
        Ok(self)
    }

    /// Starts, from inside the runtime, the task running the messages other
    /// servers pass on for sessions held here, unless it runs already.
    fn start_listening(&self) {
        let Some(shared) = &self.shared else { return };
        let mut listening = self.listening.lock().unwrap_or_else(PoisonError::into_inner);
        if listening.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        shared.start();
        let (server, sessions) = (self.server.clone(), Arc::downgrade(&self.sessions));
        *listening = Some(tokio::spawn(run_posted(server, sessions, shared.notes())).abort_handle());
    }

    /// How many SSE sessions are open.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// assert_eq!(Server::new("demo", "1.0.0").legacy_sse().session_count(), 0);
    /// ```
    pub fn session_count(&self) -> usize {
        self.sessions.lock().by_id.len()
    }

    /// Ends every open session now: their streams finish and their running
    /// requests are cancelled. Call it when shutting down, since SSE streams
    /// would otherwise hold a graceful shutdown open until its grace period
    /// runs out.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let legacy = Server::new("demo", "1.0.0").legacy_sse();
    /// legacy.close_all();
    /// assert_eq!(legacy.session_count(), 0);
    /// ```
    pub fn close_all(&self) {
        let closed: Vec<SseSession> = {
            let mut table = self.sessions.lock();
            table.owners = OwnerCounts::default();
            table.by_id.drain().map(|(_, session)| session).collect()
        };
        for session in closed {
            session.connection.close();
            session.ended.cancel();
        }
    }

    /// `GET /sse` and `POST /messages`, with relative paths, to
    /// [merge](axum::Router::merge) or [nest](axum::Router::nest) into an
    /// application. Other methods on those paths get 405.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let server = Server::new("demo", "1.0.0");
    /// let app: axum::Router = axum::Router::new()
    ///     .route_service("/mcp", server.streamable_http())
    ///     .merge(server.legacy_sse().router());
    /// # let _ = app;
    /// ```
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route(LEGACY_SSE_PATHS[0], axum::routing::get(open_stream))
            .route(LEGACY_SSE_PATHS[1], axum::routing::post(post_message))
            .with_state(self.clone())
    }

    /// The URL the `endpoint` event names for session `id`.
    /// `nested` is where axum says the router is nested.
    fn endpoint_url(&self, nested: Option<&str>, id: &str) -> String {
        let prefix = self.endpoint_prefix.as_deref().or(nested).unwrap_or("");
        format!("{}/messages?{SESSION_PARAM}={id}", prefix.trim_end_matches('/'))
    }
}

impl Server {
    /// This server's HTTP+SSE (2024-11-05) endpoints, to mount beside
    /// [`streamable_http`](Server::streamable_http) for old clients.
    ///
    /// ```
    /// use mcp_server::Server;
    ///
    /// let server = Server::new("demo", "1.0.0");
    /// let app: axum::Router = axum::Router::new().merge(server.legacy_sse().router());
    /// # let _ = app;
    /// ```
    pub fn legacy_sse(&self) -> LegacySse {
        LegacySse::new(self.clone())
    }
}

#[cfg(feature = "redis")]
/// How long the record of a stream lives in Redis after its last keep-alive
/// (a stream that ended cleanly removes it at once).
const SHARED_RECORD_TTL: Duration = Duration::from_secs(600);

/// Runs the messages other servers pass on for the sessions held here, until
/// the sessions go.
async fn run_posted(server: Server, sessions: Weak<Sessions>, mut notes: broadcast::Receiver<Arc<Note>>) {
    loop {
        let note = match notes.recv().await {
            Ok(note) => note,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "messages passed on by other servers were missed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Note::Posted { session, message, caller } = &*note else { continue };
        let Some(sessions) = sessions.upgrade() else { return };
        let Some(held) = sessions.get(session) else { continue };
        let who = match (caller, held.connection.identity.as_deref()) {
            (Some(caller), Some(owner)) => Some(Arc::new(caller.applied_to(owner))),
            _ => None,
        };
        // Refusals were answered where the message was POSTed.
        let _ = deliver(&server, held, message.clone(), who).await;
    }
}

/// One open SSE session.
#[derive(Debug, Clone)]
struct SseSession {
    connection: Connection,
    /// Feeds the session's SSE stream.
    outbound: mpsc::Sender<Message>,
    /// Fires when the stream is gone: running requests stop.
    ended: CancellationToken,
}

/// The open SSE sessions.
#[derive(Debug, Default)]
struct Sessions {
    table: Mutex<Table>,
}

/// The open SSE sessions by id, and how many each principal holds.
#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<String, SseSession>,
    owners: OwnerCounts,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<SseSession> {
        self.lock().by_id.get(id).cloned()
    }
}

impl Table {
    fn remove(&mut self, id: &str) {
        if let Some(session) = self.by_id.remove(id) {
            self.owners.remove(session.connection.identity.as_deref());
        }
    }
}

/// Ends its session when the SSE stream is dropped, which is how a client's
/// disconnect shows: the session is forgotten (its id then gets 404) and its
/// in-flight requests and pending server→client requests are cancelled.
#[derive(Debug)]
struct EndOnDrop {
    sessions: Arc<Sessions>,
    shared: Option<Arc<dyn Backplane>>,
    id: String,
    session: SseSession,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
        if let Some(shared) = &self.shared {
            shared.forget(&self.id);
        }
        self.session.connection.close();
        self.session.ended.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

/// `GET /sse`: opens a session whose stream starts with the `endpoint` event.
async fn open_stream(State(this): State<LegacySse>, request: Request<Body>) -> Response<Body> {
    this.start_listening();
    let (outbound, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
    let session = SseSession {
        connection: Connection::new(this.server.clone(), caller(request.extensions())),
        outbound,
        ended: CancellationToken::new(),
    };
    let id = new_session_id();
    {
        let mut table = this.sessions.lock();
        let owner = session.connection.identity.as_deref();
        // Every SSE session is an open stream, never idle: at a limit the
        // caller is refused, and no one else's stream is ended.
        let refused = if table.owners.of(owner) >= this.max_per_principal {
            Some((StatusCode::TOO_MANY_REQUESTS, this.max_per_principal, "too many open for this caller"))
        } else if table.by_id.len() >= this.max_sessions {
            Some((StatusCode::SERVICE_UNAVAILABLE, this.max_sessions, "too many open"))
        } else {
            None
        };
        if let Some((status, max, why)) = refused {
            drop(table);
            tracing::warn!(max, "legacy SSE session refused: {why}");
            let mut response = reply::status(status);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        table.owners.add(owner);
        table.by_id.insert(id.clone(), session.clone());
    }
    tracing::debug!(session = %id, "legacy SSE session opened");
    if let Some(shared) = &this.shared {
        let owner = session.connection.identity.as_deref().map(Owner::of);
        if let Err(error) = shared.save(&id, serde_json::to_vec(&owner).unwrap_or_default()).await {
            tracing::warn!(%error, "an HTTP+SSE session is served by this server only");
        }
    }
    let endpoint = this.endpoint_url(request.extensions().get::<NestedPath>().map(NestedPath::as_str), &id);
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + this.keep_alive, this.keep_alive);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = SessionStream {
        endpoint: Some(event("endpoint", &endpoint)),
        outbound: receiver,
        changes: Some(this.server.change_feed()),
        keep_alive,
        guard: EndOnDrop { sessions: this.sessions.clone(), shared: this.shared.clone(), id, session },
    };
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next().await?;
        Some((Ok::<_, Infallible>(chunk), stream))
    });
    reply::sse_response(Body::from_stream(body))
}

/// The state of one session's SSE stream.
struct SessionStream {
    /// The `endpoint` event, until it is sent.
    endpoint: Option<Bytes>,
    outbound: mpsc::Receiver<Message>,
    /// `list_changed` and resource updates; `None` once the server is gone.
    changes: Option<ChangeFeed>,
    keep_alive: Interval,
    guard: EndOnDrop,
}

impl SessionStream {
    /// The next chunk to write; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(endpoint) = self.endpoint.take() {
            return Some(endpoint);
        }
        loop {
            tokio::select! {
                biased;
                () = self.guard.session.ended.cancelled() => return None,
                Some(message) = self.outbound.recv() => return Some(reply::frame(&message)),
                changed = next_change(&mut self.changes), if self.changes.is_some() => match changed {
                    Some(changed) => {
                        let connection = &self.guard.session.connection;
                        // Several events may share one chunk.
                        let frames: Vec<Bytes> = changed
                            .changes()
                            .iter()
                            .filter_map(|change| connection.change_notification(change))
                            .map(|note| reply::frame(&note))
                            .collect();
                        if !frames.is_empty() {
                            return Some(frames.concat().into());
                        }
                    }
                    None => self.changes = None,
                },
                _ = self.keep_alive.tick() => {
                    if let Some(shared) = &self.guard.shared {
                        shared.keep(&self.guard.id, 0);
                    }
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }
}

/// The feed's next change; pending forever without a feed.
async fn next_change(changes: &mut Option<ChangeFeed>) -> Option<Changed> {
    match changes {
        Some(changes) => changes.next().await,
        None => std::future::pending().await,
    }
}

/// Where a POSTed message goes.
enum Target {
    /// A session whose stream this server holds.
    Here(SseSession),
    /// A session whose stream another server sharing sessions holds.
    Elsewhere(Arc<dyn Backplane>),
}

/// `POST /messages?sessionId=…`: one JSON-RPC message for a session, accepted
/// with 202; whatever it causes is written to the session's SSE stream.
async fn post_message(State(this): State<LegacySse>, request: Request<Body>) -> Response<Body> {
    this.start_listening();
    let (parts, body) = request.into_parts();
    let Some(id) = session_param(parts.uri.query()) else {
        let text = "Bad Request: the sessionId query parameter is required";
        return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
    };
    let who = caller(&parts.extensions);
    let target = match find(&this, id, who.as_deref()).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            return reply::error(StatusCode::NOT_FOUND, None, codes::INVALID_REQUEST, "Session not found");
        }
        Err(unreachable) => return unreachable.with_id(None),
    };
    if !is_json(&parts.headers) {
        return reply::status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let bytes = match read_body(&parts.headers, body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let message = match parse(&bytes) {
        Ok(Incoming::Single(message)) => message,
        Ok(Incoming::Batch(_)) => {
            // SSE clients parse each event as one message, so a batch reply
            // could not be delivered; 2024-11-05 has no batches anyway.
            let text = "Invalid Request: batches are not supported on this transport";
            return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
        }
        Err(e) => return reply::json(StatusCode::BAD_REQUEST, &Message::Error(e.to_response())),
    };
    let refusal = match target {
        Target::Here(session) => deliver(&this.server, session, message, who).await,
        Target::Elsewhere(shared) => pass_on(&this.server, &*shared, id, message, who.as_deref()),
    };
    match refusal {
        Some(refusal) => refusal,
        None => reply::batched(reply::status(StatusCode::ACCEPTED)).await,
    }
}

/// The session `id` if `who` opened it: here, or when sessions are shared,
/// on another server. `Err` when the shared state is out of reach.
async fn find(this: &LegacySse, id: &str, who: Option<&Identity>) -> Result<Option<Target>, Unreachable> {
    if let Some(session) = this.sessions.get(id) {
        // Another caller's session is answered as if it did not exist.
        let own = same_principal(session.connection.identity.as_deref(), who);
        return Ok(own.then_some(Target::Here(session)));
    }
    let Some(shared) = &this.shared else { return Ok(None) };
    if !is_session_id(id) {
        return Ok(None);
    }
    let record = shared.load(id).await.map_err(|error| {
        tracing::debug!(%error, "an HTTP+SSE session may be held by another server: cannot tell");
        Unreachable
    })?;
    let Some(owner) = record.and_then(|r| serde_json::from_slice::<Option<Owner>>(&r).ok()) else {
        return Ok(None);
    };
    let owner = owner.map(|owner| owner.identity());
    Ok(same_principal(owner.as_ref(), who).then(|| Target::Elsewhere(shared.clone())))
}

/// Passes a message on to the server holding the session's stream, after
/// the checks that answer the client here (scopes).
fn pass_on(
    server: &Server,
    shared: &dyn Backplane,
    id: &str,
    message: Message,
    who: Option<&Identity>,
) -> Option<Response<Body>> {
    if let Message::Request(request) = &message {
        let tool = server.called_tool(request);
        if let Some(refusal) = scope_refusal(server, request, tool.as_deref(), who) {
            return Some(refusal);
        }
    }
    let caller = who.map(Caller::of);
    shared.tell(Note::Posted { session: id.to_owned(), message, caller });
    None
}

/// Runs one message of a session held here; `Some` refusal to answer
/// instead of 202.
async fn deliver(
    server: &Server,
    session: SseSession,
    message: Message,
    who: Option<Arc<Identity>>,
) -> Option<Response<Body>> {
    match message {
        Message::Request(request) => {
            // Looked up once for the scope check and the call.
            let tool = server.called_tool(&request);
            if let Some(refusal) = scope_refusal(server, &request, tool.as_deref(), who.as_deref()) {
                return Some(refusal);
            }
            let SseSession { mut connection, outbound, ended } = session;
            // This request runs as the caller its token names now (a stepped-up token
            // brings its wider scopes), not as the token that opened the stream.
            if who.is_some() {
                connection.identity = who;
            }
            if request.method == methods::INITIALIZE {
                // Settled before the 202, so that whatever the client posts next
                // finds the session initialized, even if it does not wait for
                // the answer on the stream first.
                if let Some(answer) = connection.handle_request(request, outbound.clone(), tool).await {
                    let _ = outbound.send(answer).await;
                }
                return None;
            }
            tokio::spawn(async move {
                let handling = async {
                    if let Some(answer) = connection.handle_request(request, outbound.clone(), tool).await {
                        // Fails only when the stream is gone, and then nobody is listening.
                        let _ = outbound.send(answer).await;
                    }
                };
                // The stream closing drops the handler wherever it waits.
                tokio::select! {
                    () = ended.cancelled() => {}
                    () = handling => {}
                }
            });
        }
        Message::Notification(notification) => session.connection.handle_notification(notification),
        answer @ (Message::Response(_) | Message::Error(_)) => {
            session.connection.handle_answer(answer);
        }
    }
    None
}

/// The value of the `sessionId` query parameter, when present and non-empty.
fn session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(key, value)| (key == SESSION_PARAM && !value.is_empty()).then_some(value))
}

/// An SSE event named `name` whose data is one line.
fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_parameter_is_found_among_others() {
        assert_eq!(session_param(Some("sessionId=abc")), Some("abc"));
        assert_eq!(session_param(Some("x=1&sessionId=abc&y")), Some("abc"));
        assert_eq!(session_param(Some("sessionId=")), None);
        assert_eq!(session_param(Some("session_id=abc")), None);
        assert_eq!(session_param(None), None);
    }

    #[test]
    fn the_endpoint_follows_the_prefix() {
        let legacy = LegacySse::new(Server::new("t", "0"));
        assert_eq!(legacy.endpoint_url(None, "ab"), "/messages?sessionId=ab");
        assert_eq!(legacy.endpoint_url(Some("/legacy"), "ab"), "/legacy/messages?sessionId=ab");
        let legacy = legacy.with_endpoint_prefix("/");
        assert_eq!(legacy.endpoint_url(Some("/legacy"), "ab"), "/messages?sessionId=ab");
        let legacy = legacy.with_endpoint_prefix("/api/");
        assert_eq!(legacy.endpoint_url(None, "ab"), "/api/messages?sessionId=ab");
    }

    #[test]
    fn session_ids_are_64_hex_digits() {
        let id = new_session_id();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_session_id());
    }
}
