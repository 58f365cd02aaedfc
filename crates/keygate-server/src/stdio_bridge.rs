//! Streamable HTTP in front of a stdio MCP server: the gateway's side of
//! `--upstream stdio:…`, behind the same [`Upstream::send`](crate::upstream::Upstream)
//! as an HTTP upstream, so the gateway's checks (policy, gates, session binding) are
//! the same.
//!
//! - **Sessions.** A client's `initialize` (no session) starts a child of its own and is
//!   forwarded to it; when the child answers with a result, the bridge issues the
//!   `Mcp-Session-Id` (32 base62 characters, about 190 random bits) on the answer,
//!   which the gateway then binds to the key as for any upstream. That session's
//!   requests go to that child; `DELETE` ends it. A child idle for [`SESSION_IDLE`] is
//!   ended when a new session starts; at most [`MAX_SESSIONS`] run at once, of which
//!   one key holds at most [`MAX_SESSIONS_PER_KEY`] and one tenant
//!   [`MAX_SESSIONS_PER_TENANT`] (a new one ends that key's or tenant's least recently
//!   used session), so no key or tenant can take every child from the others.
//! - **Ids.** Every request is written to the child with an id of the bridge's own (and
//!   a `progressToken` the same), so requests of different clients on one pooled child
//!   never collide; the answer gets the client's id back.
//! - **Streams.** A request's answer is JSON when the child answers before sending
//!   anything else; otherwise an event stream carrying, in order, the progress for its
//!   token, and (in a session) the child's requests and other notifications that
//!   arrive while it is the oldest open request, then its answer. The client's answers
//!   to the child's requests (and its notifications) are written to the child: 202.
//!   `list_changed` and `resources/updated` notifications, and anything arriving while
//!   no request is open, go to the session's `GET` stream (one at a time: 409 for a
//!   second). A client that goes away before its answer cancels the request at the
//!   child (`notifications/cancelled`).
//! - **Stateless requests** (no session: the 2026-07-28 revision) go to a pool of
//!   [`POOL_SIZE`] children the bridge initialised itself (declaring no client
//!   capabilities). Only a request's own progress reaches its client; a child's
//!   request is answered with an error (a stateless client has no stream to answer on).
//!   `server/discover` is forwarded, and when the child does not know it (-32601), it
//!   is answered from the child's `initialize` result.
//! - **Failures.** A child that exits fails its open requests with JSON-RPC -32603 (the
//!   exit status in the message); its session then answers 404, so the client starts a
//!   new one. A dead pooled child is restarted on the next request, with backoff
//!   ([`restart_delay`]) when it died within [`STABLE_AFTER`] of starting. A stdout line
//!   that is not JSON, or longer than [`crate::stdio::MAX_LINE`], is logged and fails the
//!   open requests (-32603).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use keygate_mcp::jsonrpc;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::stdio::{StdioChild, StdioCommand, StdioReader, StdioWriter};
use crate::upstream::{json_response, not_found, rpc_error, sse_response, status_only};

/// Stateful sessions (children) one stdio upstream runs at most.
pub(crate) const MAX_SESSIONS: usize = 64;
/// Sessions one key holds at most on one stdio upstream (the identity headers the
/// gateway sets name the key); a new one ends the key's least recently used.
pub(crate) const MAX_SESSIONS_PER_KEY: usize = 8;
/// Sessions one tenant's keys hold at most on one stdio upstream; a new one ends the
/// tenant's least recently used.
pub(crate) const MAX_SESSIONS_PER_TENANT: usize = 16;
/// How long a session's child may go without a request before a new session ends it.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(60 * 60);
/// Children serving stateless requests.
pub(crate) const POOL_SIZE: usize = 2;
/// A pooled child that lived this long before it died is restarted at once.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How long an ended child may take to exit once its stdin is closed, before it is
/// killed.
const END_GRACE: Duration = Duration::from_secs(2);
/// How often a child writing unusable stdout lines is logged (with their count).
const BAD_LINE_LOG_EVERY: Duration = Duration::from_secs(10);
/// Messages queued for one open request or one GET stream; a client that reads none
/// loses notifications beyond these (never its answer).
const QUEUED: usize = 256;

const SESSION: &str = "mcp-session-id";

/// How long a pooled child that keeps dying waits before its `failures`-th restart:
/// 250 ms, doubling, at most 30 s.
pub(crate) fn restart_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(7);
    Duration::from_millis(250 << exp).min(Duration::from_secs(30))
}

