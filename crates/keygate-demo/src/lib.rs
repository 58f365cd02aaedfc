//! A small demo platform served as an MCP server.
//!
//! An in-memory platform with projects, services, customers, invoices and jobs, exposed as
//! MCP tools over Streamable HTTP (JSON-RPC 2.0 over `POST /mcp`). `keygated --demo` serves
//! it in-process behind the gateway; the `demo-platform` example serves it standalone,
//! without authentication, as the upstream a real deployment would put behind keygated.
//! Its policy, [`POLICY_TOML`], ships beside this crate as `policy.toml`.
//!
//! The platform does no authentication of its own. It trusts the `X-Keygate-User` header
//! the gateway sets for user keys: `customers.create` and `jobs.create` record that user as
//! their creator and fail without it.
//!
//! The seeded state tells the story the gateway's gates are about: `worker` (project
//! `shop`) has two failed deploys (`deploy #41 failed: exit code 137 (OOMKilled)`) with
//! events, build logs and runtime logs to read before anyone replaces it; `web` is waiting
//! for its first deploy (no failure history); `api` runs; `keygate` (project `ops`) is the
//! gateway's own service.
//!
//! ```
//! use keygate_demo::{POLICY_TOML, Platform, TOOL_NAMES, router};
//!
//! let platform = Platform::new();
//! assert!(platform.has_service("worker"));
//! let app = router(platform.clone()); // serve with axum::serve, or call as a tower service
//! assert!(POLICY_TOML.contains("[tools.\"service.replace\"]"));
//! assert_eq!(TOOL_NAMES.len(), 15);
//! # let _ = app;
//! ```
//!
//! # Features
//!
//! This crate has no optional features.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod mcp;
mod platform;
mod tools;

pub use crate::mcp::{
    LATEST_PROTOCOL_VERSION, PROTOCOL_VERSIONS, SESSION_HEADER, USER_HEADER, respond, router,
};
pub use crate::platform::Platform;
pub use crate::tools::TOOL_NAMES;

/// The demo platform's tool policy (scope catalogue and every tool), in the keygate policy
/// file format.
pub const POLICY_TOML: &str = include_str!("../policy.toml");
