//! MCP Streamable HTTP: JSON-RPC 2.0 over `POST /mcp`, answered with `application/json`.
//!
//! Every revision keygate speaks is served on the one endpoint: the stateful ones
//! (`initialize`, a session id) here, the stateless 2026-07-28 in [`stateless`]. The
//! envelope is read by [`keygate_mcp::jsonrpc::parse`], as the gateway reads it.

mod stateless;

use std::borrow::Cow;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use keygate_mcp::jsonrpc::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::platform::{CallError, Caller, Platform, ToolError, ToolResult};
use crate::tools::TOOLS_LIST;

/// Protocol versions this server negotiates with `initialize` (the stateful ones),
/// newest first. It also speaks the stateless 2026-07-28, which needs no `initialize`
/// (see [`keygate_mcp::revision`]).
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version `initialize` answers a client that asks for one this server does not
/// speak: the newest stateful revision.
pub const LATEST_PROTOCOL_VERSION: &str = keygate_mcp::revision::LATEST_STATEFUL.as_str();

/// The header carrying the session id issued by `initialize`.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The header in which the gateway names the calling person (user keys only).
pub const USER_HEADER: &str = "x-keygate-user";

/// The header in which the gateway names the key's tenant: whose data set a request
/// reads and changes.
pub const TENANT_HEADER: &str = "x-keygate-tenant";

/// The header in which the gateway names the project a call's `project` argument was
/// resolved to (its id, within the key's tenant).
pub const PROJECT_HEADER: &str = "x-keygate-project";

/// Longest tenant or project id accepted in a header.
const MAX_ID_LEN: usize = 128;

const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";

/// Server-defined error code used for transport-level refusals (406, 415, 400 version).
const TRANSPORT_ERROR: i64 = -32000;

/// The demo platform's MCP endpoint: `POST /mcp` answers JSON-RPC, other methods on
/// `/mcp` get `405 Method Not Allowed` (this server opens no SSE stream and keeps no
/// session to delete).
///
/// The router is a plain [`axum::Router`]: serve it with `axum::serve`, nest it, or call it
/// in-process as a tower service. It performs no authentication; put the keygate gateway
/// in front of it.
///
/// ```
/// let app = keygate_demo::router(keygate_demo::Platform::new());
/// # let _ = app;
/// ```
pub fn router(platform: Platform) -> Router {
    Router::new()
        .route("/mcp", post(handle))
        .with_state(platform)
}

#[derive(Deserialize)]
struct InitializeParams<'a> {
    #[serde(borrow, rename = "protocolVersion")]
    protocol_version: Cow<'a, str>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Success<'a, T> {
    jsonrpc: &'static str,
    id: &'a RawValue,
    result: T,
}

#[derive(Serialize)]
struct Failure<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RawValue>,
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    code: i64,
    message: &'a str,
}

#[derive(Serialize)]
struct InitializeResult<'a> {
    #[serde(rename = "protocolVersion")]
    protocol_version: &'a str,
    capabilities: Capabilities,
    #[serde(rename = "serverInfo")]
    server_info: ServerInfo,
    instructions: &'static str,
}

