use mcp_server::resource;

#[resource(uri_template = "x://{id}")]
async fn item(id: String, version: String) -> String {
    format!("{id}@{version}")
}

fn main() {}
