//! The token endpoint (RFC 6749 §3.2): the `authorization_code` and
//! `refresh_token` grants. Every answer, errors included, is `no-store`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::Shared;
use super::client_auth::authenticate;
use super::crypto::{constant_time_eq, hash, s256_challenge};
use super::error::{OAuthError, OAuthErrorCode};
use super::issue::{Issued, NewRefresh, issue};
use super::params::Params;
use super::responses::{json_no_store, oauth_error, oauth_error_basic};
use super::scope;
use super::store::{ClientRecord, CodeRecord, GrantRecord, RevocationEvent, UnixTime};

/// `POST /token`.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    if let Some(defect) = params.defect() {
        return oauth_error(&OAuthError::invalid_request(defect));
    }
    let client = match authenticate(&shared, &headers, &params).await {
        Ok(client) => client,
        Err(e) if e.used_basic => return oauth_error_basic(&e.error),
        Err(e) => return oauth_error(&e.error),
    };
    let result = match params.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some(grant_type) if !matches!(grant_type, "authorization_code" | "refresh_token") => {
            Err(OAuthError::new(OAuthErrorCode::UnsupportedGrantType, "unsupported grant_type"))
        }
        Some(grant_type) if !client.grant_types.iter().any(|g| g == grant_type) => Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "grant type not registered for this client",
        )),
        Some("authorization_code") => authorization_code(&shared, &client, &params).await,
        Some(_) => refresh_token(&shared, &client, &params).await,
    };
    match result {
        Ok(issued) => json_no_store(StatusCode::OK, &issued.to_json()),
        Err(error) => oauth_error(&error),
    }
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.6 and OAuth 2.1 §4.1.3.
async fn authorization_code(
    shared: &Shared,
    client: &ClientRecord,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let code = params.get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required"))?;
    let now = shared.now();
    let code_hash = hash(code);
    let Some(found) = shared.store.code(&code_hash, now).await? else {
        return Err(OAuthError::invalid_grant("invalid or expired code"));
    };
    if found.previous_uses > 0 {
        return Err(code_replayed(shared, &found.record).await);
    }
    // RFC 6749 §4.1.3 and RFC 7636 §4.6: the code is looked at, not spent,
    // until the request proves it comes from the client it was issued to:
    // a wrong client, redirect URI or verifier leaves it for that client.
    check_code_request(&found.record, client, params, verifier)?;
    // Spent atomically: of two concurrent redemptions only one sees it unused.
    let used = shared.store.use_code(&code_hash, now).await.map_err(|e| spent(e.into()))?;
    let Some(used) = used else {
        return Err(OAuthError::invalid_grant("invalid or expired code"));
    };
    if used.previous_uses > 0 {
        return Err(spent(code_replayed(shared, &used.record).await));
    }
    let issued = async {
        let grant = live_grant(shared, &used.record.grant_id, client).await?;
        check_resource(shared, params, &grant)?;
        revoke_earlier_grants(shared, &grant, now).await?;
        let refresh = client
            .grant_types
            .iter()
            .any(|g| g == "refresh_token")
            .then_some(NewRefresh { scope: &grant.scope, rotated_from: None });
        issue(shared, &grant, &grant.scope, refresh).await
    };
    issued.await.map_err(spent)
}

/// A failure once a code or refresh token may have been spent: not
/// `temporarily_unavailable`, whose retry would present the spent credential
/// again and be taken for a replay that revokes the grant (RFC 6749 §10.5),
/// but `server_error`, after which a client starts over.
fn spent(error: OAuthError) -> OAuthError {
    if error.code == OAuthErrorCode::TemporarilyUnavailable {
        tracing::warn!("mcp-auth: the store failed after a code or refresh token was spent");
        return OAuthError::server_error();
    }
    error
}

/// RFC 6749 §4.1.2 and OAuth 2.1 §4.1.3: a code is single-use; a second use
/// means it leaked, so everything issued from it is revoked (RFC 6749 §10.5).
async fn code_replayed(shared: &Shared, record: &CodeRecord) -> OAuthError {
    tracing::warn!(client_id = %record.client_id, "mcp-auth: authorization code replayed; revoking its grant");
    if let Err(error) = shared.revoke_grant(&record.grant_id).await {
        return error.into();
    }
    OAuthError::invalid_grant("invalid or expired code")
}

