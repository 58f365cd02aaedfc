//! What a gate decided, and how to tell the agent and the audit log.

use std::borrow::Cow;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arguments::Arguments;
use crate::history::FailureHistory;

/// Code of a gated call that needs a challenge echoed back.
pub const CONFIRMATION_REQUIRED: &str = "CONFIRMATION_REQUIRED";
/// Code of a confirmation that does not hold (wrong session, key, tool, target or
/// arguments, reused, expired, malformed, no session to bind to), or of a target
/// holding hidden characters.
pub const CONFIRMATION_INVALID: &str = "CONFIRMATION_INVALID";
/// Code of a call on a protected target: never confirmable.
pub const SELF_SERVICE_BLOCKED: &str = "SELF_SERVICE_BLOCKED";
/// Code of a call that needs the failure evidence read first.
pub const DIAGNOSIS_REQUIRED: &str = "DIAGNOSIS_REQUIRED";
/// Code of a call that waits for a person's approval on the approval page.
pub const APPROVAL_REQUIRED: &str = "APPROVAL_REQUIRED";
/// Code of a call a person declined.
pub const CONFIRMATION_DECLINED: &str = "CONFIRMATION_DECLINED";
/// Code of a call refused because its key has too many approvals pending.
pub const TOO_MANY_APPROVALS: &str = "TOO_MANY_APPROVALS";

/// The channel through which a gated call was approved or declined, as the audit log
/// records it (`channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Channel {
    /// A 2026-07-28 client's form elicitation, answered on the retry (MRTR).
    Mrtr,
    /// An `elicitation/create` sent on a stateful session's stream.
    Elicitation,
    /// The approval page (or the approvals API behind it).
    Page,
    /// The agent-relayed challenge (`approval = "agent"`): not person-verified.
    Agent,
}

impl Channel {
    /// `mrtr`, `elicitation`, `page` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mrtr => "mrtr",
            Self::Elicitation => "elicitation",
            Self::Page => "page",
            Self::Agent => "agent",
        }
    }
}

/// Why a confirmation did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The call carried no `Mcp-Session-Id`, so there is no session to bind a
    /// challenge (or evidence) to.
    NoSession,
    /// The call lacks the gate's target argument (or it is not a string).
    MissingTarget,
    /// The target holds a control, format or other invisible character
    /// ([`keygate_scopes::hidden_char`]): what a person reads would not be what is
    /// called.
    InvalidTarget {
        /// The first such character.
        character: char,
    },
    /// The `confirm` argument is not `{"challenge": "…", "target": "…"}`.
    MalformedConfirm {
        /// What is wrong with it.
        detail: String,
    },
    /// `confirm.target` is not exactly the call's target. The challenge is kept.
    TargetMismatch {
        /// What `confirm.target` said.
        given: String,
    },
    /// No such challenge: never issued, or already used.
    UnknownChallenge,
    /// The challenge expired (it is now used up).
    Expired,
    /// The challenge was issued in another session. It is kept for its owner.
    OtherSession,
    /// The challenge was issued to another key. It is kept for its owner.
    OtherKey,
    /// The challenge was issued for another tool.
    OtherTool,
    /// The challenge was issued for another target.
    OtherTarget,
    /// The challenge was issued for other arguments (it is now used up).
    OtherArguments,
    /// An MRTR `requestState` this gateway did not issue, or one that was altered
    /// (its HMAC does not hold, or it cannot be read).
    StateInvalid,
    /// An MRTR `requestState` that has expired (with its approval).
    StateExpired,
    /// An MRTR `requestState` issued to another key. It stays usable by its own.
    StateOtherKey,
    /// An MRTR `requestState` presented before: each one works once.
    StateUsed,
    /// An MRTR `requestState` issued for another tool or other arguments (it is now
    /// used up): a retry with other arguments needs a new approval.
    StateOtherArguments,
}

