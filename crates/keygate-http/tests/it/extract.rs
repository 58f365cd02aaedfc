//! The `Authenticated` and `Option<Authenticated>` extractors.

use http::StatusCode;

use crate::support::{Fixture, bearer, routes, send};

#[tokio::test]
async fn authenticated_behind_the_layer() {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/me", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), "acme user");
    let a = send(fx.app(), "/me", &[&bearer(fx.tenant_token())], &[]).await;
    assert_eq!(a.text(), "acme tenant");
}

#[tokio::test]
async fn optional_behind_the_layer_is_some() {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/maybe", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), format!("some {}", fx.boot.key.key.id));
}

#[tokio::test]
async fn without_the_layer_authenticated_is_missing_token() {
    let fx = Fixture::new().await;
    // Even with a valid token: without the layer nothing was verified.
    let a = send(routes(), "/me", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
    assert_eq!(
        a.header("www-authenticate"),
        Some(r#"Bearer realm="keygate""#)
    );
}

#[tokio::test]
async fn without_the_layer_optional_is_none() {
    let a = send(routes(), "/maybe", &[], &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), "none");
}
