//! A small demo platform served as an MCP server.
//!
//! An in-memory platform with customers, invoices, jobs and services, exposed as MCP tools
//! over Streamable HTTP (JSON-RPC). `keygated --demo` serves it in-process behind the
//! gateway; the `demo-platform` example serves it standalone, without authentication, as
//! the upstream a real deployment would put behind keygated. Its policy ships as
//! `policy.toml` beside this crate.
