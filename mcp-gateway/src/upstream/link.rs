//! How messages reach an upstream and come back: a spawned process's
//! stdin/stdout, Streamable HTTP POSTs (their JSON or SSE answers, and the
//! GET stream), or a legacy HTTP+SSE pair. Every message the upstream sends
//! goes into one channel of [`Incoming`]; the connection ends with
//! [`Incoming::Lost`].

use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::BodyExt as _;
use mcp_server::core::error::with_causes;
use mcp_server::core::jsonrpc::to_json_vec;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::http_client::{Body, Client, Target};
use super::peer::Peer;
use super::{UpstreamError, lock};
use crate::config::UpstreamConfig;

/// Longest message read from an upstream: 16 MiB.
pub(crate) const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// What the upstream sent.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message, and the request whose answer stream carried it, if known.
    Message(Value, Option<u64>),
    /// The connection is over (the process exited, the session expired).
    Lost(String),
}

/// The sending half of a connection.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Stdio(mpsc::Sender<Vec<u8>>),
    Http(Arc<HttpLink>),
}

impl Link {
    /// Sends one message (a notification, an answer, a request whose reply
    /// is not waited on here); an HTTP exchange runs in a task of its own.
    pub(crate) async fn send(&self, message: Value) -> Result<(), UpstreamError> {
        let id = message.get("method").and(message.get("id")).cloned();
        let body = to_json_vec(&message).map_err(|e| UpstreamError::Garbage(e.to_string()))?;
        if let Some(exchange) = self.start(body, id, None).await? {
            tokio::spawn(exchange);
        }
        Ok(())
    }

    /// Sends one message already written as JSON; `id` when it is a
    /// request, with headers of this message's own (HTTP only). An HTTP
    /// exchange (the POST and the reading of its answer) is returned for
    /// the caller to drive; dropping it aborts the POST. Its answers come
    /// back as on stdio, through the peer.
    pub(crate) async fn start(
        &self,
        mut body: Vec<u8>,
        id: Option<Value>,
        extra: Option<HeaderMap>,
    ) -> Result<Option<Exchange>, UpstreamError> {
        match self {
            Self::Stdio(stdin) => {
                body.push(b'\n');
                stdin
                    .send(body)
                    .await
                    .map_err(|_| UpstreamError::Unavailable("the process exited".into()))?;
                Ok(None)
            }
            Self::Http(http) => {
                let http = http.clone();
                Ok(Some(Box::pin(async move { http.post(Bytes::from(body), id, extra).await })))
            }
        }
    }
}

/// An HTTP exchange still to run: see [`Link::start`].
pub(crate) type Exchange = BoxFuture<'static, ()>;

/// A spawned stdio upstream; killed when dropped.
#[derive(Debug)]
pub(crate) struct Process {
    _child: Child,
}

/// Spawns the command, with a writer for stdin, a reader for stdout and
/// stderr logged line by line.
pub(crate) fn spawn(
    name: &str,
    config: &UpstreamConfig,
    incoming: mpsc::Sender<Incoming>,
) -> Result<(Link, Process), UpstreamError> {
    let program = config.command.as_deref().unwrap_or_default();
    let mut child = Command::new(program)
        .args(&config.args)
        .envs(&config.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| UpstreamError::Unavailable(format!("could not start {program:?}: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(UpstreamError::Unavailable("the process has no stdio pipes".into()));
    };
    let (writer, mut lines) = mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(read_stdout(stdout, incoming));
    let upstream = name.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(upstream = %upstream, "stderr: {line}");
        }
    });
    Ok((Link::Stdio(writer), Process { _child: child }))
}

