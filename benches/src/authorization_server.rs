//! The built-in authorization server, with its store on SQLite and on a
//! throwaway PostgreSQL server: `/token` rates (`notes`, part `as`), and
//! modern tools/call to `examples/echo` behind it (part `stores`), where
//! every call's token goes through the revocation check.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::auth::OAuthClient;
use crate::load::Target;
use crate::postgres::TestPostgres;
use crate::servers::{self, Running};
use crate::{Bench, Kind, auth, procfs, report};

/// Where the authorization server keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// A SQLite file, in the server's process.
    Sqlite,
    /// A database on a PostgreSQL server the runner starts (once per run).
    Postgres,
}

/// Every store, in the order they are measured.
pub(crate) const STORES: [Store; 2] = [Store::Sqlite, Store::Postgres];

impl Store {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => report::SQLITE,
            Self::Postgres => report::POSTGRES,
        }
    }

    /// For file, database and log names.
    fn slug(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The configuration of a server in authorization-server mode at `origin`
/// with `store`, the development login and rate limits out of the way.
fn config(origin: &str, store: &str, scopes: &[&str]) -> String {
    format!(
        r#"[server]
public_url = "{origin}"

[auth]
mode = "authorization_server"

[auth.authorization_server]
store = "{store}"
login = "dev"
scopes_supported = {scopes:?}

[auth.authorization_server.rate_limits]
register = {{ max = 1000000, window_secs = 1 }}
token = {{ max = 1000000, window_secs = 1 }}
authorize = {{ max = 1000000, window_secs = 1 }}
revoke = {{ max = 1000000, window_secs = 1 }}
"#
    )
}

/// CPU per operation in µs.
fn per_op_us(cpu: Duration, count: f64) -> f64 {
    cpu.as_secs_f64() * 1e6 / count.max(1.0)
}

impl Bench {
    /// The `store` setting of a fresh, empty store named `name`; the first
    /// PostgreSQL one starts the PostgreSQL server.
    fn store_setting(&mut self, store: Store, name: &str) -> Result<String, String> {
        match store {
            Store::Sqlite => {
                let path = self.opts.out.join(format!("{name}.db"));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Ok(format!("sqlite://{}", path.display()))
            }
            Store::Postgres => {
                if self.postgres.is_none() {
                    self.postgres = Some(TestPostgres::start().map_err(|e| format!("PostgreSQL: {e}"))?);
                }
                let postgres = self.postgres.as_ref().ok_or("PostgreSQL did not start")?;
                postgres.create_database(&name.replace('-', "_")).map_err(|e| format!("PostgreSQL: {e}"))
            }
        }
    }

    /// CPU the database server has used so far: none apart from the
    /// server's own for SQLite.
    fn database_cpu(&self, store: Store) -> Option<Duration> {
        match store {
            Store::Sqlite => None,
            Store::Postgres => {
                self.postgres.as_ref().map(|p| procfs::postgres_cpu_time(p.port(), self.ticks))
            }
        }
    }

    /// `bin --config …` in authorization-server mode with a fresh `store`
    /// offering `scopes`, and its origin.
    async fn start_authorization_server(
        &mut self,
        bin: &Path,
        store: Store,
        scopes: &[&str],
        name: &str,
    ) -> Result<(Running, String), String> {
        let name = format!("{name}-{}", store.slug());
        let setting = self.store_setting(store, &name)?;
        let port = servers::free_port().map_err(|e| e.to_string())?;
        let origin = format!("http://127.0.0.1:{port}");
        let config_path = self.opts.out.join(format!("{name}.toml"));
        std::fs::write(&config_path, config(&origin, &setting, scopes)).map_err(|e| e.to_string())?;
        let config_arg = config_path.to_string_lossy().into_owned();
        let server = servers::start(bin, &["--config", &config_arg], &[], port, &self.log(&name)).await?;
        Ok((server, origin))
    }

    /// The built-in authorization server (`notes` in authorization-server mode) with `store`: `/token` rates.
    pub(crate) async fn authorization_server(&mut self, store: Store) -> Result<(), String> {
        let notes = self.opts.notes.clone();
        let (server, origin) = self
            .start_authorization_server(&notes, store, &["notes:read", "notes:write"], "as-token")
            .await?;
        let client = auth::OAuthClient::register(&origin, "notes:read").await?;
        // Codes: the login and consent forms, one user each (a re-authorization would revoke the last grant).
        let n = self.opts.codes;
        let mut codes = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(8)) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let client = client.clone();
                    let user = format!("user{i}");
                    tokio::spawn(async move { client.code(&user).await })
                })
                .collect();
            for task in tasks {
                codes.push(task.await.map_err(|e| e.to_string())??);
            }
        }
        let per_worker = codes.len().div_ceil(16);
        let cpu0 = procfs::cpu_time(server.pid, self.ticks);
        let database0 = self.database_cpu(store);
        let started = Instant::now();
        let tasks: Vec<_> = codes
            .chunks(per_worker)
            .map(|chunk| {
                let (client, chunk) = (client.clone(), chunk.to_vec());
                tokio::spawn(async move {
                    let mut refresh = Vec::new();
                    for (code, verifier) in chunk {
                        refresh.push(client.exchange(&code, &verifier).await?.refresh_token);
                    }
                    Ok::<_, String>(refresh)
                })
            })
            .collect();
        let mut refresh_tokens = Vec::new();
        for task in tasks {
            refresh_tokens.push(task.await.map_err(|e| e.to_string())??);
        }
        let exchange_secs = started.elapsed().as_secs_f64();
        let exchange_cpu = procfs::cpu_time(server.pid, self.ticks).saturating_sub(cpu0);
        let exchange_database = self.database_cpu(store).zip(database0).map(|(b, a)| b.saturating_sub(a));
        let exchanges = refresh_tokens.iter().map(Vec::len).sum::<usize>();
        // Refreshes: each worker rotates its own tokens for the measuring window.
        let cpu0 = procfs::cpu_time(server.pid, self.ticks);
        let database0 = self.database_cpu(store);
        let started = Instant::now();
        let deadline = started + self.opts.measure;
        let tasks: Vec<_> = refresh_tokens
            .into_iter()
            .map(|mut tokens| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut count = 0u64;
                    'outer: while Instant::now() < deadline {
                        for token in tokens.iter_mut() {
                            if Instant::now() >= deadline {
                                break 'outer;
                            }
                            *token = client.refresh(token).await?;
                            count += 1;
                        }
                    }
                    Ok::<_, String>(count)
                })
            })
            .collect();
        let mut refreshes = 0;
        for task in tasks {
            refreshes += task.await.map_err(|e| e.to_string())??;
        }
        let refresh_secs = started.elapsed().as_secs_f64();
        let refresh_cpu = procfs::cpu_time(server.pid, self.ticks).saturating_sub(cpu0);
        let refresh_database = self.database_cpu(store).zip(database0).map(|(b, a)| b.saturating_sub(a));
        let result = report::AuthorizationServer {
            store: store.name().into(),
            exchanges,
            exchanges_per_sec: exchanges as f64 / exchange_secs,
            cpu_us_per_exchange: per_op_us(exchange_cpu, exchanges as f64),
            refreshes,
            refreshes_per_sec: refreshes as f64 / refresh_secs,
            cpu_us_per_refresh: per_op_us(refresh_cpu, refreshes as f64),
            database_cpu_us_per_exchange: exchange_database.map(|d| per_op_us(d, exchanges as f64)),
            database_cpu_us_per_refresh: refresh_database.map(|d| per_op_us(d, refreshes as f64)),
        };
        let database = |cpu: Option<f64>| cpu.map_or(String::new(), |c| format!(" + {c:.0} µs database"));
        eprintln!(
            "  /token ({}): {:.0} code exchanges/s ({:.0} µs CPU each{}), {:.0} refreshes/s ({:.0} µs CPU each{})",
            result.store,
            result.exchanges_per_sec,
            result.cpu_us_per_exchange,
            database(result.database_cpu_us_per_exchange),
            result.refreshes_per_sec,
            result.cpu_us_per_refresh,
            database(result.database_cpu_us_per_refresh)
        );
        self.report.authorization_server.push(result);
        Ok(())
    }

    /// `examples/echo` in authorization-server mode with `store`, and a
    /// target carrying an access token it issued for its MCP endpoint.
    async fn echo_as_authorization_server(&mut self, store: Store) -> Result<(Running, Target), String> {
        let echo = self.opts.echo.clone();
        let (server, origin) =
            self.start_authorization_server(&echo, store, &["echo"], "stores-echo").await?;
        let client = OAuthClient::register(&origin, "echo").await?;
        let (code, verifier) = client.code("bench-user").await?;
        let mut target = Target::new(server.addr);
        target.bearer = Some(client.exchange(&code, &verifier).await?.access_token);
        Ok((server, target))
    }

    /// Modern tools/call to `examples/echo` behind the built-in
    /// authorization server, one server per store, the stores in turn at
    /// each concurrency. Every call's token goes through the revocation
    /// check: with SQLite a read of the store, with PostgreSQL a cache
    /// invalidated by LISTEN/NOTIFY.
    pub(crate) async fn stores(&mut self) -> Result<(), String> {
        let mut running = Vec::new();
        let mut failed = None;
        for store in STORES {
            match self.echo_as_authorization_server(store).await {
                Ok((server, target)) => running.push((store, server, target)),
                Err(e) => {
                    eprintln!("  stores / {}: {e}", store.name());
                    failed = Some(format!("{}: {e}", store.name()));
                }
            }
        }
        let window = (self.opts.warmup + self.opts.measure).as_secs_f64();
        for &c in &self.opts.concurrency.clone() {
            for (store, server, target) in &running {
                let name = format!("{}, {} store", report::OURS, store.name());
                let database0 = self.database_cpu(*store);
                let Some(row) = self.measure(server, target, report::MODERN_AS, &name, Kind::Modern, c).await
                else {
                    continue;
                };
                // The database's CPU over warm-up and window, per call at the window's rate.
                let calls = row.calls_per_sec * window;
                let database = self.database_cpu(*store).zip(database0).map(|(b, a)| b.saturating_sub(a));
                self.report.stores.push(report::StoreRow {
                    store: store.name().into(),
                    database_cpu_us_per_call: database.map(|d| per_op_us(d, calls)),
                    row,
                });
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
