//! The authenticated principal.
//!
//! An auth layer (such as `mcp-auth`) puts an [`Identity`] into the request; the
//! server hands it to handlers. It lives here so the runtime can read it
//! without depending on any auth implementation.
//!
//! ```
//! use mcp_core::Identity;
//! let who = Identity::new("user-1").with_scopes(["notes:read"]);
//! assert!(who.has_scope("notes:read"));
//! assert!(!who.has_all_scopes(&["notes:read", "notes:write"]));
//! ```

use serde_json::{Map, Value};

/// Who is calling, as established by the auth layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    /// The subject (`sub`): the user or service the token was issued to.
    pub subject: String,
    /// The OAuth client the token was issued for, when known.
    pub client_id: Option<String>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// Every claim of the token (or introspection response), for custom checks.
    pub claims: Map<String, Value>,
}

impl Identity {
    /// An identity with a subject and nothing else.
    pub fn new(subject: impl Into<String>) -> Self {
        Self { subject: subject.into(), ..Self::default() }
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the client id.
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether every scope in `needed` was granted.
    pub fn has_all_scopes<S: AsRef<str>>(&self, needed: &[S]) -> bool {
        needed.iter().all(|s| self.has_scope(s.as_ref()))
    }

    /// The scopes in `needed` that were not granted.
    pub fn missing_scopes<'a, S: AsRef<str>>(&self, needed: &'a [S]) -> Vec<&'a str> {
        needed.iter().map(AsRef::as_ref).filter(|s| !self.has_scope(s)).collect()
    }
}

/// A response extension by which a service says "this caller lacks scope".
///
/// An auth layer in front (such as `mcp-auth`) turns a response carrying it
/// into `403` with `WWW-Authenticate: Bearer error="insufficient_scope",
/// scope="…"` (RFC 6750 §3.1). List **every** scope the operation needs, not
/// only the missing ones, so the client can ask for them in one step (MCP
/// 2026-07-28, SEP-2350).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsufficientScope {
    /// The scopes the operation needs.
    pub scopes: Vec<String>,
}
