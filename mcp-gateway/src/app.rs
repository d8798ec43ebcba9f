//! The gateway's HTTP application: one MCP endpoint per upstream at
//! `/<name>/mcp` (with its legacy `/<name>/sse` and `/<name>/messages`),
//! each a full server of this framework with its own protected-resource
//! metadata and audience, in front of the upstream it forwards to.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use mcp_server::Server;
use mcp_server::config::{Config, ConfigError};
use tower::ServiceExt as _;

use crate::config::{GatewayConfig, GatewayConfigError, UpstreamConfig};
use crate::mirror;
use crate::upstream::Upstream;

/// The well-known prefix of protected-resource metadata (RFC 9728 §3.1).
const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The `[app.upstreams]` settings.
    #[error(transparent)]
    Upstreams(#[from] GatewayConfigError),
    /// The framework's settings (`[server]`, `[http]`, `[auth]`…).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An upstream could not be set up.
    #[error("upstream {name:?}: {message}")]
    Upstream {
        /// The upstream's name.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// A built gateway: its router and the upstreams it supervises.
#[derive(Debug)]
pub struct Gateway {
    /// Serve it with `axum::serve`.
    pub router: Router,
    /// The upstreams, in name order.
    pub upstreams: Vec<Upstream>,
}

impl Gateway {
    /// Builds the gateway `config` describes: starts every upstream and
    /// mounts its endpoint.
    pub async fn build(config: &Config) -> Result<Self, GatewayError> {
        let gateway = GatewayConfig::from_app(&config.app)?;
        if config.auth.get("mode").and_then(toml::Value::as_str) == Some("authorization_server") {
            return Err(GatewayError::Config(ConfigError::Value {
                key: "auth.mode",
                message: "the gateway serves \"none\" and \"resource_server\" for now; run the \
                          authorization server beside it and point [auth.resource_server] issuer at it"
                    .into(),
            }));
        }
        let mut mounts = Vec::new();
        let mut upstreams = Vec::new();
        for (name, upstream_config) in &gateway.upstreams {
            let upstream = Upstream::start(name, upstream_config.clone())
                .map_err(|message| GatewayError::Upstream { name: name.clone(), message })?;
            let server = Server::new(format!("mcp-gateway/{name}"), env!("CARGO_PKG_VERSION"));
            mirror::keep_in_sync(server.clone(), upstream.clone(), Arc::new(upstream_config.clone()));
            let mount = mount_config(config, name, upstream_config);
            let router = server.http_app_async(&mount).await?;
            tracing::info!(upstream = %name, path = %mount.server.path, "mounted");
            mounts.push(Mount { prefix: format!("/{name}"), router });
            upstreams.push(upstream);
        }
        Ok(Self { router: dispatch(mounts), upstreams })
    }
}

/// The configuration of one upstream's endpoint: the gateway's, at
/// `/<name>/mcp`, advertising the scopes its policy names.
fn mount_config(config: &Config, name: &str, upstream: &UpstreamConfig) -> Config {
    let mut mount = config.clone();
    mount.server.path = format!("/{name}/mcp");
    let mut scopes: Vec<String> = upstream.scopes.clone();
    for policy in upstream.tools.values() {
        scopes.extend(policy.scopes.iter().cloned());
    }
    scopes.sort();
    scopes.dedup();
    if let Some(toml::Value::Table(rs)) = mount.auth.get_mut("resource_server")
        && !rs.contains_key("scopes_supported")
        && !scopes.is_empty()
    {
        rs.insert(
            "scopes_supported".into(),
            toml::Value::Array(scopes.into_iter().map(toml::Value::String).collect()),
        );
    }
    mount
}

struct Mount {
    /// `/<name>`
    prefix: String,
    router: Router,
}

impl Mount {
    /// Whether `path` is this mount's: under `/<name>/`, or its metadata
    /// under the well-known prefix.
    fn owns(&self, path: &str) -> bool {
        let under =
            |base: &str| base.strip_prefix(self.prefix.as_str()).is_some_and(|rest| rest.starts_with('/'));
        under(path) || path.strip_prefix(PROTECTED_RESOURCE).is_some_and(under)
    }
}

/// Routes each request to the mount whose path it names; 404 otherwise.
fn dispatch(mounts: Vec<Mount>) -> Router {
    let mounts = Arc::new(mounts);
    let service = tower::service_fn(move |request: Request<Body>| {
        let mounts = mounts.clone();
        async move {
            let path = request.uri().path();
            let Some(mount) = mounts.iter().find(|m| m.owns(path)) else {
                let mut response = Response::new(Body::from("Not Found"));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return Ok::<_, Infallible>(response);
            };
            mount.router.clone().oneshot(request).await
        }
    });
    Router::new().fallback_service(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_owns_its_paths_and_its_metadata_only() {
        let fs = Mount { prefix: "/fs".into(), router: Router::new() };
        for path in ["/fs/mcp", "/fs/sse", "/fs/messages", "/.well-known/oauth-protected-resource/fs/mcp"] {
            assert!(fs.owns(path), "{path}");
        }
        for path in ["/fsx/mcp", "/fs", "/mcp", "/.well-known/oauth-protected-resource", "/other/fs/mcp"] {
            assert!(!fs.owns(path), "{path}");
        }
    }
}
