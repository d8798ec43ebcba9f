//! Load generation: workers, each on its own keep-alive connection, calling
//! the echo tool in a loop; timed runs and call-count runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Conn, SseBuffer, contains, request};
use crate::procfs;

/// The message every call echoes; also what a correct answer must contain.
pub const MESSAGE: &str = "hello";

/// The `_meta` every modern request carries (2026-07-28: version and capabilities in each request).
const MODERN_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"0"}}"#;

/// The legacy revision the session workers negotiate.
pub const LEGACY_VERSION: &str = "2025-11-25";

/// Where a server listens, and the bearer token to send, if any.
#[derive(Debug, Clone)]
pub struct Target {
    /// Socket address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// `Authorization: Bearer …` value, when auth is on.
    pub bearer: Option<String>,
    /// The MCP endpoint's path (`/mcp`; `/<name>/mcp` behind the gateway).
    pub path: String,
}

impl Target {
    /// A target on loopback `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, host: addr.to_string(), bearer: None, path: "/mcp".into() }
    }

    fn auth(&self) -> Option<String> {
        self.bearer.as_ref().map(|t| format!("Bearer {t}"))
    }
}

/// What one worker does per iteration.
#[derive(Debug)]
pub enum Worker {
    /// A stateless 2026-07-28 `tools/call`.
    Modern { conn: Conn, target: Target, id: u64 },
    /// A `tools/call` in a legacy Streamable HTTP session.
    Legacy { conn: Conn, target: Target, session: String, id: u64 },
    /// A `tools/call` over 2024-11-05 HTTP+SSE: POST, then the answer on the stream.
    Sse { post: Conn, stream: Conn, events: SseBuffer, target: Target, endpoint: String, id: u64 },
    /// A whole legacy session: initialize, initialized, tools/list, DELETE.
    Setup { conn: Conn, target: Target, id: u64 },
    /// A `tools/call` in a legacy session whose requests take turns among
    /// servers sharing it, one connection to each; with `progress`,
    /// `echo_progress` with a progress token, whose answer is an SSE stream.
    Shared { conns: Vec<(Conn, Target)>, next: usize, session: String, id: u64, progress: bool },
}

fn modern_call(target: &Target, id: u64) -> Vec<u8> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{MESSAGE}"}},{MODERN_META}}}}}"#
    );
    let auth = target.auth();
    let mut headers = vec![
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "echo"),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    request("POST", &target.path, &target.host, &headers, &body)
}

fn legacy_post(target: &Target, session: Option<&str>, body: &str) -> Vec<u8> {
    let auth = target.auth();
    let mut headers = vec![("Accept", "application/json, text/event-stream")];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
        headers.push(("MCP-Protocol-Version", LEGACY_VERSION));
    }
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    request("POST", &target.path, &target.host, &headers, body)
}

fn initialize_body(version: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"bench","version":"0"}}}}}}"#
    )
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn legacy_call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{MESSAGE}"}}}}}}"#
    )
}

fn progress_call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo_progress","arguments":{{"message":"{MESSAGE}"}},"_meta":{{"progressToken":{id}}}}}}}"#
    )
}

