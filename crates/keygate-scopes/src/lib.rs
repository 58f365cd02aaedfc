//! Tool policy for keygate.
//!
//! A policy file (TOML) lists every tool an agent may call through the gateway: the
//! scopes it requires, whether only user keys may call it, whether it mutates state,
//! which argument names a project, and which confirmation gate guards it. Tools not in
//! the policy are denied. Its `[methods]` table maps the other MCP method families
//! (`resources`, `prompts`, `completion`, or single methods of them) to the scopes
//! they need; methods it does not map are denied, lifecycle and utility messages
//! always pass. This crate loads and validates such files with precise errors (file,
//! line and column) and answers, for a verified key ([`Principal`]), whether a tool
//! call is authorized ([`Policy::authorize`], allocation-free when it is; a project
//! named by a key not restricted to projects is left for the caller to resolve within
//! the key's tenant, [`ProjectAccess::InTenant`]), whether a method is
//! ([`Policy::authorize_method`]), which tools the key may see
//! ([`Policy::visible_tools`]) and whether the key is read-only ([`Policy::read_only`]).
//!
//! ```
//! use keygate_scopes::{ADMIN_SCOPE, APPROVE_SCOPE, ApprovalBy, Policy};
//!
//! let policy = Policy::from_toml_str(r#"
//!     [scopes]
//!     "services:write" = "Deploy and delete services"
//!
//!     [tools."service.delete"]
//!     scopes = ["services:write"]
//!     mutating = true
//!     project_arg = "project"
//!     gate = { kind = "approval", target_arg = "service", protect = ["keygate"] }
//! "#)?;
//! assert_eq!(policy.all_scopes(), [APPROVE_SCOPE, ADMIN_SCOPE, "services:write"]);
//! let gate = policy.tool("service.delete").and_then(|t| t.gate());
//! // A person approves, unless the gate says `approval = "agent"`.
//! assert_eq!(gate.map(|g| g.approval_by()), Some(ApprovalBy::Person));
//! # Ok::<(), keygate_scopes::PolicyError>(())
//! ```
//!
//! [`Principal`]: keygate_keys::Principal
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

mod authorized;
mod denied;
mod error;
mod load;
mod names;
mod policy;

pub use crate::authorized::{Authorized, ProjectAccess};
pub use crate::denied::Denied;
pub use crate::error::{Location, PolicyError};
pub use crate::names::{fold_name, hidden_char, is_hidden_char};
pub use crate::policy::{
    ADMIN_SCOPE, ADMIN_SCOPE_DESCRIPTION, APPROVE_SCOPE, APPROVE_SCOPE_DESCRIPTION, ApprovalBy,
    DEFAULT_EVIDENCE_WINDOW, GateSpec, MAX_EVIDENCE_WINDOW, METHOD_FAMILIES, POLICED_METHODS,
    Policy, Protected, ToolPolicy, always_allowed,
};
