//! The gateway's HTTP application: one MCP endpoint per upstream at
//! `/<name>/mcp` (with its legacy `/<name>/sse` and `/<name>/messages`),
//! each a full server of this framework with its own protected-resource
//! metadata and audience ([`Mounts`]), in front of the upstream it
//! forwards to.

use std::sync::Arc;

use axum::Router;
use mcp_server::Server;
use mcp_server::config::{Config, ConfigError};
use mcp_server::transport::http::Mounts;

use crate::config::{GatewayConfig, GatewayConfigError, UpstreamConfig};
use crate::mirror;
use crate::upstream::Upstream;

/// Longest wait at start for the upstreams' first lists.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

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
    /// mounts its endpoint at `/<name>/mcp`.
    pub async fn build(config: &Config) -> Result<Self, GatewayError> {
        let gateway = GatewayConfig::from_app(&config.app)?;
        let config = &with_all_scopes(config, &gateway);
        let mut mounts = Mounts::new();
        let mut upstreams = Vec::new();
        let mut first_syncs = Vec::new();
        for (name, upstream_config) in &gateway.upstreams {
            let upstream = Upstream::start(name, upstream_config.clone())
                .map_err(|message| GatewayError::Upstream { name: name.clone(), message })?;
            let server = Server::new(format!("mcp-gateway/{name}"), env!("CARGO_PKG_VERSION"));
            let policy = Arc::new(upstream_config.clone());
            mirror::pass_unknown_tools(&server, upstream.clone(), policy.clone());
            first_syncs.push(mirror::keep_in_sync(server.clone(), upstream.clone(), policy));
            let path = format!("/{name}/mcp");
            tracing::info!(upstream = %name, %path, "mounted");
            mounts = mounts.mount_with_config(path.clone(), server, mount_config(config, upstream_config));
            if !upstream_config.allowed_users.is_empty() {
                if config.auth.get("mode").and_then(toml::Value::as_str).is_none_or(|mode| mode == "none") {
                    return Err(GatewayError::Upstream {
                        name: name.clone(),
                        message: "allowed_users needs authentication: set [auth] mode".into(),
                    });
                }
                let allowed = upstream_config.allowed_users.clone();
                mounts = mounts.admit(path, move |who| who.is_some_and(|who| allowed.contains(&who.subject)));
            }
            upstreams.push(upstream);
        }
        let router = mounts.http_app(config).await?;
        // Serve once every upstream's tools are known, or after a while
        // without the ones that are slow to start (they join when ready).
        let synced = async {
            for first in first_syncs {
                let _ = first.await;
            }
        };
        if tokio::time::timeout(STARTUP_WAIT, synced).await.is_err() {
            tracing::warn!(
                "some upstreams are not ready after {STARTUP_WAIT:?}; serving without them for now"
            );
        }
        Ok(Self { router, upstreams })
    }
}

/// Every scope an upstream's policy names.
fn policy_scopes(upstream: &UpstreamConfig) -> Vec<String> {
    let mut scopes: Vec<String> = upstream.scopes.clone();
    for policy in upstream.tools.values() {
        scopes.extend(policy.scopes.iter().cloned());
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

/// Sets `scopes_supported` of `[auth.<section>]`, unless it is set already.
fn advertise(config: &mut Config, section: &str, scopes: Vec<String>) {
    if let Some(toml::Value::Table(table)) = config.auth.get_mut(section)
        && !table.contains_key("scopes_supported")
        && !scopes.is_empty()
    {
        let scopes = scopes.into_iter().map(toml::Value::String).collect();
        table.insert("scopes_supported".into(), toml::Value::Array(scopes));
    }
}

/// The authorization server, shared by every upstream, offers the scopes
/// of all of them.
fn with_all_scopes(config: &Config, gateway: &GatewayConfig) -> Config {
    let mut all: Vec<String> = gateway.upstreams.values().flat_map(policy_scopes).collect();
    all.sort();
    all.dedup();
    let mut config = config.clone();
    advertise(&mut config, "authorization_server", all);
    config
}

/// One upstream's endpoint advertises the scopes its own policy names.
fn mount_config(config: &Config, upstream: &UpstreamConfig) -> Config {
    let mut mount = config.clone();
    advertise(&mut mount, "resource_server", policy_scopes(upstream));
    // The shared authorization server offers every upstream's scopes; this
    // endpoint's metadata names its own.
    if let Some(toml::Value::Table(table)) = mount.auth.get_mut("authorization_server") {
        let scopes = policy_scopes(upstream).into_iter().map(toml::Value::String).collect();
        table.insert("scopes_supported".into(), toml::Value::Array(scopes));
    }
    mount
}
