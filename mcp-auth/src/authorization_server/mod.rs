//! Authorization-server mode: this server is itself a complete OAuth 2.1
//! authorization server for its MCP endpoint.
//!
//! - metadata (RFC 8414) at `/.well-known/oauth-authorization-server` (path-
//!   inserted when the issuer has a path); no OpenID discovery document, since
//!   no ID tokens are issued;
//! - clients from dynamic registration (RFC 7591) at `/register`, from
//!   client ID metadata documents (an https `client_id` URL, fetched with an
//!   SSRF guard and cached; `cimd_enabled`), and from configuration
//!   (`[[auth.authorization_server.clients]]`, checked at startup);
//! - `/authorize` with PKCE S256, exact redirect matching (plus the RFC 8252
//!   loopback port rule), a pluggable login step with a short login session
//!   per browser (`login_session_secs`), and a CSRF-protected consent page
//!   bound to the browser, whose approvals can be remembered per (user,
//!   client, redirect URI, browser) and scope set (`remember_consent`, off
//!   by default);
//! - or, instead of a login form, a login at GitHub ([`GitHubLogin`]) or any
//!   OpenID provider ([`OidcLogin`]) after our own consent, through one
//!   fixed `/callback`, with the provider's token sealed for tools
//!   ([`UpstreamTokens`]);
//! - `/token` (authorization code, refresh with rotation and reuse
//!   detection), `/revoke` (RFC 7009), `/introspect` (RFC 7662);
//! - ES256 (or RS256) JWT access tokens published through `/jwks.json`, checked by the
//!   same [`ResourceServer`] code as any external issuer's
//!   ([`AuthorizationServer::layer`]), plus a revocation check (cached
//!   for at most 60 s when the store tells of revocations by other
//!   instances, as the PostgreSQL store does with LISTEN/NOTIFY).
//!
//! Every code, token and secret is stored only as its SHA-256, in a
//! [`SqliteStore`] (default), a [`MemoryStore`], or with the `postgres`
//! feature a PostgreSQL database shared by several instances.
//!
//! ```no_run
//! use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthorizationServerConfig::new("http://localhost:8080").with_scopes_supported(["notes:read"]);
//! let server = AuthorizationServer::builder(config, "http://localhost:8080/mcp").build().await?;
//! // The OAuth endpoints, outside the bearer gate; the MCP endpoint, inside it.
//! let mcp = axum::Router::new().route("/mcp", axum::routing::post(|| async { "ok" })).layer(server.layer()?);
//! let app = server.router().merge(mcp);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```

mod authorize;
mod cimd;
mod client_auth;
mod config;
mod crypto;
mod discovery;
mod error;
mod introspection;
mod issue;
mod keys;
mod login;
mod params;
mod rate_limit;
mod redirect;
mod register;
mod responses;
mod revocation;
mod revocation_cache;
mod scope;
mod seal;
pub mod store;
mod token;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use mcp_core::Identity;
use reqwest::Url;
use serde_json::Value;

use self::cimd::CimdFetcher;
pub use self::cimd::is_public_address;
pub use self::config::{AuthorizationServerConfig, PreRegisteredClient, SecretString};
pub use self::error::{OAuthError, OAuthErrorCode, StoreError};
pub use self::keys::KeyError;
use self::keys::{KeyRing, KeySource, SigningAlgorithm};
pub use self::login::{AuthenticatedUser, DevLogin, LoginError, UserAuthenticator};
use self::rate_limit::{Bucket, RateLimiter};
pub use self::rate_limit::{Limit, RateLimitConfig};
use self::revocation_cache::RevocationCache;
use self::seal::Sealer;
pub use self::seal::SealingKeyError;
use self::store::{
    AuthStore, ClientRecord, MemoryStore, RevocationEvent, RevocationFeed, SqliteStore,
    TokenEndpointAuthMethod, UnixTime, unix_now,
};
pub use self::upstream::{
    GitHubConfig, GitHubLogin, OidcConfig, OidcLogin, UpstreamAuthorization, UpstreamCallback,
    UpstreamCredentials, UpstreamLogin, UpstreamLoginError, UpstreamToken, UpstreamTokens, UpstreamUser,
};
use crate::clock::{Clock, SystemClock};
use crate::config::ResourceServerConfig;
use crate::error::{ConfigError, TokenError};
use crate::layer::{AuthLayer, BoxFuture, TokenVerifier};
use crate::metadata::ProtectedResourceMetadata;
use crate::resource_server::ResourceServer;

