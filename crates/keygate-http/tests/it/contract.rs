//! Every row of the HTTP contract's error table: status, exact body bytes,
//! Content-Type, WWW-Authenticate, Retry-After.

use std::sync::Arc;

use axum::response::IntoResponse;
use http::StatusCode;
use keygate_http::{AuthError, deny};
use keygate_keys::{KeyKind, Token, TokenFormat, Verifier};
use keygate_scopes::Denied;

use keygate_test::DownVerifier;

use crate::support::{Answer, Fixture, bearer, protected, send};

const REALM: &str = r#"Bearer realm="keygate""#;

/// `GET /echo` with `authorization`: asserts a 401 `missing_token` with the bare
/// challenge; the answer.
async fn assert_missing_token(authorization: &[&[u8]]) -> Answer {
    let fx = Fixture::new().await;
    let a = send(fx.app(), "/echo", authorization, &[]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.text(), r#"{"error":"missing_token"}"#);
    assert_eq!(a.header("www-authenticate"), Some(REALM));
    a
}

#[tokio::test]
async fn no_header_is_missing_token() {
    let a = assert_missing_token(&[]).await;
    assert_eq!(a.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn other_scheme_is_missing_token() {
    assert_missing_token(&[b"Basic dXNlcjpwYXNz"]).await;
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

/// Asserts that `a` is a 401 with the JSON `body` and an `invalid_token` challenge
/// saying `description`.
fn assert_invalid_token(a: &Answer, body: &str, description: &str) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    assert_eq!(a.text(), body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let challenge = format!(r#"{REALM}, error="invalid_token", error_description="{description}""#);
    assert_eq!(a.header("www-authenticate"), Some(challenge.as_str()));
}

async fn assert_not_found(token: &str) {
    let fx = Fixture::new().await;
    let a = fx.echo(token).await;
    assert_invalid_token(
        &a,
        r#"{"error":"invalid_token","reason":"key_not_found"}"#,
        "the key is not valid",
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

    let a = fx.echo(&forged).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.text(),
        r#"{"error":"invalid_token","reason":"key_not_found"}"#
    );
}

#[tokio::test]
async fn revoked_is_key_revoked_on_the_next_request() {
    let fx = Fixture::new().await;
    let ok = fx.echo(fx.user_token()).await;
    assert_eq!(ok.status, StatusCode::OK);

    fx.revoke_user_key().await;
    let a = fx.echo(fx.user_token()).await;
    assert_invalid_token(
        &a,
        r#"{"error":"invalid_token","reason":"key_revoked"}"#,
        "the key has been revoked",
    );
}

#[tokio::test]
async fn expired_is_expired() {
    let fx = Fixture::new().await;
    fx.expire_tenant_key();
    let a = fx.echo(fx.tenant_token()).await;
    assert_invalid_token(&a, r#"{"error":"expired"}"#, "the key has expired");
}

#[tokio::test]
async fn store_down_is_503_not_401() {
    let fx = Fixture::new().await;
    let down: Arc<dyn Verifier> = Arc::new(DownVerifier::new());
    let a = send(protected(down), "/echo", &[&bearer(fx.user_token())], &[]).await;
    let body = r#"{"error":"unavailable"}"#;
    assert_refused(&a, StatusCode::SERVICE_UNAVAILABLE, body, Some("1"));
}

async fn read(err: AuthError) -> Answer {
    Answer::of(err.into_response()).await
}

/// Asserts that `a` is a `status` with the JSON `body`, no challenge, and the
/// `Retry-After` `retry_after` (`None`: no such header).
fn assert_refused(a: &Answer, status: StatusCode, body: &str, retry_after: Option<&str>) {
    assert_eq!(a.status, status);
    assert_eq!(a.text(), body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.header("retry-after"), retry_after);
    assert_eq!(a.header("www-authenticate"), None);
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
        let a = Answer::of(res).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(&a.body[..], br#"{"error":"insufficient_scope"}"#);
        assert_eq!(a.headers["content-type"], "application/json");
        assert_eq!(
            a.headers["www-authenticate"],
            r#"Bearer realm="keygate", error="insufficient_scope""#
        );
    }
}

#[tokio::test]
async fn rate_limited_has_retry_after_at_least_one() {
    let a = read(AuthError::RateLimited {
        retry_after_secs: 7,
    })
    .await;
    let body = r#"{"error":"rate_limited"}"#;
    assert_refused(&a, StatusCode::TOO_MANY_REQUESTS, body, Some("7"));

    let a = read(AuthError::RateLimited {
        retry_after_secs: 0,
    })
    .await;
    assert_eq!(a.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn usage_exceeded_is_403_with_retry_after_only_when_refilled() {
    let body = r#"{"error":"usage_exceeded"}"#;
    let a = read(AuthError::UsageExceeded {
        retry_after_secs: Some(3600),
    })
    .await;
    assert_refused(&a, StatusCode::FORBIDDEN, body, Some("3600"));

    let a = read(AuthError::UsageExceeded {
        retry_after_secs: None,
    })
    .await;
    assert_refused(&a, StatusCode::FORBIDDEN, body, None);

    let a = read(AuthError::UsageExceeded {
        retry_after_secs: Some(0),
    })
    .await;
    assert_eq!(a.header("retry-after"), Some("1"));
}
