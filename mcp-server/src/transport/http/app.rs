//! The whole HTTP application for a configuration: the MCP endpoint behind
//! CORS, a request timeout and the Host/Origin guard.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures_util::future::Either;
use http::{HeaderName, Request, Response, StatusCode};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::timeout::TimeoutLayer;

use super::cors::cors_layer;
use super::guard::{HostOriginGuardLayer, HostOriginPolicy};
use super::{HttpOptions, LegacySse, StreamableHttp};
use crate::config::{Config, ConfigError};
use crate::server::Server;

impl Server {
    /// The HTTP application `config` describes, ready for `axum::serve`.
    ///
    /// `[auth] mode = "authorization_server"` needs
    /// [`http_app_async`](Self::http_app_async) (opening the store and the
    /// signing keys is asynchronous); here it is a [`ConfigError`].
    ///
    /// ```
    /// use mcp_server::{config::Config, Server};
    /// let config = Config::from_sources(None, [("MCP_SERVER__BIND".into(), "127.0.0.1:0".into())]).unwrap();
    /// let app = Server::new("demo", "1.0.0").http_app(&config).unwrap();
    /// # let _ = app;
    /// ```
    pub fn http_app(&self, config: &Config) -> Result<Router, ConfigError> {
        Ok(self.http_app_parts(config)?.router)
    }

    /// The HTTP application `config` describes, for every `[auth] mode`,
    /// including `"authorization_server"`: the built-in OAuth authorization
    /// server's endpoints outside the bearer gate, the MCP endpoint behind
    /// it. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the OAuth
    /// endpoints' per-client-IP rate limits apply.
    ///
    /// ```
    /// use mcp_server::{config::Config, Server};
    /// # async fn run() {
    /// let config = Config::from_sources(None, [("MCP_SERVER__BIND".into(), "127.0.0.1:0".into())]).unwrap();
    /// let app = Server::new("demo", "1.0.0").http_app_async(&config).await.unwrap();
    /// # let _ = app;
    /// # }
    /// ```
    pub async fn http_app_async(&self, config: &Config) -> Result<Router, ConfigError> {
        Ok(self.http_app_parts_async(config).await?.router)
    }

    /// The application and what serving it needs. Synchronous modes only.
    pub(crate) fn http_app_parts(&self, config: &Config) -> Result<HttpApp, ConfigError> {
        let auth = match auth_mode(config)? {
            MODE_AUTHORIZATION_SERVER => {
                return Err(ConfigError::Value {
                    key: "auth.mode",
                    message: "\"authorization_server\" is built asynchronously: use Server::http_app_async \
                              (or Server::serve) instead of Server::http_app"
                        .into(),
                });
            }
            mode => sync_auth(self, config, mode)?,
        };
        self.assemble(config, auth)
    }

    /// [`http_app_parts`](Self::http_app_parts) for every mode.
    pub(crate) async fn http_app_parts_async(&self, config: &Config) -> Result<HttpApp, ConfigError> {
        let auth = match auth_mode(config)? {
            MODE_AUTHORIZATION_SERVER => authorization_server(self, config).await?,
            mode => sync_auth(self, config, mode)?,
        };
        self.assemble(config, auth)
    }

    fn assemble(&self, config: &Config, auth: Auth) -> Result<HttpApp, ConfigError> {
        let bound = config.bind_addr()?;
        let policy = HostOriginPolicy::from_config(config, bound);
        let (app, legacy) = self.endpoints(config)?;
        // Only the authorization server's per-client-IP rate limits read the peer address.
        let peer_addresses = matches!(auth, Auth::AuthorizationServer { .. });
        let timeout = Duration::from_secs(config.http.request_timeout_secs.max(1));
        // Auth sits inside the guard, the timeout and CORS, so preflight is answered before it.
        let app = match auth {
            Auth::None => outer_layers(app, policy, timeout),
            Auth::ResourceServer(layer) => outer_layers(layer.layer(app), policy, timeout),
            // The OAuth endpoints answer first, outside the bearer gate; everything
            // else (the MCP endpoint, the protected-resource metadata the gate
            // publishes, unknown paths) goes through the gate, as in resource-server mode.
            Auth::AuthorizationServer { server, layer } => {
                outer_layers(oauth_first(&server, layer.layer(app)), policy, timeout)
            }
        };
        Ok(HttpApp { router: app, legacy, peer_addresses })
    }

