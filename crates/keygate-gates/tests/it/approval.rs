//! The approval gate.

use keygate_gates::{
    CHALLENGE_LEN, CONFIRMATION_INVALID, CONFIRMATION_REQUIRED, Confirm, GateCall, InvalidReason,
    Outcome, SELF_SERVICE_BLOCKED,
};
use keygate_scopes::GateSpec;
use serde_json::{Value, json};
use time::Duration;

use crate::util::{Fixture, challenge, delete_gate, fixture};

const TOOL: &str = "service.delete";

fn call<'a>(key: &'a str, session: &'a str, target: &'a str) -> GateCall<'a> {
    GateCall::new(key, Some(session), TOOL, target)
}

/// [`call`] confirmed with challenge `c` for its own target.
fn confirmed<'a>(
    key: &'a str,
    session: &'a str,
    target: &'a str,
    c: impl Into<String>,
) -> GateCall<'a> {
    call(key, session, target).with_confirm(Confirm::new(c, target))
}

/// k1 in s1 calling `tool` with `args` (which may hold `confirm`).
fn args_call<'a>(spec: &GateSpec, tool: &'a str, args: &'a Value) -> GateCall<'a> {
    GateCall::from_args(spec, "k1", Some("s1"), tool, args)
}

/// Asserts that deleting each of `targets` is an ordinary gated call: it gets a challenge.
async fn assert_ordinary<const N: usize>(f: &Fixture, targets: [&str; N]) {
    for target in targets {
        let d = f.decide(&delete_gate(), &call("k1", "s1", target)).await;
        assert_eq!(d.code(), Some(CONFIRMATION_REQUIRED), "{target}");
    }
}

/// `args` with `confirm` holding challenge `c` for target `worker`.
fn confirming(mut args: Value, c: &str) -> Value {
    args["confirm"] = json!({"challenge": c, "target": "worker"});
    args
}

/// A fixture, and the challenge k1 got in s1 for deleting `target`.
async fn challenged(target: &str) -> (Fixture, String) {
    let f = fixture();
    let c = challenge(&f.decide(&delete_gate(), &call("k1", "s1", target)).await);
    (f, c)
}

/// The message of a decision that refuses.
fn message(d: &keygate_gates::Decision) -> String {
    d.message().expect("message")
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
    assert_eq!(ok.audit_action(), "gate.approved");
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
        let d = f.decide(&spec, &confirmed("k1", "s1", "w", c)).await;
        assert!(d.is_allowed());
    }
}

/// Issues a challenge to k1 in s1 for deleting `worker` with `args`, presents it with
/// `other`, and says why that was refused and whether the rightful call could still
/// use the challenge afterwards.
async fn presented_elsewhere(other: GateCall<'_>) -> (InvalidReason, bool) {
    let f = fixture();
    let spec = delete_gate();
    let args = json!({"service": "worker", "project": "ops"});
    let rightful = call("k1", "s1", "worker").with_arguments(&args);
    let c = challenge(&f.decide(&spec, &rightful).await);
    let target = other.target.expect("a target");
    let d = f
        .decide(&spec, &other.with_confirm(Confirm::new(c.clone(), target)))
        .await;
    assert_eq!(d.code(), Some(CONFIRMATION_INVALID));
    let after = f
        .decide(&spec, &rightful.with_confirm(Confirm::new(c, "worker")))
        .await;
    (reason(&d), after.is_allowed())
}

#[tokio::test]
async fn a_challenge_is_bound_to_session_key_tool_target_and_arguments() {
    let args = json!({"service": "worker", "project": "ops"});
    let same = |key, session, tool, target| {
        GateCall::new(key, Some(session), tool, target).with_arguments(&args)
    };
    // Another session or key is refused and cannot burn the owner's challenge.
    assert_eq!(
        presented_elsewhere(same("k1", "s2", TOOL, "worker")).await,
        (InvalidReason::OtherSession, true)
    );
    assert_eq!(
        presented_elsewhere(same("k2", "s1", TOOL, "worker")).await,
        (InvalidReason::OtherKey, true)
    );
    assert_eq!(
        presented_elsewhere(same("k2", "s2", TOOL, "worker")).await,
        (InvalidReason::OtherSession, true)
    );
    // The owner presenting it for something else spends it.
    assert_eq!(
        presented_elsewhere(same("k1", "s1", "db.delete", "worker")).await,
        (InvalidReason::OtherTool, false)
    );
    assert_eq!(
        presented_elsewhere(
            GateCall::new("k1", Some("s1"), TOOL, "api")
                .with_arguments(&json!({"service": "api", "project": "ops"}))
        )
        .await,
        (InvalidReason::OtherTarget, false)
    );
    assert_eq!(
        presented_elsewhere(
            call("k1", "s1", "worker")
                .with_arguments(&json!({"service": "worker", "project": "shop"}))
        )
        .await,
        (InvalidReason::OtherArguments, false)
    );
    assert_eq!(
        presented_elsewhere(
            call("k1", "s1", "worker").with_arguments(&json!({"service": "worker"}))
        )
        .await,
        (InvalidReason::OtherArguments, false)
    );
}

