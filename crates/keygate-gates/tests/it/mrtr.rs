//! The MRTR channel at the gate: what a sealed `requestState` lets through, with the
//! clock and the approval page in the picture.

use std::sync::Arc;

use keygate_gates::{
    Approver, Caller, Channel, Decision, GateCall, Gates, ManualClock, MemoryGateStore, MrtrAnswer,
    MrtrSecret, Outcome,
};
use serde_json::{Value, json};
use time::Duration;
use time::macros::datetime;

use crate::util::person_delete_gate;

const KEY: &str = "agentkey0001";

fn gates(secret: u8) -> (Gates, Arc<ManualClock>, Arc<MemoryGateStore>) {
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00:00 UTC)));
    let store = Arc::new(MemoryGateStore::new());
    let gates = Gates::new(store.clone(), clock.clone())
        .with_mrtr_secret(MrtrSecret::new(vec![secret; 32]).unwrap());
    (gates, clock, store)
}

fn call(args: &Value) -> GateCall<'_> {
    GateCall::from_args(&person_delete_gate(), KEY, None, "service.delete", args)
        .with_caller(Caller::user_key("tn_1", "us_ann", "ann"))
}

/// The first call's decision and its sealed state.
async fn ask(g: &Gates, args: &Value) -> (Decision, String) {
    let d = g
        .decide(&person_delete_gate(), &call(args), None)
        .await
        .unwrap();
    let ask = g.mrtr_ask(&d).unwrap().expect("an MRTR ask");
    (d, ask.request_state)
}

async fn answer(g: &Gates, args: &Value, state: &str, a: MrtrAnswer) -> Decision {
    g.answer_mrtr(&person_delete_gate(), &call(args), state, &a)
        .await
        .unwrap()
        .decision
}

fn accept(name: &str) -> MrtrAnswer {
    MrtrAnswer::Accept(Some(name.to_owned()))
}

fn reason(d: &Decision) -> &'static str {
    match d.outcome() {
        Outcome::ConfirmationInvalid { reason } => reason.as_str(),
        other => panic!("expected CONFIRMATION_INVALID, got {other:?}"),
    }
}

#[tokio::test]
async fn a_state_expires_with_its_approval() {
    let (g, clock, _) = gates(1);
    let args = json!({"service": "web"});
    let (_, state) = ask(&g, &args).await;
    clock.advance(g.approval_ttl());
    let d = answer(&g, &args, &state, accept("web")).await;
    assert_eq!(reason(&d), "request_state_expired");
    // Just before expiry, a fresh one works.
    let (_, state) = ask(&g, &args).await;
    clock.advance(g.approval_ttl() - Duration::seconds(1));
    let d = answer(&g, &args, &state, accept("web")).await;
    assert!(d.is_allowed(), "{d:?}");
    assert!(matches!(
        d.outcome(),
        Outcome::Approved {
            channel: Channel::Mrtr,
            ..
        }
    ));
}

#[tokio::test]
async fn another_secret_or_no_secret_opens_nothing() {
    let (g1, _, store) = gates(1);
    let args = json!({"service": "web"});
    let (_, state) = ask(&g1, &args).await;
    // A twin on the same store with another secret: refused.
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00:00 UTC)));
    let g2 = Gates::new(store.clone(), clock.clone())
        .with_mrtr_secret(MrtrSecret::new(vec![2; 32]).unwrap());
    assert_eq!(
        reason(&answer(&g2, &args, &state, accept("web")).await),
        "invalid_request_state"
    );
    // Without a secret, there is no MRTR at all.
    let plain = Gates::new(store.clone(), clock.clone());
    let d = plain
        .decide(&person_delete_gate(), &call(&args), None)
        .await
        .unwrap();
    assert_eq!(plain.mrtr_ask(&d).unwrap(), None);
    assert_eq!(
        reason(&answer(&plain, &args, &state, accept("web")).await),
        "invalid_request_state"
    );
    // A twin with the same secret accepts it, once.
    let g3 = Gates::new(store, clock).with_mrtr_secret(MrtrSecret::new(vec![1; 32]).unwrap());
    assert!(answer(&g3, &args, &state, accept("web")).await.is_allowed());
    assert_eq!(
        reason(&answer(&g1, &args, &state, accept("web")).await),
        "request_state_used"
    );
}

