//! Configuration: one TOML file, overridable key by key from the environment.
//!
//! Every key `key` of section `[section]` can be set with the environment
//! variable `MCP_<SECTION>__<KEY>` (upper case; nested sections join with
//! `__`), which wins over the file. Values are read as TOML (`8080`, `true`,
//! `["a", "b"]`) and fall back to a plain string; list keys also accept a
//! comma-separated string.
//!
//! ```
//! use mcp_server::config::Config;
//!
//! let file = r#"
//!     [server]
//!     bind = "127.0.0.1:8080"
//!
//!     [http]
//!     allowed_origins = ["https://app.example.com"]
//! "#;
//! let env = [("MCP_HTTP__REQUEST_TIMEOUT_SECS".to_string(), "30".to_string())];
//! let config = Config::from_sources(Some(("mcp.toml", file)), env).unwrap();
//! assert_eq!(config.server.bind.as_deref(), Some("127.0.0.1:8080"));
//! assert_eq!(config.http.request_timeout_secs, 30);
//! assert_eq!(config.server.path, "/mcp");
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

/// The whole configuration. Its `Debug` form hides secrets.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where and as what the server is reachable.
    pub server: ServerSection,
    /// HTTP transport settings.
    pub http: HttpSection,
    /// Legacy session limits.
    pub sessions: SessionsSection,
    /// Redis, shared by several instances of one server (optional).
    pub redis: RedisSection,
    /// Authorization settings, read by the auth layer (`mcp-auth`).
    pub auth: toml::Table,
    /// The application's own settings (`[app]`, `MCP_APP__<KEY>`): the
    /// framework ignores them and hands them to the code that reads them.
    pub app: toml::Table,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        mask_secrets(&mut shown);
        write!(f, "Config {shown}")
    }
}

/// Whether a configuration key holds a secret: `client_secret`,
/// `client_secret_hash`, `password`, `private_key`, `sealing_key`,
/// `request_state_key`, `api_token`… but not a file path (`signing_key_file`)
/// or a setting about tokens (`access_token_ttl_secs`, `token_url`).
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if key.ends_with("_file") || key.ends_with("_path") {
        return false;
    }
    ["secret", "password", "private_key"].iter().any(|s| key.contains(s))
        || key.ends_with("_key")
        || key.ends_with("token")
        || key == "key"
}

/// Replaces the value of every key naming a secret (see [`is_secret_key`]),
/// every value of a `headers` table (credentials sent upstream, such as
/// `Authorization` or `X-Api-Key`), and the password of any URL (a
/// `postgres://user:password@host/db` store), so printed or logged
/// configuration leaks nothing.
pub(crate) fn mask_secrets(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => {
            if let Some(masked) = mask_url_password(text) {
                *text = masked;
            }
        }
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "headers"
                    && let serde_json::Value::Object(headers) = v
                {
                    headers.values_mut().for_each(|h| *h = serde_json::Value::String("***".into()));
                    continue;
                }
                let secret = is_secret_key(key);
                if secret && !v.is_null() {
                    *v = serde_json::Value::String("***".into());
                } else {
                    mask_secrets(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// `scheme://user:***@host…` for a URL with a password in its userinfo
/// (RFC 3986 §3.2.1); `None` for anything else.
fn mask_url_password(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..]))
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSection {
    /// Address to serve HTTP on, such as `127.0.0.1:8080`. Without it the
    /// server speaks stdio.
    pub bind: Option<String>,
    /// The canonical public URL of the server (scheme, host, port), such as
    /// `https://mcp.example.com`. The MCP endpoint's URL is this plus `path`.
    pub public_url: Option<String>,
    /// The path of the MCP endpoint.
    pub path: String,
    /// The secret sealing multi round-trip `requestState`: 32 bytes, base64.
    /// Give every instance behind one load balancer the same key; without
    /// one, each process makes a random key.
    pub request_state_key: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self { bind: None, public_url: None, path: "/mcp".into(), request_state_key: None }
    }
}

