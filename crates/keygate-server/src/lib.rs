//! The keygate server application.
//!
//! Composes the keygate crates into the axum application that `keygated` serves: the
//! owner admin API for keys and projects, token introspection, the MCP gateway that
//! puts authentication, policy, rate limits and confirmation gates in front of a tool
//! server, the approvals API a person decides an agent's gated calls with, forward-auth
//! at `/auth/verify` for proxies in front of any HTTP service, leaked-key reports from
//! GitHub secret scanning (`POST /api/v1/leaks/github`, with
//! [`Config::leak_report_keys`]), the Settings → API & MCP page, health and Prometheus
//! metrics. It never
//! prints or exits: the binary owns configuration parsing, logging and exit codes.
//!
//! - [`Config`] / [`Upstream`]: what to serve, as values.
//! - [`App`]: [`App::new`] opens the store and builds everything, [`App::router`]
//!   is the axum router (for `oneshot` tests), [`App::serve`] serves until a shutdown
//!   future completes (HTTP/1.1, with a header timeout, a connection cap and
//!   TCP_NODELAY).
//! - [`InProcessUpstream`]: an MCP server in the same process (the demo platform is
//!   one), handed in by the binary as [`Upstream::InProcess`].
//! - [`Wrap`]: `keygate wrap`, this application in-process in front of a stdio server
//!   it spawns, served as an MCP server on a reader and a writer; [`WrapEnd`] says how
//!   it ended.
//! - [`ServerError`]: why the server could not start.
//! - For binaries: [`read_settings_file`], [`Timeout`] (a duration setting) and
//!   [`shutdown_signal`]; with feature `cli`, `settings::Settings`, `keygated`'s flags,
//!   environment variables and settings file as one struct.
//!
//! # Features
//!
//! - `cli` (off by default): the `settings` module (clap).
//!
//! The crate always supports SQLite and PostgreSQL stores and both rate-limit
//! backends, chosen at run time by [`Config`].

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::exit
    )
)]
#![allow(
    clippy::result_large_err,
    reason = "handlers short-circuit with a ready axum Response; boxing it buys nothing"
)]

mod admin;
mod answers;
mod app;
mod approvals;
mod config;
mod elicitation;
mod error;
mod federation;
mod federation_config;
mod forward_auth;
mod front;
mod http_pool;
mod labels;
mod leaks;
mod mcp;
mod metrics;
mod openapi;
mod origin;
mod page;
mod serve;
mod sessions;
#[cfg(feature = "cli")]
pub mod settings;
mod state;
mod stdio;
mod stdio_bridge;
mod unique_json;
mod upstream;
mod wrap;

pub use crate::app::{ADMIN_BODY_LIMIT, App, MCP_BODY_LIMIT};
pub use crate::config::{
    Config, DEFAULT_KEY_RATE, DEFAULT_TENANT_RATE, Timeout, Upstream, default_max_connections,
    read_settings_file,
};
pub use crate::error::ServerError;
pub use crate::federation_config::{
    MAX_UPSTREAM_NAME, UpstreamSpec, check_upstream_name, named_upstreams,
};
pub use crate::leaks::LEAK_REPORT_BODY_LIMIT;
pub use crate::mcp::{MAX_JSON_DEPTH, MAX_SESSION_ID_LEN};
pub use crate::page::CSP;
pub use crate::serve::shutdown_signal;
pub use crate::stdio::{
    ChildProcess, LineError, MAX_LINE, StdioChild, StdioCommand, StdioError, StdioReader,
    StdioWriter,
};
pub use crate::upstream::InProcessUpstream;
pub use crate::wrap::{APPROVAL_UNAVAILABLE, NO_APPROVAL_PAGE, Wrap, WrapEnd};
pub use keygate_gates::MrtrSecret;
pub use keygate_limits::FailMode;
