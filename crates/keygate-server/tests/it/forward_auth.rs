//! Forward-auth at `/auth/verify`: the answers a proxy acts on, on the router.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request, StatusCode};
use keygate_demo::Platform;
use keygate_keys::KeyStore;
use keygate_server::{Config, Upstream};
use serde_json::json;

use crate::util::{Harness, LogCapture, Reply, demo, demo_with};

async fn verify(h: &Harness, method: Method, uri: &str, key: Option<&str>) -> Reply {
    h.call(method, uri, key, None).await
}

fn assert_refused(r: &Reply, status: StatusCode, body: &str) {
    assert_eq!(r.status, status, "{}", r.raw);
    assert_eq!(r.raw, body);
    assert_eq!(r.headers["x-keygate-error"], body, "the body, for nginx");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.headers.get("x-keygate-key-id").is_none());
}

#[tokio::test]
async fn no_key_and_bad_keys_answer_the_error_table() {
    let h = demo().await;
    let r = verify(&h, Method::GET, "/auth/verify", None).await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, r#"{"error":"missing_token"}"#);
    assert_eq!(r.headers["www-authenticate"], r#"Bearer realm="keygate""#);
    let r = verify(&h, Method::GET, "/auth/verify", Some("kg_uk_nope")).await;
    assert_refused(
        &r,
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_token","reason":"key_not_found"}"#,
    );
    let req = Request::get("/auth/verify")
        .header("authorization", "Bearer")
        .body(Body::empty())
        .unwrap();
    let r = h.send(req).await;
    assert_refused(
        &r,
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_request"}"#,
    );
}

#[tokio::test]
async fn a_good_key_gets_its_identity_on_any_method() {
    let h = demo().await;
    let (key, view) = h
        .create_key(
            json!({"name": "api", "kind": "tenant", "scopes": ["services:read", "invoices:read"]}),
        )
        .await;
    for method in [Method::GET, Method::POST, Method::DELETE, Method::PATCH] {
        let r = verify(&h, method.clone(), "/auth/verify", Some(&key)).await;
        assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.raw);
        assert_eq!(r.headers["x-keygate-key-id"], view["id"].as_str().unwrap());
        assert_eq!(r.headers["x-keygate-tenant"], h.tenant.as_str());
        assert_eq!(r.headers["x-keygate-actor"], "tenant");
        assert_eq!(r.headers["x-keygate-scopes"], "invoices:read,services:read");
        assert!(r.headers.get("x-keygate-user").is_none());
        assert!(r.headers.get("x-keygate-error").is_none());
        assert_eq!(r.headers["cache-control"], "no-store");
        assert!(!r.raw.contains(&key));
    }
    let user = h.user_key(&["services:read"]).await;
    let r = verify(&h, Method::GET, "/auth/verify", Some(&user)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.headers["x-keygate-actor"], "user");
    assert_eq!(r.headers["x-keygate-user"], h.owner_id.as_str());
}

