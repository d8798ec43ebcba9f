//! The same echo tool on `rmcp`, the official Rust SDK, over Streamable HTTP
//! (`--mode session`: legacy sessions with SSE replies, rmcp's default;
//! `--mode stateless`: no sessions, JSON replies) or stdio (`--stdio`).
//!
//! `rmcp-echo --bind 127.0.0.1:PORT [--mode session|stateless]`

use std::sync::Arc;

use axum::serve::ListenerExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

/// The arguments of `echo`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    message: String,
}

#[derive(Debug, Clone)]
struct Echo {
    #[allow(dead_code)]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    /// Returns the message unchanged.
    #[tool(description = "Returns the message unchanged.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text(args.message)]))
    }
}

#[tool_handler]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    if mcp_bench::args::flag("--stdio") {
        let running = Echo::new().serve(rmcp::transport::io::stdio()).await.map_err(std::io::Error::other)?;
        let _ = running.waiting().await;
        return Ok(());
    }
    let bind = mcp_bench::args::value("--bind").unwrap_or_else(|| "127.0.0.1:8092".into());
    let stateless = mcp_bench::args::value("--mode").as_deref() == Some("stateless");
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!stateless)
        .with_json_response(stateless);
    let service =
        StreamableHttpService::new(|| Ok(Echo::new()), Arc::new(LocalSessionManager::default()), config);
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
