//! Typed client of keygated's API, credential discovery and the agent start-up check.
//!
//! For programs that talk to a keygate server (`keygated`) or start an agent with a
//! keygate key:
//!
//! - The JSON of the API as types, shared with the server so both ends read and
//!   write the same bodies: [`TokenInfo`] (`GET /api/v1/token`), [`KeyInfo`],
//!   [`CreateKey`], [`IssuedKey`], [`ProjectInfo`] and the listings of the owner admin
//!   API, the approvals a person decides ([`ApprovalInfo`]), and error answers ([`ErrorBody`], read as a [`RejectReason`]).
//! - [`Declined`]: why the admin API or the approvals API ([`Api`]) refused a request,
//!   in the words a person reads.
//! - [`Client`]: an async client of one server presenting one key, a method per
//!   endpoint, failing with a typed [`Error`].
//! - Credential discovery: [`Lookup`] finds the key an agent would start with (an
//!   environment variable, default `KEYGATE_API_KEY`, else the `env` block of a server
//!   in `.mcp.json`, where `"${VAR}"` points back at the environment);
//!   [`read_mcp_json`] reads the servers of an `.mcp.json`.
//! - Key lifetimes: [`parse_seconds`] (`expires_in`: `3600`, `45s`, `90m`, `12h`,
//!   `30d`) and [`parse_lifetime`] (`--expires-in`: a unit required, `w` too).
//! - Key refills as a command line writes them: [`parse_refill`] (`--refill
//!   daily:1000`) and [`refill_spec`], its inverse.
//! - [`Check`]: the start-up check of `keygate check` (find the key, check its shape
//!   offline, introspect it, and refuse unless it reaches exactly one project),
//!   returning an [`Outcome`] for the caller to render (a [`Refusal`] displays as its
//!   message, with [`Refusal::hint`] the fix to show under it).
//!
//! Nothing here prints or exits; the raw key is never in a `Debug`, `Display` or error.
//!
//! # Features
//!
//! - `http` (default): [`Client`] and [`Check`] (reqwest with rustls and the ring
//!   provider). Without it the crate is the wire types and credential discovery,
//!   which is what the server needs.
//! - `openapi`: `utoipa::ToSchema` for the wire types, with the constraints the server
//!   checks (name lengths, expiry forms), for the server's OpenAPI document.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod api;
#[cfg(feature = "http")]
mod check;
#[cfg(feature = "http")]
mod check_hint;
#[cfg(feature = "http")]
mod client;
mod credential;
mod declined;
mod error;
mod lifetime;
mod refill;

pub use crate::api::{
    ApprovalInfo, ApprovalKey, ApprovalList, ApprovalPerson, ApprovalState, ApproveBody, AuditList,
    CreateKey, CreateProject, CreateRefill, ErrorBody, ExpiresIn, IssuedKey, KeyInfo, KeyList,
    LeakLabel, LeakMatch, LeakVerdict, MAX_KEY_LIFETIME_SECS, MAX_NAME_CHARS, ProjectInfo,
    ProjectList, RejectReason, ScopeInfo, ScopeList, TokenInfo, TokenUser,
};
#[cfg(feature = "http")]
pub use crate::check::{Check, Outcome, Ready, Refusal};
#[cfg(feature = "http")]
pub use crate::client::Client;
pub use crate::credential::{
    Credential, DEFAULT_ENV_VAR, Lookup, MAX_MCP_JSON, McpServer, Source, parse_mcp_json,
    read_mcp_json, reference,
};
pub use crate::declined::{Api, Declined};
pub use crate::error::{Error, McpJsonError};
pub use crate::lifetime::{LifetimeError, MAX_LIFETIME, parse_lifetime, parse_seconds};
pub use crate::refill::{RefillSpecError, parse_refill, refill_spec};
