use mcp_server::tool;

#[tool(name = "bad name!")]
async fn bad() {}

fn main() {}
