//! `/api/mcp`: the MCP gateway.
//!
//! Every request is authenticated, then rate-limited (429), by the layers in front of
//! these handlers, so a request refused below has spent its unit like any other. Then:
//! the `Mcp-Session-Id` (400 unless it is one header of 1-128 visible ASCII
//! characters), the message (400 unless one JSON-RPC object), the session's binding to
//! the key (404 for another key's or an unknown session, see [`crate::sessions`]), the
//! method's policy (403;
//! lifecycle and utility messages and answers to server requests always pass). For
//! `tools/call` the tool's policy and the project within the key's tenant (403),
//! confirmation gates (a tool-error result), then forwarding with `confirm` stripped and
//! the resolved project as `X-Keygate-Project`. `tools/list` answers only the tools the
//! key may call. Everything else is forwarded as is, streaming.
//!
//! Client-supplied strings reach log lines only through [`keygate_http::untrusted`].

use std::borrow::Cow;
use std::future::Future;
use std::task::Poll;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use keygate_gates::{Decision, FailureHistory, GateCall};
use keygate_http::{AuthError, DENIAL_LOG_CHARS, untrusted};
use keygate_keys::Principal;
use keygate_scopes::{Authorized, GateSpec, ProjectAccess, ToolPolicy};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use keygate_mcp::jsonrpc::{self, CallParams};

use crate::answers;
use crate::state::AppState;
use crate::upstream::UpstreamError;

/// JSON-RPC error codes the gateway answers with.
use keygate_mcp::jsonrpc as code;

/// Deepest JSON nesting accepted in an MCP request body.
pub const MAX_JSON_DEPTH: usize = jsonrpc::MAX_DEPTH;

/// Longest `Mcp-Session-Id` accepted, in characters (each visible ASCII).
pub const MAX_SESSION_ID_LEN: usize = 128;

const SESSION: &str = "mcp-session-id";

/// A JSON-RPC error response with an HTTP status.
fn rpc_error(status: StatusCode, id: Value, code: i64, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(jsonrpc::error_response(id, code, message)),
    )
        .into_response()
}

fn upstream_failure(id: Value, e: &UpstreamError) -> Response {
    tracing::warn!(error = %e, "upstream MCP server failed");
    let (status, code) = match e {
        UpstreamError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, code::UPSTREAM_TIMEOUT),
        UpstreamError::Unreachable(_) => (StatusCode::BAD_GATEWAY, code::UPSTREAM_UNAVAILABLE),
        UpstreamError::BadResponse(_) => (StatusCode::BAD_GATEWAY, code::UPSTREAM_BAD_RESPONSE),
    };
    rpc_error(status, id, code, e.to_string())
}

/// The request's `Mcp-Session-Id`, checked before it can reach gate state, the audit
/// log, a log line or an answer: `Ok(None)` without one. Several headers, or a value
/// that is not 1-[`MAX_SESSION_ID_LEN`] visible ASCII characters (0x21-0x7E, the MCP
/// specification's alphabet), get a 400 JSON-RPC error (`-32600`, id `null`).
pub(crate) fn session_id(headers: &HeaderMap) -> Result<Option<&str>, Response> {
    let refuse = |why: &str| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            code::INVALID_REQUEST,
            format!("Invalid Request: {why}"),
        )
    };
    let mut values = headers.get_all(SESSION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        tracing::debug!("several Mcp-Session-Id headers refused");
        return Err(refuse("send at most one Mcp-Session-Id header"));
    }
    let bytes = value.as_bytes();
    let visible = (1..=MAX_SESSION_ID_LEN).contains(&bytes.len())
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    match value.to_str() {
        Ok(id) if visible => Ok(Some(id)),
        _ => {
            tracing::debug!(len = bytes.len(), "malformed Mcp-Session-Id refused");
            Err(refuse(&format!(
                "Mcp-Session-Id must be 1-{MAX_SESSION_ID_LEN} visible ASCII characters (0x21-0x7E)"
            )))
        }
    }
}

/// `GET` and `DELETE /api/mcp` (the server-sent event stream and session end):
/// forwarded once the session id is checked.
pub(crate) async fn passthrough(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(identity): Extension<keygate_http::IdentityHeaders>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let session = match session_id(&headers) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    // Another key's session: 404, upstream not contacted (see `sessions`).
    if let Some(s) = session
        && let Err(resp) = crate::sessions::check(&state, &principal, s, None).await
    {
        return resp;
    }
    // Built by the auth layer, which set them on the request too.
    let ident = identity.into_vec();
    let deleting = method == Method::DELETE;
    match state
        .upstream
        .send(method, &headers, &ident, Bytes::new())
        .await
    {
        Ok(resp) => {
            if let Some(s) = session.filter(|_| deleting) {
                crate::sessions::deleted(&state, &principal, s, resp.status()).await;
            }
            resp.map(axum::body::Body::new)
        }
        Err(e) => upstream_failure(Value::Null, &e),
    }
}

