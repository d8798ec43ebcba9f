//! Starting the servers under test, pinned to core 0.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct Running {
    /// Its process id (`taskset` execs the server, so this is the server's).
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    _child: Child,
}

/// A free loopback port.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The command for `bin` pinned to `core` with `taskset`.
pub fn pinned(core: &str, bin: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(core).arg(bin);
    command
}

/// Pins the running process `pid` (all its threads) to `core` with `taskset`.
pub fn pin(pid: u32, core: &str) -> Result<(), String> {
    let output = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", core, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("taskset -p {pid}: {}", String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Starts `bin args… --bind 127.0.0.1:PORT` on core 0 with `envs`, logging to
/// `log`, and waits until it accepts connections.
pub async fn start(
    bin: &Path,
    args: &[&str],
    envs: &[(String, String)],
    port: u16,
    log: &Path,
) -> Result<Running, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut command = pinned("0", bin);
    command
        .args(args)
        .args(["--bind", &addr.to_string()])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("{}: {e}", bin.display()))?;
    let pid = child.id().ok_or("the server exited at once")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{} exited at start-up ({status}); see {}", bin.display(), log.display()));
        }
        if Instant::now() > deadline {
            return Err(format!("{} did not listen on {addr} within 20 s", bin.display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Running { pid, addr, _child: child })
}
