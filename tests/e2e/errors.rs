//! Every row of the DESIGN.md error table over real HTTP, bodies compared byte for byte.
//! (503 `unavailable` is covered with the fault-injection tests.)

use std::time::Duration;

use keygate_e2e::{Answer, KEY_REVOKED, Server, client, eventually, send, with_valid_checksum};
use serde_json::json;

async fn introspect_with(server: &Server, auth: Option<&str>) -> Answer {
    let mut req = client().get(server.url("/api/v1/token"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    send(req).await
}

#[track_caller]
fn assert_error(a: &Answer, status: u16, body: &str, www_auth: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.text, body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let header = a
        .header("www-authenticate")
        .expect("a WWW-Authenticate header");
    assert!(
        header.starts_with("Bearer realm=\"keygate\""),
        "WWW-Authenticate: {header}"
    );
    assert!(
        header.contains(www_auth),
        "WWW-Authenticate {header:?} lacks {www_auth:?}"
    );
}

#[tokio::test]
async fn missing_and_malformed_authorization() {
    let server = Server::demo();
    let owner = server.owner_key();
    for auth in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearerabc")] {
        let a = introspect_with(&server, auth).await;
        assert_error(&a, 401, r#"{"error":"missing_token"}"#, "realm");
        assert!(
            !a.header("www-authenticate")
                .unwrap_or_default()
                .contains("error=")
        );
    }
    let two_spaces = format!("Bearer  {owner}");
    let extra = format!("Bearer {owner} extra");
    for auth in ["Bearer", "Bearer ", "Bearer a b", &two_spaces, &extra] {
        let a = introspect_with(&server, Some(auth)).await;
        assert_error(
            &a,
            400,
            r#"{"error":"invalid_request"}"#,
            "error=\"invalid_request\"",
        );
    }
}

#[tokio::test]
async fn unknown_keys_all_look_alike() {
    let server = Server::demo();
    let owner = server.owner_key();
    let mut bad_checksum = owner.clone();
    let last = bad_checksum.pop().expect("a non-empty key");
    bad_checksum.push(if last == 'A' { 'B' } else { 'A' });
    // Same id, other secret, valid checksum: a hash mismatch.
    let mut wrong_secret = owner[..owner.len() - 6].to_owned();
    let c = wrong_secret.pop().expect("a non-empty key");
    wrong_secret.push(if c == 'x' { 'y' } else { 'x' });
    let wrong_secret = with_valid_checksum(&wrong_secret);
    // A well-formed key with an id nobody issued.
    let unknown_id = with_valid_checksum(&format!("kg_uk_{}", "Z".repeat(42)));
    for token in [
        "not-a-token",
        bad_checksum.as_str(),
        wrong_secret.as_str(),
        unknown_id.as_str(),
    ] {
        let a = introspect_with(&server, Some(&format!("Bearer {token}"))).await;
        assert_error(
            &a,
            401,
            r#"{"error":"invalid_token","reason":"key_not_found"}"#,
            "error=\"invalid_token\"",
        );
    }
}

#[tokio::test]
async fn revoked_expired_and_insufficient_scope() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());

    let (id, key) = admin.new_tenant_key("r", &["customers:read"]).await;
    assert_eq!(server.api(&key).introspect().await.status, 200);
    admin.revoke(&id).await;
    let a = server.api(&key).introspect().await;
    assert_error(&a, 401, KEY_REVOKED, "error=\"invalid_token\"");

    let (_, key) = admin
        .new_key(json!({"name":"e","kind":"tenant","scopes":["customers:read"],"expires_in":1}))
        .await;
    let expired = eventually(Duration::from_secs(5), || {
        let api = server.api(&key);
        async move {
            let a = api.introspect().await;
            (a.status != 200).then_some(a)
        }
    })
    .await
    .expect("a key with expires_in 1 expires within 5 s");
    assert_error(
        &expired,
        401,
        r#"{"error":"expired"}"#,
        "error=\"invalid_token\"",
    );

    // A tenant key on the admin API, and a tool outside the key's scopes.
    let (_, tenant) = admin.new_tenant_key("t", &["customers:read"]).await;
    let a = server.api(&tenant).get("/api/v1/keys").await;
    assert_error(
        &a,
        403,
        r#"{"error":"insufficient_scope"}"#,
        "error=\"insufficient_scope\"",
    );
    let mut mcp = server.api(&tenant).session().await;
    let a = mcp.call("service.list", json!({})).await;
    assert_error(
        &a,
        403,
        r#"{"error":"insufficient_scope"}"#,
        "error=\"insufficient_scope\"",
    );
}

#[tokio::test]
async fn rate_limited_answers_429_with_retry_after() {
    let server = Server::demo_with(&["--key-rate", "2"]);
    let admin = server.api(&server.owner_key());
    let (_, key) = admin.new_tenant_key("rl", &["customers:read"]).await;
    let api = server.api(&key);
    let mut limited = None;
    for _ in 0..20 {
        let a = api.introspect().await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let a = limited.expect("a burst of 2 is exceeded within 20 back-to-back requests");
    assert_eq!(a.text, r#"{"error":"rate_limited"}"#);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let retry: u64 = a
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(api.introspect().await.status, 200, "the budget refills");
}
