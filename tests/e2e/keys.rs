//! Key lifecycle, tenant isolation, identity and rate limits through the real server.

use std::time::Duration;

use keygate_e2e::{KEY_REVOKED, Server, bootstrap_tenant, eventually, send};
use serde_json::{Value, json};

#[tokio::test]
async fn revocation_takes_effect_on_the_very_next_request() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let (id, key) = admin.new_tenant_key("ci", &["services:read"]).await;
    let mut mcp = server.api(&key).session().await;
    mcp.call_ok("service.list", json!({})).await;
    admin.revoke(&id).await;
    // No retry, no sleep: the first request after the revoke answered is refused.
    let a = mcp.call("service.list", json!({})).await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.text, KEY_REVOKED);
    let a = server.api(&key).introspect().await;
    assert_eq!(a.text, KEY_REVOKED);
    // Revoke is idempotent and keeps the first revocation time.
    let first = admin.get(&format!("/api/v1/keys/{id}")).await.json;
    let again = admin.revoke(&id).await;
    assert_eq!(again["revoked_at"], first["revoked_at"]);
    assert!(again["revoked_at"].is_string(), "{again}");
}

#[tokio::test]
async fn a_key_with_expires_in_expires() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let created = admin
        .create_key(
            json!({"name":"short","kind":"tenant","scopes":["services:read"],"expires_in":1}),
        )
        .await;
    assert!(created["expires_at"].is_string(), "{created}");
    let key = created["key"].as_str().expect("a key").to_owned();
    let a = server.api(&key).introspect().await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["expires_at"], created["expires_at"]);
    let expired = eventually(Duration::from_secs(5), || {
        let api = server.api(&key);
        async move {
            let a = api.introspect().await;
            (a.status == 401).then_some(a)
        }
    })
    .await
    .expect("expired within 5 s");
    assert_eq!(expired.text, r#"{"error":"expired"}"#);
}

#[tokio::test]
async fn rotation_issues_a_new_key_and_leaves_the_old_until_revoked() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let (id, old) = admin
        .new_key(json!({"name":"deploy","kind":"tenant","scopes":["services:read","services:write"],"projects":["shop"]}))
        .await;
    let rotated = admin.rotate(&id).await;
    assert_eq!(rotated["replaces"], id.as_str());
    assert_eq!(rotated["kind"], "tenant");
    assert_eq!(
        rotated["scopes"],
        json!(["services:read", "services:write"])
    );
    let new_id = rotated["id"].as_str().expect("an id").to_owned();
    assert_ne!(new_id, id);
    let new = rotated["key"].as_str().expect("a key").to_owned();
    let introspected = server.api(&new).introspect().await;
    assert_eq!(introspected.status, 200);
    assert_eq!(introspected.json["projects"][0]["name"], "shop");
    assert_eq!(
        introspected.json["projects"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        server.api(&old).introspect().await.status,
        200,
        "old key still works"
    );
    admin.revoke(&id).await;
    assert_eq!(server.api(&old).introspect().await.status, 401);
    assert_eq!(server.api(&new).introspect().await.status, 200);
    // Listings never show a hash or a raw key.
    let list = admin.get("/api/v1/keys").await;
    assert_eq!(list.status, 200);
    for raw in [&old, &new] {
        let secret = &raw[raw.len() - 36..];
        assert!(!list.text.contains(secret), "a listing shows a raw key");
    }
    assert!(!list.text.contains("hash"), "{}", list.text);
}

