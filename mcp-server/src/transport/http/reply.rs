//! Writing answers: a single JSON body, or an SSE stream.
//!
//! - **Modern** requests ([`Running`]): JSON when the response comes first,
//!   SSE when the handler sends messages first. Closing the stream cancels
//!   the request (SPEC §3.1); nothing is kept.
//! - **Legacy** requests ([`legacy_request`]): the handler runs in its own
//!   task, and once the answer is an SSE stream that task numbers every
//!   message and writes it to the session's event store. The POST connection,
//!   and any `GET` + `Last-Event-ID` that resumes the stream later, read from
//!   there, so a broken connection neither cancels the request nor loses its
//!   messages (SPEC §3.2). In 2025-11-25 sessions the stream opens with a
//!   priming event (an id, `retry:`, empty data) and, when polling is
//!   configured, the server closes the connection early and the client comes
//!   back for the rest.
//! - A session's **standalone** `GET` stream ([`get_stream`]) carries its
//!   `list_changed` and resource update notifications, numbered and stored the
//!   same way.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use mcp_core::Identity;
use mcp_core::error::codes;
use mcp_core::jsonrpc::{ErrorObject, ErrorResponse, Message, Request, RequestId, to_json_vec};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backplane::{Backplane, Note, SharedEvents};
use super::event_store::{EventId, StoredEvent, is_standalone};
use super::sessions::{Busy, HttpOptions, OpenSession};
use crate::changes::{ChangeFeed, EVERY_LIST};
use crate::config::ResponseMode;
use crate::server::{Change, Server};
use crate::tool::ToolRoute;

/// How many messages a handler may queue ahead of the HTTP writer.
pub(super) const OUTBOUND_CAPACITY: usize = 64;

/// The `Last-Event-ID` request header.
const LAST_EVENT_ID: &str = "last-event-id";

