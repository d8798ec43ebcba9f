//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): checks the
//! request, logs the user in, asks for consent, and redirects back with a
//! code (or an error), `state` and `iss` (RFC 9207).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use reqwest::Url;

use super::Shared;
use super::crypto::{constant_time_eq, hash, random_token};
use super::error::{OAuthError, OAuthErrorCode};
use super::params::Params;
use super::redirect::find_match;
use super::responses::{document, error_page, escape, page, redirect};
use super::scope;
use super::store::{ClientRecord, CodeRecord, GrantRecord, PendingAuthorization};

/// How long the user has between `/authorize` and the decision.
const TRANSACTION_SECS: u64 = 600;

/// `GET /authorize`.
pub(crate) async fn authorize_get(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    start(&shared, query.as_bytes()).await
}

/// `POST /authorize`: the same parameters in a form body.
pub(crate) async fn authorize_post(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    start(&shared, &body).await
}

/// A validated authorization request's return address.
struct ReturnTo<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

async fn start(shared: &Shared, raw: &[u8]) -> Response {
    let params = Params::parse(raw);
    let now = shared.now();

    // Phase 1: until the client and its redirect URI are known good, errors
    // are shown here and never redirected (RFC 6749 §4.1.2.1; CVE-2025-4143).
    if Params::repeated(raw, "client_id") || Params::repeated(raw, "redirect_uri") {
        return error_page(StatusCode::BAD_REQUEST, "client_id or redirect_uri is repeated.");
    }
    let Some(client_id) = params.get("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "The request has no client_id.");
    };
    let client = match shared.store.client(client_id, now).await {
        Ok(Some(client)) => client,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "Unknown client."),
        Err(e) => return store_failure(e.into()),
    };
    let redirect_uri = match resolve_redirect(&client, params.get("redirect_uri")) {
        Some(uri) => uri,
        None => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The redirect_uri is not registered for this client.",
            );
        }
    };
    let back = ReturnTo { redirect_uri: &redirect_uri, state: params.get("state") };

    // Phase 2: errors go back to the client, with state and iss.
    match check_request(shared, &client, &params) {
        Ok((challenge, scope, resource)) => {
            let txn = random_token();
            let csrf = random_token();
            let pending = PendingAuthorization {
                txn_hash: hash(&txn),
                csrf_hash: hash(&csrf),
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                redirect_uri_explicit: params.get("redirect_uri").is_some(),
                state: back.state.map(str::to_owned),
                code_challenge: challenge,
                scope,
                resource,
                subject: None,
                expires_at: now.saturating_add(TRANSACTION_SECS),
            };
            if let Err(e) = shared.store.put_pending(pending).await {
                return store_failure(e.into());
            }
            let cookie = transaction_cookie(shared, &txn, TRANSACTION_SECS);
            login_page(shared, &csrf, None, StatusCode::OK, &[(SET_COOKIE, cookie)])
        }
        Err(error) => error_redirect(shared, &back, &error),
    }
}

/// The redirect URI to answer to: the presented one when registered
/// (exactly, or RFC 8252 §7.3 loopback with any port), or the only one
/// registered when none is presented.
fn resolve_redirect(client: &ClientRecord, presented: Option<&str>) -> Option<String> {
    match presented {
        Some(uri) => find_match(&client.redirect_uris, uri).map(|_| uri.to_owned()),
        None if client.redirect_uris.len() == 1 => client.redirect_uris.first().cloned(),
        None => None,
    }
}

