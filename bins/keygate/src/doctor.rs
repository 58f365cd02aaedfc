//! `keygate doctor`: the credential map of a project directory and its environment.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use keygate_token::{CredentialKind, Token, recognise, redact};
use serde_json::{Value, json};

use crate::cli::DoctorArgs;
use crate::client::{Client, explain_reason, rejection_reason};
use crate::exit;
use crate::names::{
    MAX_PROJECT_FILE, parse_dotenv, read_bounded, read_mcp_json, reference, wrong_kind,
};

/// One place that holds (or should hold) a credential.
#[derive(Debug)]
struct Entry {
    /// `.mcp.json`, `.env.local`, `environment`.
    source: String,
    /// The `.mcp.json` server, if any.
    server: Option<String>,
    /// `env`, `headers` or `variable`.
    field: &'static str,
    name: String,
    /// What it holds, described without the secret.
    holds: Holds,
    /// Introspection status, with --server.
    status: Option<String>,
}

#[derive(Debug)]
enum Holds {
    Credential {
        kind: CredentialKind,
        redacted: String,
    },
    Empty,
    Reference(String),
    Unrecognised(String),
}

impl Holds {
    fn describe(&self) -> String {
        match self {
            Self::Credential { kind, redacted } => format!("{kind} {redacted}"),
            Self::Empty => "empty".to_owned(),
            Self::Reference(var) => format!("reference to ${var}"),
            Self::Unrecognised(redacted) => format!("unrecognised value {redacted}"),
        }
    }
}

#[derive(Debug)]
struct Problem {
    code: &'static str,
    message: String,
    fix: String,
}

/// A file of the directory that was not read, or read in part. Not a problem of the
/// credentials (the exit code does not change), but the map is incomplete.
#[derive(Debug)]
struct Warning {
    file: String,
    /// `link_outside`, `link_broken`, `not_a_file` or `too_large`.
    code: &'static str,
    message: String,
}

/// Where a file of the directory leads.
#[derive(Debug)]
enum Located {
    /// A regular file (or a link to one inside the directory): read it.
    File(PathBuf),
    /// Not there, or a directory (a virtualenv called `.env`): nothing to read.
    Absent,
    /// There, and not read.
    Skipped(Warning),
}

