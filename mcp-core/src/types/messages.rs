//! Typed unions of every request and notification, by direction.
//!
//! Each union maps a method name and its params to a variant and back:
//! `from_parts(x.method(), x.params()) == x`. They also (de)serialize as
//! `{"method": ..., "params": ...}`.
//!
//! ```
//! use mcp_core::types::{ClientRequest, PaginatedRequestParams};
//! use mcp_core::McpError;
//!
//! let req = ClientRequest::from_parts("tools/list", None).unwrap();
//! assert_eq!(req, ClientRequest::ListTools(PaginatedRequestParams::default()));
//! assert!(matches!(ClientRequest::from_parts("nope", None), Err(McpError::MethodNotFound(_))));
//! assert!(matches!(ClientRequest::from_parts("tools/call", None), Err(McpError::InvalidParams(_))));
//! ```

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::methods;
use super::{
    CallToolRequestParams, CancelledNotificationParams, CompleteRequestParams, CreateMessageRequestParams,
    DetailedTask, DiscoverRequestParams, ElicitRequestParams, ElicitationCompleteNotificationParams,
    GetPromptRequestParams, GetTaskRequestParams, InitializeRequestParams, JsonObject,
    LoggingMessageNotificationParams, NotificationParams, PaginatedRequestParams, ProgressNotificationParams,
    ReadResourceRequestParams, RequestParams, ResourceUpdatedNotificationParams, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionsAcknowledgedNotificationParams, SubscriptionsListenRequestParams,
    TaskStatusNotificationParams, UnsubscribeRequestParams, UpdateTaskRequestParams,
};
use crate::McpError;
use crate::jsonrpc::{Notification, Request, RequestId};

/// Reads params; absent params read as `{}`, so methods whose params are all optional accept them.
fn decode<T: DeserializeOwned>(params: Option<Value>) -> Result<T, McpError> {
    let value = match params {
        None | Some(Value::Null) => Value::Object(JsonObject::new()),
        Some(v) => v,
    };
    serde_json::from_value(value).map_err(|e| McpError::InvalidParams(e.to_string()))
}

/// Writes params; an empty object is left out.
fn encode<T: Serialize>(params: &T) -> Option<Value> {
    match serde_json::to_value(params) {
        Ok(Value::Object(map)) if map.is_empty() => None,
        Ok(value) => Some(value),
        // Unreachable for these types: every map key is a string.
        Err(_) => None,
    }
}

/// The loose `{method, params}` shape the unions deserialize from.
#[derive(Deserialize)]
struct Parts {
    method: String,
    #[serde(default)]
    params: Option<Value>,
}

