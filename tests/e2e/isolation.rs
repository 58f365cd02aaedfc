//! Tenant isolation on the MCP gateway: a key reaches the projects and the demo data of
//! its own tenant only (the attacks of issue 15, against `keygated --demo` on SQLite with
//! a second tenant bootstrapped into the same database).

use keygate_e2e::{Answer, Mcp, Server, bootstrap, bootstrap_tenant};
use serde_json::{Value, json};

const DENIED: &str = r#"{"error":"insufficient_scope"}"#;

/// Every scope of the demo policy a platform key needs here.
const SCOPES: [&str; 3] = ["services:read", "services:write", "invoices:read"];

fn assert_denied(a: &Answer, what: &str) {
    assert_eq!(a.status, 403, "{what}: {}", a.text);
    assert_eq!(a.text, DENIED, "{what}");
}

/// The id of the project `name` of the tenant whose owner key is `owner`.
async fn project_id(server: &Server, owner: &str, name: &str) -> String {
    let me = server.api(owner).introspect().await;
    me.json["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("no project {name}: {}", me.text))
        .to_owned()
}

fn replicas(content: &Value) -> Value {
    content["replicas"].clone()
}

/// `service.status` of `api` in `project` (a name or an id), as `mcp` sees it.
async fn api_status(mcp: &mut Mcp, project: &str) -> Value {
    mcp.call_ok(
        "service.status",
        json!({"service": "api", "project": project}),
    )
    .await
}

#[tokio::test]
async fn another_tenants_unrestricted_key_cannot_reach_demos_shop() {
    let server = Server::demo();
    let demo_owner = server.owner_key();
    // Tenant `other` with no project at all, bootstrapped into the same database.
    let out = bootstrap(&server.database, "other", "eve", &[]);
    out.expect_code(0);
    let eve_owner = out.stdout.trim().to_owned();
    // Eve's owner mints an unrestricted key.
    let (_, eve) = server
        .api(&eve_owner)
        .new_key(json!({"name": "attack", "kind": "tenant", "scopes": SCOPES}))
        .await;
    let demo_shop = project_id(&server, &demo_owner, "shop").await;
    let mut mcp = server.api(&eve).session().await;
    assert_denied(
        &mcp.call("service.list", json!({"project": "shop"})).await,
        "service.list",
    );
    assert_denied(
        &mcp.call("invoices.list", json!({"project": "shop"})).await,
        "invoices.list",
    );
    assert_denied(
        &mcp.call(
            "service.scale",
            json!({"service": "api", "replicas": 0, "project": "shop"}),
        )
        .await,
        "service.scale",
    );
    // By demo's project id, and a project no tenant has: the same answer.
    assert_denied(
        &mcp.call("service.list", json!({"project": demo_shop}))
            .await,
        "by id",
    );
    assert_denied(
        &mcp.call("service.list", json!({"project": "nowhere"}))
            .await,
        "no such project",
    );
    // Demo's platform is untouched, and demo's own key still reaches it.
    let mut demo = server.api(&demo_owner).session().await;
    let status = api_status(&mut demo, "shop").await;
    assert_eq!(replicas(&status), 2, "{status}");
}

#[tokio::test]
async fn a_second_tenant_with_its_own_shop_reaches_only_its_own_data() {
    let server = Server::demo();
    let demo_owner = server.owner_key();
    // `--demo`: tenant `other` gets projects `shop` and `ops` of its own.
    let eve_owner = bootstrap_tenant(&server.database, "other", "eve");
    let (_, eve) = server
        .api(&eve_owner)
        .new_key(json!({"name": "platform", "kind": "tenant", "scopes": SCOPES}))
        .await;
    let mut eve_mcp = server.api(&eve).session().await;
    let mut demo = server.api(&demo_owner).session().await;

    // Demo changes its shop first; eve's shop is still the seeded data set.
    demo.call_ok(
        "service.scale",
        json!({"service": "api", "replicas": 3, "project": "shop"}),
    )
    .await;
    demo.call_ok(
        "service.deploy",
        json!({"service": "web", "project": "shop"}),
    )
    .await;
    let list = eve_mcp
        .call_ok("service.list", json!({"project": "shop"}))
        .await;
    let names: Vec<&str> = list["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["api", "web", "worker"], "{list}");
    assert_eq!(list["services"][0]["replicas"], 2, "{list}");
    assert_eq!(
        list["services"][1]["state"], "waiting_for_first_deploy",
        "{list}"
    );
    let invoices = eve_mcp
        .call_ok("invoices.list", json!({"project": "shop"}))
        .await;
    assert_eq!(invoices["invoices"].as_array().map(Vec::len), Some(3));

    // Eve's scale lands in eve's data set only.
    let scaled = eve_mcp
        .call_ok(
            "service.scale",
            json!({"service": "api", "replicas": 9, "project": "shop"}),
        )
        .await;
    assert_eq!(scaled["previous_replicas"], 2, "{scaled}");
    let demo_api = api_status(&mut demo, "shop").await;
    assert_eq!(replicas(&demo_api), 3, "{demo_api}");
    let eve_api = api_status(&mut eve_mcp, "shop").await;
    assert_eq!(replicas(&eve_api), 9, "{eve_api}");
    // Eve's shop, named by its id, is eve's shop.
    let eve_shop = project_id(&server, &eve_owner, "shop").await;
    let by_id = api_status(&mut eve_mcp, &eve_shop).await;
    assert_eq!(replicas(&by_id), 9, "{by_id}");
}

#[tokio::test]
async fn a_restricted_key_naming_another_tenants_project_id_is_refused() {
    let server = Server::demo();
    let demo_owner = server.owner_key();
    let eve_owner = bootstrap_tenant(&server.database, "other", "eve");
    let (_, eve) = server
        .api(&eve_owner)
        .new_key(
            json!({"name": "shop only", "kind": "tenant", "scopes": SCOPES, "projects": ["shop"]}),
        )
        .await;
    let demo_shop = project_id(&server, &demo_owner, "shop").await;
    let eve_shop = project_id(&server, &eve_owner, "shop").await;
    assert_ne!(demo_shop, eve_shop);
    let mut mcp = server.api(&eve).session().await;
    for tool in ["service.list", "invoices.list"] {
        assert_denied(&mcp.call(tool, json!({"project": demo_shop})).await, tool);
    }
    assert_denied(
        &mcp.call(
            "service.scale",
            json!({"service": "api", "replicas": 0, "project": demo_shop}),
        )
        .await,
        "service.scale",
    );
    // Its own shop, by name and then by id, is allowed.
    mcp.call_ok("service.list", json!({"project": "shop"}))
        .await;
    mcp.call_ok("service.list", json!({"project": eve_shop}))
        .await;
}
