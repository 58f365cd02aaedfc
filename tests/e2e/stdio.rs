//! keygated in front of stdio MCP servers (`--upstream stdio:…`), driven by the official
//! MCP Python SDK (`tests/peers/stdio_client.py`) in both of its modes: `legacy` (a
//! session, so a child of its own) and `auto` (stateless 2026-07-28 requests, served by
//! the bridge's pool of children).
//!
//! The servers: `@modelcontextprotocol/server-everything` (its `dist/index.js stdio`,
//! from `tests/peers/node_modules`) with `tests/peers/everything-policy.toml`, and
//! `tests/peers/stdio_faulty.py` (crashes and floods on demand) with
//! `tests/peers/faulty-policy.toml`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keygate_e2e::{Mcp, Server, ServerOptions};
use serde_json::{Value, json};

use crate::peers::{Need, available, peers_dir, python, python_script, run_bounded, script_json};

/// The longest one client run may take.
const RUN_BUDGET: Duration = Duration::from_secs(60);

/// An environment variable keygated runs with: its value must never reach a child.
const GATEWAY_SECRET: (&str, &str) = ("KEYGATE_E2E_GATEWAY_ONLY", "gateway-only-4b1d");

/// keygated in front of one stdio upstream, with the key of tenant `acme`.
pub(crate) struct StdioGateway {
    pub(crate) server: Server,
    pub(crate) key: String,
    _dir: tempfile::TempDir,
}

impl StdioGateway {
    /// `keygated --upstream UPSTREAM --policy POLICY EXTRA…` on a fresh SQLite file.
    pub(crate) fn start(
        upstream: &str,
        policy: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = format!("sqlite://{}", dir.path().join("keygate.db").display());
        let policy = policy.to_str().expect("a UTF-8 path");
        let out = keygate_e2e::bootstrap(&database, "acme", "ada", &["--policy", policy]);
        out.expect_code(0);
        let key = out.stdout.trim().to_owned();
        let mut args = vec![];
        if !upstream.is_empty() {
            args.extend(["--upstream", upstream]);
        }
        args.extend(["--policy", policy]);
        args.extend_from_slice(extra);
        let mut options = ServerOptions::default()
            .database(&database)
            .args(&args)
            .env(GATEWAY_SECRET.0, GATEWAY_SECRET.1);
        for (name, value) in env {
            options = options.env(name, value);
        }
        let server = Server::start(options);
        Self {
            server,
            key,
            _dir: dir,
        }
    }

    pub(crate) fn mcp_url(&self) -> String {
        self.server.url("/api/mcp")
    }

    /// Runs `stdio_client.py --url … --mode MODE SCENARIO ARGS…`; the JSON it printed.
    pub(crate) fn client(&self, mode: &str, scenario: &str, args: &[&str]) -> Value {
        client(&["--url", &self.mcp_url()], &self.key, mode, scenario, args)
            .unwrap_or_else(|e| panic!("{e}\ngateway log:\n{}", self.server.logs()))
    }
}

/// Runs `stdio_client.py TARGET… --mode MODE SCENARIO ARGS…` with `key`.
pub(crate) fn client(
    target: &[&str],
    key: &str,
    mode: &str,
    scenario: &str,
    args: &[&str],
) -> Result<Value, String> {
    let mut cmd: Command = python_script(Path::new("stdio_client.py"));
    cmd.args(target)
        .args(["--mode", mode, scenario])
        .args(args)
        .env("KEYGATE_PEER_KEY", key);
    let what = format!("{mode} {scenario} {args:?}");
    script_json(cmd, RUN_BUDGET, "stdio_client.py", &what)
}

/// `tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js`.
pub(crate) fn everything_js() -> PathBuf {
    peers_dir()
        .join("node_modules")
        .join("@modelcontextprotocol")
        .join("server-everything")
        .join("dist")
        .join("index.js")
}

/// The `--upstream` of server-everything on stdio.
pub(crate) fn everything_upstream() -> String {
    format!("stdio:node {} stdio", everything_js().display())
}

/// The `--upstream` of `stdio_faulty.py`.
pub(crate) fn faulty_upstream() -> String {
    format!(
        "stdio:{} {}",
        python().display(),
        peers_dir().join("stdio_faulty.py").display()
    )
}