/// Newline-delimited JSON-RPC from the process's stdout. A line that is not
/// JSON is logged and skipped; one past [`MAX_MESSAGE`] ends the connection.
async fn read_stdout(stdout: tokio::process::ChildStdout, incoming: mpsc::Sender<Incoming>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        let limit = u64::try_from(MAX_MESSAGE).unwrap_or(u64::MAX) + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => break "the process closed its stdout (exited)".to_owned(),
            Ok(_) if line.len() > MAX_MESSAGE => break format!("a message larger than {MAX_MESSAGE} bytes"),
            Ok(_) => {}
            Err(e) => break format!("reading its stdout failed: {e}"),
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(message) => {
                if incoming.send(Incoming::Message(message, None)).await.is_err() {
                    return;
                }
            }
            Err(_) => tracing::warn!("a stdio upstream wrote a line that is not JSON; skipped"),
        }
    };
    let _ = incoming.send(Incoming::Lost(reason)).await;
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `Mcp-Session-Id`.
const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `MCP-Protocol-Version`.
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// A Streamable HTTP or legacy SSE upstream: where to POST, the session,
/// and the headers from the configuration.
#[derive(Debug)]
pub(crate) struct HttpLink {
    client: Client,
    /// Streamable HTTP: the endpoint. Legacy SSE: the message endpoint the
    /// stream named. Parsed once.
    post_url: Mutex<Arc<Target>>,
    headers: HeaderMap,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    legacy: bool,
    incoming: mpsc::Sender<Incoming>,
    /// The connection's peer, which a POST's JSON answer goes straight to
    /// (not through `incoming`, another task's).
    peer: OnceLock<Weak<Peer>>,
}

