//! `keygate wrap`: the gateway's guard for a local stdio setup, as an MCP server on the
//! process's own stdin and stdout in front of a stdio server it spawns.
//!
//! There is no second guard: [`Wrap::new`] builds keygated's own [`App`] in-process
//! (a memory key store holding one local tenant, its owner and one user key with
//! every scope of the policy; gate state in memory; the wrapped command as a stdio
//! upstream), and [`Wrap::run`] turns each line of its input into a `POST /api/mcp`
//! of that app (`tower` `oneshot`, the local key as `Authorization`, the
//! `Mcp-Session-Id` once `initialize` opened the session, `Accept` JSON and event
//! streams). Tool visibility, refused tools, protected targets, evidence, person
//! approval through the client's elicitation and the session's binding to the key are
//! therefore exactly keygated's. The process's lifetime is the session, i.e. one
//! conversation.
//!
//! - Each JSON answer, and each message of an event-stream answer as it arrives, is
//!   written to the output as one line; writes are serialised. Requests run
//!   concurrently; notifications and the client's answers (to elicitation, sampling)
//!   are posted in the order they were read, before the next line is taken, so a
//!   request never overtakes the `notifications/initialized` before it.
//! - Once `initialize` has opened the session, a `GET` stream carries the server's
//!   unsolicited messages (`list_changed`, requests while no call is open).
//! - A gateway refusal that is not JSON-RPC (403 `{"error":"insufficient_scope"}`,
//!   429) becomes a JSON-RPC error of the request it answers ([`refusal_message`]).
//! - A person-gated call of a client that did not declare elicitation cannot be
//!   approved: a local setup has no approval page. Its `APPROVAL_REQUIRED` answer is
//!   replaced by the tool error [`NO_APPROVAL_PAGE`] (code `APPROVAL_UNAVAILABLE`).
//! - The end: end of input ends the session (its child gets its stdin closed, then is
//!   killed after a grace period) and [`Wrap::run`] returns [`WrapEnd::InputClosed`];
//!   a child that exits on its own ends the run with [`WrapEnd::ChildExited`].
//! - The wrapped command gets this process's environment, except `KEYGATE_*`
//!   variables (the gate's own settings and credential, never the server's) and
//!   variables that are not UTF-8.

use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use keygate_keys::{Bootstrap, MemoryStore};
use keygate_mcp::jsonrpc;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::config::{Config, Upstream};
use crate::error::ServerError;
use crate::stdio::{LineError, LineReader, StdioCommand};
use crate::stdio_bridge::SessionEnd;
use crate::{App, MCP_BODY_LIMIT};

/// The text of the tool error a person-gated call gets from a client that did not
/// declare elicitation (after it, the operation and the target).
pub const NO_APPROVAL_PAGE: &str = "keygate wrap: this call needs a person's approval, and \
     this MCP client did not declare elicitation, so keygate cannot ask you; a local setup \
     has no approval page. Use an MCP client that supports form elicitation, or put \
     keygated (with its approval page) in front of this server instead.";

/// The `structuredContent` code of that tool error.
pub const APPROVAL_UNAVAILABLE: &str = "APPROVAL_UNAVAILABLE";

/// How long the end of input waits for the session's child to exit (it gets its
/// stdin closed, and is killed after 2 s).
const END_WAIT: Duration = Duration::from_secs(5);

/// How long the answers still on their way may take to be written at the end.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Messages queued for the output before readers of the gateway's answers wait.
const QUEUED: usize = 256;

/// The tenant, owner and key names of the local key store (seen in log lines).
const LOCAL: &str = "local";

/// How a [`Wrap::run`] ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum WrapEnd {
    /// The input ended; the session's child (if one was started) was ended.
    InputClosed,
    /// The session's child exited on its own; its status when it could be read.
    ChildExited(Option<ExitStatus>),
    /// The wrapped command could not be started (at the client's `initialize`, which
    /// got a JSON-RPC error saying why).
    NotStarted(String),
}

impl WrapEnd {
    /// The exit code `keygate wrap` ends with: 0 at the end of input; the child's own
    /// code when it exited on its own (128 + the signal when one killed it, 1 when
    /// its status is unknown); 127 when the command could not be started (as a shell
    /// answers a command it cannot run).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InputClosed => 0,
            Self::NotStarted(_) => 127,
            Self::ChildExited(Some(status)) => status_code(*status),
            Self::ChildExited(None) => 1,
        }
    }
}

