//! A bare axum server that echoes a JSON body back: the floor the load benchmark compares
//! the demo platform and the gateway against (no authentication, no MCP, no tool).
//!
//! ```sh
//! cargo run --release -p keygate-examples --example echo -- --listen 127.0.0.1:9001
//! curl -s http://127.0.0.1:9001/mcp -H 'content-type: application/json' -d '{"hello":1}'
//! ```
//!
//! Any path accepts `POST` with a JSON body and answers it unchanged (parsed and
//! serialised again, as any JSON handler would). Ctrl-C or SIGTERM stops it.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Json;
use axum::routing::post;
use clap::Parser;

/// Echo JSON bodies back, as fast as axum does it.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
}

async fn echo(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let app = axum::Router::new().fallback(post(echo));
    eprintln!("echo serving at http://{}/", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(keygate_examples::shutdown())
        .await
        .context("server failed")
}
