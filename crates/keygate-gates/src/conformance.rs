//! The checks every [`GateStore`] backend must pass (feature `conformance`).
//!
//! A backend's tests call [`run`] on a fresh, empty store. Failures panic with a
//! message naming the broken rule, as test assertions do.

#![allow(
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "a test suite reports failures by panicking"
)]

use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::approval::{Approval, ApprovalQuery, ApprovalStatus, Claimed, DecidedBy};
use crate::arguments::Arguments;
use crate::store::{
    Challenge, EvidenceQuery, EvidenceRead, GateStore, SessionBinding, SessionTouch, Taken,
};

/// When the suite's challenges are issued (whole seconds: every backend keeps those).
const ISSUED: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

fn challenge(name: &str, key: &str, session: &str) -> Challenge {
    Challenge {
        challenge: format!("{name:0<32}"),
        key_id: key.to_owned(),
        session_id: session.to_owned(),
        tool: "service.delete".to_owned(),
        target: "worker".to_owned(),
        arguments_sha256: [7; 32],
        issued_at: ISSUED,
        expires_at: ISSUED + Duration::seconds(300),
    }
}

async fn take(store: &dyn GateStore, c: &str, key: &str, session: &str) -> Taken {
    store
        .take_challenge(c, key, session)
        .await
        .unwrap_or_else(|e| panic!("take_challenge failed: {e}"))
}

async fn put(store: &dyn GateStore, c: &Challenge) {
    store
        .put_challenge(c)
        .await
        .unwrap_or_else(|e| panic!("put_challenge failed: {e}"));
}

/// Runs every check on `store`, which must be empty.
pub async fn run(store: Arc<dyn GateStore>) {
    a_challenge_keeps_its_binding(&*store).await;
    only_its_key_and_session_take_a_challenge(&*store).await;
    concurrent_takes_hand_it_out_once(store.clone()).await;
    evidence_is_bound_and_ages(&*store).await;
    stateless_evidence_is_its_own_record(&*store).await;
    a_session_is_bound_to_one_key(&*store).await;
    a_session_binding_expires_unless_refreshed(&*store).await;
    a_session_keeps_whether_it_elicits(&*store).await;
    concurrent_binds_give_a_session_to_one_key(store.clone()).await;
    an_approval_keeps_its_fields(&*store).await;
    an_approval_is_claimed_only_by_its_call(&*store).await;
    an_approval_is_decided_once_while_pending(&*store).await;
    concurrent_claims_use_an_approval_once(store.clone()).await;
    pending_approvals_are_listed_by_tenant_and_counted_by_key(&*store).await;
    a_nonce_is_spent_once(store.clone()).await;
    purge_forgets_what_expired(&*store).await;
}

/// A pending approval `id` of key `key` in tenant `tn_1` for `service.delete` on
/// `worker` with arguments `args`, asked at [`ISSUED`], live 300 s.
fn approval(id: &str, key: &str, args: &serde_json::Value) -> Approval {
    Approval {
        id: id.to_owned(),
        tenant_id: "tn_1".to_owned(),
        key_id: key.to_owned(),
        user_id: Some("us_ann".to_owned()),
        user_name: Some("ann".to_owned()),
        tool: "service.delete".to_owned(),
        target: "worker".to_owned(),
        arguments: Arguments::from_args(args),
        created_at: ISSUED,
        expires_at: ISSUED + Duration::seconds(300),
        status: ApprovalStatus::Pending,
        decided_by: None,
        closed_at: None,
    }
}

fn decider(at: OffsetDateTime) -> DecidedBy {
    DecidedBy {
        key_id: "annskey".to_owned(),
        user_id: "us_ann".to_owned(),
        name: "ann".to_owned(),
        at,
    }
}

async fn put_approval(store: &dyn GateStore, a: &Approval) {
    store
        .put_approval(a)
        .await
        .unwrap_or_else(|e| panic!("put_approval failed: {e}"));
}

async fn get_approval(store: &dyn GateStore, id: &str) -> Option<Approval> {
    store
        .get_approval(id)
        .await
        .unwrap_or_else(|e| panic!("get_approval failed: {e}"))
}

