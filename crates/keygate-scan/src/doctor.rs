//! The credential doctor: the credential map of a project directory and an environment.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use keygate_token::{CredentialKind, Token, recognise, redact};
use serde_json::{Value, json};

use crate::Error;
use crate::names::{Expected, expected, wrong_kind};
use crate::project::{MAX_PROJECT_FILE, parse_dotenv, read_bounded, read_mcp_json, reference};

/// Where an [`Entry`] sits in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The `env` block of an `.mcp.json` server.
    Env,
    /// The `headers` block of an `.mcp.json` server.
    Headers,
    /// A variable of a `.env` file or of the environment.
    Variable,
}

impl Field {
    /// `env`, `headers` or `variable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Headers => "headers",
            Self::Variable => "variable",
        }
    }
}

/// One place that holds (or should hold) a credential.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Entry {
    /// `.mcp.json`, `.env.local`, `environment`.
    pub source: String,
    /// The `.mcp.json` server, with its transport (`name (command npx)`), if any.
    pub server: Option<String>,
    /// Where in the source.
    pub field: Field,
    /// The variable or header name.
    pub name: String,
    /// What it holds, described without the secret.
    pub holds: Holds,
    /// What the server said of the key, once introspected
    /// ([`CredentialMap::key_active`], [`CredentialMap::key_rejected`]).
    pub status: Option<String>,
}

/// What an [`Entry`] holds, without the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holds {
    /// A recognised credential.
    Credential {
        /// Its kind.
        kind: CredentialKind,
        /// Its redacted form.
        redacted: String,
    },
    /// Nothing (or only white space).
    Empty,
    /// Only a reference to the variable named (`${NAME}`).
    Reference(String),
    /// Something else, redacted.
    Unrecognised(String),
}

impl Holds {
    /// How the map shows it: `GitHub token ghp_…`, `empty`, `reference to $X`.
    pub fn describe(&self) -> String {
        match self {
            Self::Credential { kind, redacted } => format!("{kind} {redacted}"),
            Self::Empty => "empty".to_owned(),
            Self::Reference(var) => format!("reference to ${var}"),
            Self::Unrecognised(redacted) => format!("unrecognised value {redacted}"),
        }
    }
}

/// Something wrong with the credentials: the doctor's verdict is the list of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// `mcp_json_not_ignored`, `env_file_not_ignored`, `empty_value`, `wrong_kind` or
    /// `key_rejected`.
    pub code: &'static str,
    /// What is wrong, naming the place.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// A file of the directory that was not read, or read in part. Not a problem of the
/// credentials, but the map is incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The file's name in the directory.
    pub file: String,
    /// `link_outside`, `link_broken`, `not_a_file` or `too_large`.
    pub code: &'static str,
    /// What was not read, and why.
    pub message: String,
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

/// The credential map of a directory: what [`Doctor::run`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CredentialMap {
    /// The directory, as given.
    pub dir: PathBuf,
    /// Whether the directory has an `.mcp.json` that was read.
    pub mcp_json: bool,
    /// Every place that holds a credential (and every `.mcp.json` entry), in the order
    /// `.mcp.json`, `.env*` files by name, the environment by name.
    pub entries: Vec<Entry>,
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// Files that were not read, or read in part.
    pub warnings: Vec<Warning>,
    /// Keygate keys found, each once: never shown, kept for introspection.
    keys: Vec<Token>,
}

/// Builds the credential map of a project directory: its `.mcp.json` (is it ignored
/// by git, is an `env` entry empty, does a credential sit under a name meant for
/// another service), its `.env` and `.env.*` files (same questions), and optionally an
/// environment's variables.
///
/// Files are read bounded ([`MAX_PROJECT_FILE`](crate::MAX_PROJECT_FILE)); links are
/// followed only to files inside the directory; FIFOs and devices are not opened.
///
/// ```
/// use keygate_scan::Doctor;
///
/// let dir = std::env::temp_dir().join(format!("keygate-doctor-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join(".env"), "GITHUB_TOKEN=${GH_TOKEN}\n")?;
/// let map = Doctor::new().run(&dir)?;
/// assert!(map.problems.is_empty());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Doctor {
    environment: Option<Vec<(String, String)>>,
}

impl Doctor {
    /// A doctor that looks at the directory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also map these environment variables (such as the process's own, from
    /// `std::env::vars_os`), shown sorted by name.
    #[must_use]
    pub fn environment(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        vars.sort();
        self.environment = Some(vars);
        self
    }

