//! An upstream MCP server, kept connected: spawned (stdio) or reached over
//! HTTP, initialized as a 2025-11-25 client (2024-11-05 over legacy SSE),
//! restarted with back-off when it dies, and asked with a time limit and a
//! cap on requests in flight.

mod http_client;
mod link;
mod peer;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use self::http_client::Client;
use self::link::{HttpLink, Incoming, Link, configured_headers};
use self::peer::Peer;
pub use self::peer::{Answer, Hooks, Progress, Relay, UpstreamAsk};
use crate::config::{UpstreamConfig, UpstreamKind};

/// The protocol revision the gateway speaks to session-era upstreams.
const UPSTREAM_VERSION: &str = "2025-11-25";
/// What it speaks to legacy HTTP+SSE upstreams.
const LEGACY_VERSION: &str = "2024-11-05";
/// Longest wait for an upstream's `initialize` answer.
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most distinct resources subscribed to upstream.
const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Restart back-off: from the first to the longest wait.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

/// Why a forwarded request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream is not running or cannot be reached.
    #[error("the upstream is unavailable: {0}")]
    Unavailable(String),
    /// The upstream went away while the request was in flight.
    #[error("the upstream went away during the request: {0}")]
    Lost(String),
    /// No answer within the time limit.
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// The client cancelled the request.
    #[error("the request was cancelled")]
    Cancelled,
    /// The upstream answered with something that is not a valid answer.
    #[error("the upstream sent an invalid answer: {0}")]
    Garbage(String),
    /// The upstream answered with a JSON-RPC error.
    #[error("{message}")]
    Rpc {
        /// Its code.
        code: i64,
        /// Its message.
        message: String,
        /// Its data.
        data: Option<Value>,
    },
}

/// What the upstream said about itself at `initialize`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct UpstreamInfo {
    /// The `initialize` result: version, capabilities, server info, instructions.
    pub initialize: Value,
}

/// A supervised upstream. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: Arc<str>,
    config: UpstreamConfig,
    kind: UpstreamKind,
    http: Client,
    /// The live connection, when there is one.
    peer: watch::Sender<Option<Arc<Peer>>>,
    /// Bumped on every (re)connection and every `*/list_changed`.
    lists_changed: watch::Sender<u64>,
    /// The URIs of the upstream's `notifications/resources/updated`.
    resource_updates: broadcast::Sender<String>,
    /// Resources subscribed to upstream, subscribed again at each reconnection.
    subscriptions: Mutex<BTreeSet<String>>,
    info: watch::Sender<Option<UpstreamInfo>>,
    permits: Semaphore,
    timeout: Duration,
    stop: CancellationToken,
}

impl Upstream {
    /// Starts supervising the upstream `name` (connecting in the background).
    pub fn start(name: &str, config: UpstreamConfig) -> Result<Self, String> {
        let kind = config.kind()?;
        configured_headers(&config)?;
        let http = Client::new()?;
        let inner = Arc::new(Inner {
            name: name.into(),
            kind,
            http,
            peer: watch::Sender::new(None),
            lists_changed: watch::Sender::new(0),
            resource_updates: broadcast::Sender::new(256),
            subscriptions: Mutex::new(BTreeSet::new()),
            info: watch::Sender::new(None),
            permits: Semaphore::new(config.max_concurrency.max(1)),
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
            stop: CancellationToken::new(),
            config,
        });
        tokio::spawn(supervise(inner.clone()));
        Ok(Self { inner })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Changes whenever the upstream's tools, prompts or resources may have
    /// changed: at each (re)connection and at each `*/list_changed`.
    pub fn lists_changed(&self) -> watch::Receiver<u64> {
        self.inner.lists_changed.subscribe()
    }

    /// The URIs the upstream says changed (`notifications/resources/updated`),
    /// for the resources subscribed to with [`subscribe_resource`](Self::subscribe_resource).
    pub fn resource_updates(&self) -> broadcast::Receiver<String> {
        self.inner.resource_updates.subscribe()
    }

    /// Subscribes to `uri` upstream, once, if the upstream offers
    /// subscriptions: now when connected, and again after each reconnection.
    /// Subscriptions are never dropped upstream: an update nobody asked for
    /// reaches no client.
    pub fn subscribe_resource(&self, uri: &str) {
        let fresh = {
            let mut subscriptions = lock(&self.inner.subscriptions);
            // Bounded: clients choose the URIs, and every one is kept for good.
            if subscriptions.len() >= MAX_SUBSCRIPTIONS && !subscriptions.contains(uri) {
                tracing::warn!(upstream = %self.inner.name, %uri, "too many resource subscriptions; not subscribed upstream");
                return;
            }
            subscriptions.insert(uri.to_owned())
        };
        if fresh && let Some(peer) = self.inner.peer.borrow().clone() {
            tokio::spawn(subscribe(self.inner.clone(), peer, vec![uri.to_owned()]));
        }
    }

    /// What the upstream answered to `initialize` at the last connection.
    pub fn info(&self) -> Option<UpstreamInfo> {
        self.inner.info.borrow().clone()
    }

    /// Sends `method` and waits for the answer, within the time limit and
    /// the cap on requests in flight, with the [`Hooks`] given; `cancel`
    /// stops waiting and tells the upstream.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        hooks: Hooks,
        cancel: &CancellationToken,
    ) -> Result<Value, UpstreamError> {
        self.ask(method, params, hooks, cancel).await?.into_value()
    }

