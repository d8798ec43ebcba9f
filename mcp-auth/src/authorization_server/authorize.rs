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

use super::crypto::{constant_time_eq, hash, random_token};
use super::error::{OAuthError, OAuthErrorCode};
use super::params::Params;
use super::redirect::{find_match, is_loopback_host};
use super::responses::{document, error_page, escape, page, redirect};
use super::scope;
use super::store::{
    ClientRecord, CodeRecord, ConsentRecord, GrantRecord, LoginSession, PendingAuthorization, UnixTime,
};
use super::upstream::{self, UpstreamUser};
use super::{ClientOrigin, Login, Shared};

/// How long the user has between `/authorize` and the decision (and again
/// for an upstream login).
pub(crate) const TRANSACTION_SECS: u64 = 600;

/// `GET /authorize`.
pub(crate) async fn authorize_get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    start(&shared, &headers, query.as_bytes()).await
}

/// `POST /authorize`: the same parameters in a form body.
pub(crate) async fn authorize_post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    start(&shared, &headers, &body).await
}

/// A validated authorization request's return address.
pub(crate) struct ReturnTo<'a> {
    pub(crate) redirect_uri: &'a str,
    pub(crate) state: Option<&'a str>,
}

impl<'a> ReturnTo<'a> {
    /// Where a pending authorization answers.
    pub(crate) fn of(pending: &'a PendingAuthorization) -> Self {
        Self { redirect_uri: &pending.redirect_uri, state: pending.state.as_deref() }
    }
}

