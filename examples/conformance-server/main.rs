//! A server implementing the contract of the official MCP conformance suite:
//! the tools, resources and prompts its scenarios call, with the exact outputs
//! they check. Serves stdio, or HTTP with `--bind`:
//!
//! ```text
//! cargo run --release --example conformance-server -- --bind 127.0.0.1:3000
//! ```

mod catalog;
mod input_required;
mod tools;

use mcp_server::Server;

/// The server with every tool, prompt and resource of the contract.
fn conformance_server() -> Server {
    let server = Server::new("mcp-conformance-test-server", "1.0.0");
    let server = tools::register(server);
    let server = input_required::register(server);
    catalog::register(server)
}

#[tokio::main]
async fn main() -> Result<(), mcp_server::ServeError> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("warn").init();
    conformance_server().serve_from_args().await
}
