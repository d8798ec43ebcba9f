//! Writing answers: a single JSON body, or an SSE stream when the handler
//! sends messages before its response.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use mcp_core::error::codes;
use mcp_core::jsonrpc::{ErrorObject, ErrorResponse, Message, RequestId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::sessions::OpenSession;
use crate::connection::Connection;
use crate::server::Server;

/// How many messages a handler may queue ahead of the HTTP writer.
pub(super) const OUTBOUND_CAPACITY: usize = 64;

/// An empty response with `status`.
pub(super) fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// One message as an `application/json` body.
pub(super) fn json(status: StatusCode, message: &Message) -> Response<Body> {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON-RPC error as an `application/json` body.
pub(super) fn error(status: StatusCode, id: Option<RequestId>, code: i32, message: &str) -> Response<Body> {
    json(status, &Message::Error(ErrorResponse::new(id, ErrorObject::new(code, message))))
}

/// One SSE event carrying `message` on a single `data:` line.
fn frame(message: &Message) -> Bytes {
    let mut out = b"event: message\ndata: ".to_vec();
    if serde_json::to_writer(&mut out, message).is_err() {
        tracing::error!("could not serialize an outgoing message");
        return Bytes::new();
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn sse_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Stops a modern request when its response is dropped unfinished (the
/// client closed the stream, SPEC §3.1).
#[derive(Debug)]
struct CancelOnDrop {
    task: AbortHandle,
    connection: Option<Connection>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.close();
            self.task.abort();
        }
    }
}

/// A request running in its own task, with the messages it sends meanwhile.
#[derive(Debug)]
pub(super) struct Running {
    id: RequestId,
    outbound: mpsc::Receiver<Message>,
    done: oneshot::Receiver<Option<Message>>,
    _guard: CancelOnDrop,
}

impl Running {
    /// Runs `handling` (which sends its messages to the sender paired with
    /// `outbound`). With `cancel_with`, a dropped response cancels it
    /// (modern); without, it runs to the end (legacy).
    pub(super) fn start<F>(
        id: RequestId,
        handling: F,
        outbound: mpsc::Receiver<Message>,
        cancel_with: Option<Connection>,
    ) -> Self
    where
        F: Future<Output = Option<Message>> + Send + 'static,
    {
        let (tx, done) = oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = tx.send(handling.await);
        });
        let guard = CancelOnDrop { task: task.abort_handle(), connection: cancel_with };
        Self { id, outbound, done, _guard: guard }
    }

    /// JSON when the response comes before anything else, SSE otherwise.
    /// `status_of` picks the status of a JSON answer.
    pub(super) async fn respond(mut self, status_of: fn(&Message) -> StatusCode) -> Response<Body> {
        let first = tokio::select! {
            biased;
            Some(message) = self.outbound.recv() => Err(message),
            done = &mut self.done => Ok(finish(&self.id, done)),
        };
        match first {
            Ok(last) => {
                let mut queue: VecDeque<Message> = VecDeque::new();
                while let Ok(message) = self.outbound.try_recv() {
                    queue.push_back(message);
                }
                match (queue.is_empty(), last) {
                    (true, Some(last)) => json(status_of(&last), &last),
                    (true, None) => status(StatusCode::NO_CONTENT),
                    (false, last) => {
                        queue.extend(last);
                        self.into_sse(queue, true)
                    }
                }
            }
            Err(message) => self.into_sse(VecDeque::from([message]), false),
        }
    }

    fn into_sse(self, queue: VecDeque<Message>, finished: bool) -> Response<Body> {
        let state = SseState { queue, finished, running: self };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            let message = state.next().await?;
            Some((Ok::<_, Infallible>(frame(&message)), state))
        });
        sse_response(Body::from_stream(stream))
    }
}

/// The final message of a request; an internal error when its task panicked.
fn finish(id: &RequestId, done: Result<Option<Message>, oneshot::error::RecvError>) -> Option<Message> {
    done.unwrap_or_else(|_| {
        let error = ErrorObject::new(codes::INTERNAL_ERROR, "the request handler failed");
        Some(Message::Error(ErrorResponse::new(Some(id.clone()), error)))
    })
}

struct SseState {
    queue: VecDeque<Message>,
    finished: bool,
    running: Running,
}

impl SseState {
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some(message);
            }
            if self.finished {
                return None;
            }
            let running = &mut self.running;
            tokio::select! {
                biased;
                Some(message) = running.outbound.recv() => return Some(message),
                done = &mut running.done => {
                    let last = finish(&running.id, done);
                    while let Ok(message) = running.outbound.try_recv() {
                        self.queue.push_back(message);
                    }
                    self.queue.extend(last);
                    self.finished = true;
                }
            }
        }
    }
}

/// A legacy session's GET stream: its `list_changed` and resource update
/// notifications, until the client disconnects or the session ends.
pub(super) fn notification_stream(server: &Server, session: OpenSession) -> Response<Body> {
    let changes = server.subscribe_changes();
    let stream = futures_util::stream::unfold((changes, session), |(mut changes, session)| async move {
        loop {
            let change = tokio::select! {
                () = session.ended.cancelled() => return None,
                change = changes.recv() => change,
            };
            match change {
                Ok(change) => {
                    if let Some(note) = session.connection.change_notification(&change) {
                        return Some((Ok::<_, Infallible>(frame(&note)), (changes, session)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    sse_response(Body::from_stream(stream))
}