#[tokio::test]
async fn user_only_tools_refuse_tenant_keys() {
    let server = Server::demo();
    let admin = server.api(&server.owner_key());
    let (_, tenant) = admin
        .new_tenant_key("t", &["customers:write", "jobs:write"])
        .await;
    let mut mcp = server.api(&tenant).session().await;
    for (tool, args) in [
        ("customers.create", json!({"name":"Acme"})),
        ("jobs.create", json!({"title":"nightly"})),
    ] {
        let a = mcp.call(tool, args).await;
        assert_eq!(a.status, 403, "{tool}: {}", a.text);
        assert_eq!(a.text, r#"{"error":"insufficient_scope"}"#);
    }
    assert!(
        !mcp.tool_names()
            .await
            .contains(&"customers.create".to_owned()),
        "tools/list hides user-only tools from tenant keys"
    );
}

#[tokio::test]
async fn a_spoofed_user_header_is_ignored() {
    let server = Server::demo();
    let owner = server.owner_key();
    let me = server.api(&owner).introspect().await;
    let user_id = me.json["user"]["id"]
        .as_str()
        .expect("a user id")
        .to_owned();
    let mcp = server.api(&owner).session().await;
    let message = json!({"jsonrpc":"2.0","id":9,"method":"tools/call",
        "params":{"name":"customers.create","arguments":{"name":"Spoofless Ltd"}}});
    let a = send(
        mcp.request(&message)
            .header("x-keygate-user", "us_spoofed")
            .header("x-keygate-tenant", "tn_spoofed")
            .header("x-keygate-actor", "tenant"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.is_tool_error(), "{}", a.text);
    let created = &a.json["result"]["structuredContent"];
    let text = created.to_string();
    assert!(text.contains(&user_id), "records the real user: {text}");
    assert!(!a.text.contains("spoofed"), "{}", a.text);
}

async fn assert_not_found(answer: keygate_e2e::Answer, what: &str) {
    assert_eq!(answer.status, 404, "{what}: {}", answer.text);
    assert_eq!(answer.text, r#"{"error":"not_found"}"#, "{what}");
}

#[tokio::test]
async fn tenants_never_see_each_other_on_any_admin_route() {
    let server = Server::demo();
    let owner_a = server.owner_key();
    // A second tenant in the same SQLite file, bootstrapped while the server runs.
    let owner_b = bootstrap_tenant(&server.database, "other", "bob");
    let a = server.api(&owner_a);
    let b = server.api(&owner_b);
    assert_eq!(b.introspect().await.json["tenant"]["name"], "other");
    let (id_a, key_a) = a.new_tenant_key("a-key", &["customers:read"]).await;
    let (id_b, _) = b.new_tenant_key("b-key", &["customers:read"]).await;

    // B cannot read, revoke or rotate A's key: the answer is the one for no such key.
    assert_not_found(b.get(&format!("/api/v1/keys/{id_a}")).await, "show").await;
    assert_not_found(
        b.post(&format!("/api/v1/keys/{id_a}/revoke"), &json!({}))
            .await,
        "revoke",
    )
    .await;
    assert_not_found(
        b.post(&format!("/api/v1/keys/{id_a}/rotate"), &json!({}))
            .await,
        "rotate",
    )
    .await;
    assert_eq!(
        server.api(&key_a).introspect().await.status,
        200,
        "A's key untouched"
    );
    assert_eq!(
        a.get(&format!("/api/v1/keys/{id_a}")).await.json["revoked_at"],
        Value::Null
    );

    // Listings are per tenant.
    let list_b = b.get("/api/v1/keys").await;
    assert!(
        list_b.text.contains(&id_b) && !list_b.text.contains(&id_a),
        "{}",
        list_b.text
    );
    let list_a = a.get("/api/v1/keys").await;
    assert!(
        list_a.text.contains(&id_a) && !list_a.text.contains(&id_b),
        "{}",
        list_a.text
    );

    // Projects: both have `shop`; B's new project is B's alone, and B's key cannot name
    // a project of A's tenant that B does not have.
    let created = b.post("/api/v1/projects", &json!({"name":"b-only"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(!a.get("/api/v1/projects").await.text.contains("b-only"));
    let created = a.post("/api/v1/projects", &json!({"name":"a-only"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let bad = b
        .post(
            "/api/v1/keys",
            &json!({"name":"x","kind":"tenant","scopes":["customers:read"],"projects":["a-only"]}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);

    // Audit logs are per tenant.
    let audit_a = a.get("/api/v1/audit").await;
    assert_eq!(audit_a.status, 200, "{}", audit_a.text);
    assert!(
        audit_a.text.contains(&id_a) && !audit_a.text.contains(&id_b),
        "{}",
        audit_a.text
    );
}

#[tokio::test]
async fn over_the_key_rate_answers_429_with_retry_after() {
    let server = Server::demo_with(&["--key-rate", "2"]);
    let admin = server.api(&server.owner_key());
    let (_, key) = admin.new_tenant_key("rl", &["services:read"]).await;
    let mcp = server.api(&key).mcp();
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..10 {
        let a = mcp
            .send(&json!({"jsonrpc":"2.0","id":i,"method":"tools/call",
                "params":{"name":"service.list","arguments":{}}}))
            .await;
        statuses.push(a.status);
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let a = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    assert_eq!(a.text, r#"{"error":"rate_limited"}"#);
    let retry: u64 = a
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(retry >= 1);
    // Another key of the same tenant is not affected by this key's budget.
    let (_, other) = admin.new_tenant_key("rl2", &["services:read"]).await;
    assert_eq!(server.api(&other).introspect().await.status, 200);
}