pub(crate) fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    // Links are followed only to files inside this directory.
    let root = dir
        .canonicalize()
        .with_context(|| format!("reading {}", dir.display()))?;
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    // Raw keygate keys to introspect, keyed by id; never printed.
    let mut keys: Vec<(String, Token)> = Vec::new();

    let mcp_path = dir.join(".mcp.json");
    let mcp_present = match locate(&root, ".mcp.json") {
        Located::File(_) => true,
        Located::Absent => false,
        Located::Skipped(warning) => {
            warnings.push(warning);
            false
        }
    };
    if mcp_present {
        if !ignored_by_git(dir, &mcp_path) {
            problems.push(Problem {
                code: "mcp_json_not_ignored",
                message: ".mcp.json is not ignored by git: the keys in it would be committed"
                    .to_owned(),
                fix: "add `.mcp.json` to .gitignore (and remove it from git if it was committed)"
                    .to_owned(),
            });
        }
        for server in read_mcp_json(&mcp_path)? {
            for (field, vars) in [("env", &server.env), ("headers", &server.headers)] {
                for (name, value) in vars {
                    let holds = classify(value, &mut keys);
                    if field == "env" && matches!(holds, Holds::Empty) {
                        problems.push(Problem {
                            code: "empty_value",
                            message: format!(
                                ".mcp.json server {:?}: env {name} is empty",
                                server.name
                            ),
                            fix: format!("put the key in {name}, or remove the entry"),
                        });
                    }
                    check_kind(&holds, name, Some(&server.name), ".mcp.json", &mut problems);
                    entries.push(Entry {
                        source: ".mcp.json".to_owned(),
                        server: Some(format!("{} ({})", server.name, server.transport)),
                        field,
                        name: name.clone(),
                        holds,
                        status: None,
                    });
                }
            }
        }
    }

    for file in dotenv_files(dir)? {
        let path = match locate(&root, &file) {
            Located::File(path) => path,
            Located::Absent => continue,
            Located::Skipped(warning) => {
                warnings.push(warning);
                continue;
            }
        };
        let read = read_bounded(&path, MAX_PROJECT_FILE)
            .with_context(|| format!("reading {}", dir.join(&file).display()))?;
        if read.truncated {
            warnings.push(Warning {
                file: file.clone(),
                code: "too_large",
                message: format!(
                    "{file} is {}; only its first {} was read (a .env file is a few lines: \
                     is it the right file? `keygate scan` reads all of it)",
                    size(read.size),
                    size(MAX_PROJECT_FILE)
                ),
            });
        }
        let path = dir.join(&file);
        let mut holds_credential = false;
        for (name, value) in parse_dotenv(&read.text) {
            let holds = classify(&value, &mut keys);
            if !matches!(holds, Holds::Credential { .. }) {
                continue;
            }
            holds_credential = true;
            check_kind(&holds, &name, None, &file, &mut problems);
            entries.push(Entry {
                source: file.clone(),
                server: None,
                field: "variable",
                name,
                holds,
                status: None,
            });
        }
        if holds_credential && !ignored_by_git(dir, &path) {
            problems.push(Problem {
                code: "env_file_not_ignored",
                message: format!("{file} holds credentials and is not ignored by git"),
                fix: format!(
                    "add `{file}` to .gitignore (and rotate the keys if it was committed)"
                ),
            });
        }
    }

    if !args.no_env {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        vars.sort();
        for (name, value) in vars {
            let holds = classify(&value, &mut keys);
            if !matches!(holds, Holds::Credential { .. }) {
                continue;
            }
            check_kind(&holds, &name, None, "environment", &mut problems);
            entries.push(Entry {
                source: "environment".to_owned(),
                server: None,
                field: "variable",
                name,
                holds,
                status: None,
            });
        }
    }

    if let Some(server) = &args.server {
        introspect(server, &keys, &mut entries, &mut problems)?;
    }

    let report = Report {
        dir,
        mcp_present,
        entries: &entries,
        problems: &problems,
        warnings: &warnings,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", to_json(&report))?;
    } else {
        write_text(&mut out, &report)?;
    }
    out.flush()?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        exit::failed()
    })
}

/// What a value holds. Keygate keys are remembered for introspection.
fn classify(value: &str, keys: &mut Vec<(String, Token)>) -> Holds {
    if value.trim().is_empty() {
        return Holds::Empty;
    }
    if let Some(var) = reference(value) {
        return Holds::Reference(var.to_owned());
    }
    match recognise(value).into_iter().next() {
        Some(found) => {
            let secret = &value[found.span.clone()];
            if let Ok(token) = Token::parse(secret) {
                let id = token.id().to_string();
                if !keys.iter().any(|(k, _)| *k == id) {
                    keys.push((id, token));
                }
            }
            Holds::Credential {
                kind: found.kind,
                redacted: redact(secret),
            }
        }
        None => Holds::Unrecognised(redact(value)),
    }
}

fn check_kind(
    holds: &Holds,
    name: &str,
    server: Option<&str>,
    source: &str,
    problems: &mut Vec<Problem>,
) {
    let Holds::Credential { kind, .. } = holds else {
        return;
    };
    // A generic header name (`Authorization`) says nothing; the server's name may.
    let why = wrong_kind(name, *kind).or_else(|| {
        let server = server?;
        if crate::names::expected(name) == crate::names::Expected::Nothing {
            wrong_kind(server, *kind).map(|_| {
                format!("{name} of server {server:?} holds a {kind}, but the server's name says otherwise")
            })
        } else {
            None
        }
    });
    if let Some(message) = why {
        let place = match server {
            Some(server) => format!("{source} server {server:?}"),
            None => source.to_owned(),
        };
        problems.push(Problem {
            code: "wrong_kind",
            message: format!("{place}: {message}"),
            fix: format!(
                "put the right credential in {name} (and rotate the misplaced one if it was shared)"
            ),
        });
    }
}

