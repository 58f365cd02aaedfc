//! The JSON-RPC 2.0 envelope, as MCP uses it.
//!
//! MCP sends one JSON-RPC message per HTTP request (batches were removed in
//! 2025-06-18): a request (`method` and `id`), a notification (`method`, no `id`) or a
//! response to a server request (`id` and `result` or `error`, no `method`).
//! [`parse`] reads such a body the way the gateway must before it applies any policy:
//! bounded nesting, one object, no member given twice, `jsonrpc` exactly `"2.0"`, a
//! `method` that is a string. It borrows from the body ([`Message`] keeps every member
//! as raw JSON), so the common case copies nothing.
//!
//! ```
//! use keygate_mcp::jsonrpc;
//!
//! let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
//! let parsed = jsonrpc::parse(body).unwrap();
//! assert_eq!(parsed.method.as_deref(), Some("tools/list"));
//! assert_eq!(parsed.id, 7);
//!
//! let err = jsonrpc::parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
//! assert_eq!(err.code(), jsonrpc::INVALID_REQUEST);
//! let answer = err.to_response(); // the JSON-RPC error object to send, with HTTP 400
//! assert_eq!(answer["error"]["code"], -32600);
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The value of every message's `jsonrpc` member.
pub const VERSION: &str = "2.0";

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object (including batches, which MCP refuses).
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters (also: a 2026-07-28 request whose `_meta` lacks the
/// required envelope keys).
pub const INVALID_PARAMS: i64 = -32602;
/// Internal JSON-RPC error.
pub const INTERNAL_ERROR: i64 = -32603;

/// The gateway's own: the upstream MCP server cannot be reached (HTTP 502).
pub const UPSTREAM_UNAVAILABLE: i64 = -32001;
/// The gateway's own: the upstream did not start answering in time (HTTP 504).
pub const UPSTREAM_TIMEOUT: i64 = -32002;
/// The gateway's own: the upstream answered something that is not MCP (HTTP 502).
pub const UPSTREAM_BAD_RESPONSE: i64 = -32003;

/// 2026-07-28: an `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` or `MCP-Protocol-Version`
/// header disagrees with the body (HTTP 400).
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the request needs a client capability the request's `_meta` does not
/// declare (HTTP 400).
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: the request's protocol version is not one the server speaks; `data` is
/// `{"supported": [...], "requested": "..."}` (HTTP 400).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// 2025-11-25: the request needs a URL-mode elicitation to be completed first.
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// Deepest JSON nesting (arrays and objects) the gateway accepts in a message.
pub const MAX_DEPTH: usize = 64;

/// The HTTP status that goes with a JSON-RPC error code when the error answers the
/// request at the transport level (the Python SDK's table): 400 for parse, request,
/// params, header, capability and version errors, 404 for an unknown method; `None`
/// for any other code (the caller's default, usually 200).
pub fn http_status(code: i64) -> Option<u16> {
    match code {
        PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_REQUIRED_CLIENT_CAPABILITY
        | UNSUPPORTED_PROTOCOL_VERSION => Some(400),
        METHOD_NOT_FOUND => Some(404),
        _ => None,
    }
}

/// A JSON-RPC error response: `{"jsonrpc":"2.0","id":id,"error":{"code","message"}}`.
pub fn error_response(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({
        "jsonrpc": VERSION,
        "id": id,
        "error": { "code": code, "message": message.into() },
    })
}

/// A JSON-RPC error response whose error carries `data`.
pub fn error_response_with_data(
    id: Value,
    code: i64,
    message: impl Into<String>,
    data: Value,
) -> Value {
    json!({
        "jsonrpc": VERSION,
        "id": id,
        "error": { "code": code, "message": message.into(), "data": data },
    })
}

/// A JSON-RPC success response: `{"jsonrpc":"2.0","id":id,"result":result}`.
pub fn result_response(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": VERSION, "id": id, "result": result })
}

/// The members of a JSON-RPC message, each borrowed from the body as raw JSON.
///
/// A member that is absent is `None`; one given as `null` is `Some` of the raw `null`
/// (so an explicit `"id": null` can be told from a notification). A member given twice
/// fails deserialization (serde's `duplicate field`), so whoever reads this message
/// and whoever it is forwarded to cannot read different values from one ambiguous
/// body. Unknown members are ignored.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[non_exhaustive]
pub struct Message<'a> {
    /// `jsonrpc` (must be `"2.0"`).
    #[serde(borrow, default, deserialize_with = "present")]
    pub jsonrpc: Option<&'a RawValue>,
    /// `id`: a string or an integer in requests and responses; absent in notifications.
    #[serde(borrow, default, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    /// `method`: absent in responses.
    #[serde(borrow, default, deserialize_with = "present")]
    pub method: Option<&'a RawValue>,
    /// `params`, unparsed.
    #[serde(borrow, default, deserialize_with = "present")]
    pub params: Option<&'a RawValue>,
    /// `result` of a response, unparsed.
    #[serde(borrow, default, deserialize_with = "present")]
    pub result: Option<&'a RawValue>,
    /// `error` of a response, unparsed.
    #[serde(borrow, default, deserialize_with = "present")]
    pub error: Option<&'a RawValue>,
}

