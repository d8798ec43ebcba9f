//! Legacy 2025-11-25 sessions shared through Redis (part `redis`):
//! tools/call in sessions held by one `examples/echo` in memory, by one with
//! `[redis] url`, and by two sharing one Redis, each session's requests
//! alternating between them, so that each serves sessions the other opened.
//! A throwaway Redis (`tests/src/redis.rs`), pinned to core 0 with the
//! servers; its CPU is measured over the same window as theirs.

use std::time::Duration;

use crate::load::{self, Target, Worker};
use crate::redis::TestRedis;
use crate::servers::{self, Running};
use crate::{Bench, report, row};

/// The servers holding one kind of session, and where to reach them.
struct Holders {
    name: &'static str,
    servers: Vec<Running>,
    targets: Vec<Target>,
}

impl Holders {
    fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.pid).collect()
    }
}

/// The tools called: `echo` answers with JSON, `echo_progress` (asked with a
/// progress token) with an SSE stream, whose events go to Redis too.
const TOOLS: [(&str, bool); 2] = [("echo", false), ("echo_progress", true)];

impl Bench {
    /// `count` echo servers, with `[redis] url` and `key_prefix` when `redis` is given.
    async fn holders(
        &self,
        name: &'static str,
        count: usize,
        redis: Option<(&str, &str)>,
        log: &str,
    ) -> Result<Holders, String> {
        let envs: Vec<(String, String)> = redis
            .map(|(url, prefix)| {
                vec![
                    ("MCP_REDIS__URL".to_owned(), url.to_owned()),
                    ("MCP_REDIS__KEY_PREFIX".to_owned(), prefix.to_owned()),
                ]
            })
            .unwrap_or_default();
        let mut servers = Vec::with_capacity(count);
        for i in 0..count {
            servers.push(self.start(&self.opts.echo.clone(), &[], &envs, &format!("{log}-{i}")).await?);
        }
        let targets = servers.iter().map(|s| Target::new(s.addr)).collect();
        Ok(Holders { name, servers, targets })
    }

    /// tools/call in legacy sessions, at each concurrency: the sessions in
    /// memory, then with Redis on one server, then on two, for each tool.
    pub(crate) async fn shared_sessions(&mut self) -> Result<(), String> {
        let redis = TestRedis::start().map_err(|e| format!("Redis: {e}"))?;
        let redis_pid = redis.pid().ok_or("Redis is not running")?;
        servers::pin(redis_pid, "0")?;
        eprintln!("  Redis on port {} (pid {redis_pid}, pinned to core 0)", redis.port());
        let url = redis.url();
        // Each set of servers under its own key prefix, so that none hears another's notes.
        let holders = [
            self.holders(report::SHARED_MEMORY, 1, None, "redis-memory").await?,
            self.holders(report::SHARED_ONE, 1, Some((&url, "bench-one")), "redis-one").await?,
            self.holders(report::SHARED_TWO, 2, Some((&url, "bench-two")), "redis-two").await?,
        ];
        for &c in &self.opts.concurrency.clone() {
            for (tool, progress) in TOOLS {
                for holders in &holders {
                    if let Some(result) = self.shared_row(holders, redis_pid, tool, progress, c).await {
                        self.report.shared_sessions.push(result);
                    }
                }
            }
        }
        Ok(())
    }

    /// One row: `c` workers, each with its own session, opened on the
    /// servers in turn, and calls `tool` alternating between them.
    async fn shared_row(
        &self,
        holders: &Holders,
        redis_pid: u32,
        tool: &str,
        progress: bool,
        c: usize,
    ) -> Option<report::SharedSessionRow> {
        let name = format!("{}, {tool}", holders.name);
        let mut workers = Vec::with_capacity(c);
        for i in 0..c {
            match Worker::shared(&holders.targets, i, progress).await {
                Ok(w) => workers.push(w),
                Err(e) => {
                    eprintln!("  {} / {name} / {c}: could not start workers: {e}", report::SHARED);
                    return None;
                }
            }
        }
        // The Redis server alone as a second group, measured over the same window.
        let groups = vec![(workers, holders.pids()), (Vec::new(), vec![redis_pid])];
        let mut outcomes =
            load::run_timed_together(groups, self.opts.warmup, self.opts.measure, self.ticks).await;
        let redis_cpu = outcomes.pop().map_or(Duration::ZERO, |o| o.cpu);
        let outcome = outcomes.pop()?;
        let calls = outcome.calls.max(1) as f64;
        let row = row(report::SHARED, &name, c, outcome);
        let redis_cpu_us_per_call = redis_cpu.as_secs_f64() * 1e6 / calls;
        eprintln!("    Redis CPU {redis_cpu_us_per_call:.1} µs/call");
        Some(report::SharedSessionRow {
            sessions: holders.name.into(),
            tool: tool.into(),
            row,
            redis_cpu_us_per_call,
        })
    }
}
