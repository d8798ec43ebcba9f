//! The results: rows as measured, ratios to rmcp and to the floor, the
//! issue's targets checked against them, as Markdown and JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// This framework.
pub const OURS: &str = "mcp-rs";
/// rmcp over stdio.
pub const RMCP: &str = "rmcp";
/// rmcp, stateless with JSON replies.
pub const RMCP_STATELESS: &str = "rmcp stateless (JSON)";
/// rmcp, legacy sessions with SSE replies (its default).
pub const RMCP_SESSION: &str = "rmcp session (SSE)";
/// The bare axum handler.
pub const FLOOR: &str = "floor (bare axum)";

/// Stateless 2026-07-28 requests.
pub const MODERN: &str = "modern stateless";
/// Legacy Streamable HTTP sessions.
pub const LEGACY: &str = "legacy session";
/// 2024-11-05 HTTP+SSE.
pub const SSE: &str = "legacy HTTP+SSE";
/// Modern requests with a bearer JWT.
pub const MODERN_AUTH: &str = "modern + RS auth";
/// Legacy sessions with a bearer JWT.
pub const LEGACY_AUTH: &str = "legacy session + RS auth";
/// Modern requests with a bearer token from the built-in authorization server.
pub const MODERN_AS: &str = "modern + AS auth";
/// Legacy sessions held in memory or shared through Redis.
pub const SHARED: &str = "legacy session, Redis";
/// One server, its sessions in memory.
pub const SHARED_MEMORY: &str = "1 server, in memory";
/// One server with `[redis] url`.
pub const SHARED_ONE: &str = "1 server + Redis";
/// Two servers sharing one Redis, each session's requests alternating between them.
pub const SHARED_TWO: &str = "2 servers + Redis, alternating";

/// Modern requests to the echo server directly and through mcp-gateway.
pub const GATEWAY: &str = "modern, through mcp-gateway";
/// The echo server, called directly (the gateway rows' baseline).
pub const GATEWAY_DIRECT: &str = "echo, direct";
/// The gateway in front of echo over Streamable HTTP (CPU: the gateway's own).
pub const GATEWAY_HTTP: &str = "gateway → echo (HTTP)";
/// The gateway in front of echo over stdio (CPU: the gateway's own).
pub const GATEWAY_STDIO: &str = "gateway → echo (stdio)";

/// One tools/call measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub server: String,
    pub concurrency: usize,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_call: f64,
}

/// Session set-up rate.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub server: String,
    pub sessions_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_session: f64,
    pub errors: u64,
}

/// Memory per open legacy session.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub server: String,
    pub idle_kib: u64,
    pub sessions: usize,
    pub before_kib: u64,
    pub after_kib: u64,
    pub kib_per_session: f64,
    pub kib_per_1000_sessions: f64,
}

/// RSS over a long run of calls.
#[derive(Debug, Clone, Serialize)]
pub struct RssRun {
    pub calls: u64,
    pub errors: u64,
    pub start_kib: u64,
    pub after_tenth_kib: u64,
    pub peak_kib: u64,
    pub end_kib: u64,
}

/// The built-in authorization server's store on SQLite.
pub const SQLITE: &str = "SQLite";
/// The built-in authorization server's store on PostgreSQL.
pub const POSTGRES: &str = "PostgreSQL";

/// `/token` rates of the built-in authorization server with one store.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationServer {
    pub store: String,
    pub exchanges: usize,
    pub exchanges_per_sec: f64,
    pub cpu_us_per_exchange: f64,
    pub refreshes: u64,
    pub refreshes_per_sec: f64,
    pub cpu_us_per_refresh: f64,
    /// CPU of the database server's processes, when it runs apart (PostgreSQL).
    pub database_cpu_us_per_exchange: Option<f64>,
    pub database_cpu_us_per_refresh: Option<f64>,
}

/// Modern tools/call to `examples/echo` behind the built-in authorization
/// server with one store: every call's token goes through its revocation check.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRow {
    pub store: String,
    pub row: Row,
    /// CPU of the database server's processes per call (PostgreSQL), over
    /// the warm-up and the window together.
    pub database_cpu_us_per_call: Option<f64>,
}

