//! The whole HTTP application for a configuration: the MCP endpoint behind
//! CORS, a request timeout and the Host/Origin guard.

use std::time::Duration;

use axum::Router;
use http::{HeaderName, Method, StatusCode};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use super::LegacySse;
use super::guard::{HostOriginGuardLayer, HostOriginPolicy};
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
        let endpoint = self.streamable_http();
        let mut app = Router::new().route_service(&config.server.path, endpoint);
        let legacy = config.http.legacy_sse.then(|| self.legacy_sse());
        if let Some(legacy) = &legacy {
            // Merged before the layers, so the guard and CORS cover it too.
            app = app.merge(legacy.router());
        }
        let timeout = Duration::from_secs(config.http.request_timeout_secs.max(1));
        let app = app
            .layer(HostOriginGuardLayer::new(policy))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
            .layer(cors_layer());
        Ok((app, legacy))
    }
}