    /// The MCP endpoint at `server.path` and, when enabled, the legacy
    /// HTTP+SSE endpoints beside it; no layers yet.
    pub(crate) fn endpoints(&self, config: &Config) -> Result<(Endpoint, Option<LegacySse>), ConfigError> {
        let options = HttpOptions::default()
            .idle_timeout(Duration::from_secs(config.sessions.idle_timeout_secs.max(1)))
            .max_sessions(config.sessions.max_sessions)
            .max_sessions_per_principal(config.sessions.max_sessions_per_principal)
            .max_body_bytes(config.http.max_body_bytes)
            .response_mode(config.http.response_mode);
        #[cfg(feature = "redis")]
        let options = shared_through_redis(options, config, "", HttpOptions::redis)?;
        #[cfg(not(feature = "redis"))]
        refuse_redis(config)?;
        let endpoint = StreamableHttp::with_options(self.clone(), options);
        let legacy = config.http.legacy_sse.then(|| {
            self.legacy_sse().with_max_sessions_per_principal(config.sessions.max_sessions_per_principal)
        });
        #[cfg(feature = "redis")]
        let legacy = legacy
            .map(|legacy| shared_through_redis(legacy, config, ":sse", LegacySse::with_redis))
            .transpose()?;
        // Beside the MCP endpoint (`/mcp` → `/sse`, `/fs/mcp` → `/fs/sse`),
        // and before the layers, so the guard and CORS cover it too.
        let rest = match (&legacy, legacy_base(config)) {
            (None, _) => Router::new(),
            (Some(legacy), "") => legacy.router(),
            (Some(legacy), base) => Router::new().nest(base, legacy.router()),
        };
        let app = Endpoint { path: config.server.path.as_str().into(), endpoint, rest };
        Ok((app, legacy))
    }
}

/// The MCP endpoint at its exact path, and every other path to `rest` (the
/// legacy endpoints beside it, or a 404): the endpoint's own requests pay
/// for one comparison rather than a routing step.
#[derive(Clone)]
pub(crate) struct Endpoint {
    path: Arc<str>,
    endpoint: StreamableHttp,
    rest: Router,
}

impl Service<Request<Body>> for Endpoint {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<
        <StreamableHttp as Service<Request<Body>>>::Future,
        <Router as Service<Request<Body>>>::Future,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.uri().path() == &*self.path {
            Either::Left(self.endpoint.call(request))
        } else {
            Either::Right(self.rest.call(request))
        }
    }
}

/// `[redis] url`: legacy sessions shared with the other servers on that
/// Redis: `share` applies it to `target`, under the key prefix, the
/// endpoint's path (each endpoint has its own sessions) and `suffix`.
#[cfg(feature = "redis")]
fn shared_through_redis<T>(
    target: T,
    config: &Config,
    suffix: &str,
    share: impl FnOnce(T, &str, &str) -> Result<T, super::InvalidRedisUrl>,
) -> Result<T, ConfigError> {
    let Some(url) = &config.redis.url else { return Ok(target) };
    let prefix = format!("{}:{}{suffix}", config.redis.key_prefix, config.server.path);
    share(target, url, &prefix).map_err(|e| ConfigError::Value { key: "redis.url", message: e.to_string() })
}

/// Without the `redis` feature, `[redis] url` is refused.
#[cfg(not(feature = "redis"))]
fn refuse_redis(config: &Config) -> Result<(), ConfigError> {
    match config.redis.url {
        None => Ok(()),
        Some(_) => Err(ConfigError::Value {
            key: "redis.url",
            message: "this build has no Redis support: enable the `redis` feature of mcp-server".into(),
        }),
    }
}

