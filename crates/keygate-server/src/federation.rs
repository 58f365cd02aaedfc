//! Several MCP servers behind one gateway (a settings file's `[upstreams.NAME]`
//! tables): one [`Upstream`] to the rest of the gateway, so the policy, the gates and
//! the session binding see one server whose tools, prompts and resource templates are
//! named `NAME.<name>`.
//!
//! - `initialize` (no session) is sent to every upstream; each one's session is kept
//!   under a session id the federation issues (32 base62 characters), which the gateway
//!   binds to the key as for any upstream. The answer: the lowest protocol version of
//!   the upstreams, their capabilities merged, `serverInfo` keygate's. One upstream that
//!   refuses fails the `initialize` (the others' sessions are ended).
//! - `tools/list`, `prompts/list`, `resources/list` and `resources/templates/list` are
//!   sent to every upstream (each one's pages followed, at most [`MAX_PAGES`]) and
//!   merged, each name prefixed; an upstream that fails is left out of the list (and
//!   logged), unless all fail. The gateway then filters `tools/list` by the policy.
//! - `tools/call`, `prompts/get` and `completion/complete` on a prompt go to the
//!   upstream their name's prefix names, with the prefix taken off (the `Mcp-Name`
//!   header too). `resources/read`, `subscribe` and `unsubscribe` go to the upstream
//!   that listed the URI, else to each in turn until one answers with a result.
//!   `server/discover` is merged like `initialize` (the versions every upstream
//!   supports). `ping` is answered here; other requests and every notification go to
//!   every upstream.
//! - The upstreams' own requests to the client (sampling, elicitation) get ids
//!   `NAME.<id as JSON>`, so that the client's answer, POSTed back, reaches the one that
//!   asked with its own id.
//! - `GET` merges the upstreams' GET streams (their `list_changed` notifications among
//!   them); `DELETE` ends the session at every upstream.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use keygate_mcp::jsonrpc;
use serde_json::{Map, Value, json};

use crate::upstream::{
    Buffered, Upstream, UpstreamError, json_response, not_found, rpc_error, sse_response,
    status_only,
};

/// Pages of one upstream's list followed at most.
pub(crate) const MAX_PAGES: usize = 20;
/// Sessions kept at most; the oldest idle one is forgotten first.
const MAX_SESSIONS: usize = 10_000;
/// A session without a request for this long is forgotten.
const SESSION_IDLE: Duration = Duration::from_secs(24 * 60 * 60);
/// URIs remembered for routing resource reads.
const MAX_URIS: usize = 10_000;

const SESSION: &str = "mcp-session-id";
const MCP_NAME: &str = "mcp-name";

/// The list methods merged across upstreams, with the result member holding the list.
const LISTS: &[(&str, &str)] = &[
    ("tools/list", "tools"),
    ("prompts/list", "prompts"),
    ("resources/list", "resources"),
    ("resources/templates/list", "resourceTemplates"),
];

/// Several upstreams as one.
#[derive(Debug)]
pub(crate) struct Federation {
    members: Vec<Member>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Which upstream listed a resource URI.
    uris: Mutex<HashMap<String, usize>>,
}

#[derive(Debug)]
struct Member {
    name: String,
    upstream: Upstream,
}

#[derive(Debug, Clone)]
struct Session {
    /// Each member's session id, by member index (`None`: it issued none).
    members: Vec<Option<HeaderValue>>,
    last_used: Instant,
}

/// What one request needs to reach the members.
struct Ctx<'a> {
    headers: &'a HeaderMap,
    identity: &'a [(HeaderName, HeaderValue)],
    session: Option<Session>,
}

impl Federation {
    /// The federation of `members` (named upstreams, names checked).
    pub(crate) fn new(members: Vec<(String, Upstream)>) -> Self {
        Self {
            members: members
                .into_iter()
                .map(|(name, upstream)| Member { name, upstream })
                .collect(),
            sessions: Mutex::new(HashMap::new()),
            uris: Mutex::new(HashMap::new()),
        }
    }

