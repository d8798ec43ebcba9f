//! An authenticated MCP server in a few lines: the auth mode comes from the config file.
use mcp_server::{Identity, Server, tool};

/// Greets the signed-in user.
#[tool]
async fn greet(caller: Option<Identity>) -> String {
    let who = caller.and_then(|c| c.claims.get("preferred_username")?.as_str().map(str::to_owned));
    format!("Hello, {}!", who.as_deref().unwrap_or("stranger"))
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    // cargo run --example authenticated -- --config examples/github-oauth/github.toml
    Server::new("authenticated", "1.0.0").tool(greet).serve_from_args().await
}