/// tools/call in legacy sessions held by one server, by one server with
/// Redis, or by two servers sharing Redis.
#[derive(Debug, Clone, Serialize)]
pub struct SharedSessionRow {
    /// Who holds the sessions ([`SHARED_MEMORY`], [`SHARED_ONE`], [`SHARED_TWO`]).
    pub sessions: String,
    /// The tool called: `echo` (a JSON answer) or `echo_progress` (an SSE stream).
    pub tool: String,
    /// Server CPU is that of every server of the row together.
    pub row: Row,
    /// CPU of the Redis server per call, over the same window.
    pub redis_cpu_us_per_call: f64,
}

/// The cost of resource-server auth at one concurrency, measured in rounds
/// of fresh servers. By default a server without auth and one with auth
/// serve at the same time, pinned to the same core: each gets half of it, so
/// the ratio of their calls/s is the ratio of what one core serves with and
/// without auth, and whatever else the machine does falls on both alike.
/// With `--auth-alone` each is measured alone in turn.
#[derive(Debug, Clone, Serialize)]
pub struct AuthCost {
    pub scenario: String,
    pub concurrency: usize,
    /// Whether each round measured both servers at the same time on one
    /// core (the default), or each alone in turn (`--auth-alone`).
    pub together: bool,
    /// (without auth, with auth) per round.
    pub rounds: Vec<(Row, Row)>,
    /// The same rounds between two servers without auth: what the method
    /// itself reads as a cost, ideally 0.
    pub control: Vec<(Row, Row)>,
}

impl AuthCost {
    /// No rounds yet.
    pub fn new(scenario: &str, concurrency: usize, together: bool) -> Self {
        Self { scenario: scenario.into(), concurrency, together, rounds: Vec::new(), control: Vec::new() }
    }

    /// The share of throughput auth costs: `1 − on ÷ off`, from the
    /// geometric mean of the rounds' ratios.
    pub fn cost(&self) -> Option<f64> {
        cost_of(&self.rounds)
    }

    /// What the control rounds read as a cost.
    pub fn control_cost(&self) -> Option<f64> {
        cost_of(&self.control)
    }
}

fn cost_of(rounds: &[(Row, Row)]) -> Option<f64> {
    if rounds.is_empty() {
        return None;
    }
    let log_sum: f64 = rounds.iter().map(|(a, b)| (b.calls_per_sec / a.calls_per_sec).ln()).sum();
    Some(1.0 - (log_sum / rounds.len() as f64).exp())
}

/// A database's own CPU figure, or a note that it is in the server's (SQLite).
fn in_process(cpu_us: Option<f64>, decimals: usize) -> String {
    cpu_us.map_or_else(|| "(in the server's)".to_owned(), |c| format!("{c:.decimals$}"))
}

/// stdio round-trip latency.
#[derive(Debug, Clone, Serialize)]
pub struct Stdio {
    pub server: String,
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One target of the issue, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub target: String,
    pub measured: String,
    pub holds: bool,
}

/// Everything one run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub quick: bool,
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub setup: Vec<Setup>,
    pub idle: Vec<(String, u64)>,
    pub memory: Vec<Memory>,
    pub rss: Option<RssRun>,
    pub authorization_server: Vec<AuthorizationServer>,
    pub stores: Vec<StoreRow>,
    pub shared_sessions: Vec<SharedSessionRow>,
    pub auth: Vec<AuthCost>,
    pub stdio: Vec<Stdio>,
    pub checks: Vec<Check>,
}

/// Where the run happened.
#[derive(Debug, Default, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub started: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_owned()
}