impl InvalidReason {
    /// A short stable name for logs and audit, such as `other_session`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoSession => "no_session",
            Self::MissingTarget => "missing_target",
            Self::InvalidTarget { .. } => "invalid_target",
            Self::MalformedConfirm { .. } => "malformed_confirm",
            Self::TargetMismatch { .. } => "target_mismatch",
            Self::UnknownChallenge => "unknown_challenge",
            Self::Expired => "expired",
            Self::OtherSession => "other_session",
            Self::OtherKey => "other_key",
            Self::OtherTool => "other_tool",
            Self::OtherTarget => "other_target",
            Self::OtherArguments => "other_arguments",
            Self::StateInvalid => "invalid_request_state",
            Self::StateExpired => "request_state_expired",
            Self::StateOtherKey => "request_state_other_key",
            Self::StateUsed => "request_state_used",
            Self::StateOtherArguments => "request_state_other_arguments",
        }
    }
}

/// What happens to a gated call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Forward the call (with [`strip_confirm`](crate::strip_confirm)ped arguments).
    Allow {
        /// Whether a challenge was consumed; `false` when the gate did not apply (an
        /// evidence gate on a target without failure history).
        confirmed: bool,
    },
    /// Answer `CONFIRMATION_REQUIRED` with a fresh one-time challenge.
    ConfirmationRequired {
        /// The challenge to echo back in `confirm`.
        challenge: String,
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// Answer `CONFIRMATION_INVALID`.
    ConfirmationInvalid {
        /// Why.
        reason: InvalidReason,
    },
    /// Answer `SELF_SERVICE_BLOCKED`: the target is protected.
    SelfServiceBlocked,
    /// Forward the call: a person approved exactly this call (key, tool, target and
    /// arguments), and the approval is now used.
    Approved {
        /// The approval that was used.
        approval_id: String,
        /// The user id of the person who approved it (empty when the client's person
        /// approved a tenant key's call through MRTR: no user of ours is known).
        approver_user_id: String,
        /// Where they approved it.
        channel: Channel,
    },
    /// Answer `APPROVAL_REQUIRED`: a person must approve the call on the approval page,
    /// then the agent repeats it.
    ApprovalRequired {
        /// The approval's id.
        approval_id: String,
        /// Where the person approves it (`<public-url>/approvals/<id>`, or relative).
        approval_url: String,
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// Answer `CONFIRMATION_DECLINED`: a person declined the call.
    ConfirmationDeclined {
        /// The approval that was declined.
        approval_id: String,
        /// The user id of the person who declined it.
        decided_by: Option<String>,
    },
    /// Answer `TOO_MANY_APPROVALS`: the key has this many approvals pending already.
    TooManyApprovals {
        /// The most approvals one key may have pending.
        limit: usize,
    },
    /// Answer `DIAGNOSIS_REQUIRED`: read the evidence first.
    DiagnosisRequired {
        /// The evidence tools not yet read for the target in this session, in policy
        /// order.
        evidence_missing: Vec<String>,
        /// Every evidence tool of the gate, in policy order.
        evidence_tools: Vec<String>,
        /// What the status tool said.
        history: FailureHistory,
    },
}

/// A gate's decision on one call, with everything needed to audit-log it and to
/// answer the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub(crate) operation: String,
    pub(crate) target_arg: String,
    pub(crate) target: Option<String>,
    pub(crate) key_id: String,
    pub(crate) session_id: Option<String>,
    pub(crate) arguments: Arguments,
    /// The protected name the target reads as, when blocked.
    pub(crate) protected_as: Option<String>,
    pub(crate) outcome: Outcome,
}

impl Decision {
    /// The gated tool, such as `service.delete`.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The call's target, such as `worker` (absent when the call had none).
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The call's arguments without `confirm`.
    pub fn arguments(&self) -> &Arguments {
        &self.arguments
    }

