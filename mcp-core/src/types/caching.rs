//! Cache hints on list, read and discover results (2026-07-28).

use serde::{Deserialize, Serialize};

/// Who may reuse a cached result (`cacheScope`), alongside its lifetime `ttlMs`.
///
/// ```
/// use mcp_core::types::CacheScope;
/// assert_eq!(serde_json::to_string(&CacheScope::Private).unwrap(), r#""private""#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Any client may reuse the result, whoever asked for it.
    Public,
    /// Only the principal that asked may reuse the result (the safe default).
    #[default]
    Private,
}
