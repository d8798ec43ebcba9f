//! Minting tokens for a grant: a signed JWT access token (RFC 9068 shape)
//! and, when the client may refresh, an opaque refresh token kept only as a
//! hash.

use serde_json::{Map, Value, json};

use super::Shared;
use super::crypto::{hash, random_token};
use super::error::OAuthError;
use super::store::{AccessTokenRecord, GrantRecord, RefreshTokenRecord};

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

/// Issues an access token with `scope` (never wider than the grant's) and,
/// when `refresh_scope` is given, a refresh token carrying it.
pub(crate) async fn issue(
    shared: &Shared,
    grant: &GrantRecord,
    scope: &str,
    refresh_scope: Option<&str>,
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
    let access_token = shared.keys.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "mcp-auth: cannot sign an access token");
        OAuthError::server_error()
    })?;
    shared
        .store
        .put_access_token(AccessTokenRecord {
            jti,
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            expires_at: exp,
            revoked: false,
        })
        .await?;

    let refresh_token = match refresh_scope {
        None => None,
        Some(refresh_scope) => {
            let token = random_token();
            // The grant's lifetime is absolute (re-authorize after it): no
            // refresh token outlives it.
            let expires_at = now.saturating_add(shared.config.refresh_token_ttl_secs).min(grant.expires_at);
            shared
                .store
                .put_refresh_token(RefreshTokenRecord {
                    token_hash: hash(&token),
                    grant_id: grant.grant_id.clone(),
                    client_id: grant.client_id.clone(),
                    scope: refresh_scope.to_owned(),
                    expires_at,
                })
                .await?;
            Some(token)
        }
    };
    Ok(Issued {
        access_token,
        expires_in: ttl,
        refresh_token,
        scope: scope.to_owned(),
        resource: grant.resource.clone(),
    })
}