/// `POST /api/mcp`.
///
/// Takes the whole request so that the principal and the headers are moved out of it,
/// not cloned as the `Extension` and `HeaderMap` extractors would.
pub(crate) async fn gateway(State(state): State<AppState>, req: Request) -> Response {
    // Taken apart and read by helpers: what they hold does not stay in this future,
    // which is built and moved on every request, through the rest of the call.
    let (principal, identity, headers, req) = match verified_parts(req) {
        Ok(parts) => parts,
        Err(resp) => return resp,
    };
    let session = match session_id(&headers) {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let body = match read_body(&state, req, &principal).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let parsed = match jsonrpc::parse(&body) {
        Ok(parsed) => parsed,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(e.to_response())).into_response(),
    };
    let (message, id) = (parsed.message, parsed.id);
    // No method: an answer to a server request (sampling, elicitation), which always
    // passes (`parse` refused a method that is not a string).
    let method = parsed.method;
    let method = method.as_deref();
    if let Err(resp) = routing_headers_match(&headers, method, message.params, &id) {
        return resp;
    }
    // Another key's session: 404, upstream not contacted (see `sessions`).
    let mut elicits = crate::elicitation::Declared::default();
    if let Some(s) = session {
        match crate::sessions::check(&state, &principal, s, method.map(|_| &id)).await {
            Ok(binding) => {
                elicits = crate::elicitation::Declared {
                    form: binding.elicitation,
                    url: binding.elicitation_url,
                };
            }
            Err(resp) => return resp,
        }
    }
    // The answer to one of the gateway's own `elicitation/create` requests: taken here,
    // never forwarded (see `elicitation`).
    if method.is_none()
        && let Some(request_id) = id
            .as_str()
            .filter(|i| i.starts_with(keygate_gates::ELICITATION_ID_PREFIX))
    {
        // Boxed, as every rare branch of this function is, so that the common one's
        // future stays small: it is built and moved on every request.
        return Box::pin(crate::elicitation::answer(
            &state,
            &principal,
            session,
            request_id,
            message.result,
        ))
        .await;
    }
    if let Some(m) = method
        && let Err(denied) = state.policy.authorize_method(&principal, m)
    {
        tracing::info!(
            key_id = %principal.key_id,
            method = ?untrusted(m),
            reason = ?untrusted(&denied).max_chars(DENIAL_LOG_CHARS),
            "method denied by policy"
        );
        return keygate_http::deny(&denied);
    }
    let ident = identity.into_vec();
    let call = Call {
        state: &state,
        principal: &principal,
        headers: &headers,
        session,
        identity: Cow::Borrowed(&ident),
        id,
        elicits,
    };
    match method {
        // `Bytes` clones share the buffer `message` borrows from.
        Some("tools/call") => call.tools_call(message.params, body.clone()).await,
        Some("tools/list") => Box::pin(call.tools_list(body.clone())).await,
        _ => match state
            .upstream
            .send(Method::POST, &headers, &ident, body.clone())
            .await
        {
            Ok(resp) if method == Some("initialize") => {
                let elicitation = crate::elicitation::initialize_declares(message.params);
                Box::pin(crate::sessions::bind(
                    &state,
                    &principal,
                    resp,
                    call.id,
                    elicitation,
                ))
                .await
            }
            Ok(resp) => resp,
            Err(e) => upstream_failure(call.id, &e),
        },
    }
}

/// The verified principal, its identity headers and the headers of `req` moved out of
/// it, and what is left of it (the body to read).
fn verified_parts(
    req: Request,
) -> Result<(Principal, keygate_http::IdentityHeaders, HeaderMap, Request), Response> {
    let (mut parts, body) = req.into_parts();
    let Some(principal) = parts.extensions.remove::<Principal>() else {
        tracing::error!("MCP request without a verified principal; answering 503");
        return Err(AuthError::Unavailable.into_response());
    };
    // Built by the auth layer beside the principal (on this direct path it sets none on
    // the request itself): taken, not built a second time.
    let Some(identity) = parts.extensions.remove::<keygate_http::IdentityHeaders>() else {
        tracing::error!("MCP request without its identity headers; answering 503");
        return Err(AuthError::Unavailable.into_response());
    };
    let headers = std::mem::take(&mut parts.headers);
    Ok((
        principal,
        identity,
        headers,
        Request::from_parts(parts, body),
    ))
}

