//! Uses keygate-gates directly inside a tool server, without the gateway: `files.delete` needs the user's confirmation, and protected paths can never be deleted.
//!
//! ```sh
//! cargo run -p keygate-examples --example gated-tool-server -- --listen 127.0.0.1:9100
//!
//! # initialize: the answer's Mcp-Session-Id header names the session
//! curl -si http://127.0.0.1:9100/mcp -H 'content-type: application/json' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}' | grep -i mcp-session-id
//! # first delete: CONFIRMATION_REQUIRED with a one-time challenge
//! curl -s http://127.0.0.1:9100/mcp -H 'content-type: application/json' -H 'mcp-session-id: SESSION' \
//!   -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files.delete","arguments":{"path":"/home/me/draft.txt"}}}'
//! # the same call with confirm (after the user approved): deleted
//! curl -s http://127.0.0.1:9100/mcp -H 'content-type: application/json' -H 'mcp-session-id: SESSION' \
//!   -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"files.delete","arguments":{"path":"/home/me/draft.txt","confirm":{"challenge":"CHALLENGE","target":"/home/me/draft.txt"}}}}'
//!
//! cargo run -p keygate-examples --example gated-tool-server -- --self-test   # how CI runs it
//! ```
//!
//! A tiny MCP-style JSON-RPC server at `POST /mcp` with two tools over an in-memory set
//! of paths: `files.list` (never gated) and `files.delete {path}`, guarded by a
//! [`keygate_gates::Gates`] approval gate on the `path` argument. The first delete of a
//! path answers the `CONFIRMATION_REQUIRED` tool result of
//! [`Decision::to_tool_result`](keygate_gates::Decision::to_tool_result); the agent shows
//! it to the person and, once they approve, repeats the call with
//! `"confirm": {"challenge", "target"}`. The challenge works once, only in the session
//! (`Mcp-Session-Id`, issued by `initialize`) and for the path it was issued for. The
//! protected paths (`/`, `/etc`, `/home`) answer `SELF_SERVICE_BLOCKED`, confirm or not.
//!
//! There is no keygate key here: without the gateway nobody authenticates the caller, so
//! every call is attributed to one fixed local identity ([`LOCAL_IDENTITY`]). Behind
//! `keygated` you would use the `X-Keygate-Key-Id` header instead (or let the gateway
//! apply the gate from its policy file). State lives in memory
//! ([`keygate_gates::MemoryGateStore`]) and is lost on exit.
//!
//! It speaks the stateless MCP revision 2026-07-28 too (no `initialize`, no session;
//! `_meta` on every request, `server/discover`), with its wire format from
//! [`keygate_mcp`]. Without a session there is nothing to bind a challenge to, so a
//! stateless `files.delete` asks the person directly when the client declares form
//! elicitation: a multi round-trip `input_required` result with an `elicitation/create`
//! form that asks for the exact path, and a one-time `requestState`; the retry carries
//! `inputResponses.confirm` `{"action":"accept","content":{"path":"<path>"}}`.
//! A stateless client without elicitation gets `CONFIRMATION_INVALID`.
//!
//! ```sh
//! # 2026-07-28: discover, then a delete that asks for confirmation
//! META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}'
//! curl -s http://127.0.0.1:9100/mcp -H 'content-type: application/json' -H 'mcp-protocol-version: 2026-07-28' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{'"$META"'}}'
//! curl -s http://127.0.0.1:9100/mcp -H 'content-type: application/json' -H 'mcp-protocol-version: 2026-07-28' \
//!   -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files.delete","arguments":{"path":"/home/me/notes.md"},'"$META"'}}'
//! ```
//!
//! `--self-test` serves on an ephemeral loopback port, drives the whole flow against
//! itself (confirm, replay, other session, protected path; and statelessly: discover,
//! elicitation accepted, declined, replayed, wrong path), and exits 0 (1 on any
//! mismatch).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use keygate_gates::{
    Decision, GateCall, Gates, InvalidReason, MemoryGateStore, Outcome, SystemClock, strip_confirm,
};
use keygate_mcp::jsonrpc::{self, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use keygate_mcp::mrtr::{
    ElicitAction, ElicitRequestParams, InputRequest, InputRequiredResult, RetryParams,
};
use keygate_mcp::revision::{self, DISCOVER_METHOD, DiscoverResult, RequestMeta};
use keygate_scopes::{ApprovalBy, GateSpec};
use serde_json::{Value, json};

/// Who every call is attributed to: there is no key without the gateway.
const LOCAL_IDENTITY: &str = "local";
/// The session header of MCP Streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";
/// The header naming the request's protocol version.
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The name of the input request that asks the person to confirm a delete.
const CONFIRM_INPUT: &str = "confirm";
/// Most stateless confirmations pending at once; at the cap they are all dropped (their
/// deletes must be asked again), so unanswered asks cannot grow memory without bound.
const MAX_PENDING: usize = 1024;
/// The tool-error code of a confirmation the person declined or got wrong.
const CONFIRMATION_DECLINED: &str = "CONFIRMATION_DECLINED";
/// Paths that can never be deleted from an agent session.
const PROTECTED: [&str; 3] = ["/", "/etc", "/home"];
/// The paths the server starts with.
const PATHS: [&str; 5] = [
    "/etc",
    "/home",
    "/home/me/draft.txt",
    "/home/me/notes.md",
    "/srv/app/cache.db",
];

/// A tool server whose destructive tool sits behind a keygate confirmation gate.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (an ephemeral loopback port with --self-test).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Drive the confirmation flow against itself, check the answers, and exit.
    #[arg(long)]
    self_test: bool,
}

