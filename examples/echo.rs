//! The benchmark server: one tool, `echo`, that returns its message as text. Serves stdio, or
//! Streamable HTTP (plus the 2024-11-05 HTTP+SSE endpoints) with `--bind 127.0.0.1:8080`; `--config
//! FILE` turns on whatever the configuration asks for, such as resource-server auth.
use mcp_server::{Server, tool};

/// Returns the message unchanged.
#[tool]
async fn echo(message: String) -> String {
    message
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    Server::new("echo", "1.0.0").tool(echo).serve_from_args().await
}
