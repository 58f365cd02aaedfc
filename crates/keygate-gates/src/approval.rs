//! Person approvals: a gated call waiting for a person to approve or deny it through
//! a channel the calling agent cannot answer by itself (the approval page).

use time::OffsetDateTime;

use crate::arguments::Arguments;
use crate::error::GateError;

/// Length of an approval id in base62 characters: 24 × log2(62) ≈ 143 bits. The id is
/// not a capability (deciding needs the approver's own key), but it is unguessable
/// anyway, so that ids say nothing about each other.
pub const APPROVAL_ID_LEN: usize = 24;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// A person approved it; the identical retry of its key will proceed once.
    Approved,
    /// A person denied it.
    Denied,
    /// The approved call ran; the approval can never be used again.
    Used,
}

impl ApprovalStatus {
    /// `pending`, `approved`, `denied` or `used`: how stores keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    /// The status written as [`ApprovalStatus::as_str`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "used" => Self::Used,
            _ => return None,
        })
    }
}

/// The person who decided an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBy {
    /// The key they signed in with.
    pub key_id: String,
    /// Their user id.
    pub user_id: String,
    /// Their user name.
    pub name: String,
    /// When they decided.
    pub at: OffsetDateTime,
}

/// One gated call waiting for (or decided by) a person: bound to the calling key, the
/// tool, the target and the canonical arguments (without `confirm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Its id ([`APPROVAL_ID_LEN`] base62 characters), in the approval URL.
    pub id: String,
    /// The tenant of the calling key.
    pub tenant_id: String,
    /// The calling key.
    pub key_id: String,
    /// The calling key's user (user keys); `None` for a tenant key.
    pub user_id: Option<String>,
    /// That user's name, for showing.
    pub user_name: Option<String>,
    /// The gated tool, such as `service.delete`.
    pub tool: String,
    /// The exact target, such as `web`.
    pub target: String,
    /// The call's arguments without `confirm`.
    pub arguments: Arguments,
    /// When it was asked for.
    pub created_at: OffsetDateTime,
    /// When it stops counting (pending or approved, it is then expired).
    pub expires_at: OffsetDateTime,
    /// Where it stands (see [`Approval::status_at`] for expiry).
    pub status: ApprovalStatus,
    /// Who approved or denied it.
    pub decided_by: Option<DecidedBy>,
    /// When the agent learned the outcome: the approved call ran (status
    /// [`ApprovalStatus::Used`]) or the denial was answered (status stays
    /// [`ApprovalStatus::Denied`]). A closed approval is never answered again.
    pub closed_at: Option<OffsetDateTime>,
}

impl Approval {
    /// Its status at `now`, as people are shown it: `None` for a pending or approved
    /// approval that expired (shown `expired`).
    pub fn status_at(&self, now: OffsetDateTime) -> Option<ApprovalStatus> {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if self.expires_at <= now => None,
            other => Some(other),
        }
    }

    /// `pending`, `approved`, `denied`, `used` or `expired` at `now`.
    pub fn status_name(&self, now: OffsetDateTime) -> &'static str {
        self.status_at(now)
            .map_or("expired", ApprovalStatus::as_str)
    }

    /// Whether it waits for a person at `now`.
    pub fn is_pending(&self, now: OffsetDateTime) -> bool {
        self.status_at(now) == Some(ApprovalStatus::Pending)
    }

    /// Whether `approver` may see and decide it (status aside): a user key (never a
    /// tenant key) holding `gates:approve`, of the same tenant, not the calling key
    /// itself, and the calling key's own user (user keys) or a tenant owner (tenant
    /// keys).
    pub fn may_be_decided_by(&self, approver: &Approver) -> bool {
        approver.tenant_id == self.tenant_id
            && approver.key_id != self.key_id
            && approver.can_approve()
            && match &self.user_id {
                Some(user) => approver.user_id.as_deref() == Some(user.as_str()),
                None => approver.is_owner,
            }
    }

    /// The user id of whoever decided it; `None` while pending.
    pub(crate) fn decider_user_id(&self) -> Option<String> {
        self.decided_by.as_ref().map(|d| d.user_id.clone())
    }
}

