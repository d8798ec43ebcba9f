//! One client connection's messages, for transports that carry both eras over
//! one channel (stdio) or one legacy session (HTTP): `initialize`,
//! notifications, the client's answers to server requests, and requests.

use std::sync::Arc;

use mcp_core::jsonrpc::{ErrorObject, ErrorResponse, Message, Notification, Request, Response};
use mcp_core::types::{
    CancelledNotificationParams, InitializeRequestParams, InitializeResult,
    ResourceUpdatedNotificationParams, methods,
};
use mcp_core::{Identity, McpError, ProtocolVersion};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::context::{LogGate, Outbound};
use crate::dispatch::{ModernMeta, Reply, Scope, is_modern_request, modern_meta};
use crate::server::{Change, Server};
use crate::session::{Negotiated, Session};
use crate::tool::ToolRoute;

/// Handles requests of one connection (legacy session plus stateless modern requests).
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) server: Server,
    pub(crate) session: Arc<Session>,
    pub(crate) identity: Option<Arc<Identity>>,
}

impl Connection {
    pub(crate) fn new(server: Server, identity: Option<Arc<Identity>>) -> Self {
        Self { server, session: Arc::new(Session::new()), identity }
    }

    /// The version replies are shaped for.
    pub(crate) fn legacy_version(&self) -> ProtocolVersion {
        self.session.negotiated().map_or(ProtocolVersion::LATEST_LEGACY, |n| n.version)
    }

    /// Handles a request; `None` when nothing may be answered (cancelled).
    /// `tool` is the route a `tools/call` names, when the transport already
    /// looked it up.
    pub(crate) async fn handle_request(
        &self,
        request: Request,
        outbound: Outbound,
        tool: Option<Arc<ToolRoute>>,
    ) -> Option<Message> {
        let id = request.id.clone();
        if is_modern_request(request.params.as_ref()) {
            return self.handle_modern(request, outbound, tool).await;
        }
        if request.method == methods::INITIALIZE {
            let version = self.legacy_version();
            return self.initialize(request.params).into_message(id, version);
        }
        let Some(negotiated) = self.session.negotiated().cloned() else {
            if request.method == methods::PING {
                return Reply::Result(Value::Object(Default::default()))
                    .into_message(id, self.legacy_version());
            }
            let error =
                McpError::InvalidRequest("the session is not initialized: send initialize first".into());
            return Reply::Error(error).into_message(id, self.legacy_version());
        };
        let Some(cancel) = self.session.begin_request(id.clone()) else {
            return Reply::Error(duplicate_id()).into_message(id, negotiated.version);
        };
        let scope = Scope {
            version: negotiated.version,
            client_capabilities: negotiated.client_capabilities.clone(),
            client_info: Some(negotiated.client_info.clone()),
            log_gate: LogGate::Session(self.session.clone()),
            identity: self.identity.clone(),
            cancel,
            session: Some(self.session.clone()),
            outbound: Some(outbound),
            tool,
        };
        let reply = self.server.dispatch(request, scope).await;
        self.session.end_request(&id);
        reply.into_message(id, negotiated.version)
    }

    async fn handle_modern(
        &self,
        request: Request,
        outbound: Outbound,
        tool: Option<Arc<ToolRoute>>,
    ) -> Option<Message> {
        let meta = match modern_meta(request.params.as_ref()) {
            Ok(meta) => meta,
            Err(e) => return Reply::Error(e).into_message(request.id, ProtocolVersion::LATEST),
        };
        self.handle_modern_checked(request, meta, outbound, tool).await
    }

    /// A modern request whose `_meta` the transport already checked, on this
    /// connection: `notifications/cancelled` on it can reach the request.
    pub(crate) async fn handle_modern_checked(
        &self,
        request: Request,
        meta: ModernMeta,
        outbound: Outbound,
        tool: Option<Arc<ToolRoute>>,
    ) -> Option<Message> {
        let id = request.id.clone();
        if is_legacy_only(&request.method) {
            return Reply::Error(McpError::method_not_found(&request.method)).into_message(id, meta.version);
        }
        let Some(cancel) = self.session.begin_request(id.clone()) else {
            return Reply::Error(duplicate_id()).into_message(id, meta.version);
        };
        let reply =
            handle_stateless(&self.server, self.identity.clone(), request, meta, cancel, outbound, tool)
                .await;
        self.session.end_request(&id);
        reply
    }

