//! Progress and cancellation notifications.

use serde::{Deserialize, Serialize};

use super::Meta;
use super::serde_util::{compact_f64, compact_opt_f64};
use crate::jsonrpc::RequestId;

/// The token a request names in `_meta.progressToken`; progress notifications echo it.
pub type ProgressToken = RequestId;

/// Params of `notifications/progress`.
///
/// ```
/// use mcp_core::types::ProgressNotificationParams;
/// let p: ProgressNotificationParams =
///     serde_json::from_str(r#"{"progressToken":"t","progress":50,"total":100}"#).unwrap();
/// assert_eq!(p.progress, 50.0);
/// // Integral values are written back as integers.
/// assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"progressToken":"t","progress":50,"total":100}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressNotificationParams {
    /// The token of the request this reports on.
    pub progress_token: ProgressToken,
    /// Progress so far; increases with every notification.
    #[serde(serialize_with = "compact_f64")]
    pub progress: f64,
    /// The total, when known.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "compact_opt_f64")]
    pub total: Option<f64>,
    /// A human-readable description (2025-03-26 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Notification metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl ProgressNotificationParams {
    /// Progress for `token`, without total or message.
    pub fn new(progress_token: ProgressToken, progress: f64) -> Self {
        Self { progress_token, progress, total: None, message: None, meta: None }
    }
}

/// Params of `notifications/cancelled`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelledNotificationParams {
    /// The request to cancel (required before 2025-11-25 and again in 2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// Why, for logs or display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notification metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}