async fn start(shared: &Shared, headers: &HeaderMap, raw: &[u8]) -> Response {
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
    let client = match shared.client(client_id, now).await {
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
    let (challenge, scope, resource) = match check_request(shared, &client, &params) {
        Ok(checked) => checked,
        Err(error) => return error_redirect(shared, &back, &error),
    };
    // The cookie only binds the browser and is shared by its open pages; the
    // CSRF token of each page names its own transaction, so opening the
    // authorize page twice leaves the first page's forms working.
    let browser = cookie(headers, shared.cookie_name()).filter(|v| is_token(v)).unwrap_or_else(random_token);
    let csrf = random_token();
    let pending = PendingAuthorization {
        txn_hash: transaction_key(&browser, &csrf),
        csrf_hash: hash(&csrf),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_explicit: params.get("redirect_uri").is_some(),
        state: back.state.map(str::to_owned),
        code_challenge: challenge,
        scope,
        resource,
        // A login session of this browser spares the password (not the consent).
        subject: login_session(shared, headers, now).await,
        expires_at: now.saturating_add(TRANSACTION_SECS),
        upstream: None,
    };
    // A remembered approval skips the page, for a top-level navigation only.
    if top_level_navigation(headers) && remembered(shared, headers, &client, &pending).await {
        return issue_code(shared, &client, &pending, None, &[]).await;
    }
    if let Err(e) = shared.store.put_pending(pending.clone()).await {
        return store_failure(e.into());
    }
    let cookie = (SET_COOKIE, transaction_cookie(shared, &browser, TRANSACTION_SECS));
    match &shared.login {
        Login::Form(form) if pending.subject.is_none() => {
            login_page(shared, form.form_fields(), &csrf, None, StatusCode::OK, &[cookie])
        }
        // An upstream login comes after our own consent (confused deputy).
        _ => consent_page(shared, &client, &pending, &csrf, &[cookie]),
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

/// The subject of this browser's login session, if it has a live one.
async fn login_session(shared: &Shared, headers: &HeaderMap, now: UnixTime) -> Option<String> {
    if shared.config.login_session_secs == 0 {
        return None;
    }
    let value = cookie(headers, shared.session_cookie_name())?;
    match shared.store.session(&hash(&value), now).await {
        Ok(session) => session.map(|s| s.subject),
        Err(error) => {
            tracing::warn!(%error, "mcp-auth: login session lookup failed; asking to log in");
            None
        }
    }
}

/// Fetch Metadata (W3C): a page in a frame or a script may not ride on a
/// remembered approval, nor may a navigation another site started (only
/// `same-origin` or `none`, a typed URL or bookmark). Browsers without these
/// headers send none.
fn top_level_navigation(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("sec-fetch-mode").is_none_or(|m| m == "navigate")
        && get("sec-fetch-dest").is_none_or(|d| d == "document")
        && get("sec-fetch-site").is_none_or(|s| s == "same-origin" || s == "none")
}

/// The registered redirect URI a pending request matched: the key of
/// remembered approvals (a loopback redirect's port changes every time).
fn registered_redirect<'a>(client: &'a ClientRecord, pending: &PendingAuthorization) -> &'a str {
    find_match(&client.redirect_uris, &pending.redirect_uri).unwrap_or_default()
}

/// Whether this user approved this client, for this redirect URI, in this
/// browser, for at least the requested scopes (MCP security best practices,
/// "Confused Deputy": per-client consent; remembered only when enabled).
async fn remembered(
    shared: &Shared,
    headers: &HeaderMap,
    client: &ClientRecord,
    pending: &PendingAuthorization,
) -> bool {
    if !shared.config.remember_consent {
        return false;
    }
    let Some(subject) = &pending.subject else { return false };
    let Some(browser) = cookie(headers, shared.browser_cookie_name()) else { return false };
    let redirect = registered_redirect(client, pending);
    match shared.store.consent(subject, &client.client_id, redirect, &hash(&browser), shared.now()).await {
        Ok(Some(consent)) => scope::is_subset(&scope::parse(&pending.scope), &consent.scope),
        Ok(None) => false,
        Err(error) => {
            tracing::warn!(%error, "mcp-auth: consent lookup failed; asking again");
            false
        }
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
        Some(r) if let Some(canonical) = shared.resource_named(r) => canonical.to_owned(),
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
    let Login::Form(form) = &shared.login else {
        return error_page(StatusCode::BAD_REQUEST, "This server signs users in elsewhere.");
    };
    let (mut pending, csrf) = match transaction(&shared, &headers, &params, false).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let user = match form.authenticate(params.all()).await {
        Ok(user) => user,
        Err(error) => {
            let fields = form.form_fields();
            return login_page(&shared, fields, &csrf, Some(&error.0), StatusCode::BAD_REQUEST, &[]);
        }
    };
    tracing::info!(login = form.name(), subject = %user.subject, "mcp-auth: user logged in");
    let now = shared.now();
    let mut extra = Vec::new();
    // A short, server-side login session for this browser (absolute expiry).
    if shared.config.login_session_secs > 0 {
        let value = random_token();
        let session = LoginSession {
            session_hash: hash(&value),
            subject: user.subject.clone(),
            created_at: now,
            expires_at: now.saturating_add(shared.config.login_session_secs),
        };
        if let Err(e) = shared.store.put_session(session).await {
            return store_failure(e.into());
        }
        let name = shared.session_cookie_name();
        extra.push((SET_COOKIE, make_cookie(&shared, name, &value, shared.config.login_session_secs)));
    }
    pending.subject = Some(user.subject);
    let client = match revalidated_client(&shared, &pending).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if remembered(&shared, &headers, &client, &pending).await {
        // Single use, as at the consent POST.
        match shared.store.take_pending(&pending.txn_hash, now).await {
            Ok(Some(_)) => {}
            Ok(None) => return error_page(StatusCode::BAD_REQUEST, "This sign-in has expired. Start again."),
            Err(e) => return store_failure(e.into()),
        }
        return issue_code(&shared, &client, &pending, None, &extra).await;
    }
    if let Err(e) = shared.store.put_pending(pending.clone()).await {
        return store_failure(e.into());
    }
    consent_page(&shared, &client, &pending, &csrf, &extra)
}

/// `POST /authorize/consent`: the user's decision.
pub(crate) async fn consent(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    // Single use: the transaction is consumed whatever the decision.
    let (pending, _) = match transaction(&shared, &headers, &params, true).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let upstream_login = match &shared.login {
        Login::Upstream(upstream) => Some(upstream.clone()),
        Login::Form(_) => None,
    };
    if pending.subject.is_none() && upstream_login.is_none() {
        return error_page(StatusCode::BAD_REQUEST, "Log in first.");
    }
    let now = shared.now();
    let client = match revalidated_client(&shared, &pending).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let back = ReturnTo::of(&pending);
    // The browser cookie stays: other pages of this browser may still be open.
    let mut extra = Vec::new();
    if params.get("decision") != Some("approve") {
        let denied = OAuthError::new(OAuthErrorCode::AccessDenied, "the user denied the request");
        let mut response = error_redirect(&shared, &back, &denied);
        for (name, value) in extra {
            response.headers_mut().append(name, value);
        }
        return response;
    }
    if let Some(login) = upstream_login {
        // The browser's transaction cookie binds the upstream leg.
        let Some(browser) = cookie(&headers, shared.cookie_name()) else {
            return error_page(StatusCode::FORBIDDEN, "This sign-in belongs to another browser.");
        };
        return upstream::start(&shared, login.as_ref(), pending, &browser).await;
    }
    let Some(subject) = pending.subject.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "Log in first.");
    };
    if shared.config.remember_consent && params.get("remember") == Some("yes") {
        // Bound to this browser by a random cookie; keyed per (user, client,
        // registered redirect URI, browser); the scopes approved so far.
        let browser = cookie(&headers, shared.browser_cookie_name())
            .filter(|b| b.len() == 43)
            .unwrap_or_else(random_token);
        let browser_hash = hash(&browser);
        let redirect = registered_redirect(&client, &pending).to_owned();
        let before =
            match shared.store.consent(&subject, &client.client_id, &redirect, &browser_hash, now).await {
                Ok(found) => found.map(|c| c.scope).unwrap_or_default(),
                Err(e) => return store_failure(e.into()),
            };
        let mut approved = scope::parse(&before);
        for s in scope::parse(&pending.scope) {
            if !approved.contains(&s) {
                approved.push(s);
            }
        }
        let ttl = shared.config.remember_consent_secs;
        let record = ConsentRecord {
            subject,
            client_id: client.client_id.clone(),
            redirect_uri: redirect,
            browser_hash,
            scope: approved.join(" "),
            expires_at: now.saturating_add(ttl),
        };
        if let Err(e) = shared.store.put_consent(record).await {
            return store_failure(e.into());
        }
        extra.push((SET_COOKIE, make_cookie(&shared, shared.browser_cookie_name(), &browser, ttl)));
    }
    issue_code(&shared, &client, &pending, None, &extra).await
}

