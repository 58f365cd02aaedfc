//! The confirmation gates through the MCP gateway of the real server.

use keygate_e2e::{Answer, Mcp, Server};
use serde_json::{Value, json};

fn structured(a: &Answer) -> &Value {
    &a.json["result"]["structuredContent"]
}

#[track_caller]
fn assert_gate(a: &Answer, code: &str) {
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.is_tool_error(), "a gate answers a tool error: {}", a.text);
    assert_eq!(a.tool_code(), Some(code), "{}", a.text);
}

fn challenge(a: &Answer) -> String {
    structured(a)["challenge"]
        .as_str()
        .unwrap_or_else(|| panic!("a challenge: {}", a.text))
        .to_owned()
}

async fn services(mcp: &mut Mcp) -> Vec<String> {
    let listed = mcp.call_ok("service.list", json!({})).await;
    let mut names: Vec<String> = listed["services"]
        .as_array()
        .unwrap_or_else(|| panic!("a services array: {listed}"))
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

async fn session(server: &Server, key: &str) -> Mcp {
    let mut mcp = server.api(key).mcp();
    mcp.initialize().await;
    mcp
}

#[tokio::test]
async fn delete_needs_a_challenge_from_the_same_session_and_the_exact_name() {
    let server = Server::demo();
    let owner = server.owner_key();
    let mut one = session(&server, &owner).await;
    let mut two = session(&server, &owner).await;
    assert_ne!(one.session, two.session);

    let first = one.call("service.delete", json!({"service":"api"})).await;
    assert_gate(&first, "CONFIRMATION_REQUIRED");
    let sc = structured(&first);
    assert_eq!(sc["operation"], "service.delete");
    assert_eq!(sc["target"], "api");
    assert!(sc["expires_at"].is_string(), "{sc}");
    assert!(sc["message"].is_string(), "{sc}");
    let text = first.json["result"]["content"][0]["text"]
        .as_str()
        .expect("a text content");
    assert!(text.contains("api"), "{text}");
    let c = challenge(&first);

    // A wrong target name is refused and does not spend the challenge.
    let wrong = one
        .call(
            "service.delete",
            json!({"service":"api","confirm":{"challenge":c,"target":"API "}}),
        )
        .await;
    assert_gate(&wrong, "CONFIRMATION_INVALID");
    // A second session cannot use it (and spends it).
    let other = two
        .call(
            "service.delete",
            json!({"service":"api","confirm":{"challenge":c,"target":"api"}}),
        )
        .await;
    assert_gate(&other, "CONFIRMATION_INVALID");
    assert!(services(&mut one).await.contains(&"api".to_owned()));

    // A fresh challenge in the same session with the exact name goes through, once.
    let first = one.call("service.delete", json!({"service":"api"})).await;
    let c = challenge(&first);
    let ok = one
        .call(
            "service.delete",
            json!({"service":"api","confirm":{"challenge":c,"target":"api"}}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(!ok.is_tool_error(), "{}", ok.text);
    assert!(!services(&mut one).await.contains(&"api".to_owned()));
    let again = one
        .call(
            "service.delete",
            json!({"service":"api","confirm":{"challenge":c,"target":"api"}}),
        )
        .await;
    assert_gate(&again, "CONFIRMATION_INVALID");

    // A challenge for one target does not confirm another.
    let first = one.call("service.delete", json!({"service":"web"})).await;
    let c = challenge(&first);
    let wrong = one
        .call(
            "service.delete",
            json!({"service":"worker","confirm":{"challenge":c,"target":"worker"}}),
        )
        .await;
    assert_gate(&wrong, "CONFIRMATION_INVALID");
    let left = services(&mut one).await;
    assert!(left.contains(&"web".to_owned()) && left.contains(&"worker".to_owned()));

    let audit = server.api(&owner).get("/api/v1/audit").await;
    for action in [
        "gate.confirmation_required",
        "gate.confirmation_invalid",
        "gate.confirmed",
    ] {
        assert!(audit.text.contains(action), "audit lacks {action}");
    }
    assert!(
        !audit.text.contains(&c),
        "the audit log never holds a challenge"
    );
}

#[tokio::test]
async fn the_gateway_never_deletes_its_own_service() {
    let server = Server::demo();
    let mut mcp = session(&server, &server.owner_key()).await;
    for name in ["keygate", "KeyGate"] {
        let a = mcp.call("service.delete", json!({"service": name})).await;
        assert_gate(&a, "SELF_SERVICE_BLOCKED");
        assert!(structured(&a).get("challenge").is_none(), "{}", a.text);
        let forged = json!({"challenge": "A".repeat(32), "target": name});
        let a = mcp
            .call(
                "service.delete",
                json!({"service": name, "confirm": forged}),
            )
            .await;
        assert_gate(&a, "SELF_SERVICE_BLOCKED");
    }
    assert!(services(&mut mcp).await.contains(&"keygate".to_owned()));
}

#[tokio::test]
async fn replacing_a_failed_service_needs_the_evidence_read_first() {
    let server = Server::demo();
    let owner = server.owner_key();
    let mut mcp = session(&server, &owner).await;
    let evidence = [
        "service.events",
        "service.logs.build",
        "service.logs.runtime",
    ];

    let a = mcp
        .call(
            "service.replace",
            json!({"service":"worker","image":"shop/worker:2.3.1"}),
        )
        .await;
    assert_gate(&a, "DIAGNOSIS_REQUIRED");
    let mut missing: Vec<&str> = structured(&a)["evidence_missing"]
        .as_array()
        .expect("evidence_missing")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    missing.sort_unstable();
    assert_eq!(missing, evidence);

    // Reads in another session do not count for this one.
    let mut other = session(&server, &owner).await;
    for tool in evidence {
        other.call_ok(tool, json!({"service":"worker"})).await;
    }
    let a = mcp
        .call(
            "service.replace",
            json!({"service":"worker","image":"shop/worker:2.3.1"}),
        )
        .await;
    assert_gate(&a, "DIAGNOSIS_REQUIRED");

    mcp.call_ok("service.events", json!({"service":"worker"}))
        .await;
    let a = mcp
        .call(
            "service.replace",
            json!({"service":"worker","image":"shop/worker:2.3.1"}),
        )
        .await;
    assert_gate(&a, "DIAGNOSIS_REQUIRED");
    let missing = structured(&a)["evidence_missing"].as_array().map(Vec::len);
    assert_eq!(missing, Some(2), "{}", a.text);
    mcp.call_ok("service.logs.build", json!({"service":"worker"}))
        .await;
    mcp.call_ok("service.logs.runtime", json!({"service":"worker"}))
        .await;

    let a = mcp
        .call(
            "service.replace",
            json!({"service":"worker","image":"shop/worker:2.3.1"}),
        )
        .await;
    assert_gate(&a, "CONFIRMATION_REQUIRED");
    let c = challenge(&a);
    let ok = mcp
        .call(
            "service.replace",
            json!({"service":"worker","image":"shop/worker:2.3.1",
                   "confirm":{"challenge":c,"target":"worker"}}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(!ok.is_tool_error(), "{}", ok.text);
}

#[tokio::test]
async fn services_without_failures_and_ordinary_operations_are_never_gated() {
    let server = Server::demo();
    let mut mcp = session(&server, &server.owner_key()).await;
    for service in ["web", "api"] {
        let a = mcp
            .call(
                "service.replace",
                json!({"service": service, "image": format!("shop/{service}:9")}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(!a.is_tool_error(), "replace {service}: {}", a.text);
    }
    for (tool, args) in [
        ("service.deploy", json!({"service":"worker"})),
        ("service.restart", json!({"service":"worker"})),
        ("service.scale", json!({"service":"worker","replicas":3})),
        (
            "service.env.set",
            json!({"service":"worker","key":"LOG_LEVEL","value":"debug"}),
        ),
    ] {
        let a = mcp.call(tool, args).await;
        assert_eq!(a.status, 200, "{tool}: {}", a.text);
        assert!(!a.is_tool_error(), "{tool}: {}", a.text);
        assert!(a.tool_code().is_none(), "{tool} was gated: {}", a.text);
    }
}

#[tokio::test]
async fn tools_list_shows_only_what_the_key_may_call() {
    let server = Server::demo();
    let owner = server.owner_key();
    let admin = server.api(&owner);
    let (_, reader) = admin
        .new_key(json!({"name":"reader","kind":"user","scopes":["services:read"]}))
        .await;
    let mut mcp = session(&server, &reader).await;
    assert_eq!(
        mcp.tool_names().await,
        [
            "service.events",
            "service.list",
            "service.logs.build",
            "service.logs.runtime",
            "service.status",
        ]
    );
    let a = mcp.call("service.restart", json!({"service":"api"})).await;
    assert_eq!(a.status, 403, "{}", a.text);

    let mut full = session(&server, &owner).await;
    let listed = full.rpc("tools/list", json!({})).await;
    let tools = listed.json["result"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 15, "the owner sees every demo tool");
    for tool in tools {
        let gated = matches!(
            tool["name"].as_str(),
            Some("service.delete" | "service.replace")
        );
        assert_eq!(
            tool["inputSchema"]["properties"]["confirm"].is_object(),
            gated,
            "{tool}"
        );
    }
}