/// The body of an MCP request, at most [`AppState::max_body`] bytes and within the
/// request timeout.
///
/// Read with `http_body_util` directly rather than axum's `Bytes` extractor: the
/// limit is the gateway's own, so no `DefaultBodyLimit` is recorded on the request or
/// looked up in it, and the body is not boxed once more for the limit (one body of one
/// frame, the usual request, is passed on without a copy either way).
async fn read_body(
    state: &AppState,
    req: Request,
    principal: &Principal,
) -> Result<Bytes, Response> {
    let mut read = std::pin::pin!(Limited::new(req.into_body(), state.max_body).collect());
    // A small body has usually arrived with the head: read without arming a timer, then
    // bound by the request timeout only if it has not.
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let read = match first {
        Poll::Ready(read) => read,
        Poll::Pending => match tokio::time::timeout(state.request_timeout, read).await {
            Ok(read) => read,
            Err(_) => {
                tracing::info!(key_id = %principal.key_id, "MCP request body not received within the request timeout");
                // `observe` turns an empty 504 into `{"error":"timeout"}`, as for every route.
                return Err(StatusCode::GATEWAY_TIMEOUT.into_response());
            }
        },
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
            code::INVALID_REQUEST,
            format!(
                "Request body too large: this gateway takes MCP messages of at most {} bytes",
                state.max_body
            ),
        )),
        // The connection failed or framed the body wrongly (hyper's error names no
        // client-supplied value).
        Err(e) => {
            tracing::info!(key_id = %principal.key_id, error = %e, "MCP request body could not be read");
            Err(rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                code::INVALID_REQUEST,
                "Invalid Request: the request body could not be read",
            ))
        }
    }
}

/// The 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`) against the body: a
/// mismatch is refused with HTTP 400 and JSON-RPC error `-32020`, so the policy never
/// judges one call while an upstream routing on headers runs another. Requests
/// without those headers (the stateful revisions) cost one header look-up.
fn routing_headers_match(
    headers: &HeaderMap,
    method: Option<&str>,
    params: Option<&RawValue>,
    id: &Value,
) -> Result<(), Response> {
    use keygate_mcp::headers;
    if !headers::has_routing_headers(headers) {
        return Ok(());
    }
    // Only the member `Mcp-Name` mirrors is read: the arguments stay raw.
    headers::check_routing_raw(headers, method, params).map_err(|e| {
        tracing::debug!(error = %e, "MCP routing headers do not match the body");
        rpc_error(
            StatusCode::BAD_REQUEST,
            id.clone(),
            e.code(),
            format!("Header mismatch: {e}"),
        )
    })
}

/// One MCP request being handled.
struct Call<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    headers: &'a HeaderMap,
    /// The checked `Mcp-Session-Id` (see [`session_id`]).
    session: Option<&'a str>,
    /// The key's identity headers, plus `X-Keygate-Project` once a tool call's project
    /// is resolved.
    identity: Cow<'a, [(HeaderName, HeaderValue)]>,
    id: Value,
    /// The elicitation modes the session's client declared in its `initialize`.
    elicits: crate::elicitation::Declared,
}

/// What [`Call::gated`] decides on: the call's gate and the members of its params.
struct Gated<'p> {
    spec: &'p GateSpec,
    tool: &'p ToolPolicy,
    name: &'p str,
    args: &'p Value,
    raw_params: Option<&'p RawValue>,
    request_state: Option<&'p RawValue>,
    input_responses: Option<&'p RawValue>,
}

