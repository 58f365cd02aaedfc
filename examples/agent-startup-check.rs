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
//! Start-up, in order, before anything is served, all of it [`keygate_client::Check`]
//! (the check of `keygate check`):
//!
//! 1. find the credential: `KEYGATE_API_KEY`, else the `env` block of the server named by
//!    `--mcp-server` in `--mcp-json` (a `"${VAR}"` value there points back at the
//!    environment);
//! 2. check its shape and checksum offline (a typo never reaches the network);
//! 3. introspect it (`GET /api/v1/token` on `--server`) and refuse unless it reaches
//!    exactly one project; a read-only key starts with a warning that mutations will fail.
//!
//! The refusals are the messages of `keygate check`, one per line on stderr with a hint
//! under it. The raw key is never printed: messages show its redacted form
//! (`kg_uk_<id>…`). Exit codes: 0 started (or, with `--once`, would start), 1 refused,
//! 2 usage error or the server could not be asked.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use keygate_client::{Check, Lookup, Outcome, Ready, Refusal};

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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let lookup = Lookup::new()
        .mcp_json(args.mcp_json.clone())
        .mcp_server(args.mcp_server.clone());
    let ready = match Check::new(&args.server).lookup(lookup).run().await {
        Ok(Outcome::Ready(ready)) => ready,
        Ok(Outcome::Refused(refusal)) => {
            eprintln!("{refusal}");
            eprintln!("hint: {}", hint(&refusal));
            return ExitCode::from(1);
        }
        Ok(other) => {
            eprintln!("error: the start-up check answered {other:?}");
            return ExitCode::from(2);
        }
        Err(err) => {
            // `{:#}` shows the causes after the message.
            eprintln!("error: {:#}", anyhow::Error::from(err));
            return ExitCode::from(2);
        }
    };
    let info = ready.info();
    eprintln!(
        "ok: {} key {} ({}), tenant {}, project {}",
        info.kind,
        ready.token(),
        ready.source(),
        info.tenant.name,
        ready.project().name
    );
    if ready.read_only() {
        eprintln!("warning: this key is read-only: mutations will fail");
    }
    eprintln!("ready: project {}", ready.project().name);
    if args.once {
        return ExitCode::SUCCESS;
    }
    match serve(&ready).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// What to do about a refusal.
fn hint(refusal: &Refusal) -> String {
    let source = refusal
        .origin()
        .map_or_else(|| "environment".to_owned(), ToString::to_string);
    match refusal {
        Refusal::NoCredential { env_var } => format!(
            "export {env_var}=<your key>, or add \"{env_var}\": \"<your key>\" to the env \
             block of this server in .mcp.json (and keep .mcp.json out of git)"
        ),
        Refusal::Malformed { .. } => {
            format!("the {source} does not hold a whole keygate key; copy it again")
        }
        Refusal::Rejected { .. } => {
            format!("ask your tenant's owner for a new key and put it in the {source}")
        }
        _ => "create a key for exactly one project: keygate keys create --kind user \
              --project <name> --scope … --name <name>"
            .to_owned(),
    }
}

/// Stands in for the real tool server, scoped to the checked key's project: it would
/// answer MCP requests here, passing the key on to the platform. Runs until Ctrl-C.
async fn serve(ready: &Ready) -> anyhow::Result<()> {
    eprintln!(
        "serving project {} until Ctrl-C (a real bridge answers MCP here)",
        ready.project().name
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("stopped");
    Ok(())
}