/// One stdio upstream: its sessions and its pool.
#[derive(Debug)]
pub(crate) struct StdioUpstream {
    command: Arc<StdioCommand>,
    label: String,
    timeout: Duration,
    sessions: Mutex<HashMap<String, Arc<Conn>>>,
    pool: Vec<tokio::sync::Mutex<Slot>>,
    next_slot: AtomicUsize,
    /// Where the ends of session children are reported ([`StdioUpstream::watch_sessions`]).
    ends: Mutex<Option<mpsc::UnboundedSender<SessionEnd>>>,
}

/// How a session's child ended, for a front-end that lives as long as its one session
/// (`keygate wrap`): see [`StdioUpstream::watch_sessions`].
#[derive(Debug, Clone)]
pub(crate) enum SessionEnd {
    /// A client's `initialize` could not start it.
    NotStarted(String),
    /// It exited (on its own, or ended by `DELETE`): its status, when it was read.
    Exited(Option<std::process::ExitStatus>),
}

#[derive(Debug, Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    started: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl StdioUpstream {
    /// The bridge for `command`, named `label` in log lines; `timeout` bounds a child's
    /// start and the wait for the first message of each answer. Starts no child.
    pub(crate) fn new(command: StdioCommand, label: String, timeout: Duration) -> Self {
        Self {
            command: Arc::new(command),
            label,
            timeout,
            sessions: Mutex::new(HashMap::new()),
            pool: (0..POOL_SIZE)
                .map(|_| tokio::sync::Mutex::default())
                .collect(),
            next_slot: AtomicUsize::new(0),
            ends: Mutex::new(None),
        }
    }

    /// From now on, reports how each session's child ends: one that could not be
    /// started, and each one started for a client's `initialize` when it exits (on
    /// its own, or ended). Pooled children are not reported. A second call replaces
    /// the first's receiver.
    pub(crate) fn watch_sessions(&self) -> mpsc::UnboundedReceiver<SessionEnd> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.ends.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    fn report(&self, end: SessionEnd) {
        if let Some(ends) = &*self.ends.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = ends.send(end);
        }
    }

    /// Answers one MCP request as a Streamable HTTP server would. `headers` are the
    /// client's transport headers (the session id, `Accept`).
    pub(crate) async fn respond(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Body> {
        let session = headers.get(SESSION).and_then(|v| v.to_str().ok());
        match *method {
            Method::POST => {
                let owner = Owner::of(headers);
                self.post(session, accepts_sse(headers), owner, &body).await
            }
            Method::GET => self.get(session),
            Method::DELETE => self.delete(session),
            _ => {
                let mut resp = status_only(StatusCode::METHOD_NOT_ALLOWED);
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
                resp
            }
        }
    }

    fn session(&self, id: &str) -> Option<Arc<Conn>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let conn = sessions.get(id)?.clone();
        if conn.is_closed() {
            sessions.remove(id);
            return None;
        }
        conn.touch();
        Some(conn)
    }

    async fn post(
        &self,
        session: Option<&str>,
        sse: bool,
        owner: Option<Owner>,
        body: &[u8],
    ) -> Response<Body> {
        let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(body) else {
            return not_one_message();
        };
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let is_request = method.is_some() && message.contains_key("id");
        if let Some(session) = session {
            let Some(conn) = self.session(session) else {
                return not_found(message.get("id").cloned().unwrap_or(Value::Null));
            };
            return if is_request {
                conn.call(message, sse, self.timeout).await
            } else {
                conn.deliver(message).await
            };
        }
        match method.as_deref() {
            Some("initialize") if is_request => self.open_session(message, owner).await,
            Some(m) if is_request => {
                self.stateless(m == keygate_mcp::revision::DISCOVER_METHOD, message, sse)
                    .await
            }
            // A notification or an answer without a session: no child waits for it.
            _ => status_only(StatusCode::ACCEPTED),
        }
    }

    /// The client's `initialize`: a child of its own, and the session id on its answer.
    async fn open_session(
        &self,
        message: Map<String, Value>,
        owner: Option<Owner>,
    ) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            sessions.retain(|_, conn| {
                let keep = !conn.is_closed() && conn.idle() < SESSION_IDLE;
                if !keep {
                    conn.stop();
                }
                keep
            });
            if let Some(owner) = &owner {
                make_room(&mut sessions, owner, &self.label);
            }
            if sessions.len() >= MAX_SESSIONS {
                tracing::warn!(upstream = %self.label, "stdio upstream at its session cap; initialize refused");
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    id,
                    jsonrpc::UPSTREAM_UNAVAILABLE,
                    format!(
                        "the stdio MCP server runs at most {MAX_SESSIONS} sessions; end one (DELETE) or retry later"
                    ),
                );
            }
        }
        let conn = match Conn::start(&self.command, &self.label, false) {
            Ok(conn) => conn,
            Err(e) => {
                self.report(SessionEnd::NotStarted(e.clone()));
                return unavailable(id, &e);
            }
        };
        // Watched from the start: a child that dies before its session opens ends too.
        if let Some(ends) = &*self.ends.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = conn.ends.set(ends.clone());
            // It may have ended before it was watched (reported twice at worst).
            if conn.is_closed() {
                let _ = ends.send(SessionEnd::Exited(conn.state().status));
            }
        }
        let answer = match conn.request(message, self.timeout).await {
            Ok(answer) => answer,
            Err(resp) => {
                conn.stop();
                return resp;
            }
        };
        if answer.get("result").is_none() {
            conn.stop();
            return json_response(StatusCode::OK, &answer);
        }
        let Ok(session) = keygate_token::random_base62(32) else {
            conn.stop();
            return unavailable(id, "no randomness for a session id");
        };
        let Ok(header) = HeaderValue::from_str(&session) else {
            conn.stop();
            return unavailable(id, "a session id could not be sent");
        };
        if let Some(owner) = owner {
            let _ = conn.owner.set(owner);
        }
        // Its idle time counts from now, not from its first request.
        conn.touch();
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session, conn);
        let mut resp = json_response(StatusCode::OK, &answer);
        resp.headers_mut().insert(SESSION, header);
        resp
    }

    /// A request without a session: one of the pool's children.
    async fn stateless(
        &self,
        discover: bool,
        message: Map<String, Value>,
        sse: bool,
    ) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let conn = match self.pooled().await {
            Ok(conn) => conn,
            Err(e) => return unavailable(id, &e),
        };
        if !discover {
            return conn.call(message, sse, self.timeout).await;
        }
        let answer = match conn.request(message, self.timeout).await {
            Ok(answer) => answer,
            Err(resp) => return resp,
        };
        let unknown = answer
            .pointer("/error/code")
            .and_then(Value::as_i64)
            .is_some_and(|c| c == jsonrpc::METHOD_NOT_FOUND);
        match conn.initialized.get().filter(|_| unknown) {
            Some(init) => json_response(
                StatusCode::OK,
                &jsonrpc::result_response(id, discover_from(init)),
            ),
            None => json_response(StatusCode::OK, &answer),
        }
    }

    /// A live pooled child, started (and initialised) when its slot has none; a slot
    /// whose child keeps dying waits [`restart_delay`] first.
    async fn pooled(&self) -> Result<Arc<Conn>, String> {
        let first = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let mut last = String::from("restarting after failures");
        for i in 0..self.pool.len() {
            let mut slot = self.pool[(first + i) % self.pool.len()].lock().await;
            if let Some(conn) = &slot.conn {
                if !conn.is_closed() {
                    return Ok(conn.clone());
                }
                let lived = slot.started.map_or(Duration::ZERO, |s| s.elapsed());
                slot.failures = if lived < STABLE_AFTER {
                    slot.failures + 1
                } else {
                    0
                };
                slot.retry_at =
                    (slot.failures > 0).then(|| Instant::now() + restart_delay(slot.failures));
                slot.conn = None;
            }
            if let Some(at) = slot.retry_at
                && Instant::now() < at
            {
                last = format!(
                    "restarting after {} failures, next start in {} ms",
                    slot.failures,
                    at.saturating_duration_since(Instant::now()).as_millis()
                );
                continue;
            }
            match self.start_pooled().await {
                Ok(conn) => {
                    slot.conn = Some(conn.clone());
                    slot.started = Some(Instant::now());
                    slot.retry_at = None;
                    return Ok(conn);
                }
                Err(e) => {
                    slot.failures += 1;
                    slot.retry_at = Some(Instant::now() + restart_delay(slot.failures));
                    tracing::warn!(upstream = %self.label, error = %e, failures = slot.failures, "a pooled stdio MCP server did not start");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn start_pooled(&self) -> Result<Arc<Conn>, String> {
        let conn = Conn::start(&self.command, &self.label, true)?;
        let init = json!({
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": keygate_mcp::revision::LATEST_STATEFUL.as_str(),
                "capabilities": {},
                "clientInfo": { "name": "keygate", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let Value::Object(init) = init else {
            return Err("unreachable".to_owned());
        };
        let Ok(answer) = conn.request(init, self.timeout).await else {
            conn.stop();
            return Err("it did not answer initialize".to_owned());
        };
        let Some(result) = answer.get("result") else {
            conn.stop();
            return Err(format!(
                "it refused initialize: {}",
                answer.get("error").unwrap_or(&Value::Null)
            ));
        };
        let _ = conn.initialized.set(result.clone());
        let ready = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        conn.write(&ready).await.inspect_err(|_| conn.stop())?;
        Ok(conn)
    }

    /// The session's GET stream: what the child sends while no request is open.
    fn get(&self, session: Option<&str>) -> Response<Body> {
        let Some(session) = session else {
            let mut resp = status_only(StatusCode::METHOD_NOT_ALLOWED);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return resp;
        };
        let Some(conn) = self.session(session) else {
            return not_found(Value::Null);
        };
        let (tx, rx) = mpsc::channel(QUEUED);
        {
            let mut state = conn.state();
            if state.stream.as_ref().is_some_and(|s| !s.is_closed()) {
                return rpc_error(
                    StatusCode::CONFLICT,
                    Value::Null,
                    jsonrpc::INVALID_REQUEST,
                    "Conflict: this session already has a GET stream open",
                );
            }
            state.stream = Some(tx);
        }
        let events = futures_util::stream::unfold(rx, |mut rx| async move {
            let message = rx.recv().await?;
            Some((
                Ok::<_, std::convert::Infallible>(keygate_mcp::sse::message_event(&message)),
                rx,
            ))
        });
        sse_response(Body::from_stream(events))
    }

    fn delete(&self, session: Option<&str>) -> Response<Body> {
        let Some(session) = session else {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Bad Request: DELETE needs an Mcp-Session-Id",
            );
        };
        let removed = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
        match removed {
            Some(conn) => {
                conn.stop();
                status_only(StatusCode::OK)
            }
            None => not_found(Value::Null),
        }
    }
}

impl Drop for StdioUpstream {
    fn drop(&mut self) {
        let sessions = self
            .sessions
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for conn in sessions.values() {
            conn.stop();
        }
        for slot in &mut self.pool {
            if let Some(conn) = &slot.get_mut().conn {
                conn.stop();
            }
        }
    }
}

/// Methods whose 2026-07-28 results are cacheable (`ttlMs`, `cacheScope` required).
const CACHEABLE: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Gives a handshake-revision answer to `method` the members a 2026-07-28 result must
/// have and the child did not send: `resultType` (`complete`) and, for the cacheable
/// methods, `ttlMs` 0 and `cacheScope` `private` (never cached: the policy filters per
/// key).
fn stateless_result(method: &str, answer: &mut Value) {
    let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    result
        .entry("resultType")
        .or_insert_with(|| Value::from("complete"));
    if CACHEABLE.contains(&method) {
        result.entry("ttlMs").or_insert_with(|| Value::from(0));
        result
            .entry("cacheScope")
            .or_insert_with(|| Value::from("private"));
    }
}

/// A `server/discover` result from a child's `initialize` result.
fn discover_from(init: &Value) -> Value {
    let info = init.get("serverInfo");
    let name = info
        .and_then(|i| i.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("stdio");
    let version = info
        .and_then(|i| i.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("0");
    let capabilities = init
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut result = keygate_mcp::revision::DiscoverResult::new(capabilities, name, version);
    if let Some(text) = init.get("instructions").and_then(Value::as_str) {
        result = result.with_instructions(text);
    }
    serde_json::to_value(result).unwrap_or_else(|_| json!({}))
}

/// One child and the requests open on it.
#[derive(Debug)]
struct Conn {
    /// `None` once the child is being ended (its stdin closed).
    writer: tokio::sync::Mutex<Option<StdioWriter>>,
    inner: Mutex<ConnState>,
    next_id: AtomicU64,
    /// Serves stateless requests of any client (a pooled child).
    pooled: bool,
    /// The child's `initialize` result (pooled children).
    initialized: std::sync::OnceLock<Value>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    label: String,
    /// Where its end is reported (a watched session's child).
    ends: std::sync::OnceLock<mpsc::UnboundedSender<SessionEnd>>,
    /// The key and tenant whose session it is (a session's child behind the gateway).
    owner: std::sync::OnceLock<Owner>,
}

/// The key and tenant a session's `initialize` came with, from the identity headers the
/// gateway sets (a client's own `X-Keygate-*` headers never get this far).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    key: String,
    tenant: String,
}

impl Owner {
    fn of(headers: &HeaderMap) -> Option<Self> {
        let read = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Some(Self {
            key: read(keygate_http::X_KEYGATE_KEY_ID)?,
            tenant: read(keygate_http::X_KEYGATE_TENANT)?,
        })
    }
}

/// Before `owner` opens a session: ends its key's least recently used session when the
/// key holds [`MAX_SESSIONS_PER_KEY`], then its tenant's when the tenant holds
/// [`MAX_SESSIONS_PER_TENANT`].
fn make_room(sessions: &mut HashMap<String, Arc<Conn>>, owner: &Owner, label: &str) {
    /// Whether two owners share the key, or the tenant.
    type Same = fn(&Owner, &Owner) -> bool;
    let caps: [(usize, Same); 2] = [
        (MAX_SESSIONS_PER_KEY, |a, b| a.key == b.key),
        (MAX_SESSIONS_PER_TENANT, |a, b| a.tenant == b.tenant),
    ];
    for (cap, same) in caps {
        let theirs = sessions
            .iter()
            .filter(|(_, conn)| conn.owner.get().is_some_and(|o| same(o, owner)));
        if theirs.clone().count() < cap {
            continue;
        }
        let Some(oldest) = theirs
            .max_by_key(|(_, conn)| conn.idle())
            .map(|(id, _)| id.clone())
        else {
            continue;
        };
        if let Some(conn) = sessions.remove(&oldest) {
            tracing::info!(upstream = %label, key_id = %owner.key, "stdio session cap reached; the least recently used session ended");
            conn.stop();
        }
    }
}

#[derive(Debug, Default)]
struct ConnState {
    /// By the bridge's id, so the first is the oldest.
    open: BTreeMap<u64, Open>,
    /// Why the child is gone.
    closed: Option<String>,
    /// The session's GET stream.
    stream: Option<mpsc::Sender<Value>>,
    last_used: Option<Instant>,
    /// The child's exit status, once it exited and it was read.
    status: Option<std::process::ExitStatus>,
}

#[derive(Debug)]
struct Open {
    /// The client's id.
    id: Value,
    /// The client's progress token.
    progress: Option<Value>,
    events: mpsc::Sender<Value>,
    answer: Option<oneshot::Sender<Value>>,
}

impl Conn {
    fn start(command: &StdioCommand, label: &str, pooled: bool) -> Result<Arc<Self>, String> {
        let child = StdioChild::spawn(command, label).map_err(|e| e.to_string())?;
        let (writer, reader, process) = child.split();
        let (stop, stopped) = oneshot::channel();
        let conn = Arc::new(Self {
            writer: tokio::sync::Mutex::new(Some(writer)),
            inner: Mutex::new(ConnState {
                last_used: Some(Instant::now()),
                ..ConnState::default()
            }),
            next_id: AtomicU64::new(1),
            pooled,
            initialized: std::sync::OnceLock::new(),
            stop: Mutex::new(Some(stop)),
            label: label.to_owned(),
            ends: std::sync::OnceLock::new(),
            owner: std::sync::OnceLock::new(),
        });
        tokio::spawn(conn.clone().run(reader, process, stopped));
        Ok(conn)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    fn touch(&self) {
        self.state().last_used = Some(Instant::now());
    }

    fn idle(&self) -> Duration {
        self.state()
            .last_used
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Ends the child (its reader task kills it).
    fn stop(&self) {
        if let Some(stop) = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = stop.send(());
        }
    }

    /// Reads the child's stdout until it ends or [`Conn::stop`], then fails what is open.
    async fn run(
        self: Arc<Self>,
        mut reader: StdioReader,
        mut process: crate::stdio::ChildProcess,
        mut stopped: oneshot::Receiver<()>,
    ) {
        // Unusable lines are logged once per `BAD_LINE_LOG_EVERY`, with a count.
        let mut bad_lines = 0_u64;
        let mut logged_at: Option<Instant> = None;
        let why = loop {
            tokio::select! {
                line = reader.next() => match line {
                    Some(Ok(message)) => self.dispatch(message),
                    Some(Err(crate::stdio::LineError::Read(e))) => break format!("reading its stdout failed: {e}"),
                    Some(Err(e)) => {
                        bad_lines += 1;
                        if logged_at.is_none_or(|t| t.elapsed() >= BAD_LINE_LOG_EVERY) {
                            tracing::warn!(upstream = %self.label, error = %e, lines = bad_lines, "stdio MCP server wrote unusable lines to stdout; failing its open requests");
                            logged_at = Some(Instant::now());
                            bad_lines = 0;
                        }
                        self.fail_open(&e.to_string());
                    }
                    None => break String::new(),
                },
                _ = &mut stopped => {
                    // As the MCP stdio transport ends a server: stdin closed, a grace
                    // period, then the kill.
                    // (A write stuck on a child that reads nothing holds the writer:
                    // then the kill comes at once.)
                    let closed = tokio::time::timeout(END_GRACE, self.writer.lock())
                        .await
                        .map(|mut writer| drop(writer.take()))
                        .is_ok();
                    if !closed || tokio::time::timeout(END_GRACE, process.wait()).await.is_err() {
                        process.kill().await;
                    }
                    break "it was ended".to_owned();
                }
            }
        };
        let mut exit = None;
        let status = match tokio::time::timeout(Duration::from_secs(5), process.wait()).await {
            Ok(Ok(status)) => {
                exit = Some(status);
                status.to_string()
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => {
                process.kill().await;
                "killed: it closed stdout but did not exit".to_owned()
            }
        };
        let reason = if why.is_empty() {
            format!("the stdio MCP server exited ({status})")
        } else {
            format!("the stdio MCP server stopped: {why} ({status})")
        };
        tracing::info!(upstream = %self.label, reason = %reason, "stdio MCP server ended");
        self.state().status = exit;
        self.close(reason);
        if let Some(ends) = self.ends.get() {
            let _ = ends.send(SessionEnd::Exited(exit));
        }
    }

    /// Fails every open request with `why`, and takes no more.
    fn close(&self, why: String) {
        let open = {
            let mut state = self.state();
            state.closed = Some(why.clone());
            state.stream = None;
            std::mem::take(&mut state.open)
        };
        for (_, open) in open {
            open.fail(&why);
        }
    }

    /// Fails every open request with `why` (the child stays).
    fn fail_open(&self, why: &str) {
        let open = std::mem::take(&mut self.state().open);
        for (_, open) in open {
            open.fail(why);
        }
    }

    /// Routes one message of the child (see the module docs).
    fn dispatch(self: &Arc<Self>, mut message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(method) = method else {
            // An answer: to one of the bridge's ids.
            let open = message
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|id| self.state().open.remove(&id));
            match open {
                Some(mut open) => {
                    message["id"] = open.id.clone();
                    if let Some(answer) = open.answer.take() {
                        let _ = answer.send(message);
                    }
                }
                None => {
                    tracing::debug!(upstream = %self.label, "stdio MCP server answered a request that is not open");
                }
            }
            return;
        };
        let is_request = message.get("id").is_some();
        let mut state = self.state();
        if method == "notifications/progress" {
            let open = message
                .pointer("/params/progressToken")
                .and_then(Value::as_u64)
                .and_then(|token| state.open.get(&token));
            if let Some(open) = open {
                if let Some(token) = &open.progress {
                    message["params"]["progressToken"] = token.clone();
                }
                let _ = open.events.try_send(message);
            }
            return;
        }
        if self.pooled {
            drop(state);
            if is_request {
                self.refuse_later(
                    &message,
                    jsonrpc::METHOD_NOT_FOUND,
                    "keygate: a stateless client cannot answer requests of the server",
                );
            }
            return;
        }
        let unsolicited =
            method.ends_with("/list_changed") || method == "notifications/resources/updated";
        if !unsolicited && let Some((_, open)) = state.open.first_key_value() {
            if open.events.try_send(message).is_err() {
                tracing::debug!(upstream = %self.label, "a client reads no events; one dropped");
            }
            return;
        }
        let Some(stream) = &state.stream else {
            if is_request {
                drop(state);
                self.refuse_later(
                    &message,
                    jsonrpc::INTERNAL_ERROR,
                    "keygate: the client has no stream open to take this request",
                );
            }
            return;
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = stream.try_send(message) {
            state.stream = None;
        }
    }

    /// Answers the child's request `request` with the JSON-RPC error `code`: nobody can
    /// answer it, and the child must not wait for an answer.
    fn refuse_later(self: &Arc<Self>, request: &Value, code: i64, text: &str) {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        self.write_later(jsonrpc::error_response(id, code, text));
    }

    /// Writes `message` from a task of its own: the reader task must not wait on the
    /// writer (a child that blocks on its stdout while we block on its stdin).
    fn write_later(self: &Arc<Self>, message: Value) {
        let conn = self.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.write(&message).await {
                tracing::debug!(upstream = %conn.label, error = %e, "could not answer a request of a stdio MCP server");
            }
        });
    }

    async fn write(&self, message: &Value) -> Result<(), String> {
        match self.writer.lock().await.as_mut() {
            Some(writer) => writer.send(message).await.map_err(|e| e.to_string()),
            None => Err("it is being ended".to_owned()),
        }
    }

    /// A client's notification or answer: written to the child (a cancellation gets
    /// the bridge's id of the request it names), 202.
    async fn deliver(&self, mut message: Map<String, Value>) -> Response<Body> {
        if message.get("method").and_then(Value::as_str) == Some("notifications/cancelled")
            && let Some(id) = message
                .get("params")
                .and_then(|p| p.get("requestId"))
                .cloned()
        {
            let ours = self
                .state()
                .open
                .iter()
                .find(|(_, open)| open.id == id)
                .map(|(ours, _)| *ours);
            if let (Some(ours), Some(Value::Object(params))) = (ours, message.get_mut("params")) {
                params.insert("requestId".to_owned(), Value::from(ours));
            }
        }
        match self.write(&Value::Object(message)).await {
            Ok(()) => status_only(StatusCode::ACCEPTED),
            Err(e) => unavailable(Value::Null, &e),
        }
    }

    /// Opens a request: the bridge's id (and progress token) in place of the client's.
    fn open(self: &Arc<Self>, message: &mut Map<String, Value>) -> Result<Pending, Response<Body>> {
        let client_id = message.get("id").cloned().unwrap_or(Value::Null);
        let ours = self.next_id.fetch_add(1, Ordering::Relaxed);
        message.insert("id".to_owned(), Value::from(ours));
        let meta = message
            .get_mut("params")
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut);
        let progress = match meta {
            Some(meta) if meta.contains_key("progressToken") => {
                meta.insert("progressToken".to_owned(), Value::from(ours))
            }
            _ => None,
        };
        let (events, events_rx) = mpsc::channel(QUEUED);
        let (answer, answer_rx) = oneshot::channel();
        let mut state = self.state();
        if let Some(why) = &state.closed {
            return Err(rpc_error(
                StatusCode::OK,
                client_id,
                jsonrpc::INTERNAL_ERROR,
                why.clone(),
            ));
        }
        state.last_used = Some(Instant::now());
        state.open.insert(
            ours,
            Open {
                id: client_id,
                progress,
                events,
                answer: Some(answer),
            },
        );
        Ok(Pending {
            guard: OpenGuard {
                conn: self.clone(),
                ours,
                done: false,
            },
            events: events_rx,
            answer: answer_rx,
        })
    }

    /// Sends a request and waits for its answer alone (events are dropped): the
    /// `initialize` and `server/discover` the bridge inspects.
    async fn request(
        self: &Arc<Self>,
        mut message: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Value, Response<Body>> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let mut pending = self.open(&mut message)?;
        if let Err(e) = self.write(&Value::Object(message)).await {
            return Err(unavailable(id, &e));
        }
        match tokio::time::timeout(timeout, &mut pending.answer).await {
            Ok(Ok(answer)) => {
                pending.guard.done = true;
                Ok(answer)
            }
            Ok(Err(_)) => Err(unavailable(id, "the stdio MCP server ended")),
            Err(_) => Err(timed_out(id, timeout)),
        }
    }

    /// Sends a request and answers it: JSON when the answer comes first, else an event
    /// stream (see the module docs).
    async fn call(
        self: &Arc<Self>,
        mut message: Map<String, Value>,
        sse: bool,
        timeout: Duration,
    ) -> Response<Body> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        // A pooled child answers in its handshake revision: its results get the
        // members the stateless revision requires.
        let upgrade = self
            .pooled
            .then(|| {
                message
                    .get("method")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten();
        let finish = move |mut answer: Value| {
            if let Some(method) = &upgrade {
                stateless_result(method, &mut answer);
            }
            answer
        };
        let mut pending = match self.open(&mut message) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if let Err(e) = self.write(&Value::Object(message)).await {
            return unavailable(id, &e);
        }
        let first = tokio::time::timeout(timeout, async {
            tokio::select! {
                biased;
                Some(event) = pending.events.recv() => Err(event),
                answer = &mut pending.answer => Ok(answer),
            }
        })
        .await;
        let first = match first {
            Err(_) => return timed_out(id, timeout),
            Ok(Ok(Ok(answer))) => {
                pending.guard.done = true;
                return json_response(StatusCode::OK, &finish(answer));
            }
            Ok(Ok(Err(_))) => return unavailable(id, "the stdio MCP server ended"),
            Ok(Err(event)) => event,
        };
        if !sse {
            // The client takes JSON only: its answer, without the events.
            return match (&mut pending.answer).await {
                Ok(answer) => {
                    pending.guard.done = true;
                    json_response(StatusCode::OK, &finish(answer))
                }
                Err(_) => unavailable(id, "the stdio MCP server ended"),
            };
        }
        let stream = futures_util::stream::unfold((Some(first), Some(pending)), move |(first, pending)| {
            let finish = finish.clone();
            async move {
            let mut pending = pending?;
            if let Some(event) = first {
                return Some((event, (None, Some(pending))));
            }
            tokio::select! {
                biased;
                Some(event) = pending.events.recv() => Some((event, (None, Some(pending)))),
                answer = &mut pending.answer => {
                    pending.guard.done = true;
                    let answer = answer.unwrap_or_else(|_| jsonrpc::error_response(Value::Null, jsonrpc::INTERNAL_ERROR, "the stdio MCP server ended"));
                    // `biased`: the events queued before the answer went first.
                    Some((finish(answer), (None, None)))
                }
            }
        }})
        .map(|message| Ok::<_, std::convert::Infallible>(keygate_mcp::sse::message_event(&message)));
        sse_response(Body::from_stream(stream))
    }
}

impl Open {
    fn fail(mut self, why: &str) {
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(jsonrpc::error_response(
                self.id.clone(),
                jsonrpc::INTERNAL_ERROR,
                why,
            ));
        }
    }
}

/// A request the child has not answered yet.
#[derive(Debug)]
struct Pending {
    guard: OpenGuard,
    events: mpsc::Receiver<Value>,
    answer: oneshot::Receiver<Value>,
}

/// Cancels the request at the child when its client goes away before the answer.
#[derive(Debug)]
struct OpenGuard {
    conn: Arc<Conn>,
    ours: u64,
    done: bool,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.conn.state().open.remove(&self.ours).is_none() {
            return;
        }
        let conn = self.conn.clone();
        let ours = self.ours;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let cancel = json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": { "requestId": ours, "reason": "the client went away" },
                });
                let _ = conn.write(&cancel).await;
            });
        }
    }
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(keygate_mcp::sse::CONTENT_TYPE))
}

