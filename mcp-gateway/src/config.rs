//! `[app.upstreams.<name>]`: the MCP servers the gateway fronts, each
//! mounted at `/<name>/mcp`, and the policy applied before forwarding.
//!
//! ```
//! use mcp_gateway::config::{GatewayConfig, UpstreamKind};
//!
//! let app: toml::Table = toml::from_str(r#"
//!     [upstreams.fs]
//!     command = "npx"
//!     args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]
//!     scopes = ["fs:read"]
//!     hide = ["write_file"]
//!
//!     [upstreams.fs.tools.read_text_file]
//!     rename = "read"
//!
//!     [upstreams.search]
//!     url = "https://search.internal/mcp"
//!     headers = { "X-Api-Key" = "secret" }
//! "#).unwrap();
//! let gateway = GatewayConfig::from_app(&app).unwrap();
//! assert_eq!(gateway.upstreams["fs"].kind().unwrap(), UpstreamKind::Stdio);
//! assert_eq!(gateway.upstreams["search"].kind().unwrap(), UpstreamKind::StreamableHttp);
//! assert_eq!(gateway.upstreams["fs"].exposed_name("read_text_file"), Some("read".to_owned()));
//! assert_eq!(gateway.upstreams["fs"].exposed_name("write_file"), None);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why the gateway's settings cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    /// A key has a wrong type or an unknown name.
    #[error("[app.upstreams]: {0}")]
    Invalid(String),
    /// An upstream's settings contradict each other or are missing.
    #[error("[app.upstreams.{name}]: {message}")]
    Upstream {
        /// The upstream's name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// Every upstream, by the name it is mounted under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// `[app.upstreams.<name>]`
    pub upstreams: BTreeMap<String, UpstreamConfig>,
}

/// How an upstream is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UpstreamKind {
    /// A command spawned by the gateway, speaking MCP on stdin/stdout.
    Stdio,
    /// A Streamable HTTP endpoint (MCP 2025-03-26 and later).
    StreamableHttp,
    /// A legacy HTTP+SSE endpoint (MCP 2024-11-05): the URL of its `GET /sse`.
    Sse,
}

/// One upstream MCP server and its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// The program to spawn (stdio upstreams).
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for it (the gateway's own are inherited).
    pub env: BTreeMap<String, String>,
    /// The URL of an HTTP upstream.
    pub url: Option<String>,
    /// `"streamable_http"` (the default for a URL) or `"sse"`.
    pub transport: Option<UpstreamKind>,
    /// Headers sent with every request to an HTTP upstream, such as an API
    /// key. The client's `Authorization` header is never forwarded.
    pub headers: BTreeMap<String, String>,
    /// Scopes every call to this upstream needs.
    pub scopes: Vec<String>,
    /// Sends the caller's subject to this HTTP upstream in this header (such
    /// as `X-Forwarded-User`) with every call; without it nothing about the
    /// caller is sent. The upstream must trust the gateway to set it.
    pub identity_header: Option<String>,
    /// The only callers that may use this upstream, by the token's subject
    /// (`github:583231` with GitHub login: the numeric id, which a rename
    /// does not change); others get 403. Empty: every authenticated caller.
    pub allowed_users: Vec<String>,
    /// Members of these GitHub organizations may use this upstream too
    /// (with `allowed_users`, either admits). Needs the built-in
    /// authorization server with GitHub login, which then records each
    /// user's membership of them at sign-in, in the tokens' `orgs` claim.
    pub allowed_orgs: Vec<String>,
    /// Sends each caller's own token from the upstream login (the GitHub or
    /// OpenID provider the built-in authorization server signed them in
    /// with) as `Authorization: Bearer` with that caller's calls to this
    /// HTTP upstream, such as a server that calls GitHub's API for its user.
    /// The gateway's own requests (initialize, lists) carry only `headers`.
    pub login_token: bool,
    /// Upstream tools not offered at all.
    pub hide: Vec<String>,
    /// Per-tool policy, by the upstream's tool name.
    pub tools: BTreeMap<String, ToolPolicy>,
    /// Longest a forwarded request may take, in seconds (default 60).
    pub timeout_secs: u64,
    /// Most requests in flight to this upstream at once (default 32); more wait.
    pub max_concurrency: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            url: None,
            transport: None,
            headers: BTreeMap::new(),
            scopes: Vec::new(),
            allowed_users: Vec::new(),
            allowed_orgs: Vec::new(),
            login_token: false,
            identity_header: None,
            hide: Vec::new(),
            tools: BTreeMap::new(),
            timeout_secs: 60,
            max_concurrency: 32,
        }
    }
}

/// The policy of one upstream tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ToolPolicy {
    /// Scopes a call of this tool needs, besides the upstream's.
    pub scopes: Vec<String>,
    /// The name clients see instead of the upstream's.
    pub rename: Option<String>,
}