    /// [`request`](Self::request), with the result as the upstream wrote
    /// it, for the caller to read into the type it expects.
    pub async fn ask(
        &self,
        method: &str,
        params: Value,
        hooks: Hooks,
        cancel: &CancellationToken,
    ) -> Result<Answer, UpstreamError> {
        let timeout = self.inner.timeout;
        // One timer for the whole request: waiting for a permit and a
        // connection, sending, and the answer.
        let deadline = tokio::time::sleep(timeout);
        // One waiter on the token for the whole request too.
        let cancelled = cancel.cancelled();
        tokio::pin!(deadline, cancelled);
        let send = async {
            let permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(|_| UpstreamError::Unavailable("stopped".into()))?;
            let peer = self.connected().await;
            let (id, reply, exchange) = peer.start_request(method, params, hooks).await?;
            Ok::<_, UpstreamError>((permit, peer, id, reply, exchange))
        };
        let (_permit, peer, id, mut reply, mut exchange) = tokio::select! {
            sent = send => sent?,
            () = &mut deadline => return Err(UpstreamError::Timeout(timeout)),
            () = &mut cancelled => return Err(UpstreamError::Cancelled),
        };
        loop {
            tokio::select! {
                answer = &mut reply => {
                    return answer.unwrap_or_else(|_| Err(UpstreamError::Lost("no answer".into())));
                }
                // The POST of an HTTP upstream, driven here rather than in a
                // task of its own; once over, its answer is in `reply`.
                () = async { if let Some(exchange) = &mut exchange { exchange.await } }, if exchange.is_some() => {
                    exchange = None;
                }
                () = &mut deadline => {
                    peer.abandon(id, "the gateway's time limit passed").await;
                    return Err(UpstreamError::Timeout(timeout));
                }
                () = &mut cancelled => {
                    peer.abandon(id, "the client cancelled the request").await;
                    return Err(UpstreamError::Cancelled);
                }
            }
        }
    }