impl Call<'_> {
    fn session(&self) -> Option<&str> {
        self.session
    }

    /// Whether this request belongs to the stateless revision (2026-07-28): no
    /// session, and its `MCP-Protocol-Version` header or, without one, its `_meta`
    /// envelope says so.
    fn is_stateless(&self, params: Option<&RawValue>) -> bool {
        let version = self
            .headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        // A request in a session is stateful, whatever its `_meta` says.
        self.session.is_none()
            && keygate_mcp::revision::is_stateless_request(version, Some("tools/call"), params)
    }

    /// A JSON-RPC result answered by the gateway itself (a gate decision).
    fn result(&self, result: Value) -> Response {
        self.answer(json!({ "jsonrpc": "2.0", "id": self.id, "result": result }))
    }

    /// A JSON-RPC response (result or error) answered by the gateway itself, HTTP 200
    /// in the request's session.
    fn answer(&self, body: Value) -> Response {
        let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
        if let Some(s) = self.headers.get(SESSION) {
            resp.headers_mut().insert(SESSION, s.clone());
        }
        resp
    }

    async fn tools_call(mut self, params: Option<&RawValue>, body: Bytes) -> Response {
        let raw_params = params;
        let params = match CallParams::read(params) {
            Ok(p) => p,
            Err(e) => {
                return rpc_error(
                    StatusCode::OK,
                    self.id,
                    code::INVALID_PARAMS,
                    format!("Invalid params: {e}"),
                );
            }
        };
        // An MRTR retry's members: never forwarded on a person-gated call.
        let request_state = params.as_ref().and_then(|p| p.request_state);
        let input_responses = params.as_ref().and_then(|p| p.input_responses);
        let name = params.as_ref().and_then(CallParams::name);
        let Some(name) = name else {
            return rpc_error(
                StatusCode::OK,
                self.id,
                code::INVALID_PARAMS,
                "Invalid params: tools/call needs params.name (the tool to call)",
            );
        };
        let name = name.as_ref();
        let args = match params.and_then(|p| p.arguments).map(RawValue::get) {
            None | Some("null") => Value::Object(Map::new()),
            // Duplicate members refused: see `unique_json`.
            Some(text) if text.starts_with('{') => match crate::unique_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    return rpc_error(
                        StatusCode::OK,
                        self.id,
                        code::INVALID_PARAMS,
                        format!("Invalid params: arguments: {e}"),
                    );
                }
            },
            Some(_) => {
                return rpc_error(
                    StatusCode::OK,
                    self.id,
                    code::INVALID_PARAMS,
                    "Invalid params: tools/call params.arguments must be an object",
                );
            }
        };
        let args = &args;
        let state = self.state;

        // 1. Policy, and the project within the key's tenant.
        let allowed = match state.policy.authorize(self.principal, name, args) {
            Ok(allowed) => allowed,
            Err(denied) => {
                tracing::info!(
                    key_id = %self.principal.key_id,
                    tool = ?untrusted(name),
                    reason = ?untrusted(&denied).max_chars(DENIAL_LOG_CHARS),
                    "tool call denied by policy"
                );
                return keygate_http::deny(&denied);
            }
        };
        if let Err(resp) = self.resolve_project(&allowed).await {
            return resp;
        }
        let tool = allowed.tool();
        // 2. Rate limits: already spent, before the handler (`app::rate_limited`).
        // 3. Gates: in a future of their own, boxed, so that an ungated call (nearly
        // every call) neither builds nor copies their state (see docs/decisions.md).
        if let Some(spec) = tool.gate() {
            let gated = Gated {
                spec,
                tool,
                name,
                args,
                raw_params,
                request_state,
                input_responses,
            };
            return Box::pin(self.gated(gated, body)).await;
        }
        // 4. Forward, without `confirm`.
        let body = forwarded_body(&body, args, None, request_state, input_responses);
        self.forward(name, args, body).await
    }

    /// A call of a gated tool (step 3 of [`Call::tools_call`]): the gate's decision,
    /// answered by the gateway, or the call forwarded.
    async fn gated(self, gated: Gated<'_>, body: Bytes) -> Response {
        let Gated {
            spec,
            tool,
            name,
            args,
            raw_params,
            request_state,
            input_responses,
        } = gated;
        let state = self.state;
        let call = GateCall::from_args(
            spec,
            self.principal.key_id.as_str(),
            self.session(),
            name,
            args,
        )
        .with_caller(crate::approvals::caller(self.principal));
        // Only a gate that lets the client ask its person reads an MRTR retry or asks
        // on the stream; on a page-only gate a `requestState` is ignored like any
        // made-up `confirm`.
        let client_asks = spec.approval_by().asks_through_client();
        // The failure history the decision was made on, for deciding again once a
        // person answered on the stream.
        let mut history_seen = None;
        let decision = if let Some(sealed) = request_state.filter(|_| client_asks) {
            // An MRTR retry: the sealed state and the person's answer decide it.
            // A state that is not a string is as made up as any other.
            let sealed = jsonrpc::json_str(sealed).unwrap_or_default();
            let answer = mrtr_answer(input_responses);
            let outcome = match state.gates.answer_mrtr(spec, &call, &sealed, &answer).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "gate state unavailable; answering 503");
                    return AuthError::Unavailable.into_response();
                }
            };
            if let Some(decided) = &outcome.decided {
                let action = if outcome.decision.is_allowed() {
                    "gate.approved"
                } else {
                    "gate.declined"
                };
                let audited = crate::approvals::audit(
                    state,
                    self.principal,
                    action,
                    decided,
                    keygate_gates::Channel::Mrtr,
                )
                .await;
                if audited.is_err() && outcome.decision.is_allowed() {
                    // An approval must leave a trace; refuse rather than act unseen.
                    return AuthError::Unavailable.into_response();
                }
            }
            outcome.decision
        } else {
            // Protected and unreadable targets are refused without asking the upstream.
            let history = if state.gates.needs_history(spec, &call) {
                match self.failure_history(spec, tool.project_arg(), args).await {
                    Ok(h) => h,
                    Err(resp) => return resp,
                }
            } else {
                None
            };
            let decided = state.gates.decide(spec, &call, history.as_ref()).await;
            history_seen = history;
            match decided {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "gate state unavailable; answering 503");
                    return AuthError::Unavailable.into_response();
                }
            }
        };
        state.metrics.gate(decision.code().unwrap_or("ALLOWED"));
        let audited = self.audit(&decision).await;
        // A 2026-07-28 client that renders forms asks its person right away (MRTR).
        if client_asks
            && decision.code() == Some(keygate_gates::APPROVAL_REQUIRED)
            && asks_by_form(raw_params)
        {
            match state.gates.mrtr_ask(&decision) {
                Ok(Some(ask)) => {
                    tracing::info!(key_id = %self.principal.key_id, tool = ?untrusted(name), "gated call answered input_required (MRTR)");
                    return self.result(input_required(ask));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot seal an MRTR request state; answering with the approval page");
                }
            }
        }
        // A stateful client that declared elicitation asks its person on the stream.
        if client_asks
            && decision.code() == Some(keygate_gates::APPROVAL_REQUIRED)
            && self.elicits.form
            && crate::elicitation::accepts_event_stream(self.headers)
            && let Some(session) = self.session
        {
            match state.gates.elicitation_ask(&decision, session) {
                Ok(Some(ask)) => {
                    tracing::info!(key_id = %self.principal.key_id, tool = ?untrusted(name), "gated call answered with elicitation on the stream");
                    let forward =
                        forwarded_body(&body, args, tool.gate(), request_state, input_responses);
                    return crate::elicitation::ask_on_stream(crate::elicitation::Pending {
                        state: state.clone(),
                        principal: self.principal.clone(),
                        headers: self.headers.clone(),
                        identity: self.identity.into_owned(),
                        id: self.id,
                        session: session.to_owned(),
                        spec: spec.clone(),
                        tool: name.to_owned(),
                        args: args.clone(),
                        history: history_seen,
                        forward,
                        ask,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot ask on the stream; answering with the approval page");
                }
            }
        }
        // A client that declared URL elicitation, not asked above (a page gate, or no
        // form to ask with), is offered the approval page as one.
        if spec.approval_by().is_person()
            && let Some(resp) = self.offer_url(&decision, raw_params, input_responses)
        {
            tracing::info!(key_id = %self.principal.key_id, tool = ?untrusted(name), "gated call offered the approval page as a URL elicitation");
            return resp;
        }
        if let Some(mut result) = decision.to_tool_result() {
            tracing::info!(key_id = %self.principal.key_id, tool = ?untrusted(name), code = decision.code(), "gated call answered");
            // 2026-07-28 results say they are final; clients refuse one that does not.
            if self.is_stateless(raw_params)
                && let Some(obj) = result.as_object_mut()
            {
                obj.insert(
                    "resultType".to_owned(),
                    keygate_mcp::mrtr::ResultType::Complete.as_str().into(),
                );
            }
            return self.result(result);
        }
        if !audited {
            // An allowed destructive call must leave a trace; refuse rather than act unseen.
            return AuthError::Unavailable.into_response();
        }
        // 4. Forward, without `confirm` and without the MRTR members the gateway
        // answered itself on a person-gated call.
        let body = forwarded_body(&body, args, Some(spec), request_state, input_responses);
        self.forward(name, args, body).await
    }

    /// Forwards a permitted call's `body`. A read that a gate counts as evidence is
    /// watched in a future of its own, boxed, like the gates' (see [`Call::gated`]).
    async fn forward(self, name: &str, args: &Value, body: Bytes) -> Response {
        // Evidence reads are recorded in their session or, for a stateless request,
        // for the key alone (counting within the gate's `evidence_window`).
        if let Some(target) = self.state.policy.evidence_target(name, args) {
            return Box::pin(self.forward_evidence(name, target, body)).await;
        }
        match self
            .state
            .upstream
            .send(Method::POST, self.headers, &self.identity, body)
            .await
        {
            Ok(resp) => resp,
            Err(e) => upstream_failure(self.id, &e),
        }
    }

    /// Forwards an evidence read and records it as its answer passes.
    async fn forward_evidence(self, name: &str, target: &str, body: Bytes) -> Response {
        let state = self.state;
        let resp = match state
            .upstream
            .send(Method::POST, self.headers, &self.identity, body)
            .await
        {
            Ok(resp) => resp,
            Err(e) => return upstream_failure(self.id, &e),
        };
        // Streamed as it comes; the read is recorded as its answer passes.
        let gates = state.gates.clone();
        let read = [self.principal.key_id.as_str(), name, target].map(str::to_owned);
        let session = self.session().map(str::to_owned);
        answers::watch_answer(resp, self.id, move |answer| async move {
            let [key, tool, target] = read;
            if !call_succeeded(&answer) {
                return;
            }
            let recorded = match &session {
                Some(session) => gates.record_evidence(&key, session, &tool, &target).await,
                None => gates.record_stateless_evidence(&key, &tool, &target).await,
            };
            if let Err(e) = recorded {
                tracing::error!(error = %e, "could not record an evidence read");
            }
        })
        .await
    }

    /// Resolves the project a permitted call names: a restricted key's own project comes
    /// from the key; a project named by an unrestricted key must be one of its tenant's
    /// (one indexed store look-up), else 403 exactly as for any project denial. The
    /// resolved id is forwarded as `X-Keygate-Project`.
    async fn resolve_project(&mut self, allowed: &Authorized<'_>) -> Result<(), Response> {
        let project = match allowed.project() {
            ProjectAccess::None => return Ok(()),
            ProjectAccess::Resolved(project) => project.id.clone(),
            ProjectAccess::InTenant(named) => {
                match self
                    .state
                    .store
                    .find_project(&self.principal.tenant.id, named)
                    .await
                {
                    Ok(Some(project)) => project.id,
                    Ok(None) => {
                        let denied = allowed.outside_tenant();
                        tracing::info!(
                            key_id = %self.principal.key_id,
                            tool = allowed.tool().name(),
                            reason = ?untrusted(&denied).max_chars(DENIAL_LOG_CHARS),
                            "tool call denied: project not in the key's tenant"
                        );
                        return Err(keygate_http::deny(&denied));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "key store unavailable resolving a project; answering 503");
                        return Err(AuthError::Unavailable.into_response());
                    }
                }
            }
            // A kind of project access this gateway does not know: refuse.
            _ => return Err(keygate_http::deny(&allowed.outside_tenant())),
        };
        let header = keygate_http::project_header(&project).map_err(|_| {
            tracing::error!(project = %project, "a project id cannot be sent as a header");
            AuthError::Unavailable.into_response()
        })?;
        self.identity.to_mut().push(header);
        Ok(())
    }

    /// Asks the upstream's status tool whether the gate's target has failure history.
    /// `Ok(None)` when the call names no target (the gate refuses it anyway).
    async fn failure_history(
        &self,
        spec: &GateSpec,
        project_arg: Option<&str>,
        args: &Value,
    ) -> Result<Option<FailureHistory>, Response> {
        let GateSpec::Evidence {
            status_tool,
            failure_field,
            ..
        } = spec
        else {
            return Ok(None);
        };
        let Some(target) = spec.target(args) else {
            return Ok(None);
        };
        let mut arguments = Map::new();
        arguments.insert(
            spec.target_arg().to_owned(),
            Value::String(target.to_owned()),
        );
        if let Some(arg) = project_arg
            && let Some(project) = args.get(arg)
        {
            arguments.insert(arg.to_owned(), project.clone());
        }
        let id = Value::String(format!(
            "keygate-status-{}",
            keygate_token::random_base62(12).unwrap_or_default()
        ));
        let request = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": { "name": status_tool, "arguments": arguments },
        });
        let body = Bytes::from(request.to_string());
        let buffered = self
            .state
            .upstream
            .post_buffered(self.headers, &self.identity, body)
            .await
            .map_err(|e| upstream_failure(self.id.clone(), &e))?;
        Ok(Some(
            match buffered.response_to(&id).and_then(|m| m.get("result")) {
                Some(result) => FailureHistory::from_status(result, failure_field),
                None => FailureHistory::Unknown {
                    reason: format!("the status tool {status_tool} gave no result"),
                },
            },
        ))
    }

    /// The approval page as a URL elicitation, for an `APPROVAL_REQUIRED` decision of a
    /// client that declared URL mode: on 2026-07-28 (`_meta` capabilities) an
    /// `input_required`, unless this is already the retry that answered one (then the
    /// call is answered `APPROVAL_REQUIRED`, so the client's loop ends); in a session
    /// whose `initialize` declared it, the error `-32042`. `None`: answer as before.
    fn offer_url(
        &self,
        decision: &Decision,
        raw_params: Option<&RawValue>,
        input_responses: Option<&RawValue>,
    ) -> Option<Response> {
        let offer = crate::elicitation::url_offer(decision)?;
        if self.is_stateless(raw_params) {
            (input_responses.is_none() && asks_by_url(raw_params))
                .then(|| self.result(crate::elicitation::url_input_required(&offer)))
        } else {
            (self.session.is_some() && self.elicits.url).then(|| {
                self.answer(crate::elicitation::url_required_error(
                    self.id.clone(),
                    &offer,
                ))
            })
        }
    }

    /// Appends the decision to the audit log; `false` when that failed.
    async fn audit(&self, decision: &Decision) -> bool {
        crate::elicitation::audit_decision(self.state, self.principal, decision).await
    }

    /// Forwards a `tools/list` and filters its answer, in the form it comes in (an
    /// event stream is rewritten event by event): only the tools the key may call,
    /// with the `confirm` argument on gated ones. The upstream's own refusal (415 for a
    /// wrong content type, 404 for an ended session, 202 for a tools/list sent as a
    /// notification) reaches the client with its status: it lists no tool.
    async fn tools_list(self, body: Bytes) -> Response {
        let resp = match self
            .state
            .upstream
            .send(Method::POST, self.headers, &self.identity, body)
            .await
        {
            Ok(resp) => resp,
            Err(e) => return upstream_failure(self.id, &e),
        };
        let policy = self.state.policy.clone();
        let visible: std::collections::HashSet<String> = policy
            .visible_tools(self.principal)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let filter = move |message: &mut Value| filter_tools(message, &visible, &policy);
        match answers::edit_answer(resp, self.id.clone(), filter).await {
            Ok(resp) => resp,
            Err(e) => upstream_failure(self.id, &e),
        }
    }
}

