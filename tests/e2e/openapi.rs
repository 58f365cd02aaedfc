//! schemathesis (pinned in `tests/peers/requirements.txt`) against a running
//! `keygated --demo`, from the server's own `GET /api/v1/openapi.json`: every answer
//! must be no 5xx, a status the document lists for the operation, the content type
//! and the body schema it gives, with the headers it says; requests the document calls
//! invalid, without a key, or with a method it does not list must be refused. Every
//! check of schemathesis runs (its default) but `positive_data_acceptance`: whether a
//! schema-valid body is accepted depends on state the document cannot hold (the
//! policy's scopes, the tenant's projects, the clock).
//!
//! The run is bounded (a few examples per operation, a fixed seed, one worker, a hard
//! 60 s budget). It has a key of its own (a second owner key), and the operations on
//! `/api/v1/keys/{id}` get the id of a key made for them: get, revoke and rotate answer
//! with real records, and cannot take away the demo owner's key, which the test checks
//! still works afterwards. Those on `/api/v1/approvals/{id}` get a real approval (the
//! owner's call of a gated tool) to read, approve with generated names, and deny. Key creation gets a scope of the demo policy so that it can
//! succeed (the scopes are the policy's, not in the document).

use std::process::Command;
use std::time::Duration;

use keygate_e2e::{Server, under_ci};
use keygate_test::LeakSigner;
use serde_json::json;

use crate::peers::{python, run_bounded, tail};

/// The longest the whole schemathesis run may take.
const RUN_BUDGET: Duration = Duration::from_secs(60);

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
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Leak reports configured, so that their route checks signatures (schemathesis has
    // none it could sign: every report of the run is refused, nothing is revoked).
    let leak_keys = dir.path().join("leak-report-keys.json");
    let file = LeakSigner::new().key_file("schemathesis");
    std::fs::write(&leak_keys, file.to_string()).expect("a key file");
    // Rates high enough that the run is not mostly 429s (which the document lists): it
    // sends requests without a key and reports it cannot sign, failures an address is
    // otherwise refused after 60 a minute.
    let server = Server::demo_with(&[
        "--key-rate",
        "1000",
        "--tenant-rate",
        "1000",
        "--auth-failure-rate",
        "100000",
        "--leak-report-keys",
        leak_keys.to_str().expect("a UTF-8 path"),
    ]);
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let me = admin.introspect().await;
    assert_eq!(me.status, 200, "{}", me.text);
    let scopes = me.json["scopes"].clone();
    let (_, key) = admin
        .new_key(json!({"name": "schemathesis", "kind": "user", "scopes": scopes}))
        .await;
    let (target, _) = admin.new_tenant_key("target", &["services:read"]).await;
    // A call the demo's person gate holds: an approval for schemathesis's key to decide.
    let mut mcp = admin.mcp();
    mcp.initialize().await;
    let held = mcp.call("service.delete", json!({"service": "web"})).await;
    assert_eq!(held.tool_code(), Some("APPROVAL_REQUIRED"), "{}", held.text);
    let approval = held.json["result"]["structuredContent"]["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();

    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            r#"[checks]
positive_data_acceptance.enabled = false

# Forward-auth answers any method, as a proxy may ask with any: OpenAPI 3.1 lists
# eight, and cannot say "and every other one". Its checks name the demo's scope and
# project, so that it can answer 200.
[[operations]]
include-path = "/auth/verify"
checks.unsupported_method.enabled = false
parameters = {{ "query.scope" = "services:read", "query.project" = "shop" }}

[[operations]]
include-path-regex = "^/api/v1/keys/"
parameters = {{ "path.id" = "{target}" }}

[[operations]]
include-path-regex = "^/api/v1/approvals/"
parameters = {{ "path.id" = "{approval}" }}

[[operations]]
include-name = "POST /api/v1/keys"
parameters = {{ "body.scopes" = ["services:read"] }}
"#
        ),
    )
    .expect("a schemathesis config");
    let config = config.to_str().expect("a UTF-8 path");
    let url = server.url("/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {key}");
    let mut cmd = schemathesis(&[
        "--config-file",
        config,
        "--no-color",
        "run",
        &url,
        "--header",
        &auth,
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
    assert!(tested >= 23, "only {tested} operations tested:\n{report}");
    let cases = report
        .lines()
        .find_map(|l| l.trim().split_once(" generated, ")?.0.parse::<u32>().ok())
        .unwrap_or_default();
    assert!(cases >= 200, "only {cases} test cases:\n{report}");
    assert!(
        !report.contains("Rate limited:"),
        "429s hid the API:\n{report}"
    );
    // The demo owner's key survived whatever the run revoked and rotated; the run did
    // reach the target key (revoked it).
    let after = admin.introspect().await;
    assert_eq!(after.status, 200, "{}", after.text);
    let target = admin.get(&format!("/api/v1/keys/{target}")).await;
    assert!(target.json["revoked_at"].is_string(), "{}", target.text);
    // And it decided the approval.
    let decided = server
        .api(&key)
        .get(&format!("/api/v1/approvals/{approval}"))
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    assert_ne!(decided.json["status"], "pending", "{}", decided.text);
}
