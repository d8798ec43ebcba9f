//! The smallest server: one tool, served over stdio.
use mcp_server::{Server, tool};

/// Adds two numbers.
#[tool]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    Server::new("hello", "1.0.0").tool(add).serve_stdio().await
}