/// How POST requests are answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// JSON when the handler sends nothing before its result, else SSE.
    #[default]
    Auto,
    /// Always JSON (notifications sent during the call are dropped).
    Json,
    /// Always an SSE stream.
    Sse,
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSection {
    /// Accepted `Host` values (`example.com` for any port, `example.com:8443`
    /// for one, `*` for any). Empty: loopback names when bound to loopback,
    /// plus the host of `server.public_url`.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values (`https://app.example.com`, or `*`). Requests
    /// without an `Origin` (non-browser clients) are always accepted. Empty:
    /// loopback origins when bound to loopback, plus `server.public_url`.
    #[serde(deserialize_with = "string_or_list")]
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take before its response starts, in seconds.
    pub request_timeout_secs: u64,
    /// JSON or SSE answers.
    pub response_mode: ResponseMode,
    /// Also serve the 2024-11-05 HTTP+SSE transport at `/sse` and `/messages`.
    pub legacy_sse: bool,
    /// How long a shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout_secs: 300,
            response_mode: ResponseMode::Auto,
            legacy_sse: true,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[sessions]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionsSection {
    /// A legacy session unused this long is closed, in seconds.
    pub idle_timeout_secs: u64,
    /// The most legacy sessions open at once.
    pub max_sessions: usize,
    /// The most legacy sessions one authenticated principal holds at once
    /// (Streamable HTTP and HTTP+SSE each).
    pub max_sessions_per_principal: usize,
}

impl Default for SessionsSection {
    fn default() -> Self {
        Self { idle_timeout_secs: 600, max_sessions: 10_000, max_sessions_per_principal: 100 }
    }
}

/// `[redis]`: a Redis server shared by every instance of one server behind a
/// load balancer. With a `url`, the authorization server's rate limits are
/// counted in Redis, and legacy sessions (with their resumable streams) live
/// there, so any instance serves any request of any session. Needs the
/// `redis` feature of `mcp-server`.
///
/// ```
/// use mcp_server::config::Config;
///
/// let file = "[redis]\nurl = \"redis://:secret@cache.internal:6379/0\"\n";
/// let config = Config::from_sources(Some(("mcp.toml", file)), []).unwrap();
/// assert_eq!(config.redis.url.as_deref(), Some("redis://:secret@cache.internal:6379/0"));
/// assert_eq!(config.redis.key_prefix, "mcp");
/// assert!(!format!("{config:?}").contains("secret"));
/// assert!(!format!("{:?}", config.redis).contains("secret"));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisSection {
    /// `redis://[:password@]host[:port][/db]`; unset (the default): no Redis,
    /// every piece of state stays in this process.
    pub url: Option<String>,
    /// The prefix of every key and channel this server uses, so that several
    /// servers can share one Redis. `mcp` by default.
    pub key_prefix: String,
}

/// Shows the URL without its password.
impl std::fmt::Debug for RedisSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_deref().map(|url| mask_url_password(url).unwrap_or_else(|| url.to_owned()));
        f.debug_struct("RedisSection").field("url", &url).field("key_prefix", &self.key_prefix).finish()
    }
}

impl Default for RedisSection {
    fn default() -> Self {
        Self { url: None, key_prefix: "mcp".into() }
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => {
            s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        OneOrMany::Many(v) => v,
    })
}

