//! Helpers for the end-to-end tests: locating the example servers,
//! talking to one over its stdio, and throwaway PostgreSQL and Redis servers.

pub mod as_client;
pub mod balancer;
pub mod fixtures;
pub mod postgres;
pub mod redis;
pub mod sse;
pub mod upstream;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a test waits for one line from the server.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A free port on 127.0.0.1, never the same twice in one test process (two
/// servers started at once must not race for one port).
pub async fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let port = listener.local_addr().expect("an address").port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Waits until an HTTP server answers on `127.0.0.1:port` (any status), panicking
/// if `child` exits first or nothing answers within `within`.
///
/// A bare TCP connect is not proof: on Linux a connect to an unbound port in the
/// ephemeral range can pick that same port as its source and connect to itself.
/// Such a socket echoes the request back, which no HTTP client takes for an answer.
pub async fn wait_for_http(port: u16, mut child: Option<&mut Child>, what: &str, within: Duration) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("an HTTP client");
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = std::time::Instant::now() + within;
    while client.get(&url).send().await.is_err() {
        if let Some(child) = child.as_deref_mut()
            && let Some(status) = child.try_wait().expect("a status")
        {
            panic!("{what} exited at start-up ({status})");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not answer HTTP on {port} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The path of a built example (`cargo test` builds the examples first).
pub fn example_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    let path = target.join("debug").join("examples").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --examples` first", path.display());
    path
}

/// A server process spoken to over stdin and stdout, one JSON message per line.
#[derive(Debug)]
pub struct StdioServer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl StdioServer {
    /// Starts an example with no arguments (stdio mode).
    pub fn start(example: &str) -> Self {
        let mut child = Command::new(example_path(example))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the example starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        Self { child, stdin, lines: BufReader::new(stdout).lines() }
    }

    /// Writes one raw line.
    pub async fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line.as_bytes()).await.expect("write");
        stdin.write_all(b"\n").await.expect("write");
        stdin.flush().await.expect("flush");
    }

    /// Writes one JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    /// Reads the next line as JSON, or `None` at end of output.
    pub async fn recv(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
            .await
            .expect("the server answered in time")
            .expect("stdout is readable")?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line {line:?}: {e}")),
        )
    }

    /// Reads until the response with this id, returning it and what came before.
    pub async fn response_to(&mut self, id: Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let message = self.recv().await.expect("the server is still running");
            if message.get("id") == Some(&id) && message.get("method").is_none() {
                return (message, before);
            }
            before.push(message);
        }
    }

    /// Sends a request and returns its response.
    pub async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        self.response_to(json!(id)).await.0
    }

    /// Runs the legacy handshake at `version`.
    pub async fn initialize(&mut self, version: &str, capabilities: Value) -> Value {
        let params = json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": "e2e", "version": "0"},
        });
        let response = self.request(0, "initialize", params).await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        response
    }

    /// Closes stdin (end of file for the server).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait()).await.ok().and_then(Result::ok)
    }
}

/// `_meta` of a modern (2026-07-28) request with these client capabilities.
pub fn modern_meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "0"},
    })
}
