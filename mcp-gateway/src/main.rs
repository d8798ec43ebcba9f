//! `mcp-gateway --config gateway.toml`: serves every upstream of the
//! configuration behind the configured authorization.

use std::time::Duration;

use mcp_gateway::Gateway;
use mcp_server::config::CommandLine;

/// mimalloc rather than the system allocator: cheaper for the many small,
/// short-lived allocations of each forwarded call.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-gateway: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let cli = CommandLine::parse(std::env::args().skip(1))?;
    let mut config = cli.load()?;
    config.github_credentials_from_env();
    if cli.print_config || cli.check_config {
        mcp_gateway::config::GatewayConfig::from_app(&config.app)?;
        println!("{config:?}");
        return Ok(());
    }
    let addr = config.bind_addr()?.ok_or("set server.bind (or --bind): the gateway serves HTTP")?;
    let gateway = Gateway::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, upstreams = gateway.upstreams.len(), "mcp-gateway listening");
    let grace = Duration::from_secs(config.http.shutdown_grace_secs);
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        stopping.cancel();
    });
    let service = gateway.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let serve = axum::serve(listener, service).with_graceful_shutdown(stop.clone().cancelled_owned());
    tokio::select! {
        result = serve.into_future() => result?,
        () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {}
    }
    for upstream in &gateway.upstreams {
        upstream.stop();
    }
    Ok(())
}
