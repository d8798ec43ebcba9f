//! Small pieces both HTTP endpoints (Streamable HTTP and HTTP+SSE) share.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use mcp_core::Identity;
use mcp_core::error::codes;
use mcp_core::identity::{InsufficientScope, OwnedPrincipal};
use mcp_core::jsonrpc::RequestId;

use super::reply;

/// `Content-Type: application/json`, parameters (charset) allowed.
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The body, at most `limit` bytes; 413 beyond, by `Content-Length` or as read.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, Response<Body>> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(reply::status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(reply::status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(_) => Err(reply::status(StatusCode::BAD_REQUEST)),
    }
}

/// 32 random bytes as lowercase hex: visible ASCII, unguessable.
pub(super) fn new_session_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether `id` has the form [`new_session_id`] gives: 64 lowercase hex digits.
pub(super) fn is_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The authenticated caller the auth layer put on the request, if any.
pub(super) fn caller(extensions: &http::Extensions) -> Option<Arc<Identity>> {
    extensions.get::<Arc<Identity>>().cloned()
}

/// Like [`caller`], moving the identity out of extensions the handler owns.
pub(super) fn take_caller(extensions: &mut http::Extensions) -> Option<Arc<Identity>> {
    extensions.remove::<Arc<Identity>>()
}

/// Whether a request's caller is the one who opened a session. Session ids
/// are not credentials: a session answers only its owner (SPEC §4.2, and
/// MCP security best practices, "Session Hijacking"), compared as issuer,
/// kind of subject and subject, never by subject alone.
pub(super) fn same_principal(owner: Option<&Identity>, caller: Option<&Identity>) -> bool {
    match (owner, caller) {
        (None, None) => true,
        (Some(owner), Some(caller)) => owner.principal() == caller.principal(),
        _ => false,
    }
}

/// How many sessions each authenticated principal holds, for the
/// per-principal quota. Anonymous sessions are not counted: without
/// authentication there is no one to tell apart.
#[derive(Debug, Default)]
pub(super) struct OwnerCounts(HashMap<OwnedPrincipal, usize>);

impl OwnerCounts {
    /// Sessions held by `owner` (0 for anonymous callers).
    pub(super) fn of(&self, owner: Option<&Identity>) -> usize {
        owner.map_or(0, |o| self.0.get(&o.principal().into_owned()).copied().unwrap_or(0))
    }

    /// `owner` opened a session.
    pub(super) fn add(&mut self, owner: Option<&Identity>) {
        if let Some(owner) = owner {
            *self.0.entry(owner.principal().into_owned()).or_default() += 1;
        }
    }

    /// A session of `owner` ended.
    pub(super) fn remove(&mut self, owner: Option<&Identity>) {
        let Some(owner) = owner else { return };
        let key = owner.principal().into_owned();
        if let Some(count) = self.0.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.0.remove(&key);
            }
        }
    }
}

/// 403 for a caller lacking scope: a JSON-RPC error for the client, and the
/// [`InsufficientScope`] extension from which the auth layer builds the
/// `WWW-Authenticate` challenge naming every scope needed.
pub(super) fn insufficient_scope(id: Option<RequestId>, scopes: Vec<String>) -> Response<Body> {
    let text = format!("Forbidden: this operation needs the scopes {}", scopes.join(" "));
    let mut response = reply::error(StatusCode::FORBIDDEN, id, codes::INVALID_REQUEST, &text);
    response.extensions_mut().insert(InsufficientScope { scopes });
    response
}

/// 403 before anything runs when the caller lacks a scope the target of
/// `request` needs; `tool` is the route a `tools/call` names, already looked up.
pub(super) fn scope_refusal(
    server: &crate::server::Server,
    request: &mcp_core::jsonrpc::Request,
    tool: Option<&crate::tool::ToolRoute>,
    who: Option<&Identity>,
) -> Option<Response<Body>> {
    let scopes = server.scope_challenge(request, tool, who?)?;
    Some(insufficient_scope(Some(request.id.clone()), scopes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_core::identity::SubjectKind;

    #[test]
    fn sessions_answer_only_their_owner() {
        let alice = Identity::new("alice").with_issuer("https://idp.example");
        let bob = Identity::new("bob").with_issuer("https://idp.example");
        assert!(same_principal(None, None));
        assert!(same_principal(Some(&alice), Some(&alice.clone().with_scopes(["x"]).with_client_id("c"))));
        assert!(!same_principal(Some(&alice), Some(&bob)));
        assert!(!same_principal(Some(&alice), None));
        assert!(!same_principal(None, Some(&bob)));
        // The same subject from another issuer, or with no issuer, is someone else.
        let elsewhere = Identity::new("alice").with_issuer("https://other.example");
        assert!(!same_principal(Some(&alice), Some(&elsewhere)));
        assert!(!same_principal(Some(&alice), Some(&Identity::new("alice"))));
        // A client acting for itself never passes for the user named like it.
        let client = Identity::client("alice").with_issuer("https://idp.example");
        assert_eq!(client.subject_kind, SubjectKind::Client);
        assert!(!same_principal(Some(&alice), Some(&client)));
        assert!(!same_principal(Some(&client), Some(&alice)));
    }

    #[test]
    fn owner_counts_follow_principals() {
        let alice = Identity::new("alice").with_issuer("https://idp.example");
        let other = Identity::new("alice").with_issuer("https://other.example");
        let mut counts = OwnerCounts::default();
        counts.add(Some(&alice));
        counts.add(Some(&alice.clone().with_scopes(["x"])));
        counts.add(None);
        assert_eq!((counts.of(Some(&alice)), counts.of(Some(&other)), counts.of(None)), (2, 0, 0));
        counts.remove(Some(&alice));
        counts.remove(Some(&alice));
        counts.remove(Some(&alice));
        assert_eq!(counts.of(Some(&alice)), 0);
        assert!(counts.0.is_empty(), "no entry is kept for a principal without sessions");
    }

    #[test]
    fn session_ids_are_visible_ascii_and_distinct() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
        assert_ne!(a, b);
    }
}