    /// The key that made the call.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The call's `Mcp-Session-Id`, if it had one.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// What happens to the call.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Whether the call may be forwarded.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Allow { .. } | Outcome::Approved { .. }
        )
    }

    /// The MCP error code, or `None` when allowed.
    pub fn code(&self) -> Option<&'static str> {
        match &self.outcome {
            Outcome::Allow { .. } | Outcome::Approved { .. } => None,
            Outcome::ConfirmationRequired { .. } => Some(CONFIRMATION_REQUIRED),
            Outcome::ApprovalRequired { .. } => Some(APPROVAL_REQUIRED),
            Outcome::ConfirmationDeclined { .. } => Some(CONFIRMATION_DECLINED),
            Outcome::TooManyApprovals { .. } => Some(TOO_MANY_APPROVALS),
            Outcome::ConfirmationInvalid { .. } => Some(CONFIRMATION_INVALID),
            Outcome::SelfServiceBlocked => Some(SELF_SERVICE_BLOCKED),
            Outcome::DiagnosisRequired { .. } => Some(DIAGNOSIS_REQUIRED),
        }
    }

    /// The audit-log action, such as `gate.confirmation_required` or `gate.approved`
    /// (an agent-relayed challenge, channel `agent`; a person's approval is audited
    /// `gate.approved` with channel `page` when they approve, and its use here as
    /// `gate.approval_used`).
    pub fn audit_action(&self) -> &'static str {
        match &self.outcome {
            Outcome::Allow { confirmed: false } => "gate.allowed",
            Outcome::Allow { confirmed: true } => "gate.approved",
            Outcome::Approved { .. } => "gate.approval_used",
            Outcome::ApprovalRequired { .. } => "gate.approval_required",
            Outcome::ConfirmationDeclined { .. } => "gate.confirmation_declined",
            Outcome::TooManyApprovals { .. } => "gate.too_many_approvals",
            Outcome::ConfirmationRequired { .. } => "gate.confirmation_required",
            Outcome::ConfirmationInvalid { .. } => "gate.confirmation_invalid",
            Outcome::SelfServiceBlocked => "gate.self_service_blocked",
            Outcome::DiagnosisRequired { .. } => "gate.diagnosis_required",
        }
    }

    /// The audit-log target: `operation:target`, such as `service.delete:worker`.
    pub fn audit_target(&self) -> String {
        format!(
            "{}:{}",
            self.operation,
            self.target.as_deref().unwrap_or("")
        )
    }

    /// Audit-log details: key, session, the SHA-256 of the canonical arguments, and
    /// the reason or missing evidence. Never the challenge, nor argument values.
    pub fn audit_detail(&self) -> Value {
        let mut detail = json!({
            "key_id": self.key_id,
            "session_id": self.session_id,
            "operation": self.operation,
            "target": self.target,
            "arguments_sha256": hex(&self.arguments.digest()),
        });
        if let Some(obj) = detail.as_object_mut() {
            match &self.outcome {
                Outcome::Allow { confirmed: true } => {
                    obj.insert("channel".to_owned(), "agent".into());
                    obj.insert("approver_user_id".to_owned(), Value::Null);
                }
                Outcome::Approved {
                    approval_id,
                    approver_user_id,
                    channel,
                } => {
                    obj.insert("channel".to_owned(), channel.as_str().into());
                    obj.insert("approval_id".to_owned(), approval_id.as_str().into());
                    obj.insert(
                        "approver_user_id".to_owned(),
                        approver_user_id.as_str().into(),
                    );
                }
                _ => {}
            }
        }
        if let (Some(obj), Some(code)) = (detail.as_object_mut(), self.code()) {
            obj.insert("code".to_owned(), code.into());
            obj.extend(self.refusal_members());
            if let Outcome::ConfirmationDeclined { decided_by, .. } = &self.outcome {
                obj.insert("approver_user_id".to_owned(), json!(decided_by));
            }
        }
        detail
    }

    /// The members a refusal's audit detail and tool result share: the reason, the
    /// missing evidence, the approval, and when the challenge or approval expires.
    fn refusal_members(&self) -> Vec<(String, Value)> {
        let member = |name: &str, value: Value| (name.to_owned(), value);
        match &self.outcome {
            Outcome::ConfirmationInvalid { reason } => {
                vec![member("reason", reason.as_str().into())]
            }
            Outcome::DiagnosisRequired {
                evidence_missing, ..
            } => vec![member("evidence_missing", json!(evidence_missing))],
            Outcome::ConfirmationRequired { expires_at, .. } => {
                vec![member("expires_at", rfc3339(*expires_at).into())]
            }
            Outcome::ApprovalRequired {
                approval_id,
                expires_at,
                ..
            } => vec![
                member("approval_id", approval_id.as_str().into()),
                member("expires_at", rfc3339(*expires_at).into()),
            ],
            Outcome::ConfirmationDeclined { approval_id, .. } => {
                vec![member("approval_id", approval_id.as_str().into())]
            }
            _ => Vec::new(),
        }
    }

    /// What to tell the person, or `None` when allowed.
    pub fn message(&self) -> Option<String> {
        let tool = &self.operation;
        let target = visible(self.target.as_deref().unwrap_or(""));
        let target = target.as_ref();
        let args = self.arguments.canonical();
        let action = Action::new(tool, &self.target_arg, target);
        let Action {
            subject,
            gerund,
            consequence,
        } = &action;
        let msg = match &self.outcome {
            Outcome::Allow { .. } | Outcome::Approved { .. } => return None,
            Outcome::ApprovalRequired {
                approval_url,
                expires_at,
                ..
            } => format!(
                "{subject} {consequence}, so a person must approve it; you cannot approve it yourself, and no confirm argument will. Arguments: {args}. Ask the user to open {approval_url}, sign in with their own key and approve {gerund} `{target}` there by typing its exact name. Then call {tool} again with exactly these arguments. The approval works once, only for this API key and these arguments, and expires at {}.",
                rfc3339(*expires_at)
            ),
            Outcome::ConfirmationDeclined { .. } => format!(
                "A person declined {gerund} `{target}` with these arguments. Nothing was changed. Arguments: {args}. Do not try again unless the user asks you to; calling {tool} again asks them anew."
            ),
            Outcome::TooManyApprovals { limit } => format!(
                "{subject} needs a person's approval, but this API key already has {limit} approvals waiting for a person, the most it may have. Nothing was changed and no approval was asked for. Ask the user to approve or deny the waiting ones (or wait until they expire), then call {tool} again."
            ),
            Outcome::ConfirmationRequired {
                challenge,
                expires_at,
            } => {
                let confirm = json!({"challenge": challenge, "target": target});
                format!(
                    "{subject} {consequence}. Arguments: {args}. To proceed, call {tool} again with exactly these arguments and confirm = {confirm} after the user has approved {gerund} `{target}` with these arguments in this conversation. The challenge works once, only in this session and with these arguments, and expires at {}.",
                    rfc3339(*expires_at)
                )
            }
            Outcome::SelfServiceBlocked => {
                let why = match self.protected_as.as_deref() {
                    Some(p) if p != target => {
                        format!("`{target}` reads as `{}`, which is protected", visible(p))
                    }
                    _ => format!("`{target}` is protected"),
                };
                format!(
                    "{subject} is blocked: {why} (it runs this gateway), so it cannot be confirmed from an agent session. Arguments: {args}. Nothing was changed; a person must do this directly, outside the agent."
                )
            }
            Outcome::DiagnosisRequired {
                evidence_missing,
                evidence_tools,
                history,
            } => {
                let past = match history {
                    FailureHistory::Failed {
                        failed_deploys,
                        state,
                    } => {
                        let mut details = Vec::new();
                        if let Some(n) = failed_deploys {
                            details.push(format!(
                                "{n} failed deploy{}",
                                if *n == 1 { "" } else { "s" }
                            ));
                        }
                        if let Some(state) = state {
                            details.push(format!("state: {state}"));
                        }
                        if details.is_empty() {
                            format!("`{target}` has failed before.")
                        } else {
                            format!("`{target}` has failed before ({}).", details.join(", "))
                        }
                    }
                    FailureHistory::Unknown { reason } => format!(
                        "Whether `{target}` has failed before could not be determined ({reason}), so it is treated as failed."
                    ),
                    FailureHistory::None => String::new(),
                };
                format!(
                    "{past} {subject} {consequence}, and replacing does not fix whatever made it fail. First find out why: call {} for `{target}` in this session and explain the cause to the user. Not read yet: {}. Then call {tool} again with the arguments to run ({args}) to get a confirmation challenge.",
                    list(evidence_tools),
                    list(evidence_missing)
                )
            }
            Outcome::ConfirmationInvalid { reason } => {
                let retry = format!(
                    "Nothing was changed. To try again, call {tool} without confirm to get a new challenge, and ask the user to approve {gerund} `{target}` first."
                );
                let why = match reason {
                    InvalidReason::NoSession => format!(
                        "{subject} needs the user's confirmation, and confirmations are bound to an MCP session, but this call carried no Mcp-Session-Id. Nothing was changed. Initialize an MCP session and make the call within it."
                    ),
                    InvalidReason::MissingTarget => format!(
                        "{tool} is gated and needs the argument `{}` naming its target (a string). Nothing was changed.",
                        self.target_arg
                    ),
                    InvalidReason::InvalidTarget { character } => format!(
                        "The {} `{target}` contains U+{:04X}, a control, format or invisible character, so a person could not see what it names. Gated calls refuse such names. Nothing was changed; call {tool} again with the plain name.",
                        self.target_arg,
                        u32::from(*character)
                    ),
                    InvalidReason::MalformedConfirm { detail } => format!(
                        "The confirm argument is malformed: {detail}. It must be {{\"challenge\": \"<the challenge from CONFIRMATION_REQUIRED>\", \"target\": \"<the exact target>\"}}. Nothing was changed."
                    ),
                    InvalidReason::TargetMismatch { given } => format!(
                        "confirm.target `{given}` is not exactly the target of this call, `{target}`. Nothing was changed and the challenge is still valid: repeat the call with confirm.target set to exactly \"{target}\" once the user has approved {gerund} `{target}`."
                    ),
                    InvalidReason::UnknownChallenge => {
                        format!("The challenge is unknown or already used. {retry}")
                    }
                    InvalidReason::Expired => format!("The challenge has expired. {retry}"),
                    InvalidReason::OtherSession => {
                        format!("The challenge was issued for another session. {retry}")
                    }
                    InvalidReason::OtherKey => {
                        format!("The challenge was issued to another API key. {retry}")
                    }
                    InvalidReason::OtherTool => {
                        format!("The challenge was issued for another operation. {retry}")
                    }
                    InvalidReason::OtherTarget => {
                        format!("The challenge was issued for another target. {retry}")
                    }
                    InvalidReason::OtherArguments => format!(
                        "The challenge was issued for other arguments of {tool}; a challenge confirms only the exact arguments the user approved, and this one is now used up. {retry}"
                    ),
                    InvalidReason::StateInvalid
                    | InvalidReason::StateExpired
                    | InvalidReason::StateOtherKey
                    | InvalidReason::StateUsed
                    | InvalidReason::StateOtherArguments => {
                        let why = match reason {
                            InvalidReason::StateInvalid => {
                                "The requestState was not issued by this gateway, or was altered"
                            }
                            InvalidReason::StateExpired => "The requestState has expired",
                            InvalidReason::StateOtherKey => {
                                "The requestState was issued to another API key"
                            }
                            InvalidReason::StateUsed => {
                                "The requestState was used already; each one works once"
                            }
                            _ => {
                                "The requestState was issued for another operation or other arguments; an approval covers only the exact arguments the person saw, and this one is now used up"
                            }
                        };
                        format!(
                            "{why}. Nothing was changed. To try again, call {tool} without inputResponses and requestState: the user is asked anew."
                        )
                    }
                };
                format!("{why} Arguments: {args}.")
            }
        };
        Some(msg)
    }

    /// What to ask the person in a form elicitation (the MRTR channel), for an
    /// `APPROVAL_REQUIRED` decision (`None` otherwise): names the operation, the
    /// target and the canonical arguments, and asks for the target's exact name.
    pub fn person_prompt(&self) -> Option<String> {
        let Outcome::ApprovalRequired { expires_at, .. } = &self.outcome else {
            return None;
        };
        let tool = &self.operation;
        let target = visible(self.target.as_deref().unwrap_or(""));
        let target = target.as_ref();
        let args = self.arguments.canonical();
        let Action {
            subject,
            consequence,
            ..
        } = Action::new(tool, &self.target_arg, target);
        Some(format!(
            "Your agent asks to call {tool} on {} `{target}`. {subject} {consequence}. Arguments: {args}. To approve exactly this call, type the exact name `{target}`; decline if you did not ask for it. The approval works once and expires at {}.",
            self.target_arg,
            rfc3339(*expires_at)
        ))
    }

    /// The name of the gate's target argument, such as `service`.
    pub fn target_arg(&self) -> &str {
        &self.target_arg
    }

    /// What asking the caller's person needs, on any channel: `None` unless the
    /// decision is `APPROVAL_REQUIRED` with a target.
    pub(crate) fn person_ask(&self) -> Option<PersonAsk> {
        let Outcome::ApprovalRequired {
            approval_id,
            expires_at,
            ..
        } = &self.outcome
        else {
            return None;
        };
        Some(PersonAsk {
            approval_id: approval_id.clone(),
            message: self.person_prompt()?,
            target: self.target()?.to_owned(),
            expires_at: *expires_at,
        })
    }

    /// The JSON-RPC `result` of a refused call, or `None` when allowed:
    /// `{"isError": true, "content": [{"type": "text", "text": …}], "structuredContent":
    /// {"code", "operation", "target", "arguments", "message"}}` (`arguments` without
    /// `confirm`) plus `challenge` and `expires_at` (RFC 3339) with
    /// `CONFIRMATION_REQUIRED`, `evidence_missing` with `DIAGNOSIS_REQUIRED`,
    /// `reason` ([`InvalidReason::as_str`]) with `CONFIRMATION_INVALID`,
    /// `approval_id`, `approval_url` and `expires_at` with `APPROVAL_REQUIRED`,
    /// `approval_id` with `CONFIRMATION_DECLINED`, or `limit` with
    /// `TOO_MANY_APPROVALS`.
    pub fn to_tool_result(&self) -> Option<Value> {
        let code = self.code()?;
        let message = self.message()?;
        let mut structured = json!({
            "code": code,
            "operation": self.operation,
            "target": self.target,
            "arguments": self.arguments.value(),
            "message": message,
        });
        if let Some(obj) = structured.as_object_mut() {
            obj.extend(self.refusal_members());
            // Members only the tool result has (the audit log never holds a challenge).
            match &self.outcome {
                Outcome::ConfirmationRequired { challenge, .. } => {
                    obj.insert("challenge".to_owned(), challenge.as_str().into());
                }
                Outcome::ApprovalRequired { approval_url, .. } => {
                    obj.insert("approval_url".to_owned(), approval_url.as_str().into());
                }
                Outcome::TooManyApprovals { limit } => {
                    obj.insert("limit".to_owned(), json!(limit));
                }
                _ => {}
            }
        }
        Some(json!({
            "isError": true,
            "content": [{"type": "text", "text": message}],
            "structuredContent": structured,
        }))
    }
}

