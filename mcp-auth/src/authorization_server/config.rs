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
/// assert!(config.cimd_enabled && !config.remember_consent);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizationServerConfig {
    /// The issuer identifier, exactly as published and put in tokens' `iss`
    /// (RFC 8414 §2: https, no query or fragment; http only on loopback).
    /// Never derived from the `Host` header.
    pub issuer: String,
    /// Where state lives: `sqlite://PATH` (default `sqlite://mcp-auth.db`),
    /// `memory` (lost on restart), or, with mcp-auth's `postgres` feature, a
    /// `postgres://USER:PASSWORD@HOST/DB` (or `postgresql://`) URL: one
    /// database shared by several instances (no TLS; its schema is created
    /// at first use; the environment variable
    /// `MCP_AUTH__AUTHORIZATION_SERVER__STORE` keeps a password out of the
    /// file).
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
    /// client whose response was lost (default 60 s). The retry's new
    /// refresh token supersedes the one the first use issued (whose access
    /// token is revoked), so one chain stays live; presenting the superseded
    /// token, retrying after its successor was used, or any later use is
    /// treated as theft and revokes the whole grant. 0: no window, every
    /// second use is theft.
    pub refresh_grace_secs: u64,
    /// Whether dynamic client registration (RFC 7591) is open.
    pub registration_enabled: bool,
    /// Lifetime of dynamically registered clients, in seconds (default 90
    /// days; 0 = never expire).
    pub client_ttl_secs: u64,
    /// Lifetime of issued client secrets, in seconds (0 = never expire,
    /// the default).
    pub client_secret_ttl_secs: u64,
    /// Who the user is: `"dev"` (the built-in development login, loopback
    /// issuers only), `"github"` (`[auth.github]`) or `"oidc"` (`[auth.oidc]`).
    pub login: String,
    /// The key sealing upstream access tokens at rest (AES-256-GCM): 32
    /// random bytes in base64 (`openssl rand -base64 32`). Required for an
    /// upstream login on a non-loopback issuer unless `sealing_key_file` is set.
    pub sealing_key: Option<SecretString>,
    /// A file holding the sealing key (base64), generated (mode 0600) when
    /// absent. With neither setting, a loopback issuer uses a key that lives
    /// as long as the process.
    pub sealing_key_file: Option<String>,
    /// Per-client-IP limits on the OAuth endpoints.
    pub rate_limits: RateLimitConfig,
    /// Client ID metadata documents (MCP 2025-11-25, draft-ietf-oauth-client-id-metadata-document):
    /// an https `client_id` with a path is fetched and used as the client's
    /// registration. Default on; advertised as
    /// `client_id_metadata_document_supported` only when on.
    pub cimd_enabled: bool,
    /// Longest time a fetched metadata document is cached, in seconds
    /// (default 1 day; `Cache-Control: max-age` is honoured below it, and
    /// 5 minutes is used when the document gives none).
    pub cimd_cache_max_secs: u64,
    /// Most metadata documents cached at once (default 1000).
    pub cimd_cache_capacity: usize,
    /// Time limit of a whole metadata document fetch (connection, at most
    /// one redirect, and the body), in seconds (default 10; at least 1).
    pub cimd_fetch_timeout_secs: u64,
    /// Ports a metadata document may be fetched from, on the first request
    /// and after a redirect (default `[443]`). A URL on any other port is
    /// refused before a connection is made, with or without the test
    /// switch below.
    pub cimd_allowed_ports: Vec<u16>,
    /// How long a failed fetch is remembered, in seconds (default 30), so
    /// that a flood of requests naming a dead or slow document URL costs one
    /// fetch, not one each. `0` remembers nothing.
    pub cimd_failure_cache_secs: u64,
    /// **TESTS ONLY.** Lets metadata documents be fetched over plain http
    /// and from loopback and private addresses, which the SSRF guard
    /// otherwise refuses. Never turn on in production.
    pub cimd_allow_insecure_for_tests: bool,
    /// Clients registered from configuration (`[[auth.authorization_server.clients]]`),
    /// checked at startup with the rules of dynamic registration.
    pub clients: Vec<PreRegisteredClient>,
    /// Whether the consent page offers to remember an approval (default
    /// off). A remembered approval is kept per (user, client, redirect URI,
    /// browser) and covers only the scopes approved; asking for more asks again.
    pub remember_consent: bool,
    /// How long a remembered approval lasts, in seconds (default 30 days).
    pub remember_consent_secs: u64,
    /// How long a login lasts in the browser that made it, in seconds, so a
    /// second authorization does not ask for the password again (default 15
    /// minutes; 0 = ask every time). The consent is still asked.
    pub login_session_secs: u64,
    /// The algorithm access tokens are signed with: `ES256` (P-256, the
    /// default) or `RS256` (RSA 2048, for resource servers without EC).
    pub signing_algorithm: String,
    /// A PKCS#8 PEM file holding the signing key (optional). When it exists
    /// it is loaded (its type must match `signing_algorithm`); when it does
    /// not, a key is generated and written there (mode 0600). Unset: the key
    /// is kept in the store.
    pub signing_key_file: Option<String>,
}