const KEY_ISSUER: &str = "auth.authorization_server.issuer";
const KEY_CLIENTS: &str = "auth.authorization_server.clients";
/// Largest request body any endpoint reads.
const MAX_BODY: usize = 64 * 1024;
/// How often expired rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Why the authorization server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationServerError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store cannot be opened or read.
    #[error("authorization store: {0}")]
    Store(#[from] StoreError),
    /// The signing keys cannot be loaded or made.
    #[error("signing keys: {0}")]
    Key(#[from] KeyError),
    /// The upstream-token sealing key cannot be loaded or made.
    #[error("auth.authorization_server.sealing_key: {0}")]
    SealingKey(#[from] SealingKeyError),
}

/// How users log in.
#[derive(Clone, Debug)]
pub(crate) enum Login {
    /// A form on our own page.
    Form(Arc<dyn UserAuthenticator>),
    /// A redirect to an upstream provider (GitHub, OpenID Connect).
    Upstream(Arc<dyn UpstreamLogin>),
}

/// State shared by every endpoint.
#[derive(Debug)]
pub(crate) struct Shared {
    config: AuthorizationServerConfig,
    /// The issuer, exactly as configured.
    issuer: String,
    /// The issuer's path without a trailing slash (`""` for an origin).
    issuer_path: String,
    /// The canonical MCP resource: the only audience.
    resource: String,
    /// The other endpoints of the same server (such as `/sse`), by path.
    other_endpoints: Vec<String>,
    /// The protected server's name, shown on the consent page.
    server_name: Option<String>,
    /// Their resource URLs: accepted as `resource` indicators, which all
    /// name the one resource above (RFC 8707 §2).
    other_resources: Vec<String>,
    /// Further resources with audiences of their own (the mounts of a gateway).
    separate: Vec<SeparateResource>,
    store: Arc<dyn AuthStore>,
    keys: KeyRing,
    login: Login,
    /// Seals upstream tokens; present with an upstream login.
    sealer: Option<Sealer>,
    /// Serializes refreshes of upstream tokens.
    upstream_refresh: tokio::sync::Mutex<()>,
    clock: Arc<dyn Clock>,
    /// https issuer: `__Host-` cookies with `Secure`.
    secure_cookies: bool,
    limiter: Arc<RateLimiter>,
    /// Clients from `[[auth.authorization_server.clients]]`, by id.
    configured_clients: HashMap<String, ClientRecord>,
    /// Client ID metadata documents, when enabled.
    cimd: Option<CimdFetcher>,
    /// Revocation checks found active, while the store's feed tells of changes.
    revocations: RevocationCache,
}

/// Where a client's registration comes from (shown on the consent page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientOrigin {
    /// `[[auth.authorization_server.clients]]`.
    Configured,
    /// A client ID metadata document.
    MetadataDocument,
    /// Dynamic registration.
    Registered,
}

impl Shared {
    /// Revokes a grant (its tokens, its remembered consent) and, with an
    /// upstream login, the provider's token sealed into it, in the
    /// background: the provider's answer never delays or fails ours.
    pub(crate) async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        let grant = self.store.grant(grant_id, self.now()).await?;
        self.store.revoke_grant(grant_id).await?;
        self.revoked_here(&RevocationEvent::Grant(grant_id.to_owned()));
        if let (Login::Upstream(upstream), Some(sealer), Some(grant)) = (&self.login, &self.sealer, grant)
            && !grant.revoked
            && let Some(token) = upstream::sealed_access_token(sealer, &grant)
        {
            let upstream = upstream.clone();
            tokio::spawn(async move { upstream.revoke_token(&token).await });
        }
        Ok(())
    }

    /// Drops what a revocation this instance just committed makes stale
    /// from its own cache at once, without waiting for the store's feed
    /// (which tells the other instances).
    pub(crate) fn revoked_here(&self, event: &RevocationEvent) {
        self.revocations.apply(event);
    }

    /// The protected server as the consent page names it: its name and the
    /// issuer's host (`notes (mcp.example.com)`), or the host alone.
    pub(crate) fn server_label(&self) -> String {
        let host = reqwest::Url::parse(&self.issuer)
            .ok()
            .and_then(|url| {
                url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
            .unwrap_or_else(|| self.issuer.clone());
        match &self.server_name {
            Some(name) => format!("{name} ({host})"),
            None => host,
        }
    }

    /// The canonical resource a `resource` indicator names, if it names one
    /// of this server's endpoints (RFC 8707 §2): the main resource for it
    /// and its other endpoints, a separate resource for it and its own.
    pub(crate) fn resource_named(&self, indicator: &str) -> Option<&str> {
        if indicator == self.resource || self.other_resources.iter().any(|r| r == indicator) {
            return Some(self.resource.as_str());
        }
        self.separate
            .iter()
            .find(|r| r.url == indicator || r.endpoint_urls.iter().any(|e| e == indicator))
            .map(|r| r.url.as_str())
    }

    /// A client, whatever its origin: configuration first, then a metadata
    /// document for a URL `client_id` (when enabled), then the store. A
    /// document that cannot be fetched or used means "unknown client"; the
    /// reason is logged (the client learns nothing about our network).
    pub(crate) async fn client(
        &self,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<ClientRecord>, StoreError> {
        if let Some(client) = self.configured_clients.get(client_id) {
            return Ok(Some(client.clone()));
        }
        if let Some(cimd) = &self.cimd
            && cimd.applies_to(client_id)
        {
            return match cimd.client(client_id, now).await {
                Ok(client) => Ok(Some(client)),
                Err(error) => {
                    tracing::warn!(%error, "mcp-auth: client metadata document refused");
                    Ok(None)
                }
            };
        }
        self.store.client(client_id, now).await
    }

    pub(crate) fn client_origin(&self, client_id: &str) -> ClientOrigin {
        if self.configured_clients.contains_key(client_id) {
            ClientOrigin::Configured
        } else if self.cimd.as_ref().is_some_and(|c| c.applies_to(client_id)) {
            ClientOrigin::MetadataDocument
        } else {
            ClientOrigin::Registered
        }
    }

    fn now(&self) -> UnixTime {
        unix_now(self.clock.now())
    }

    /// The URL of an endpoint under the issuer.
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-mcp-auth-txn" } else { "mcp-auth-txn" }
    }

    /// The login-session cookie (same prefix rules as the transaction's).
    fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-mcp-auth-session" } else { "mcp-auth-session" }
    }

    /// The one fixed callback of upstream logins.
    fn upstream_callback(&self) -> String {
        self.endpoint("/callback")
    }

    /// The cookie naming this browser for remembered approvals.
    fn browser_cookie_name(&self) -> &'static str {
        if self.secure_cookies { "__Host-mcp-auth-browser" } else { "mcp-auth-browser" }
    }
}