/// Why the configuration could not be loaded. Messages name the key and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file or an environment override is not valid for the schema.
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Invalid {
        /// The file or variable the problem came from, when known.
        origin: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A key has a value that parses but makes no sense.
    #[error("invalid value for `{key}`: {message}")]
    Value {
        /// The key, such as `server.bind`.
        key: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
}

/// The environment variable prefix of overrides.
pub const ENV_PREFIX: &str = "MCP_";

impl Config {
    /// Loads `file` (when given) and the overrides in the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
                Some((path.display().to_string(), text))
            }
            None => None,
        };
        let source = text.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
        Self::from_sources(source, std::env::vars())
    }

    /// Builds a configuration from a file's text and environment variables.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some((origin, text)) => toml::from_str::<toml::Table>(text).map_err(|e| {
                ConfigError::Invalid { origin: Some(origin.to_owned()), message: e.to_string() }
            })?,
            None => toml::Table::new(),
        };
        let mut overridden = Vec::new();
        for (name, raw) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else { continue };
            let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            if keys.len() < 2 || keys.iter().any(String::is_empty) {
                continue; // Not an override: overrides name a section and a key.
            }
            set_path(&mut table, &keys, parse_env_value(&raw));
            overridden.push(name);
        }
        let config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            let origin = match (file, overridden.is_empty()) {
                (Some((path, _)), true) => Some(path.to_owned()),
                (Some((path, _)), false) => Some(format!("{path} or {}", overridden.join(", "))),
                (None, false) => Some(overridden.join(", ")),
                (None, true) => None,
            };
            ConfigError::Invalid { origin, message: e.message().to_owned() }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if !self.server.path.starts_with('/') {
            return Err(ConfigError::Value {
                key: "server.path",
                message: format!("{:?} must start with '/', e.g. \"/mcp\"", self.server.path),
            });
        }
        if let Some(url) = &self.server.public_url {
            let valid = (url.starts_with("http://") || url.starts_with("https://")) && !url.contains('#');
            if !valid {
                return Err(ConfigError::Value {
                    key: "server.public_url",
                    message: format!("{url:?} must be an absolute http(s) URL without a fragment"),
                });
            }
        }
        self.request_state_key()?;
        if self.http.max_body_bytes == 0 {
            return Err(ConfigError::Value {
                key: "http.max_body_bytes",
                message: "must be more than 0".into(),
            });
        }
        Ok(())
    }

    /// The HTTP bind address, when HTTP is configured.
    pub fn bind_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match &self.server.bind {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| ConfigError::Value {
                key: "server.bind",
                message: format!("{text:?} is not an IP address and port, e.g. \"127.0.0.1:8080\""),
            }),
        }
    }

    /// The configured `server.request_state_key`, decoded.
    pub fn request_state_key(&self) -> Result<Option<crate::mrtr::RequestStateKey>, ConfigError> {
        use base64::Engine as _;
        let Some(text) = &self.server.request_state_key else { return Ok(None) };
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok();
        let key: Option<[u8; 32]> = bytes.and_then(|b| b.try_into().ok());
        key.map(|k| Some(crate::mrtr::RequestStateKey::from_bytes(k))).ok_or(ConfigError::Value {
            key: "server.request_state_key",
            message: "must be 32 bytes in base64, e.g. the output of `openssl rand -base64 32`".into(),
        })
    }

    /// With the GitHub login (`[auth.authorization_server] login =
    /// "github"`), fills `[auth.github] client_id` and `client_secret` from
    /// `GITHUB_CLIENT_ID` and `GITHUB_CLIENT_SECRET` where the configuration
    /// does not set them (`MCP_AUTH__GITHUB__CLIENT_SECRET` works too).
    ///
    /// ```
    /// use mcp_server::config::Config;
    ///
    /// let file = "[auth]\nmode = \"authorization_server\"\n[auth.authorization_server]\nlogin = \"github\"\n";
    /// let mut config = Config::from_sources(Some(("f.toml", file)), []).unwrap();
    /// config.github_credentials_from_env();
    /// assert!(config.auth.get("github").is_some());
    /// ```
    pub fn github_credentials_from_env(&mut self) {
        let login =
            self.auth.get("authorization_server").and_then(|s| s.get("login")).and_then(|l| l.as_str());
        let mode = self.auth.get("mode").and_then(toml::Value::as_str);
        if mode != Some("authorization_server") || login != Some("github") {
            return;
        }
        let github = self.auth.entry("github").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(github) = github.as_table_mut() else { return };
        for (key, var) in [("client_id", "GITHUB_CLIENT_ID"), ("client_secret", "GITHUB_CLIENT_SECRET")] {
            if let (false, Ok(value)) = (github.contains_key(key), std::env::var(var)) {
                github.insert(key.into(), toml::Value::String(value));
            }
        }
    }

    /// The canonical URL of the MCP endpoint, when `server.public_url` is set.
    pub fn endpoint_url(&self) -> Option<String> {
        let base = self.server.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}{}", self.server.path))
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else { return };
    let mut current = table;
    for key in parents {
        let entry = current.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// Command-line options shared by the example servers.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CommandLine {
    /// `--config FILE`
    pub config: Option<PathBuf>,
    /// `--bind ADDR`, which wins over `server.bind`.
    pub bind: Option<String>,
    /// `--print-config`: print the effective configuration and exit.
    pub print_config: bool,
    /// `--check-config`: check every setting (auth included) without
    /// serving, print the effective configuration, and exit.
    pub check_config: bool,
}

/// The usage text of [`CommandLine`].
pub const USAGE: &str = "options:
  --config FILE     read the configuration from a TOML file
  --bind ADDR       serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8080); without it, stdio
  --print-config    print the effective configuration (secrets masked) and exit
  --check-config    check every setting, auth included, without serving; print the effective
                    configuration (secrets masked); exit 0 if valid, 1 with the key to fix if not
environment: MCP_<SECTION>__<KEY>=value overrides any key, e.g. MCP_SERVER__BIND=127.0.0.1:8080";

