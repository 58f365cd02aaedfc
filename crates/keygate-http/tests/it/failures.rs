//! The failed-authentication limiter in the layer: a client over its budget is refused
//! with 429 before the store is asked; other clients and token-less requests are not.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use keygate_http::AuthLayer;
use keygate_keys::{KeyKind, TokenFormat, Verifier};
use keygate_limits::{FailureLimiter, FailureQuota};
use tower::ServiceExt;

use keygate_test::{CountingVerifier, DownVerifier};

use crate::support::{Answer, Fixture, routes};

const ATTACKER: &str = "198.51.100.7:50000";
const OTHER: &str = "203.0.113.9:50000";

fn app(store: Arc<dyn Verifier>, per_minute: u32) -> Router {
    let quota = FailureQuota::per_minute(NonZeroU32::new(per_minute).unwrap());
    let limiter = Arc::new(FailureLimiter::new(quota));
    routes().layer(AuthLayer::new(store).with_failure_limiter(limiter))
}

/// `GET /echo` from `peer` (none: no `ConnectInfo`), with `Bearer token` when given.
async fn get(app: &Router, peer: Option<&str>, token: Option<&str>) -> Answer {
    let mut req = Request::get("/echo").body(Body::empty()).unwrap();
    if let Some(token) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if let Some(peer) = peer {
        let addr: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    Answer::of(app.clone().oneshot(req).await.unwrap()).await
}

fn forged() -> String {
    TokenFormat::default()
        .generate(KeyKind::User)
        .unwrap()
        .expose()
        .to_owned()
}

/// A fixture and [`app`] with a budget of `per_minute` on its store, counting the
/// store's calls.
async fn counted(per_minute: u32) -> (Fixture, Arc<CountingVerifier>, Router) {
    let fx = Fixture::new().await;
    let store = Arc::new(CountingVerifier::new(fx.store.clone()));
    let app = app(store.clone(), per_minute);
    (fx, store, app)
}

#[tokio::test]
async fn forged_tokens_over_the_budget_are_refused_before_the_store() {
    let (fx, store, app) = counted(5).await;
    for n in 0..5 {
        let a = get(&app, Some(ATTACKER), Some(&forged())).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "failure {n}");
    }
    assert_eq!(store.calls(), 5);
    for _ in 0..200 {
        let a = get(&app, Some(ATTACKER), Some(&forged())).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.text(), r#"{"error":"rate_limited"}"#);
        assert_eq!(a.header("content-type"), Some("application/json"));
        // 5 a minute: one comes back every 12 s.
        let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=12).contains(&retry), "Retry-After {retry}");
        assert_eq!(a.header("www-authenticate"), None);
    }
    assert_eq!(store.calls(), 5, "no refused request reached the store");

    // The same address with a valid key is refused too (see the layer's docs), and
    // another address is not affected.
    let a = get(&app, Some(ATTACKER), Some(fx.user_token())).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let a = get(&app, Some(OTHER), Some(fx.user_token())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let a = get(&app, Some(OTHER), Some(&forged())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(store.calls(), 7);
}

#[tokio::test]
async fn revoked_and_expired_keys_count_missing_tokens_do_not() {
    let fx = Fixture::new().await;
    let app = app(fx.store.clone(), 2);
    for _ in 0..20 {
        let a = get(&app, Some(ATTACKER), None).await;
        assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
    }
    assert_eq!(
        get(&app, Some(ATTACKER), Some(fx.user_token()))
            .await
            .status,
        StatusCode::OK,
        "a missing token spends nothing, and neither does a success"
    );
    fx.revoke_user_key().await;
    fx.expire_tenant_key();
    let a = get(&app, Some(ATTACKER), Some(fx.user_token())).await;
    assert_eq!(
        a.text(),
        r#"{"error":"invalid_token","reason":"key_revoked"}"#
    );
    let a = get(&app, Some(ATTACKER), Some(fx.tenant_token())).await;
    assert_eq!(a.text(), r#"{"error":"expired"}"#);
    let a = get(&app, Some(ATTACKER), Some(fx.tenant_token())).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text());
    // Still a 401 for a request without a token: nothing was going to be verified.
    let a = get(&app, Some(ATTACKER), None).await;
    assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
}

#[tokio::test]
async fn store_failures_do_not_count() {
    let fx = Fixture::new().await;
    let down = Arc::new(DownVerifier::new());
    let app = app(down, 1);
    for _ in 0..10 {
        let a = get(&app, Some(ATTACKER), Some(fx.user_token())).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn without_a_peer_address_nothing_is_limited() {
    let (_fx, store, app) = counted(1).await;
    for _ in 0..10 {
        let a = get(&app, None, Some(&forged())).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.calls(), 10);
}

#[tokio::test]
async fn without_a_limiter_nothing_is_limited() {
    let fx = Fixture::new().await;
    let app = routes().layer(AuthLayer::new(fx.store.clone()));
    for _ in 0..50 {
        let a = get(&app, Some(ATTACKER), Some(&forged())).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
}
