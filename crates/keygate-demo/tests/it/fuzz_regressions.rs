//! Inputs found by the `mcp_request` fuzz target (fuzz/), kept as regression tests.

use axum::http::StatusCode;

use crate::{app, post_body};

/// A body that is not JSON is a parse error (-32700) with a null id, even when the
/// part before the syntax error already breaks the message shape: here a duplicate
/// `id` member, which the message parser notices before the unterminated object.
/// It was answered -32600 Invalid Request.
#[tokio::test]
async fn broken_json_with_a_duplicate_member_is_a_parse_error() {
    let app = app();
    // Found by the fuzzer (crash-fbb79df6037613696d063884e53b3eb8a21dc4b9).
    let found = br#"{"jsonrpc":"2.0","id":1,"method":"i.0","id":1,"method":"initials":{"protocopabilities":{},"clientInfo":{"name":"fuzz","version":"0nitials":{"protocopabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}"#;
    for body in [&found[..], br#"{"jsonrpc":"2.0","id":1,"id":1"#] {
        let reply = post_body(&app, std::str::from_utf8(body).unwrap()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.error_code(),
            -32700,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(reply.json()["id"].is_null());
    }
}

/// Valid JSON with a duplicate member stays an Invalid Request (-32600).
#[tokio::test]
async fn valid_json_with_a_duplicate_member_is_an_invalid_request() {
    let app = app();
    let reply = post_body(&app, r#"{"jsonrpc":"2.0","id":1,"id":1,"method":"ping"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), -32600);
}
