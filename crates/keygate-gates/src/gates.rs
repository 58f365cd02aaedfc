//! The gate state machine.

use std::sync::Arc;

use keygate_scopes::GateSpec;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::approval::{
    APPROVAL_ID_LEN, Approval, ApprovalError, ApprovalQuery, ApprovalStatus, Approver, Caller,
    Claimed, DecidedBy,
};
use crate::arguments::Arguments;
use crate::clock::Clock;
use crate::confirm::Confirm;
use crate::decision::{Channel, Decision, InvalidReason, Outcome};
use crate::error::GateError;
use crate::history::FailureHistory;
use crate::mrtr::MrtrSecret;
use crate::store::{Challenge, EvidenceQuery, EvidenceRead, GateStore, Taken};

/// Default lifetime of a challenge: 300 seconds.
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::seconds(300);

/// Default lifetime of an evidence read: one hour. Logs read longer ago than that
/// no longer count as having diagnosed the target.
pub const DEFAULT_EVIDENCE_TTL: Duration = Duration::hours(1);

/// Length of a challenge in base62 characters: 32 × log2(62) ≈ 190 bits.
pub const CHALLENGE_LEN: usize = 32;

/// Default lifetime of a person approval: 300 seconds from when it was asked for.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::seconds(300);

/// Default most approvals one key may have pending at once; beyond it a gated call
/// is answered `TOO_MANY_APPROVALS`, so an agent cannot flood its person's list.
pub const DEFAULT_MAX_PENDING_APPROVALS: usize = 20;

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
    /// The call's arguments without `confirm`, which a challenge is bound to.
    pub arguments: Arguments,
    /// Whose key makes the call (tenant, user), recorded with a person approval so
    /// that the right person decides it. Default: no tenant, which nobody can approve.
    pub caller: Caller,
}

impl<'a> GateCall<'a> {
    /// The decision `outcome` on this call under `spec` (not read as a protected name).
    pub(crate) fn decision(&self, spec: &GateSpec, outcome: Outcome) -> Decision {
        Decision {
            operation: self.tool.to_owned(),
            target_arg: spec.target_arg().to_owned(),
            target: self.target.map(str::to_owned),
            key_id: self.key_id.to_owned(),
            session_id: self.session_id.map(str::to_owned),
            arguments: self.arguments.clone(),
            protected_as: None,
            outcome,
        }
    }

    /// The approval look-up of this call on `target` (the call's target, checked), whose
    /// arguments digest to `arguments_sha256`, at `now`.
    pub(crate) fn approval_query<'q>(
        &self,
        target: &'q str,
        arguments_sha256: &'q [u8; 32],
        now: OffsetDateTime,
    ) -> ApprovalQuery<'q>
    where
        'a: 'q,
    {
        ApprovalQuery {
            key_id: self.key_id,
            tool: self.tool,
            target,
            arguments_sha256,
            now,
        }
    }

    /// A call of `tool` on `target` without confirmation and with no arguments besides
    /// the target (see [`GateCall::with_arguments`]).
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
            arguments: Arguments::default(),
            caller: Caller::default(),
        }
    }

    /// The same call made by a key of `caller` (needed for person approvals).
    #[must_use]
    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// The same call with these arguments (`confirm` in them is left out; the target
    /// is not read from them).
    #[must_use]
    pub fn with_arguments(mut self, args: &Value) -> Self {
        self.arguments = Arguments::from_args(args);
        self
    }

    /// The same call with a confirmation.
    #[must_use]
    pub fn with_confirm(mut self, confirm: Confirm) -> Self {
        self.confirm = ConfirmArg::Given(confirm);
        self
    }

    /// Reads the target (the gate's target argument), `confirm` and the canonical
    /// arguments from a call's arguments. Never fails: a missing target or malformed
    /// confirm becomes a `CONFIRMATION_INVALID` decision explaining it.
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
            arguments: Arguments::from_args(args),
            caller: Caller::default(),
        }
    }
}

