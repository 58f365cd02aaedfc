//! Elicitation on the stream: how a person gate asks the person of a stateful session
//! (2025-06-18 / 2025-11-25) whose client declared form elicitation in its
//! `initialize`.
//!
//! The gated `tools/call` is answered `text/event-stream`: first an
//! `elicitation/create` request (form mode; the message names operation, target and
//! arguments; the schema asks for the target's exact name) whose id the gateway chose
//! ([`keygate_gates::ELICITATION_ID_PREFIX`] + approval id + nonce + an HMAC seal
//! binding it to the session), then, once decided, the call's answer. The client
//! answers the request with a separate POST in the same session; [`answer`] takes it
//! (never forwarded upstream), decides the approval in the gate store and answers 202.
//! The stream polls the store ([`POLL`]), so the answer may reach any instance on a
//! shared PostgreSQL store. Accept with the exact name: the call is claimed as any
//! approved call and forwarded, and the upstream's answer (JSON or an event stream) is
//! streamed on. Decline, cancel, a wrong name or a denial on the page:
//! `CONFIRMATION_DECLINED`. No answer before the approval expires: the approval page's
//! answer (`APPROVAL_REQUIRED`, a new approval), so the person can still approve there.
//! A client that goes away ends the wait (the stream is dropped).
//!
//! URL mode: a client that declared `elicitation.url` (in its `initialize`, or in a
//! 2026-07-28 request's `_meta`) and is not asked by form, or whose gate is
//! `approval = "page"`, is offered the approval page itself ([`url_offer`]): the URL of
//! the approval the call just opened, which the person decides with their own key. On
//! 2025-11-25 the call is answered with the JSON-RPC error `-32042`
//! ([`url_required_error`]); on 2026-07-28 with `input_required` naming a URL
//! elicitation ([`url_input_required`]). Either way the client's identical retry, once
//! the person approved, claims that approval as any approved call. Only an absolute
//! approval URL (the gateway knows its `public_url`) is offered.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use keygate_gates::{
    Channel, Decision, ElicitationAsk, ElicitationOutcome, ElicitationRefusal, FailureHistory,
    GateCall, MrtrAnswer,
};
use keygate_http::AuthError;
use keygate_keys::{NewAuditEvent, Principal};
use keygate_mcp::sse::message_event as event;
use keygate_scopes::GateSpec;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::state::AppState;

/// How often the waiting stream reads the approval from the gate store.
pub(crate) const POLL: Duration = Duration::from_millis(200);

const SESSION: &str = "mcp-session-id";

/// JSON-RPC `Internal error`: the gate store failed while the stream waited.
const INTERNAL_ERROR: i64 = -32603;

/// Whether the request accepts an event stream answer (`Accept` names
/// `text/event-stream` or `*/*`); a client that does not is asked on the page.
pub(crate) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').next().unwrap_or("").trim())
        .any(|m| m.eq_ignore_ascii_case("text/event-stream") || m == "*/*")
}

/// The elicitation modes a client declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Declared {
    /// Form elicitation: a person gate may ask on the call's stream.
    pub(crate) form: bool,
    /// URL-mode elicitation: a person gate may offer the approval page's URL.
    pub(crate) url: bool,
}

/// The elicitation modes an `initialize` request's params declare.
pub(crate) fn initialize_declares(params: Option<&RawValue>) -> Declared {
    #[derive(serde::Deserialize)]
    struct Init {
        #[serde(default)]
        capabilities: keygate_mcp::revision::ClientCapabilities,
    }
    params
        .and_then(|p| serde_json::from_str::<Init>(p.get()).ok())
        .map_or_else(Declared::default, |i| Declared {
            form: i.capabilities.elicitation_form(),
            url: i.capabilities.elicitation_url(),
        })
}

/// The form schema every person channel uses: one required string `target`.
pub(crate) fn approval_schema(target_arg: &str, target: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            keygate_gates::MRTR_TARGET_FIELD: {
                "type": "string",
                "title": format!("{target_arg} name"),
                "description": format!("type the exact name of {target} to approve"),
            }
        },
        "required": [keygate_gates::MRTR_TARGET_FIELD],
    })
}

/// The approval page offered as a URL elicitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlOffer {
    /// The approval the call opened (the elicitation's id on 2025-11-25).
    pub(crate) approval_id: String,
    /// Its page.
    pub(crate) url: String,
    /// What the person is told: operation, target, arguments, and that they decide
    /// on the page with their own key.
    pub(crate) message: String,
}