async fn claim_query(store: &dyn GateStore, query: ApprovalQuery<'_>) -> Claimed {
    store
        .claim_approval(query)
        .await
        .unwrap_or_else(|e| panic!("claim_approval failed: {e}"))
}

async fn claim(store: &dyn GateStore, a: &Approval, key: &str, at: OffsetDateTime) -> Claimed {
    let query = ApprovalQuery {
        key_id: key,
        tool: &a.tool,
        target: &a.target,
        arguments_sha256: &a.arguments.digest(),
        now: at,
    };
    claim_query(store, query).await
}

/// Approval `id` of key `k1` for `args` ([`approval`]), stored and decided `status` at
/// `at`, which must change it.
async fn decided_approval(
    store: &dyn GateStore,
    id: &str,
    args: &serde_json::Value,
    status: ApprovalStatus,
    at: OffsetDateTime,
) -> Approval {
    let a = approval(id, "k1", args);
    put_approval(store, &a).await;
    assert!(
        decide(store, &a.id, status, at).await.is_some(),
        "{id} is decided while pending"
    );
    a
}

async fn decide(
    store: &dyn GateStore,
    id: &str,
    status: ApprovalStatus,
    at: OffsetDateTime,
) -> Option<Approval> {
    store
        .decide_approval(id, status, &decider(at))
        .await
        .unwrap_or_else(|e| panic!("decide_approval failed: {e}"))
}

/// Every field comes back as stored: arguments (hidden characters and all), a tenant
/// key's missing user, the decider.
pub async fn an_approval_keeps_its_fields(store: &dyn GateStore) {
    let args = serde_json::json!({"service": "worker", "image": "a\u{200b}:1", "n": [1.5, null, {"b": true, "a": "é"}]});
    let mut a = approval("ap-fields", "k1", &args);
    a.user_id = None;
    a.user_name = None;
    put_approval(store, &a).await;
    assert_eq!(
        get_approval(store, &a.id).await,
        Some(a.clone()),
        "an approval comes back as stored"
    );
    assert_eq!(
        get_approval(store, "ap-none").await,
        None,
        "an unknown approval"
    );
    let at = ISSUED + Duration::seconds(5);
    let decided = decide(store, &a.id, ApprovalStatus::Denied, at).await;
    let expected = Approval {
        status: ApprovalStatus::Denied,
        decided_by: Some(decider(at)),
        ..a.clone()
    };
    assert_eq!(
        decided,
        Some(expected.clone()),
        "deciding returns the decided approval"
    );
    assert_eq!(
        get_approval(store, &a.id).await,
        Some(expected),
        "and keeps it"
    );
}

