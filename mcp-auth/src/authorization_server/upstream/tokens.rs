//! Tools reach the upstream provider's token of the signed-in user here,
//! and nowhere else: it never leaves the server.

use std::fmt;
use std::sync::Arc;

use mcp_core::Identity;
use serde_json::Value;

use crate::authorization_server::Shared;
use crate::authorization_server::store::StoreError;

/// The upstream provider's access token of one user (for example a GitHub
/// token, to call GitHub's API on their behalf). Its `Debug` form is
/// `<redacted>`; never return it to a client.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamToken(String);

impl UpstreamToken {
    /// The token, to put in an `Authorization` header towards the provider.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamToken(<redacted>)")
    }
}

/// Opens the sealed upstream tokens of signed-in users. Get one from
/// [`AuthorizationServer::upstream_tokens`](crate::AuthorizationServer::upstream_tokens);
/// `mcp-server` registers it as state in authorization-server mode, so a
/// tool takes `State<UpstreamTokens>`.
///
/// ```no_run
/// # async fn run(tokens: mcp_auth::UpstreamTokens, identity: mcp_auth::Identity) {
/// if let Ok(Some(token)) = tokens.for_identity(&identity).await {
///     let _authorization = format!("Bearer {}", token.secret());
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct UpstreamTokens {
    shared: Arc<Shared>,
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamTokens")
    }
}

impl UpstreamTokens {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The upstream token behind the access token `identity` was verified
    /// from: `None` when that token is revoked or expired, its grant came
    /// from another login, or the token cannot be opened (a new sealing key).
    pub async fn for_identity(&self, identity: &Identity) -> Result<Option<UpstreamToken>, StoreError> {
        let Some(sealer) = &self.shared.sealer else { return Ok(None) };
        let Some(jti) = identity.claims.get("jti").and_then(Value::as_str) else { return Ok(None) };
        let now = self.shared.now();
        let Some(record) = self.shared.store.access_token(jti, now).await? else { return Ok(None) };
        if record.revoked {
            return Ok(None);
        }
        let Some(grant) = self.shared.store.grant(&record.grant_id, now).await? else { return Ok(None) };
        if grant.revoked || grant.subject != identity.subject {
            return Ok(None);
        }
        let Some(sealed) = &grant.upstream_token else { return Ok(None) };
        let opened = sealer.open(sealed, &grant.grant_id);
        if opened.is_none() {
            tracing::warn!("mcp-auth: an upstream token cannot be opened (was the sealing key changed?)");
        }
        Ok(opened.map(UpstreamToken))
    }
}
