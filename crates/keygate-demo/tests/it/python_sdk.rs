//! The official Python SDK (`mcp` 2.3) against the demo served on loopback: `auto`
//! negotiates 2026-07-28 through `server/discover`, `legacy` the newest stateful
//! revision through `initialize`, and a pinned 2026-07-28 works without a probe.
//!
//! The interpreter is `KEYGATE_TEST_PYTHON`, else the workspace's
//! `tests/peers/.venv/bin/python` (see tests/peers/README.md); it must import `mcp`.
//! Without one the test prints a note and passes, except under `CI=true`, where it
//! fails.

use std::time::Duration;

use keygate_demo::{Platform, router};
use serde_json::Value;

/// Connects in each mode and prints one JSON line per mode.
const SCRIPT: &str = r#"
import asyncio, json, sys
from mcp import Client

async def run(url, mode):
    async with Client(url, mode=mode) as c:
        tools = await c.list_tools()
        res = await c.call_tool("service.status", {"service": "worker"})
        sc = res.structured_content or {}
        return {"mode": mode, "version": c.protocol_version, "tools": len(tools.tools),
                "is_error": res.is_error, "service": sc.get("service")}

async def main():
    for mode in sys.argv[2:]:
        print(json.dumps(await run(sys.argv[1], mode)), flush=True)

asyncio.run(main())
"#;

fn python() -> Option<String> {
    let python = std::env::var("KEYGATE_TEST_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/peers/.venv/bin/python"
        )
        .to_owned()
    });
    let usable = std::process::Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    usable.then_some(python)
}

#[tokio::test]
async fn the_python_sdk_negotiates_every_revision() {
    let Some(python) = python() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Python with the `mcp` SDK (set KEYGATE_TEST_PYTHON)"
        );
        eprintln!("note: no Python with the `mcp` SDK (set KEYGATE_TEST_PYTHON); skipped");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router(Platform::new()))
            .await
            .unwrap();
    });
    let child = tokio::process::Command::new(&python)
        .args(["-c", SCRIPT, &url, "auto", "legacy", "2026-07-28"])
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env("NO_PROXY", "127.0.0.1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("the Python client finished within 60 s")
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let runs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let versions: Vec<&str> = runs
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["2026-07-28", "2025-11-25", "2026-07-28"],
        "{stdout}"
    );
    for run in &runs {
        assert_eq!(run["tools"], 15, "{run}");
        assert_eq!(run["is_error"], false, "{run}");
        assert_eq!(run["service"], "worker", "{run}");
    }
}