/// The server's state: the paths, the sessions it issued, the pending stateless
/// confirmations (`requestState` -> path), and the gate.
#[derive(Debug)]
struct App {
    paths: Mutex<BTreeSet<String>>,
    sessions: Mutex<HashSet<String>>,
    pending: Mutex<HashMap<String, String>>,
    gates: Gates,
    delete_gate: GateSpec,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let app = Arc::new(App {
        paths: Mutex::new(PATHS.iter().map(|p| (*p).to_owned()).collect()),
        sessions: Mutex::new(HashSet::new()),
        pending: Mutex::new(HashMap::new()),
        gates: Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock)),
        // The agent-relayed challenge: not person-verified (a person approval needs the
        // approval page of keygated, or a tool server of its own to host one).
        delete_gate: GateSpec::approval("path", PROTECTED.map(str::to_owned).to_vec())
            .with_approval_by(ApprovalBy::Agent),
    });
    let addr = if args.self_test {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        args.listen
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let addr = listener.local_addr()?;
    eprintln!("gated tool server at http://{addr}/mcp (files.delete needs confirmation)");

    let router = Router::new().route("/mcp", post(mcp)).with_state(app);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            })
            .into_future(),
    );
    if args.self_test {
        let result = self_test(&format!("http://{addr}/mcp")).await;
        let _ = stop.send(());
        server.await??;
        result?;
        eprintln!("self-test passed");
    } else {
        server.await??;
    }
    Ok(())
}