macro_rules! message_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            unit: [ $( $(#[$udoc:meta])* $uvar:ident = $umethod:path, )* ]
            params: [ $( $(#[$pdoc:meta])* $pvar:ident($pty:ty) = $pmethod:path, )* ]
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $name {
            $( $(#[$udoc])* $uvar, )*
            $( $(#[$pdoc])* $pvar($pty), )*
        }

        impl $name {
            /// The method name.
            pub fn method(&self) -> &'static str {
                match self {
                    $( Self::$uvar => $umethod, )*
                    $( Self::$pvar(_) => $pmethod, )*
                }
            }

            /// Builds the message from a method name and its params. An unknown
            /// method gives [`McpError::MethodNotFound`]; params of the wrong
            /// shape give [`McpError::InvalidParams`].
            pub fn from_parts(method: &str, params: Option<Value>) -> Result<Self, McpError> {
                match method {
                    $( m if m == $umethod => Ok(Self::$uvar), )*
                    $( m if m == $pmethod => decode(params).map(Self::$pvar), )*
                    other => Err(McpError::MethodNotFound(other.to_owned())),
                }
            }

            /// The params as JSON; `None` when there are none (or they are an empty object).
            pub fn params(&self) -> Option<Value> {
                match self {
                    $( Self::$uvar => None, )*
                    $( Self::$pvar(p) => encode(p), )*
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let params = self.params();
                let mut map = serializer.serialize_map(Some(1 + usize::from(params.is_some())))?;
                map.serialize_entry("method", self.method())?;
                if let Some(params) = &params {
                    map.serialize_entry("params", params)?;
                }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let parts = Parts::deserialize(deserializer)?;
                Self::from_parts(&parts.method, parts.params).map_err(D::Error::custom)
            }
        }
    };
}

macro_rules! request_helpers {
    ($($name:ident),*) => {$(
        impl $name {
            /// Reads a JSON-RPC request.
            pub fn from_request(request: &Request) -> Result<Self, McpError> {
                Self::from_parts(&request.method, request.params.clone())
            }

            /// Turns the message into a JSON-RPC request with this id.
            pub fn into_request(self, id: impl Into<RequestId>) -> Request {
                Request::new(id, self.method(), self.params())
            }
        }
    )*};
}

macro_rules! notification_helpers {
    ($($name:ident),*) => {$(
        impl $name {
            /// Reads a JSON-RPC notification.
            pub fn from_notification(notification: &Notification) -> Result<Self, McpError> {
                Self::from_parts(&notification.method, notification.params.clone())
            }

            /// Turns the message into a JSON-RPC notification.
            pub fn into_notification(self) -> Notification {
                Notification::new(self.method(), self.params())
            }
        }
    )*};
}

message_enum! {
    /// A request from client to server, of any revision.
    // Requests are short-lived; boxing the large `initialize` params would
    // only make matching clumsier.
    #[allow(clippy::large_enum_variant)]
    pub enum ClientRequest {
        unit: [
            /// `ping` (legacy).
            Ping = methods::PING,
        ]
        params: [
            /// `initialize` (legacy).
            Initialize(InitializeRequestParams) = methods::INITIALIZE,
            /// `server/discover` (2026-07-28).
            Discover(DiscoverRequestParams) = methods::SERVER_DISCOVER,
            /// `tools/list`.
            ListTools(PaginatedRequestParams) = methods::TOOLS_LIST,
            /// `tools/call`.
            CallTool(CallToolRequestParams) = methods::TOOLS_CALL,
            /// `prompts/list`.
            ListPrompts(PaginatedRequestParams) = methods::PROMPTS_LIST,
            /// `prompts/get`.
            GetPrompt(GetPromptRequestParams) = methods::PROMPTS_GET,
            /// `resources/list`.
            ListResources(PaginatedRequestParams) = methods::RESOURCES_LIST,
            /// `resources/templates/list`.
            ListResourceTemplates(PaginatedRequestParams) = methods::RESOURCES_TEMPLATES_LIST,
            /// `resources/read`.
            ReadResource(ReadResourceRequestParams) = methods::RESOURCES_READ,
            /// `resources/subscribe` (legacy).
            Subscribe(SubscribeRequestParams) = methods::RESOURCES_SUBSCRIBE,
            /// `resources/unsubscribe` (legacy).
            Unsubscribe(UnsubscribeRequestParams) = methods::RESOURCES_UNSUBSCRIBE,
            /// `completion/complete`.
            Complete(CompleteRequestParams) = methods::COMPLETION_COMPLETE,
            /// `logging/setLevel` (legacy).
            SetLevel(SetLevelRequestParams) = methods::LOGGING_SET_LEVEL,
            /// `subscriptions/listen` (2026-07-28).
            SubscriptionsListen(SubscriptionsListenRequestParams) = methods::SUBSCRIPTIONS_LISTEN,
            /// `tasks/get`.
            GetTask(GetTaskRequestParams) = methods::TASKS_GET,
            /// `tasks/result` (2025-11-25).
            GetTaskPayload(GetTaskRequestParams) = methods::TASKS_RESULT,
            /// `tasks/list` (2025-11-25).
            ListTasks(PaginatedRequestParams) = methods::TASKS_LIST,
            /// `tasks/cancel`.
            CancelTask(GetTaskRequestParams) = methods::TASKS_CANCEL,
            /// `tasks/update` (2026-07-28 tasks extension).
            UpdateTask(UpdateTaskRequestParams) = methods::TASKS_UPDATE,
        ]
    }
}

message_enum! {
    /// A notification from client to server, of any revision.
    pub enum ClientNotification {
        unit: []
        params: [
            /// `notifications/initialized` (legacy).
            Initialized(NotificationParams) = methods::NOTIFICATION_INITIALIZED,
            /// `notifications/cancelled`.
            Cancelled(CancelledNotificationParams) = methods::NOTIFICATION_CANCELLED,
            /// `notifications/progress` (legacy: progress of a server request).
            Progress(ProgressNotificationParams) = methods::NOTIFICATION_PROGRESS,
            /// `notifications/roots/list_changed` (legacy).
            RootsListChanged(NotificationParams) = methods::NOTIFICATION_ROOTS_LIST_CHANGED,
            /// `notifications/tasks/status` (2025-11-25).
            TaskStatus(TaskStatusNotificationParams) = methods::NOTIFICATION_TASKS_STATUS,
        ]
    }
}

message_enum! {
    /// A request from server to client (legacy revisions only; 2026-07-28
    /// servers use input requests instead).
    pub enum ServerRequest {
        unit: [
            /// `ping`.
            Ping = methods::PING,
        ]
        params: [
            /// `sampling/createMessage`.
            CreateMessage(CreateMessageRequestParams) = methods::SAMPLING_CREATE_MESSAGE,
            /// `elicitation/create`.
            Elicit(ElicitRequestParams) = methods::ELICITATION_CREATE,
            /// `roots/list`.
            ListRoots(RequestParams) = methods::ROOTS_LIST,
            /// `tasks/get` (2025-11-25).
            GetTask(GetTaskRequestParams) = methods::TASKS_GET,
            /// `tasks/result` (2025-11-25).
            GetTaskPayload(GetTaskRequestParams) = methods::TASKS_RESULT,
            /// `tasks/list` (2025-11-25).
            ListTasks(PaginatedRequestParams) = methods::TASKS_LIST,
            /// `tasks/cancel` (2025-11-25).
            CancelTask(GetTaskRequestParams) = methods::TASKS_CANCEL,
        ]
    }
}

message_enum! {
    /// A notification from server to client, of any revision.
    pub enum ServerNotification {
        unit: []
        params: [
            /// `notifications/cancelled` (legacy: cancels a server request).
            Cancelled(CancelledNotificationParams) = methods::NOTIFICATION_CANCELLED,
            /// `notifications/progress`.
            Progress(ProgressNotificationParams) = methods::NOTIFICATION_PROGRESS,
            /// `notifications/message`.
            LoggingMessage(LoggingMessageNotificationParams) = methods::NOTIFICATION_MESSAGE,
            /// `notifications/resources/updated`.
            ResourceUpdated(ResourceUpdatedNotificationParams) = methods::NOTIFICATION_RESOURCES_UPDATED,
            /// `notifications/resources/list_changed`.
            ResourceListChanged(NotificationParams) = methods::NOTIFICATION_RESOURCES_LIST_CHANGED,
            /// `notifications/tools/list_changed`.
            ToolListChanged(NotificationParams) = methods::NOTIFICATION_TOOLS_LIST_CHANGED,
            /// `notifications/prompts/list_changed`.
            PromptListChanged(NotificationParams) = methods::NOTIFICATION_PROMPTS_LIST_CHANGED,
            /// `notifications/elicitation/complete` (2025-11-25).
            ElicitationComplete(ElicitationCompleteNotificationParams) = methods::NOTIFICATION_ELICITATION_COMPLETE,
            /// `notifications/subscriptions/acknowledged` (2026-07-28).
            SubscriptionsAcknowledged(SubscriptionsAcknowledgedNotificationParams) =
                methods::NOTIFICATION_SUBSCRIPTIONS_ACKNOWLEDGED,
            /// `notifications/tasks/status` (2025-11-25).
            TaskStatus(TaskStatusNotificationParams) = methods::NOTIFICATION_TASKS_STATUS,
            /// `notifications/tasks` (2026-07-28 tasks extension).
            Tasks(DetailedTask) = methods::NOTIFICATION_TASKS,
        ]
    }
}

request_helpers!(ClientRequest, ServerRequest);
notification_helpers!(ClientNotification, ServerNotification);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ping_ignores_params_and_has_none() {
        let ping = ClientRequest::from_parts("ping", Some(json!({"_meta": {}}))).unwrap();
        assert_eq!(ping, ClientRequest::Ping);
        assert_eq!(ping.params(), None);
    }

    #[test]
    fn bad_params_name_the_problem() {
        let err = ClientRequest::from_parts("tools/call", Some(json!({"name": 3}))).unwrap_err();
        let McpError::InvalidParams(message) = err else { panic!("{err:?}") };
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn unions_serialize_as_method_and_params() {
        let n = ServerNotification::ToolListChanged(NotificationParams::default());
        assert_eq!(serde_json::to_value(&n).unwrap(), json!({"method": "notifications/tools/list_changed"}));
        let back: ServerNotification =
            serde_json::from_value(json!({"method": "notifications/tools/list_changed"})).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn requests_convert_to_and_from_jsonrpc() {
        let req = ClientRequest::CallTool(CallToolRequestParams::new("add")).into_request(7);
        assert_eq!(req.method, "tools/call");
        assert_eq!(req.params, Some(json!({"name": "add"})));
        assert_eq!(
            ClientRequest::from_request(&req).unwrap(),
            ClientRequest::CallTool(CallToolRequestParams::new("add"))
        );
    }
}
