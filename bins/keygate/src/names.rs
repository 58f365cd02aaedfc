//! What a variable name suggests it holds, and reading `.env` files (`.mcp.json` is
//! keygate-client's).

use std::io::Read;
use std::path::Path;

use keygate_token::CredentialKind;

pub(crate) use keygate_client::{read_mcp_json, reference};

use crate::text::{Decoder, Encoding};

/// The service a variable name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// A kind this tool recognises.
    Kind(Service),
    /// Some other service (such as `ZEROPS` in `ZEROPS_TOKEN`): a recognised foreign
    /// credential there is the wrong one; a keygate key of any brand may be right.
    Other,
    /// Nothing: a generic name such as `API_KEY` or `TOKEN`.
    Nothing,
}

/// The services whose credentials are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Keygate,
    GitHub,
    GitLab,
    Slack,
    Aws,
    Stripe,
    Anthropic,
    OpenAi,
}

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Keygate => "keygate key",
            Self::GitHub => "GitHub token",
            Self::GitLab => "GitLab token",
            Self::Slack => "Slack token",
            Self::Aws => "AWS credential",
            Self::Stripe => "Stripe key",
            Self::Anthropic => "Anthropic API key",
            Self::OpenAi => "OpenAI API key",
        }
    }

    fn of(kind: CredentialKind) -> Option<Self> {
        Some(match kind {
            CredentialKind::Keygate(_) => Self::Keygate,
            CredentialKind::GitHub => Self::GitHub,
            CredentialKind::GitLab => Self::GitLab,
            CredentialKind::Slack => Self::Slack,
            CredentialKind::AwsAccessKeyId => Self::Aws,
            CredentialKind::Stripe => Self::Stripe,
            CredentialKind::Anthropic => Self::Anthropic,
            CredentialKind::OpenAi => Self::OpenAi,
            _ => return None,
        })
    }
}

/// Words of a variable name that say nothing about which service it is for.
const GENERIC: &[&str] = &[
    "TOKEN",
    "TOKENS",
    "KEY",
    "KEYS",
    "API",
    "APIKEY",
    "SECRET",
    "SECRETS",
    "ACCESS",
    "AUTH",
    "AUTHORIZATION",
    "BEARER",
    "PAT",
    "PERSONAL",
    "PRIVATE",
    "ID",
    "CREDENTIAL",
    "CREDENTIALS",
    "PASSWORD",
    "PASS",
    "PWD",
    "CLIENT",
    "APP",
    "USER",
    "TENANT",
    "SERVICE",
    "MCP",
    "SERVER",
    "DEPLOY",
    "CI",
    "BOT",
    "PROD",
    "PRODUCTION",
    "DEV",
    "DEVELOPMENT",
    "STAGING",
    "TEST",
    "READ",
    "WRITE",
    "ADMIN",
    "DEFAULT",
    "MY",
    "NEW",
    "OLD",
    "LIVE",
    "RO",
    "RW",
    "ENV",
    "VALUE",
    "X",
    "HEADER",
    "SESSION",
    "OAUTH",
    "REFRESH",
    "SIGNING",
    "ORG",
    "ORGANIZATION",
    "PROJECT",
];

/// What a variable name (or an `.mcp.json` header name) suggests it should hold.
///
/// The name is split into words at every character that is not a letter or digit and
/// compared word by word, so `DIGITALOCEAN_TOKEN` does not count as a Git name.
pub(crate) fn expected(name: &str) -> Expected {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    let service = if has(&["KEYGATE"]) {
        Some(Service::Keygate)
    } else if has(&["GITLAB", "GLPAT"]) {
        Some(Service::GitLab)
    } else if has(&["GITHUB", "GH", "GIT"]) {
        Some(Service::GitHub)
    } else if has(&["SLACK"]) {
        Some(Service::Slack)
    } else if has(&["AWS"]) {
        Some(Service::Aws)
    } else if has(&["STRIPE"]) {
        Some(Service::Stripe)
    } else if has(&["ANTHROPIC", "CLAUDE"]) {
        Some(Service::Anthropic)
    } else if has(&["OPENAI"]) {
        Some(Service::OpenAi)
    } else {
        None
    };
    match service {
        Some(s) => Expected::Kind(s),
        None if words.iter().any(|w| !GENERIC.contains(w)) => Expected::Other,
        None => Expected::Nothing,
    }
}