/// A pending approval is found only by its key, tool, target and arguments; once
/// approved it is used by the first claim and never again; an expired one is never
/// used; a denied one is reported once.
pub async fn an_approval_is_claimed_only_by_its_call(store: &dyn GateStore) {
    let args = serde_json::json!({"service": "worker"});
    let a = approval("ap-claim", "k1", &args);
    put_approval(store, &a).await;
    let at = ISSUED + Duration::seconds(1);
    assert_eq!(
        claim(store, &a, "k1", at).await,
        Claimed::Pending(a.clone()),
        "its call finds it pending"
    );
    assert_eq!(
        claim(store, &a, "k2", at).await,
        Claimed::Nothing,
        "another key's call"
    );
    let other_args = Arguments::from_args(&serde_json::json!({"service": "worker", "force": true}));
    let other = ApprovalQuery {
        key_id: "k1",
        tool: &a.tool,
        target: &a.target,
        arguments_sha256: &other_args.digest(),
        now: at,
    };
    assert_eq!(
        claim_query(store, other).await,
        Claimed::Nothing,
        "other arguments"
    );
    for (tool, target) in [("service.replace", "worker"), ("service.delete", "web")] {
        let elsewhere = ApprovalQuery {
            key_id: "k1",
            tool,
            target,
            arguments_sha256: &a.arguments.digest(),
            now: at,
        };
        assert_eq!(
            claim_query(store, elsewhere).await,
            Claimed::Nothing,
            "another tool or target: {tool} {target}"
        );
    }
    assert!(
        decide(store, &a.id, ApprovalStatus::Approved, at)
            .await
            .is_some()
    );
    assert_eq!(
        claim(store, &a, "k2", at).await,
        Claimed::Nothing,
        "another key cannot use it"
    );
    let used = claim(store, &a, "k1", ISSUED + Duration::seconds(2)).await;
    let Claimed::Approved(used) = used else {
        panic!("its call uses the approved approval, got {used:?}");
    };
    assert_eq!(used.status, ApprovalStatus::Used);
    assert_eq!(used.closed_at, Some(ISSUED + Duration::seconds(2)));
    assert_eq!(
        claim(store, &a, "k1", ISSUED + Duration::seconds(3)).await,
        Claimed::Nothing,
        "used once"
    );
    assert_eq!(
        get_approval(store, &a.id).await.map(|a| a.status),
        Some(ApprovalStatus::Used)
    );

    let late = decided_approval(
        store,
        "ap-late",
        &serde_json::json!({"service": "worker", "late": 1}),
        ApprovalStatus::Approved,
        at,
    )
    .await;
    assert_eq!(
        claim(store, &late, "k1", late.expires_at).await,
        Claimed::Nothing,
        "an approval is not used at or after its expiry"
    );
    let denied = decided_approval(
        store,
        "ap-denied",
        &serde_json::json!({"service": "worker", "denied": 1}),
        ApprovalStatus::Denied,
        at,
    )
    .await;
    assert!(
        matches!(claim(store, &denied, "k1", at).await, Claimed::Denied(d) if d.id == denied.id),
        "a denial is reported"
    );
    assert_eq!(
        claim(store, &denied, "k1", at).await,
        Claimed::Nothing,
        "once"
    );
}

/// Only a pending, unexpired approval is decided, and only once.
pub async fn an_approval_is_decided_once_while_pending(store: &dyn GateStore) {
    let at = ISSUED + Duration::seconds(1);
    let a = decided_approval(
        store,
        "ap-once",
        &serde_json::json!({"service": "worker", "once": 1}),
        ApprovalStatus::Approved,
        at,
    )
    .await;
    assert_eq!(
        decide(store, &a.id, ApprovalStatus::Denied, at).await,
        None,
        "decided once"
    );
    assert_eq!(
        decide(store, &a.id, ApprovalStatus::Approved, at).await,
        None,
        "decided once"
    );
    let b = approval(
        "ap-expired",
        "k1",
        &serde_json::json!({"service": "worker", "once": 2}),
    );
    put_approval(store, &b).await;
    assert_eq!(
        decide(store, &b.id, ApprovalStatus::Approved, b.expires_at).await,
        None,
        "not after expiry"
    );
    assert_eq!(
        decide(store, &b.id, ApprovalStatus::Used, at).await,
        None,
        "only approve or deny"
    );
    assert_eq!(
        decide(store, "ap-unknown", ApprovalStatus::Approved, at).await,
        None
    );
    assert_eq!(
        get_approval(store, &b.id).await.map(|a| a.status),
        Some(ApprovalStatus::Pending)
    );
}

/// Of concurrent claims of one approved approval, exactly one uses it.
pub async fn concurrent_claims_use_an_approval_once(store: Arc<dyn GateStore>) {
    let a = approval(
        "ap-race",
        "k1",
        &serde_json::json!({"service": "worker", "race": 1}),
    );
    put_approval(&*store, &a).await;
    let at = ISSUED + Duration::seconds(1);
    assert!(
        decide(&*store, &a.id, ApprovalStatus::Approved, at)
            .await
            .is_some()
    );
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(
            async move { claim(&*store, &a, "k1", at).await },
        ));
    }
    let mut used = 0;
    for task in tasks {
        match task.await {
            Ok(Claimed::Approved(_)) => used += 1,
            Ok(_) => {}
            Err(e) => panic!("a claim panicked: {e}"),
        }
    }
    assert_eq!(used, 1, "exactly one concurrent claim uses the approval");
}

