//! DNS-rebinding protection and CORS on `/api/*`, and the configurable MCP body limit.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use keygate_demo::Platform;
use keygate_server::{Config, Upstream};
use serde_json::json;

use crate::util::{Harness, Reply, demo_with, error_message};

const LISTED: &str = "https://app.example.com";

async fn gateway() -> Harness {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.public_url = Some("https://keys.example.com".to_owned());
    config.allowed_origins = vec![LISTED.to_owned()];
    demo_with(config).await
}

async fn with_origin(
    h: &Harness,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    key: Option<&str>,
) -> Reply {
    let mut req = Request::builder().method(method.clone()).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let body = if method == Method::POST {
        req = req
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        Body::from(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}).to_string())
    } else {
        Body::empty()
    };
    h.send(req.body(body).unwrap()).await
}

#[tokio::test]
async fn foreign_origins_are_refused_before_authentication() {
    let h = gateway().await;
    // The conformance suite's rebinding probe: a foreign name in Host and Origin.
    let evil = [
        ("host", "evil.example.com"),
        ("origin", "http://evil.example.com"),
    ];
    for key in [Some(h.owner.as_str()), None, Some("kg_uk_forged")] {
        let r = with_origin(&h, Method::POST, "/api/mcp", &evil, key).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
        assert_eq!(r.raw, r#"{"error":"forbidden_origin"}"#);
    }
    let r = with_origin(
        &h,
        Method::GET,
        "/api/v1/token",
        &[("origin", "null")],
        Some(&h.owner),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    // A foreign preflight is refused too, not answered.
    let r = with_origin(&h, Method::OPTIONS, "/api/mcp", &evil, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    // Pages outside /api/* are not concerned.
    let r = with_origin(&h, Method::GET, "/healthz", &evil, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn own_origins_and_requests_without_origin_are_served() {
    let h = gateway().await;
    for headers in [
        vec![],
        vec![
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ],
        vec![
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ],
        vec![
            ("host", "internal:8080"),
            ("origin", "https://keys.example.com"),
        ],
    ] {
        let r = with_origin(&h, Method::POST, "/api/mcp", &headers, Some(&h.owner)).await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}: {}", r.raw);
        assert!(r.body["result"]["tools"].is_array(), "{}", r.raw);
        assert!(!r.headers.contains_key("access-control-allow-origin"));
    }
}

#[tokio::test]
async fn listed_origins_get_preflight_and_cors_answers() {
    let h = gateway().await;
    let r = with_origin(
        &h,
        Method::OPTIONS,
        "/api/mcp",
        &[
            ("origin", LISTED),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, mcp-param-region",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let header = |name: &str| r.headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("access-control-allow-origin"), LISTED);
    assert_eq!(header("access-control-allow-methods"), "GET, POST, DELETE");
    let allowed = header("access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "mcp-param-region",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    let exposed = header("access-control-expose-headers");
    assert!(exposed.contains("Mcp-Session-Id") && exposed.contains("WWW-Authenticate"));
    assert!(r.headers.contains_key("access-control-max-age"));
    assert_eq!(header("vary"), "Origin");

    let r = with_origin(
        &h,
        Method::POST,
        "/api/mcp",
        &[("origin", LISTED)],
        Some(&h.owner),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.headers["access-control-allow-origin"], LISTED);
    assert!(
        r.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin"))
    );
    // An own origin's preflight is not a CORS case: it goes on to authentication.
    let r = with_origin(
        &h,
        Method::OPTIONS,
        "/api/mcp",
        &[("host", "127.0.0.1:1"), ("origin", "http://127.0.0.1:1")],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_body_limit_is_configurable_and_answered_as_json_rpc() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.max_body = 2048;
    let h = demo_with(config).await;
    let body = |pad: usize| json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{"pad": "x".repeat(pad)}}});
    let r = h.mcp(&h.owner, None, body(3000)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.raw);
    assert_eq!(r.body["jsonrpc"], "2.0");
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(
        error_message(&r).contains("at most 2048 bytes"),
        "{}",
        r.raw
    );
    let r = h.mcp(&h.owner, None, body(1000)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // The default takes a 2 MiB call.
    let h = crate::util::demo().await;
    let r = h.mcp(&h.owner, None, body(2 * 1024 * 1024)).await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_default_rates_let_one_busy_agent_run_back_to_back() {
    let h = crate::util::demo().await;
    let key = h.stored_tenant_key(&["services:read"]).await;
    for i in 0..200 {
        let r = h.tool(&key, None, "service.list", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "call {i}: {}", r.raw);
    }
}
