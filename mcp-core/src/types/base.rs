//! Shapes shared by many methods: params that carry only `_meta`, and the empty result.

use serde::{Deserialize, Serialize};

use super::{Meta, ResultType};

/// Params of a request whose only member is `_meta` (`ping`, `roots/list`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParams {
    /// Request metadata (progress token; in 2026-07-28 also version and capabilities).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// Params of a notification whose only member is `_meta` (the `list_changed` family,
/// `notifications/initialized`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationParams {
    /// Notification metadata (in 2026-07-28, the subscription id).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// A result with no content: the answer to `ping`, `logging/setLevel`,
/// `resources/subscribe` and the like.
///
/// ```
/// use mcp_core::types::EmptyResult;
/// assert_eq!(serde_json::to_string(&EmptyResult::default()).unwrap(), "{}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmptyResult {
    /// `"complete"` in 2026-07-28; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}