/// The OAuth endpoints first, outside the bearer gate, then `gated` for
/// every other path. The OAuth router's own CORS headers are dropped: the
/// outer CORS layer answers for every route, so none is sent twice.
pub(crate) fn oauth_first<S>(server: &mcp_auth::AuthorizationServer, gated: S) -> Router
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    server.router().layer(axum::middleware::map_response(drop_cors_headers)).fallback_service(gated)
}

/// CORS, then the request timeout, then the Host/Origin guard, around
/// `inner`: composed into one service, so a request pays for one routing
/// step rather than one per layer (as `Router::layer` would add).
pub(crate) fn outer_layers<S>(inner: S, policy: HostOriginPolicy, timeout: Duration) -> Router
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(cors_layer())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(HostOriginGuardLayer::new(policy))
        .service(inner);
    Router::new().fallback_service(service)
}

/// An assembled application and what serving it needs.
pub(crate) struct HttpApp {
    pub(crate) router: Router,
    /// The legacy HTTP+SSE endpoint, when enabled: a shutdown must close its
    /// open streams, which never end by themselves.
    pub(crate) legacy: Option<LegacySse>,
    /// Whether requests need the peer address (`ConnectInfo<SocketAddr>`).
    pub(crate) peer_addresses: bool,
}

/// Removes the CORS headers an inner layer set (and the `Vary` it added), so
/// that only the outermost CORS layer's are sent.
async fn drop_cors_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    let cors: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("access-control-")).cloned().collect();
    for name in cors {
        headers.remove(name);
    }
    headers.remove(http::header::VARY);
    response
}

const MODE_NONE: &str = "none";
const MODE_RESOURCE_SERVER: &str = "resource_server";
pub(super) const MODE_AUTHORIZATION_SERVER: &str = "authorization_server";

/// What `[auth] mode` puts around the MCP endpoint.
pub(super) enum Auth {
    None,
    ResourceServer(mcp_auth::AuthLayer),
    AuthorizationServer { server: mcp_auth::AuthorizationServer, layer: mcp_auth::AuthLayer },
}

/// `[auth] mode`: `"none"` (the default), `"resource_server"` or `"authorization_server"`.
pub(super) fn auth_mode(config: &Config) -> Result<&str, ConfigError> {
    match config.auth.get("mode") {
        None => Ok(MODE_NONE),
        Some(toml::Value::String(mode)) => match mode.as_str() {
            mode @ (MODE_NONE | MODE_RESOURCE_SERVER | MODE_AUTHORIZATION_SERVER) => Ok(mode),
            other => Err(ConfigError::Value {
                key: "auth.mode",
                message: format!(
                    "{other:?} is not a mode; use \"none\", \"resource_server\" or \"authorization_server\""
                ),
            }),
        },
        Some(other) => {
            Err(ConfigError::Value { key: "auth.mode", message: format!("{other:?} must be a string") })
        }
    }
}

/// The canonical URL of the MCP endpoint, which auth modes need.
fn canonical_url(config: &Config, mode: &str) -> Result<String, ConfigError> {
    config.endpoint_url().ok_or_else(|| ConfigError::Value {
        key: "server.public_url",
        message: format!(
            "auth mode {mode:?} needs the canonical URL: set server.public_url (MCP_SERVER__PUBLIC_URL), \
             e.g. \"https://mcp.example.com\""
        ),
    })
}

/// A `[auth.<name>]` section (empty when absent).
fn section(config: &Config, name: &str) -> toml::Value {
    config.auth.get(name).cloned().unwrap_or_else(|| toml::Value::Table(toml::Table::new()))
}

