//! POST: one JSON-RPC message per request, of either era, or a batch in a
//! 2025-03-26 session.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use mcp_core::error::codes;
use mcp_core::jsonrpc::{
    ErrorObject, ErrorResponse, FramingError, Incoming, Message, Notification, RequestId, parse,
};
use mcp_core::types::{CancelledNotificationParams, methods};
use mcp_core::{Identity, McpError, ProtocolVersion};
use tokio::sync::mpsc;

use super::backplane::Note;
use super::common::{insufficient_scope, is_json, read_body, same_principal, scope_refusal, take_caller};
use super::headers::{self, SESSION_ID};
use super::reply::{self, OUTBOUND_CAPACITY, Running};
use super::sessions::{HttpOptions, OpenSession, Refused, ShareError};
use super::{Inner, listen};
use tokio_util::sync::CancellationToken;

use crate::connection::{Connection, handle_stateless};
use crate::tool::ToolRoute;

/// Handles a POST to the endpoint.
pub(super) async fn handle(inner: &Inner, request: Request<Body>) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let who = take_caller(&mut parts.extensions);
    if !is_json(&parts.headers) {
        return reply::status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let bytes = match read_body(&parts.headers, body, inner.options.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let message = match parse(&bytes) {
        Ok(Incoming::Single(message)) => message,
        Ok(Incoming::Batch(items)) => return batch(inner, &parts.headers, items, who).await,
        Err(e) => return reply::json(StatusCode::BAD_REQUEST, &Message::Error(e.to_response())),
    };
    let params = match &message {
        Message::Request(r) => r.params.as_ref(),
        Message::Notification(n) => n.params.as_ref(),
        _ => None,
    };
    if headers::is_modern(&parts.headers, params) {
        modern(inner, &parts.headers, message, who).await
    } else {
        legacy(inner, &parts.headers, message, who).await
    }
}

/// The HTTP status of a modern answer (SPEC §9).
fn modern_status(message: &Message) -> StatusCode {
    match message {
        Message::Error(e) => match e.error.code {
            codes::HEADER_MISMATCH
            | codes::MISSING_REQUIRED_CLIENT_CAPABILITY
            | codes::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
            codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        },
        _ => StatusCode::OK,
    }
}

/// A stateless 2026-07-28 message.
async fn modern(
    inner: &Inner,
    headers: &HeaderMap,
    message: Message,
    who: Option<Arc<Identity>>,
) -> Response<Body> {
    let request = match message {
        Message::Request(request) => request,
        Message::Notification(_) => return reply::status(StatusCode::ACCEPTED),
        Message::Response(_) | Message::Error(_) => {
            let text = "Invalid Request: clients do not send responses in this protocol version";
            return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
        }
    };
    let checked = match headers::check_modern(headers, &request) {
        Ok(checked) => checked,
        Err(e) => {
            let error = e.to_error_object(ProtocolVersion::LATEST);
            let body = mcp_core::jsonrpc::ErrorResponse::new(Some(request.id), error);
            return reply::json(StatusCode::BAD_REQUEST, &Message::Error(body));
        }
    };
    // The tool a tools/call names, looked up once for the header check, the scope check and the call.
    let tool = inner.server.called_tool(&request);
    if let Err(e) = check_header_params(headers, &request, tool.as_deref()) {
        let body = ErrorResponse::new(Some(request.id), e.to_error_object(ProtocolVersion::LATEST));
        return reply::json(StatusCode::BAD_REQUEST, &Message::Error(body));
    }
    if let Some(refusal) = scope_refusal(&inner.server, &request, tool.as_deref(), who.as_deref()) {
        return refusal;
    }
    if request.method == methods::SUBSCRIPTIONS_LISTEN {
        return listen::handle(&inner.server, request, inner.options.keep_alive);
    }
    // Nothing is shared between requests: no session, just a token that
    // closing the response fires to cancel exactly this request.
    let cancel = CancellationToken::new();
    let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let id = request.id.clone();
    let handling = {
        let (server, cancel) = (inner.server.clone(), cancel.clone());
        async move { handle_stateless(&server, who, request, checked, cancel, tx, tool).await }
    };
    let running = Running::start(id, handling, rx, cancel);
    reply::batched(running.respond(modern_status, inner.options.response_mode).await).await
}

/// A legacy (session) message.
async fn legacy(
    inner: &Inner,
    headers: &HeaderMap,
    message: Message,
    who: Option<Arc<Identity>>,
) -> Response<Body> {
    let id = match &message {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    };
    if let Some(refusal) = check_legacy_version(headers, id.clone()) {
        return refusal;
    }
    let message = match message {
        Message::Request(request) if request.method == methods::INITIALIZE => {
            return reply::batched(initialize(inner, request, who).await).await;
        }
        other => other,
    };
    let session = match session(inner, headers, id, who.as_deref()).await {
        Ok(session) => session,
        Err(refusal) => return *refusal,
    };
    match message {
        Message::Request(request) => {
            // Looked up once for the scope check and the call.
            let tool = inner.server.called_tool(&request);
            if let Some(refusal) = scope_refusal(&inner.server, &request, tool.as_deref(), who.as_deref()) {
                return refusal;
            }
            // Legacy: a closed stream is not a cancellation (SPEC §3.2).
            let sse_ok = accepts_sse(headers);
            reply::legacy_request(&inner.options, session, request, tool, who, sse_ok).await
        }
        Message::Notification(notification) => {
            notify(&session, notification);
            reply::batched(reply::status(StatusCode::ACCEPTED)).await
        }
        answer @ (Message::Response(_) | Message::Error(_)) => {
            answer_server(&session, answer);
            reply::batched(reply::status(StatusCode::ACCEPTED)).await
        }
    }
}

/// A client notification in a session. A cancellation also reaches the
/// other servers sharing the session: the request may run on one of them.
fn notify(session: &OpenSession, notification: Notification) {
    if let Some(shared) = session.shared()
        && notification.method == methods::NOTIFICATION_CANCELLED
        && let Some(request) = notification
            .params
            .as_ref()
            .and_then(|p| serde_json::from_value::<CancelledNotificationParams>(p.clone()).ok())
            .and_then(|p| p.request_id)
    {
        shared.tell(Note::Cancel { session: session.id.to_string(), request });
    }
    session.connection.handle_notification(notification);
}

/// The client's answer to a server request: for the request waiting here,
/// or else for the server sharing the session where it waits.
fn answer_server(session: &OpenSession, answer: Message) {
    let forward = session.shared().map(|shared| (shared, answer.clone()));
    if !session.connection.handle_answer(answer)
        && let Some((shared, message)) = forward
    {
        shared.tell(Note::Answer { session: session.id.to_string(), message });
    }
}

/// A legacy `MCP-Protocol-Version` header, when there is one, must name a
/// legacy revision: the 400 refusal otherwise.
fn check_legacy_version(headers: &HeaderMap, id: Option<RequestId>) -> Option<Response<Body>> {
    let version = headers::protocol_version(headers)?;
    if version.parse::<ProtocolVersion>().is_ok_and(|v| !v.is_modern()) {
        return None;
    }
    let error = McpError::UnsupportedProtocolVersion { requested: version.to_owned() };
    let text = format!("Bad Request: unsupported MCP-Protocol-Version: {error}");
    Some(reply::error(StatusCode::BAD_REQUEST, id, codes::INVALID_REQUEST, &text))
}

/// The session named by `Mcp-Session-Id`: 400 without the header, 404 for an
/// unknown or ended session.
async fn session(
    inner: &Inner,
    headers: &HeaderMap,
    id: Option<RequestId>,
    who: Option<&Identity>,
) -> Result<Arc<OpenSession>, Box<Response<Body>>> {
    let Some(session_id) = headers::session_id(headers) else {
        let text = "Bad Request: Mcp-Session-Id header is required";
        return Err(Box::new(reply::error(StatusCode::BAD_REQUEST, id, codes::INVALID_REQUEST, text)));
    };
    match owned_session(inner, &session_id, who).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Box::new(reply::error(
            StatusCode::NOT_FOUND,
            id,
            codes::INVALID_REQUEST,
            "Session not found",
        ))),
        Err(refusal) => Err(Box::new(refusal.with_id(id))),
    }
}

