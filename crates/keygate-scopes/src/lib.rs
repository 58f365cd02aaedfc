//! Tool policy for keygate.
//!
//! A policy file (TOML) lists every tool an agent may call through the gateway: the
//! scopes it requires, whether only user keys may call it, whether it mutates state,
//! which argument names a project, and which confirmation gate guards it. Tools not in
//! the policy are denied. This crate loads and validates such files with precise
//! errors and answers, for a verified key, whether a tool call is authorized and which
//! tools it may see.
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

mod denied;

pub use crate::denied::Denied;
