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

use crate::store::{Challenge, EvidenceRead, GateStore, Taken};

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
    purge_forgets_what_expired(&*store).await;
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
        session_id: "s1".to_owned(),
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
            .evidence_read(key, session, "service.events", target, since)
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

/// Purge removes expired challenges and stale evidence, and counts them.
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
    let gone = store
        .purge(later + Duration::seconds(1), later)
        .await
        .unwrap_or_else(|e| panic!("purge failed: {e}"));
    assert_eq!(gone, 1, "one challenge expired");
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
