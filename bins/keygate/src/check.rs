//! `keygate check`: the start-up validation an agent bridge runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use keygate_token::Token;
use serde_json::Value;

use crate::cli::CheckArgs;
use crate::client::{Client, explain_reason, rejection_reason};
use crate::exit::Refused;
use crate::names::{read_mcp_json, reference};

/// Where the credential was found, for messages.
#[derive(Debug)]
enum Source {
    Env(String),
    McpJson { path: PathBuf, server: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::McpJson { path, server } => {
                write!(f, "server {server:?} of {}", path.display())
            }
        }
    }
}

pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let name = &args.env_var;
    let Some((raw, source)) = find_credential(args)? else {
        return Err(Refused::new(
            format!("No authentication found: set {name} or add it to the env block in .mcp.json"),
            format!(
                "hint: export {name}=<your key>, or add \"{name}\": \"<your key>\" to the env \
                 block of your server in .mcp.json (and keep .mcp.json out of git)"
            ),
        )
        .into());
    };
    let token = Token::parse(raw.trim()).map_err(|err| {
        Refused::new(
            format!("Token is malformed: {err}"),
            format!(
                "hint: the {source} does not hold a whole keygate key; copy the key again \
                 (it is shown once when created or rotated)"
            ),
        )
    })?;

    let client = Client::new(&args.server)?;
    let answer = client.get("/api/v1/token", token.expose())?;
    if answer.status == 401 {
        let reason = rejection_reason(&answer);
        return Err(Refused::new(
            format!("AUTH_TOKEN_EXPIRED: {reason} ({})", explain_reason(reason)),
            format!(
                "hint: ask your tenant's owner for a new key (keygate keys create or keys rotate) \
                 and put it in the {source}"
            ),
        )
        .into());
    }
    if !answer.ok() {
        bail!(
            "the keygate server at {} answered {} to token introspection{}",
            client.base(),
            answer.status,
            answer
                .error()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    let body = &answer.body;
    let projects = body
        .get("projects")
        .and_then(Value::as_array)
        .with_context(|| {
            format!(
                "the keygate server at {} sent an introspection answer without projects",
                client.base()
            )
        })?;
    let fix = "hint: create a key for exactly one project: \
               keygate keys create --kind user --project <name> --scope … --name <name>";
    match projects.len() {
        0 => return Err(Refused::new("Token has no project access", fix).into()),
        1 => {}
        n => {
            return Err(Refused::new(
                format!("Token accesses {n} projects; use project-scoped token"),
                fix,
            )
            .into());
        }
    }
    let str_at = |v: &Value, path: &[&str]| -> String {
        let mut v = v;
        for p in path {
            v = v.get(*p).unwrap_or(&Value::Null);
        }
        v.as_str().unwrap_or("?").to_owned()
    };
    eprintln!(
        "ok: {} key {} ({source}), tenant {}, project {}",
        str_at(body, &["kind"]),
        token.id(),
        str_at(body, &["tenant", "name"]),
        str_at(&projects[0], &["name"]),
    );
    if body.get("read_only").and_then(Value::as_bool) == Some(true) {
        eprintln!("warning: this key is read-only: mutations will fail");
        eprintln!("hint: ask for a key with write scopes if the agent must change anything");
    }
    Ok(ExitCode::SUCCESS)
}

/// The credential: the environment variable, else the `.mcp.json` server's env block.
fn find_credential(args: &CheckArgs) -> anyhow::Result<Option<(String, Source)>> {
    let name = &args.env_var;
    if let Some(value) = std::env::var_os(name) {
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("{name} is not valid UTF-8"))?;
        if !value.trim().is_empty() {
            return Ok(Some((value, Source::Env(name.clone()))));
        }
    }
    if args.mcp_json.is_none() && args.mcp_server.is_none() {
        return Ok(None);
    }
    let path = args
        .mcp_json
        .clone()
        .unwrap_or_else(|| Path::new(".mcp.json").to_path_buf());
    let servers = read_mcp_json(&path)?;
    let server = match &args.mcp_server {
        Some(wanted) => servers
            .iter()
            .find(|s| &s.name == wanted)
            .with_context(|| {
                let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "{} has no server {wanted:?} (servers: {})",
                    path.display(),
                    names.join(", ")
                )
            })?,
        None => match servers.as_slice() {
            [only] => only,
            [] => bail!("{} has no servers under mcpServers", path.display()),
            _ => {
                let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "{} has several servers ({}); say which with --mcp-server",
                    path.display(),
                    names.join(", ")
                )
            }
        },
    };
    let Some(value) = server.env.get(name) else {
        return Ok(None);
    };
    // `"KEYGATE_API_KEY": "${KEYGATE_API_KEY}"` only points at the environment,
    // which was looked at already.
    let value = match reference(value) {
        Some(var) => std::env::var(var).unwrap_or_default(),
        None => value.clone(),
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some((
        value,
        Source::McpJson {
            path,
            server: server.name.clone(),
        },
    )))
}
