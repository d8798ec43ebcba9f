//! The floor: a bare axum handler that reads the body and returns a fixed
//! JSON-RPC result, on the same runtime and socket settings as the servers
//! under test. Nothing can serve a call cheaper than this.
//!
//! `floor --bind 127.0.0.1:PORT`

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::serve::ListenerExt;

const REPLY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}"#;

async fn echo(_body: Bytes) -> ([(header::HeaderName, &'static str); 1], &'static str) {
    ([(header::CONTENT_TYPE, "application/json")], REPLY)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = mcp_bench::args::value("--bind").unwrap_or_else(|| "127.0.0.1:8091".into());
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new().route("/mcp", post(echo));
    axum::serve(listener, app).await
}