    fn member(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// Answers one MCP request (see the module docs).
    pub(crate) async fn respond(
        &self,
        method: Method,
        headers: &HeaderMap,
        identity: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        let session_id = headers.get(SESSION).and_then(|v| v.to_str().ok());
        let session = match session_id {
            Some(id) => match self.session(id) {
                Some(s) => Some(s),
                None => return Ok(not_found(Value::Null)),
            },
            None => None,
        };
        let ctx = Ctx {
            headers,
            identity,
            session,
        };
        match method {
            Method::GET => Ok(self.get(&ctx).await),
            Method::DELETE => Ok(self.delete(&ctx, session_id).await),
            Method::POST => self.post(&ctx, &body).await,
            _ => {
                let mut resp = status_only(StatusCode::METHOD_NOT_ALLOWED);
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
                Ok(resp)
            }
        }
    }

    fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let s = sessions.get_mut(id)?;
        s.last_used = Instant::now();
        Some(s.clone())
    }

    /// The headers for member `i`: its session id in place of the federation's.
    fn headers_for(&self, ctx: &Ctx<'_>, i: usize, name: Option<&str>) -> HeaderMap {
        let mut headers = ctx.headers.clone();
        headers.remove(SESSION);
        if let Some(s) = ctx
            .session
            .as_ref()
            .and_then(|s| s.members.get(i))
            .cloned()
            .flatten()
        {
            headers.insert(SESSION, s);
        }
        if let Some(name) = name
            && headers.contains_key(MCP_NAME)
            && let Ok(v) = HeaderValue::from_str(name)
        {
            headers.insert(MCP_NAME, v);
        }
        headers
    }

    async fn send(
        &self,
        ctx: &Ctx<'_>,
        i: usize,
        method: Method,
        body: Bytes,
        name: Option<&str>,
    ) -> Result<Response<Body>, UpstreamError> {
        let headers = self.headers_for(ctx, i, name);
        self.members[i]
            .upstream
            .send(method, &headers, ctx.identity, body)
            .await
    }