#[tokio::test]
async fn a_challenge_confirms_only_the_arguments_it_was_issued_for() {
    let f = fixture();
    let spec =
        GateSpec::approval("service", vec![]).with_approval_by(keygate_scopes::ApprovalBy::Agent);
    let tool = "service.replace";
    let a = json!({"service": "worker", "image": "shop/worker:A"});
    let first = f.decide(&spec, &args_call(&spec, tool, &a)).await;
    assert_eq!(first.arguments().value(), &a);
    let c = challenge(&first);
    let text = message(&first);
    assert!(
        text.contains(r#"Arguments: {"image":"shop/worker:A","service":"worker"}."#),
        "{text}"
    );

    let b = confirming(json!({"service": "worker", "image": "shop/worker:B"}), &c);
    let d = f.decide(&spec, &args_call(&spec, tool, &b)).await;
    assert_eq!(reason(&d), InvalidReason::OtherArguments);
    assert!(!d.is_allowed());
    let text = message(&d);
    assert!(text.contains("issued for other arguments"), "{text}");
    assert!(
        text.ends_with(r#"Arguments: {"image":"shop/worker:B","service":"worker"}."#),
        "{text}"
    );
    // It is spent: not even the approved arguments pass with it now.
    let a_confirmed = confirming(a.clone(), &c);
    let d = f.decide(&spec, &args_call(&spec, tool, &a_confirmed)).await;
    assert_eq!(reason(&d), InvalidReason::UnknownChallenge);

    // The same arguments in another key order are the same arguments.
    let c = challenge(&f.decide(&spec, &args_call(&spec, tool, &a)).await);
    let reordered = json!({"confirm": {"target": "worker", "challenge": c},
                           "image": "shop/worker:A", "service": "worker"});
    let d = f.decide(&spec, &args_call(&spec, tool, &reordered)).await;
    assert!(d.is_allowed(), "{:?}", d.outcome());
}

#[tokio::test]
async fn another_key_or_session_cannot_burn_a_challenge() {
    let (f, c) = challenged("worker").await;
    let spec = delete_gate();
    for _ in 0..3 {
        for (key, session) in [("k2", "s1"), ("k1", "s2"), ("k2", "s2")] {
            let d = f
                .decide(&spec, &confirmed(key, session, "worker", c.clone()))
                .await;
            assert!(!d.is_allowed());
        }
    }
    let d = f
        .decide(&spec, &confirmed("k1", "s1", "worker", c.clone()))
        .await;
    assert!(d.is_allowed(), "{:?}", d.outcome());
    let d = f.decide(&spec, &confirmed("k2", "s2", "worker", c)).await;
    assert_eq!(reason(&d), InvalidReason::UnknownChallenge);
}

#[tokio::test]
async fn messages_for_other_sessions_do_not_leak_them() {
    let f = fixture();
    let spec = delete_gate();
    let c = challenge(
        &f.decide(&spec, &call("k1", "secret-session", "worker"))
            .await,
    );
    let d = f.decide(&spec, &confirmed("k1", "s2", "worker", c)).await;
    let text = message(&d);
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
    let (f, c) = challenged("worker").await;
    let spec = delete_gate();
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
        assert!(message(&d).contains("the challenge is still valid"));
    }
    let d = f.decide(&spec, &confirmed("k1", "s1", "worker", c)).await;
    assert!(d.is_allowed());
}

#[tokio::test]
async fn challenges_expire() {
    let (f, c) = challenged("w").await;
    let spec = delete_gate();
    f.clock.advance(Duration::seconds(299));
    let c2 = challenge(&f.decide(&spec, &call("k1", "s1", "w")).await);
    f.clock.advance(Duration::seconds(1));
    let d = f.decide(&spec, &confirmed("k1", "s1", "w", c)).await;
    assert_eq!(reason(&d), InvalidReason::Expired);
    assert!(message(&d).starts_with("The challenge has expired."));
    // The one issued later is still good.
    let d = f.decide(&spec, &confirmed("k1", "s1", "w", c2)).await;
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
        .decide(&spec, &confirmed("k1", "s1", "w", c), None)
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
            .decide(&spec, &confirmed("k1", "s1", target, "x".repeat(32)))
            .await;
        assert_eq!(d.code(), Some(SELF_SERVICE_BLOCKED));
        let d = f
            .decide(&spec, &GateCall::new("k1", None, TOOL, target))
            .await;
        assert_eq!(d.code(), Some(SELF_SERVICE_BLOCKED));
    }
}

