//! The upstream leg of an authorization: out to the provider after our
//! consent, and back through the one fixed callback.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};

use super::{UpstreamAuthorization, UpstreamCallback, UpstreamLogin, UpstreamLoginError};
use crate::authorization_server::authorize::{
    ReturnTo, TRANSACTION_SECS, cookie, error_redirect, issue_code, revalidated_client, store_failure,
    transaction_cookie,
};
use crate::authorization_server::crypto::{constant_time_eq, hash, random_token, s256_challenge};
use crate::authorization_server::error::{OAuthError, OAuthErrorCode};
use crate::authorization_server::params::Params;
use crate::authorization_server::responses::{error_page, redirect};
use crate::authorization_server::seal::Sealer;
use crate::authorization_server::store::{PendingAuthorization, UpstreamLeg};
use crate::authorization_server::{Login, Shared};

/// The store key of a transaction out at the provider: never the same as
/// a consent page's (those hash the browser cookie with a CSRF token).
fn upstream_key(state: &str) -> String {
    hash(&format!("upstream.{state}"))
}

/// The PKCE verifier and OpenID nonce of a transaction, derived from its
/// `state` under the sealing key: recomputed at the callback, never stored.
fn derived(sealer: &Sealer, state: &str) -> (String, String) {
    (sealer.derive("upstream pkce verifier", state), sealer.derive("upstream nonce", state))
}

/// After our consent: stores the transaction under a fresh, single-use
/// `state` bound to this browser, and sends the browser to the provider.
pub(crate) async fn start(
    shared: &Shared,
    login: &dyn UpstreamLogin,
    mut pending: PendingAuthorization,
    browser: &str,
) -> Response {
    let Some(sealer) = &shared.sealer else {
        tracing::error!("mcp-auth: upstream login without a sealing key");
        return error_redirect(shared, &ReturnTo::of(&pending), &OAuthError::server_error());
    };
    let state = random_token();
    let (verifier, nonce) = derived(sealer, &state);
    let challenge = s256_challenge(&verifier);
    let callback = shared.upstream_callback();
    let request = UpstreamAuthorization {
        redirect_uri: &callback,
        state: &state,
        code_challenge: &challenge,
        nonce: &nonce,
    };
    let url = match login.authorization_url(&request).await {
        Ok(url) => url,
        Err(error) => {
            tracing::warn!(%error, login = login.name(), "mcp-auth: cannot start the upstream login");
            let unavailable = OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the identity provider cannot be reached; try again later",
            );
            return error_redirect(shared, &ReturnTo::of(&pending), &unavailable);
        }
    };
    pending.txn_hash = upstream_key(&state);
    pending.upstream = Some(UpstreamLeg { browser_hash: hash(browser) });
    pending.expires_at = shared.now().saturating_add(TRANSACTION_SECS);
    if let Err(e) = shared.store.put_pending(pending).await {
        return store_failure(e.into());
    }
    // The cookie must outlive the visit at the provider.
    let cookie = (SET_COOKIE, transaction_cookie(shared, browser, TRANSACTION_SECS));
    redirect(url.as_str(), &[cookie])
}

/// `GET /callback`: the provider sends the browser back here.
pub(crate) async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let params = Params::parse(raw.as_bytes());
    let Login::Upstream(login) = &shared.login else {
        return error_page(StatusCode::NOT_FOUND, "This server does not sign users in elsewhere.");
    };
    if Params::repeated(raw.as_bytes(), "state") {
        return error_page(StatusCode::BAD_REQUEST, "The state parameter is repeated.");
    }
    let (Some(state), Some(sealer)) = (params.get("state"), &shared.sealer) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in response has no state.");
    };
    let key = upstream_key(state);
    let now = shared.now();
    // An unknown, expired or already used state: nothing to answer to
    // (forged or replayed; never a redirect built from request input).
    let pending = match shared.store.pending(&key, now).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired or was already completed. Start again from the application.",
            );
        }
        Err(e) => return store_failure(e.into()),
    };
    let Some(leg) = &pending.upstream else {
        return error_page(StatusCode::BAD_REQUEST, "This sign-in is not waiting for a provider.");
    };
    // Login CSRF and GHSA-rww4-4w9c-7733: the browser that approved must be
    // the one coming back, proven by its transaction cookie.
    let same_browser = cookie(&headers, shared.cookie_name())
        .is_some_and(|value| constant_time_eq(hash(&value).as_bytes(), leg.browser_hash.as_bytes()));
    if !same_browser {
        tracing::warn!("mcp-auth: upstream callback from another browser refused");
        return error_page(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser. Start again from the application.",
        );
    }
    // Single use: of two concurrent callbacks, one wins.
    match shared.store.take_pending(&key, now).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error_page(StatusCode::BAD_REQUEST, "This sign-in was already completed.");
        }
        Err(e) => return store_failure(e.into()),
    }
    let client = match revalidated_client(&shared, &pending).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let back = ReturnTo::of(&pending);
    // The provider's error goes back to the client, with its state and our iss.
    if let Some(error) = params.get("error") {
        tracing::info!(error, login = login.name(), "mcp-auth: the identity provider returned an error");
        let relayed = if error == "access_denied" {
            OAuthError::new(
                OAuthErrorCode::AccessDenied,
                "the user denied the request at the identity provider",
            )
        } else {
            OAuthError::new(OAuthErrorCode::ServerError, "the identity provider could not sign the user in")
        };
        return error_redirect(&shared, &back, &relayed);
    }
    let Some(code) = params.get("code") else {
        let missing = OAuthError::new(OAuthErrorCode::ServerError, "the identity provider returned no code");
        return error_redirect(&shared, &back, &missing);
    };
    let (verifier, nonce) = derived(sealer, state);
    let redirect_uri = shared.upstream_callback();
    let answer =
        UpstreamCallback { code, redirect_uri: &redirect_uri, code_verifier: &verifier, nonce: &nonce };
    let user = match login.finish(&answer).await {
        Ok(user) => user,
        Err(error) => {
            tracing::warn!(%error, login = login.name(), "mcp-auth: upstream login failed");
            let relayed = match error {
                UpstreamLoginError::NotAllowed(_) => OAuthError::new(
                    OAuthErrorCode::AccessDenied,
                    "this account is not allowed to use this server",
                ),
                UpstreamLoginError::Http(_) => OAuthError::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    "the identity provider cannot be reached; try again later",
                ),
                _ => OAuthError::new(
                    OAuthErrorCode::ServerError,
                    "the sign-in at the identity provider failed",
                ),
            };
            return error_redirect(&shared, &back, &relayed);
        }
    };
    tracing::info!(login = login.name(), subject = %user.subject, "mcp-auth: user logged in upstream");
    issue_code(&shared, &client, &pending, Some(user), &[]).await
}