/// The 400 for a POST body that is not one JSON-RPC message (an object), as the bridge
/// and the federation answer it.
pub(crate) fn not_one_message() -> Response<Body> {
    rpc_error(
        StatusCode::BAD_REQUEST,
        Value::Null,
        jsonrpc::PARSE_ERROR,
        "Parse error: send one JSON-RPC message",
    )
}

fn unavailable(id: Value, why: &str) -> Response<Body> {
    rpc_error(
        StatusCode::BAD_GATEWAY,
        id,
        jsonrpc::UPSTREAM_UNAVAILABLE,
        format!("the stdio MCP server is unavailable: {why}"),
    )
}

fn timed_out(id: Value, timeout: Duration) -> Response<Body> {
    rpc_error(
        StatusCode::GATEWAY_TIMEOUT,
        id,
        jsonrpc::UPSTREAM_TIMEOUT,
        format!(
            "the stdio MCP server did not answer within {} s",
            timeout.as_secs_f64()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_to_thirty_seconds() {
        assert_eq!(restart_delay(1), Duration::from_millis(250));
        assert_eq!(restart_delay(2), Duration::from_millis(500));
        assert_eq!(restart_delay(20), Duration::from_secs(30));
    }

    #[test]
    fn discover_is_answered_from_the_initialize_result() {
        let init = json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true}},
            "serverInfo":{"name":"everything","version":"2.0.0"},"instructions":"hi"});
        let d = discover_from(&init);
        assert_eq!(d["supportedVersions"], json!(["2026-07-28"]));
        assert_eq!(d["capabilities"], init["capabilities"]);
        assert_eq!(d["instructions"], "hi");
    }

    #[test]
    fn pooled_answers_get_the_stateless_members_they_lack() {
        let mut a = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[]}});
        stateless_result("tools/list", &mut a);
        assert_eq!(
            a["result"],
            json!({"tools":[],"resultType":"complete","ttlMs":0,"cacheScope":"private"})
        );
        let mut a =
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[],"resultType":"input_required"}});
        stateless_result("tools/call", &mut a);
        assert_eq!(
            a["result"],
            json!({"content":[],"resultType":"input_required"})
        );
        let mut e = json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}});
        stateless_result("tools/list", &mut e);
        assert!(e.get("result").is_none());
    }
}

#[cfg(test)]
#[path = "stdio_bridge_tests.rs"]
pub(crate) mod bridge_tests;
