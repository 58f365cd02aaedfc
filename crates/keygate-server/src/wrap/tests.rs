//! The stdio front-end driven over in-memory pipes, in front of
//! `tests/peers/wrap_server.py` (standard-library Python: `$KEYGATE_TEST_PYTHON`, else
//! `python3`) with `tests/peers/wrap-policy.toml`.

use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, DuplexStream, Lines};
use tokio::task::JoinHandle;

use super::*;

/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(20);

fn peers(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers")
        .join(file)
}

/// The wrapped server's command, or `None` (with a note; a failure under `CI`) when no
/// Python runs here.
fn server_command(test: &str) -> Option<Vec<String>> {
    let python = std::env::var("KEYGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let runs = std::process::Command::new(&python)
        .args(["-c", "pass"])
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test} needs Python under CI"
        );
        eprintln!("note: skipping {test}: no Python ({python})");
        return None;
    }
    let script = peers("wrap_server.py").display().to_string();
    Some(vec![python, script])
}

/// A client on the other end of a running [`Wrap::run`].
struct Client {
    input: Option<DuplexStream>,
    output: Lines<BufReader<DuplexStream>>,
    run: JoinHandle<Result<WrapEnd, ServerError>>,
}

impl Client {
    async fn start(command: Vec<String>) -> Self {
        let wrap = Wrap::new(command, &peers("wrap-policy.toml"))
            .await
            .expect("the guard is built");
        let (input, wrap_input) = tokio::io::duplex(1 << 20);
        let (wrap_output, output) = tokio::io::duplex(1 << 20);
        let run = tokio::spawn(wrap.run(wrap_input, wrap_output));
        Self {
            input: Some(input),
            output: BufReader::new(output).lines(),
            run,
        }
    }

    /// A client of `wrap_server.py` with its session open, or `None` without Python.
    async fn session(test: &str, elicits: bool) -> Option<Self> {
        let mut client = Self::start(server_command(test)?).await;
        let init = client.initialize(elicits).await;
        assert_eq!(init["id"], 1, "{init}");
        assert_eq!(
            init["result"]["serverInfo"]["name"], "wrap-server",
            "{init}"
        );
        Some(client)
    }

    async fn send(&mut self, message: Value) {
        let input = self.input.as_mut().expect("the input is open");
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        input.write_all(&line).await.expect("wrap reads its input");
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(ANSWER_WAIT, self.output.next_line())
            .await
            .expect("an answer in time")
            .expect("the output is readable")
            .expect("a line, not the end of the output");
        serde_json::from_str(&line).expect("each output line is one JSON message")
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        self.next().await
    }

    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        let params = json!({"name": tool, "arguments": arguments});
        self.request(id, "tools/call", params).await
    }

    /// `initialize` (declaring form elicitation when `elicits`), then `initialized`.
    async fn initialize(&mut self, elicits: bool) -> Value {
        let capabilities = if elicits {
            json!({"elicitation": {"form": {}}})
        } else {
            json!({})
        };
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": {"name": "wrap-test", "version": "1"},
        });
        let answer = self.request(1, "initialize", params).await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        answer
    }

    /// Calls `service.delete api`: the person is asked on the stream first.
    async fn ask_to_delete_api(&mut self, id: u64) -> Value {
        let ask = self
            .call(id, "service.delete", json!({"service": "api"}))
            .await;
        assert_eq!(ask["method"], "elicitation/create", "{ask}");
        ask
    }

    /// The person's answer to `ask`; then the call's own answer.
    async fn answer(&mut self, ask: &Value, result: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": ask["id"], "result": result}))
            .await;
        self.next().await
    }

    /// Closes the input; how the run ended.
    async fn end(mut self) -> WrapEnd {
        drop(self.input.take());
        self.finish().await
    }

    async fn finish(self) -> WrapEnd {
        tokio::time::timeout(ANSWER_WAIT, self.run)
            .await
            .expect("the run ends in time")
            .expect("the run did not panic")
            .expect("the run ends without an I/O error")
    }
}

