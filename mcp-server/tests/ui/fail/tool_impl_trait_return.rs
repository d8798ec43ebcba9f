use mcp_server::tool;

#[tool]
async fn greet() -> impl std::fmt::Display {
    "hello"
}

fn main() {}