/// The session `session_id`, if `who` opened it: another caller's session
/// is answered as if it did not exist. `Err` (503) when sessions are shared
/// and the shared state is out of reach.
pub(super) async fn owned_session(
    inner: &Inner,
    session_id: &str,
    who: Option<&Identity>,
) -> Result<Option<Arc<OpenSession>>, Unreachable> {
    match inner.sessions.find(session_id, &inner.server, who).await {
        Ok(session) => Ok(session.filter(|s| same_principal(s.connection.identity.as_deref(), who))),
        Err(error) => {
            tracing::debug!(%error, "a session may be held by another server: cannot tell");
            Err(Unreachable)
        }
    }
}

/// The shared session state could not be read.
#[derive(Debug)]
pub(super) struct Unreachable;

impl Unreachable {
    /// 503 with `Retry-After` and a JSON-RPC error answering `id`.
    pub(super) fn with_id(self, id: Option<RequestId>) -> Response<Body> {
        let text = "Service Unavailable: the session's shared state is out of reach, try again later";
        let mut response = reply::error(StatusCode::SERVICE_UNAVAILABLE, id, codes::INTERNAL_ERROR, text);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }
}

/// The `Mcp-Param-*` headers of a modern `tools/call` (SPEC §3.1). An unknown
/// tool is the handler's `-32602`.
fn check_header_params(
    headers: &HeaderMap,
    request: &mcp_core::jsonrpc::Request,
    tool: Option<&ToolRoute>,
) -> Result<(), McpError> {
    let Some(route) = tool else { return Ok(()) };
    let arguments = request.params.as_ref().and_then(|p| p.get("arguments"));
    headers::check_params(headers, arguments, route.header_params())
}

