//! The gateway's HTTP application: one MCP endpoint per upstream at
//! `/<name>/mcp` (with its legacy `/<name>/sse` and `/<name>/messages`),
//! each a full server of this framework with its own protected-resource
//! metadata and audience ([`Mounts`]), in front of the upstream it
//! forwards to.

use std::sync::Arc;

use axum::Router;
use mcp_server::config::{Config, ConfigError};
use mcp_server::transport::http::Mounts;
use mcp_server::{Identity, Server};

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
        let config = &shared_config(config, &gateway);
        let mut mounts = Mounts::new();
        let mut upstreams = Vec::new();
        let mut first_syncs = Vec::new();
        for (name, upstream_config) in &gateway.upstreams {
            let upstream = Upstream::start(name, upstream_config.clone())
                .map_err(|message| GatewayError::Upstream { name: name.clone(), message })?;
            let server = Server::new(format!("mcp-gateway/{name}"), env!("CARGO_PKG_VERSION"));
            let policy = Arc::new(upstream_config.clone());
            mirror::pass_unknown_tools(&server, upstream.clone(), policy.clone());
            mirror::relay_resource_updates(&server, &upstream);
            first_syncs.push(mirror::keep_in_sync(server.clone(), upstream.clone(), policy));
            let path = format!("/{name}/mcp");
            tracing::info!(upstream = %name, %path, "mounted");
            mounts = mounts.mount_with_config(path.clone(), server, mount_config(config, upstream_config));
            if let Some(admit) = admission(config, name, upstream_config)? {
                mounts = mounts.admit(path, admit);
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

/// Who may use an upstream, when its policy limits it (`allowed_users`,
/// `allowed_orgs`), after checking the policy can be enforced with the
/// configured authentication.
fn admission(
    config: &Config,
    name: &str,
    upstream: &UpstreamConfig,
) -> Result<Option<impl Fn(Option<&Identity>) -> bool + Send + Sync + 'static>, GatewayError> {
    let refuse =
        |message: &str| Err(GatewayError::Upstream { name: name.to_owned(), message: message.to_owned() });
    let mode = config.auth.get("mode").and_then(toml::Value::as_str).unwrap_or("none");
    let login =
        config.auth.get("authorization_server").and_then(|s| s.get("login")).and_then(toml::Value::as_str);
    let built_in = mode == "authorization_server";
    let github = built_in && login == Some("github");
    if upstream.login_token && !(built_in && matches!(login, Some("github" | "oidc"))) {
        return refuse(
            "login_token needs the built-in authorization server with an upstream login: \
             [auth] mode = \"authorization_server\" and login = \"github\" or \"oidc\"",
        );
    }
    if !upstream.allowed_orgs.is_empty() && !github {
        return refuse(
            "allowed_orgs needs GitHub login: [auth] mode = \"authorization_server\" and login = \"github\"",
        );
    }
    if upstream.allowed_users.is_empty() && upstream.allowed_orgs.is_empty() {
        return Ok(None);
    }
    if mode == "none" {
        return refuse("allowed_users needs authentication: set [auth] mode");
    }
    let (users, orgs) = (upstream.allowed_users.clone(), upstream.allowed_orgs.clone());
    Ok(Some(move |who: Option<&Identity>| {
        who.is_some_and(|who| users.contains(&who.subject) || member_of_any(who, &orgs))
    }))
}

/// Whether the caller's `orgs` claim (recorded at sign-in) names one of `orgs`.
fn member_of_any(who: &Identity, orgs: &[String]) -> bool {
    let memberships = who.claims.get("orgs").and_then(json_strings);
    memberships
        .is_some_and(|memberships| memberships.iter().any(|m| orgs.iter().any(|o| o.eq_ignore_ascii_case(m))))
}

/// The strings of a JSON array.
fn json_strings(value: &serde_json::Value) -> Option<Vec<&str>> {
    Some(value.as_array()?.iter().filter_map(serde_json::Value::as_str).collect())
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
/// of all of them, and its GitHub login records membership of every
/// organization an upstream admits.
fn shared_config(config: &Config, gateway: &GatewayConfig) -> Config {
    let mut all: Vec<String> = gateway.upstreams.values().flat_map(policy_scopes).collect();
    all.sort();
    all.dedup();
    let mut config = config.clone();
    advertise(&mut config, "authorization_server", all);
    let mut orgs: Vec<String> =
        gateway.upstreams.values().flat_map(|u| u.allowed_orgs.iter().cloned()).collect();
    orgs.sort();
    orgs.dedup();
    if !orgs.is_empty()
        && let toml::Value::Table(github) =
            config.auth.entry("github").or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        let recorded = github.entry("orgs_claim").or_insert_with(|| toml::Value::Array(Vec::new()));
        if let toml::Value::Array(recorded) = recorded {
            for org in orgs {
                if !recorded.iter().any(|r| r.as_str() == Some(org.as_str())) {
                    recorded.push(toml::Value::String(org));
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).expect("a configuration")
    }

    fn upstream(text: &str) -> UpstreamConfig {
        toml::from_str(text).expect("an upstream")
    }

    const GITHUB: &str =
        "[auth]\nmode = \"authorization_server\"\n[auth.authorization_server]\nlogin = \"github\"";

    #[test]
    fn org_and_login_token_policies_need_a_login_that_can_enforce_them() {
        let orgs = upstream("url = \"http://h/mcp\"\nallowed_orgs = [\"acme\"]");
        let token = upstream("url = \"http://h/mcp\"\nlogin_token = true");
        let oidc = "[auth]\nmode = \"authorization_server\"\n[auth.authorization_server]\nlogin = \"oidc\"";
        let resource_server = "[auth]\nmode = \"resource_server\"";
        assert!(admission(&config(GITHUB), "a", &orgs).is_ok());
        assert!(admission(&config(GITHUB), "a", &token).is_ok());
        assert!(admission(&config(oidc), "a", &token).is_ok());
        assert!(admission(&config(oidc), "a", &orgs).is_err(), "no organizations without GitHub");
        assert!(admission(&config(resource_server), "a", &orgs).is_err());
        assert!(admission(&config(resource_server), "a", &token).is_err(), "no login token to send");
        assert!(admission(&config(""), "a", &upstream("command = \"x\"\nallowed_users = [\"u\"]")).is_err());
    }

    #[test]
    fn a_user_or_an_organization_admits() {
        let policy =
            upstream("url = \"http://h/mcp\"\nallowed_users = [\"github:1\"]\nallowed_orgs = [\"Acme\"]");
        let admit = admission(&config(GITHUB), "a", &policy).expect("enforceable").expect("a limit");
        let mut member = Identity::new("github:2");
        member.claims.insert("orgs".into(), serde_json::json!(["acme"]));
        let mut outsider = Identity::new("github:3");
        outsider.claims.insert("orgs".into(), serde_json::json!(["other"]));
        assert!(admit(Some(&Identity::new("github:1"))));
        assert!(admit(Some(&member)), "organization names compare as GitHub does, case aside");
        assert!(!admit(Some(&outsider)));
        assert!(!admit(Some(&Identity::new("github:4"))), "no orgs claim, no membership");
        assert!(!admit(None));
        assert!(admission(&config(GITHUB), "a", &upstream("command = \"x\"")).expect("fine").is_none());
    }

    #[test]
    fn the_github_login_records_every_organization_an_upstream_admits() {
        let gateway = GatewayConfig::from_app(
            &toml::from_str(
                "[upstreams.a]\ncommand = \"x\"\nallowed_orgs = [\"acme\"]\n\
                 [upstreams.b]\ncommand = \"y\"\nallowed_orgs = [\"acme\", \"beta\"]",
            )
            .expect("TOML"),
        )
        .expect("a gateway");
        let shared =
            shared_config(&config(&format!("{GITHUB}\n[auth.github]\norgs_claim = [\"own\"]")), &gateway);
        let recorded = shared.auth["github"]["orgs_claim"].as_array().expect("a list").clone();
        let recorded: Vec<&str> = recorded.iter().filter_map(toml::Value::as_str).collect();
        assert_eq!(recorded, ["own", "acme", "beta"]);
    }
}