/// The configured headers; `Authorization` only when the operator set it
/// for this upstream (the client's own is never forwarded).
pub(crate) fn configured_headers(config: &UpstreamConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        let name =
            HeaderName::try_from(name.as_str()).map_err(|_| format!("header name {name:?} is not valid"))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("header {name} has an invalid value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

impl HttpLink {
    pub(crate) fn new(
        client: Client,
        url: Uri,
        headers: HeaderMap,
        legacy: bool,
        incoming: mpsc::Sender<Incoming>,
    ) -> Self {
        Self {
            client,
            post_url: Mutex::new(Arc::new(Target::new(url))),
            headers,
            session: Mutex::new(None),
            version: Mutex::new(None),
            legacy,
            incoming,
            peer: OnceLock::new(),
        }
    }

    /// The peer that JSON answers go straight to from now on.
    pub(crate) fn set_peer(&self, peer: &Arc<Peer>) {
        let _ = self.peer.set(Arc::downgrade(peer));
    }

    /// Hands one message of a POST's JSON answer to the peer. Boxed: the
    /// peer's answers to the upstream's requests are POSTs in turn.
    fn deliver(&self, message: Value, origin: Option<u64>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            match self.peer.get().and_then(Weak::upgrade) {
                Some(peer) => peer.receive(message, origin).await,
                None => {
                    let _ = self.incoming.send(Incoming::Message(message, origin)).await;
                }
            }
        })
    }

    /// Sets the negotiated version, sent as `MCP-Protocol-Version` from now on.
    pub(crate) fn set_version(&self, version: &str) {
        *lock(&self.version) = HeaderValue::try_from(version).ok();
    }

    /// Sends a request to `target` with the configured headers, the
    /// session's, the negotiated version, this request's own `extra` ones
    /// and `accept`; the answer's head, with its body still to read.
    async fn send(
        &self,
        method: Method,
        target: &Target,
        extra: Option<HeaderMap>,
        accept: &'static str,
        body: Bytes,
    ) -> Result<http::Response<Body>, String> {
        let mut headers = self.headers.clone();
        if let Some(host) = &target.host
            && !headers.contains_key(header::HOST)
        {
            headers.insert(header::HOST, host.clone());
        }
        if let Some(session) = lock(&self.session).clone() {
            headers.append(SESSION_ID, session);
        }
        if let Some(version) = lock(&self.version).clone() {
            headers.append(PROTOCOL_VERSION, version);
        }
        for (name, value) in extra.iter().flatten() {
            headers.insert(name.clone(), value.clone());
        }
        headers.append(header::ACCEPT, HeaderValue::from_static(accept));
        if !body.is_empty() {
            headers.entry(header::CONTENT_TYPE).or_insert(HeaderValue::from_static("application/json"));
        }
        let mut request = http::Request::new(body);
        *request.method_mut() = method;
        *request.headers_mut() = headers;
        // The URI is the client's to write (origin-form, or absolute to a proxy).
        self.client.send(target, request).await
    }

    /// POSTs one message; whatever comes back goes into the incoming channel.
    /// `id` is the message's when it is a request.
    async fn post(&self, body: Bytes, id: Option<Value>, extra: Option<HeaderMap>) {
        let origin = id.as_ref().and_then(Value::as_u64);
        let url = lock(&self.post_url).clone();
        let response =
            match self.send(Method::POST, &url, extra, "application/json, text/event-stream", body).await {
                Ok(response) => response,
                Err(e) => return self.failed(id, format!("the upstream could not be reached: {e}")).await,
            };
        let status = response.status();
        if let Some(session) = response.headers().get(SESSION_ID) {
            *lock(&self.session) = Some(session.clone());
        }
        if status == StatusCode::NOT_FOUND && lock(&self.session).is_some() {
            self.failed(id, "the upstream session expired".into()).await;
            let _ = self.incoming.send(Incoming::Lost("the upstream session expired (404)".into())).await;
            return;
        }
        if !status.is_success() {
            return self.failed(id, format!("the upstream answered {status}")).await;
        }
        if self.legacy || status == StatusCode::ACCEPTED {
            return; // Legacy answers, and answers to notifications, come another way.
        }
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if is_sse {
            Box::pin(read_events(response.into_body(), &self.incoming, |_, data| data_message(data, origin)))
                .await;
            return;
        }
        let body = match read_limited(response.into_body()).await {
            Ok(body) => body,
            Err(reason) => return self.failed(id, reason).await,
        };
        // The usual answer, a result: read once, by whoever waits for it.
        if let Ok(answer) = serde_json::from_slice::<ResultResponse>(&body)
            && answer.error.is_none()
            && answer.method.is_none()
            && let Some(peer) = self.peer.get().and_then(Weak::upgrade)
        {
            peer.result(answer.id, answer.result);
            return;
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(messages)) => {
                for message in messages {
                    self.deliver(message, origin).await;
                }
            }
            Ok(message) => self.deliver(message, origin).await,
            Err(_) => self.failed(id, "the upstream answered with a body that is not JSON".into()).await,
        }
    }

    /// Turns a failed POST of a request into its error response.
    async fn failed(&self, id: Option<Value>, reason: String) {
        tracing::warn!(%reason, "forwarding to an HTTP upstream failed");
        if let Some(id) = id {
            let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": reason}});
            let _ = self.incoming.send(Incoming::Message(error, None)).await;
        }
    }

    /// Opens the standalone GET stream of a Streamable HTTP session (server
    /// notifications such as `tools/list_changed`), when the upstream has
    /// one, and reads it in the background; returns once it is open.
    pub(crate) async fn listen(self: Arc<Self>) {
        let url = lock(&self.post_url).clone();
        match self.send(Method::GET, &url, None, "text/event-stream", Bytes::new()).await {
            Ok(response) if response.status().is_success() => {
                let link = self.clone();
                tokio::spawn(async move {
                    read_events(response.into_body(), &link.incoming, |_, data| data_message(data, None))
                        .await;
                });
            }
            _ => tracing::debug!("the upstream offers no GET stream"),
        }
    }

    /// Legacy SSE: opens the stream, waits for its `endpoint` event, and
    /// then forwards every `message` event. Returns once the endpoint is known.
    pub(crate) async fn open_legacy(self: Arc<Self>, sse_url: String) -> Result<(), UpstreamError> {
        let uri = sse_url
            .parse::<Uri>()
            .map_err(|e| UpstreamError::Unavailable(format!("url {sse_url:?} is not a URL: {e}")))?;
        let response = self
            .send(Method::GET, &Target::new(uri), None, "text/event-stream", Bytes::new())
            .await
            .map_err(|e| UpstreamError::Unavailable(format!("the SSE stream could not be opened: {e}")))?;
        if !response.status().is_success() {
            return Err(UpstreamError::Unavailable(format!("the SSE stream answered {}", response.status())));
        }
        let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel::<String>();
        let link = self.clone();
        tokio::spawn(async move {
            let mut endpoint = Some(endpoint_tx);
            let base = reqwest::Url::parse(&sse_url).ok();
            let incoming = link.incoming.clone();
            let target = link.clone();
            read_events(response.into_body(), &incoming, move |event, data| {
                if event == "endpoint" {
                    let joined = base.as_ref().and_then(|b| b.join(data).ok());
                    let uri = joined.as_ref().and_then(|url| url.as_str().parse::<Uri>().ok());
                    if let (Some(url), Some(uri), Some(tx)) = (joined, uri, endpoint.take()) {
                        let _ = tx.send(url.to_string());
                        *lock(&target.post_url) = Arc::new(Target::new(uri));
                    }
                    return None;
                }
                data_message(data, None)
            })
            .await;
            let _ = link.incoming.send(Incoming::Lost("the SSE stream ended".into())).await;
        });
        let within = tokio::time::timeout(std::time::Duration::from_secs(10), endpoint_rx).await;
        match within {
            Ok(Ok(_)) => Ok(()),
            _ => Err(UpstreamError::Unavailable("the SSE stream sent no endpoint event".into())),
        }
    }
}

