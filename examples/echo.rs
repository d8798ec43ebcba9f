//! The benchmark server: `echo`, which returns its message as text, and `echo_progress`, which
//! reports one progress step first (so that, asked with a progress token, its answer is an SSE
//! stream). Serves stdio, or Streamable HTTP (plus the 2024-11-05 HTTP+SSE endpoints) with `--bind
//! 127.0.0.1:8080`; `--config FILE` turns on whatever the configuration asks for, such as
//! resource-server auth or `[redis] url`.
use mcp_server::{Context, Server, tool};

/// Returns the message unchanged.
#[tool]
async fn echo(message: String) -> String {
    message
}

/// Reports progress 1 of 1, then returns the message unchanged.
#[tool]
async fn echo_progress(ctx: Context, message: String) -> String {
    ctx.progress(1.0, Some(1.0), None).await;
    message
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    Server::new("echo", "1.0.0").tool(echo).tool(echo_progress).serve_from_args().await
}
