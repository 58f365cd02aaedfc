//! schemathesis (pinned in `tests/peers/requirements.txt`) against a running
//! `keygated --demo`, from the server's own `GET /api/v1/openapi.json`: every answer
//! must be no 5xx, a status the document lists for the operation, the content type
//! and the body schema it gives, with the headers it says.
//!
//! The run is bounded (a few examples per operation, a fixed seed, one worker, a hard
//! 60 s budget) and has a key of its own: a second owner key, so that the operations
//! that revoke and rotate keys (which schemathesis calls with generated ids, and with
//! ids of keys it created itself) cannot take away the demo owner's key; the test
//! checks that key still works afterwards.

use std::process::Command;
use std::time::Duration;

use keygate_e2e::{Server, under_ci};
use serde_json::json;

use crate::peers::{python, run_bounded, tail};

/// The longest the whole schemathesis run may take.
const RUN_BUDGET: Duration = Duration::from_secs(60);

/// The checks of the run: no server error, and no answer outside the document.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_schema_conformance,response_headers_conformance";

/// `schemathesis ARGS…` with the peers' Python.
fn schemathesis(args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.args([
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
    ])
    .args(args);
    cmd
}

/// Whether schemathesis is installed; a note (or, under CI, a failure) when it is not.
fn available() -> bool {
    let found = schemathesis(&["--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            !under_ci(),
            "the schemathesis run needs tests/peers/requirements.txt installed at {} \
             (or KEYGATE_TEST_PYTHON) under CI",
            python().display()
        );
        eprintln!("note: skipping the schemathesis run; schemathesis is not installed");
    }
    found
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    if !available() {
        return;
    }
    // Rates high enough that the run is not mostly 429s (which the document lists).
    let server = Server::demo_with(&["--key-rate", "1000", "--tenant-rate", "1000"]);
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let me = admin.introspect().await;
    assert_eq!(me.status, 200, "{}", me.text);
    let scopes = me.json["scopes"].clone();
    let (_, key) = admin
        .new_key(json!({"name": "schemathesis", "kind": "user", "scopes": scopes}))
        .await;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = server.url("/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {key}");
    let mut cmd = schemathesis(&[
        "--no-color",
        "run",
        &url,
        "--header",
        &auth,
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        "20261201",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
    ]);
    cmd.current_dir(dir.path());
    let run = run_bounded(cmd, RUN_BUDGET);
    let report = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        run.status.success(),
        "schemathesis failed ({}):\n{}\n\nkeygated:\n{}",
        run.status,
        report,
        tail(&server.logs(), 40)
    );
    // It did test the API: every operation of the document (but the document
    // itself, which schemathesis leaves out), many cases.
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_default();
    assert!(tested >= 14, "only {tested} operations tested:\n{report}");
    let cases = report
        .lines()
        .find_map(|l| l.trim().split_once(" generated"))
        .and_then(|(n, _)| n.parse::<u32>().ok())
        .unwrap_or_default();
    assert!(cases >= 200, "only {cases} test cases:\n{report}");
    // The demo owner's key survived whatever the run revoked and rotated.
    let after = admin.introspect().await;
    assert_eq!(after.status, 200, "{}", after.text);
}
