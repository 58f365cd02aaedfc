//! Finding the key an agent would start with: an environment variable, else the
//! `env` block of a server in `.mcp.json`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{Error, McpJsonError};

/// The variable that holds the key unless told otherwise.
pub const DEFAULT_ENV_VAR: &str = "KEYGATE_API_KEY";

/// At most this much of an `.mcp.json` is read. Such files are a few lines; a larger
/// one (say a sparse file of gigabytes) must not fill memory.
pub const MAX_MCP_JSON: u64 = 1 << 20;

/// One server of an `.mcp.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServer {
    /// Its name under `mcpServers`.
    pub name: String,
    /// `command …` or `url …`, for messages.
    pub transport: String,
    /// Its `env` block (non-string values as their JSON text).
    pub env: BTreeMap<String, String>,
    /// Its `headers` block (non-string values as their JSON text).
    pub headers: BTreeMap<String, String>,
}

/// Reads `{"mcpServers": {"name": {"command"/"url", "env": {..}, "headers": {..}}}}`.
///
/// UTF-8, or UTF-16 with a byte-order mark; bytes that do not decode become U+FFFD.
/// Non-string values in `env`/`headers` are kept as their JSON text. A file larger
/// than [`MAX_MCP_JSON`] is an error.
pub fn read_mcp_json(path: &Path) -> Result<Vec<McpServer>, Error> {
    let read = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    // One byte past the cap tells a file that is too large.
    file.take(MAX_MCP_JSON + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_MCP_JSON {
        return Err(Error::McpJsonTooLarge {
            path: path.to_path_buf(),
            max: MAX_MCP_JSON,
        });
    }
    parse_mcp_json(&decode(&bytes)).map_err(|source| Error::McpJson {
        path: path.to_path_buf(),
        source,
    })
}

/// A whole small file's text: UTF-8 (after an optional byte-order mark), or UTF-16
/// announced by its byte-order mark, decoded lossily.
fn decode(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        let pairs = rest.chunks_exact(2);
        let odd = !pairs.remainder().is_empty();
        let mut text: String = char::decode_utf16(pairs.map(|p| unit([p[0], p[1]])))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        if odd {
            text.push(char::REPLACEMENT_CHARACTER);
        }
        text
    };
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(rest).into_owned()
    } else if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        utf16(rest, u16::from_le_bytes)
    } else if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        utf16(rest, u16::from_be_bytes)
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Parses the text of an `.mcp.json` (see [`read_mcp_json`]).
pub fn parse_mcp_json(text: &str) -> Result<Vec<McpServer>, McpJsonError> {
    let doc: Value = serde_json::from_str(text)?;
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

/// Whether `value` only refers to another variable (`${NAME}` or `$NAME`), and which.
pub fn reference(value: &str) -> Option<&str> {
    let v = value.trim();
    let name = v
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'))?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
}

/// Where to look for the key: which variable, and which `.mcp.json` server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    env_var: String,
    mcp_json: Option<PathBuf>,
    mcp_server: Option<String>,
}

impl Default for Lookup {
    fn default() -> Self {
        Self::new()
    }
}

impl Lookup {
    /// [`DEFAULT_ENV_VAR`], and no `.mcp.json`.
    pub fn new() -> Self {
        Self {
            env_var: DEFAULT_ENV_VAR.to_owned(),
            mcp_json: None,
            mcp_server: None,
        }
    }

    /// The environment variable holding the key (and the name of the entry of the
    /// `.mcp.json` env block).
    #[must_use]
    pub fn env_var(mut self, name: impl Into<String>) -> Self {
        self.env_var = name.into();
        self
    }

    /// The `.mcp.json` to read when the variable is not set (default `.mcp.json` when
    /// only [`mcp_server`](Self::mcp_server) is given).
    #[must_use]
    pub fn mcp_json(mut self, path: Option<PathBuf>) -> Self {
        self.mcp_json = path;
        self
    }

    /// The server of `.mcp.json` whose env block holds the key (default: the only
    /// server in the file).
    #[must_use]
    pub fn mcp_server(mut self, name: Option<String>) -> Self {
        self.mcp_server = name;
        self
    }

