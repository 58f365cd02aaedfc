//! The owner admin API, introspection and the scope catalogue.

use http::StatusCode;
use serde_json::{Value, json};

use crate::util::{Reply, demo, fields, other_tenant};

const VIEW_FIELDS: [&str; 12] = [
    "id",
    "name",
    "kind",
    "user_id",
    "prefix",
    "scopes",
    "projects",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "status",
];

fn assert_view(v: &Value, extra: &[&str]) {
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want: Vec<&str> = VIEW_FIELDS.iter().chain(extra).copied().collect();
    want.sort_unstable();
    assert_eq!(keys, want, "{v}");
}

#[tokio::test]
async fn create_list_get_revoke_rotate() {
    let h = demo().await;
    let body = json!({"name": "ci agent", "kind": "tenant", "scopes": ["services:read"], "projects": ["shop"], "expires_in": "30d"});
    let r = h.post_key(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_view(&r.body, &["key"]);
    let raw = r.body["key"].as_str().unwrap().to_owned();
    assert!(raw.starts_with("kg_tk_"));
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["kind"], "tenant");
    assert_eq!(r.body["user_id"], Value::Null);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["projects"][0]["name"], "shop");
    assert!(
        r.body["projects"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("pj_")
    );
    assert!(r.body["expires_at"].is_string());

    let list = h.get("/api/v1/keys", &h.owner).await;
    assert_eq!(list.status, StatusCode::OK);
    let keys = list.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the owner key and the new one");
    for k in keys {
        assert_view(k, &[]);
    }
    assert!(!list.raw.contains(&raw));
    assert!(!list.raw.contains(&raw[raw.len() - 36..]), "no secret part");

    let got = h.get(&format!("/api/v1/keys/{id}"), &h.owner).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_view(&got.body, &[]);

    // A user key created through the API belongs to the calling owner.
    let (_, user) = h
        .create_key(json!({"name": "mine", "kind": "user", "scopes": ["services:read"]}))
        .await;
    assert_eq!(user["user_id"], json!(h.owner_id.as_str()));
    assert_eq!(user["projects"], Value::Null);

    let rotated = h
        .post(&format!("/api/v1/keys/{id}/rotate"), &h.owner, json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.raw);
    assert_eq!(rotated.body["replaces"], json!(id));
    assert_view(&rotated.body, &["key", "replaces"]);
    assert_eq!(rotated.body["scopes"], json!(["services:read"]));
    let new_raw = rotated.body["key"].as_str().unwrap();
    assert_ne!(new_raw, raw);
    // The old key stays active until revoked.
    assert_eq!(h.get("/api/v1/token", &raw).await.status, StatusCode::OK);
    assert_eq!(h.get("/api/v1/token", new_raw).await.status, StatusCode::OK);

    let first = h.revoke(&id).await;
    assert_eq!(first.body["status"], "revoked");
    let again = h
        .post(&format!("/api/v1/keys/{id}/revoke"), &h.owner, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "revoking twice is fine");
    assert_eq!(again.body["revoked_at"], first.body["revoked_at"]);
    assert_eq!(
        h.get("/api/v1/token", &raw).await.status,
        StatusCode::UNAUTHORIZED
    );

    let audit = h.get("/api/v1/audit?limit=10", &h.owner).await;
    assert_eq!(audit.status, StatusCode::OK);
    let actions = fields(&audit.body["events"], "action");
    for a in ["key.created", "key.rotated", "key.revoked"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    assert!(!audit.raw.contains(&raw));
    let bad = h.get("/api/v1/audit?limit=0", &h.owner).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn create_body_validation_is_precise() {
    let h = demo().await;
    let cases = [
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "colour": "red"}),
            "colour",
        ),
        (json!({"name": "x", "kind": "robot", "scopes": []}), "robot"),
        (
            json!({"name": "x", "kind": "tenant", "scopes": ["services:root"]}),
            "unknown scope `services:root`",
        ),
        (
            json!({"name": "", "kind": "tenant", "scopes": []}),
            "must not be empty",
        ),
        (
            json!({"name": "a".repeat(65), "kind": "tenant", "scopes": []}),
            "longer than 64",
        ),
        (
            json!({"name": "a\u{7}b", "kind": "tenant", "scopes": []}),
            "control characters",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "projects": ["nope"]}),
            "unknown project `nope`",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "expires_at": "2001-01-01T00:00:00Z"}),
            "in the future",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "expires_at": "tomorrow"}),
            "RFC 3339",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "expires_in": "3w"}),
            "not a duration",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "expires_in": 0}),
            "at least 1 second",
        ),
        (
            json!({"name": "x", "kind": "tenant", "scopes": [], "expires_in": 60, "expires_at": "2099-01-01T00:00:00Z"}),
            "not both",
        ),
        (json!({"kind": "tenant", "scopes": []}), "name"),
    ];
    for (body, needle) in cases {
        let r = h.post("/api/v1/keys", &h.owner, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.raw);
        assert_eq!(r.body["error"], "invalid_request", "{body}");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    for ok in [
        json!(3600),
        json!("45s"),
        json!("90m"),
        json!("12h"),
        json!("30d"),
    ] {
        let body =
            json!({"name": "x", "kind": "tenant", "scopes": ["services:read"], "expires_in": ok});
        let r = h.post_key(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ok}: {}", r.raw);
    }
    // Within the ten-year cap (2099 was accepted before the cap applied to expires_at).
    let in_two_years = (time::OffsetDateTime::now_utc() + time::Duration::days(730))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = h
        .post_key(json!({"name": "x", "kind": "tenant", "scopes": [], "expires_at": in_two_years}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert_eq!(r.body["expires_at"], in_two_years.as_str());
}

#[tokio::test]
async fn expires_at_and_expires_in_share_one_ten_year_cap() {
    let h = demo().await;
    let create = |expiry: Value| {
        let mut body = json!({"name": "x", "kind": "tenant", "scopes": []});
        body.as_object_mut()
            .unwrap()
            .extend(expiry.as_object().unwrap().clone());
        h.post("/api/v1/keys", &h.owner, body)
    };
    let ten_years = 10 * 366 * 86_400_u64;
    let now = time::OffsetDateTime::now_utc();
    let rfc = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut messages = Vec::new();
    for too_far in [
        json!({"expires_at": "9999-12-31T23:59:59Z"}),
        json!({"expires_at": rfc(now + time::Duration::days(10 * 366 + 1))}),
        json!({"expires_in": ten_years + 1}),
        json!({"expires_in": "3661d"}),
        json!({"expires_in": u64::MAX}),
    ] {
        let r = create(too_far.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{too_far}: {}", r.raw);
        messages.push(r.body["message"].as_str().unwrap().to_owned());
    }
    assert!(messages.iter().all(|m| m == &messages[0]), "{messages:?}");
    assert!(messages[0].contains("at most ten years"), "{}", messages[0]);
    for within in [
        json!({"expires_in": ten_years}),
        json!({"expires_in": "3660d"}),
        json!({"expires_at": rfc(now + time::Duration::days(10 * 366 - 1))}),
    ] {
        let r = create(within.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{within}: {}", r.raw);
    }
}

/// Names hiding a bidirectional override or an invisible character, and the code point
/// the refusal names.
const INVISIBLE: [(&str, &str); 4] = [
    ("shop\u{202E}gnp.exe", "U+202E"),
    ("ci\u{200B}bot", "U+200B"),
    ("\u{2066}deploy\u{2069}", "U+2066"),
    ("key\u{FEFF}", "U+FEFF"),
];

/// Asserts that `r` refused the `what` name `name` for its character `code` (`U+…`).
fn assert_invisible_refused(r: &Reply, what: &str, name: &str, code: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}: {}", r.raw);
    let message = r.body["message"].as_str().unwrap();
    let start = format!("{what} name must not contain invisible or bidirectional");
    assert!(
        message.starts_with(&start) && message.contains(code),
        "{message}"
    );
}

#[tokio::test]
async fn names_with_bidi_or_invisible_characters_are_refused() {
    let h = demo().await;
    for (name, code) in INVISIBLE {
        let r = h
            .post_key(json!({"name": name, "kind": "tenant", "scopes": []}))
            .await;
        assert_invisible_refused(&r, "key", name, code);
        let r = h
            .post("/api/v1/projects", &h.owner, json!({"name": name}))
            .await;
        assert_invisible_refused(&r, "project", name, code);
    }
    let projects = h.get("/api/v1/projects", &h.owner).await;
    assert_eq!(projects.body["projects"].as_array().unwrap().len(), 2);
    // Ordinary names in any script are fine.
    let r = h
        .post("/api/v1/projects", &h.owner, json!({"name": "Zürich 東京"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
}

#[tokio::test]
async fn answers_carrying_a_raw_key_are_not_stored_by_caches() {
    let h = demo().await;
    let r = h
        .post_key(json!({"name": "ci", "kind": "tenant", "scopes": ["services:read"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert!(r.body["key"].is_string());
    assert_eq!(r.headers["cache-control"], "no-store");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let rotated = h
        .post(&format!("/api/v1/keys/{id}/rotate"), &h.owner, json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.raw);
    assert!(rotated.body["key"].is_string());
    assert_eq!(rotated.headers["cache-control"], "no-store");
}

/// A revoked or expired key is not rotated: 409 `conflict` (the request is well
/// formed; the key's state refuses it), and nothing is created.
#[tokio::test]
async fn a_revoked_or_expired_key_is_not_rotated() {
    let h = demo().await;
    let (_, id) = h.reader_key("old").await;
    h.revoke(&id).await;
    let before = h.get("/api/v1/keys", &h.owner).await.body["keys"]
        .as_array()
        .unwrap()
        .len();
    let r = h
        .post(&format!("/api/v1/keys/{id}/rotate"), &h.owner, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.raw);
    assert_eq!(
        r.body,
        json!({"error": "conflict", "message": "a revoked key cannot be rotated; create a new key"})
    );
    let after = h.get("/api/v1/keys", &h.owner).await.body["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before, "no key was created");

    let (_, short) = h
        .create_key(
            json!({"name": "short", "kind": "tenant", "scopes": ["services:read"], "expires_in": 1}),
        )
        .await;
    let id = short["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = h
        .post(&format!("/api/v1/keys/{id}/rotate"), &h.owner, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.raw);
    assert_eq!(r.body["error"], "conflict");
}

#[tokio::test]
async fn projects_and_tenant_isolation() {
    let h = demo().await;
    let r = h
        .post("/api/v1/projects", &h.owner, json!({"name": "billing"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    assert!(r.body["id"].as_str().unwrap().starts_with("pj_"));
    let dup = h
        .post("/api/v1/projects", &h.owner, json!({"name": "billing"}))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let list = h.get("/api/v1/projects", &h.owner).await;
    let names = fields(&list.body["projects"], "name");
    assert_eq!(names, ["billing", "ops", "shop"]);

    // A second tenant in the same store sees none of it.
    let acme = other_tenant(&*h.store, "acme", "alice", &["shop"]).await;
    let acme_id = h.principal(&acme).await.key_id.to_string();
    let demo_key = h.tenant_key(&["services:read"]).await;
    let demo_id = h.principal(&demo_key).await.key_id.to_string();

    let keys = h.get("/api/v1/keys", &acme).await;
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1);
    assert!(!keys.raw.contains(&demo_id));
    for path in [
        format!("/api/v1/keys/{demo_id}"),
        "/api/v1/keys/not-an-id".to_owned(),
    ] {
        let r = h.get(&path, &acme).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.raw, r#"{"error":"not_found"}"#);
    }
    for action in ["revoke", "rotate"] {
        // Neither owner reaches the other tenant's key.
        for (id, caller) in [(&demo_id, &acme), (&acme_id, &h.owner)] {
            let path = format!("/api/v1/keys/{id}/{action}");
            let r = h.post(&path, caller, json!({})).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
        }
    }
    assert_eq!(
        h.get("/api/v1/token", &demo_key).await.status,
        StatusCode::OK
    );
    let projects = h.get("/api/v1/projects", &acme).await;
    assert_eq!(projects.body["projects"].as_array().unwrap().len(), 1);
    let audit = h.get("/api/v1/audit", &acme).await;
    assert!(!audit.raw.contains(&demo_id));
}

#[tokio::test]
async fn introspection_and_catalogue() {
    let h = demo().await;
    let r = h.get("/api/v1/token", &h.owner).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut keys: Vec<&str> = r
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "expires_at",
            "id",
            "kind",
            "projects",
            "read_only",
            "scopes",
            "tenant",
            "user"
        ]
    );
    assert_eq!(r.body["kind"], "user");
    assert_eq!(r.body["tenant"]["name"], "demo");
    assert_eq!(r.body["user"]["name"], "owner");
    assert_eq!(r.body["read_only"], false);
    assert_eq!(r.body["expires_at"], Value::Null);
    let names = fields(&r.body["projects"], "name");
    assert_eq!(
        names,
        ["ops", "shop"],
        "unrestricted: every project, resolved"
    );

    let (reader, _) = h
        .create_key(json!({"name": "r", "kind": "tenant", "scopes": ["services:read"], "projects": ["shop"], "expires_in": 3600}))
        .await;
    let r = h.get("/api/v1/token", &reader).await;
    assert_eq!(r.body["kind"], "tenant");
    assert_eq!(r.body["user"], Value::Null);
    assert_eq!(r.body["read_only"], true);
    assert_eq!(r.body["scopes"], json!(["services:read"]));
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["projects"][0]["name"], "shop");
    assert!(r.body["expires_at"].as_str().unwrap().ends_with('Z'));

    let c = h.get("/api/v1/scopes", &reader).await;
    let scopes = c.body["scopes"].as_array().unwrap();
    assert!(scopes.iter().any(|s| s["name"] == "keys:admin"));
    assert!(scopes.iter().any(|s| s["name"] == "gates:approve"));
    assert!(
        scopes
            .iter()
            .all(|s| s["description"].as_str().is_some_and(|d| !d.is_empty()))
    );
    assert_eq!(scopes.len(), 8);
}

#[tokio::test]
async fn usage_limited_keys_are_created_shown_spent_and_refused_with_403() {
    let h = demo().await;
    let (raw, view) = h
        .create_key(
            json!({"name": "metered", "kind": "tenant", "scopes": ["services:read"],
            "remaining": 2, "refill": {"interval": "daily", "amount": 5}}),
        )
        .await;
    assert_view(&view, &["key", "remaining", "refill"]);
    assert_eq!(view["remaining"], 2);
    assert_eq!(view["refill"], json!({"interval": "daily", "amount": 5}));
    let id = view["id"].as_str().unwrap().to_owned();
    // Two verified requests pass, the third is refused, with the wait for the refill.
    for left in [1, 0] {
        let r = h.get("/api/v1/token", &raw).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let got = h.get(&format!("/api/v1/keys/{id}"), &h.owner).await;
        assert_eq!(got.body["remaining"], left);
    }
    let r = h.get("/api/v1/token", &raw).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.raw, r#"{"error":"usage_exceeded"}"#);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    // The MCP gateway refuses it the same way.
    let r = h
        .post(
            "/api/mcp",
            &raw,
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.raw, r#"{"error":"usage_exceeded"}"#);
    // The listing shows the limit; a key without one shows neither field.
    let list = h.get("/api/v1/keys", &h.owner).await;
    let keys = list.body["keys"].as_array().unwrap();
    let metered = keys.iter().find(|k| k["id"] == json!(id)).unwrap();
    assert_view(metered, &["remaining", "refill"]);
    assert_eq!(metered["remaining"], 0);
    let owner = keys.iter().find(|k| k["id"] != json!(id)).unwrap();
    assert_view(owner, &[]);

    // Without a refill: no Retry-After. A revoked limited key is 401 as before.
    let (raw, view) = h
        .create_key(json!({"name": "once", "kind": "tenant", "scopes": [], "remaining": 1}))
        .await;
    assert_view(&view, &["key", "remaining"]);
    assert_eq!(h.get("/api/v1/token", &raw).await.status, StatusCode::OK);
    let r = h.get("/api/v1/token", &raw).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get("retry-after").is_none());
    let (raw, view) = h
        .create_key(json!({"name": "gone", "kind": "tenant", "scopes": [], "remaining": 5}))
        .await;
    let id = view["id"].as_str().unwrap();
    h.revoke(id).await;
    let r = h.get("/api/v1/token", &raw).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["reason"], "key_revoked");
    let got = h.get(&format!("/api/v1/keys/{id}"), &h.owner).await;
    assert_eq!(got.body["remaining"], 5, "a refused key spends nothing");
}

#[tokio::test]
async fn usage_limits_that_make_no_sense_are_refused_with_a_precise_400() {
    let h = demo().await;
    let base = json!({"name": "m", "kind": "tenant", "scopes": []});
    for (extra, message) in [
        (
            json!({"remaining": 0}),
            "remaining must be a whole number above zero",
        ),
        (
            json!({"remaining": -3}),
            "remaining must be a whole number above zero",
        ),
        (
            json!({"refill": {"interval": "daily", "amount": 5}}),
            "refill needs remaining",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "fortnightly", "amount": 5}}),
            "refill interval `fortnightly`: expected daily, monthly or a duration",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "0s", "amount": 5}}),
            "refill interval `0s`",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "daily", "amount": 0}}),
            "refill.amount must be a whole number above zero",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "daily", "amount": -1}}),
            "refill.amount must be a whole number above zero",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "daily"}}),
            "missing field `amount`",
        ),
        (
            json!({"remaining": 5, "refill": {"interval": "daily", "amount": 1, "day": 3}}),
            "unknown field `day`",
        ),
        (json!({"remaining": "lots"}), "invalid type"),
    ] {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = h.post("/api/v1/keys", &h.owner, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.raw);
        assert_eq!(r.body["error"], "invalid_request", "{}", r.raw);
        let got = r.body["message"].as_str().unwrap();
        assert!(got.contains(message), "{body}: {got}");
    }
    // Nothing was created.
    let list = h.get("/api/v1/keys", &h.owner).await;
    assert_eq!(list.body["keys"].as_array().unwrap().len(), 1);
}
