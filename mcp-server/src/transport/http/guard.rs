//! DNS-rebinding protection: the `Host` and `Origin` of every request are
//! checked against allowlists (MCP transports: servers MUST validate `Origin`;
//! an invalid one gets 403).
//!
//! ```
//! use mcp_server::transport::http::HostOriginPolicy;
//! use http::HeaderMap;
//!
//! let policy = HostOriginPolicy::loopback();
//! let mut headers = HeaderMap::new();
//! headers.insert("host", "localhost:8080".parse().unwrap());
//! assert!(policy.check(&headers).is_ok());
//! headers.insert("origin", "http://evil.example.com".parse().unwrap());
//! assert!(policy.check(&headers).is_err());
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use futures_util::future::{Either, Ready, ready};
use http::{HeaderMap, Request, Response, StatusCode, header};
use serde_json::json;

use crate::config::Config;

/// Which `Host` and `Origin` values are accepted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOriginPolicy {
    /// Lower-case hosts, with or without a port; `*` accepts any.
    hosts: Vec<String>,
    /// Lower-case origins (`scheme://host[:port]`); `*` accepts any.
    origins: Vec<String>,
    /// Also accept loopback hosts and origins on any port.
    loopback: bool,
}

/// Why a request was refused, for the 403 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The refused header.
    pub header: &'static str,
    /// Its value.
    pub value: String,
    /// The setting that would allow it.
    pub setting: &'static str,
}

/// Splits `host[:port]` (or `[v6]:port`) into the lower-case host and the port text.
fn split_authority(authority: &str) -> (String, Option<&str>) {
    let authority = authority.trim();
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => (&authority[..=end], authority[end + 1..].strip_prefix(':')),
            None => (authority, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
            _ => (authority, None),
        }
    };
    (host.to_ascii_lowercase(), port)
}

/// `localhost`, or a literal loopback IP address. A name that merely starts
/// with `127.` (`127.evil.example`) is not loopback: an attacker could rebind it.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host == "localhost" || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl HostOriginPolicy {
    /// Accepts only loopback hosts and origins (any port).
    pub fn loopback() -> Self {
        Self { loopback: true, ..Self::default() }
    }

    /// Accepts these hosts and origins (`*` for any).
    pub fn new<S: AsRef<str>>(hosts: &[S], origins: &[S]) -> Self {
        let lower = |v: &[S]| v.iter().map(|s| s.as_ref().trim().to_ascii_lowercase()).collect();
        Self { hosts: lower(hosts), origins: lower(origins), loopback: false }
    }

    /// The policy a configuration asks for: the explicit lists, else loopback
    /// when bound to loopback, plus the host and origin of `server.public_url`.
    pub fn from_config(config: &Config, bound: Option<SocketAddr>) -> Self {
        let mut policy = Self::new(&config.http.allowed_hosts, &config.http.allowed_origins);
        let bound_to_loopback = bound.is_some_and(|a| a.ip().is_loopback());
        policy.loopback = bound_to_loopback
            && config.http.allowed_hosts.is_empty()
            && config.http.allowed_origins.is_empty();
        if let Some(url) = &config.server.public_url
            && let Some((scheme, rest)) = url.split_once("://")
        {
            let authority = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
            if config.http.allowed_hosts.is_empty() {
                policy.hosts.push(split_authority(&authority).0);
            }
            if config.http.allowed_origins.is_empty() {
                policy.origins.push(format!("{}://{authority}", scheme.to_ascii_lowercase()));
            }
        }
        policy
    }

    fn host_allowed(&self, value: &str) -> bool {
        let (host, port) = split_authority(value);
        if self.loopback && is_loopback_host(&host) {
            return true;
        }
        self.hosts.iter().any(|allowed| {
            allowed == "*" || *allowed == host || port.is_some_and(|p| *allowed == format!("{host}:{p}"))
        })
    }

    fn origin_allowed(&self, value: &str) -> bool {
        let value = value.trim().to_ascii_lowercase();
        if self.origins.iter().any(|o| o == "*" || *o == value) {
            return true;
        }
        self.loopback
            && value.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && is_loopback_host(&split_authority(rest).0)
            })
    }

    /// Checks a request's headers. A missing `Origin` is accepted (non-browser
    /// clients send none); a missing `Host` is refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !self.host_allowed(host) {
            return Err(Refusal { header: "Host", value: host.to_owned(), setting: "http.allowed_hosts" });
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not visible ASCII)");
            if !self.origin_allowed(origin) {
                return Err(Refusal {
                    header: "Origin",
                    value: origin.to_owned(),
                    setting: "http.allowed_origins",
                });
            }
        }
        Ok(())
    }
}