/// `POST /mcp`: one JSON-RPC message, read with [`keygate_mcp::jsonrpc::parse`].
async fn mcp(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = match jsonrpc::parse(&body) {
        Ok(parsed) => parsed,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(e.to_response())).into_response(),
    };
    let id = parsed.id.clone();
    let method = parsed.method.as_deref().unwrap_or("");
    let params: Value = parsed
        .message
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);

    // 2026-07-28 when the version header names no stateful revision (or, without it,
    // for server/discover and any request carrying the `_meta` envelope).
    let version = headers
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let is_stateless =
        revision::is_stateless_request(version, parsed.method.as_deref(), parsed.message.params);
    if is_stateless {
        if parsed.is_notification() || parsed.is_response() {
            return StatusCode::ACCEPTED.into_response();
        }
        return stateless(&app, id, method, &params).await;
    }

    if method == "initialize" {
        let Ok(session) = keygate_token::random_base62(24) else {
            return rpc_error(id, INTERNAL_ERROR, "internal error").into_response();
        };
        lock(&app.sessions).insert(session.clone());
        let result = json!({
            "protocolVersion": "2025-03-26",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "gated-tool-server", "version": env!("CARGO_PKG_VERSION")},
        });
        let mut response = rpc_result(id, result).into_response();
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_HEADER, value);
        }
        return response;
    }

    // A session this server did not issue is an error (MCP: 404); no header at all is
    // allowed, and the gate then refuses to confirm anything (no session to bind to).
    let session = match headers.get(SESSION_HEADER).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(s)) if lock(&app.sessions).contains(s) => Some(s.to_owned()),
        Some(_) => {
            return (
                StatusCode::NOT_FOUND,
                rpc_error(id, -32001, "unknown session: initialize again"),
            )
                .into_response();
        }
    };

    match method {
        m if m.starts_with("notifications/") => StatusCode::ACCEPTED.into_response(),
        "ping" => rpc_result(id, json!({})).into_response(),
        "tools/list" => rpc_result(id, json!({"tools": tools()})).into_response(),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            match call(&app, session.as_deref(), name, &args).await {
                Ok(result) => rpc_result(id, result).into_response(),
                Err((code, message)) => rpc_error(id, code, &message).into_response(),
            }
        }
        _ => rpc_error(id, METHOD_NOT_FOUND, "method not found").into_response(),
    }
}

/// One 2026-07-28 request: the `_meta` envelope checked, no session.
async fn stateless(app: &App, id: Value, method: &str, params: &Value) -> Response {
    let meta = match RequestMeta::from_params(Some(params)) {
        Ok(meta) => meta,
        Err(e) => return (StatusCode::BAD_REQUEST, axum::Json(e.to_response(id))).into_response(),
    };
    let complete = |mut result: Value| {
        result["resultType"] = json!("complete");
        result
    };
    match method {
        DISCOVER_METHOD => {
            let result = DiscoverResult::new(
                json!({"tools": {}}),
                "gated-tool-server",
                env!("CARGO_PKG_VERSION"),
            );
            rpc_result(id, serde_json::to_value(result).unwrap_or(Value::Null)).into_response()
        }
        "tools/list" => rpc_result(
            id,
            complete(json!({"tools": tools(), "ttlMs": 0, "cacheScope": "private"})),
        )
        .into_response(),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            let retry: RetryParams = serde_json::from_value(params.clone()).unwrap_or_default();
            let result = if name == "files.delete" {
                delete_stateless(app, &meta, &args, &retry).await
            } else {
                call(app, None, name, &args).await.map(complete)
            };
            match result {
                Ok(result) => rpc_result(id, result).into_response(),
                Err((code, message)) => {
                    (StatusCode::BAD_REQUEST, rpc_error(id, code, &message)).into_response()
                }
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            rpc_error(id, METHOD_NOT_FOUND, "method not found"),
        )
            .into_response(),
    }
}

