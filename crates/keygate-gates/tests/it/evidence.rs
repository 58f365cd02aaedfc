//! The evidence gate.

use keygate_gates::{
    CONFIRMATION_REQUIRED, Confirm, DIAGNOSIS_REQUIRED, FailureHistory, GateCall, InvalidReason,
    Outcome,
};
use time::Duration;

use crate::util::{EVIDENCE, challenge, fixture, replace_gate};

const TOOL: &str = "service.replace";

fn failed() -> FailureHistory {
    FailureHistory::Failed {
        failed_deploys: Some(3),
        state: Some("failed".to_owned()),
    }
}

fn missing(d: &keygate_gates::Decision) -> Vec<String> {
    match d.outcome() {
        Outcome::DiagnosisRequired {
            evidence_missing, ..
        } => evidence_missing.clone(),
        other => panic!("expected diagnosis required, got {other:?}"),
    }
}

#[tokio::test]
async fn no_failure_history_is_ungated() {
    let f = fixture();
    let spec = replace_gate();
    for history in [FailureHistory::None, FailureHistory::from(false)] {
        for session in [Some("s1"), None] {
            let d = f
                .decide_after(&spec, &GateCall::new("k1", session, TOOL, "api"), &history)
                .await;
            assert_eq!(d.outcome(), &Outcome::Allow { confirmed: false });
            assert_eq!(d.audit_action(), "gate.allowed");
        }
    }
}

#[tokio::test]
async fn failure_history_needs_evidence_then_confirmation() {
    let f = fixture();
    let spec = replace_gate();
    let h = failed();
    let call = GateCall::new("k1", Some("s1"), TOOL, "api");

    let d = f.decide_after(&spec, &call, &h).await;
    assert_eq!(d.code(), Some(DIAGNOSIS_REQUIRED));
    assert_eq!(missing(&d), EVIDENCE);

    f.record_evidence("k1", "s1", "service.events", "api").await;
    // Evidence for another target, session or key does not count.
    f.record_evidence("k1", "s1", "service.logs.build", "web")
        .await;
    f.record_evidence("k1", "s2", "service.logs.build", "api")
        .await;
    f.record_evidence("k2", "s1", "service.logs.build", "api")
        .await;
    let d = f.decide_after(&spec, &call, &h).await;
    assert_eq!(missing(&d), ["service.logs.build", "service.logs.runtime"]);

    f.record_evidence("k1", "s1", "service.logs.build", "api")
        .await;
    f.record_evidence("k1", "s1", "service.logs.runtime", "api")
        .await;
    let d = f.decide_after(&spec, &call, &h).await;
    assert_eq!(d.code(), Some(CONFIRMATION_REQUIRED));
    let c = challenge(&d);

    let confirmed = call.clone().with_confirm(Confirm::new(c.clone(), "api"));
    let d = f.decide_after(&spec, &confirmed, &h).await;
    assert_eq!(d.outcome(), &Outcome::Allow { confirmed: true });
    let d = f.decide_after(&spec, &confirmed, &h).await;
    assert_eq!(
        d.outcome(),
        &Outcome::ConfirmationInvalid {
            reason: InvalidReason::UnknownChallenge
        }
    );
}

#[tokio::test]
async fn unknown_history_is_treated_as_failure() {
    let f = fixture();
    let spec = replace_gate();
    let call = GateCall::new("k1", Some("s1"), TOOL, "api");
    let d = f.decide(&spec, &call).await;
    assert_eq!(d.code(), Some(DIAGNOSIS_REQUIRED));
    let unknown = FailureHistory::Unknown {
        reason: "the status tool timed out".to_owned(),
    };
    let d = f.decide_after(&spec, &call, &unknown).await;
    assert_eq!(d.code(), Some(DIAGNOSIS_REQUIRED));
    assert!(
        d.message()
            .expect("message")
            .contains("could not be determined (the status tool timed out)")
    );
}