/// A secret setting: its `Debug` form is `<redacted>`.
///
/// ```
/// use mcp_auth::authorization_server::SecretString;
///
/// let secret = SecretString::from("hunter2");
/// assert_eq!(secret.expose(), "hunter2");
/// assert_eq!(format!("{secret:?}"), "<redacted>");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A client registered from configuration.
///
/// ```toml
/// [[auth.authorization_server.clients]]
/// client_id = "reporting"
/// client_secret_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// redirect_uris = ["https://reports.example.com/oauth/callback"]
/// token_endpoint_auth_method = "client_secret_basic"
/// scopes = ["notes:read"]
/// application_type = "web"
/// introspect = true       # may call /introspect (RFC 7662), e.g. a resource server
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PreRegisteredClient {
    /// The client identifier (1 to 200 visible ASCII characters).
    pub client_id: String,
    /// The secret, in clear (at least 32 characters). Prefer `client_secret_hash`.
    pub client_secret: Option<String>,
    /// The secret's SHA-256, as 64 lower-case hex digits
    /// (`printf %s "$SECRET" | sha256sum`).
    pub client_secret_hash: Option<String>,
    /// The redirect URIs, with the rules of dynamic registration.
    pub redirect_uris: Vec<String>,
    /// `none`, `client_secret_basic` (the default when a secret is given) or
    /// `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// Scopes it may ask for (default: all of `scopes_supported`).
    pub scopes: Option<Vec<String>>,
    /// `native` or `web` (default: inferred from the redirect URIs).
    pub application_type: Option<String>,
    /// Name shown on the consent page.
    pub client_name: Option<String>,
    /// Grant types (default `authorization_code` and `refresh_token`).
    pub grant_types: Option<Vec<String>>,
    /// Whether it may call `/introspect` (RFC 7662; default off). Only
    /// configured confidential clients can: introspection answers who holds
    /// which token, so self-registered clients (dynamic registration,
    /// metadata documents) are refused with `403`.
    pub introspect: bool,
}

impl std::fmt::Debug for PreRegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreRegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("client_secret_hash", &self.client_secret_hash.as_ref().map(|_| "<redacted>"))
            .field("redirect_uris", &self.redirect_uris)
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .field("scopes", &self.scopes)
            .field("application_type", &self.application_type)
            .field("client_name", &self.client_name)
            .field("grant_types", &self.grant_types)
            .field("introspect", &self.introspect)
            .finish()
    }
}