fn text(answer: &Value) -> &str {
    answer
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_session_lists_the_policys_tools_and_refuses_the_others() {
    let Some(mut client) = Client::session("the tools/list wrap test", false).await else {
        return;
    };
    let listed = client.request(2, "tools/list", json!({})).await;
    let mut names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    let expected = [
        "changed",
        "env",
        "exit",
        "pid",
        "service.delete",
        "service.events",
        "service.list",
        "service.replace",
        "service.restart",
        "service.status",
    ];
    assert_eq!(
        names, expected,
        "debug.shell is not in the policy: {listed}"
    );

    // The gateway's 403 becomes the JSON-RPC error of that very request.
    let refused = client.call(3, "debug.shell", json!({})).await;
    assert_eq!(refused["id"], 3, "{refused}");
    assert_eq!(
        refused["error"]["code"],
        jsonrpc::INVALID_REQUEST,
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("keygate: insufficient_scope:"),
        "{refused}"
    );

    // A notification gets no line: the next one answers the ping.
    client
        .send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}))
        .await;
    let pong = client.request(4, "ping", json!({})).await;
    assert_eq!(pong, json!({"jsonrpc": "2.0", "id": 4, "result": {}}));

    let restarted = client
        .call(5, "service.restart", json!({"service": "web"}))
        .await;
    assert_eq!(text(&restarted), "restarted web", "{restarted}");

    // Sent by the server after its answer, while no call is open: the GET stream's.
    let changed = client.call(6, "changed", json!({})).await;
    assert_eq!(text(&changed), "changed", "{changed}");
    let notified = client.next().await;
    assert_eq!(
        notified["method"], "notifications/tools/list_changed",
        "{notified}"
    );
    assert!(matches!(client.end().await, WrapEnd::InputClosed));
}

#[tokio::test]
async fn a_person_approves_on_the_stream_while_other_requests_go_on() {
    let Some(mut client) = Client::session("the elicitation wrap test", true).await else {
        return;
    };

    // Declined: nothing deleted.
    let ask = client.ask_to_delete_api(2).await;
    let declined = client.answer(&ask, json!({"action": "decline"})).await;
    assert_eq!(declined["id"], 2, "{declined}");
    assert_eq!(
        declined["result"]["structuredContent"]["code"], "CONFIRMATION_DECLINED",
        "{declined}"
    );

    // Asked again; while the person thinks, another request is answered.
    let ask = client.ask_to_delete_api(3).await;
    let listed = client.call(4, "service.list", json!({})).await;
    assert_eq!(listed["id"], 4, "{listed}");
    assert_eq!(
        text(&listed),
        "api,web,keygate",
        "the decline deleted nothing"
    );
    let accept = json!({"action": "accept", "content": {"target": "api"}});
    let deleted = client.answer(&ask, accept).await;
    assert_eq!(deleted["id"], 3, "{deleted}");
    assert_eq!(text(&deleted), "deleted api", "{deleted}");
    let listed = client.call(5, "service.list", json!({})).await;
    assert_eq!(text(&listed), "web,keygate", "{listed}");
    assert!(matches!(client.end().await, WrapEnd::InputClosed));
}

#[tokio::test]
async fn a_replace_after_failures_needs_the_evidence_read_in_the_session_then_a_person() {
    let Some(mut client) = Client::session("the evidence wrap test", true).await else {
        return;
    };
    let replace = json!({"service": "web"});
    let refused = client.call(2, "service.replace", replace.clone()).await;
    let data = &refused["result"]["structuredContent"];
    assert_eq!(data["code"], "DIAGNOSIS_REQUIRED", "{refused}");
    assert!(data.to_string().contains("service.events"), "{refused}");

    let events = client.call(3, "service.events", replace.clone()).await;
    assert_eq!(text(&events), "events of web: deploy failed", "{events}");
    let ask = client.call(4, "service.replace", replace).await;
    assert_eq!(ask["method"], "elicitation/create", "{ask}");
    let accept = json!({"action": "accept", "content": {"target": "web"}});
    let replaced = client.answer(&ask, accept).await;
    assert_eq!(text(&replaced), "replaced web", "{replaced}");
    client.end().await;
}