#[tokio::test]
async fn a_page_decision_made_meanwhile_stands() {
    let (g, _, _) = gates(1);
    let ann = Approver::user_key("annskey00001", "tn_1", "us_ann", "ann", false, true);
    let args = json!({"service": "web"});
    // Denied on the page: even an accepted form declines.
    let (d, state) = ask(&g, &args).await;
    let Outcome::ApprovalRequired { approval_id, .. } = d.outcome() else {
        panic!("{d:?}");
    };
    g.deny(approval_id, &ann).await.unwrap();
    let d = answer(&g, &args, &state, accept("web")).await;
    assert_eq!(d.code(), Some("CONFIRMATION_DECLINED"), "{d:?}");
    // Approved on the page: an accepted form runs it, channel page.
    let (d, state) = ask(&g, &args).await;
    let Outcome::ApprovalRequired { approval_id, .. } = d.outcome() else {
        panic!("{d:?}");
    };
    g.approve(approval_id, &ann, "web").await.unwrap();
    let d = answer(&g, &args, &state, accept("web")).await;
    assert!(
        matches!(
            d.outcome(),
            Outcome::Approved {
                channel: Channel::Page,
                ..
            }
        ),
        "{d:?}"
    );
    // Approved on the page, declined in the form: declined, and the approval is
    // closed (the next call asks anew).
    let (d, state) = ask(&g, &args).await;
    let Outcome::ApprovalRequired { approval_id, .. } = d.outcome() else {
        panic!("{d:?}");
    };
    g.approve(approval_id, &ann, "web").await.unwrap();
    let d = answer(&g, &args, &state, MrtrAnswer::Decline).await;
    assert_eq!(d.code(), Some("CONFIRMATION_DECLINED"), "{d:?}");
    let next = g
        .decide(&person_delete_gate(), &call(&args), None)
        .await
        .unwrap();
    assert_eq!(next.code(), Some("APPROVAL_REQUIRED"), "{next:?}");
}

#[tokio::test]
async fn the_answer_decides_the_approval_by_the_callers_person() {
    let (g, _, store) = gates(1);
    let args = json!({"service": "web"});
    let (d, state) = ask(&g, &args).await;
    let Outcome::ApprovalRequired { approval_id, .. } = d.outcome() else {
        panic!("{d:?}");
    };
    let out = g
        .answer_mrtr(&person_delete_gate(), &call(&args), &state, &accept("web"))
        .await
        .unwrap();
    let decided = out.decided.expect("decided by the answer");
    assert_eq!(&decided.id, approval_id);
    let by = decided.decided_by.expect("who");
    assert_eq!((by.key_id.as_str(), by.user_id.as_str()), (KEY, "us_ann"));
    let stored = keygate_gates::GateStore::get_approval(&*store, approval_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, keygate_gates::ApprovalStatus::Used);
    // A tenant key's call: the client's person, no user id.
    let tenant_call = GateCall::from_args(
        &person_delete_gate(),
        "tenantkey001",
        None,
        "service.delete",
        &args,
    )
    .with_caller(Caller::tenant_key("tn_1"));
    let d = g
        .decide(&person_delete_gate(), &tenant_call, None)
        .await
        .unwrap();
    let state = g.mrtr_ask(&d).unwrap().unwrap().request_state;
    let out = g
        .answer_mrtr(
            &person_delete_gate(),
            &tenant_call,
            &state,
            &MrtrAnswer::Cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.decision.code(), Some("CONFIRMATION_DECLINED"));
    let by = out.decided.unwrap().decided_by.unwrap();
    assert_eq!(by.user_id, "");
    assert_eq!(by.name, keygate_gates::CLIENT_PERSON);
}
