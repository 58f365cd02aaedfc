//! Finding keygate keys and foreign credentials in files.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use keygate_token::{CredentialKind, recognise, redact};
use serde_json::{Value, json};

use crate::Error;
use crate::text::{self, Decoder, Encoding};

/// One credential found in a file, already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The file, as the walk reached it (`./a/b` shows as `a/b`, as ripgrep does).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (Unicode code points).
    pub column: usize,
    /// What kind of credential it is.
    pub kind: CredentialKind,
    /// A form of it that is safe to print ([`keygate_token::redact`]).
    pub redacted: String,
}

/// A file or directory the scan could not read; the scan went on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// The file, when the error is about one file (a walk error names its own path).
    pub path: Option<PathBuf>,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// What a scan found, and what it saw besides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Every credential found, file by file in walk order, in order of position.
    pub findings: Vec<Finding>,
    /// How many files were looked at (binary, too large and unreadable ones included).
    pub files: u64,
    /// Files skipped because they look binary.
    pub binary: u64,
    /// Files skipped because they are over [`Scanner::max_filesize`].
    pub too_large: u64,
    /// Files and directories that could not be read.
    pub unreadable: Vec<Unreadable>,
}

/// What a scan is doing, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A file is about to be read.
    File {
        /// The file.
        path: &'a Path,
        /// How many files have been looked at, this one included.
        files: u64,
    },
    /// A file or directory could not be read (it is also in [`Report::unreadable`]).
    Unreadable(&'a Unreadable),
}