/// Pending approvals are listed per tenant (oldest first) and counted per key; decided
/// and expired ones are neither.
pub async fn pending_approvals_are_listed_by_tenant_and_counted_by_key(store: &dyn GateStore) {
    let base = ISSUED + Duration::hours(1);
    let mut made = Vec::new();
    for (i, (id, tenant, key)) in [
        ("ap-l1", "tn_list", "kl1"),
        ("ap-l2", "tn_list", "kl2"),
        ("ap-l3", "tn_other", "kl3"),
        ("ap-l4", "tn_list", "kl1"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut a = approval(id, key, &serde_json::json!({"service": "worker", "i": i}));
        a.tenant_id = tenant.to_owned();
        a.created_at = base + Duration::seconds(i64::try_from(i).unwrap_or(0));
        a.expires_at = a.created_at + Duration::seconds(300);
        put_approval(store, &a).await;
        made.push(a);
    }
    let list = |at| async move {
        store
            .pending_approvals("tn_list", at)
            .await
            .unwrap_or_else(|e| panic!("pending_approvals failed: {e}"))
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<_>>()
    };
    let count = |key: &'static str, at| async move {
        store
            .count_pending_approvals(key, at)
            .await
            .unwrap_or_else(|e| panic!("count_pending_approvals failed: {e}"))
    };
    let at = base + Duration::seconds(10);
    assert_eq!(
        list(at).await,
        ["ap-l1", "ap-l2", "ap-l4"],
        "its tenant's, oldest first"
    );
    assert_eq!(count("kl1", at).await, 2);
    assert!(
        decide(store, "ap-l1", ApprovalStatus::Denied, at)
            .await
            .is_some()
    );
    assert_eq!(
        list(at).await,
        ["ap-l2", "ap-l4"],
        "a decided one is not pending"
    );
    assert_eq!(count("kl1", at).await, 1);
    let after = made[1].expires_at;
    assert_eq!(
        list(after).await,
        ["ap-l4"],
        "an expired one is not pending"
    );
    assert_eq!(count("kl2", after).await, 0);
}

/// A binding of `key` from `at`, live for `ttl` seconds.
fn binding(key: &str, at: OffsetDateTime, ttl: i64) -> SessionBinding {
    SessionBinding::new(key, at, Duration::seconds(ttl))
}

async fn bind(store: &dyn GateStore, session: &str, b: &SessionBinding) -> bool {
    store
        .bind_session(session, b)
        .await
        .unwrap_or_else(|e| panic!("bind_session failed: {e}"))
}

/// Whether the client declared elicitation (form, URL) is kept with the binding,
/// through a refresh and a rebind by the same key.
async fn a_session_keeps_whether_it_elicits(store: &dyn GateStore) {
    let (asks, plain) = ("conf-session-elicits", "conf-session-plain");
    let b = SessionBinding {
        elicitation: true,
        elicitation_url: true,
        ..binding("kEl", ISSUED, 60)
    };
    assert!(bind(store, asks, &b).await);
    assert!(bind(store, plain, &binding("kEl", ISSUED, 60)).await);
    assert_eq!(bound(store, asks, ISSUED).await, Some(b.clone()));
    assert!(touch(store, asks, "kEl", ISSUED + Duration::seconds(10), 60).await);
    assert_eq!(
        bound(store, asks, ISSUED + Duration::seconds(10))
            .await
            .map(|b| b.elicitation),
        Some(true),
        "a refresh keeps it"
    );
    assert_eq!(
        bound(store, plain, ISSUED).await.map(|b| b.elicitation),
        Some(false)
    );
    let again = SessionBinding {
        elicitation: false,
        elicitation_url: false,
        ..b
    };
    assert!(bind(store, asks, &again).await);
    assert_eq!(
        bound(store, asks, ISSUED)
            .await
            .map(|b| (b.elicitation, b.elicitation_url)),
        Some((false, false)),
        "a rebind by its key replaces it"
    );
}