impl Refusal {
    /// The 403 response: a JSON-RPC error without an id naming the header and
    /// the setting (with its environment variable) that allows it.
    pub fn into_response(self) -> Response<Body> {
        let env = format!("MCP_{}", self.setting.to_ascii_uppercase().replace('.', "__"));
        let message = format!(
            "Forbidden: {} header {:?} is not allowed; add it to `{}` in the config (or {env})",
            self.header, self.value, self.setting
        );
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}});
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = StatusCode::FORBIDDEN;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        response
    }
}

/// A tower layer applying a [`HostOriginPolicy`] before the inner service.
#[derive(Debug, Clone)]
pub struct HostOriginGuardLayer {
    policy: Arc<HostOriginPolicy>,
}

impl HostOriginGuardLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: HostOriginPolicy) -> Self {
        Self { policy: Arc::new(policy) }
    }
}

impl<S> tower::Layer<S> for HostOriginGuardLayer {
    type Service = HostOriginGuard<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HostOriginGuard { inner, policy: self.policy.clone() }
    }
}

/// The service made by [`HostOriginGuardLayer`].
#[derive(Debug, Clone)]
pub struct HostOriginGuard<S> {
    inner: S,
    policy: Arc<HostOriginPolicy>,
}

impl<S> tower::Service<Request<Body>> for HostOriginGuard<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match self.policy.check(request.headers()) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(refusal) => {
                tracing::warn!(header = refusal.header, value = %refusal.value, "request refused by the Host/Origin guard");
                Either::Right(ready(Ok(refusal.into_response())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_policy_accepts_loopback_on_any_port_only() {
        let p = HostOriginPolicy::loopback();
        for host in ["localhost:1", "127.0.0.1:8080", "[::1]:9", "LOCALHOST"] {
            assert!(p.check(&headers(host, None)).is_ok(), "{host}");
        }
        assert!(p.check(&headers("localhost:1", Some("http://127.0.0.1:3000"))).is_ok());
        let refused = p.check(&headers("evil.example.com", None)).unwrap_err();
        assert_eq!((refused.header, refused.setting), ("Host", "http.allowed_hosts"));
        let refused = p.check(&headers("localhost", Some("http://evil.example.com"))).unwrap_err();
        assert_eq!((refused.header, refused.setting), ("Origin", "http.allowed_origins"));
        assert!(p.check(&headers("localhost.evil.com", None)).is_err());
        assert!(p.check(&headers("127.evil.example:8080", None)).is_err(), "a 127. prefix is not loopback");
        assert!(p.check(&headers("localhost", Some("http://127.evil.example:8080"))).is_err());
        assert!(p.check(&headers("127.0.0.2:1", None)).is_ok());
    }

    #[test]
    fn public_url_is_allowed_by_default_when_not_on_loopback() {
        let config = Config::from_sources(
            None,
            [("MCP_SERVER__PUBLIC_URL".to_string(), "https://mcp.example.com".to_string())],
        )
        .unwrap();
        let p = HostOriginPolicy::from_config(&config, "0.0.0.0:80".parse().ok());
        assert!(p.check(&headers("mcp.example.com", Some("https://mcp.example.com"))).is_ok());
        assert!(p.check(&headers("localhost:80", None)).is_err(), "no loopback default off loopback");
        assert!(p.check(&headers("mcp.example.com", Some("https://other.example.com"))).is_err());
    }

    #[test]
    fn explicit_lists_and_ports() {
        let p = HostOriginPolicy::new(&["api.example.com:8443", "any.example.com"], &["*"]);
        assert!(p.check(&headers("api.example.com:8443", Some("https://x"))).is_ok());
        assert!(p.check(&headers("api.example.com:9999", None)).is_err());
        assert!(p.check(&headers("any.example.com:1234", None)).is_ok());
    }

    #[test]
    fn refusal_names_header_and_setting() {
        let refusal = Refusal { header: "Origin", value: "http://x".into(), setting: "http.allowed_origins" };
        let response = refusal.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