/// Keeps an explicit `null` distinct from an absent member.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// `params` of a `tools/call`, borrowed: the members the gateway reads (a member
/// given twice is refused, as in [`Message`]).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[non_exhaustive]
pub struct CallParams<'a> {
    /// `name`: the tool (a string; see [`json_str`]).
    #[serde(borrow, default, deserialize_with = "present")]
    pub name: Option<&'a RawValue>,
    /// `arguments`: an object, or absent.
    #[serde(borrow, default, deserialize_with = "present")]
    pub arguments: Option<&'a RawValue>,
    /// `_meta` (2026-07-28: the per-request envelope, see [`crate::revision::RequestMeta`]).
    #[serde(borrow, default, rename = "_meta", deserialize_with = "present")]
    pub meta: Option<&'a RawValue>,
    /// `inputResponses` of an MRTR retry (see [`crate::mrtr::InputResponses`]).
    #[serde(
        borrow,
        default,
        rename = "inputResponses",
        deserialize_with = "present"
    )]
    pub input_responses: Option<&'a RawValue>,
    /// `requestState` of an MRTR retry, echoed verbatim.
    #[serde(borrow, default, rename = "requestState", deserialize_with = "present")]
    pub request_state: Option<&'a RawValue>,
}

impl<'a> CallParams<'a> {
    /// Reads `params` of a `tools/call`: `Ok(None)` when absent or not an object,
    /// `Err` when it is an object that cannot be read (a member given twice).
    pub fn read(params: Option<&'a RawValue>) -> Result<Option<Self>, serde_json::Error> {
        match params.filter(|p| p.get().starts_with('{')) {
            None => Ok(None),
            Some(p) => serde_json::from_str(p.get()).map(Some),
        }
    }

    /// The tool's name, when it is a string.
    pub fn name(&self) -> Option<Cow<'a, str>> {
        self.name.and_then(json_str)
    }
}

/// A JSON string, borrowed when it has no escapes; `None` for any other JSON value.
pub fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    // A `RawValue` holds valid JSON, so a string without a backslash is its bytes between
    // the quotes (control characters are never raw in JSON): no decoder needed for the
    // method and tool names of every request.
    let text = raw.get();
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))
        && !inner.contains(['\\', '"'])
    {
        return Some(Cow::Borrowed(inner));
    }
    match serde_json::from_str::<&str>(text) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// A raw JSON-RPC id as a value to answer with (`null` when absent).
pub fn id_value(raw: Option<&RawValue>) -> Value {
    raw.and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null)
}

/// Whether a raw id is one MCP allows: a string or an integer (never `null`, never a
/// fraction or exponent).
pub fn is_valid_id(raw: &RawValue) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => true,
        Some(b'-' | b'0'..=b'9') => !text.contains(['.', 'e', 'E']),
        _ => false,
    }
}

/// Whether `bytes` (JSON) nests deeper than `max` arrays and objects. Brackets inside
/// strings are not counted; the bytes need not be valid JSON.
pub fn too_deep(bytes: &[u8], max: usize) -> bool {
    // Nesting deeper than `max` takes more than `max` opening brackets, and counting
    // them (in strings too) is a loop the compiler vectorises: most messages have a
    // handful and never reach the scan below, which runs on every request otherwise.
    let opening = bytes.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if opening <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// One JSON-RPC message that passed [`parse`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Parsed<'a> {
    /// The raw members.
    pub message: Message<'a>,
    /// The id to answer with (`null` when absent or not JSON-RPC's).
    pub id: Value,
    /// The method, decoded; `None` for a response to a server request.
    pub method: Option<Cow<'a, str>>,
}