async fn bound(
    store: &dyn GateStore,
    session: &str,
    now: OffsetDateTime,
) -> Option<SessionBinding> {
    store
        .session_binding(session, now)
        .await
        .unwrap_or_else(|e| panic!("session_binding failed: {e}"))
}

async fn touch(
    store: &dyn GateStore,
    session: &str,
    key: &str,
    at: OffsetDateTime,
    ttl: i64,
) -> bool {
    store
        .touch_session(
            session,
            SessionTouch {
                key_id: key,
                seen_at: at,
                expires_at: at + Duration::seconds(ttl),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("touch_session failed: {e}"))
}

async fn end(store: &dyn GateStore, session: &str, key: &str) -> bool {
    store
        .end_session(session, key)
        .await
        .unwrap_or_else(|e| panic!("end_session failed: {e}"))
}

/// A session comes back bound to the key that bound it; another key can neither take
/// it over, refresh it nor end it; its own key ends it.
pub async fn a_session_is_bound_to_one_key(store: &dyn GateStore) {
    // Ids as clients send them: any visible ASCII, up to 128 characters.
    let long = "~".repeat(128);
    for session in ["sess-A", long.as_str(), "a\\b'\"c%_"] {
        let mine = binding("kA", ISSUED, 3600);
        assert_eq!(
            bound(store, session, ISSUED).await,
            None,
            "{session}: unbound at first"
        );
        assert!(
            bind(store, session, &mine).await,
            "{session}: a fresh session binds"
        );
        assert_eq!(
            bound(store, session, ISSUED).await,
            Some(mine.clone()),
            "{session}: the binding comes back as bound"
        );
        let theirs = binding("kD", ISSUED + Duration::seconds(1), 3600);
        assert!(
            !bind(store, session, &theirs).await,
            "{session}: another key cannot take over a live session"
        );
        assert!(
            !touch(store, session, "kD", ISSUED + Duration::seconds(2), 7200).await,
            "{session}: another key cannot refresh it"
        );
        assert!(
            !end(store, session, "kD").await,
            "{session}: another key cannot end it"
        );
        assert_eq!(
            bound(store, session, ISSUED + Duration::seconds(3)).await,
            Some(mine.clone()),
            "{session}: others left the binding as it was"
        );
        let again = binding("kA", ISSUED + Duration::seconds(4), 60);
        assert!(
            bind(store, session, &again).await,
            "{session}: its own key binds it again"
        );
        assert_eq!(
            bound(store, session, ISSUED + Duration::seconds(5)).await,
            Some(again)
        );
        assert!(
            end(store, session, "kA").await,
            "{session}: its key ends it"
        );
        assert_eq!(
            bound(store, session, ISSUED + Duration::seconds(5)).await,
            None,
            "{session}: an ended session is unbound"
        );
        assert!(!end(store, session, "kA").await, "{session}: it ends once");
    }
    assert!(bind(store, "sess-1", &binding("kA", ISSUED, 60)).await);
    assert_eq!(
        bound(store, "sess-2", ISSUED).await,
        None,
        "another id is another session"
    );
    assert_eq!(
        bound(store, "SESS-1", ISSUED).await,
        None,
        "session ids are compared exactly"
    );
    assert!(end(store, "sess-1", "kA").await);
}

/// A binding counts until `expires_at`; a refresh by its key before then moves it;
/// once expired it is gone, cannot be refreshed, and the id can be bound anew.
pub async fn a_session_binding_expires_unless_refreshed(store: &dyn GateStore) {
    let s = "sess-expiry";
    let b = binding("kA", ISSUED, 60);
    assert!(bind(store, s, &b).await);
    let at = |secs| ISSUED + Duration::seconds(secs);
    assert!(
        bound(store, s, at(59)).await.is_some(),
        "live before it expires"
    );
    assert_eq!(bound(store, s, at(60)).await, None, "expired at expires_at");
    assert!(
        touch(store, s, "kA", at(30), 60).await,
        "its key refreshes it"
    );
    let refreshed = bound(store, s, at(89)).await;
    assert_eq!(
        refreshed,
        Some(SessionBinding {
            seen_at: at(30),
            expires_at: at(90),
            ..b
        }),
        "a refresh moves seen_at and expires_at"
    );
    assert_eq!(
        bound(store, s, at(90)).await,
        None,
        "the refreshed binding expires"
    );
    assert!(
        !touch(store, s, "kA", at(90), 60).await,
        "an expired binding cannot be refreshed"
    );
    assert!(
        bind(store, s, &binding("kD", at(91), 60)).await,
        "after expiry the id can be bound by another key"
    );
    assert_eq!(
        bound(store, s, at(92)).await.map(|b| b.key_id).as_deref(),
        Some("kD")
    );
    assert!(end(store, s, "kD").await);
}

/// Of concurrent binds of one session id by different keys, exactly one wins, and the
/// binding names the winner.
pub async fn concurrent_binds_give_a_session_to_one_key(store: Arc<dyn GateStore>) {
    let s = "sess-race";
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i}");
            (bind(&*store, s, &binding(&key, ISSUED, 60)).await, key)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await {
            Ok((true, key)) => winners.push(key),
            Ok((false, _)) => {}
            Err(e) => panic!("a bind panicked: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one key binds the session: {winners:?}"
    );
    assert_eq!(
        bound(&*store, s, ISSUED).await.map(|b| b.key_id),
        winners.pop(),
        "the binding is the winner's"
    );
}

/// Every field comes back as stored, the argument digest included.
pub async fn a_challenge_keeps_its_binding(store: &dyn GateStore) {
    let mut c = challenge("binding", "k1", "s1");
    c.tool = "service.replace".to_owned();
    c.target = "ｋé\u{200b}y".to_owned();
    c.arguments_sha256 = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
    put(store, &c).await;
    assert_eq!(
        take(store, &c.challenge, "k1", "s1").await,
        Taken::Taken(c),
        "a challenge must come back with its binding"
    );
}

/// Another key or session is told whose it is but cannot take it; its owner takes it
/// once.
pub async fn only_its_key_and_session_take_a_challenge(store: &dyn GateStore) {
    let c = challenge("owner", "k1", "s1");
    put(store, &c).await;
    for (key, session) in [("k2", "s1"), ("k1", "s2"), ("k2", "s2")] {
        assert_eq!(
            take(store, &c.challenge, key, session).await,
            Taken::NotYours(c.clone()),
            "{key}/{session} must not take k1/s1's challenge"
        );
    }
    assert_eq!(
        take(store, &c.challenge, "k1", "s1").await,
        Taken::Taken(c.clone()),
        "the owner takes the challenge after others presented it"
    );
    for (key, session) in [("k1", "s1"), ("k2", "s2")] {
        assert_eq!(
            take(store, &c.challenge, key, session).await,
            Taken::Unknown,
            "a taken challenge is gone"
        );
    }
    assert_eq!(
        take(store, &"x".repeat(32), "k1", "s1").await,
        Taken::Unknown,
        "an unknown challenge"
    );
}

/// Of many concurrent takes by the owner, exactly one gets the challenge.
pub async fn concurrent_takes_hand_it_out_once(store: Arc<dyn GateStore>) {
    let c = challenge("race", "k1", "s1");
    put(&*store, &c).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let name = c.challenge.clone();
        tasks.push(tokio::spawn(async move {
            let (key, session) = if i % 4 == 3 {
                ("k2", "s1")
            } else {
                ("k1", "s1")
            };
            take(&*store, &name, key, session).await
        }));
    }
    let mut taken = 0;
    for task in tasks {
        match task.await {
            Ok(Taken::Taken(_)) => taken += 1,
            Ok(Taken::NotYours(_) | Taken::Unknown) => {}
            Err(e) => panic!("a take panicked: {e}"),
        }
    }
    assert_eq!(taken, 1, "exactly one concurrent take gets the challenge");
}

