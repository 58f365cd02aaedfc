//! Leaked-key reports at `POST /api/v1/leaks/github`, signed as GitHub signs them, with a
//! P-256 key generated here.

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use keygate_demo::Platform;
use keygate_keys::{Verifier, VerifyError};
use keygate_server::{App, Config, LEAK_REPORT_BODY_LIMIT, Upstream};
use keygate_test::LeakSigner as Signer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::util::{Harness, Reply, demo, demo_with};

const PATH: &str = "/api/v1/leaks/github";
const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
const URL: &str = "https://github.com/octo/app/blob/0123abc/.env";
/// A demo app taking reports signed by `signer` (key id [`KEY_ID`]), with `edit` made
/// to its config; the key file's directory must outlive the app.
async fn app(signer: &Signer, edit: impl FnOnce(&mut Config)) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let other = Signer::new();
    let mut file = signer.key_file(KEY_ID);
    file["public_keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key_identifier": "old", "key": other.pem(), "is_current": false}));
    std::fs::write(&path, file.to_string()).unwrap();
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.leak_report_keys = Some(path);
    edit(&mut config);
    (demo_with(config).await, dir)
}

/// [`app`] with the default config, the signer it trusts, and a live tenant key `ci`
/// made through the admin API (raw key, id).
async fn with_live_key() -> (Harness, tempfile::TempDir, Signer, String, String) {
    let signer = Signer::new();
    let (h, dir) = app(&signer, |_| {}).await;
    let (key, id) = h.reader_key("ci").await;
    (h, dir, signer, key, id)
}

