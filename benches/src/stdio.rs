//! stdio round trips: a server as a child process, one request at a time.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::load::MESSAGE;
use crate::servers::pinned;

/// Latencies (µs) of `calls` sequential `tools/call` round trips to `bin args`
/// over stdio, after initialize.
pub async fn round_trips(bin: &Path, args: &[&str], calls: u64) -> Result<Vec<u32>, String> {
    let mut child = pinned("0", bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut exchange = async |line: String, wait_for: Option<String>| -> Result<(), String> {
        stdin.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
        stdin.write_all(b"\n").await.map_err(|e| e.to_string())?;
        stdin.flush().await.map_err(|e| e.to_string())?;
        let Some(wanted) = wait_for else { return Ok(()) };
        loop {
            let line = stdout.next_line().await.map_err(|e| e.to_string())?.ok_or("stdout closed")?;
            if line.contains(&wanted) {
                return Ok(());
            }
        }
    };
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#;
    exchange(init.into(), Some(r#""id":0"#.into())).await?;
    exchange(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(), None).await?;
    let mut latencies = Vec::with_capacity(calls as usize);
    for id in 1..=calls {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{MESSAGE}"}}}}}}"#
        );
        let started = Instant::now();
        exchange(call, Some(format!(r#""id":{id}"#))).await?;
        latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    Ok(latencies)
}
