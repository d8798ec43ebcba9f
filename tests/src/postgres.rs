//! A throwaway PostgreSQL server for tests: its own data directory, a free
//! port on 127.0.0.1, its Unix socket in that directory, trust
//! authentication for the `postgres` user, and nothing left behind when it
//! is dropped.
//!
//! It uses only the standard library, so the store tests of `mcp-auth`
//! include this file with `#[path]` as well as the end-to-end tests using
//! it as `mcp_tests::postgres`. The server binaries come from `PG_BIN`, or
//! the newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package,
//! which scripts/setup.sh installs), or `PATH`. PostgreSQL refuses to run as
//! root: as root, every command runs as the `postgres` system user (which
//! that package creates) through `runuser`, and the data directory is
//! handed to that user.
//!
//! ```no_run
//! use mcp_tests::postgres::TestPostgres;
//!
//! let mut server = TestPostgres::start()?;
//! let url = server.create_database("store")?; // postgres://postgres@127.0.0.1:PORT/store
//! server.stop()?; // clients now fail to connect
//! server.restart()?; // same data, same port
//! # drop(url);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser `initdb` creates.
const SUPERUSER: &str = "postgres";
/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// A running (or stopped) PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct TestPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_user: Option<&'static str>,
    running: bool,
}

impl TestPostgres {
    /// Creates a data directory with `initdb` and starts the server on a
    /// free loopback port, waiting until it accepts connections.
    pub fn start() -> io::Result<Self> {
        let bin = bin_dir()?;
        let as_user = if is_root() { Some(SYSTEM_USER) } else { None };
        // As root, under /tmp: the system user must reach the directory, and a
        // TMPDIR under /root would be out of its reach.
        let parent = if as_user.is_some() { PathBuf::from("/tmp") } else { std::env::temp_dir() };
        let dir = temp_dir(&parent)?;
        let mut server = Self { dir, bin, port: 0, as_user, running: false };
        if let Some(user) = as_user {
            server.hand_to(user)?;
        }
        let data = server.data_dir();
        server.run(
            "initdb",
            &["-D", path_str(&data)?, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"],
        )?;
        // A port just found free may be taken by the time the server binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            server.port = free_port()?;
            match server.restart() {
                Ok(()) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("postgres did not start")))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name` (which [`create_database`](Self::create_database) makes).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        let port = self.port.to_string();
        self.run("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])?;
        Ok(self.url(name))
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash
    /// would; the data directory stays for [`restart`](Self::restart).
    pub fn stop(&mut self) -> io::Result<()> {
        if self.running {
            let data = self.data_dir();
            self.run("pg_ctl", &["stop", "-D", path_str(&data)?, "-m", "immediate", "-w"])?;
            self.running = false;
        }
        Ok(())
    }

    /// Starts the server again on the same data directory and port (stopping
    /// it first if it runs), waiting until it accepts connections.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            path_str(&self.dir)?
        );
        self.run(
            "pg_ctl",
            &["start", "-D", path_str(&data)?, "-l", path_str(&log)?, "-w", "-t", "30", "-o", &options],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            io::Error::other(format!("{e}\nserver log:\n{log}"))
        })?;
        self.running = true;
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a server binary (as the system user when we are root).
    fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        let binary = self.bin.join(program);
        let mut command = match self.as_user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        // The server's working directory must be one it may enter.
        let output = command.args(args).current_dir(&self.dir).output()?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(io::Error::other(format!(
                "{program} {args:?} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// Gives the directory to `user` (as root).
    #[cfg(unix)]
    fn hand_to(&self, user: &str) -> io::Result<()> {
        let output = Command::new("chown").arg(format!("{user}:")).arg(&self.dir).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("chown {user}: {}", String::from_utf8_lossy(&output.stderr))))
        }
    }

    #[cfg(not(unix))]
    fn hand_to(&self, _user: &str) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Also after a start that failed late: a server may be up all the same.
        self.running |= self.data_dir().join("postmaster.pid").exists();
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> io::Result<&str> {
    path.to_str().ok_or_else(|| io::Error::other(format!("{} is not UTF-8", path.display())))
}

/// `PG_BIN`, else the newest `/usr/lib/postgresql/N/bin`, else the directory
/// of `initdb` on `PATH`.
fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(dir.into());
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no PostgreSQL server binaries (initdb): install Debian's `postgresql` (scripts/setup.sh) \
                 or set PG_BIN",
            )
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A fresh directory under `parent`.
fn temp_dir(parent: &Path) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("mcp-pg-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let dir = parent.join(name);
    // A directory left by a killed run of a process with the same id goes first.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir)?;
    Ok(dir)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
