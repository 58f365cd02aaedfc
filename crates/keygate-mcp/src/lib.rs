//! The MCP wire format as keygate speaks it.
//!
//! No HTTP server and no I/O of its own: the messages and framing that the gateway
//! (`keygate-server`), the demo platform (`keygate-demo`) and the examples read and
//! write, so that all of them agree on one definition.
//!
//! - [`jsonrpc`]: the JSON-RPC 2.0 envelope: error codes (JSON-RPC's, the gateway's
//!   upstream codes, 2026-07-28's), response builders, and [`jsonrpc::parse`], which
//!   reads one message borrowed from the body as the gateway must before any policy.
//! - [`revision`]: the protocol revisions (2025-06-18 and 2025-11-25 stateful,
//!   2026-07-28 stateless), the 2026-07-28 per-request `_meta` envelope and the
//!   `server/discover` result.
//! - [`mrtr`]: multi round-trip requests (2026-07-28): `input_required` results with
//!   named input requests and a `requestState`, and the retry's `inputResponses`.
//! - [`sse`]: Server-Sent Events framing of Streamable HTTP answers, on the
//!   [`sse_stream`] parser: reading a buffered stream, and rewriting a live one event
//!   by event without collapsing it to JSON.
//! - [`headers`]: MCP's HTTP headers: names, which are transport headers a gateway
//!   passes on, the `=?base64?…?=` value form, and the check that `Mcp-Method` /
//!   `Mcp-Name` match the body (error code [`headers::HEADER_MISMATCH`]).

pub mod headers;
pub mod jsonrpc;
pub mod mrtr;
pub mod revision;
pub mod sse;