    /// Maps the credentials of `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`]; [`Error::Read`] when the directory or one of its files
    /// cannot be read; the `.mcp.json` errors of [`read_mcp_json`](crate::read_mcp_json).
    pub fn run(&self, dir: &Path) -> Result<CredentialMap, Error> {
        if !dir.is_dir() {
            return Err(Error::NotADirectory(dir.to_path_buf()));
        }
        let read_error = |path: PathBuf| move |source| Error::Read { path, source };
        // Links are followed only to files inside this directory.
        let root = dir.canonicalize().map_err(read_error(dir.to_path_buf()))?;
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut keys: Vec<Token> = Vec::new();
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
                    fix:
                        "add `.mcp.json` to .gitignore (and remove it from git if it was committed)"
                            .to_owned(),
                });
            }
            for server in read_mcp_json(&mcp_path)? {
                for (field, vars) in [(Field::Env, &server.env), (Field::Headers, &server.headers)]
                {
                    for (name, value) in vars {
                        let holds = classify(value, &mut keys);
                        if field == Field::Env && matches!(holds, Holds::Empty) {
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
            let read =
                read_bounded(&path, MAX_PROJECT_FILE).map_err(read_error(dir.join(&file)))?;
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
                    field: Field::Variable,
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

        for (name, value) in self.environment.iter().flatten() {
            let holds = classify(value, &mut keys);
            if !matches!(holds, Holds::Credential { .. }) {
                continue;
            }
            check_kind(&holds, name, None, "environment", &mut problems);
            entries.push(Entry {
                source: "environment".to_owned(),
                server: None,
                field: Field::Variable,
                name: name.clone(),
                holds,
                status: None,
            });
        }
        Ok(CredentialMap {
            dir: dir.to_path_buf(),
            mcp_json: mcp_present,
            entries,
            problems,
            warnings,
            keys,
        })
    }
}

impl CredentialMap {
    /// The keygate keys found, each once, in the order found: to introspect them
    /// against a server. Never print them; their `Display` is redacted.
    pub fn keys(&self) -> &[Token] {
        &self.keys
    }

    /// Whether anything is wrong (the CLI exits 1 then).
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Records that the server accepts `key`: tenant `tenant`, `projects` projects.
    pub fn key_active(&mut self, key: &Token, tenant: &str, projects: usize) {
        self.set_status(
            key,
            &format!("active: tenant {tenant}, {projects} project(s)"),
        );
    }

    /// Records that the server refused `key` with `reason` (`expired`, `key_revoked`,
    /// `key_not_found`), `explanation` being that reason in a sentence: a
    /// `key_rejected` problem.
    pub fn key_rejected(&mut self, key: &Token, reason: &str, explanation: &str) {
        self.problems.push(Problem {
            code: "key_rejected",
            message: format!("keygate key {}: {explanation} ({reason})", key.id()),
            fix: "replace it with a current key (keygate keys create or keys rotate)".to_owned(),
        });
        self.set_status(key, &format!("rejected: {reason}"));
    }

    fn set_status(&mut self, key: &Token, status: &str) {
        let shown = key.to_string();
        for entry in &mut self.entries {
            if let Holds::Credential { redacted, .. } = &entry.holds
                && *redacted == shown
            {
                entry.status = Some(status.to_owned());
            }
        }
    }

    /// The map as one JSON document: `dir`, `mcp_json`, `entries`, `problems`, `warnings`.
    pub fn to_json(&self) -> String {
        let report = self;
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
                    "field": e.field.as_str(),
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
            "mcp_json": report.mcp_json,
            "entries": entries,
            "problems": problems,
            "warnings": warnings,
        })
        .to_string()
    }

    /// Writes the map for people: the entries grouped by source, then the warnings and
    /// the problems with their fixes.
    ///
    /// # Errors
    ///
    /// What writing to `out` returns.
    pub fn write_text(&self, mut out: impl Write) -> std::io::Result<()> {
        let CredentialMap {
            dir,
            mcp_json: mcp_present,
            entries,
            problems,
            warnings,
            keys: _,
        } = self;
        writeln!(out, "Credential map of {}", dir.display())?;
        if !mcp_present {
            if warnings.iter().any(|w| w.file == ".mcp.json") {
                writeln!(out, "  .mcp.json: not read (see the warnings)")?;
            } else {
                writeln!(out, "  .mcp.json: none")?;
            }
        }
        let mut last: Option<(&str, Option<&str>)> = None;
        for e in entries {
            let group = (e.source.as_str(), e.server.as_deref());
            if last != Some(group) {
                match &e.server {
                    Some(server) => writeln!(out, "  {} server {server}", e.source)?,
                    None => writeln!(out, "  {}", e.source)?,
                }
                last = Some(group);
            }
            let field = if e.field == Field::Variable {
                String::new()
            } else {
                format!("{} ", e.field.as_str())
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
            for w in warnings {
                writeln!(out, "  - {}", w.message)?;
            }
        }
        if problems.is_empty() {
            writeln!(out, "No problems found.")?;
        } else {
            writeln!(out, "Problems ({}):", problems.len())?;
            for p in problems {
                writeln!(out, "  - {}", p.message)?;
                writeln!(out, "    fix: {}", p.fix)?;
            }
        }
        Ok(())
    }
}

/// What a value holds. Keygate keys are remembered for introspection.
fn classify(value: &str, keys: &mut Vec<Token>) -> Holds {
    if value.trim().is_empty() {
        return Holds::Empty;
    }
    if let Some(var) = reference(value) {
        return Holds::Reference(var.to_owned());
    }
    match recognise(value).into_iter().next() {
        Some(found) => {
            let secret = &value[found.span.clone()];
            if let Ok(token) = Token::parse(secret)
                && !keys.iter().any(|k| k.id() == token.id())
            {
                keys.push(token);
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
        if expected(name) == Expected::Nothing {
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
fn dotenv_files(dir: &Path) -> Result<Vec<String>, Error> {
    let read_error = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
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