/// A comment line that keeps a silent stream open.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// An empty response with `status`.
pub(super) fn status(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// One message as an `application/json` body.
pub(super) fn json(status: StatusCode, message: &Message) -> Response<Body> {
    json_body(status, to_json_vec(message).unwrap_or_default())
}

/// Serialized JSON as an `application/json` body.
pub(super) fn json_body(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON-RPC error as an `application/json` body.
pub(super) fn error(status: StatusCode, id: Option<RequestId>, code: i32, message: &str) -> Response<Body> {
    json(status, &Message::Error(ErrorResponse::new(id, ErrorObject::new(code, message))))
}

/// One message serialized on a single line.
fn serialize(message: &Message) -> Option<Bytes> {
    match to_json_vec(message) {
        Ok(data) => Some(Bytes::from(data)),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize an outgoing message");
            None
        }
    }
}

/// One SSE event carrying `message` on a single `data:` line, without an id.
pub(super) fn frame(message: &Message) -> Bytes {
    let Some(data) = serialize(message) else { return Bytes::new() };
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One SSE event with an id.
fn event_frame(id: EventId, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 64);
    let _ = write!(out, "id: {id}\nevent: message\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The priming event: an id to resume from, the reconnection delay, no data.
fn priming_frame(id: EventId, retry: Duration) -> Bytes {
    Bytes::from(format!("id: {id}\nretry: {}\ndata:\n\n", retry.as_millis()))
}

/// A `text/event-stream` response around `body`.
pub(super) fn sse_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Sleeps for `duration`, or forever.
pub(super) async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Cancels a modern request when its response is dropped unfinished (the
/// client closed the stream, SPEC §3.1): the handler future is dropped with
/// the response, and the token tells anything it started to stop as well.
#[derive(Debug)]
struct CancelOnDrop(CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A request handler's future: its final message, or `None` when cancelled.
type Handling = Pin<Box<dyn Future<Output = Option<Message>> + Send>>;

/// `response`, after letting the runtime serve the other ready connections.
///
/// A reply computed in the same poll that read its request would go out at
/// once, and each write would wake the client on its own. Under load,
/// yielding first lets the runtime read the other connections' requests, so
/// replies leave in batches and the client is woken once per batch: far
/// less kernel time per call (see BENCHMARKS.md). Unloaded it is one extra
/// poll. Replies that come from a task of their own are batched already.
pub(super) async fn batched(response: Response<Body>) -> Response<Body> {
    tokio::task::yield_now().await;
    response
}

/// A modern request being handled, with the messages it sends meanwhile.
///
/// The handler is polled by the response itself (no task of its own): first
/// while deciding between JSON and SSE, then by the SSE body. Dropping the
/// response drops the handler.
pub(super) struct Running {
    id: RequestId,
    outbound: mpsc::Receiver<Message>,
    /// `None` once finished.
    handling: Option<Handling>,
    _guard: CancelOnDrop,
}

/// The handler's outcome once it finishes (`None` when it panicked); pending
/// forever when there is no handler left.
async fn finished(handling: &mut Option<Handling>) -> Option<Option<Message>> {
    let Some(running) = handling else { return std::future::pending().await };
    let outcome = AssertUnwindSafe(running.as_mut()).catch_unwind().await.ok();
    *handling = None;
    outcome
}

impl Running {
    /// Handles a request with `handling` (which sends its messages to the
    /// sender paired with `outbound`). A dropped response fires `cancel`.
    pub(super) fn start<F>(
        id: RequestId,
        handling: F,
        outbound: mpsc::Receiver<Message>,
        cancel: CancellationToken,
    ) -> Self
    where
        F: Future<Output = Option<Message>> + Send + 'static,
    {
        Self { id, outbound, handling: Some(Box::pin(handling)), _guard: CancelOnDrop(cancel) }
    }

    /// JSON when the response comes before anything else, SSE otherwise.
    /// `status_of` picks the status of a JSON answer.
    pub(super) async fn respond(
        mut self,
        status_of: fn(&Message) -> StatusCode,
        mode: ResponseMode,
    ) -> Response<Body> {
        match mode {
            ResponseMode::Auto => {}
            ResponseMode::Sse => return self.into_sse(VecDeque::new(), false),
            ResponseMode::Json => {
                // Messages sent meanwhile have nowhere to go: drain and drop them.
                let last = loop {
                    tokio::select! {
                        biased;
                        Some(_) = self.outbound.recv() => {}
                        done = finished(&mut self.handling) => break finish(&self.id, done),
                    }
                };
                return match last {
                    Some(last) => json(status_of(&last), &last),
                    None => status(StatusCode::NO_CONTENT),
                };
            }
        }
        let first = tokio::select! {
            biased;
            Some(message) = self.outbound.recv() => Err(message),
            done = finished(&mut self.handling) => Ok(finish(&self.id, done)),
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

/// The final message of a request; an internal error when its task failed
/// (`done` is `None`).
fn finish(id: &RequestId, done: Option<Option<Message>>) -> Option<Message> {
    done.unwrap_or_else(|| {
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
                done = finished(&mut running.handling) => {
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

/// How a legacy request's answer begins.
enum Decision {
    /// A single JSON body (or nothing, when the request was cancelled).
    Json(Option<Message>),
    /// An SSE stream, recorded in the event store as `stream`.
    Sse { stream: u64, written: watch::Receiver<u64> },
}

/// Answers a legacy request. The answer is JSON when the handler finishes
/// within [`HttpOptions::json_window`] without sending anything first, and an
/// SSE stream otherwise (`sse_ok`: the client accepts one). The request runs
/// to its end whatever happens to the connection.
pub(super) async fn legacy_request(
    options: &HttpOptions,
    session: Arc<OpenSession>,
    request: Request,
    tool: Option<Arc<ToolRoute>>,
    who: Option<Arc<Identity>>,
    sse_ok: bool,
) -> Response<Body> {
    let id = request.id.clone();
    let (tx, outbound) = mpsc::channel(OUTBOUND_CAPACITY);
    let mut connection = session.connection.clone();
    // The request runs as the caller its own token names (a stepped-up token
    // brings its wider scopes), not as the token that opened the session.
    if who.is_some() {
        connection.identity = who;
    }
    // The handler runs in its own task, holding the session busy, so it runs
    // to its end whatever happens to this connection.
    let busy = session.busy();
    let handler = tokio::spawn(async move {
        let _busy = busy;
        connection.handle_request(request, tx, tool).await
    });
    let json_only = !sse_ok || options.response_mode == ResponseMode::Json;
    let window = match options.response_mode {
        ResponseMode::Sse => Some(Duration::ZERO),
        _ => Some(options.json_window),
    };
    let decision = if json_only {
        answer_with_json(&id, handler, outbound).await
    } else {
        let json_allowed = options.response_mode != ResponseMode::Sse;
        decide(session.clone(), id.clone(), handler, outbound, window, json_allowed).await
    };
    match decision {
        Decision::Json(Some(message)) => json(StatusCode::OK, &message),
        Decision::Json(None) => status(StatusCode::NO_CONTENT),
        Decision::Sse { stream, written } => {
            let primes = session.primes();
            let mut prelude = VecDeque::new();
            if primes {
                prelude.push_back(priming_frame(EventId { stream, seq: 0 }, options.retry_interval));
            }
            let deadline = options.close_streams_after.filter(|_| primes).map(|after| Instant::now() + after);
            let reader = StreamReader {
                _busy: session.busy(),
                session,
                stream,
                cursor: 0,
                written: Some(written),
                prelude,
                deadline,
                keep_alive: KeepAlive::new(options.keep_alive),
            };
            sse_response(reader.into_body())
        }
    }
}

/// Numbers and stores the messages of one request stream.
struct Recorder {
    /// Held for its effect: the session is not idle while the stream is written.
    _busy: Busy,
    session: Arc<OpenSession>,
    stream: u64,
    seq: u64,
    written: watch::Sender<u64>,
}

impl Recorder {
    fn write(&mut self, message: &Message) {
        let Some(data) = serialize(message) else { return };
        self.seq += 1;
        self.session.append(self.stream, self.seq, data);
        self.written.send_replace(self.seq);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Everything is in the store: readers finish from there.
        self.session.close_request_stream(self.stream);
    }
}

fn joined(id: &RequestId, done: Result<Option<Message>, JoinError>) -> Option<Message> {
    finish(id, done.ok())
}

/// Decides how a legacy request's answer begins: JSON when the handler
/// finishes within `window` without sending anything first, otherwise an SSE
/// stream, whose messages a task of its own then writes to the event store.
async fn decide(
    session: Arc<OpenSession>,
    id: RequestId,
    mut handler: JoinHandle<Option<Message>>,
    mut outbound: mpsc::Receiver<Message>,
    window: Option<Duration>,
    json_allowed: bool,
) -> Decision {
    let mut queue = Vec::new();
    // `Some(last)` once the handler finished; `last` is `None` when cancelled.
    let mut finished: Option<Option<Message>> = None;
    let timer = sleep_for(window);
    tokio::pin!(timer);
    tokio::select! {
        biased;
        done = &mut handler => {
            let last = joined(&id, done);
            while let Ok(message) = outbound.try_recv() {
                queue.push(message);
            }
            // `response_mode = "sse"`: a stream even for an answer that is ready at once.
            if queue.is_empty() && json_allowed {
                return Decision::Json(last);
            }
            finished = Some(last);
        }
        Some(message) = outbound.recv() => queue.push(message),
        () = &mut timer => {}
    }
    let (stream, written) = session.open_request_stream();
    let mut recorder = Recorder { _busy: session.busy(), session, stream, seq: 0, written };
    let decision = Decision::Sse { stream, written: recorder.written.subscribe() };
    for message in &queue {
        recorder.write(message);
    }
    match finished {
        Some(last) => {
            if let Some(last) = &last {
                recorder.write(last);
            }
        }
        None => {
            tokio::spawn(record(recorder, id, handler, outbound));
        }
    }
    decision
}

/// Writes the rest of a legacy request's SSE answer to the event store.
async fn record(
    mut recorder: Recorder,
    id: RequestId,
    mut handler: JoinHandle<Option<Message>>,
    mut outbound: mpsc::Receiver<Message>,
) {
    loop {
        tokio::select! {
            biased;
            Some(message) = outbound.recv() => recorder.write(&message),
            done = &mut handler => {
                while let Ok(message) = outbound.try_recv() {
                    recorder.write(&message);
                }
                if let Some(last) = joined(&id, done) {
                    recorder.write(&last);
                }
                return;
            }
        }
    }
}

/// For clients that take only JSON (or `response_mode = "json"`): the final
/// message as one body; whatever the handler sends before it is dropped.
async fn answer_with_json(
    id: &RequestId,
    mut handler: JoinHandle<Option<Message>>,
    mut outbound: mpsc::Receiver<Message>,
) -> Decision {
    let last = loop {
        tokio::select! {
            biased;
            Some(_) = outbound.recv() => {}
            done = &mut handler => break joined(id, done),
        }
    };
    Decision::Json(last)
}

/// Reads one request stream from the event store: from the POST that
/// started it, or from a `GET` resuming it.
struct StreamReader {
    session: Arc<OpenSession>,
    stream: u64,
    /// The last sequence number read.
    cursor: u64,
    /// While the stream is being written: the last sequence number written.
    written: Option<watch::Receiver<u64>>,
    /// Frames ready to go.
    prelude: VecDeque<Bytes>,
    /// Polling: when to close the connection if the stream is still going.
    deadline: Option<Instant>,
    keep_alive: KeepAlive,
    /// Held for its effect: the session is not idle while this stream is open.
    _busy: Busy,
}

impl StreamReader {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.prelude.pop_front() {
                self.keep_alive.sent();
                return Some(frame);
            }
            if let Some(written) = &mut self.written {
                written.borrow_and_update();
            }
            let store = self.session.store();
            if let Some(events) = store.events_after(&self.session.id, self.stream, self.cursor)
                && !events.is_empty()
            {
                for event in events {
                    self.cursor = event.seq;
                    self.prelude
                        .push_back(event_frame(EventId { stream: self.stream, seq: event.seq }, &event.data));
                }
                continue;
            }
            let written = self.written.as_mut()?;
            tokio::select! {
                changed = written.changed() => {
                    if changed.is_err() {
                        // Complete: one last look at the store, then the end.
                        self.written = None;
                    }
                }
                () = self.session.ended.cancelled() => return None,
                () = sleep_until(self.deadline) => return None,
                frame = self.keep_alive.beat() => return Some(frame),
            }
        }
    }

    fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(self, |mut reader| async move {
            let frame = reader.next().await?;
            Some((Ok::<_, Infallible>(frame), reader))
        });
        Body::from_stream(stream)
    }
}

/// `GET` on a session: its standalone stream, or, with `Last-Event-ID`, the
/// rest of the stream that id belongs to. An id of another stream kind,
/// session or server resumes nothing: the answer is an empty stream.
pub(super) async fn get_stream(
    server: &Server,
    options: &HttpOptions,
    session: Arc<OpenSession>,
    headers: &HeaderMap,
) -> Response<Body> {
    let Some(last) = headers.get(LAST_EVENT_ID) else {
        return standalone(server, options, session, None).await;
    };
    match last.to_str().ok().and_then(EventId::parse) {
        Some(id) if id.stream == session.standalone => {
            standalone(server, options, session, Some(id.seq)).await
        }
        Some(id) if !is_standalone(id.stream) => resume(options, session, id).await,
        _ => sse_response(Body::empty()),
    }
}

/// When a connection reading a stream closes early (2025-11-25 polling).
fn polling_deadline(options: &HttpOptions, session: &OpenSession) -> Option<Instant> {
    options.close_streams_after.filter(|_| session.primes()).map(|after| Instant::now() + after)
}

/// The rest of a request stream, after `from`: from this server's store, or,
/// for a stream another server sharing the session wrote, from the shared one.
async fn resume(options: &HttpOptions, session: Arc<OpenSession>, from: EventId) -> Response<Body> {
    let written = session.follow(from.stream);
    let known =
        written.is_some() || session.store().events_after(&session.id, from.stream, from.seq).is_some();
    if !known {
        return match session.shared().cloned() {
            Some(shared) => resume_shared(options, session, shared, from).await,
            None => sse_response(Body::empty()),
        };
    }
    let deadline = polling_deadline(options, &session);
    let reader = StreamReader {
        _busy: session.busy(),
        session,
        stream: from.stream,
        cursor: from.seq,
        written,
        prelude: VecDeque::new(),
        deadline,
        keep_alive: KeepAlive::new(options.keep_alive),
    };
    sse_response(reader.into_body())
}

/// The rest of a stream written on another server sharing the session,
/// followed from the shared store until it completes.
async fn resume_shared(
    options: &HttpOptions,
    session: Arc<OpenSession>,
    shared: Arc<dyn Backplane>,
    from: EventId,
) -> Response<Body> {
    // Listen before reading, so no write falls in between.
    let notes = shared.notes();
    match shared.events_after(&session.id, from.stream, from.seq).await {
        Ok(Some(read)) => {
            let mut reader = SharedStreamReader {
                deadline: polling_deadline(options, &session),
                _busy: session.busy(),
                session,
                shared,
                notes,
                stream: from.stream,
                cursor: from.seq,
                complete: false,
                prelude: VecDeque::new(),
                keep_alive: KeepAlive::new(options.keep_alive),
                poll_at: Instant::now() + SHARED_POLL,
            };
            reader.take(read);
            sse_response(reader.into_body())
        }
        Ok(None) => sse_response(Body::empty()),
        Err(error) => {
            tracing::warn!(%error, "cannot resume a shared stream");
            super::post::Unreachable.with_id(None)
        }
    }
}

/// The session's standalone stream: replayed after `after` when resuming,
/// then live until the client leaves, another `GET` takes the stream over,
/// or the session ends.
async fn standalone(
    server: &Server,
    options: &HttpOptions,
    session: Arc<OpenSession>,
    after: Option<u64>,
) -> Response<Body> {
    // Subscribe before replaying, so nothing falls in between.
    let changes = server.change_feed();
    let notes = session.shared().map(|shared| shared.notes());
    let attached = session.attach();
    let stored = stored_standalone(&session, after).await;
    let mut prelude = VecDeque::new();
    match after {
        None if session.primes() => {
            let seq = session.standalone_seq.load(Ordering::Acquire);
            prelude.push_back(priming_frame(
                EventId { stream: session.standalone, seq },
                options.retry_interval,
            ));
        }
        None => {}
        Some(after) => {
            for event in stored.into_iter().filter(|event| event.seq > after) {
                let id = EventId { stream: session.standalone, seq: event.seq };
                prelude.push_back(event_frame(id, &event.data));
            }
        }
    }
    let reader = StandaloneReader {
        _busy: session.busy(),
        session,
        changes,
        notes,
        prelude,
        attached,
        keep_alive: KeepAlive::new(options.keep_alive),
    };
    let body = futures_util::stream::unfold(reader, |mut reader| async move {
        let frame = reader.next().await?;
        Some((Ok::<_, Infallible>(frame), reader))
    });
    sse_response(Body::from_stream(body))
}

/// The stored events of a session's standalone stream: here, or when the
/// session is shared, in the shared store, which every server holding the
/// stream wrote to. Numbering goes on after the last of them.
async fn stored_standalone(session: &OpenSession, after: Option<u64>) -> Vec<StoredEvent> {
    let stream = session.standalone;
    let Some(shared) = session.shared() else {
        // Nothing to number after: this server numbered them all.
        let Some(after) = after else { return Vec::new() };
        return session.store().events_after(&session.id, stream, after).unwrap_or_default();
    };
    let events = match shared.events_after(&session.id, stream, 0).await {
        Ok(read) => read.map(|read| read.events).unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "replaying the standalone stream from this server only");
            session.store().events_after(&session.id, stream, 0).unwrap_or_default()
        }
    };
    // Numbering goes on past a gap: events the server that held the stream
    // before was still writing keep numbers of their own, before this
    // server's, so a client resuming after the last one it saw gets them too.
    let last = events.last().map_or(0, |event| event.seq);
    session.standalone_seq.fetch_max(last + STANDALONE_MOVE_GAP, Ordering::AcqRel);
    events
}

/// How far numbering jumps when a shared session's standalone stream is
/// taken (see [`stored_standalone`]).
const STANDALONE_MOVE_GAP: u64 = 1_000;

/// Reads a stream another server writes, from the shared store: each time
/// that server says it wrote, and every [`SHARED_POLL`] in case a note was
/// lost.
struct SharedStreamReader {
    session: Arc<OpenSession>,
    shared: Arc<dyn Backplane>,
    notes: broadcast::Receiver<Arc<Note>>,
    stream: u64,
    /// The last sequence number read.
    cursor: u64,
    /// Whether the writer marked the stream complete.
    complete: bool,
    prelude: VecDeque<Bytes>,
    deadline: Option<Instant>,
    keep_alive: KeepAlive,
    /// When to read the stream again if no note says it was written.
    poll_at: Instant,
    /// Held for its effect: the session is not idle while this stream is open.
    _busy: Busy,
}

/// How often a stream followed on another server is read again without
/// being told of a write.
const SHARED_POLL: Duration = Duration::from_secs(1);

impl SharedStreamReader {
    fn take(&mut self, read: SharedEvents) {
        for event in read.events {
            if event.seq <= self.cursor {
                continue;
            }
            self.cursor = event.seq;
            self.prelude.push_back(event_frame(EventId { stream: self.stream, seq: event.seq }, &event.data));
        }
        self.complete |= read.complete;
    }

    /// Whether `note` says this stream was written (or notes were missed).
    fn written(&self, note: Result<Arc<Note>, broadcast::error::RecvError>) -> bool {
        match note.as_deref() {
            Ok(Note::Written { session, stream }) => *stream == self.stream && **session == *self.session.id,
            Ok(Note::Missed) | Err(_) => true,
            Ok(_) => false,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.prelude.pop_front() {
                self.keep_alive.sent();
                return Some(frame);
            }
            if self.complete {
                return None;
            }
            tokio::select! {
                note = self.notes.recv() => {
                    if !self.written(note) {
                        continue;
                    }
                }
                () = tokio::time::sleep_until(self.poll_at) => {}
                () = self.session.ended.cancelled() => return None,
                () = sleep_until(self.deadline) => return None,
                frame = self.keep_alive.beat() => return Some(frame),
            }
            self.poll_at = Instant::now() + SHARED_POLL;
            match self.shared.events_after(&self.session.id, self.stream, self.cursor).await {
                Ok(Some(read)) => self.take(read),
                Ok(None) => return None,
                Err(error) => tracing::debug!(%error, "a shared stream could not be read; trying again"),
            }
        }
    }

    fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(self, |mut reader| async move {
            let frame = reader.next().await?;
            Some((Ok::<_, Infallible>(frame), reader))
        });
        Body::from_stream(stream)
    }
}

/// The next note of another server, pending forever when sessions are not shared.
async fn next_note(
    notes: &mut Option<broadcast::Receiver<Arc<Note>>>,
) -> Result<Arc<Note>, broadcast::error::RecvError> {
    match notes {
        Some(notes) => notes.recv().await,
        None => std::future::pending().await,
    }
}

/// When a silent stream sends its next keep-alive: one interval after its
/// last frame, however often the reader wakes up meanwhile.
pub(super) struct KeepAlive {
    every: Option<Duration>,
    due: Option<Instant>,
}

impl KeepAlive {
    pub(super) fn new(every: Option<Duration>) -> Self {
        Self { every, due: every.map(|every| Instant::now() + every) }
    }

    /// A frame was just sent.
    pub(super) fn sent(&mut self) {
        self.due = self.every.map(|every| Instant::now() + every);
    }

    /// Waits until a keep-alive is due, and counts it as sent: the comment
    /// frame to send.
    pub(super) async fn beat(&mut self) -> Bytes {
        sleep_until(self.due).await;
        self.sent();
        Bytes::from_static(KEEP_ALIVE)
    }
}

struct StandaloneReader {
    session: Arc<OpenSession>,
    changes: ChangeFeed,
    /// Other servers' notes, when the session is shared: their changes.
    notes: Option<broadcast::Receiver<Arc<Note>>>,
    prelude: VecDeque<Bytes>,
    /// Fires when another connection takes the stream over or the session ends.
    attached: CancellationToken,
    keep_alive: KeepAlive,
    /// Held for its effect: the session is not idle while this stream is open.
    _busy: Busy,
}

impl StandaloneReader {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.prelude.pop_front() {
                self.keep_alive.sent();
                return Some(frame);
            }
            tokio::select! {
                () = self.attached.cancelled() => return None,
                changed = self.changes.next() => match changed {
                    Some(changed) => changed.changes().iter().for_each(|change| self.push(change)),
                    None => return None,
                },
                note = next_note(&mut self.notes) => match note.as_deref() {
                    Ok(Note::Change { change }) => self.push(&Change::from(change.clone())),
                    // Changes may have been missed: anything may have changed.
                    Ok(Note::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        EVERY_LIST.iter().for_each(|c| self.push(c));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => self.notes = None,
                },
                frame = self.keep_alive.beat() => return Some(frame),
            }
        }
    }

    /// Numbers, stores and queues the notification `change` becomes, if any.
    fn push(&mut self, change: &Change) {
        let session = &self.session;
        let Some(note) = session.connection.change_notification(change) else { return };
        let Some(data) = serialize(&note) else { return };
        let seq = session.standalone_seq.fetch_add(1, Ordering::AcqRel) + 1;
        session.append(session.standalone, seq, data.clone());
        self.prelude.push_back(event_frame(EventId { stream: session.standalone, seq }, &data));
    }
}