/// Evidence counts for its key, session, tool and target, from its time on.
pub async fn evidence_is_bound_and_ages(store: &dyn GateStore) {
    let read = EvidenceRead {
        key_id: "k1".to_owned(),
        session_id: Some("s1".to_owned()),
        tool: "service.events".to_owned(),
        target: "api".to_owned(),
        at: ISSUED,
    };
    store
        .record_evidence(&read)
        .await
        .unwrap_or_else(|e| panic!("record_evidence failed: {e}"));
    let read_by = |key: &'static str, session: &'static str, target: &'static str, since| async move {
        store
            .evidence_read(EvidenceQuery {
                key_id: key,
                session_id: Some(session),
                tool: "service.events",
                target,
                since,
            })
            .await
            .unwrap_or_else(|e| panic!("evidence_read failed: {e}"))
    };
    assert!(
        read_by("k1", "s1", "api", ISSUED).await,
        "its own read counts"
    );
    assert!(
        !read_by("k2", "s1", "api", ISSUED).await,
        "another key's read"
    );
    assert!(
        !read_by("k1", "s2", "api", ISSUED).await,
        "another session's read"
    );
    assert!(
        !read_by("k1", "s1", "web", ISSUED).await,
        "another target's read"
    );
    assert!(
        !read_by("k1", "s1", "api", ISSUED + Duration::seconds(1)).await,
        "a read before `since`"
    );
}

