//! Validates its keygate key before serving, as an MCP server (agent bridge) for one project would: refuses to start unless the key reaches exactly one project.
//!
//! ```sh
//! # a server to check against, and a key for one project (the owner key reaches two)
//! cargo run -p keygated -- --demo --listen 127.0.0.1:8080      # prints the owner key
//! KEYGATE_API_KEY=kg_uk_… cargo run -p keygate -- keys create \
//!     --kind user --project shop --scope services:read --scope services:write --name agent
//!
//! KEYGATE_API_KEY=kg_uk_… cargo run -p keygate-examples --example agent-startup-check -- \
//!     --server http://127.0.0.1:8080
//! # ok: user key kg_uk_AbCdEfGhIjKl… (environment variable KEYGATE_API_KEY), tenant demo, project shop
//! # ready: project shop        (then serves until Ctrl-C; --once exits 0 here instead)
//!
//! # or take the key from the env block of a server in .mcp.json
//! cargo run -p keygate-examples --example agent-startup-check -- \
//!     --mcp-json .mcp.json --mcp-server shop --server http://127.0.0.1:8080 --once
//! ```
//!
//! Start-up, in order, before anything is served:
//!
//! 1. find the credential: `KEYGATE_API_KEY`, else the `env` block of the server named by
//!    `--mcp-server` in `--mcp-json` (a `"${VAR}"` value there points back at the
//!    environment);
//! 2. check its shape and checksum offline with [`keygate_token::Token::parse`] (a typo
//!    never reaches the network);
//! 3. introspect it (`GET /api/v1/token` on `--server`) and refuse unless it reaches
//!    exactly one project; a read-only key starts with a warning that mutations will fail.
//!
//! The refusals are the messages of `keygate check`, one per line on stderr with a hint
//! under it. The raw key is never printed: messages show its redacted form
//! (`kg_uk_<id>…`). Exit codes: 0 started (or, with `--once`, would start), 1 refused,
//! 2 usage error or the server could not be asked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use keygate_token::Token;
use serde_json::Value;

/// The environment variable (and `.mcp.json` env entry) holding the key.
const ENV_VAR: &str = "KEYGATE_API_KEY";

/// An agent-side tool server that checks its keygate key at start-up.
#[derive(Debug, Parser)]
struct Args {
    /// The keygate server that introspects the key.
    #[arg(long, env = "KEYGATE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An `.mcp.json` file whose server env block may hold KEYGATE_API_KEY.
    #[arg(long, value_name = "PATH", requires = "mcp_server")]
    mcp_json: Option<PathBuf>,
    /// The server in `--mcp-json` this process is (default file: ./.mcp.json).
    #[arg(long, value_name = "NAME")]
    mcp_server: Option<String>,
    /// Check, print `ready`, and exit 0 instead of serving (how tests and CI run it).
    #[arg(long, alias = "self-test")]
    once: bool,
}

/// The check ran, and the answer is no (exit 1): a message and the fix under it.
#[derive(Debug)]
struct Refused {
    message: String,
    hint: String,
}