/// The URL elicitation for an `APPROVAL_REQUIRED` decision whose approval URL is
/// absolute; `None` for any other decision, or without a public URL (a relative URL
/// is no page a client can open).
pub(crate) fn url_offer(decision: &Decision) -> Option<UrlOffer> {
    let keygate_gates::Outcome::ApprovalRequired {
        approval_id,
        approval_url,
        expires_at,
    } = decision.outcome()
    else {
        return None;
    };
    let absolute = ["https://", "http://"]
        .iter()
        .any(|scheme| approval_url.starts_with(scheme));
    let target = decision.target().filter(|_| absolute)?;
    let target: String = target
        .chars()
        .map(|c| {
            if keygate_scopes::is_hidden_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let expires = expires_at
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(*expires_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let message = format!(
        "Your agent asks to call {} on {} `{target}` with arguments {}. Open the approval page, sign in with your own key (not the agent's), and approve or deny exactly this call there. The approval works once and expires at {expires}.",
        decision.operation(),
        decision.target_arg(),
        decision.arguments().canonical(),
    );
    Some(UrlOffer {
        approval_id: approval_id.clone(),
        url: approval_url.clone(),
        message,
    })
}

/// The 2025-11-25 answer offering the page: JSON-RPC error `-32042`
/// (`URLElicitationRequiredError`) whose `data.elicitations` is the one URL
/// elicitation, its `elicitationId` the approval id.
pub(crate) fn url_required_error(id: Value, offer: &UrlOffer) -> Value {
    use keygate_mcp::mrtr::{
        ElicitRequestParams, URL_ELICITATION_REQUIRED, UrlElicitationRequired,
    };
    let data = UrlElicitationRequired::new(vec![
        ElicitRequestParams::url(offer.message.clone(), offer.url.clone())
            .with_elicitation_id(offer.approval_id.clone()),
    ]);
    keygate_mcp::jsonrpc::error_response_with_data(
        id,
        URL_ELICITATION_REQUIRED,
        "A person must approve this call on the approval page; retry it once they did",
        data.to_value(),
    )
}

/// The 2026-07-28 answer offering the page: `input_required` with the URL elicitation
/// as input request [`keygate_gates::MRTR_INPUT`] and no `requestState` (the approval
/// is decided on the page, not by the client's answer).
pub(crate) fn url_input_required(offer: &UrlOffer) -> Value {
    use keygate_mcp::mrtr::{ElicitRequestParams, InputRequest, InputRequiredResult};
    InputRequiredResult::new()
        .with_request(
            keygate_gates::MRTR_INPUT,
            InputRequest::Elicitation(ElicitRequestParams::url(
                offer.message.clone(),
                offer.url.clone(),
            )),
        )
        .to_value()
}

/// Everything the stream needs once the handler has returned.
pub(crate) struct Pending {
    pub(crate) state: AppState,
    pub(crate) principal: Principal,
    pub(crate) headers: HeaderMap,
    pub(crate) identity: Vec<(HeaderName, HeaderValue)>,
    /// The `tools/call`'s JSON-RPC id.
    pub(crate) id: Value,
    pub(crate) session: String,
    pub(crate) spec: GateSpec,
    pub(crate) tool: String,
    pub(crate) args: Value,
    pub(crate) history: Option<FailureHistory>,
    /// The body to forward once approved.
    pub(crate) forward: Bytes,
    pub(crate) ask: ElicitationAsk,
}

type Chunk = Result<Bytes, axum::BoxError>;

/// The SSE answer: the `elicitation/create`, then what the wait decides.
pub(crate) fn ask_on_stream(p: Pending) -> Response {
    let params = keygate_mcp::mrtr::ElicitRequestParams::form(
        p.ask.message.clone(),
        approval_schema(&p.ask.target_arg, &p.ask.target),
    );
    let request = json!({
        "jsonrpc": "2.0",
        "id": p.ask.request_id,
        "method": "elicitation/create",
        "params": params,
    });
    let session = p.headers.get(SESSION).cloned();
    let first = stream::iter([Ok::<_, axum::BoxError>(event(&request))]);
    let rest = stream::once(p.finish()).flatten();
    let body = Body::from_stream(first.chain(rest));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(keygate_mcp::sse::CONTENT_TYPE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(s) = session {
        h.insert(SESSION, s);
    }
    resp
}

impl Pending {
    fn result_event(&self, result: Value) -> Bytes {
        event(&json!({ "jsonrpc": "2.0", "id": self.id, "result": result }))
    }

    fn error_event(&self, code: i64, message: &str) -> Bytes {
        event(&keygate_mcp::jsonrpc::error_response(
            self.id.clone(),
            code,
            message,
        ))
    }

    /// Waits for the answer, then decides the call again (claiming the approval, or
    /// reading the denial, or asking anew on the page) and yields the rest of the
    /// stream.
    async fn finish(self) -> stream::BoxStream<'static, Chunk> {
        let once = |b: Bytes| stream::iter([Ok::<_, axum::BoxError>(b)]).boxed();
        if let Err(e) = self.wait().await {
            tracing::error!(error = %e, "gate store unavailable while waiting for an elicitation answer");
            return once(self.error_event(INTERNAL_ERROR, "gate state unavailable"));
        }
        let gates = &self.state.gates;
        let call = GateCall::from_args(
            &self.spec,
            self.principal.key_id.as_str(),
            Some(&self.session),
            &self.tool,
            &self.args,
        )
        .with_caller(crate::approvals::caller(&self.principal));
        let decision = match gates.decide(&self.spec, &call, self.history.as_ref()).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "gate state unavailable; answering an error event");
                return once(self.error_event(INTERNAL_ERROR, "gate state unavailable"));
            }
        };
        self.state
            .metrics
            .gate(decision.code().unwrap_or("ALLOWED"));
        let audited = audit_decision(&self.state, &self.principal, &decision).await;
        if let Some(result) = decision.to_tool_result() {
            tracing::info!(key_id = %self.principal.key_id, code = decision.code(), "gated call answered on the stream");
            return once(self.result_event(result));
        }
        if !audited {
            return once(self.error_event(INTERNAL_ERROR, "audit log unavailable"));
        }
        self.forward().await
    }

    /// Until the approval is no longer pending, or it expires.
    async fn wait(&self) -> Result<(), keygate_gates::GateError> {
        let gates = &self.state.gates;
        let ttl = (self.ask.expires_at - gates.clock().now())
            .max(time::Duration::ZERO)
            .unsigned_abs();
        let deadline = tokio::time::Instant::now() + ttl;
        loop {
            if gates.elicitation_outcome(&self.ask.approval_id).await?
                != ElicitationOutcome::Pending
                || gates.clock().now() >= self.ask.expires_at
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Forwards the approved call and streams the upstream's answer on: an event
    /// stream's bytes as they come, a JSON answer's messages as events.
    async fn forward(self) -> stream::BoxStream<'static, Chunk> {
        let once = |b: Bytes| stream::iter([Ok::<_, axum::BoxError>(b)]).boxed();
        let resp = match self
            .state
            .upstream
            .send(
                Method::POST,
                &self.headers,
                &self.identity,
                self.forward.clone(),
            )
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(error = %e, "upstream MCP server failed after an approval on the stream");
                return once(
                    self.error_event(keygate_mcp::jsonrpc::UPSTREAM_UNAVAILABLE, &e.to_string()),
                );
            }
        };
        let status = resp.status();
        let sse = crate::answers::is_event_stream(&resp);
        if status.is_success() && sse {
            return resp
                .into_body()
                .into_data_stream()
                .map(|c| c.map_err(axum::BoxError::from))
                .boxed();
        }
        let bytes = match http_body_util::BodyExt::collect(resp.into_body()).await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "upstream answer could not be read");
                return once(self.error_event(
                    keygate_mcp::jsonrpc::UPSTREAM_BAD_RESPONSE,
                    "the upstream's answer could not be read",
                ));
            }
        };
        let messages = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Array(items)) => items,
            Ok(m) if status.is_success() => vec![m],
            // The upstream's own error (a JSON-RPC error with a 4xx/5xx): passed on.
            Ok(m) if m.get("error").is_some() => vec![m],
            _ => {
                return once(self.error_event(
                    keygate_mcp::jsonrpc::UPSTREAM_BAD_RESPONSE,
                    &format!("the upstream answered HTTP {}", status.as_u16()),
                ));
            }
        };
        let events: Vec<Chunk> = messages.iter().map(|m| Ok(event(m))).collect();
        stream::iter(events).boxed()
    }
}

