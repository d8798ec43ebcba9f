//! # mcp-auth
//!
//! OAuth for Model Context Protocol servers, as a tower [`Layer`](tower::Layer)
//! that works in front of any HTTP service. In **resource-server mode** it
//! accepts exactly the bearer tokens an external authorization server
//! (Keycloak, Auth0, Entra, Okta, any OpenID provider) issued for this
//! server, and nothing else:
//!
//! - publishes protected-resource metadata (RFC 9728) at
//!   `/.well-known/oauth-protected-resource` and its path-inserted form;
//! - answers `401`/`403` with the `WWW-Authenticate` challenges MCP clients
//!   follow (RFC 6750, `resource_metadata`, `scope`);
//! - discovers the issuer (RFC 8414, then OpenID Connect discovery) and checks
//!   JWT access tokens against its JWKS: algorithm allowlist, exact `iss` and
//!   `aud` (RFC 8707), `exp`/`nbf`/`iat` with leeway, key rotation;
//! - checks opaque tokens by introspection (RFC 7662);
//! - hands the caller to the service as an `Arc<`[`Identity`]`>` in the
//!   request extensions.
//!
//! ## Guarding a service
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::{Extension, Router, body::Body, routing::post};
//! use http::{Request, StatusCode};
//! use mcp_auth::{AuthLayer, Identity, ResourceServer, ResourceServerConfig};
//! use tower::ServiceExt as _;
//!
//! /// Any handler: the layer has already checked the token.
//! async fn whoami(Extension(caller): Extension<Arc<Identity>>) -> String {
//!     format!("hello {}", caller.subject)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ResourceServerConfig::new("https://idp.example.com").with_scopes_supported(["notes:read"]);
//! // The canonical URL of the endpoint: the metadata's `resource` and the tokens' audience.
//! let resource_server = ResourceServer::new(config, "https://mcp.example.com/mcp")?;
//! let app = Router::new().route("/mcp", post(whoami)).layer(AuthLayer::new(resource_server));
//! // Serve it: axum::serve(listener, app).await
//!
//! // No token: 401, and where to get one.
//! let response = app.clone().oneshot(Request::post("/mcp").body(Body::empty())?).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="notes:read""#
//! );
//!
//! // The metadata needs no token.
//! let metadata = Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty())?;
//! assert_eq!(app.oneshot(metadata).await?.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! ## Scopes and step-up
//!
//! The layer only checks that the token is valid (and carries
//! `required_scopes`, if configured). Which operation needs which scope is the
//! service's business: when the caller lacks one, answer with the
//! [`InsufficientScope`] response extension listing **every** scope the
//! operation needs, and the layer turns it into `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`, so the
//! client can obtain a token with more scope and retry.
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::Extension;
//! use axum::response::IntoResponse;
//! use mcp_auth::{Identity, InsufficientScope};
//!
//! async fn add_note(Extension(caller): Extension<Arc<Identity>>) -> axum::response::Response {
//!     let needed = ["notes:read", "notes:write"];
//!     if !caller.has_all_scopes(&needed) {
//!         let scopes = needed.map(String::from).to_vec();
//!         return Extension(InsufficientScope { scopes }).into_response();
//!     }
//!     "added".into_response()
//! }
//! ```
//!
//! ## Configuration
//!
//! [`ResourceServerConfig`] is the `[auth.resource_server]` section of the
//! server's TOML file (or built in code); only `issuer` is required:
//!
//! ```toml
//! [auth.resource_server]
//! issuer = "https://idp.example.com/realms/mcp"  # exactly as in the tokens' `iss`
//! # audience = "https://mcp.example.com/mcp"    # default: the canonical MCP URL
//! scopes_supported = ["notes:read", "notes:write"]
//! leeway_secs = 60
//! jwks_cache_max_secs = 3600
//! algorithms = ["RS256", "PS256", "ES256", "EdDSA"]
//!
//! [auth.resource_server.introspection]           # only for opaque tokens
//! client_id = "mcp-server"
//! client_secret = "…"                            # better from the environment
//! auth_method = "client_secret_basic"            # or "client_secret_post"
//! ```
//!
//! ## Failure behaviour
//!
//! Metadata, keys and introspection are fetched only from the issuer's origin
//! and the endpoints its verified metadata names, over `https` (plain `http`
//! only on loopback unless allowed), without redirects, within 5 seconds and
//! 1 MiB. When the authorization server is down, slow or failing, tokens that
//! need it get `401` (never `500`, never a hang) and a `warn` line says why;
//! keys already cached keep working. Tokens are read only from the
//! `Authorization` header and never logged.
//!
//! ## Features
//!
//! | feature | off by default; adds |
//! | --- | --- |
//! | `postgres` | `authorization_server::store::PostgresStore`: `store = "postgres://…"`, one PostgreSQL database shared by several instances of the built-in authorization server (which answers `503 temporarily_unavailable` while it is down) |
//! | `redis` | `AuthorizationServerBuilder::redis_rate_limits`: the authorization server's rate limits counted in one Redis shared by several instances (each counts alone while it does not answer) |

// Unit tests may unwrap: a panic is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod authorization_server;
pub mod challenge;
mod clock;
mod config;
mod error;
mod layer;
pub mod metadata;
mod resource_server;

pub use authorization_server::{
    AuthenticatedUser, AuthorizationServer, AuthorizationServerBuilder, AuthorizationServerConfig,
    AuthorizationServerError, DevLogin, GitHubConfig, GitHubLogin, Limit, LoginError, OidcConfig, OidcLogin,
    RateLimitConfig, RevocationCheck, UpstreamLogin, UpstreamToken, UpstreamTokens, UserAuthenticator,
};
pub use clock::{Clock, SystemClock};
pub use config::{ClientAuthMethod, IntrospectionConfig, JwsAlgorithm, ResourceServerConfig};
pub use error::{ConfigError, TokenError, UpstreamError};
pub use layer::{AuthFuture, AuthLayer, AuthService, BoxFuture, TokenVerifier};
pub use mcp_core::Identity;
pub use mcp_core::identity::InsufficientScope;
pub use resource_server::{ResourceServer, ResourceServerBuilder};