/// A stateless `files.delete`: the gate refuses protected and malformed paths as in a
/// session; otherwise the person confirms through MRTR elicitation, when the client
/// declares it.
async fn delete_stateless(
    app: &App,
    meta: &RequestMeta,
    args: &Value,
    retry: &RetryParams,
) -> Result<Value, (i64, String)> {
    let args = strip_confirm(args);
    let decision = decide_delete(app, None, &args).await?;
    let no_session = matches!(
        decision.outcome(),
        Outcome::ConfirmationInvalid {
            reason: InvalidReason::NoSession
        }
    );
    if !no_session || !meta.capabilities.elicitation_form() {
        // Blocked, malformed, or nobody to ask: the gate's own answer.
        return Ok(decision
            .to_tool_result()
            .unwrap_or_else(|| declined("the delete was not confirmed")));
    }
    let path = args.get("path").and_then(Value::as_str).unwrap_or_default();

    let Some(state) = retry.request_state.as_deref() else {
        // First call: ask, with a one-time state naming the path.
        let state = keygate_token::random_base62(24)
            .map_err(|_| (INTERNAL_ERROR, "internal error".to_owned()))?;
        let mut pending = lock(&app.pending);
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(state.clone(), path.to_owned());
        drop(pending);
        let ask = ElicitRequestParams::form(
            format!("Delete {path}? This cannot be undone. Type the path to confirm."),
            json!({
                "type": "object",
                "properties": {"path": {"type": "string", "description": "The exact path to delete"}},
                "required": ["path"],
            }),
        );
        let result = InputRequiredResult::new()
            .with_request(CONFIRM_INPUT, InputRequest::Elicitation(ask))
            .with_state(state);
        return Ok(result.to_value());
    };
    // The retry: the state works once, and only for the path it was issued for.
    let issued_for = lock(&app.pending).remove(state);
    if issued_for.as_deref() != Some(path) {
        return Ok(tool_error(
            keygate_gates::CONFIRMATION_INVALID,
            "the confirmation is unknown, used, or for another path: call again without it",
        ));
    }
    let answer = retry.elicit_result(CONFIRM_INPUT);
    match answer.as_ref().map(|a| (a.action, a.accepted_str("path"))) {
        Some((ElicitAction::Accept, Some(typed))) if typed == path => {
            if lock(&app.paths).remove(path) {
                eprintln!("deleted {path} (confirmed by elicitation)");
                Ok(complete_ok(
                    &format!("deleted {path}"),
                    json!({ "deleted": path }),
                ))
            } else {
                Ok(tool_error("NOT_FOUND", &format!("no such path: {path}")))
            }
        }
        Some((ElicitAction::Accept, _)) => Ok(declined("the typed path does not match")),
        Some(_) => Ok(declined("the person declined the delete")),
        None => Err((
            INVALID_PARAMS,
            format!("inputResponses.{CONFIRM_INPUT} is missing or not an elicitation result"),
        )),
    }
}

/// A tool error with a code, as the gate's answers are shaped.
fn tool_error(code: &str, message: &str) -> Value {
    json!({
        "isError": true,
        "content": [{"type": "text", "text": message}],
        "structuredContent": {"code": code, "message": message},
        "resultType": "complete",
    })
}

fn declined(message: &str) -> Value {
    tool_error(CONFIRMATION_DECLINED, message)
}

fn complete_ok(text: &str, structured: Value) -> Value {
    let mut result = tool_ok(text, structured);
    result["resultType"] = json!("complete");
    result
}

/// The delete gate's decision on a `files.delete` with `args` in `session` (none:
/// stateless). A store failure is an internal error: no decision, so nothing is
/// deleted.
async fn decide_delete(
    app: &App,
    session: Option<&str>,
    args: &Value,
) -> Result<Decision, (i64, String)> {
    let gate_call = GateCall::from_args(
        &app.delete_gate,
        LOCAL_IDENTITY,
        session,
        "files.delete",
        args,
    );
    app.gates
        .decide(&app.delete_gate, &gate_call, None)
        .await
        .map_err(|e| {
            eprintln!("gate failed: {e}");
            (INTERNAL_ERROR, "internal error".to_owned())
        })
}

