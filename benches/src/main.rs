//! `mcp-bench`: measures mcp-rs (`examples/echo`), rmcp and a bare axum
//! handler side by side in one run, and writes `results.md` and
//! `results.json`. Run it through `scripts/bench.sh`, which builds the
//! binaries and pins this runner to core 1 (the servers go to core 0).

mod auth;
mod authorization_server;
mod client;
mod load;
#[path = "../../tests/src/postgres.rs"]
mod postgres;
mod procfs;
#[path = "../../tests/src/redis.rs"]
mod redis;
mod report;
mod servers;
mod shared_sessions;
mod stdio;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use load::{Outcome, Target, Worker};
use mcp_bench::args;
use report::{Report, Row};
use servers::Running;

/// What to run and for how long.
#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    echo: PathBuf,
    notes: PathBuf,
    rmcp: PathBuf,
    floor: PathBuf,
    gateway: PathBuf,
    out: PathBuf,
    warmup: Duration,
    measure: Duration,
    concurrency: Vec<usize>,
    /// Within a server's runs, only these (`modern`, `legacy`, `sse`, `setup`, `sessions`, `rss`).
    parts: Option<Vec<String>>,
    rss_calls: u64,
    /// Rounds per auth-cost figure (even, so that each server starts last equally often).
    auth_rounds: usize,
    /// Auth-cost rounds measure each server alone, one after the other, instead of together.
    auth_alone: bool,
    sessions: usize,
    codes: usize,
    stdio_calls: u64,
}

impl Opts {
    fn wants(&self, part: &str) -> bool {
        self.parts.as_ref().is_none_or(|p| p.iter().any(|x| x == part))
    }

    fn parse() -> Self {
        let quick = args::flag("--quick");
        let path =
            |name: &str, default: &str| PathBuf::from(args::value(name).unwrap_or_else(|| default.into()));
        let number = |name: &str, full: u64, quick_value: u64| {
            args::value(name).and_then(|v| v.parse().ok()).unwrap_or(if quick { quick_value } else { full })
        };
        Self {
            quick,
            echo: path("--echo", "target/release/examples/echo"),
            notes: path("--notes", "target/release/examples/notes"),
            rmcp: path("--rmcp", "benches/target/release/rmcp-echo"),
            floor: path("--floor", "benches/target/release/floor"),
            gateway: path("--gateway", "target/release/mcp-gateway"),
            out: path("--out", "target/bench"),
            warmup: Duration::from_millis(number("--warmup-ms", 1000, 300)),
            measure: Duration::from_millis(number("--measure-ms", 4000, 1000)),
            concurrency: args::value("--concurrency")
                .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 16, 64]),
            parts: args::value("--parts").map(|v| v.split(',').map(str::to_owned).collect()),
            rss_calls: number("--rss-calls", 1_000_000, 100_000),
            auth_rounds: (number("--auth-rounds", 6, 2).max(2) as usize).next_multiple_of(2),
            auth_alone: args::flag("--auth-alone"),
            sessions: number("--sessions", 5000, 1000) as usize,
            codes: number("--codes", 300, 40) as usize,
            stdio_calls: number("--stdio-calls", 5000, 500),
        }
    }
}

/// The scenarios of the tools/call table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Modern,
    Legacy,
    Sse,
}

async fn workers(kind: Kind, target: &Target, n: usize) -> Result<Vec<Worker>, String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match kind {
            Kind::Modern => Worker::modern(target).await?,
            Kind::Legacy => Worker::legacy(target).await?,
            Kind::Sse => Worker::sse(target).await?,
        });
    }
    Ok(out)
}

struct Bench {
    opts: Opts,
    ticks: u64,
    report: Report,
    /// The PostgreSQL server of the authorization-server stores, started when first needed.
    postgres: Option<postgres::TestPostgres>,
}

impl Bench {
    fn log(&self, name: &str) -> PathBuf {
        self.opts.out.join(format!("{name}.log"))
    }

