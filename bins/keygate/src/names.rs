//! Reading `.mcp.json`, for `check`: the readers live in keygate-scan.

pub(crate) use keygate_scan::{read_mcp_json, reference};
