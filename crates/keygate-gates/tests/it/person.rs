//! Person approvals (`approval = "person"`): the flow, who may decide, and a property
//! test over interleavings of calls, approvals, denials and time.

use std::collections::HashMap;

use keygate_gates::{
    ApprovalError, ApprovalStatus, Approver, Caller, Clock, Decision, GateCall, Outcome,
};
use keygate_scopes::GateSpec;
use proptest::prelude::*;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::util::{EVIDENCE, Fixture, fixture, person_delete_gate};

const TOOL: &str = "service.delete";
const TENANT: &str = "tn_1";

/// Ann's agent key (a user key of member Ann).
fn ann_agent() -> Caller {
    Caller::user_key(TENANT, "us_ann", "ann")
}

/// Ann's own key, signed in on the approval page.
fn ann() -> Approver {
    Approver::user_key("annskey00001", TENANT, "us_ann", "ann", false, true)
}

fn owner() -> Approver {
    Approver::user_key("ownerskey001", TENANT, "us_own", "olga", true, true)
}

fn call<'a>(key: &'a str, args: &'a Value, caller: Caller) -> GateCall<'a> {
    GateCall::from_args(&person_delete_gate(), key, None, TOOL, args).with_caller(caller)
}

async fn decide(f: &Fixture, c: &GateCall<'_>) -> Decision {
    f.gates
        .decide(&person_delete_gate(), c, None)
        .await
        .expect("decide")
}

fn approval_id(d: &Decision) -> String {
    match d.outcome() {
        Outcome::ApprovalRequired { approval_id, .. } => approval_id.clone(),
        other => panic!("expected approval required, got {other:?}"),
    }
}

#[tokio::test]
async fn a_person_approves_and_the_identical_retry_proceeds_once() {
    let f = fixture();
    let args = json!({"service": "web", "project": "shop"});
    let c = call("agentkey0001", &args, ann_agent());
    let first = decide(&f, &c).await;
    let id = approval_id(&first);
    assert_eq!(first.code(), Some("APPROVAL_REQUIRED"));
    assert_eq!(first.audit_action(), "gate.approval_required");
    let result = first.to_tool_result().expect("a refusal");
    let sc = &result["structuredContent"];
    assert_eq!(sc["approval_id"], json!(id));
    assert_eq!(sc["approval_url"], json!(format!("/approvals/{id}")));
    assert_eq!(sc["expires_at"], json!("2025-06-01T12:05:00Z"));
    assert_eq!(sc["operation"], json!(TOOL));
    assert_eq!(sc["target"], json!("web"));
    assert_eq!(sc["arguments"], args);
    let text = sc["message"].as_str().expect("a message");
    assert!(text.contains(&format!("open /approvals/{id}")), "{text}");
    assert!(
        text.contains("call service.delete again with exactly these arguments"),
        "{text}"
    );

    // Retrying, with or without a made-up confirm, asks with the same approval.
    for made_up in [
        None,
        Some(json!({"challenge": id, "target": "web"})),
        Some(json!({"challenge": "x".repeat(32), "target": "web"})),
        Some(json!("yes")),
    ] {
        let mut with = args.clone();
        if let Some(confirm) = made_up {
            with["confirm"] = confirm;
        }
        let d = decide(&f, &call("agentkey0001", &with, ann_agent())).await;
        assert_eq!(approval_id(&d), id, "the pending approval is reused");
    }

    let approved = f.gates.approve(&id, &ann(), "web").await.expect("approve");
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(
        approved.decided_by.as_ref().map(|d| d.user_id.as_str()),
        Some("us_ann")
    );
    let ok = decide(&f, &c).await;
    assert!(ok.is_allowed(), "{:?}", ok.outcome());
    assert_eq!(ok.audit_action(), "gate.approval_used");
    assert_eq!(ok.audit_detail()["channel"], json!("page"));
    assert_eq!(ok.audit_detail()["approver_user_id"], json!("us_ann"));
    let again = decide(&f, &c).await;
    assert_ne!(
        approval_id(&again),
        id,
        "a second retry needs a new approval"
    );
    assert!(matches!(
        f.gates.approve(&id, &ann(), "web").await,
        Err(ApprovalError::NotPending { status: "used" })
    ));
}

