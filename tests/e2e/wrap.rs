//! `keygate wrap` as an agent starts it from `.mcp.json`: spawned by the official MCP
//! Python SDK's stdio client (`tests/peers/wrap_client.py`) in front of
//! `tests/peers/wrap_server.py` with `tests/peers/wrap-policy.toml`, and driven line by
//! line for its ends and exit codes.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keygate_e2e::{binary, clean_command};
use serde_json::{Value, json};

use crate::peers::{Need, available, peers_dir, python, python_script, run_bounded, script_json};

/// The longest one client run may take.
const RUN_BUDGET: Duration = Duration::from_secs(60);
/// How long one answer of a driven `keygate wrap` may take.
const ANSWER_WAIT: Duration = Duration::from_secs(20);

fn policy() -> PathBuf {
    peers_dir().join("wrap-policy.toml")
}

/// `keygate wrap --policy wrap-policy.toml -- python wrap_server.py`, as words.
fn wrap_command() -> Vec<String> {
    let mut words = vec![binary("keygate").display().to_string(), "wrap".to_owned()];
    words.extend(["--policy".to_owned(), policy().display().to_string()]);
    words.extend(["--".to_owned(), python().display().to_string()]);
    words.push(peers_dir().join("wrap_server.py").display().to_string());
    words
}

/// Runs `wrap_client.py OPTIONS… -- keygate wrap …`; the JSON it printed.
fn sdk_client(options: &[&str]) -> Value {
    let mut cmd = python_script(std::path::Path::new("wrap_client.py"));
    cmd.args(options).arg("--").args(wrap_command());
    let what = format!("{options:?}");
    script_json(cmd, RUN_BUDGET, "wrap_client.py", &what).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_python_sdk_through_keygate_wrap_sees_the_policy_and_asks_its_person() {
    if !available("the keygate wrap SDK test", Need::Python) {
        return;
    }
    let out = sdk_client(&["--answers", "decline,accept:api", "conversation"]);
    assert_eq!(
        out["tools"],
        json!([
            "changed",
            "env",
            "exit",
            "pid",
            "service.delete",
            "service.events",
            "service.list",
            "service.replace",
            "service.restart",
            "service.status"
        ]),
        "tools/list is the policy's: {out}"
    );
    assert_eq!(out["refused"]["error"]["code"], -32600, "{out}");
    let refused = out["refused"]["error"]["message"].as_str().unwrap_or("");
    assert!(refused.contains("insufficient_scope"), "{out}");
    assert_eq!(out["protected"]["code"], "SELF_SERVICE_BLOCKED", "{out}");

    let deletes = out["deletes"].as_array().expect("two deletes");
    assert_eq!(deletes[0]["code"], "CONFIRMATION_DECLINED", "{out}");
    assert_eq!(
        deletes[0]["services"], "api,web,keygate",
        "declining deletes nothing"
    );
    assert_eq!(deletes[1]["is_error"], false, "{out}");
    assert_eq!(deletes[1]["text"], "deleted api", "{out}");
    assert_eq!(
        deletes[1]["services"], "web,keygate",
        "the exact name deletes"
    );
    let elicited = out["elicited"].as_array().expect("the callback's messages");
    assert_eq!(elicited.len(), 2, "asked once per delete of api: {out}");
    assert!(
        elicited
            .iter()
            .all(|m| m.as_str().is_some_and(|m| m.contains("`api`"))),
        "{out}"
    );

    assert_eq!(
        out["restart"]["text"], "restarted web",
        "never gated: {out}"
    );
    let env: Vec<&str> = out["env"]
        .as_array()
        .expect("the child's variables")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"WRAP_E2E_PASSED"),
        "wrap's environment is passed: {env:?}"
    );
    assert!(
        !env.iter().any(|name| name.starts_with("KEYGATE_")),
        "never keygate's own variables: {env:?}"
    );
}

#[test]
fn a_client_without_elicitation_is_told_there_is_no_approval_page() {
    if !available("the keygate wrap no-elicitation test", Need::Python) {
        return;
    }
    let out = sdk_client(&[
        "--no-elicitation",
        "call",
        "service.delete",
        r#"{"service":"api"}"#,
    ]);
    assert_eq!(out["is_error"], true, "{out}");
    assert_eq!(out["code"], "APPROVAL_UNAVAILABLE", "{out}");
    let text = out["text"].as_str().unwrap_or("");
    assert!(text.contains("no approval page"), "{out}");
    assert_eq!(out["services"], "api,web,keygate", "nothing deleted: {out}");
}

#[test]
fn check_refuses_to_start_without_a_credential() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = clean_command(&binary("keygate"));
    cmd.current_dir(dir.path())
        .args([
            "wrap",
            "--check",
            "--server",
            "http://127.0.0.1:9",
            "--policy",
        ])
        .arg(policy())
        .args(["--", "/nonexistent/never-started"]);
    let run = run_bounded(cmd, RUN_BUDGET);
    assert_eq!(
        run.status.code(),
        Some(1),
        "the check's exit code: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.lines().next(),
        Some(
            "No authentication found: set KEYGATE_API_KEY or add it to the env block in .mcp.json"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "nothing on the protocol stream: {}",
        run.stdout
    );
    assert!(
        !run.stderr.contains("stdio MCP server"),
        "the server never started: {}",
        run.stderr
    );
}

#[test]
fn wrap_without_a_policy_refuses_to_start() {
    let mut cmd = clean_command(&binary("keygate"));
    cmd.args(["wrap", "--", "/nonexistent/never-started"]);
    let run = run_bounded(cmd, RUN_BUDGET);
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--policy <FILE>"), "{}", run.stderr);
}

/// `keygate wrap` with piped stdio, its stdout read line by line; killed on drop.
struct Driven {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Driven {
    fn start() -> Self {
        let words = wrap_command();
        let mut cmd = clean_command(std::path::Path::new(&words[0]));
        cmd.args(&words[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("keygate wrap starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").expect("keygate wrap reads stdin");
        stdin.flush().expect("keygate wrap reads stdin");
    }

    /// Sends a request; its answer (other lines are skipped).
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("an answer in time");
            let message: Value = serde_json::from_str(&line).expect("one JSON message a line");
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }

    /// A started one with its session open, or `None` when Python is missing.
    fn session(test: &str) -> Option<Self> {
        if !available(test, Need::Python) {
            return None;
        }
        let mut driven = Self::start();
        driven.open_session();
        Some(driven)
    }

    fn open_session(&mut self) {
        let params = json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "1"}});
        let init = self.request(1, "initialize", params);
        assert!(init["result"].is_object(), "{init}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.request(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )
    }

    /// Waits for it to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("its status") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "keygate wrap did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn closing_stdin_ends_the_child_and_wrap_exits_0() {
    let Some(mut wrap) = Driven::session("the keygate wrap end-of-input test") else {
        return;
    };
    let pid = wrap.call(2, "pid", json!({}));
    let pid = pid["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{pid}");
    drop(wrap.stdin.take());
    assert_eq!(wrap.exit_code(), Some(0));
    #[cfg(target_os = "linux")]
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} was ended"
    );
}

#[test]
fn a_child_that_exits_ends_wrap_with_its_status() {
    let Some(mut wrap) = Driven::session("the keygate wrap child-exit test") else {
        return;
    };
    let failed = wrap.call(2, "exit", json!({"code": 5}));
    assert!(failed["error"].is_object(), "the open call fails: {failed}");
    assert_eq!(wrap.exit_code(), Some(5), "the child's status");
}
