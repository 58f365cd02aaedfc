//! The MRTR channel (2026-07-28 clients that declare form elicitation): a person gate
//! answers `input_required` with a form asking the client's person for the target's
//! exact name, and a sealed `requestState`; the client's retry carries the answer and
//! the state back.
//!
//! The state is the gateway's memory of the question, held by the client: approval
//! id, calling key, tool, the SHA-256 of the canonical arguments, a one-time nonce and
//! the expiry, sealed with HMAC-SHA256 under a secret of the gateway's
//! ([`MrtrSecret`]). A state that was made up or altered fails the HMAC; the nonce is
//! recorded in the gate store when the state is presented
//! ([`GateStore::spend_nonce`](crate::GateStore::spend_nonce)), so each state works
//! once, on any instance sharing the store and the secret.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::approval::{ApprovalStatus, Claimed, DecidedBy};
use crate::decision::{Channel, Decision, InvalidReason, Outcome};
use crate::error::GateError;
use crate::gates::{GateCall, Gates};

/// The name of the input request (and response) that asks the person for approval.
pub const MRTR_INPUT: &str = "approval";

/// The form field the person types the target's exact name into.
pub const MRTR_TARGET_FIELD: &str = "target";

/// Length of a request state's nonce in base62 characters (≈ 190 bits).
pub const MRTR_NONCE_LEN: usize = 32;

/// Shortest secret [`MrtrSecret::new`] accepts, in bytes.
pub const MIN_MRTR_SECRET_LEN: usize = 32;

/// What the version and domain of a sealed state start with.
const PREFIX: &str = "kgm1";

/// The secret MRTR request states are sealed with. Held in zeroized memory, never
/// shown by `Debug`.
#[derive(Clone)]
pub struct MrtrSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for MrtrSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MrtrSecret(..)")
    }
}

impl MrtrSecret {
    /// A secret from configuration: at least [`MIN_MRTR_SECRET_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`GateError::MrtrSecret`] when it is shorter.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, GateError> {
        let secret = Zeroizing::new(secret.into());
        if secret.len() < MIN_MRTR_SECRET_LEN {
            return Err(GateError::MrtrSecret {
                min: MIN_MRTR_SECRET_LEN,
            });
        }
        Ok(Self(secret))
    }

    /// A random secret from the OS CSPRNG, for one process: states it seals are
    /// refused by any other process (several instances must share a configured one).
    ///
    /// # Errors
    ///
    /// [`GateError::Random`] when the OS has no randomness to give.
    pub fn random() -> Result<Self, GateError> {
        // 43 base62 characters ≈ 256 bits.
        let text = Zeroizing::new(keygate_token::random_base62(43)?);
        Ok(Self(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// The MAC of `payload` under this secret (`None` never happens: HMAC takes keys
    /// of any length).
    /// The secret's bytes, for the other seals made under it (elicitation ids).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(PREFIX.as_bytes());
        mac.update(b"\0");
        mac.update(payload.as_bytes());
        Some(mac)
    }
}

/// What a request state says, once its HMAC holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    approval_id: String,
    key_id: String,
    tool: String,
    arguments_sha256: [u8; 32],
    nonce: String,
    expires_at: OffsetDateTime,
}

impl State {
    fn payload(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}.{}",
            self.approval_id,
            hex::encode(self.key_id.as_bytes()),
            hex::encode(self.tool.as_bytes()),
            hex::encode(self.arguments_sha256),
            self.nonce,
            self.expires_at.unix_timestamp()
        )
    }

    fn seal(&self, secret: &MrtrSecret) -> Option<String> {
        let payload = self.payload();
        let tag = secret.mac(&payload)?.finalize().into_bytes();
        Some(format!("{PREFIX}.{payload}.{}", hex::encode(tag)))
    }

    /// The state `sealed` says, when its HMAC holds under `secret`.
    fn open(sealed: &str, secret: &MrtrSecret) -> Option<Self> {
        let rest = sealed.strip_prefix(PREFIX)?.strip_prefix('.')?;
        let (payload, tag) = rest.rsplit_once('.')?;
        let tag = hex::decode(tag).ok()?;
        secret.mac(payload)?.verify_slice(&tag).ok()?;
        // Authentic from here on: it is what this gateway (or a twin) wrote.
        let mut parts = payload.split('.');
        let approval_id = parts.next()?.to_owned();
        let key_id = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
        let tool = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
        let arguments_sha256 = <[u8; 32]>::try_from(hex::decode(parts.next()?).ok()?).ok()?;
        let nonce = parts.next()?.to_owned();
        let expires_at =
            OffsetDateTime::from_unix_timestamp(parts.next()?.parse::<i64>().ok()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            approval_id,
            key_id,
            tool,
            arguments_sha256,
            nonce,
            expires_at,
        })
    }
}

