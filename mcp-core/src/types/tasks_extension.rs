//! The tasks extension of 2026-07-28 (`io.modelcontextprotocol/tasks`).
//!
//! A server that sees the extension in the request's client capabilities may
//! answer `tools/call` with a task handle (`resultType: "task"`); the client
//! polls `tasks/get`, answers input requests with `tasks/update`, and may
//! `tasks/cancel`. Status changes can also arrive as `notifications/tasks`
//! on a `subscriptions/listen` stream.
//!
//! ```
//! use mcp_core::types::{DetailedTask, ResultType, TaskStatus};
//! let t: DetailedTask = serde_json::from_str(r#"{"resultType":"task","taskId":"t1","status":"working",
//!     "createdAt":"2026-08-01T10:00:00Z","lastUpdatedAt":"2026-08-01T10:00:00Z","ttlMs":60000,"pollIntervalMs":5000}"#).unwrap();
//! assert_eq!(t.result_type, Some(ResultType::Task));
//! assert_eq!(t.status, TaskStatus::Working);
//! ```

use serde::{Deserialize, Serialize};

use super::{InputRequests, InputResponses, JsonObject, Meta, ResultType, TaskStatus};

/// The identifier of the tasks extension in `capabilities.extensions`.
pub const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// A task with the payload of its status. Used as the task handle answering a
/// request (`resultType: "task"`), as the result of `tasks/get` (`"complete"`),
/// and as the params of `notifications/tasks` (no `resultType`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailedTask {
    /// `"task"` for a new handle, `"complete"` for `tasks/get`; absent in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// The task's id.
    pub task_id: String,
    /// Its status.
    pub status: TaskStatus,
    /// A human-readable note on the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// ISO 8601 time of the last update.
    pub last_updated_at: String,
    /// Lifetime from creation in milliseconds; `null` (None) for unlimited. Always written.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Suggested polling interval in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
    /// With `input_required`: what the client must answer through `tasks/update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_requests: Option<InputRequests>,
    /// With `completed`: the result the original request would have returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonObject>,
    /// With `failed`: the JSON-RPC error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JsonObject>,
    /// Result or notification metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// Params of `tasks/update`: answers to a task's input requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTaskRequestParams {
    /// The task.
    pub task_id: String,
    /// Answers by input-request key.
    pub input_responses: InputResponses,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}