/// The built-in OAuth 2.1 authorization server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthorizationServer {
    shared: Arc<Shared>,
}

/// A resource beside the main one with an audience of its own.
#[derive(Debug, Clone)]
struct SeparateResource {
    /// Its path, such as `/fs/mcp`.
    path: String,
    /// Its canonical URL: the audience of its tokens.
    url: String,
    /// Its other endpoints' paths (`/fs/sse`) and URLs, which name it too.
    endpoint_paths: Vec<String>,
    endpoint_urls: Vec<String>,
}

/// Builds an [`AuthorizationServer`].
#[derive(Debug)]
pub struct AuthorizationServerBuilder {
    config: AuthorizationServerConfig,
    resource: String,
    store: Option<Arc<dyn AuthStore>>,
    login: Option<Login>,
    clock: Arc<dyn Clock>,
    other_endpoints: Vec<String>,
    separate: Vec<(String, Vec<String>)>,
    server_name: Option<String>,
    /// The Redis URL and key prefix the rate limits are counted under.
    #[cfg(feature = "redis")]
    redis_rate_limits: Option<(SecretString, String)>,
}

impl AuthorizationServerBuilder {
    /// Uses this store instead of the one `config.store` names.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn AuthStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this login form instead of the login `config.login` names.
    #[must_use]
    pub fn authenticator(mut self, authenticator: Arc<dyn UserAuthenticator>) -> Self {
        self.login = Some(Login::Form(authenticator));
        self
    }

    /// Logs users in at an upstream provider ([`GitHubLogin`],
    /// [`OidcLogin`]) instead of the login `config.login` names.
    #[must_use]
    pub fn upstream(mut self, upstream: Arc<dyn UpstreamLogin>) -> Self {
        self.login = Some(Login::Upstream(upstream));
        self
    }

    /// Also protects the endpoint at `path` on the resource's origin (such as
    /// the legacy `/sse` and `/messages`): it gets its own protected-resource
    /// metadata (see [`AuthLayer::with_endpoint`]), and its URL is accepted
    /// as a `resource` indicator. Tokens are issued for the canonical
    /// resource whichever endpoint asked, so one token serves every endpoint
    /// of the server.
    #[must_use]
    pub fn endpoint(mut self, path: impl Into<String>) -> Self {
        self.other_endpoints.push(path.into());
        self
    }