/// Keeps the tools of a `tools/list` answer that are in `visible`, and shows the tools
/// gated with the agent-relayed challenge (`approval = "agent"`) their `confirm`
/// argument.
fn filter_tools(
    message: &mut Value,
    visible: &std::collections::HashSet<String>,
    policy: &keygate_scopes::Policy,
) {
    let Some(tools) = message
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    tools.retain(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| visible.contains(n))
    });
    for t in tools.iter_mut() {
        // Only the agent-relayed challenge takes `confirm`; a person gate is approved
        // on the approval page, and showing the argument would invite made-up ones.
        let challenged = t
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| policy.tool(n))
            .and_then(keygate_scopes::ToolPolicy::gate)
            .is_some_and(|g| g.approval_by() == keygate_scopes::ApprovalBy::Agent);
        if challenged {
            add_confirm_argument(t);
        }
    }
}

/// The body of a permitted call as it is forwarded: without `confirm` and, on a
/// person-gated call, without the MRTR members the gateway answered itself.
fn forwarded_body(
    body: &Bytes,
    args: &Value,
    gate: Option<&GateSpec>,
    request_state: Option<&RawValue>,
    input_responses: Option<&RawValue>,
) -> Bytes {
    let confirm = args.get(keygate_gates::CONFIRM_ARG).is_some();
    let mrtr = gate.is_some_and(|g| {
        g.approval_by().is_person() && (request_state.is_some() || input_responses.is_some())
    });
    if confirm || mrtr {
        forwarded_call(
            body,
            confirm.then(|| keygate_gates::strip_confirm(args)),
            mrtr,
        )
    } else {
        body.clone()
    }
}

