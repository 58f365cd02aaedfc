//! Stateful MCP sessions are bound to the key whose `initialize` opened them.
//!
//! An `Mcp-Session-Id` is a capability: whoever presents it reads the session's
//! resources, calls tools in it, answers its pending sampling and elicitation requests,
//! takes its GET stream and ends it. So the gateway records, in the gate store (shared
//! by instances on PostgreSQL; the SHA-256 of the id, never the id), which key opened
//! each session, and answers any other key, and any id it never saw bound, 404 with the
//! JSON-RPC error the official SDKs send for an unknown session, without contacting the
//! upstream. The two cases answer alike, so a key learns nothing about sessions of
//! others.
//!
//! Bindings expire after [`IDLE`] without a request of their key; the hot path is one
//! read, and a request refreshes the binding (one write) only when the last refresh is
//! [`REFRESH_EVERY`] old. A DELETE that the upstream answers 2xx or 404 ends the
//! binding. Requests without a session (the stateless 2026-07-28 revision) pass
//! untouched.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keygate_gates::{SessionBinding, SessionTouch};
use keygate_http::{AuthError, untrusted};
use keygate_keys::Principal;
use serde_json::{Value, json};
use time::Duration;

/// How long a binding lives without a request of its key.
pub(crate) const IDLE: Duration = Duration::hours(24);

/// How old the last refresh of a binding must be before a request refreshes it again.
pub(crate) const REFRESH_EVERY: Duration = Duration::minutes(5);

/// JSON-RPC `Invalid Request`: what the official Python SDK answers an unknown session
/// with (`-32600`, "Session not found", HTTP 404).
const INVALID_REQUEST: i64 = -32600;

/// JSON-RPC code of an upstream answer the gateway cannot pass on (as in `mcp`).
const UPSTREAM_BAD_RESPONSE: i64 = -32003;

/// What a log line may show of a session id: a prefix of at most a quarter of it, at
/// most 8 characters, never the whole capability.
fn shown(session: &str) -> usize {
    (session.len() / 4).min(8)
}

/// The 404 for a session that is unknown, expired, ended or another key's: the body the
/// official SDKs send, with `id` the request's (or `null`).
pub(crate) fn not_found(id: Value) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": INVALID_REQUEST, "message": "Session not found" },
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Checks that `session` (already validated by `mcp::session_id`) is bound to the
/// principal's key, refreshing the binding when due. `id` is the id of the request
/// being answered (`None` for GET, DELETE, notifications and answers to server
/// requests). `Err` is the answer to send instead of contacting the upstream: 404 for
/// a session that is not the key's, 503 when the gate store fails. `Ok` is the
/// session's binding (which says whether its client declared elicitation).
pub(crate) async fn check(
    state: &crate::state::AppState,
    principal: &Principal,
    session: &str,
    id: Option<&Value>,
) -> Result<SessionBinding, Response> {
    let store = state.gates.store();
    let now = state.gates.clock().now();
    let key_id = principal.key_id.as_str();
    let binding = store.session_binding(session, now).await.map_err(|e| {
        tracing::error!(error = %e, key_id = %key_id, "gate store unavailable checking a session; answering 503");
        AuthError::Unavailable.into_response()
    })?;
    match binding {
        Some(b) if b.key_id == key_id => {
            let touch = SessionTouch {
                key_id,
                seen_at: now,
                expires_at: now + IDLE,
            };
            if now - b.seen_at >= REFRESH_EVERY
                && let Err(e) = store.touch_session(session, touch).await
            {
                // The binding holds until its expiry; a later request refreshes it.
                tracing::warn!(error = %e, key_id = %key_id, "could not refresh a session binding");
            }
            Ok(b)
        }
        other => {
            let why = if other.is_some() {
                "session of another key refused"
            } else {
                "unknown or expired session refused"
            };
            tracing::info!(
                key_id = %key_id,
                session = ?untrusted(session).max_chars(shown(session)),
                "{why}"
            );
            Err(not_found(id.cloned().unwrap_or(Value::Null)))
        }
    }
}

/// After the upstream answered an `initialize`: when the answer is 2xx and carries an
/// `Mcp-Session-Id`, binds that session to the principal's key before the answer goes
/// out, with the elicitation modes the client declared in the `initialize`
/// (`elicitation`: form, so that person gates may ask on the stream; URL, so that they
/// may offer the approval page as a URL elicitation). A session id clients
/// could not send back, or one a live binding of another key holds, is refused (502,
/// JSON-RPC `-32003`); a gate store failure answers 503.
pub(crate) async fn bind(
    state: &crate::state::AppState,
    principal: &Principal,
    resp: Response,
    id: Value,
    elicitation: crate::elicitation::Declared,
) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let key_id = principal.key_id.as_str();
    let session = match crate::mcp::session_id(resp.headers()) {
        Ok(Some(s)) => s,
        Ok(None) => return resp,
        Err(_) => {
            tracing::warn!(key_id = %key_id, "the upstream issued a session id clients cannot send");
            return upstream_refused(id, "the upstream issued a malformed Mcp-Session-Id");
        }
    };
    let now = state.gates.clock().now();
    let binding = SessionBinding {
        key_id: key_id.to_owned(),
        bound_at: now,
        seen_at: now,
        expires_at: now + IDLE,
        elicitation: elicitation.form,
        elicitation_url: elicitation.url,
    };
    match state.gates.store().bind_session(session, &binding).await {
        Ok(true) => resp,
        Ok(false) => {
            tracing::warn!(
                key_id = %key_id,
                session = ?untrusted(session).max_chars(shown(session)),
                "the upstream issued a session id another key holds"
            );
            upstream_refused(id, "the upstream issued a session id that is in use")
        }
        Err(e) => {
            tracing::error!(error = %e, key_id = %key_id, "could not bind a session to its key; answering 503");
            AuthError::Unavailable.into_response()
        }
    }
}

fn upstream_refused(id: Value, message: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": UPSTREAM_BAD_RESPONSE, "message": message },
    });
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

/// After the upstream answered a DELETE of `session` (checked to be the principal's):
/// 2xx (ended) or 404 (already gone) ends the binding; anything else (405: the server
/// does not let clients end sessions) leaves it.
pub(crate) async fn deleted(
    state: &crate::state::AppState,
    principal: &Principal,
    session: &str,
    status: StatusCode,
) {
    if !(status.is_success() || status == StatusCode::NOT_FOUND) {
        return;
    }
    let key_id = principal.key_id.as_str();
    if let Err(e) = state.gates.store().end_session(session, key_id).await {
        // It expires by itself, and refers to a session the upstream has ended.
        tracing::warn!(error = %e, key_id = %key_id, "could not end a session binding");
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_log_line_never_shows_a_whole_session_id() {
        for len in 1..=128 {
            let id = "x".repeat(len);
            assert!(shown(&id) < len, "{len}");
            assert!(shown(&id) <= 8);
        }
    }
}
