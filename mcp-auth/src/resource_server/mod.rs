//! Resource-server mode: bearer tokens issued by an external authorization
//! server, checked here.
//!
//! A token shaped like a JWS goes to JWT validation against the issuer's
//! JWKS (found through its metadata); any other token goes to RFC 7662
//! introspection when it is configured. Verified tokens are remembered until
//! they expire.

mod cache;
pub(crate) mod claims;
pub(crate) mod discovery;
pub(crate) mod fetch;
mod introspection;
pub(crate) mod jwks;
pub(crate) mod jwt;
mod remote;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mcp_core::Identity;
use reqwest::Url;

use self::cache::TokenCache;
use self::claims::{Expected, Source};
use self::fetch::Fetcher;
use self::jwks::{KeySet, VerifyingKey};
use self::remote::Remote;
use crate::clock::{Clock, SystemClock};
use crate::config::{IntrospectionConfig, JwsAlgorithm, ResourceServerConfig};
use crate::error::{ConfigError, TokenError, UpstreamError};
use crate::layer::{AuthLayer, BoxFuture, TokenVerifier};
use crate::metadata::{AuthorizationServerMetadata, ProtectedResourceMetadata, parse_issuer, parse_resource};

/// The longest a failed fetch keeps the next attempt waiting.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// Checks bearer tokens against one external authorization server.
///
/// Cheap to clone (shared state). Building it does no I/O: metadata and keys
/// are fetched on first use, or ahead of time with
/// [`ResourceServer::discover`].
///
/// ```
/// use mcp_auth::{ResourceServer, ResourceServerConfig};
///
/// let rs = ResourceServer::new(
///     ResourceServerConfig::new("https://idp.example.com").with_scopes_supported(["notes:read"]),
///     "https://mcp.example.com/mcp",
/// )?;
/// assert_eq!(rs.protected_resource_metadata().resource, "https://mcp.example.com/mcp");
/// assert_eq!(rs.audience(), "https://mcp.example.com/mcp");
/// # Ok::<(), mcp_auth::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ResourceServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuer: String,
    audience: String,
    metadata: ProtectedResourceMetadata,
    /// Where the metadata is served: its URL and request paths.
    metadata_url: String,
    well_known_paths: Vec<String>,
    required_scopes: Vec<String>,
    leeway: Duration,
    algorithms: Vec<JwsAlgorithm>,
    accept_plain_jwt: bool,
    jwks_cache_max: Duration,
    jwks_min_refetch: Duration,
    introspection: Option<(IntrospectionConfig, Option<Url>)>,
    fetcher: Fetcher,
    as_metadata: Remote<AuthorizationServerMetadata>,
    jwks: Remote<KeySet>,
    cache: TokenCache,
    clock: Arc<dyn Clock>,
}

/// Builds a [`ResourceServer`] with non-default parts (a test clock).
#[derive(Debug)]
pub struct ResourceServerBuilder {
    config: ResourceServerConfig,
    resource: String,
    clock: Arc<dyn Clock>,
}

impl ResourceServerBuilder {
    /// Uses `clock` for token lifetimes and caches.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration and builds the resource server.
    pub fn build(self) -> Result<ResourceServer, ConfigError> {
        let Self { config, resource, clock } = self;
        let issuer_url = parse_issuer(&config.issuer)?;
        let fetcher = Fetcher::new(config.allow_insecure_http)?;
        fetch::check_url(&issuer_url, config.allow_insecure_http).map_err(|reason| ConfigError::Invalid {
            key: "auth.resource_server.issuer",
            message: reason.into(),
        })?;
        parse_resource(&resource)?;
        let audience = match config.audience {
            Some(audience) if audience.trim().is_empty() => {
                return Err(ConfigError::Invalid {
                    key: "auth.resource_server.audience",
                    message: "must not be empty; leave it out to use the canonical MCP URL".into(),
                });
            }
            Some(audience) => audience,
            None => resource.clone(),
        };
        if config.algorithms.is_empty() {
            return Err(ConfigError::Invalid {
                key: "auth.resource_server.algorithms",
                message: "must name at least one algorithm, such as RS256 or ES256".into(),
            });
        }
        for scope in config.scopes_supported.iter().chain(&config.required_scopes) {
            check_scope_token(scope)?;
        }
        let introspection = match config.introspection {
            None => None,
            Some(introspection) => {
                if introspection.client_id.is_empty() {
                    return Err(ConfigError::Missing {
                        key: "auth.resource_server.introspection.client_id",
                        hint: "this server's client id at the authorization server",
                    });
                }
                let endpoint = match &introspection.endpoint {
                    None => None,
                    Some(endpoint) => {
                        let invalid = |message: String| ConfigError::Invalid {
                            key: "auth.resource_server.introspection.endpoint",
                            message,
                        };
                        let url = Url::parse(endpoint).map_err(|e| invalid(format!("`{endpoint}`: {e}")))?;
                        fetch::check_url(&url, config.allow_insecure_http).map_err(|r| invalid(r.into()))?;
                        Some(url)
                    }
                };
                Some((introspection, endpoint))
            }
        };
        let mut metadata = ProtectedResourceMetadata::new(&resource, &config.issuer)
            .with_scopes_supported(config.scopes_supported.iter().cloned());
        metadata.resource_name = config.resource_name;
        metadata.resource_documentation = config.resource_documentation;
        let metadata_url = metadata.metadata_url()?;
        let well_known_paths = metadata.well_known_paths()?;
        Ok(ResourceServer {
            inner: Arc::new(Inner {
                issuer: config.issuer,
                audience,
                metadata,
                metadata_url,
                well_known_paths,
                required_scopes: config.required_scopes,
                leeway: Duration::from_secs(config.leeway_secs),
                algorithms: config.algorithms,
                accept_plain_jwt: config.accept_plain_jwt,
                jwks_cache_max: Duration::from_secs(config.jwks_cache_max_secs),
                jwks_min_refetch: Duration::from_secs(config.jwks_min_refetch_secs),
                introspection,
                fetcher,
                as_metadata: Remote::new("authorization server metadata"),
                jwks: Remote::new("JWKS"),
                cache: TokenCache::new(config.token_cache_entries),
                clock,
            }),
        })
    }
}

