//! A child MCP server on stdio: how to start it ([`StdioCommand`]), and newline-delimited
//! JSON-RPC with it ([`StdioChild`], split into a [`StdioWriter`], a [`StdioReader`] and
//! its [`ChildProcess`]), independent of HTTP.
//!
//! The child gets only the environment its command names, plus `PATH` and `HOME` of the
//! gateway when the command does not set them (so `node` or `python` are found and
//! tools that read `~` work); never the gateway's other variables, the client's key or
//! a request header. It runs in a process group of its own; ending or dropping its
//! [`ChildProcess`] kills the group. Its stderr lines go to the gateway's log (escaped,
//! cut short); its stdout lines are read one by one, each at most
//! [`MAX_LINE`] bytes, so a child cannot make the gateway hold more than that.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use keygate_http::untrusted;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::error::ServerError;

/// Longest stdout line read from a child, in bytes (4 MiB, the gateway's request body
/// limit): a longer one is skipped to its end and reported as [`LineError::TooLong`].
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// What a log line shows of one stderr line of a child, in characters.
const STDERR_LOG_CHARS: usize = 512;

/// Variables a child gets from the gateway's own environment unless its command sets
/// them.
const INHERITED: &[&str] = &["PATH", "HOME"];

/// How to start a stdio MCP server: a program, its arguments, the environment it gets
/// (only these variables, plus the gateway's `PATH` and `HOME` when they are not set
/// here; never the client's key or a request header) and the directory it runs in.
///
/// `Debug` shows the names of the environment variables, never their values (they are
/// often credentials).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StdioCommand {
    /// The program, found on the child's `PATH` unless it names a path.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The child's environment (besides the gateway's `PATH` and `HOME`, unless set here).
    pub env: BTreeMap<String, String>,
    /// The directory it runs in; default the gateway's.
    pub cwd: Option<PathBuf>,
}

impl fmt::Debug for StdioCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioCommand")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl StdioCommand {
    /// `program` with `args`, no environment of its own and the gateway's directory.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for an empty program.
    pub fn new(program: impl Into<String>, args: Vec<String>) -> Result<Self, ServerError> {
        let program = program.into();
        if program.trim().is_empty() {
            return Err(ServerError::Config(
                "a stdio upstream needs a program to run".to_owned(),
            ));
        }
        Ok(Self {
            program,
            args,
            env: BTreeMap::new(),
            cwd: None,
        })
    }

    /// A command line split as a POSIX shell splits words (quotes and backslashes),
    /// never run through a shell: `npx -y "@scope/server" --flag 'a b'`.
    ///
    /// ```
    /// let cmd = keygate_server::StdioCommand::parse(r#"node server.js --name "a b""#)?;
    /// assert_eq!(cmd.program, "node");
    /// assert_eq!(cmd.args, ["server.js", "--name", "a b"]);
    /// assert!(keygate_server::StdioCommand::parse("node 'unclosed").is_err());
    /// # Ok::<(), keygate_server::ServerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for an unclosed quote, a trailing backslash or an empty
    /// line.
    pub fn parse(line: &str) -> Result<Self, ServerError> {
        let words = shlex::split(line).ok_or_else(|| {
            ServerError::Config(
                "the stdio command line has an unclosed quote or a trailing backslash".to_owned(),
            )
        })?;
        Self::from_words(words)
    }

    /// A command from its words: the first is the program.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] when there is none, or it is empty.
    pub fn from_words(words: Vec<String>) -> Result<Self, ServerError> {
        let mut words = words.into_iter();
        let program = words.next().unwrap_or_default();
        Self::new(program, words.collect())
    }

    /// A short name for log lines: the program's file name.
    pub fn label(&self) -> &str {
        self.program
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&self.program)
    }

    /// The environment the child gets: [`StdioCommand::env`], plus `PATH` and `HOME`
    /// from `gateway` (the gateway's own environment) when `env` does not set them.
    pub fn child_env(&self, gateway: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
        let mut out = self.env.clone();
        for name in INHERITED {
            if !out.contains_key(*name)
                && let Some(value) = gateway(name)
            {
                out.insert((*name).to_owned(), value);
            }
        }
        out
    }
}

/// Why a child could not be started or talked to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StdioError {
    /// The program could not be started (not found, not executable, bad `cwd`).
    #[error("cannot start the stdio MCP server {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing to the child's stdin failed: it has exited or closed stdin.
    #[error("the stdio MCP server stopped reading its input: {0}")]
    Write(#[source] std::io::Error),
}

