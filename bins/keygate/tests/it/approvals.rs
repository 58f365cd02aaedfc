//! `keygate approvals list|approve|deny` against a canned server speaking the approvals
//! contract.

use keygate_token::{KeyKind, Token};
use serde_json::{Value, json};

use crate::fake::Fake;
use crate::{KEY_REVOKED, assert_contains_all, assert_exit_saying, key, keygate, stderr, stdout};

fn approval(status: &str, target: &str) -> Value {
    json!({
        "id": "ap_7f3k", "status": status, "operation": "service.delete",
        "tool": "service.delete", "target": target, "arguments": {"service": target},
        "key": {"id": "AAAAAAAAAAAA", "name": "deploy-agent"}, "user": null,
        "created_at": "2026-12-01T10:00:00Z", "expires_at": "2026-12-01T10:05:00Z",
        "decided_by": if status == "pending" { Value::Null } else { json!({"id": "u1", "name": "ada"}) },
    })
}

/// `keygate approvals ARGS…` against `fake`, presenting `approver`.
fn run(fake: &Fake, approver: &Token, args: &[&str]) -> std::process::Output {
    fake.run(approver, &[&["approvals"][..], args].concat())
}

#[test]
fn list_prints_a_table_or_json_of_pending_approvals() {
    let approver = key("kg", KeyKind::User);
    let listing = json!({"approvals": [approval("pending", "web")]}).to_string();
    let fake = Fake::serve(vec![(200, listing.clone()), (200, listing)]);
    let out = run(&fake, &approver, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["ID", "OPERATION", "TARGET", "KEY", "EXPIRES"]
    );
    let row = lines.next().unwrap();
    assert_contains_all(
        row,
        &[
            "ap_7f3k",
            "service.delete",
            "web",
            "deploy-agent (AAAAAAAAAAAA)",
            "2026-12-01 10:05Z",
        ],
    );
    let out = run(&fake, &approver, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc[0]["target"], "web");
    assert_eq!(doc[0]["arguments"], json!({"service": "web"}));
    let seen = fake.finish();
    seen[0].assert_sent("GET /api/v1/approvals HTTP/1.1", &approver);
}

#[test]
fn an_agents_target_cannot_drive_the_terminal() {
    let approver = key("kg", KeyKind::User);
    let listing = json!({"approvals": [approval("pending", "web\u{1b}[2J")]}).to_string();
    let fake = Fake::serve(vec![(200, listing)]);
    let out = run(&fake, &approver, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains(r"web\u{1b}[2J"), "{text}");
    fake.finish();
}

#[test]
fn approve_sends_the_typed_target_and_deny_sends_nothing_else() {
    let approver = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![
        (200, approval("approved", "web").to_string()),
        (200, approval("denied", "web").to_string()),
    ]);
    let out = run(&fake, &approver, &["approve", "ap_7f3k", "--target", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("approved ap_7f3k (service.delete web"),
        "{err}"
    );
    assert!(err.contains("identical retry now proceeds once"), "{err}");
    let out = run(&fake, &approver, &["deny", "ap_7f3k"]);
    assert_exit_saying(&out, 0, "denied ap_7f3k");
    let seen = fake.finish();
    assert_eq!(
        seen[0].line,
        "POST /api/v1/approvals/ap_7f3k/approve HTTP/1.1"
    );
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent, json!({"target": "web"}));
    assert_eq!(seen[1].line, "POST /api/v1/approvals/ap_7f3k/deny HTTP/1.1");
    assert_eq!(seen[1].body, "{}");
}

#[test]
fn an_id_is_one_path_segment() {
    let approver = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![(404, r#"{"error":"not_found"}"#.to_owned())]);
    let out = run(&fake, &approver, &["deny", "../../keys/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        fake.finish()[0].line,
        "POST /api/v1/approvals/..%2F..%2Fkeys%2Fx/deny HTTP/1.1"
    );
}

#[test]
fn refusals_say_what_the_approver_can_do() {
    let approver = key("kg", KeyKind::User);
    let fake = Fake::serve(vec![
        (403, r#"{"error":"insufficient_scope"}"#.to_owned()),
        (422, r#"{"error":"target_mismatch"}"#.to_owned()),
        (
            409,
            r#"{"error":"conflict","message":"approval is denied"}"#.to_owned(),
        ),
        (404, r#"{"error":"not_found"}"#.to_owned()),
        (401, KEY_REVOKED.to_owned()),
    ]);
    let cases: [(&[&str], &str); 5] = [
        (
            &["approve", "ap_1", "--target", "web"],
            "this key cannot approve: it needs gates:approve and must not be the key that asked",
        ),
        (
            &["approve", "ap_1", "--target", "Web"],
            "the name does not match the approval's target exactly",
        ),
        (
            &["deny", "ap_1"],
            "this approval is closed: it was already decided, used, or it expired (approval is denied)",
        ),
        (
            &["deny", "ap_1"],
            "not found: no such approval for this key",
        ),
        (&["list"], "the key was revoked (key_revoked)"),
    ];
    for (args, wanted) in cases {
        let out = run(&fake, &approver, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(wanted), "{args:?}: {err}");
        assert!(!err.contains(approver.expose()));
        assert!(stdout(&out).is_empty());
    }
    fake.finish();
}

#[test]
fn without_a_key_nothing_is_sent() {
    let out = keygate()
        .args(["approvals", "list", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("KEYGATE_API_KEY is not set: export your own user key with gates:approve"),
        "{}",
        stderr(&out)
    );
}
