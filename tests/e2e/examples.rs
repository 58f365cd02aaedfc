//! The example programs, built by the harness and run as a user would.

use std::time::Duration;

use keygate_e2e::{Mcp, Process, Server, clean_command, example};
use serde_json::json;

/// Runs the example `name` with `--self-test` in `dir`: it must pass within 30 s.
fn assert_self_test_passes(name: &str, dir: &std::path::Path) {
    let mut cmd = clean_command(&example(name));
    cmd.arg("--self-test").current_dir(dir);
    let mut process = Process::spawn(cmd);
    let status = process.wait_timeout(Duration::from_secs(30));
    assert!(
        status.success(),
        "{name} --self-test: {status}; stderr:\n{}",
        process.stderr()
    );
}

#[test]
fn axum_protected_passes_its_self_test() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    assert_self_test_passes("axum-protected", dir.path());
}

/// The demo platform on a free port, and its MCP URL.
async fn demo_platform() -> (Process, String) {
    let mut cmd = clean_command(&example("demo-platform"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info");
    let mut process = Process::spawn(cmd);
    // "demo platform serving MCP at http://ADDR/mcp (no authentication)"
    let addr = process
        .announced("demo-platform", "serving MCP at http://")
        .await;
    (process, format!("http://{addr}/mcp"))
}

#[tokio::test]
async fn demo_platform_serves_mcp() {
    let (mut process, url) = demo_platform().await;
    // No authentication: the key is ignored.
    let mut mcp = Mcp::new(&url, "unused");
    mcp.initialize().await;
    let names = mcp.tool_names().await;
    assert_eq!(names.len(), 15, "{names:?}");
    assert!(names.contains(&"service.delete".to_owned()));
    let status = mcp
        .call_ok("service.status", json!({"service":"worker"}))
        .await;
    assert_eq!(status["has_failure_history"], true, "{status}");
    process.kill();
}

/// Runs `agent-startup-check --server URL ARGS…` with `env` in `dir` until it exits;
/// returns its exit code and everything it printed once `expect` shows up on stderr
/// (the output pipes are read by threads, so they may trail the exit a little).
fn startup_check(
    server: &str,
    args: &[&str],
    env: &[(&str, &str)],
    dir: &std::path::Path,
    expect: &str,
) -> (i32, String) {
    let mut cmd = clean_command(&example("agent-startup-check"));
    cmd.args(["--server", server])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir);
    let mut process = Process::spawn(cmd);
    let status = process.wait_timeout(Duration::from_secs(30));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !process.stderr().contains(expect) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = format!("{}{}", process.stdout(), process.stderr());
    assert!(
        output.contains(expect),
        "agent-startup-check {args:?} ({status}) never said {expect:?}:\n{output}"
    );
    (status.code().unwrap_or(-1), output)
}

#[tokio::test]
async fn agent_startup_check_starts_only_with_a_one_project_key() {
    let server = Server::demo();
    let owner = server.owner_key();
    let api = server.api(&owner);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let here = dir.path();
    let once = ["--once"];
    // `--once` against this server, with `key` in KEYGATE_API_KEY.
    let with_key = |key: &str, expect: &str| {
        startup_check(
            &server.base,
            &once,
            &[("KEYGATE_API_KEY", key)],
            here,
            expect,
        )
    };

    let (code, _) = startup_check(
        &server.base,
        &once,
        &[],
        here,
        "No authentication found: set KEYGATE_API_KEY or add it to the env block in .mcp.json",
    );
    assert_eq!(code, 1);

    // The demo owner key reaches both demo projects.
    let (code, output) = with_key(
        &owner,
        "Token accesses 2 projects; use project-scoped token",
    );
    assert_eq!(code, 1, "{output}");
    assert!(!output.contains(&owner), "the key was printed:\n{output}");

    let (_, nowhere) = api.new_user_key("nowhere", &["services:read"], &[]).await;
    let (code, _) = with_key(&nowhere, "Token has no project access");
    assert_eq!(code, 1);

    // One project that may write: starts, without a warning, never printing the key.
    let (writer_id, writer) = api
        .new_user_key("agent", &["services:read", "services:write"], &["shop"])
        .await;
    let (code, output) = with_key(&writer, "ready: project shop");
    assert_eq!(code, 0, "{output}");
    assert!(!output.contains("warning"), "{output}");
    assert!(!output.contains(&writer), "the key was printed:\n{output}");
    assert!(
        output.contains(&writer_id),
        "the redacted key names its id:\n{output}"
    );

    // Read-only: starts with a warning.
    let (_, reader) = api
        .new_key(json!({"name":"reader","kind":"tenant","scopes":["services:read","customers:read"],"projects":["ops"]}))
        .await;
    let (code, output) = with_key(&reader, "ready: project ops");
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("warning: this key is read-only"),
        "{output}"
    );

    // From the env block of .mcp.json.
    let mcp_json = json!({"mcpServers": {"shop": {"type":"http","url": server.url("/api/mcp"), "env": {"KEYGATE_API_KEY": writer}}}});
    std::fs::write(here.join(".mcp.json"), mcp_json.to_string()).expect("written");
    let (code, output) = startup_check(
        &server.base,
        &["--mcp-json", ".mcp.json", "--mcp-server", "shop", "--once"],
        &[],
        here,
        "ready: project shop",
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(".mcp.json"),
        "names where the key came from:\n{output}"
    );

    // Revoked: refused with the reason.
    api.revoke(&writer_id).await;
    let (code, _) = with_key(&writer, "AUTH_TOKEN_EXPIRED: key_revoked");
    assert_eq!(code, 1);

    // A server that cannot be asked is not a verdict on the key: exit 2.
    let (code, _) = startup_check(
        "http://127.0.0.1:9",
        &once,
        &[("KEYGATE_API_KEY", &reader)],
        here,
        "cannot reach the keygate server",
    );
    assert_eq!(code, 2);
}