/// A stdout line of a child that is not a JSON-RPC message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Longer than [`MAX_LINE`]; skipped.
    #[error("the stdio MCP server wrote a line of more than {MAX_LINE} bytes to stdout")]
    TooLong,
    /// Not a JSON object (a log line on stdout, say).
    #[error("the stdio MCP server wrote a line that is not a JSON-RPC message to stdout: {0}")]
    NotJson(String),
    /// Reading stdout failed.
    #[error("reading the stdio MCP server's stdout failed: {0}")]
    Read(#[source] std::io::Error),
}

/// A started child: write with [`StdioChild::writer`], read with
/// [`StdioChild::reader`], end it with its [`ChildProcess`] (see [`StdioChild::split`]).
#[derive(Debug)]
pub struct StdioChild {
    writer: StdioWriter,
    reader: StdioReader,
    process: ChildProcess,
}

impl StdioChild {
    /// Starts `command` with only its environment ([`StdioCommand::child_env`]) in a
    /// process group of its own; its stderr goes to the log, tagged with `label`.
    ///
    /// # Errors
    ///
    /// [`StdioError::Spawn`] when the program cannot be started.
    pub fn spawn(command: &StdioCommand, label: &str) -> Result<Self, StdioError> {
        let mut cmd = tokio::process::Command::new(&command.program);
        cmd.args(&command.args)
            .env_clear()
            .envs(command.child_env(|name| std::env::var(name).ok()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        if let Some(dir) = &command.cwd {
            cmd.current_dir(dir);
        }
        let spawn_error = |source| StdioError::Spawn {
            program: command.program.clone(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let missing = || spawn_error(std::io::Error::other("a standard stream was not piped"));
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(log_stderr(stderr, label.to_owned()));
        }
        let pid = child.id();
        tracing::info!(upstream = %label, pid = ?pid, "started a stdio MCP server");
        Ok(Self {
            writer: StdioWriter { stdin },
            reader: StdioReader::new(stdout),
            process: ChildProcess {
                child,
                label: label.to_owned(),
            },
        })
    }

    /// Its parts, to be used by different tasks.
    pub fn split(self) -> (StdioWriter, StdioReader, ChildProcess) {
        (self.writer, self.reader, self.process)
    }

    /// Its stdin.
    pub fn writer(&mut self) -> &mut StdioWriter {
        &mut self.writer
    }

    /// Its stdout.
    pub fn reader(&mut self) -> &mut StdioReader {
        &mut self.reader
    }
}

/// A child's stdin: one JSON-RPC message a line.
#[derive(Debug)]
pub struct StdioWriter {
    stdin: ChildStdin,
}

impl StdioWriter {
    /// Writes `message` and a newline, and flushes.
    ///
    /// # Errors
    ///
    /// [`StdioError::Write`] when the child no longer reads.
    pub async fn send(&mut self, message: &Value) -> Result<(), StdioError> {
        let mut line = serde_json::to_vec(message).map_err(|e| StdioError::Write(e.into()))?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .map_err(StdioError::Write)?;
        self.stdin.flush().await.map_err(StdioError::Write)
    }
}

/// A child's stdout, read one bounded line at a time.
#[derive(Debug)]
pub struct StdioReader {
    lines: LineReader<ChildStdout>,
}

impl StdioReader {
    fn new(stdout: ChildStdout) -> Self {
        Self {
            lines: LineReader::new(stdout, MAX_LINE),
        }
    }

    /// The next message: `None` at the end of stdout (the child exited or closed it).
    /// Blank lines are skipped.
    pub async fn next(&mut self) -> Option<Result<Value, LineError>> {
        loop {
            let line = match self.lines.next().await? {
                Ok(line) => line,
                Err(e) => return Some(Err(e)),
            };
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            return Some(match serde_json::from_slice::<Value>(text) {
                Ok(v) if v.is_object() => Ok(v),
                _ => Err(LineError::NotJson(
                    untrusted(String::from_utf8_lossy(text))
                        .max_chars(80)
                        .to_string(),
                )),
            });
        }
    }
}

/// A child process: ended (its whole process group killed) by [`ChildProcess::kill`] or
/// when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    label: String,
}

impl ChildProcess {
    /// Its process id while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for it to exit, then kills what is left of its process group (what it
    /// started and left behind). Cancel-safe.
    ///
    /// # Errors
    ///
    /// The I/O error of waiting.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let pid = self.child.id();
        let status = self.child.wait().await;
        kill_group(pid, &self.label);
        status
    }

    /// Kills its process group and waits for it.
    pub async fn kill(&mut self) {
        let pid = self.child.id();
        kill_group(pid, &self.label);
        let _ = self.child.kill().await;
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // `kill_on_drop` kills the child itself; the group takes what it started.
        kill_group(self.child.id(), &self.label);
    }
}

/// Sends SIGKILL to the process group `pid` leads (the child was started as its
/// leader). Nothing without a pid (already reaped) or off unix.
fn kill_group(pid: Option<u32>, label: &str) {
    #[cfg(unix)]
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        match rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
            Ok(()) => {
                tracing::debug!(upstream = %label, pid = pid.as_raw_nonzero().get(), "killed a stdio MCP server");
            }
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                tracing::warn!(upstream = %label, error = %e, "could not kill a stdio MCP server's process group");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, label);
}

