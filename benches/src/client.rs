//! A minimal HTTP/1.1 client over one keep-alive connection: requests are
//! written as prepared bytes, responses parsed just enough (status, headers,
//! `Content-Length` or chunked bodies, SSE events). Kept this small so the
//! load generator spends its core on sending, not on a client stack.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response's status line and headers (names lowercased).
#[derive(Debug, Clone)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }

    fn content_length(&self) -> usize {
        self.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    /// Connects with `TCP_NODELAY`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(16 * 1024), start: 0 })
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        if self.buf.capacity() - len < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        Ok(())
    }

    /// Writes one prepared request.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    /// Reads a status line and headers.
    pub async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            if let Some(end) = find(&self.buf[self.start..], b"\r\n\r\n") {
                let text = std::str::from_utf8(&self.buf[self.start..self.start + end])
                    .map_err(|_| bad("non-UTF-8 head"))?;
                let mut lines = text.split("\r\n");
                let status = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("bad status line"))?;
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                self.start += end + 4;
                return Ok(Head { status, headers });
            }
            self.fill().await?;
        }
    }

    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() - self.start < n {
            self.fill().await?;
        }
        let out = self.buf[self.start..self.start + n].to_vec();
        self.start += n;
        Ok(out)
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(&self.buf[self.start..], b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.start..self.start + end]).into_owned();
                self.start += end + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// The next chunk of a chunked body; `None` after the last one.
    pub async fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let size_line = self.line().await?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers (none expected), then the blank line.
            while !self.line().await?.is_empty() {}
            return Ok(None);
        }
        let data = self.take(size).await?;
        self.line().await?;
        Ok(Some(data))
    }

    /// The whole body of a response whose head was read.
    pub async fn read_body(&mut self, head: &Head) -> io::Result<Vec<u8>> {
        if head.chunked() {
            let mut body = Vec::new();
            while let Some(chunk) = self.read_chunk().await? {
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        } else {
            self.take(head.content_length()).await
        }
    }

    /// Sends `request` and reads the whole response.
    pub async fn roundtrip(&mut self, request: &[u8]) -> io::Result<(Head, Vec<u8>)> {
        self.send(request).await?;
        let head = self.read_head().await?;
        let body = self.read_body(&head).await?;
        Ok((head, body))
    }
}

/// An HTTP/1.1 request with a body (`Content-Type: application/json` unless
/// `headers` names another) as bytes.
pub fn request(method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) && !body.is_empty() {
        out.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// Whether `body` contains `needle`.
pub fn contains(body: &[u8], needle: &[u8]) -> bool {
    find(body, needle).is_some()
}

/// Accumulates an SSE stream and splits it into events.
#[derive(Debug, Default)]
pub struct SseBuffer {
    data: Vec<u8>,
}

/// One SSE event: its `event:` name and joined `data:` lines.
#[derive(Debug)]
pub struct Event {
    /// The `event:` field, `message` when absent.
    pub name: String,
    /// The `data:` lines joined by newlines.
    pub data: String,
}

impl SseBuffer {
    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Event> {
        let end = find(&self.data, b"\n\n")?;
        let raw = String::from_utf8_lossy(&self.data[..end]).into_owned();
        self.data.drain(..end + 2);
        let mut name = "message".to_owned();
        let mut data = Vec::new();
        for line in raw.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
            }
        }
        Some(Event { name, data: data.join("\n") })
    }
}
