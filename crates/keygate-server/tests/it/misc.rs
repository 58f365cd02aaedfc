//! Settings page, health, metrics, body limits, unknown routes.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use keygate_server::{ADMIN_BODY_LIMIT, CSP, MCP_BODY_LIMIT};
use serde_json::json;

use crate::util::demo;

#[tokio::test]
async fn settings_page_and_assets_have_security_headers() {
    let h = demo().await;
    for (path, ct) in [
        ("/settings/api", "text/html"),
        ("/settings/api/app.js", "text/javascript"),
        ("/settings/api/app.css", "text/css"),
        ("/approvals/ap_1", "text/html"),
    ] {
        let r = h.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let header = |name: &str| r.headers[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(ct), "{path}");
        assert_eq!(header("content-security-policy"), CSP);
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("cache-control"), "no-store");
    }
    let html = h.call(Method::GET, "/settings/api", None, None).await.raw;
    assert!(html.contains("/settings/api/app.js"));
    // The approval page is the settings page; its script opens the approval in the path.
    let approval = h.call(Method::GET, "/approvals/ap_1", None, None).await.raw;
    assert_eq!(approval, html);
    assert!(html.contains("approvals-card"));
    assert!(CSP.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let h = demo().await;
    let r = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));

    h.get("/api/v1/token", &h.owner).await;
    h.get("/api/v1/token", "kg_uk_bogus").await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    for needle in [
        "keygate_requests_total{route=\"token\",outcome=\"ok\"} 1",
        "keygate_requests_total{route=\"token\",outcome=\"unauthorized\"} 1",
        "keygate_verify_duration_seconds_count",
    ] {
        assert!(r.raw.contains(needle), "{needle} missing from:\n{}", r.raw);
    }
    assert!(!r.raw.contains(&h.owner));
    assert!(!r.raw.contains("kg_uk_"));

    let r = h.call(Method::GET, "/nope", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.raw, r#"{"error":"not_found"}"#);
}

#[tokio::test]
async fn bodies_over_the_limits_get_413_json() {
    let h = demo().await;
    let big = "x".repeat(ADMIN_BODY_LIMIT + 1);
    let r = h
        .post("/api/v1/projects", &h.owner, json!({ "name": big }))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.raw);
    assert_eq!(r.body["error"], "payload_too_large");

    let big = "x".repeat(MCP_BODY_LIMIT + 1);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"customers.search","arguments":{"q": big}}});
    let r = h.mcp(&h.owner, None, body).await;
    assert_eq!(
        r.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        &r.raw[..r.raw.len().min(200)]
    );
    assert_eq!(r.body["error"]["code"], -32600);

    // Without a Content-Length too (a streamed body).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..MCP_BODY_LIMIT / (64 * 1024) + 1)
        .map(|_| Ok(vec![b' '; 64 * 1024]))
        .collect();
    let req = Request::post("/api/mcp")
        .header("authorization", format!("Bearer {}", h.owner))
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// `GET /api/v1/openapi.json` takes no key, is the same bytes for every request and
/// every tenant, may be cached a while, and is refused to a foreign `Origin` like
/// every other `/api/*` request.
#[tokio::test]
async fn the_openapi_document_is_served_without_a_key() {
    let h = demo().await;
    let r = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["cache-control"], "public, max-age=300");
    assert_eq!(r.body["openapi"], "3.1.0");
    assert!(r.body["paths"]["/api/v1/keys"]["post"].is_object());
    let with_key = h.get("/api/v1/openapi.json", &h.owner).await;
    assert_eq!(with_key.raw, r.raw, "a key changes nothing");
    let other = demo().await;
    let r2 = other
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(
        r2.raw, r.raw,
        "another app, another tenant: the same document"
    );

    let req = Request::builder()
        .uri("/api/v1/openapi.json")
        .header("origin", "http://evil.example")
        .body(Body::empty())
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, json!({"error": "forbidden_origin"}));
    let r = h
        .call(Method::POST, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}
