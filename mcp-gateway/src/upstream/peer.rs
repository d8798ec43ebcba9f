//! One live connection to an upstream as a JSON-RPC peer: requests with
//! ids and their replies, progress routed to the call it belongs to, and
//! the upstream's own requests answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mcp_server::core::jsonrpc::to_json_vec;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::link::{Exchange, Link};
use super::{UpstreamError, lock};

/// A progress notification of a forwarded call.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// How far along.
    pub progress: f64,
    /// Out of how much, when known.
    pub total: Option<f64>,
    /// What is happening.
    pub message: Option<String>,
}

/// What the upstream sends about one forwarded request before its answer.
#[derive(Debug)]
pub enum Relay {
    /// A progress notification (only when [`Hooks::progress`] asked for them).
    Progress(Progress),
    /// A request the upstream makes of its client meanwhile.
    Ask(UpstreamAsk),
    /// The parameters of a log message (`notifications/message`) the
    /// upstream sent on the request's own answer stream.
    Log(Value),
}

/// What a forwarded request brings besides its parameters.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Receives the request's progress, the upstream's questions and its
    /// log messages, in the order they come. Progress and log messages are
    /// dropped when it is full.
    pub relay: Option<mpsc::Sender<Relay>>,
    /// Whether the request carries a progress token (its progress then goes to `relay`).
    pub progress: bool,
    /// Headers of this request's own (HTTP upstreams), such as the caller's identity.
    pub headers: Option<http::HeaderMap>,
}

/// A request the upstream sent its client during one of the gateway's
/// calls (elicitation, sampling, roots), for that call's client to answer.
#[derive(Debug)]
pub struct UpstreamAsk {
    /// The method, such as `elicitation/create`.
    pub method: String,
    /// Its parameters.
    pub params: Value,
    /// The answer: a result, or a JSON-RPC error code and message.
    pub reply: oneshot::Sender<Result<Value, (i64, String)>>,
}

/// A request's result, as the upstream wrote it.
#[derive(Debug)]
pub enum Answer {
    /// Read as a JSON value.
    Value(Value),
    /// Not read yet: the text of a POST's JSON answer, to be read once,
    /// straight into the type it stands for.
    Raw(Box<RawValue>),
}

impl Answer {
    /// The result as `T`.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Self::Value(value) => serde_json::from_value(value),
            Self::Raw(raw) => serde_json::from_str(raw.get()),
        }
    }

    /// The result as a JSON value.
    pub fn into_value(self) -> Result<Value, UpstreamError> {
        match self {
            Self::Value(value) => Ok(value),
            Self::Raw(raw) => {
                serde_json::from_str(raw.get()).map_err(|e| UpstreamError::Garbage(e.to_string()))
            }
        }
    }
}

/// The reply to one request.
pub(crate) type Reply = oneshot::Receiver<Result<Answer, UpstreamError>>;

/// A request as it is written to the upstream.
#[derive(serde::Serialize)]
struct OutgoingRequest<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a Value,
}

struct Pending {
    reply: oneshot::Sender<Result<Answer, UpstreamError>>,
    relay: Option<mpsc::Sender<Relay>>,
    /// Whether the request carried a progress token.
    progress: bool,
}

/// A connection's request table and outgoing link.
pub(crate) struct Peer {
    pub(crate) link: Link,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    /// Bumped when the upstream says its tools, prompts or resources changed.
    lists_changed: watch::Sender<u64>,
    /// The URIs of `notifications/resources/updated`.
    resource_updates: broadcast::Sender<String>,
    name: Arc<str>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("upstream", &self.name).finish_non_exhaustive()
    }
}

impl Peer {
    pub(crate) fn new(
        name: Arc<str>,
        link: Link,
        lists_changed: watch::Sender<u64>,
        resource_updates: broadcast::Sender<String>,
    ) -> Self {
        let pending = Mutex::new(HashMap::new());
        Self { link, pending, next_id: AtomicU64::new(1), lists_changed, resource_updates, name }
    }

    /// Sends a request; the reply arrives on the returned receiver. With a
    /// `progress` hook, the request carries a progress token and the
    /// upstream's progress notifications for it go there.
    pub(crate) async fn send_request(
        &self,
        method: &str,
        params: Value,
        hooks: Hooks,
    ) -> Result<(u64, Reply), UpstreamError> {
        let (id, reply, exchange) = self.start_request(method, params, hooks).await?;
        if let Some(exchange) = exchange {
            tokio::spawn(exchange);
        }
        Ok((id, reply))
    }

