//! Integration tests for the demo platform's MCP endpoint, called in-process with `oneshot`.

mod fuzz_regressions;
mod policy;
mod protocol;
mod python_sdk;
mod stateless;
mod tenants;
mod tools;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use keygate_demo::{Platform, router};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A response, decoded.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        assert_eq!(
            self.headers.get("content-type").unwrap(),
            "application/json",
            "responses with a body are JSON"
        );
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The JSON-RPC error code, asserting the response is an error.
    fn error_code(&self) -> i64 {
        let v = self.json();
        assert!(v.get("result").is_none(), "expected an error: {v}");
        v["error"]["code"].as_i64().unwrap()
    }
}

/// The replicas of `service` in a `service.list` result (null when it is not listed).
fn replicas_of(list: &Value, service: &str) -> Value {
    list["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .map_or(Value::Null, |s| s["replicas"].clone())
}

/// The `name` of each object in `list` (a JSON array).
fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect()
}

fn app() -> Router {
    router(Platform::new())
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn post_raw() -> axum::http::request::Builder {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

async fn post_body(app: &Router, body: &str) -> Reply {
    send(app, post_raw().body(Body::from(body.to_owned())).unwrap()).await
}

async fn rpc(app: &Router, method: &str, params: Value) -> Reply {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    post_body(app, &body.to_string()).await
}

/// Calls a tool (optionally as a user) and returns the `result` object.
async fn call_as(app: &Router, user: Option<&str>, tool: &str, arguments: Value) -> Value {
    let body = json!({
        "jsonrpc": "2.0",
        "id": "call-1",
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    });
    let mut request = post_raw();
    if let Some(user) = user {
        request = request.header("x-keygate-user", user);
    }
    let reply = send(app, request.body(Body::from(body.to_string())).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], "call-1");
    assert!(v.get("error").is_none(), "unexpected JSON-RPC error: {v}");
    let result = v["result"].clone();
    let content = result["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    assert!(content[0]["text"].is_string());
    assert!(result["structuredContent"].is_object());
    assert!(result["isError"].is_boolean());
    result
}

/// Calls a tool that must succeed; returns its structured content.
async fn call_ok(app: &Router, tool: &str, arguments: Value) -> Value {
    let result = call_as(app, None, tool, arguments).await;
    assert_eq!(result["isError"], false, "{tool} failed: {result}");
    // The text content is the structured content serialized, for clients that read only text.
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    result["structuredContent"].clone()
}

/// Calls a tool that must fail at tool level; returns (code, message).
async fn call_err(
    app: &Router,
    user: Option<&str>,
    tool: &str,
    arguments: Value,
) -> (String, String) {
    let result = call_as(app, user, tool, arguments).await;
    assert_eq!(result["isError"], true, "{tool} should fail: {result}");
    let message = result["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(result["structuredContent"]["message"], message);
    let code = result["structuredContent"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    (code, message)
}
