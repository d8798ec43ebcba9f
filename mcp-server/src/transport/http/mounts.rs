//! Several servers in one HTTP application, each at its own path (`/fs/mcp`,
//! `/search/mcp`) with its own protected-resource metadata and token
//! audience, under one configuration: one Host/Origin guard, CORS and
//! timeout, and in `authorization_server` mode one authorization server
//! issuing tokens for each of them separately.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, ServiceExt as _};

use super::app::{
    Auth, Endpoint, MODE_AUTHORIZATION_SERVER, auth_config_error, auth_mode, authorization_server_builder,
    authorization_server_error, legacy_base, oauth_first, other_endpoints, outer_layers, sync_auth,
};
use super::guard::HostOriginPolicy;
use super::reply;
use crate::config::{Config, ConfigError};
use crate::server::Server;
use mcp_core::Identity;
use mcp_core::error::codes;

/// The well-known prefix of protected-resource metadata (RFC 9728 §3.1).
const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Servers to serve side by side, by the path of their MCP endpoint.
///
/// ```
/// use mcp_server::{config::Config, Server};
/// use mcp_server::transport::http::Mounts;
///
/// # async fn run() -> Result<(), mcp_server::config::ConfigError> {
/// let config = Config::from_sources(None, [("MCP_SERVER__BIND".into(), "127.0.0.1:0".into())])?;
/// let app = Mounts::new()
///     .mount("/fs/mcp", Server::new("fs", "1.0.0"))
///     .mount("/search/mcp", Server::new("search", "1.0.0"))
///     .http_app(&config)
///     .await?;
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Mounts {
    mounts: Vec<(String, Server)>,
    /// A configuration of its own per mount, when given.
    own: Vec<Option<Config>>,
    /// Who may use a mount, by its path, beyond what the token allows.
    admits: Vec<(String, Admit)>,
}

/// Decides whether an authenticated caller may use a mount at all.
type Admit = Arc<dyn Fn(Option<&Identity>) -> bool + Send + Sync>;

impl std::fmt::Debug for Mounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.mounts.iter().map(|(path, _)| path.as_str()).collect();
        f.debug_struct("Mounts").field("paths", &paths).finish_non_exhaustive()
    }
}

impl Mounts {
    /// No servers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `server` at `path`, which must sit in a folder of its own
    /// (`/<name>/mcp`): its legacy endpoints go beside it (`/<name>/sse`).
    #[must_use]
    pub fn mount(mut self, path: impl Into<String>, server: Server) -> Self {
        self.mounts.push((path.into(), server));
        self.own.push(None);
        self
    }

    /// [`mount`](Self::mount) with settings of its own: `config` stands in
    /// for the application's for this mount (the `scopes_supported` its
    /// metadata advertises, say), except the authorization server itself,
    /// which is the application's and shared.
    #[must_use]
    pub fn mount_with_config(mut self, path: impl Into<String>, server: Server, config: Config) -> Self {
        self.mounts.push((path.into(), server));
        self.own.push(Some(config));
        self
    }