/// The layers of the modes that need nothing asynchronous.
pub(super) fn sync_auth(server: &Server, config: &Config, mode: &str) -> Result<Auth, ConfigError> {
    if mode != MODE_RESOURCE_SERVER {
        return Ok(Auth::None);
    }
    let canonical = canonical_url(config, mode)?;
    let mut rs_config: mcp_auth::ResourceServerConfig =
        section(config, "resource_server").try_into().map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: Some("[auth.resource_server]".into()),
            message: e.message().to_owned(),
        })?;
    if rs_config.scopes_supported.is_empty() {
        // Unset: advertise the scopes the server's own routes declare.
        rs_config.scopes_supported = server.declared_scopes();
    }
    let resource_server = mcp_auth::ResourceServer::new(rs_config, &canonical)
        .map_err(|e| ConfigError::Value { key: "auth.resource_server", message: e.to_string() })?;
    let mut layer = resource_server.layer();
    for path in other_endpoints(config) {
        layer = layer.with_endpoint(&path).map_err(auth_config_error)?;
    }
    Ok(Auth::ResourceServer(layer))
}

/// The endpoints protected beside the main one: the legacy HTTP+SSE pair,
/// when served. Each gets protected-resource metadata of its own, since
/// clients check that the metadata's `resource` matches the URL they use.
pub(super) fn other_endpoints(config: &Config) -> Vec<String> {
    if !config.http.legacy_sse {
        return Vec::new();
    }
    let base = legacy_base(config);
    super::legacy_sse::LEGACY_SSE_PATHS.iter().map(|path| format!("{base}{path}")).collect()
}

/// Where the legacy endpoints live: the folder of the MCP endpoint's path,
/// `""` for `/mcp`, `/fs` for `/fs/mcp`.
pub(super) fn legacy_base(config: &Config) -> &str {
    let path = config.server.path.trim_end_matches('/');
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// `[auth] mode = "authorization_server"`: builds the OAuth authorization
/// server `[auth.authorization_server]` describes (opening its store and
/// loading or generating its signing key) for the canonical MCP URL.
///
/// The MCP endpoint checks the tokens through the resource-server code,
/// which fetches this issuer's metadata and JWKS over HTTP: the issuer
/// (by default `server.public_url`) must be reachable from the server itself.
async fn authorization_server(server: &Server, config: &Config) -> Result<Auth, ConfigError> {
    let (builder, as_config, canonical) = authorization_server_builder(server, config)?;
    let auth_server = builder.build().await.map_err(authorization_server_error)?;
    let layer = auth_server.layer().map_err(auth_config_error)?;
    tracing::info!(issuer = %auth_server.issuer(), resource = %canonical, "built-in OAuth authorization server");
    if as_config.login != "dev" {
        tracing::info!(
            login = %as_config.login,
            callback = %auth_server.upstream_callback_url(),
            "users sign in upstream; register this callback URL with the provider"
        );
    }
    // Tools that call the provider's API on the user's behalf take `State<UpstreamTokens>`.
    server.insert_state(auth_server.upstream_tokens());
    Ok(Auth::AuthorizationServer { server: auth_server, layer })
}

/// The authorization server `[auth.authorization_server]` (and the login
/// section it names) describes, not yet built.
pub(super) fn authorization_server_builder(
    server: &Server,
    config: &Config,
) -> Result<(mcp_auth::AuthorizationServerBuilder, mcp_auth::AuthorizationServerConfig, String), ConfigError>
{
    let canonical = canonical_url(config, MODE_AUTHORIZATION_SERVER)?;
    let mut as_config: mcp_auth::AuthorizationServerConfig = section(config, MODE_AUTHORIZATION_SERVER)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: Some("[auth.authorization_server]".into()),
            message: e.message().to_owned(),
        })?;
    if as_config.issuer.is_empty() {
        // Unset: this server's public URL, without a trailing slash (clients
        // compare the issuer character for character).
        let public = config.server.public_url.as_deref().unwrap_or_default();
        as_config.issuer = public.trim_end_matches('/').to_owned();
    }
    if as_config.scopes_supported.is_empty() {
        as_config.scopes_supported = server.declared_scopes();
    }
    let info = server.settings().info.clone();
    let mut builder = mcp_auth::AuthorizationServer::builder(as_config.clone(), &canonical)
        .server_name(info.title.clone().unwrap_or_else(|| info.name.clone()));
    for path in other_endpoints(config) {
        builder = builder.endpoint(path);
    }
    if let Some(upstream) = upstream_login(config, &as_config.login)? {
        builder = builder.upstream(upstream);
    }
    // `[redis] url`: the rate limits are counted there, shared by every instance.
    #[cfg(feature = "redis")]
    if let Some(url) = &config.redis.url {
        builder = builder.redis_rate_limits(url.as_str(), config.redis.key_prefix.as_str());
    }
    // (Without the feature, `endpoints` refuses a `[redis] url`.)
    Ok((builder, as_config, canonical))
}

