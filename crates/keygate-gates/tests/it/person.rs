//! Person approvals (`approval = "person"`): the flow, who may decide, and a property
//! test over interleavings of calls, approvals, denials and time.

use std::collections::HashMap;

use keygate_gates::{
    ApprovalError, ApprovalStatus, Approver, Caller, Clock, Decision, ElicitationRefusal, GateCall,
    MrtrAnswer, Outcome,
};
use keygate_scopes::GateSpec;
use proptest::prelude::*;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::util::{EVIDENCE, Fixture, fixture, fixture_with_secret, person_delete_gate};

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

/// Ann's agent calls with `args`: the call, and the id of the approval it waits for.
async fn ann_asks<'a>(f: &Fixture, args: &'a Value) -> (GateCall<'a>, String) {
    let c = call("agentkey0001", args, ann_agent());
    let id = approval_id(&decide(f, &c).await);
    (c, id)
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
    let (c, id) = ann_asks(&f, &args).await;
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
    let (c, id) = ann_asks(&f, &args).await;
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
    let d = f.decide(&spec, &c).await;
    assert_eq!(d.code(), Some("DIAGNOSIS_REQUIRED"));
    for tool in EVIDENCE {
        f.record_evidence("agentkey0001", "s1", tool, "worker")
            .await;
    }
    let d = f.decide(&spec, &c).await;
    let id = approval_id(&d);
    f.gates
        .approve(&id, &ann(), "worker")
        .await
        .expect("approve");
    assert!(f.decide(&spec, &c).await.is_allowed());
}

// The property test.

/// The calling keys: Ann's and Bob's agent keys (user keys), and a tenant key.
const KEYS: [&str; 3] = ["agentkeyann1", "agentkeybob1", "tenantkey001"];

/// The sessions an elicitation on the stream is sealed to and answered in.
const SESSIONS: [&str; 2] = ["session-one-0001", "session-two-0002"];

fn caller(key: usize) -> Caller {
    match key {
        0 => Caller::user_key(TENANT, "us_ann", "ann"),
        1 => Caller::user_key(TENANT, "us_bob", "bob"),
        _ => Caller::tenant_key(TENANT),
    }
}

/// The user of a calling key, as an answer on the stream names it.
fn user(key: usize) -> Option<(&'static str, &'static str)> {
    match key {
        0 => Some(("us_ann", "ann")),
        1 => Some(("us_bob", "bob")),
        _ => None,
    }
}

fn arguments(i: usize) -> Value {
    match i {
        0 => json!({"service": "web"}),
        1 => json!({"service": "web", "force": true}),
        _ => json!({"service": "api"}),
    }
}

fn target_of(args: usize) -> &'static str {
    if args == 2 { "api" } else { "web" }
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

/// What the client's person answers (MRTR retry, or on the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typed {
    Exact,
    /// Accepted with a name that is not exactly the target.
    Wrong,
    Decline,
}

fn typed() -> impl Strategy<Value = Typed> {
    prop_oneof![3 => Just(Typed::Exact), 1 => Just(Typed::Wrong), 1 => Just(Typed::Decline)]
}

