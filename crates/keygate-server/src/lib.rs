//! The keygate server application.
//!
//! Composes the keygate crates into the axum application that `keygated` serves: the
//! owner admin API for keys and projects, token introspection, the MCP gateway that
//! puts authentication, policy, rate limits and confirmation gates in front of a tool
//! server, the Settings → API & MCP page, health and Prometheus metrics.