/// What the token request must repeat of the authorization request: the
/// client, the redirect URI when one was given, and the PKCE verifier.
fn check_code_request(
    record: &CodeRecord,
    client: &ClientRecord,
    params: &Params,
    verifier: &str,
) -> Result<(), OAuthError> {
    if !constant_time_eq(record.client_id.as_bytes(), client.client_id.as_bytes()) {
        return Err(OAuthError::invalid_grant("code was issued to another client"));
    }
    // RFC 6749 §4.1.3: the same redirect_uri as at /authorize, if it was given there.
    match params.get("redirect_uri") {
        Some(uri) if uri != record.redirect_uri => {
            return Err(OAuthError::invalid_grant("redirect_uri mismatch"));
        }
        None if record.redirect_uri_explicit => {
            return Err(OAuthError::invalid_grant("redirect_uri is required: it was given at /authorize"));
        }
        _ => {}
    }
    // RFC 7636 §4.1: 43-128 unreserved characters; §4.6: S256 of it must
    // equal the challenge.
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok
        || !constant_time_eq(s256_challenge(verifier).as_bytes(), record.code_challenge.as_bytes())
    {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    Ok(())
}

/// RFC 6749 §6 with OAuth 2.1 §4.3.1 rotation.
async fn refresh_token(
    shared: &Shared,
    client: &ClientRecord,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let now = shared.now();
    let token_hash = hash(token);
    // RFC 6749 §6: bound to its client. Another client's attempt spends no
    // use of it.
    let Some(found) = shared.store.refresh_token(&token_hash, now).await? else {
        return Err(OAuthError::invalid_grant("invalid or expired refresh token"));
    };
    if !constant_time_eq(found.record.client_id.as_bytes(), client.client_id.as_bytes()) {
        return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
    }
    let used = shared.store.use_refresh_token(&token_hash, now).await.map_err(|e| spent(e.into()))?;
    let Some(used) = used else {
        return Err(OAuthError::invalid_grant("invalid or expired refresh token"));
    };
    let record = used.record;
    // Rotation with a one-back grace: the first use rotates; a second use
    // within the grace window (a lost response) is accepted once, and its new
    // token supersedes the first rotation's, so one chain stays live; a
    // superseded token, or any other reuse, is a stolen token's, and the
    // whole grant is revoked (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).
    // A grace of 0 turns the window off: any second use is a reuse.
    let grace = shared.config.refresh_grace_secs;
    let within_grace = grace > 0
        && used.previous_uses == 1
        && used.first_used_at.is_some_and(|at| now <= at.saturating_add(grace));
    let rotated = async {
        if record.superseded || (used.previous_uses > 0 && !within_grace) {
            tracing::warn!(client_id = %record.client_id, "mcp-auth: refresh token reused; revoking its grant");
            shared.revoke_grant(&record.grant_id).await?;
            return Err(OAuthError::invalid_grant("invalid or expired refresh token"));
        }
        let grant = live_grant(shared, &record.grant_id, client).await?;
        check_resource(shared, params, &grant)?;
        // RFC 6749 §6: the scope may only narrow.
        let scope = match params.get("scope") {
            None => record.scope.clone(),
            Some(requested) => {
                let requested = scope::parse(requested);
                if !scope::is_subset(&requested, &record.scope) {
                    return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "scope exceeds the grant"));
                }
                requested.join(" ")
            }
        };
        // RFC 6749 §6: the new refresh token keeps the old one's scope.
        let refresh = NewRefresh { scope: &record.scope, rotated_from: Some(&token_hash) };
        issue(shared, &grant, &scope, Some(refresh)).await
    };
    rotated.await.map_err(spent)
}

/// A re-authorization replaces what the same user gave the same client for
/// the same registered redirect URI: the earlier grants and their tokens go.
/// "Earlier" is by creation time, so two authorizations approved in the same
/// second (two tabs) do not revoke each other.
async fn revoke_earlier_grants(
    shared: &Shared,
    grant: &GrantRecord,
    now: UnixTime,
) -> Result<(), OAuthError> {
    if grant.redirect_uri.is_empty() {
        return Ok(());
    }
    for earlier in shared.store.grants_of(&grant.subject, &grant.client_id, now).await? {
        if earlier.created_at < grant.created_at
            && earlier.redirect_uri == grant.redirect_uri
            && !earlier.revoked
        {
            // The remembered approval stays: this authorization may have used it.
            shared.store.supersede_grant(&earlier.grant_id).await?;
            shared.revoked_here(&RevocationEvent::Grant(earlier.grant_id.clone()));
        }
    }
    Ok(())
}

async fn live_grant(
    shared: &Shared,
    grant_id: &str,
    client: &ClientRecord,
) -> Result<GrantRecord, OAuthError> {
    match shared.store.grant(grant_id, shared.now()).await? {
        Some(grant) if !grant.revoked && grant.client_id == client.client_id => Ok(grant),
        _ => Err(OAuthError::invalid_grant("the grant was revoked or has expired")),
    }
}

/// RFC 8707 §2.2: a `resource` must name the grant's.
fn check_resource(shared: &Shared, params: &Params, grant: &GrantRecord) -> Result<(), OAuthError> {
    match params.get("resource") {
        Some(resource) if shared.resource_named(resource) != Some(grant.resource.as_str()) => {
            Err(OAuthError::new(OAuthErrorCode::InvalidTarget, "resource does not match the grant"))
        }
        _ => Ok(()),
    }
}
