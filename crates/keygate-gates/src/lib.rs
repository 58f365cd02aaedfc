//! Confirmation gates for agent tool calls.
//!
//! A valid key does not remove every guardrail. This crate decides, for destructive tool
//! calls, whether the call may proceed now: `approval` gates need a one-time challenge
//! issued in the same session for the same key, tool, target and arguments, echoed back
//! with the exact target name; protected targets (the gateway's own service) and names
//! that look like them are never confirmable, on any gate; `evidence` gates additionally
//! require the failure evidence (events, build logs, runtime logs) to have been read in
//! the session before a replacement is offered.
//! Decisions are plain values a caller can audit-log and render as an MCP tool error
//! ([`Decision::to_tool_result`]).
//!
//! Challenges, evidence reads and the binding of each MCP session to the key that
//! opened it ([`SessionBinding`]) live behind the object-safe [`GateStore`] trait
//! ([`MemoryGateStore`] here; a shared database lets several gateways agree), and
//! time comes from a [`Clock`] ([`SystemClock`], or [`ManualClock`] in tests).
//!
//! ```
//! use std::sync::Arc;
//!
//! use keygate_gates::{Confirm, GateCall, Gates, MemoryGateStore, Outcome, SystemClock};
//! use keygate_scopes::GateSpec;
//!
//! # tokio_test_block_on(async {
//! let gates = Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock));
//! let spec = GateSpec::approval("service", vec!["keygate".to_owned()]);
//! let call = GateCall::new("key1", Some("session1"), "service.delete", "worker");
//!
//! let first = gates.decide(&spec, &call, None).await?;
//! let Outcome::ConfirmationRequired { challenge, .. } = first.outcome() else {
//!     unreachable!("the first call needs confirmation");
//! };
//! let again = call.clone().with_confirm(Confirm::new(challenge.clone(), "worker"));
//! assert!(gates.decide(&spec, &again, None).await?.is_allowed());
//! // A challenge passes once.
//! assert!(!gates.decide(&spec, &again, None).await?.is_allowed());
//! # Ok::<(), keygate_gates::GateError>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
//! # }
//! # Ok::<(), keygate_gates::GateError>(())
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

mod arguments;
mod clock;
mod confirm;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod decision;
mod error;
mod gates;
mod history;
#[cfg(feature = "postgres")]
mod postgres;
mod store;

pub use crate::arguments::Arguments;
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::confirm::{CONFIRM_ARG, Confirm, strip_confirm};
pub use crate::decision::{
    CONFIRMATION_INVALID, CONFIRMATION_REQUIRED, DIAGNOSIS_REQUIRED, Decision, InvalidReason,
    Outcome, SELF_SERVICE_BLOCKED,
};
pub use crate::error::{BoxError, GateError};
pub use crate::gates::{
    CHALLENGE_LEN, ConfirmArg, DEFAULT_CHALLENGE_TTL, DEFAULT_EVIDENCE_TTL, GateCall, Gates,
};
pub use crate::history::FailureHistory;
#[cfg(feature = "postgres")]
pub use crate::postgres::PgGateStore;
pub use crate::store::{
    Challenge, EvidenceRead, GateStore, MemoryGateStore, SessionBinding, Taken, session_digest,
};
