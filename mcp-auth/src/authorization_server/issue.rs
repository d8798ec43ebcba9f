//! Minting tokens for a grant: a signed JWT access token (RFC 9068 shape)
//! and, when the client may refresh, an opaque refresh token kept only as a
//! hash.

use serde_json::{Map, Value, json};

use super::Shared;
use super::crypto::{hash, random_token};
use super::error::OAuthError;
use super::store::{
    AccessTokenRecord, GrantRecord, RefreshTokenRecord, RevocationEvent, Succession, UnixTime,
};

/// What the token endpoint answers (RFC 6749 §5.1).
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
    pub(crate) resource: String,
}

impl Issued {
    pub(crate) fn to_json(&self) -> Value {
        let mut body = json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
            "resource": self.resource,
        });
        if let Some(refresh) = &self.refresh_token {
            body["refresh_token"] = json!(refresh);
        }
        body
    }
}

/// The refresh token to issue with an access token.
pub(crate) struct NewRefresh<'a> {
    /// The scope it carries.
    pub(crate) scope: &'a str,
    /// SHA-256 of the refresh token it replaces (a rotation).
    pub(crate) rotated_from: Option<&'a str>,
}

/// Issues an access token with `scope` (never wider than the grant's) and,
/// when `refresh` is given, a refresh token. A rotation keeps one live
/// successor per refresh token: if an earlier successor of the same token
/// was already used, the family has forked and the grant is revoked.
pub(crate) async fn issue(
    shared: &Shared,
    grant: &GrantRecord,
    scope: &str,
    refresh: Option<NewRefresh<'_>>,
) -> Result<Issued, OAuthError> {
    let now = shared.now();
    let ttl = shared.config.access_token_ttl_secs;
    let exp = now.saturating_add(ttl);
    let jti = random_token();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(shared.issuer));
    claims.insert("sub".into(), json!(grant.subject));
    // RFC 8707 §2 / RFC 9068 §3: the audience is the one resource.
    claims.insert("aud".into(), json!(grant.resource));
    claims.insert("client_id".into(), json!(grant.client_id));
    claims.insert("scope".into(), json!(scope));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(exp));
    claims.insert("jti".into(), json!(jti));
    // Profile claims of an upstream login, never overriding the ones above.
    for (name, value) in &grant.claims {
        claims.entry(name.clone()).or_insert_with(|| value.clone());
    }
    let access_token = shared.keys.sign(&claims, now).map_err(|e| {
        tracing::error!(error = %e, "mcp-auth: cannot sign an access token");
        OAuthError::server_error()
    })?;
    shared
        .store
        .put_access_token(AccessTokenRecord {
            jti: jti.clone(),
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            expires_at: exp,
            revoked: false,
        })
        .await?;

    let refresh_token = match refresh {
        None => None,
        Some(refresh) => Some(issue_refresh(shared, grant, refresh, jti, now).await?),
    };
    Ok(Issued {
        access_token,
        expires_in: ttl,
        refresh_token,
        scope: scope.to_owned(),
        resource: grant.resource.clone(),
    })
}

/// Stores a new refresh token for `grant`, issued with the access token
/// `access_jti`, and returns it.
async fn issue_refresh(
    shared: &Shared,
    grant: &GrantRecord,
    refresh: NewRefresh<'_>,
    access_jti: String,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let token = random_token();
    // The grant's lifetime is absolute (re-authorize after it): no
    // refresh token outlives it.
    let expires_at = now.saturating_add(shared.config.refresh_token_ttl_secs).min(grant.expires_at);
    let record = RefreshTokenRecord {
        token_hash: hash(&token),
        grant_id: grant.grant_id.clone(),
        client_id: grant.client_id.clone(),
        scope: refresh.scope.to_owned(),
        expires_at,
        rotated_from: refresh.rotated_from.map(str::to_owned),
        access_jti: Some(access_jti),
        superseded: false,
    };
    match shared.store.put_successor_refresh_token(record).await? {
        Succession::EarlierSuccessorUsed => {
            // OAuth 2.1 §4.3.1 / RFC 9700 §4.14.2: the token was rotated and its
            // successor used, yet it came back: two parties hold the family.
            tracing::warn!(client_id = %grant.client_id, "mcp-auth: refresh token family forked; revoking its grant");
            shared.store.revoke_grant(&grant.grant_id).await?;
            shared.revoked_here(&RevocationEvent::Grant(grant.grant_id.clone()));
            return Err(OAuthError::invalid_grant("invalid or expired refresh token"));
        }
        // The replaced successor's access token was revoked (its jti is the store's).
        Succession::Replaced => shared.revoked_here(&RevocationEvent::Grant(grant.grant_id.clone())),
        Succession::First => {}
    }
    Ok(token)
}