/// Checks everything but the client and redirect URI; returns the PKCE
/// challenge, the scope to ask for, and the resource.
fn check_request(
    shared: &Shared,
    client: &ClientRecord,
    params: &Params,
) -> Result<(String, String, String), OAuthError> {
    if let Some(defect) = params.defect() {
        return Err(OAuthError::invalid_request(defect));
    }
    // OAuth 2.1 §4.1.1: only the code flow.
    if params.get("response_type") != Some("code") {
        return Err(OAuthError::new(OAuthErrorCode::UnsupportedResponseType, "response_type must be code"));
    }
    // RFC 7636 §4.3 / OAuth 2.1 §7.5.2: PKCE required, S256 only; `plain`,
    // a missing method (which means plain) and unknown methods are refused.
    let Some(challenge) = params.get("code_challenge") else {
        return Err(OAuthError::invalid_request("code_challenge is required (PKCE)"));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::invalid_request("code_challenge_method must be S256"));
    }
    // An S256 challenge is 32 bytes in base64url: 43 characters.
    if challenge.len() != 43
        || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OAuthError::invalid_request("code_challenge is not an S256 challenge"));
    }
    // RFC 8707 §2: only our own resource.
    let resource = match params.get("resource") {
        None => shared.resource.clone(),
        Some(r) if r == shared.resource => r.to_owned(),
        Some(_) => {
            return Err(OAuthError::new(OAuthErrorCode::InvalidTarget, "resource is not this server's"));
        }
    };
    let allowed = client.scope.clone().unwrap_or_else(|| shared.config.scopes_supported.join(" "));
    let scope = match params.get("scope") {
        None => allowed,
        Some(requested) => {
            let requested = scope::parse(requested);
            let supported = shared.config.scopes_supported.join(" ");
            if !scope::is_subset(&requested, &allowed) || !scope::is_subset(&requested, &supported) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    "scope not allowed for this client",
                ));
            }
            requested.join(" ")
        }
    };
    if client.grant_types.iter().all(|g| g != "authorization_code") {
        return Err(OAuthError::new(OAuthErrorCode::UnauthorizedClient, "client may not use the code flow"));
    }
    Ok((challenge.to_owned(), scope, resource))
}

/// `POST /authorize/login`: the login form.
pub(crate) async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let (mut pending, csrf) = match transaction(&shared, &headers, &params, false).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match shared.authenticator.authenticate(params.all()).await {
        Ok(user) => {
            tracing::info!(login = shared.authenticator.name(), subject = %user.subject, "mcp-auth: user logged in");
            pending.subject = Some(user.subject);
            let client = match shared.store.client(&pending.client_id, shared.now()).await {
                Ok(Some(client)) => client,
                Ok(None) => return error_page(StatusCode::BAD_REQUEST, "Unknown client."),
                Err(e) => return store_failure(e.into()),
            };
            let page = consent_page(&client, &pending, &csrf, &shared.endpoint("/authorize/consent"));
            if let Err(e) = shared.store.put_pending(pending).await {
                return store_failure(e.into());
            }
            page
        }
        Err(error) => login_page(&shared, &csrf, Some(&error.0), StatusCode::BAD_REQUEST, &[]),
    }
}

/// `POST /authorize/consent`: the user's decision.
pub(crate) async fn consent(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    // Single use: the transaction is consumed whatever the decision.
    let (pending, _) = match transaction(&shared, &headers, &params, true).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(subject) = pending.subject.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "Log in first.");
    };
    let now = shared.now();
    // Re-validate the client and redirect URI now (pitfall: WOP PR #92).
    let client = match shared.store.client(&pending.client_id, now).await {
        Ok(Some(client)) => client,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "Unknown client."),
        Err(e) => return store_failure(e.into()),
    };
    if find_match(&client.redirect_uris, &pending.redirect_uri).is_none() {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is no longer registered for this client.",
        );
    }
    let back = ReturnTo { redirect_uri: &pending.redirect_uri, state: pending.state.as_deref() };
    let clear = (SET_COOKIE, transaction_cookie(&shared, "", 0));
    if params.get("decision") != Some("approve") {
        let denied = OAuthError::new(OAuthErrorCode::AccessDenied, "the user denied the request");
        let mut response = error_redirect(&shared, &back, &denied);
        response.headers_mut().append(clear.0, clear.1);
        return response;
    }

    let grant = GrantRecord {
        grant_id: random_token(),
        client_id: client.client_id.clone(),
        subject,
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        created_at: now,
        expires_at: now.saturating_add(shared.config.refresh_token_ttl_secs),
        revoked: false,
    };
    let code = random_token();
    let record = CodeRecord {
        code_hash: hash(&code),
        grant_id: grant.grant_id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_explicit: pending.redirect_uri_explicit,
        code_challenge: pending.code_challenge.clone(),
        // OAuth 2.1 §4.1.2: short-lived, at most 10 minutes.
        expires_at: now.saturating_add(shared.config.authorization_code_ttl_secs.min(600)),
    };
    if let Err(e) = shared.store.put_grant(grant).await {
        return store_failure(e.into());
    }
    if let Err(e) = shared.store.put_code(record).await {
        return store_failure(e.into());
    }
    let location = response_location(&shared, &back, &[("code", &code)]);
    redirect(&location, &[clear])
}

