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
//! `--self-test` serves on an ephemeral loopback port, drives the whole flow against
//! itself (confirm, replay, other session, protected path), and exits 0 (1 on any
//! mismatch).

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use keygate_gates::{GateCall, Gates, MemoryGateStore, SystemClock, strip_confirm};
use keygate_scopes::GateSpec;
use serde_json::{Value, json};

/// Who every call is attributed to: there is no key without the gateway.
const LOCAL_IDENTITY: &str = "local";
/// The session header of MCP Streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";
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

/// The server's state: the paths, the sessions it issued, and the gate.
#[derive(Debug)]
struct App {
    paths: Mutex<BTreeSet<String>>,
    sessions: Mutex<HashSet<String>>,
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
        gates: Gates::new(Arc::new(MemoryGateStore::new()), Arc::new(SystemClock)),
        delete_gate: GateSpec::approval("path", PROTECTED.map(str::to_owned).to_vec()),
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

/// `POST /mcp`: one JSON-RPC request.
async fn mcp(State(app): State<Arc<App>>, headers: HeaderMap, body: String) -> Response {
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return rpc_error(Value::Null, -32700, "parse error").into_response();
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let params = request.get("params").cloned().unwrap_or(Value::Null);

    if method == "initialize" {
        let Ok(session) = keygate_token::random_base62(24) else {
            return rpc_error(id, -32603, "internal error").into_response();
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
        _ => rpc_error(id, -32601, "method not found").into_response(),
    }
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
            let gate_call =
                GateCall::from_args(&app.delete_gate, LOCAL_IDENTITY, session, tool, args);
            let decision = app
                .gates
                .decide(&app.delete_gate, &gate_call, None)
                .await
                .map_err(|e| {
                    // A store failure: no decision, so nothing is deleted.
                    eprintln!("gate failed: {e}");
                    (-32603, "internal error".to_owned())
                })?;
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
        other => Err((-32602, format!("unknown tool: {other}"))),
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
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn rpc_error(id: Value, code: i64, message: &str) -> axum::Json<Value> {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
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
    Ok(())
}
