//! Reading the small files of a project: `.mcp.json` and `.env`.

use std::io::Read;
use std::path::Path;

use keygate_client::Error as ClientError;
pub use keygate_client::{McpServer, reference};

use crate::Error;
use crate::text::{Decoder, Encoding};

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

/// Reads `{"mcpServers": {"name": {"command"/"url", "env": {..}, "headers": {..}}}}`:
/// [`keygate_client::read_mcp_json`], the one reader of these files, with its errors
/// as this crate's.
///
/// A file larger than [`MAX_PROJECT_FILE`] is an error, and so is a file without an
/// object `mcpServers` (a file without `mcpServers` has no servers).
pub fn read_mcp_json(path: &Path) -> Result<Vec<McpServer>, Error> {
    keygate_client::read_mcp_json(path).map_err(|err| match err {
        ClientError::ReadFile { source, .. } => Error::Read {
            path: path.to_path_buf(),
            source,
        },
        other => Error::McpJson(other),
    })
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
}
