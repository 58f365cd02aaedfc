//! The gate state machine.

use std::sync::Arc;

use keygate_scopes::GateSpec;
use serde_json::Value;
use time::Duration;

use crate::clock::Clock;
use crate::confirm::Confirm;
use crate::decision::{Decision, InvalidReason, Outcome};
use crate::error::GateError;
use crate::history::FailureHistory;
use crate::store::{Challenge, EvidenceRead, GateStore};

/// Default lifetime of a challenge: 300 seconds.
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::seconds(300);

/// Default lifetime of an evidence read: one hour. Logs read longer ago than that
/// no longer count as having diagnosed the target.
pub const DEFAULT_EVIDENCE_TTL: Duration = Duration::hours(1);

/// Length of a challenge in base62 characters: 32 × log2(62) ≈ 190 bits.
pub const CHALLENGE_LEN: usize = 32;

/// The `confirm` argument of a call, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfirmArg {
    /// No `confirm` argument.
    Absent,
    /// A well-formed confirmation.
    Given(Confirm),
    /// A `confirm` argument that is not `{"challenge", "target"}`; says what is wrong.
    Malformed(String),
}

/// A gated tool call, as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateCall<'a> {
    /// The public id of the calling key.
    pub key_id: &'a str,
    /// The call's `Mcp-Session-Id`, if any.
    pub session_id: Option<&'a str>,
    /// The tool called, such as `service.delete`.
    pub tool: &'a str,
    /// The target named by the gate's target argument, if the call has it.
    pub target: Option<&'a str>,
    /// The confirmation sent with the call.
    pub confirm: ConfirmArg,
}

impl<'a> GateCall<'a> {
    /// A call of `tool` on `target` without confirmation.
    pub fn new(
        key_id: &'a str,
        session_id: Option<&'a str>,
        tool: &'a str,
        target: &'a str,
    ) -> Self {
        Self {
            key_id,
            session_id,
            tool,
            target: Some(target),
            confirm: ConfirmArg::Absent,
        }
    }

    /// The same call with a confirmation.
    #[must_use]
    pub fn with_confirm(mut self, confirm: Confirm) -> Self {
        self.confirm = ConfirmArg::Given(confirm);
        self
    }

    /// Reads the target (the gate's target argument) and `confirm` from a call's
    /// arguments. Never fails: a missing target or malformed confirm becomes a
    /// `CONFIRMATION_INVALID` decision explaining it.
    pub fn from_args(
        spec: &GateSpec,
        key_id: &'a str,
        session_id: Option<&'a str>,
        tool: &'a str,
        args: &'a Value,
    ) -> Self {
        let confirm = match Confirm::from_args(args) {
            Ok(None) => ConfirmArg::Absent,
            Ok(Some(c)) => ConfirmArg::Given(c),
            Err(GateError::MalformedConfirm { detail }) => ConfirmArg::Malformed(detail),
            Err(other) => ConfirmArg::Malformed(other.to_string()),
        };
        Self {
            key_id,
            session_id,
            tool,
            target: spec.target(args),
            confirm,
        }
    }
}

/// Confirmation gates: issues and checks one-time challenges, tracks evidence reads.
///
/// Challenges are bound to key id + session id + tool + target and consumed by the
/// first call that presents them, whether or not the rest matches. Evidence reads are
/// bound to key id + session id + evidence tool + target.
#[derive(Debug, Clone)]
pub struct Gates {
    store: Arc<dyn GateStore>,
    clock: Arc<dyn Clock>,
    challenge_ttl: Duration,
    evidence_ttl: Duration,
}