/// Scans files and directories for keygate keys (checksum-verified, of any brand) and
/// foreign credentials.
///
/// Directories are walked honouring `.gitignore`, `.ignore` and git's excludes (also
/// outside a git repository), hidden files included except `.git/`, links not followed.
/// A file is read in pieces, so memory stays bounded whatever its size; its text is
/// UTF-16 when a byte-order mark says so, else UTF-8 with invalid bytes replaced; a file
/// whose start looks binary is skipped.
///
/// ```
/// use keygate_scan::Scanner;
///
/// let dir = std::env::temp_dir().join(format!("keygate-scan-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("notes.txt"), "nothing secret here\n")?;
/// let report = Scanner::new().scan_paths(&[&dir])?;
/// assert!(report.findings.is_empty());
/// assert_eq!(report.files, 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Scanner {
    ignore_files: bool,
    skip_hidden: bool,
    max_filesize: Option<u64>,
    pieces: Pieces,
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// A scanner that honours ignore files, scans hidden files and reads files of any size.
    pub fn new() -> Self {
        Self {
            ignore_files: true,
            skip_hidden: false,
            max_filesize: None,
            pieces: PIECES,
        }
    }

    /// Whether `.gitignore`, `.ignore` and git's excludes decide what is skipped
    /// (default `true`).
    #[must_use]
    pub fn ignore_files(mut self, respect: bool) -> Self {
        self.ignore_files = respect;
        self
    }

    /// Whether hidden files and directories are skipped (default `false`: `.env` and
    /// `.mcp.json` are where secrets hide; `.git/` is always skipped).
    #[must_use]
    pub fn skip_hidden(mut self, skip: bool) -> Self {
        self.skip_hidden = skip;
        self
    }

    /// Skip files larger than `max` bytes (default: no limit).
    #[must_use]
    pub fn max_filesize(mut self, max: Option<u64>) -> Self {
        self.max_filesize = max;
        self
    }

    /// The size limit set with [`Scanner::max_filesize`], if any.
    pub fn filesize_limit(&self) -> Option<u64> {
        self.max_filesize
    }

    /// Scans `paths` (files or directories; none means `.`).
    ///
    /// # Errors
    ///
    /// [`Error::ScanRoot`] when a path does not exist or cannot be looked at. Files that
    /// cannot be read during the walk are counted in [`Report::unreadable`] instead.
    pub fn scan_paths(&self, paths: &[impl AsRef<Path>]) -> Result<Report, Error> {
        self.scan_paths_with(paths, |_| {})
    }

    /// [`Scanner::scan_paths`], telling `progress` about each file and each unreadable
    /// one as the walk goes.
    ///
    /// # Errors
    ///
    /// As [`Scanner::scan_paths`].
    pub fn scan_paths_with(
        &self,
        paths: &[impl AsRef<Path>],
        mut progress: impl FnMut(Progress<'_>),
    ) -> Result<Report, Error> {
        for path in paths {
            let path = path.as_ref();
            // A root that does not exist is a usage error, not "nothing found".
            std::fs::metadata(path).map_err(|source| Error::ScanRoot {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let mut report = Report::default();
        for entry in self.walker(paths).build() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    report.unreadable.push(Unreadable {
                        path: None,
                        reason: err.to_string(),
                    });
                    progress(Progress::Unreadable(
                        &report.unreadable[report.unreadable.len() - 1],
                    ));
                    continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            report.files += 1;
            progress(Progress::File {
                path: entry.path(),
                files: report.files,
            });
            match scan_file(entry.path(), self.max_filesize, self.pieces) {
                Ok(Scanned::Hits(found)) => report.findings.extend(found),
                Ok(Scanned::Binary) => report.binary += 1,
                Ok(Scanned::TooLarge) => report.too_large += 1,
                Err(err) => {
                    report.unreadable.push(Unreadable {
                        path: Some(entry.path().to_path_buf()),
                        reason: err.to_string(),
                    });
                    progress(Progress::Unreadable(
                        &report.unreadable[report.unreadable.len() - 1],
                    ));
                }
            }
        }
        Ok(report)
    }

    /// Every credential in `text`, as if it were the whole content of the file `path`.
    pub fn scan_text(&self, path: &Path, text: &str) -> Vec<Finding> {
        let mut window = Window::new(display_path(path), self.pieces.overlap);
        window.text.push_str(text);
        window.scan(true);
        window.hits
    }

    fn walker(&self, paths: &[impl AsRef<Path>]) -> WalkBuilder {
        let (first, rest) = paths
            .split_first()
            .map_or((Path::new("."), &[][..]), |(f, r)| (f.as_ref(), r));
        let mut walk = WalkBuilder::new(first);
        for path in rest {
            walk.add(path);
        }
        let respect = self.ignore_files;
        walk.hidden(self.skip_hidden)
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
}

enum Scanned {
    Hits(Vec<Finding>),
    Binary,
    TooLarge,
}

/// How a file is read: `chunk` bytes at a time, in windows of text that overlap by
/// `overlap` bytes.
#[derive(Debug, Clone, Copy)]
struct Pieces {
    chunk: usize,
    /// More than the longest credential recognised plus the context its boundaries
    /// (and a keygate key's brand) are checked in.
    overlap: usize,
}

/// 1 MiB reads, so a scan holds a few MiB whatever the file's size; 4 KiB of overlap,
/// where the longest credential (a GitHub token: prefix and 255 characters) is under 300.
const PIECES: Pieces = Pieces {
    chunk: 1 << 20,
    overlap: 4096,
};

fn scan_file(path: &Path, max: Option<u64>, pieces: Pieces) -> std::io::Result<Scanned> {
    let file = std::fs::File::open(path)?;
    let Some(max) = max else {
        return scan_reader(path, file, pieces);
    };
    if file.metadata()?.len() > max {
        return Ok(Scanned::TooLarge);
    }
    // Read at most one byte past the cap, in case the file grew since the stat.
    let mut reader = file.take(max.saturating_add(1));
    let scanned = scan_reader(path, &mut reader, pieces)?;
    Ok(if reader.limit() == 0 {
        Scanned::TooLarge
    } else {
        scanned
    })
}

/// Scans what `reader` yields, piece by piece, in windows that overlap, so a
/// credential cut by a read or a window boundary is still found, once.
///
/// The text is UTF-16 when a byte-order mark says so, else UTF-8 with invalid bytes
/// replaced; a file whose start looks binary ([`text::looks_binary`]) is skipped.
fn scan_reader(path: &Path, mut reader: impl Read, pieces: Pieces) -> std::io::Result<Scanned> {
    // The probe, with room for a byte-order mark.
    let mut head = vec![0; text::BINARY_PROBE + 3];
    let n = read_full(&mut reader, &mut head)?;
    head.truncate(n);
    let (encoding, bom) = Encoding::sniff(&head);
    let mut probe = Decoder::new(encoding);
    let mut probe_text = String::new();
    probe.push(&head[bom..], &mut probe_text);
    if text::looks_binary(&probe_text, probe.replaced()) {
        return Ok(Scanned::Binary);
    }

    let mut decoder = Decoder::new(encoding);
    let mut window = Window::new(display_path(path), pieces.overlap);
    decoder.push(&head[bom..], &mut window.text);
    let mut end = n < head.len();
    drop((head, probe_text));
    let mut raw = vec![0; pieces.chunk.max(1)];
    loop {
        if end {
            decoder.finish(&mut window.text);
            window.scan(true);
            return Ok(Scanned::Hits(window.hits));
        }
        window.scan(false);
        let n = read_full(&mut reader, &mut raw)?;
        decoder.push(&raw[..n], &mut window.text);
        end = n < raw.len();
    }
}

/// Reads until `buf` is full or the reader ends; fewer bytes than `buf` holds means
/// the end was reached.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// The part of a file's text in memory, and the hits found so far.
///
/// Each call to [`Window::scan`] reports the findings that start in the text between
/// the end of the previous report and the overlap before the window's end (the end
/// itself for the last window), then keeps an overlap's worth of what it reported
/// as the left context of the next window.
struct Window {
    path: PathBuf,
    overlap: usize,
    text: String,
    /// Offset in the whole text of `text[0]`.
    start: usize,
    cursor: Cursor,
    hits: Vec<Finding>,
}

/// A position in the whole text, with its line and column.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Byte offset in the whole text.
    offset: usize,
    /// 1-based line.
    line: usize,
    /// Characters since the start of the line.
    column: usize,
}

impl Cursor {
    /// Moves past `text`, which starts at the cursor.
    fn advance(&mut self, text: &str) {
        match text.rfind('\n') {
            Some(last) => {
                self.line += text.matches('\n').count();
                self.column = text[last + 1..].chars().count();
            }
            None => self.column += text.chars().count(),
        }
        self.offset += text.len();
    }
}

impl Window {
    fn new(path: PathBuf, overlap: usize) -> Self {
        Self {
            path,
            overlap,
            text: String::new(),
            start: 0,
            cursor: Cursor {
                offset: 0,
                line: 1,
                column: 0,
            },
            hits: Vec::new(),
        }
    }

    /// Reports what can be reported now; `last` when the whole text has been read.
    fn scan(&mut self, last: bool) {
        let from = self.cursor.offset - self.start;
        let to = if last {
            self.text.len()
        } else {
            floor_char_boundary(&self.text, self.text.len().saturating_sub(self.overlap))
        };
        // Wait until there is at least an overlap's worth of new text, so each byte
        // is searched at most a few times whatever the size of the reads.
        if to <= from || (!last && to - from < self.overlap) {
            return;
        }
        for finding in recognise(&self.text) {
            let at = finding.span.start;
            if at < from {
                continue;
            }
            if at >= to {
                break;
            }
            let local = self.cursor.offset - self.start;
            self.cursor.advance(&self.text[local..at]);
            self.hits.push(Finding {
                path: self.path.clone(),
                line: self.cursor.line,
                column: self.cursor.column + 1,
                kind: finding.kind,
                redacted: redact(&self.text[finding.span]),
            });
        }
        let local = self.cursor.offset - self.start;
        self.cursor.advance(&self.text[local..to]);
        let keep = floor_char_boundary(&self.text, to.saturating_sub(self.overlap));
        self.text.drain(..keep);
        self.start += keep;
    }
}

/// The largest char boundary of `text` at or before `i`.
fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `./a/b` prints as `a/b`, as ripgrep does.
fn display_path(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

impl Report {
    /// Writes one line per finding: `path:line:column: kind redacted`.
    ///
    /// # Errors
    ///
    /// What writing to `out` returns.
    pub fn write_text(&self, mut out: impl Write) -> std::io::Result<()> {
        for hit in &self.findings {
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
        Ok(())
    }

    /// The report as one JSON document: `findings` (path, line, column, kind,
    /// kind_name, redacted), `files_scanned` and `skipped` counts.
    pub fn to_json(&self) -> String {
        let findings: Vec<Value> = self
            .findings
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
            "files_scanned": self.files,
            "skipped": {
                "binary": self.binary,
                "too_large": self.too_large,
                "unreadable": self.unreadable.len(),
            },
        })
        .to_string()
    }

    /// A minimal valid SARIF 2.1.0 log: one rule per credential kind
    /// ([`CredentialKind::ALL`]), one result per finding. The tool is `keygate`, at
    /// `tool_version`.
    pub fn to_sarif(&self, tool_version: &str) -> String {
        let rules: Vec<Value> = CredentialKind::ALL
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
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|h| {
                let rule_index = CredentialKind::ALL.iter().position(|k| *k == h.kind);
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
                        "semanticVersion": tool_version,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }],
        })
        .to_string()
    }
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
    use keygate_token::{KeyKind, TokenFormat};

    use super::*;

    /// Every credential in `text`, with 1-based line and character column.
    fn find(path: &Path, text: &str) -> Vec<Finding> {
        Scanner::new().scan_text(path, text)
    }

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

    fn hits_in_pieces(bytes: &[u8], pieces: Pieces) -> Vec<Finding> {
        match scan_reader(Path::new("f"), bytes, pieces).unwrap() {
            Scanned::Hits(hits) => hits,
            _ => panic!("scanned as binary"),
        }
    }

    /// A GitHub-shaped token built at run time, so no literal credential sits in the repo.
    fn github_token() -> String {
        format!("{}{}", concat!("gh", "p_"), "A1b2C3d4".repeat(5))[..40].to_owned()
    }

    #[test]
    fn pieces_and_windows_find_what_one_pass_finds() {
        let format = TokenFormat::new("zoop").unwrap();
        let key = format.generate(KeyKind::User).unwrap();
        let tenant = TokenFormat::default().generate(KeyKind::Tenant).unwrap();
        // Credentials side by side (one pass keeps the earliest of overlapping matches),
        // a multi-byte character before them, and keys glued to word characters.
        let cluster = format!(
            "é {} {}\nx={}\tok{} {}\nnot a credential: ok{} or {}ok\n",
            key.expose(),
            github_token(),
            tenant.expose(),
            key.expose(),
            tenant.expose(),
            github_token(),
            key.expose(),
        );
        // The first read is the binary probe (8 KiB and a BOM's room); the pieces and
        // windows start after it, so the credentials go around there.
        let probe = text::BINARY_PROBE + 3;
        let filler = "ab\u{e9}c \u{1D11E} line\n".repeat((probe + 600) / 16);
        // Overlap 90 holds a keygate key (≤ 68 bytes), a 40-character GitHub token and
        // their boundary context; the default overlap is the same rule for 255-character bodies.
        for at in probe - 150..probe + 450 {
            if !filler.is_char_boundary(at) {
                continue;
            }
            let text = format!("{}{cluster}{}", &filler[..at], &filler[at..]);
            let want = find(Path::new("f"), &text);
            assert_eq!(want.len(), 5, "{want:?}");
            for chunk in [1, 7, 64, 333] {
                let got = hits_in_pieces(text.as_bytes(), Pieces { chunk, overlap: 90 });
                assert_eq!(got, want, "at {at}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn utf16_files_are_scanned_in_pieces() {
        let key = TokenFormat::default().generate(KeyKind::User).unwrap();
        let text = format!("# \u{1D11E} config\r\nKEYGATE_API_KEY={}\r\n", key.expose());
        let want = find(Path::new("f"), &text);
        assert_eq!((want[0].line, want[0].column), (2, 17));
        for big_endian in [false, true] {
            let bytes = keygate_test::utf16_with_bom(&text, big_endian);
            for chunk in [1, 3, 80] {
                let got = hits_in_pieces(&bytes, Pieces { chunk, overlap: 90 });
                assert_eq!(got, want, "big endian {big_endian}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_window_stays_small() {
        // 4 MiB of text in 64 KiB pieces: the window never holds much more than a piece
        // and the overlap, however long the text.
        let mut window = Window::new(PathBuf::from("f"), 4096);
        let line = "a line without any credential in it\n".repeat(1 << 11);
        let mut largest = 0;
        for _ in 0..(4 << 20) / line.len() {
            window.text.push_str(&line);
            largest = largest.max(window.text.len());
            window.scan(false);
        }
        window.scan(true);
        assert!(largest <= line.len() + 2 * 4096, "{largest}");
        assert!(window.hits.is_empty());
        assert_eq!(window.cursor.line, (4 << 20) / line.len() * (1 << 11) + 1);
    }

    #[test]
    fn uris() {
        assert_eq!(uri(Path::new("a b/c.env")), "a%20b/c.env");
        assert_eq!(uri(Path::new("/x/.mcp.json")), "file:///x/.mcp.json");
    }
}
