//! Roots: the directories or files a client exposes to servers.

use serde::{Deserialize, Serialize};

use super::Meta;

/// A root the client exposes.
///
/// ```
/// use mcp_core::types::Root;
/// let r: Root = serde_json::from_str(r#"{"uri":"file:///home/user/project","name":"Project"}"#).unwrap();
/// assert_eq!(r.name.as_deref(), Some("Project"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Root {
    /// The root's URI (a `file://` URI).
    pub uri: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// The client's answer to `roots/list`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRootsResult {
    /// The roots.
    pub roots: Vec<Root>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}
