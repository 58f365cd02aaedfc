//! The demo platform's MCP handler (`keygate_demo::router`) on arbitrary bodies.
//!
//! The gateway's own JSON-RPC parsing (keygate-server) has no public parse function
//! yet; the demo platform's handler is the JSON-RPC endpoint that exists, and the one
//! the gateway forwards to with `--demo`.
//!
//! Input: the bytes, split at NUL (never valid in JSON text), are the bodies of up to
//! eight `POST /mcp` requests sent in order to one fresh platform, so that sequences
//! (create, then search; delete, then status) are explored. Each request carries
//! `Accept: application/json, text/event-stream`, `Content-Type: application/json` and
//! `X-Keygate-User: alice`.
//!
//! Properties, for every request:
//! - the handler never panics and never answers 5xx;
//! - `202 Accepted` has an empty body and answers only a notification (an object with
//!   `jsonrpc` "2.0", a `method` and no `id`) or a response (no `method`, an `id`, and a
//!   `result` or an `error`);
//! - every other answer is `application/json` holding one JSON-RPC 2.0 response object:
//!   `jsonrpc` "2.0", an `id` that is a string, an integer or null, and exactly one of
//!   `result` and `error`, where `error` has an integer `code` and a string `message`;
//! - a body that is not JSON gets a parse error (-32700) with a null id;
//! - a `200 OK` answers a request object with `jsonrpc` "2.0" and a string `method`,
//!   and echoes its `id` exactly; a successful `tools/call` result has a text content
//!   and a `structuredContent` object.

#![no_main]

mod support;

use std::sync::LazyLock;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tower::ServiceExt;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(support::runtime);

fuzz_target!(|data: &[u8]| {
    let app = keygate_demo::router(keygate_demo::Platform::new());
    for body in data.split(|b| *b == 0).take(8) {
        let req = Request::post("/mcp")
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header(keygate_demo::USER_HEADER, "alice")
            .body(Body::from(body.to_vec()))
            .expect("request");
        let (status, content_type, answer) = RUNTIME.block_on(async {
            let res = app.clone().oneshot(req).await.expect("infallible");
            let status = res.status();
            let content_type = res
                .headers()
                .get("content-type")
                .map(|v| v.as_bytes().to_vec());
            let answer = res.into_body().collect().await.expect("body").to_bytes();
            (status, content_type, answer)
        });
        check(body, status, content_type.as_deref(), &answer);
    }
});

fn check(body: &[u8], status: StatusCode, content_type: Option<&[u8]>, answer: &[u8]) {
    assert!(!status.is_server_error(), "answered {status}");
    let request: Option<Value> = serde_json::from_slice(body).ok();

    if status == StatusCode::ACCEPTED {
        assert!(answer.is_empty(), "202 with a body");
        let Some(obj) = request_object(body, request.as_ref(), status) else {
            return;
        };
        let notification = obj.contains_key("method") && !obj.contains_key("id");
        let response = !obj.contains_key("method")
            && obj.contains_key("id")
            && (obj.contains_key("result") || obj.contains_key("error"));
        assert!(notification || response, "202 for a request: {obj:?}");
        return;
    }

    assert_eq!(content_type, Some(&b"application/json"[..]));
    let response: Value = serde_json::from_slice(answer).expect("answer is JSON");
    let obj = response.as_object().expect("answer is an object");
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")));
    let id = obj.get("id").expect("answer has an id member");
    assert!(
        id.is_null() || id.is_string() || id.is_i64() || id.is_u64() || is_big_integer(id),
        "id {id}"
    );
    assert_eq!(
        obj.contains_key("result"),
        !obj.contains_key("error"),
        "exactly one of result and error: {response}"
    );
    if let Some(error) = obj.get("error") {
        assert!(error.get("code").is_some_and(Value::is_i64), "{error}");
        assert!(
            error.get("message").is_some_and(Value::is_string),
            "{error}"
        );
    }

    if !is_json(body) {
        assert_eq!(error_code(&response), Some(-32700), "{response}");
        assert!(id.is_null());
    }

    if status == StatusCode::OK {
        let Some(req) = request_object(body, request.as_ref(), status) else {
            return;
        };
        let method = req.get("method").and_then(Value::as_str).expect("method");
        assert_eq!(req.get("id"), Some(id), "id not echoed");
        if method == "tools/call"
            && let Some(result) = obj.get("result")
        {
            let text = &result["content"][0];
            assert_eq!(text["type"], "text", "{result}");
            assert!(text["text"].is_string(), "{result}");
            assert!(result["structuredContent"].is_object(), "{result}");
            assert!(result["isError"].is_boolean(), "{result}");
        }
    }
}

/// The JSON-RPC 2.0 object that `body` (parsed: `request`) holds, as an answer
/// `status` requires; `None` for JSON that `Value` cannot hold (a number beyond f64),
/// where there is nothing more to check.
fn request_object<'a>(
    body: &[u8],
    request: Option<&'a Value>,
    status: StatusCode,
) -> Option<&'a Map<String, Value>> {
    let status = status.as_u16();
    let Some(request) = request else {
        assert!(is_json(body), "{status} for a body that is not JSON");
        return None;
    };
    let obj = request
        .as_object()
        .unwrap_or_else(|| panic!("{status} for a body that is not a JSON object"));
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")));
    Some(obj)
}

/// An integer id too large for `i64`/`u64` parses as a float in `Value`; it is still
/// an integer in the text.
fn is_big_integer(id: &Value) -> bool {
    id.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn error_code(response: &Value) -> Option<i64> {
    response.get("error")?.get("code")?.as_i64()
}