    async fn start(
        &self,
        bin: &Path,
        args: &[&str],
        envs: &[(String, String)],
        log: &str,
    ) -> Result<Running, String> {
        let port = servers::free_port().map_err(|e| e.to_string())?;
        servers::start(bin, args, envs, port, &self.log(log)).await
    }

    async fn timed(&self, workers: Vec<Worker>, pid: u32) -> Outcome {
        load::run_timed(workers, self.opts.warmup, self.opts.measure, pid, self.ticks).await
    }

    /// tools/call at every concurrency: one row each.
    async fn calls(&mut self, server: &Running, target: &Target, scenario: &str, name: &str, kind: Kind) {
        for &c in &self.opts.concurrency.clone() {
            if let Some(row) = self.measure(server, target, scenario, name, kind, c).await {
                self.report.rows.push(row);
            }
        }
    }

    /// tools/call at concurrency `c` on fresh connections: one row.
    async fn measure(
        &self,
        server: &Running,
        target: &Target,
        scenario: &str,
        name: &str,
        kind: Kind,
        c: usize,
    ) -> Option<Row> {
        let workers = self.workers(target, scenario, name, kind, c).await?;
        let outcome = self.timed(workers, server.pid).await;
        Some(row(scenario, name, c, outcome))
    }

    /// tools/call at concurrency `c` on two servers at once, over the same
    /// window: one row each, in order.
    async fn measure_together(
        &self,
        servers: [(&Running, &Target, &str); 2],
        scenario: &str,
        kind: Kind,
        c: usize,
    ) -> Option<[Row; 2]> {
        let mut groups = Vec::new();
        for (server, target, name) in servers {
            groups.push((self.workers(target, scenario, name, kind, c).await?, vec![server.pid]));
        }
        let outcomes =
            load::run_timed_together(groups, self.opts.warmup, self.opts.measure, self.ticks).await;
        let mut rows = outcomes.into_iter().zip(servers).map(|(o, (_, _, name))| row(scenario, name, c, o));
        Some([rows.next()?, rows.next()?])
    }