/// The pending authorization of this browser: the transaction cookie names
/// it, and the form's CSRF token must be the one issued with it.
async fn transaction(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
    take: bool,
) -> Result<(PendingAuthorization, String), Response> {
    let lost = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was opened in another browser. Start again from the application.",
        )
    };
    let Some(txn) = cookie(headers, shared.cookie_name()) else { return Err(lost()) };
    let Some(csrf) = params.get("csrf") else {
        return Err(error_page(StatusCode::BAD_REQUEST, "Missing CSRF token."));
    };
    let now = shared.now();
    let txn_hash = hash(&txn);
    let pending = match shared.store.pending(&txn_hash, now).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return Err(lost()),
        Err(e) => return Err(store_failure(e.into())),
    };
    // The CSRF token first, so a forged request cannot consume the transaction.
    if !constant_time_eq(hash(csrf).as_bytes(), pending.csrf_hash.as_bytes()) {
        return Err(error_page(StatusCode::BAD_REQUEST, "Invalid CSRF token."));
    }
    if take {
        // Single use: of two concurrent submissions, one wins.
        match shared.store.take_pending(&txn_hash, now).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(lost()),
            Err(e) => return Err(store_failure(e.into())),
        }
    }
    Ok((pending, csrf.to_owned()))
}

/// The value of the cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The cookie binding the transaction to this browser: `__Host-` prefixed,
/// Secure, HttpOnly, SameSite=Lax. On a plain-http loopback issuer browsers
/// refuse `Secure`, so the documented exception drops the prefix and `Secure`.
fn transaction_cookie(shared: &Shared, value: &str, max_age: u64) -> HeaderValue {
    let secure = if shared.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        shared.cookie_name()
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn login_page(
    shared: &Shared,
    csrf: &str,
    message: Option<&str>,
    status: StatusCode,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let message = message.map(|m| format!("<p role=\"alert\">{}</p>", escape(m))).unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{message}<form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">{}<p><button type=\"submit\">Continue</button></p></form>",
        escape(&shared.endpoint("/authorize/login")),
        escape(csrf),
        shared.authenticator.form_fields()
    );
    page(status, document("Sign in", &body), extra)
}

/// MCP security best practice: name the client, the redirect host and the
/// scopes; CSRF-protected; never framed.
fn consent_page(client: &ClientRecord, pending: &PendingAuthorization, csrf: &str, action: &str) -> Response {
    let name = client.client_name.as_deref().unwrap_or(&client.client_id);
    let host = Url::parse(&pending.redirect_uri)
        .ok()
        .map(|u| u.host_str().map_or_else(|| format!("{}:", u.scheme()), str::to_owned))
        .unwrap_or_default();
    let scopes: String =
        scope::parse(&pending.scope).iter().map(|s| format!("<li><code>{}</code></li>", escape(s))).collect();
    let scopes = if scopes.is_empty() { "<li>no specific scopes</li>".to_owned() } else { scopes };
    let body = format!(
        "<h1>Allow access?</h1>\
         <p><strong>{}</strong> (an application that registered itself; its name is not verified) wants to \
         access this server as <strong>{}</strong>.</p>\
         <p>You will be sent back to <strong>{}</strong>.</p><p>It asks for:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        escape(name),
        escape(pending.subject.as_deref().unwrap_or_default()),
        escape(&host),
        escape(action),
        escape(csrf),
    );
    page(StatusCode::OK, document("Allow access?", &body), &[])
}

/// The redirect URI with `params`, `state` and `iss` added to its query
/// (RFC 6749 §4.1.2: the existing query is kept; RFC 9207 §2: `iss`).
fn response_location(shared: &Shared, back: &ReturnTo<'_>, params: &[(&str, &str)]) -> String {
    let Ok(mut url) = Url::parse(back.redirect_uri) else { return back.redirect_uri.to_owned() };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = back.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &shared.issuer);
    }
    url.into()
}

fn error_redirect(shared: &Shared, back: &ReturnTo<'_>, error: &OAuthError) -> Response {
    let location = response_location(
        shared,
        back,
        &[("error", error.code.as_str()), ("error_description", &error.description)],
    );
    redirect(&location, &[])
}

fn store_failure(error: OAuthError) -> Response {
    error_page(error.status(), "The server could not process the request. Try again later.")
}
