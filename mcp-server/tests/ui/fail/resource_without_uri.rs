use mcp_server::resource;

#[resource]
async fn orphan() -> String {
    String::new()
}

fn main() {}
