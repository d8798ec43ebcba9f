//! The one HTTP client that talks to the authorization server: bounded in
//! time and size, no redirects, `https` only (plain `http` on loopback).

use std::time::Duration;

use mcp_core::error::with_causes;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, HeaderMap};
use serde_json::Value;

use crate::error::{ConfigError, UpstreamError};

/// Longest wait for one complete answer.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON answer and how long it may be cached.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) json: Value,
    /// `Cache-Control: max-age`, or zero for `no-store`/`no-cache`.
    pub(crate) max_age: Option<Duration>,
}

#[derive(Clone, Debug)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    allow_insecure_http: bool,
}

impl Fetcher {
    pub(crate) fn new(allow_insecure_http: bool) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            // A redirect could lead anywhere; metadata, JWKS and introspection
            // answer directly or not at all.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("mcp-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(Self { client, allow_insecure_http })
    }

    /// Whether `url` may be fetched at all: `https`, or `http` to loopback
    /// (or anywhere when explicitly allowed); never with credentials inside.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), UpstreamError> {
        check_url(url, self.allow_insecure_http)
            .map_err(|reason| UpstreamError::Refused { url: url.to_string(), reason })
    }

    pub(crate) async fn get_json(&self, url: &Url) -> Result<Fetched, UpstreamError> {
        self.check_url(url)?;
        let request = self.client.get(url.clone()).header(ACCEPT, "application/json");
        self.send(url, request).await
    }

    /// GETs a JSON resource with a bearer token (RFC 6750 §2.1): an
    /// identity provider's user endpoint.
    pub(crate) async fn get_json_bearer(&self, url: &Url, token: &str) -> Result<Fetched, UpstreamError> {
        self.check_url(url)?;
        let request = self.client.get(url.clone()).header(ACCEPT, "application/json").bearer_auth(token);
        self.send(url, request).await
    }

    /// Sends `DELETE` with a JSON body and HTTP Basic credentials, and
    /// returns the status (an identity provider's token-revocation call).
    pub(crate) async fn delete_json(
        &self,
        url: &Url,
        body: &Value,
        basic: (&str, &str),
    ) -> Result<u16, UpstreamError> {
        self.check_url(url)?;
        let shown = redact(url);
        let request = self.client.delete(url.clone()).basic_auth(basic.0, Some(basic.1)).json(body);
        match tokio::time::timeout(FETCH_TIMEOUT + Duration::from_millis(500), request.send()).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(classify(&shown, &e)),
            Err(_) => Err(UpstreamError::Timeout { url: shown, secs: FETCH_TIMEOUT.as_secs() }),
        }
    }

    /// POSTs a form, with HTTP Basic credentials when given (already
    /// form-encoded as RFC 6749 §2.3.1 requires).
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Fetched, UpstreamError> {
        self.check_url(url)?;
        let mut request = self.client.post(url.clone()).header(ACCEPT, "application/json").form(form);
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            // RFC 6749 §2.3.1: form-encode each part, then Basic.
            let pair = format!("{}:{}", form_encode(id), form_encode(secret));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
            request = request.header(AUTHORIZATION, value);
        }
        self.send(url, request).await
    }

    async fn send(&self, url: &Url, request: reqwest::RequestBuilder) -> Result<Fetched, UpstreamError> {
        let shown = redact(url);
        // reqwest's timeout covers the body too; this outer one is the guarantee.
        let attempt = async {
            let mut response = request.send().await.map_err(|e| classify(&shown, &e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(UpstreamError::Status { url: shown.clone(), status: status.as_u16() });
            }
            if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
                return Err(UpstreamError::TooLarge { url: shown.clone(), limit: MAX_BODY_BYTES });
            }
            let max_age = max_age(response.headers());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&shown, &e))? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(UpstreamError::TooLarge { url: shown.clone(), limit: MAX_BODY_BYTES });
                }
                body.extend_from_slice(&chunk);
            }
            let json = serde_json::from_slice(&body).map_err(|e| UpstreamError::InvalidDocument {
                url: shown.clone(),
                reason: format!("not JSON ({e})"),
            })?;
            Ok(Fetched { json, max_age })
        };
        match tokio::time::timeout(FETCH_TIMEOUT + Duration::from_millis(500), attempt).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout { url: shown, secs: FETCH_TIMEOUT.as_secs() }),
        }
    }
}

pub(crate) fn check_url(url: &Url, allow_insecure_http: bool) -> Result<(), &'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with credentials are not used");
    }
    if url.fragment().is_some() {
        return Err("URLs with a fragment are not used");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http || is_loopback(url) => Ok(()),
        "http" => Err("plain http is only used for loopback hosts (set `allow_insecure_http` to override)"),
        _ => Err("only https (or http on loopback) is used"),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The URL without query (an endpoint URL could in theory carry something private).
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn classify(url: &str, error: &reqwest::Error) -> UpstreamError {
    if error.is_timeout() {
        return UpstreamError::Timeout { url: url.to_owned(), secs: FETCH_TIMEOUT.as_secs() };
    }
    // The error's source chain says "connection refused", "dns error", …
    UpstreamError::Unreachable { url: url.to_owned(), reason: with_causes(error) }
}

/// `Cache-Control` lifetime: `max-age`, or zero when the answer must not be reused.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cache_control_max_age_and_no_store() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=600, must-revalidate"));
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("No-Store"));
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
    }

    #[test]
    fn only_https_or_loopback_http() {
        let ok = |u: &str| check_url(&Url::parse(u).unwrap(), false).is_ok();
        assert!(ok("https://idp.example.com/jwks"));
        assert!(ok("http://127.0.0.1:9000/jwks"));
        assert!(ok("http://[::1]:9000/jwks"));
        assert!(ok("http://localhost:9000/jwks"));
        assert!(!ok("http://idp.example.com/jwks"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("https://user:pw@idp.example.com/jwks"));
        assert!(check_url(&Url::parse("http://idp.internal/jwks").unwrap(), true).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("client-1.x_y*"), "client-1.x_y*");
    }
}
