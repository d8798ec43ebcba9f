//! The per-request context and the extractors a handler can ask for.
//!
//! A `#[tool]`, `#[prompt]` or `#[resource]` function may take, beside its
//! arguments, any type implementing [`FromContext`]:
//!
//! | parameter | gives |
//! |---|---|
//! | [`Context`] | progress, logging, cancellation, asking the client |
//! | [`State<T>`] | shared state registered with [`Server::state`](crate::Server::state) |
//! | `Option<Identity>` | the caller, or `None` when auth is off |
//! | [`Identity`] | the caller; the call fails when there is none |
//! | [`CancellationToken`] | fires when the client cancels the request |

use std::any::type_name;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use mcp_core::jsonrpc::{Message, Notification, RequestId};
use mcp_core::types::methods;
use mcp_core::types::{
    ClientCapabilities, Implementation, InputRequests, JsonObject, LoggingLevel,
    LoggingMessageNotificationParams, ProgressNotificationParams, ProgressToken,
};
use mcp_core::{Identity, McpError, ProtocolVersion};
use serde::Serialize;
use tokio::sync::mpsc;
pub use tokio_util::sync::CancellationToken;

use crate::server::Server;
use crate::session::Session;

/// Where messages for the client go while a request runs: the stdio writer,
/// or the SSE stream of one HTTP response.
pub(crate) type Outbound = mpsc::Sender<Message>;

/// How a request's log messages are filtered.
#[derive(Debug, Clone)]
pub(crate) enum LogGate {
    /// Legacy: the session-wide level from `logging/setLevel`.
    Session(Arc<Session>),
    /// Modern: the request's `_meta` log level; `None` means no log messages at all.
    Request(Option<LoggingLevel>),
}

/// Everything the runtime knows about one request.
#[derive(Debug)]
pub(crate) struct RequestInfo {
    pub(crate) id: RequestId,
    pub(crate) version: ProtocolVersion,
    pub(crate) client_capabilities: Arc<ClientCapabilities>,
    pub(crate) client_info: Option<Arc<Implementation>>,
    pub(crate) progress_token: Option<ProgressToken>,
    pub(crate) log_gate: LogGate,
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) cancel: CancellationToken,
    /// Legacy only: the session that carries server→client requests.
    pub(crate) session: Option<Arc<Session>>,
    pub(crate) outbound: Option<Outbound>,
}

/// What a modern (stateless) request brought back for earlier input requests,
/// and what the handler asked for this time.
#[derive(Debug, Default)]
pub(crate) struct InputExchange {
    /// Answers so far: from the verified `requestState` and `inputResponses`.
    pub(crate) answers: JsonObject,
    /// Requests the handler made that have no answer yet.
    pub(crate) missing: InputRequests,
    /// Capabilities the handler needed that the client did not declare.
    pub(crate) missing_capabilities: JsonObject,
    /// An answer that did not have the expected shape.
    pub(crate) malformed: Option<String>,
}

/// The context of one request.
///
/// Cheap to clone; every clone refers to the same request.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) server: Server,
    pub(crate) info: Arc<RequestInfo>,
    pub(crate) input: Arc<Mutex<InputExchange>>,
}

impl Context {
    pub(crate) fn new(server: Server, info: RequestInfo, answers: JsonObject) -> Self {
        let input = InputExchange { answers, ..InputExchange::default() };
        Self { server, info: Arc::new(info), input: Arc::new(Mutex::new(input)) }
    }

    /// The server handling the request, for example to add or remove tools.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The JSON-RPC id of the request.
    pub fn request_id(&self) -> &RequestId {
        &self.info.id
    }

