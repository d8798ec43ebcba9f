//! Cursor-based pagination of list requests.

use serde::{Deserialize, Serialize};

use super::Meta;

/// An opaque position in a paginated list.
pub type Cursor = String;

/// Params of every list request (`tools/list`, `prompts/list`, `resources/list`,
/// `resources/templates/list`, `tasks/list`).
///
/// ```
/// use mcp_core::types::PaginatedRequestParams;
/// let p: PaginatedRequestParams = serde_json::from_str(r#"{"cursor":"abc"}"#).unwrap();
/// assert_eq!(p.cursor.as_deref(), Some("abc"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedRequestParams {
    /// Where to continue; absent for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}
