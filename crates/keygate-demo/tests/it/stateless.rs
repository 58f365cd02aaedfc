//! The stateless revision, 2026-07-28: `server/discover`, `_meta` on every request, no
//! `initialize` and no session.

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use keygate_demo::{Platform, TENANT_HEADER, TOOL_NAMES, router};
use serde_json::{Value, json};

use crate::{Reply, app, names, post_raw, replicas_of, send};

const VERSION: &str = "2026-07-28";

/// The `_meta` envelope a 2026-07-28 client sends (what the Python SDK 2.3 sends).
fn envelope() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"},
    })
}

/// Posts `method` with `params` (to which the envelope is added unless `meta` is
/// given) and the routing headers a 2026-07-28 client sends, plus `extra`.
async fn post(
    app: &Router,
    method: &str,
    mut params: Value,
    meta: Option<Value>,
    extra: &[(&str, &str)],
) -> Reply {
    params["_meta"] = meta.unwrap_or_else(envelope);
    let body = json!({"jsonrpc": "2.0", "id": 11, "method": method, "params": params});
    let mut request = post_raw()
        .header("mcp-protocol-version", VERSION)
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        request = request.header("mcp-name", name);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body.to_string())).unwrap()).await
}

/// Calls `tool` with `arguments` and the envelope, plus the `extra` headers.
async fn call_tool(app: &Router, tool: &str, arguments: Value, extra: &[(&str, &str)]) -> Reply {
    let params = json!({"name": tool, "arguments": arguments});
    post(app, "tools/call", params, None, extra).await
}

/// An answer without a session: 200 and no `Mcp-Session-Id`.
#[track_caller]
fn assert_sessionless(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("mcp-session-id").is_none());
}

#[tokio::test]
async fn discover_names_the_stateless_revision_without_a_session() {
    let app = app();
    let reply = post(&app, "server/discover", json!({}), None, &[]).await;
    assert_sessionless(&reply);
    let v = reply.json();
    assert_eq!(v["id"], 11);
    let result = &v["result"];
    assert_eq!(result["supportedVersions"], json!([VERSION]));
    assert_eq!(result["capabilities"], json!({"tools": {}}));
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["ttlMs"], 0);
    assert_eq!(result["cacheScope"], "private");
    assert!(result["instructions"].as_str().unwrap().contains("shop"));
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "keygate-demo"
    );
    // Reached without the version header too (the body's envelope decides).
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": envelope()}});
    let reply = send(&app, post_raw().body(Body::from(body.to_string())).unwrap()).await;
    assert_eq!(
        reply.json()["result"]["supportedVersions"],
        json!([VERSION])
    );
}

#[tokio::test]
async fn tools_are_listed_and_called_without_initialize() {
    let app = app();
    let reply = post(&app, "tools/list", json!({}), None, &[]).await;
    assert_sessionless(&reply);
    let result = reply.json()["result"].clone();
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["cacheScope"], "private");
    let names = names(&result["tools"]);
    assert_eq!(names, TOOL_NAMES);

    let reply = call_tool(&app, "service.status", json!({"service": "worker"}), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let result = reply.json()["result"].clone();
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["isError"], false);
    assert_eq!(result["structuredContent"]["service"], "worker");
}

/// The replica count of `service` as `service.list` reports it to `tenant`.
async fn replicas(app: &Router, tenant: &str, service: &str) -> Value {
    let reply = call_tool(app, "service.list", json!({}), &[(TENANT_HEADER, tenant)]).await;
    let v = reply.json();
    assert!(
        v["result"]["structuredContent"]["services"].is_array(),
        "no services: {v}"
    );
    replicas_of(&v["result"]["structuredContent"], service)
}

#[tokio::test]
async fn each_tenant_keeps_its_own_data_set_statelessly() {
    let platform = Platform::new();
    let app = router(platform.clone());
    let before = replicas(&app, "tn_b", "api").await;
    let reply = call_tool(
        &app,
        "service.scale",
        json!({"service": "api", "replicas": 7}),
        &[(TENANT_HEADER, "tn_a")],
    )
    .await;
    assert_eq!(
        reply.json()["result"]["isError"],
        false,
        "{:?}",
        reply.json()
    );
    assert_eq!(replicas(&app, "tn_a", "api").await, 7);
    assert_eq!(replicas(&app, "tn_b", "api").await, before);
    assert_ne!(before, 7);
    // A tenant's own delete stays its own.
    let reply = call_tool(
        &app,
        "service.delete",
        json!({"service": "web"}),
        &[(TENANT_HEADER, "tn_a")],
    )
    .await;
    assert_eq!(reply.json()["result"]["isError"], false);
    assert!(!platform.has_tenant_service("tn_a", "web"));
    assert!(platform.has_tenant_service("tn_b", "web"));
}

