//! Configuration of the resource-server mode: the `[auth.resource_server]`
//! section of the server's TOML file, or built in code.
//!
//! ```
//! use mcp_auth::{ClientAuthMethod, IntrospectionConfig, ResourceServerConfig};
//!
//! // In code:
//! let config = ResourceServerConfig::new("https://idp.example.com")
//!     .with_scopes_supported(["notes:read", "notes:write"])
//!     .with_introspection(IntrospectionConfig::new("mcp-server", "s3cret"));
//!
//! // From TOML (every key but `issuer` is optional):
//! let from_file: ResourceServerConfig = toml::from_str(r#"
//!     issuer = "https://idp.example.com"
//!     scopes_supported = ["notes:read", "notes:write"]
//!     [introspection]
//!     client_id = "mcp-server"
//!     client_secret = "s3cret"
//!     auth_method = "client_secret_basic"
//! "#).unwrap();
//! assert_eq!(from_file, config);
//! assert_eq!(from_file.leeway_secs, 60);
//! assert_eq!(from_file.introspection.unwrap().auth_method, ClientAuthMethod::ClientSecretBasic);
//! ```

use std::fmt;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// `[auth.resource_server]`: where tokens come from and how they are checked.
///
/// Only `issuer` is required. The audience defaults to the canonical MCP URL
/// given to [`ResourceServer::new`](crate::ResourceServer::new).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ResourceServerConfig {
    /// The authorization server's issuer identifier, exactly as it appears in
    /// its metadata and in the tokens' `iss` claim (trailing slash included,
    /// if it has one). Its metadata is discovered from it (RFC 8414, then
    /// OpenID Connect discovery).
    pub issuer: String,
    /// The audience tokens must name in `aud` (RFC 8707). Default: the
    /// canonical MCP URL. Compared exactly, character for character.
    pub audience: Option<String>,
    /// Scopes published in the protected-resource metadata and offered in
    /// `401` challenges. `offline_access` is never published (MCP SEP-2207).
    #[serde(deserialize_with = "string_or_list")]
    pub scopes_supported: Vec<String>,
    /// Scopes every request needs; a valid token without them gets `403
    /// insufficient_scope`. Usually empty: per-tool scopes are the service's
    /// business.
    #[serde(deserialize_with = "string_or_list")]
    pub required_scopes: Vec<String>,
    /// Credentials for RFC 7662 token introspection. Without them only JWT
    /// access tokens are accepted.
    pub introspection: Option<IntrospectionConfig>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Longest time the signing keys (JWKS) are cached, in seconds, whatever
    /// the issuer's `Cache-Control` says.
    pub jwks_cache_max_secs: u64,
    /// Shortest time between two JWKS fetches triggered by an unknown `kid`
    /// (key rotation), in seconds, so junk tokens cannot hammer the issuer.
    pub jwks_min_refetch_secs: u64,
    /// Accepted JWS algorithms. `none` and the HMAC algorithms cannot be
    /// listed.
    #[serde(deserialize_with = "string_or_list")]
    pub algorithms: Vec<JwsAlgorithm>,
    /// How many verified tokens are remembered (keyed by their SHA-256), so a
    /// token is checked once rather than on every request.
    pub token_cache_entries: usize,
    /// Allow plain `http` to the issuer on hosts other than loopback. Only for
    /// closed networks: tokens and metadata then travel unprotected.
    pub allow_insecure_http: bool,
    /// Also accept JWT access tokens whose header says `typ: JWT`, or has no
    /// `typ` (default off: only `at+jwt`, RFC 9068 §4, so that an ID token
    /// or logout token of the same issuer is never taken for an access
    /// token). Turn on only for issuers that do not mark access tokens, such
    /// as Keycloak and Microsoft Entra ID (both send `typ: JWT`), and then
    /// keep `audience` specific to this server, since that is what still
    /// tells their ID tokens (audience: a client) apart.
    pub accept_plain_jwt: bool,
    /// A human-readable name for the protected resource (RFC 9728 `resource_name`).
    pub resource_name: Option<String>,
    /// A page documenting the resource (RFC 9728 `resource_documentation`).
    pub resource_documentation: Option<String>,
}