fn status_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from(128 + signal).unwrap_or(1);
    }
    1
}

/// The guard of one local stdio server: built by [`Wrap::new`], run by [`Wrap::run`].
#[derive(Debug)]
pub struct Wrap {
    app: App,
    /// `Bearer <the local key>`, marked sensitive.
    authorization: HeaderValue,
}

impl Wrap {
    /// keygated's app in front of `command` (its first word is the program), with the
    /// policy file `policy` and the local key holding every scope of it.
    ///
    /// # Errors
    ///
    /// [`ServerError::Config`] for an empty command, [`ServerError::Policy`] for a
    /// policy that cannot be read, [`ServerError::Store`] when the local key cannot be
    /// made.
    pub async fn new(command: Vec<String>, policy: &Path) -> Result<Self, ServerError> {
        let mut command = StdioCommand::from_words(command)?;
        // Variables that are not UTF-8 cannot be named in a command's environment.
        command.env = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .filter(|(name, _)| !name.starts_with("KEYGATE_"))
            .collect();
        let mut config = Config::new(Upstream::Stdio(command));
        config.policy = Some(policy.to_owned());
        // One local client: no address to count failed authentications of.
        config.auth_failure_rate = None;
        let store = Arc::new(MemoryStore::new());
        let app = App::with_store(config, store).await?;
        let bootstrap = Bootstrap::new(LOCAL, LOCAL, &[], app.policy().all_scopes(), LOCAL);
        let done = app
            .store()
            .bootstrap(app.format(), bootstrap)
            .await
            .map_err(ServerError::Store)?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", done.key.token.expose()))
                .map_err(|_| ServerError::Config("the local key is not a header".to_owned()))?;
        authorization.set_sensitive(true);
        Ok(Self { app, authorization })
    }

