//! `keygated`: the keygate server binary.
//!
//! Reads its settings from flags, `KEYGATE_*` environment variables and an optional
//! TOML file (flag > env > file > default), logs to stderr, and serves
//! [`keygate_server::App`] until SIGINT or SIGTERM. Exit codes: 0 after a clean
//! shutdown, 2 for a usage or configuration error, 1 when the server cannot start or
//! fails while serving.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use clap::Parser;
use keygate_demo::DemoBootstrap;
use keygate_keys::{DatabaseUrl, TokenFormat};
use keygate_limits::Backend;
use keygate_server::{App, Config, FailMode, ServerError, Timeout, Upstream};
use serde::{Deserialize, Deserializer};

/// mimalloc: fewer instructions per gateway request than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// API keys, rate limits and confirmation gates in front of MCP tool servers.
///
/// Settings come from flags, then KEYGATE_* environment variables, then the --config
/// file, then the defaults.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(name = "keygated", version, about)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Args {
    /// TOML file with any of these settings, as `listen = "…"`, `key-rate = 50`, ….
    #[arg(long, env = "KEYGATE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "KEYGATE_LISTEN", value_name = "ADDR")]
    #[serde(deserialize_with = "parsed")]
    listen: Option<SocketAddr>,
    /// Key store: sqlite://PATH or postgres://… [default: sqlite://keygate.db].
    #[arg(long, env = "KEYGATE_DATABASE", value_name = "URL")]
    #[serde(deserialize_with = "parsed")]
    database: Option<DatabaseUrl>,
    /// The MCP server to protect (Streamable HTTP), such as http://127.0.0.1:9000/mcp.
    #[arg(
        long,
        env = "KEYGATE_UPSTREAM",
        value_name = "URL",
        conflicts_with = "demo"
    )]
    #[serde(deserialize_with = "parsed")]
    upstream: Option<Upstream>,
    /// Serve the built-in demo platform and its policy; on an empty database, create
    /// tenant `demo` and print its owner key once on stdout.
    #[arg(long, env = "KEYGATE_DEMO")]
    demo: bool,
    /// Tool policy file (TOML); required with --upstream.
    #[arg(long, env = "KEYGATE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Requests per second, and burst, per key [default: 1000]. Sized so one busy
    /// agent calling back to back (no think time, over loopback: several hundred
    /// calls a second) is never refused, while a runaway loop over many connections is.
    #[arg(long, env = "KEYGATE_KEY_RATE", value_name = "N")]
    key_rate: Option<NonZeroU32>,
    /// Requests per second, and burst, per tenant [default: 5000]: five such agents.
    #[arg(long, env = "KEYGATE_TENANT_RATE", value_name = "N")]
    tenant_rate: Option<NonZeroU32>,
    /// Largest MCP request body in bytes; larger ones get 413 with a JSON-RPC error
    /// [default: 4194304, 4 MiB, what the official SDKs' servers take].
    #[arg(long, env = "KEYGATE_MAX_BODY", value_name = "BYTES")]
    #[serde(alias = "max_body")]
    max_body: Option<NonZeroUsize>,
    /// The URL people and browsers reach this gateway at (such as `https://keys.example.com`);
    /// its origin may call /api/* from a browser.
    #[arg(long, env = "KEYGATE_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// A browser origin (`scheme://host` with an optional `:port`) allowed to call /api/* besides the
    /// gateway's own, answered with CORS; repeat the flag, or separate with commas in
    /// KEYGATE_ALLOWED_ORIGIN. Any other Origin gets 403 forbidden_origin (DNS
    /// rebinding); requests without Origin pass.
    #[arg(
        long = "allowed-origin",
        env = "KEYGATE_ALLOWED_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    #[serde(alias = "allowed-origins", alias = "allowed_origin")]
    allowed_origin: Vec<String>,
    /// Where rate-limit budgets live: memory, or redis://HOST:PORT to share them
    /// between instances [default: memory].
    #[arg(long, env = "KEYGATE_RATE_LIMIT_BACKEND", value_name = "BACKEND")]
    #[serde(deserialize_with = "parsed")]
    rate_limit_backend: Option<Backend>,
    /// While the Redis rate-limit backend is unreachable, let requests through
    /// uncounted instead of refusing them with 503 [default: refuse].
    #[arg(long, env = "KEYGATE_RATE_LIMIT_FAIL_OPEN")]
    rate_limit_fail_open: bool,
    /// Seconds (or a duration such as 1m30s) to wait for the upstream to start
    /// answering (its response head; a tool answered in one JSON body starts answering
    /// when it is done); an open stream is never cut [default: 300].
    #[arg(long, env = "KEYGATE_UPSTREAM_TIMEOUT", value_name = "SECONDS")]
    upstream_timeout: Option<Timeout>,
    /// Seconds (or a duration) any request may take to produce its response head; an
    /// MCP request, to be sent by the client [default: 30].
    #[arg(long, env = "KEYGATE_REQUEST_TIMEOUT", value_name = "SECONDS")]
    request_timeout: Option<Timeout>,
    /// Token brand: keys look like BRAND_uk_… [default: kg].
    #[arg(long, env = "KEYGATE_BRAND", value_name = "BRAND")]
    #[serde(deserialize_with = "parsed")]
    brand: Option<TokenFormat>,
    /// Seconds (or a duration) a client may take to send a request's headers (from
    /// connecting, or from the previous answer on a kept-alive connection) before the
    /// connection is closed [default: 30].
    #[arg(long, env = "KEYGATE_HEADER_TIMEOUT", value_name = "SECONDS")]
    header_timeout: Option<Timeout>,
    /// Most client connections held at once; more wait until one closes [default:
    /// half of what the open-file limit leaves after 64, at most 4096].
    #[arg(long, env = "KEYGATE_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<NonZeroU32>,
    /// Failed authentications a minute, and burst, per client address (IPv6: per
    /// /64) before its requests get 429 without being verified; 0 turns it off.
    /// Behind a proxy every client shares the proxy's address [default: 60].
    #[arg(long, env = "KEYGATE_AUTH_FAILURE_RATE", value_name = "N")]
    auth_failure_rate: Option<u32>,
    /// Seconds (or a duration such as 10m) a person approval lives, from the agent's
    /// call that asks for it to the identical retry that uses it [default: 300].
    #[arg(long, env = "KEYGATE_APPROVAL_TTL", value_name = "SECONDS")]
    approval_ttl: Option<Timeout>,
    /// Secret (at least 32 bytes) that MRTR requestStates are sealed with (HMAC);
    /// every instance sharing a database must be given the same one [default: a random
    /// secret for this process].
    #[arg(
        long,
        env = "KEYGATE_MRTR_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    #[serde(deserialize_with = "parsed")]
    mrtr_secret: Option<SecretArg>,
}