    /// A request to member `i`, its answer read in full.
    async fn ask(
        &self,
        ctx: &Ctx<'_>,
        i: usize,
        message: &Value,
    ) -> Result<(HeaderMap, Option<Value>), UpstreamError> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let body = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        let resp = self.send(ctx, i, Method::POST, body, None).await?;
        let headers = resp.headers().clone();
        let buffered = Buffered::read_response(resp, self.members[i].upstream.timeout()).await?;
        Ok((headers, buffered.response_to(&id).cloned()))
    }

    /// A request to every member at once, each answer read in full, by member index.
    async fn ask_all(
        &self,
        ctx: &Ctx<'_>,
        message: &Value,
    ) -> Vec<Result<(HeaderMap, Option<Value>), UpstreamError>> {
        futures_util::future::join_all((0..self.members.len()).map(|i| self.ask(ctx, i, message)))
            .await
    }

    async fn post(&self, ctx: &Ctx<'_>, body: &[u8]) -> Result<Response<Body>, UpstreamError> {
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
            return Ok(crate::stdio_bridge::not_one_message());
        };
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return self.client_answer(ctx, message).await;
        };
        if !message.contains_key("id") {
            return Ok(self.notify_all(ctx, &message).await);
        }
        if let Some((_, key)) = LISTS.iter().find(|(m, _)| *m == method) {
            return Ok(self.list(ctx, message, key).await);
        }
        match method.as_str() {
            "initialize" if ctx.session.is_none() => Ok(self.initialize(ctx, message).await),
            "server/discover" => Ok(self.discover(ctx, message).await),
            "ping" => Ok(json_response(
                StatusCode::OK,
                &jsonrpc::result_response(id, json!({})),
            )),
            "tools/call" | "prompts/get" => {
                let name = message
                    .get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.by_name(ctx, message, name.as_deref(), "/params/name")
                    .await
            }
            "completion/complete" => {
                let reference = message
                    .get("params")
                    .and_then(|p| p.get("ref"))
                    .cloned()
                    .unwrap_or(Value::Null);
                match reference.get("type").and_then(Value::as_str) {
                    Some("ref/prompt") => {
                        let name = reference.get("name").and_then(Value::as_str);
                        self.by_name(ctx, message.clone(), name, "/params/ref/name")
                            .await
                    }
                    _ => {
                        let uri = reference
                            .get("uri")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        self.by_uri(ctx, message, uri.as_deref()).await
                    }
                }
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                let uri = message
                    .get("params")
                    .and_then(|p| p.get("uri"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.by_uri(ctx, message, uri.as_deref()).await
            }
            _ => Ok(self.first_of_all(ctx, message).await),
        }
    }

    /// The client's `initialize`: every member's session, under one id of ours.
    async fn initialize(&self, ctx: &Ctx<'_>, message: Map<String, Value>) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let answers = self.ask_all(ctx, &Value::Object(message)).await;
        let mut sessions = Vec::with_capacity(answers.len());
        let mut results = Vec::with_capacity(answers.len());
        let mut failure = None;
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok((headers, Some(answer))) if answer.get("result").is_some() => {
                    sessions.push(headers.get(SESSION).cloned());
                    results.push((i, answer["result"].clone()));
                }
                Ok((headers, answer)) => {
                    sessions.push(headers.get(SESSION).cloned());
                    failure.get_or_insert((
                        i,
                        answer
                            .and_then(|a| a.get("error").cloned())
                            .map_or_else(|| "no answer".to_owned(), |e| e.to_string()),
                    ));
                }
                Err(e) => {
                    sessions.push(None);
                    failure.get_or_insert((i, e.to_string()));
                }
            }
        }
        let session = Session {
            members: sessions,
            last_used: Instant::now(),
        };
        if let Some((i, why)) = failure {
            self.end(ctx, &session).await;
            tracing::warn!(upstream = %self.members[i].name, error = %why, "an upstream refused initialize");
            return rpc_error(
                StatusCode::BAD_GATEWAY,
                id,
                jsonrpc::UPSTREAM_UNAVAILABLE,
                format!(
                    "upstream {} did not initialize: {why}",
                    self.members[i].name
                ),
            );
        }
        let Ok(session_id) = keygate_token::random_base62(32) else {
            self.end(ctx, &session).await;
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                id,
                jsonrpc::INTERNAL_ERROR,
                "no randomness for a session id",
            );
        };
        let Ok(header) = HeaderValue::from_str(&session_id) else {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                id,
                jsonrpc::INTERNAL_ERROR,
                "a session id could not be sent",
            );
        };
        {
            let mut all = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            all.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
            if all.len() >= MAX_SESSIONS
                && let Some(oldest) = all
                    .iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
            all.insert(session_id, session);
        }
        let versions = results
            .iter()
            .filter_map(|(_, r)| r.get("protocolVersion").and_then(Value::as_str))
            .min()
            .map(str::to_owned);
        let mut result = Map::new();
        if let Some(v) = versions {
            result.insert("protocolVersion".to_owned(), Value::from(v));
        }
        result.insert(
            "capabilities".to_owned(),
            merged_capabilities(results.iter().map(|(_, r)| r)),
        );
        result.insert(
            "serverInfo".to_owned(),
            json!({ "name": "keygate", "version": env!("CARGO_PKG_VERSION") }),
        );
        if let Some(text) = self.instructions(&results) {
            result.insert("instructions".to_owned(), Value::from(text));
        }
        let mut resp = json_response(
            StatusCode::OK,
            &jsonrpc::result_response(id, Value::Object(result)),
        );
        resp.headers_mut().insert(SESSION, header);
        resp
    }

    fn instructions(&self, results: &[(usize, Value)]) -> Option<String> {
        let parts: Vec<String> = results
            .iter()
            .filter_map(|(i, r)| {
                let text = r.get("instructions").and_then(Value::as_str)?;
                Some(format!("{}: {text}", self.members[*i].name))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// `server/discover`: every member's, merged; a member's error is the answer.
    async fn discover(&self, ctx: &Ctx<'_>, message: Map<String, Value>) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let answers = self.ask_all(ctx, &Value::Object(message)).await;
        let mut results = Vec::new();
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok((_, Some(answer))) if answer.get("result").is_some() => {
                    results.push((i, answer["result"].clone()));
                }
                Ok((_, Some(answer))) => return json_response(StatusCode::OK, &answer),
                Ok((_, None)) => return unavailable(id, &self.members[i].name, "no answer"),
                Err(e) => return unavailable(id, &self.members[i].name, &e.to_string()),
            }
        }
        let mut result = results
            .first()
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| json!({}));
        let supported: Vec<Value> = result
            .get("supportedVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                results.iter().all(|(_, r)| {
                    r.get("supportedVersions")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.contains(v))
                })
            })
            .collect();
        if let Some(obj) = result.as_object_mut() {
            obj.insert("supportedVersions".to_owned(), Value::Array(supported));
            obj.insert(
                "capabilities".to_owned(),
                merged_capabilities(results.iter().map(|(_, r)| r)),
            );
            match self.instructions(&results) {
                Some(text) => obj.insert("instructions".to_owned(), Value::from(text)),
                None => obj.remove("instructions"),
            };
            obj.insert(
                "_meta".to_owned(),
                json!({ keygate_mcp::revision::SERVER_INFO_KEY: { "name": "keygate", "version": env!("CARGO_PKG_VERSION") } }),
            );
        }
        json_response(StatusCode::OK, &jsonrpc::result_response(id, result))
    }

    /// A list from every member, merged, each entry's name prefixed.
    async fn list(&self, ctx: &Ctx<'_>, message: Map<String, Value>, key: &str) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let lists = futures_util::future::join_all(
            (0..self.members.len()).map(|i| self.member_list(ctx, i, message.clone(), key)),
        )
        .await;
        let mut merged = Vec::new();
        let mut base: Option<Map<String, Value>> = None;
        let mut first_error = None;
        for (i, list) in lists.into_iter().enumerate() {
            let name = &self.members[i].name;
            match list {
                Ok((result, entries)) => {
                    base.get_or_insert(result);
                    for mut entry in entries {
                        if key == "resources"
                            && let Some(uri) = entry.get("uri").and_then(Value::as_str)
                        {
                            self.remember_uri(uri, i);
                        }
                        if let Some(n) = entry.get("name").and_then(Value::as_str) {
                            entry["name"] = Value::from(format!("{name}.{n}"));
                        }
                        merged.push(entry);
                    }
                }
                Err(answer) => {
                    tracing::warn!(upstream = %name, "an upstream failed a list; it is left out");
                    first_error.get_or_insert(answer);
                }
            }
        }
        let Some(mut result) = base else {
            return json_response(
                StatusCode::OK,
                &first_error.unwrap_or_else(|| {
                    jsonrpc::error_response(
                        id,
                        jsonrpc::UPSTREAM_UNAVAILABLE,
                        "no upstream answered",
                    )
                }),
            );
        };
        result.insert(key.to_owned(), Value::Array(merged));
        result.remove("nextCursor");
        json_response(
            StatusCode::OK,
            &jsonrpc::result_response(id, Value::Object(result)),
        )
    }

    /// Member `i`'s whole list (its pages followed): the first page's result and the
    /// entries; `Err` is the error answer to pass on.
    async fn member_list(
        &self,
        ctx: &Ctx<'_>,
        i: usize,
        mut message: Map<String, Value>,
        key: &str,
    ) -> Result<(Map<String, Value>, Vec<Value>), Value> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let mut entries = Vec::new();
        let mut first = None;
        for _ in 0..MAX_PAGES {
            let answer = match self.ask(ctx, i, &Value::Object(message.clone())).await {
                Ok((_, Some(answer))) => answer,
                Ok((_, None)) => {
                    return Err(jsonrpc::error_response(
                        id,
                        jsonrpc::UPSTREAM_BAD_RESPONSE,
                        format!("upstream {} gave no answer", self.members[i].name),
                    ));
                }
                Err(e) => {
                    return Err(jsonrpc::error_response(
                        id,
                        jsonrpc::UPSTREAM_UNAVAILABLE,
                        format!("upstream {}: {e}", self.members[i].name),
                    ));
                }
            };
            let Some(Value::Object(mut result)) = answer.get("result").cloned() else {
                return Err(answer);
            };
            if let Some(Value::Array(items)) = result.remove(key) {
                entries.extend(items);
            }
            let cursor = result.get("nextCursor").cloned();
            first.get_or_insert(result);
            match cursor {
                Some(Value::String(c)) => {
                    let params = message.entry("params").or_insert_with(|| json!({}));
                    if let Some(p) = params.as_object_mut() {
                        p.insert("cursor".to_owned(), Value::from(c));
                    }
                }
                _ => break,
            }
        }
        Ok((first.unwrap_or_default(), entries))
    }

    fn remember_uri(&self, uri: &str, i: usize) {
        let mut uris = self.uris.lock().unwrap_or_else(PoisonError::into_inner);
        if uris.len() >= MAX_URIS {
            uris.clear();
        }
        uris.insert(uri.to_owned(), i);
    }

    /// A request for one named tool, prompt or prompt reference: to the member its
    /// prefix names, prefix taken off.
    async fn by_name(
        &self,
        ctx: &Ctx<'_>,
        mut message: Map<String, Value>,
        name: Option<&str>,
        pointer: &str,
    ) -> Result<Response<Body>, UpstreamError> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let routed = name
            .and_then(|n| n.split_once('.'))
            .and_then(|(prefix, rest)| Some((self.member(prefix)?, rest.to_owned())));
        let Some((i, rest)) = routed else {
            return Ok(rpc_error(
                StatusCode::OK,
                id,
                jsonrpc::INVALID_PARAMS,
                format!(
                    "Invalid params: {:?} names no upstream (this gateway's names are NAME.<name>, NAME one of {})",
                    name.unwrap_or_default(),
                    self.members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let mut value = Value::Object(std::mem::take(&mut message));
        if let Some(slot) = value.pointer_mut(pointer) {
            *slot = Value::from(rest.clone());
        }
        let body = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let resp = self.send(ctx, i, Method::POST, body, Some(&rest)).await?;
        Ok(self.tag_requests(resp, i))
    }

    /// A request about a resource URI: to the member that listed it, else to each in
    /// turn until one answers with a result.
    async fn by_uri(
        &self,
        ctx: &Ctx<'_>,
        message: Map<String, Value>,
        uri: Option<&str>,
    ) -> Result<Response<Body>, UpstreamError> {
        let body = Bytes::from(serde_json::to_vec(&message).unwrap_or_default());
        let known = uri.and_then(|u| {
            self.uris
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(u)
                .copied()
        });
        if let Some(i) = known {
            let resp = self.send(ctx, i, Method::POST, body, None).await?;
            return Ok(self.tag_requests(resp, i));
        }
        let message = Value::Object(message);
        let mut last = None;
        for i in 0..self.members.len() {
            match self.ask(ctx, i, &message).await {
                Ok((_, Some(answer))) if answer.get("result").is_some() => {
                    if let Some(u) = uri {
                        self.remember_uri(u, i);
                    }
                    return Ok(json_response(StatusCode::OK, &answer));
                }
                Ok((_, Some(answer))) => last = Some(answer),
                Ok((_, None)) => {}
                Err(e) => {
                    tracing::warn!(upstream = %self.members[i].name, error = %e, "an upstream failed a resource request");
                }
            }
        }
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        Ok(json_response(
            StatusCode::OK,
            &last.unwrap_or_else(|| {
                jsonrpc::error_response(id, jsonrpc::INVALID_PARAMS, "Resource not found")
            }),
        ))
    }

    /// A request for no particular member: every member gets it; the first one's
    /// answer is the answer.
    async fn first_of_all(&self, ctx: &Ctx<'_>, message: Map<String, Value>) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let answers = self.ask_all(ctx, &Value::Object(message)).await;
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Ok((_, Some(answer))) => return json_response(StatusCode::OK, &answer),
                Ok((_, None)) => {}
                Err(e) => {
                    tracing::warn!(upstream = %self.members[i].name, error = %e, "an upstream failed a request");
                }
            }
        }
        unavailable(id, "every upstream", "no answer")
    }

    /// A client notification: to every member, 202.
    async fn notify_all(&self, ctx: &Ctx<'_>, message: &Map<String, Value>) -> Response<Body> {
        let body = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        let sent = futures_util::future::join_all(
            (0..self.members.len()).map(|i| self.send(ctx, i, Method::POST, body.clone(), None)),
        )
        .await;
        for (i, sent) in sent.into_iter().enumerate() {
            if let Err(e) = sent {
                tracing::debug!(upstream = %self.members[i].name, error = %e, "a notification did not reach an upstream");
            }
        }
        status_only(StatusCode::ACCEPTED)
    }

    /// The client's answer to a member's request: to that member, with its own id.
    async fn client_answer(
        &self,
        ctx: &Ctx<'_>,
        mut message: Map<String, Value>,
    ) -> Result<Response<Body>, UpstreamError> {
        let tagged = message.get("id").and_then(Value::as_str).and_then(|id| {
            let (prefix, rest) = id.split_once('.')?;
            Some((
                self.member(prefix)?,
                serde_json::from_str::<Value>(rest).ok()?,
            ))
        });
        let Some((i, own)) = tagged else {
            // Not one of ours: no member asked it.
            return Ok(status_only(StatusCode::ACCEPTED));
        };
        message.insert("id".to_owned(), own);
        let body = Bytes::from(serde_json::to_vec(&message).unwrap_or_default());
        self.send(ctx, i, Method::POST, body, None).await
    }

    /// Member `i`'s answer on its way to the client: its requests get ids naming it.
    fn tag_requests(&self, resp: Response<Body>, i: usize) -> Response<Body> {
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(keygate_mcp::sse::is_event_stream);
        if !is_sse {
            return resp;
        }
        let name = self.members[i].name.clone();
        let (parts, body) = resp.into_parts();
        let body = keygate_mcp::sse::rewrite(body, move |m| tag_request(&name, m));
        Response::from_parts(parts, Body::new(body))
    }

    /// The members' GET streams, merged.
    async fn get(&self, ctx: &Ctx<'_>) -> Response<Body> {
        if ctx.session.is_none() {
            let mut resp = status_only(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return resp;
        }
        let opened = futures_util::future::join_all(
            (0..self.members.len()).map(|i| self.send(ctx, i, Method::GET, Bytes::new(), None)),
        )
        .await;
        let mut streams = Vec::new();
        for (i, opened) in opened.into_iter().enumerate() {
            match opened {
                Ok(resp) if resp.status().is_success() => {
                    let tagged = self.tag_requests(resp, i);
                    let frames = http_body_util::BodyStream::new(tagged.into_body())
                        .take_while(|f| std::future::ready(f.is_ok()))
                        .filter_map(|f| {
                            std::future::ready(f.ok().and_then(|f| f.into_data().ok()))
                        });
                    streams.push(frames.boxed());
                }
                Ok(resp) => {
                    tracing::debug!(upstream = %self.members[i].name, status = resp.status().as_u16(), "an upstream has no GET stream");
                }
                Err(e) => {
                    tracing::debug!(upstream = %self.members[i].name, error = %e, "an upstream's GET stream failed");
                }
            }
        }
        if streams.is_empty() {
            let mut resp = status_only(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
            return resp;
        }
        let merged =
            futures_util::stream::select_all(streams).map(Ok::<Bytes, std::convert::Infallible>);
        sse_response(Body::from_stream(merged))
    }

    async fn delete(&self, ctx: &Ctx<'_>, id: Option<&str>) -> Response<Body> {
        let (Some(id), Some(session)) = (id, &ctx.session) else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Bad Request: DELETE needs an Mcp-Session-Id",
            );
        };
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        self.end(ctx, session).await;
        status_only(StatusCode::OK)
    }

    /// Ends `session` at every member that issued one.
    async fn end(&self, ctx: &Ctx<'_>, session: &Session) {
        let ctx = Ctx {
            headers: ctx.headers,
            identity: ctx.identity,
            session: Some(session.clone()),
        };
        let ended = futures_util::future::join_all(
            (0..self.members.len())
                .filter(|&i| session.members.get(i).is_some_and(Option::is_some))
                .map(|i| self.send(&ctx, i, Method::DELETE, Bytes::new(), None)),
        )
        .await;
        for e in ended.into_iter().filter_map(Result::err) {
            tracing::debug!(error = %e, "an upstream session could not be ended");
        }
    }
}