pub(super) fn authorization_server_error(error: mcp_auth::AuthorizationServerError) -> ConfigError {
    use mcp_auth::AuthorizationServerError as Error;
    match error {
        Error::Config(e) => auth_config_error(e),
        Error::Store(e) => ConfigError::Value {
            key: "auth.authorization_server.store",
            message: format!("cannot open the authorization store: {e}"),
        },
        Error::Key(e) => ConfigError::Value {
            key: "auth.authorization_server",
            message: format!("cannot load or create the signing key: {e}"),
        },
        Error::SealingKey(e) => {
            ConfigError::Value { key: "auth.authorization_server.sealing_key", message: e.to_string() }
        }
        other => ConfigError::Value { key: "auth.authorization_server", message: other.to_string() },
    }
}

/// Checks the `[auth]` settings of every mode without serving, opening
/// stores or creating files (`--check-config`).
pub(crate) fn check_auth(server: &Server, config: &Config) -> Result<(), ConfigError> {
    match auth_mode(config)? {
        MODE_AUTHORIZATION_SERVER => {
            let (builder, _, _) = authorization_server_builder(server, config)?;
            builder.validate().map_err(authorization_server_error)
        }
        mode => sync_auth(server, config, mode).map(drop),
    }
}

/// The upstream login `login` names, from its `[auth.github]` or
/// `[auth.oidc]` section; `None` for the development login.
fn upstream_login(
    config: &Config,
    login: &str,
) -> Result<Option<std::sync::Arc<dyn mcp_auth::UpstreamLogin>>, ConfigError> {
    let invalid = |origin: &str, e: toml::de::Error| ConfigError::Invalid {
        origin: Some(origin.into()),
        message: e.message().to_owned(),
    };
    Ok(match login {
        "github" => {
            let settings: mcp_auth::GitHubConfig =
                section(config, "github").try_into().map_err(|e| invalid("[auth.github]", e))?;
            Some(std::sync::Arc::new(mcp_auth::GitHubLogin::new(settings).map_err(auth_config_error)?))
        }
        "oidc" => {
            let settings: mcp_auth::OidcConfig =
                section(config, "oidc").try_into().map_err(|e| invalid("[auth.oidc]", e))?;
            Some(std::sync::Arc::new(mcp_auth::OidcLogin::new(settings).map_err(auth_config_error)?))
        }
        _ => None,
    })
}