/// RFC 6749 §3.3: scope tokens are printable ASCII without space, `"` or `\`.
fn check_scope_token(scope: &str) -> Result<(), ConfigError> {
    let valid = !scope.is_empty()
        && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key: "auth.resource_server.scopes_supported",
            message: format!(
                "`{scope}` is not a valid scope (RFC 6749 §3.3: printable ASCII, no spaces or quotes)"
            ),
        })
    }
}

impl ResourceServer {
    /// A resource server for the canonical MCP URL `resource` (such as
    /// `https://mcp.example.com/mcp`), which becomes the default audience and
    /// the metadata's `resource`, character for character.
    pub fn new(config: ResourceServerConfig, resource: &str) -> Result<Self, ConfigError> {
        Self::builder(config, resource).build()
    }

    /// A builder, for non-default parts such as the clock.
    pub fn builder(config: ResourceServerConfig, resource: &str) -> ResourceServerBuilder {
        ResourceServerBuilder { config, resource: resource.to_owned(), clock: Arc::new(SystemClock) }
    }

    /// The tower layer that guards a service with this resource server.
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }

    /// The protected-resource metadata (RFC 9728) to publish.
    pub fn protected_resource_metadata(&self) -> &ProtectedResourceMetadata {
        &self.inner.metadata
    }

    /// The URL of the protected-resource metadata (the `resource_metadata`
    /// of challenges) and the request paths it is served at.
    pub(crate) fn well_known(&self) -> (&str, &[String]) {
        (&self.inner.metadata_url, &self.inner.well_known_paths)
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Scopes every request needs.
    pub fn required_scopes(&self) -> &[String] {
        &self.inner.required_scopes
    }

    /// Fetches the issuer's metadata and signing keys now rather than on the
    /// first request, so a wrong issuer shows at start-up. Failing here is not
    /// fatal: later requests try again.
    pub async fn discover(&self) -> Result<(), UpstreamError> {
        let metadata = self.as_metadata().await?;
        if let Some(jwks_uri) = &metadata.jwks_uri {
            self.key_set(jwks_uri).await?;
        }
        Ok(())
    }

    /// Checks `token` and says who presented it.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        Ok(Identity::clone(&*self.verify_shared(token).await?))
    }

    async fn verify_shared(&self, token: &str) -> Result<Arc<Identity>, TokenError> {
        let now = self.inner.clock.now();
        if let Some(identity) = self.inner.cache.get(token, now) {
            return Ok(identity);
        }
        let (identity, expires_at) = match jwt::parse(token) {
            Some(jws) => self.verify_jwt(token, &jws, now).await?,
            None => self.introspect(token, now).await?,
        };
        let identity = Arc::new(identity);
        self.inner.cache.insert(token, identity.clone(), expires_at, now);
        Ok(identity)
    }

    async fn verify_jwt(
        &self,
        token: &str,
        jws: &jwt::Jws<'_>,
        now: SystemTime,
    ) -> Result<(Identity, SystemTime), TokenError> {
        let alg = jws.algorithm(&self.inner.algorithms)?;
        jws.check_type(self.inner.accept_plain_jwt)?;
        let metadata = self.as_metadata().await?;
        let Some(jwks_uri) = &metadata.jwks_uri else {
            // An issuer without published keys can still vouch for its JWTs by introspection.
            if self.inner.introspection.is_some() {
                return self.introspect(token, now).await;
            }
            return Err(UpstreamError::MissingEndpoint { field: "jwks_uri" }.into());
        };
        let key = self.key(jwks_uri, alg, jws.kid.as_deref()).await?;
        let claims = jws.verify(alg, &key)?;
        let exp = claims::check(&claims, &self.expected(now), Source::Jwt)?;
        let identity = claims::identity(claims, &self.inner.issuer)?;
        // A key dropped from the JWKS stops vouching for cached tokens within a cache period.
        let expires_at = exp.unwrap_or(now).min(now + self.inner.jwks_cache_max);
        Ok((identity, expires_at))
    }

    async fn introspect(&self, token: &str, now: SystemTime) -> Result<(Identity, SystemTime), TokenError> {
        let Some((config, configured)) = &self.inner.introspection else {
            return Err(TokenError::Opaque);
        };
        let endpoint = match configured {
            Some(url) => url.clone(),
            None => {
                let metadata = self.as_metadata().await?;
                let Some(endpoint) = &metadata.introspection_endpoint else {
                    let error = UpstreamError::MissingEndpoint { field: "introspection_endpoint" };
                    tracing::warn!(%error, "mcp-auth: set `introspection.endpoint` to introspect opaque tokens");
                    return Err(error.into());
                };
                Url::parse(endpoint).map_err(|e| UpstreamError::InvalidDocument {
                    url: endpoint.clone(),
                    reason: format!("bad introspection_endpoint: {e}"),
                })?
            }
        };
        let claims = introspection::introspect(&self.inner.fetcher, &endpoint, config, token).await?;
        let exp = claims::check(&claims, &self.expected(now), Source::Introspection)?;
        let identity = claims::identity(claims, &self.inner.issuer)?;
        // Reused no longer than the configured TTL, and never past `exp`.
        let ttl_end = now + Duration::from_secs(config.cache_ttl_secs);
        Ok((identity, exp.map_or(ttl_end, |exp| exp.min(ttl_end))))
    }

    fn expected(&self, now: SystemTime) -> Expected<'_> {
        Expected {
            issuer: &self.inner.issuer,
            audience: &self.inner.audience,
            leeway: self.inner.leeway,
            now,
        }
    }

    /// The issuer's metadata: cached, refreshed when stale, the stale copy
    /// used while the issuer is down.
    async fn as_metadata(&self) -> Result<Arc<AuthorizationServerMetadata>, UpstreamError> {
        let inner = &self.inner;
        let snapshot = inner.as_metadata.snapshot(inner.clock.now());
        if let (Some(metadata), true) = (&snapshot.value, snapshot.fresh) {
            return Ok(metadata.clone());
        }
        let fetch = || discovery::discover(&inner.fetcher, &inner.issuer);
        match inner.as_metadata.refresh(snapshot.generation, &*inner.clock, FAILURE_BACKOFF, fetch).await {
            Ok((metadata, _)) => Ok(metadata),
            Err(error) => snapshot.value.ok_or(error),
        }
    }

    /// The key set from `jwks_uri`, fetched when missing or stale; a stale set
    /// stays in use while the endpoint is down.
    async fn key_set(&self, jwks_uri: &str) -> Result<(Arc<KeySet>, u64), UpstreamError> {
        let inner = &self.inner;
        let snapshot = inner.jwks.snapshot(inner.clock.now());
        let usable = snapshot.value.filter(|set| set.uri == jwks_uri);
        if let (Some(set), true) = (&usable, snapshot.fresh) {
            return Ok((set.clone(), snapshot.generation));
        }
        let backoff = FAILURE_BACKOFF.min(inner.jwks_min_refetch);
        let refreshed = inner
            .jwks
            .refresh(snapshot.generation, &*inner.clock, backoff, || self.fetch_jwks(jwks_uri))
            .await;
        match (refreshed, usable) {
            (Ok((set, generation)), _) if set.uri == jwks_uri => Ok((set, generation)),
            (_, Some(stale)) => Ok((stale, snapshot.generation)),
            // Another task refreshed from a previous `jwks_uri` a moment ago.
            (Ok(_), None) => Err(UpstreamError::Backoff {
                what: "JWKS",
                last: "the jwks_uri changed".into(),
                retry_in_secs: backoff.as_secs().max(1),
            }),
            (Err(error), None) => Err(error),
        }
    }

    /// The key for a token; an unknown `kid` refetches the set (key rotation,
    /// RFC 7517 §5 / OpenID Connect Core §10.1.1), at most once per
    /// `jwks_min_refetch_secs`.
    async fn key(
        &self,
        jwks_uri: &str,
        alg: JwsAlgorithm,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyingKey>, TokenError> {
        let (set, generation) = self.key_set(jwks_uri).await?;
        match set.select(alg, kid) {
            Err(TokenError::UnknownKey) => {
                let inner = &self.inner;
                let refreshed = inner
                    .jwks
                    .refresh(generation, &*inner.clock, inner.jwks_min_refetch, || self.fetch_jwks(jwks_uri))
                    .await;
                match refreshed {
                    Ok((set, _)) if set.uri == jwks_uri => set.select(alg, kid),
                    Ok(_) | Err(UpstreamError::Backoff { .. }) => Err(TokenError::UnknownKey),
                    Err(error) => Err(error.into()),
                }
            }
            other => other,
        }
    }

    async fn fetch_jwks(&self, jwks_uri: &str) -> Result<(KeySet, Duration), UpstreamError> {
        let url = Url::parse(jwks_uri).map_err(|e| UpstreamError::InvalidDocument {
            url: jwks_uri.to_owned(),
            reason: format!("bad jwks_uri: {e}"),
        })?;
        let fetched = self.inner.fetcher.get_json(&url).await?;
        let set = KeySet::parse(jwks_uri, &fetched.json)?;
        // Cache-Control honoured, but capped, and never so short that every
        // request refetches.
        let cap = self.inner.jwks_cache_max;
        let floor = self.inner.jwks_min_refetch.min(cap);
        let ttl = fetched.max_age.unwrap_or(cap).clamp(floor, cap);
        Ok((set, ttl))
    }
}