/// The gateway's upstream for a configuration's named upstreams (one: that upstream).
///
/// # Errors
///
/// [`ServerError::Config`] for a bad name, a name given twice, an upstream that is
/// itself named or in-process, or a bad URL.
pub(crate) fn members(
    named: &[(String, crate::config::Upstream)],
    timeout: Duration,
) -> Result<Upstream, crate::ServerError> {
    use crate::config::Upstream as Config;
    let mut members = Vec::with_capacity(named.len());
    for (name, upstream) in named {
        crate::check_upstream_name(name)?;
        if members.iter().any(|(n, _)| n == name) {
            return Err(crate::ServerError::Config(format!(
                "upstream {name} is named twice"
            )));
        }
        let member = match upstream {
            Config::Http(url) => {
                Upstream::http(url, timeout).map_err(crate::ServerError::Config)?
            }
            Config::Stdio(command) => Upstream::stdio(command.clone(), name.clone(), timeout),
            _ => {
                return Err(crate::ServerError::Config(format!(
                    "upstream {name}: only HTTP and stdio upstreams can be named"
                )));
            }
        };
        members.push((name.clone(), member));
    }
    if members.len() == 1
        && let Some((_, only)) = members.pop()
    {
        return Ok(only);
    }
    if members.is_empty() {
        return Err(crate::ServerError::Config("no upstream named".to_owned()));
    }
    Ok(Upstream::federated(members, timeout))
}

