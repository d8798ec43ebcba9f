//! The whole HTTP application for a configuration: the MCP endpoint behind
//! CORS, a request timeout and the Host/Origin guard.

use std::time::Duration;

use axum::Router;
use http::{HeaderName, Method, StatusCode};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use super::guard::{HostOriginGuardLayer, HostOriginPolicy};
use super::{HttpOptions, LegacySse, StreamableHttp};
use crate::config::{Config, ConfigError};
use crate::server::Server;

/// Response headers browser clients must be able to read (SPEC §3.2, CORS).
const EXPOSED_HEADERS: [&str; 3] = ["mcp-session-id", "www-authenticate", "mcp-protocol-version"];

/// CORS for browser clients: any origin may ask (the guard decides which may
/// act), any request header may be sent (so `Mcp-Param-*` works), and the MCP
/// response headers are exposed. Preflight is answered here, before any
/// other layer, auth included.
pub fn cors_layer() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 60 * 60))
}

impl Server {
    /// The HTTP application `config` describes, ready for `axum::serve`.
    ///
    /// ```
    /// use mcp_server::{config::Config, Server};
    /// let config = Config::from_sources(None, [("MCP_SERVER__BIND".into(), "127.0.0.1:0".into())]).unwrap();
    /// let app = Server::new("demo", "1.0.0").http_app(&config).unwrap();
    /// # let _ = app;
    /// ```
    pub fn http_app(&self, config: &Config) -> Result<Router, ConfigError> {
        Ok(self.http_app_parts(config)?.0)
    }

    /// The application and, when enabled, the legacy HTTP+SSE endpoint (whose
    /// open streams a shutdown must close).
    pub(crate) fn http_app_parts(&self, config: &Config) -> Result<(Router, Option<LegacySse>), ConfigError> {
        let bound = config.bind_addr()?;
        let policy = HostOriginPolicy::from_config(config, bound);
        let options = HttpOptions::default()
            .idle_timeout(Duration::from_secs(config.sessions.idle_timeout_secs.max(1)))
            .max_sessions(config.sessions.max_sessions)
            .max_body_bytes(config.http.max_body_bytes)
            .response_mode(config.http.response_mode);
        let endpoint = StreamableHttp::with_options(self.clone(), options);
        let mut app = Router::new().route_service(&config.server.path, endpoint);
        let legacy = config.http.legacy_sse.then(|| self.legacy_sse());
        if let Some(legacy) = &legacy {
            // Merged before the layers, so the guard and CORS cover it too.
            app = app.merge(legacy.router());
        }
        // Auth sits inside the guard, the timeout and CORS, so preflight is answered before it.
        let app = match auth_layer(self, config)? {
            Some(layer) => app.layer(layer),
            None => app,
        };
        let timeout = Duration::from_secs(config.http.request_timeout_secs.max(1));
        let app = app
            .layer(HostOriginGuardLayer::new(policy))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
            .layer(cors_layer());
        Ok((app, legacy))
    }
}

/// The auth layer `[auth] mode` asks for: `"none"` (the default) or
/// `"resource_server"` (bearer tokens from `[auth.resource_server] issuer`).
fn auth_layer(server: &Server, config: &Config) -> Result<Option<mcp_auth::AuthLayer>, ConfigError> {
    let mode = match config.auth.get("mode") {
        None => "none",
        Some(toml::Value::String(mode)) => mode.as_str(),
        Some(other) => {
            return Err(ConfigError::Value {
                key: "auth.mode",
                message: format!("{other:?} must be a string"),
            });
        }
    };
    match mode {
        "none" => Ok(None),
        "resource_server" => {
            let canonical = config.endpoint_url().ok_or_else(|| ConfigError::Value {
                key: "server.public_url",
                message: "auth mode \"resource_server\" needs the canonical URL: set server.public_url \
                          (MCP_SERVER__PUBLIC_URL), e.g. \"https://mcp.example.com\""
                    .into(),
            })?;
            let section = config
                .auth
                .get("resource_server")
                .cloned()
                .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
            let mut rs_config: mcp_auth::ResourceServerConfig =
                section.try_into().map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: Some("[auth.resource_server]".into()),
                    message: e.message().to_owned(),
                })?;
            if rs_config.scopes_supported.is_empty() {
                // Unset: advertise the scopes the server's own routes declare.
                rs_config.scopes_supported = server.declared_scopes();
            }
            let resource_server = mcp_auth::ResourceServer::new(rs_config, &canonical)
                .map_err(|e| ConfigError::Value { key: "auth.resource_server", message: e.to_string() })?;
            Ok(Some(resource_server.layer()))
        }
        other => Err(ConfigError::Value {
            key: "auth.mode",
            message: format!("{other:?} is not a mode; use \"none\" or \"resource_server\""),
        }),
    }
}
