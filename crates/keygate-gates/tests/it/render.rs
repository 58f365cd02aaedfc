//! The MCP tool results and audit details of decisions.

use keygate_gates::{Confirm, FailureHistory, GateCall};
use serde_json::{Value, json};

use crate::util::{challenge, delete_gate, fixture, replace_gate};

/// The tool result refusing a call: `text` as its one content item, `structured` as
/// its structured content.
fn refusal(text: &str, structured: Value) -> Value {
    json!({
        "isError": true,
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
    })
}

/// k1 in s1 calling `service.delete` on `target`.
fn delete(target: &str) -> GateCall<'_> {
    GateCall::new("k1", Some("s1"), "service.delete", target)
}

#[tokio::test]
async fn confirmation_required_renders_exactly() {
    let f = fixture();
    let d = f
        .decide(
            &delete_gate(),
            &delete("worker").with_arguments(&json!({"service": "worker", "project": "ops"})),
        )
        .await;
    let c = challenge(&d);
    let text = format!(
        "Deleting service `worker` removes it and its data permanently. Arguments: {{\"project\":\"ops\",\"service\":\"worker\"}}. To proceed, call service.delete again with exactly these arguments and confirm = {{\"challenge\":\"{c}\",\"target\":\"worker\"}} after the user has approved deleting `worker` with these arguments in this conversation. The challenge works once, only in this session and with these arguments, and expires at 2025-06-01T12:05:00Z."
    );
    assert_eq!(
        d.to_tool_result().expect("refused"),
        refusal(
            &text,
            json!({
                "code": "CONFIRMATION_REQUIRED",
                "operation": "service.delete",
                "target": "worker",
                "arguments": {"service": "worker", "project": "ops"},
                "message": text,
                "challenge": c,
                "expires_at": "2025-06-01T12:05:00Z",
            })
        )
    );
    assert_eq!(d.audit_action(), "gate.confirmation_required");
    assert_eq!(d.audit_target(), "service.delete:worker");
    let detail = d.audit_detail();
    assert_eq!(detail["key_id"], "k1");
    assert_eq!(detail["session_id"], "s1");
    assert_eq!(detail["code"], "CONFIRMATION_REQUIRED");
    assert_eq!(
        detail["arguments_sha256"].as_str().map(str::len),
        Some(64),
        "{detail}"
    );
    assert!(
        !detail.to_string().contains("ops"),
        "no argument values: {detail}"
    );
    assert!(
        !detail.to_string().contains(&c),
        "the audit log never holds a challenge"
    );
}

#[tokio::test]
async fn diagnosis_required_renders_the_missing_evidence() {
    let f = fixture();
    f.record_evidence("k1", "s1", "service.events", "api").await;
    let history = FailureHistory::Failed {
        failed_deploys: Some(3),
        state: Some("failed".to_owned()),
    };
    let d = f
        .decide_after(
            &replace_gate(),
            &GateCall::new("k1", Some("s1"), "service.replace", "api")
                .with_arguments(&json!({"service": "api", "image": "shop/api:2"})),
            &history,
        )
        .await;
    let result = d.to_tool_result().expect("refused");
    let text = "`api` has failed before (3 failed deploys, state: failed). Replacing service `api` discards its current deployment, image and configuration for good, and replacing does not fix whatever made it fail. First find out why: call service.events, service.logs.build and service.logs.runtime for `api` in this session and explain the cause to the user. Not read yet: service.logs.build and service.logs.runtime. Then call service.replace again with the arguments to run ({\"image\":\"shop/api:2\",\"service\":\"api\"}) to get a confirmation challenge.";
    assert_eq!(
        result,
        refusal(
            text,
            json!({
                "code": "DIAGNOSIS_REQUIRED",
                "operation": "service.replace",
                "target": "api",
                "arguments": {"service": "api", "image": "shop/api:2"},
                "message": text,
                "evidence_missing": ["service.logs.build", "service.logs.runtime"],
            })
        )
    );
    assert_eq!(
        d.audit_detail()["evidence_missing"],
        json!(["service.logs.build", "service.logs.runtime"])
    );
}

#[tokio::test]
async fn blocked_and_invalid_render_their_arguments_and_reason() {
    let f = fixture();
    let d = f.decide(&delete_gate(), &delete("keygate")).await;
    let r = d.to_tool_result().expect("refused");
    let sc = r["structuredContent"].as_object().expect("object");
    assert_eq!(sc.len(), 5, "{sc:?}");
    assert_eq!(sc["code"], "SELF_SERVICE_BLOCKED");
    assert_eq!(sc["arguments"], json!({}));
    assert_eq!(
        sc["message"],
        "Deleting service `keygate` is blocked: `keygate` is protected (it runs this gateway), so it cannot be confirmed from an agent session. Arguments: {}. Nothing was changed; a person must do this directly, outside the agent."
    );
    assert_eq!(d.audit_action(), "gate.self_service_blocked");

    let d = f
        .decide(
            &delete_gate(),
            &delete("w")
                .with_arguments(
                    &json!({"service": "w", "confirm": {"challenge": "nope", "target": "w"}}),
                )
                .with_confirm(Confirm::new("nope", "w")),
        )
        .await;
    let r = d.to_tool_result().expect("refused");
    let sc = r["structuredContent"].as_object().expect("object");
    assert_eq!(sc.len(), 6, "{sc:?}");
    assert_eq!(sc["code"], "CONFIRMATION_INVALID");
    assert_eq!(sc["reason"], "unknown_challenge");
    assert_eq!(sc["arguments"], json!({"service": "w"}));
    assert_eq!(r["content"][0]["text"], sc["message"]);
    assert_eq!(d.audit_detail()["reason"], "unknown_challenge");
}
