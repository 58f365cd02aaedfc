//! Serves the keygate demo platform as a standalone MCP server (no authentication), the upstream you would put behind `keygated --upstream`.
//!
//! ```sh
//! cargo run -p keygate-examples --example demo-platform -- --listen 127.0.0.1:9000
//! ```
//!
//! MCP Streamable HTTP is served at `POST /mcp`. Try it:
//!
//! ```sh
//! curl -s http://127.0.0.1:9000/mcp -H 'content-type: application/json' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.status","arguments":{"service":"worker"}}}'
//! ```
//!
//! It speaks the stateful revisions (`initialize` first) and the stateless 2026-07-28,
//! which needs no `initialize`: every request carries its `_meta` envelope.
//!
//! ```sh
//! curl -s http://127.0.0.1:9000/mcp -H 'content-type: application/json' -H 'mcp-protocol-version: 2026-07-28' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
//! ```
//!
//! The platform trusts the identity headers the gateway sets (`X-Keygate-Tenant` picks the
//! tenant's own data set, `X-Keygate-Project` the project, `X-Keygate-User` the person),
//! so never expose it directly: run `keygated --upstream http://127.0.0.1:9000/mcp` in
//! front of it. Requests without `X-Keygate-Tenant`, like the `curl` above, use a data set
//! of their own.
//! Ctrl-C stops it gracefully.

use std::io::IsTerminal as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Serve the keygate demo platform over MCP Streamable HTTP.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = keygate_demo::router(keygate_demo::Platform::new());
    tracing::info!("demo platform serving MCP at http://{addr}/mcp (no authentication)");

    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
        .context("server failed")?;
    tracing::info!("demo platform stopped");
    Ok(())
}

/// Resolves on Ctrl-C (or SIGTERM on Unix).
async fn shutdown() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