    /// Also issues tokens for a separate resource at `path` on the main
    /// resource's origin (another MCP endpoint, such as one mount of a
    /// gateway), whose other `endpoints` (its legacy `/fs/sse`, say) name it
    /// too. Its tokens carry its URL alone as audience (RFC 8707 §2), so the
    /// main resource refuses them and it refuses the main resource's; its
    /// bearer gate is [`AuthorizationServer::layer_for`].
    ///
    /// ```
    /// use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
    ///
    /// let config = AuthorizationServerConfig::new("http://127.0.0.1:8080");
    /// let builder = AuthorizationServer::builder(config, "http://127.0.0.1:8080/fs/mcp")
    ///     .resource("/search/mcp", ["/search/sse", "/search/messages"]);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn resource<S: Into<String>>(
        mut self,
        path: impl Into<String>,
        endpoints: impl IntoIterator<Item = S>,
    ) -> Self {
        self.separate.push((path.into(), endpoints.into_iter().map(Into::into).collect()));
        self
    }

    /// The name of the server the tokens are for (an MCP server's
    /// `serverInfo` title or name), shown on the consent page beside the
    /// issuer's host, so users know what they are granting access to.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Counts the rate limits (`config.rate_limits`) in the Redis at `url`
    /// (`redis://[:password@]host[:port][/db]`), under keys
    /// `<key_prefix>:rl:<endpoint>:<client>`, so that every instance behind
    /// a load balancer sharing that Redis and prefix counts each client
    /// once: the limits hold across them, not per instance. Each request
    /// is one atomic script call of at most 250 ms.
    ///
    /// The URL is checked here and by [`build`](Self::build) (an unusable
    /// one is a [`ConfigError`] naming `redis.url`); the connection is made
    /// on first use, and again after a failure. While Redis does not answer
    /// (down, unreachable or slow), each instance counts the same limits
    /// in its own memory instead: a client may then make up to the limit
    /// on every instance, never more, and no request fails because of
    /// Redis. A warning says so, at most once a minute.
    ///
    /// Needs the `redis` feature.
    ///
    /// ```no_run
    /// use mcp_auth::{AuthorizationServer, AuthorizationServerConfig};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = AuthorizationServerConfig::new("https://mcp.example.com");
    /// let server = AuthorizationServer::builder(config, "https://mcp.example.com/mcp")
    ///     .redis_rate_limits("redis://cache.internal:6379/0", "mcp")
    ///     .build()
    ///     .await?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis_rate_limits(mut self, url: impl Into<String>, key_prefix: impl Into<String>) -> Self {
        self.redis_rate_limits = Some((SecretString::from(url.into()), key_prefix.into()));
        self
    }

    /// Uses `clock` for every lifetime.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration as [`build`](Self::build) would, without
    /// opening the store or creating any file: for a "check the config"
    /// command. Errors name the key.
    pub fn validate(&self) -> Result<(), AuthorizationServerError> {
        let Checked { loopback, login, .. } = self.check()?;
        if let Login::Upstream(_) = login {
            match (&self.config.sealing_key, &self.config.sealing_key_file) {
                (Some(key), _) => {
                    Sealer::from_base64(key.expose())?;
                }
                (None, None) if !loopback => {
                    sealer(&self.config, loopback)?;
                }
                (None, _) => {}
            }
        }
        if self.store.is_none() {
            StoreSetting::parse(&self.config.store)?;
        }
        Ok(())
    }

    /// Every check that needs no I/O.
    fn check(&self) -> Result<Checked, AuthorizationServerError> {
        let config = &self.config;
        let issuer_url = check_issuer(&config.issuer)?;
        crate::metadata::parse_resource(&self.resource)?;
        let loopback = is_loopback(&issuer_url);
        if config.cimd_allow_insecure_for_tests && !loopback {
            return Err(ConfigError::Invalid {
                key: "auth.authorization_server.cimd_allow_insecure_for_tests",
                message:
                    "is for tests on a loopback issuer only; it would let client metadata fetches reach \
                          private networks"
                        .into(),
            }
            .into());
        }
        if self.store.is_none() && config.store == "memory" && !loopback {
            return Err(ConfigError::Invalid {
                key: "auth.authorization_server.store",
                message: format!(
                    "`memory` loses every client, grant and token on restart and is for loopback issuers only \
                     (the issuer `{}` is not); use `sqlite://PATH`",
                    config.issuer
                ),
            }
            .into());
        }
        let algorithm =
            SigningAlgorithm::from_name(&config.signing_algorithm).ok_or_else(|| ConfigError::Invalid {
                key: "auth.authorization_server.signing_algorithm",
                message: format!("`{}` is neither `ES256` nor `RS256`", config.signing_algorithm),
            })?;
        let login = match &self.login {
            Some(login) => login.clone(),
            None if config.login == "dev" => Login::Form(Arc::new(DevLogin)),
            None if config.login == "github" || config.login == "oidc" => {
                return Err(ConfigError::Invalid {
                    key: "auth.authorization_server.login",
                    message: format!(
                        "`{0}` needs the [auth.{0}] section; a library user passes \
                         AuthorizationServerBuilder::upstream",
                        config.login
                    ),
                }
                .into());
            }
            None => {
                return Err(ConfigError::Invalid {
                    key: "auth.authorization_server.login",
                    message: format!("unknown login `{}`; use \"github\", \"oidc\" or \"dev\"", config.login),
                }
                .into());
            }
        };
        if let Login::Form(form) = &login {
            check_development_login(form.as_ref(), &config.issuer, loopback)?;
        }
        configured_clients(config, 0)?;
        let limiter = self.rate_limiter()?;
        Ok(Checked { issuer_url, loopback, algorithm, login, limiter })
    }

    /// The rate limiter of `config.rate_limits`, counting in Redis when asked to.
    fn rate_limiter(&self) -> Result<RateLimiter, ConfigError> {
        let limiter = RateLimiter::new(self.config.rate_limits);
        #[cfg(feature = "redis")]
        if let Some((url, prefix)) = &self.redis_rate_limits {
            return Ok(limiter.shared_through(rate_limit::RedisWindows::open(url.expose(), prefix)?));
        }
        Ok(limiter)
    }

    /// Checks the configuration, opens the store, loads (or generates) the
    /// signing key, and starts purging expired rows in the background.
    pub async fn build(self) -> Result<AuthorizationServer, AuthorizationServerError> {
        let Checked { issuer_url, loopback, algorithm, login, limiter } = self.check()?;
        let Self { config, resource, store, clock, other_endpoints, separate, server_name, .. } = self;
        let main = ProtectedResourceMetadata::new(&resource, &config.issuer);
        let url_of = |path: &String| main.for_endpoint(path).map(|m| m.resource);
        let other_resources = other_endpoints.iter().map(url_of).collect::<Result<Vec<_>, _>>()?;
        let separate = separate
            .into_iter()
            .map(|(path, endpoint_paths)| {
                Ok(SeparateResource {
                    url: url_of(&path)?,
                    endpoint_urls: endpoint_paths
                        .iter()
                        .map(url_of)
                        .collect::<Result<Vec<_>, ConfigError>>()?,
                    path,
                    endpoint_paths,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let sealer = match &login {
            Login::Upstream(_) => Some(sealer(&config, loopback)?),
            Login::Form(_) => None,
        };
        let store = match store {
            Some(store) => store,
            None => open_store(&config.store)?,
        };
        let now = unix_now(clock.now());
        let configured_clients = configured_clients(&config, now)?;
        let cimd = if config.cimd_enabled { Some(CimdFetcher::new(&config)?) } else { None };
        let key_source = KeySource {
            algorithm,
            file: config.signing_key_file.as_ref().map(std::path::PathBuf::from),
            retire_other_at: now.saturating_add(config.access_token_ttl_secs).saturating_add(300),
        };
        let keys = KeyRing::load(store.as_ref(), now, &key_source).await?;
        let shared = Arc::new(Shared {
            issuer: config.issuer.clone(),
            issuer_path: issuer_url.path().trim_end_matches('/').to_owned(),
            secure_cookies: issuer_url.scheme() == "https",
            limiter: Arc::new(limiter),
            config,
            resource,
            other_endpoints,
            other_resources,
            separate,
            server_name,
            store,
            keys,
            login,
            sealer,
            upstream_refresh: tokio::sync::Mutex::new(()),
            clock,
            configured_clients,
            cimd,
            revocations: RevocationCache::default(),
        });
        spawn_revocation_follower(Arc::downgrade(&shared), shared.store.revocation_feed());
        spawn_purger(Arc::downgrade(&shared));
        spawn_key_reader(Arc::downgrade(&shared));
        Ok(AuthorizationServer { shared })
    }
}

/// A development-only login refuses a non-loopback issuer, and warns loudly.
fn check_development_login(
    form: &dyn UserAuthenticator,
    issuer: &str,
    loopback: bool,
) -> Result<(), ConfigError> {
    if !form.development_only() {
        return Ok(());
    }
    if !loopback {
        return Err(ConfigError::Invalid {
            key: "auth.authorization_server.login",
            message: format!(
                "the `{}` login is for local development and refuses to run when the issuer `{issuer}` is not \
                 on a loopback host; configure a real login (\"github\" or \"oidc\")",
                form.name(),
            ),
        });
    }
    tracing::warn!("mcp-auth: DEVELOPMENT LOGIN ENABLED: anyone can sign in as anyone. Local use only.");
    Ok(())
}

/// The upstream-token sealing key: configured, from its file, or (loopback
/// issuers only) one for the life of the process.
fn sealer(config: &AuthorizationServerConfig, loopback: bool) -> Result<Sealer, AuthorizationServerError> {
    if let Some(key) = &config.sealing_key {
        return Ok(Sealer::from_base64(key.expose())?);
    }
    if let Some(file) = &config.sealing_key_file {
        return Ok(Sealer::from_file(std::path::Path::new(file))?);
    }
    if !loopback {
        return Err(ConfigError::Missing {
            key: "auth.authorization_server.sealing_key",
            hint: "upstream tokens are sealed at rest: set sealing_key (32 random bytes in base64, \
                   `openssl rand -base64 32`) or sealing_key_file",
        }
        .into());
    }
    tracing::warn!(
        "mcp-auth: no sealing_key: upstream tokens are sealed with a key that dies with this process \
         (tools must ask users to log in again after a restart)"
    );
    Ok(Sealer::ephemeral())
}

/// What [`AuthorizationServerBuilder::check`] established.
struct Checked {
    issuer_url: Url,
    loopback: bool,
    algorithm: SigningAlgorithm,
    login: Login,
    limiter: RateLimiter,
}

/// The stores a `store` setting can name.
enum StoreSetting<'a> {
    Memory,
    Sqlite(&'a str),
    /// A `postgres://` or `postgresql://` URL.
    #[cfg(feature = "postgres")]
    Postgres(&'a str),
}

impl<'a> StoreSetting<'a> {
    fn parse(setting: &'a str) -> Result<Self, ConfigError> {
        let invalid =
            |message: String| ConfigError::Invalid { key: "auth.authorization_server.store", message };
        if setting == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = setting.strip_prefix("sqlite://") {
            return match path {
                "" => Err(invalid("`sqlite://` needs a path: `sqlite://PATH`".into())),
                path => Ok(Self::Sqlite(path)),
            };
        }
        if setting.starts_with("postgres://") || setting.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Self::Postgres(setting));
            #[cfg(not(feature = "postgres"))]
            return Err(invalid(
                "a PostgreSQL store needs mcp-auth built with its `postgres` feature".into(),
            ));
        }
        // The setting may hold a password (a URL, `host=… password=…`): repeat
        // a URL's scheme only, and nothing of what may be key-value settings.
        let shown = match setting.split_once("://") {
            Some((scheme, _)) => format!("`{scheme}://…`"),
            None if setting.contains(['=', '@', ' ']) => "the value".to_owned(),
            None => format!("`{setting}`"),
        };
        Err(invalid(format!("{shown} is neither `memory`, `sqlite://PATH` nor `postgres://USER@HOST/DB`")))
    }
}

/// Opens the store a `store` setting names: `memory`, `sqlite://PATH`, or
/// (feature `postgres`) a `postgres://` or `postgresql://` URL. A
/// PostgreSQL store connects when first used, so this never waits for
/// the database.
///
/// ```
/// use mcp_auth::authorization_server::open_store;
///
/// let store = open_store("memory")?;
/// # drop(store);
/// assert!(open_store("mysql://db.example/auth").is_err());
/// # Ok::<(), mcp_auth::authorization_server::AuthorizationServerError>(())
/// ```
pub fn open_store(setting: &str) -> Result<Arc<dyn AuthStore>, AuthorizationServerError> {
    match StoreSetting::parse(setting)? {
        StoreSetting::Memory => {
            tracing::warn!("mcp-auth: authorization store in memory: clients and tokens are lost on restart");
            Ok(Arc::new(MemoryStore::new()))
        }
        StoreSetting::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
        #[cfg(feature = "postgres")]
        StoreSetting::Postgres(url) => Ok(Arc::new(store::PostgresStore::new(url)?)),
    }
}

/// Checks `[[auth.authorization_server.clients]]` with the rules of dynamic
/// registration (RFC 7591 §2) plus secret rules; errors name the entry.
fn configured_clients(
    config: &AuthorizationServerConfig,
    now: UnixTime,
) -> Result<HashMap<String, ClientRecord>, ConfigError> {
    let mut clients = HashMap::new();
    for (i, entry) in config.clients.iter().enumerate() {
        let invalid = |message: String| ConfigError::Invalid {
            key: KEY_CLIENTS,
            message: format!("clients[{i}] (client_id `{}`): {message}", entry.client_id),
        };
        let id = &entry.client_id;
        if id.is_empty() || id.len() > 200 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid("client_id must be 1 to 200 visible ASCII characters".into()));
        }
        if clients.contains_key(id) {
            return Err(invalid("client_id is listed twice".into()));
        }
        let secret_hash = match (&entry.client_secret, &entry.client_secret_hash) {
            (Some(_), Some(_)) => {
                return Err(invalid("give client_secret or client_secret_hash, not both".into()));
            }
            (Some(secret), None) if secret.chars().count() < 32 => {
                return Err(invalid(
                    "client_secret must be at least 32 characters (e.g. `openssl rand -hex 32`)".into(),
                ));
            }
            (Some(secret), None) => Some(crypto::hash(secret)),
            (None, Some(hash))
                if hash.len() == 64
                    && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Some(hash.clone())
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "client_secret_hash must be a SHA-256 as 64 lower-case hex digits".into(),
                ));
            }
            (None, None) => None,
        };
        if entry.scopes.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid("scopes must not be empty (omit it for every supported scope)".into()));
        }
        let default_method = if secret_hash.is_some() { "client_secret_basic" } else { "none" };
        let metadata = register::Metadata {
            redirect_uris: entry.redirect_uris.clone(),
            token_endpoint_auth_method: entry.token_endpoint_auth_method.clone(),
            grant_types: Some(
                entry
                    .grant_types
                    .clone()
                    .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]),
            ),
            response_types: None,
            application_type: entry.application_type.clone(),
            client_name: entry.client_name.clone(),
            scope: entry.scopes.as_ref().map(|s| s.join(" ")),
        };
        let valid = register::validate(&config.scopes_supported, metadata, default_method)
            .map_err(|e| invalid(e.description))?;
        match (valid.auth_method, secret_hash.is_some()) {
            (TokenEndpointAuthMethod::None, true) => {
                return Err(invalid("a client with token_endpoint_auth_method `none` has no secret".into()));
            }
            (TokenEndpointAuthMethod::None, false) | (_, true) => {}
            (_, false) => {
                return Err(invalid(format!(
                    "token_endpoint_auth_method `{}` needs client_secret or client_secret_hash",
                    valid.auth_method.as_str()
                )));
            }
        }
        // RFC 7662 §2.1: the introspection endpoint requires client authentication.
        if entry.introspect && valid.auth_method == TokenEndpointAuthMethod::None {
            return Err(invalid("introspect = true needs a confidential client (a client secret)".into()));
        }
        let record = ClientRecord {
            client_id: id.clone(),
            secret_hash,
            secret_expires_at: None,
            auth_method: valid.auth_method,
            redirect_uris: valid.redirect_uris,
            application_type: valid.application_type.as_str().into(),
            client_name: valid.client_name,
            scope: valid.scope,
            grant_types: valid.grant_types,
            issued_at: now,
            expires_at: None,
        };
        clients.insert(id.clone(), record);
    }
    Ok(clients)
}