fn answer(t: Typed, target: &str) -> MrtrAnswer {
    match t {
        Typed::Exact => MrtrAnswer::Accept(Some(target.to_owned())),
        Typed::Wrong => MrtrAnswer::Accept(Some(target.to_uppercase())),
        Typed::Decline => MrtrAnswer::Decline,
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A plain call (with a made-up `confirm` when `confirm`); an `APPROVAL_REQUIRED`
    /// answer is also sealed as an MRTR state and as an elicitation in `session`.
    Call {
        key: usize,
        args: usize,
        confirm: bool,
        session: usize,
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
    /// The MRTR retry presenting the `nth` sealed state: by its own key with its own
    /// arguments (`own`), or by `key` with `args`; one character altered (`alter`).
    Present {
        nth: usize,
        own: bool,
        key: usize,
        args: usize,
        alter: Option<usize>,
        typed: Typed,
    },
    /// The answer to the `nth` elicitation on the stream: in its own session or
    /// `session`, by its own key or `key`.
    Answer {
        nth: usize,
        own_session: bool,
        session: usize,
        own_key: bool,
        key: usize,
        typed: Typed,
    },
    Advance(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, any::<bool>(), 0..2usize)
            .prop_map(|(key, args, confirm, session)| Step::Call { key, args, confirm, session }),
        2 => (any::<usize>(), 0..7usize, prop::bool::weighted(0.8))
            .prop_map(|(nth, who, exact)| Step::Approve { nth, who, exact }),
        1 => (any::<usize>(), 0..7usize).prop_map(|(nth, who)| Step::Deny { nth, who }),
        3 => (
            any::<usize>(),
            prop::bool::weighted(0.6),
            0..3usize,
            0..3usize,
            prop::option::weighted(0.15, any::<usize>()),
            typed(),
        )
            .prop_map(|(nth, own, key, args, alter, typed)| Step::Present { nth, own, key, args, alter, typed }),
        2 => (any::<usize>(), prop::bool::weighted(0.7), 0..2usize, prop::bool::weighted(0.7), 0..3usize, typed())
            .prop_map(|(nth, own_session, session, own_key, key, typed)| {
                Step::Answer { nth, own_session, session, own_key, key, typed }
            }),
        1 => (0..200i64).prop_map(Step::Advance),
    ]
}

/// Who decided an approval (the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A person on the page: approver `who`.
    Page(usize),
    /// The calling key's client (MRTR or the stream), answering as its person.
    Client(usize),
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
    via: Option<Via>,
}

impl Known {
    fn pending(&self, now: OffsetDateTime) -> bool {
        self.status == ApprovalStatus::Pending && self.expires_at > now
    }
}

/// A sealed MRTR `requestState` as issued.
#[derive(Debug, Clone)]
struct Sealed {
    state: String,
    approval: usize,
    key: usize,
    args: usize,
    expires_at: OffsetDateTime,
    /// Its nonce was spent (presented by its key, unexpired, unaltered).
    spent: bool,
}

/// An elicitation on the stream as sent.
#[derive(Debug, Clone)]
struct Asked {
    request_id: String,
    approval: usize,
    session: usize,
}

/// What the store's `claim_approval` finds for a call (the model), closing it.
enum Claim {
    Approved(usize),
    Denied(usize),
    Pending(usize),
    Nothing,
}

fn claim(known: &mut [Known], key: usize, args: usize, now: OffsetDateTime) -> Claim {
    let mine = |k: &Known| k.key == key && k.args == args;
    if let Some(i) = known.iter().position(|k| {
        mine(k) && k.status == ApprovalStatus::Approved && !k.closed && k.expires_at > now
    }) {
        known[i].status = ApprovalStatus::Used;
        known[i].closed = true;
        return Claim::Approved(i);
    }
    if let Some(i) = known
        .iter()
        .position(|k| mine(k) && k.status == ApprovalStatus::Denied && !k.closed)
    {
        known[i].closed = true;
        return Claim::Denied(i);
    }
    known
        .iter()
        .position(|k| mine(k) && k.pending(now))
        .map_or(Claim::Nothing, Claim::Pending)
}

/// What a call or an MRTR retry must come to (the model).
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Runs, using this approval.
    Allowed(String),
    Declined(String),
    /// `APPROVAL_REQUIRED` with this approval (`None`: a new one).
    Required(Option<String>),
    Invalid(&'static str),
}

fn outcome_of(o: &Outcome) -> Result<Expect, TestCaseError> {
    Ok(match o {
        Outcome::Approved { approval_id, .. } => Expect::Allowed(approval_id.clone()),
        Outcome::ConfirmationDeclined { approval_id, .. } => Expect::Declined(approval_id.clone()),
        Outcome::ApprovalRequired { approval_id, .. } => {
            Expect::Required(Some(approval_id.clone()))
        }
        Outcome::ConfirmationInvalid { reason } => Expect::Invalid(reason.as_str()),
        other => return Err(TestCaseError::fail(format!("unexpected outcome {other:?}"))),
    })
}

