//! The stdio transport: one JSON-RPC message per line on stdin and stdout.
//!
//! Only protocol messages are written to stdout; logs belong on stderr. The
//! server stops when stdin reaches end of file, cancelling whatever is still
//! running. Requests run concurrently; `notifications/cancelled` stops one.
//!
//! ```no_run
//! use mcp_server::{tool, Server};
//!
//! /// Says hello.
//! #[tool]
//! async fn hello() -> &'static str {
//!     "Hello!"
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     Server::new("hello", "1.0.0").tool(hello).serve_stdio().await
//! }
//! ```

use std::io;

use mcp_core::error::codes;
use mcp_core::jsonrpc::{FramingError, Incoming, Message, parse};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::connection::{Connection, error_without_id};
use crate::server::Server;

/// Most messages one batch may hold.
pub const MAX_BATCH_ITEMS: usize = 100;

/// Longest line accepted on stdin; a longer one is answered with a parse error.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

impl Server {
    /// Serves this server on the process's stdin and stdout until stdin closes.
    pub async fn serve_stdio(self) -> io::Result<()> {
        self.serve_io(tokio::io::stdin(), tokio::io::stdout()).await
    }

    /// Serves one client over any byte stream pair, with stdio framing.
    pub async fn serve_io<R, W>(self, reader: R, writer: W) -> io::Result<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let connection = Connection::new(self.clone(), None);
        // Replies travel on the same channel as the notifications a handler
        // sends, so a request's notifications always precede its response.
        let (msg_tx, msg_rx) = mpsc::channel::<Message>(256);
        let (batch_tx, batch_rx) = mpsc::channel::<Vec<Message>>(16);
        let writer_task = tokio::spawn(write_loop(writer, msg_rx, batch_rx));

        let mut changes = self.change_feed();
        let change_conn = connection.clone();
        let change_tx = msg_tx.clone();
        let change_task = tokio::spawn(async move {
            while let Some(changed) = changes.next().await {
                for change in changed.changes() {
                    if let Some(note) = change_conn.change_notification(&change)
                        && change_tx.send(note).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        let mut tasks = JoinSet::new();
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            match read_line_limited(&mut reader, &mut line).await? {
                LineRead::Eof => break,
                LineRead::TooLong => {
                    let error = error_without_id(codes::PARSE_ERROR, "Parse error: message too large");
                    let _ = msg_tx.send(error).await;
                    continue;
                }
                LineRead::Line if line.iter().all(u8::is_ascii_whitespace) => continue,
                LineRead::Line => {}
            }
            match parse(&line) {
                Err(e) => {
                    let _ = msg_tx.send(Message::Error(e.to_response())).await;
                }
                Ok(Incoming::Single(message)) => {
                    handle_single(&connection, message, &msg_tx, &mut tasks);
                }
                Ok(Incoming::Batch(items)) => {
                    handle_batch(&connection, items, &msg_tx, &batch_tx, &mut tasks);
                }
            }
            // Reap finished tasks so the set does not grow.
            while tasks.try_join_next().is_some() {}
        }

        // End of input: stop promptly (SPEC §3.4), cancelling what still runs.
        connection.close();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        change_task.abort();
        drop(msg_tx);
        drop(batch_tx);
        writer_task.await.map_err(io::Error::other)?
    }
}

fn handle_single(
    connection: &Connection,
    message: Message,
    msg_tx: &mpsc::Sender<Message>,
    tasks: &mut JoinSet<()>,
) {
    match message {
        Message::Request(request) => {
            let connection = connection.clone();
            let msg_tx = msg_tx.clone();
            tasks.spawn(async move {
                if let Some(reply) = connection.handle_request(request, msg_tx.clone(), None).await {
                    let _ = msg_tx.send(reply).await;
                }
            });
        }
        Message::Notification(notification) => connection.handle_notification(notification),
        answer @ (Message::Response(_) | Message::Error(_)) => {
            connection.handle_answer(answer);
        }
    }
}

fn handle_batch(
    connection: &Connection,
    items: Vec<Result<Message, FramingError>>,
    msg_tx: &mpsc::Sender<Message>,
    batch_tx: &mpsc::Sender<Vec<Message>>,
    tasks: &mut JoinSet<()>,
) {
    let msg_tx = msg_tx.clone();
    if items.len() > MAX_BATCH_ITEMS {
        let error =
            error_without_id(codes::INVALID_REQUEST, "Invalid Request: too many messages in one batch");
        tasks.spawn(async move {
            let _ = msg_tx.send(error).await;
        });
        return;
    }
    if !connection.allows_batching() {
        // Batches exist only in 2025-03-26.
        let error = error_without_id(
            codes::INVALID_REQUEST,
            "Invalid Request: batches are not allowed in this protocol version",
        );
        tasks.spawn(async move {
            let _ = msg_tx.send(error).await;
        });
        return;
    }
    let connection = connection.clone();
    let batch_tx = batch_tx.clone();
    tasks.spawn(async move {
        let mut replies = Vec::new();
        let mut pending = JoinSet::new();
        for item in items {
            match item {
                Err(e) => replies.push(Message::Error(e.to_response())),
                Ok(Message::Request(request)) => {
                    let connection = connection.clone();
                    let msg_tx = msg_tx.clone();
                    pending.spawn(async move { connection.handle_request(request, msg_tx, None).await });
                }
                Ok(Message::Notification(n)) => connection.handle_notification(n),
                Ok(answer) => {
                    connection.handle_answer(answer);
                }
            }
        }
        while let Some(done) = pending.join_next().await {
            if let Ok(Some(reply)) = done {
                replies.push(reply);
            }
        }
        if !replies.is_empty() {
            let _ = batch_tx.send(replies).await;
        }
    });
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line (without its newline) into `line`, refusing to buffer more
/// than [`MAX_LINE_BYTES`]: the rest of an overlong line is skipped.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if too_long {
                LineRead::TooLong
            } else if line.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = found.unwrap_or(available.len());
        reader.consume(consumed);
        if found.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut messages: mpsc::Receiver<Message>,
    mut batches: mpsc::Receiver<Vec<Message>>,
) -> io::Result<()> {
    let mut buffer = Vec::with_capacity(4096);
    loop {
        buffer.clear();
        let written = tokio::select! {
            // Messages first: a batch's notifications precede its replies.
            biased;
            Some(message) = messages.recv() => serde_json::to_writer(&mut buffer, &message),
            Some(batch) = batches.recv() => serde_json::to_writer(&mut buffer, &batch),
            else => return Ok(()),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "could not serialize an outgoing message");
            continue;
        }
        buffer.push(b'\n');
        writer.write_all(&buffer).await?;
        writer.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlong_lines_are_skipped_whole() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{}\n");
        let mut reader = BufReader::new(&input[..]);
        let mut line = Vec::new();
        assert!(matches!(read_line_limited(&mut reader, &mut line).await.unwrap(), LineRead::TooLong));
        assert!(matches!(read_line_limited(&mut reader, &mut line).await.unwrap(), LineRead::Line));
        assert_eq!(line, b"{}");
        assert!(matches!(read_line_limited(&mut reader, &mut line).await.unwrap(), LineRead::Eof));
    }
}