/// RFC 8414 §2: https, no query or fragment; plain http only on loopback.
fn check_issuer(issuer: &str) -> Result<Url, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid { key: KEY_ISSUER, message };
    if issuer.is_empty() {
        return Err(ConfigError::Missing {
            key: KEY_ISSUER,
            hint: "this server's public URL, such as https://mcp.example.com",
        });
    }
    let url = Url::parse(issuer).map_err(|e| invalid(format!("`{issuer}` is not an absolute URL ({e})")))?;
    if url.host_str().is_none() || !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(format!("`{issuer}` must be an https URL")));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(invalid(format!("`{issuer}` must use https (plain http only on loopback hosts)")));
    }
    if url.query().is_some() || url.fragment().is_some() || issuer.contains(['?', '#']) {
        return Err(invalid(format!("`{issuer}` must not have a query or fragment (RFC 8414 §2)")));
    }
    // Clients compare the issuer character for character; a trailing slash
    // is the classic mismatch (python-sdk#1919).
    if issuer.ends_with('/') {
        return Err(invalid(format!("`{issuer}` must not end with a slash")));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(redirect::is_loopback_host)
}

fn spawn_purger(shared: Weak<Shared>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            let Some(shared) = shared.upgrade() else { return };
            match shared.store.purge_expired(shared.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, "mcp-auth: purged expired authorization records"),
                Err(error) => tracing::warn!(%error, "mcp-auth: purging expired records failed"),
            }
        }
    });
}