/// The body forwarded upstream: the same request with the arguments replaced (when
/// `args` is given) and, with `strip_mrtr`, without `inputResponses` and
/// `requestState`.
fn forwarded_call(body: &[u8], args: Option<Value>, strip_mrtr: bool) -> Bytes {
    // The body was read as one JSON object before the call got here.
    let Ok(mut out) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return Bytes::copy_from_slice(body);
    };
    if let Some(Value::Object(params)) = out.get_mut("params") {
        if let Some(args) = args {
            params.insert("arguments".to_owned(), args);
        }
        if strip_mrtr {
            params.remove("inputResponses");
            params.remove("requestState");
        }
    }
    Bytes::from(serde_json::to_vec(&out).unwrap_or_default())
}

/// Whether a request is a 2026-07-28 one whose client declares form elicitation in its
/// `_meta` (then a person gate asks by MRTR). Stateful requests never are: their
/// `_meta` carries no stateless protocol version.
fn asks_by_form(params: Option<&RawValue>) -> bool {
    keygate_mcp::revision::RequestMeta::from_raw_params(params)
        .is_ok_and(|m| m.protocol_version.is_stateless() && m.capabilities.elicitation_form())
}

/// Whether a request is a 2026-07-28 one whose client declares URL-mode elicitation in
/// its `_meta` (then a person gate may offer the approval page as a URL elicitation).
fn asks_by_url(params: Option<&RawValue>) -> bool {
    keygate_mcp::revision::RequestMeta::from_raw_params(params)
        .is_ok_and(|m| m.protocol_version.is_stateless() && m.capabilities.elicitation_url())
}