/// A stateless read (no session) counts for its key, tool and target from its time
/// on, for stateless look-ups only: a session's read never counts as a stateless one,
/// nor a stateless one for any session, even one whose id looks empty.
pub async fn stateless_evidence_is_its_own_record(store: &dyn GateStore) {
    let at = ISSUED + Duration::seconds(10);
    let read = |key: &str, session: Option<&str>, tool: &str| EvidenceRead {
        key_id: key.to_owned(),
        session_id: session.map(str::to_owned),
        tool: tool.to_owned(),
        target: "api".to_owned(),
        at,
    };
    for r in [
        read("sk1", None, "service.logs.build"),
        read("sk1", Some("s1"), "service.logs.runtime"),
    ] {
        store
            .record_evidence(&r)
            .await
            .unwrap_or_else(|e| panic!("record_evidence failed: {e}"));
    }
    let read_by = |key: &'static str, session: Option<&'static str>, tool: &'static str, since| async move {
        store
            .evidence_read(EvidenceQuery {
                key_id: key,
                session_id: session,
                tool,
                target: "api",
                since,
            })
            .await
            .unwrap_or_else(|e| panic!("evidence_read failed: {e}"))
    };
    assert!(
        read_by("sk1", None, "service.logs.build", at).await,
        "a stateless read counts for stateless look-ups"
    );
    assert!(
        !read_by("sk1", None, "service.logs.build", at + Duration::seconds(1)).await,
        "a stateless read before `since`"
    );
    assert!(
        !read_by("sk2", None, "service.logs.build", at).await,
        "another key's stateless read"
    );
    assert!(
        !read_by("sk1", Some("s1"), "service.logs.build", at).await,
        "a stateless read does not count in a session"
    );
    assert!(
        !read_by("sk1", Some(""), "service.logs.build", at).await,
        "nor for an empty session id"
    );
    assert!(
        !read_by("sk1", None, "service.logs.runtime", at).await,
        "a session's read does not count for stateless look-ups"
    );
    // A later stateless read replaces the earlier one.
    store
        .record_evidence(&EvidenceRead {
            at: at + Duration::seconds(5),
            ..read("sk1", None, "service.logs.build")
        })
        .await
        .unwrap_or_else(|e| panic!("record_evidence failed: {e}"));
    assert!(
        read_by("sk1", None, "service.logs.build", at + Duration::seconds(5)).await,
        "the later stateless read counts from its time"
    );
}

