//! Protects an axum route with keygate's `AuthLayer` on a SQLite key store: `/` is public, `/me` needs a key.
//!
//! ```sh
//! cargo run -p keygate-examples --example axum-protected
//! # prints an owner key once on stdout, then serves on 127.0.0.1:3000
//! curl -i http://127.0.0.1:3000/me                                  # 401 missing_token
//! curl -i -H "Authorization: Bearer kg_uk_…" http://127.0.0.1:3000/me   # 200 {"tenant":…,"kind":"user"}
//! ```
//!
//! Without `--database` the keys live in a temporary SQLite file removed on exit; with
//! `--database FILE` they persist, and the tenant is bootstrapped (and its key printed)
//! only when the file does not have it yet.
//!
//! `--self-test` (or `KEYGATE_EXAMPLE_SELF_TEST=1`) serves on an ephemeral loopback port
//! unless `--listen` is given, sends `GET /`, `GET /me` without a key and `GET /me` with
//! the key to itself, checks the answers, and exits 0 (1 on any mismatch): this is how CI
//! runs the example.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::routing::get;
use clap::Parser;
use keygate_http::{AuthLayer, Authenticated};
use keygate_keys::{Bootstrap, KeyStore, SqliteStore, TokenFormat};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::EnvFilter;

/// The tenant this example bootstraps.
const TENANT: &str = "example";

/// A tiny axum app with one public and one keygate-protected route.
#[derive(Debug, Parser)]
struct Args {
    /// SQLite database file (created when missing). Default: a temporary file.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:3000; an ephemeral port with --self-test).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Call the app once over loopback, check the answers, and exit.
    #[arg(long, env = "KEYGATE_EXAMPLE_SELF_TEST")]
    self_test: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // Keep the temporary directory alive (and removed at the end) when no file is given.
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let path = args
        .database
        .clone()
        .unwrap_or_else(|| temp.path().join("keygate.db"));
    let sqlite = SqliteStore::open(&path)
        .with_context(|| format!("opening the key store {}", path.display()))?;
    let store: Arc<dyn KeyStore> = Arc::new(sqlite);

    let key = bootstrap(store.as_ref()).await?;
    if let Some(key) = &key {
        // The raw key, once, alone on stdout.
        println!("{key}");
    } else {
        eprintln!(
            "tenant `{TENANT}` already exists in {}; use the key printed when it was created",
            path.display()
        );
    }

    let addr = match (args.listen, args.self_test) {
        (Some(addr), _) => addr,
        (None, true) => SocketAddr::from(([127, 0, 0, 1], 0)),
        (None, false) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr} (public: /, protected: /me)");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app(store))
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            })
            .into_future(),
    );

    if args.self_test {
        let result = self_test(addr, key.as_deref()).await;
        let _ = stop.send(());
        server.await??;
        result?;
        eprintln!("self-test passed");
    } else {
        server.await??;
    }
    Ok(())
}

/// The app: `/` is public; `/me` sits behind the layer (`route_layer`, so unknown
/// paths still answer 404 rather than 401).
fn app(store: Arc<dyn KeyStore>) -> Router {
    let protected = Router::new()
        .route("/me", get(me))
        .route_layer(AuthLayer::new(store));
    Router::new()
        .route(
            "/",
            get(|| async { "public: call GET /me with Authorization: Bearer <key>\n" }),
        )
        .merge(protected)
}

/// Who the key is: its tenant and kind.
async fn me(Authenticated(principal): Authenticated) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "tenant": principal.tenant.name,
        "kind": principal.kind.actor(),
    }))
}

/// Bootstraps the example tenant when the store does not have it; returns the new
/// owner key (raw), or `None` when the tenant already existed.
async fn bootstrap(store: &dyn KeyStore) -> anyhow::Result<Option<String>> {
    if store.tenant_by_name(TENANT).await?.is_some() {
        return Ok(None);
    }
    let done = store
        .bootstrap(
            &TokenFormat::default(),
            Bootstrap::new(
                TENANT.to_owned(),
                "owner",
                &[],
                vec!["keys:admin".to_owned()],
                "axum-protected example",
            ),
        )
        .await
        .context("bootstrapping the example tenant")?;
    Ok(Some(done.key.token.expose().to_owned()))
}

/// Calls the running app and checks each answer.
async fn self_test(addr: SocketAddr, key: Option<&str>) -> anyhow::Result<()> {
    let Some(key) = key else {
        bail!("--self-test needs a fresh database (it uses the key it bootstraps)");
    };
    let (status, _) = get_once(addr, "/", None).await?;
    if status != 200 {
        bail!("GET / answered {status}, expected 200");
    }
    let (status, body) = get_once(addr, "/me", None).await?;
    if status != 401 || body != r#"{"error":"missing_token"}"# {
        bail!("GET /me without a key answered {status} {body}");
    }
    let (status, body) = get_once(addr, "/me", Some(key)).await?;
    let expected = serde_json::json!({ "tenant": TENANT, "kind": "user" });
    if status != 200 || serde_json::from_str::<serde_json::Value>(&body).ok() != Some(expected) {
        bail!("GET /me with the key answered {status} {body}");
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET over loopback (keeps the example free of an HTTP client).
async fn get_once(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw).context("response is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("response has no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("response has no status")?;
    Ok((status, body.to_owned()))
}
