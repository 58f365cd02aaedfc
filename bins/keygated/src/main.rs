//! `keygated`: the keygate server binary.
//!
//! Reads its settings from flags, `KEYGATE_*` environment variables and an optional
//! TOML file (flag > env > file > default), logs to stderr, and serves
//! [`keygate_server::App`] until SIGINT or SIGTERM. Exit codes: 0 after a clean
//! shutdown, 2 for a usage or configuration error, 1 when the server cannot start or
//! fails while serving.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use keygate_server::{App, Config, FailMode, Upstream};
use keygate_token::TokenFormat;
use serde::Deserialize;

/// mimalloc: a gateway request allocates ~65 times (header maps, JSON, the key's
/// principal), and the system allocator spent about a quarter of the request's
/// instructions on them (callgrind; BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// API keys, rate limits and confirmation gates in front of MCP tool servers.
///
/// Settings come from flags, then KEYGATE_* environment variables, then the --config
/// file, then the defaults.
#[derive(Debug, Parser)]
#[command(name = "keygated", version, about)]
struct Args {
    /// TOML file with any of these settings, as `listen = "…"`, `key-rate = 50`, ….
    #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "KEYGATE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Key store: sqlite://PATH or postgres://… [default: sqlite://keygate.db].
    #[arg(long, env = "KEYGATE_DATABASE", value_name = "URL", value_parser = database_url)]
    database: Option<String>,
    /// The MCP server to protect (Streamable HTTP), such as http://127.0.0.1:9000/mcp.
    #[arg(long, env = "KEYGATE_UPSTREAM", value_name = "URL", conflicts_with = "demo", value_parser = upstream_url)]
    upstream: Option<String>,
    /// Serve the built-in demo platform and its policy; on an empty database, create
    /// tenant `demo` and print its owner key once on stdout.
    #[arg(long, env = "KEYGATE_DEMO")]
    demo: bool,
    /// Tool policy file (TOML); required with --upstream.
    #[arg(long, env = "KEYGATE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Requests per second, and burst, per key [default: 20].
    #[arg(long, env = "KEYGATE_KEY_RATE", value_name = "N")]
    key_rate: Option<NonZeroU32>,
    /// Requests per second, and burst, per tenant [default: 100].
    #[arg(long, env = "KEYGATE_TENANT_RATE", value_name = "N")]
    tenant_rate: Option<NonZeroU32>,
    /// Where rate-limit budgets live: memory, or redis://HOST:PORT to share them
    /// between instances [default: memory].
    #[arg(long, env = "KEYGATE_RATE_LIMIT_BACKEND", value_name = "BACKEND", value_parser = rate_limit_backend)]
    rate_limit_backend: Option<String>,
    /// While the Redis rate-limit backend is unreachable, let requests through
    /// uncounted instead of refusing them with 503 [default: refuse].
    #[arg(long, env = "KEYGATE_RATE_LIMIT_FAIL_OPEN")]
    rate_limit_fail_open: bool,
    /// Seconds to wait for the upstream to answer [default: 10].
    #[arg(long, env = "KEYGATE_UPSTREAM_TIMEOUT", value_name = "SECONDS")]
    upstream_timeout: Option<NonZeroU32>,
    /// Seconds any request may take to produce its response head [default: 30].
    #[arg(long, env = "KEYGATE_REQUEST_TIMEOUT", value_name = "SECONDS")]
    request_timeout: Option<NonZeroU32>,
    /// Token brand: keys look like BRAND_uk_… [default: kg].
    #[arg(long, env = "KEYGATE_BRAND", value_name = "BRAND", value_parser = brand)]
    brand: Option<String>,
    /// Seconds a client may take to send a request's headers (from connecting, or
    /// from the previous answer on a kept-alive connection) before the connection is
    /// closed [default: 30].
    #[arg(long, env = "KEYGATE_HEADER_TIMEOUT", value_name = "SECONDS")]
    header_timeout: Option<NonZeroU32>,
    /// Most client connections held at once; more wait until one closes [default:
    /// half of what the open-file limit leaves after 64, at most 4096].
    #[arg(long, env = "KEYGATE_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<NonZeroU32>,
    /// Failed authentications a minute, and burst, per client address (IPv6: per
    /// /64) before its requests get 429 without being verified; 0 turns it off.
    /// Behind a proxy every client shares the proxy's address [default: 60].
    #[arg(long, env = "KEYGATE_AUTH_FAILURE_RATE", value_name = "N")]
    auth_failure_rate: Option<u32>,
}