/// Why a credential of `found` kind does not belong in a variable called `name`,
/// or `None` when it may.
pub(crate) fn wrong_kind(name: &str, found: CredentialKind) -> Option<String> {
    let found_service = Service::of(found)?;
    match expected(name) {
        Expected::Kind(want) if want != found_service => Some(format!(
            "{name} holds a {found}, but its name says it is for a {}",
            want.name()
        )),
        Expected::Other if found_service != Service::Keygate => Some(format!(
            "{name} holds a {found}, but its name says it is for another service"
        )),
        _ => None,
    }
}

/// At most this much of an `.env` or `.mcp.json` file is read. Such files are a few
/// lines; a larger one (say a sparse file of gigabytes) must not fill memory.
pub(crate) const MAX_PROJECT_FILE: u64 = 1 << 20;

/// The text of a small file of a project (`.env`, `.mcp.json`).
#[derive(Debug)]
pub(crate) struct ProjectFile {
    /// UTF-8, or UTF-16 with a byte-order mark; bytes that do not decode are U+FFFD.
    pub(crate) text: String,
    /// The file's size.
    pub(crate) size: u64,
    /// Whether the file is larger than was read; `text` then ends at the last whole
    /// line read.
    pub(crate) truncated: bool,
}

/// Reads at most `max` bytes of the file at `path` (which the caller has checked is a
/// regular file: opening a FIFO would wait for a writer).
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<ProjectFile> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut bytes = Vec::new();
    // One byte past the cap tells a file that grew since the stat.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    let truncated = bytes.len() as u64 > max;
    bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
    let (encoding, bom) = Encoding::sniff(&bytes);
    let mut decoder = Decoder::new(encoding);
    let mut text = String::new();
    decoder.push(&bytes[bom.min(bytes.len())..], &mut text);
    if truncated {
        // The last line read may be cut: drop it.
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    } else {
        decoder.finish(&mut text);
    }
    Ok(ProjectFile {
        text,
        size: size.max(bytes.len() as u64),
        truncated,
    })
}

/// Parses a `.env` file: `NAME=value` lines, optional `export `, `#` comments, and
/// single or double quotes around the value.
pub(crate) fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = line.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return None;
            }
            let value = value.trim();
            let value = ['"', '\'']
                .iter()
                .find_map(|q| {
                    value
                        .strip_prefix(*q)
                        .and_then(|v| v.find(*q).map(|end| &v[..end]))
                })
                .unwrap_or_else(|| {
                    // Unquoted: a ` #` starts a comment.
                    value.split(" #").next().unwrap_or(value).trim_end()
                });
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use keygate_token::KeyKind;

    use super::*;

    #[test]
    fn names_suggest_services() {
        assert_eq!(expected("GITHUB_TOKEN"), Expected::Kind(Service::GitHub));
        assert_eq!(expected("GH_TOKEN"), Expected::Kind(Service::GitHub));
        assert_eq!(expected("GIT_TOKEN"), Expected::Kind(Service::GitHub));
        assert_eq!(expected("GITLAB_TOKEN"), Expected::Kind(Service::GitLab));
        assert_eq!(
            expected("KEYGATE_API_KEY"),
            Expected::Kind(Service::Keygate)
        );
        assert_eq!(expected("AWS_ACCESS_KEY_ID"), Expected::Kind(Service::Aws));
        assert_eq!(expected("ZEROPS_TOKEN"), Expected::Other);
        assert_eq!(expected("DIGITALOCEAN_TOKEN"), Expected::Other);
        assert_eq!(expected("API_KEY"), Expected::Nothing);
        assert_eq!(expected("Authorization"), Expected::Nothing);
    }

    #[test]
    fn wrong_kinds() {
        assert!(wrong_kind("ZEROPS_TOKEN", CredentialKind::GitHub).is_some());
        assert!(wrong_kind("ZEROPS_TOKEN", CredentialKind::Keygate(KeyKind::User)).is_none());
        assert!(wrong_kind("KEYGATE_API_KEY", CredentialKind::GitHub).is_some());
        assert!(wrong_kind("GITHUB_TOKEN", CredentialKind::Keygate(KeyKind::Tenant)).is_some());
        assert!(wrong_kind("GITHUB_TOKEN", CredentialKind::GitHub).is_none());
        assert!(wrong_kind("API_KEY", CredentialKind::OpenAi).is_none());
        assert!(wrong_kind("OPENAI_API_KEY", CredentialKind::Anthropic).is_some());
    }

    #[test]
    fn dotenv() {
        let vars = parse_dotenv(
            "# comment\nexport A=1\nB = \"two words\" \nC='x#y'\nD=plain # note\nbad line\n=x\n",
        );
        let want = [("A", "1"), ("B", "two words"), ("C", "x#y"), ("D", "plain")];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(vars, want);
    }
}