/// An `mcp-auth` configuration error as ours, keeping the key it names.
pub(super) fn auth_config_error(error: mcp_auth::ConfigError) -> ConfigError {
    match error {
        mcp_auth::ConfigError::Invalid { key, message } => ConfigError::Value { key, message },
        mcp_auth::ConfigError::Missing { key, hint } => {
            ConfigError::Value { key, message: format!("is required: {hint}") }
        }
        other => ConfigError::Value { key: "auth.authorization_server", message: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use http::{Request, header};
    use tower::Service as _;

    use super::*;

    fn config(env: &[(&str, &str)]) -> Config {
        let base = [
            ("MCP_SERVER__BIND", "127.0.0.1:8080"),
            ("MCP_SERVER__PUBLIC_URL", "http://127.0.0.1:8080/"),
            ("MCP_AUTH__MODE", "authorization_server"),
            ("MCP_AUTH__AUTHORIZATION_SERVER__STORE", "memory"),
        ];
        let vars = base.iter().chain(env).map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::from_sources(None, vars).unwrap()
    }

    async fn get(app: &mut Router, path: &str, origin: Option<&str>) -> http::Response<Body> {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8080");
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        app.call(request.body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn json(response: http::Response<Body>) -> serde_json::Value {
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_sync_app_refuses_authorization_server_mode_with_a_clear_error() {
        let error = Server::new("t", "1").http_app(&config(&[])).unwrap_err();
        assert!(matches!(error, ConfigError::Value { key: "auth.mode", .. }), "{error}");
        assert!(error.to_string().contains("http_app_async"), "{error}");
    }

    #[test]
    fn an_unknown_mode_names_all_three() {
        let error = Server::new("t", "1").http_app(&config(&[("MCP_AUTH__MODE", "magic")])).unwrap_err();
        assert!(error.to_string().contains("\"authorization_server\""), "{error}");
    }

    #[tokio::test]
    async fn authorization_server_mode_mounts_the_oauth_endpoints_outside_the_gate() {
        let mut app = Server::new("t", "1").http_app_async(&config(&[])).await.unwrap();
        // The issuer is public_url without its trailing slash, and the PRM names it.
        let metadata = json(get(&mut app, "/.well-known/oauth-authorization-server", None).await).await;
        assert_eq!(metadata["issuer"], "http://127.0.0.1:8080");
        let prm = json(get(&mut app, "/.well-known/oauth-protected-resource/mcp", None).await).await;
        assert_eq!(prm["resource"], "http://127.0.0.1:8080/mcp");
        assert_eq!(prm["authorization_servers"], serde_json::json!(["http://127.0.0.1:8080"]));
        // The MCP endpoint (and anything else) is behind the gate.
        let mcp = get(&mut app, "/mcp", None).await;
        assert_eq!(mcp.status(), StatusCode::UNAUTHORIZED);
        assert!(mcp.headers().contains_key(header::WWW_AUTHENTICATE));
        // One set of CORS headers on the OAuth routes, from the outer layer.
        let cors =
            get(&mut app, "/.well-known/oauth-authorization-server", Some("http://localhost:3000")).await;
        assert_eq!(cors.headers().get_all(header::ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(), 1);
        assert_eq!(cors.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:3000");
        assert_eq!(cors.headers().get_all(header::VARY).iter().count(), 1);
        // The Host/Origin guard still covers them.
        let forbidden =
            get(&mut app, "/.well-known/oauth-authorization-server", Some("http://evil.example")).await;
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn a_redis_url_is_checked_at_startup_and_connected_on_first_use() {
        let unreachable = [("MCP_REDIS__URL", "redis://127.0.0.1:1/")];
        assert!(Server::new("t", "1").http_app_async(&config(&unreachable)).await.is_ok());
        let bad = [("MCP_REDIS__URL", "http://:hunter2@cache.internal/")];
        let error = Server::new("t", "1").http_app_async(&config(&bad)).await.unwrap_err();
        assert!(matches!(error, ConfigError::Value { key: "redis.url", .. }), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn without_the_redis_feature_a_redis_url_is_refused_not_ignored() {
        let redis = [("MCP_REDIS__URL", "redis://127.0.0.1:6379/")];
        let error = Server::new("t", "1").http_app_async(&config(&redis)).await.unwrap_err();
        assert!(matches!(error, ConfigError::Value { key: "redis.url", .. }), "{error}");
    }

    #[tokio::test]
    async fn an_invalid_authorization_server_setting_names_its_key() {
        let bad = [("MCP_AUTH__AUTHORIZATION_SERVER__LOGIN", "magic")];
        let error = Server::new("t", "1").http_app_async(&config(&bad)).await.unwrap_err();
        assert!(
            matches!(error, ConfigError::Value { key: "auth.authorization_server.login", .. }),
            "{error}"
        );
        let bad = [("MCP_AUTH__AUTHORIZATION_SERVER__TTL", "1")];
        let error = Server::new("t", "1").http_app_async(&config(&bad)).await.unwrap_err();
        assert!(error.to_string().contains("[auth.authorization_server]"), "{error}");
        assert!(error.to_string().contains("`ttl`"), "{error}");
    }
}