#[tokio::test]
async fn a_person_gate_without_elicitation_says_there_is_no_page() {
    let Some(mut client) = Client::session("the no-elicitation wrap test", false).await else {
        return;
    };
    let answer = client
        .call(2, "service.delete", json!({"service": "api"}))
        .await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    let data = &answer["result"]["structuredContent"];
    assert_eq!(data["code"], APPROVAL_UNAVAILABLE, "{answer}");
    assert_eq!(data["target"], "api", "{answer}");
    assert!(text(&answer).starts_with(NO_APPROVAL_PAGE), "{answer}");
    assert!(
        !text(&answer).contains("/approvals/"),
        "no page to point at: {answer}"
    );
    let listed = client.call(3, "service.list", json!({})).await;
    assert_eq!(text(&listed), "api,web,keygate", "{listed}");
    client.end().await;
}

#[tokio::test]
async fn the_end_of_input_ends_the_child() {
    let Some(mut client) = Client::session("the end-of-input wrap test", false).await else {
        return;
    };
    let pid = client.call(2, "pid", json!({})).await;
    let pid = text(&pid).to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{pid}");
    let end = client.end().await;
    assert!(matches!(end, WrapEnd::InputClosed), "{end:?}");
    assert_eq!(end.exit_code(), 0);
    #[cfg(target_os = "linux")]
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} is gone"
    );
}

#[tokio::test]
async fn a_child_that_exits_ends_the_run_with_its_status() {
    let Some(mut client) = Client::session("the child-exit wrap test", false).await else {
        return;
    };
    let failed = client.call(2, "exit", json!({"code": 7})).await;
    assert_eq!(failed["id"], 2, "{failed}");
    assert!(failed["error"].is_object(), "{failed}");
    let end = client.finish().await;
    assert!(matches!(end, WrapEnd::ChildExited(Some(_))), "{end:?}");
    assert_eq!(end.exit_code(), 7);
}

