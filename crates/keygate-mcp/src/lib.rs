//! The MCP wire format as keygate speaks it.
//!
//! No HTTP server and no I/O of its own: the messages and framing that the gateway
//! (`keygate-server`), the demo platform (`keygate-demo`) and the examples read and
//! write, so that all of them agree on one definition.
//!
//! - [`sse`]: Server-Sent Events framing of Streamable HTTP answers, on the
//!   [`sse_stream`] parser: reading a buffered stream, and rewriting a live one event
//!   by event without collapsing it to JSON.

pub mod sse;
