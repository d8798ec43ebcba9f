//! Argument completion (`completion/complete`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Meta, ResultType};

/// Params of `completion/complete`.
///
/// ```
/// use mcp_core::types::{CompleteRequestParams, CompletionReference};
/// let p: CompleteRequestParams = serde_json::from_value(serde_json::json!({
///     "ref": {"type": "ref/prompt", "name": "code_review"},
///     "argument": {"name": "language", "value": "py"}
/// })).unwrap();
/// assert_eq!(p.r#ref, CompletionReference::prompt("code_review"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteRequestParams {
    /// The prompt or resource template whose argument is being completed.
    #[serde(rename = "ref")]
    pub r#ref: CompletionReference,
    /// The argument and what has been typed so far.
    pub argument: CompletionArgument,
    /// Values of arguments already filled in (2025-06-18 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CompletionContext>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// What is being completed, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CompletionReference {
    /// `"ref/prompt"`: an argument of a prompt.
    #[serde(rename = "ref/prompt")]
    Prompt {
        /// The prompt's name.
        name: String,
        /// The prompt's human-readable name (2025-06-18 and later).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// `"ref/resource"`: a variable of a resource template.
    #[serde(rename = "ref/resource")]
    Resource {
        /// The URI template.
        uri: String,
    },
}

impl CompletionReference {
    /// A reference to a prompt.
    pub fn prompt(name: impl Into<String>) -> Self {
        Self::Prompt { name: name.into(), title: None }
    }

    /// A reference to a resource template.
    pub fn resource(uri: impl Into<String>) -> Self {
        Self::Resource { uri: uri.into() }
    }
}

impl Default for CompletionReference {
    fn default() -> Self {
        Self::prompt("")
    }
}

/// The argument being completed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionArgument {
    /// The argument's name.
    pub name: String,
    /// The partial value typed so far.
    pub value: String,
}

/// Context for a completion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionContext {
    /// Arguments already resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<BTreeMap<String, String>>,
}

/// The result of `completion/complete`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteResult {
    /// `"complete"` in 2026-07-28.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_type: Option<ResultType>,
    /// The suggestions.
    pub completion: Completion,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// Completion suggestions.
///
/// ```
/// use mcp_core::types::Completion;
/// let c = Completion::new(vec!["python".into(), "pytorch".into()]);
/// assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"values":["python","pytorch"]}"#);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// At most 100 suggestions.
    pub values: Vec<String>,
    /// How many suggestions exist in all, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Whether more suggestions exist than were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

impl Completion {
    /// The most values one completion may carry.
    pub const MAX_VALUES: usize = 100;

    /// Suggestions without totals.
    pub fn new(values: Vec<String>) -> Self {
        Self { values, total: None, has_more: None }
    }
}
