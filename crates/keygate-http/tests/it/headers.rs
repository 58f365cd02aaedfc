//! Authorization header edge cases, end to end through the layer.

use http::StatusCode;

use crate::support::{Fixture, send};

async fn status_and_body(fx: &Fixture, authorization: &[&[u8]]) -> (StatusCode, String) {
    let a = send(fx.app(), "/echo", authorization, &[]).await;
    (a.status, a.text().to_owned())
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let fx = Fixture::new().await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEARER"] {
        let value = format!("{scheme} {}", fx.user_token());
        let (status, _) = status_and_body(&fx, &[value.as_bytes()]).await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn malformed_headers_are_invalid_request() {
    let fx = Fixture::new().await;
    let t = fx.user_token();
    let cases: Vec<Vec<u8>> = vec![
        format!("Bearer  {t}").into_bytes(),
        format!("Bearer\t{t}").into_bytes(),
        format!("Bearer {t} ").into_bytes(),
        format!("Bearer {t} extra").into_bytes(),
        format!("Bearer {t}\u{e9}").into_bytes(),
        "Bearer \u{e9}t\u{e9}".as_bytes().to_vec(),
        b"Bearer ".to_vec(),
        b"Bearer".to_vec(),
        b"bearer".to_vec(),
        format!("Bearer {t},x").into_bytes(),
        format!("Bearer \"{t}\"").into_bytes(),
    ];
    for case in &cases {
        let (status, body) = status_and_body(&fx, &[case]).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            String::from_utf8_lossy(case)
        );
        assert_eq!(body, r#"{"error":"invalid_request"}"#);
    }
}

#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let fx = Fixture::new().await;
    let good = format!("Bearer {}", fx.user_token());
    let (status, body) = status_and_body(&fx, &[good.as_bytes(), good.as_bytes()]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, r#"{"error":"invalid_request"}"#);
}

#[tokio::test]
async fn oversized_header_is_invalid_request() {
    let fx = Fixture::new().await;
    let huge = format!("Bearer {}", "a".repeat(5 * 1024));
    let (status, body) = status_and_body(&fx, &[huge.as_bytes()]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, r#"{"error":"invalid_request"}"#);
}

#[tokio::test]
async fn b64token_padding_is_accepted_then_not_found() {
    let fx = Fixture::new().await;
    let (status, body) = status_and_body(&fx, &[b"Bearer abc+/-._~=="]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        r#"{"error":"invalid_token","reason":"key_not_found"}"#
    );
}