fn command(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

impl Report {
    /// A report for a run starting now.
    pub fn new(quick: bool) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)))
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let machine = Machine {
            // Not available_parallelism: this runner is pinned to one core.
            nproc: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
            cpu,
            kernel: command("uname", &["-sr"]),
            load_before: read("/proc/loadavg"),
            load_after: String::new(),
            started: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        };
        Self { quick, machine, ..Self::default() }
    }

    fn row(&self, scenario: &str, server: &str, concurrency: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.server == server && r.concurrency == concurrency)
    }

    /// The rmcp row a row is compared with.
    fn rmcp_of(&self, row: &Row) -> Option<&Row> {
        let (scenario, server) = match row.scenario.as_str() {
            MODERN | MODERN_AUTH => (MODERN, RMCP_STATELESS),
            LEGACY | LEGACY_AUTH => (LEGACY, RMCP_SESSION),
            _ => return None,
        };
        self.row(scenario, server, row.concurrency)
    }

    fn floor_of(&self, row: &Row) -> Option<&Row> {
        self.row(MODERN, FLOOR, row.concurrency)
    }

    /// Records the end-of-run load and checks the targets.
    pub fn finish(&mut self) {
        self.machine.load_after = read("/proc/loadavg");
        let mut checks = Vec::new();
        for (scenario, rmcp) in [(MODERN, RMCP_STATELESS), (LEGACY, RMCP_SESSION)] {
            for c in [16, 64] {
                let (Some(ours), Some(theirs)) = (self.row(scenario, OURS, c), self.row(scenario, rmcp, c))
                else {
                    continue;
                };
                let cpu = ours.cpu_us_per_call / theirs.cpu_us_per_call;
                checks.push(Check {
                    target: format!("{scenario}, {c} concurrent: CPU/call ≤ 0.5 × {rmcp}"),
                    measured: format!(
                        "{:.1} vs {:.1} µs = {cpu:.2}×",
                        ours.cpu_us_per_call, theirs.cpu_us_per_call
                    ),
                    holds: cpu <= 0.5,
                });
                checks.push(Check {
                    target: format!("{scenario}, {c} concurrent: calls/s ≥ {rmcp}"),
                    measured: format!("{:.0} vs {:.0}", ours.calls_per_sec, theirs.calls_per_sec),
                    holds: ours.calls_per_sec >= theirs.calls_per_sec,
                });
                checks.push(Check {
                    target: format!("{scenario}, {c} concurrent: p99 ≤ {rmcp}"),
                    measured: format!("{:.0} vs {:.0} µs", ours.p99_us, theirs.p99_us),
                    holds: ours.p99_us <= theirs.p99_us,
                });
            }
        }
        let setup = |name: &str| self.setup.iter().find(|s| s.server == name);
        if let (Some(ours), Some(theirs)) = (setup(OURS), setup(RMCP_SESSION)) {
            let ratio = ours.sessions_per_sec / theirs.sessions_per_sec;
            checks.push(Check {
                target: "legacy session set-up ≥ 2 × rmcp".into(),
                measured: format!(
                    "{:.0} vs {:.0} sessions/s = {ratio:.2}×",
                    ours.sessions_per_sec, theirs.sessions_per_sec
                ),
                holds: ratio >= 2.0,
            });
        }
        if let Some(memory) = self.memory.iter().find(|m| m.server == OURS) {
            checks.push(Check {
                target: "≤ 8 KiB per open legacy session".into(),
                measured: format!("{:.2} KiB ({} sessions)", memory.kib_per_session, memory.sessions),
                holds: memory.kib_per_session <= 8.0,
            });
        }
        for pair in &self.auth {
            let Some(cost) = pair.cost() else { continue };
            let control = pair.control_cost().map_or(String::new(), |c| {
                format!("; control, auth off against auth off: {:+.1}%", -c * 100.0)
            });
            checks.push(Check {
                target: format!("{}, {} concurrent: costs ≤ 10% of calls/s", pair.scenario, pair.concurrency),
                measured: format!(
                    "{:+.1}% ({} rounds, {}{control})",
                    -cost * 100.0,
                    pair.rounds.len(),
                    if pair.together {
                        "both servers at once on one core"
                    } else {
                        "each server alone in turn"
                    },
                ),
                holds: cost <= 0.10,
            });
        }
        if let Some(rss) = &self.rss {
            let growth = rss.end_kib as f64 / rss.after_tenth_kib.max(1) as f64 - 1.0;
            checks.push(Check {
                target: format!("flat RSS over {} calls (end ≤ 5% above the warm level)", rss.calls),
                measured: format!(
                    "{} KiB after 10%, {} KiB at the end ({:+.1}%), peak {} KiB",
                    rss.after_tenth_kib,
                    rss.end_kib,
                    growth * 100.0,
                    rss.peak_kib
                ),
                holds: growth <= 0.05 && rss.errors == 0,
            });
        }
        self.checks = checks;
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ =
            writeln!(out, "## Results ({} run, {})\n", if self.quick { "quick" } else { "full" }, m.started);
        let _ = writeln!(
            out,
            "Machine: {} cores, {}, {}. Load average before: `{}`, after: `{}`.\n",
            m.nproc, m.cpu, m.kernel, m.load_before, m.load_after
        );
        let _ = writeln!(out, "### tools/call\n");
        let _ = writeln!(
            out,
            "| scenario | server | conc. | calls/s | p50 µs | p99 µs | CPU µs/call | calls/s ÷ rmcp | CPU ÷ rmcp | p99 ÷ rmcp | calls/s ÷ floor | CPU ÷ floor |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let ratio = |a: f64, b: Option<f64>| b.map_or("—".to_owned(), |b| format!("{:.2}", a / b));
        for row in &self.rows {
            let rmcp = self.rmcp_of(row);
            let floor = self.floor_of(row);
            let errors = if row.errors > 0 { format!(" ({} errors)", row.errors) } else { String::new() };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0}{errors} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
                row.scenario,
                row.server,
                row.concurrency,
                row.calls_per_sec,
                row.p50_us,
                row.p99_us,
                row.cpu_us_per_call,
                ratio(row.calls_per_sec, rmcp.map(|r| r.calls_per_sec)),
                ratio(row.cpu_us_per_call, rmcp.map(|r| r.cpu_us_per_call)),
                ratio(row.p99_us, rmcp.map(|r| r.p99_us)),
                ratio(row.calls_per_sec, floor.map(|r| r.calls_per_sec)),
                ratio(row.cpu_us_per_call, floor.map(|r| r.cpu_us_per_call)),
            );
        }
        if !self.auth.is_empty() {
            let how = if self.auth.iter().all(|a| a.together) {
                "measured at the same time on one core"
            } else {
                "each measured alone in turn"
            };
            let _ = writeln!(
                out,
                "\n### Resource-server auth cost (per round, fresh servers without and with auth, {how})\n"
            );
            let _ = writeln!(
                out,
                "| scenario | conc. | round | servers | calls/s | calls/s | ratio − 1 | CPU µs/call | CPU µs/call |"
            );
            let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|");
            for pair in &self.auth {
                let sets = [("off / on", &pair.rounds), ("off / off (control)", &pair.control)];
                for (servers, rounds) in sets {
                    for (i, (a, b)) in rounds.iter().enumerate() {
                        let _ = writeln!(
                            out,
                            "| {} | {} | {} | {servers} | {:.0} | {:.0} | {:+.1}% | {:.1} | {:.1} |",
                            pair.scenario,
                            pair.concurrency,
                            i + 1,
                            a.calls_per_sec,
                            b.calls_per_sec,
                            (b.calls_per_sec / a.calls_per_sec - 1.0) * 100.0,
                            a.cpu_us_per_call,
                            b.cpu_us_per_call
                        );
                    }
                }
            }
        }
        if !self.setup.is_empty() {
            let rmcp = self.setup.iter().find(|s| s.server == RMCP_SESSION).map(|s| s.sessions_per_sec);
            let _ = writeln!(
                out,
                "\n### Legacy session set-up (initialize, initialized, tools/list, DELETE; 16 concurrent)\n"
            );
            let _ = writeln!(
                out,
                "| server | sessions/s | p50 µs | p99 µs | CPU µs/session | sessions/s ÷ rmcp |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            for s in &self.setup {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
                    s.server,
                    s.sessions_per_sec,
                    s.p50_us,
                    s.p99_us,
                    s.cpu_us_per_session,
                    ratio(s.sessions_per_sec, rmcp)
                );
            }
        }
        let _ = writeln!(out, "\n### Memory\n");
        let _ = writeln!(
            out,
            "| server | idle RSS KiB | open sessions | RSS before → after KiB | KiB per session | KiB per 1,000 sessions |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (server, idle) in &self.idle {
            match self.memory.iter().find(|m| &m.server == server) {
                Some(m) => {
                    let _ = writeln!(
                        out,
                        "| {server} | {idle} | {} | {} → {} | {:.2} | {:.0} |",
                        m.sessions, m.before_kib, m.after_kib, m.kib_per_session, m.kib_per_1000_sessions
                    );
                }
                None => {
                    let _ = writeln!(out, "| {server} | {idle} | — | — | — | — |");
                }
            }
        }
        if let Some(rss) = &self.rss {
            let _ = writeln!(
                out,
                "\nRSS of {OURS} over {} calls (8 modern + 8 legacy-session workers, {} errors): {} KiB at start, {} KiB after the first 10%, {} KiB peak, {} KiB at the end.",
                rss.calls, rss.errors, rss.start_kib, rss.after_tenth_kib, rss.peak_kib, rss.end_kib
            );
        }
        if !self.authorization_server.is_empty() {
            let _ = writeln!(out, "\n### Authorization server `/token` (notes example, 16 concurrent)\n");
            let _ = writeln!(
                out,
                "| store | grant | count | per second | server CPU µs each | database CPU µs each |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
            for a in &self.authorization_server {
                let grants = [
                    (
                        "authorization_code exchange",
                        a.exchanges as u64,
                        a.exchanges_per_sec,
                        a.cpu_us_per_exchange,
                        a.database_cpu_us_per_exchange,
                    ),
                    (
                        "refresh_token rotation",
                        a.refreshes,
                        a.refreshes_per_sec,
                        a.cpu_us_per_refresh,
                        a.database_cpu_us_per_refresh,
                    ),
                ];
                for (grant, count, rate, cpu, database) in grants {
                    let _ = writeln!(
                        out,
                        "| {} | {grant} | {count} | {rate:.0} | {cpu:.0} | {} |",
                        a.store,
                        in_process(database, 0)
                    );
                }
            }
        }
        if !self.stores.is_empty() {
            let _ = writeln!(
                out,
                "\n### {MODERN} tools/call behind the built-in authorization server, by store (echo example)\n"
            );
            let _ = writeln!(
                out,
                "| store | conc. | calls/s | p50 µs | p99 µs | server CPU µs/call | database CPU µs/call |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            for s in &self.stores {
                let r = &s.row;
                let errors = if r.errors > 0 { format!(" ({} errors)", r.errors) } else { String::new() };
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0}{errors} | {:.0} | {:.0} | {:.1} | {} |",
                    s.store,
                    r.concurrency,
                    r.calls_per_sec,
                    r.p50_us,
                    r.p99_us,
                    r.cpu_us_per_call,
                    in_process(s.database_cpu_us_per_call, 1)
                );
            }
        }
        if !self.shared_sessions.is_empty() {
            let _ = writeln!(
                out,
                "\n### tools/call in legacy 2025-11-25 sessions, in memory and shared through Redis (echo example)\n"
            );
            let _ = writeln!(
                out,
                "| sessions | tool | conc. | calls/s | p50 µs | p99 µs | server CPU µs/call | Redis CPU µs/call |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
            for s in &self.shared_sessions {
                let r = &s.row;
                let errors = if r.errors > 0 { format!(" ({} errors)", r.errors) } else { String::new() };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.0}{errors} | {:.0} | {:.0} | {:.1} | {:.1} |",
                    s.sessions,
                    s.tool,
                    r.concurrency,
                    r.calls_per_sec,
                    r.p50_us,
                    r.p99_us,
                    r.cpu_us_per_call,
                    s.redis_cpu_us_per_call
                );
            }
        }
        if !self.stdio.is_empty() {
            let _ = writeln!(out, "\n### stdio round trip (sequential tools/call)\n");
            let _ = writeln!(out, "| server | calls | p50 µs | p99 µs |");
            let _ = writeln!(out, "|---|---:|---:|---:|");
            for s in &self.stdio {
                let _ = writeln!(out, "| {} | {} | {:.0} | {:.0} |", s.server, s.calls, s.p50_us, s.p99_us);
            }
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out, "\n### Targets\n");
            let _ = writeln!(out, "| target | measured | holds |");
            let _ = writeln!(out, "|---|---|---|");
            for c in &self.checks {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    c.target,
                    c.measured,
                    if c.holds { "yes" } else { "**no**" }
                );
            }
        }
        out
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