/// Appends a gate decision to the audit log; `false` when that failed.
pub(crate) async fn audit_decision(
    state: &AppState,
    principal: &Principal,
    decision: &Decision,
) -> bool {
    let event = NewAuditEvent {
        tenant_id: principal.tenant.id.clone(),
        actor: format!("key:{}", principal.key_id),
        action: decision.audit_action().to_owned(),
        target: decision.audit_target(),
        detail: decision.audit_detail(),
    };
    match state.store.append_audit(event).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "could not audit a gate decision");
            false
        }
    }
}

/// The client's answer (`result` an `ElicitResult`, or an `error`) as the gate reads
/// it: an error is a cancel.
fn read_answer(result: Option<&RawValue>) -> MrtrAnswer {
    match result.and_then(|r| serde_json::from_str(r.get()).ok()) {
        Some(answer) => gate_answer(answer, MrtrAnswer::Cancel),
        None => MrtrAnswer::Cancel,
    }
}

/// An elicitation's result as the gate reads it, on the stream and in an MRTR retry
/// alike: an action this gateway does not know is `unknown`, which approves nothing.
pub(crate) fn gate_answer(
    answer: keygate_mcp::mrtr::ElicitResult,
    unknown: MrtrAnswer,
) -> MrtrAnswer {
    use keygate_mcp::mrtr::ElicitAction;
    match answer.action {
        ElicitAction::Accept => MrtrAnswer::Accept(
            answer
                .accepted_str(keygate_gates::MRTR_TARGET_FIELD)
                .map(str::to_owned),
        ),
        ElicitAction::Decline => MrtrAnswer::Decline,
        ElicitAction::Cancel => MrtrAnswer::Cancel,
        _ => unknown,
    }
}