fn check(status: u16, want: u16, body: &[u8], needle: Option<&str>) -> Result<(), String> {
    if status != want || needle.is_some_and(|n| !contains(body, n.as_bytes())) {
        return Err(format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
    }
    Ok(())
}

/// Opens a legacy session on `conn`: initialize, then initialized. Returns the session id.
pub async fn open_session(conn: &mut Conn, target: &Target) -> Result<String, String> {
    let init = legacy_post(target, None, &initialize_body(LEGACY_VERSION));
    let (head, body) = conn.roundtrip(&init).await.map_err(|e| e.to_string())?;
    check(head.status, 200, &body, Some("protocolVersion"))?;
    let session = head.header("mcp-session-id").ok_or("initialize gave no Mcp-Session-Id")?.to_owned();
    let (head, body) =
        conn.roundtrip(&legacy_post(target, Some(&session), INITIALIZED)).await.map_err(|e| e.to_string())?;
    check(head.status, 202, &body, None)?;
    Ok(session)
}

/// One modern echo call on a fresh connection: whether the target answers.
pub async fn probe(target: &Target) -> Result<(), String> {
    let mut conn = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
    let (head, body) = conn.roundtrip(&modern_call(target, 1)).await.map_err(|e| e.to_string())?;
    check(head.status, 200, &body, Some(MESSAGE))
}

impl Worker {
    /// A modern worker on a fresh connection.
    pub async fn modern(target: &Target) -> Result<Self, String> {
        let conn = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
        Ok(Self::Modern { conn, target: target.clone(), id: 0 })
    }

    /// A legacy worker with its own session on a fresh connection.
    pub async fn legacy(target: &Target) -> Result<Self, String> {
        let mut conn = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
        let session = open_session(&mut conn, target).await?;
        Ok(Self::Legacy { conn, target: target.clone(), session, id: 0 })
    }

    /// A session set-up worker.
    pub async fn setup(target: &Target) -> Result<Self, String> {
        let conn = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
        Ok(Self::Setup { conn, target: target.clone(), id: 0 })
    }

    /// A worker with a connection to each of `targets`, servers sharing
    /// their sessions: it opens its session on `targets[first]`, then sends
    /// each call to the next target in turn, starting with the one after.
    pub async fn shared(targets: &[Target], first: usize, progress: bool) -> Result<Self, String> {
        let mut conns = Vec::with_capacity(targets.len());
        for target in targets {
            conns.push((Conn::connect(target.addr).await.map_err(|e| e.to_string())?, target.clone()));
        }
        let opener = first % conns.len().max(1);
        let (conn, target) = conns.get_mut(opener).ok_or("no target")?;
        let session = open_session(conn, target).await?;
        let next = (opener + 1) % conns.len();
        Ok(Self::Shared { conns, next, session, id: 0, progress })
    }

    /// An HTTP+SSE worker: opens `GET /sse`, reads the endpoint, initializes.
    pub async fn sse(target: &Target) -> Result<Self, String> {
        let mut stream = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
        let get = request("GET", "/sse", &target.host, &[("Accept", "text/event-stream")], "");
        stream.send(&get).await.map_err(|e| e.to_string())?;
        let head = stream.read_head().await.map_err(|e| e.to_string())?;
        if head.status != 200 {
            return Err(format!("GET /sse: status {}", head.status));
        }
        let mut events = SseBuffer::default();
        let endpoint = loop {
            if let Some(event) = events.next_event()
                && event.name == "endpoint"
            {
                break event.data;
            }
            match stream.read_chunk().await.map_err(|e| e.to_string())? {
                Some(chunk) => events.push(&chunk),
                None => return Err("the SSE stream ended before the endpoint event".into()),
            }
        };
        let post = Conn::connect(target.addr).await.map_err(|e| e.to_string())?;
        let mut worker = Self::Sse { post, stream, events, target: target.clone(), endpoint, id: 0 };
        worker.sse_exchange(&initialize_body("2024-11-05"), Some("protocolVersion")).await?;
        worker.sse_exchange(INITIALIZED, None).await?;
        Ok(worker)
    }

    /// POSTs `body` to the HTTP+SSE message endpoint; with `answer`, waits for
    /// the event containing it on the stream.
    async fn sse_exchange(&mut self, body: &str, answer: Option<&str>) -> Result<(), String> {
        let Self::Sse { post, stream, events, target, endpoint, .. } = self else {
            return Err("not an SSE worker".into());
        };
        let request = request("POST", endpoint, &target.host, &[], body);
        let (head, reply) = post.roundtrip(&request).await.map_err(|e| e.to_string())?;
        check(head.status, 202, &reply, None)?;
        let Some(answer) = answer else { return Ok(()) };
        loop {
            while let Some(event) = events.next_event() {
                if event.data.contains(answer) {
                    return Ok(());
                }
            }
            match stream.read_chunk().await.map_err(|e| e.to_string())? {
                Some(chunk) => events.push(&chunk),
                None => return Err("the SSE stream ended".into()),
            }
        }
    }

    /// One iteration.
    pub async fn call(&mut self) -> Result<(), String> {
        match self {
            Self::Modern { conn, target, id } => {
                *id += 1;
                let (head, body) =
                    conn.roundtrip(&modern_call(target, *id)).await.map_err(|e| e.to_string())?;
                check(head.status, 200, &body, Some(MESSAGE))
            }
            Self::Legacy { conn, target, session, id } => {
                *id += 1;
                let request = legacy_post(target, Some(session), &legacy_call_body(*id));
                let (head, body) = conn.roundtrip(&request).await.map_err(|e| e.to_string())?;
                check(head.status, 200, &body, Some(MESSAGE))
            }
            Self::Sse { id, .. } => {
                *id += 1;
                let body = legacy_call_body(*id);
                self.sse_exchange(&body, Some(MESSAGE)).await
            }
            Self::Shared { conns, next, session, id, progress } => {
                *id += 1;
                let this = *next;
                *next = (this + 1) % conns.len();
                let (conn, target) = &mut conns[this];
                let body = if *progress { progress_call_body(*id) } else { legacy_call_body(*id) };
                let request = legacy_post(target, Some(session), &body);
                let (head, body) = conn.roundtrip(&request).await.map_err(|e| e.to_string())?;
                check(head.status, 200, &body, Some(MESSAGE))?;
                let progressed = contains(&body, b"notifications/progress");
                if *progress && !progressed {
                    return Err(format!("no progress before the answer: {}", String::from_utf8_lossy(&body)));
                }
                Ok(())
            }
            Self::Setup { conn, target, id } => {
                *id += 1;
                let session = open_session(conn, target).await?;
                let list = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
                let (head, body) = conn
                    .roundtrip(&legacy_post(target, Some(&session), &list))
                    .await
                    .map_err(|e| e.to_string())?;
                check(head.status, 200, &body, Some("echo"))?;
                let auth = target.auth();
                let mut headers = vec![("Mcp-Session-Id", session.as_str())];
                headers.push(("MCP-Protocol-Version", LEGACY_VERSION));
                if let Some(auth) = &auth {
                    headers.push(("Authorization", auth));
                }
                let delete = request("DELETE", &target.path, &target.host, &headers, "");
                let (head, body) = conn.roundtrip(&delete).await.map_err(|e| e.to_string())?;
                if !(200..300).contains(&head.status) {
                    return Err(format!(
                        "DELETE: status {}: {}",
                        head.status,
                        String::from_utf8_lossy(&body)
                    ));
                }
                Ok(())
            }
        }
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Calls completed in the measured window.
    pub calls: u64,
    /// Calls that failed (the worker stops at its first failure).
    pub errors: u64,
    /// The first failure, for the log.
    pub first_error: Option<String>,
    /// Latency of each measured call, in µs.
    pub latencies_us: Vec<u32>,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Server CPU time (user + system) in the window.
    pub cpu: Duration,
}

impl Outcome {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per call, in µs.
    pub fn cpu_per_call_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / (self.calls.max(1) as f64)
    }

    /// The `q` quantile of latency, in µs.
    pub fn quantile_us(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies_us[index])
    }
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

struct Tally {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

/// Runs `workers` for `warmup`, then measures for `measure`: calls, latency,
/// and the CPU time server `pid` used meanwhile.
pub async fn run_timed(
    workers: Vec<Worker>,
    warmup: Duration,
    measure: Duration,
    pid: u32,
    ticks: u64,
) -> Outcome {
    let mut outcomes = run_timed_together(vec![(workers, vec![pid])], warmup, measure, ticks).await;
    outcomes.pop().unwrap_or_default()
}

/// Like [`run_timed`] for several groups of workers at once, each with its
/// own servers (the CPU of a group is that of all its processes): every
/// group is measured over the same window, so whatever the machine does
/// meanwhile falls on all of them alike. A group without workers measures
/// the CPU of its processes alone. One outcome per group, in order.
pub async fn run_timed_together(
    groups: Vec<(Vec<Worker>, Vec<u32>)>,
    warmup: Duration,
    measure: Duration,
    ticks: u64,
) -> Vec<Outcome> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let pids: Vec<Vec<u32>> = groups.iter().map(|(_, pids)| pids.clone()).collect();
    let cpu = |pids: &[u32]| pids.iter().map(|&pid| procfs::cpu_time(pid, ticks)).sum::<Duration>();
    let tasks: Vec<Vec<_>> = groups
        .into_iter()
        .map(|(workers, _)| {
            workers.into_iter().map(|worker| tokio::spawn(drive(worker, phase.clone()))).collect()
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let cpu_before: Vec<Duration> = pids.iter().map(|p| cpu(p)).collect();
    let started = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    tokio::time::sleep(measure).await;
    phase.store(STOP, Ordering::Release);
    let elapsed = started.elapsed();
    let cpu_after: Vec<Duration> = pids.iter().map(|p| cpu(p)).collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for ((group, before), after) in tasks.into_iter().zip(cpu_before).zip(cpu_after) {
        let mut outcome = Outcome { elapsed, cpu: after.saturating_sub(before), ..Outcome::default() };
        for task in group {
            if let Ok(tally) = task.await {
                outcome.calls += tally.calls;
                outcome.errors += tally.errors;
                if outcome.first_error.is_none() {
                    outcome.first_error = tally.first_error;
                }
                outcome.latencies_us.extend(tally.latencies_us);
            }
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// One worker's loop: calls until told to stop, counting those in the measured window.
async fn drive(mut worker: Worker, phase: Arc<AtomicU8>) -> Tally {
    let mut tally = Tally { calls: 0, errors: 0, first_error: None, latencies_us: Vec::new() };
    loop {
        let now = phase.load(Ordering::Acquire);
        if now == STOP {
            break;
        }
        let started = Instant::now();
        if let Err(e) = worker.call().await {
            tally.errors += 1;
            tally.first_error.get_or_insert(e);
            break;
        }
        if now == MEASURE {
            tally.calls += 1;
            let us = started.elapsed().as_micros();
            tally.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    tally
}

/// RSS of a server while it answers `total` calls.
#[derive(Debug, Clone, Copy)]
pub struct RssTrace {
    /// Calls answered.
    pub calls: u64,
    /// Failed calls.
    pub errors: u64,
    /// RSS after the first tenth of the calls (warm), KiB.
    pub warm_kib: u64,
    /// Highest RSS seen, KiB.
    pub peak_kib: u64,
    /// RSS at the end, KiB.
    pub end_kib: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Makes `total` calls with `workers`, sampling server `pid`'s RSS.
pub async fn run_count(workers: Vec<Worker>, total: u64, pid: u32) -> RssTrace {
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let (issued, done, errors) = (issued.clone(), done.clone(), errors.clone());
            tokio::spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    if worker.call().await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut warm_kib = 0;
    let mut peak_kib = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let rss = procfs::rss_kib(pid);
        peak_kib = peak_kib.max(rss);
        if warm_kib == 0 && done.load(Ordering::Relaxed) >= total / 10 {
            warm_kib = rss;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let end_kib = procfs::rss_kib(pid);
    RssTrace {
        calls: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        warm_kib,
        peak_kib: peak_kib.max(end_kib),
        end_kib,
        elapsed: started.elapsed(),
    }
}
