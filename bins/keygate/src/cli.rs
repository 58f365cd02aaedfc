//! Command-line definitions (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Default address of a local `keygated`.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// keygate: API keys, scope checks and confirmation gates for agent tool servers.
///
/// Secrets go to stdout alone; everything else to stderr. Exit codes: 0 ok,
/// 1 check failed or something found, 2 usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "keygate", version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a tenant, its owner and the owner's admin key; prints the key alone on stdout.
    Bootstrap(BootstrapArgs),
    /// Check tokens offline.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Find keygate keys and foreign credentials in files (exit 1 when any is found).
    Scan(ScanArgs),
    /// Map the credentials an agent would start with, and report problems (exit 1).
    Doctor(DoctorArgs),
    /// Start-up validation for an agent bridge: exactly one project, or refuse (exit 1).
    Check(CheckArgs),
    /// Create, list, show, revoke and rotate keys (admin API; key from KEYGATE_API_KEY).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create and list projects (admin API; key from KEYGATE_API_KEY).
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Show the audit log (admin API; key from KEYGATE_API_KEY).
    Audit(AuditArgs),
    /// List, approve and deny person-gated tool calls (your own key with gates:approve
    /// in KEYGATE_API_KEY, never the key that made the call).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Serve MCP on stdio in front of COMMAND, with keygated's policy, gates and approvals.
    Wrap(WrapArgs),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct BootstrapArgs {
    /// The key store: sqlite://PATH or postgres://… (several tenants may share one).
    #[arg(long, value_name = "URL", env = "KEYGATE_DATABASE")]
    pub(crate) database: String,
    /// The new tenant's name (refused if it exists).
    #[arg(long, value_name = "NAME")]
    pub(crate) tenant: String,
    /// The owner's name.
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: String,
    /// The tool policy whose every scope the owner key receives (besides keys:admin).
    #[arg(long, value_name = "FILE", conflicts_with = "demo")]
    pub(crate) policy: Option<PathBuf>,
    /// Use the demo platform's policy and create projects `shop` and `ops`.
    #[arg(long)]
    pub(crate) demo: bool,
    /// The token brand of this deployment (key prefix `<brand>_uk_`).
    #[arg(long, default_value = "kg", env = "KEYGATE_BRAND")]
    pub(crate) brand: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Check a token's shape and checksum offline; print its kind and id, never the secret.
    Check {
        /// The token, or `-` to read one token from stdin (keeps it out of the process list).
        token: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output format of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// `path:line:col: kind redacted`, one finding a line.
    Text,
    /// One JSON document.
    Json,
    /// A SARIF 2.1.0 log, for code-scanning tools.
    Sarif,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files or directories to scan.
    #[arg(default_value = ".")]
    pub(crate) paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Also scan files that .gitignore and .ignore files exclude.
    #[arg(long)]
    pub(crate) no_ignore: bool,
    /// Skip hidden files and directories (by default they are scanned, except `.git/`:
    /// `.env` and `.mcp.json` are where secrets hide).
    #[arg(long)]
    pub(crate) no_hidden: bool,
    /// Skip files larger than this many bytes (default: no limit; a large file is read
    /// in pieces, so memory stays bounded).
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_filesize: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The project directory (where `.mcp.json` and `.env` live).
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Introspect the keygate keys found against this server, http://… or https://…
    /// (expired, revoked, unknown).
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Do not look at this process's environment variables.
    #[arg(long)]
    pub(crate) no_env: bool,
    /// Print the map and the problems as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The environment variable holding the key (and the key of the `.mcp.json` env block).
    #[arg(long, value_name = "NAME", default_value = "KEYGATE_API_KEY")]
    pub(crate) env_var: String,
    /// The `.mcp.json` to read the key from when the variable is not set
    /// (default `.mcp.json` when --mcp-server is given).
    #[arg(long, value_name = "PATH")]
    pub(crate) mcp_json: Option<PathBuf>,
    /// The server entry of `.mcp.json` whose env block holds the key
    /// (default: the only server in the file).
    #[arg(long, value_name = "NAME")]
    pub(crate) mcp_server: Option<String>,
    #[command(flatten)]
    pub(crate) server: ServerArg,
}

#[derive(Debug, Args)]
pub(crate) struct WrapArgs {
    /// The tool policy: tools not in it are hidden and denied (required).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: PathBuf,
    /// First run the start-up check (as `keygate check`); refuse to start if it fails.
    #[arg(long)]
    pub(crate) check: bool,
    #[command(flatten)]
    pub(crate) lookup: CheckArgs,
    /// The stdio MCP server to run, after `--`, such as `-- zcp serve`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// Where the admin API is.
#[derive(Debug, Args)]
pub(crate) struct ServerArg {
    /// The keygate server: http://… or https://… (certificates checked against the
    /// system's roots).
    #[arg(long, value_name = "URL", env = "KEYGATE_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub(crate) server: String,
}

/// A listing or one item: where the API is, and whether to print JSON.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Kind of key to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KindArg {
    /// A user key, tied to you; may call user-only tools.
    User,
    /// A tenant key, acting for the tenant with no user.
    Tenant,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; prints the raw key alone on stdout (shown once).
    Create {
        #[command(flatten)]
        server: ServerArg,
        /// User key or tenant key.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// A scope the key holds (repeat for several; at least one).
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// A project the key may touch (repeat for several; none = all projects).
        #[arg(long = "project", value_name = "PROJECT")]
        projects: Vec<String>,
        /// Lifetime, such as 30d, 12h, 90m or 45s (default: no expiry).
        #[arg(long, value_name = "DURATION", value_parser = keygate_client::parse_lifetime)]
        expires_in: Option<std::time::Duration>,
        /// Verified requests the key may make (default: no limit); each one spends one,
        /// and an exhausted key is refused with 403 usage_exceeded.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i64::MAX.cast_unsigned()))]
        remaining: Option<u64>,
        /// Set the remaining count back to AMOUNT every INTERVAL: daily, monthly or a
        /// duration such as 6h (UTC periods), e.g. daily:1000. Needs --remaining.
        #[arg(long, value_name = "INTERVAL:AMOUNT", requires = "remaining", value_parser = keygate_client::parse_refill)]
        refill: Option<keygate_keys::Refill>,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
    },
    /// List keys: id, name, kind, scopes, created, expires, last used, remaining, refill,
    /// status.
    List(ListArgs),
    /// Show one key.
    Show {
        #[command(flatten)]
        list: ListArgs,
        /// The key id (the 12 characters after the prefix).
        id: String,
    },
    /// Revoke a key (effective on the very next request).
    Revoke(KeyIdArgs),
    /// Issue a new key with the same kind, scopes and projects; prints it alone on stdout.
    Rotate(KeyIdArgs),
}

/// One key: where the API is, and the key's id.
#[derive(Debug, Args)]
pub(crate) struct KeyIdArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// The key id.
    pub(crate) id: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectsCommand {
    /// Create a project.
    Create {
        #[command(flatten)]
        server: ServerArg,
        /// The project's name.
        name: String,
    },
    /// List projects.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,
    /// How many entries to show, newest first.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List the pending approvals you may decide: id, operation, target, key, expires.
    List(ListArgs),
    /// Approve a call: the agent's identical retry then proceeds once.
    Approve {
        #[command(flatten)]
        server: ServerArg,
        /// The approval id (from `keygate approvals list` or the approval URL).
        id: String,
        /// The target's exact name, as `list` shows it (a wrong name is refused).
        #[arg(long, value_name = "NAME")]
        target: String,
    },
    /// Deny a call: the agent's retry is refused.
    Deny {
        #[command(flatten)]
        server: ServerArg,
        /// The approval id.
        id: String,
    },
}