    /// [`Self::send_request`], with the HTTP exchange left for the caller to
    /// drive while it waits for the reply (see [`Link::start`]): no task of
    /// its own.
    pub(crate) async fn start_request(
        &self,
        method: &str,
        mut params: Value,
        hooks: Hooks,
    ) -> Result<(u64, Reply, Option<Exchange>), UpstreamError> {
        let Hooks { relay, progress, headers } = hooks;
        let progress = progress && relay.is_some();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if progress && let Value::Object(map) = &mut params {
            let meta = map.entry("_meta").or_insert_with(|| json!({}));
            if let Value::Object(meta) = meta {
                meta.insert("progressToken".into(), json!(id));
            }
        }
        // Written straight from the parts: no JSON value of the message is built.
        let message = OutgoingRequest { jsonrpc: "2.0", id, method, params: &params };
        let body = to_json_vec(&message).map_err(|e| UpstreamError::Garbage(e.to_string()))?;
        drop(params);
        let (reply, receiver) = oneshot::channel();
        lock(&self.pending).insert(id, Pending { reply, relay, progress });
        match self.link.start(body, Some(Value::from(id)), headers).await {
            Ok(exchange) => Ok((id, receiver, exchange)),
            Err(error) => {
                lock(&self.pending).remove(&id);
                Err(error)
            }
        }
    }

    /// Forgets a request that will not be waited for (timed out or
    /// cancelled), and tells the upstream to stop working on it.
    pub(crate) async fn abandon(&self, id: u64, reason: &str) {
        if lock(&self.pending).remove(&id).is_some() {
            let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": reason}});
            let _ = self.link.send(cancel).await;
        }
    }

    pub(crate) async fn notify(&self, method: &str, params: Value) -> Result<(), UpstreamError> {
        self.link.send(json!({"jsonrpc": "2.0", "method": method, "params": params})).await
    }

    /// Every request still waiting fails with `error`: the connection is gone.
    pub(crate) fn fail_all(&self, error: &UpstreamError) {
        let pending: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for waiting in pending {
            let _ = waiting.reply.send(Err(error.clone()));
        }
    }

    /// Handles one message from the upstream; `origin` is the request whose
    /// answer stream carried it, when the transport knows.
    pub(crate) async fn receive(&self, message: Value, origin: Option<u64>) {
        let Value::Object(mut fields) = message else {
            tracing::warn!(upstream = %self.name, "upstream sent a JSON value that is not a JSON-RPC message");
            return;
        };
        if !fields.contains_key("method")
            && let Some(id) = fields.remove("id")
        {
            // A response: its result is moved on, not copied.
            return self.response(&id, fields);
        }
        let method = fields.get("method").and_then(Value::as_str);
        match (method, fields.get("id")) {
            (None, Some(_)) => {}
            (Some(method), Some(id)) => {
                self.answer_request(method, id.clone(), fields.get("params").cloned(), origin).await;
            }
            (Some(method), None) => self.notification(method, fields.get("params"), origin),
            (None, None) => {
                tracing::warn!(upstream = %self.name, "upstream sent a message with neither id nor method");
            }
        }
    }

    /// Takes the result of request `id`, unread (see [`Answer::Raw`]).
    pub(crate) fn result(&self, id: u64, result: Box<RawValue>) {
        let Some(waiting) = lock(&self.pending).remove(&id) else {
            tracing::debug!(upstream = %self.name, %id, "a response to no pending request");
            return;
        };
        let _ = waiting.reply.send(Ok(Answer::Raw(result)));
    }

