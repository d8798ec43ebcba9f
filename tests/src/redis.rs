//! A throwaway Redis server for tests: `redis-server` (Debian's
//! `redis-server` package, which scripts/setup.sh installs) on a free port of
//! 127.0.0.1, with its own working directory, no persistence, and nothing
//! left behind when it is dropped.
//!
//! It uses only the standard library, so crates outside this one may include
//! it with `#[path]`, like [`postgres`](crate::postgres).
//!
//! ```no_run
//! use mcp_tests::redis::TestRedis;
//!
//! let mut server = TestRedis::start()?;
//! let url = server.url(); // redis://127.0.0.1:PORT/
//! server.stop(); // clients now fail to connect
//! server.restart()?; // same port, empty data
//! # drop(url);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or stopped) Redis server owned by a test.
#[derive(Debug)]
pub struct TestRedis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl TestRedis {
    /// Starts `redis-server` (from `REDIS_SERVER`, else `PATH`) on a free
    /// loopback port, waiting until it answers `PING`.
    pub fn start() -> io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("mcp-test-redis-{}-{}", std::process::id(), nonce()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self { dir, port: 0, child: None };
        // A port just found free may be taken by the time the server binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.restart() {
                Ok(()) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server at once, as a crash would (its data is lost: it keeps none on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it
    /// runs), waiting until it answers `PING`.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let program = std::env::var_os("REDIS_SERVER").unwrap_or_else(|| "redis-server".into());
        let log = std::fs::File::create(self.dir.join("server.log"))?;
        let child = Command::new(program)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ping(self.port).is_ok() {
                return Ok(());
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.stop();
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(io::Error::other(format!("redis-server did not start: {exited:?}\n{log}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `PING` and expects `+PONG`: a real Redis answer, not a TCP connect
/// (which on Linux may connect a socket to itself).
fn ping(port: u16) -> io::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"PING\r\n")?;
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer)?;
    if &answer == b"+PONG\r\n" { Ok(()) } else { Err(io::Error::other("not a Redis answer")) }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

fn nonce() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}
