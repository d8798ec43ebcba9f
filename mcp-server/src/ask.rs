//! Asking the client: elicitation, sampling and roots, one API for both eras.
//!
//! In the legacy era the server sends a real JSON-RPC request to the client and
//! waits for the answer. In the modern era (2026-07-28) servers must not send
//! requests: a question without an answer ends the call with an
//! `InputRequiredResult`; the client answers and retries, and the handler runs
//! again from the top, this time finding the answer. Write handlers so they can
//! run again: ask before doing anything with side effects.
//!
//! ```no_run
//! use mcp_server::{tool, Context, ask::AskError};
//! use mcp_core::types::{ElicitAction, ElicitRequestParams};
//!
//! /// Deletes everything, after asking.
//! #[tool]
//! async fn wipe(ctx: Context) -> Result<String, AskError> {
//!     let schema = serde_json::json!({"type":"object","properties":{"ok":{"type":"boolean"}}});
//!     let answer = ctx
//!         .elicit("confirm", ElicitRequestParams::form("Really wipe?", schema.as_object().unwrap().clone()))
//!         .await?;
//!     Ok(if answer.action == ElicitAction::Accept { "wiped".into() } else { "kept".into() })
//! }
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mcp_core::McpError;
use mcp_core::jsonrpc::{Message, Request};
use mcp_core::types::{
    CreateMessageRequestParams, CreateMessageResult, ElicitMode, ElicitRequestParams, ElicitResult,
    InputRequest, JsonObject, ListRootsResult, methods,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::Context;

/// How long a legacy server→client request may wait for its answer.
pub(crate) const CLIENT_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Why asking the client did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// Modern era: the answer is not here yet. The runtime answers the call with
    /// an `InputRequiredResult`, whatever the handler returns.
    #[error("input required from the client")]
    InputRequired,
    /// The client did not declare the capability this needs.
    #[error("the client does not support {0}")]
    Unsupported(&'static str),
    /// The client answered with a JSON-RPC error.
    #[error("the client refused: {0}")]
    Refused(String),
    /// The client's answer does not have the expected shape.
    #[error("the client's answer is malformed: {0}")]
    Malformed(String),
    /// The request was cancelled while waiting.
    #[error("the request was cancelled")]
    Cancelled,
    /// The client did not answer in time.
    #[error("the client did not answer in time")]
    TimedOut,
    /// There is no way to reach the client (closed connection).
    #[error("the client cannot be reached")]
    Disconnected,
}

impl From<AskError> for McpError {
    fn from(error: AskError) -> Self {
        match error {
            AskError::Malformed(m) => McpError::invalid_params(m),
            other => McpError::internal(other.to_string()),
        }
    }
}

impl From<AskError> for String {
    fn from(error: AskError) -> Self {
        error.to_string()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Several questions asked at once: in the modern era they go out in one
/// `InputRequiredResult`, so the client answers them in one round.
///
/// ```
/// use mcp_server::ask::InputBatch;
/// use mcp_core::types::{CreateMessageRequestParams, SamplingMessage};
/// let batch = InputBatch::new()
///     .roots("client_roots")
///     .sample("greeting", CreateMessageRequestParams {
///         messages: vec![SamplingMessage::user_text("Say hi")],
///         max_tokens: 50,
///         ..Default::default()
///     });
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Debug, Default, Clone)]
pub struct InputBatch {
    requests: Vec<(String, InputRequest)>,
}

impl InputBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an elicitation under `key`.
    #[must_use]
    pub fn elicit(mut self, key: impl Into<String>, params: ElicitRequestParams) -> Self {
        self.requests.push((key.into(), InputRequest::Elicitation { params }));
        self
    }

    /// Adds a sampling request under `key`.
    #[must_use]
    pub fn sample(mut self, key: impl Into<String>, params: CreateMessageRequestParams) -> Self {
        self.requests.push((key.into(), InputRequest::Sampling { params }));
        self
    }

    /// Adds a roots listing under `key`.
    #[must_use]
    pub fn roots(mut self, key: impl Into<String>) -> Self {
        self.requests.push((key.into(), InputRequest::ListRoots { params: None }));
        self
    }

    /// How many questions the batch holds.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// The answers to an [`InputBatch`], by key.
#[derive(Debug, Default, Clone)]
pub struct InputAnswers(Map<String, Value>);

impl InputAnswers {
    /// The raw answer under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The answer under `key` as `T` (e.g. [`ElicitResult`]).
    pub fn parse<T: DeserializeOwned>(&self, key: &str) -> Result<T, AskError> {
        let value = self.0.get(key).ok_or_else(|| AskError::Malformed(format!("no answer for {key:?}")))?;
        serde_json::from_value(value.clone()).map_err(|e| AskError::Malformed(format!("{key}: {e}")))
    }
}

/// What a request kind needs of the client, as a `ClientCapabilities` fragment
/// for `-32021`, or `None` when the client declared it.
fn missing_capability(context: &Context, request: &InputRequest) -> Option<(&'static str, Value)> {
    let caps = context.client_capabilities();
    match request {
        InputRequest::Elicitation { params } if params.mode == Some(ElicitMode::Url) => {
            (!caps.supports_elicitation_url()).then(|| ("URL elicitation", serde_json::json!({"url": {}})))
        }
        InputRequest::Elicitation { .. } => {
            (!caps.supports_elicitation_form()).then(|| ("elicitation", serde_json::json!({})))
        }
        InputRequest::Sampling { .. } => {
            (!caps.supports_sampling()).then(|| ("sampling", serde_json::json!({})))
        }
        InputRequest::ListRoots { .. } => (!caps.supports_roots()).then(|| ("roots", serde_json::json!({}))),
    }
}

fn capability_key(request: &InputRequest) -> &'static str {
    match request {
        InputRequest::Elicitation { .. } => "elicitation",
        InputRequest::Sampling { .. } => "sampling",
        InputRequest::ListRoots { .. } => "roots",
    }
}