/// Whether the client takes an SSE answer: `Accept` is absent or names
/// `text/event-stream` (or a wildcard covering it).
fn accepts_sse(headers: &HeaderMap) -> bool {
    let mut accepts = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).peekable();
    if accepts.peek().is_none() {
        return true;
    }
    accepts.flat_map(|v| v.split(',')).any(|item| {
        let range = item.split(';').next().unwrap_or_default().trim();
        ["text/event-stream", "text/*", "*/*"].iter().any(|r| range.eq_ignore_ascii_case(r))
    })
}

/// `initialize` opens a session; its id goes back in `Mcp-Session-Id`. At
/// the session cap the least recently used idle session makes room; when all
/// are busy the answer is 503 with a JSON-RPC error.
async fn initialize(
    inner: &Inner,
    request: mcp_core::jsonrpc::Request,
    who: Option<Arc<Identity>>,
) -> Response<Body> {
    let id = request.id.clone();
    let connection = Connection::new(inner.server.clone(), who);
    let (tx, _rx) = mpsc::channel(1);
    let Some(answer) = connection.handle_request(request, tx, None).await else {
        return reply::status(StatusCode::NO_CONTENT);
    };
    if !matches!(answer, Message::Response(_)) {
        return reply::json(StatusCode::OK, &answer);
    }
    let session = match inner.sessions.insert(connection) {
        Ok(session) => session,
        Err(refused) => return session_refused(&inner.options, refused, id),
    };
    // Shared before the client learns the id: its next request may reach any server.
    match session.share().await {
        Ok(()) => {}
        Err(ShareError::TooLarge) => {
            inner.sessions.end_here(&session.id);
            let text = "Invalid params: the client's capabilities and information are too large";
            return reply::error(StatusCode::BAD_REQUEST, Some(id), codes::INVALID_PARAMS, text);
        }
        Err(ShareError::Unreachable(error)) => {
            tracing::warn!(%error, "initialize refused: the session could not be shared");
            inner.sessions.end_here(&session.id);
            return Unreachable.with_id(Some(id));
        }
    }
    let mut response = reply::json(StatusCode::OK, &answer);
    if let Ok(value) = HeaderValue::from_str(&session.id) {
        response.headers_mut().insert(SESSION_ID.clone(), value);
    }
    response
}