/// A person-verified call: run only on an approval of exactly its key and arguments,
/// decided by a legitimate person on the page or by the calling key's own client
/// answering a form sealed for exactly this call.
fn justified(k: &Known, key: usize, args: usize) -> bool {
    k.key == key
        && k.args == args
        && match k.via {
            Some(Via::Page(who)) => legit(key, who),
            Some(Via::Client(by)) => by == key,
            None => false,
        }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No call proceeds without an approval of a legitimate person for exactly its key
    /// and arguments, unexpired and unused; and every such approval lets exactly its
    /// call through once. The channels a client answers for its person are in the
    /// interleaving too: sealed MRTR `requestState`s presented as issued, altered, a
    /// second time, by another key or with other arguments, and answers on the stream
    /// from another session or key. Each outcome is the model's, reason included: a
    /// state works once, for its key, its arguments, before it expires.
    #[test]
    fn only_a_persons_approval_of_exactly_this_call_lets_it_through_once(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let f = fixture_with_secret();
            let spec = person_delete_gate();
            let mut known: Vec<Known> = Vec::new();
            let mut by_id: HashMap<String, usize> = HashMap::new();
            let mut states: Vec<Sealed> = Vec::new();
            let mut asks: Vec<Asked> = Vec::new();
            for step in steps {
                let now = f.clock.now();
                match step {
                    Step::Call { key, args, confirm, session } => {
                        let mut a = arguments(args);
                        if confirm {
                            let made_up = known.last().map_or("x".repeat(32), |k| k.id.clone());
                            a["confirm"] = json!({"challenge": made_up, "target": a["service"]});
                        }
                        let c = GateCall::from_args(&spec, KEYS[key], None, TOOL, &a)
                            .with_caller(caller(key));
                        let d = f.decide(&spec, &c).await;
                        let expected = match claim(&mut known, key, args, now) {
                            Claim::Approved(i) => {
                                prop_assert!(justified(&known[i], key, args), "ran on {:?}", known[i]);
                                Expect::Allowed(known[i].id.clone())
                            }
                            Claim::Denied(i) => Expect::Declined(known[i].id.clone()),
                            Claim::Pending(i) => Expect::Required(Some(known[i].id.clone())),
                            Claim::Nothing => Expect::Required(None),
                        };
                        let got = outcome_of(d.outcome())?;
                        match (&expected, &got) {
                            (Expect::Required(None), Expect::Required(Some(id))) => {
                                prop_assert!(!by_id.contains_key(id), "a new approval reuses an id");
                                let Outcome::ApprovalRequired { expires_at, .. } = d.outcome() else {
                                    unreachable!("matched above");
                                };
                                by_id.insert(id.clone(), known.len());
                                known.push(Known {
                                    id: id.clone(),
                                    key,
                                    args,
                                    target: target_of(args),
                                    expires_at: *expires_at,
                                    status: ApprovalStatus::Pending,
                                    closed: false,
                                    via: None,
                                });
                            }
                            _ => prop_assert_eq!(&got, &expected, "{} {:?}", KEYS[key], a),
                        }
                        if let Expect::Required(Some(id)) = &got {
                            let approval = by_id[id];
                            let ask = f.gates.mrtr_ask(&d).expect("random").expect("a secret is set");
                            prop_assert_eq!(ask.expires_at, known[approval].expires_at);
                            states.push(Sealed {
                                state: ask.request_state,
                                approval,
                                key,
                                args,
                                expires_at: ask.expires_at,
                                spent: false,
                            });
                            let e = f.gates.elicitation_ask(&d, SESSIONS[session])
                                .expect("random").expect("a secret is set");
                            asks.push(Asked { request_id: e.request_id, approval, session });
                        }
                    }
                    Step::Present { nth, own, key, args, alter, typed } => {
                        if states.is_empty() { continue; }
                        let si = nth % states.len();
                        let s = states[si].clone();
                        let (key, args) = if own { (s.key, s.args) } else { (key, args) };
                        let mut sealed = s.state.clone().into_bytes();
                        if let Some(pos) = alter {
                            let pos = pos % sealed.len();
                            sealed[pos] = if sealed[pos] == b'0' { b'1' } else { b'0' };
                        }
                        let sealed = String::from_utf8(sealed).expect("ASCII");
                        let a = arguments(args);
                        let c = GateCall::from_args(&spec, KEYS[key], None, TOOL, &a)
                            .with_caller(caller(key));
                        let out = f.gates
                            .answer_mrtr(&spec, &c, &sealed, &answer(typed, target_of(args)))
                            .await
                            .expect("answer_mrtr");
                        let expected = if alter.is_some() {
                            Expect::Invalid("invalid_request_state")
                        } else if key != s.key {
                            Expect::Invalid("request_state_other_key")
                        } else if now >= s.expires_at {
                            Expect::Invalid("request_state_expired")
                        } else if s.spent {
                            Expect::Invalid("request_state_used")
                        } else {
                            states[si].spent = true;
                            if args != s.args {
                                Expect::Invalid("request_state_other_arguments")
                            } else {
                                let accepted = typed == Typed::Exact;
                                let approval = &mut known[s.approval];
                                if approval.pending(now) {
                                    approval.status = if accepted {
                                        ApprovalStatus::Approved
                                    } else {
                                        ApprovalStatus::Denied
                                    };
                                    approval.via = Some(Via::Client(key));
                                }
                                let id = approval.id.clone();
                                match claim(&mut known, key, args, now) {
                                    // Declined naming the denial the claim closed, which
                                    // may be a newer one of this call than the state's.
                                    Claim::Denied(i) => Expect::Declined(known[i].id.clone()),
                                    _ if !accepted => Expect::Declined(id),
                                    Claim::Approved(i) => {
                                        prop_assert!(justified(&known[i], key, args), "ran on {:?}", known[i]);
                                        Expect::Allowed(known[i].id.clone())
                                    }
                                    Claim::Pending(_) | Claim::Nothing => Expect::Invalid("request_state_expired"),
                                }
                            }
                        };
                        prop_assert_eq!(outcome_of(out.decision.outcome())?, expected, "{} presenting {:?}", KEYS[key], s);
                    }
                    Step::Answer { nth, own_session, session, own_key, key, typed } => {
                        if asks.is_empty() { continue; }
                        let q = asks[nth % asks.len()].clone();
                        let k = known[q.approval].clone();
                        let session = if own_session { q.session } else { session };
                        let key = if own_key { k.key } else { key };
                        let r = f.gates
                            .answer_elicitation(SESSIONS[session], &q.request_id, KEYS[key], user(key), &answer(typed, k.target))
                            .await;
                        if session != q.session || key != k.key {
                            prop_assert!(matches!(r, Err(ElicitationRefusal::NotFound)), "{r:?}");
                        } else if !k.pending(now) {
                            prop_assert!(matches!(r, Err(ElicitationRefusal::NotPending)), "{r:?}");
                        } else {
                            let a = r.map_err(|e| TestCaseError::fail(format!("a pending answer refused: {e}")))?;
                            let status = if typed == Typed::Exact { ApprovalStatus::Approved } else { ApprovalStatus::Denied };
                            prop_assert_eq!(a.status, status);
                            known[q.approval].status = status;
                            known[q.approval].via = Some(Via::Client(key));
                        }
                    }
                    Step::Approve { nth, who, exact } => {
                        if known.is_empty() { continue; }
                        let i = nth % known.len();
                        let k = known[i].clone();
                        let typed = if exact { k.target.to_owned() } else { k.target.to_uppercase() };
                        let r = f.gates.approve(&k.id, &approver(who), &typed).await;
                        let pending = k.pending(now);
                        if r.is_ok() {
                            prop_assert!(legit(k.key, who), "{who} approved {}'s call", KEYS[k.key]);
                            prop_assert!(exact, "approved with the wrong name");
                            prop_assert!(pending, "approved when not pending");
                            known[i].status = ApprovalStatus::Approved;
                            known[i].via = Some(Via::Page(who));
                        } else {
                            prop_assert!(!(legit(k.key, who) && exact && pending), "a legitimate approval failed: {r:?}");
                        }
                    }
                    Step::Deny { nth, who } => {
                        if known.is_empty() { continue; }
                        let i = nth % known.len();
                        let k = known[i].clone();
                        let r = f.gates.deny(&k.id, &approver(who)).await;
                        let pending = k.pending(now);
                        if r.is_ok() {
                            prop_assert!(legit(k.key, who) && pending, "an illegitimate denial");
                            known[i].status = ApprovalStatus::Denied;
                            known[i].via = Some(Via::Page(who));
                        } else {
                            prop_assert!(!(legit(k.key, who) && pending), "a legitimate denial failed: {r:?}");
                        }
                    }
                    Step::Advance(secs) => f.clock.advance(Duration::seconds(secs)),
                }
            }
            Ok(())
        })?;
    }
}
