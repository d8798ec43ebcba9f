//! Metadata documents: the protected-resource metadata this server publishes
//! (RFC 9728) and the authorization-server metadata it discovers (RFC 8414,
//! OpenID Connect Discovery 1.0).
//!
//! ```
//! use mcp_auth::metadata::{discovery_urls, ProtectedResourceMetadata};
//!
//! let prm = ProtectedResourceMetadata::new("https://mcp.example.com/mcp", "https://idp.example.com")
//!     .with_scopes_supported(["notes:read", "offline_access"]);
//! assert_eq!(prm.scopes_supported, ["notes:read"]); // never offline_access
//! assert_eq!(
//!     prm.metadata_url().unwrap(),
//!     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//!
//! assert_eq!(
//!     discovery_urls("https://idp.example.com/realms/a").unwrap(),
//!     [
//!         "https://idp.example.com/.well-known/oauth-authorization-server/realms/a",
//!         "https://idp.example.com/.well-known/openid-configuration/realms/a",
//!         "https://idp.example.com/realms/a/.well-known/openid-configuration",
//!     ]
//! );
//! ```

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ConfigError;

/// The well-known suffix of protected-resource metadata (RFC 9728 §3).
pub const PROTECTED_RESOURCE_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
const OAUTH_AS_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
const OPENID_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The scope that never goes into published metadata or challenges (MCP SEP-2207).
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// OAuth 2.0 Protected Resource Metadata (RFC 9728 §2), as served at
/// `/.well-known/oauth-protected-resource…`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the canonical MCP URL, character for
    /// character (clients compare it with the URL they use, RFC 9728 §3.3).
    pub resource: String,
    /// Issuers of the authorization servers that issue tokens for it.
    pub authorization_servers: Vec<String>,
    /// Scopes a client may request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How tokens may be presented: only `header` (RFC 6750 §2.1).
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// A page with documentation for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    /// Metadata for `resource`, protected by tokens from `authorization_server`.
    pub fn new(resource: impl Into<String>, authorization_server: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: vec![authorization_server.into()],
            scopes_supported: Vec::new(),
            bearer_methods_supported: vec!["header".into()],
            resource_name: None,
            resource_documentation: None,
        }
    }

    /// Sets the published scopes, without `offline_access` (MCP SEP-2207:
    /// refresh is the authorization server's decision) and without duplicates.
    #[must_use]
    pub fn with_scopes_supported<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes_supported = published_scopes(scopes.into_iter().map(Into::into));
        self
    }

    /// Sets `resource_name`.
    #[must_use]
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets `resource_documentation`.
    #[must_use]
    pub fn with_resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// The same document for another endpoint of the same server: `resource`
    /// becomes `path` on this resource's origin.
    ///
    /// ```
    /// use mcp_auth::metadata::ProtectedResourceMetadata;
    ///
    /// let mcp = ProtectedResourceMetadata::new("https://mcp.example.com/mcp", "https://idp.example.com");
    /// assert_eq!(mcp.for_endpoint("/sse").unwrap().resource, "https://mcp.example.com/sse");
    /// ```
    pub fn for_endpoint(&self, path: &str) -> Result<Self, ConfigError> {
        let mut url = parse_resource(&self.resource)?;
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(ConfigError::Invalid {
                key: "server.path",
                message: format!("`{path}` must be an absolute path without query or fragment"),
            });
        }
        url.set_path(path);
        Ok(Self { resource: url.to_string(), ..self.clone() })
    }

    /// The URL this document is served at, path-inserted (RFC 9728 §3.1):
    /// the value of `resource_metadata` in challenges.
    pub fn metadata_url(&self) -> Result<String, ConfigError> {
        let url = parse_resource(&self.resource)?;
        Ok(format!(
            "{}{}{}",
            url.origin().ascii_serialization(),
            PROTECTED_RESOURCE_WELL_KNOWN,
            resource_path(&url)
        ))
    }

    /// The request paths this document is served at: the path-inserted form
    /// and the root form (the same when the resource has no path).
    pub fn well_known_paths(&self) -> Result<Vec<String>, ConfigError> {
        let url = parse_resource(&self.resource)?;
        let path = resource_path(&url);
        let mut paths = vec![format!("{PROTECTED_RESOURCE_WELL_KNOWN}{path}")];
        if !path.is_empty() {
            paths.push(PROTECTED_RESOURCE_WELL_KNOWN.to_owned());
        }
        Ok(paths)
    }
}

/// Scopes as published: no `offline_access`, no duplicates, order kept.
pub(crate) fn published_scopes(scopes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        if scope != OFFLINE_ACCESS && !scope.is_empty() && !out.contains(&scope) {
            out.push(scope);
        }
    }
    out
}

