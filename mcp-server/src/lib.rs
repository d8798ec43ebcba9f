//! # mcp-server
//!
//! Build Model Context Protocol servers from plain async Rust functions.
//!
//! ```no_run
//! use mcp_server::{tool, Server};
//!
//! /// Adds two numbers.
//! #[tool]
//! async fn add(a: i64, b: i64) -> i64 {
//!     a + b
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     Server::new("hello", "1.0.0").tool(add).serve_stdio().await
//! }
//! ```
//!
//! ## Tools
//!
//! [`#[tool]`](macro@tool) turns an async function into a tool. Its arguments
//! become the input schema (through `schemars`; `Option<T>` arguments are not
//! required), its doc comment the description. A return type that is text or
//! content ([`tool::IntoCallToolResult`]) becomes content; any other
//! serializable type becomes structured output with an `outputSchema`.
//! `Result<T, E>` turns `Err` into a result with `isError: true`.
//!
//! ```
//! use mcp_server::tool;
//! use schemars::JsonSchema;
//! use serde::Serialize;
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Weather {
//!     temperature_c: f64,
//! }
//!
//! /// Current weather for a city.
//! #[tool(name = "get_weather", title = "Weather", annotations(read_only_hint = true))]
//! async fn weather(
//!     #[arg(description = "City name")] city: String,
//! ) -> Result<Weather, String> {
//!     if city.is_empty() { Err("no city".into()) } else { Ok(Weather { temperature_c: 21.5 }) }
//! }
//! ```
//!
//! ## Extractors
//!
//! Beside its arguments, a handler may take [`Context`] (progress, logging,
//! cancellation, asking the client), [`State<T>`], or `Option<Identity>`; see
//! [`context`].
//!
//! ## Prompts, resources, routers
//!
//! [`#[prompt]`](macro@prompt) and [`#[resource]`](macro@resource) declare the
//! other two primitives; [`#[router]`](macro@router) on an `impl` block
//! collects a type's tools, prompts and resources (see [`Routes`]).
//!
//! ## Both protocol eras
//!
//! The same handlers serve legacy clients (2024-11-05 to 2025-11-25, with
//! `initialize` and sessions) and modern stateless ones (2026-07-28). Asking the
//! client ([`ask`]) sends real requests to legacy clients and answers modern
//! ones with an `InputRequiredResult` whose `requestState` is sealed ([`mrtr`]).

pub mod ask;
mod changes;
/// OAuth: the resource-server layer and the built-in authorization server
/// (the `mcp-auth` crate), for tools that need its types, such as
/// [`UpstreamTokens`](auth::UpstreamTokens).
pub use mcp_auth as auth;
pub mod config;
mod connection;
pub mod context;
mod dispatch;
pub mod mrtr;
pub mod prompt;
mod registry;
pub mod resource;
pub mod routes;
mod schema;
mod serve;
pub mod server;
mod session;
pub mod tool;
pub mod transport;
pub mod uri_template;

use std::future::Future;
use std::pin::Pin;

pub use context::{CancellationToken, Context, FromContext, State};
pub use mcp_core as core;
pub use mcp_core::{Identity, McpError};
pub use mcp_macros::{prompt, resource, router, tool};
pub use routes::{IntoRoutes, Routes};
pub use serve::ServeError;
pub use server::Server;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The usual imports.
pub mod prelude {
    pub use crate::ask::{AskError, InputBatch};
    pub use crate::core::RequestId;
    pub use crate::core::types::*;
    pub use crate::{Context, Identity, McpError, Server, State, prompt, resource, router, tool};
}

#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde;
    pub use serde_json;

    pub use crate::context::FromContext;
    pub use crate::prompt::{IntoGetPromptResult, IntoPromptRoute, PromptCall, PromptRoute};
    pub use crate::resource::{IntoReadResourceResult, IntoResourceRoute, ResourceCall, ResourceRoute};
    pub use crate::tool::{
        ContentOutput, FallibleStructuredOutput, IntoToolRoute, OutputKind, StructuredOutput, ToolCall,
        ToolOutput, ToolRoute,
    };
}
