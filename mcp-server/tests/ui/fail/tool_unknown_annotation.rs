use mcp_server::tool;

#[tool(annotations(read_only_hint = true, fast_hint = true))]
async fn ping() {}

fn main() {}