/// One tool call: the tool result, or a JSON-RPC error code and message.
async fn call(
    app: &App,
    session: Option<&str>,
    tool: &str,
    args: &Value,
) -> Result<Value, (i64, String)> {
    match tool {
        "files.list" => {
            let paths: Vec<String> = lock(&app.paths).iter().cloned().collect();
            Ok(tool_ok(&paths.join("\n"), json!({ "paths": paths })))
        }
        "files.delete" => {
            // The gate first: it answers a missing path argument, a protected path, and
            // a missing or wrong confirmation with a tool error the agent can act on.
            let decision = decide_delete(app, session, args).await?;
            if let Some(refusal) = decision.to_tool_result() {
                eprintln!(
                    "{} {}: {}",
                    decision.audit_action(),
                    decision.audit_target(),
                    decision.code().unwrap_or("")
                );
                return Ok(refusal);
            }
            // Allowed: run the tool on the arguments without `confirm`.
            let args = strip_confirm(args);
            let path = args.get("path").and_then(Value::as_str).unwrap_or_default();
            if lock(&app.paths).remove(path) {
                eprintln!("deleted {path} (confirmed in session)");
                Ok(tool_ok(
                    &format!("deleted {path}"),
                    json!({ "deleted": path }),
                ))
            } else {
                Ok(json!({
                    "isError": true,
                    "content": [{"type": "text", "text": format!("no such path: {path}")}],
                }))
            }
        }
        other => Err((INVALID_PARAMS, format!("unknown tool: {other}"))),
    }
}

/// The tools, with their input schemas.
fn tools() -> Value {
    json!([
        {
            "name": "files.list",
            "description": "List the paths.",
            "inputSchema": {"type": "object", "properties": {}},
        },
        {
            "name": "files.delete",
            "description": "Delete a path. Needs the user's confirmation: the first call answers CONFIRMATION_REQUIRED with a challenge to send back in `confirm`.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "confirm": {
                        "type": "object",
                        "properties": {"challenge": {"type": "string"}, "target": {"type": "string"}},
                    },
                },
                "required": ["path"],
            },
        },
    ])
}

fn tool_ok(text: &str, structured: Value) -> Value {
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
    })
}

fn rpc_result(id: Value, result: Value) -> axum::Json<Value> {
    axum::Json(jsonrpc::result_response(id, result))
}

fn rpc_error(id: Value, code: i64, message: &str) -> axum::Json<Value> {
    axum::Json(jsonrpc::error_response(id, code, message))
}

/// Locks a mutex; a panic elsewhere does not make the set unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An MCP client session for the self-test.
struct Client {
    http: reqwest::Client,
    url: String,
    session: Option<String>,
}

impl Client {
    async fn initialize(http: &reqwest::Client, url: &str) -> anyhow::Result<Self> {
        let response = http
            .post(url)
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}))
            .send()
            .await?;
        let session = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("initialize issued no Mcp-Session-Id")?;
        Ok(Self {
            http: http.clone(),
            url: url.to_owned(),
            session: Some(session),
        })
    }

    /// `tools/call`; returns the JSON-RPC `result`.
    async fn call(&self, tool: &str, args: Value) -> anyhow::Result<Value> {
        let mut request = self.http.post(&self.url).json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args},
        }));
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session);
        }
        let body: Value = request.send().await?.json().await?;
        body.get("result")
            .cloned()
            .with_context(|| format!("{tool}: no result in {body}"))
    }
}

/// The `structuredContent.code` of a tool result (`None` for success).
fn code(result: &Value) -> Option<&str> {
    result
        .get("structuredContent")
        .and_then(|s| s.get("code"))
        .and_then(Value::as_str)
}