/// The names `.env` and `.env.*` directly in `dir`, sorted (files, links or anything
/// else: [`locate`] decides).
fn dotenv_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name == ".env" || name.starts_with(".env.") {
            files.insert(name);
        }
    }
    Ok(files.into_iter().collect())
}

/// Where the file `name` of the directory `root` (canonical) leads.
///
/// A link is followed when its target is a file inside `root` (`.env -> config/dev.env`),
/// and never out of it: a checkout must not make `doctor` read `~/.aws/credentials` or
/// `/dev/zero`. Anything but a regular file (a FIFO would block the read) is not read.
fn locate(root: &Path, name: &str) -> Located {
    let path = root.join(name);
    let skipped = |code, message| {
        Located::Skipped(Warning {
            file: name.to_owned(),
            code,
            message,
        })
    };
    let Ok(mut meta) = std::fs::symlink_metadata(&path) else {
        return Located::Absent;
    };
    if meta.file_type().is_symlink() {
        let shown =
            std::fs::read_link(&path).map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
        let Ok(target) = std::fs::canonicalize(&path) else {
            return skipped(
                "link_broken",
                format!("{name} is a link to {shown}, which does not exist: not read"),
            );
        };
        if !target.starts_with(root) {
            return skipped(
                "link_outside",
                format!(
                    "{name} is a link to {shown}, outside {}: not followed",
                    root.display()
                ),
            );
        }
        match std::fs::metadata(&target) {
            Ok(m) => meta = m,
            Err(_) => return Located::Absent,
        }
    }
    if meta.is_dir() {
        Located::Absent
    } else if meta.is_file() {
        Located::File(path)
    } else {
        skipped(
            "not_a_file",
            format!("{name} is not a regular file (a FIFO, socket or device): not read"),
        )
    }
}

/// A byte count for people: `3.0 GiB`, `1 MiB`, `512 bytes`.
fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{:.1} {unit}", bytes as f64 / scale as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Whether git would ignore `path`: the `.gitignore` files of `dir` and its parents up
/// to the repository root, nearest first, plus `.git/info/exclude`.
fn ignored_by_git(dir: &Path, path: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let path = dir.join(path.file_name().unwrap_or_default());
    for ancestor in dir.ancestors() {
        let mut matchers = vec![ancestor.join(".gitignore")];
        let is_root = ancestor.join(".git").exists();
        if is_root {
            matchers.push(ancestor.join(".git/info/exclude"));
        }
        for file in matchers {
            if !file.is_file() {
                continue;
            }
            let mut builder = GitignoreBuilder::new(ancestor);
            if builder.add(&file).is_some() {
                continue;
            }
            let gitignore: Gitignore = match builder.build() {
                Ok(g) => g,
                Err(_) => continue,
            };
            let m = gitignore.matched_path_or_any_parents(&path, false);
            if m.is_ignore() {
                return true;
            }
            if m.is_whitelist() {
                return false;
            }
        }
        if is_root {
            break;
        }
    }
    false
}