/// The person's answer in a retry's `inputResponses` (under
/// [`keygate_gates::MRTR_INPUT`]).
fn mrtr_answer(responses: Option<&RawValue>) -> keygate_gates::MrtrAnswer {
    use keygate_gates::MrtrAnswer;
    use keygate_mcp::mrtr::{ElicitResult, InputResponses};
    use serde::Deserialize as _;
    match responses
        .and_then(|r| serde_json::from_str::<InputResponses>(r.get()).ok())
        .and_then(|mut r| r.remove(keygate_gates::MRTR_INPUT))
        .and_then(|v| ElicitResult::deserialize(v).ok())
    {
        Some(answer) => crate::elicitation::gate_answer(answer, MrtrAnswer::Missing),
        None => MrtrAnswer::Missing,
    }
}

/// The `input_required` result that asks the client's person (MRTR): input request
/// `approval`, a form `elicitation/create` with one required string `target`.
fn input_required(ask: keygate_gates::MrtrAsk) -> Value {
    use keygate_mcp::mrtr::{ElicitRequestParams, InputRequest, InputRequiredResult};
    let schema = crate::elicitation::approval_schema(&ask.target_arg, &ask.target);
    InputRequiredResult::new()
        .with_request(
            keygate_gates::MRTR_INPUT,
            InputRequest::Elicitation(ElicitRequestParams::form(ask.message, schema)),
        )
        .with_state(ask.request_state)
        .to_value()
}