/// A POST carrying the answer to one of the gateway's `elicitation/create` requests
/// (`request_id` starts with [`keygate_gates::ELICITATION_ID_PREFIX`]), already checked
/// to be in a session of the principal's key: decides the approval and answers 202.
/// Not sealed to this session, another key's approval, or no longer pending: 404, as
/// for an unknown session; nothing changes and a waiting stream keeps waiting.
pub(crate) async fn answer(
    state: &AppState,
    principal: &Principal,
    session: Option<&str>,
    request_id: &str,
    result: Option<&RawValue>,
) -> Response {
    let id = Value::String(request_id.to_owned());
    let Some(session) = session else {
        return crate::sessions::not_found(id);
    };
    let caller = crate::approvals::caller(principal);
    let user = caller.user_id.as_deref().zip(caller.user_name.as_deref());
    let answer = read_answer(result);
    let decided = state
        .gates
        .answer_elicitation(
            session,
            request_id,
            principal.key_id.as_str(),
            user,
            &answer,
        )
        .await;
    match decided {
        Ok(a) => {
            let approved = a.status == keygate_gates::ApprovalStatus::Approved;
            let action = if approved {
                "gate.approved"
            } else {
                "gate.declined"
            };
            tracing::info!(approval = %a.id, key_id = %a.key_id, action, "gated call decided on the stream");
            if crate::approvals::audit(state, principal, action, &a, Channel::Elicitation)
                .await
                .is_err()
            {
                // The decision stands (the stream's claim is audited too); say so.
                return AuthError::Unavailable.into_response();
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(ElicitationRefusal::Store(e)) => {
            tracing::error!(error = %e, "gate state unavailable taking an elicitation answer; answering 503");
            AuthError::Unavailable.into_response()
        }
        Err(refusal) => {
            tracing::info!(key_id = %principal.key_id, reason = %refusal, "elicitation answer refused");
            crate::sessions::not_found(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_streams_are_accepted_by_media_type() {
        let mut h = HeaderMap::new();
        assert!(!accepts_event_stream(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts_event_stream(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_event_stream(&h));
    }

    #[test]
    fn initialize_declares_the_modes_it_names() {
        let p = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let modes = |s: &str| {
            let d = initialize_declares(Some(&p(s)));
            (d.form, d.url)
        };
        assert_eq!(
            modes(r#"{"capabilities":{"elicitation":{}}}"#),
            (true, false)
        );
        assert_eq!(
            modes(r#"{"capabilities":{"elicitation":{"form":{}}}}"#),
            (true, false)
        );
        assert_eq!(
            modes(r#"{"capabilities":{"elicitation":{"url":{}}}}"#),
            (false, true)
        );
        assert_eq!(
            modes(r#"{"capabilities":{"elicitation":{"form":{},"url":{}}}}"#),
            (true, true)
        );
        assert_eq!(modes(r#"{"capabilities":{}}"#), (false, false));
        assert_eq!(initialize_declares(None), Declared::default());
    }

    #[test]
    fn an_error_or_unreadable_answer_is_a_cancel() {
        let p = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(read_answer(None), MrtrAnswer::Cancel);
        assert_eq!(
            read_answer(Some(&p(
                r#"{"action":"accept","content":{"target":"web"}}"#
            ))),
            MrtrAnswer::Accept(Some("web".to_owned()))
        );
        assert_eq!(
            read_answer(Some(&p(r#"{"action":"decline"}"#))),
            MrtrAnswer::Decline
        );
    }
}