fn introspect(
    server: &str,
    keys: &[(String, Token)],
    entries: &mut [Entry],
    problems: &mut Vec<Problem>,
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let client = Client::new(server)?;
    for (id, token) in keys {
        let answer = client.get("/api/v1/token", token.expose())?;
        let status = if answer.ok() {
            let n = answer
                .body
                .get("projects")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let tenant = answer
                .body
                .pointer("/tenant/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            format!("active: tenant {tenant}, {n} project(s)")
        } else if answer.status == 401 {
            let reason = rejection_reason(&answer);
            problems.push(Problem {
                code: "key_rejected",
                message: format!("keygate key {id}: {} ({reason})", explain_reason(reason)),
                fix: "replace it with a current key (keygate keys create or keys rotate)"
                    .to_owned(),
            });
            format!("rejected: {reason}")
        } else {
            anyhow::bail!(
                "the keygate server at {} answered {} to token introspection",
                client.base(),
                answer.status
            );
        };
        for entry in entries.iter_mut() {
            if let Holds::Credential { redacted, .. } = &entry.holds
                && *redacted == token.to_string()
            {
                entry.status = Some(status.clone());
            }
        }
    }
    Ok(())
}

/// Everything the map shows.
#[derive(Debug)]
struct Report<'a> {
    dir: &'a Path,
    mcp_present: bool,
    entries: &'a [Entry],
    problems: &'a [Problem],
    warnings: &'a [Warning],
}

fn to_json(report: &Report<'_>) -> Value {
    let entries: Vec<Value> = report
        .entries
        .iter()
        .map(|e| {
            let (holds, kind, redacted) = match &e.holds {
                Holds::Credential { kind, redacted } => {
                    ("credential", Some(kind.id()), Some(redacted.clone()))
                }
                Holds::Empty => ("empty", None, None),
                Holds::Reference(_) => ("reference", None, None),
                Holds::Unrecognised(r) => ("unrecognised", None, Some(r.clone())),
            };
            let reference = match &e.holds {
                Holds::Reference(var) => Some(var.clone()),
                _ => None,
            };
            json!({
                "source": e.source,
                "server": e.server,
                "field": e.field,
                "name": e.name,
                "holds": holds,
                "kind": kind,
                "redacted": redacted,
                "reference": reference,
                "status": e.status,
            })
        })
        .collect();
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| json!({ "code": p.code, "message": p.message, "fix": p.fix }))
        .collect();
    let warnings: Vec<Value> = report
        .warnings
        .iter()
        .map(|w| json!({ "file": w.file, "code": w.code, "message": w.message }))
        .collect();
    json!({
        "dir": report.dir.to_string_lossy(),
        "mcp_json": report.mcp_present,
        "entries": entries,
        "problems": problems,
        "warnings": warnings,
    })
}

fn write_text(out: &mut impl Write, report: &Report<'_>) -> std::io::Result<()> {
    let Report {
        dir,
        mcp_present,
        entries,
        problems,
        warnings,
    } = report;
    writeln!(out, "Credential map of {}", dir.display())?;
    if !mcp_present {
        if warnings.iter().any(|w| w.file == ".mcp.json") {
            writeln!(out, "  .mcp.json: not read (see the warnings)")?;
        } else {
            writeln!(out, "  .mcp.json: none")?;
        }
    }
    let mut last: Option<(&str, Option<&str>)> = None;
    for e in *entries {
        let group = (e.source.as_str(), e.server.as_deref());
        if last != Some(group) {
            match &e.server {
                Some(server) => writeln!(out, "  {} server {server}", e.source)?,
                None => writeln!(out, "  {}", e.source)?,
            }
            last = Some(group);
        }
        let field = if e.field == "variable" {
            String::new()
        } else {
            format!("{} ", e.field)
        };
        write!(out, "    {field}{} = {}", e.name, e.holds.describe())?;
        if let Some(status) = &e.status {
            write!(out, " [{status}]")?;
        }
        writeln!(out)?;
    }
    if entries.is_empty() {
        writeln!(out, "  no credentials found")?;
    }
    if !warnings.is_empty() {
        writeln!(out, "Warnings ({}):", warnings.len())?;
        for w in *warnings {
            writeln!(out, "  - {}", w.message)?;
        }
    }
    if problems.is_empty() {
        writeln!(out, "No problems found.")?;
    } else {
        writeln!(out, "Problems ({}):", problems.len())?;
        for p in *problems {
            writeln!(out, "  - {}", p.message)?;
            writeln!(out, "    fix: {}", p.fix)?;
        }
    }
    Ok(())
}
