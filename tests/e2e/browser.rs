//! The settings page in a real headless Chromium: runs `tests/browser/settings.mjs` and
//! `tests/browser/approvals.mjs` (see their README) against a freshly spawned
//! `keygated --demo` each.
//!
//! Needs `node`, `/usr/bin/chromium` (or `KEYGATE_CHROMIUM`) and `tests/browser/node_modules`
//! (`npm ci`); without them the test prints a note and passes, except under CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keygate_e2e::{Process, Server, under_ci, workspace_dir};

const BUDGET: Duration = Duration::from_secs(90);

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// What is missing to run the browser test, if anything.
fn missing(browser_dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if on_path("node").is_none() {
        missing.push("`node` on PATH".to_owned());
    }
    let chromium = std::env::var_os("KEYGATE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        missing.push(format!("Chromium at {}", chromium.display()));
    }
    if !browser_dir
        .join("node_modules")
        .join("playwright-core")
        .is_dir()
    {
        missing.push("tests/browser/node_modules (run `npm ci` there)".to_owned());
    }
    missing
}

/// Runs `script` from `tests/browser` against a fresh `keygated --demo` with the demo owner
/// key, and checks it passed and saved `screenshot` (under `target/`).
fn run_script(script: &str, screenshot: &str, pass: &str) {
    let browser_dir = workspace_dir().join("tests").join("browser");
    let missing = missing(&browser_dir);
    if !missing.is_empty() {
        let list = missing.join(", ");
        assert!(!under_ci(), "the browser test needs {list} under CI");
        eprintln!("note: skipping the browser test; missing {list}");
        return;
    }
    let server = Server::demo();
    let owner = server.owner_key();
    let screenshot = workspace_dir().join("target").join(screenshot);
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .current_dir(&browser_dir)
        .env("KEYGATE_URL", &server.base)
        .env("KEYGATE_OWNER_KEY", &owner)
        .env("KEYGATE_SCREENSHOT", &screenshot);
    let mut node = Process::spawn(cmd);
    let status = node.wait_timeout(BUDGET);
    let (stdout, stderr) = (node.stdout(), node.stderr());
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.logs()
    );
    assert!(stderr.contains(pass), "{stderr}");
    assert!(
        screenshot.is_file(),
        "a screenshot at {}",
        screenshot.display()
    );
}

#[test]
fn settings_page_in_a_real_browser() {
    run_script("settings.mjs", "settings-api.png", "PASS: settings page");
}

/// A person-gated `service.delete` by a tenant key waits on `/approvals/<id>`; the owner
/// signs in there with their own key, types the name and approves; the agent's identical
/// retry runs once. Screenshot: `target/approval-page.png`.
#[test]
fn approval_page_in_a_real_browser() {
    run_script("approvals.mjs", "approval-page.png", "PASS: approval page");
}