fn method_of(request: &InputRequest) -> &'static str {
    match request {
        InputRequest::Elicitation { .. } => methods::ELICITATION_CREATE,
        InputRequest::Sampling { .. } => methods::SAMPLING_CREATE_MESSAGE,
        InputRequest::ListRoots { .. } => methods::ROOTS_LIST,
    }
}

fn params_of(request: &InputRequest) -> Option<Value> {
    match request {
        InputRequest::Elicitation { params } => serde_json::to_value(params).ok(),
        InputRequest::Sampling { params } => serde_json::to_value(params).ok(),
        InputRequest::ListRoots { params } => params.clone().map(Value::Object),
    }
}

impl Context {
    /// Asks the user for input (elicitation). `key` names the question so its
    /// answer can be found when a modern client retries.
    pub async fn elicit(&self, key: &str, params: ElicitRequestParams) -> Result<ElicitResult, AskError> {
        self.ask(InputBatch::new().elicit(key, params)).await?.parse(key)
    }

    /// Asks the client's model for a completion (sampling).
    pub async fn sample(
        &self,
        key: &str,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, AskError> {
        self.ask(InputBatch::new().sample(key, params)).await?.parse(key)
    }

    /// Asks the client for its roots.
    pub async fn list_roots(&self, key: &str) -> Result<ListRootsResult, AskError> {
        self.ask(InputBatch::new().roots(key)).await?.parse(key)
    }

    /// Asks several questions at once.
    pub async fn ask(&self, batch: InputBatch) -> Result<InputAnswers, AskError> {
        for (_, request) in &batch.requests {
            if let Some((label, fragment)) = missing_capability(self, request) {
                let mut exchange = lock(&self.input);
                exchange.missing_capabilities.insert(capability_key(request).into(), fragment);
                return Err(AskError::Unsupported(label));
            }
        }
        if self.protocol_version().is_modern() {
            self.ask_by_retry(batch)
        } else {
            self.ask_by_request(batch).await
        }
    }

    /// Modern era: answer from what the client sent, or record the question.
    fn ask_by_retry(&self, batch: InputBatch) -> Result<InputAnswers, AskError> {
        let mut exchange = lock(&self.input);
        let mut answers = Map::new();
        let mut complete = true;
        for (key, request) in batch.requests {
            match exchange.answers.get(&key) {
                Some(answer) => {
                    if let Err(problem) = check_answer_shape(&request, answer) {
                        let message = format!("input response {key:?} is malformed: {problem}");
                        exchange.malformed = Some(message.clone());
                        return Err(AskError::Malformed(message));
                    }
                    answers.insert(key, answer.clone());
                }
                None => {
                    exchange.missing.insert(key, request);
                    complete = false;
                }
            }
        }
        if complete { Ok(InputAnswers(answers)) } else { Err(AskError::InputRequired) }
    }

    /// Legacy era: send real requests and wait for each answer.
    async fn ask_by_request(&self, batch: InputBatch) -> Result<InputAnswers, AskError> {
        let (Some(session), Some(outbound)) = (&self.info.session, &self.info.outbound) else {
            return Err(AskError::Disconnected);
        };
        let mut answers = Map::new();
        for (key, request) in batch.requests {
            let (id, reply) = session.register_outgoing();
            let message =
                Message::Request(Request::new(id.clone(), method_of(&request), params_of(&request)));
            if outbound.send(message).await.is_err() {
                session.forget_outgoing(&id);
                return Err(AskError::Disconnected);
            }
            let outcome = tokio::select! {
                biased;
                () = self.info.cancel.cancelled() => Err(AskError::Cancelled),
                reply = reply => reply.map_err(|_| AskError::Disconnected),
                () = tokio::time::sleep(CLIENT_ANSWER_TIMEOUT) => Err(AskError::TimedOut),
            };
            session.forget_outgoing(&id);
            let answer = outcome?.map_err(|e| AskError::Refused(e.message))?;
            check_answer_shape(&request, &answer).map_err(AskError::Malformed)?;
            answers.insert(key, answer);
        }
        Ok(InputAnswers(answers))
    }
}

/// SHOULD validate input responses (SEP-2322): each must parse as the result
/// type of the request it answers.
fn check_answer_shape(request: &InputRequest, answer: &Value) -> Result<(), String> {
    fn parses<T: DeserializeOwned>(answer: &Value) -> Result<(), String> {
        T::deserialize(answer).map(|_| ()).map_err(|e| e.to_string())
    }
    match request {
        InputRequest::Elicitation { .. } => parses::<ElicitResult>(answer),
        InputRequest::Sampling { .. } => parses::<CreateMessageResult>(answer),
        InputRequest::ListRoots { .. } => parses::<ListRootsResult>(answer),
    }
}

/// The `inputResponses` object as the answers map, for the dispatcher.
pub(crate) fn merge_answers(mut from_state: JsonObject, responses: Option<JsonObject>) -> JsonObject {
    if let Some(responses) = responses {
        from_state.extend(responses);
    }
    from_state
}