#[tokio::test]
async fn evidence_goes_stale() {
    let f = fixture();
    let spec = replace_gate();
    let gates = f.gates.clone().with_evidence_ttl(Duration::minutes(10));
    for tool in EVIDENCE {
        gates
            .record_evidence("k1", "s1", tool, "api")
            .await
            .expect("record");
    }
    let call = GateCall::new("k1", Some("s1"), TOOL, "api");
    let d = gates
        .decide(&spec, &call, Some(&failed()))
        .await
        .expect("decide");
    assert_eq!(d.code(), Some(CONFIRMATION_REQUIRED));
    f.clock.advance(Duration::minutes(11));
    let d = gates
        .decide(&spec, &call, Some(&failed()))
        .await
        .expect("decide");
    assert_eq!(missing(&d), EVIDENCE);
    assert_eq!(gates.purge().await.expect("purge"), 3 + 1);
}

#[tokio::test]
async fn failure_history_without_a_session_cannot_proceed() {
    let f = fixture();
    let call = GateCall::new("k1", None, TOOL, "api");
    let d = f.decide_after(&replace_gate(), &call, &failed()).await;
    assert_eq!(
        d.outcome(),
        &Outcome::ConfirmationInvalid {
            reason: InvalidReason::NoSession
        }
    );
}

/// A person evidence gate (the default approval), as the demo's `service.replace`.
fn person_gate() -> keygate_scopes::GateSpec {
    keygate_scopes::GateSpec::evidence(
        "service",
        "service.status",
        "has_failure_history",
        EVIDENCE.iter().map(|s| (*s).to_owned()).collect(),
    )
}

async fn read_statelessly(f: &crate::util::Fixture, key: &str, target: &str) {
    for tool in EVIDENCE {
        f.gates
            .record_stateless_evidence(key, tool, target)
            .await
            .expect("record");
    }
}

#[tokio::test]
async fn stateless_evidence_counts_for_the_key_within_the_window() {
    let f = fixture();
    let spec = person_gate();
    let call = GateCall::new("k1", None, TOOL, "api");
    let d = f.decide_after(&spec, &call, &failed()).await;
    assert_eq!(
        missing(&d),
        EVIDENCE,
        "a stateless call needs evidence, not a session"
    );
    read_statelessly(&f, "k1", "api").await;
    f.clock.advance(Duration::minutes(14));
    let d = f.decide_after(&spec, &call, &failed()).await;
    assert_eq!(
        d.code(),
        Some("APPROVAL_REQUIRED"),
        "reads 14 min ago count"
    );
    f.clock.advance(Duration::minutes(2));
    let d = f.decide_after(&spec, &call, &failed()).await;
    assert_eq!(missing(&d), EVIDENCE, "reads 16 min ago do not count");
}

#[tokio::test]
async fn the_evidence_window_is_the_gates() {
    let f = fixture();
    let spec = person_gate().with_evidence_window(std::time::Duration::from_secs(5 * 60));
    read_statelessly(&f, "k1", "api").await;
    f.clock.advance(Duration::minutes(6));
    let d = f
        .decide_after(&spec, &GateCall::new("k1", None, TOOL, "api"), &failed())
        .await;
    assert_eq!(missing(&d), EVIDENCE, "a 5 min window: 6 min is too old");
}

#[tokio::test]
async fn stateless_evidence_is_per_key_and_target_and_apart_from_sessions() {
    let f = fixture();
    let spec = person_gate();
    let decide = |key: &'static str, session: Option<&'static str>, target: &'static str| {
        let gates = f.gates.clone();
        let spec = spec.clone();
        async move {
            gates
                .decide(
                    &spec,
                    &GateCall::new(key, session, TOOL, target),
                    Some(&failed()),
                )
                .await
                .expect("decide")
        }
    };
    read_statelessly(&f, "k1", "api").await;
    assert_eq!(
        missing(&decide("k2", None, "api").await),
        EVIDENCE,
        "another key's read"
    );
    assert_eq!(
        missing(&decide("k1", None, "web").await),
        EVIDENCE,
        "another target's read"
    );
    assert_eq!(
        missing(&decide("k1", Some("s1"), "api").await),
        EVIDENCE,
        "a stateless read does not count in a session"
    );
    for tool in EVIDENCE {
        f.record_evidence("k2", "s1", tool, "api").await;
    }
    assert_eq!(
        missing(&decide("k2", None, "api").await),
        EVIDENCE,
        "a session's read does not count for stateless calls"
    );
    assert_eq!(
        decide("k2", Some("s1"), "api").await.code(),
        Some("APPROVAL_REQUIRED")
    );
    assert_eq!(
        decide("k1", None, "api").await.code(),
        Some("APPROVAL_REQUIRED")
    );
}
