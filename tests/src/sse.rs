//! Reading Server-Sent Events as a client does, for the HTTP tests.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// One SSE event as sent: its fields, not yet interpreted.
#[derive(Debug, Default, Clone)]
pub struct Event {
    /// `id:`, if any.
    pub id: Option<String>,
    /// `retry:`, if any.
    pub retry: Option<u64>,
    /// `data:`, if any (one line).
    pub data: Option<String>,
}

impl Event {
    /// The JSON-RPC message the event carries.
    pub fn message(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("an event with data")).expect("JSON data")
    }

    /// The stream part of the event id (`<stream>-<seq>`).
    pub fn stream(&self) -> &str {
        self.id.as_deref().expect("an event id").split_once('-').expect("<stream>-<seq>").0
    }
}

/// Reads an SSE response event by event, as the bytes arrive; comment lines
/// (keep-alives) are skipped.
#[derive(Debug)]
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// Reads `response`, which must be a 200 `text/event-stream`.
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event; `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                let mut any = false;
                for line in block.lines().filter(|l| !l.starts_with(':') && !l.is_empty()) {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                    match field {
                        "id" => event.id = Some(value),
                        "retry" => event.retry = Some(value.parse().expect("a numeric retry")),
                        "data" => event.data = Some(value),
                        _ => {}
                    }
                    any = true;
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("a readable stream")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The message of the next event that carries one (priming events carry
    /// none); `None` at the end of the stream.
    pub async fn next_message(&mut self) -> Option<Value> {
        loop {
            let event = self.next().await?;
            if event.data.as_deref().is_some_and(|d| !d.is_empty()) {
                return Some(event.message());
            }
        }
    }

    /// Every remaining event, until the server ends the stream.
    pub async fn rest(mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}