#[tokio::test]
async fn a_bad_envelope_is_refused_as_the_python_sdk_refuses_it() {
    let app = app();
    // No _meta at all, and one without the capabilities.
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let request = post_raw()
        .header("mcp-protocol-version", VERSION)
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), -32602);
    assert_eq!(reply.json()["id"], 3);
    let partial = json!({"io.modelcontextprotocol/protocolVersion": VERSION});
    let reply = post(&app, "tools/list", json!({}), Some(partial), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), -32602);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("io.modelcontextprotocol/clientCapabilities")
    );
    // server/discover needs the envelope too.
    let body = json!({"jsonrpc": "2.0", "id": 4, "method": "server/discover"});
    let reply = send(&app, post_raw().body(Body::from(body.to_string())).unwrap()).await;
    assert_eq!(reply.error_code(), -32602);
}

#[tokio::test]
async fn an_unsupported_version_names_the_supported_ones() {
    let app = app();
    let mut meta = envelope();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2027-01-01");
    let body =
        json!({"jsonrpc": "2.0", "id": 5, "method": "server/discover", "params": {"_meta": meta}});
    let request = post_raw()
        .header("mcp-protocol-version", "2027-01-01")
        .header("mcp-method", "server/discover")
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let v = reply.json();
    assert_eq!(v["id"], 5);
    assert_eq!(v["error"]["code"], -32022);
    assert_eq!(
        v["error"]["data"],
        json!({"supported": [VERSION], "requested": "2027-01-01"})
    );
}

/// Posts a `service.list` call with exactly `headers` and envelope version `version`.
async fn call_with_headers(app: &Router, version: &str, headers: &[(&str, &str)]) -> Reply {
    let mut meta = envelope();
    meta["io.modelcontextprotocol/protocolVersion"] = json!(version);
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "service.list", "arguments": {}, "_meta": meta}});
    let mut request = post_raw();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body.to_string())).unwrap()).await
}

#[tokio::test]
async fn routing_headers_must_match_the_body() {
    let app = app();
    let v = ("mcp-protocol-version", VERSION);
    let method = ("mcp-method", "tools/call");
    let name = ("mcp-name", "service.list");
    let ok = call_with_headers(&app, VERSION, &[v, method, name]).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["result"]["isError"], false);
    // Absent routing headers are not required.
    assert_eq!(
        call_with_headers(&app, VERSION, &[]).await.status,
        StatusCode::OK
    );
    for headers in [
        vec![v, ("mcp-method", "tools/list"), name],
        vec![v, method, ("mcp-name", "service.delete")],
        vec![v, v, method, name],
        vec![v, method, method],
        vec![("mcp-method", "tools/list")],
    ] {
        let reply = call_with_headers(&app, VERSION, &headers).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(reply.error_code(), -32020, "{headers:?}");
        assert_eq!(reply.json()["id"], 9);
    }
    // The version header disagreeing with the envelope is a mismatch, not an
    // unsupported version.
    let reply = call_with_headers(&app, "2027-01-01", &[v, method, name]).await;
    assert_eq!(reply.error_code(), -32020);
    // A name header in the encoded form is not compared.
    let encoded = ("mcp-name", "=?base64?c2VydmljZS5saXN0?=");
    let reply = call_with_headers(&app, VERSION, &[v, method, encoded]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn the_stateful_lifecycle_is_not_part_of_2026() {
    let app = app();
    for method in ["initialize", "ping", "resources/list"] {
        let reply = post(&app, method, json!({}), None, &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(reply.error_code(), -32601, "{method}");
    }
    // Errors of a tool call carry their status.
    let reply = call_tool(&app, "nope", json!({}), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), -32602);
    // Notifications are accepted; responses are not sent by 2026-07-28 clients.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": envelope()}});
    let request = post_raw()
        .header("mcp-protocol-version", VERSION)
        .body(Body::from(note.to_string()))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::ACCEPTED);
    let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
    let request = post_raw()
        .header("mcp-protocol-version", VERSION)
        .body(Body::from(answer.to_string()))
        .unwrap();
    assert_eq!(send(&app, request).await.error_code(), -32600);
}

#[tokio::test]
async fn stateful_requests_are_answered_as_before() {
    let app = app();
    // A 2025 header routes to the session era even when the body has an envelope.
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": envelope()}});
    let request = post_raw()
        .header("mcp-protocol-version", "2025-11-25")
        .body(Body::from(body.to_string()))
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["result"], json!({}));
    // And a 2025 tool call has no resultType.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "service.list", "arguments": {}}});
    let reply = send(&app, post_raw().body(Body::from(body.to_string())).unwrap()).await;
    assert!(reply.json()["result"].get("resultType").is_none());
}