#[tokio::test]
async fn an_approval_is_bound_to_its_key_and_arguments() {
    let f = fixture();
    let args = json!({"service": "web"});
    let id = approval_id(&decide(&f, &call("agentkey0001", &args, ann_agent())).await);
    f.gates.approve(&id, &ann(), "web").await.expect("approve");
    let other_args = json!({"service": "web", "force": true});
    let d = decide(&f, &call("agentkey0001", &other_args, ann_agent())).await;
    assert!(!d.is_allowed(), "other arguments need their own approval");
    let d = decide(&f, &call("agentkey0002", &args, ann_agent())).await;
    assert!(!d.is_allowed(), "another key of the same user");
    assert!(
        decide(&f, &call("agentkey0001", &args, ann_agent()))
            .await
            .is_allowed()
    );
}

#[tokio::test]
async fn only_the_callers_person_or_an_owner_decides() {
    let f = fixture();
    let args = json!({"service": "web"});
    let user_call = approval_id(&decide(&f, &call("agentkey0001", &args, ann_agent())).await);
    let tenant_call =
        approval_id(&decide(&f, &call("tenantkey001", &args, Caller::tenant_key(TENANT))).await);
    let itself = Approver::user_key("agentkey0001", TENANT, "us_ann", "ann", false, true);
    let unscoped = Approver::user_key("annskey00002", TENANT, "us_ann", "ann", false, false);
    let bob = Approver::user_key("bobskey00001", TENANT, "us_bob", "bob", false, true);
    let stranger = Approver::user_key("strangerkey1", "tn_2", "us_x", "x", true, true);
    let tenant_key = Approver::tenant_key("tenantkey002", TENANT);
    let tenant_itself = Approver::tenant_key("tenantkey001", TENANT);
    let forbidden =
        |r: Result<_, ApprovalError>| matches!(r, Err(ApprovalError::InsufficientScope));
    let absent = |r: Result<_, ApprovalError>| matches!(r, Err(ApprovalError::NotFound));

    assert!(forbidden(f.gates.approve(&user_call, &itself, "web").await));
    assert!(forbidden(
        f.gates.approve(&user_call, &unscoped, "web").await
    ));
    assert!(forbidden(
        f.gates.approve(&user_call, &tenant_key, "web").await
    ));
    assert!(forbidden(
        f.gates.approve(&tenant_call, &tenant_itself, "web").await
    ));
    assert!(absent(f.gates.approve(&user_call, &bob, "web").await));
    assert!(
        absent(f.gates.approve(&user_call, &owner(), "web").await),
        "a user key's approval is its user's"
    );
    assert!(absent(f.gates.approve(&user_call, &stranger, "web").await));
    assert!(
        absent(f.gates.approve(&tenant_call, &ann(), "web").await),
        "a tenant key's approval is an owner's"
    );
    assert!(absent(
        f.gates.approve("nosuchapproval", &ann(), "web").await
    ));
    assert!(matches!(
        f.gates.approvals_for(&tenant_key).await,
        Err(ApprovalError::InsufficientScope)
    ));
    assert!(matches!(
        f.gates.approvals_for(&unscoped).await,
        Err(ApprovalError::InsufficientScope)
    ));

    let ids =
        |list: Vec<keygate_gates::Approval>| list.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(f.gates.approvals_for(&ann()).await.expect("list")),
        std::slice::from_ref(&user_call)
    );
    assert_eq!(
        ids(f.gates.approvals_for(&owner()).await.expect("list")),
        std::slice::from_ref(&tenant_call)
    );
    assert!(f.gates.approvals_for(&bob).await.expect("list").is_empty());
    assert!(
        f.gates
            .approvals_for(&stranger)
            .await
            .expect("list")
            .is_empty()
    );

    for typed in ["Web", "web ", " web", "ｗｅｂ", "we\u{200b}b", ""] {
        assert!(
            matches!(
                f.gates.approve(&user_call, &ann(), typed).await,
                Err(ApprovalError::TargetMismatch)
            ),
            "{typed:?} is not exactly `web`"
        );
    }
    assert!(f.gates.approve(&tenant_call, &owner(), "web").await.is_ok());
    assert!(f.gates.deny(&user_call, &ann()).await.is_ok());
    assert!(matches!(
        f.gates.deny(&user_call, &ann()).await,
        Err(ApprovalError::NotPending { status: "denied" })
    ));
}

