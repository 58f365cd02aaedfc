//! Every row of the HTTP error table, through the whole application.

use std::num::NonZeroU32;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use keygate_demo::Platform;
use keygate_server::{Config, Upstream};
use serde_json::json;
use time::OffsetDateTime;

use crate::util::{demo, demo_with, www_authenticate};

#[tokio::test]
async fn missing_and_malformed_headers() {
    let h = demo().await;
    let r = h.call(Method::GET, "/api/v1/token", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.raw, r#"{"error":"missing_token"}"#);
    assert!(www_authenticate(&r).starts_with("Bearer"));

    let req = Request::get("/api/mcp")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(req).await.raw, r#"{"error":"missing_token"}"#);

    for bad in ["Bearer", "Bearer  x", "Bearer a b"] {
        let req = Request::get("/api/v1/token")
            .header("authorization", bad)
            .body(Body::empty())
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.raw, r#"{"error":"invalid_request"}"#);
    }
}

#[tokio::test]
async fn unknown_revoked_and_expired_keys() {
    let h = demo().await;
    let not_found = r#"{"error":"invalid_token","reason":"key_not_found"}"#;
    for key in [
        "kg_uk_nonsense",
        "kg_uk_000000000000000000000000000000000000000000000000",
    ] {
        let r = h.get("/api/v1/token", key).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.raw, not_found);
    }
    // A well-formed key with the right checksum but a wrong secret.
    let mut forged = h.tenant_key(&["services:read"]).await;
    let good = forged.clone();
    let secret_at = forged.len() - 10;
    let c = forged.as_bytes()[secret_at];
    forged.replace_range(secret_at..=secret_at, if c == b'a' { "b" } else { "a" });
    let r = h.get("/api/v1/token", &forged).await;
    assert_eq!(r.raw, not_found);

    let id = h.principal(&good).await.key_id;
    h.revoke(id.as_str()).await;
    let r = h.get("/api/v1/token", &good).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.raw, r#"{"error":"invalid_token","reason":"key_revoked"}"#);
    // Revocation holds on the gateway too, on the very next request.
    let r = h.rpc(&good, "tools/list").await;
    assert_eq!(r.raw, r#"{"error":"invalid_token","reason":"key_revoked"}"#);

    let expiring = h.tenant_key(&["services:read"]).await;
    let id = h.principal(&expiring).await.key_id;
    h.store.set_expires_at_for_test(
        &id,
        Some(OffsetDateTime::now_utc() - time::Duration::seconds(1)),
    );
    let r = h.get("/api/v1/token", &expiring).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.raw, r#"{"error":"expired"}"#);
}

#[tokio::test]
async fn insufficient_scope_for_admin_routes() {
    let h = demo().await;
    let tenant = h.tenant_key(&["keys:admin", "services:read"]).await;
    let member = h.member_key(&["keys:admin"]).await;
    let owner_without_admin = h.user_key(&["services:read"]).await;
    for key in [&tenant, &member, &owner_without_admin] {
        for (method, path) in [
            (Method::GET, "/api/v1/keys"),
            (Method::GET, "/api/v1/projects"),
            (Method::GET, "/api/v1/audit"),
            (Method::POST, "/api/v1/keys/abc/revoke"),
        ] {
            let r = h
                .call(method.clone(), path, Some(key), Some(json!({})))
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(r.raw, r#"{"error":"insufficient_scope"}"#);
            assert!(www_authenticate(&r).contains("insufficient_scope"));
        }
        let r = h
            .post(
                "/api/v1/keys",
                key,
                json!({"name": "x", "kind": "tenant", "scopes": []}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Any valid key may introspect itself and read the catalogue.
        assert_eq!(h.get("/api/v1/token", key).await.status, StatusCode::OK);
        assert_eq!(h.get("/api/v1/scopes", key).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.key_rate = NonZeroU32::new(2).unwrap();
    let h = demo_with(config).await;
    let first = h.get("/api/v1/token", &h.owner).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.headers.contains_key("ratelimit-policy"));
    assert!(first.headers.contains_key("ratelimit"));
    let mut limited = None;
    for _ in 0..5 {
        let r = h.get("/api/v1/token", &h.owner).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst of 2 runs out within 6 requests");
    assert_eq!(r.raw, r#"{"error":"rate_limited"}"#);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(
        r.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"key\";r=0")
    );
    // The gateway shares the budget.
    let r = h.rpc(&h.owner, "tools/list").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let metrics = h.call(Method::GET, "/metrics", None, None).await.raw;
    assert!(
        metrics.contains("keygate_rate_limited_total{scope=\"key\"}"),
        "{metrics}"
    );
}

/// No request that passed authentication is free: calls the policy denies, calls with
/// invalid params, malformed session ids and bodies all spend the key's budget, so a
/// key cannot flood the gateway (and its log) with requests it may never make.
#[tokio::test]
async fn refused_mcp_requests_spend_the_rate_budget() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.key_rate = NonZeroU32::new(2).unwrap();
    let h = demo_with(config).await;
    let huge = "x".repeat(100_000);
    let call =
        |name: &str| json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name}});
    let kinds: [(&str, Option<&str>, serde_json::Value, StatusCode); 6] = [
        ("unknown tool", None, call(&huge), StatusCode::FORBIDDEN),
        (
            "missing scope",
            None,
            call("service.delete"),
            StatusCode::FORBIDDEN,
        ),
        (
            "no tool name",
            None,
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}),
            StatusCode::OK,
        ),
        (
            "unmapped method",
            None,
            json!({"jsonrpc":"2.0","id":1,"method":"resources/list"}),
            StatusCode::FORBIDDEN,
        ),
        (
            "bad session id",
            Some("has space"),
            json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON-RPC",
            None,
            json!({"jsonrpc":"1.0","id":1,"method":"ping"}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (kind, session, body, refused) in kinds {
        // A key of its own (zero scopes) per kind: each budget starts full.
        let key = h.stored_tenant_key(&[]).await;
        let first = h.mcp(&key, session, body.clone()).await;
        assert_eq!(first.status, refused, "{kind}: {}", first.raw);
        assert!(
            first.headers.contains_key("ratelimit"),
            "{kind}: a refused answer says what is left"
        );
        let mut limited = None;
        for _ in 0..10 {
            let r = h.mcp(&key, session, body.clone()).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(r);
                break;
            }
            assert_eq!(r.status, refused, "{kind}: {}", r.raw);
        }
        let r =
            limited.unwrap_or_else(|| panic!("{kind}: a burst of 2 runs out within 11 requests"));
        assert_eq!(r.raw, r#"{"error":"rate_limited"}"#, "{kind}");
        assert!(r.headers.contains_key("retry-after"), "{kind}");
    }
}