impl Parsed<'_> {
    /// Whether this is a notification: a method and no `id` member.
    pub fn is_notification(&self) -> bool {
        self.method.is_some() && self.message.id.is_none()
    }

    /// Whether this is a response to a server request: no method.
    pub fn is_response(&self) -> bool {
        self.method.is_none()
    }
}

/// What was wrong with a body that is not one JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeProblem {
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not JSON at all.
    NotJson,
    /// A JSON array: a batch, which MCP does not accept.
    Batch,
    /// JSON, but not an object.
    NotObject,
    /// An object that cannot be read as a message (a member given twice).
    Shape,
    /// `jsonrpc` is not `"2.0"`.
    Version,
    /// `method` is not a string.
    Method,
}

/// A body refused by [`parse`]: the JSON-RPC error to answer with HTTP 400.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EnvelopeError {
    problem: EnvelopeProblem,
    code: i64,
    message: String,
    id: Value,
}

impl EnvelopeError {
    fn new(problem: EnvelopeProblem, id: Value, message: impl Into<String>) -> Self {
        let code = if problem == EnvelopeProblem::NotJson {
            PARSE_ERROR
        } else {
            INVALID_REQUEST
        };
        Self {
            problem,
            code,
            message: message.into(),
            id,
        }
    }

    /// What was wrong.
    pub fn problem(&self) -> EnvelopeProblem {
        self.problem
    }

    /// The JSON-RPC error code: [`PARSE_ERROR`] or [`INVALID_REQUEST`].
    pub fn code(&self) -> i64 {
        self.code
    }

    /// The error message (it names no client-supplied value).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id to answer with: the message's own once it could be read, else `null`.
    pub fn id(&self) -> &Value {
        &self.id
    }

    /// The JSON-RPC error response (send it with HTTP 400).
    pub fn to_response(&self) -> Value {
        error_response(self.id.clone(), self.code, self.message.clone())
    }
}

