//! What the gateway polices before anything else, on the real server: every request
//! that passed authentication spends the key's budget (denied ones too), session ids
//! are short visible ASCII, every MCP method is checked against the policy, and
//! client-supplied strings reach the log cut short and escaped.

use std::time::Duration;

use keygate_e2e::{
    Answer, Mcp, Process, Server, ServerOptions, clean_command, client, eventually, example, send,
};
use serde_json::{Value, json};

const DENIED: &str = r#"{"error":"insufficient_scope"}"#;

/// A tool name that tries to forge a log line, colour the terminal and fill the disk.
fn forged_name() -> String {
    format!(
        "x\n2026-01-01T00:00:00.000000Z  INFO keygated listening\u{1b}[31m{}",
        "y".repeat(500_000)
    )
}

/// Sends `message` with `key` until the answer is 429 (at most 60 times); every answer
/// before it must have `status`. Returns how many there were.
async fn until_limited(server: &Server, key: &str, message: &Value, status: u16) -> usize {
    let mcp = server.api(key).mcp();
    for sent in 0..60 {
        let a = mcp.send(message).await;
        if a.status == 429 {
            assert_eq!(a.text, r#"{"error":"rate_limited"}"#);
            assert!(a.header("retry-after").is_some());
            return sent;
        }
        assert_eq!(a.status, status, "{}", &a.text[..a.text.len().min(300)]);
    }
    panic!("60 requests answered {status} and none was rate-limited");
}

#[tokio::test]
async fn denied_calls_spend_the_budget_and_log_short_escaped_lines() {
    // A burst of 1, refilled once a second.
    let server = Server::demo_with(&["--key-rate", "1"]);
    let owner = server.owner_key();
    // Zero-scope keys, one per kind of refusal (the owner's own budget is 1 too).
    let api = server.api(&owner);
    let mut keys = Vec::new();
    for i in 0..3 {
        let body = json!({"name": format!("nothing {i}"), "kind": "tenant", "scopes": []});
        let created = eventually(Duration::from_secs(20), || {
            let post = api.post("/api/v1/keys", &body);
            async move {
                let a = post.await;
                (a.status == 201).then(|| a.json["key"].as_str().map(str::to_owned))?
            }
        })
        .await
        .expect("the owner creates a key within 20 s");
        keys.push(created);
    }
    let name = forged_name();
    let denied_tool =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{}}});
    let denied = until_limited(&server, &keys[0], &denied_tool, 403).await;
    assert!(denied >= 1, "the first call is denied, not limited");
    let denied_method = json!({"jsonrpc":"2.0","id":2,"method":"resources/list"});
    until_limited(&server, &keys[1], &denied_method, 403).await;
    let invalid_params =
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{}}});
    until_limited(&server, &keys[2], &invalid_params, 200).await;

    let logs = eventually(Duration::from_secs(10), || {
        let logs = server.logs();
        async move { logs.contains("tool call denied by policy").then_some(logs) }
    })
    .await
    .unwrap_or_else(|| panic!("no denial logged:\n{}", server.logs()));
    assert!(
        logs.contains(r"x\n2026-01-01T00:00:00.000000Z  INFO keygated listening\u{1b}[31m"),
        "the name is logged escaped: {}",
        &logs[..logs.len().min(4000)]
    );
    assert!(
        !logs.contains('\u{1b}'),
        "an escape character reached the log"
    );
    for line in logs.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00"),
            "forged line: {line}"
        );
    }
    assert!(
        logs.len() < 64 * 1024,
        "{} bytes of log for {denied} denied calls",
        logs.len()
    );
}