/// The key someone signed in with to decide approvals, as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Approver {
    /// The key's public id.
    pub key_id: String,
    /// The key's tenant.
    pub tenant_id: String,
    /// The key's user (user keys); `None` for a tenant key, which never approves.
    pub user_id: Option<String>,
    /// The user's name.
    pub user_name: Option<String>,
    /// Whether the user is an owner of the tenant.
    pub is_owner: bool,
    /// Whether the key holds `gates:approve`
    /// ([`APPROVE_SCOPE`](keygate_scopes::APPROVE_SCOPE)).
    pub has_approve_scope: bool,
}

impl Approver {
    /// A user key of `user_id` (named `user_name`, an owner or not).
    pub fn user_key(
        key_id: impl Into<String>,
        tenant_id: impl Into<String>,
        user_id: impl Into<String>,
        user_name: impl Into<String>,
        is_owner: bool,
        has_approve_scope: bool,
    ) -> Self {
        Self {
            key_id: key_id.into(),
            tenant_id: tenant_id.into(),
            user_id: Some(user_id.into()),
            user_name: Some(user_name.into()),
            is_owner,
            has_approve_scope,
        }
    }

    /// A tenant key: never an approver, whatever its scopes.
    pub fn tenant_key(key_id: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        Self {
            key_id: key_id.into(),
            tenant_id: tenant_id.into(),
            user_id: None,
            user_name: None,
            is_owner: false,
            has_approve_scope: false,
        }
    }

    /// Whether the key may decide approvals at all: a user key with `gates:approve`.
    pub fn can_approve(&self) -> bool {
        self.user_id.is_some() && self.has_approve_scope
    }
}

/// The calling key's owner, recorded with an approval so the right person decides it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The calling key's tenant.
    pub tenant_id: String,
    /// The calling key's user (user keys); `None` for a tenant key.
    pub user_id: Option<String>,
    /// That user's name.
    pub user_name: Option<String>,
}

impl Caller {
    /// A tenant key of `tenant_id`.
    pub fn tenant_key(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: None,
            user_name: None,
        }
    }

    /// A user key of `user_id` (named `user_name`) in `tenant_id`.
    pub fn user_key(
        tenant_id: impl Into<String>,
        user_id: impl Into<String>,
        user_name: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            user_id: Some(user_id.into()),
            user_name: Some(user_name.into()),
        }
    }
}

/// The call [`GateStore::claim_approval`](crate::GateStore::claim_approval) looks for
/// an approval of: by `key_id`, of `tool` on `target` with the arguments whose digest
/// is `arguments_sha256`, as of `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalQuery<'a> {
    /// The key making the call.
    pub key_id: &'a str,
    /// The gated tool.
    pub tool: &'a str,
    /// The call's target.
    pub target: &'a str,
    /// The SHA-256 digest of the call's arguments ([`Arguments::digest`]).
    pub arguments_sha256: &'a [u8; 32],
    /// The time the claim is made at.
    pub now: OffsetDateTime,
}

impl ApprovalQuery<'_> {
    /// Whether `approval` was asked for this call (whatever its status).
    pub fn matches(&self, approval: &Approval) -> bool {
        approval.key_id == self.key_id
            && approval.tool == self.tool
            && approval.target == self.target
            && approval.arguments.digest() == *self.arguments_sha256
    }
}

/// What [`GateStore::claim_approval`](crate::GateStore::claim_approval) found for a
/// call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claimed {
    /// An approved, unexpired approval: now [`ApprovalStatus::Used`]; the call proceeds.
    Approved(Approval),
    /// A denied approval the agent had not been told of: now closed.
    Denied(Approval),
    /// A pending, unexpired approval: ask the person again with it.
    Pending(Approval),
    /// Nothing: ask for a new approval.
    Nothing,
}

/// Why a person could not see or decide an approval (as opposed to a store failure,
/// [`ApprovalError::Store`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No such approval, another tenant's, or not the approver's to decide (not the
    /// calling key's user, or not an owner for a tenant key's): answer 404.
    #[error("no such approval")]
    NotFound,
    /// The approver is a tenant key, lacks `gates:approve`, or is the calling key
    /// itself: answer 403.
    #[error("this key cannot decide approvals")]
    InsufficientScope,
    /// The typed target is not exactly the approval's target; nothing changed.
    #[error("the typed name is not exactly the target")]
    TargetMismatch,
    /// The approval is no longer pending: decided, used or expired.
    #[error("the approval is {status}, not pending")]
    NotPending {
        /// `approved`, `denied`, `used` or `expired`.
        status: &'static str,
    },
    /// The gate store failed.
    #[error(transparent)]
    Store(#[from] GateError),
}