impl Refused {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Refused {}

/// What introspection says the key may reach.
#[derive(Debug)]
struct Access {
    kind: String,
    tenant: String,
    project: String,
    read_only: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast_ref::<Refused>() {
            Some(refused) => {
                eprintln!("{}", refused.message);
                eprintln!("hint: {}", refused.hint);
                ExitCode::from(1)
            }
            None => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
        },
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let access = check(args).await?;
    if args.once {
        return Ok(());
    }
    serve(&access).await
}

/// The whole start-up check; `Err(Refused)` means "do not start".
async fn check(args: &Args) -> anyhow::Result<Access> {
    let Some((raw, source)) = find_credential(args)? else {
        return Err(Refused::new(
            format!(
                "No authentication found: set {ENV_VAR} or add it to the env block in .mcp.json"
            ),
            format!(
                "export {ENV_VAR}=<your key>, or add \"{ENV_VAR}\": \"<your key>\" to the env \
                 block of this server in .mcp.json (and keep .mcp.json out of git)"
            ),
        )
        .into());
    };

    // Offline: shape and checksum. The error never echoes the secret.
    let token = Token::parse(raw.trim()).map_err(|err| {
        Refused::new(
            format!("Token is malformed: {err}"),
            format!("the {source} does not hold a whole keygate key; copy it again"),
        )
    })?;

    let (status, body) = introspect(&args.server, &token).await?;
    if status == 401 {
        let reason = match (
            body.get("error").and_then(Value::as_str),
            body.get("reason").and_then(Value::as_str),
        ) {
            (Some("expired"), _) => "expired",
            (_, Some(reason)) => reason,
            _ => "key_not_found",
        };
        let why = match reason {
            "expired" => "the key has expired",
            "key_revoked" => "the key was revoked",
            "key_not_found" => "the server does not know this key",
            _ => "the server refused the key",
        };
        return Err(Refused::new(
            format!("AUTH_TOKEN_EXPIRED: {reason} ({why}; key {token})"),
            format!("ask your tenant's owner for a new key and put it in the {source}"),
        )
        .into());
    }
    if !(200..300).contains(&status) {
        bail!(
            "the keygate server at {} answered {status} to token introspection",
            args.server
        );
    }

    let projects = body
        .get("projects")
        .and_then(Value::as_array)
        .context("the introspection answer has no `projects`")?;
    let one_project = "create a key for exactly one project: keygate keys create --kind user \
                       --project <name> --scope … --name <name>";
    let project = match projects.as_slice() {
        [] => return Err(Refused::new("Token has no project access", one_project).into()),
        [only] => text(only, &["name"]),
        many => {
            return Err(Refused::new(
                format!(
                    "Token accesses {} projects; use project-scoped token",
                    many.len()
                ),
                one_project,
            )
            .into());
        }
    };
    let access = Access {
        kind: text(&body, &["kind"]),
        tenant: text(&body, &["tenant", "name"]),
        project,
        read_only: body.get("read_only").and_then(Value::as_bool) == Some(true),
    };
    eprintln!(
        "ok: {} key {token} ({source}), tenant {}, project {}",
        access.kind, access.tenant, access.project
    );
    if access.read_only {
        eprintln!("warning: this key is read-only: mutations will fail");
    }
    eprintln!("ready: project {}", access.project);
    Ok(access)
}

/// `GET /api/v1/token` with the key: the status and the JSON body (`Null` if none).
async fn introspect(server: &str, token: &Token) -> anyhow::Result<(u16, Value)> {
    let base = server.trim_end_matches('/');
    // reqwest here uses rustls without a default crypto provider: install ring first
    // (a second install is harmless).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .context("setting up the HTTP client")?;
    // `bearer_auth` marks the header sensitive; reqwest's errors carry the URL, not it.
    let response = client
        .get(format!("{base}/api/v1/token"))
        .bearer_auth(token.expose())
        .send()
        .await
        .with_context(|| format!("cannot reach the keygate server at {base}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {base}"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// The string at `path` in `value`, or `?`.
fn text(value: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

/// The credential and where it came from: the environment, else `.mcp.json`.
fn find_credential(args: &Args) -> anyhow::Result<Option<(String, String)>> {
    if let Ok(value) = std::env::var(ENV_VAR)
        && !value.trim().is_empty()
    {
        return Ok(Some((value, format!("environment variable {ENV_VAR}"))));
    }
    let Some(server) = &args.mcp_server else {
        return Ok(None);
    };
    let path = args
        .mcp_json
        .clone()
        .unwrap_or_else(|| Path::new(".mcp.json").to_path_buf());
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let entry = doc
        .get("mcpServers")
        .and_then(|s| s.get(server))
        .with_context(|| {
            format!(
                "{} has no server {server:?} under mcpServers",
                path.display()
            )
        })?;
    let Some(value) = entry
        .get("env")
        .and_then(|env| env.get(ENV_VAR))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    // `"${KEYGATE_API_KEY}"` only points at the environment, which was read already.
    let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => std::env::var(var).unwrap_or_default(),
        None => value.to_owned(),
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some((
        value,
        format!("env block of server {server:?} in {}", path.display()),
    )))
}

/// Stands in for the real tool server, scoped to `access.project`: it would answer MCP
/// requests here, passing the checked key on to the platform. Runs until Ctrl-C.
async fn serve(access: &Access) -> anyhow::Result<()> {
    eprintln!(
        "serving project {} until Ctrl-C (a real bridge answers MCP here)",
        access.project
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("stopped");
    Ok(())
}