/// Re-reads the signing keys every [`keys::RELOAD_EVERY`], so that keys
/// made by other instances sharing the store are published and used here.
fn spawn_key_reader(shared: Weak<Shared>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(keys::RELOAD_EVERY).await;
            let Some(shared) = shared.upgrade() else { return };
            if let Err(error) = shared.keys.reload(shared.store.as_ref(), shared.now()).await {
                tracing::warn!(%error, "mcp-auth: re-reading the signing keys failed; the known keys stay in use");
            }
        }
    });
}

/// Applies the store's revocation events to the cache of revocation checks
/// (a store without a feed leaves the cache disabled: every check reads it).
fn spawn_revocation_follower(shared: Weak<Shared>, feed: Option<RevocationFeed>) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(mut feed) = feed else { return };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    // Its `Connected` may have been sent before we subscribed.
    if feed.is_connected()
        && let Some(shared) = shared.upgrade()
    {
        shared.revocations.apply(&RevocationEvent::Connected);
    }
    runtime.spawn(async move {
        loop {
            let received = feed.events.recv().await;
            let Some(shared) = shared.upgrade() else { return };
            match received {
                Ok(event) => shared.revocations.apply(&event),
                // Events were missed: forget everything; cache only if connected now
                // (as on a reconnection, which also turns caching back on).
                Err(RecvError::Lagged(_)) if feed.is_connected() => {
                    shared.revocations.apply(&RevocationEvent::Connected);
                }
                Err(RecvError::Lagged(_)) => shared.revocations.disable(),
                Err(RecvError::Closed) => {
                    shared.revocations.disable();
                    return;
                }
            }
        }
    });
}

/// Runs an OAuth endpoint inside a span naming it, so that every refusal it
/// logs says where it happened.
async fn log_endpoint(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let span = tracing::info_span!("oauth", endpoint = %request.uri().path());
    next.run(request).instrument(span).await
}

