use mcp_server::tool;

#[tool(bogus = 1)]
async fn ping() {}

fn main() {}
