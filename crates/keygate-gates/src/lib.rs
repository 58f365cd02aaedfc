//! Confirmation gates for agent tool calls.
//!
//! A valid key does not remove every guardrail. This crate decides, for destructive tool
//! calls, whether the call may proceed now. Protected targets (the gateway's own
//! service) and names that look like them are never allowed, on any gate; `evidence`
//! gates first require the failure evidence (events, build logs, runtime logs) to have
//! been read in the session. Then the call needs an approval:
//!
//! - `approval = "person"` (the default): a person approves exactly this call (key,
//!   tool, target, canonical arguments) through a channel the agent cannot answer by
//!   itself. The gate answers `APPROVAL_REQUIRED` with an [`Approval`] id and URL; the
//!   person, signed in with their own key ([`Approver`]), approves it
//!   ([`Gates::approve`], typing the target's exact name) or denies it
//!   ([`Gates::deny`]); the identical retry then proceeds once (or is answered
//!   `CONFIRMATION_DECLINED`). Nothing the agent sends approves it.
//! - `approval = "agent"`: a one-time challenge issued in the same session for the same
//!   key, tool, target and arguments, echoed back with the exact target name. Not
//!   person-verified: the platform takes the agent's word.
//!
//! - MRTR (2026-07-28 clients that declare form elicitation): the server answers the
//!   client with a form asking its person for the target's exact name and a sealed,
//!   one-time `requestState` ([`Gates::mrtr_ask`]); the retry carries the answer and
//!   the state, which [`Gates::answer_mrtr`] checks (HMAC, key, arguments, expiry,
//!   nonce) before the answer decides the approval.
//! - Elicitation on the stream (stateful sessions whose client declared elicitation,
//!   [`SessionBinding::elicitation`]): [`Gates::elicitation_ask`] gives the
//!   `elicitation/create` to send, with an id sealed to the session;
//!   [`Gates::answer_elicitation`] takes the client's answer posted in that session and
//!   decides the approval in the store, where the waiting stream reads it
//!   ([`Gates::elicitation_outcome`]).
//!
//! Decisions are plain values a caller can audit-log and render as an MCP tool error
//! ([`Decision::to_tool_result`]).
//!
//! Challenges, approvals, evidence reads and the binding of each MCP session to the key
//! that opened it ([`SessionBinding`]) live behind the object-safe [`GateStore`] trait
//! ([`MemoryGateStore`] here; a shared database lets several gateways agree), and
//! time comes from a [`Clock`] ([`SystemClock`], or [`ManualClock`] in tests).
//!
//! ```
//! use std::sync::Arc;
//!
//! use keygate_gates::{Approver, Caller, GateCall, Gates, MemoryGateStore, Outcome, SystemClock};
//! use keygate_scopes::GateSpec;
//!
//! # tokio_test_block_on(async {
//! let gates = Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock));
//! let spec = GateSpec::approval("service", vec!["keygate".to_owned()]);
//! let call = GateCall::new("agentkey0001", None, "service.delete", "worker")
//!     .with_caller(Caller::user_key("tn_1", "us_ann", "ann"));
//!
//! let first = gates.decide(&spec, &call, None).await?;
//! let Outcome::ApprovalRequired { approval_id, approval_url, .. } = first.outcome() else {
//!     unreachable!("the first call needs a person");
//! };
//! assert_eq!(approval_url, &format!("/approvals/{approval_id}"));
//! // Ann signs in with her own key, which holds `gates:approve`, and types the name.
//! let ann = Approver::user_key("annskey00001", "tn_1", "us_ann", "ann", false, true);
//! gates.approve(approval_id, &ann, "worker").await?;
//! assert!(gates.decide(&spec, &call, None).await?.is_allowed());
//! // An approval passes once.
//! assert!(!gates.decide(&spec, &call, None).await?.is_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `conformance`: the [`conformance`] module, the checks every [`GateStore`]
//!   backend must pass, for the tests of backends outside this crate.
//! - `postgres`: `PgGateStore`, gate state in PostgreSQL (tokio-postgres on a
//!   deadpool pool, typically the key store's), so a challenge issued or an evidence
//!   read recorded through one server counts on every server sharing the database.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod approval;
mod arguments;
mod clock;
mod confirm;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod decision;
mod elicit;
mod error;
mod gates;
mod history;
mod mrtr;
#[cfg(feature = "postgres")]
mod postgres;
mod store;

pub use crate::approval::{
    APPROVAL_ID_LEN, Approval, ApprovalError, ApprovalQuery, ApprovalStatus, Approver, Caller,
    Claimed, DecidedBy,
};
pub use crate::arguments::Arguments;
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::confirm::{CONFIRM_ARG, Confirm, strip_confirm};
pub use crate::decision::{
    APPROVAL_REQUIRED, CONFIRMATION_DECLINED, CONFIRMATION_INVALID, CONFIRMATION_REQUIRED, Channel,
    DIAGNOSIS_REQUIRED, Decision, InvalidReason, Outcome, SELF_SERVICE_BLOCKED, TOO_MANY_APPROVALS,
};
pub use crate::elicit::{
    ELICITATION_ID_PREFIX, ElicitationAsk, ElicitationOutcome, ElicitationRefusal,
};
pub use crate::error::{BoxError, GateError};
pub use crate::gates::{
    CHALLENGE_LEN, ConfirmArg, DEFAULT_APPROVAL_TTL, DEFAULT_CHALLENGE_TTL, DEFAULT_EVIDENCE_TTL,
    DEFAULT_MAX_PENDING_APPROVALS, GateCall, Gates,
};
pub use crate::history::FailureHistory;
pub use crate::mrtr::{
    CLIENT_PERSON, MIN_MRTR_SECRET_LEN, MRTR_INPUT, MRTR_NONCE_LEN, MRTR_TARGET_FIELD, MrtrAnswer,
    MrtrAsk, MrtrOutcome, MrtrSecret,
};
#[cfg(feature = "postgres")]
pub use crate::postgres::PgGateStore;
pub use crate::store::{
    Challenge, EvidenceQuery, EvidenceRead, GateStore, MemoryGateStore, SessionBinding,
    SessionTouch, Taken, session_digest,
};