/// `initialize` opened no session: 503 when every session is busy at the
/// cap, 429 when the caller holds its quota of busy sessions (RFC 6585
/// §4); both with `Retry-After` and a JSON-RPC error.
fn session_refused(options: &HttpOptions, refused: Refused, id: RequestId) -> Response<Body> {
    let (status, text) = match refused {
        Refused::Full => {
            tracing::warn!(max = options.max_sessions, "initialize refused: every session is busy");
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable: too many open sessions, try again later")
        }
        Refused::Quota => {
            tracing::warn!(
                max = options.max_sessions_per_principal,
                "initialize refused: the caller's sessions are all busy"
            );
            (
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests: this caller has too many open sessions; end one (DELETE) or try again later",
            )
        }
    };
    let mut response = reply::error(status, Some(id), codes::INTERNAL_ERROR, text);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// A JSON-RPC batch: accepted only in a session that negotiated 2025-03-26
/// (SPEC §1), answered with a JSON array of the responses, or 202 when it
/// holds only notifications and responses. Messages a handler sends meanwhile
/// have no stream to go on and are dropped; asking the client fails.
async fn batch(
    inner: &Inner,
    headers: &HeaderMap,
    items: Vec<Result<Message, FramingError>>,
    who: Option<Arc<Identity>>,
) -> Response<Body> {
    let refuse = || {
        let text = "Invalid Request: batches are only accepted in sessions that negotiated 2025-03-26";
        reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text)
    };
    if check_legacy_version(headers, None).is_some() {
        return refuse();
    }
    if items.len() > crate::transport::stdio::MAX_BATCH_ITEMS {
        let text = "Invalid Request: too many messages in one batch";
        return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
    }
    let Some(session_id) = headers::session_id(headers) else { return refuse() };
    let session = match owned_session(inner, &session_id, who.as_deref()).await {
        Ok(session) => session,
        Err(refusal) => return refusal.with_id(None),
    };
    let Some(session) = session else {
        return reply::error(StatusCode::NOT_FOUND, None, codes::INVALID_REQUEST, "Session not found");
    };
    if !session.connection.allows_batching() {
        return refuse();
    }
    // Step-up applies to the whole batch: one 403 naming every scope its requests need.
    if let Some(who) = who.as_deref() {
        let mut needed: Vec<String> = Vec::new();
        for request in items.iter().filter_map(|i| match i {
            Ok(Message::Request(r)) => Some(r),
            _ => None,
        }) {
            for scope in inner.server.scope_challenge(request, None, who).unwrap_or_default() {
                if !needed.contains(&scope) {
                    needed.push(scope);
                }
            }
        }
        if !needed.is_empty() {
            return insufficient_scope(None, needed);
        }
    }
    let _busy = session.busy();
    let mut answers = Vec::new();
    let mut running = Vec::new();
    for item in items {
        match item {
            Err(e) => answers.push(Message::Error(e.to_response())),
            Ok(Message::Request(request)) if request.method == methods::INITIALIZE => {
                let error = ErrorObject::new(
                    codes::INVALID_REQUEST,
                    "Invalid Request: initialize may not be batched",
                );
                answers.push(Message::Error(ErrorResponse::new(Some(request.id), error)));
            }
            Ok(Message::Request(request)) => {
                let mut connection = session.connection.clone();
                // Each request runs as the caller its own token names.
                if who.is_some() {
                    connection.identity = who.clone();
                }
                let (tx, _) = mpsc::channel(1);
                let id = request.id.clone();
                let handling = async move { connection.handle_request(request, tx, None).await };
                running.push((id, tokio::spawn(handling)));
            }
            Ok(Message::Notification(notification)) => notify(&session, notification),
            Ok(answer) => answer_server(&session, answer),
        }
    }
    for (id, task) in running {
        match task.await {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) => {}
            Err(_) => {
                let error = ErrorObject::new(codes::INTERNAL_ERROR, "the request handler failed");
                answers.push(Message::Error(ErrorResponse::new(Some(id), error)));
            }
        }
    }
    if answers.is_empty() {
        return reply::status(StatusCode::ACCEPTED);
    }
    reply::json_body(StatusCode::OK, serde_json::to_vec(&answers).unwrap_or_default())
}
