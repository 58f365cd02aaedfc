//! Input and answer hygiene of the admin API and `keygate bootstrap`: names without
//! bidirectional or invisible characters, no caching of raw keys, one expiry cap.

use keygate_e2e::{Server, bootstrap};
use serde_json::json;

#[tokio::test]
async fn names_with_bidi_overrides_or_zero_width_characters_are_refused() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    for (name, code) in [
        ("invoice\u{202E}fdp.exe", "U+202E"),
        ("ci\u{200B}bot", "U+200B"),
    ] {
        let a = admin
            .post(
                "/api/v1/keys",
                &json!({"name": name, "kind": "tenant", "scopes": ["services:read"]}),
            )
            .await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.json["error"], "invalid_request");
        let message = a.json["message"].as_str().expect("a message");
        assert_eq!(
            message,
            format!(
                "key name must not contain invisible or bidirectional formatting characters (found {code})"
            )
        );
        let a = admin.post("/api/v1/projects", &json!({"name": name})).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(
            a.json["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("project name must not contain") && m.contains(code)),
            "{}",
            a.text
        );
    }
    let keys = admin.get("/api/v1/keys").await;
    assert_eq!(
        keys.json["keys"].as_array().map(Vec::len),
        Some(1),
        "{}",
        keys.text
    );

    // `keygate bootstrap` refuses such tenant and owner names, and creates nothing.
    for (tenant, owner, what) in [
        ("ev\u{202E}il", "eve", "tenant"),
        ("other", "ev\u{2060}e", "user"),
    ] {
        let out = bootstrap(&server.database, tenant, owner, &[]);
        out.expect_code(2);
        assert!(out.stdout.is_empty(), "no key printed: {}", out.stdout);
        assert!(
            out.stderr.contains(&format!(
                "a {what} name must not contain invisible or bidirectional formatting characters"
            )),
            "{}",
            out.stderr
        );
    }
    // The name `other` is still free.
    let out = bootstrap(&server.database, "other", "eve", &[]);
    out.expect_code(0);
}

#[tokio::test]
async fn answers_that_carry_a_raw_key_are_no_store() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let created = admin
        .post(
            "/api/v1/keys",
            &json!({"name": "ci", "kind": "tenant", "scopes": ["services:read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(created.json["key"].is_string());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let id = created.json["id"].as_str().expect("an id");
    let rotated = admin
        .post(&format!("/api/v1/keys/{id}/rotate"), &json!({}))
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.text);
    assert!(rotated.json["key"].is_string());
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn expires_at_is_capped_like_expires_in() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let create = |expiry: serde_json::Value| {
        let mut body = json!({"name": "x", "kind": "tenant", "scopes": ["services:read"]});
        body.as_object_mut()
            .expect("an object")
            .extend(expiry.as_object().expect("an object").clone());
        let admin = admin.clone();
        async move { admin.post("/api/v1/keys", &body).await }
    };
    let far_at = create(json!({"expires_at": "9999-12-31T23:59:59Z"})).await;
    let far_in = create(json!({"expires_in": 10 * 366 * 86_400 + 1})).await;
    for a in [&far_at, &far_in] {
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.json["error"], "invalid_request");
    }
    assert_eq!(far_at.json["message"], far_in.json["message"]);
    assert!(
        far_at.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most ten years")),
        "{}",
        far_at.text
    );
    let ok = create(json!({"expires_in": "3650d"})).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}
