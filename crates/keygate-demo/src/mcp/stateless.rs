//! The stateless revision, 2026-07-28: no `initialize` and no session; every request
//! carries its protocol version and the client's capabilities in `params._meta`, and
//! `server/discover` says what this server speaks.
//!
//! A request is answered here when its `MCP-Protocol-Version` header names no stateful
//! revision this server speaks (the Python SDK routes the same way), or, without that
//! header, when it is `server/discover` or carries the `_meta` envelope. Refusals are
//! the Python SDK's: `-32602` for a `_meta` without the required keys, `-32020` for an
//! `MCP-Protocol-Version`, `Mcp-Method` or `Mcp-Name` header that disagrees with the
//! body (or is sent twice; `Mcp-Name` compared after decoding its `=?base64?…?=`
//! form), `-32022` with `{supported, requested}` for a version this
//! server does not speak, `-32601` (404) for methods 2026-07-28 does not have
//! (`initialize`, `ping`). Routing headers that are absent are not required, so the
//! platform can be tried with `curl`; the gateway in front of it checks them.
//!
//! Tools work exactly as in a session: `X-Keygate-Tenant` picks the data set.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use keygate_mcp::headers::{self, HeaderError};
use keygate_mcp::jsonrpc::{self, HEADER_MISMATCH, INVALID_REQUEST, METHOD_NOT_FOUND, Parsed};
use keygate_mcp::revision::{self, DISCOVER_METHOD, DiscoverResult, MetaError, RequestMeta};
use serde_json::{Value, json};

use super::{
    Era, INSTRUCTIONS, PROTOCOL_VERSION_HEADER, accepted, answerable, call, failure, failure_value,
    json_value, success,
};
use crate::platform::Platform;
use crate::tools::STATELESS_TOOLS_LIST;

/// Whether the request is answered as 2026-07-28 (see the module documentation); a
/// version header sent twice is, and is then refused.
pub(super) fn is_stateless(headers: &HeaderMap, parsed: &Parsed<'_>) -> bool {
    let mut versions = headers.get_all(PROTOCOL_VERSION_HEADER).iter();
    let version = versions.next().map(|v| v.to_str().unwrap_or("\u{fffd}"));
    versions.next().is_some()
        || revision::is_stateless_request(version, parsed.method.as_deref(), parsed.message.params)
}

/// Answers one 2026-07-28 message.
pub(super) fn respond(platform: &Platform, headers: &HeaderMap, parsed: &Parsed<'_>) -> Response {
    let msg = parsed.message;
    let Some(method) = parsed.method.as_deref() else {
        return failure_value(
            StatusCode::BAD_REQUEST,
            answerable(&parsed.id),
            INVALID_REQUEST,
            "Invalid Request: a 2026-07-28 client sends no responses (this server sends no requests)",
        );
    };
    let Some(raw_id) = msg.id else {
        // Notifications (`notifications/cancelled`, ...) need no answer.
        return accepted();
    };
    if !jsonrpc::is_valid_id(raw_id) {
        return failure(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            "Invalid Request: id must be a string or an integer",
        );
    }
    let id = jsonrpc::id_value(Some(raw_id));
    let refuse = |code: i64, message: &str| {
        failure_value(StatusCode::BAD_REQUEST, id.clone(), code, message)
    };
    // A routing header sent twice first; then the envelope's keys, then the headers
    // against it, then its version.
    let routing = headers::check_routing_raw(headers, Some(method), msg.params);
    if let Err(e @ HeaderError::Duplicated(_)) = &routing {
        return refuse(HEADER_MISMATCH, &e.to_string());
    }
    let params: Option<Value> = msg.params.and_then(|p| serde_json::from_str(p.get()).ok());
    let envelope = RequestMeta::from_params(params.as_ref());
    if !matches!(
        envelope,
        Err(MetaError::NotAnObject | MetaError::MissingKeys(_))
    ) && let Some(why) =
        version_mismatch(headers, params.as_ref()).or(routing.err().map(|e| e.to_string()))
    {
        return refuse(HEADER_MISMATCH, &why);
    }
    if let Err(e) = envelope {
        return json_value(StatusCode::BAD_REQUEST, &e.to_response(id));
    }

    match method {
        DISCOVER_METHOD => json_value(StatusCode::OK, &jsonrpc::result_response(id, discover())),
        "tools/list" => success(raw_id, &*STATELESS_TOOLS_LIST),
        "tools/call" => call(platform, headers, raw_id, msg.params, Era::Stateless),
        _ => failure_value(
            Era::Stateless.error_status(METHOD_NOT_FOUND),
            id,
            METHOD_NOT_FOUND,
            "Method not found",
        ),
    }
}

/// The result of `server/discover`.
fn discover() -> Value {
    let result = DiscoverResult::new(
        json!({ "tools": {} }),
        "keygate-demo",
        env!("CARGO_PKG_VERSION"),
    )
    .with_instructions(INSTRUCTIONS);
    serde_json::to_value(result).unwrap_or(Value::Null)
}

/// Why the `MCP-Protocol-Version` header disagrees with the envelope's version, when
/// it does (the other routing headers are [`headers::check_routing_raw`]'s).
fn version_mismatch(headers: &HeaderMap, params: Option<&Value>) -> Option<String> {
    let version = headers
        .get(PROTOCOL_VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))?;
    let meta_version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(revision::PROTOCOL_VERSION_KEY))
        .and_then(Value::as_str);
    (Some(version) != meta_version).then(|| {
        format!(
            "{PROTOCOL_VERSION_HEADER} header does not match the request envelope's protocol version"
        )
    })
}
