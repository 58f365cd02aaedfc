//! The confirmation gates through the MCP gateway of the real server.
//!
//! Most tests here check the agent-relayed challenge's mechanics, on the demo policy
//! with `approval = "agent"` ([`agent_demo`]); the demo's own policy asks a person
//! (last test).

use keygate_e2e::{Answer, Mcp, Server, ServerOptions};
use serde_json::{Value, json};

/// `keygated --demo` with the demo policy's gates set to the agent-relayed challenge
/// (`approval = "agent"`).
fn agent_demo(args: &[&str]) -> Server {
    Server::start(ServerOptions::demo().agent_gates().args(args))
}

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

/// `args` with a `confirm` of `challenge` for `target`.
fn confirmed(args: &Value, challenge: &str, target: &str) -> Value {
    let mut args = args.clone();
    args["confirm"] = json!({"challenge": challenge, "target": target});
    args
}

/// The call went through: no gate, no tool error.
#[track_caller]
fn assert_ran(a: &Answer) {
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.is_tool_error(), "{}", a.text);
}

async fn has_service(mcp: &mut Mcp, name: &str) -> bool {
    services(mcp).await.contains(&name.to_owned())
}

/// The text of a tool answer.
fn answer_text(a: &Answer) -> &str {
    a.json["result"]["content"][0]["text"]
        .as_str()
        .expect("a text content")
}

/// `key` approves the approval `id` of `target`.
async fn approve(server: &Server, key: &str, id: &str, target: &str) -> Answer {
    let path = format!("/api/v1/approvals/{id}/approve");
    server
        .api(key)
        .post(&path, &json!({"target": target}))
        .await
}

async fn session(server: &Server, key: &str) -> Mcp {
    server.api(key).session().await
}

