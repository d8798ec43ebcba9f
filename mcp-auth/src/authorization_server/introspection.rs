//! Token introspection (RFC 7662), for the resource servers configured for
//! it only: configured confidential clients with `introspect = true`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::client_auth::authenticate;
use super::crypto::hash;
use super::error::{OAuthError, OAuthErrorCode};
use super::params::Params;
use super::responses::{json_no_store, oauth_error, oauth_error_basic};
use super::store::{ClientRecord, TokenEndpointAuthMethod};
use super::{ClientOrigin, Shared};

/// `POST /introspect`.
pub(crate) async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    if let Some(defect) = params.defect() {
        return oauth_error(&OAuthError::invalid_request(defect));
    }
    let client = match authenticate(&shared, &headers, &params).await {
        Ok(client) => client,
        Err(e) if e.used_basic => return oauth_error_basic(&e.error),
        Err(e) => return oauth_error(&e.error),
    };
    // RFC 7662 §2.1: the endpoint is protected; public clients cannot use it.
    if client.auth_method == TokenEndpointAuthMethod::None {
        return oauth_error(&OAuthError::invalid_client());
    }
    // RFC 7662 §2.1 and §4: authentication alone is not authorization, or
    // anyone who registers a client could scan for tokens. An authenticated
    // client that is not allowed gets 403, not an `active: false` that would
    // hide the misconfiguration.
    if !may_introspect(&shared, &client) {
        let body = json!({
            "error": OAuthErrorCode::UnauthorizedClient.as_str(),
            "error_description": "this client may not introspect tokens",
        });
        return json_no_store(StatusCode::FORBIDDEN, &body);
    }
    let Some(token) = params.get("token") else {
        return oauth_error(&OAuthError::invalid_request("token is required"));
    };
    match describe(&shared, token).await {
        Ok(answer) => json_no_store(StatusCode::OK, &answer),
        Err(error) => oauth_error(&error),
    }
}

/// Whether `client` is a configured client marked `introspect = true`
/// (never one from dynamic registration or a metadata document).
fn may_introspect(shared: &Shared, client: &ClientRecord) -> bool {
    shared.client_origin(&client.client_id) == ClientOrigin::Configured
        && shared.config.clients.iter().any(|c| c.introspect && c.client_id == client.client_id)
}

/// RFC 7662 §2.2: the token's metadata, or only `active: false`.
pub(crate) async fn describe(shared: &Shared, token: &str) -> Result<Value, OAuthError> {
    let inactive = json!({"active": false});
    let now = shared.now();
    if let Some(used) = shared.store.refresh_token(&hash(token), now).await? {
        // A rotated (or superseded) refresh token is spent: at most its
        // grace-window retry would still be honoured, and saying "active"
        // would tell a thief which stolen token to try.
        if used.previous_uses > 0 || used.record.superseded {
            return Ok(inactive);
        }
        let Some(grant) = shared.store.grant(&used.record.grant_id, now).await? else { return Ok(inactive) };
        if grant.revoked {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": used.record.scope,
            "client_id": used.record.client_id,
            "sub": grant.subject,
            "aud": grant.resource,
            "iss": shared.issuer,
            "exp": used.record.expires_at,
        }));
    }
    let Some(claims) = shared.keys.verify_fresh(shared.store.as_ref(), token, now).await else {
        return Ok(inactive);
    };
    if !access_token_active(shared, &claims).await? {
        return Ok(inactive);
    }
    let mut answer = json!({"active": true, "token_type": "Bearer"});
    for name in ["scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"] {
        if let Some(value) = claims.get(name) {
            answer[name] = value.clone();
        }
    }
    Ok(answer)
}

/// Whether an access token this server signed is still good: unexpired, and
/// neither it nor its grant revoked. Expiry is read from the claims every
/// time; "not revoked" comes from the revocation cache when it holds the
/// token, else from the store (two lookups), and is then cached.
pub(crate) async fn access_token_active(
    shared: &Shared,
    claims: &serde_json::Map<String, Value>,
) -> Result<bool, OAuthError> {
    let now = shared.now();
    let unexpired = claims.get("exp").and_then(Value::as_u64).is_some_and(|exp| exp > now);
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else { return Ok(false) };
    if !unexpired {
        return Ok(false);
    }
    if shared.revocations.is_active(jti, now, Instant::now()) {
        return Ok(true);
    }
    // Taken before the reads: a revocation heard of meanwhile keeps the answer out of the cache.
    let ticket = shared.revocations.ticket();
    let Some(record) = shared.store.access_token(jti, now).await? else { return Ok(false) };
    if record.revoked {
        return Ok(false);
    }
    let Some(grant) = shared.store.grant(&record.grant_id, now).await? else { return Ok(false) };
    if grant.revoked {
        return Ok(false);
    }
    let valid_until = record.expires_at.min(grant.expires_at);
    shared.revocations.insert(ticket, jti, &record.grant_id, valid_until, Instant::now());
    Ok(true)
}