    async fn workers(
        &self,
        target: &Target,
        scenario: &str,
        name: &str,
        kind: Kind,
        c: usize,
    ) -> Option<Vec<Worker>> {
        match workers(kind, target, c).await {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("  {scenario} / {name} / {c}: could not start workers: {e}");
                None
            }
        }
    }

    /// Legacy sessions set up and torn down per second (16 workers).
    async fn setup_rate(&mut self, server: &Running, target: &Target, name: &str) {
        let mut workers = Vec::new();
        for _ in 0..16 {
            match Worker::setup(target).await {
                Ok(w) => workers.push(w),
                Err(e) => {
                    eprintln!("  set-up / {name}: {e}");
                    return;
                }
            }
        }
        let mut outcome = self.timed(workers, server.pid).await;
        if let Some(e) = &outcome.first_error {
            eprintln!("  set-up / {name}: {} errors, first: {e}", outcome.errors);
        }
        let (rate, p50, p99, cpu) =
            (outcome.rate(), outcome.quantile_us(0.5), outcome.quantile_us(0.99), outcome.cpu_per_call_us());
        eprintln!(
            "  session set-up {name:<22} {rate:>9.0} sessions/s  p50 {p50:.0} µs  p99 {p99:.0} µs  cpu {cpu:.1} µs"
        );
        self.report.setup.push(report::Setup {
            server: name.into(),
            sessions_per_sec: rate,
            p50_us: p50,
            p99_us: p99,
            cpu_us_per_session: cpu,
            errors: outcome.errors,
        });
    }

    /// RSS per open legacy session, on a fresh server.
    async fn session_memory(&mut self, server: &Running, target: &Target, name: &str) {
        let n = self.opts.sessions;
        let idle = procfs::rss_kib(server.pid);
        let mut conns = Vec::new();
        for _ in 0..8 {
            match client::Conn::connect(target.addr).await {
                Ok(c) => conns.push(c),
                Err(e) => return eprintln!("  sessions / {name}: {e}"),
            }
        }
        // A few sessions first, so the baseline includes warm allocator pools.
        for conn in conns.iter_mut() {
            for _ in 0..8 {
                if let Err(e) = load::open_session(conn, target).await {
                    return eprintln!("  sessions / {name}: {e}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = procfs::rss_kib(server.pid);
        let per_conn = n / conns.len();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                let target = target.clone();
                tokio::spawn(async move {
                    for _ in 0..per_conn {
                        load::open_session(&mut conn, &target).await?;
                    }
                    Ok::<_, String>(conn)
                })
            })
            .collect();
        let mut held = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(conn)) => held.push(conn),
                Ok(Err(e)) => return eprintln!("  sessions / {name}: {e}"),
                Err(e) => return eprintln!("  sessions / {name}: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = procfs::rss_kib(server.pid);
        let opened = per_conn * held.len();
        let per_session = (after.saturating_sub(before) as f64) / opened.max(1) as f64;
        eprintln!(
            "  memory {name:<22} idle {idle} KiB, {opened} sessions: {before} → {after} KiB = {per_session:.2} KiB/session"
        );
        self.report.memory.push(report::Memory {
            server: name.into(),
            idle_kib: idle,
            sessions: opened,
            before_kib: before,
            after_kib: after,
            kib_per_session: per_session,
            kib_per_1000_sessions: per_session * 1000.0,
        });
    }

    /// RSS over many calls (half modern, half legacy-session workers), on a fresh server.
    async fn rss_over_calls(&mut self, server: &Running, target: &Target) {
        let mut workers = match workers(Kind::Modern, target, 8).await {
            Ok(w) => w,
            Err(e) => return eprintln!("  rss run: {e}"),
        };
        match self::workers(Kind::Legacy, target, 8).await {
            Ok(w) => workers.extend(w),
            Err(e) => return eprintln!("  rss run: {e}"),
        }
        let before = procfs::rss_kib(server.pid);
        let trace = load::run_count(workers, self.opts.rss_calls, server.pid).await;
        eprintln!(
            "  rss over {} calls ({} errors, {:.1} s): start {before} KiB, after 10% {} KiB, peak {} KiB, end {} KiB",
            trace.calls,
            trace.errors,
            trace.elapsed.as_secs_f64(),
            trace.warm_kib,
            trace.peak_kib,
            trace.end_kib
        );
        self.report.rss = Some(report::RssRun {
            calls: trace.calls,
            errors: trace.errors,
            start_kib: before,
            after_tenth_kib: trace.warm_kib,
            peak_kib: trace.peak_kib,
            end_kib: trace.end_kib,
        });
    }

    async fn ours(&mut self) -> Result<(), String> {
        let name = report::OURS;
        let server = self.start(&self.opts.echo.clone(), &[], &[], "echo").await?;
        let target = Target::new(server.addr);
        self.report.idle.push((name.into(), procfs::rss_kib(server.pid)));
        if self.opts.wants("modern") {
            self.calls(&server, &target, report::MODERN, name, Kind::Modern).await;
        }
        if self.opts.wants("legacy") {
            self.calls(&server, &target, report::LEGACY, name, Kind::Legacy).await;
        }
        if self.opts.wants("sse") {
            self.calls(&server, &target, report::SSE, name, Kind::Sse).await;
        }
        if self.opts.wants("setup") {
            self.setup_rate(&server, &target, name).await;
        }
        drop(server);
        if self.opts.wants("sessions") {
            let server = self.start(&self.opts.echo.clone(), &[], &[], "echo-sessions").await?;
            self.session_memory(&server, &Target::new(server.addr), name).await;
        }
        if self.opts.wants("rss") {
            let server = self.start(&self.opts.echo.clone(), &[], &[], "echo-rss").await?;
            self.rss_over_calls(&server, &Target::new(server.addr)).await;
        }
        Ok(())
    }

    /// What mcp-gateway adds to a call: modern tools/call to the echo
    /// server directly, then through the gateway to an echo upstream over
    /// Streamable HTTP and to one over stdio. The gateway rows' CPU is the
    /// gateway process's alone, so it reads as the CPU added per call.
    async fn gateway(&mut self) -> Result<(), String> {
        let upstream = self.start(&self.opts.echo.clone(), &[], &[], "gateway-upstream").await?;
        let config = self.opts.out.join("gateway.toml");
        let echo = std::path::absolute(&self.opts.echo).map_err(|e| e.to_string())?;
        // Each upstream's concurrency cap (32 by default) at the highest concurrency measured, as
        // echo direct takes every call at once: the rounds measure forwarding, not calls waiting
        // for a permit.
        let cap = self.opts.concurrency.iter().copied().max().unwrap_or(1);
        let text = format!(
            "[app.upstreams.http]\nurl = \"http://{}/mcp\"\nmax_concurrency = {cap}\n\
             [app.upstreams.stdio]\ncommand = {:?}\nmax_concurrency = {cap}\n",
            upstream.addr,
            echo.display().to_string()
        );
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        let config_arg = config.display().to_string();
        let gateway =
            self.start(&self.opts.gateway.clone(), &["--config", &config_arg], &[], "gateway").await?;
        let direct = Target::new(upstream.addr);
        let through = |path: &str| Target { path: path.into(), ..Target::new(gateway.addr) };
        let (http, stdio) = (through("/http/mcp"), through("/stdio/mcp"));
        // The upstreams connect in the background: wait until both answer.
        for target in [&http, &stdio] {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while load::probe(target).await.is_err() {
                if std::time::Instant::now() > deadline {
                    return Err(format!("the gateway's {} upstream did not answer within 20 s", target.path));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for &c in &self.opts.concurrency.clone() {
            for (server, target, name) in [
                (&upstream, &direct, report::GATEWAY_DIRECT),
                (&gateway, &http, report::GATEWAY_HTTP),
                (&gateway, &stdio, report::GATEWAY_STDIO),
            ] {
                if let Some(row) = self.measure(server, target, report::GATEWAY, name, Kind::Modern, c).await
                {
                    self.report.rows.push(row);
                }
            }
        }
        Ok(())
    }

    /// Resource-server auth: each figure once on its own (in the tools/call
    /// table), then its cost, in rounds in which a server without auth and
    /// one with it serve at the same time on the same core; a control pair
    /// of two servers without auth, measured the same way in the same
    /// rounds, shows what the method itself reads as a cost. Every round
    /// starts fresh servers, so that no one process's luck (where its code
    /// and heap landed) decides a figure.
    async fn ours_with_auth(&mut self) -> Result<(), String> {
        let issuer = auth::Issuer::start().await?;
        let off = format!("{} (auth off)", report::OURS);
        let off_again = format!("{} (auth off, control)", report::OURS);
        for (part, kind, scenario) in
            [("modern", Kind::Modern, report::MODERN_AUTH), ("legacy", Kind::Legacy, report::LEGACY_AUTH)]
        {
            if !self.opts.wants(part) {
                continue;
            }
            for &c in &self.opts.concurrency.clone() {
                let mut cost = report::AuthCost::new(scenario, c, !self.opts.auth_alone);
                for round in 0..self.opts.auth_rounds {
                    let (on, on_target) = self.echo_with_auth(&issuer).await?;
                    if round == 0
                        && let Some(row) =
                            self.measure(&on, &on_target, scenario, report::OURS, kind, c).await
                    {
                        self.report.rows.push(row);
                    }
                    let without = self.start(&self.opts.echo.clone(), &[], &[], "echo-auth-baseline").await?;
                    let control = self.start(&self.opts.echo.clone(), &[], &[], "echo-auth-control").await?;
                    let (without_target, control_target) =
                        (Target::new(without.addr), Target::new(control.addr));
                    let baseline = (&without, &without_target, off.as_str());
                    let with = (&on, &on_target, report::OURS);
                    if let Some(pair) = self.paired(round, baseline, with, scenario, kind, c).await {
                        cost.rounds.push(pair);
                    }
                    let again = (&control, &control_target, off_again.as_str());
                    if let Some(pair) = self.paired(round, baseline, again, scenario, kind, c).await {
                        cost.control.push(pair);
                    }
                }
                self.report.auth.push(cost);
            }
        }
        Ok(())
    }

    /// `examples/echo` as a resource server trusting `issuer`, and a target
    /// carrying a token for it.
    async fn echo_with_auth(&self, issuer: &auth::Issuer) -> Result<(Running, Target), String> {
        let port = servers::free_port().map_err(|e| e.to_string())?;
        let origin = format!("http://127.0.0.1:{port}");
        let envs = [
            ("MCP_SERVER__PUBLIC_URL".to_owned(), origin.clone()),
            ("MCP_AUTH__MODE".to_owned(), "resource_server".to_owned()),
            ("MCP_AUTH__RESOURCE_SERVER__ISSUER".to_owned(), issuer.url.clone()),
        ];
        let server = servers::start(&self.opts.echo, &[], &envs, port, &self.log("echo-auth")).await?;
        let mut target = Target::new(server.addr);
        target.bearer = Some(issuer.token(&format!("{origin}/mcp"), "bench-user")?);
        Ok((server, target))
    }

    /// `a` and `b` measured together (or, with `--auth-alone`, each alone in
    /// turn). The load generator favours the group of workers it started
    /// last by a few per cent, so which one starts last (or goes first)
    /// alternates by round.
    async fn paired(
        &self,
        round: usize,
        a: (&Running, &Target, &str),
        b: (&Running, &Target, &str),
        scenario: &str,
        kind: Kind,
        c: usize,
    ) -> Option<(Row, Row)> {
        if self.opts.auth_alone {
            let (first, second) = if round.is_multiple_of(2) { (a, b) } else { (b, a) };
            let first = self.measure(first.0, first.1, scenario, first.2, kind, c).await?;
            let second = self.measure(second.0, second.1, scenario, second.2, kind, c).await?;
            return Some(if round.is_multiple_of(2) { (first, second) } else { (second, first) });
        }
        if round.is_multiple_of(2) {
            let [a, b] = self.measure_together([a, b], scenario, kind, c).await?;
            Some((a, b))
        } else {
            let [b, a] = self.measure_together([b, a], scenario, kind, c).await?;
            Some((a, b))
        }
    }

    async fn rmcp(&mut self) -> Result<(), String> {
        let rmcp = self.opts.rmcp.clone();
        let server = self.start(&rmcp, &["--mode", "stateless"], &[], "rmcp-stateless").await?;
        let target = Target::new(server.addr);
        self.report.idle.push((report::RMCP_STATELESS.into(), procfs::rss_kib(server.pid)));
        self.calls(&server, &target, report::MODERN, report::RMCP_STATELESS, Kind::Modern).await;
        drop(server);
        let server = self.start(&rmcp, &["--mode", "session"], &[], "rmcp-session").await?;
        let target = Target::new(server.addr);
        self.report.idle.push((report::RMCP_SESSION.into(), procfs::rss_kib(server.pid)));
        self.calls(&server, &target, report::LEGACY, report::RMCP_SESSION, Kind::Legacy).await;
        self.setup_rate(&server, &target, report::RMCP_SESSION).await;
        drop(server);
        let server = self.start(&rmcp, &["--mode", "session"], &[], "rmcp-sessions").await?;
        self.session_memory(&server, &Target::new(server.addr), report::RMCP_SESSION).await;
        Ok(())
    }

    async fn floor(&mut self) -> Result<(), String> {
        let server = self.start(&self.opts.floor.clone(), &[], &[], "floor").await?;
        let target = Target::new(server.addr);
        self.report.idle.push((report::FLOOR.into(), procfs::rss_kib(server.pid)));
        self.calls(&server, &target, report::MODERN, report::FLOOR, Kind::Modern).await;
        Ok(())
    }

    async fn stdio(&mut self) {
        let runs: [(&str, PathBuf, &[&str]); 2] = [
            (report::OURS, self.opts.echo.clone(), &[]),
            (report::RMCP, self.opts.rmcp.clone(), &["--stdio"]),
        ];
        for (name, bin, args) in runs {
            match stdio::round_trips(&bin, args, self.opts.stdio_calls).await {
                Ok(latencies) => {
                    let mut outcome = Outcome { latencies_us: latencies, ..Outcome::default() };
                    let (p50, p99) = (outcome.quantile_us(0.5), outcome.quantile_us(0.99));
                    eprintln!("  stdio {name:<22} p50 {p50:.0} µs  p99 {p99:.0} µs");
                    self.report.stdio.push(report::Stdio {
                        server: name.into(),
                        calls: outcome.latencies_us.len(),
                        p50_us: p50,
                        p99_us: p99,
                    });
                }
                Err(e) => eprintln!("  stdio / {name}: {e}"),
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let opts = Opts::parse();
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("{}: {e}", opts.out.display());
        return ExitCode::FAILURE;
    }
    let mut bench =
        Bench { report: Report::new(opts.quick), ticks: procfs::clock_ticks(), opts, postgres: None };
    let only = args::value("--only");
    let wants = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p == part));
    eprintln!(
        "mcp-bench: {} mode, results in {}",
        if bench.opts.quick { "quick" } else { "full" },
        bench.opts.out.display()
    );
    let mut failed = false;
    if wants("floor")
        && let Err(e) = bench.floor().await
    {
        eprintln!("floor: {e}");
        failed = true;
    }
    if wants("rmcp")
        && let Err(e) = bench.rmcp().await
    {
        eprintln!("rmcp: {e}");
        failed = true;
    }
    if wants("ours")
        && let Err(e) = bench.ours().await
    {
        eprintln!("mcp-rs: {e}");
        failed = true;
    }
    if wants("auth")
        && let Err(e) = bench.ours_with_auth().await
    {
        eprintln!("mcp-rs with auth: {e}");
        failed = true;
    }
    if wants("as") {
        for store in authorization_server::STORES {
            if let Err(e) = bench.authorization_server(store).await {
                eprintln!("authorization server ({store:?} store): {e}");
                failed = true;
            }
        }
    }
    if wants("stores")
        && let Err(e) = bench.stores().await
    {
        eprintln!("authorization-server stores: {e}");
        failed = true;
    }
    if wants("redis")
        && let Err(e) = bench.shared_sessions().await
    {
        eprintln!("legacy sessions shared through Redis: {e}");
        failed = true;
    }
    if wants("stdio") {
        bench.stdio().await;
    }
    if wants("gateway")
        && let Err(e) = bench.gateway().await
    {
        eprintln!("gateway: {e}");
        failed = true;
    }
    bench.report.finish();
    let markdown = bench.report.markdown();
    let json = bench.report.json();
    let out = &bench.opts.out;
    let written = std::fs::write(out.join("results.md"), &markdown)
        .and_then(|()| std::fs::write(out.join("results.json"), json));
    if let Err(e) = written {
        eprintln!("writing results: {e}");
        return ExitCode::FAILURE;
    }
    println!("{markdown}");
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// One table row from a measured run, also logged.
fn row(scenario: &str, name: &str, c: usize, mut outcome: Outcome) -> Row {
    if let Some(e) = &outcome.first_error {
        eprintln!("  {scenario} / {name} / {c}: {} errors, first: {e}", outcome.errors);
    }
    let row = Row {
        scenario: scenario.into(),
        server: name.into(),
        concurrency: c,
        calls: outcome.calls,
        errors: outcome.errors,
        calls_per_sec: outcome.rate(),
        p50_us: outcome.quantile_us(0.50),
        p99_us: outcome.quantile_us(0.99),
        cpu_us_per_call: outcome.cpu_per_call_us(),
    };
    eprintln!(
        "  {scenario:<26} {name:<22} c={c:<3} {:>9.0} calls/s  p50 {:>6.0} µs  p99 {:>6.0} µs  cpu {:>6.1} µs/call",
        row.calls_per_sec, row.p50_us, row.p99_us, row.cpu_us_per_call
    );
    row
}