/// What to send an MRTR client instead of `APPROVAL_REQUIRED`: the form's message and
/// the sealed state (see [`Gates::mrtr_ask`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MrtrAsk {
    /// The elicitation's message ([`Decision::person_prompt`]).
    pub message: String,
    /// The exact target the person must type.
    pub target: String,
    /// The name of the gate's target argument, such as `service`.
    pub target_arg: String,
    /// The `requestState` to send; the retry echoes it.
    pub request_state: String,
    /// When the state (and its approval) expires.
    pub expires_at: OffsetDateTime,
}

/// The person's answer to the approval form, as the retry's
/// `inputResponses.approval` carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MrtrAnswer {
    /// Accepted, with what was typed into the target field (`None` when absent or
    /// not a string).
    Accept(Option<String>),
    /// Declined.
    Decline,
    /// Dismissed without a choice.
    Cancel,
    /// No (readable) answer under [`MRTR_INPUT`].
    Missing,
}

/// What an MRTR retry came to ([`Gates::answer_mrtr`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MrtrOutcome {
    /// The gate's decision on the call: [`Outcome::Approved`] (channel
    /// [`Channel::Mrtr`], or [`Channel::Page`] when a person had approved it on the
    /// page first), [`Outcome::ConfirmationDeclined`] or
    /// [`Outcome::ConfirmationInvalid`] (and anything [`Gates::decide`] answers before
    /// approvals: a protected or unreadable target).
    pub decision: Decision,
    /// The approval as this answer decided it (approved or denied, by the client's
    /// person), for the audit log's `gate.approved` / `gate.declined`; `None` when the
    /// answer decided nothing.
    pub decided: Option<crate::approval::Approval>,
}

/// What the MRTR channel records as the approver: the calling key's user for a user
/// key; for a tenant key, which has no user, the client's person.
pub const CLIENT_PERSON: &str = "the client's person";

impl Gates {
    /// For an `APPROVAL_REQUIRED` decision, the form and sealed state to answer an
    /// MRTR client with; `None` for any other decision, or when no MRTR secret is set
    /// ([`Gates::with_mrtr_secret`]). Every call gets a state with a fresh nonce.
    ///
    /// # Errors
    ///
    /// [`GateError::Random`] when no nonce could be drawn.
    pub fn mrtr_ask(&self, decision: &Decision) -> Result<Option<MrtrAsk>, GateError> {
        let (Some(secret), Some(ask)) = (self.mrtr_secret(), decision.person_ask()) else {
            return Ok(None);
        };
        let state = State {
            approval_id: ask.approval_id,
            key_id: decision.key_id().to_owned(),
            tool: decision.operation().to_owned(),
            arguments_sha256: decision.arguments().digest(),
            nonce: keygate_token::random_base62(MRTR_NONCE_LEN)?,
            expires_at: ask.expires_at,
        };
        Ok(state.seal(secret).map(|request_state| MrtrAsk {
            message: ask.message,
            target: ask.target,
            target_arg: decision.target_arg().to_owned(),
            request_state,
            expires_at: ask.expires_at,
        }))
    }