#[derive(Serialize)]
struct Capabilities {
    tools: Empty,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct ServerInfo {
    name: &'static str,
    title: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct CallResult<'a> {
    content: [TextContent<'a>; 1],
    #[serde(rename = "structuredContent")]
    structured_content: &'a RawValue,
    #[serde(rename = "isError")]
    is_error: bool,
    /// 2026-07-28 results say how to read them (`complete`).
    #[serde(rename = "resultType", skip_serializing_if = "Option::is_none")]
    result_type: Option<&'static str>,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct ErrorContent<'a> {
    code: &'static str,
    message: &'a str,
}

const INSTRUCTIONS: &str = "A demo platform with projects `shop` and `ops`. Read a service's \
status, events and logs before changing it; deletion and replacement cannot be undone.";

async fn handle(State(platform): State<Platform>, headers: HeaderMap, body: Bytes) -> Response {
    respond(&platform, &headers, &body)
}

/// Answers one `POST /mcp` request (its headers and body) as [`router`] does, without the
/// router: for a caller that serves the platform in-process and already holds the
/// request's parts, such as `keygated --demo`.
///
/// ```
/// use axum::http::{HeaderMap, StatusCode};
///
/// let platform = keygate_demo::Platform::new();
/// let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}}}"#;
/// let response = keygate_demo::respond(&platform, &HeaderMap::new(), body);
/// assert_eq!(response.status(), StatusCode::OK);
/// ```
pub fn respond(platform: &Platform, headers: &HeaderMap, body: &[u8]) -> Response {
    if !accepts_json(headers) {
        return failure(
            StatusCode::NOT_ACCEPTABLE,
            None,
            TRANSPORT_ERROR,
            "Not Acceptable: the client must accept application/json or text/event-stream",
        );
    }
    if !is_json_content(headers) {
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            TRANSPORT_ERROR,
            "Unsupported Media Type: the body must be application/json",
        );
    }

    let parsed = match jsonrpc::parse(body) {
        Ok(parsed) => parsed,
        Err(e) => {
            return failure_value(
                StatusCode::BAD_REQUEST,
                answerable(e.id()),
                e.code(),
                e.message(),
            );
        }
    };
    if stateless::is_stateless(headers, &parsed) {
        return stateless::respond(platform, headers, &parsed);
    }
    let msg = parsed.message;

    let id = msg.id.filter(|id| jsonrpc::is_valid_id(id));
    let Some(method) = parsed.method else {
        // A response to a server-initiated request (this server sends none): accept it.
        if msg.id.is_some() && (msg.result.is_some() || msg.error.is_some()) {
            return accepted();
        }
        return failure(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_REQUEST,
            "Invalid Request: method is missing",
        );
    };
    let Some(raw_id) = msg.id else {
        // Notifications (`notifications/initialized`, `notifications/cancelled`, ...)
        // need no answer.
        return accepted();
    };
    let Some(id) = id else {
        return failure(
            StatusCode::BAD_REQUEST,
            None,
            INVALID_REQUEST,
            if raw_id.get() == "null" {
                "Invalid Request: id must not be null"
            } else {
                "Invalid Request: id must be a string or an integer"
            },
        );
    };

    if method != "initialize"
        && let Some(version) = headers.get(PROTOCOL_VERSION_HEADER)
        && !version
            .to_str()
            .is_ok_and(|v| PROTOCOL_VERSIONS.contains(&v.trim()))
    {
        return failure(
            StatusCode::BAD_REQUEST,
            Some(id),
            TRANSPORT_ERROR,
            "Bad Request: unsupported MCP-Protocol-Version",
        );
    }

    match method.as_ref() {
        "initialize" => initialize(id, msg.params),
        "ping" => success(id, &Empty {}),
        "tools/list" => success(id, &*TOOLS_LIST),
        "tools/call" => call(platform, headers, id, msg.params, Era::Stateful),
        _ => failure(
            StatusCode::OK,
            Some(id),
            METHOD_NOT_FOUND,
            "Method not found",
        ),
    }
}

fn initialize(id: &RawValue, params: Option<&RawValue>) -> Response {
    let Some(params) = params.filter(|p| p.get().starts_with('{')) else {
        return invalid_params(id, "Invalid params: protocolVersion is required");
    };
    let Ok(params) = serde_json::from_str::<InitializeParams<'_>>(params.get()) else {
        return invalid_params(id, "Invalid params: protocolVersion must be a string");
    };
    let version = PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == params.protocol_version)
        .copied()
        .unwrap_or(LATEST_PROTOCOL_VERSION);
    let Some(session) = new_session_id() else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(id),
            INTERNAL_ERROR,
            "Internal error",
        );
    };
    let mut response = success(
        id,
        &InitializeResult {
            protocol_version: version,
            capabilities: Capabilities { tools: Empty {} },
            server_info: ServerInfo {
                name: "keygate-demo",
                title: "Keygate demo platform",
                version: env!("CARGO_PKG_VERSION"),
            },
            instructions: INSTRUCTIONS,
        },
    );
    response.headers_mut().insert(SESSION_HEADER, session);
    response
}

/// Which era a request belongs to: how its errors and results are framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    /// 2025 revisions: errors of a request that was read are HTTP 200.
    Stateful,
    /// 2026-07-28: errors carry the status of their code, results a `resultType`.
    Stateless,
}

impl Era {
    fn error_status(self, code: i64) -> StatusCode {
        match self {
            Self::Stateful => StatusCode::OK,
            Self::Stateless => jsonrpc::http_status(code)
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK),
        }
    }

    fn result_type(self) -> Option<&'static str> {
        match self {
            Self::Stateful => None,
            Self::Stateless => Some(keygate_mcp::mrtr::ResultType::Complete.as_str()),
        }
    }
}