impl Default for ResourceServerConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: None,
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            introspection: None,
            leeway_secs: 60,
            jwks_cache_max_secs: 3600,
            jwks_min_refetch_secs: 30,
            algorithms: JwsAlgorithm::DEFAULT.to_vec(),
            token_cache_entries: 10_000,
            allow_insecure_http: false,
            accept_plain_jwt: false,
            resource_name: None,
            resource_documentation: None,
        }
    }
}

impl ResourceServerConfig {
    /// Tokens from `issuer`, every other setting at its default.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self { issuer: issuer.into(), ..Self::default() }
    }

    /// Sets the audience tokens must carry (default: the canonical MCP URL).
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the scopes published in metadata and challenges.
    #[must_use]
    pub fn with_scopes_supported<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the scopes every request needs.
    #[must_use]
    pub fn with_required_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Enables RFC 7662 introspection for opaque tokens.
    #[must_use]
    pub fn with_introspection(mut self, introspection: IntrospectionConfig) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Sets the tolerated clock skew, in seconds.
    #[must_use]
    pub fn with_leeway_secs(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// Sets the longest JWKS cache lifetime, in seconds.
    #[must_use]
    pub fn with_jwks_cache_max_secs(mut self, secs: u64) -> Self {
        self.jwks_cache_max_secs = secs;
        self
    }

    /// Sets the shortest interval between unknown-`kid` JWKS refetches, in seconds.
    #[must_use]
    pub fn with_jwks_min_refetch_secs(mut self, secs: u64) -> Self {
        self.jwks_min_refetch_secs = secs;
        self
    }

    /// Sets the accepted JWS algorithms.
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Sets the size of the verified-token cache (0 disables it).
    #[must_use]
    pub fn with_token_cache_entries(mut self, entries: usize) -> Self {
        self.token_cache_entries = entries;
        self
    }

    /// Allows plain `http` to a non-loopback issuer.
    #[must_use]
    pub fn with_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Sets the RFC 9728 `resource_name`.
    #[must_use]
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets the RFC 9728 `resource_documentation` URL.
    #[must_use]
    pub fn with_resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }
}

/// `[auth.resource_server.introspection]`: how to ask the authorization
/// server about opaque tokens (RFC 7662).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct IntrospectionConfig {
    /// This server's client id at the authorization server.
    pub client_id: String,
    /// Its client secret. Prefer the environment
    /// (`MCP_AUTH__RESOURCE_SERVER__INTROSPECTION__CLIENT_SECRET`) to the file.
    pub client_secret: String,
    /// How the credentials are sent (RFC 6749 §2.3.1).
    pub auth_method: ClientAuthMethod,
    /// The introspection endpoint, when the issuer's metadata does not name
    /// one (`introspection_endpoint`).
    pub endpoint: Option<String>,
    /// Longest time an introspection answer is reused, in seconds; never past
    /// the token's `exp`.
    pub cache_ttl_secs: u64,
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            auth_method: ClientAuthMethod::default(),
            endpoint: None,
            cache_ttl_secs: 60,
        }
    }
}

impl IntrospectionConfig {
    /// Introspection with these client credentials, sent with HTTP Basic.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self { client_id: client_id.into(), client_secret: client_secret.into(), ..Self::default() }
    }

    /// Sets how the credentials are sent.
    #[must_use]
    pub fn with_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// Sets the introspection endpoint explicitly.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets the longest reuse of an answer, in seconds.
    #[must_use]
    pub fn with_cache_ttl_secs(mut self, secs: u64) -> Self {
        self.cache_ttl_secs = secs;
        self
    }
}

// The secret never reaches a log line.
impl fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("auth_method", &self.auth_method)
            .field("endpoint", &self.endpoint)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .finish()
    }
}