    /// Decides an MRTR retry of a person-gated call: `request_state` as echoed, and
    /// the person's `answer`.
    ///
    /// First the checks of [`Gates::decide`] that need no approval (missing,
    /// protected or unreadable target). Then, in order, each refused with
    /// `CONFIRMATION_INVALID` and nothing decided: a state whose HMAC does not hold
    /// (made up, altered, another secret's) → [`InvalidReason::StateInvalid`]; one of
    /// another key → [`InvalidReason::StateOtherKey`] (its nonce is left unspent);
    /// expired → [`InvalidReason::StateExpired`]; its nonce spent before →
    /// [`InvalidReason::StateUsed`] (the nonce is spent now, whatever follows);
    /// another tool or other canonical arguments →
    /// [`InvalidReason::StateOtherArguments`]; an approval that is gone or not of this
    /// call → [`InvalidReason::StateInvalid`].
    ///
    /// Then the answer decides the approval, if it is still pending: accepted with
    /// exactly the target (no folding) → approved by the calling key's user (or
    /// [`CLIENT_PERSON`] for a tenant key), channel [`Channel::Mrtr`], and the call
    /// proceeds once ([`Outcome::Approved`]); declined, cancelled, missing or a wrong
    /// name → denied and closed (`CONFIRMATION_DECLINED`). An approval a person
    /// decided on the page meanwhile stands: approved, the accepted retry uses it;
    /// denied, or not accepted, the call is declined. An approval that expired or was
    /// used answers [`InvalidReason::StateExpired`].
    ///
    /// # Errors
    ///
    /// [`GateError::Store`]: no decision could be made, and the call must not proceed.
    pub async fn answer_mrtr(
        &self,
        spec: &keygate_scopes::GateSpec,
        call: &GateCall<'_>,
        request_state: &str,
        answer: &MrtrAnswer,
    ) -> Result<MrtrOutcome, GateError> {
        let decision = |outcome| call.decision(spec, outcome);
        let undecided = |outcome| {
            Ok(MrtrOutcome {
                decision: decision(outcome),
                decided: None,
            })
        };
        let invalid = |reason| undecided(Outcome::ConfirmationInvalid { reason });

        let Some(target) = call.target else {
            return invalid(InvalidReason::MissingTarget);
        };
        if let Some(protected) = spec.protected_as(target) {
            return Ok(MrtrOutcome {
                decision: Decision {
                    protected_as: Some(protected.to_owned()),
                    ..decision(Outcome::SelfServiceBlocked)
                },
                decided: None,
            });
        }
        if let Some(character) = keygate_scopes::hidden_char(target) {
            return invalid(InvalidReason::InvalidTarget { character });
        }
        let Some(state) = self
            .mrtr_secret()
            .and_then(|secret| State::open(request_state, secret))
        else {
            return invalid(InvalidReason::StateInvalid);
        };
        if state.key_id != call.key_id {
            return invalid(InvalidReason::StateOtherKey);
        }
        let now = self.clock().now();
        if state.expires_at <= now {
            return invalid(InvalidReason::StateExpired);
        }
        if !self
            .store()
            .spend_nonce(&state.nonce, state.expires_at)
            .await?
        {
            return invalid(InvalidReason::StateUsed);
        }
        let digest = call.arguments.digest();
        if state.tool != call.tool || state.arguments_sha256 != digest {
            return invalid(InvalidReason::StateOtherArguments);
        }
        let query = call.approval_query(target, &digest, now);
        let Some(approval) = self.store().get_approval(&state.approval_id).await? else {
            return invalid(InvalidReason::StateInvalid);
        };
        if !query.matches(&approval) {
            return invalid(InvalidReason::StateInvalid);
        }

        let accepted = matches!(answer, MrtrAnswer::Accept(Some(typed)) if typed == target);
        let by = DecidedBy {
            key_id: call.key_id.to_owned(),
            user_id: call.caller.user_id.clone().unwrap_or_default(),
            name: call
                .caller
                .user_name
                .clone()
                .unwrap_or_else(|| CLIENT_PERSON.to_owned()),
            at: now,
        };
        let status = if accepted {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Denied
        };
        let decided = if approval.is_pending(now) {
            self.store()
                .decide_approval(&approval.id, status, &by)
                .await?
        } else {
            None
        };
        // Names the approval the decline closed, which is not always the state's: a
        // newer approval of the same call may have been denied on the page meanwhile.
        let declined = |approval_id: String, decided_by: Option<String>, decided| {
            Ok(MrtrOutcome {
                decision: decision(Outcome::ConfirmationDeclined {
                    approval_id,
                    decided_by,
                }),
                decided,
            })
        };
        if !accepted {
            // Close it, so that the agent's plain retry is not asked again.
            let closed = self.store().claim_approval(query).await?;
            return match closed {
                Claimed::Denied(a) => declined(a.id.clone(), a.decider_user_id(), decided),
                _ => declined(approval.id.clone(), Some(by.user_id.clone()), decided),
            };
        }
        match self.store().claim_approval(query).await? {
            Claimed::Approved(a) => {
                let by_page = decided.is_none();
                Ok(MrtrOutcome {
                    decision: decision(Outcome::Approved {
                        approver_user_id: a.decider_user_id().unwrap_or_default(),
                        approval_id: a.id,
                        channel: if by_page {
                            Channel::Page
                        } else {
                            Channel::Mrtr
                        },
                    }),
                    decided,
                })
            }
            Claimed::Denied(a) => declined(a.id.clone(), a.decider_user_id(), None),
            // Expired, or used by a concurrent retry: nothing to run.
            _ => invalid(InvalidReason::StateExpired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MrtrSecret, State};
    use time::macros::datetime;

    fn state() -> State {
        State {
            approval_id: "a".repeat(24),
            key_id: "key.with.dots".to_owned(),
            tool: "service.delete".to_owned(),
            arguments_sha256: [9; 32],
            nonce: "n".repeat(32),
            expires_at: datetime!(2026-01-01 00:00:00 UTC),
        }
    }

    fn secret(byte: u8) -> MrtrSecret {
        MrtrSecret::new(vec![byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_state_opens_under_its_secret_only() {
        let sealed = state().seal(&secret(1)).unwrap();
        assert_eq!(State::open(&sealed, &secret(1)), Some(state()));
        assert_eq!(State::open(&sealed, &secret(2)), None);
    }

    #[test]
    fn every_altered_character_is_refused() {
        let sealed = state().seal(&secret(1)).unwrap();
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != sealed {
                assert_eq!(State::open(&altered, &secret(1)), None, "position {i}");
            }
        }
        for bad in ["", "kgm1", "kgm1..", &format!("{sealed}.00"), &sealed[1..]] {
            assert_eq!(State::open(bad, &secret(1)), None, "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_never_shown() {
        assert!(MrtrSecret::new(vec![1; 31]).is_err());
        let s = MrtrSecret::random().unwrap();
        assert_eq!(format!("{s:?}"), "MrtrSecret(..)");
        assert_ne!(
            state().seal(&s).unwrap(),
            state().seal(&MrtrSecret::random().unwrap()).unwrap()
        );
    }
}