/// Checks a canonical resource URL: absolute `http(s)`, no fragment, no query.
pub(crate) fn parse_resource(resource: &str) -> Result<Url, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key: "server.public_url", message };
    let url =
        Url::parse(resource).map_err(|e| invalid(format!("`{resource}` is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(format!("`{resource}` must be an http or https URL")));
    }
    // RFC 8707 §2: the resource indicator has no fragment; MCP canonical URIs have no query.
    if url.fragment().is_some() || url.query().is_some() {
        return Err(invalid(format!("`{resource}` must not have a query or fragment")));
    }
    Ok(url)
}

/// The resource's path for path insertion: empty for the root.
fn resource_path(url: &Url) -> &str {
    match url.path() {
        "/" => "",
        path => path,
    }
}

/// OAuth 2.0 Authorization Server Metadata (RFC 8414 §2) or an OpenID
/// Provider configuration: the fields a resource server uses, and the rest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier; must equal the one the document was looked up
    /// for (RFC 8414 §3.3).
    pub issuer: String,
    /// Where the signing keys are published (RFC 7517).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Every other field, as published.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Where an issuer's metadata is looked for, in order: RFC 8414 path
/// insertion, then OpenID Connect discovery path-inserted and appended
/// (MCP 2025-11-25 authorization, "Authorization Server Metadata Discovery").
pub fn discovery_urls(issuer: &str) -> Result<Vec<String>, ConfigError> {
    let url = parse_issuer(issuer)?;
    let origin = url.origin().ascii_serialization();
    // RFC 8414 §3.1: a terminating slash is removed before inserting.
    let path = url.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![format!("{origin}{OAUTH_AS_WELL_KNOWN}"), format!("{origin}{OPENID_WELL_KNOWN}")]
    } else {
        vec![
            format!("{origin}{OAUTH_AS_WELL_KNOWN}{path}"),
            format!("{origin}{OPENID_WELL_KNOWN}{path}"),
            format!("{origin}{path}{OPENID_WELL_KNOWN}"),
        ]
    })
}

/// Checks an issuer identifier: absolute `http(s)`, no query or fragment (RFC 8414 §2).
pub(crate) fn parse_issuer(issuer: &str) -> Result<Url, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key: "auth.resource_server.issuer", message };
    if issuer.is_empty() {
        return Err(ConfigError::Missing {
            key: "auth.resource_server.issuer",
            hint: "the authorization server's issuer URL, such as https://idp.example.com",
        });
    }
    let url = Url::parse(issuer).map_err(|e| invalid(format!("`{issuer}` is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(format!("`{issuer}` must be an http or https URL")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!("`{issuer}` must not have a query or fragment (RFC 8414 §2)")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_without_path_tries_two_documents() {
        assert_eq!(
            discovery_urls("https://idp.example.com").unwrap(),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ]
        );
        // A terminating slash is not a path (Auth0-style issuers).
        assert_eq!(discovery_urls("https://tenant.example.com/").unwrap().len(), 2);
    }

    #[test]
    fn issuer_with_port_keeps_it() {
        assert_eq!(
            discovery_urls("http://127.0.0.1:9000/oidc").unwrap()[2],
            "http://127.0.0.1:9000/oidc/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_with_query_is_refused() {
        assert!(discovery_urls("https://idp.example.com/?tenant=a").is_err());
        assert!(matches!(discovery_urls(""), Err(ConfigError::Missing { .. })));
    }

    #[test]
    fn root_resource_has_one_well_known_path() {
        let prm = ProtectedResourceMetadata::new("https://mcp.example.com", "https://idp");
        assert_eq!(prm.well_known_paths().unwrap(), [PROTECTED_RESOURCE_WELL_KNOWN]);
        assert_eq!(
            prm.metadata_url().unwrap(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn path_resource_has_both_forms() {
        let prm = ProtectedResourceMetadata::new("http://127.0.0.1:8080/mcp", "https://idp");
        assert_eq!(
            prm.well_known_paths().unwrap(),
            ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn document_shape_follows_rfc_9728() {
        let prm = ProtectedResourceMetadata::new("https://mcp.example.com/mcp", "https://idp.example.com")
            .with_scopes_supported(["a", "offline_access", "a", "b"]);
        assert_eq!(
            serde_json::to_value(&prm).unwrap(),
            serde_json::json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://idp.example.com"],
                "scopes_supported": ["a", "b"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    #[test]
    fn resource_with_fragment_is_refused() {
        let prm = ProtectedResourceMetadata::new("https://mcp.example.com/mcp#x", "https://idp");
        assert!(prm.metadata_url().is_err());
    }
}