/// The TOML file: the same settings, all optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    database: Option<String>,
    upstream: Option<String>,
    demo: Option<bool>,
    policy: Option<PathBuf>,
    key_rate: Option<NonZeroU32>,
    tenant_rate: Option<NonZeroU32>,
    rate_limit_backend: Option<String>,
    rate_limit_fail_open: Option<bool>,
    upstream_timeout: Option<NonZeroU32>,
    request_timeout: Option<NonZeroU32>,
    brand: Option<String>,
    header_timeout: Option<NonZeroU32>,
    max_connections: Option<NonZeroU32>,
    auth_failure_rate: Option<u32>,
}

/// A usage or configuration error: exit code 2.
#[derive(Debug)]
struct Usage(String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

fn database_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let scheme = s
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") if s.len() > "sqlite://".len() => Ok(s.to_owned()),
        Some("sqlite") => {
            Err("sqlite:// needs a file path, such as sqlite://keygate.db".to_owned())
        }
        Some("postgres" | "postgresql") => Ok(s.to_owned()),
        _ if s == "sqlite::memory:" => Ok(s.to_owned()),
        _ => Err("expected sqlite://PATH or postgres://USER@HOST/DB".to_owned()),
    }
}

fn upstream_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    match s.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(s.to_owned()),
        Some((scheme, _)) if scheme != "http" && scheme != "https" => Err(format!(
            "expected an http:// or https:// URL such as http://127.0.0.1:9000/mcp, not {scheme}://"
        )),
        _ => {
            Err("expected an http:// or https:// URL such as http://127.0.0.1:9000/mcp".to_owned())
        }
    }
}

fn rate_limit_backend(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("memory") {
        return Ok("memory".to_owned());
    }
    match s
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase())
    {
        Some(scheme) if matches!(scheme.as_str(), "redis" | "rediss" | "redis+unix" | "unix") => {
            Ok(s.to_owned())
        }
        _ => Err("expected `memory` or a redis:// URL such as redis://127.0.0.1:6379".to_owned()),
    }
}

fn brand(s: &str) -> Result<String, String> {
    TokenFormat::new(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| usage(format!("config file {}: {e}", path.display())))
}

/// Parses a file value with the same rules as its flag, naming the file and the key.
fn from_file<T>(
    path: &Path,
    key: &str,
    value: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    value
        .map(|v| {
            parse(&v).map_err(|e| usage(format!("config file {}: `{key}`: {e}", path.display())))
        })
        .transpose()
}