    /// The protocol revision of the request.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.info.version
    }

    /// The capabilities the client declared (for this request in the modern
    /// era, at `initialize` in the legacy one).
    pub fn client_capabilities(&self) -> &ClientCapabilities {
        &self.info.client_capabilities
    }

    /// The client's name and version, when it said.
    pub fn client_info(&self) -> Option<&Implementation> {
        self.info.client_info.as_deref()
    }

    /// The authenticated caller, or `None` when auth is off.
    pub fn identity(&self) -> Option<&Identity> {
        self.info.identity.as_deref()
    }

    /// The progress token the client sent, when it wants progress notifications.
    pub fn progress_token(&self) -> Option<&ProgressToken> {
        self.info.progress_token.as_ref()
    }

    /// Fires when the client cancels the request or goes away.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.info.cancel
    }

    /// Whether the request was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.info.cancel.is_cancelled()
    }

    /// Shared state of type `T`, when registered.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.server.shared_state::<T>()
    }

    /// Reports progress, when the client asked for it with a progress token.
    /// `progress` must grow from one call to the next.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.info.progress_token else { return };
        let params = ProgressNotificationParams {
            progress_token: token.clone(),
            progress,
            total,
            message: message.map(str::to_owned),
            meta: None,
        };
        self.notify(methods::NOTIFICATION_PROGRESS, &params).await;
    }

    /// Sends a log message to the client, when its level passes the client's
    /// filter (legacy: `logging/setLevel`; modern: the request's `logLevel`).
    pub async fn log(&self, level: LoggingLevel, logger: Option<&str>, data: impl Serialize) {
        let wanted = match &self.info.log_gate {
            LogGate::Session(session) => session.wants_log(level),
            LogGate::Request(Some(min)) => level >= *min,
            LogGate::Request(None) => false,
        };
        if !wanted {
            return;
        }
        let Ok(data) = serde_json::to_value(data) else { return };
        let params =
            LoggingMessageNotificationParams { level, logger: logger.map(str::to_owned), data, meta: None };
        self.notify(methods::NOTIFICATION_MESSAGE, &params).await;
    }

    /// Shorthand for an `info` log message.
    pub async fn info(&self, message: impl Serialize) {
        self.log(LoggingLevel::Info, None, message).await;
    }

    /// Shorthand for a `debug` log message.
    pub async fn debug(&self, message: impl Serialize) {
        self.log(LoggingLevel::Debug, None, message).await;
    }

    /// Shorthand for a `warning` log message.
    pub async fn warning(&self, message: impl Serialize) {
        self.log(LoggingLevel::Warning, None, message).await;
    }

    async fn notify(&self, method: &str, params: &impl Serialize) {
        if self.is_cancelled() {
            return; // No message may follow a cancelled request.
        }
        let Some(outbound) = &self.info.outbound else { return };
        let Ok(params) = serde_json::to_value(params) else { return };
        // A closed stream only means the client stopped listening.
        let _ = outbound.send(Message::Notification(Notification::new(method, Some(params)))).await;
    }
}

/// A value a handler can take as a parameter, built from the request context.
pub trait FromContext: Sized {
    /// Extracts the value; an error fails the request with that JSON-RPC error.
    fn from_context(context: &Context) -> Result<Self, McpError>;
}

impl FromContext for Context {
    fn from_context(context: &Context) -> Result<Self, McpError> {
        Ok(context.clone())
    }
}

impl FromContext for CancellationToken {
    fn from_context(context: &Context) -> Result<Self, McpError> {
        Ok(context.info.cancel.clone())
    }
}

impl FromContext for Option<Identity> {
    fn from_context(context: &Context) -> Result<Self, McpError> {
        Ok(context.identity().cloned())
    }
}

impl FromContext for Identity {
    fn from_context(context: &Context) -> Result<Self, McpError> {
        context
            .identity()
            .cloned()
            .ok_or_else(|| McpError::internal("this operation needs an authenticated caller"))
    }
}

/// Shared state registered with [`Server::state`](crate::Server::state).
///
/// ```
/// use mcp_server::{tool, State, Server};
///
/// struct Greeting(String);
///
/// /// Greets.
/// #[tool]
/// async fn greet(State(greeting): State<Greeting>, name: String) -> String {
///     format!("{} {name}", greeting.0)
/// }
///
/// let server = Server::new("demo", "1.0.0").state(Greeting("Hello".into())).tool(greet);
/// assert_eq!(server.tool_names(), ["greet"]);
/// ```
#[derive(Debug)]
pub struct State<T>(pub Arc<T>);

impl<T> Clone for State<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Send + Sync + 'static> FromContext for State<T> {
    fn from_context(context: &Context) -> Result<Self, McpError> {
        context.state::<T>().map(State).ok_or_else(|| {
            tracing::error!(state = type_name::<T>(), "state requested by a handler was never registered");
            McpError::internal("server misconfigured")
        })
    }
}
