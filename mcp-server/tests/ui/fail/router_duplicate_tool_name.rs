use mcp_server::router;

struct Tools;

#[router]
impl Tools {
    #[tool(name = "same")]
    async fn first(&self) {}

    #[tool(name = "same")]
    async fn second(&self) {}
}

fn main() {}
