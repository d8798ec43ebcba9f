//! An authorization gateway: the authorization of this framework in front
//! of MCP servers that know nothing about OAuth.
//!
//! Each upstream named in `[app.upstreams.<name>]` (a stdio command, a
//! Streamable HTTP URL, or a legacy HTTP+SSE URL) is mounted at
//! `/<name>/mcp`, with its own protected-resource metadata and audience.
//! Clients of every protocol revision reach it through the framework's own
//! transports; the gateway speaks to the upstream as one client, with its
//! own credentials (`headers`), never the client's token.
//!
//! ```no_run
//! use mcp_gateway::Gateway;
//! use mcp_server::config::Config;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(Some(std::path::Path::new("gateway.toml")))?;
//! let gateway = Gateway::build(&config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, gateway.router).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
mod caller;
pub mod config;
mod mirror;
pub mod upstream;

pub use app::{Gateway, GatewayError};
