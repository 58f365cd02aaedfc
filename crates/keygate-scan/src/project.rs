//! Reading the small files of a project: `.mcp.json` and `.env`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::text::{Decoder, Encoding};

/// One server of an `.mcp.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpServer {
    /// The server's name (its key under `mcpServers`).
    pub name: String,
    /// `command …` or `url …`, for the map.
    pub transport: String,
    /// Its `env` block; values that are not strings are kept as their JSON text.
    pub env: BTreeMap<String, String>,
    /// Its `headers` block, likewise.
    pub headers: BTreeMap<String, String>,
}

/// At most this much of an `.env` or `.mcp.json` file is read. Such files are a few
/// lines; a larger one (say a sparse file of gigabytes) must not fill memory.
pub const MAX_PROJECT_FILE: u64 = 1 << 20;

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

/// Reads `{"mcpServers": {"name": {"command"/"url", "env": {..}, "headers": {..}}}}`.
///
/// Non-string values in `env`/`headers` are kept as their JSON text. A file larger
/// than [`MAX_PROJECT_FILE`] is an error, and so is a file without an object
/// `mcpServers` (a file without `mcpServers` has no servers).
pub fn read_mcp_json(path: &Path) -> Result<Vec<McpServer>, Error> {
    let file = read_bounded(path, MAX_PROJECT_FILE).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if file.truncated {
        return Err(Error::McpJsonTooLarge {
            path: path.to_path_buf(),
            max: MAX_PROJECT_FILE,
        });
    }
    parse_mcp_json(&file.text).map_err(|err| match err {
        McpJsonError::Json(source) => Error::McpJson {
            path: path.to_path_buf(),
            source,
        },
        McpJsonError::NotAnObject => Error::McpServersNotAnObject {
            path: path.to_path_buf(),
        },
    })
}

/// Why the text of an `.mcp.json` is not one.
#[derive(Debug)]
pub(crate) enum McpJsonError {
    Json(serde_json::Error),
    NotAnObject,
}

pub(crate) fn parse_mcp_json(text: &str) -> Result<Vec<McpServer>, McpJsonError> {
    let doc: Value = serde_json::from_str(text).map_err(McpJsonError::Json)?;
    let Some(servers) = doc.get("mcpServers") else {
        return Ok(Vec::new());
    };
    let servers = servers.as_object().ok_or(McpJsonError::NotAnObject)?;
    let strings = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(servers
        .iter()
        .map(|(name, s)| {
            let transport = if let Some(url) = s.get("url").and_then(Value::as_str) {
                format!("url {url}")
            } else if let Some(cmd) = s.get("command").and_then(Value::as_str) {
                format!("command {cmd}")
            } else {
                "no command or url".to_owned()
            };
            McpServer {
                name: name.clone(),
                transport,
                env: strings(s.get("env")),
                headers: strings(s.get("headers")),
            }
        })
        .collect())
}

/// Parses the text of a `.env` file: `NAME=value` lines, optional `export `, `#`
/// comments, and single or double quotes around the value.
///
/// Values are taken as written: `${NAME}` and `$NAME` are not expanded (see
/// [`reference()`]), and a line that is not an assignment is skipped.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
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

/// The variable `value` only refers to (`${NAME}` or `$NAME`), if that is all it is.
pub fn reference(value: &str) -> Option<&str> {
    let v = value.trim();
    let name = v
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'))?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn mcp_json() {
        let servers = parse_mcp_json(
            r#"{"mcpServers":{"z":{"command":"npx","env":{"T":"","N":3}},"h":{"url":"http://x","headers":{"Authorization":"Bearer ${T}"}}}}"#,
        )
        .unwrap();
        assert_eq!(servers.len(), 2);
        let by_name = |n: &str| servers.iter().find(|s| s.name == n).unwrap();
        assert_eq!(by_name("h").transport, "url http://x");
        assert_eq!(by_name("h").headers["Authorization"], "Bearer ${T}");
        assert_eq!(by_name("z").transport, "command npx");
        assert_eq!(by_name("z").env["T"], "");
        assert_eq!(by_name("z").env["N"], "3");
        assert!(parse_mcp_json("{").is_err());
        assert!(parse_mcp_json(r#"{"mcpServers":[]}"#).is_err());
    }

    #[test]
    fn references() {
        assert_eq!(reference("${KEYGATE_API_KEY}"), Some("KEYGATE_API_KEY"));
        assert_eq!(reference("$X"), Some("X"));
        assert_eq!(reference("Bearer ${X}"), None);
        assert_eq!(reference("$"), None);
    }
}
