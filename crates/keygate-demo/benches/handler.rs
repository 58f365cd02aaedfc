//! Cost of the demo platform's MCP handler, called in-process as a tower service, beside
//! its baseline: a bare axum route that parses the same `service.status` body as JSON and
//! echoes it back through the same harness.
#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use axum::body::{Body, to_bytes};
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

fn post(body: &'static str) -> Request<Body> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-keygate-user", "usr_bench")
        .body(Body::from(body))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = keygate_demo::router(keygate_demo::Platform::new());
    let echo = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|axum::Json(v): axum::Json<serde_json::Value>| async { axum::Json(v) }),
    );
    let mut group = c.benchmark_group("mcp");
    group.bench_function("baseline_axum_json_echo", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = echo
                    .clone()
                    .oneshot(post(
                        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.status","arguments":{"service":"worker","project":"shop"}}}"#,
                    ))
                    .await
                    .unwrap();
                to_bytes(response.into_body(), usize::MAX).await.unwrap()
            })
        });
    });
    for (name, body) in [
        ("ping", r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        (
            "tools_list",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ),
        (
            "service_status",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.status","arguments":{"service":"worker","project":"shop"}}}"#,
        ),
        (
            "service_restart",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.restart","arguments":{"service":"api"}}}"#,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = app.clone().oneshot(post(body)).await.unwrap();
                    to_bytes(response.into_body(), usize::MAX).await.unwrap()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
