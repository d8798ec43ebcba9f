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
//!
//! Who a caller *is* is the triple [`Principal`]: the issuer, whether the
//! subject is a user or an OAuth client acting for itself, and the subject.
//! Two identities with equal subjects from different issuers, or a user and
//! a client that happen to share a name, are different principals.

use serde_json::{Map, Value};

/// Who is calling, as established by the auth layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    /// The subject (`sub`): the user or service the token was issued to;
    /// for a token without `sub` (client credentials), the client's id, and
    /// then [`subject_kind`](Self::subject_kind) is [`SubjectKind::Client`].
    pub subject: String,
    /// What [`subject`](Self::subject) names.
    pub subject_kind: SubjectKind,
    /// Who issued the token (`iss`), when the verifier knows it. Subjects
    /// are unique only within an issuer (OpenID Connect Core §2).
    pub issuer: Option<String>,
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

    /// Sets the issuer.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An identity for an OAuth client acting for itself (a client
    /// credentials token without `sub`): the subject is the client's id,
    /// marked as such, so it never equals a user of the same name.
    ///
    /// ```
    /// use mcp_core::Identity;
    /// use mcp_core::identity::SubjectKind;
    ///
    /// let service = Identity::client("reporting");
    /// assert_eq!(service.subject_kind, SubjectKind::Client);
    /// assert_eq!(service.client_id.as_deref(), Some("reporting"));
    /// assert_ne!(service.principal(), Identity::new("reporting").principal());
    /// ```
    pub fn client(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self {
            subject: client_id.clone(),
            subject_kind: SubjectKind::Client,
            client_id: Some(client_id),
            ..Self::default()
        }
    }

    /// Who this is: issuer, kind of subject, and subject. Scopes, client and
    /// claims are what the caller holds, not who it is, and are left out.
    ///
    /// ```
    /// use mcp_core::Identity;
    ///
    /// let alice = Identity::new("alice").with_issuer("https://idp.example");
    /// let same = alice.clone().with_scopes(["notes:read"]);
    /// let elsewhere = Identity::new("alice").with_issuer("https://other.example");
    /// assert_eq!(alice.principal(), same.principal());
    /// assert_ne!(alice.principal(), elsewhere.principal());
    /// ```
    pub fn principal(&self) -> Principal<'_> {
        Principal { issuer: self.issuer.as_deref(), kind: self.subject_kind, subject: &self.subject }
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

/// What an [`Identity`]'s subject names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectKind {
    /// A user, or whatever resource owner the issuer's `sub` names.
    #[default]
    User,
    /// An OAuth client acting for itself: the subject is its `client_id`.
    Client,
}

/// Who a caller is, as compared when something belongs to one caller (a
/// session, say): see [`Identity::principal`]. [`into_owned`](Self::into_owned)
/// gives a key that can be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Principal<'a> {
    /// The token's issuer, when known.
    pub issuer: Option<&'a str>,
    /// What the subject names.
    pub kind: SubjectKind,
    /// The subject.
    pub subject: &'a str,
}

impl Principal<'_> {
    /// The same principal, owning its strings.
    ///
    /// ```
    /// use mcp_core::Identity;
    ///
    /// let alice = Identity::new("alice");
    /// let key = alice.principal().into_owned();
    /// assert_eq!(key.borrowed(), alice.principal());
    /// ```
    pub fn into_owned(self) -> OwnedPrincipal {
        OwnedPrincipal {
            issuer: self.issuer.map(str::to_owned),
            kind: self.kind,
            subject: self.subject.to_owned(),
        }
    }
}

/// A [`Principal`] that owns its strings, for use as a map key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnedPrincipal {
    issuer: Option<String>,
    kind: SubjectKind,
    subject: String,
}

impl OwnedPrincipal {
    /// The principal, borrowed.
    pub fn borrowed(&self) -> Principal<'_> {
        Principal { issuer: self.issuer.as_deref(), kind: self.kind, subject: &self.subject }
    }
}
