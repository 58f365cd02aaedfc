//! The MCP wire format as keygate speaks it.
//!
//! No HTTP server and no I/O of its own: the messages and framing that the gateway
//! (`keygate-server`), the demo platform (`keygate-demo`) and the examples read and
//! write, so that all of them agree on one definition.
//!
//! - [`sse`]: Server-Sent Events framing of Streamable HTTP answers, on the
//!   [`sse_stream`] parser: reading a buffered stream, and rewriting a live one event
//!   by event without collapsing it to JSON.
//! - [`headers`]: MCP's HTTP headers: names, which are transport headers a gateway
//!   passes on, the `=?base64?…?=` value form, and the check that `Mcp-Method` /
//!   `Mcp-Name` match the body (error code [`headers::HEADER_MISMATCH`]).

pub mod headers;
pub mod sse;
