//! Two `keygated` processes on one PostgreSQL schema: revocation and confirmation
//! challenges are shared, with no cache in between.

use keygate_e2e::{KEY_REVOKED, PgSchema, Server, ServerOptions, postgres_url};
use serde_json::json;

/// Two demo gateways on one fresh schema, and the demo owner key.
async fn two_instances(admin_url: &str) -> (PgSchema, Server, Server, String) {
    let schema = PgSchema::create(admin_url, "kg_e2e").await;
    let first = Server::start(ServerOptions::demo().agent_gates().database(&schema.url));
    let owner = first.owner_key();
    let second = Server::start(ServerOptions::demo().agent_gates().database(&schema.url));
    // The database is no longer empty: the second prints no key.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(second.stdout(), "", "the owner key is printed once");
    (schema, first, second, owner)
}

#[tokio::test]
async fn a_key_revoked_through_one_instance_is_refused_by_the_other() {
    let Some(url) = postgres_url() else { return };
    let (_schema, one, two, owner) = two_instances(&url).await;
    let (id, key) = one
        .api(&owner)
        .new_tenant_key("shared", &["services:read"])
        .await;
    assert_eq!(two.api(&key).introspect().await.status, 200);
    let mut via_two = two.api(&key).mcp();
    via_two.call_ok("service.list", json!({})).await;

    one.api(&owner).revoke(&id).await;
    let a = via_two.call("service.list", json!({})).await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.text, KEY_REVOKED);
    let a = two.api(&key).introspect().await;
    assert_eq!(a.text, KEY_REVOKED);
}

#[tokio::test]
async fn a_challenge_issued_by_one_instance_is_accepted_by_the_other_once() {
    let Some(url) = postgres_url() else { return };
    let (_schema, one, two, owner) = two_instances(&url).await;
    let mut via_one = one.api(&owner).session().await;
    // The same agent session, load-balanced to the other instance.
    let mut via_two = via_one.clone().at(&two.url("/api/mcp"));

    let first = via_one
        .call("service.delete", json!({"service":"web"}))
        .await;
    assert_eq!(
        first.tool_code(),
        Some("CONFIRMATION_REQUIRED"),
        "{}",
        first.text
    );
    let challenge = first.json["result"]["structuredContent"]["challenge"]
        .as_str()
        .expect("a challenge")
        .to_owned();
    let confirm = json!({"service":"web","confirm":{"challenge":challenge,"target":"web"}});
    let ok = via_two.call("service.delete", confirm.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(!ok.is_tool_error(), "{}", ok.text);
    // Used once, on either instance.
    for mcp in [&mut via_one, &mut via_two] {
        let again = mcp.call("service.delete", confirm.clone()).await;
        assert_eq!(
            again.tool_code(),
            Some("CONFIRMATION_INVALID"),
            "{}",
            again.text
        );
    }
}
