//! Input limits, each with a clear answer: body size on every route that reads a body,
//! header size (on a real loopback listener: the limit is hyper's), JSON depth on the
//! MCP gateway, and the request timeout against a slow upstream and a slow client.

use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt;
use http::{Method, Request, StatusCode};
use keygate_demo::Platform;
use keygate_server::{ADMIN_BODY_LIMIT, App, Config, MAX_JSON_DEPTH, MCP_BODY_LIMIT, Upstream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Harness, demo, demo_with};

/// A JSON body of exactly `len` bytes: `{"name":"xxxx…"}`.
fn body_of(len: usize) -> String {
    let overhead = r#"{"name":""}"#.len();
    format!(r#"{{"name":"{}"}}"#, "x".repeat(len - overhead))
}

async fn raw_post(h: &Harness, path: &str, body: String) -> crate::util::Reply {
    let req = Request::post(path)
        .header("authorization", format!("Bearer {}", h.owner))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Body::from(body))
        .unwrap();
    h.send(req).await
}

#[tokio::test]
async fn every_body_reading_route_refuses_one_byte_over_its_limit() {
    let h = demo().await;
    let (_, id) = h.reader_key("k").await;
    let admin = [
        "/api/v1/keys".to_owned(),
        "/api/v1/projects".to_owned(),
        format!("/api/v1/keys/{id}/rotate"),
        format!("/api/v1/keys/{id}/revoke"),
    ];
    for path in &admin {
        let r = raw_post(&h, path, body_of(ADMIN_BODY_LIMIT + 1)).await;
        let reads_body = path.ends_with("keys") || path.ends_with("projects");
        if reads_body {
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {}", r.raw);
            assert_eq!(r.body["error"], "payload_too_large", "{path}");
            assert_eq!(
                r.body["message"],
                format!("the request body is larger than {ADMIN_BODY_LIMIT} bytes")
            );
            assert_eq!(r.headers["content-type"], "application/json");
            // At the limit the body is read (and judged on its content instead).
            let r = raw_post(&h, path, body_of(ADMIN_BODY_LIMIT)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.raw);
        } else {
            // Revoke and rotate take no body: whatever is sent is never buffered.
            assert!(r.status.is_success(), "{path}: {} {}", r.status, r.raw);
        }
    }

    let r = raw_post(&h, "/api/mcp", body_of(MCP_BODY_LIMIT + 1)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A JSON-RPC error, as MCP clients read one.
    assert_eq!(
        r.body,
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": format!("Request body too large: this gateway takes MCP messages of at most {MCP_BODY_LIMIT} bytes")}})
    );
    // A body of the whole limit, valid JSON-RPC, is accepted.
    let pad = "x".repeat(MCP_BODY_LIMIT - 200);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{"pad": pad}}}).to_string();
    assert!(body.len() <= MCP_BODY_LIMIT);
    let r = raw_post(&h, "/api/mcp", body).await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.body["result"].is_object() || r.body["error"].is_object(),
        "{}",
        &r.raw[..r.raw.len().min(300)]
    );
}

#[tokio::test]
async fn json_nesting_beyond_the_limit_is_a_json_rpc_error() {
    let h = demo().await;
    let nest = |depth: usize| {
        // The message object is level 1, params 2, arguments 3.
        let inner = format!("{}1{}", "[".repeat(depth - 3), "]".repeat(depth - 3));
        format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"service.list","arguments":{{"x":{inner}}}}}}}"#
        )
    };
    let r = raw_post(&h, "/api/mcp", nest(MAX_JSON_DEPTH + 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert_eq!(r.body["jsonrpc"], "2.0");
    assert_eq!(r.body["error"]["code"], -32600);
    assert_eq!(
        r.body["error"]["message"],
        format!("Invalid Request: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    );
    // Exactly at the limit the message is parsed and goes on to the policy and upstream.
    let r = raw_post(&h, "/api/mcp", nest(MAX_JSON_DEPTH)).await;
    assert_ne!(r.body["error"]["code"], -32600, "{}", r.raw);
    assert_ne!(r.body["error"]["code"], -32700, "{}", r.raw);

    // A body that is nothing but brackets, deep enough to overflow a recursive parser.
    let r = raw_post(&h, "/api/mcp", "[".repeat(500_000)).await;
    assert_eq!(r.body["error"]["code"], -32600);

    // Admin bodies go through serde's own recursion limit: a 400, not a crash.
    let deep = format!(r#"{{"name":{}1{}}}"#, "[".repeat(7_000), "]".repeat(7_000));
    let r = raw_post(&h, "/api/v1/projects", deep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert_eq!(r.body["error"], "invalid_request");
}

/// A loopback upstream that accepts connections and never answers.
async fn silent_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}/mcp")
}

async fn gateway_with_timeouts(upstream: String, request: Duration, up: Duration) -> Harness {
    let edit = |c: &mut Config| {
        c.request_timeout = request;
        c.upstream_timeout = up;
    };
    let gates = std::sync::Arc::new(keygate_gates::MemoryGateStore::new());
    crate::util::http_gateway(upstream, keygate_demo::POLICY_TOML, edit, gates).await
}

#[tokio::test]
async fn a_silent_upstream_is_bounded_by_the_upstream_timeout_alone() {
    let upstream = silent_upstream().await;
    // The request timeout bounds the client sending its MCP request, not the wait for
    // the upstream: a tool answered in one JSON body may take longer than it.
    let h = gateway_with_timeouts(
        upstream,
        Duration::from_millis(300),
        Duration::from_millis(1500),
    )
    .await;
    let r = h.tool(&h.owner, None, "service.list", json!({})).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.raw);
    assert_eq!(r.body["jsonrpc"], "2.0");
    assert_eq!(r.body["id"], 1);
    assert_eq!(r.body["error"]["code"], -32002);
    // Other routes keep the request timeout's generic answer.
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_504() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.request_timeout = Duration::from_millis(300);
    let h = demo_with(config).await;
    for path in ["/api/mcp", "/api/v1/projects"] {
        let first: Result<Vec<u8>, std::io::Error> = Ok(b"{\"jsonrpc\":".to_vec());
        let stream = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {}", h.owner))
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{path}: {}", r.raw);
        assert_eq!(r.body, json!({"error": "timeout"}));
    }
}

/// Serves the demo app on a real loopback listener and sends `request` as raw bytes;
/// returns the status line and the body.
async fn over_tcp(request: Vec<u8>) -> (String, String) {
    let app = App::with_store(
        Config::new(Upstream::in_process(Platform::new())),
        std::sync::Arc::new(keygate_keys::MemoryStore::new()),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = sock.write_all(&request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out)).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn huge_or_too_many_headers_are_refused_before_the_app() {
    // One header of 1 MiB.
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    req.extend(b"\r\nConnection: close\r\n\r\n");
    let (status, body) = over_tcp(req).await;
    assert_eq!(
        status, "HTTP/1.1 431 Request Header Fields Too Large",
        "{body}"
    );

    // 200 small headers.
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        req.extend(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend(b"Connection: close\r\n\r\n");
    let (status, _) = over_tcp(req).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");

    // An Authorization header over 4 KiB reaches the app and is a 400 invalid_request.
    let req = format!(
        "GET /api/v1/token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        "a".repeat(8 * 1024)
    );
    let (status, body) = over_tcp(req.into_bytes()).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let body: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    assert_eq!(body, json!({"error": "invalid_request"}));

    // A well-formed request on the same server setup is served (the refusals above are
    // about the headers, not the set-up).
    let (status, _) =
        over_tcp(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}