/// RFC 3339 in UTC with whole seconds, such as `2025-01-02T03:04:05Z`.
fn rfc3339(at: OffsetDateTime) -> String {
    let at = at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at);
    at.format(&Rfc3339).unwrap_or_default()
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `s` with hidden characters ([`keygate_scopes::is_hidden_char`]) written as
/// `\u{…}`, so that a person sees them.
fn visible(s: &str) -> Cow<'_, str> {
    if keygate_scopes::hidden_char(s).is_none() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if keygate_scopes::is_hidden_char(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// How to speak of a gated operation: "Deleting service `worker`", "deleting", and
/// what it destroys.
struct Action {
    subject: String,
    gerund: String,
    consequence: &'static str,
}

impl Action {
    fn new(tool: &str, noun: &str, target: &str) -> Self {
        let verb = tool.rsplit('.').next().unwrap_or(tool).to_ascii_lowercase();
        if verb.is_empty() || !verb.chars().all(|c| c.is_ascii_alphabetic()) {
            return Self {
                subject: format!("Calling {tool} on {noun} `{target}`"),
                gerund: format!("calling {tool} on"),
                consequence: "cannot be undone",
            };
        }
        let gerund = gerund(&verb);
        let consequence = match verb.as_str() {
            "delete" | "remove" | "destroy" | "drop" | "purge" => {
                "removes it and its data permanently"
            }
            "replace" | "recreate" | "reset" => {
                "discards its current deployment, image and configuration for good"
            }
            _ => "cannot be undone",
        };
        let mut chars = gerund.chars();
        let capital = chars
            .next()
            .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default();
        Self {
            subject: format!("{capital} {noun} `{target}`"),
            gerund,
            consequence,
        }
    }
}

/// `delete` → `deleting`, `drop` → `dropping`, `list` → `listing`.
fn gerund(verb: &str) -> String {
    let vowel = |c: u8| b"aeiou".contains(&c);
    let b = verb.as_bytes();
    match b {
        [.., b'e'] if !verb.ends_with("ee") => format!("{}ing", &verb[..verb.len() - 1]),
        // Short consonant-vowel-consonant verbs double the consonant (stop, set, drop),
        // as does `reset`.
        [.., c1, v, c2]
            if (b.len() <= 4 || verb == "reset")
                && !vowel(*c1)
                && vowel(*v)
                && !vowel(*c2)
                && !b"wxy".contains(c2) =>
        {
            format!("{verb}{}ing", char::from(*c2))
        }
        _ => format!("{verb}ing"),
    }
}

/// An `APPROVAL_REQUIRED` decision as the channels that ask the person (an
/// elicitation on the stream, an MRTR form) need it.
/// ([`Decision::target_arg`] goes with it.)
pub(crate) struct PersonAsk {
    /// The approval the answer decides.
    pub(crate) approval_id: String,
    /// [`Decision::person_prompt`].
    pub(crate) message: String,
    /// The exact target the person must type.
    pub(crate) target: String,
    /// When the approval expires.
    pub(crate) expires_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::{Action, list, rfc3339, visible};

    #[test]
    fn hidden_characters_are_shown() {
        assert_eq!(visible("worker"), "worker");
        assert_eq!(visible("keygate\u{200b}"), "keygate\\u{200b}");
        assert_eq!(visible("\u{feff}k\0"), "\\u{feff}k\\u{0}");
        assert_eq!(visible("kéygate"), "kéygate");
    }

    #[test]
    fn actions_read_naturally() {
        let a = Action::new("service.delete", "service", "worker");
        assert_eq!(a.subject, "Deleting service `worker`");
        assert_eq!(a.gerund, "deleting");
        assert_eq!(a.consequence, "removes it and its data permanently");
        assert_eq!(
            Action::new("service.replace", "service", "api").subject,
            "Replacing service `api`"
        );
        assert_eq!(Action::new("db.drop", "table", "t").gerund, "dropping");
        for (verb, ing) in [
            ("reset", "resetting"),
            ("stop", "stopping"),
            ("list", "listing"),
            ("scale", "scaling"),
            ("free", "freeing"),
            ("destroy", "destroying"),
            ("wipe", "wiping"),
        ] {
            assert_eq!(super::gerund(verb), ing);
        }
        let odd = Action::new("x.v2", "thing", "t");
        assert_eq!(odd.subject, "Calling x.v2 on thing `t`");
    }

    #[test]
    fn lists_and_times() {
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["a".to_owned()]), "a");
        assert_eq!(
            list(&["a".to_owned(), "b".to_owned(), "c".to_owned()]),
            "a, b and c"
        );
        let at = time::macros::datetime!(2025-01-02 03:04:05.678 +01:00);
        assert_eq!(rfc3339(at), "2025-01-02T02:04:05Z");
    }
}
