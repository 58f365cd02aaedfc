//! The example programs, built by the harness and run as a user would.

use std::time::Duration;

use keygate_e2e::{Mcp, Process, clean_command, example};
use serde_json::json;

#[test]
fn axum_protected_passes_its_self_test() {
    let mut cmd = clean_command(&example("axum-protected"));
    cmd.arg("--self-test");
    let dir = tempfile::tempdir().expect("a temporary directory");
    cmd.current_dir(dir.path());
    let mut process = Process::spawn(cmd);
    let status = process.wait_timeout(Duration::from_secs(30));
    assert!(
        status.success(),
        "axum-protected --self-test: {status}; stderr:\n{}",
        process.stderr()
    );
}

#[tokio::test]
async fn demo_platform_serves_mcp() {
    let mut cmd = clean_command(&example("demo-platform"));
    cmd.args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info");
    let mut process = Process::spawn(cmd);
    // "demo platform serving MCP at http://ADDR/mcp (no authentication)"
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let url = loop {
        let logs = process.stderr();
        if let Some(url) = logs
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_once("/mcp"))
            .map(|(addr, _)| format!("http://{addr}/mcp"))
        {
            break url;
        }
        assert!(
            process.try_wait().is_none(),
            "demo-platform exited; stderr:\n{logs}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "demo-platform did not announce its address; stderr:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
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