/// Reads `body` as one JSON-RPC message, as a gateway must before any policy:
///
/// 1. nesting deeper than [`MAX_DEPTH`]: `-32600`;
/// 2. not JSON (bytes that are not UTF-8 included): `-32700`; a batch, a non-object
///    or an object with a member given twice: `-32600` (all with id `null`);
/// 3. `jsonrpc` other than `"2.0"`, or a `method` that is not a string: `-32600`
///    with the message's id.
///
/// A message without `method` passes: it is a response to a server request. Whether
/// the id is one MCP allows ([`is_valid_id`]) is left to the caller.
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, EnvelopeError> {
    if too_deep(body, MAX_DEPTH) {
        return Err(EnvelopeError::new(
            EnvelopeProblem::TooDeep,
            Value::Null,
            format!("Invalid Request: JSON nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // JSON text is UTF-8 (RFC 8259, 8.1), so a body that is not is a parse error. Checked
    // once here, serde_json then reads a `str` and does not check each member again.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(not_json());
    };
    let message = match serde_json::from_str::<Message<'_>>(text) {
        Ok(m) if is_object => m,
        Ok(_) => return Err(malformed(body, None)),
        Err(e) => return Err(malformed(body, Some(&e))),
    };
    let id = id_value(message.id);
    if message.jsonrpc.and_then(json_str).as_deref() != Some(VERSION) {
        return Err(EnvelopeError::new(
            EnvelopeProblem::Version,
            id,
            "Invalid Request: jsonrpc must be \"2.0\"",
        ));
    }
    let method = match message.method.map(json_str) {
        None => None,
        Some(Some(m)) => Some(m),
        Some(None) => {
            return Err(EnvelopeError::new(
                EnvelopeProblem::Method,
                id,
                "Invalid Request: method must be a string",
            ));
        }
    };
    Ok(Parsed {
        message,
        id,
        method,
    })
}

/// The refusal of a body that is not JSON.
fn not_json() -> EnvelopeError {
    EnvelopeError::new(
        EnvelopeProblem::NotJson,
        Value::Null,
        "Parse error: the body is not JSON",
    )
}

/// The refusal of a body that is not one JSON-RPC object. A syntax error anywhere is a
/// parse error, even when a shape error (a duplicate member) came first.
fn malformed(body: &[u8], shape: Option<&serde_json::Error>) -> EnvelopeError {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return not_json();
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match (first, shape) {
        (Some(b'['), _) => EnvelopeError::new(
            EnvelopeProblem::Batch,
            Value::Null,
            "Invalid Request: batches are not supported; send one JSON-RPC message per request",
        ),
        (Some(b'{'), Some(e)) => EnvelopeError::new(
            EnvelopeProblem::Shape,
            Value::Null,
            format!("Invalid Request: {e}"),
        ),
        _ => EnvelopeError::new(
            EnvelopeProblem::NotObject,
            Value::Null,
            "Invalid Request: a JSON-RPC message must be an object",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(!too_deep(br#"{"a":[1,{"b":"[[[[[["}]}"#, 3));
        assert!(too_deep(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!too_deep(br#"{"a":"\"{{{{"}"#, 1));
    }

    #[test]
    fn depth_is_exact_on_both_sides_of_the_bracket_count() {
        // As many opening brackets as the limit: never too deep, whatever the order.
        assert!(!too_deep(b"[[[]]]", 3));
        assert!(!too_deep(b"[{[", 3));
        // One more: the scan decides, nesting against siblings.
        assert!(too_deep(b"[[[[]]]]", 3));
        assert!(!too_deep(b"[[[]],[]]", 3));
        assert!(!too_deep(br#"{"a":[],"b":{},"c":[],"d":{}}"#, 3));
        assert!(too_deep(&[b'['; 65], MAX_DEPTH));
        assert!(!too_deep(&[b'['; 64], MAX_DEPTH));
    }

    #[test]
    fn requests_notifications_and_responses_parse() {
        let p =
            parse(br#" {"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}"#)
                .unwrap();
        assert_eq!(p.id, "a");
        assert_eq!(p.method.as_deref(), Some("tools/call"));
        assert_eq!(p.message.params.unwrap().get(), r#"{"name":"x"}"#);
        assert!(!p.is_notification() && !p.is_response());

        let n = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(n.is_notification());
        assert_eq!(n.id, Value::Null);

        let r = parse(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#).unwrap();
        assert!(r.is_response());
        assert_eq!(r.message.result.unwrap().get(), "{}");

        // An escaped method name is decoded.
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/list"}"#).unwrap();
        assert_eq!(e.method.as_deref(), Some("tools/list"));
        // An explicit null id is present, and answered with null.
        let z = parse(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).unwrap();
        assert_eq!(z.message.id.unwrap().get(), "null");
        assert!(!z.is_notification());
    }

    #[test]
    fn bad_envelopes_are_refused_with_their_codes() {
        let cases: &[(&str, EnvelopeProblem, i64)] = &[
            ("not json", EnvelopeProblem::NotJson, PARSE_ERROR),
            ("", EnvelopeProblem::NotJson, PARSE_ERROR),
            ("{", EnvelopeProblem::NotJson, PARSE_ERROR),
            // A duplicate member before a syntax error is still a parse error.
            (
                r#"{"jsonrpc":"2.0","id":1,"id":1"#,
                EnvelopeProblem::NotJson,
                PARSE_ERROR,
            ),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                EnvelopeProblem::Batch,
                INVALID_REQUEST,
            ),
            ("[]", EnvelopeProblem::Batch, INVALID_REQUEST),
            ("42", EnvelopeProblem::NotObject, INVALID_REQUEST),
            (r#""ping""#, EnvelopeProblem::NotObject, INVALID_REQUEST),
            (
                r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
                EnvelopeProblem::Shape,
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                EnvelopeProblem::Version,
                INVALID_REQUEST,
            ),
            (
                r#"{"id":1,"method":"ping"}"#,
                EnvelopeProblem::Version,
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                EnvelopeProblem::Method,
                INVALID_REQUEST,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":null}"#,
                EnvelopeProblem::Method,
                INVALID_REQUEST,
            ),
        ];
        for (body, problem, code) in cases {
            let err = parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.problem(), *problem, "{body}");
            assert_eq!(err.code(), *code, "{body}");
            assert_eq!(http_status(err.code()), Some(400));
            let answer = err.to_response();
            assert_eq!(answer["jsonrpc"], "2.0");
            assert_eq!(answer["error"]["code"], *code);
            assert_eq!(answer["error"]["message"], err.message());
        }
        // Bytes that are not UTF-8, in a string or outside one: not JSON.
        for body in [
            &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}"[..],
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\xc3",
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.problem(), EnvelopeProblem::NotJson);
            assert_eq!(err.code(), PARSE_ERROR);
        }
        // Once the message could be read, the refusal carries its id.
        let err = parse(br#"{"jsonrpc":"1.0","id":9,"method":"ping"}"#).unwrap_err();
        assert_eq!(err.id(), &json!(9));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().problem(),
            EnvelopeProblem::TooDeep
        );
    }

    #[test]
    fn call_params_are_read_borrowed_and_strictly() {
        let raw: &RawValue = serde_json::from_str(
            r#"{"name":"service.list","arguments":{"a":1},"_meta":{"k":1},"requestState":"s","inputResponses":{}}"#,
        )
        .unwrap();
        let p = CallParams::read(Some(raw)).unwrap().unwrap();
        assert_eq!(p.name().as_deref(), Some("service.list"));
        assert_eq!(p.arguments.unwrap().get(), r#"{"a":1}"#);
        assert_eq!(p.meta.unwrap().get(), r#"{"k":1}"#);
        assert_eq!(json_str(p.request_state.unwrap()).as_deref(), Some("s"));
        assert!(p.input_responses.is_some());
        let twice: &RawValue = serde_json::from_str(r#"{"name":"a","name":"b"}"#).unwrap();
        assert!(CallParams::read(Some(twice)).is_err());
        let list: &RawValue = serde_json::from_str("[1]").unwrap();
        assert!(CallParams::read(Some(list)).unwrap().is_none());
        let numeric: &RawValue = serde_json::from_str(r#"{"name":7}"#).unwrap();
        assert_eq!(
            CallParams::read(Some(numeric)).unwrap().unwrap().name(),
            None
        );
    }

    #[test]
    fn ids_and_strings_are_read() {
        let raw = |s: &str| -> Box<RawValue> { RawValue::from_string(s.to_owned()).unwrap() };
        assert!(is_valid_id(&raw("\"x\"")));
        assert!(is_valid_id(&raw("-12")));
        for bad in ["null", "1.5", "1e3", "{}", "[]", "true"] {
            assert!(!is_valid_id(&raw(bad)), "{bad}");
        }
        assert_eq!(id_value(None), Value::Null);
        assert_eq!(id_value(Some(&raw("\"k\""))), json!("k"));
        assert_eq!(json_str(&raw(r#""a\"b""#)).as_deref(), Some("a\"b"));
        assert_eq!(json_str(&raw("1")), None);
        // Borrowed without escapes, decoded with them; never a non-string.
        assert!(matches!(
            json_str(&raw(r#""tools/call""#)),
            Some(Cow::Borrowed("tools/call"))
        ));
        assert!(matches!(json_str(&raw(r#""""#)), Some(Cow::Borrowed(""))));
        assert_eq!(json_str(&raw(r#""\u0041\\""#)).as_deref(), Some("A\\"));
        assert_eq!(json_str(&raw(r#""é""#)).as_deref(), Some("é"));
        assert_eq!(json_str(&raw("[\"a\"]")), None);
        assert_eq!(json_str(&raw("{\"a\":\"b\"}")), None);
        assert_eq!(json_str(&raw("null")), None);
    }

    #[test]
    fn responses_are_built() {
        assert_eq!(
            error_response(json!(1), METHOD_NOT_FOUND, "Method not found"),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}})
        );
        assert_eq!(
            error_response_with_data(
                Value::Null,
                UNSUPPORTED_PROTOCOL_VERSION,
                "x",
                json!({"a":1})
            )["error"]["data"],
            json!({"a":1})
        );
        assert_eq!(
            result_response(json!("a"), json!({})),
            json!({"jsonrpc":"2.0","id":"a","result":{}})
        );
        assert_eq!(http_status(METHOD_NOT_FOUND), Some(404));
        assert_eq!(http_status(INTERNAL_ERROR), None);
        assert_eq!(http_status(UPSTREAM_TIMEOUT), None);
    }
}