/// Confirmation gates: asks for and checks person approvals, issues and checks
/// one-time challenges (`approval = "agent"`), tracks evidence reads.
///
/// Approvals are bound to key id + tool + target + canonical arguments; only a person
/// ([`Approver`], see [`Approval::may_be_decided_by`]) decides one, and it lets the
/// identical call through once.
///
/// Challenges are bound to key id + session id + tool + target + canonical arguments.
/// Only the key and session they were issued to can consume them; the first such call
/// that presents one spends it, whether or not the tool, target and arguments match.
/// Evidence reads are bound to key id + session id + evidence tool + target; those of
/// stateless requests (no session) to key id + evidence tool + target, and count for
/// the key's stateless calls within the gate's `evidence_window` only.
#[derive(Debug, Clone)]
pub struct Gates {
    store: Arc<dyn GateStore>,
    clock: Arc<dyn Clock>,
    challenge_ttl: Duration,
    evidence_ttl: Duration,
    approval_ttl: Duration,
    max_pending_approvals: usize,
    public_url: Option<String>,
    mrtr_secret: Option<Arc<MrtrSecret>>,
}

impl Gates {
    /// Gates on `store`, reading time from `clock`, with the default lifetimes.
    pub fn new(store: Arc<dyn GateStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            challenge_ttl: DEFAULT_CHALLENGE_TTL,
            evidence_ttl: DEFAULT_EVIDENCE_TTL,
            approval_ttl: DEFAULT_APPROVAL_TTL,
            max_pending_approvals: DEFAULT_MAX_PENDING_APPROVALS,
            public_url: None,
            mrtr_secret: None,
        }
    }

    /// Sets how long a person approval stays valid, from when it is asked for
    /// (default 300 s).
    #[must_use]
    pub fn with_approval_ttl(mut self, ttl: Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// Sets the most approvals one key may have pending (default
    /// [`DEFAULT_MAX_PENDING_APPROVALS`]).
    #[must_use]
    pub fn with_max_pending_approvals(mut self, max: usize) -> Self {
        self.max_pending_approvals = max;
        self
    }

    /// Sets the URL people reach the gateway at, such as `https://keys.example.com`:
    /// approval URLs become `<url>/approvals/<id>` (default: relative,
    /// `/approvals/<id>`).
    #[must_use]
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        let url: String = url.into();
        self.public_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// Sets the secret MRTR `requestState`s are sealed with (HMAC-SHA256), which turns
    /// the MRTR channel on ([`Gates::mrtr_ask`]). Gateways that share a gate store must
    /// share it too, or a state sealed by one is refused by another.
    #[must_use]
    pub fn with_mrtr_secret(mut self, secret: MrtrSecret) -> Self {
        self.mrtr_secret = Some(Arc::new(secret));
        self
    }

    /// The MRTR secret, when set.
    pub(crate) fn mrtr_secret(&self) -> Option<&MrtrSecret> {
        self.mrtr_secret.as_deref()
    }

    /// How long a person approval stays valid.
    pub fn approval_ttl(&self) -> Duration {
        self.approval_ttl
    }

    /// Where the person approves approval `id`.
    pub fn approval_url(&self, id: &str) -> String {
        format!(
            "{}/approvals/{id}",
            self.public_url.as_deref().unwrap_or("")
        )
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

    /// The gate store (for state kept next to gate state, such as the binding of MCP
    /// sessions to keys).
    pub fn store(&self) -> &Arc<dyn GateStore> {
        &self.store
    }

    /// The clock decisions are made by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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
        self.record(key_id, Some(session_id), tool, target).await
    }

    /// Records that `key_id` successfully called evidence tool `tool` for `target` in a
    /// stateless request (one without a session; call it after the upstream answered
    /// without error). It counts for the key's later stateless calls within the gate's
    /// `evidence_window`, never for a session.
    ///
    /// # Errors
    ///
    /// [`GateError::Store`] when the store fails.
    pub async fn record_stateless_evidence(
        &self,
        key_id: &str,
        tool: &str,
        target: &str,
    ) -> Result<(), GateError> {
        self.record(key_id, None, tool, target).await
    }

    /// Stores an evidence read of now, in `session_id` or stateless.
    async fn record(
        &self,
        key_id: &str,
        session_id: Option<&str>,
        tool: &str,
        target: &str,
    ) -> Result<(), GateError> {
        self.store
            .record_evidence(&EvidenceRead {
                key_id: key_id.to_owned(),
                session_id: session_id.map(str::to_owned),
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

    /// Whether deciding `call` needs the failure history of its target: an evidence
    /// gate on a target that is present, not protected and free of hidden characters.
    /// Otherwise [`Gates::decide`] refuses (or, for approval gates, ignores history),
    /// so the caller need not ask the status tool.
    pub fn needs_history(&self, spec: &GateSpec, call: &GateCall<'_>) -> bool {
        matches!(spec, GateSpec::Evidence { .. })
            && call
                .target
                .is_some_and(|t| !spec.is_protected(t) && keygate_scopes::hidden_char(t).is_none())
    }

    /// Decides a call of a tool guarded by `spec`.
    ///
    /// `history` is what the gate's status tool said about the target; it matters for
    /// evidence gates only, where `None` (not determined) counts as failure history.
    ///
    /// In order: no target → `CONFIRMATION_INVALID`; protected target (or one that
    /// reads as it, see [`GateSpec::protected_as`]) → `SELF_SERVICE_BLOCKED` (approval
    /// and evidence gates, with or without session or confirm); a target holding a
    /// control, format or invisible character → `CONFIRMATION_INVALID`
    /// (`invalid_target`); evidence gate without failure history → allow.
    ///
    /// Then, for a person gate ([`keygate_scopes::ApprovalBy::is_person`]: `person`, the default, or `page`): (evidence gates:
    /// `DIAGNOSIS_REQUIRED` while evidence is unread: in a session, by this key in this
    /// session; without one, by this key statelessly within the gate's
    /// `evidence_window`) an approved, unexpired approval for exactly this key, tool, target and
    /// canonical arguments → allow, and it is used ([`Outcome::Approved`]); a denied one
    /// not yet answered → `CONFIRMATION_DECLINED` (then closed); a pending one →
    /// `APPROVAL_REQUIRED` with it again; more than the key's cap pending →
    /// `TOO_MANY_APPROVALS`; else `APPROVAL_REQUIRED` with a new approval recording
    /// [`GateCall::caller`]. `confirm` is never read: nothing the agent sends approves.
    ///
    /// For an agent gate ([`keygate_scopes::ApprovalBy::Agent`]): no session
    /// → `CONFIRMATION_INVALID`; malformed confirm → `CONFIRMATION_INVALID`; no
    /// confirm → (evidence gates: `DIAGNOSIS_REQUIRED` while evidence is unread)
    /// `CONFIRMATION_REQUIRED` with a fresh challenge bound to key, session, tool,
    /// target and arguments; a confirm → allow only when `confirm.target` is exactly
    /// the target and its challenge was issued to this key, in this session, for this
    /// tool, target and canonical arguments, and has not expired or been used.
    ///
    /// A challenge presented by another key or session is left for its owner; one
    /// presented by its owner is spent even when the tool, target or arguments differ.
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
        let decision = |outcome| call.decision(spec, outcome);
        let invalid = |reason| Ok(decision(Outcome::ConfirmationInvalid { reason }));

        let Some(target) = call.target else {
            return invalid(InvalidReason::MissingTarget);
        };
        if let Some(protected) = spec.protected_as(target) {
            return Ok(Decision {
                protected_as: Some(protected.to_owned()),
                ..decision(Outcome::SelfServiceBlocked)
            });
        }
        if let Some(character) = keygate_scopes::hidden_char(target) {
            return invalid(InvalidReason::InvalidTarget { character });
        }
        let evidence_tools = match spec {
            GateSpec::Evidence {
                evidence_tools,
                evidence_window,
                ..
            } => {
                if history.is_some_and(|h| !h.is_gated()) {
                    return Ok(decision(Outcome::Allow { confirmed: false }));
                }
                Some((evidence_tools, *evidence_window))
            }
            _ => None,
        };
        if spec.approval_by().is_person() {
            return self
                .decide_person(call, target, evidence_tools, history, decision)
                .await;
        }
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
            if let Some((tools, _)) = evidence_tools {
                let since = now - self.evidence_ttl;
                if let Some(missing) = self
                    .missing_evidence(call.key_id, Some(session), tools, target, since)
                    .await?
                {
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
                arguments_sha256: call.arguments.digest(),
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
        let issued = match self
            .store
            .take_challenge(&confirm.challenge, call.key_id, session)
            .await?
        {
            Taken::Taken(issued) => issued,
            // Another key or session: refused, and left for its owner.
            Taken::NotYours(issued) if issued.session_id != session => {
                return invalid(InvalidReason::OtherSession);
            }
            Taken::NotYours(_) => return invalid(InvalidReason::OtherKey),
            Taken::Unknown => return invalid(InvalidReason::UnknownChallenge),
        };
        let reason = if issued.expires_at <= now {
            Some(InvalidReason::Expired)
        } else if issued.session_id != session {
            // The store returned another session's challenge as ours: refuse anyway.
            Some(InvalidReason::OtherSession)
        } else if issued.key_id != call.key_id {
            Some(InvalidReason::OtherKey)
        } else if issued.tool != call.tool {
            Some(InvalidReason::OtherTool)
        } else if issued.target != target {
            Some(InvalidReason::OtherTarget)
        } else if issued.arguments_sha256 != call.arguments.digest() {
            Some(InvalidReason::OtherArguments)
        } else {
            None
        };
        match reason {
            Some(reason) => invalid(reason),
            None => Ok(decision(Outcome::Allow { confirmed: true })),
        }
    }

    /// The person-approval part of [`Gates::decide`], after the protected-target,
    /// hidden-character and failure-history checks.
    async fn decide_person(
        &self,
        call: &GateCall<'_>,
        target: &str,
        evidence_tools: Option<(&Vec<String>, std::time::Duration)>,
        history: Option<&FailureHistory>,
        decision: impl Fn(Outcome) -> Decision,
    ) -> Result<Decision, GateError> {
        let now = self.clock.now();
        if let Some((tools, window)) = evidence_tools {
            // In a session, its reads count for as long as reads live; without one, the
            // key's stateless reads count within the gate's window (never longer than
            // reads live, as purge forgets them then).
            let since = match call.session_id {
                Some(_) => now - self.evidence_ttl,
                None => {
                    let window = Duration::try_from(window).unwrap_or(self.evidence_ttl);
                    now - window.min(self.evidence_ttl)
                }
            };
            if let Some(missing) = self
                .missing_evidence(call.key_id, call.session_id, tools, target, since)
                .await?
            {
                return Ok(decision(Outcome::DiagnosisRequired {
                    evidence_missing: missing,
                    evidence_tools: tools.clone(),
                    history: history.cloned().unwrap_or_else(|| FailureHistory::Unknown {
                        reason: "the status tool was not asked".to_owned(),
                    }),
                }));
            }
        }
        // `confirm` is never read here: whatever the agent sends, only a person approves.
        let digest = call.arguments.digest();
        let claimed = self
            .store
            .claim_approval(call.approval_query(target, &digest, now))
            .await?;
        let required = |a: &Approval| {
            decision(Outcome::ApprovalRequired {
                approval_id: a.id.clone(),
                approval_url: self.approval_url(&a.id),
                expires_at: a.expires_at,
            })
        };
        match claimed {
            Claimed::Approved(a) => {
                return Ok(decision(Outcome::Approved {
                    approver_user_id: a.decider_user_id().unwrap_or_default(),
                    approval_id: a.id,
                    channel: Channel::Page,
                }));
            }
            Claimed::Denied(a) => {
                return Ok(decision(Outcome::ConfirmationDeclined {
                    decided_by: a.decider_user_id(),
                    approval_id: a.id,
                }));
            }
            Claimed::Pending(a) => return Ok(required(&a)),
            // A kind of claim this gate does not know: ask anew.
            _ => {}
        }
        let pending = self.store.count_pending_approvals(call.key_id, now).await?;
        if pending >= u64::try_from(self.max_pending_approvals).unwrap_or(u64::MAX) {
            return Ok(decision(Outcome::TooManyApprovals {
                limit: self.max_pending_approvals,
            }));
        }
        let approval = Approval {
            id: keygate_token::random_base62(APPROVAL_ID_LEN)?,
            tenant_id: call.caller.tenant_id.clone(),
            key_id: call.key_id.to_owned(),
            user_id: call.caller.user_id.clone(),
            user_name: call.caller.user_name.clone(),
            tool: call.tool.to_owned(),
            target: target.to_owned(),
            arguments: call.arguments.clone(),
            created_at: now,
            expires_at: now + self.approval_ttl,
            status: ApprovalStatus::Pending,
            decided_by: None,
            closed_at: None,
        };
        self.store.put_approval(&approval).await?;
        Ok(required(&approval))
    }

    /// The evidence tools not read by `key_id` for `target` in `session` (`None`:
    /// statelessly) at or after `since`, or `None` when every one was.
    async fn missing_evidence(
        &self,
        key_id: &str,
        session: Option<&str>,
        tools: &[String],
        target: &str,
        since: OffsetDateTime,
    ) -> Result<Option<Vec<String>>, GateError> {
        let mut missing = Vec::new();
        for tool in tools {
            if !self
                .store
                .evidence_read(EvidenceQuery {
                    key_id,
                    session_id: session,
                    tool,
                    target,
                    since,
                })
                .await?
            {
                missing.push(tool.clone());
            }
        }
        Ok((!missing.is_empty()).then_some(missing))
    }

    /// Approval `id` as `approver` may see it.
    ///
    /// # Errors
    ///
    /// [`ApprovalError::InsufficientScope`] when `approver` is a tenant key, lacks
    /// `gates:approve` or is the calling key itself; [`ApprovalError::NotFound`] when
    /// there is no such approval, it is another tenant's, or it is not `approver`'s to
    /// decide; [`ApprovalError::Store`] when the store fails.
    pub async fn approval_for(
        &self,
        id: &str,
        approver: &Approver,
    ) -> Result<Approval, ApprovalError> {
        if !approver.can_approve() {
            return Err(ApprovalError::InsufficientScope);
        }
        let Some(a) = self.store.get_approval(id).await? else {
            return Err(ApprovalError::NotFound);
        };
        if a.tenant_id != approver.tenant_id {
            return Err(ApprovalError::NotFound);
        }
        if a.key_id == approver.key_id {
            return Err(ApprovalError::InsufficientScope);
        }
        if !a.may_be_decided_by(approver) {
            return Err(ApprovalError::NotFound);
        }
        Ok(a)
    }

    /// The approvals pending now that `approver` may decide, oldest first.
    ///
    /// # Errors
    ///
    /// [`ApprovalError::InsufficientScope`] when `approver` is a tenant key or lacks
    /// `gates:approve`; [`ApprovalError::Store`] when the store fails.
    pub async fn approvals_for(&self, approver: &Approver) -> Result<Vec<Approval>, ApprovalError> {
        if !approver.can_approve() {
            return Err(ApprovalError::InsufficientScope);
        }
        let now = self.clock.now();
        let mut list = self
            .store
            .pending_approvals(&approver.tenant_id, now)
            .await?;
        list.retain(|a| a.may_be_decided_by(approver));
        Ok(list)
    }

    /// `approver` approves approval `id`, typing `typed_target`, which must be
    /// exactly the approval's target (no folding: the person types what the call
    /// names). The identical call of the approval's key then proceeds once.
    ///
    /// # Errors
    ///
    /// As [`Gates::approval_for`], then [`ApprovalError::NotPending`] when it is
    /// decided, used or expired, [`ApprovalError::TargetMismatch`] (nothing changes)
    /// when the typed name differs.
    pub async fn approve(
        &self,
        id: &str,
        approver: &Approver,
        typed_target: &str,
    ) -> Result<Approval, ApprovalError> {
        self.decide_approval(id, approver, Some(typed_target), ApprovalStatus::Approved)
            .await
    }

    /// `approver` denies approval `id`: the call's next identical retry is answered
    /// `CONFIRMATION_DECLINED`.
    ///
    /// # Errors
    ///
    /// As [`Gates::approval_for`], then [`ApprovalError::NotPending`] when it is
    /// decided, used or expired.
    pub async fn deny(&self, id: &str, approver: &Approver) -> Result<Approval, ApprovalError> {
        self.decide_approval(id, approver, None, ApprovalStatus::Denied)
            .await
    }

    async fn decide_approval(
        &self,
        id: &str,
        approver: &Approver,
        typed_target: Option<&str>,
        status: ApprovalStatus,
    ) -> Result<Approval, ApprovalError> {
        let a = self.approval_for(id, approver).await?;
        let now = self.clock.now();
        if !a.is_pending(now) {
            return Err(ApprovalError::NotPending {
                status: a.status_name(now),
            });
        }
        if typed_target.is_some_and(|typed| typed != a.target) {
            return Err(ApprovalError::TargetMismatch);
        }
        let by = DecidedBy {
            key_id: approver.key_id.clone(),
            user_id: approver.user_id.clone().unwrap_or_default(),
            name: approver.user_name.clone().unwrap_or_default(),
            at: now,
        };
        match self.store.decide_approval(id, status, &by).await? {
            Some(decided) => Ok(decided),
            // Decided (or expired) between the read and the write.
            None => {
                let status = match self.store.get_approval(id).await? {
                    Some(a) => a.status_name(now),
                    None => "expired",
                };
                Err(ApprovalError::NotPending { status })
            }
        }
    }
}