/// Gives a member's request to the client an id naming the member: `NAME.<id JSON>`.
fn tag_request(name: &str, message: &mut Value) -> bool {
    if message.get("method").is_none() {
        return false;
    }
    let Some(id) = message.get_mut("id") else {
        return false;
    };
    *id = Value::from(format!("{name}.{id}"));
    true
}

/// The members' capabilities as one: each capability any member has, its members
/// merged (`listChanged` and `subscribe` true when any member's is).
fn merged_capabilities<'a>(results: impl Iterator<Item = &'a Value>) -> Value {
    let mut out = Map::new();
    for result in results {
        let Some(caps) = result.get("capabilities").and_then(Value::as_object) else {
            continue;
        };
        for (name, cap) in caps {
            let slot = out.entry(name.clone()).or_insert_with(|| json!({}));
            if let (Some(slot), Some(cap)) = (slot.as_object_mut(), cap.as_object()) {
                for (k, v) in cap {
                    let keep = slot.get(k).is_some_and(|old| old == &Value::Bool(true));
                    if !keep {
                        slot.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    Value::Object(out)
}

fn unavailable(id: Value, member: &str, why: &str) -> Response<Body> {
    rpc_error(
        StatusCode::BAD_GATEWAY,
        id,
        jsonrpc::UPSTREAM_UNAVAILABLE,
        format!("upstream {member}: {why}"),
    )
}

#[cfg(test)]
#[path = "federation_tests.rs"]
mod federation_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_merged() {
        let a = json!({"capabilities": {"tools": {"listChanged": false}, "logging": {}}});
        let b = json!({"capabilities": {"tools": {"listChanged": true}, "prompts": {}}});
        let merged = merged_capabilities([&a, &b].into_iter());
        assert_eq!(
            merged,
            json!({"tools": {"listChanged": true}, "logging": {}, "prompts": {}})
        );
        let merged = merged_capabilities([&b, &a].into_iter());
        assert_eq!(merged["tools"]["listChanged"], true);
    }

    #[test]
    fn member_requests_get_ids_naming_the_member() {
        let mut m = json!({"jsonrpc":"2.0","id":0,"method":"sampling/createMessage"});
        assert!(tag_request("everything", &mut m));
        assert_eq!(m["id"], "everything.0");
        let mut m = json!({"jsonrpc":"2.0","id":"a.b","method":"elicitation/create"});
        tag_request("x", &mut m);
        assert_eq!(m["id"], r#"x."a.b""#);
        let (prefix, rest) = m["id"].as_str().unwrap().split_once('.').unwrap();
        assert_eq!(
            (prefix, serde_json::from_str::<Value>(rest).unwrap()),
            ("x", json!("a.b"))
        );
        let mut answer = json!({"jsonrpc":"2.0","id":3,"result":{}});
        assert!(!tag_request("x", &mut answer));
        let mut note = json!({"jsonrpc":"2.0","method":"notifications/progress"});
        assert!(!tag_request("x", &mut note));
    }
}