    fn response(&self, id: &Value, mut fields: serde_json::Map<String, Value>) {
        let Some(waiting) = id.as_u64().and_then(|id| lock(&self.pending).remove(&id)) else {
            tracing::debug!(upstream = %self.name, %id, "a response to no pending request");
            return;
        };
        let outcome = match (fields.remove("result"), fields.get("error")) {
            (Some(result), None) => Ok(Answer::Value(result)),
            (None, Some(error)) => Err(UpstreamError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
                message: error.get("message").and_then(Value::as_str).unwrap_or("upstream error").to_owned(),
                data: error.get("data").cloned(),
            }),
            _ => Err(UpstreamError::Garbage("a response with neither or both of result and error".into())),
        };
        let _ = waiting.reply.send(outcome);
    }

    /// The upstream asks something of its client. `ping` is answered here.
    /// The rest go to the client of the call they belong to: see
    /// [`Self::asker_for`]. A question no call can be found for is refused
    /// with -32601.
    async fn answer_request(&self, method: &str, id: Value, params: Option<Value>, origin: Option<u64>) {
        if method == "ping" {
            let _ = self.link.send(json!({"jsonrpc": "2.0", "id": id, "result": {}})).await;
            return;
        }
        let Some(asker) = self.asker_for(method, origin) else {
            tracing::debug!(upstream = %self.name, method, "refused a request from the upstream: no call to ask for");
            let refusal = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601,
                "message": format!("the gateway cannot tell which of its calls {method} belongs to")}});
            let _ = self.link.send(refusal).await;
            return;
        };
        let link = self.link.clone();
        let method = method.to_owned();
        // Answered in the background: the client may take a while, and
        // reading the upstream's other messages must not wait for it.
        tokio::spawn(async move {
            let (reply, answer) = oneshot::channel();
            let params = params.unwrap_or_else(|| json!({}));
            let answered = match asker.send(Relay::Ask(UpstreamAsk { method, params, reply })).await {
                Ok(()) => answer.await.unwrap_or_else(|_| Err((-32603, "the call ended".into()))),
                Err(_) => Err((-32603, "the call ended".into())),
            };
            let message = match answered {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err((code, message)) => {
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                }
            };
            let _ = link.send(message).await;
        });
    }

    /// Whose client answers the upstream's `method` request.
    ///
    /// - Carried on a call's answer stream (Streamable HTTP): that call's.
    /// - Otherwise (stdio, legacy SSE, the GET stream), an elicitation or
    ///   sampling request while exactly one request is in flight to this
    ///   upstream: that one's, as no other call can have asked. With two or
    ///   more in flight the question is refused rather than guessed, since a
    ///   guess could put one caller's question to another.
    /// - `roots/list` outside an answer stream is never routed: servers ask
    ///   it on their own (at start, on `roots/list_changed`), and one
    ///   caller's roots would then serve every caller of a shared upstream.
    fn asker_for(&self, method: &str, origin: Option<u64>) -> Option<mpsc::Sender<Relay>> {
        let pending = lock(&self.pending);
        if let Some(origin) = origin {
            return pending.get(&origin).and_then(|p| p.relay.clone());
        }
        let per_call = matches!(method, "elicitation/create" | "sampling/createMessage");
        let mut in_flight = pending.values();
        match (per_call, in_flight.next(), in_flight.next()) {
            (true, Some(only), None) => only.relay.clone(),
            _ => None,
        }
    }

    /// Handles a notification; `origin` as in [`Self::receive`].
    fn notification(&self, method: &str, params: Option<&Value>, origin: Option<u64>) {
        match method {
            "notifications/progress" => {
                let Some(params) = params else { return };
                let token = params.get("progressToken").and_then(Value::as_u64);
                let sender = token.and_then(|t| {
                    lock(&self.pending).get(&t).filter(|p| p.progress).and_then(|p| p.relay.clone())
                });
                if let Some(sender) = sender {
                    let update = Progress {
                        progress: params.get("progress").and_then(Value::as_f64).unwrap_or(0.0),
                        total: params.get("total").and_then(Value::as_f64),
                        message: params.get("message").and_then(Value::as_str).map(str::to_owned),
                    };
                    // A slow client drops progress rather than stalling the upstream.
                    let _ = sender.try_send(Relay::Progress(update));
                }
            }
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => {
                self.lists_changed.send_modify(|generation| *generation += 1);
            }
            "notifications/resources/updated" => {
                if let Some(uri) = params.and_then(|p| p.get("uri")).and_then(Value::as_str) {
                    // No receiver: no client is connected to hear of it.
                    let _ = self.resource_updates.send(uri.to_owned());
                }
            }
            "notifications/message" => {
                // On a call's answer stream: that call's client gets it. Other
                // logs are the upstream session's, shared by every caller, and
                // stay in the gateway's own log.
                let sender = origin.and_then(|o| lock(&self.pending).get(&o).and_then(|p| p.relay.clone()));
                if let (Some(sender), Some(params)) = (sender, params) {
                    // A slow client drops log messages rather than stalling the upstream.
                    let _ = sender.try_send(Relay::Log(params.clone()));
                    return;
                }
                let data = params.and_then(|p| p.get("data")).cloned().unwrap_or(Value::Null);
                tracing::info!(upstream = %self.name, %data, "upstream log");
            }
            _ => tracing::debug!(upstream = %self.name, method, "ignored a notification from the upstream"),
        }
    }
}