    fn initialize(&self, params: Option<Value>) -> Reply {
        let params: InitializeRequestParams = match params.map(serde_json::from_value).transpose() {
            Ok(Some(p)) => p,
            Ok(None) => return Reply::Error(McpError::invalid_params("initialize needs params")),
            Err(e) => return Reply::Error(McpError::invalid_params(e.to_string())),
        };
        let version = ProtocolVersion::negotiate_initialize(&params.protocol_version);
        let negotiated = Negotiated {
            version,
            client_capabilities: Arc::new(params.capabilities),
            client_info: Arc::new(params.client_info),
        };
        if !self.session.negotiate(negotiated) {
            return Reply::Error(McpError::InvalidRequest("the session is already initialized".into()));
        }
        let settings = self.server.settings();
        let result = InitializeResult {
            protocol_version: version.as_str().to_owned(),
            capabilities: self.server.capabilities(),
            server_info: (*settings.info).clone(),
            instructions: settings.instructions.clone(),
            meta: None,
        };
        match serde_json::to_value(result) {
            Ok(v) => Reply::Result(v),
            Err(e) => Reply::Error(McpError::internal(e.to_string())),
        }
    }

    /// Handles a notification from the client.
    pub(crate) fn handle_notification(&self, notification: Notification) {
        match notification.method.as_str() {
            methods::NOTIFICATION_INITIALIZED => self.session.mark_initialized(),
            methods::NOTIFICATION_CANCELLED => {
                let params = notification
                    .params
                    .and_then(|p| serde_json::from_value::<CancelledNotificationParams>(p).ok());
                // Invalid cancellations are ignored (the spec says SHOULD ignore).
                if let Some(id) = params.and_then(|p| p.request_id) {
                    self.session.cancel_request(&id);
                }
            }
            _ => {}
        }
    }

    /// Delivers the client's answer to one of our requests; `false` when no
    /// request here waits for it.
    pub(crate) fn handle_answer(&self, message: Message) -> bool {
        let (id, answer) = match message {
            Message::Response(Response { id, result }) => (id, Ok(result)),
            Message::Error(ErrorResponse { id: Some(id), error }) => (id, Err(error)),
            _ => return false,
        };
        let delivered = self.session.complete_outgoing(&id, answer);
        if !delivered {
            tracing::debug!(%id, "answer to an unknown or finished server request here");
        }
        delivered
    }

    /// The notification a change becomes for this connection, if it wants it.
    pub(crate) fn change_notification(&self, change: &Change) -> Option<Message> {
        self.session.negotiated()?;
        let (method, params) = match change {
            Change::Tools => (methods::NOTIFICATION_TOOLS_LIST_CHANGED, None),
            Change::Prompts => (methods::NOTIFICATION_PROMPTS_LIST_CHANGED, None),
            Change::Resources => (methods::NOTIFICATION_RESOURCES_LIST_CHANGED, None),
            Change::ResourceUpdated(uri) if self.session.is_subscribed(uri) => {
                let params = ResourceUpdatedNotificationParams { uri: uri.clone(), meta: None };
                (methods::NOTIFICATION_RESOURCES_UPDATED, serde_json::to_value(params).ok())
            }
            Change::ResourceUpdated(_) => return None,
        };
        Some(Message::Notification(Notification::new(method, params)))
    }

    /// Cancels everything in flight: the connection is gone.
    pub(crate) fn close(&self) {
        self.session.cancel_all();
    }

    /// Whether JSON-RPC batches are allowed on this connection now.
    pub(crate) fn allows_batching(&self) -> bool {
        self.session.negotiated().is_some_and(|n| n.version.allows_batching())
    }
}

/// Methods that exist only inside a legacy session.
fn is_legacy_only(method: &str) -> bool {
    matches!(
        method,
        methods::INITIALIZE
            | methods::PING
            | methods::LOGGING_SET_LEVEL
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE
    )
}

/// A stateless modern request whose `_meta` the transport already checked:
/// no session is involved, `cancel` stops it (the transport fires it when the
/// client goes away). `tool` is the route a `tools/call` names, when the
/// transport already looked it up.
pub(crate) async fn handle_stateless(
    server: &Server,
    identity: Option<Arc<Identity>>,
    request: Request,
    meta: ModernMeta,
    cancel: CancellationToken,
    outbound: Outbound,
    tool: Option<Arc<ToolRoute>>,
) -> Option<Message> {
    let id = request.id.clone();
    if is_legacy_only(&request.method) {
        return Reply::Error(McpError::method_not_found(&request.method)).into_message(id, meta.version);
    }
    let scope = Scope {
        version: meta.version,
        client_capabilities: meta.client_capabilities,
        client_info: meta.client_info,
        log_gate: LogGate::Request(meta.log_level),
        identity,
        cancel,
        session: None,
        outbound: Some(outbound),
        tool,
    };
    server.dispatch(request, scope).await.into_message(id, meta.version)
}

fn duplicate_id() -> McpError {
    McpError::InvalidRequest("a request with this id is still running".into())
}

/// An error response without an id, for input whose id could not be read.
pub(crate) fn error_without_id(code: i32, message: impl Into<String>) -> Message {
    Message::Error(ErrorResponse::new(None, ErrorObject::new(code, message)))
}
