//! A leak report as GitHub secret scanning sends it, to a real `keygated` started with
//! `--leak-report-keys`: the named key is refused from the next request on, and its
//! owner sees why.

use base64::Engine as _;
use keygate_e2e::{Server, ServerOptions, client, send};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

/// A P-256 SubjectPublicKeyInfo before its point (RFC 5480).
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[tokio::test]
async fn a_signed_report_revokes_the_key_for_the_next_request() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("a P-256 key");
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("the key reads back");
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(signer.public_key().as_ref());
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64.encode(spki)
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys = dir.path().join("github-keys.json");
    std::fs::write(
        &keys,
        json!({"public_keys": [{"key_identifier": "k1", "key": pem, "is_current": true}]})
            .to_string(),
    )
    .expect("the key file is written");
    let server = Server::start(
        ServerOptions::demo().args(&["--leak-report-keys", keys.to_str().expect("UTF-8")]),
    );
    let owner = server.owner_key();
    let api = server.api(&owner);
    let (id, key) = api
        .new_key(json!({"name": "ci", "kind": "tenant", "scopes": ["services:read"]}))
        .await;
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
    let wrong = signer.sign(&rng, b"[]").expect("a signature");
    let r = send(post(b64.encode(wrong.as_ref()))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(server.api(&key).introspect().await.status, 200);

    let good = signer.sign(&rng, body.as_bytes()).expect("a signature");
    let r = send(post(b64.encode(good.as_ref()))).await;
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
