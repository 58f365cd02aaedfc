//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16, every
//! server scenario: `--suite all`) against the Python SDK test upstream, once directly and
//! once through keygated with its default settings. Every check that succeeds directly
//! must succeed through the gateway; both tables are printed.
//!
//! The suite cannot send an Authorization header, so the run through keygated loads
//! `tests/peers/keygate-auth-hook.mjs`, which adds the key to the suite's requests for the
//! gateway's URL (nothing else changes). Node 20 runs the suite through
//! `tests/peers/node20-fs-hook.mjs` (see there).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::peers::{Gateway, Need, PeerServer, available, peers_dir, run_bounded, tail};

/// One full run of the suite may take this long (about 5 s on a developer machine).
const SUITE_BUDGET: Duration = Duration::from_secs(120);

/// scenario → check id → status (`SUCCESS`, `FAILURE`, `WARNING`, `INFO`), joined with
/// `+` when a scenario reports one id several times.
type Results = BTreeMap<String, BTreeMap<String, String>>;

/// Runs `conformance server --url URL --suite all -o DIR` and reads every `checks.json`.
fn run_suite(url: &str, auth: Option<&str>) -> Results {
    let out = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = Command::new("node");
    cmd.current_dir(peers_dir()).args([
        "--import",
        "./node20-fs-hook.mjs",
        "--import",
        "./keygate-auth-hook.mjs",
        "node_modules/@modelcontextprotocol/conformance/dist/index.js",
        "server",
        "--url",
        url,
        "--suite",
        "all",
        "-o",
    ]);
    cmd.arg(out.path());
    cmd.env_remove("KEYGATE_PEER_AUTHORIZATION")
        .env_remove("KEYGATE_PEER_AUTH_URL");
    if let Some(key) = auth {
        cmd.env("KEYGATE_PEER_AUTHORIZATION", format!("Bearer {key}"))
            .env("KEYGATE_PEER_AUTH_URL", url);
    }
    let run = run_bounded(cmd, SUITE_BUDGET);
    let results = read_results(out.path());
    assert!(
        !results.is_empty(),
        "the suite wrote no results ({}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    results
}

/// Directories are `server-<scenario>-<timestamp>`; each holds `checks.json`.
fn read_results(dir: &Path) -> Results {
    let mut results = Results::new();
    for entry in std::fs::read_dir(dir)
        .expect("the output directory")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("server-") else {
            continue;
        };
        // The timestamp is `YYYY-MM-DDTHH-MM-SS-mmmZ`: six dash-separated parts.
        let parts: Vec<&str> = rest.split('-').collect();
        let Some(scenario) = parts.len().checked_sub(6).map(|n| parts[..n].join("-")) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("checks.json")) else {
            continue;
        };
        let checks: Value = serde_json::from_str(&text).expect("checks.json is JSON");
        let table = results.entry(scenario).or_default();
        for check in checks.as_array().into_iter().flatten() {
            let (Some(id), Some(status)) = (check["id"].as_str(), check["status"].as_str()) else {
                continue;
            };
            // Request, response and stream logs are INFO entries, not checks.
            if id.starts_with("incoming-") || id.starts_with("outgoing-") || id == "stream-closed" {
                continue;
            }
            table
                .entry(id.to_owned())
                .and_modify(|s| {
                    s.push('+');
                    s.push_str(status);
                })
                .or_insert_with(|| status.to_owned());
        }
    }
    results
}

fn table(title: &str, results: &Results) -> String {
    let mut out = format!("{title}\n");
    for (scenario, checks) in results {
        for (id, status) in checks {
            out.push_str(&format!("  {scenario:<32} {id:<48} {status}\n"));
        }
    }
    out
}

fn successes(results: &Results) -> usize {
    results
        .values()
        .flat_map(BTreeMap::values)
        .filter(|s| s.as_str() == "SUCCESS")
        .count()
}

#[test]
fn every_check_that_passes_directly_passes_through_keygated() {
    if !available("the conformance suite", Need::PythonAndNode) {
        return;
    }
    let upstream = PeerServer::start();
    let direct = run_suite(&upstream.url, None);
    let gateway = Gateway::start(&upstream.url, &[]);
    let through = run_suite(&gateway.mcp_url(), Some(&gateway.key));
    eprintln!(
        "{}{}",
        table(
            &format!(
                "conformance, direct ({} checks succeed):",
                successes(&direct)
            ),
            &direct
        ),
        table(
            &format!(
                "conformance, through keygated ({} checks succeed):",
                successes(&through)
            ),
            &through
        )
    );
    assert!(
        successes(&direct) >= 40,
        "the test upstream itself fails the suite; upstream log:\n{}",
        upstream.logs()
    );
    let mut lost = Vec::new();
    for (scenario, checks) in &direct {
        for (id, status) in checks {
            if status != "SUCCESS" {
                continue;
            }
            let got = through
                .get(scenario)
                .and_then(|c| c.get(id))
                .map_or("missing", String::as_str);
            if got != "SUCCESS" {
                lost.push(format!("{scenario} / {id}: {got}"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "checks that pass directly but not through keygated:\n  {}\ngateway log (tail):\n{}",
        lost.join("\n  "),
        tail(&gateway.server.logs(), 40)
    );
}