/// Drives the flow against the running server.
async fn self_test(url: &str) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let agent = Client::initialize(&http, url).await?;
    let target = "/home/me/draft.txt";

    // Listing is never gated.
    let listed = agent.call("files.list", json!({})).await?;
    ensure!(
        listed["structuredContent"]["paths"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(target))),
        "files.list: {listed}"
    );

    // First delete: a challenge, and nothing deleted.
    let first = agent.call("files.delete", json!({"path": target})).await?;
    ensure!(
        code(&first) == Some(keygate_gates::CONFIRMATION_REQUIRED),
        "first delete: {first}"
    );
    ensure!(first["isError"] == true, "first delete: {first}");
    let challenge = first["structuredContent"]["challenge"]
        .as_str()
        .context("no challenge")?
        .to_owned();
    let confirm = json!({"challenge": challenge, "target": target});

    // Another session can neither use the challenge nor burn it.
    let other = Client::initialize(&http, url).await?;
    let stolen = other
        .call("files.delete", json!({"path": target, "confirm": confirm}))
        .await?;
    ensure!(
        code(&stolen) == Some(keygate_gates::CONFIRMATION_INVALID),
        "challenge from another session: {stolen}"
    );

    // Confirmed in the same session: deleted.
    let done = agent
        .call("files.delete", json!({"path": target, "confirm": confirm}))
        .await?;
    ensure!(
        done.get("isError").is_none() && done["structuredContent"]["deleted"] == target,
        "confirmed delete: {done}"
    );
    let listed = agent.call("files.list", json!({})).await?;
    if listed["structuredContent"]["paths"]
        .as_array()
        .is_some_and(|p| p.contains(&json!(target)))
    {
        bail!("{target} is still listed after the confirmed delete: {listed}");
    }

    // A challenge works once.
    let replay = agent
        .call("files.delete", json!({"path": target, "confirm": confirm}))
        .await?;
    ensure!(
        code(&replay) == Some(keygate_gates::CONFIRMATION_INVALID),
        "replayed challenge: {replay}"
    );

    // A protected path: blocked, and no challenge offered.
    let blocked = agent.call("files.delete", json!({"path": "/etc"})).await?;
    ensure!(
        code(&blocked) == Some(keygate_gates::SELF_SERVICE_BLOCKED),
        "protected path: {blocked}"
    );
    ensure!(
        blocked["structuredContent"].get("challenge").is_none(),
        "protected path offered a challenge: {blocked}"
    );

    // Without a session nothing can be confirmed.
    let anonymous = Client {
        http,
        url: url.to_owned(),
        session: None,
    };
    let no_session = anonymous
        .call("files.delete", json!({"path": "/srv/app/cache.db"}))
        .await?;
    ensure!(
        code(&no_session) == Some(keygate_gates::CONFIRMATION_INVALID),
        "delete without a session: {no_session}"
    );
    self_test_stateless(&anonymous.http, url).await
}

/// A 2026-07-28 client for the self-test: no session, the `_meta` envelope on every
/// request.
struct Stateless<'a> {
    http: &'a reqwest::Client,
    url: &'a str,
    /// Whether it declares form elicitation.
    elicitation: bool,
}

impl Stateless<'_> {
    /// Sends `method`; returns the HTTP status and the JSON-RPC message.
    async fn send(&self, method: &str, mut params: Value) -> anyhow::Result<(u16, Value)> {
        let capabilities = if self.elicitation {
            json!({"elicitation": {"form": {}}})
        } else {
            json!({})
        };
        params["_meta"] = json!({
            revision::PROTOCOL_VERSION_KEY: "2026-07-28",
            revision::CLIENT_CAPABILITIES_KEY: capabilities,
        });
        let response = self
            .http
            .post(self.url)
            .header(VERSION_HEADER, "2026-07-28")
            .header("mcp-method", method)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await?;
        ensure!(
            response.headers().get(SESSION_HEADER).is_none(),
            "{method}: a stateless answer issued a session"
        );
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Calls a tool; returns the JSON-RPC `result`.
    async fn call(&self, params: Value) -> anyhow::Result<Value> {
        let (_, body) = self.send("tools/call", params).await?;
        body.get("result")
            .cloned()
            .with_context(|| format!("no result in {body}"))
    }
}

