//! Running a server from configuration: stdio, or the HTTP application with
//! graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{CommandLine, Config, ConfigError, mask_secrets};
use crate::server::Server;
use crate::transport::http::HttpApp;

/// Why serving stopped with an error.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The transport failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

// `main` prints the Debug form of its error: make it the readable message.
impl std::fmt::Debug for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Server {
    /// Serves as `config` says: Streamable HTTP when `server.bind` is set,
    /// otherwise stdio. Every `[auth] mode` works here, including
    /// `"authorization_server"` (see [`http_app_async`](Self::http_app_async)).
    pub async fn serve(self, config: Config) -> Result<(), ServeError> {
        let server = match config.request_state_key()? {
            Some(key) => self.request_state_key(key),
            None => self,
        };
        server.serve_configured(config).await
    }

    async fn serve_configured(self, config: Config) -> Result<(), ServeError> {
        let Some(addr) = config.bind_addr()? else {
            return Ok(self.serve_stdio().await?);
        };
        let app = self.http_app_parts_async(&config).await?;
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(address = %listener.local_addr()?, path = %config.server.path, "serving MCP over HTTP");
        let grace = Duration::from_secs(config.http.shutdown_grace_secs);
        serve_until_signal(listener, app, grace).await?;
        Ok(())
    }

    /// Reads `--config`, `--bind`, `--print-config` and `--check-config`
    /// from the command line (and `MCP_*` overrides from the environment),
    /// then [`serve`](Self::serve)s.
    pub async fn serve_from_args(self) -> Result<(), ServeError> {
        let cli = CommandLine::parse(std::env::args().skip(1))?;
        let config = cli.load()?;
        self.serve_command_line(&cli, config).await
    }

    /// Does what the command line asks with `config`: print it
    /// (`--print-config`), check it (`--check-config`), or serve it.
    pub async fn serve_command_line(self, cli: &CommandLine, config: Config) -> Result<(), ServeError> {
        if cli.check_config {
            self.check_config(&config)?;
        }
        if cli.print_config || cli.check_config {
            let mut effective = serde_json::to_value(&config).map_err(io::Error::other)?;
            mask_secrets(&mut effective);
            let text = serde_json::to_string_pretty(&effective).map_err(io::Error::other)?;
            println!("{text}");
            if cli.check_config {
                eprintln!("configuration is valid");
            }
            return Ok(());
        }
        self.serve(config).await
    }

    /// Checks everything [`serve`](Self::serve) would check before serving
    /// (address, request-state key, every `[auth]` setting), without
    /// binding, opening stores or creating key files. Errors name the key.
    pub fn check_config(&self, config: &Config) -> Result<(), ConfigError> {
        config.bind_addr()?;
        config.request_state_key()?;
        crate::transport::http::check_auth(self, config)
    }
}

/// Serves until Ctrl-C or SIGTERM, then stops accepting, closes the legacy
/// SSE streams, lets in-flight requests finish for up to `grace`, and returns.
pub(crate) async fn serve_until_signal(
    listener: TcpListener,
    app: HttpApp,
    grace: Duration,
) -> io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        // Replies written in several small writes would stall without it.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let stop = CancellationToken::new();
    let signal_stop = stop.clone();
    let legacy = app.legacy;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        signal_stop.cancel();
        // Open SSE streams never end by themselves: close them so draining can finish.
        if let Some(legacy) = legacy {
            legacy.close_all();
        }
    });
    let stopped = stop.clone().cancelled_owned();
    if app.peer_addresses {
        let service = app.router.into_make_service_with_connect_info::<SocketAddr>();
        drain(axum::serve(listener, service).with_graceful_shutdown(stopped), &stop, grace).await
    } else {
        drain(axum::serve(listener, app.router).with_graceful_shutdown(stopped), &stop, grace).await
    }
}

/// Runs `server` until it has drained, or until `grace` after `stop`.
async fn drain(
    server: impl IntoFuture<Output = io::Result<()>>,
    stop: &CancellationToken,
    grace: Duration,
) -> io::Result<()> {
    tokio::select! {
        result = server.into_future() => result,
        () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("shutdown grace period over; closing the remaining connections");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_configuration_hides_secrets() {
        let mut value = serde_json::json!({"auth": {"resource_server": {"introspection": {
            "client_id": "rs", "client_secret": "hunter2"}}}, "server": {"bind": "127.0.0.1:1"}});
        mask_secrets(&mut value);
        assert_eq!(value["auth"]["resource_server"]["introspection"]["client_secret"], "***");
        assert_eq!(value["auth"]["resource_server"]["introspection"]["client_id"], "rs");
        assert_eq!(value["server"]["bind"], "127.0.0.1:1");

        let mut value = serde_json::json!({"a": {
            "sealing_key": "k", "sealing_key_file": "seal.key", "access_token_ttl_secs": 60,
            "token_url": "https://github.com/login/oauth/access_token", "client_secret_hash": "ab",
            "request_state_key": "r", "api_token": "t", "password": "p"}});
        mask_secrets(&mut value);
        for hidden in ["sealing_key", "client_secret_hash", "request_state_key", "api_token", "password"] {
            assert_eq!(value["a"][hidden], "***", "{hidden}");
        }
        assert_eq!(value["a"]["sealing_key_file"], "seal.key");
        assert_eq!(value["a"]["access_token_ttl_secs"], 60);
        assert_eq!(value["a"]["token_url"], "https://github.com/login/oauth/access_token");
    }
}