#[tokio::test]
async fn a_denial_is_answered_once_then_the_person_is_asked_again() {
    let f = fixture();
    let args = json!({"service": "web"});
    let c = call("agentkey0001", &args, ann_agent());
    let id = approval_id(&decide(&f, &c).await);
    f.gates.deny(&id, &ann()).await.expect("deny");
    let d = decide(&f, &c).await;
    assert_eq!(d.code(), Some("CONFIRMATION_DECLINED"));
    assert_eq!(d.audit_action(), "gate.confirmation_declined");
    assert_eq!(
        d.to_tool_result().expect("refused")["structuredContent"]["approval_id"],
        json!(id)
    );
    let next = approval_id(&decide(&f, &c).await);
    assert_ne!(next, id);
}

#[tokio::test]
async fn approvals_expire() {
    let f = fixture();
    let args = json!({"service": "web"});
    let c = call("agentkey0001", &args, ann_agent());
    let id = approval_id(&decide(&f, &c).await);
    f.clock.advance(Duration::seconds(300));
    assert!(matches!(
        f.gates.approve(&id, &ann(), "web").await,
        Err(ApprovalError::NotPending { status: "expired" })
    ));
    let fresh = approval_id(&decide(&f, &c).await);
    assert_ne!(fresh, id, "an expired approval is not reused");
    f.gates
        .approve(&fresh, &ann(), "web")
        .await
        .expect("approve");
    f.clock.advance(Duration::seconds(300));
    assert!(
        !decide(&f, &c).await.is_allowed(),
        "an approved approval expires too"
    );
}

#[tokio::test]
async fn ttl_public_url_and_the_pending_cap_are_settings() {
    let mut f = fixture();
    f.gates = f
        .gates
        .clone()
        .with_approval_ttl(Duration::seconds(60))
        .with_public_url("https://keys.example.com/")
        .with_max_pending_approvals(3);
    assert_eq!(f.gates.approval_ttl(), Duration::seconds(60));
    for i in 0..3 {
        let args = json!({"service": "web", "i": i});
        let d = decide(&f, &call("agentkey0001", &args, ann_agent())).await;
        let id = approval_id(&d);
        let sc = &d.to_tool_result().expect("refused")["structuredContent"];
        assert_eq!(
            sc["approval_url"],
            json!(format!("https://keys.example.com/approvals/{id}"))
        );
        assert_eq!(sc["expires_at"], json!("2025-06-01T12:01:00Z"));
    }
    let args = json!({"service": "web", "i": 3});
    let d = decide(&f, &call("agentkey0001", &args, ann_agent())).await;
    assert_eq!(d.code(), Some("TOO_MANY_APPROVALS"));
    let other_key = decide(&f, &call("agentkey0002", &args, ann_agent())).await;
    assert_eq!(
        other_key.code(),
        Some("APPROVAL_REQUIRED"),
        "the cap is per key"
    );
}

#[tokio::test]
async fn protected_targets_and_evidence_come_first() {
    let f = fixture();
    let args = json!({"service": "ｋｅｙｇａｔｅ"});
    let d = decide(&f, &call("agentkey0001", &args, ann_agent())).await;
    assert_eq!(d.code(), Some("SELF_SERVICE_BLOCKED"));

    let spec = GateSpec::evidence(
        "service",
        "service.status",
        "has_failure_history",
        EVIDENCE.iter().map(|s| (*s).to_owned()).collect(),
    );
    let args = json!({"service": "worker", "image": "a:2"});
    let c = GateCall::from_args(&spec, "agentkey0001", Some("s1"), "service.replace", &args)
        .with_caller(ann_agent());
    let d = f.gates.decide(&spec, &c, None).await.expect("decide");
    assert_eq!(d.code(), Some("DIAGNOSIS_REQUIRED"));
    for tool in EVIDENCE {
        f.gates
            .record_evidence("agentkey0001", "s1", tool, "worker")
            .await
            .expect("record");
    }
    let d = f.gates.decide(&spec, &c, None).await.expect("decide");
    let id = approval_id(&d);
    f.gates
        .approve(&id, &ann(), "worker")
        .await
        .expect("approve");
    assert!(
        f.gates
            .decide(&spec, &c, None)
            .await
            .expect("decide")
            .is_allowed()
    );
}