/// `--mrtr-secret` as given: never shown, in errors or `Debug` (checked in
/// [`resolve`], whose error does not repeat it).
#[derive(Clone)]
struct SecretArg(String);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(..)")
    }
}

impl FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// A file value, parsed with the rules of its flag.
fn parsed<'de, D: Deserializer<'de>, T: FromStr<Err: std::fmt::Display>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Flags and env first, then the `--config` file, then the defaults of [`Config::new`].
fn resolve(args: Args) -> anyhow::Result<(Config, SocketAddr)> {
    let file: Args = match &args.config {
        Some(path) => keygate_server::read_settings_file(path)?,
        None => Args::default(),
    };
    let upstream = match (args.demo, args.upstream, file.demo, file.upstream) {
        (true, _, _, _) | (false, None, true, None) => {
            Upstream::in_process(keygate_demo::Platform::new())
        }
        (false, Some(url), _, _) | (false, None, false, Some(url)) => url,
        (false, None, true, Some(_)) => Err(ServerError::Config(format!(
            "config file {}: give `upstream` or `demo = true`, not both",
            args.config.unwrap_or_default().display()
        )))?,
        (false, None, false, None) => Err(ServerError::Config(
            "nothing to protect: give --upstream URL (an MCP server, with --policy FILE) or --demo"
                .to_owned(),
        ))?,
    };
    let mut config = Config::new(upstream);
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(v) = args.$field.or(file.$field) {
                config.$field = v.into();
            }
        )*};
    }
    set!(database, key_rate, tenant_rate, rate_limit_backend);
    set!(
        upstream_timeout,
        request_timeout,
        header_timeout,
        max_connections,
        approval_ttl
    );
    config.policy = args.policy.or(file.policy);
    if let Some(secret) = args.mrtr_secret.or(file.mrtr_secret) {
        let secret = keygate_server::MrtrSecret::new(secret.0.into_bytes())
            .map_err(|e| ServerError::Config(format!("--mrtr-secret: {e}")))?;
        config.mrtr_secret = Some(secret);
    }
    if let Some(max) = args.max_body.or(file.max_body) {
        config.max_body = max.get();
    }
    config.public_url = args.public_url.or(file.public_url);
    config.allowed_origins = if args.allowed_origin.is_empty() {
        file.allowed_origin
    } else {
        args.allowed_origin
    };
    config.format = args.brand.or(file.brand).unwrap_or(config.format);
    if args.rate_limit_fail_open || file.rate_limit_fail_open {
        config.rate_limit_fail_mode = FailMode::Open;
    }
    if let Some(rate) = args.auth_failure_rate.or(file.auth_failure_rate) {
        config.auth_failure_rate = NonZeroU32::new(rate);
    }
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or(([127, 0, 0, 1], 8080).into());
    Ok((config, listen))
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

#[cfg(test)]
mod tests;