impl PreRegisteredClient {
    /// A client with this id and redirect URIs; public (`none`) until a
    /// secret is set.
    pub fn new<S: Into<String>>(
        client_id: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// A confidential client with this secret (`client_secret_basic`).
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The token endpoint authentication method.
    #[must_use]
    pub fn with_auth_method(mut self, method: impl Into<String>) -> Self {
        self.token_endpoint_auth_method = Some(method.into());
        self
    }

    /// The scopes it may ask for.
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Lets it call `/introspect` (it must be confidential).
    #[must_use]
    pub fn with_introspection(mut self) -> Self {
        self.introspect = true;
        self
    }

    /// The name shown on the consent page.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }
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
            cimd_enabled: true,
            cimd_cache_max_secs: 24 * 3600,
            cimd_cache_capacity: 1000,
            cimd_fetch_timeout_secs: 10,
            cimd_allowed_ports: vec![443],
            cimd_failure_cache_secs: 30,
            cimd_allow_insecure_for_tests: false,
            clients: Vec::new(),
            remember_consent: false,
            remember_consent_secs: 30 * 24 * 3600,
            login_session_secs: 15 * 60,
            signing_algorithm: "ES256".into(),
            signing_key_file: None,
            sealing_key: None,
            sealing_key_file: None,
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

    /// The store: `sqlite://PATH`, `memory` or (feature `postgres`) a
    /// `postgres://` URL.
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

    /// Adds a client registered from configuration.
    #[must_use]
    pub fn with_client(mut self, client: PreRegisteredClient) -> Self {
        self.clients.push(client);
        self
    }

    /// Turns client ID metadata documents on or off.
    #[must_use]
    pub fn with_cimd_enabled(mut self, enabled: bool) -> Self {
        self.cimd_enabled = enabled;
        self
    }

    /// The most metadata documents cached at once.
    #[must_use]
    pub fn with_cimd_cache_capacity(mut self, capacity: usize) -> Self {
        self.cimd_cache_capacity = capacity;
        self
    }

    /// The time limit of a metadata document fetch, in seconds.
    #[must_use]
    pub fn with_cimd_fetch_timeout_secs(mut self, secs: u64) -> Self {
        self.cimd_fetch_timeout_secs = secs;
        self
    }

    /// The ports metadata documents may be fetched from.
    ///
    /// ```
    /// use mcp_auth::AuthorizationServerConfig;
    ///
    /// let config = AuthorizationServerConfig::new("https://mcp.example.com").with_cimd_allowed_ports([443, 8443]);
    /// assert_eq!(config.cimd_allowed_ports, [443, 8443]);
    /// ```
    #[must_use]
    pub fn with_cimd_allowed_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.cimd_allowed_ports = ports.into_iter().collect();
        self
    }

    /// How long a failed metadata document fetch is remembered, in seconds.
    #[must_use]
    pub fn with_cimd_failure_cache_secs(mut self, secs: u64) -> Self {
        self.cimd_failure_cache_secs = secs;
        self
    }

    /// **TESTS ONLY**: lets metadata documents come over http from loopback
    /// and private addresses.
    #[must_use]
    pub fn with_cimd_allow_insecure_for_tests(mut self, allow: bool) -> Self {
        self.cimd_allow_insecure_for_tests = allow;
        self
    }

    /// Turns remembered approvals on or off.
    #[must_use]
    pub fn with_remember_consent(mut self, remember: bool) -> Self {
        self.remember_consent = remember;
        self
    }

    /// The login session's lifetime, in seconds (0: none).
    #[must_use]
    pub fn with_login_session_secs(mut self, secs: u64) -> Self {
        self.login_session_secs = secs;
        self
    }

    /// The signing algorithm: `ES256` or `RS256`.
    #[must_use]
    pub fn with_signing_algorithm(mut self, algorithm: impl Into<String>) -> Self {
        self.signing_algorithm = algorithm.into();
        self
    }

    /// The PKCS#8 PEM file holding the signing key (generated when absent).
    #[must_use]
    pub fn with_signing_key_file(mut self, path: impl Into<String>) -> Self {
        self.signing_key_file = Some(path.into());
        self
    }

    /// The key sealing upstream tokens (32 random bytes in base64).
    #[must_use]
    pub fn with_sealing_key(mut self, key: impl Into<SecretString>) -> Self {
        self.sealing_key = Some(key.into());
        self
    }

    /// The login: `dev`, `github` or `oidc`.
    #[must_use]
    pub fn with_login(mut self, login: impl Into<String>) -> Self {
        self.login = login.into();
        self
    }

    /// The access-token lifetime, in seconds.
    #[must_use]
    pub fn with_access_token_ttl_secs(mut self, secs: u64) -> Self {
        self.access_token_ttl_secs = secs;
        self
    }
}