/// Logs each stderr line of a child (escaped, cut short) until it closes.
async fn log_stderr(stderr: tokio::process::ChildStderr, label: String) {
    let mut lines = LineReader::new(stderr, 64 * 1024);
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                let text = String::from_utf8_lossy(line.trim_ascii_end());
                tracing::info!(
                    upstream = %label,
                    line = %untrusted(&text).max_chars(STDERR_LOG_CHARS),
                    "stdio MCP server stderr"
                );
            }
            Err(LineError::TooLong) => {
                tracing::info!(upstream = %label, "stdio MCP server wrote a very long stderr line (skipped)");
            }
            Err(_) => return,
        }
    }
}

/// Lines of at most `max` bytes; a longer one is skipped to its newline and reported
/// once, so memory stays bounded by `max` plus the read buffer.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max,
            line: Vec::new(),
        }
    }

    /// The next line without its newline; `None` at the end (a last line without a
    /// newline is returned first).
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<u8>, LineError>> {
        self.line.clear();
        let mut skipping = false;
        loop {
            let buf = match self.inner.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => return Some(Err(LineError::Read(e))),
            };
            if buf.is_empty() {
                if skipping {
                    return Some(Err(LineError::TooLong));
                }
                if self.line.is_empty() {
                    return None;
                }
                return Some(Ok(std::mem::take(&mut self.line)));
            }
            let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (&buf[..at], Some(at + 1)),
                None => (buf, None),
            };
            if !skipping {
                if self.line.len() + chunk.len() > self.max {
                    skipping = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            let used = done.unwrap_or(buf.len());
            self.inner.consume(used);
            if done.is_some() {
                if skipping {
                    return Some(Err(LineError::TooLong));
                }
                return Some(Ok(std::mem::take(&mut self.line)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_split_as_a_shell_would_and_never_run_through_one() {
        let cmd = StdioCommand::parse(r#"  npx -y '@scope/server' "a b" c\ d $HOME;rm  "#).unwrap();
        assert_eq!(cmd.program, "npx");
        assert_eq!(cmd.args, ["-y", "@scope/server", "a b", "c d", "$HOME;rm"]);
        for bad in ["", "   ", "node 'x", "node \"x", "''"] {
            assert!(StdioCommand::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_child_env_is_its_own_plus_path_and_home() {
        let mut cmd = StdioCommand::parse("server").unwrap();
        cmd.env.insert("TOKEN".to_owned(), "t".to_owned());
        cmd.env.insert("HOME".to_owned(), "/srv".to_owned());
        let gateway = |name: &str| Some(format!("gw-{name}"));
        let env = cmd.child_env(gateway);
        assert_eq!(env.len(), 3, "{env:?}");
        assert_eq!(env["TOKEN"], "t");
        assert_eq!(env["HOME"], "/srv");
        assert_eq!(env["PATH"], "gw-PATH");
        let shown = format!("{cmd:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("\"t\""),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn lines_are_bounded_and_a_long_one_is_skipped_to_its_end() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 300));
        input.extend_from_slice(b"\nafter\nlast");
        let mut lines = LineReader::new(&input[..], 100);
        assert_eq!(lines.next().await.unwrap().unwrap(), b"short");
        assert!(matches!(lines.next().await, Some(Err(LineError::TooLong))));
        assert_eq!(lines.next().await.unwrap().unwrap(), b"after");
        assert_eq!(lines.next().await.unwrap().unwrap(), b"last");
        assert!(lines.next().await.is_none());
        assert!(lines.line.capacity() <= 100 + 64, "memory stays bounded");
    }
}
