//! `keygated`: the keygate server binary.
//!
//! Reads its settings from flags, `KEYGATE_*` environment variables and an optional
//! TOML file (flag > env > file > default), logs to stderr, and serves
//! [`keygate_server::App`] until SIGINT or SIGTERM. Exit codes: 0 after a clean
//! shutdown, 2 for a usage or configuration error, 1 when the server cannot start or
//! fails while serving.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use keygate_demo::DemoBootstrap;
use keygate_server::settings::Settings;
use keygate_server::{App, Config, ServerError, Upstream};

mod alloc;

/// mimalloc: fewer instructions per gateway request than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: alloc::Mimalloc = alloc::Mimalloc;

/// API keys, rate limits and confirmation gates in front of MCP tool servers.
///
/// Settings come from flags, then KEYGATE_* environment variables, then the --config
/// file, then the defaults.
#[derive(Debug, Parser)]
#[command(name = "keygated", version, about)]
struct Args {
    #[command(flatten)]
    settings: Settings,
}

/// Flags and env first, then the `--config` file, then the defaults of [`Config::new`];
/// `--demo` serves the demo platform.
fn resolve(args: Args) -> anyhow::Result<(Config, SocketAddr)> {
    let demo = || Upstream::in_process(keygate_demo::Platform::new());
    Ok(args.settings.resolve(demo)?)
}

fn init_logging() -> anyhow::Result<()> {
    let filter = std::env::var("KEYGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
        ServerError::Config(format!(
            "invalid log filter {filter:?} in KEYGATE_LOG/RUST_LOG: {e}"
        ))
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

async fn serve(config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    let demo = matches!(config.upstream, Upstream::InProcess(_));
    let app = App::new(config).await.context("cannot start")?;
    let owner = if demo {
        let scopes = app.policy().all_scopes();
        let done = keygate_demo::bootstrap(&**app.store(), app.format(), scopes).await;
        match done.map_err(ServerError::Store).context("cannot start")? {
            DemoBootstrap::Created(owner) => Some(owner),
            _ => None,
        }
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    if let Some(owner) = owner {
        tracing::info!(
            tenant = %owner.tenant.name,
            owner = %owner.owner.name,
            key_id = %owner.key.key.id,
            "demo tenant created; its owner key is printed once on stdout and never again"
        );
        // The one place a raw key is printed: alone on its line on stdout, for `$(...)`.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", owner.key.token.expose()).context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    if demo {
        tracing::info!("settings page: http://{addr}/settings/api");
    }
    tracing::info!(%addr, "keygated listening");
    // A fixed line tests and scripts wait for.
    eprintln!("keygated: listening on http://{addr}");
    app.serve(listener, keygate_server::shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let (config, listen) = resolve(Args::parse())?;
    init_logging()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config, listen))
}

fn main() -> ExitCode {
    let Err(e) = run() else {
        return ExitCode::SUCCESS;
    };
    eprintln!("keygated: {e:#}");
    match e.downcast_ref::<ServerError>() {
        Some(ServerError::Config(_) | ServerError::Policy(_)) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}