/// The client of a pending authorization, re-validated with its redirect
/// URI just before a code is issued (pitfall: WOP PR #92).
pub(crate) async fn revalidated_client(
    shared: &Shared,
    pending: &PendingAuthorization,
) -> Result<ClientRecord, Response> {
    let client = match shared.client(&pending.client_id, shared.now()).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(error_page(StatusCode::BAD_REQUEST, "Unknown client.")),
        Err(e) => return Err(store_failure(e.into())),
    };
    if find_match(&client.redirect_uris, &pending.redirect_uri).is_none() {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is no longer registered for this client.",
        ));
    }
    Ok(client)
}

/// Makes the grant and a code for an approved request and redirects back
/// with `code`, `state` and `iss` (RFC 6749 §4.1.2, RFC 9207 §2). The user
/// of an upstream login brings profile claims and a token to seal.
pub(crate) async fn issue_code(
    shared: &Shared,
    client: &ClientRecord,
    pending: &PendingAuthorization,
    upstream: Option<UpstreamUser>,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let subject = match (&upstream, &pending.subject) {
        (Some(user), _) => user.subject.clone(),
        (None, Some(subject)) => subject.clone(),
        (None, None) => return error_page(StatusCode::BAD_REQUEST, "Log in first."),
    };
    let now = shared.now();
    let grant_id = random_token();
    let (claims, upstream_token) = match upstream {
        Some(user) => {
            let sealed = match (&shared.sealer, user.credentials) {
                (Some(sealer), Some(credentials)) => {
                    Some(upstream::seal(sealer, credentials, now, &grant_id))
                }
                _ => None,
            };
            (user.claims, sealed)
        }
        None => (serde_json::Map::new(), None),
    };
    let grant = GrantRecord {
        grant_id,
        client_id: client.client_id.clone(),
        subject,
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        redirect_uri: registered_redirect(client, pending).to_owned(),
        created_at: now,
        expires_at: now.saturating_add(shared.config.refresh_token_ttl_secs),
        revoked: false,
        claims,
        upstream_token,
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
    let location = response_location(shared, &ReturnTo::of(pending), &[("code", &code)]);
    redirect(&location, extra)
}

/// The pending authorization of this page: the browser cookie and the
/// form's CSRF token together name it (one per open page).
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
    let txn_hash = transaction_key(&txn, csrf);
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

/// The key of one page's transaction: the browser cookie with the page's
/// CSRF token (neither alone finds it).
fn transaction_key(browser: &str, csrf: &str) -> String {
    hash(&format!("{browser}.{csrf}"))
}

/// Whether `value` looks like a token of [`random_token`] (43 base64url characters).
fn is_token(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The value of the cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The cookie binding the transaction to this browser.
pub(crate) fn transaction_cookie(shared: &Shared, value: &str, max_age: u64) -> HeaderValue {
    make_cookie(shared, shared.cookie_name(), value, max_age)
}

/// A cookie of the authorization pages: `__Host-` prefixed, Secure,
/// HttpOnly, SameSite=Lax, `Path=/` (RFC 6265bis §4.1.3.2). On a plain-http
/// loopback issuer browsers refuse `Secure`, so the documented exception
/// drops the prefix and `Secure`.
fn make_cookie(shared: &Shared, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if shared.secure_cookies { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn login_page(
    shared: &Shared,
    fields: String,
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
        fields
    );
    page(status, document("Sign in", &body), extra)
}

/// MCP security best practice: name the client, the redirect host and the
/// scopes; CSRF-protected; never framed. MCP 2025-11-25 (CIMD): the redirect
/// host is shown prominently, and a client that can only redirect to this
/// computer is flagged.
fn consent_page(
    shared: &Shared,
    client: &ClientRecord,
    pending: &PendingAuthorization,
    csrf: &str,
    extra: &[(HeaderName, HeaderValue)],
) -> Response {
    let name = client.client_name.as_deref().unwrap_or(&client.client_id);
    let host_of = |uri: &str| {
        Url::parse(uri)
            .ok()
            .map(|u| u.host_str().map_or_else(|| format!("{}:", u.scheme()), str::to_owned))
            .unwrap_or_default()
    };
    let host = host_of(&pending.redirect_uri);
    let origin = match shared.client_origin(&client.client_id) {
        ClientOrigin::Configured => "an application configured by this server's administrator".to_owned(),
        ClientOrigin::MetadataDocument => format!(
            "an application described by a document published at <strong>{}</strong>; its name is not verified",
            escape(&host_of(&client.client_id))
        ),
        ClientOrigin::Registered => {
            "an application that registered itself; its name is not verified".to_owned()
        }
    };
    let local_only = client
        .redirect_uris
        .iter()
        .all(|uri| Url::parse(uri).ok().and_then(|u| u.host_str().map(is_loopback_host)).unwrap_or(false));
    let warning = if local_only {
        "<p class=\"warn\" role=\"alert\">This application can only send you back to <strong>this \
         computer</strong> (localhost). Allow it only if you just started this sign-in from a program you \
         trust on this device.</p>"
    } else {
        ""
    };
    // With an upstream login, the account is chosen after this page.
    let (account, next) = match (&pending.subject, &shared.login) {
        (Some(subject), _) => (format!("<strong>{}</strong>", escape(subject)), ""),
        (None, Login::Upstream(upstream)) => (
            format!(
                "the account you sign in with at <strong>{}</strong> next",
                escape(upstream.display_name())
            ),
            " and continue",
        ),
        (None, Login::Form(_)) => ("you".to_owned(), ""),
    };
    let remember = if shared.config.remember_consent && pending.subject.is_some() {
        "<p><label><input type=\"checkbox\" name=\"remember\" value=\"yes\"> Remember this decision in this \
         browser</label></p>"
    } else {
        ""
    };
    let scopes: String =
        scope::parse(&pending.scope).iter().map(|s| format!("<li><code>{}</code></li>", escape(s))).collect();
    let scopes = if scopes.is_empty() { "<li>no specific scopes</li>".to_owned() } else { scopes };
    let body = format!(
        "<h1>Allow access?</h1>\
         <p><strong>{}</strong> ({origin}) wants to access this server as {account}.</p>\
         <p>You will be sent back to <strong class=\"redirect-host\">{}</strong>.</p>{warning}\
         <p>It asks for:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{remember}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow{next}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        escape(name),
        escape(&host),
        escape(&shared.endpoint("/authorize/consent")),
        escape(csrf),
    );
    page(StatusCode::OK, document("Allow access?", &body), extra)
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

pub(crate) fn error_redirect(shared: &Shared, back: &ReturnTo<'_>, error: &OAuthError) -> Response {
    let location = response_location(
        shared,
        back,
        &[("error", error.code.as_str()), ("error_description", &error.description)],
    );
    redirect(&location, &[])
}

pub(crate) fn store_failure(error: OAuthError) -> Response {
    error_page(error.status(), "The server could not process the request. Try again later.")
}