    /// Serves MCP on `input` and `output` (newline-delimited JSON-RPC, as the MCP stdio
    /// transport) until the input ends or the session's child exits.
    ///
    /// # Errors
    ///
    /// [`ServerError::Io`] when reading the input or writing the output fails.
    pub async fn run<R, W>(self, input: R, output: W) -> Result<WrapEnd, ServerError>
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let Some(bridge) = self.app.upstream().stdio_bridge() else {
            return Err(ServerError::Config(
                "keygate wrap needs a stdio upstream".to_owned(),
            ));
        };
        let mut ends = bridge.watch_sessions();
        let (out, out_rx) = mpsc::channel(QUEUED);
        let mut writer = tokio::spawn(write_lines(out_rx, output));
        let front = Arc::new(Front {
            router: self.app.router(),
            authorization: self.authorization,
            session: Mutex::new(None),
            out,
        });
        let mut tasks = JoinSet::new();
        let mut lines = LineReader::new(input, MCP_BODY_LIMIT);
        let end = loop {
            tokio::select! {
                line = lines.next() => match line {
                    None => break Ok(WrapEnd::InputClosed),
                    Some(Ok(line)) if line.trim_ascii().is_empty() => {}
                    Some(Ok(line)) => front.take(line, &mut tasks).await,
                    Some(Err(LineError::TooLong)) => {
                        let message = format!("Parse error: a line longer than {MCP_BODY_LIMIT} bytes");
                        front.emit(jsonrpc::error_response(Value::Null, jsonrpc::PARSE_ERROR, message)).await;
                    }
                    Some(Err(e)) => break Err(ServerError::Io(std::io::Error::other(e))),
                },
                Some(end) = ends.recv() => break Ok(match end {
                    SessionEnd::NotStarted(why) => {
                        tracing::error!(error = %why, "the wrapped command could not be started");
                        WrapEnd::NotStarted(why)
                    }
                    SessionEnd::Exited(status) => WrapEnd::ChildExited(status),
                }),
                // The output is gone: nothing more can be answered.
                done = &mut writer => return Err(ServerError::Io(match done {
                    Ok(Err(e)) => e,
                    _ => std::io::Error::other("the output writer stopped"),
                })),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        if let Ok(WrapEnd::ChildExited(_)) = end {
            // Its open calls were failed: let their answers out.
            let drained = async { while tasks.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(DRAIN_WAIT, drained).await;
        }
        tasks.shutdown().await;
        if matches!(end, Ok(WrapEnd::InputClosed)) && front.session().is_some() {
            front.end_session().await;
            let _ = tokio::time::timeout(END_WAIT, ends.recv()).await;
        }
        // The last sender: the writer ends once it wrote what is queued.
        drop(front);
        match tokio::time::timeout(DRAIN_WAIT, &mut writer).await {
            Ok(Ok(Err(e))) => return Err(ServerError::Io(e)),
            Ok(_) => {}
            Err(_) => writer.abort(),
        }
        end
    }
}

/// Writes each message as one line, flushed, until every sender is gone.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Value>,
    mut output: W,
) -> std::io::Result<()> {
    while let Some(message) = rx.recv().await {
        let mut line = serde_json::to_vec(&message).map_err(std::io::Error::other)?;
        line.push(b'\n');
        output.write_all(&line).await?;
        output.flush().await?;
    }
    Ok(())
}

/// The stdio side of the session: what every line's task shares.
#[derive(Debug)]
struct Front {
    router: Router,
    authorization: HeaderValue,
    /// The `Mcp-Session-Id` the gateway issued on `initialize`.
    session: Mutex<Option<HeaderValue>>,
    out: mpsc::Sender<Value>,
}

impl Front {
    fn session(&self) -> Option<HeaderValue> {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn emit(&self, message: Value) {
        let _ = self.out.send(message).await;
    }

    /// One line of input: a request runs on its own task; `initialize` is answered
    /// before the next line is read (it opens the session the next ones need), as are
    /// notifications and answers (their order is kept).
    async fn take(self: &Arc<Self>, line: Vec<u8>, tasks: &mut JoinSet<()>) {
        let parsed = serde_json::from_slice::<Value>(&line).ok();
        let method = parsed
            .as_ref()
            .and_then(|m| m.get("method"))
            .and_then(Value::as_str);
        let id = parsed
            .as_ref()
            .and_then(|m| m.get("id"))
            .filter(|_| method.is_some())
            .cloned();
        if method == Some("initialize") {
            self.initialize(line, id.unwrap_or(Value::Null), tasks)
                .await;
        } else if let Some(id) = id {
            let front = self.clone();
            let tool_call = method == Some("tools/call");
            tasks.spawn(async move {
                let resp = front.send(Method::POST, line).await;
                front.relay(resp, Some(&id), tool_call).await;
            });
        } else {
            let resp = self.send(Method::POST, line).await;
            self.relay(resp, None, false).await;
        }
    }

    async fn initialize(self: &Arc<Self>, line: Vec<u8>, id: Value, tasks: &mut JoinSet<()>) {
        let resp = self.send(Method::POST, line).await;
        if let Some(session) = resp.headers().get("mcp-session-id").cloned() {
            *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(session);
            let front = self.clone();
            tasks.spawn(async move {
                let resp = front.send(Method::GET, Vec::new()).await;
                if resp.status().is_success() {
                    front.relay(resp, None, false).await;
                } else {
                    tracing::debug!(
                        status = resp.status().as_u16(),
                        "no GET stream for unsolicited messages"
                    );
                }
            });
        }
        self.relay(resp, Some(&id), false).await;
    }

    /// Ends the session: the child gets its stdin closed.
    async fn end_session(&self) {
        let resp = self.send(Method::DELETE, Vec::new()).await;
        tracing::debug!(status = resp.status().as_u16(), "session ended");
    }

    /// One request to the in-process gateway.
    async fn send(&self, method: Method, body: Vec<u8>) -> Response<Body> {
        let accept = if method == Method::GET {
            keygate_mcp::sse::CONTENT_TYPE
        } else {
            "application/json, text/event-stream"
        };
        let mut req = Request::new(Body::from(body));
        *req.method_mut() = method.clone();
        *req.uri_mut() = http::Uri::from_static("/api/mcp");
        let headers = req.headers_mut();
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        if method == Method::POST {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(session) = self.session() {
            headers.insert("mcp-session-id", session);
        }
        match self.router.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }

    /// Writes the gateway's answer: each message of an event stream as it arrives, a
    /// JSON answer as it is; a refusal that is not JSON-RPC as the JSON-RPC error of
    /// request `id`.
    async fn relay(&self, resp: Response<Body>, id: Option<&Value>, tool_call: bool) {
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(keygate_mcp::sse::is_event_stream);
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.into_body();
        if is_sse {
            let mut messages = std::pin::pin!(keygate_mcp::sse::message_stream(body));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(mut message) => {
                        if tool_call {
                            no_approval_page(&mut message);
                        }
                        self.emit(message).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "an event stream of the gateway broke off");
                        if let Some(id) = id {
                            let message = format!("keygate: the answer broke off: {e}");
                            self.emit(jsonrpc::error_response(
                                id.clone(),
                                jsonrpc::INTERNAL_ERROR,
                                message,
                            ))
                            .await;
                        }
                        return;
                    }
                }
            }
            return;
        }
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "an answer of the gateway could not be read");
                bytes::Bytes::new()
            }
        };
        let parsed = serde_json::from_slice::<Value>(&bytes).ok();
        match parsed {
            Some(mut message) if message.get("jsonrpc").is_some() => {
                if tool_call {
                    no_approval_page(&mut message);
                }
                self.emit(message).await;
            }
            other => {
                let Some(id) = id else {
                    if !status.is_success() {
                        tracing::info!(
                            status = status.as_u16(),
                            "a notification or answer was refused"
                        );
                    }
                    return;
                };
                let error = other
                    .as_ref()
                    .and_then(|b| b.get("error"))
                    .and_then(Value::as_str);
                let message = refusal_message(status, error, retry_after.as_deref());
                self.emit(jsonrpc::error_response(
                    id.clone(),
                    refusal_code(status),
                    message,
                ))
                .await;
            }
        }
    }
}