    /// The variable's name.
    pub fn var(&self) -> &str {
        &self.env_var
    }

    /// The credential: the environment variable, else the `.mcp.json` server's env
    /// block (a `${VAR}` value there is read from the environment). `None`: neither
    /// holds one. `.mcp.json` is read only when a file or a server was named.
    pub fn find(&self) -> Result<Option<Credential>, Error> {
        let name = &self.env_var;
        if let Some(value) = std::env::var_os(name) {
            let value = value
                .into_string()
                .map_err(|_| Error::NotUtf8 { name: name.clone() })?;
            if !value.trim().is_empty() {
                return Ok(Some(Credential::new(value, Source::Env(name.clone()))));
            }
        }
        if self.mcp_json.is_none() && self.mcp_server.is_none() {
            return Ok(None);
        }
        let path = self
            .mcp_json
            .clone()
            .unwrap_or_else(|| Path::new(".mcp.json").to_path_buf());
        let servers = read_mcp_json(&path)?;
        let names = || servers.iter().map(|s| s.name.clone()).collect();
        let server = match &self.mcp_server {
            Some(wanted) => match servers.iter().find(|s| &s.name == wanted) {
                Some(server) => server,
                None => {
                    return Err(Error::NoSuchServer {
                        path,
                        wanted: wanted.clone(),
                        servers: names(),
                    });
                }
            },
            None => match servers.as_slice() {
                [only] => only,
                [] => return Err(Error::NoServers { path }),
                _ => {
                    return Err(Error::SeveralServers {
                        path,
                        servers: names(),
                    });
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
        Ok(Some(Credential::new(
            value,
            Source::McpJson {
                path,
                server: server.name.clone(),
            },
        )))
    }
}

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An environment variable of this name.
    Env(String),
    /// The env block of a server of an `.mcp.json`.
    McpJson {
        /// The file.
        path: PathBuf,
        /// The server's name in it.
        server: String,
    },
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

/// A credential as found: its raw value (not yet checked) and where it was.
///
/// `Debug` never shows the value.
#[derive(Clone)]
pub struct Credential {
    value: Zeroizing<String>,
    source: Source,
}

impl Credential {
    /// `value` found in `source`.
    pub fn new(value: String, source: Source) -> Self {
        Self {
            value: Zeroizing::new(value),
            source,
        }
    }

    /// The raw value, as found (surrounding white space included).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where it was found.
    pub fn source(&self) -> &Source {
        &self.source
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("value", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn decodes_utf8_and_utf16() {
        assert_eq!(decode(b"\xEF\xBB\xBF{}"), "{}");
        assert_eq!(decode(b"a\xFFb"), "a\u{FFFD}b");
        assert_eq!(decode(b"\xFF\xFEa\0b\0"), "ab");
        assert_eq!(decode(b"\xFE\xFF\0a\0b"), "ab");
        // An unpaired surrogate, then a lone trailing byte.
        assert_eq!(decode(b"\xFF\xFE\x00\xD8a\0x"), "\u{FFFD}a\u{FFFD}");
    }

    #[test]
    fn reads_the_named_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".mcp.json");
        std::fs::write(
            &path,
            r#"{"mcpServers":{"a":{"env":{"KG_TEST_UNSET_VAR_0":"kg_uk_x"}},"b":{}}}"#,
        )
        .unwrap();
        let lookup = Lookup::new()
            .env_var("KG_TEST_UNSET_VAR_0")
            .mcp_json(Some(path.clone()));
        let err = lookup.find().unwrap_err().to_string();
        assert!(err.ends_with("has several servers (a, b); say which with --mcp-server"));
        let found = lookup
            .mcp_server(Some("a".to_owned()))
            .find()
            .unwrap()
            .unwrap();
        assert_eq!(found.expose(), "kg_uk_x");
        assert_eq!(
            found.source().to_string(),
            format!("server \"a\" of {}", path.display())
        );
        assert!(!format!("{found:?}").contains("kg_uk_x"));
    }
}
