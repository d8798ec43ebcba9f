//! Server CPU time and memory, read from `/proc`.

use std::time::Duration;

/// Clock ticks per second (`getconf CLK_TCK`), 100 when unknown.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// User plus system CPU time of process `pid` (all its threads, live and exited).
pub fn cpu_time(pid: u32, ticks: u64) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let total = field(11) + field(12);
    Duration::from_nanos(total * 1_000_000_000 / ticks.max(1))
}

/// Resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time of the PostgreSQL server listening on `port`: its postmaster
/// (found by `-p PORT` on its command line) and the processes it started
/// (backends, listener connections, background workers) that are alive.
pub fn postgres_cpu_time(port: u16, ticks: u64) -> Duration {
    let port = port.to_string();
    let processes: Vec<(u32, Vec<String>, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Field 4, the parent, is the second after the command name.
            let parent = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, args, parent))
        })
        .collect();
    let Some(postmaster) = processes.iter().find_map(|(pid, args, _)| {
        let is_postgres = args.first().is_some_and(|a| a.ends_with("/postgres") || a == "postgres");
        (is_postgres && args.windows(2).any(|w| w[0] == "-p" && w[1] == port)).then_some(*pid)
    }) else {
        return Duration::ZERO;
    };
    processes
        .iter()
        .filter(|(pid, _, parent)| *pid == postmaster || *parent == postmaster)
        .map(|(pid, _, _)| cpu_time(*pid, ticks))
        .sum()
}