// The property test.

/// The calling keys: Ann's and Bob's agent keys (user keys), and a tenant key.
const KEYS: [&str; 3] = ["agentkeyann1", "agentkeybob1", "tenantkey001"];

fn caller(key: usize) -> Caller {
    match key {
        0 => Caller::user_key(TENANT, "us_ann", "ann"),
        1 => Caller::user_key(TENANT, "us_bob", "bob"),
        _ => Caller::tenant_key(TENANT),
    }
}

fn arguments(i: usize) -> Value {
    match i {
        0 => json!({"service": "web"}),
        1 => json!({"service": "web", "force": true}),
        _ => json!({"service": "api"}),
    }
}

/// Approvers: Ann, Bob, the owner, Ann without the scope, another tenant's owner, Ann's
/// agent key itself, a tenant key.
fn approver(i: usize) -> Approver {
    match i {
        0 => ann(),
        1 => Approver::user_key("bobskey00001", TENANT, "us_bob", "bob", false, true),
        2 => owner(),
        3 => Approver::user_key("annskey00002", TENANT, "us_ann", "ann", false, false),
        4 => Approver::user_key("strangerkey1", "tn_2", "us_x", "x", true, true),
        5 => Approver::user_key(KEYS[0], TENANT, "us_ann", "ann", false, true),
        _ => Approver::tenant_key("tenantkey002", TENANT),
    }
}

/// Whether approver `who` may decide an approval of calling key `key` (the model).
fn legit(key: usize, who: usize) -> bool {
    matches!((key, who), (0, 0) | (1, 1) | (2, 2))
}

#[derive(Debug, Clone)]
enum Step {
    Call {
        key: usize,
        args: usize,
        confirm: bool,
    },
    Approve {
        nth: usize,
        who: usize,
        exact: bool,
    },
    Deny {
        nth: usize,
        who: usize,
    },
    Advance(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, any::<bool>())
            .prop_map(|(key, args, confirm)| Step::Call { key, args, confirm }),
        3 => (any::<usize>(), 0..7usize, prop::bool::weighted(0.8))
            .prop_map(|(nth, who, exact)| Step::Approve { nth, who, exact }),
        1 => (any::<usize>(), 0..7usize).prop_map(|(nth, who)| Step::Deny { nth, who }),
        1 => (0..200i64).prop_map(Step::Advance),
    ]
}

