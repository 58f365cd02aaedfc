//! Every row of the HTTP contract's error table: status, exact body bytes,
//! Content-Type, WWW-Authenticate, Retry-After.

use std::sync::Arc;

use axum::response::IntoResponse;
use http::StatusCode;
use http_body_util::BodyExt;
use keygate_http::{AuthError, deny};
use keygate_keys::{KeyKind, KeyStore, Token, TokenFormat, Verifier};
use keygate_scopes::Denied;

use keygate_test::DownVerifier;

use crate::support::{Fixture, bearer, protected, send};

const REALM: &str = r#"Bearer realm="keygate""#;

#[tokio::test]
async fn no_header_is_missing_token() {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/echo", &[], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("www-authenticate"), Some(REALM));
}

#[tokio::test]
async fn other_scheme_is_missing_token() {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/echo", &[b"Basic dXNlcjpwYXNz"], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
    assert_eq!(a.header("www-authenticate"), Some(REALM));
}

#[tokio::test]
async fn malformed_is_invalid_request() {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/echo", &[b"Bearer"], &[]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.text(), r#"{"error":"invalid_request"}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let challenge = a.header("www-authenticate").unwrap();
    assert!(
        challenge
            .starts_with(r#"Bearer realm="keygate", error="invalid_request", error_description=""#),
        "{challenge}"
    );
}

async fn assert_not_found(token: &str) {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/echo", &[&bearer(token)], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{token}");
    assert_eq!(
        a.text(),
        r#"{"error":"invalid_token","reason":"key_not_found"}"#
    );
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("www-authenticate"),
        Some(
            r#"Bearer realm="keygate", error="invalid_token", error_description="the key is not valid""#
        )
    );
}

#[tokio::test]
async fn bad_shape_is_key_not_found() {
    assert_not_found("hello").await;
    assert_not_found("kg_uk_short").await;
}

#[tokio::test]
async fn bad_checksum_is_key_not_found() {
    let fx = Fixture::new().await;
    let mut bad = fx.user_token().to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    assert!(Token::parse(&bad).is_err());
    assert_not_found(&bad).await;
}

#[tokio::test]
async fn unknown_id_is_key_not_found() {
    let unknown = TokenFormat::default().generate(KeyKind::User).unwrap();
    assert_not_found(unknown.expose()).await;
}

/// Same id, another secret, a valid checksum: only the hash comparison can refuse it.
#[tokio::test]
async fn hash_mismatch_is_key_not_found() {
    let fx = Fixture::new().await;
    let real = fx.user_token();
    let prefix_len = real.len() - 48;
    let mut forged = real[..prefix_len + 12].to_owned();
    forged.push_str(&"z".repeat(30));
    let forged = keygate_test::with_checksum(&forged);
    assert_ne!(forged, real);
    let parsed = Token::parse(&forged).expect("forged token is well formed");
    assert_eq!(parsed.id(), Token::parse(real).unwrap().id());

    let a = send(fx.app(), "/echo", &[&bearer(&forged)], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.text(),
        r#"{"error":"invalid_token","reason":"key_not_found"}"#
    );
}

#[tokio::test]
async fn revoked_is_key_revoked_on_the_next_request() {
    let fx = Fixture::new().await;
    let ok = send(fx.app(), "/echo", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(ok.status, StatusCode::OK);

    fx.store
        .revoke_key(&fx.boot.tenant.id, &fx.boot.key.key.id, "test")
        .await
        .unwrap();
    let a = send(fx.app(), "/echo", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.text(),
        r#"{"error":"invalid_token","reason":"key_revoked"}"#
    );
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("www-authenticate"),
        Some(
            r#"Bearer realm="keygate", error="invalid_token", error_description="the key has been revoked""#
        )
    );
}

#[tokio::test]
async fn expired_is_expired() {
    let fx = Fixture::new().await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    fx.store
        .set_expires_at_for_test(&fx.tenant_key.key.id, Some(past));
    let a = send(fx.app(), "/echo", &[&bearer(fx.tenant_token())], &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.text(), r#"{"error":"expired"}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("www-authenticate"),
        Some(
            r#"Bearer realm="keygate", error="invalid_token", error_description="the key has expired""#
        )
    );
}

#[tokio::test]
async fn store_down_is_503_not_401() {
    let fx = Fixture::new().await;
    let down: Arc<dyn Verifier> = Arc::new(DownVerifier::new());
    let a = send(protected(down), "/echo", &[&bearer(fx.user_token())], &[]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.text(), r#"{"error":"unavailable"}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("www-authenticate"), None);
}

async fn read(err: AuthError) -> (StatusCode, http::HeaderMap, String) {
    let res = err.into_response();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn insufficient_scope_via_denied() {
    let denied = Denied::UserOnly {
        tool: "service.delete".to_owned(),
    };
    for res in [
        deny(&denied),
        AuthError::from(denied.clone()).into_response(),
    ] {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(&body[..], br#"{"error":"insufficient_scope"}"#);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            headers["www-authenticate"],
            r#"Bearer realm="keygate", error="insufficient_scope""#
        );
    }
}

#[tokio::test]
async fn rate_limited_has_retry_after_at_least_one() {
    let (status, headers, body) = read(AuthError::RateLimited {
        retry_after_secs: 7,
    })
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body, r#"{"error":"rate_limited"}"#);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["retry-after"], "7");
    assert!(headers.get("www-authenticate").is_none());

    let (_, headers, _) = read(AuthError::RateLimited {
        retry_after_secs: 0,
    })
    .await;
    assert_eq!(headers["retry-after"], "1");
}

#[tokio::test]
async fn usage_exceeded_is_403_with_retry_after_only_when_refilled() {
    let (status, headers, body) = read(AuthError::UsageExceeded {
        retry_after_secs: Some(3600),
    })
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, r#"{"error":"usage_exceeded"}"#);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["retry-after"], "3600");
    assert!(headers.get("www-authenticate").is_none());

    let (status, headers, body) = read(AuthError::UsageExceeded {
        retry_after_secs: None,
    })
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, r#"{"error":"usage_exceeded"}"#);
    assert!(headers.get("retry-after").is_none());

    let (_, headers, _) = read(AuthError::UsageExceeded {
        retry_after_secs: Some(0),
    })
    .await;
    assert_eq!(headers["retry-after"], "1");
}