impl TokenVerifier for ResourceServer {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>> {
        Box::pin(ResourceServer::verify(self, token))
    }

    fn verified(&self, token: &str) -> Option<Arc<Identity>> {
        self.inner.cache.get(token, self.inner.clock.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESOURCE: &str = "https://mcp.example.com/mcp";

    fn refused(config: ResourceServerConfig, resource: &str) -> String {
        ResourceServer::new(config, resource).unwrap_err().to_string()
    }

    #[test]
    fn configuration_mistakes_name_the_key() {
        assert!(
            refused(ResourceServerConfig::default(), RESOURCE)
                .contains("`auth.resource_server.issuer` is required")
        );
        let http = refused(ResourceServerConfig::new("http://idp.example.com"), RESOURCE);
        assert!(http.contains("allow_insecure_http"), "{http}");
        assert!(
            refused(ResourceServerConfig::new("https://idp.example.com"), "/mcp")
                .contains("server.public_url")
        );
        assert!(
            refused(ResourceServerConfig::new("https://idp"), "https://mcp.example.com/mcp#x")
                .contains("fragment")
        );
        let no_algs = ResourceServerConfig::new("https://idp").with_algorithms([]);
        assert!(refused(no_algs, RESOURCE).contains("algorithms"));
        let bad_scope = ResourceServerConfig::new("https://idp").with_scopes_supported(["notes read"]);
        assert!(refused(bad_scope, RESOURCE).contains("RFC 6749"));
        let anonymous =
            ResourceServerConfig::new("https://idp").with_introspection(IntrospectionConfig::default());
        assert!(refused(anonymous, RESOURCE).contains("introspection.client_id"));
        let bad_endpoint = ResourceServerConfig::new("https://idp").with_introspection(
            IntrospectionConfig::new("a", "b").with_endpoint("http://idp.example.com/introspect"),
        );
        assert!(refused(bad_endpoint, RESOURCE).contains("introspection.endpoint"));
        assert!(
            refused(ResourceServerConfig::new("https://idp").with_audience(" "), RESOURCE)
                .contains("audience")
        );
    }

    #[test]
    fn insecure_http_is_allowed_on_loopback_or_when_asked() {
        assert!(ResourceServer::new(ResourceServerConfig::new("http://127.0.0.1:9000"), RESOURCE).is_ok());
        assert!(
            ResourceServer::new(ResourceServerConfig::new("http://localhost:9000/realms/a"), RESOURCE)
                .is_ok()
        );
        let asked = ResourceServerConfig::new("http://keycloak:8080/realms/a").with_insecure_http(true);
        assert!(ResourceServer::new(asked, RESOURCE).is_ok());
    }

    #[test]
    fn the_resource_is_kept_character_for_character() {
        let rs =
            ResourceServer::new(ResourceServerConfig::new("https://idp"), "https://MCP.example.com:8443/mcp")
                .unwrap();
        assert_eq!(rs.protected_resource_metadata().resource, "https://MCP.example.com:8443/mcp");
        assert_eq!(rs.audience(), "https://MCP.example.com:8443/mcp");
    }
}
