//! A leak report as GitHub secret scanning sends it, to a real `keygated` started with
//! `--leak-report-keys`: the named key is refused from the next request on, and its
//! owner sees why.

use keygate_e2e::{Server, ServerOptions, client, send};
use keygate_test::LeakSigner;
use serde_json::json;

#[tokio::test]
async fn a_signed_report_revokes_the_key_for_the_next_request() {
    let signer = LeakSigner::new();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys = dir.path().join("github-keys.json");
    std::fs::write(&keys, signer.key_file("k1").to_string()).expect("the key file is written");
    let server = Server::start(
        ServerOptions::demo().args(&["--leak-report-keys", keys.to_str().expect("UTF-8")]),
    );
    let owner = server.owner_key();
    let api = server.api(&owner);
    let (id, key) = api.new_tenant_key("ci", &["services:read"]).await;
    assert_eq!(server.api(&key).introspect().await.status, 200);

    let url = "https://github.com/octo/app/blob/main/.env";
    let body = json!([{"token": key, "type": "keygate_api_key", "url": url, "source": "content"}])
        .to_string();
    let post = |signature: String| {
        client()
            .post(server.url("/api/v1/leaks/github"))
            .header("content-type", "application/json")
            .header("Github-Public-Key-Identifier", "k1")
            .header("Github-Public-Key-Signature", signature)
            .body(body.clone())
    };
    // A signature over another body: 401, and the key still works.
    let r = send(post(signer.sign(b"[]"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(server.api(&key).introspect().await.status, 200);

    let r = send(post(signer.sign(body.as_bytes()))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json[0]["label"], "true_positive", "{}", r.text);
    assert_eq!(r.json[0]["token_type"], "keygate_api_key");

    let refused = server.api(&key).introspect().await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.json,
        json!({"error": "invalid_token", "reason": "key_revoked"})
    );
    let listed = api.get(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(listed.json["revoked_reason"], "leaked", "{}", listed.text);
    let audit = api.get("/api/v1/audit").await;
    let event = audit.json["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["action"] == "key.revoked" && e["target"] == id.as_str())
        .cloned()
        .expect("a key.revoked event");
    assert_eq!(event["detail"], json!({"reason": "leaked", "url": url}));
    let logs = server.logs();
    assert!(logs.contains("leaked key revoked"), "{logs}");
    assert!(!logs.contains(&key), "the reported key is never logged");
}
