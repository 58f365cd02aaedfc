//! `keygate scan`: find keygate keys and foreign credentials in files.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ignore::WalkBuilder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keygate_token::{CredentialKind, KeyKind, recognise, redact};
use serde_json::{Value, json};

use crate::cli::{Format, ScanArgs};
use crate::exit;

/// How much of a file is looked at for a NUL byte to call it binary (as git does).
const BINARY_PROBE: usize = 8 * 1024;

/// One credential found in a file, already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) path: PathBuf,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column, in characters (Unicode code points).
    pub(crate) column: usize,
    pub(crate) kind: CredentialKind,
    pub(crate) redacted: String,
}

/// What the walk saw besides the hits.
#[derive(Debug, Default)]
struct Tally {
    files: u64,
    binary: u64,
    too_large: u64,
    unreadable: u64,
}

pub(crate) fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    for path in &args.paths {
        // A root that does not exist is a usage error, not "nothing found".
        std::fs::metadata(path).with_context(|| format!("cannot scan {}", path.display()))?;
    }
    let spinner = spinner();
    let mut hits = Vec::new();
    let mut tally = Tally::default();
    for entry in walker(args).build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tally.unreadable += 1;
                spinner.suspend(|| eprintln!("warning: {err}"));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        tally.files += 1;
        if tally.files % 64 == 0 {
            spinner.set_message(format!("{} files", tally.files));
        }
        match scan_file(entry.path(), args.max_filesize) {
            Ok(Scanned::Hits(found)) => hits.extend(found),
            Ok(Scanned::Binary) => tally.binary += 1,
            Ok(Scanned::TooLarge) => tally.too_large += 1,
            Err(err) => {
                tally.unreadable += 1;
                spinner.suspend(|| eprintln!("warning: {}: {err}", entry.path().display()));
            }
        }
    }
    spinner.finish_and_clear();

    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            for hit in &hits {
                writeln!(
                    out,
                    "{}:{}:{}: {} {}",
                    hit.path.display(),
                    hit.line,
                    hit.column,
                    hit.kind,
                    hit.redacted
                )?;
            }
        }
        Format::Json => writeln!(out, "{}", to_json(&hits, &tally))?,
        Format::Sarif => writeln!(out, "{}", to_sarif(&hits))?,
    }
    out.flush()?;
    eprintln!(
        "scanned {} files ({} binary and {} over {} bytes skipped, {} unreadable): {} credentials found",
        tally.files,
        tally.binary,
        tally.too_large,
        args.max_filesize,
        tally.unreadable,
        hits.len()
    );
    Ok(if hits.is_empty() {
        ExitCode::SUCCESS
    } else {
        exit::failed()
    })
}

/// A spinner on stderr, drawn only when stderr is a terminal.
fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} scanning: {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn walker(args: &ScanArgs) -> WalkBuilder {
    let (first, rest) = args
        .paths
        .split_first()
        .map_or((Path::new("."), &[][..]), |(f, r)| (f.as_path(), r));
    let mut walk = WalkBuilder::new(first);
    for path in rest {
        walk.add(path);
    }
    let respect = !args.no_ignore;
    walk.hidden(args.no_hidden)
        .ignore(respect)
        .git_ignore(respect)
        .git_exclude(respect)
        .git_global(respect)
        .parents(respect)
        // Honour .gitignore even outside a git repository (a fresh checkout, a tarball).
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.depth() == 0 || entry.file_name() != ".git");
    walk
}

enum Scanned {
    Hits(Vec<Hit>),
    Binary,
    TooLarge,
}

fn scan_file(path: &Path, max: u64) -> std::io::Result<Scanned> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > max {
        return Ok(Scanned::TooLarge);
    }
    let mut bytes = Vec::new();
    // Read at most one byte past the cap, in case the file grew since the stat.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Scanned::TooLarge);
    }
    if bytes[..bytes.len().min(BINARY_PROBE)].contains(&0) {
        return Ok(Scanned::Binary);
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(Scanned::Hits(find(path, &text)))
}