/// The stateless flow: discover, then deletes confirmed (or not) by MRTR elicitation.
async fn self_test_stateless(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let client = Stateless {
        http,
        url,
        elicitation: true,
    };
    let (_, discovered) = client.send(DISCOVER_METHOD, json!({})).await?;
    ensure!(
        discovered["result"]["supportedVersions"] == json!(["2026-07-28"]),
        "server/discover: {discovered}"
    );
    let target = "/home/me/notes.md";
    let delete = |state: Option<&str>, answer: Option<Value>| {
        let mut params = json!({"name": "files.delete", "arguments": {"path": target}});
        if let Some(state) = state {
            params["requestState"] = json!(state);
        }
        if let Some(answer) = answer {
            params["inputResponses"] = json!({ CONFIRM_INPUT: answer });
        }
        params
    };
    // The first call asks; the answer names the path and carries a one-time state.
    let ask = |result: Value| -> anyhow::Result<String> {
        let asked: InputRequiredResult = serde_json::from_value(result.clone())
            .with_context(|| format!("not input_required: {result}"))?;
        let Some(InputRequest::Elicitation(form)) = asked
            .input_requests
            .as_ref()
            .and_then(|r| r.get(CONFIRM_INPUT))
        else {
            bail!("no confirm elicitation: {result}");
        };
        ensure!(form.message.contains(target), "elicitation: {result}");
        asked.request_state.context("no requestState")
    };
    let accept = |path: &str| json!({"action": "accept", "content": {"path": path}});

    // Declined: nothing deleted, and the state is spent.
    let state = ask(client.call(delete(None, None)).await?)?;
    let no = client
        .call(delete(Some(&state), Some(json!({"action": "decline"}))))
        .await?;
    ensure!(code(&no) == Some(CONFIRMATION_DECLINED), "declined: {no}");
    let replay = client
        .call(delete(Some(&state), Some(accept(target))))
        .await?;
    ensure!(
        code(&replay) == Some(keygate_gates::CONFIRMATION_INVALID),
        "replayed requestState: {replay}"
    );
    // A wrong path typed: declined.
    let state = ask(client.call(delete(None, None)).await?)?;
    let wrong = client
        .call(delete(Some(&state), Some(accept("/home/me"))))
        .await?;
    ensure!(
        code(&wrong) == Some(CONFIRMATION_DECLINED),
        "wrong path: {wrong}"
    );
    // Accepted with the exact path: deleted.
    let state = ask(client.call(delete(None, None)).await?)?;
    let done = client
        .call(delete(Some(&state), Some(accept(target))))
        .await?;
    ensure!(
        done["structuredContent"]["deleted"] == target && done["resultType"] == "complete",
        "confirmed stateless delete: {done}"
    );
    let listed = client
        .call(json!({"name": "files.list", "arguments": {}}))
        .await?;
    ensure!(
        listed["structuredContent"]["paths"]
            .as_array()
            .is_some_and(|p| !p.contains(&json!(target))),
        "{target} is still listed: {listed}"
    );
    // Protected paths are blocked without asking anyone.
    let blocked = client
        .call(json!({"name": "files.delete", "arguments": {"path": "/home"}}))
        .await?;
    ensure!(
        code(&blocked) == Some(keygate_gates::SELF_SERVICE_BLOCKED),
        "protected path: {blocked}"
    );
    // A client that cannot be asked cannot confirm.
    let mute = Stateless {
        http,
        url,
        elicitation: false,
    };
    let refused = mute
        .call(json!({"name": "files.delete", "arguments": {"path": "/srv/app/cache.db"}}))
        .await?;
    ensure!(
        code(&refused) == Some(keygate_gates::CONFIRMATION_INVALID),
        "stateless delete without elicitation: {refused}"
    );
    // A request without the envelope is refused as the SDKs refuse it.
    let bare = http
        .post(url)
        .header(VERSION_HEADER, "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await?;
    ensure!(bare.status().as_u16() == 400, "no _meta: {}", bare.status());
    let bare: Value = bare.json().await?;
    ensure!(
        bare["error"]["code"] == jsonrpc::INVALID_PARAMS,
        "no _meta: {bare}"
    );
    Ok(())
}