impl AuthorizationServer {
    /// A builder for the server issuing tokens for the canonical MCP URL
    /// `resource` (such as `https://mcp.example.com/mcp`).
    pub fn builder(config: AuthorizationServerConfig, resource: &str) -> AuthorizationServerBuilder {
        AuthorizationServerBuilder {
            config,
            resource: resource.to_owned(),
            store: None,
            login: None,
            clock: Arc::new(SystemClock),
            other_endpoints: Vec::new(),
            separate: Vec::new(),
            server_name: None,
            #[cfg(feature = "redis")]
            redis_rate_limits: None,
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The RFC 8414 metadata document.
    pub fn metadata(&self) -> Value {
        discovery::document(&self.shared)
    }

    /// The upstream tokens of signed-in users, for tools that call the
    /// upstream provider's API on their behalf.
    pub fn upstream_tokens(&self) -> UpstreamTokens {
        UpstreamTokens::new(self.shared.clone())
    }

    /// The callback URL to register at the upstream provider
    /// (`ISSUER/callback`).
    pub fn upstream_callback_url(&self) -> String {
        self.shared.upstream_callback()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AuthStore> {
        &self.shared.store
    }

    /// The OAuth endpoints, to be merged at the root of the app, **outside**
    /// the bearer gate. The 2025-03-26 fallbacks (`/authorize`, `/token`,
    /// `/register` at the origin) are included when the issuer has a path.
    pub fn router(&self) -> Router {
        let p = self.shared.issuer_path.clone();
        let limited = |bucket: Bucket, router: Router<Arc<Shared>>| {
            let state = (self.shared.limiter.clone(), bucket);
            router.route_layer(axum::middleware::from_fn_with_state(state, rate_limit::limit))
        };
        // The 2025-03-26 fallbacks live at the origin too when the issuer has a path.
        let prefixes: Vec<String> =
            if p.is_empty() { vec![p.clone()] } else { vec![p.clone(), String::new()] };

        // RFC 8414 only: this server issues no ID tokens, so it is not an OpenID
        // Provider and serves no `openid-configuration` (OpenID Connect Discovery
        // 1.0 §3 would require ID-token fields it cannot truthfully fill). MCP
        // clients try the RFC 8414 document first.
        let public = Router::new()
            .route(&format!("/.well-known/oauth-authorization-server{p}"), get(discovery::metadata))
            .route(&format!("{p}/jwks.json"), get(discovery::jwks));
        let mut authorize = Router::new()
            .route(&format!("{p}/authorize/login"), post(authorize::login))
            .route(&format!("{p}/authorize/consent"), get(authorize::consent_get).post(authorize::consent))
            .route(&format!("{p}/callback"), get(upstream::callback));
        let mut token = Router::new();
        let mut register = Router::new();
        for prefix in &prefixes {
            authorize = authorize.route(
                &format!("{prefix}/authorize"),
                get(authorize::authorize_get).post(authorize::authorize_post),
            );
            token = token.route(&format!("{prefix}/token"), post(token::token));
            if self.shared.config.registration_enabled {
                register = register.route(&format!("{prefix}/register"), post(register::register));
            }
        }
        let revoke = Router::new()
            .route(&format!("{p}/revoke"), post(revocation::revoke))
            .route(&format!("{p}/introspect"), post(introspection::introspect));

        let cors = tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::Any)
            .allow_methods([http::Method::GET, http::Method::POST])
            .allow_headers([http::header::AUTHORIZATION, http::header::CONTENT_TYPE])
            .expose_headers([http::header::RETRY_AFTER, http::header::WWW_AUTHENTICATE]);
        let mut app = public
            .merge(limited(Bucket::Authorize, authorize))
            .merge(limited(Bucket::Token, token))
            .merge(limited(Bucket::Revoke, revoke));
        // (A route layer on a router without routes panics.)
        if self.shared.config.registration_enabled {
            app = app.merge(limited(Bucket::Register, register));
        }
        app.layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(cors)
            .layer(axum::middleware::from_fn(log_endpoint))
            .with_state(self.shared.clone())
    }

    /// The protected-resource metadata (RFC 9728) of the MCP endpoint,
    /// naming this issuer.
    pub fn protected_resource_metadata(&self) -> ProtectedResourceMetadata {
        ProtectedResourceMetadata::new(&self.shared.resource, &self.shared.issuer)
            .with_scopes_supported(self.shared.config.scopes_supported.iter().cloned())
    }

    /// A [`ResourceServer`] for this issuer: tokens are checked exactly as an
    /// external issuer's would be (metadata and JWKS fetched over HTTP from
    /// the issuer URL, `iss`, `aud`, `exp`, signature).
    pub fn resource_server(&self) -> Result<ResourceServer, ConfigError> {
        let config = ResourceServerConfig::new(&self.shared.issuer)
            .with_scopes_supported(self.shared.config.scopes_supported.iter().cloned());
        ResourceServer::new(config, &self.shared.resource)
    }

    /// Wraps a verifier (normally [`resource_server`](Self::resource_server))
    /// so that revoked tokens, and tokens of revoked grants, are refused at
    /// once rather than at expiry.
    pub fn revocation_check(&self, verifier: impl TokenVerifier) -> RevocationCheck {
        RevocationCheck { inner: Arc::new(verifier), shared: self.shared.clone() }
    }

    /// The bearer gate for the MCP endpoint: the [`ResourceServer`] path plus
    /// the revocation check, publishing the protected-resource metadata.
    pub fn layer(&self) -> Result<AuthLayer, ConfigError> {
        let verifier = self.revocation_check(self.resource_server()?);
        self.gate(verifier, self.protected_resource_metadata(), &self.shared.other_endpoints)
    }

    /// The bearer gate of the separate resource at `path` (see
    /// [`AuthorizationServerBuilder::resource`]): tokens this issuer made
    /// for that resource alone, revocation checked, its own
    /// protected-resource metadata published for it and its endpoints,
    /// advertising `scopes` (the server's `scopes_supported` when `None`).
    pub fn layer_for(&self, path: &str, scopes: Option<Vec<String>>) -> Result<AuthLayer, ConfigError> {
        let Some(separate) = self.shared.separate.iter().find(|r| r.path == path) else {
            return Err(ConfigError::Invalid {
                key: "server.path",
                message: format!("`{path}` is not a resource of this authorization server"),
            });
        };
        let scopes = scopes.unwrap_or_else(|| self.shared.config.scopes_supported.clone());
        let config = ResourceServerConfig::new(&self.shared.issuer).with_scopes_supported(scopes.clone());
        // RFC 8707 §2 / RFC 9068 §4: this resource's URL is the only audience accepted here.
        let verifier = self.revocation_check(ResourceServer::new(config, &separate.url)?);
        let metadata =
            ProtectedResourceMetadata::new(&separate.url, &self.shared.issuer).with_scopes_supported(scopes);
        self.gate(verifier, metadata, &separate.endpoint_paths)
    }

    /// [`layer`](Self::layer), advertising `scopes` in the main resource's
    /// metadata instead of the server's `scopes_supported`.
    pub fn layer_with_scopes(&self, scopes: Vec<String>) -> Result<AuthLayer, ConfigError> {
        let verifier = self.revocation_check(self.resource_server()?);
        let metadata = ProtectedResourceMetadata::new(&self.shared.resource, &self.shared.issuer)
            .with_scopes_supported(scopes);
        self.gate(verifier, metadata, &self.shared.other_endpoints)
    }

    /// A bearer gate publishing `metadata` for its resource and `endpoints`.
    fn gate(
        &self,
        verifier: RevocationCheck,
        metadata: ProtectedResourceMetadata,
        endpoints: &[String],
    ) -> Result<AuthLayer, ConfigError> {
        let mut layer = AuthLayer::with_verifier(verifier, metadata)?;
        for endpoint in endpoints {
            layer = layer.with_endpoint(endpoint)?;
        }
        Ok(layer)
    }

    /// Makes a new signing key. It is published at once and signs a minute
    /// later, so that every instance sharing the store publishes it before
    /// any of them signs with it; the previous keys stay in the JWKS until
    /// the tokens they signed have expired.
    pub async fn rotate_signing_key(&self) -> Result<(), KeyError> {
        let now = self.shared.now();
        let retire_at = now
            .saturating_add(keys::ACTIVATION_DELAY_SECS)
            .saturating_add(self.shared.config.access_token_ttl_secs)
            .saturating_add(300);
        self.shared.keys.rotate(self.shared.store.as_ref(), now, retire_at).await
    }

    /// Deletes expired records now (this also runs every 10 minutes).
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.shared.store.purge_expired(self.shared.now()).await
    }
}

/// A [`TokenVerifier`] that also refuses revoked access tokens; see
/// [`AuthorizationServer::revocation_check`].
#[derive(Debug)]
pub struct RevocationCheck {
    inner: Arc<dyn TokenVerifier>,
    shared: Arc<Shared>,
}

impl TokenVerifier for RevocationCheck {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>> {
        Box::pin(async move {
            let identity = self.inner.verify(token).await?;
            match introspection::access_token_active(&self.shared, &identity.claims).await {
                Ok(true) => Ok(identity),
                Ok(false) => Err(TokenError::Inactive),
                // The store is down: "not now", so the client retries with the same token.
                Err(error) if error.code == OAuthErrorCode::TemporarilyUnavailable => {
                    tracing::warn!(error = ?error, "mcp-auth: the revocation check cannot read the store");
                    Err(TokenError::Unavailable("the authorization store is unavailable".into()))
                }
                // Any other failure (a record that does not decode, say) will not pass by retrying.
                Err(_) => Err(TokenError::Inactive),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(setting: &str) -> String {
        match StoreSetting::parse(setting) {
            Ok(_) => panic!("`{setting}` accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn store_settings_name_the_key_and_never_repeat_a_password() {
        assert!(matches!(StoreSetting::parse("memory"), Ok(StoreSetting::Memory)));
        assert!(matches!(StoreSetting::parse("sqlite://a.db"), Ok(StoreSetting::Sqlite("a.db"))));
        let error = refusal("sqlite://");
        assert!(
            error.contains("auth.authorization_server.store") && error.contains("needs a path"),
            "{error}"
        );
        let error = refusal("mysql://root:hunter2@db/auth");
        assert!(error.contains("`mysql://…`") && !error.contains("hunter2"), "{error}");
        assert!(refusal("sqlite:a.db").contains("`sqlite:a.db` is neither"));
        let error = refusal("host=db user=mcp password=hunter2");
        assert!(error.contains("the value is neither") && !error.contains("hunter2"), "{error}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_urls_are_stores_with_the_feature() {
        for url in ["postgres://mcp@db/auth", "postgresql://mcp:pw@db:5433/auth"] {
            assert!(matches!(StoreSetting::parse(url), Ok(StoreSetting::Postgres(u)) if u == url));
        }
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    fn postgres_urls_need_the_feature() {
        for url in ["postgres://mcp@db/auth", "postgresql://mcp:pw@db:5433/auth"] {
            let error = refusal(url);
            assert!(error.contains("`postgres` feature") && !error.contains("pw"), "{error}");
        }
    }
}
