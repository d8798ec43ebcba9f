//! `[auth.authorization_server]`: the authorization server's settings.

use serde::{Deserialize, Serialize};

use super::rate_limit::RateLimitConfig;

/// Settings of the built-in authorization server. Every key has a default
/// except `issuer`, which the embedding server usually fills from its
/// public URL.
///
/// ```
/// use mcp_auth::AuthorizationServerConfig;
///
/// let config: AuthorizationServerConfig = toml::from_str(r#"
///     issuer = "http://localhost:8080"
///     scopes_supported = ["notes:read", "notes:write"]
///     login = "dev"
/// "#).unwrap();
/// assert_eq!(config.access_token_ttl_secs, 3600);
/// assert_eq!(config.store, "sqlite://mcp-auth.db");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizationServerConfig {
    /// The issuer identifier, exactly as published and put in tokens' `iss`
    /// (RFC 8414 §2: https, no query or fragment; http only on loopback).
    /// Never derived from the `Host` header.
    pub issuer: String,
    /// Where state lives: `sqlite://PATH` (default `sqlite://mcp-auth.db`) or
    /// `memory` (lost on restart).
    pub store: String,
    /// Scopes clients may ask for; published in the metadata. A request
    /// without `scope` gets all of them.
    pub scopes_supported: Vec<String>,
    /// Lifetime of access tokens, in seconds (default 1 hour).
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens and grants, in seconds (default 30 days).
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of authorization codes, in seconds (default and maximum: 600).
    pub authorization_code_ttl_secs: u64,
    /// How long a rotated refresh token is still accepted once more, for a
    /// client whose response was lost (default 60 s). Any later use is
    /// treated as theft and revokes the whole grant.
    pub refresh_grace_secs: u64,
    /// Whether dynamic client registration (RFC 7591) is open.
    pub registration_enabled: bool,
    /// Lifetime of dynamically registered clients, in seconds (default 90
    /// days; 0 = never expire).
    pub client_ttl_secs: u64,
    /// Lifetime of issued client secrets, in seconds (0 = never expire,
    /// the default).
    pub client_secret_ttl_secs: u64,
    /// Who the user is: `"dev"` is the built-in development login (loopback
    /// issuers only).
    pub login: String,
    /// Per-client-IP limits on the OAuth endpoints.
    pub rate_limits: RateLimitConfig,
}

impl Default for AuthorizationServerConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            store: "sqlite://mcp-auth.db".into(),
            scopes_supported: Vec::new(),
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            authorization_code_ttl_secs: 600,
            refresh_grace_secs: 60,
            registration_enabled: true,
            client_ttl_secs: 90 * 24 * 3600,
            client_secret_ttl_secs: 0,
            login: "dev".into(),
            rate_limits: RateLimitConfig::default(),
        }
    }
}

impl AuthorizationServerConfig {
    /// Defaults, with `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), ..Self::default() }
    }

    /// The scopes clients may ask for.
    #[must_use]
    pub fn with_scopes_supported<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The store: `sqlite://PATH` or `memory`.
    #[must_use]
    pub fn with_store(mut self, store: impl Into<String>) -> Self {
        self.store = store.into();
        self
    }

    /// The grace window of rotated refresh tokens, in seconds.
    #[must_use]
    pub fn with_refresh_grace_secs(mut self, secs: u64) -> Self {
        self.refresh_grace_secs = secs;
        self
    }

    /// The rate limits.
    #[must_use]
    pub fn with_rate_limits(mut self, limits: RateLimitConfig) -> Self {
        self.rate_limits = limits;
        self
    }

    /// The access-token lifetime, in seconds.
    #[must_use]
    pub fn with_access_token_ttl_secs(mut self, secs: u64) -> Self {
        self.access_token_ttl_secs = secs;
        self
    }
}
