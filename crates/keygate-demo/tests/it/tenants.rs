//! One data set per tenant (`X-Keygate-Tenant`), and the project id the gateway resolved
//! (`X-Keygate-Project`).

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use keygate_demo::{PROJECT_HEADER, Platform, TENANT_HEADER, router};
use serde_json::{Value, json};

use crate::{Reply, names, post_raw, replicas_of, send};

/// Calls `tool` with identity `headers`; returns the whole reply.
async fn call_with(app: &Router, headers: &[(&str, &str)], tool: &str, arguments: Value) -> Reply {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    });
    let mut request = post_raw();
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body.to_string())).unwrap()).await
}

/// The structured content of a successful call.
async fn ok(app: &Router, headers: &[(&str, &str)], tool: &str, arguments: Value) -> Value {
    let reply = call_with(app, headers, tool, arguments).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["result"]["isError"], false, "{tool}: {v}");
    v["result"]["structuredContent"].clone()
}

/// The tool error code of a failed call.
async fn fails(app: &Router, headers: &[(&str, &str)], tool: &str, arguments: Value) -> String {
    let reply = call_with(app, headers, tool, arguments).await;
    assert_eq!(reply.status, StatusCode::OK);
    let v = reply.json();
    assert_eq!(v["result"]["isError"], true, "{tool} should fail: {v}");
    v["result"]["structuredContent"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn each_tenant_has_its_own_seeded_data_set() {
    let platform = Platform::new();
    let app = router(platform.clone());
    let a = [(TENANT_HEADER, "tn_a")];
    let b = [(TENANT_HEADER, "tn_b")];
    let scaled = ok(
        &app,
        &a,
        "service.scale",
        json!({"service": "api", "replicas": 7}),
    )
    .await;
    assert_eq!(scaled["previous_replicas"], 2);
    ok(&app, &b, "service.delete", json!({"service": "worker"})).await;
    let b_user = [(TENANT_HEADER, "tn_b"), ("x-keygate-user", "us_b")];
    ok(&app, &b_user, "jobs.create", json!({"title": "b's job"})).await;

    let list_a = ok(&app, &a, "service.list", json!({})).await;
    assert_eq!(replicas_of(&list_a, "api"), 7);
    assert_eq!(replicas_of(&list_a, "worker"), 1, "b's delete is b's alone");
    let list_b = ok(&app, &b, "service.list", json!({})).await;
    assert_eq!(replicas_of(&list_b, "api"), 2, "a's scale is a's alone");
    assert_eq!(replicas_of(&list_b, "worker"), Value::Null);
    // A new tenant starts from the seeded state; so do direct requests (no tenant).
    let fresh = ok(&app, &[(TENANT_HEADER, "tn_c")], "service.list", json!({})).await;
    let direct = ok(&app, &[], "service.list", json!({})).await;
    assert_eq!(fresh, direct);
    assert_eq!(replicas_of(&direct, "api"), 2);
    assert_eq!(direct["services"].as_array().unwrap().len(), 4);
    assert!(platform.has_service("worker"));
    assert!(platform.has_tenant_service("tn_a", "worker"));
    assert!(!platform.has_tenant_service("tn_b", "worker"));
    // Jobs are numbered per tenant.
    let a_user = [(TENANT_HEADER, "tn_a"), ("x-keygate-user", "us_a")];
    let job = ok(&app, &a_user, "jobs.create", json!({"title": "a's job"})).await;
    assert_eq!(job["job"]["id"], "job_1");
}

#[tokio::test]
async fn the_project_id_binds_to_the_project_it_is_first_named_with() {
    let app = router(Platform::new());
    let shop = [(TENANT_HEADER, "tn_a"), (PROJECT_HEADER, "pj_shop1")];
    let list = ok(&app, &shop, "service.list", json!({"project": "shop"})).await;
    let names = names(&list["services"]);
    assert_eq!(names, ["api", "web", "worker"]);
    // Named by its id from now on: the same project.
    let by_id = ok(&app, &shop, "service.list", json!({"project": "pj_shop1"})).await;
    assert_eq!(by_id, list);
    ok(
        &app,
        &shop,
        "service.status",
        json!({"service": "worker", "project": "pj_shop1"}),
    )
    .await;
    // The argument and the id disagree: refused.
    assert_eq!(
        fails(&app, &shop, "service.list", json!({"project": "ops"})).await,
        "PROJECT_MISMATCH"
    );
    let other_id = [(TENANT_HEADER, "tn_a"), (PROJECT_HEADER, "pj_other")];
    assert_eq!(
        fails(
            &app,
            &other_id,
            "service.scale",
            json!({"service": "api", "replicas": 1, "project": "shop"})
        )
        .await,
        "PROJECT_MISMATCH"
    );
    // The service is not in the resolved project.
    assert_eq!(
        fails(
            &app,
            &shop,
            "service.status",
            json!({"service": "keygate", "project": "shop"})
        )
        .await,
        "PROJECT_MISMATCH"
    );
    // An id never named, and a name that is no demo project.
    assert_eq!(
        fails(
            &app,
            &other_id,
            "service.list",
            json!({"project": "pj_other"})
        )
        .await,
        "UNKNOWN_PROJECT"
    );
    assert_eq!(
        fails(
            &app,
            &other_id,
            "service.list",
            json!({"project": "billing"})
        )
        .await,
        "UNKNOWN_PROJECT"
    );
    // Bindings belong to the tenant's data set: another tenant's ids mean nothing here.
    let b = [(TENANT_HEADER, "tn_b"), (PROJECT_HEADER, "pj_shop1")];
    assert_eq!(
        fails(&app, &b, "service.list", json!({"project": "pj_shop1"})).await,
        "UNKNOWN_PROJECT"
    );
    // Without the project header (served directly), the argument is a project name.
    let direct = ok(&app, &[], "service.list", json!({"project": "ops"})).await;
    assert_eq!(direct["services"][0]["name"], "keygate");
}

#[tokio::test]
async fn malformed_identity_headers_are_refused() {
    let app = router(Platform::new());
    let long = "t".repeat(129);
    for headers in [
        vec![(TENANT_HEADER, "")],
        vec![(TENANT_HEADER, "tn a")],
        vec![(TENANT_HEADER, long.as_str())],
        vec![(TENANT_HEADER, "tn_a"), (PROJECT_HEADER, "")],
        vec![(TENANT_HEADER, "tn_a"), (TENANT_HEADER, "tn_b")],
    ] {
        let reply = call_with(&app, &headers, "service.list", json!({})).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(reply.error_code(), -32000, "{headers:?}");
    }
    let ok_len = "t".repeat(128);
    ok(
        &app,
        &[(TENANT_HEADER, ok_len.as_str())],
        "service.list",
        json!({}),
    )
    .await;
}