/// Flags and env first, then the file, then defaults.
fn resolve(args: Args) -> anyhow::Result<(Config, SocketAddr)> {
    let (file, path) = match &args.config {
        Some(path) => (read_file_config(path)?, path.clone()),
        None => (FileConfig::default(), PathBuf::new()),
    };
    let upstream = match (args.demo, args.upstream) {
        (true, _) => Upstream::Demo,
        (false, Some(url)) => Upstream::Http(url),
        (false, None) => match (
            file.demo.unwrap_or(false),
            from_file(&path, "upstream", file.upstream, upstream_url)?,
        ) {
            (true, Some(_)) => {
                return Err(usage(format!(
                    "config file {}: give `upstream` or `demo = true`, not both",
                    path.display()
                )));
            }
            (true, None) => Upstream::Demo,
            (false, Some(url)) => Upstream::Http(url),
            (false, None) => {
                return Err(usage(
                    "nothing to protect: give --upstream URL (an MCP server, with --policy FILE) or --demo",
                ));
            }
        },
    };
    let mut config = Config::new(upstream);
    let listen = match args.listen {
        Some(addr) => addr,
        None => from_file(&path, "listen", file.listen, |s| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("{e} (expected HOST:PORT such as 127.0.0.1:8080)"))
        })?
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
    };
    if let Some(v) = args.database.map_or_else(
        || from_file(&path, "database", file.database, database_url),
        |v| Ok(Some(v)),
    )? {
        config.database = v;
    }
    config.policy = args.policy.or(file.policy);
    if let Some(v) = args.key_rate.or(file.key_rate) {
        config.key_rate = v;
    }
    if let Some(v) = args.tenant_rate.or(file.tenant_rate) {
        config.tenant_rate = v;
    }
    if let Some(v) = args.rate_limit_backend.map_or_else(
        || {
            from_file(
                &path,
                "rate-limit-backend",
                file.rate_limit_backend,
                rate_limit_backend,
            )
        },
        |v| Ok(Some(v)),
    )? {
        config.rate_limit_backend = v;
    }
    if args.rate_limit_fail_open || file.rate_limit_fail_open == Some(true) {
        config.rate_limit_fail_mode = FailMode::Open;
    }
    if let Some(v) = args.upstream_timeout.or(file.upstream_timeout) {
        config.upstream_timeout = Duration::from_secs(u64::from(v.get()));
    }
    if let Some(v) = args.request_timeout.or(file.request_timeout) {
        config.request_timeout = Duration::from_secs(u64::from(v.get()));
    }
    if let Some(v) = args.header_timeout.or(file.header_timeout) {
        config.header_timeout = Duration::from_secs(u64::from(v.get()));
    }
    if let Some(v) = args.max_connections.or(file.max_connections) {
        config.max_connections = v;
    }
    if let Some(v) = args.auth_failure_rate.or(file.auth_failure_rate) {
        config.auth_failure_rate = NonZeroU32::new(v);
    }
    if let Some(v) = args.brand.map_or_else(
        || from_file(&path, "brand", file.brand, brand),
        |v| Ok(Some(v)),
    )? {
        config.format = TokenFormat::new(&v).map_err(|e| usage(format!("brand: {e}")))?;
    }
    Ok((config, listen))
}

fn init_logging() -> anyhow::Result<()> {
    let filter = std::env::var("KEYGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
        usage(format!(
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn serve(config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    let demo = config.is_demo();
    let mut app = App::new(config).await.context("cannot start")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    if let Some(owner) = app.take_demo_owner() {
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
    #[allow(
        clippy::print_stderr,
        reason = "a fixed line tests and scripts wait for"
    )]
    {
        eprintln!("keygated: listening on http://{addr}");
    }
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let (config, listen) = resolve(args)?;
    init_logging()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(config, listen))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr, reason = "the binary reports its own failure")]
            {
                eprintln!("keygated: {e:#}");
            }
            let config_error = matches!(
                e.downcast_ref::<keygate_server::ServerError>(),
                Some(
                    keygate_server::ServerError::Config(_) | keygate_server::ServerError::Policy(_)
                )
            );
            if config_error || e.downcast_ref::<Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(args: &[&str]) -> Config {
        let args = Args::try_parse_from(std::iter::once("keygated").chain(args.iter().copied()))
            .expect("the arguments parse");
        resolve(args).expect("the settings resolve").0
    }

    #[test]
    fn connection_settings_flag_over_file_over_default() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("keygate.toml");
        std::fs::write(
            &path,
            "demo = true\nmax-connections = 7\nheader-timeout = 9\nauth-failure-rate = 0\n",
        )
        .expect("the file is written");
        let file = path.to_str().expect("a UTF-8 path");
        let config = resolved(&["--config", file, "--max-connections", "3"]);
        assert_eq!(config.max_connections.get(), 3, "the flag wins");
        assert_eq!(
            config.header_timeout,
            Duration::from_secs(9),
            "from the file"
        );
        assert_eq!(config.auth_failure_rate, None, "0 turns the limit off");

        let config = resolved(&["--config", file, "--auth-failure-rate", "5"]);
        assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(5));
        assert_eq!(config.max_connections.get(), 7);

        let config = resolved(&["--demo"]);
        assert_eq!(config.header_timeout, Duration::from_secs(30));
        assert_eq!(config.auth_failure_rate.map(NonZeroU32::get), Some(60));
        assert_eq!(
            config.max_connections,
            keygate_server::default_max_connections()
        );
    }
}