#[tokio::test]
async fn delete_needs_a_challenge_from_the_same_session_and_the_exact_name() {
    let server = agent_demo(&[]);
    let owner = server.owner_key();
    let mut one = session(&server, &owner).await;
    let mut two = session(&server, &owner).await;
    assert_ne!(one.session, two.session);

    let api = json!({"service":"api"});
    let first = one.call("service.delete", api.clone()).await;
    assert_gate(&first, "CONFIRMATION_REQUIRED");
    let sc = structured(&first);
    assert_eq!(sc["operation"], "service.delete");
    assert_eq!(sc["target"], "api");
    assert!(sc["expires_at"].is_string(), "{sc}");
    assert!(sc["message"].is_string(), "{sc}");
    let text = answer_text(&first);
    assert!(text.contains("api"), "{text}");
    let c = challenge(&first);

    // A wrong target name is refused and does not spend the challenge.
    let wrong = one
        .call("service.delete", confirmed(&api, &c, "API "))
        .await;
    assert_gate(&wrong, "CONFIRMATION_INVALID");
    // A second session cannot use it (and spends it).
    let other = two.call("service.delete", confirmed(&api, &c, "api")).await;
    assert_gate(&other, "CONFIRMATION_INVALID");
    assert!(has_service(&mut one, "api").await);

    // A fresh challenge in the same session with the exact name goes through, once.
    let first = one.call("service.delete", api.clone()).await;
    let c = challenge(&first);
    let ok = one.call("service.delete", confirmed(&api, &c, "api")).await;
    assert_ran(&ok);
    assert!(!has_service(&mut one, "api").await);
    let again = one.call("service.delete", confirmed(&api, &c, "api")).await;
    assert_gate(&again, "CONFIRMATION_INVALID");

    // A challenge for one target does not confirm another.
    let first = one.call("service.delete", json!({"service":"web"})).await;
    let c = challenge(&first);
    let worker = json!({"service":"worker"});
    let wrong = one
        .call("service.delete", confirmed(&worker, &c, "worker"))
        .await;
    assert_gate(&wrong, "CONFIRMATION_INVALID");
    let left = services(&mut one).await;
    assert!(left.contains(&"web".to_owned()) && left.contains(&"worker".to_owned()));

    let audit = server.api(&owner).get("/api/v1/audit").await;
    for action in [
        "gate.confirmation_required",
        "gate.confirmation_invalid",
        "gate.approved",
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
    let server = agent_demo(&[]);
    let mut mcp = session(&server, &server.owner_key()).await;
    for name in ["keygate", "KeyGate"] {
        let args = json!({"service": name});
        let a = mcp.call("service.delete", args.clone()).await;
        assert_gate(&a, "SELF_SERVICE_BLOCKED");
        assert!(structured(&a).get("challenge").is_none(), "{}", a.text);
        let forged = confirmed(&args, &"A".repeat(32), name);
        let a = mcp.call("service.delete", forged).await;
        assert_gate(&a, "SELF_SERVICE_BLOCKED");
    }
    assert!(has_service(&mut mcp, "keygate").await);
}

#[tokio::test]
async fn replacing_a_failed_service_needs_the_evidence_read_first() {
    let server = agent_demo(&[]);
    let owner = server.owner_key();
    let mut mcp = session(&server, &owner).await;
    let evidence = [
        "service.events",
        "service.logs.build",
        "service.logs.runtime",
    ];

    let replace = json!({"service":"worker","image":"shop/worker:2.3.1"});
    let a = mcp.call("service.replace", replace.clone()).await;
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
    let a = mcp.call("service.replace", replace.clone()).await;
    assert_gate(&a, "DIAGNOSIS_REQUIRED");

    mcp.call_ok("service.events", json!({"service":"worker"}))
        .await;
    let a = mcp.call("service.replace", replace.clone()).await;
    assert_gate(&a, "DIAGNOSIS_REQUIRED");
    let missing = structured(&a)["evidence_missing"].as_array().map(Vec::len);
    assert_eq!(missing, Some(2), "{}", a.text);
    mcp.call_ok("service.logs.build", json!({"service":"worker"}))
        .await;
    mcp.call_ok("service.logs.runtime", json!({"service":"worker"}))
        .await;

    let a = mcp.call("service.replace", replace.clone()).await;
    assert_gate(&a, "CONFIRMATION_REQUIRED");
    let c = challenge(&a);
    let ok = mcp
        .call("service.replace", confirmed(&replace, &c, "worker"))
        .await;
    assert_ran(&ok);
}

#[tokio::test]
async fn services_without_failures_and_ordinary_operations_are_never_gated() {
    let server = agent_demo(&[]);
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
    let server = agent_demo(&[]);
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

async fn image(mcp: &mut Mcp, service: &str) -> String {
    let status = mcp
        .call_ok("service.status", json!({ "service": service }))
        .await;
    status["image"]
        .as_str()
        .unwrap_or_else(|| panic!("an image: {status}"))
        .to_owned()
}

#[track_caller]
fn assert_reason(a: &Answer, reason: &str) {
    assert_gate(a, "CONFIRMATION_INVALID");
    assert_eq!(structured(a)["reason"], reason, "{}", a.text);
}

/// The arguments a gate answer names, in `structuredContent` and in the text.
#[track_caller]
fn assert_names_arguments(a: &Answer, arguments: &Value, canonical: &str) {
    assert_eq!(&structured(a)["arguments"], arguments, "{}", a.text);
    let text = answer_text(a);
    assert!(
        text.contains(canonical),
        "the text names {canonical}: {text}"
    );
    assert_eq!(structured(a)["message"], text);
}

#[tokio::test]
async fn the_gateway_never_replaces_its_own_service() {
    let server = agent_demo(&[]);
    let owner = server.owner_key();
    let mut mcp = session(&server, &owner).await;
    let before = image(&mut mcp, "keygate").await;
    let args = json!({"service": "keygate", "image": "evil/keygated:1"});
    // keygate has no failed deploys, so without `protect` the evidence gate let it by.
    let a = mcp.call("service.replace", args.clone()).await;
    assert_gate(&a, "SELF_SERVICE_BLOCKED");
    assert!(structured(&a).get("challenge").is_none(), "{}", a.text);
    assert_names_arguments(
        &a,
        &args,
        r#"{"image":"evil/keygated:1","service":"keygate"}"#,
    );
    // Without a session, and with a forged confirm.
    let mut stateless = server.api(&owner).mcp();
    let a = stateless.call("service.replace", args.clone()).await;
    assert_gate(&a, "SELF_SERVICE_BLOCKED");
    let forged = confirmed(&args, &"A".repeat(32), "keygate");
    let a = mcp.call("service.replace", forged).await;
    assert_gate(&a, "SELF_SERVICE_BLOCKED");
    assert_eq!(image(&mut mcp, "keygate").await, before);

    let audit = server.api(&owner).get("/api/v1/audit").await;
    assert!(
        audit.text.contains("gate.self_service_blocked")
            && audit.text.contains("service.replace:keygate"),
        "{}",
        audit.text
    );
}

#[tokio::test]
async fn look_alikes_of_the_protected_service_are_blocked() {
    // Many calls in a row: more than the default per-key rate.
    let server = agent_demo(&["--key-rate", "100000", "--tenant-rate", "100000"]);
    let mut mcp = session(&server, &server.owner_key()).await;
    for tool in ["service.delete", "service.replace"] {
        for name in keygate_test::LOOK_ALIKES {
            let args = json!({"service": name, "image": "evil/keygated:1"});
            let a = mcp.call(tool, args.clone()).await;
            assert_gate(&a, "SELF_SERVICE_BLOCKED");
            assert_eq!(structured(&a)["target"], name, "{}", a.text);
            let forged = confirmed(&args, &"A".repeat(32), name);
            let a = mcp.call(tool, forged).await;
            assert_gate(&a, "SELF_SERVICE_BLOCKED");
        }
    }
    let a = mcp
        .call("service.delete", json!({"service": "keygate\u{200b}"}))
        .await;
    let text = structured(&a)["message"].as_str().expect("a message");
    assert!(
        text.contains(r"`keygate\u{200b}` reads as `keygate`, which is protected"),
        "{text}"
    );

    // A name that hides characters but is not protected is refused, and says why.
    let a = mcp
        .call("service.delete", json!({"service": "worker\u{200b}"}))
        .await;
    assert_reason(&a, "invalid_target");
    let text = structured(&a)["message"].as_str().expect("a message");
    assert!(text.contains("U+200B"), "{text}");
    assert!(structured(&a).get("challenge").is_none(), "{}", a.text);
    // Even where the evidence gate would let the call by (`web` has no failures).
    let a = mcp
        .call(
            "service.replace",
            json!({"service": "web\u{feff}", "image": "shop/web:9"}),
        )
        .await;
    assert_reason(&a, "invalid_target");
    assert!(has_service(&mut mcp, "keygate").await);
}

/// Reads the evidence for `worker` (it has failed deploys) and asks for a challenge to
/// replace it with `image`.
async fn replace_challenge(mcp: &mut Mcp, image: &str) -> String {
    for tool in [
        "service.events",
        "service.logs.build",
        "service.logs.runtime",
    ] {
        mcp.call_ok(tool, json!({"service": "worker"})).await;
    }
    let args = json!({"service": "worker", "image": image});
    let a = mcp.call("service.replace", args.clone()).await;
    assert_gate(&a, "CONFIRMATION_REQUIRED");
    assert_names_arguments(
        &a,
        &args,
        &format!(r#"Arguments: {{"image":"{image}","service":"worker"}}."#),
    );
    challenge(&a)
}

#[tokio::test]
async fn a_challenge_confirms_only_the_arguments_it_was_shown_with() {
    let server = agent_demo(&[]);
    let mut mcp = session(&server, &server.owner_key()).await;
    let before = image(&mut mcp, "worker").await;
    let c = replace_challenge(&mut mcp, "shop/worker:A").await;

    // Confirmed with image B: refused, B does not run, and the challenge is spent.
    let b = json!({"service": "worker", "image": "shop/worker:B"});
    let a = mcp
        .call("service.replace", confirmed(&b, &c, "worker"))
        .await;
    assert_reason(&a, "other_arguments");
    assert_names_arguments(
        &a,
        &b,
        r#"Arguments: {"image":"shop/worker:B","service":"worker"}."#,
    );
    assert_eq!(image(&mut mcp, "worker").await, before);
    let a_args = json!({"service": "worker", "image": "shop/worker:A"});
    let a = mcp
        .call("service.replace", confirmed(&a_args, &c, "worker"))
        .await;
    assert_reason(&a, "unknown_challenge");
    assert_eq!(image(&mut mcp, "worker").await, before);

    // A fresh challenge for A, confirmed with A (keys in another order): A runs.
    let c = replace_challenge(&mut mcp, "shop/worker:A").await;
    let a = mcp
        .call(
            "service.replace",
            json!({"confirm": {"target": "worker", "challenge": c},
                   "image": "shop/worker:A", "service": "worker"}),
        )
        .await;
    assert_ran(&a);
    assert_eq!(image(&mut mcp, "worker").await, "shop/worker:A");
}

#[tokio::test]
async fn another_key_or_session_cannot_burn_a_challenge() {
    let server = agent_demo(&[]);
    let owner = server.owner_key();
    let (_, other_key) = server
        .api(&owner)
        .new_tenant_key("other", &["services:read", "services:write"])
        .await;
    let mut mine = session(&server, &owner).await;
    let mut my_other_session = session(&server, &owner).await;
    let mut theirs = session(&server, &other_key).await;
    let mut theirs_in_my_session = server
        .api(&other_key)
        .mcp()
        .with_session(mine.session.as_deref());

    let api = json!({"service":"api"});
    let first = mine.call("service.delete", api.clone()).await;
    let c = challenge(&first);
    let confirm = confirmed(&api, &c, "api");
    for _ in 0..2 {
        let a = my_other_session
            .call("service.delete", confirm.clone())
            .await;
        assert_reason(&a, "other_session");
        let a = theirs.call("service.delete", confirm.clone()).await;
        assert_reason(&a, "other_session");
        // Another key in my session: the session is not theirs (404, as for an
        // unknown session), so the challenge never reaches the gate.
        let a = theirs_in_my_session
            .call("service.delete", confirm.clone())
            .await;
        assert_eq!(a.status, 404, "{}", a.text);
        assert_eq!(
            a.json["error"]["message"], "Session not found",
            "{}",
            a.text
        );
        assert!(!a.text.contains(&c), "{}", a.text);
    }
    assert!(has_service(&mut mine, "api").await);

    // The owner's challenge still works, once.
    let ok = mine.call("service.delete", confirm.clone()).await;
    assert_ran(&ok);
    assert!(!has_service(&mut mine, "api").await);
    let again = mine.call("service.delete", confirm).await;
    assert_reason(&again, "unknown_challenge");
}

#[tokio::test]
async fn the_demo_asks_a_person_and_the_identical_retry_runs_once() {
    let server = Server::demo();
    let owner = server.owner_key();
    let (_, agent) = server
        .api(&owner)
        .new_key(json!({"name": "agent", "kind": "user", "scopes": ["services:read", "services:write", "gates:approve"]}))
        .await;
    let mut mcp = session(&server, &agent).await;
    let web = json!({"service": "web"});
    let first = mcp.call("service.delete", web.clone()).await;
    assert_gate(&first, "APPROVAL_REQUIRED");
    let id = structured(&first)["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();
    assert_eq!(
        structured(&first)["approval_url"],
        json!(format!("/approvals/{id}"))
    );
    let made_up = mcp
        .call("service.delete", confirmed(&web, &id, "web"))
        .await;
    assert_gate(&made_up, "APPROVAL_REQUIRED");
    let itself = approve(&server, &agent, &id, "web").await;
    assert_eq!(itself.status, 403, "{}", itself.text);
    assert!(has_service(&mut mcp, "web").await);

    let ok = approve(&server, &owner, &id, "web").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ran = mcp.call("service.delete", web.clone()).await;
    assert!(!ran.is_tool_error(), "{}", ran.text);
    assert!(!has_service(&mut mcp, "web").await);
    let again = mcp.call("service.delete", web).await;
    assert_gate(&again, "APPROVAL_REQUIRED");
}