/// The JSON-RPC error code of a gateway refusal that is not JSON-RPC: `-32600`
/// (Invalid Request) for a refusal of the request, `-32603` for the gateway's own
/// failure.
fn refusal_code(status: StatusCode) -> i64 {
    if status.is_server_error() {
        jsonrpc::INTERNAL_ERROR
    } else {
        jsonrpc::INVALID_REQUEST
    }
}

/// The message of a gateway refusal that is not JSON-RPC, naming its `error` code
/// (from the gateway's error table) and what it means here.
pub(crate) fn refusal_message(
    status: StatusCode,
    error: Option<&str>,
    retry_after: Option<&str>,
) -> String {
    let code = error.unwrap_or("refused");
    let meaning = match code {
        "insufficient_scope" => {
            "the policy does not let this call through (a tool or method not in the policy is hidden and denied)".to_owned()
        }
        "rate_limited" => format!(
            "too many requests; retry after {} s",
            retry_after.unwrap_or("1")
        ),
        _ => format!("HTTP {}", status.as_u16()),
    };
    format!("keygate: {code}: {meaning}")
}

/// Replaces the approval page's answer in a tool call's result (a local setup has
/// none) by the [`NO_APPROVAL_PAGE`] tool error, with the same operation, target and
/// arguments.
fn no_approval_page(message: &mut Value) {
    let Some(result) = message.get_mut("result") else {
        return;
    };
    let Some(data) = result.get("structuredContent").filter(|d| {
        d.get("code").and_then(Value::as_str) == Some(keygate_gates::APPROVAL_REQUIRED)
    }) else {
        return;
    };
    let operation = data.get("operation").and_then(Value::as_str).unwrap_or("");
    let target = data.get("target").and_then(Value::as_str).unwrap_or("");
    let text = format!("{NO_APPROVAL_PAGE} (operation {operation}, target {target})");
    let structured = json!({
        "code": APPROVAL_UNAVAILABLE,
        "operation": operation,
        "target": target,
        "arguments": data.get("arguments").cloned().unwrap_or(Value::Null),
        "message": NO_APPROVAL_PAGE,
    });
    *result = json!({
        "isError": true,
        "content": [{ "type": "text", "text": text }],
        "structuredContent": structured,
    });
}

#[cfg(test)]
mod tests;