#[tokio::test]
async fn agent_startup_check_keeps_serving_after_a_good_check() {
    let server = Server::demo();
    let api = server.api(&server.owner_key());
    let (_, key) = api
        .new_user_key("agent", &["services:read"], &["shop"])
        .await;
    let mut cmd = clean_command(&example("agent-startup-check"));
    cmd.args(["--server", &server.base])
        .env("KEYGATE_API_KEY", &key);
    let mut process = Process::spawn(cmd);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !process.stderr().contains("serving project shop") {
        assert!(
            process.try_wait().is_none(),
            "agent-startup-check exited; stderr:\n{}",
            process.stderr()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "agent-startup-check did not start serving; stderr:\n{}",
            process.stderr()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    process.kill();
}

#[test]
fn gated_tool_server_passes_its_self_test() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    assert_self_test_passes("gated-tool-server", dir.path());
}

/// The benchmark's bare proxy forwards a whole MCP session (its session header both
/// ways) to the demo platform, and answers 502 once the upstream is gone.
#[tokio::test]
async fn the_bare_proxy_forwards_an_mcp_session() {
    let (mut demo, demo_url) = demo_platform().await;
    let mut cmd = clean_command(&example("proxy"));
    cmd.args(["--listen", "127.0.0.1:0", "--upstream", &demo_url]);
    let mut proxy = Process::spawn(cmd);
    // "proxy serving at http://ADDR/ -> UPSTREAM"
    let addr = proxy.announced("proxy", "proxy serving at http://").await;
    let url = format!("http://{addr}/mcp");
    let mut mcp = Mcp::new(&url, "unused");
    mcp.initialize().await;
    assert_eq!(mcp.tool_names().await.len(), 15);
    let status = mcp
        .call_ok("service.status", json!({"service":"worker"}))
        .await;
    assert_eq!(status["has_failure_history"], true, "{status}");
    demo.kill();
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(resp.status(), 502);
    proxy.kill();
}
