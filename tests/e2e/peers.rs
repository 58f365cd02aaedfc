//! Real MCP peers for the end-to-end tests (see `tests/peers/README.md`): the test
//! upstream on the official Python SDK (`tests/peers/conformance_server.py`), keygated in
//! front of it with `tests/peers/conformance-policy.toml`, and bounded runs of the peers'
//! client programs.
//!
//! The Python interpreter is `$KEYGATE_TEST_PYTHON`, else `tests/peers/.venv/bin/python`;
//! `node` comes from `PATH` and the npm packages from `tests/peers/node_modules`. When one
//! is missing a test prints a note and passes, except under `CI`, where it fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use keygate_e2e::{Process, START_TIMEOUT, Server, ServerOptions, under_ci, workspace_dir};

/// `tests/peers`.
pub(crate) fn peers_dir() -> PathBuf {
    workspace_dir().join("tests").join("peers")
}

/// The Python that has the pinned `mcp` SDK.
pub(crate) fn python() -> PathBuf {
    std::env::var_os("KEYGATE_TEST_PYTHON").map_or_else(
        || peers_dir().join(".venv").join("bin").join("python"),
        PathBuf::from,
    )
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// What a test needs from the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// The Python SDK (server and client scripts).
    Python,
    /// The Python SDK, `node` and the npm packages (the conformance suite).
    PythonAndNode,
}

/// `true` when everything `need` names is installed. Otherwise prints a note and answers
/// `false`, or panics under `CI`.
pub(crate) fn available(test: &str, need: Need) -> bool {
    let mut missing = Vec::new();
    let py = python();
    let has_sdk = py.is_file()
        && Command::new(&py)
            .args(["-c", "import mcp, uvicorn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !has_sdk {
        missing.push(format!(
            "a Python with tests/peers/requirements.txt at {} (or KEYGATE_TEST_PYTHON)",
            py.display()
        ));
    }
    if need == Need::PythonAndNode {
        if !on_path("node") {
            missing.push("`node` on PATH".to_owned());
        }
        let suite = peers_dir()
            .join("node_modules")
            .join("@modelcontextprotocol")
            .join("conformance");
        if !suite.is_dir() {
            missing.push("tests/peers/node_modules (run `npm ci` there)".to_owned());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let list = missing.join(", ");
    assert!(!under_ci(), "{test} needs {list} under CI");
    eprintln!("note: skipping {test}; missing {list}");
    false
}

/// The Python SDK test upstream on a free loopback port, killed on drop.
#[derive(Debug)]
pub(crate) struct PeerServer {
    process: Process,
    /// `http://127.0.0.1:PORT/mcp`.
    pub(crate) url: String,
}

impl PeerServer {
    /// Starts `conformance_server.py` and waits until it prints its address.
    pub(crate) fn start() -> Self {
        const LINE: &str = "conformance server listening on ";
        let mut cmd = Command::new(python());
        cmd.arg("conformance_server.py")
            .arg("0")
            .current_dir(peers_dir());
        let mut process = Process::spawn(cmd);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(url) = process
                .stdout()
                .lines()
                .find_map(|l| l.strip_prefix(LINE).map(str::trim).map(str::to_owned))
            {
                return Self { process, url };
            }
            if let Some(status) = process.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "conformance_server.py exited ({status}); stderr:\n{}",
                    process.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "conformance_server.py did not start; stderr:\n{}",
                process.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the server logged so far.
    pub(crate) fn logs(&self) -> String {
        self.process.stderr()
    }
}

/// keygated in front of a [`PeerServer`] with the conformance policy, on a fresh SQLite
/// file bootstrapped with tenant `acme` (owner key in [`Gateway::key`]).
#[derive(Debug)]
pub(crate) struct Gateway {
    /// The running keygated.
    pub(crate) server: Server,
    /// The owner key of tenant `acme`: `keys:admin` and every scope of the policy.
    pub(crate) key: String,
    _dir: tempfile::TempDir,
}

/// `tests/peers/conformance-policy.toml`.
pub(crate) fn policy() -> PathBuf {
    peers_dir().join("conformance-policy.toml")
}

fn bootstrap_key(database: &str, tenant: &str, owner: &str) -> String {
    let policy = policy();
    let out = keygate_e2e::bootstrap(
        database,
        tenant,
        owner,
        &["--policy", policy.to_str().expect("a UTF-8 path")],
    );
    out.expect_code(0);
    out.stdout.trim().to_owned()
}

impl Gateway {
    /// `keygated --upstream UPSTREAM --policy conformance-policy.toml EXTRA…` with
    /// keygated's defaults otherwise (rate limits, body limit, timeouts).
    pub(crate) fn start(upstream: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = format!("sqlite://{}", dir.path().join("keygate.db").display());
        let key = bootstrap_key(&database, "acme", "ada");
        let policy = policy();
        let mut args = vec![
            "--upstream",
            upstream,
            "--policy",
            policy.to_str().expect("a UTF-8 path"),
        ];
        args.extend_from_slice(extra);
        let server = Server::start(ServerOptions::default().database(&database).args(&args));
        Self {
            server,
            key,
            _dir: dir,
        }
    }

    /// The owner key of another tenant in the same database (same scopes as [`Gateway::key`]).
    pub(crate) fn other_tenant_key(&self) -> String {
        bootstrap_key(&self.server.database, "other", "dora")
    }

    /// `http://127.0.0.1:PORT/api/mcp`.
    pub(crate) fn mcp_url(&self) -> String {
        self.server.url("/api/mcp")
    }
}

/// What a bounded run of a program produced.
#[derive(Debug)]
pub(crate) struct Run {
    /// How it exited.
    pub(crate) status: ExitStatus,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

/// Runs `cmd` to the end, killing it (and failing the test) after `budget`.
pub(crate) fn run_bounded(mut cmd: Command, budget: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} starts: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + budget;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on a child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!("{cmd:?} did not finish within {budget:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs `cmd`, the peer script `script` (such as `sdk_client.py`) doing `what`, within
/// `budget`: the JSON it printed, or why there is none.
pub(crate) fn script_json(
    cmd: Command,
    budget: Duration,
    script: &str,
    what: &str,
) -> Result<serde_json::Value, String> {
    let run = run_bounded(cmd, budget);
    if !run.status.success() {
        return Err(format!(
            "{script} {what} failed ({}):\n{}",
            run.status, run.stderr
        ));
    }
    serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("{script} printed no JSON ({e}): {}", run.stdout))
}

/// A command running `script` (a file in `tests/peers`) with the peers' Python.
pub(crate) fn python_script(script: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(script).current_dir(peers_dir());
    cmd
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
