//! Shared fixtures.

use std::sync::Arc;

use keygate_gates::{
    Decision, FailureHistory, GateCall, Gates, ManualClock, MemoryGateStore, Outcome,
};
use keygate_scopes::{ApprovalBy, GateSpec};
use time::macros::datetime;

pub(crate) struct Fixture {
    pub(crate) gates: Gates,
    pub(crate) clock: Arc<ManualClock>,
}

impl Fixture {
    /// `gates.decide` for an approval or evidence call without failure history given.
    pub(crate) async fn decide(&self, spec: &GateSpec, call: &GateCall<'_>) -> Decision {
        self.gates.decide(spec, call, None).await.expect("decide")
    }

    /// `gates.decide` given the target's failure history.
    pub(crate) async fn decide_after(
        &self,
        spec: &GateSpec,
        call: &GateCall<'_>,
        history: &FailureHistory,
    ) -> Decision {
        self.gates
            .decide(spec, call, Some(history))
            .await
            .expect("decide")
    }

    /// Records that `key` in `session` read evidence `tool` about `target`.
    pub(crate) async fn record_evidence(&self, key: &str, session: &str, tool: &str, target: &str) {
        self.gates
            .record_evidence(key, session, tool, target)
            .await
            .expect("record");
    }
}

pub(crate) fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00:00 UTC)));
    let gates = Gates::new(Arc::new(MemoryGateStore::new()), clock.clone());
    Fixture { gates, clock }
}

/// [`fixture`] with an MRTR secret, so that the gate seals request states and
/// elicitation ids.
pub(crate) fn fixture_with_secret() -> Fixture {
    let clock = Arc::new(ManualClock::new(datetime!(2025-06-01 12:00:00 UTC)));
    let secret = keygate_gates::MrtrSecret::new(vec![7; 32]).expect("a long enough secret");
    let gates =
        Gates::new(Arc::new(MemoryGateStore::new()), clock.clone()).with_mrtr_secret(secret);
    Fixture { gates, clock }
}

/// The delete gate with the agent-relayed challenge (`approval = "agent"`), whose
/// mechanics most of these tests check.
pub(crate) fn delete_gate() -> GateSpec {
    GateSpec::approval("service", vec!["keygate".to_owned()]).with_approval_by(ApprovalBy::Agent)
}

/// The delete gate approved by a person (the default).
pub(crate) fn person_delete_gate() -> GateSpec {
    GateSpec::approval("service", vec!["keygate".to_owned()])
}

pub(crate) const EVIDENCE: [&str; 3] = [
    "service.events",
    "service.logs.build",
    "service.logs.runtime",
];

pub(crate) fn replace_gate() -> GateSpec {
    GateSpec::evidence(
        "service",
        "service.status",
        "has_failure_history",
        EVIDENCE.iter().map(|s| (*s).to_owned()).collect(),
    )
    .with_protect(vec!["keygate".to_owned()])
    .with_approval_by(ApprovalBy::Agent)
}

/// The challenge of a `CONFIRMATION_REQUIRED` decision.
pub(crate) fn challenge(d: &Decision) -> String {
    match d.outcome() {
        Outcome::ConfirmationRequired { challenge, .. } => challenge.clone(),
        other => panic!("expected confirmation required, got {other:?}"),
    }
}
