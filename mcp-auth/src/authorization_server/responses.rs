//! Response builders shared by the endpoints: JSON with `no-store`, OAuth
//! error bodies, redirects to the client, and hardened HTML pages.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::error::OAuthError;

/// Security headers of every HTML page: no framing (clickjacking, RFC 6819
/// §4.4.1.9), no caching, nothing loaded from anywhere.
const PAGE_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-store"),
    // Not `no-referrer`: under it browsers send `Origin: null` on the login and
    // consent form posts, which the DNS-rebinding guard rightly refuses.
    // `same-origin` still sends nothing to the client's redirect URI.
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("content-type", "text/html; charset=utf-8"),
];

/// A JSON body that must not be cached: RFC 6749 §5.1 (`Cache-Control:
/// no-store`, `Pragma: no-cache`), applied to every OAuth endpoint.
pub(crate) fn json_no_store(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 §5.2 error body with its status. Logged at `info` with the
/// reason, so an operator can see why a client failed (the endpoint comes
/// from the span [`super::log_endpoint`] opens).
pub(crate) fn oauth_error(error: &OAuthError) -> Response {
    tracing::info!(
        status = error.status().as_u16(),
        error = error.code.as_str(),
        reason = %error.description,
        "mcp-auth: OAuth request refused"
    );
    let body = json!({"error": error.code.as_str(), "error_description": error.description});
    json_no_store(error.status(), &body)
}

/// RFC 6749 §5.2: a failed client authentication through the
/// `Authorization` header answers `401` with `WWW-Authenticate`.
pub(crate) fn oauth_error_basic(error: &OAuthError) -> Response {
    let mut response = oauth_error(error);
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="token""#));
    response
}

/// A `303 See Other` to `location`, uncached.
pub(crate) fn redirect(location: &str, extra: &[(HeaderName, HeaderValue)]) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in extra {
        headers.append(name.clone(), value.clone());
    }
    response
}

/// An HTML page with the security headers.
pub(crate) fn page(status: StatusCode, html: String, extra: &[(HeaderName, HeaderValue)]) -> Response {
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in PAGE_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    for (name, value) in extra {
        headers.append(name.clone(), value.clone());
    }
    response
}

/// HTML-escapes text for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole HTML document around `body`.
pub(crate) fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
         .dev{{background:#fee;border:2px solid #c00;padding:.5rem;font-weight:bold}}\
         .warn{{background:#ffd;border:2px solid #a60;padding:.5rem}}\
         button{{font-size:1rem;margin-right:.5rem;padding:.5rem 1.25rem;border-radius:.375rem;cursor:pointer}}\
         button.primary{{background:#1f6feb;color:#fff;border:1px solid #1f6feb;font-weight:600}}\
         button.secondary{{background:#fff;color:#333;border:1px solid #999}}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// The direct error page for requests that cannot be redirected (unknown
/// client, unregistered redirect URI, lost transaction).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    tracing::info!(status = status.as_u16(), reason = message, "mcp-auth: authorization request refused");
    let body = format!("<h1>Authorization request refused</h1><p>{}</p>", escape(message));
    page(status, document("Authorization request refused", &body), &[])
}