/// A JSON-RPC response with a result to a request of the gateway's (whose
/// ids are numbers), the result left unread; anything else, such as an
/// error or a batch, fails to match and is read as a JSON value.
#[derive(serde::Deserialize)]
struct ResultResponse {
    id: u64,
    result: Box<serde_json::value::RawValue>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

fn data_message(data: &str, origin: Option<u64>) -> Option<Incoming> {
    match serde_json::from_str::<Value>(data) {
        Ok(message) => Some(Incoming::Message(message, origin)),
        Err(_) => {
            tracing::warn!("an HTTP upstream sent an SSE event whose data is not JSON; skipped");
            None
        }
    }
}

/// The whole body, at most [`MAX_MESSAGE`] bytes (not copied when it came in one piece).
async fn read_limited(mut body: Body) -> Result<Bytes, String> {
    let mut whole = Bytes::new();
    let mut pieces: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| format!("reading the upstream's answer failed: {}", with_causes(e.as_ref())))?;
        let Ok(chunk) = frame.into_data() else { continue };
        if whole.len() + pieces.len() + chunk.len() > MAX_MESSAGE {
            return Err(format!("the upstream's answer is larger than {MAX_MESSAGE} bytes"));
        }
        if whole.is_empty() && pieces.is_empty() {
            whole = chunk;
        } else {
            if pieces.is_empty() {
                pieces.extend_from_slice(&std::mem::take(&mut whole));
            }
            pieces.extend_from_slice(&chunk);
        }
    }
    Ok(if pieces.is_empty() { whole } else { Bytes::from(pieces) })
}

/// Reads server-sent events as they arrive and hands each event's name and
/// data to `handle`; what it returns goes into the incoming channel.
async fn read_events(
    mut body: Body,
    incoming: &mpsc::Sender<Incoming>,
    mut handle: impl FnMut(&str, &str) -> Option<Incoming>,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let (mut event, mut data) = (String::new(), String::new());
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else { continue };
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    let name = if event.is_empty() { "message" } else { event.as_str() };
                    if let Some(message) = handle(name, &data)
                        && incoming.send(message).await.is_err()
                    {
                        return;
                    }
                }
                event.clear();
                data.clear();
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => value.clone_into(&mut event),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        if buffer.len() + data.len() > MAX_MESSAGE {
            tracing::warn!("an HTTP upstream sent an SSE event larger than the limit; stream dropped");
            return;
        }
    }
}