impl Gates {
    /// Gates on `store`, reading time from `clock`, with the default lifetimes.
    pub fn new(store: Arc<dyn GateStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            challenge_ttl: DEFAULT_CHALLENGE_TTL,
            evidence_ttl: DEFAULT_EVIDENCE_TTL,
        }
    }

    /// Sets how long a challenge stays valid (default 300 s).
    #[must_use]
    pub fn with_challenge_ttl(mut self, ttl: Duration) -> Self {
        self.challenge_ttl = ttl;
        self
    }

    /// Sets how long an evidence read counts (default one hour).
    #[must_use]
    pub fn with_evidence_ttl(mut self, ttl: Duration) -> Self {
        self.evidence_ttl = ttl;
        self
    }

    /// How long a challenge stays valid.
    pub fn challenge_ttl(&self) -> Duration {
        self.challenge_ttl
    }

    /// Records that `key_id` successfully called evidence tool `tool` for `target` in
    /// `session_id` (call it after the upstream answered without error).
    ///
    /// # Errors
    ///
    /// [`GateError::Store`] when the store fails.
    pub async fn record_evidence(
        &self,
        key_id: &str,
        session_id: &str,
        tool: &str,
        target: &str,
    ) -> Result<(), GateError> {
        self.store
            .record_evidence(&EvidenceRead {
                key_id: key_id.to_owned(),
                session_id: session_id.to_owned(),
                tool: tool.to_owned(),
                target: target.to_owned(),
                at: self.clock.now(),
            })
            .await
    }

    /// Forgets expired challenges and stale evidence reads; returns how many went.
    ///
    /// # Errors
    ///
    /// [`GateError::Store`] when the store fails.
    pub async fn purge(&self) -> Result<u64, GateError> {
        let now = self.clock.now();
        self.store.purge(now, now - self.evidence_ttl).await
    }

    /// Decides a call of a tool guarded by `spec`.
    ///
    /// `history` is what the gate's status tool said about the target; it matters for
    /// evidence gates only, where `None` (not determined) counts as failure history.
    ///
    /// In order: no target → `CONFIRMATION_INVALID`; protected target →
    /// `SELF_SERVICE_BLOCKED` (even with a confirm); evidence gate without failure
    /// history → allow; no session → `CONFIRMATION_INVALID`; malformed confirm →
    /// `CONFIRMATION_INVALID`; no confirm → (evidence gates: `DIAGNOSIS_REQUIRED` while
    /// evidence is unread) `CONFIRMATION_REQUIRED` with a fresh challenge; a confirm
    /// → allow only when its challenge was issued to this key, in this session, for
    /// this tool and target, has not expired or been used, and `confirm.target` is
    /// exactly the target.
    ///
    /// # Errors
    ///
    /// [`GateError::Store`] or [`GateError::Random`]: no decision could be made, and
    /// the call must not proceed.
    pub async fn decide(
        &self,
        spec: &GateSpec,
        call: &GateCall<'_>,
        history: Option<&FailureHistory>,
    ) -> Result<Decision, GateError> {
        let decision = |outcome| Decision {
            operation: call.tool.to_owned(),
            target_arg: spec.target_arg().to_owned(),
            target: call.target.map(str::to_owned),
            key_id: call.key_id.to_owned(),
            session_id: call.session_id.map(str::to_owned),
            outcome,
        };
        let invalid = |reason| Ok(decision(Outcome::ConfirmationInvalid { reason }));

        let Some(target) = call.target else {
            return invalid(InvalidReason::MissingTarget);
        };
        if spec.is_protected(target) {
            return Ok(decision(Outcome::SelfServiceBlocked));
        }
        let evidence_tools = match spec {
            GateSpec::Evidence { evidence_tools, .. } => {
                if history.is_some_and(|h| !h.is_gated()) {
                    return Ok(decision(Outcome::Allow { confirmed: false }));
                }
                Some(evidence_tools)
            }
            _ => None,
        };
        let Some(session) = call.session_id else {
            return invalid(InvalidReason::NoSession);
        };
        let confirm = match &call.confirm {
            ConfirmArg::Malformed(detail) => {
                return invalid(InvalidReason::MalformedConfirm {
                    detail: detail.clone(),
                });
            }
            ConfirmArg::Absent => None,
            ConfirmArg::Given(c) => Some(c),
        };
        let now = self.clock.now();

        let Some(confirm) = confirm else {
            if let Some(tools) = evidence_tools {
                let since = now - self.evidence_ttl;
                let mut missing = Vec::new();
                for tool in tools {
                    if !self
                        .store
                        .evidence_read(call.key_id, session, tool, target, since)
                        .await?
                    {
                        missing.push(tool.clone());
                    }
                }
                if !missing.is_empty() {
                    return Ok(decision(Outcome::DiagnosisRequired {
                        evidence_missing: missing,
                        evidence_tools: tools.clone(),
                        history: history.cloned().unwrap_or_else(|| FailureHistory::Unknown {
                            reason: "the status tool was not asked".to_owned(),
                        }),
                    }));
                }
            }
            let challenge = Challenge {
                challenge: keygate_token::random_base62(CHALLENGE_LEN)?,
                key_id: call.key_id.to_owned(),
                session_id: session.to_owned(),
                tool: call.tool.to_owned(),
                target: target.to_owned(),
                issued_at: now,
                expires_at: now + self.challenge_ttl,
            };
            self.store.put_challenge(&challenge).await?;
            return Ok(decision(Outcome::ConfirmationRequired {
                challenge: challenge.challenge,
                expires_at: challenge.expires_at,
            }));
        };

        // A typo in confirm.target is caught before the challenge is spent.
        if confirm.target != target {
            return invalid(InvalidReason::TargetMismatch {
                given: confirm.target.clone(),
            });
        }
        let Some(issued) = self.store.take_challenge(&confirm.challenge).await? else {
            return invalid(InvalidReason::UnknownChallenge);
        };
        let reason = if issued.expires_at <= now {
            Some(InvalidReason::Expired)
        } else if issued.session_id != session {
            Some(InvalidReason::OtherSession)
        } else if issued.key_id != call.key_id {
            Some(InvalidReason::OtherKey)
        } else if issued.tool != call.tool {
            Some(InvalidReason::OtherTool)
        } else if issued.target != target {
            Some(InvalidReason::OtherTarget)
        } else {
            None
        };
        match reason {
            Some(reason) => invalid(reason),
            None => Ok(decision(Outcome::Allow { confirmed: true })),
        }
    }
}