/// Client authentication at the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `Authorization: Basic` with the form-encoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// A JWS signature algorithm an access token may use (RFC 7518 §3, RFC 8037).
///
/// Only asymmetric algorithms exist here: a resource server verifying with a
/// public JWKS has no business accepting `none` or a shared-secret HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwsAlgorithm {
    /// The default allowlist: RS256, PS256, ES256 and EdDSA.
    pub const DEFAULT: [JwsAlgorithm; 4] =
        [JwsAlgorithm::RS256, JwsAlgorithm::PS256, JwsAlgorithm::ES256, JwsAlgorithm::EdDSA];

    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm an `alg` header value names, if it is one of these.
    /// Case-sensitive (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::RS256,
            Self::RS384,
            Self::RS512,
            Self::PS256,
            Self::PS384,
            Self::PS512,
            Self::ES256,
            Self::ES384,
            Self::EdDSA,
        ]
        .into_iter()
        .find(|alg| alg.as_str() == name)
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list, or a comma-separated string (so `MCP_…=a,b` environment overrides work).
fn string_or_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(String),
    }
    match OneOrMany::<T>::deserialize(d)? {
        OneOrMany::Many(v) => Ok(v),
        OneOrMany::One(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|item| T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(item)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_every_optional_key() {
        let config: ResourceServerConfig = toml::from_str(r#"issuer = "https://idp.example.com""#).unwrap();
        assert_eq!(config, ResourceServerConfig::new("https://idp.example.com"));
        assert_eq!(config.algorithms, JwsAlgorithm::DEFAULT);
        assert_eq!(config.leeway_secs, 60);
    }

    #[test]
    fn lists_accept_comma_separated_strings() {
        let config: ResourceServerConfig = toml::from_str(
            r#"
            issuer = "https://idp.example.com"
            scopes_supported = "notes:read, notes:write"
            algorithms = "ES256,EdDSA"
            "#,
        )
        .unwrap();
        assert_eq!(config.scopes_supported, ["notes:read", "notes:write"]);
        assert_eq!(config.algorithms, [JwsAlgorithm::ES256, JwsAlgorithm::EdDSA]);
    }

    #[test]
    fn unknown_keys_and_symmetric_algorithms_are_refused() {
        let typo = toml::from_str::<ResourceServerConfig>("issuer = \"https://i\"\naudiences = \"x\"");
        assert!(typo.unwrap_err().to_string().contains("audiences"));
        let hmac = toml::from_str::<ResourceServerConfig>("issuer = \"https://i\"\nalgorithms = [\"HS256\"]");
        assert!(hmac.unwrap_err().to_string().contains("HS256"));
        let none = toml::from_str::<ResourceServerConfig>("issuer = \"https://i\"\nalgorithms = \"none\"");
        assert!(none.is_err());
    }

    #[test]
    fn reads_the_auth_section_of_a_server_config_file() {
        // What the server does with its `[auth]` table.
        let file: toml::Table = toml::from_str(
            r#"
            [auth]
            mode = "resource_server"
            [auth.resource_server]
            issuer = "http://127.0.0.1:9000"
            leeway_secs = 5
            [auth.resource_server.introspection]
            client_id = "rs"
            client_secret = "pw"
            auth_method = "client_secret_post"
            "#,
        )
        .unwrap();
        let config: ResourceServerConfig = file["auth"]["resource_server"].clone().try_into().unwrap();
        assert_eq!(config.leeway_secs, 5);
        assert_eq!(config.introspection.unwrap().auth_method, ClientAuthMethod::ClientSecretPost);
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let debug = format!("{:?}", IntrospectionConfig::new("id", "hunter2"));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn auth_method_names_follow_rfc_7591() {
        let config: IntrospectionConfig =
            toml::from_str("client_id = \"a\"\nclient_secret = \"b\"\nauth_method = \"client_secret_post\"")
                .unwrap();
        assert_eq!(config.auth_method, ClientAuthMethod::ClientSecretPost);
        assert_eq!(config.cache_ttl_secs, 60);
    }
}