#[tokio::test]
async fn a_command_that_cannot_start_is_answered_and_ends_the_run() {
    let mut client = Client::start(vec!["/nonexistent/keygate-wrap-test".to_owned()]).await;
    let params = json!({"protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "wrap-test", "version": "1"}});
    let init = client.request(1, "initialize", params).await;
    assert_eq!(init["id"], 1, "{init}");
    assert_eq!(
        init["error"]["code"],
        jsonrpc::UPSTREAM_UNAVAILABLE,
        "{init}"
    );
    let end = client.finish().await;
    assert!(matches!(end, WrapEnd::NotStarted(_)), "{end:?}");
    assert_eq!(end.exit_code(), 127);
}

#[tokio::test]
async fn an_overlong_line_is_a_parse_error_and_the_session_goes_on() {
    let mut client = Client::start(vec!["/nonexistent/keygate-wrap-test".to_owned()]).await;
    let mut line = vec![b'x'; MCP_BODY_LIMIT + 1];
    line.push(b'\n');
    let input = client.input.as_mut().expect("the input is open");
    input.write_all(&line).await.expect("wrap reads its input");
    let answer = client.next().await;
    assert_eq!(answer["error"]["code"], jsonrpc::PARSE_ERROR, "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert!(matches!(client.end().await, WrapEnd::InputClosed));
}

#[test]
fn an_approval_page_answer_becomes_the_no_page_error() {
    let mut answer = json!({"jsonrpc": "2.0", "id": 7, "result": {
        "isError": true,
        "content": [{"type": "text", "text": "approve at /approvals/abc"}],
        "structuredContent": {"code": "APPROVAL_REQUIRED", "operation": "service.delete",
            "target": "api", "arguments": {"service": "api"}, "approval_url": "/approvals/abc"},
    }});
    no_approval_page(&mut answer);
    assert_eq!(answer["id"], 7);
    let data = &answer["result"]["structuredContent"];
    assert_eq!(data["code"], APPROVAL_UNAVAILABLE);
    assert_eq!(data["arguments"], json!({"service": "api"}));
    assert!(data.get("approval_url").is_none(), "{answer}");
    assert!(!answer.to_string().contains("/approvals/"), "{answer}");

    let mut declined = json!({"jsonrpc": "2.0", "id": 8, "result": {
        "isError": true, "structuredContent": {"code": "CONFIRMATION_DECLINED"}}});
    let before = declined.clone();
    no_approval_page(&mut declined);
    assert_eq!(declined, before, "other gate answers pass unchanged");
}

#[test]
fn refusals_name_their_code_and_what_it_means() {
    let scope = refusal_message(StatusCode::FORBIDDEN, Some("insufficient_scope"), None);
    assert!(
        scope.starts_with("keygate: insufficient_scope: the policy"),
        "{scope}"
    );
    let limited = refusal_message(
        StatusCode::TOO_MANY_REQUESTS,
        Some("rate_limited"),
        Some("3"),
    );
    assert_eq!(
        limited,
        "keygate: rate_limited: too many requests; retry after 3 s"
    );
    let other = refusal_message(StatusCode::SERVICE_UNAVAILABLE, None, None);
    assert_eq!(other, "keygate: refused: HTTP 503");
    assert_eq!(
        refusal_code(StatusCode::FORBIDDEN),
        jsonrpc::INVALID_REQUEST
    );
    assert_eq!(
        refusal_code(StatusCode::SERVICE_UNAVAILABLE),
        jsonrpc::INTERNAL_ERROR
    );
}

#[cfg(unix)]
#[test]
fn exit_codes_follow_the_shells_conventions() {
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(WrapEnd::InputClosed.exit_code(), 0);
    let exited = |raw| WrapEnd::ChildExited(Some(ExitStatus::from_raw(raw)));
    assert_eq!(exited(0).exit_code(), 0);
    assert_eq!(exited(3 << 8).exit_code(), 3);
    // Killed by SIGKILL (9).
    assert_eq!(exited(9).exit_code(), 137);
    assert_eq!(WrapEnd::ChildExited(None).exit_code(), 1);
    assert_eq!(WrapEnd::NotStarted("gone".to_owned()).exit_code(), 127);
}

#[test]
fn the_zcp_template_gates_delete_and_replace_and_nothing_else() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let policy = keygate_scopes::Policy::load(examples.join("zcp-policy.toml"))
        .expect("the template is a valid policy");
    let gate = |tool: &str| {
        let tool = policy
            .tool(tool)
            .unwrap_or_else(|| panic!("{tool} is listed"));
        tool.gate().map(|g| (g.kind(), g.approval_by().is_person()))
    };
    assert_eq!(gate("service.delete"), Some(("approval", true)));
    assert_eq!(gate("service.replace"), Some(("evidence", true)));
    for ungated in [
        "service.deploy",
        "service.env.set",
        "service.restart",
        "service.scale",
    ] {
        assert_eq!(gate(ungated), None, "{ungated} is never gated");
    }

    // The `.mcp.json` entry runs `keygate wrap` with that policy and the check.
    let entry: Value = serde_json::from_str(
        &std::fs::read_to_string(examples.join("wrap.mcp.json")).expect("the entry"),
    )
    .expect("valid JSON");
    let server = &entry["mcpServers"]["zcp"];
    assert_eq!(server["command"], "keygate");
    let args: Vec<&str> = server["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        [
            "wrap",
            "--policy",
            "examples/zcp-policy.toml",
            "--check",
            "--",
            "zcp",
            "serve"
        ]
    );
}
