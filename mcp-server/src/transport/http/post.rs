//! POST: one JSON-RPC message per request, of either era.

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use mcp_core::error::codes;
use mcp_core::jsonrpc::{Incoming, Message, parse};
use mcp_core::types::methods;
use mcp_core::{McpError, ProtocolVersion};
use tokio::sync::mpsc;

use super::headers::{self, SESSION_ID};
use super::reply::{self, OUTBOUND_CAPACITY, Running};
use super::{Inner, MAX_BODY_BYTES};
use crate::connection::Connection;

/// Handles a POST to the endpoint.
pub(super) async fn handle(inner: &Inner, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return reply::status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let bytes = match read_body(&parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let message = match parse(&bytes) {
        Ok(Incoming::Single(message)) => message,
        Ok(Incoming::Batch(_)) => {
            let text = "Invalid Request: batches are not supported over HTTP";
            return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
        }
        Err(e) => return reply::json(StatusCode::BAD_REQUEST, &Message::Error(e.to_response())),
    };
    let params = match &message {
        Message::Request(r) => r.params.as_ref(),
        Message::Notification(n) => n.params.as_ref(),
        _ => None,
    };
    if headers::is_modern(&parts.headers, params) {
        modern(inner, &parts.headers, message).await
    } else {
        legacy(inner, &parts.headers, message).await
    }
}

/// `Content-Type: application/json`, parameters (charset) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, Response<Body>> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(reply::status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(reply::status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(_) => Err(reply::status(StatusCode::BAD_REQUEST)),
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

fn legacy_status(_: &Message) -> StatusCode {
    StatusCode::OK
}

/// A stateless 2026-07-28 message.
async fn modern(inner: &Inner, headers: &HeaderMap, message: Message) -> Response<Body> {
    let request = match message {
        Message::Request(request) => request,
        Message::Notification(_) => return reply::status(StatusCode::ACCEPTED),
        Message::Response(_) | Message::Error(_) => {
            let text = "Invalid Request: clients do not send responses in this protocol version";
            return reply::error(StatusCode::BAD_REQUEST, None, codes::INVALID_REQUEST, text);
        }
    };
    if let Err(e) = headers::check_modern(headers, &request) {
        let error = e.to_error_object(ProtocolVersion::LATEST);
        let body = mcp_core::jsonrpc::ErrorResponse::new(Some(request.id), error);
        return reply::json(StatusCode::BAD_REQUEST, &Message::Error(body));
    }
    // A fresh connection per request: nothing is shared between requests, and
    // closing it cancels exactly this one.
    let connection = Connection::new(inner.server.clone(), None);
    let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let id = request.id.clone();
    let handling = {
        let connection = connection.clone();
        async move { connection.handle_request(request, tx).await }
    };
    Running::start(id, handling, rx, Some(connection)).respond(modern_status).await
}

/// A legacy (session) message.
async fn legacy(inner: &Inner, headers: &HeaderMap, message: Message) -> Response<Body> {
    let id = match &message {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    };
    if let Some(version) = headers::protocol_version(headers)
        && !version.parse::<ProtocolVersion>().is_ok_and(|v| !v.is_modern())
    {
        let error = McpError::UnsupportedProtocolVersion { requested: version.to_owned() };
        let text = format!("Bad Request: unsupported MCP-Protocol-Version: {error}");
        return reply::error(StatusCode::BAD_REQUEST, id, codes::INVALID_REQUEST, &text);
    }
    let message = match message {
        Message::Request(request) if request.method == methods::INITIALIZE => {
            return initialize(inner, request).await;
        }
        other => other,
    };
    let Some(session_id) = headers::session_id(headers) else {
        let text = "Bad Request: Mcp-Session-Id header is required";
        return reply::error(StatusCode::BAD_REQUEST, id, codes::INVALID_REQUEST, text);
    };
    let Some(connection) = inner.sessions.get(&session_id).map(|s| s.connection) else {
        let text = "Session not found";
        return reply::error(StatusCode::NOT_FOUND, id, codes::INVALID_REQUEST, text);
    };
    match message {
        Message::Request(request) => {
            let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
            let id = request.id.clone();
            let handling = async move { connection.handle_request(request, tx).await };
            // Legacy: a closed stream is not a cancellation (SPEC §3.2).
            Running::start(id, handling, rx, None).respond(legacy_status).await
        }
        Message::Notification(notification) => {
            connection.handle_notification(notification);
            reply::status(StatusCode::ACCEPTED)
        }
        answer @ (Message::Response(_) | Message::Error(_)) => {
            connection.handle_answer(answer);
            reply::status(StatusCode::ACCEPTED)
        }
    }
}

/// `initialize` opens a session; its id goes back in `Mcp-Session-Id`.
async fn initialize(inner: &Inner, request: mcp_core::jsonrpc::Request) -> Response<Body> {
    let connection = Connection::new(inner.server.clone(), None);
    let (tx, _rx) = mpsc::channel(1);
    let Some(answer) = connection.handle_request(request, tx).await else {
        return reply::status(StatusCode::NO_CONTENT);
    };
    let mut response = reply::json(StatusCode::OK, &answer);
    if matches!(answer, Message::Response(_)) {
        let session_id = inner.sessions.insert(connection);
        if let Ok(value) = HeaderValue::from_str(&session_id) {
            response.headers_mut().insert(SESSION_ID, value);
        }
    }
    response
}