/// Every credential in `text`, with 1-based line and character column.
pub(crate) fn find(path: &Path, text: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    let (mut line, mut line_start, mut pos) = (1, 0, 0);
    for finding in recognise(text) {
        let start = finding.span.start;
        for (i, b) in text.as_bytes()[pos..start].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = pos + i + 1;
            }
        }
        pos = start;
        hits.push(Hit {
            path: display_path(path),
            line,
            column: text[line_start..start].chars().count() + 1,
            kind: finding.kind,
            redacted: redact(&text[finding.span.clone()]),
        });
    }
    hits
}

/// `./a/b` prints as `a/b`, as ripgrep does.
fn display_path(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

/// Every kind a rule exists for, in rule order.
const KINDS: [CredentialKind; 9] = [
    CredentialKind::Keygate(KeyKind::User),
    CredentialKind::Keygate(KeyKind::Tenant),
    CredentialKind::GitHub,
    CredentialKind::GitLab,
    CredentialKind::Slack,
    CredentialKind::AwsAccessKeyId,
    CredentialKind::Stripe,
    CredentialKind::Anthropic,
    CredentialKind::OpenAi,
];

fn to_json(hits: &[Hit], tally: &Tally) -> Value {
    let findings: Vec<Value> = hits
        .iter()
        .map(|h| {
            json!({
                "path": h.path.to_string_lossy(),
                "line": h.line,
                "column": h.column,
                "kind": h.kind.id(),
                "kind_name": h.kind.name(),
                "redacted": h.redacted,
            })
        })
        .collect();
    json!({
        "findings": findings,
        "files_scanned": tally.files,
        "skipped": {
            "binary": tally.binary,
            "too_large": tally.too_large,
            "unreadable": tally.unreadable,
        },
    })
}

/// A minimal valid SARIF 2.1.0 log: one rule per credential kind, one result per hit.
fn to_sarif(hits: &[Hit]) -> Value {
    let rules: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            json!({
                "id": k.id(),
                "name": k.name(),
                "shortDescription": { "text": format!("A {} in a file", k.name()) },
                "fullDescription": {
                    "text": format!("A {} was found in a file. Revoke or rotate it, and keep credentials out of files that are committed.", k.name())
                },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let results: Vec<Value> = hits
        .iter()
        .map(|h| {
            let rule_index = KINDS.iter().position(|k| *k == h.kind);
            let mut result = json!({
                "ruleId": h.kind.id(),
                "level": "error",
                "message": { "text": format!("{} found: {}", h.kind.name(), h.redacted) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&h.path) },
                        "region": { "startLine": h.line, "startColumn": h.column },
                    }
                }],
            });
            if let (Some(i), Some(obj)) = (rule_index, result.as_object_mut()) {
                obj.insert("ruleIndex".to_owned(), json!(i));
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "keygate",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// A relative URI reference for `path`: `/` separators, reserved bytes percent-encoded.
fn uri(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if path.is_absolute() {
        format!("file://{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use keygate_token::TokenFormat;

    use super::*;

    #[test]
    fn lines_and_columns() {
        let key = TokenFormat::default().generate(KeyKind::User).unwrap();
        let text = format!("a\nbé = \"{}\"\n\nx {}\n", key.expose(), key.expose());
        let hits = find(Path::new("./f"), &text);
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[0].line, hits[0].column), (2, 7));
        assert_eq!((hits[1].line, hits[1].column), (4, 3));
        assert_eq!(hits[0].path, Path::new("f"));
        assert_eq!(hits[0].redacted, key.to_string());
        assert!(!hits[0].redacted.contains(key.expose()));
    }

    #[test]
    fn uris() {
        assert_eq!(uri(Path::new("a b/c.env")), "a%20b/c.env");
        assert_eq!(uri(Path::new("/x/.mcp.json")), "file:///x/.mcp.json");
    }
}