/// What the model knows of one approval.
#[derive(Debug, Clone)]
struct Known {
    id: String,
    key: usize,
    args: usize,
    target: &'static str,
    expires_at: OffsetDateTime,
    status: ApprovalStatus,
    closed: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No call proceeds without an approval of a legitimate person for exactly its key
    /// and arguments, unexpired and unused; and every such approval lets exactly its
    /// call through once.
    #[test]
    fn only_a_persons_approval_of_exactly_this_call_lets_it_through_once(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let f = fixture();
            let spec = person_delete_gate();
            let mut known: Vec<Known> = Vec::new();
            let mut by_id: HashMap<String, usize> = HashMap::new();
            let mut allowed = 0usize;
            for step in steps {
                let now = f.clock.now();
                match step {
                    Step::Call { key, args, confirm } => {
                        let mut a = arguments(args);
                        if confirm {
                            let made_up = known.last().map_or("x".repeat(32), |k| k.id.clone());
                            a["confirm"] = json!({"challenge": made_up, "target": a["service"]});
                        }
                        let c = GateCall::from_args(&spec, KEYS[key], None, TOOL, &a)
                            .with_caller(caller(key));
                        let d = f.gates.decide(&spec, &c, None).await.expect("decide");
                        let mine = |k: &&mut Known| k.key == key && k.args == args;
                        let usable = known.iter_mut().filter(mine).find(|k| {
                            k.status == ApprovalStatus::Approved && !k.closed && k.expires_at > now
                        });
                        if d.is_allowed() {
                            let Some(k) = usable else {
                                return Err(TestCaseError::fail(format!(
                                    "{} allowed without a usable approval: {known:?}", KEYS[key]
                                )));
                            };
                            k.status = ApprovalStatus::Used;
                            k.closed = true;
                            allowed += 1;
                            continue;
                        }
                        prop_assert!(usable.is_none(), "an approved call was refused: {:?}", d.outcome());
                        match d.outcome() {
                            Outcome::ConfirmationDeclined { approval_id, .. } => {
                                let k = known.iter_mut().find(|k| &k.id == approval_id);
                                let Some(k) = k else {
                                    return Err(TestCaseError::fail("declined by an unknown approval"));
                                };
                                prop_assert!(k.key == key && k.args == args);
                                prop_assert!(k.status == ApprovalStatus::Denied && !k.closed);
                                k.closed = true;
                            }
                            Outcome::ApprovalRequired { approval_id, expires_at, .. } => {
                                let undecided_denial = known.iter().filter(|k| k.key == key && k.args == args)
                                    .any(|k| k.status == ApprovalStatus::Denied && !k.closed);
                                prop_assert!(!undecided_denial, "a denial was not reported");
                                let pending: Vec<&Known> = known.iter()
                                    .filter(|k| k.key == key && k.args == args)
                                    .filter(|k| k.status == ApprovalStatus::Pending && k.expires_at > now)
                                    .collect();
                                match by_id.get(approval_id) {
                                    Some(&i) => prop_assert!(
                                        pending.iter().any(|k| k.id == known[i].id),
                                        "an approval reused for another call or after expiry"
                                    ),
                                    None => {
                                        prop_assert!(pending.is_empty(), "a new approval while one was pending");
                                        by_id.insert(approval_id.clone(), known.len());
                                        known.push(Known {
                                            id: approval_id.clone(),
                                            key,
                                            args,
                                            target: if args == 2 { "api" } else { "web" },
                                            expires_at: *expires_at,
                                            status: ApprovalStatus::Pending,
                                            closed: false,
                                        });
                                    }
                                }
                            }
                            other => {
                                return Err(TestCaseError::fail(format!("unexpected outcome {other:?}")));
                            }
                        }
                    }
                    Step::Approve { nth, who, exact } => {
                        if known.is_empty() { continue; }
                        let i = nth % known.len();
                        let k = known[i].clone();
                        let typed = if exact { k.target.to_owned() } else { k.target.to_uppercase() };
                        let r = f.gates.approve(&k.id, &approver(who), &typed).await;
                        let pending = k.status == ApprovalStatus::Pending && k.expires_at > now;
                        if r.is_ok() {
                            prop_assert!(legit(k.key, who), "{who} approved {}'s call", KEYS[k.key]);
                            prop_assert!(exact, "approved with the wrong name");
                            prop_assert!(pending, "approved when not pending");
                            known[i].status = ApprovalStatus::Approved;
                        } else {
                            prop_assert!(!(legit(k.key, who) && exact && pending), "a legitimate approval failed: {r:?}");
                        }
                    }
                    Step::Deny { nth, who } => {
                        if known.is_empty() { continue; }
                        let i = nth % known.len();
                        let k = known[i].clone();
                        let r = f.gates.deny(&k.id, &approver(who)).await;
                        let pending = k.status == ApprovalStatus::Pending && k.expires_at > now;
                        if r.is_ok() {
                            prop_assert!(legit(k.key, who) && pending, "an illegitimate denial");
                            known[i].status = ApprovalStatus::Denied;
                        } else {
                            prop_assert!(!(legit(k.key, who) && pending), "a legitimate denial failed: {r:?}");
                        }
                    }
                    Step::Advance(secs) => f.clock.advance(Duration::seconds(secs)),
                }
            }
            // Not a check: how often the interleaving reached the point that matters.
            let _ = allowed;
            Ok(())
        })?;
    }
}
