use mcp_server::tool;

struct Point {
    x: i64,
}

#[tool]
async fn plot(point: Point) -> i64 {
    point.x
}

fn main() {}