impl CommandLine {
    /// Parses arguments (without the program name).
    ///
    /// ```
    /// use mcp_server::config::CommandLine;
    /// let cli = CommandLine::parse(["--bind", "127.0.0.1:9000"].map(String::from)).unwrap();
    /// assert_eq!(cli.bind.as_deref(), Some("127.0.0.1:9000"));
    /// assert!(CommandLine::parse(["--frobnicate"].map(String::from)).is_err());
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, ConfigError> {
        let mut cli = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ConfigError::Usage(format!("{name} needs a value\n{USAGE}")))
            };
            match flag.as_str() {
                "--config" => cli.config = Some(PathBuf::from(value("--config")?)),
                "--bind" => cli.bind = Some(value("--bind")?),
                "--print-config" => cli.print_config = true,
                "--check-config" => cli.check_config = true,
                "-h" | "--help" => return Err(ConfigError::Usage(USAGE.to_owned())),
                other => return Err(ConfigError::Usage(format!("unknown option {other:?}\n{USAGE}"))),
            }
        }
        Ok(cli)
    }

    /// Loads the configuration these options name.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let config = Config::load(self.config.as_deref())?;
        self.apply(config)
    }

    /// Loads the `--config` file, or, without one, `defaults` (TOML text)
    /// as if it were the file; `MCP_*` overrides and `--bind` apply to both.
    ///
    /// ```
    /// use mcp_server::config::CommandLine;
    /// let cli = CommandLine::parse(Vec::<String>::new()).unwrap();
    /// let config = cli.load_or_defaults("[server]\nbind = \"127.0.0.1:8080\"\n").unwrap();
    /// assert_eq!(config.server.bind.as_deref(), Some("127.0.0.1:8080"));
    /// ```
    pub fn load_or_defaults(&self, defaults: &str) -> Result<Config, ConfigError> {
        let config = match &self.config {
            Some(path) => Config::load(Some(path))?,
            None => Config::from_sources(Some(("the built-in defaults", defaults)), std::env::vars())?,
        };
        self.apply(config)
    }

    fn apply(&self, mut config: Config) -> Result<Config, ConfigError> {
        if let Some(bind) = &self.bind {
            config.server.bind = Some(bind.clone());
            config.validate()?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn secrets_and_upstream_headers_are_masked() {
        let mut shown = serde_json::json!({
            "auth": {"github": {"client_secret": "s", "client_id": "id"}},
            "app": {"upstreams": {"search": {"headers": {"X-Api-Key": "k", "Authorization": "Bearer t"},
                "env": {"API_TOKEN": "t", "LANG": "C"}, "url": "https://search.internal/mcp"}}},
        });
        mask_secrets(&mut shown);
        let text = shown.to_string();
        for secret in ["\"s\"", "\"k\"", "Bearer t", "\"t\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for kept in ["\"id\"", "\"C\"", "https://search.internal/mcp"] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        let mut shown = serde_json::json!({"auth": {"authorization_server": {
            "store": "postgres://mcp:s3cr%40t@db.internal:5432/auth?sslmode=disable",
            "issuer": "https://mcp.example.com"}}, "list": ["postgresql://u:p@h/d", "postgres://u@h/d"]});
        mask_secrets(&mut shown);
        assert_eq!(
            shown["auth"]["authorization_server"]["store"],
            "postgres://mcp:***@db.internal:5432/auth?sslmode=disable"
        );
        assert_eq!(shown["auth"]["authorization_server"]["issuer"], "https://mcp.example.com");
        assert_eq!(shown["list"], serde_json::json!(["postgresql://u:***@h/d", "postgres://u@h/d"]));
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "[server]\nbind = \"127.0.0.1:1\"\n[sessions]\nmax_sessions = 5\n";
        let config = Config::from_sources(
            Some(("f.toml", file)),
            env(&[
                ("MCP_SERVER__BIND", "127.0.0.1:2"),
                ("MCP_HTTP__ALLOWED_HOSTS", "a.example, b.example"),
                ("MCP_HTTP__LEGACY_SSE", "false"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server.bind.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(config.http.allowed_hosts, ["a.example", "b.example"]);
        assert!(!config.http.legacy_sse);
        assert_eq!(config.sessions.max_sessions, 5);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = Config::from_sources(Some(("f.toml", "[server]\nbnd = \"x\"\n")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bnd"), "{err}");
        let err = Config::from_sources(None, env(&[("MCP_SERVER__BIND", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("server.bind"), "{err}");
        let err = Config::from_sources(None, env(&[("MCP_HTTP__MAX_BODY_BYTES", "lots")])).unwrap_err();
        assert!(err.to_string().contains("MCP_HTTP__MAX_BODY_BYTES"), "{err}");
    }

    #[test]
    fn endpoint_url_joins_public_url_and_path() {
        let config =
            Config::from_sources(None, env(&[("MCP_SERVER__PUBLIC_URL", "https://mcp.example.com/")]))
                .unwrap();
        assert_eq!(config.endpoint_url().as_deref(), Some("https://mcp.example.com/mcp"));
    }
}