/// Whether the Python SDK, node and server-everything are installed (see `peers`).
pub(crate) fn everything_available(test: &str) -> bool {
    if !available(test, Need::PythonAndNode) {
        return false;
    }
    if everything_js().is_file() {
        return true;
    }
    assert!(
        !keygate_e2e::under_ci(),
        "{test} needs server-everything in tests/peers/node_modules under CI"
    );
    eprintln!("note: skipping {test}; run `npm ci` in tests/peers");
    false
}

/// Whether a call was refused: a JSON-RPC error, or a tool error.
fn refused(out: &Value) -> bool {
    out["error"].is_object() || out["is_error"] == true
}

/// Whether a call's text holds `needle`.
fn says(out: &Value, needle: &str) -> bool {
    out["text"].as_str().is_some_and(|t| t.contains(needle))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// keygated in front of server-everything on stdio, with its policy.
fn everything_gateway() -> StdioGateway {
    StdioGateway::start(
        &everything_upstream(),
        &peers_dir().join("everything-policy.toml"),
        &[],
        &[],
    )
}

/// tools/list is exactly the policy's tools the server has (the client declares
/// sampling and elicitation in a session, so all six; the pool declares neither, so
/// server-everything offers four), and a call, progress, sampling and elicitation make
/// their round trips through the bridge.
#[test]
fn server_everything_on_stdio_in_both_modes() {
    if !everything_available("the stdio server-everything test") {
        return;
    }
    let gw = everything_gateway();
    let session_tools = [
        "echo",
        "get-env",
        "get-sum",
        "trigger-elicitation-request",
        "trigger-long-running-operation",
        "trigger-sampling-request",
    ];
    let stateless_tools = [
        "echo",
        "get-env",
        "get-sum",
        "trigger-long-running-operation",
    ];
    for (mode, version, tools) in [
        ("legacy", "2025-11-25", &session_tools[..]),
        ("auto", "2026-07-28", &stateless_tools[..]),
    ] {
        let listed = gw.client(mode, "list", &[]);
        assert_eq!(listed["protocol_version"], version, "{mode}: {listed}");
        assert_eq!(strings(&listed["tools"]), tools, "{mode}: {listed}");
        assert!(!strings(&listed["prompts"]).is_empty(), "{mode}: {listed}");

        let echo = gw.client(mode, "call", &["echo", r#"{"message":"over stdio"}"#]);
        assert_eq!(echo["text"], "Echo: over stdio", "{mode}: {echo}");
        assert_eq!(echo["is_error"], false, "{mode}: {echo}");

        let progress = gw.client(mode, "progress", &["trigger-long-running-operation"]);
        assert_eq!(
            progress["progress"],
            json!([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]]),
            "{mode}: {progress}"
        );
        assert!(says(&progress, "completed"), "{mode}: {progress}");

        // Outside the policy: refused by the gateway, the child never asked.
        let denied = gw.client(mode, "call", &["get-tiny-image"]);
        assert!(refused(&denied), "{mode}: {denied}");
    }
    let sampled = gw.client("legacy", "sample", &["trigger-sampling-request"]);
    assert!(says(&sampled, "pong from the client"), "{sampled}");
    assert_eq!(
        sampled["sampled"],
        json!(["Resource trigger-sampling-request context: ping"])
    );
    let elicited = gw.client("legacy", "elicit", &["trigger-elicitation-request"]);
    assert!(says(&elicited, "Name: Ada"), "{elicited}");
    assert_eq!(elicited["elicited"].as_array().map(Vec::len), Some(1));
}

/// The child's environment is `PATH` and `HOME` and nothing else: neither the client's
/// key nor the gateway's own variables.
#[test]
fn the_child_environment_holds_nothing_of_the_client_or_the_gateway() {
    if !everything_available("the stdio environment test") {
        return;
    }
    let gw = everything_gateway();
    for mode in ["legacy", "auto"] {
        let out = gw.client(mode, "call", &["get-env"]);
        let text = out["text"].as_str().unwrap_or_default();
        let env: serde_json::Map<String, Value> = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{mode}: get-env answered no JSON ({e}): {out}"));
        let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["HOME", "PATH"], "{mode}: {text}");
        let secret = &gw.key[gw.key.len() - 12..];
        assert!(!text.contains(secret), "{mode}: the key reached the child");
        assert!(
            !text.contains(GATEWAY_SECRET.1),
            "{mode}: a gateway variable reached the child"
        );
    }
}

fn faulty_gateway() -> StdioGateway {
    StdioGateway::start(
        &faulty_upstream(),
        &peers_dir().join("faulty-policy.toml"),
        &[],
        &[],
    )
}

fn error_message(out: &Value) -> String {
    assert_eq!(out["error"]["code"], -32603, "{out}");
    out["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A child that exits mid-call: that call gets JSON-RPC -32603 naming the exit; the next
/// session gets a new child, and the pool restarts its child for the next stateless call.
#[test]
fn a_child_that_crashes_mid_call_fails_that_call_and_is_replaced() {
    if !available("the stdio crash test", Need::Python) {
        return;
    }
    let gw = faulty_gateway();
    let started = || {
        gw.server
            .logs()
            .matches("started a stdio MCP server")
            .count()
    };
    for mode in ["legacy", "auto"] {
        let warm = gw.client(mode, "call", &["pid"]);
        assert_eq!(warm["is_error"], false, "{mode}: {warm}");
        let crashed = gw.client(mode, "call", &["crash"]);
        let message = error_message(&crashed);
        assert!(
            message.contains("exited") && message.contains('3'),
            "{mode}: {crashed}"
        );
        let before = started();
        // Past the first restart delay (250 ms): two stateless runs (discover and call
        // each) reach both pooled children, so the dead one is replaced.
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..2 {
            let after = gw.client(mode, "call", &["pid"]);
            assert_eq!(after["is_error"], false, "{mode}: {after}");
        }
        // New sessions' children, or the pool's replacement of the one that crashed.
        assert!(started() > before, "{mode}: no new child after the crash");
    }
    assert!(
        gw.server.logs().contains("crashing on purpose"),
        "the child's stderr is in the gateway's log"
    );
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A child that floods stdout with 64 MiB of non-JSON (lines, then one huge line): the
/// open call gets a clear error, the gateway's memory grows by far less than the flood,
/// and the child still answers the next call.
#[test]
fn a_child_flooding_stdout_gets_a_clear_error_and_memory_stays_bounded() {
    if !available("the stdio flood test", Need::Python) {
        return;
    }
    let gw = faulty_gateway();
    let warm = gw.client("legacy", "call", &["echo", r#"{"message":"warm"}"#]);
    assert_eq!(warm["text"], "warm");
    let before = peak_kib(gw.server.pid());
    let flooded = gw.client("legacy", "call", &["flood", r#"{"mb":64}"#]);
    let message = error_message(&flooded);
    assert!(
        message.contains("not a JSON-RPC message") || message.contains("more than"),
        "{flooded}"
    );
    let after = peak_kib(gw.server.pid());
    if before > 0 {
        assert!(
            after - before < 32 * 1024,
            "a 64 MiB flood raised the gateway's peak memory from {before} to {after} KiB"
        );
    }
    let next = gw.client("auto", "call", &["echo", r#"{"message":"next"}"#]);
    assert_eq!(next["text"], "next", "{next}");
    let logs = gw.server.logs();
    let warnings = logs.matches("unusable lines").count();
    assert!(
        (1..=3).contains(&warnings),
        "unusable lines are logged in summary, not one by one ({warnings} lines)"
    );
}

/// The children of `pid` (by `/proc/*/stat`).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so split after its `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` runs (a zombie does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// Waits up to `secs` seconds for every one of `pids` to end; fails saying `what`, the
/// ones still running and, given `server`, its log.
async fn all_end(pids: &[u32], secs: u64, what: &str, server: Option<&Server>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| running(p)).collect();
        if left.is_empty() {
            return;
        }
        let logs = || server.map(Server::logs).unwrap_or_default();
        assert!(Instant::now() < deadline, "{what}: {left:?}\n{}", logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGKILL of keygated leaves no child behind: its session children and its pooled
/// children end (their stdin closes with the gateway).
#[tokio::test]
async fn killing_keygated_leaves_no_child() {
    if !available("the stdio orphan test", Need::Python) {
        return;
    }
    let mut gw = faulty_gateway();
    let url = gw.mcp_url();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut mcp = Mcp::new(&url, &gw.key);
        mcp.initialize().await;
        sessions.push(mcp);
    }
    // A stateless call starts the pool.
    let stateless = gw.client("auto", "call", &["echo", r#"{"message":"pool"}"#]);
    assert_eq!(stateless["text"], "pool");
    let children = children_of(gw.server.pid());
    assert!(
        children.len() >= 3,
        "two sessions and a pooled child run: {children:?}\n{}",
        gw.server.logs()
    );
    gw.server.kill();
    let what = "children still running 10 s after keygated was killed";
    all_end(&children, 10, what, None).await;
}

/// DELETE ends a session's child; the session then answers 404.
#[tokio::test]
async fn delete_ends_the_sessions_child() {
    if !available("the stdio DELETE test", Need::Python) {
        return;
    }
    let gw = faulty_gateway();
    let mut mcp = Mcp::new(&gw.mcp_url(), &gw.key);
    mcp.initialize().await;
    let before = children_of(gw.server.pid());
    assert_eq!(before.len(), 1, "{before:?}");
    let session = mcp.session.clone().expect("a session");
    let a = keygate_e2e::send(
        keygate_e2e::client()
            .delete(gw.mcp_url())
            .bearer_auth(&gw.key)
            .header("mcp-session-id", &session),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    all_end(
        &before[..1],
        5,
        "the child outlived its session's DELETE",
        None,
    )
    .await;
    let a = mcp.rpc("tools/list", json!({})).await;
    assert_eq!(a.status, 404, "{}", a.text);
}

/// The settings file of two upstreams: server-everything on stdio (its environment
/// holding `${FED_SECRET}` of keygated's) and the Python SDK server at `peer_url`.
fn federation_config(dir: &Path, peer_url: &str) -> PathBuf {
    let path = dir.join("keygated.toml");
    let everything = everything_js();
    let text = format!(
        "[upstreams.everything]\ncommand = [\"node\", {:?}, \"stdio\"]\n\
         env = {{ PLATFORM_TOKEN = \"${{FED_SECRET}}\", FIXED = \"plain\" }}\n\n\
         [upstreams.peer]\nurl = {peer_url:?}\n",
        everything.display().to_string()
    );
    std::fs::write(&path, text).expect("the settings file is written");
    path
}

/// Two upstreams behind one keygated: tools as `NAME.<tool>`, merged and filtered by the
/// policy, each call routed to its upstream (sampling included, from either), and the
/// stdio upstream's environment holding the `${VAR}` keygated was given.
#[test]
fn two_upstreams_behind_one_gateway() {
    if !everything_available("the two-upstream test") {
        return;
    }
    let peer = crate::peers::PeerServer::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = federation_config(dir.path(), &peer.url);
    let gw = StdioGateway::start(
        "",
        &peers_dir().join("federation-policy.toml"),
        &["--config", config.to_str().expect("a UTF-8 path")],
        &[("FED_SECRET", "injected-4c6f")],
    );
    let all = [
        "everything.echo",
        "everything.get-env",
        "everything.trigger-sampling-request",
        "peer.test_sampling",
        "peer.test_simple_text",
    ];
    for (mode, tools) in [
        ("legacy", &all[..]),
        // The pool declares no sampling: server-everything does not offer it then.
        (
            "auto",
            &[
                "everything.echo",
                "everything.get-env",
                "peer.test_sampling",
                "peer.test_simple_text",
            ][..],
        ),
    ] {
        let listed = gw.client(mode, "list", &[]);
        assert_eq!(strings(&listed["tools"]), tools, "{mode}: {listed}");
        let prompts = strings(&listed["prompts"]);
        assert!(
            prompts.iter().any(|p| p.starts_with("everything."))
                && prompts.iter().any(|p| p.starts_with("peer.")),
            "{mode}: prompts of both, prefixed: {listed}"
        );
        let echo = gw.client(
            mode,
            "call",
            &["everything.echo", r#"{"message":"routed"}"#],
        );
        assert_eq!(echo["text"], "Echo: routed", "{mode}: {echo}");
        let text = gw.client(mode, "call", &["peer.test_simple_text"]);
        assert_eq!(
            text["text"], "This is a simple text response for testing.",
            "{mode}: {text}"
        );
        let env = gw.client(mode, "call", &["everything.get-env"]);
        let env: Value = serde_json::from_str(env["text"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{mode}: get-env: {e}: {env}"));
        assert_eq!(env["PLATFORM_TOKEN"], "injected-4c6f", "{mode}: {env}");
        assert_eq!(env["FIXED"], "plain", "{mode}: {env}");
        assert!(env.get("FED_SECRET").is_none(), "{mode}: {env}");
        // Unprefixed names reach no upstream.
        let bare = gw.client(mode, "call", &["echo", r#"{"message":"x"}"#]);
        assert!(refused(&bare), "{mode}: {bare}");
    }
    // Sampling requests of either upstream reach the client and its answer the one that asked.
    let stdio = gw.client("legacy", "sample", &["everything.trigger-sampling-request"]);
    assert!(says(&stdio, "pong from the client"), "{stdio}");
    let http = gw.client("legacy", "sample", &["peer.test_sampling"]);
    assert_eq!(http["text"], "LLM response: pong from the client", "{http}");
}

/// Runs keygated with `args` until it exits (it must not start); its exit status and
/// stderr.
fn refused_start(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = keygate_e2e::clean_command(&keygate_e2e::binary("keygated"));
    cmd.args(args)
        .args(["--listen", "127.0.0.1:0", "--database", "sqlite::memory:"]);
    let run = run_bounded(cmd, Duration::from_secs(30));
    (run.status.code(), run.stderr)
}

/// A `${VAR}` keygated does not have, and an upstream name with a `.`, stop the start
/// with exit 2 and a message naming them.
#[test]
fn an_unset_variable_or_a_bad_upstream_name_stops_the_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let policy = peers_dir().join("federation-policy.toml");
    let policy = policy.to_str().expect("a UTF-8 path");
    let unset = dir.path().join("unset.toml");
    std::fs::write(
        &unset,
        "[upstreams.a]\ncommand = [\"server\"]\nenv = { TOKEN = \"${KEYGATE_E2E_NEVER_SET}\" }\n\
         [upstreams.b]\nurl = \"http://127.0.0.1:9/mcp\"\n",
    )
    .expect("written");
    let (code, stderr) = refused_start(&[
        "--config",
        unset.to_str().expect("UTF-8"),
        "--policy",
        policy,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("[upstreams.a]: `env.TOKEN`: ${KEYGATE_E2E_NEVER_SET} is not set"),
        "{stderr}"
    );
    let dotted = dir.path().join("dotted.toml");
    std::fs::write(
        &dotted,
        "[upstreams.\"a.b\"]\nurl = \"http://127.0.0.1:9/mcp\"\n",
    )
    .expect("written");
    let (code, stderr) = refused_start(&[
        "--config",
        dotted.to_str().expect("UTF-8"),
        "--policy",
        policy,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("upstream name \"a.b\"") && stderr.contains("`.`"),
        "{stderr}"
    );
}

/// SIGTERM: keygated shuts down and ends every child on its way out.
#[tokio::test]
async fn shutdown_ends_every_child() {
    if !available("the stdio shutdown test", Need::Python) {
        return;
    }
    let gw = faulty_gateway();
    let mut mcp = Mcp::new(&gw.mcp_url(), &gw.key);
    mcp.initialize().await;
    let stateless = gw.client("auto", "call", &["echo", r#"{"message":"pool"}"#]);
    assert_eq!(stateless["text"], "pool");
    let pid = gw.server.pid();
    let children = children_of(pid);
    assert!(children.len() >= 2, "{children:?}");
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let with_children: Vec<u32> = std::iter::once(pid)
        .chain(children.iter().copied())
        .collect();
    let what = "keygated or a child still runs 15 s after SIGTERM";
    all_end(&with_children, 15, what, Some(&gw.server)).await;
}

/// A stdio session is bound to the key that opened it, as any upstream's: another
/// tenant's key presenting its id gets 404, and the session still works for its own.
#[tokio::test]
async fn a_stdio_session_answers_404_to_any_other_key() {
    if !available("the stdio session-binding test", Need::Python) {
        return;
    }
    let gw = faulty_gateway();
    let url = gw.mcp_url();
    let mut owner = Mcp::new(&url, &gw.key);
    owner.initialize().await;
    let session = owner.session.clone().expect("a session id");
    let policy = peers_dir().join("faulty-policy.toml");
    let out = keygate_e2e::bootstrap(
        &gw.server.database,
        "other",
        "dora",
        &["--policy", policy.to_str().expect("UTF-8")],
    );
    out.expect_code(0);
    let other = out.stdout.trim().to_owned();
    let mut intruder = Mcp::new(&url, &other).with_session(Some(&session));
    let a = intruder.call("echo", json!({"message": "mine now"})).await;
    assert_eq!(
        a.status, 404,
        "another key's call in the session: {}",
        a.text
    );
    let a = owner.call("echo", json!({"message": "still mine"})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("still mine"), "{}", a.text);
}