/// A nonce is spent by its first presentation only, also under concurrency; other
/// nonces are not affected; purge forgets nonces once they expired, and only those.
pub async fn a_nonce_is_spent_once(store: Arc<dyn GateStore>) {
    let until = ISSUED + Duration::seconds(300);
    let spend = |store: Arc<dyn GateStore>, nonce: &'static str, until| async move {
        store
            .spend_nonce(nonce, until)
            .await
            .unwrap_or_else(|e| panic!("spend_nonce failed: {e}"))
    };
    assert!(
        spend(store.clone(), "nonce-one", until).await,
        "a fresh nonce is spent"
    );
    assert!(
        !spend(store.clone(), "nonce-one", until).await,
        "a spent nonce is refused"
    );
    assert!(
        spend(store.clone(), "nonce-two", until).await,
        "another nonce is not affected"
    );
    let racers: Vec<_> = (0..8)
        .map(|_| tokio::spawn(spend(store.clone(), "nonce-race", until)))
        .collect();
    let mut won = 0;
    for r in racers {
        if r.await.unwrap_or_else(|e| panic!("spend task failed: {e}")) {
            won += 1;
        }
    }
    assert_eq!(won, 1, "concurrent spends of one nonce: exactly one wins");
    // Purged only once expired: until then a replay stays refused.
    store
        .purge(until - Duration::seconds(1), ISSUED - Duration::days(1))
        .await
        .unwrap_or_else(|e| panic!("purge failed: {e}"));
    assert!(
        !spend(store.clone(), "nonce-one", until).await,
        "purge forgot a nonce before it expired"
    );
    store
        .purge(until, ISSUED - Duration::days(1))
        .await
        .unwrap_or_else(|e| panic!("purge failed: {e}"));
    assert!(
        spend(store.clone(), "nonce-one", until + Duration::seconds(300)).await,
        "an expired nonce is forgotten by purge"
    );
}

/// Purge removes expired challenges, expired session bindings and stale evidence, and
/// counts them.
pub async fn purge_forgets_what_expired(store: &dyn GateStore) {
    // Whatever the earlier checks left, purge it first.
    let later = ISSUED + Duration::days(1);
    store
        .purge(later, later)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {e}"));
    let mut fresh = challenge("fresh", "k1", "s1");
    fresh.issued_at = later;
    fresh.expires_at = later + Duration::seconds(300);
    put(store, &fresh).await;
    let mut old = challenge("old", "k1", "s1");
    old.issued_at = later - Duration::seconds(10);
    old.expires_at = later + Duration::seconds(1);
    put(store, &old).await;
    assert!(bind(store, "sess-fresh", &binding("k1", later, 300)).await);
    assert!(
        bind(
            store,
            "sess-old",
            &binding("k1", later - Duration::seconds(10), 11)
        )
        .await
    );
    let mut gone_approval = approval("ap-purged", "k1", &serde_json::json!({}));
    gone_approval.expires_at = later;
    put_approval(store, &gone_approval).await;
    let mut kept_approval = approval("ap-kept", "k1", &serde_json::json!({}));
    kept_approval.expires_at = later + Duration::seconds(1);
    put_approval(store, &kept_approval).await;
    let gone = store
        .purge(later + Duration::seconds(1), later)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {e}"));
    assert_eq!(
        gone, 3,
        "one challenge, one session binding and one approval expired"
    );
    assert_eq!(
        get_approval(store, "ap-purged").await,
        None,
        "a purged approval is gone"
    );
    assert!(
        get_approval(store, "ap-kept").await.is_some(),
        "an approval expired after evidence_before is kept (shown as expired)"
    );
    // Gone, not merely expired: a refresh dated before its expiry finds nothing.
    assert!(
        !touch(store, "sess-old", "k1", later, 60).await,
        "a purged binding is gone"
    );
    assert!(
        bound(store, "sess-fresh", later + Duration::seconds(1))
            .await
            .is_some(),
        "an unexpired binding survives purge"
    );
    assert_eq!(
        take(store, &old.challenge, "k1", "s1").await,
        Taken::Unknown,
        "a purged challenge is gone"
    );
    assert_eq!(
        take(store, &fresh.challenge, "k1", "s1").await,
        Taken::Taken(fresh),
        "an unexpired challenge survives purge"
    );
}