fn report_request(body: &[u8], key_id: Option<&str>, signature: Option<&str>) -> Request<Body> {
    let mut req = Request::post(PATH).header("content-type", "application/json");
    if let Some(id) = key_id {
        req = req.header("Github-Public-Key-Identifier", id);
    }
    if let Some(sig) = signature {
        req = req.header("Github-Public-Key-Signature", sig);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

/// A report of `body` with the key id `key_id`, signed by `signer`.
fn signed(body: &[u8], key_id: &str, signer: &Signer) -> Request<Body> {
    report_request(body, Some(key_id), Some(&signer.sign(body)))
}

async fn send_report(h: &Harness, signer: &Signer, report: &Value) -> Reply {
    let body = report.to_string();
    h.send(signed(body.as_bytes(), KEY_ID, signer)).await
}

fn found(token: &str) -> Value {
    json!({"token": token, "type": "keygate_api_key", "url": URL, "source": "content"})
}

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn revoked_events(h: &Harness, id: &str) -> Vec<Value> {
    let r = h.get("/api/v1/audit", &h.owner).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.revoked" && e["target"] == id)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_signed_report_revokes_the_live_key_at_once() {
    let (h, _dir, signer, key, id) = with_live_key().await;
    let id = id.as_str();
    h.principal(&key).await;
    let r = send_report(&h, &signer, &json!([found(&key)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(
        r.body,
        json!([{"token_hash": sha256_hex(&key), "token_type": "keygate_api_key", "label": "true_positive"}])
    );
    assert!(!r.raw.contains(&key), "the answer never holds the token");
    assert!(matches!(
        h.store.verify(&key).await,
        Err(VerifyError::Revoked)
    ));
    // The owner sees why, in the key list and in the audit log.
    let got = h.get(&format!("/api/v1/keys/{id}"), &h.owner).await;
    assert_eq!(got.body["status"], "revoked", "{}", got.raw);
    assert_eq!(got.body["revoked_reason"], "leaked");
    let events = revoked_events(&h, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "leak-report:github");
    assert_eq!(events[0]["detail"], json!({"reason": "leaked", "url": URL}));
    // A key revoked by its owner shows no reason.
    let (_, other) = h.reader_key("other").await;
    let r = h.revoke(&other).await;
    assert!(r.body.get("revoked_reason").is_none(), "{}", r.raw);
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_401_and_revokes_nothing() {
    let (h, _dir, signer, key, _) = with_live_key().await;
    let body = json!([found(&key)]).to_string();
    let stranger = Signer::new();
    let tampered = json!([found(&key), found("ghp_x")]).to_string();
    for (req, why) in [
        (
            signed(body.as_bytes(), KEY_ID, &stranger),
            "the signature does not match the body",
        ),
        (
            report_request(
                body.as_bytes(),
                Some(KEY_ID),
                Some(&signer.sign(tampered.as_bytes())),
            ),
            "the signature does not match the body",
        ),
        (
            report_request(body.as_bytes(), Some(KEY_ID), Some("not base64!")),
            "the Github-Public-Key-Signature is not base64",
        ),
        (
            report_request(body.as_bytes(), Some(KEY_ID), None),
            "no Github-Public-Key-Signature header",
        ),
        (
            report_request(body.as_bytes(), None, Some(&signer.sign(body.as_bytes()))),
            "no Github-Public-Key-Identifier header",
        ),
        (
            signed(body.as_bytes(), "old", &signer),
            "the signature does not match the body",
        ),
    ] {
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.raw);
        assert_eq!(
            r.body,
            json!({"error": "invalid_signature", "message": why})
        );
        assert!(!r.raw.contains(&key));
    }
    h.principal(&key).await;
}

#[tokio::test]
async fn a_signed_body_of_another_shape_is_400_and_never_echoes_a_key() {
    let (h, _dir, signer, key, _) = with_live_key().await;
    for report in [json!([key]), json!({"token": key}), json!([{"type": "x"}])] {
        let r = send_report(&h, &signer, &report).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{report}: {}", r.raw);
        assert_eq!(r.body["error"], "invalid_request");
        let message = r.body["message"].as_str().unwrap();
        assert!(
            message.starts_with("the report is not a JSON array of {token, type, url, source}: "),
            "{message}"
        );
        assert!(!r.raw.contains(&key[key.len() - 36..]), "{}", r.raw);
    }
    h.principal(&key).await;
}

#[tokio::test]
async fn an_unknown_key_identifier_is_401() {
    let (h, _dir, signer, key, _) = with_live_key().await;
    let body = json!([found(&key)]).to_string();
    let r = h.send(signed(body.as_bytes(), "0000", &signer)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    assert_eq!(
        r.body["message"],
        "the Github-Public-Key-Identifier names no key of --leak-report-keys"
    );
    h.principal(&key).await;
}

#[tokio::test]
async fn a_key_already_revoked_is_listed_without_a_second_event() {
    let (h, _dir, signer, key, id) = with_live_key().await;
    let id = id.as_str();
    h.revoke(id).await;
    // Reported twice in one report, and again in a second one.
    for report in [json!([found(&key), found(&key)]), json!([found(&key)])] {
        let r = send_report(&h, &signer, &report).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        for verdict in r.body.as_array().unwrap() {
            assert_eq!(verdict["label"], "true_positive");
            assert_eq!(verdict["token_hash"], sha256_hex(&key));
        }
    }
    let events = revoked_events(&h, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0]["detail"],
        json!({}),
        "the owner's revocation stays the one"
    );
}

#[tokio::test]
async fn foreign_and_forged_tokens_are_labelled_and_change_nothing() {
    let (h, _dir, signer, key, _) = with_live_key().await;
    // The real key's id with another secret: anyone could publish one.
    let signed = &key[..key.len() - 6];
    let mut forged_secret = signed.to_owned();
    let last = forged_secret.pop().unwrap();
    forged_secret.push(if last == 'a' { 'b' } else { 'a' });
    let forged = keygate_test::with_checksum(&forged_secret);
    assert_ne!(forged, key);
    let foreign = [
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "not a token at all",
        "",
        &forged,
    ];
    let report: Vec<Value> = foreign.iter().map(|t| found(t)).collect();
    let r = send_report(&h, &signer, &Value::Array(report)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let verdicts = r.body.as_array().unwrap();
    assert_eq!(verdicts.len(), foreign.len());
    for (verdict, token) in verdicts.iter().zip(foreign) {
        assert_eq!(verdict["label"], "false_positive", "{token}");
        assert_eq!(verdict["token_hash"], sha256_hex(token));
    }
    h.principal(&key).await;
    let r = h.get("/api/v1/audit", &h.owner).await;
    assert!(!r.raw.contains("key.revoked"), "{}", r.raw);
}

#[tokio::test]
async fn a_report_of_1_mib_is_read_and_a_larger_one_is_413() {
    let (h, _dir, signer, key, _) = with_live_key().await;
    // Many foreign matches around the live key, padded to exactly the limit.
    let mut matches = vec![found(&key)];
    let filler = found("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB");
    let per = filler.to_string().len() + 1;
    let room = LEAK_REPORT_BODY_LIMIT - json!(matches).to_string().len();
    matches.extend(std::iter::repeat_n(filler, room / per));
    let mut body = json!(matches).to_string();
    let pad = LEAK_REPORT_BODY_LIMIT - body.len();
    body.insert_str(body.len() - 1, &" ".repeat(pad));
    assert_eq!(body.len(), LEAK_REPORT_BODY_LIMIT);
    let r = h.send(signed(body.as_bytes(), KEY_ID, &signer)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        &r.raw[..r.raw.len().min(300)]
    );
    let verdicts = r.body.as_array().unwrap();
    assert_eq!(verdicts.len(), matches.len());
    assert_eq!(verdicts[0]["label"], "true_positive");
    assert!(matches!(
        h.store.verify(&key).await,
        Err(VerifyError::Revoked)
    ));
    // One byte more.
    body.insert(body.len() - 1, ' ');
    let r = h.send(signed(body.as_bytes(), KEY_ID, &signer)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.raw);
    assert_eq!(
        r.body,
        json!({"error": "payload_too_large", "message": format!("the request body is larger than {LEAK_REPORT_BODY_LIMIT} bytes")})
    );
}

#[tokio::test]
async fn bad_signatures_spend_the_failed_authentication_budget() {
    let signer = Signer::new();
    let (h, _dir) = app(&signer, |c| c.auth_failure_rate = NonZeroU32::new(2)).await;
    let key = h.tenant_key(&["services:read"]).await;
    let body = json!([found(&key)]).to_string();
    let from = |sig: String| {
        let mut req = report_request(body.as_bytes(), Some(KEY_ID), Some(&sig));
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 7], 5000))));
        req
    };
    let stranger = Signer::new();
    for _ in 0..2 {
        let r = h.send(from(stranger.sign(body.as_bytes()))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    }
    // Now even a good signature from that address waits.
    let r = h.send(from(signer.sign(body.as_bytes()))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.raw);
    assert_eq!(r.body, json!({"error": "rate_limited"}));
    assert!(r.headers.contains_key("retry-after"));
    h.principal(&key).await;
}

#[tokio::test]
async fn without_leak_report_keys_the_route_is_404() {
    let h = demo().await;
    let signer = Signer::new();
    let r = send_report(&h, &signer, &json!([])).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
    assert_eq!(r.body, json!({"error": "not_found"}));
}

/// Why the app refuses to start with `path` as its leak-report key file.
async fn start_error(path: std::path::PathBuf) -> String {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.leak_report_keys = Some(path);
    let store = std::sync::Arc::new(keygate_keys::MemoryStore::new());
    App::with_store(config, store)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn a_bad_key_file_stops_the_server_with_a_precise_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    for (text, expected) in [
        ("[]", "not GitHub's key file"),
        (r#"{"public_keys":[]}"#, "`public_keys` is empty"),
        (
            r#"{"public_keys":[{"key_identifier":"k1","key":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----","is_current":true}]}"#,
            "key `k1`: not an ECDSA P-256 public key",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = start_error(path.clone()).await;
        assert!(err.starts_with("--leak-report-keys "), "{err}");
        assert!(err.contains(expected), "{err}");
    }
    let err = start_error(dir.path().join("missing.json")).await;
    assert!(err.contains("cannot read it"), "{err}");
}

#[tokio::test]
async fn an_exhausted_usage_limited_key_in_a_report_is_revoked_too() {
    let signer = Signer::new();
    let (h, _dir) = app(&signer, |_| {}).await;
    let (key, view) = h
        .create_key(json!({"name": "metered", "kind": "tenant", "scopes": ["services:read"], "remaining": 1}))
        .await;
    let id = view["id"].as_str().unwrap().to_owned();
    assert_eq!(h.get("/api/v1/token", &key).await.status, StatusCode::OK);
    assert_eq!(
        h.get("/api/v1/token", &key).await.status,
        StatusCode::FORBIDDEN,
        "exhausted"
    );
    let r = send_report(&h, &signer, &json!([found(&key)])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body[0]["label"], "true_positive", "{}", r.raw);
    let got = h.get(&format!("/api/v1/keys/{id}"), &h.owner).await;
    assert_eq!(got.body["status"], "revoked", "{}", got.raw);
    assert_eq!(got.body["revoked_reason"], "leaked");
    assert!(matches!(
        h.store.verify(&key).await,
        Err(VerifyError::Revoked)
    ));
}
