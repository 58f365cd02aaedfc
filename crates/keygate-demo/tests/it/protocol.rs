//! The MCP Streamable HTTP and JSON-RPC 2.0 surface.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keygate_demo::{LATEST_PROTOCOL_VERSION, TOOL_NAMES};
use serde_json::json;

use crate::{app, post_body, post_raw, rpc, send};

fn init_params(version: &str) -> serde_json::Value {
    json!({
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    })
}

#[tokio::test]
async fn initialize_negotiates_the_version_and_issues_a_session() {
    let app = app();
    let mut sessions = BTreeSet::new();
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
        ("2024-11-05", "2024-11-05"),
        ("1999-01-01", LATEST_PROTOCOL_VERSION),
    ] {
        let reply = rpc(&app, "initialize", init_params(asked)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let v = reply.json();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 7);
        let result = &v["result"];
        assert_eq!(result["protocolVersion"], answered, "asked for {asked}");
        assert_eq!(result["capabilities"], json!({"tools": {}}));
        assert_eq!(result["serverInfo"]["name"], "keygate-demo");
        assert!(result["serverInfo"]["version"].is_string());

        let session = reply
            .headers
            .get("mcp-session-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(session.len(), 32, "128 bits, hex");
        assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(sessions.insert(session.to_owned()), "session ids are fresh");
    }
    assert_eq!(LATEST_PROTOCOL_VERSION, "2025-11-25");
}

