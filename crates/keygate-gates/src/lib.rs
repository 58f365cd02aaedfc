//! Confirmation gates for agent tool calls.
//!
//! A valid key does not remove every guardrail. This crate decides, for destructive tool
//! calls, whether the call may proceed now: `approval` gates need a one-time challenge
//! issued in the same session for the same key, tool and target, echoed back with the
//! exact target name; protected targets (the gateway's own service) are never
//! confirmable; `evidence` gates additionally require the failure evidence (events, build
//! logs, runtime logs) to have been read in the session before a replacement is offered.
//! Decisions are plain values a caller can audit-log and render as an MCP tool error.