#[tokio::test]
async fn look_alikes_of_protected_targets_are_blocked() {
    let f = fixture();
    for spec in [delete_gate(), crate::util::replace_gate()] {
        for target in keygate_test::LOOK_ALIKES {
            for session in [Some("s1"), None] {
                let plain = GateCall::new("k1", session, TOOL, target);
                let forged = plain
                    .clone()
                    .with_confirm(Confirm::new("x".repeat(32), target));
                for c in [plain, forged] {
                    let d = f
                        .decide_after(&spec, &c, &keygate_gates::FailureHistory::None)
                        .await;
                    assert_eq!(
                        d.code(),
                        Some(SELF_SERVICE_BLOCKED),
                        "{} {target:?}",
                        spec.kind()
                    );
                }
            }
        }
    }
    // The message shows what was typed and which protected name it reads as.
    let d = f
        .decide(&delete_gate(), &call("k1", "s1", "keygate\u{200b}"))
        .await;
    let text = message(&d);
    assert!(
        text.starts_with(
            "Deleting service `keygate\\u{200b}` is blocked: `keygate\\u{200b}` reads as `keygate`, which is protected"
        ),
        "{text}"
    );
    // Names that only resemble it are ordinary targets.
    assert_ordinary(&f, ["keygates", "key-gate", "gatekey"]).await;
}

#[tokio::test]
async fn targets_with_hidden_characters_are_refused() {
    let f = fixture();
    for (target, character) in [
        ("worker\u{200b}", '\u{200b}'),
        ("\u{feff}worker", '\u{feff}'),
        ("wor\0ker", '\0'),
        ("worker\u{2028}", '\u{2028}'),
        ("worker\u{e0041}", '\u{e0041}'),
    ] {
        for spec in [delete_gate(), crate::util::replace_gate()] {
            // Even where the gate would not apply (no failure history).
            let d = f
                .decide_after(
                    &spec,
                    &GateCall::new("k1", Some("s1"), TOOL, target),
                    &keygate_gates::FailureHistory::None,
                )
                .await;
            assert_eq!(reason(&d), InvalidReason::InvalidTarget { character });
            assert_eq!(d.audit_detail()["reason"], "invalid_target");
        }
    }
    let d = f
        .decide(&delete_gate(), &call("k1", "s1", "worker\u{200b}"))
        .await;
    assert_eq!(
        message(&d),
        "The service `worker\\u{200b}` contains U+200B, a control, format or invisible character, so a person could not see what it names. Gated calls refuse such names. Nothing was changed; call service.delete again with the plain name. Arguments: {}."
    );
    // Accented and other visible non-ASCII names are fine.
    assert_ordinary(&f, ["wörker", "サービス", "kéygate-api"]).await;
}

#[tokio::test]
async fn without_a_session_nothing_can_be_confirmed() {
    let f = fixture();
    let spec = delete_gate();
    let d = f
        .decide(&spec, &GateCall::new("k1", None, TOOL, "worker"))
        .await;
    assert_eq!(reason(&d), InvalidReason::NoSession);
    assert!(message(&d).contains("Mcp-Session-Id"));
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
    let d = f.decide(&spec, &args_call(&spec, TOOL, &args)).await;
    assert_eq!(reason(&d), InvalidReason::MissingTarget);
    assert_eq!(d.target(), None);
    assert!(message(&d).contains("argument `service`"));

    let args = json!({"service": "worker", "confirm": "yes"});
    let d = f.decide(&spec, &args_call(&spec, TOOL, &args)).await;
    assert!(matches!(reason(&d), InvalidReason::MalformedConfirm { .. }));
    assert!(message(&d).contains("must be an object"));

    let args = json!({"service": "worker"});
    let first = f.decide(&spec, &args_call(&spec, TOOL, &args)).await;
    let args = json!({"service": "worker", "confirm": {"challenge": challenge(&first), "target": "worker"}});
    let d = f.decide(&spec, &args_call(&spec, TOOL, &args)).await;
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
        .decide(&delete_gate(), &confirmed("k1", "s1", "w", "made-up"))
        .await;
    assert_eq!(reason(&d), InvalidReason::UnknownChallenge);
    assert_eq!(
        message(&d),
        "The challenge is unknown or already used. Nothing was changed. To try again, call service.delete without confirm to get a new challenge, and ask the user to approve deleting `w` first. Arguments: {}."
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