    /// The live connection, waiting for one.
    async fn connected(&self) -> Arc<Peer> {
        let mut peer = self.inner.peer.subscribe();
        loop {
            if let Some(peer) = peer.borrow_and_update().clone() {
                return peer;
            }
            if peer.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops the upstream (a stdio process is killed).
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }
}

/// Connects, serves the connection until it is lost, and reconnects with
/// back-off, until stopped.
async fn supervise(inner: Arc<Inner>) {
    let mut backoff = BACKOFF.0;
    loop {
        let started = tokio::time::Instant::now();
        let outcome = tokio::select! {
            () = inner.stop.cancelled() => return,
            outcome = connect_and_serve(&inner) => outcome,
        };
        inner.peer.send_replace(None);
        tracing::warn!(upstream = %inner.name, reason = %outcome, "upstream connection lost; reconnecting in {backoff:?}");
        // A connection that lasted a while resets the back-off.
        if started.elapsed() > BACKOFF.1 {
            backoff = BACKOFF.0;
        }
        tokio::select! {
            () = inner.stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One connection's life; returns why it ended.
async fn connect_and_serve(inner: &Arc<Inner>) -> String {
    let (incoming_tx, mut incoming) = mpsc::channel::<Incoming>(256);
    let mut _process = None;
    let mut http_link = None;
    let link = match inner.kind {
        UpstreamKind::Stdio => match link::spawn(&inner.name, &inner.config, incoming_tx) {
            Ok((link, process)) => {
                _process = Some(process);
                link
            }
            Err(e) => return e.to_string(),
        },
        UpstreamKind::StreamableHttp | UpstreamKind::Sse => {
            let headers = configured_headers(&inner.config).unwrap_or_default();
            let url = inner.config.url.clone().unwrap_or_default();
            let legacy = inner.kind == UpstreamKind::Sse;
            // Parsed as a URL first, so that what is sent is its normalized form.
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| e.to_string())
                .and_then(|parsed| parsed.as_str().parse::<http::Uri>().map_err(|e| e.to_string()));
            let parsed = match parsed {
                Ok(parsed) => parsed,
                Err(e) => return format!("url {url:?} is not a URL: {e}"),
            };
            let http = Arc::new(HttpLink::new(inner.http.clone(), parsed, headers, legacy, incoming_tx));
            if legacy {
                // Bounded as a whole: an upstream that accepts the connection
                // and never answers the GET is tried again, not waited on for good.
                match tokio::time::timeout(INITIALIZE_TIMEOUT, http.clone().open_legacy(url)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return format!("the SSE stream did not open within {INITIALIZE_TIMEOUT:?}"),
                }
            }
            http_link = Some(http.clone());
            Link::Http(http)
        }
    };
    let peer = Arc::new(Peer::new(
        inner.name.clone(),
        link,
        inner.lists_changed.clone(),
        inner.resource_updates.clone(),
    ));
    if let Some(http) = &http_link {
        http.set_peer(&peer);
    }
    let reader_peer = peer.clone();
    let (lost_tx, mut lost) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let mut lost_tx = Some(lost_tx);
        while let Some(message) = incoming.recv().await {
            match message {
                Incoming::Message(message, origin) => reader_peer.receive(message, origin).await,
                Incoming::Lost(reason) => {
                    if let Some(tx) = lost_tx.take() {
                        let _ = tx.send(reason);
                    }
                    return;
                }
            }
        }
        if let Some(tx) = lost_tx.take() {
            let _ = tx.send("the connection closed".into());
        }
    });
    let legacy = inner.kind == UpstreamKind::Sse;
    let handshake = initialize(&peer, http_link.as_ref(), legacy);
    let result = tokio::select! {
        result = tokio::time::timeout(INITIALIZE_TIMEOUT, handshake) => result,
        reason = &mut lost => {
            let reason = reason.unwrap_or_else(|_| "the connection closed".into());
            return format!("before initialize completed: {reason}");
        }
    };
    match result {
        Ok(Ok(info)) => {
            tracing::info!(upstream = %inner.name, "upstream connected");
            inner.info.send_replace(Some(info));
        }
        Ok(Err(e)) => return format!("initialize failed: {e}"),
        Err(_) => return format!("initialize got no answer within {INITIALIZE_TIMEOUT:?}"),
    }
    inner.peer.send_replace(Some(peer.clone()));
    inner.lists_changed.send_modify(|generation| *generation += 1);
    let subscribed: Vec<String> = lock(&inner.subscriptions).iter().cloned().collect();
    if !subscribed.is_empty() {
        tokio::spawn(subscribe(inner.clone(), peer.clone(), subscribed));
    }
    let reason = lost.await.unwrap_or_else(|_| "the connection closed".into());
    peer.fail_all(&UpstreamError::Lost(reason.clone()));
    reason
}

/// Sends `resources/subscribe` for each of `uris`, when the upstream said
/// at `initialize` that it takes subscriptions.
async fn subscribe(inner: Arc<Inner>, peer: Arc<Peer>, uris: Vec<String>) {
    let offered = inner.info.borrow().as_ref().is_some_and(|info| {
        info.initialize["capabilities"]["resources"]["subscribe"].as_bool() == Some(true)
    });
    if !offered {
        return;
    }
    for uri in uris {
        let sent = peer.send_request("resources/subscribe", json!({"uri": uri}), Hooks::default()).await;
        let answered = match sent {
            Ok((_, reply)) => tokio::time::timeout(inner.timeout, reply).await,
            Err(e) => Ok(Ok(Err(e))),
        };
        match answered {
            Ok(Ok(Ok(_))) => tracing::debug!(upstream = %inner.name, %uri, "subscribed upstream"),
            _ => {
                tracing::warn!(upstream = %inner.name, %uri, "the upstream did not take a resource subscription")
            }
        }
    }
}

/// A mutex's guard, poisoned or not (no lock here is held across a panic
/// that leaves its data half-changed).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The MCP handshake. The gateway declares what it can relay to the client
/// of the call an upstream request belongs to (elicitation, sampling,
/// roots); a client without the capability gets the question refused.
async fn initialize(
    peer: &Peer,
    http: Option<&Arc<HttpLink>>,
    legacy: bool,
) -> Result<UpstreamInfo, UpstreamError> {
    let version = if legacy { LEGACY_VERSION } else { UPSTREAM_VERSION };
    let params = json!({
        "protocolVersion": version,
        "capabilities": {"elicitation": {"form": {}}, "sampling": {}, "roots": {}},
        "clientInfo": {"name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION")},
    });
    let (_, reply) = peer.send_request("initialize", params, Hooks::default()).await?;
    let result =
        reply.await.map_err(|_| UpstreamError::Lost("no answer to initialize".into()))??.into_value()?;
    let negotiated = result.get("protocolVersion").and_then(Value::as_str).unwrap_or(version).to_owned();
    if let Some(http) = http {
        http.set_version(&negotiated);
        // The notification stream first: what the upstream announces once
        // initialized (new tools, say) must not be missed.
        if !legacy {
            http.clone().listen().await;
        }
    }
    peer.notify("notifications/initialized", json!({})).await?;
    Ok(UpstreamInfo { initialize: result })
}
