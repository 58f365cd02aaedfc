//! The approval gate.

use keygate_gates::{
    CHALLENGE_LEN, CONFIRMATION_INVALID, CONFIRMATION_REQUIRED, Confirm, GateCall, InvalidReason,
    Outcome, SELF_SERVICE_BLOCKED,
};
use serde_json::json;
use time::Duration;

use crate::util::{challenge, delete_gate, fixture};

const TOOL: &str = "service.delete";

fn call<'a>(key: &'a str, session: &'a str, target: &'a str) -> GateCall<'a> {
    GateCall::new(key, Some(session), TOOL, target)
}

fn reason(d: &keygate_gates::Decision) -> InvalidReason {
    match d.outcome() {
        Outcome::ConfirmationInvalid { reason } => reason.clone(),
        other => panic!("expected confirmation invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn first_call_gets_a_challenge_then_the_confirmed_call_passes_once() {
    let f = fixture();
    let spec = delete_gate();
    let first = f.decide(&spec, &call("k1", "s1", "worker")).await;
    assert_eq!(first.code(), Some(CONFIRMATION_REQUIRED));
    assert!(!first.is_allowed());
    assert_eq!(first.operation(), TOOL);
    assert_eq!(first.target(), Some("worker"));
    assert_eq!(first.key_id(), "k1");
    assert_eq!(first.session_id(), Some("s1"));
    let c = challenge(&first);
    assert_eq!(c.len(), CHALLENGE_LEN);
    assert!(c.bytes().all(|b| b.is_ascii_alphanumeric()));
    match first.outcome() {
        Outcome::ConfirmationRequired { expires_at, .. } => {
            assert_eq!(
                *expires_at - keygate_gates::Clock::now(&*f.clock),
                Duration::seconds(300)
            );
        }
        other => panic!("{other:?}"),
    }

    let confirmed = call("k1", "s1", "worker").with_confirm(Confirm::new(c.clone(), "worker"));
    let ok = f.decide(&spec, &confirmed).await;
    assert!(ok.is_allowed());
    assert_eq!(ok.outcome(), &Outcome::Allow { confirmed: true });
    assert_eq!(ok.audit_action(), "gate.confirmed");
    assert_eq!(ok.to_tool_result(), None);

    let again = f.decide(&spec, &confirmed).await;
    assert_eq!(again.code(), Some(CONFIRMATION_INVALID));
    assert_eq!(reason(&again), InvalidReason::UnknownChallenge);
}

#[tokio::test]
async fn each_call_without_confirm_gets_a_fresh_challenge() {
    let f = fixture();
    let spec = delete_gate();
    let a = challenge(&f.decide(&spec, &call("k1", "s1", "w")).await);
    let b = challenge(&f.decide(&spec, &call("k1", "s1", "w")).await);
    assert_ne!(a, b);
    // Both stay usable, once each.
    for c in [a, b] {
        let d = f
            .decide(
                &spec,
                &call("k1", "s1", "w").with_confirm(Confirm::new(c, "w")),
            )
            .await;
        assert!(d.is_allowed());
    }
}

async fn presented_elsewhere(key: &str, session: &str, tool: &str, target: &str) -> InvalidReason {
    let f = fixture();
    let spec = delete_gate();
    let c = challenge(&f.decide(&spec, &call("k1", "s1", "worker")).await);
    let other = GateCall::new(key, Some(session), tool, target)
        .with_confirm(Confirm::new(c.clone(), target));
    let d = f.decide(&spec, &other).await;
    assert_eq!(d.code(), Some(CONFIRMATION_INVALID));
    // A challenge presented wrongly is spent: the rightful call cannot use it either.
    let rightful = call("k1", "s1", "worker").with_confirm(Confirm::new(c, "worker"));
    let after = f.decide(&spec, &rightful).await;
    assert_eq!(reason(&after), InvalidReason::UnknownChallenge);
    reason(&d)
}

#[tokio::test]
async fn a_challenge_is_bound_to_session_key_tool_and_target() {
    assert_eq!(
        presented_elsewhere("k1", "s2", TOOL, "worker").await,
        InvalidReason::OtherSession
    );
    assert_eq!(
        presented_elsewhere("k2", "s1", TOOL, "worker").await,
        InvalidReason::OtherKey
    );
    assert_eq!(
        presented_elsewhere("k1", "s1", "db.delete", "worker").await,
        InvalidReason::OtherTool
    );
    assert_eq!(
        presented_elsewhere("k1", "s1", TOOL, "api").await,
        InvalidReason::OtherTarget
    );
}

#[tokio::test]
async fn messages_for_other_sessions_do_not_leak_them() {
    let f = fixture();
    let spec = delete_gate();
    let c = challenge(
        &f.decide(&spec, &call("k1", "secret-session", "worker"))
            .await,
    );
    let d = f
        .decide(
            &spec,
            &call("k1", "s2", "worker").with_confirm(Confirm::new(c, "worker")),
        )
        .await;
    let text = d.message().expect("message");
    assert!(
        text.starts_with("The challenge was issued for another session."),
        "{text}"
    );
    assert!(!text.contains("secret-session"), "{text}");
    assert!(
        !d.to_tool_result()
            .expect("result")
            .to_string()
            .contains("secret-session")
    );
}

#[tokio::test]
async fn the_confirm_target_must_be_exact_and_a_typo_keeps_the_challenge() {
    let f = fixture();
    let spec = delete_gate();
    let c = challenge(&f.decide(&spec, &call("k1", "s1", "worker")).await);
    for typo in ["Worker", "worker ", "work", ""] {
        let d = f
            .decide(
                &spec,
                &call("k1", "s1", "worker").with_confirm(Confirm::new(c.clone(), typo)),
            )
            .await;
        assert_eq!(
            reason(&d),
            InvalidReason::TargetMismatch {
                given: typo.to_owned()
            }
        );
        assert!(
            d.message()
                .expect("message")
                .contains("the challenge is still valid")
        );
    }
    let d = f
        .decide(
            &spec,
            &call("k1", "s1", "worker").with_confirm(Confirm::new(c, "worker")),
        )
        .await;
    assert!(d.is_allowed());
}

#[tokio::test]
async fn challenges_expire() {
    let f = fixture();
    let spec = delete_gate();
    let c = challenge(&f.decide(&spec, &call("k1", "s1", "w")).await);
    f.clock.advance(Duration::seconds(299));
    let c2 = challenge(&f.decide(&spec, &call("k1", "s1", "w")).await);
    f.clock.advance(Duration::seconds(1));
    let d = f
        .decide(
            &spec,
            &call("k1", "s1", "w").with_confirm(Confirm::new(c, "w")),
        )
        .await;
    assert_eq!(reason(&d), InvalidReason::Expired);
    assert!(
        d.message()
            .expect("message")
            .starts_with("The challenge has expired.")
    );
    // The one issued later is still good.
    let d = f
        .decide(
            &spec,
            &call("k1", "s1", "w").with_confirm(Confirm::new(c2, "w")),
        )
        .await;
    assert!(d.is_allowed());
}

#[tokio::test]
async fn the_challenge_lifetime_is_configurable() {
    let f = fixture();
    let gates = f.gates.clone().with_challenge_ttl(Duration::seconds(10));
    assert_eq!(gates.challenge_ttl(), Duration::seconds(10));
    let spec = delete_gate();
    let c = challenge(
        &gates
            .decide(&spec, &call("k1", "s1", "w"), None)
            .await
            .expect("decide"),
    );
    f.clock.advance(Duration::seconds(10));
    let d = gates
        .decide(
            &spec,
            &call("k1", "s1", "w").with_confirm(Confirm::new(c, "w")),
            None,
        )
        .await
        .expect("decide");
    assert_eq!(reason(&d), InvalidReason::Expired);
}

#[tokio::test]
async fn protected_targets_are_never_confirmable() {
    let f = fixture();
    let spec = delete_gate();
    for target in ["keygate", "KeyGate", " KEYGATE "] {
        let d = f.decide(&spec, &call("k1", "s1", target)).await;
        assert_eq!(d.code(), Some(SELF_SERVICE_BLOCKED), "{target}");
        let d = f
            .decide(
                &spec,
                &call("k1", "s1", target).with_confirm(Confirm::new("x".repeat(32), target)),
            )
            .await;
        assert_eq!(d.code(), Some(SELF_SERVICE_BLOCKED));
        let d = f
            .decide(&spec, &GateCall::new("k1", None, TOOL, target))
            .await;
        assert_eq!(d.code(), Some(SELF_SERVICE_BLOCKED));
    }
}

#[tokio::test]
async fn without_a_session_nothing_can_be_confirmed() {
    let f = fixture();
    let spec = delete_gate();
    let d = f
        .decide(&spec, &GateCall::new("k1", None, TOOL, "worker"))
        .await;
    assert_eq!(reason(&d), InvalidReason::NoSession);
    assert!(d.message().expect("message").contains("Mcp-Session-Id"));
    // A challenge from a session does not work without one either.
    let c = challenge(&f.decide(&spec, &call("k1", "s1", "worker")).await);
    let d = f
        .decide(
            &spec,
            &GateCall::new("k1", None, TOOL, "worker").with_confirm(Confirm::new(c, "worker")),
        )
        .await;
    assert_eq!(reason(&d), InvalidReason::NoSession);
}

#[tokio::test]
async fn arguments_are_read_with_precise_errors() {
    let f = fixture();
    let spec = delete_gate();
    let args = json!({"project": "ops"});
    let d = f
        .decide(
            &spec,
            &GateCall::from_args(&spec, "k1", Some("s1"), TOOL, &args),
        )
        .await;
    assert_eq!(reason(&d), InvalidReason::MissingTarget);
    assert_eq!(d.target(), None);
    assert!(d.message().expect("message").contains("argument `service`"));

    let args = json!({"service": "worker", "confirm": "yes"});
    let d = f
        .decide(
            &spec,
            &GateCall::from_args(&spec, "k1", Some("s1"), TOOL, &args),
        )
        .await;
    assert!(matches!(reason(&d), InvalidReason::MalformedConfirm { .. }));
    assert!(d.message().expect("message").contains("must be an object"));

    let args = json!({"service": "worker"});
    let first = f
        .decide(
            &spec,
            &GateCall::from_args(&spec, "k1", Some("s1"), TOOL, &args),
        )
        .await;
    let args = json!({"service": "worker", "confirm": {"challenge": challenge(&first), "target": "worker"}});
    let d = f
        .decide(
            &spec,
            &GateCall::from_args(&spec, "k1", Some("s1"), TOOL, &args),
        )
        .await;
    assert!(d.is_allowed());
    assert_eq!(
        keygate_gates::strip_confirm(&args),
        json!({"service": "worker"})
    );
}

#[tokio::test]
async fn unknown_challenges_are_invalid() {
    let f = fixture();
    let d = f
        .gates
        .decide(
            &delete_gate(),
            &call("k1", "s1", "w").with_confirm(Confirm::new("made-up", "w")),
            None,
        )
        .await
        .expect("decide");
    assert_eq!(reason(&d), InvalidReason::UnknownChallenge);
    assert_eq!(
        d.message().expect("message"),
        "The challenge is unknown or already used. Nothing was changed. To try again, call service.delete without confirm to get a new challenge, and ask the user to approve deleting `w` first."
    );
}

#[tokio::test]
async fn purge_forgets_expired_challenges() {
    let f = fixture();
    let spec = delete_gate();
    let _ = f.decide(&spec, &call("k1", "s1", "w")).await;
    assert_eq!(f.gates.purge().await.expect("purge"), 0);
    f.clock.advance(Duration::seconds(301));
    assert_eq!(f.gates.purge().await.expect("purge"), 1);
}
