//! A full request through `AuthLayer` with a `MemoryStore`, against the same router
//! without the layer.
//!
//! Run: `cargo bench -p keygate-http --bench layer -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, reason = "criterion generates the bench entry points")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use keygate_http::{AuthLayer, Authenticated};
use keygate_keys::{Bootstrap, KeyStore, MemoryStore, TokenFormat};
use tokio::runtime::Runtime;
use tower::ServiceExt;

async fn me(Authenticated(p): Authenticated) -> String {
    p.tenant.name
}

/// The status of `GET /` through `app`, with the `Authorization` header `authorization`
/// when given.
fn status(rt: &Runtime, app: &Router, authorization: Option<&str>) -> StatusCode {
    let mut req = Request::get("/");
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let req = req.body(Body::empty()).expect("request");
    rt.block_on(app.clone().oneshot(req))
        .expect("infallible")
        .status()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let boot = rt
        .block_on(store.bootstrap(
            &TokenFormat::default(),
            Bootstrap::new("acme", "alice", &[], vec!["keys:admin".to_owned()], "bench"),
        ))
        .expect("bootstrap");
    let authorization = format!("Bearer {}", boot.key.token.expose());

    let baseline: Router = Router::new().route("/", get(|| async { "acme" }));
    let protected: Router = Router::new()
        .route("/", get(me))
        .layer(AuthLayer::new(store.clone()));

    let mut group = c.benchmark_group("request");
    group.bench_function("baseline_no_layer", |b| {
        b.iter(|| assert_eq!(status(&rt, &baseline, None), StatusCode::OK));
    });
    group.bench_function("auth_layer_valid_key", |b| {
        b.iter(|| {
            let answer = status(&rt, &protected, Some(&authorization));
            assert_eq!(answer, StatusCode::OK);
        });
    });
    group.bench_function("auth_layer_unknown_key", |b| {
        let unknown = format!(
            "Bearer {}",
            TokenFormat::default()
                .generate(keygate_keys::KeyKind::User)
                .expect("token")
                .expose()
        );
        b.iter(|| {
            let answer = status(&rt, &protected, Some(&unknown));
            assert_eq!(answer, StatusCode::UNAUTHORIZED);
        });
    });
    group.bench_function("auth_layer_missing_token", |b| {
        b.iter(|| assert_eq!(status(&rt, &protected, None), StatusCode::UNAUTHORIZED));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