#[tokio::test]
async fn initialize_without_a_version_is_invalid_params() {
    let app = app();
    let reply = rpc(&app, "initialize", json!(["2025-06-18"])).await;
    assert_eq!(reply.error_code(), -32602);
    assert_eq!(
        rpc(&app, "initialize", json!({})).await.error_code(),
        -32602
    );
    let reply = post_body(&app, r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#).await;
    assert_eq!(reply.error_code(), -32602);
    assert!(reply.headers.get("mcp-session-id").is_none());
}

#[tokio::test]
async fn notifications_and_responses_are_accepted_without_a_body() {
    let app = app();
    for body in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api"}}}"#,
        r#"{"jsonrpc":"2.0","id":"s-1","result":{}}"#,
    ] {
        let reply = post_body(&app, body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{body}");
        assert!(reply.body.is_empty());
    }
    // A tools/call sent as a notification is not executed.
    let status = crate::call_ok(&app, "service.status", json!({"service": "api"})).await;
    assert_eq!(status["service"], "api");
}

#[tokio::test]
async fn ping_answers_an_empty_result() {
    let reply = rpc(&app(), "ping", json!({})).await;
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": 7, "result": {}})
    );
    let reply = post_body(&app(), r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#).await;
    assert_eq!(
        reply.json(),
        json!({"jsonrpc": "2.0", "id": "p", "result": {}})
    );
}

#[tokio::test]
async fn tools_list_lists_every_tool_with_an_input_schema() {
    let reply = rpc(&app(), "tools/list", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    let tools = v["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, TOOL_NAMES);
    for tool in tools {
        let name = tool["name"].as_str().unwrap();
        assert!(!tool["description"].as_str().unwrap().is_empty(), "{name}");
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{name}");
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties["project"]["type"], "string", "{name}");
        for required in schema["required"].as_array().unwrap() {
            let required = required.as_str().unwrap();
            assert!(properties.contains_key(required), "{name}: {required}");
            assert_ne!(required, "project", "{name}: project is optional");
        }
        let destructive = tool["annotations"]["destructiveHint"].as_bool().unwrap();
        assert_eq!(
            destructive,
            name == "service.delete" || name == "service.replace",
            "{name}"
        );
    }
    let scale = tools.iter().find(|t| t["name"] == "service.scale").unwrap();
    assert_eq!(
        scale["inputSchema"]["required"],
        json!(["service", "replicas"])
    );
    assert_eq!(
        scale["inputSchema"]["properties"]["replicas"]["type"],
        "integer"
    );
}

#[tokio::test]
async fn unknown_methods_tools_and_bad_params_are_json_rpc_errors() {
    let app = app();
    let reply = rpc(&app, "resources/list", json!({})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.error_code(), -32601);
    assert_eq!(reply.json()["id"], 7);

    for params in [
        json!({"name": "service.explode", "arguments": {}}),
        json!({"arguments": {}}),
        json!(["service.status", {"service": "worker"}]),
        json!({"name": 3}),
        json!({"name": "service.status"}),
        json!({"name": "service.status", "arguments": {}}),
        json!({"name": "service.status", "arguments": {"service": 3}}),
        json!({"name": "service.status", "arguments": ["worker"]}),
        json!({"name": "service.scale", "arguments": {"service": "api", "replicas": -1}}),
        json!({"name": "service.scale", "arguments": {"service": "api", "replicas": "3"}}),
        json!({"name": "service.scale", "arguments": {"service": "api", "replicas": 101}}),
        json!({"name": "service.env.set", "arguments": {"service": "api", "key": "1X", "value": "v"}}),
        json!({"name": "customers.search", "arguments": {}}),
        json!({"name": "customers.search", "arguments": {"q": "a", "project": 1}}),
    ] {
        let reply = rpc(&app, "tools/call", params.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{params}");
        assert_eq!(reply.error_code(), -32602, "{params}");
        assert_eq!(reply.json()["id"], 7);
    }
    let reply = post_body(&app, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#).await;
    assert_eq!(reply.error_code(), -32602);
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let app = app();
    for body in ["{", "{\"jsonrpc\": \"2.0\",", "not json", "", "[1,"] {
        let reply = post_body(&app, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.error_code(), -32700, "{body:?}");
        assert_eq!(reply.json()["id"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn invalid_requests_and_batches_are_rejected() {
    let app = app();
    for body in [
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        "[]",
        "42",
        r#""ping""#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
    ] {
        let reply = post_body(&app, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.error_code(), -32600, "{body}");
    }
}

#[tokio::test]
async fn accept_is_checked_loosely() {
    let app = app();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for accept in [
        None,
        Some("application/json"),
        Some("text/event-stream"),
        Some("*/*"),
        Some("text/html, application/*;q=0.5"),
    ] {
        let mut request = Request::post("/mcp").header("content-type", "application/json");
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let reply = send(&app, request.body(Body::from(ping)).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept:?}");
        assert_eq!(reply.json()["result"], json!({}));
    }
    for accept in ["text/html", "application/json;q=0, text/plain"] {
        let request = Request::post("/mcp")
            .header("accept", accept)
            .body(Body::from(ping))
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
    }
}

#[tokio::test]
async fn a_non_json_body_type_is_refused_and_a_missing_one_tolerated() {
    let app = app();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = Request::post("/mcp")
        .header("content-type", "text/plain")
        .body(Body::from(ping))
        .unwrap();
    assert_eq!(
        send(&app, request).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let request = Request::post("/mcp").body(Body::from(ping)).unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::OK);
    let request = Request::post("/mcp")
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(ping))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_protocol_version_header_must_be_supported() {
    let app = app();
    for (version, status) in [
        ("2025-03-26", StatusCode::OK),
        ("2030-01-01", StatusCode::BAD_REQUEST),
    ] {
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let request = post_raw()
            .header("mcp-protocol-version", version)
            .body(Body::from(ping))
            .unwrap();
        assert_eq!(send(&app, request).await.status, status, "{version}");
    }
}

#[tokio::test]
async fn get_and_delete_are_not_allowed() {
    let app = app();
    for method in ["GET", "DELETE"] {
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("accept", "text/event-stream")
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.headers.get("allow").unwrap(), "POST");
    }
    let request = Request::post("/elsewhere").body(Body::empty()).unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::NOT_FOUND);
}
