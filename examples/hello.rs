//! The smallest server: one tool. Serves stdio, or Streamable HTTP with
//! `--bind 127.0.0.1:8080` (see `--help`).
use mcp_server::{Server, tool};

/// Adds two numbers.
#[tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    Server::new("hello", "1.0.0").tool(add).serve_from_args().await
}