/// `POST /api/mcp` with the given raw `Mcp-Session-Id` headers.
async fn with_sessions(
    server: &Server,
    key: &str,
    method: reqwest::Method,
    sessions: &[&str],
    body: Option<&Value>,
) -> Answer {
    let mut req = client()
        .request(method, server.url("/api/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream");
    for s in sessions {
        req = req.header("mcp-session-id", *s);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    send(req).await
}

#[tokio::test]
async fn session_ids_are_one_header_of_1_to_128_visible_ascii_characters() {
    // The challenge's mechanics: the demo policy with `approval = "agent"`.
    let server = Server::start(
        ServerOptions::demo()
            .agent_gates()
            .args(&["--key-rate", "1000"]),
    );
    let owner = server.owner_key();
    let delete = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api"}}});
    let big = "s".repeat(300_000);
    let long = "s".repeat(129);
    let bad: [(&str, Vec<&str>); 5] = [
        ("300 kB", vec![&big]),
        ("129 characters", vec![&long]),
        ("a space", vec!["s 1"]),
        ("a tab", vec!["s\t1"]),
        ("two headers", vec!["s1", "s2"]),
    ];
    for (what, sessions) in &bad {
        let a = with_sessions(
            &server,
            &owner,
            reqwest::Method::POST,
            sessions,
            Some(&delete),
        )
        .await;
        assert_eq!(
            a.status,
            400,
            "{what}: {}",
            &a.text[..a.text.len().min(300)]
        );
        assert_eq!(a.json["error"]["code"], -32600, "{what}");
        assert_eq!(a.json["id"], Value::Null, "{what}");
        assert!(a.header("mcp-session-id").is_none(), "{what}: echoed");
        assert!(
            a.text.len() < 200,
            "{what}: {} bytes answered",
            a.text.len()
        );
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let a = with_sessions(&server, &owner, method.clone(), sessions, None).await;
            assert_eq!(a.status, 400, "{method} {what}: {}", a.text);
            assert_eq!(a.json["error"]["code"], -32600, "{method} {what}");
        }
    }
    // Nothing reached the gates or the audit log.
    let audit = server.api(&owner).get("/api/v1/audit?limit=100").await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    assert!(!audit.text.contains("gate."), "{}", audit.text);
    assert!(!audit.text.contains("sss"), "a session id was audited");

    // The longest valid id passes the check and is looked up: no `initialize` opened
    // it, so it is an unknown session (404), as the official SDKs answer.
    let longest = "v".repeat(128);
    let mut mcp = server.api(&owner).mcp().with_session(Some(&longest));
    let first = mcp.call("service.delete", json!({"service": "api"})).await;
    assert_eq!(first.status, 404, "{}", first.text);
    assert_eq!(first.json["error"]["code"], -32600, "{}", first.text);
    assert_eq!(
        first.json["error"]["message"], "Session not found",
        "{}",
        first.text
    );
    // A session the gateway saw opened reaches the gate, bound to the challenge.
    let mut mcp = server.api(&owner).session().await;
    let first = mcp.call("service.delete", json!({"service": "api"})).await;
    assert_eq!(
        first.tool_code(),
        Some("CONFIRMATION_REQUIRED"),
        "{}",
        first.text
    );
    assert_eq!(first.header("mcp-session-id"), mcp.session.as_deref());
    let challenge = first.json["result"]["structuredContent"]["challenge"].clone();
    let done = mcp
        .call(
            "service.delete",
            json!({"service": "api", "confirm": {"challenge": challenge, "target": "api"}}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(!done.is_tool_error(), "{}", done.text);
}

/// The `echo` example (answers every JSON body with itself) on a free port; its URL.
async fn echo_upstream() -> (Process, String) {
    let mut cmd = clean_command(&example("echo"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let mut process = Process::spawn(cmd);
    let addr = process.announced("echo", "echo serving at http://").await;
    (process, format!("http://{addr}/mcp"))
}

const POLICY: &str = r#"
[scopes]
"docs:read" = "Read the documentation resources"
"docs:watch" = "Subscribe to documentation changes"

[methods]
resources = ["docs:read"]
"resources/subscribe" = ["docs:read", "docs:watch"]
completion = []

[tools."docs.search"]
scopes = ["docs:read"]
"#;

#[tokio::test]
async fn every_method_is_policed_by_the_methods_table() {
    let (_echo, upstream) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let policy = policy.to_str().unwrap();
    let database = format!("sqlite://{}", dir.path().join("keygate.db").display());
    let out = keygate_e2e::bootstrap(&database, "acme", "ada", &["--policy", policy]);
    out.expect_code(0);
    let owner = out.stdout.trim().to_owned();
    let server = Server::start(ServerOptions::default().database(&database).args(&[
        "--upstream",
        &upstream,
        "--policy",
        policy,
    ]));
    let api = server.api(&owner);
    let (_, reader) = api.new_tenant_key("r", &["docs:read"]).await;
    let (_, nobody) = api.new_tenant_key("n", &[]).await;
    for (key, method, allowed) in [
        (&reader, "resources/list", true),
        (&reader, "resources/read", true),
        (&reader, "resources/subscribe", false),
        (&owner, "resources/subscribe", true),
        (&nobody, "resources/read", false),
        (&nobody, "completion/complete", true),
        (&owner, "prompts/list", false),
        (&owner, "prompts/get", false),
        (&owner, "tasks/get", false),
        (&owner, "foo/bar", false),
        (&nobody, "ping", true),
        (&nobody, "logging/setLevel", true),
        (&nobody, "notifications/initialized", true),
    ] {
        let mut mcp = Mcp::new(&server.url("/api/mcp"), key);
        let a = mcp.rpc(method, json!({"uri": "docs://intro"})).await;
        if allowed {
            // The echo upstream answers the forwarded request itself.
            assert_eq!(a.status, 200, "{method}: {}", a.text);
            assert_eq!(
                a.json["method"], method,
                "{method} was not forwarded: {}",
                a.text
            );
        } else {
            assert_eq!(a.status, 403, "{method}: {}", a.text);
            assert_eq!(a.text, DENIED, "{method}");
        }
    }
    // An answer to a server request has no method and passes.
    let mcp = Mcp::new(&server.url("/api/mcp"), &nobody);
    let answer = json!({"jsonrpc":"2.0","id":"srv-1","result":{"action":"decline"}});
    let a = mcp.send(&answer).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, answer);
}

#[tokio::test]
async fn the_demo_denies_methods_its_policy_does_not_map() {
    let server = Server::demo();
    let owner = server.owner_key();
    let mut mcp = server.api(&owner).session().await;
    for method in [
        "resources/list",
        "resources/read",
        "prompts/list",
        "completion/complete",
    ] {
        let a = mcp.rpc(method, json!({})).await;
        assert_eq!(a.status, 403, "{method}: {}", a.text);
        assert_eq!(a.text, DENIED, "{method}");
    }
    assert_eq!(mcp.rpc("ping", json!({})).await.status, 200);
}
