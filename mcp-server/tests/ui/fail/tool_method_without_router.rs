use mcp_server::tool;

struct Counter;

impl Counter {
    #[tool]
    async fn count(&self, text: String) -> usize {
        text.len()
    }
}

fn main() {}