#[tokio::test]
async fn every_scope_asked_for_is_required() {
    let h = demo().await;
    let key = h.tenant_key(&["services:read", "invoices:read"]).await;
    for (uri, status) in [
        ("/auth/verify?scope=services:read", StatusCode::OK),
        (
            "/auth/verify?scope=services:read,invoices:read",
            StatusCode::OK,
        ),
        (
            "/auth/verify?scope=services:read&scope=invoices:read",
            StatusCode::OK,
        ),
        ("/auth/verify?scope=services%3Aread", StatusCode::OK),
        ("/auth/verify?scope=services:write", StatusCode::FORBIDDEN),
        (
            "/auth/verify?scope=services:read,services:write",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let r = verify(&h, Method::GET, uri, Some(&key)).await;
        assert_eq!(r.status, status, "{uri}: {}", r.raw);
        if status == StatusCode::FORBIDDEN {
            assert_refused(&r, status, r#"{"error":"insufficient_scope"}"#);
            assert_eq!(
                r.headers["www-authenticate"],
                r#"Bearer realm="keygate", error="insufficient_scope""#
            );
        }
    }
}

#[tokio::test]
async fn configuration_mistakes_are_400_with_a_precise_message() {
    let h = demo().await;
    let key = h.tenant_key(&["services:read"]).await;
    for (uri, message) in [
        (
            "/auth/verify?scope=services:raed",
            "unknown scope `services:raed`; GET /api/v1/scopes lists them",
        ),
        (
            "/auth/verify?scopes=services:read",
            "unknown parameter `scopes`; /auth/verify takes `scope` and `project`",
        ),
        (
            "/auth/verify?scope=services:read,",
            "`scope` holds an empty scope name; give `scope=a,b`",
        ),
        (
            "/auth/verify?project=shop&project=ops",
            "`project` is given more than once; a request names one project",
        ),
    ] {
        let r = verify(&h, Method::GET, uri, Some(&key)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.raw);
        assert_eq!(r.body["error"], "invalid_request", "{uri}");
        assert_eq!(r.body["message"], message, "{uri}");
        assert_eq!(r.headers["x-keygate-error"], r.raw.as_str());
    }
}

#[tokio::test]
async fn the_key_must_reach_the_project_named() {
    let h = demo().await;
    let shop_only = h
        .create_key(json!({"name": "shop", "kind": "tenant", "scopes": ["services:read"], "projects": ["shop"]}))
        .await
        .0;
    let all = h.tenant_key(&["services:read"]).await;
    let shop = h
        .store
        .find_project(&h.tenant, "shop")
        .await
        .unwrap()
        .unwrap();
    for (key, project, status) in [
        (&shop_only, "shop", StatusCode::OK),
        (&shop_only, shop.id.as_str(), StatusCode::OK),
        (&shop_only, "ops", StatusCode::FORBIDDEN),
        (&all, "shop", StatusCode::OK),
        (&all, "ops", StatusCode::OK),
        (&all, "nope", StatusCode::FORBIDDEN),
    ] {
        let uri = format!("/auth/verify?scope=services:read&project={project}");
        let r = verify(&h, Method::GET, &uri, Some(key)).await;
        assert_eq!(r.status, status, "{uri}: {}", r.raw);
        if status == StatusCode::OK {
            assert!(
                r.headers["x-keygate-project"]
                    .to_str()
                    .unwrap()
                    .starts_with("pj_")
            );
        } else {
            assert_refused(&r, status, r#"{"error":"insufficient_scope"}"#);
        }
    }
    // Another tenant's project is not reachable, whatever its name.
    let other = h.store.create_tenant("other").await.unwrap();
    let theirs = h.store.create_project(&other.id, "theirs").await.unwrap();
    let uri = format!("/auth/verify?project={}", theirs.id);
    let r = verify(&h, Method::GET, &uri, Some(&all)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_very_next_request() {
    let h = demo().await;
    let (key, id) = h.reader_key("api").await;
    let r = verify(&h, Method::GET, "/auth/verify", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    h.revoke(&id).await;
    let r = verify(&h, Method::GET, "/auth/verify", Some(&key)).await;
    assert_refused(
        &r,
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_token","reason":"key_revoked"}"#,
    );
}

#[tokio::test]
async fn the_key_budget_applies_with_retry_after() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.key_rate = NonZeroU32::new(2).unwrap();
    let h = demo_with(config).await;
    let key = h.stored_tenant_key(&["services:read"]).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let r = verify(&h, Method::GET, "/auth/verify", Some(&key)).await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
        }
    }
    assert_eq!(statuses[..2], [200, 200], "{statuses:?}");
    let r = limited.expect("the third request within a second is over the budget");
    assert_refused(
        &r,
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error":"rate_limited"}"#,
    );
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(secs >= 1);
}

#[tokio::test]
async fn the_failed_authentication_budget_applies() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.auth_failure_rate = NonZeroU32::new(2);
    let h = demo_with(config).await;
    let good = h.stored_tenant_key(&["services:read"]).await;
    let from = |key: &str| {
        let mut req = Request::get("/auth/verify")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 9], 4000))));
        req
    };
    let forged = keygate_keys::TokenFormat::default()
        .generate(keygate_keys::KeyKind::Tenant)
        .unwrap();
    for _ in 0..2 {
        let r = h.send(from(forged.expose())).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    }
    let r = h.send(from(&good)).await;
    assert_refused(
        &r,
        StatusCode::TOO_MANY_REQUESTS,
        r#"{"error":"rate_limited"}"#,
    );
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn envoy_prefixed_paths_check_the_key_and_never_read_the_clients_query() {
    let h = demo().await;
    let key = h.tenant_key(&["services:read"]).await;
    // Envoy sends `path_prefix` + the original path and query: the query is the
    // client's own, never a check (nor a 400 for parameters the API uses).
    for uri in [
        "/auth/verify/api/things?page=2",
        "/auth/verify/api/things?scope=services:write",
        "/auth/verify/",
    ] {
        let r = verify(&h, Method::PUT, uri, Some(&key)).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.raw);
        assert_eq!(r.headers["x-keygate-scopes"], "services:read");
    }
    let r = verify(&h, Method::PUT, "/auth/verify/api/things", None).await;
    assert_refused(&r, StatusCode::UNAUTHORIZED, r#"{"error":"missing_token"}"#);
}

#[tokio::test(flavor = "current_thread")]
async fn the_original_request_is_logged_escaped_and_never_the_key() {
    let h = demo().await;
    let key = h.tenant_key(&["services:read"]).await;
    let logs = LogCapture::start();
    let req = Request::get("/auth/verify?scope=services:write")
        .header("authorization", format!("Bearer {key}"))
        .header("x-forwarded-method", "DELETE")
        .header(
            "x-forwarded-uri",
            http::HeaderValue::from_bytes("/api/services/web?force=1\u{202e}gpj".as_bytes())
                .unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let req = Request::get("/auth/verify")
        .header("authorization", format!("Bearer {key}"))
        .header("x-original-uri", format!("/x?{}", "y".repeat(500)))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::OK);
    let r = verify(&h, Method::POST, "/auth/verify/from/envoy?q=1", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = logs.text();
    assert!(!text.contains(&key), "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("forward-auth decision"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("status=403"), "{}", lines[0]);
    assert!(
        lines[0].contains(r#"method=Some("DELETE")"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(r#"uri=Some("/api/services/web?force=1\u{202e}gpj")"#),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("status=200"), "{}", lines[1]);
    assert!(lines[1].contains("…[503 chars]"), "cut short: {}", lines[1]);
    assert!(
        lines[2].contains(r#"method=Some("POST")"#)
            && lines[2].contains(r#"uri=Some("/from/envoy?q=1")"#),
        "{}",
        lines[2]
    );
}

#[tokio::test]
async fn forward_auth_is_counted_under_its_own_route_label() {
    let h = demo().await;
    let key = h.tenant_key(&["services:read"]).await;
    verify(&h, Method::GET, "/auth/verify", Some(&key)).await;
    verify(&h, Method::GET, "/auth/verify", None).await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert!(
        r.raw.contains(r#"route="forward_auth",outcome="ok""#),
        "{}",
        r.raw
    );
    assert!(
        r.raw
            .contains(r#"route="forward_auth",outcome="unauthorized""#),
        "{}",
        r.raw
    );
}
