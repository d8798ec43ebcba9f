//! Tools reach the upstream provider's token of the signed-in user here,
//! and nowhere else: it never leaves the server.

use std::fmt;
use std::sync::Arc;

use mcp_core::Identity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UpstreamCredentials;
use crate::authorization_server::seal::Sealer;
use crate::authorization_server::store::{GrantRecord, StoreError, UnixTime};
use crate::authorization_server::{Login, Shared};

/// Refresh this long before the provider's expiry.
const REFRESH_MARGIN_SECS: u64 = 60;

/// What is sealed into a grant.
#[derive(Serialize, Deserialize)]
struct SealedCredentials {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<UnixTime>,
}

impl SealedCredentials {
    fn new(credentials: UpstreamCredentials, now: UnixTime) -> Self {
        Self {
            expires_at: credentials.expires_in.map(|secs| now.saturating_add(secs)),
            access_token: credentials.access_token,
            refresh_token: credentials.refresh_token,
        }
    }

    fn fresh(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|at| at > now.saturating_add(REFRESH_MARGIN_SECS))
    }
}

/// Seals the provider's tokens for the grant `grant_id` (bound to it: a
/// sealed value copied into another grant does not open).
pub(crate) fn seal(
    sealer: &Sealer,
    credentials: UpstreamCredentials,
    now: UnixTime,
    grant_id: &str,
) -> String {
    let sealed = SealedCredentials::new(credentials, now);
    // Serializing strings and numbers cannot fail.
    let json = serde_json::to_string(&sealed).unwrap_or_default();
    sealer.seal(&json, grant_id)
}

fn open(sealer: &Sealer, grant: &GrantRecord) -> Option<SealedCredentials> {
    let opened = grant.upstream_token.as_deref().and_then(|sealed| sealer.open(sealed, &grant.grant_id));
    if opened.is_none() && grant.upstream_token.is_some() {
        tracing::warn!("mcp-auth: an upstream token cannot be opened (was the sealing key changed?)");
    }
    serde_json::from_str(&opened?).ok()
}

/// The provider's access token sealed into `grant`, if it opens.
pub(crate) fn sealed_access_token(sealer: &Sealer, grant: &GrantRecord) -> Option<String> {
    open(sealer, grant).map(|credentials| credentials.access_token)
}

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
    /// from another login, or the token cannot be opened (a new sealing key)
    /// or refreshed. A provider token about to expire is refreshed first
    /// (once for concurrent callers) and the new one sealed in its place.
    pub async fn for_identity(&self, identity: &Identity) -> Result<Option<UpstreamToken>, StoreError> {
        let Some(sealer) = &self.shared.sealer else { return Ok(None) };
        let Some(grant) = self.grant_of(identity).await? else { return Ok(None) };
        let Some(credentials) = open(sealer, &grant) else { return Ok(None) };
        if credentials.fresh(self.shared.now()) {
            return Ok(Some(UpstreamToken(credentials.access_token)));
        }
        self.refreshed(sealer, &grant.grant_id).await
    }

    /// The live grant behind the access token `identity` was verified from.
    async fn grant_of(&self, identity: &Identity) -> Result<Option<GrantRecord>, StoreError> {
        let Some(jti) = identity.claims.get("jti").and_then(Value::as_str) else { return Ok(None) };
        let now = self.shared.now();
        let Some(record) = self.shared.store.access_token(jti, now).await? else { return Ok(None) };
        if record.revoked {
            return Ok(None);
        }
        let grant = self.shared.store.grant(&record.grant_id, now).await?;
        Ok(grant.filter(|g| !g.revoked && g.subject == identity.subject))
    }

    /// Refreshes the provider's token of a grant, one caller at a time (a
    /// provider rotating refresh tokens would refuse the second).
    async fn refreshed(&self, sealer: &Sealer, grant_id: &str) -> Result<Option<UpstreamToken>, StoreError> {
        let Login::Upstream(login) = &self.shared.login else { return Ok(None) };
        let _one_at_a_time = self.shared.upstream_refresh.lock().await;
        let now = self.shared.now();
        // Another caller may have refreshed it meanwhile.
        let Some(grant) = self.shared.store.grant(grant_id, now).await?.filter(|g| !g.revoked) else {
            return Ok(None);
        };
        let Some(current) = open(sealer, &grant) else { return Ok(None) };
        if current.fresh(now) {
            return Ok(Some(UpstreamToken(current.access_token)));
        }
        let Some(refresh_token) = current.refresh_token else { return Ok(None) };
        let mut renewed = match login.refresh(&refresh_token).await {
            Ok(renewed) => renewed,
            Err(error) => {
                tracing::warn!(%error, "mcp-auth: the upstream token expired and cannot be refreshed");
                return Ok(None);
            }
        };
        // A provider that does not rotate refresh tokens keeps the old one valid.
        renewed.refresh_token = renewed.refresh_token.or(Some(refresh_token));
        let token = UpstreamToken(renewed.access_token.clone());
        self.shared.store.set_upstream_token(grant_id, &seal(sealer, renewed, now, grant_id)).await?;
        Ok(Some(token))
    }
}
