//! Token revocation (RFC 7009): client-authenticated, `200` whether or not
//! the token was known.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::Shared;
use super::client_auth::authenticate;
use super::crypto::hash;
use super::error::OAuthError;
use super::params::Params;
use super::responses::{json_no_store, oauth_error, oauth_error_basic};
use super::store::{ClientRecord, RevocationEvent};

/// `POST /revoke`.
pub(crate) async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    if let Some(defect) = params.defect() {
        return oauth_error(&OAuthError::invalid_request(defect));
    }
    let client = match authenticate(&shared, &headers, &params).await {
        Ok(client) => client,
        Err(e) if e.used_basic => return oauth_error_basic(&e.error),
        Err(e) => return oauth_error(&e.error),
    };
    let Some(token) = params.get("token") else {
        return oauth_error(&OAuthError::invalid_request("token is required"));
    };
    match revoke_token(&shared, &client, token).await {
        // RFC 7009 §2.2: 200 also for unknown or already invalid tokens.
        Ok(()) => json_no_store(StatusCode::OK, &json!({})),
        Err(error) => oauth_error(&error),
    }
}

async fn revoke_token(shared: &Shared, client: &ClientRecord, token: &str) -> Result<(), OAuthError> {
    let now = shared.now();
    // A refresh token: RFC 7009 §2.1, revoking it revokes the grant and the
    // access tokens issued from it.
    if let Some(used) = shared.store.refresh_token(&hash(token), now).await? {
        if used.record.client_id == client.client_id {
            shared.revoke_grant(&used.record.grant_id).await?;
        }
        return Ok(());
    }
    // An access token we signed: revoke it alone. Tokens of other clients
    // are left alone, silently (RFC 7009 §2.1).
    if let Some(claims) = shared.keys.verify_fresh(shared.store.as_ref(), token, now).await
        && claims.get("client_id").and_then(|c| c.as_str()) == Some(client.client_id.as_str())
        && let Some(jti) = claims.get("jti").and_then(|j| j.as_str())
    {
        shared.store.revoke_access_token(jti).await?;
        shared.revoked_here(&RevocationEvent::AccessToken(jti.to_owned()));
    }
    Ok(())
}