/// Whether a tool call's answer (a 2xx one: others never get here) is a result that
/// is not a tool error.
fn call_succeeded(answer: &Value) -> bool {
    answer
        .get("result")
        .is_some_and(|r| r.get("isError").and_then(Value::as_bool) != Some(true))
}

/// Shows agents the `confirm` argument a gated tool accepts.
fn add_confirm_argument(tool: &mut Value) {
    let Some(schema) = tool.get_mut("inputSchema").and_then(Value::as_object_mut) else {
        return;
    };
    let props = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            keygate_gates::CONFIRM_ARG.to_owned(),
            json!({
                "type": "object",
                "description": "Confirmation of a gated operation: the challenge from a CONFIRMATION_REQUIRED answer and the exact target name the user approved. Leave it out on the first call.",
                "properties": {
                    "challenge": { "type": "string" },
                    "target": { "type": "string" }
                },
                "required": ["challenge", "target"],
                "additionalProperties": false
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_is_added_to_gated_schemas() {
        let mut tool = json!({"name": "service.delete", "inputSchema": {"type": "object", "properties": {"service": {"type": "string"}}}});
        add_confirm_argument(&mut tool);
        assert!(
            tool["inputSchema"]["properties"]["confirm"]["properties"]["challenge"].is_object()
        );
        assert!(tool["inputSchema"]["properties"]["service"].is_object());
    }

    #[test]
    fn forwarded_calls_replace_only_the_arguments() {
        let obj = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api","confirm":{"challenge":"c","target":"api"}},"_meta":{"progressToken":1}}});
        let body = forwarded_call(
            obj.to_string().as_bytes(),
            Some(json!({"service":"api"})),
            false,
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["params"]["arguments"], json!({"service":"api"}));
        assert_eq!(v["params"]["_meta"], json!({"progressToken":1}));
        assert_eq!(v["id"], json!(7));
    }

    #[test]
    fn forwarded_mrtr_retries_lose_the_gateways_members_only() {
        let obj = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api"},"inputResponses":{"approval":{"action":"accept"}},"requestState":"s","_meta":{"progressToken":1}}});
        let body = forwarded_call(obj.to_string().as_bytes(), None, true);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["params"],
            json!({"name":"service.delete","arguments":{"service":"api"},"_meta":{"progressToken":1}})
        );
    }
}
