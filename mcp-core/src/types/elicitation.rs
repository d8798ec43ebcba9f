//! Elicitation: asking the user for input through the client (2025-06-18 and later).

use serde::{Deserialize, Serialize};

use super::{JsonObject, Meta, TaskMetadata};

/// How the client collects the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitMode {
    /// An in-client form described by `requestedSchema` (the default when `mode` is absent).
    #[default]
    Form,
    /// An external page at `url`, for data that must not pass through the client (2025-11-25 and later).
    Url,
}

/// Params of `elicitation/create`, in form or URL mode.
///
/// ```
/// use mcp_core::types::{ElicitMode, ElicitRequestParams, JsonObject};
/// let schema: JsonObject = serde_json::from_str(r#"{"type":"object","properties":{"name":{"type":"string"}}}"#).unwrap();
/// let p = ElicitRequestParams::form("Your name?", schema);
/// assert_eq!(p.mode, Some(ElicitMode::Form));
/// let v = serde_json::to_value(&p).unwrap();
/// assert_eq!(v["requestedSchema"]["properties"]["name"]["type"], "string");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestParams {
    /// Form or URL; absent means form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElicitMode>,
    /// What is being asked and why.
    pub message: String,
    /// Form mode: a flat object schema of primitive properties
    /// (see [`ElicitationSchema`](super::ElicitationSchema)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_schema: Option<JsonObject>,
    /// URL mode: the page the user should open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// URL mode: the id that `notifications/elicitation/complete` will name (2025-11-25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation_id: Option<String>,
    /// Asks for the elicitation to run as a task (2025-11-25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskMetadata>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl ElicitRequestParams {
    /// A form-mode elicitation.
    pub fn form(message: impl Into<String>, requested_schema: impl Into<JsonObject>) -> Self {
        Self {
            mode: Some(ElicitMode::Form),
            message: message.into(),
            requested_schema: Some(requested_schema.into()),
            ..Self::default()
        }
    }

    /// A URL-mode elicitation.
    ///
    /// ```
    /// use mcp_core::types::ElicitRequestParams;
    /// let p = ElicitRequestParams::url("Connect your account", "https://example.com/connect", "el-1");
    /// assert_eq!(p.elicitation_id.as_deref(), Some("el-1"));
    /// ```
    pub fn url(
        message: impl Into<String>,
        url: impl Into<String>,
        elicitation_id: impl Into<String>,
    ) -> Self {
        Self {
            mode: Some(ElicitMode::Url),
            message: message.into(),
            url: Some(url.into()),
            elicitation_id: Some(elicitation_id.into()),
            ..Self::default()
        }
    }

    /// The effective mode: form when `mode` is absent.
    pub fn effective_mode(&self) -> ElicitMode {
        self.mode.unwrap_or_default()
    }
}

/// What the user did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitAction {
    /// Submitted the form, or agreed to open the URL.
    Accept,
    /// Explicitly refused.
    Decline,
    /// Dismissed without choosing.
    #[default]
    Cancel,
}

/// The client's answer to `elicitation/create`.
///
/// ```
/// use mcp_core::types::{ElicitAction, ElicitResult};
/// let r: ElicitResult = serde_json::from_str(r#"{"action":"accept","content":{"name":"octocat"}}"#).unwrap();
/// assert_eq!(r.action, ElicitAction::Accept);
/// assert_eq!(r.content.unwrap()["name"], "octocat");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitResult {
    /// Accept, decline or cancel.
    pub action: ElicitAction,
    /// Form mode, on accept: the submitted values (strings, numbers, booleans, string arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<JsonObject>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl ElicitResult {
    /// An acceptance carrying form values.
    pub fn accept(content: JsonObject) -> Self {
        Self { action: ElicitAction::Accept, content: Some(content), meta: None }
    }

    /// A refusal.
    pub fn decline() -> Self {
        Self { action: ElicitAction::Decline, content: None, meta: None }
    }

    /// A dismissal.
    pub fn cancel() -> Self {
        Self { action: ElicitAction::Cancel, content: None, meta: None }
    }
}

/// Params of `notifications/elicitation/complete` (2025-11-25): a URL-mode
/// elicitation has finished.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitationCompleteNotificationParams {
    /// The id from the URL-mode request.
    pub elicitation_id: String,
    /// Notification metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// The `data` of a `-32042` "URL elicitation required" error (2025-11-25 only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlElicitationRequiredData {
    /// The URL-mode elicitations the client must complete before retrying.
    pub elicitations: Vec<ElicitRequestParams>,
}
