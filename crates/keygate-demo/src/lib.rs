//! A small demo platform served as an MCP server.
//!
//! An in-memory platform with projects, services, customers, invoices and jobs, exposed as
//! MCP tools over Streamable HTTP (JSON-RPC 2.0 over `POST /mcp`). `keygated --demo` serves
//! it in-process behind the gateway; the `demo-platform` example serves it standalone,
//! without authentication, as the upstream a real deployment would put behind keygated.
//!
//! It speaks every revision keygate does, on the one endpoint: the stateful 2025
//! revisions (`initialize` issues an `Mcp-Session-Id`; versions in
//! [`PROTOCOL_VERSIONS`]) and the stateless 2026-07-28 (no `initialize`, no session,
//! `server/discover`, the `_meta` envelope checked on every request as the Python SDK
//! checks it). The envelope is read with [`keygate_mcp`], as the gateway reads it.
//! Its policy, [`POLICY_TOML`], ships beside this crate as `policy.toml`.
//!
//! The platform does no authentication of its own. It trusts the identity headers the
//! gateway sets, as an upstream behind keygate should:
//!
//! - `X-Keygate-Tenant` selects the tenant's own data set (seeded on its first request;
//!   at most [`Platform::MAX_TENANTS`] are kept). Tenants never see each other's
//!   services, customers or jobs, whatever their projects are called. A request without
//!   it (the platform served directly, with no gateway) uses a data set of its own.
//! - `X-Keygate-Project` is the id the gateway resolved the call's `project` argument to
//!   within the tenant; the platform binds it to the project first named with it and
//!   answers `PROJECT_MISMATCH` when the argument and the id disagree later.
//! - `X-Keygate-User` names the person of a user key: `customers.create` and
//!   `jobs.create` record that user as their creator and fail without it.
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
//! [`bootstrap`] creates the demo tenant ([`DEMO_TENANT`], owner [`DEMO_OWNER`],
//! projects [`DEMO_PROJECTS`]) in a key store that has none; `keygated --demo` calls it
//! and prints the owner key it returns.
//!
//! # Features
//!
//! - `server` (off by default): [`Platform`] implements keygate-server's
//!   `InProcessUpstream`, so a binary can hand it to the gateway as
//!   `Upstream::in_process(Platform::new())`, with [`POLICY_TOML`] as its policy.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]

mod bootstrap;
mod mcp;
mod platform;
mod tools;
#[cfg(feature = "server")]
mod upstream;

pub use crate::bootstrap::{DEMO_OWNER, DEMO_PROJECTS, DEMO_TENANT, DemoBootstrap, bootstrap};
pub use crate::mcp::{
    LATEST_PROTOCOL_VERSION, PROJECT_HEADER, PROTOCOL_VERSIONS, SESSION_HEADER, TENANT_HEADER,
    USER_HEADER, respond, router,
};
pub use crate::platform::Platform;
pub use crate::tools::TOOL_NAMES;

/// The demo platform's tool policy (scope catalogue and every tool), in the keygate policy
/// file format.
pub const POLICY_TOML: &str = include_str!("../policy.toml");