    /// Lets only the callers `admit` accepts use the mount at `path`; the
    /// others get 403 (after authentication, so a missing or bad token still
    /// gets its 401 challenge).
    ///
    /// ```
    /// use mcp_server::{Identity, Server};
    /// use mcp_server::transport::http::Mounts;
    ///
    /// let mounts = Mounts::new()
    ///     .mount("/fs/mcp", Server::new("fs", "1.0.0"))
    ///     .admit("/fs/mcp", |who: Option<&Identity>| who.is_some_and(|w| w.subject == "github:583231"));
    /// # let _ = mounts;
    /// ```
    #[must_use]
    pub fn admit(
        mut self,
        path: impl Into<String>,
        admit: impl Fn(Option<&Identity>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.admits.push((path.into(), Arc::new(admit)));
        self
    }

    /// The application: each server as [`Server::http_app_async`] would
    /// serve it at its path, with the auth `config` names. In
    /// `authorization_server` mode one authorization server (at the root)
    /// issues tokens whose audience is the one endpoint they were asked for.
    pub async fn http_app(&self, config: &Config) -> Result<Router, ConfigError> {
        let configs = self.configs(config)?;
        let policy = HostOriginPolicy::from_config(config, config.bind_addr()?);
        let timeout = Duration::from_secs(config.http.request_timeout_secs.max(1));
        let mode = auth_mode(config)?;
        let mut mounted = Vec::with_capacity(self.mounts.len());
        if mode == MODE_AUTHORIZATION_SERVER {
            // The authorization server is the application's, at the first mount's path.
            let ((first_path, first), mut shared) = (&self.mounts[0], config.clone());
            first_path.clone_into(&mut shared.server.path);
            let (mut builder, _, _) = authorization_server_builder(first, &shared)?;
            for mount in &configs[1..] {
                builder = builder.resource(mount.server.path.clone(), other_endpoints(mount));
            }
            let auth_server = builder.build().await.map_err(authorization_server_error)?;
            for (index, ((path, server), mount)) in self.mounts.iter().zip(&configs).enumerate() {
                // Each endpoint's metadata advertises its own configuration's scopes.
                let layer = match (index, advertised_scopes(mount)) {
                    (0, None) => auth_server.layer(),
                    (0, Some(scopes)) => auth_server.layer_with_scopes(scopes),
                    (_, scopes) => auth_server.layer_for(path, scopes),
                };
                let layer = layer.map_err(auth_config_error)?;
                server.insert_state(auth_server.upstream_tokens());
                let endpoint = self.admitted(path, server.endpoints(mount)?.0);
                mounted.push(Mounted::new(mount, BoxCloneSyncService::new(layer.layer(endpoint))));
            }
            tracing::info!(issuer = %auth_server.issuer(), mounts = mounted.len(), "built-in OAuth authorization server");
            return Ok(outer_layers(oauth_first(&auth_server, dispatch(mounted)), policy, timeout));
        }
        for ((path, server), mount) in self.mounts.iter().zip(&configs) {
            let endpoint = self.admitted(path, server.endpoints(mount)?.0);
            let endpoint = match sync_auth(server, mount, mode)? {
                Auth::ResourceServer(layer) => BoxCloneSyncService::new(layer.layer(endpoint)),
                _ => endpoint,
            };
            mounted.push(Mounted::new(mount, endpoint));
        }
        Ok(outer_layers(dispatch(mounted), policy, timeout))
    }

    /// `endpoint` behind the mount's [`admit`](Self::admit) check, if it has one.
    fn admitted(&self, path: &str, endpoint: Endpoint) -> MountService {
        let Some((_, admit)) = self.admits.iter().find(|(p, _)| p == path) else {
            return BoxCloneSyncService::new(endpoint);
        };
        let admit = admit.clone();
        let check = axum::middleware::from_fn(move |request: Request<Body>, next: axum::middleware::Next| {
            let admitted = admit(request.extensions().get::<Arc<Identity>>().map(|who| &**who));
            async move {
                if admitted {
                    return next.run(request).await;
                }
                let text = "Forbidden: this caller may not use this server";
                reply::error(StatusCode::FORBIDDEN, None, codes::INVALID_REQUEST, text)
            }
        });
        BoxCloneSyncService::new(check.layer(endpoint))
    }

    /// The configuration of each mount: `config` at the mount's path.
    fn configs(&self, config: &Config) -> Result<Vec<Config>, ConfigError> {
        if self.mounts.is_empty() {
            return Err(ConfigError::Value { key: "server.path", message: "nothing is mounted".into() });
        }
        if let Some((path, _)) = self.admits.iter().find(|(p, _)| !self.mounts.iter().any(|(m, _)| m == p)) {
            return Err(ConfigError::Value {
                key: "server.path",
                message: format!("nothing is mounted at {path:?}"),
            });
        }
        let mut configs: Vec<Config> = Vec::with_capacity(self.mounts.len());
        for ((path, _), own) in self.mounts.iter().zip(&self.own) {
            let mut mount = own.clone().unwrap_or_else(|| config.clone());
            mount.server.path = path.clone();
            if legacy_base(&mount).is_empty() && self.mounts.len() > 1 {
                return Err(ConfigError::Value {
                    key: "server.path",
                    message: format!(
                        "{path:?} is at the root: give each mount a folder of its own (/<name>/mcp)"
                    ),
                });
            }
            if configs.iter().any(|other| legacy_base(other) == legacy_base(&mount)) {
                return Err(ConfigError::Value {
                    key: "server.path",
                    message: format!("{path:?} shares its folder with another mount"),
                });
            }
            configs.push(mount);
        }
        Ok(configs)
    }
}

/// `[auth.authorization_server] scopes_supported` of a mount's configuration.
fn advertised_scopes(config: &Config) -> Option<Vec<String>> {
    let scopes = config.auth.get(MODE_AUTHORIZATION_SERVER)?.get("scopes_supported")?.as_array()?;
    Some(scopes.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// A mount's endpoints behind its own checks.
type MountService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// One mounted server: the paths it owns, and its endpoints.
struct Mounted {
    /// The folder of its endpoint: `/fs` for `/fs/mcp` (`""`: everything).
    folder: String,
    service: MountService,
}

impl Mounted {
    fn new(config: &Config, service: MountService) -> Self {
        Self { folder: legacy_base(config).to_owned(), service }
    }

    /// Whether `path` is this mount's: under its folder, or its metadata
    /// under the well-known prefix.
    fn owns(&self, path: &str) -> bool {
        if self.folder.is_empty() {
            return true;
        }
        let under =
            |base: &str| base.strip_prefix(self.folder.as_str()).is_some_and(|rest| rest.starts_with('/'));
        under(path) || path.strip_prefix(PROTECTED_RESOURCE).is_some_and(under)
    }
}

/// Routes each request to the mount whose path it names; 404 otherwise. A
/// plain service, not a `Router`: a request pays for no routing step here.
fn dispatch(
    mounts: Vec<Mounted>,
) -> impl tower::Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    let mounts = Arc::new(mounts);
    tower::service_fn(move |request: Request<Body>| {
        let mounts = mounts.clone();
        async move {
            let path = request.uri().path();
            let Some(mount) = mounts.iter().find(|m| m.owns(path)) else {
                let mut response = Response::new(Body::from("Not Found"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return Ok::<_, Infallible>(response);
            };
            mount.service.clone().oneshot(request).await
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_owns_its_folder_and_its_metadata_only() {
        let fs = Mounted { folder: "/fs".into(), service: BoxCloneSyncService::new(Router::new()) };
        for path in ["/fs/mcp", "/fs/sse", "/fs/messages", "/.well-known/oauth-protected-resource/fs/mcp"] {
            assert!(fs.owns(path), "{path}");
        }
        for path in ["/fsx/mcp", "/fs", "/mcp", "/.well-known/oauth-protected-resource", "/other/fs/mcp"] {
            assert!(!fs.owns(path), "{path}");
        }
    }

    #[test]
    fn mounts_need_folders_of_their_own() {
        let config = Config::default();
        let two = |a: &str, b: &str| {
            Mounts::new()
                .mount(a, Server::new("a", "1"))
                .mount(b, Server::new("b", "1"))
                .configs(&config)
                .map(drop)
        };
        assert!(two("/a/mcp", "/b/mcp").is_ok());
        assert!(two("/mcp", "/b/mcp").is_err());
        assert!(two("/a/mcp", "/a/other").is_err());
        assert!(Mounts::new().configs(&config).is_err());
    }
}