impl GatewayConfig {
    /// Reads the gateway's settings from the `[app]` table of the
    /// configuration, and checks every upstream.
    pub fn from_app(app: &toml::Table) -> Result<Self, GatewayConfigError> {
        let config: Self = toml::Value::Table(app.clone())
            .try_into()
            .map_err(|e: toml::de::Error| GatewayConfigError::Invalid(e.message().to_owned()))?;
        if config.upstreams.is_empty() {
            return Err(GatewayConfigError::Invalid(
                "no upstream: add an [app.upstreams.<name>] section with `command` or `url`".into(),
            ));
        }
        for (name, upstream) in &config.upstreams {
            let invalid = |message: String| GatewayConfigError::Upstream { name: name.clone(), message };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid("the name becomes a URL path: use letters, digits, `-` and `_`".into()));
            }
            let kind = upstream.kind().map_err(invalid)?;
            if let Some(header) = &upstream.identity_header {
                if kind == UpstreamKind::Stdio {
                    return Err(invalid(
                        "identity_header needs an HTTP upstream: stdio has no headers".into(),
                    ));
                }
                if http::HeaderName::try_from(header.as_str()).is_err()
                    || header.eq_ignore_ascii_case("authorization")
                {
                    return Err(invalid(format!(
                        "identity_header {header:?} is not a header the gateway may set"
                    )));
                }
            }
            if upstream.login_token && kind == UpstreamKind::Stdio {
                return Err(invalid(
                    "login_token needs an HTTP upstream: a stdio command is shared by every caller".into(),
                ));
            }
            upstream.check_names().map_err(invalid)?;
        }
        Ok(config)
    }
}

impl UpstreamConfig {
    /// How the upstream is reached: `command` for stdio, `url` for HTTP.
    pub fn kind(&self) -> Result<UpstreamKind, String> {
        match (&self.command, &self.url, self.transport) {
            (Some(_), None, None | Some(UpstreamKind::Stdio)) => Ok(UpstreamKind::Stdio),
            (None, Some(url), kind) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("url {url:?} must be http:// or https://"));
                }
                reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
                match kind {
                    None | Some(UpstreamKind::StreamableHttp) => Ok(UpstreamKind::StreamableHttp),
                    Some(UpstreamKind::Sse) => Ok(UpstreamKind::Sse),
                    Some(UpstreamKind::Stdio) => {
                        Err("transport = \"stdio\" needs `command`, not `url`".into())
                    }
                }
            }
            (Some(_), Some(_), _) => Err("set `command` or `url`, not both".into()),
            (Some(_), None, Some(_)) => Err("a `command` upstream speaks stdio; drop `transport`".into()),
            (None, None, _) => Err("set `command` (stdio) or `url` (HTTP)".into()),
        }
    }

    /// The name clients see for the upstream tool `name`; `None` when hidden.
    pub fn exposed_name(&self, name: &str) -> Option<String> {
        if self.hide.iter().any(|hidden| hidden == name) {
            return None;
        }
        Some(self.tools.get(name).and_then(|t| t.rename.clone()).unwrap_or_else(|| name.to_owned()))
    }

    /// The scopes a call of the upstream tool `name` needs.
    pub fn scopes_for(&self, name: &str) -> Vec<String> {
        let mut scopes = self.scopes.clone();
        for scope in self.tools.get(name).map(|t| t.scopes.as_slice()).unwrap_or_default() {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }

    /// Two upstream tools may not be offered under the same name.
    fn check_names(&self) -> Result<(), String> {
        let mut renamed: BTreeMap<&str, &str> = BTreeMap::new();
        for (original, policy) in &self.tools {
            if let Some(new) = policy.rename.as_deref()
                && let Some(other) = renamed.insert(new, original)
            {
                return Err(format!("tools {other:?} and {original:?} are both renamed to {new:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, GatewayConfigError> {
        GatewayConfig::from_app(&toml::from_str(text).expect("TOML"))
    }

    #[test]
    fn each_upstream_is_a_command_or_a_url() {
        assert!(parse("[upstreams.a]\ncommand = \"x\"").is_ok());
        assert!(parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/sse\"\ntransport = \"sse\"").is_ok());
        for bad in [
            "[upstreams.a]\n",
            "[upstreams.a]\ncommand = \"x\"\nurl = \"http://h/mcp\"",
            "[upstreams.a]\nurl = \"ftp://h/mcp\"",
            "[upstreams.a]\ncommand = \"x\"\ntransport = \"sse\"",
            "[upstreams.\"a b\"]\ncommand = \"x\"",
            "[upstreams.a]\ncommand = \"x\"\nfrobnicate = 1",
            "[upstreams.a]\ncommand = \"x\"\nidentity_header = \"X-User\"",
            "[upstreams.a]\nurl = \"http://h/mcp\"\nidentity_header = \"Authorization\"",
            "[upstreams.a]\nurl = \"http://h/mcp\"\nidentity_header = \"bad header\"",
            "[upstreams.a]\ncommand = \"x\"\nlogin_token = true",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let error = parse("[upstreams.fs]\n").unwrap_err().to_string();
        assert!(error.starts_with("[app.upstreams.fs]"), "{error}");
    }

    #[test]
    fn scopes_add_up_and_renames_stay_distinct() {
        let config = parse(
            "[upstreams.a]\ncommand = \"x\"\nscopes = [\"a\"]\n[upstreams.a.tools.t]\nscopes = [\"a\", \"t\"]",
        )
        .unwrap();
        assert_eq!(config.upstreams["a"].scopes_for("t"), ["a", "t"]);
        assert_eq!(config.upstreams["a"].scopes_for("other"), ["a"]);
        let clash = "[upstreams.a]\ncommand = \"x\"\n[upstreams.a.tools.x]\nrename = \"y\"\n[upstreams.a.tools.z]\nrename = \"y\"";
        assert!(parse(clash).is_err());
    }
}