fn call(
    platform: &Platform,
    headers: &HeaderMap,
    id: &RawValue,
    params: Option<&RawValue>,
    era: Era,
) -> Response {
    let invalid_params = |id: &RawValue, message: &str| {
        failure(
            era.error_status(INVALID_PARAMS),
            Some(id),
            INVALID_PARAMS,
            message,
        )
    };
    let Some(params) = params.filter(|p| p.get().starts_with('{')) else {
        return invalid_params(
            id,
            "Invalid params: an object with the tool's name is required",
        );
    };
    let params: CallParams<'_> = match serde_json::from_str(params.get()) {
        Ok(p) => p,
        Err(e) => return invalid_params(id, &format!("Invalid params: {e}")),
    };
    let arguments = match params.arguments {
        Some(a) if a.get() != "null" => a.get(),
        _ => "{}",
    };
    if !arguments.starts_with('{') {
        return invalid_params(id, "Invalid params: arguments must be an object");
    }
    let user = headers
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let (Ok(tenant), Ok(project)) = (
        id_header(headers, TENANT_HEADER),
        id_header(headers, PROJECT_HEADER),
    ) else {
        return failure(
            StatusCode::BAD_REQUEST,
            Some(id),
            TRANSPORT_ERROR,
            "Bad Request: X-Keygate-Tenant and X-Keygate-Project must be 1-128 visible ASCII characters",
        );
    };
    let caller = Caller {
        tenant,
        project,
        user,
    };
    match platform.call(&caller, &params.name, arguments) {
        Ok(result) => tool_result(id, &result, era),
        Err(CallError::UnknownTool) => {
            invalid_params(id, &format!("Unknown tool: {}", params.name))
        }
        Err(CallError::InvalidParams(message)) => invalid_params(
            id,
            &format!("Invalid params for {}: {message}", params.name),
        ),
    }
}

/// An id header (`X-Keygate-Tenant`, `X-Keygate-Project`): absent is `Ok(None)`; given
/// twice, empty, too long or not visible ASCII is `Err`.
fn id_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if values.next().is_some()
        || bytes.is_empty()
        || bytes.len() > MAX_ID_LEN
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(());
    }
    value.to_str().map(Some).map_err(|_| ())
}

fn tool_result(id: &RawValue, result: &ToolResult, era: Era) -> Response {
    match result {
        Ok(structured) => success(
            id,
            &CallResult {
                content: [TextContent {
                    kind: "text",
                    text: structured.get(),
                }],
                structured_content: structured,
                is_error: false,
                result_type: era.result_type(),
            },
        ),
        Err(ToolError { code, message }) => {
            let structured = serde_json::value::to_raw_value(&ErrorContent { code, message });
            let Ok(structured) = structured else {
                return failure(StatusCode::OK, Some(id), INTERNAL_ERROR, "Internal error");
            };
            success(
                id,
                &CallResult {
                    content: [TextContent {
                        kind: "text",
                        text: message,
                    }],
                    structured_content: &structured,
                    is_error: true,
                    result_type: era.result_type(),
                },
            )
        }
    }
}

/// A missing `Accept` is fine; one that rules out both JSON and SSE is not.
fn accepts_json(headers: &HeaderMap) -> bool {
    let mut seen = false;
    for value in headers.get_all(header::ACCEPT) {
        seen = true;
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            let matches = [
                "application/json",
                "text/event-stream",
                "application/*",
                "text/*",
                "*/*",
            ]
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m));
            if matches && !refused {
                return true;
            }
        }
    }
    !seen
}

/// A missing `Content-Type` is tolerated; any other than JSON is refused.
fn is_json_content(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        || media
            .get(media.len().saturating_sub(5)..)
            .is_some_and(|s| s.eq_ignore_ascii_case("+json"))
}

/// 128 random bits, hex-encoded.
fn new_session_id() -> Option<HeaderValue> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        text[2 * i] = HEX[usize::from(b >> 4)];
        text[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    HeaderValue::from_bytes(&text).ok()
}

fn accepted() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn success<T: Serialize>(id: &RawValue, result: &T) -> Response {
    let body = serde_json::to_vec(&Success {
        jsonrpc: "2.0",
        id,
        result,
    });
    match body {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(_) => failure(StatusCode::OK, Some(id), INTERNAL_ERROR, "Internal error"),
    }
}

fn invalid_params(id: &RawValue, message: &str) -> Response {
    failure(StatusCode::OK, Some(id), INVALID_PARAMS, message)
}

/// The id to answer an envelope error with: the message's own when MCP allows it.
fn answerable(id: &Value) -> Value {
    match id {
        Value::String(_) => id.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => id.clone(),
        _ => Value::Null,
    }
}

/// An error response built from JSON values (see [`jsonrpc::error_response`]).
fn failure_value(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    json_value(status, &jsonrpc::error_response(id, code, message))
}

/// A response with a JSON body.
fn json_value(status: StatusCode, body: &Value) -> Response {
    json_response(status, serde_json::to_vec(body).unwrap_or_default())
}

fn failure(status: StatusCode, id: Option<&RawValue>, code: i64, message: &str) -> Response {
    let body = serde_json::to_vec(&Failure {
        jsonrpc: "2.0",
        id,
        error: ErrorObject { code, message },
    })
    // Serializing two integers and two strings cannot fail; keep a valid body anyway.
    .unwrap_or_else(|_| {
        br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error"}}"#
            .to_vec()
    });
    json_response(status, body)
}
