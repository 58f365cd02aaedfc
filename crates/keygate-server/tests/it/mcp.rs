//! The MCP gateway: tools/list filtering, policy, gates, forwarding, upstream failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use keygate_keys::KeyStore;
use keygate_server::{App, Config, Upstream};
use serde_json::{Value, json};

use crate::util::{Harness, demo, gate_code};

fn tool_names(r: &crate::util::Reply) -> Vec<String> {
    let mut names: Vec<String> = r.body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.raw))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn list(h: &Harness, key: &str) -> crate::util::Reply {
    h.mcp(
        key,
        None,
        json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}),
    )
    .await
}

#[tokio::test]
async fn tools_list_shows_only_callable_tools() {
    let h = demo().await;
    let all = list(&h, &h.owner).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["id"], "l");
    assert_eq!(tool_names(&all).len(), 15);
    let delete = all.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "service.delete")
        .unwrap();
    assert!(delete["inputSchema"]["properties"]["confirm"].is_object());
    let deploy = all.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "service.deploy")
        .unwrap();
    assert!(deploy["inputSchema"]["properties"]["confirm"].is_null());

    let reader = h.tenant_key(&["services:read"]).await;
    assert_eq!(
        tool_names(&list(&h, &reader).await),
        [
            "service.events",
            "service.list",
            "service.logs.build",
            "service.logs.runtime",
            "service.status"
        ]
    );
    // User-only tools are hidden from tenant keys even with the scope.
    let tenant = h.tenant_key(&["customers:read", "customers:write"]).await;
    assert_eq!(tool_names(&list(&h, &tenant).await), ["customers.search"]);
    let none = h.tenant_key(&[]).await;
    assert!(tool_names(&list(&h, &none).await).is_empty());
}

#[tokio::test]
async fn policy_denials_are_403() {
    let h = demo().await;
    let tenant = h.tenant_key(&["customers:write", "services:read"]).await;
    let deny = r#"{"error":"insufficient_scope"}"#;
    // User-only tool with a tenant key.
    let r = h
        .tool(&tenant, None, "customers.create", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.raw, deny);
    // Missing scope; tool not in the policy.
    let r = h
        .tool(&tenant, None, "service.restart", json!({"service": "api"}))
        .await;
    assert_eq!(r.raw, deny);
    let r = h.tool(&tenant, None, "admin.shell", json!({})).await;
    assert_eq!(r.raw, deny);
    // Project outside the key.
    let (shop_only, _) = h
        .create_key(json!({"name": "s", "kind": "tenant", "scopes": ["services:read"], "projects": ["shop"]}))
        .await;
    let r = h
        .tool(&shop_only, None, "service.list", json!({"project": "ops"}))
        .await;
    assert_eq!(r.raw, deny);
    let r = h
        .tool(&shop_only, None, "service.list", json!({"project": "shop"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["result"]["isError"], false);

    // The user key of a person works, and the platform learns who it is.
    let person = h.user_key(&["customers:write"]).await;
    let r = h
        .tool(&person, None, "customers.create", json!({"name": "Ada"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
}

#[tokio::test]
async fn delete_needs_a_challenge_from_the_same_session() {
    let h = demo().await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    let first = h
        .tool(
            &key,
            Some("s1"),
            "service.delete",
            json!({"service": "api"}),
        )
        .await;
    assert_eq!(
        gate_code(&first).as_deref(),
        Some("CONFIRMATION_REQUIRED"),
        "{}",
        first.raw
    );
    let sc = &first.body["result"]["structuredContent"];
    assert_eq!(sc["operation"], "service.delete");
    assert_eq!(sc["target"], "api");
    assert!(sc["expires_at"].is_string());
    let challenge = sc["challenge"].as_str().unwrap().to_owned();
    assert!(
        h.tool(
            &key,
            Some("s1"),
            "service.status",
            json!({"service": "api"})
        )
        .await
        .body["result"]["isError"]
            == false
    );

    // From another session: invalid, and the challenge is kept for its owner.
    let confirm = json!({"service": "api", "confirm": {"challenge": challenge, "target": "api"}});
    let other = h
        .tool(&key, Some("s2"), "service.delete", confirm.clone())
        .await;
    assert_eq!(gate_code(&other).as_deref(), Some("CONFIRMATION_INVALID"));
    let reason = &other.body["result"]["structuredContent"]["reason"];
    assert_eq!(reason, "other_session", "{}", other.raw);
    // Its owner presenting it with other arguments spends it.
    let changed = json!({"service": "api", "project": "shop",
                         "confirm": {"challenge": challenge, "target": "api"}});
    let changed = h.tool(&key, Some("s1"), "service.delete", changed).await;
    let reason = &changed.body["result"]["structuredContent"]["reason"];
    assert_eq!(reason, "other_arguments", "{}", changed.raw);
    let reuse = h.tool(&key, Some("s1"), "service.delete", confirm).await;
    assert_eq!(gate_code(&reuse).as_deref(), Some("CONFIRMATION_INVALID"));
    let reason = &reuse.body["result"]["structuredContent"]["reason"];
    assert_eq!(reason, "unknown_challenge", "{}", reuse.raw);

    // A fresh challenge, with a target that is not exactly the name: refused, kept.
    let first = h
        .tool(
            &key,
            Some("s1"),
            "service.delete",
            json!({"service": "api"}),
        )
        .await;
    let challenge = first.body["result"]["structuredContent"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let typo = h
        .tool(
            &key,
            Some("s1"),
            "service.delete",
            json!({"service": "api", "confirm": {"challenge": challenge, "target": "API"}}),
        )
        .await;
    assert_eq!(gate_code(&typo).as_deref(), Some("CONFIRMATION_INVALID"));
    let ok = h
        .tool(
            &key,
            Some("s1"),
            "service.delete",
            json!({"service": "api", "confirm": {"challenge": challenge, "target": "api"}}),
        )
        .await;
    assert_eq!(gate_code(&ok), None, "{}", ok.raw);
    assert_eq!(ok.body["result"]["isError"], false, "{}", ok.raw);
    let gone = h
        .tool(
            &key,
            Some("s1"),
            "service.status",
            json!({"service": "api"}),
        )
        .await;
    assert_eq!(
        gone.body["result"]["structuredContent"]["code"],
        "UNKNOWN_SERVICE"
    );

    // The gateway's own service: never confirmable.
    let blocked = h
        .tool(
            &key,
            Some("s1"),
            "service.delete",
            json!({"service": "KeyGate"}),
        )
        .await;
    assert_eq!(gate_code(&blocked).as_deref(), Some("SELF_SERVICE_BLOCKED"));
    // No session: confirmation needs one.
    let nosession = h
        .tool(&key, None, "service.delete", json!({"service": "web"}))
        .await;
    assert_eq!(
        gate_code(&nosession).as_deref(),
        Some("CONFIRMATION_INVALID")
    );
    assert!(
        nosession.body["result"]["structuredContent"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("session")
    );

    let audit = h.get("/api/v1/audit?limit=50", &h.owner).await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "gate.confirmation_required",
        "gate.confirmation_invalid",
        "gate.confirmed",
        "gate.self_service_blocked",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    assert!(
        !audit.raw.contains(&challenge),
        "the audit log never holds a challenge"
    );
    let metrics = h.call(http::Method::GET, "/metrics", None, None).await.raw;
    assert!(
        metrics.contains("keygate_gate_decisions_total{code=\"SELF_SERVICE_BLOCKED\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn replace_of_a_failed_service_needs_evidence_then_confirmation() {
    let h = demo().await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    let replace = json!({"service": "worker", "image": "shop/worker:2.3.1"});
    let first = h
        .tool(&key, Some("s1"), "service.replace", replace.clone())
        .await;
    assert_eq!(
        gate_code(&first).as_deref(),
        Some("DIAGNOSIS_REQUIRED"),
        "{}",
        first.raw
    );
    assert_eq!(
        first.body["result"]["structuredContent"]["evidence_missing"],
        json!([
            "service.events",
            "service.logs.build",
            "service.logs.runtime"
        ])
    );
    // Reading evidence in another session does not count for this one.
    for tool in [
        "service.events",
        "service.logs.build",
        "service.logs.runtime",
    ] {
        let r = h
            .tool(&key, Some("other"), tool, json!({"service": "worker"}))
            .await;
        assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    }
    // A failed evidence call (unknown service) does not count either.
    h.tool(
        &key,
        Some("s1"),
        "service.events",
        json!({"service": "nope"}),
    )
    .await;
    let r = h
        .tool(
            &key,
            Some("s1"),
            "service.events",
            json!({"service": "worker"}),
        )
        .await;
    assert_eq!(r.body["result"]["isError"], false);
    let second = h
        .tool(&key, Some("s1"), "service.replace", replace.clone())
        .await;
    assert_eq!(gate_code(&second).as_deref(), Some("DIAGNOSIS_REQUIRED"));
    assert_eq!(
        second.body["result"]["structuredContent"]["evidence_missing"],
        json!(["service.logs.build", "service.logs.runtime"])
    );
    for tool in ["service.logs.build", "service.logs.runtime"] {
        h.tool(&key, Some("s1"), tool, json!({"service": "worker"}))
            .await;
    }
    let third = h
        .tool(&key, Some("s1"), "service.replace", replace.clone())
        .await;
    assert_eq!(
        gate_code(&third).as_deref(),
        Some("CONFIRMATION_REQUIRED"),
        "{}",
        third.raw
    );
    let challenge = third.body["result"]["structuredContent"]["challenge"].clone();
    let mut confirmed = replace.clone();
    confirmed["confirm"] = json!({"challenge": challenge, "target": "worker"});
    let done = h.tool(&key, Some("s1"), "service.replace", confirmed).await;
    assert_eq!(gate_code(&done), None, "{}", done.raw);
    assert_eq!(done.body["result"]["isError"], false, "{}", done.raw);
}

#[tokio::test]
async fn services_without_failure_history_and_ordinary_operations_are_ungated() {
    let h = demo().await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    for service in ["web", "api"] {
        let r = h
            .tool(
                &key,
                None,
                "service.replace",
                json!({"service": service, "image": "shop/x:1"}),
            )
            .await;
        assert_eq!(gate_code(&r), None, "{service}: {}", r.raw);
        assert_eq!(r.body["result"]["isError"], false, "{service}: {}", r.raw);
    }
    for (tool, args) in [
        ("service.deploy", json!({"service": "worker"})),
        ("service.restart", json!({"service": "worker"})),
        ("service.scale", json!({"service": "worker", "replicas": 3})),
        (
            "service.env.set",
            json!({"service": "worker", "key": "A", "value": "b"}),
        ),
        ("service.deploy", json!({"service": "keygate"})),
    ] {
        let r = h.tool(&key, None, tool, args).await;
        assert_eq!(gate_code(&r), None, "{tool}: {}", r.raw);
        assert_eq!(r.body["result"]["isError"], false, "{tool}: {}", r.raw);
    }
}

#[tokio::test]
async fn malformed_and_too_deep_requests_are_json_rpc_errors() {
    let h = demo().await;
    let send_raw = |body: &'static str| {
        let req = http::Request::post("/api/mcp")
            .header("authorization", format!("Bearer {}", h.owner))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        h.send(req)
    };
    let r = send_raw("{nope").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], -32700);
    let r = send_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#).await;
    assert_eq!(r.body["error"]["code"], -32600);
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}{}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let r = send_raw(Box::leak(deep.into_boxed_str())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("64"));
    // Non-object messages.
    let r = send_raw(r#""tools/list""#).await;
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("object")
    );
    // A member given twice could be read differently by the gateway and the upstream
    // (first or last wins): refused, whichever member it is.
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}},"params":{"name":"service.delete","arguments":{"service":"api"}}}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field `params`"),
        "{}",
        r.raw
    );
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","name":"service.delete","arguments":{"service":"api"}}}"#).await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.raw);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field `name`"),
        "{}",
        r.raw
    );
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"web","confirm":{"challenge":"c","target":"web"},"service":"api"}}}"#).await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.raw);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate member `service`"),
        "{}",
        r.raw
    );
    // Escapes are decoded before the method and tool names are compared.
    let r = send_raw(r#"{"jsonrpc":"2\u002e0","id":"a","method":"tools\/call","params":{"name":"service\u002elist"}}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["id"], "a");
    assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    // A tool call without a name, or with arguments that are not an object.
    let r = send_raw(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":[]}"#).await;
    assert_eq!(r.body["error"]["code"], -32602);
    assert_eq!(r.body["id"], 2);
    let r = send_raw(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"service.list","arguments":[1]}}"#).await;
    assert_eq!(r.body["error"]["code"], -32602);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be an object")
    );
    // Other methods go through: initialize answers a session id.
    let r = h
        .mcp(&h.owner, None, json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.headers.contains_key("mcp-session-id"));
}

/// What a loopback upstream received.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

async fn record(
    axum::extract::State(seen): axum::extract::State<Seen>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    seen.0.lock().unwrap().push((parts.headers.clone(), v));
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// A loopback upstream: the demo at `/mcp`, a slow one at `/slow`, garbage at `/garbage`.
async fn upstream() -> (String, Seen) {
    let seen = Seen::default();
    let app = keygate_demo::router(keygate_demo::Platform::new())
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/garbage",
            post(|| async { Bytes::from_static(b"<html>oops</html>") }),
        )
        .layer(middleware::from_fn_with_state(seen.clone(), record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

async fn http_gateway(url: String, timeout: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, keygate_demo::POLICY_TOML).unwrap();
    let mut config = Config::new(Upstream::Http(url));
    config.policy = Some(policy);
    config.upstream_timeout = timeout;
    let store = Arc::new(keygate_keys::MemoryStore::new());
    let app = App::with_store(config, store.clone()).await.unwrap();
    let owner = store
        .bootstrap(
            &keygate_keys::TokenFormat::default(),
            keygate_keys::Bootstrap {
                tenant: "t".to_owned(),
                owner: "o".to_owned(),
                projects: vec!["shop".to_owned()],
                scopes: app.policy().all_scopes(),
                key_name: "k".to_owned(),
            },
        )
        .await
        .unwrap();
    Harness {
        app: app.router(),
        store,
        owner: owner.key.token.expose().to_owned(),
        tenant: owner.tenant.id,
        owner_id: owner.owner.id,
    }
}

#[tokio::test]
async fn forwarding_strips_confirm_and_authorization_and_sets_identity() {
    let (base, seen) = upstream().await;
    let h = http_gateway(format!("{base}/mcp"), Duration::from_secs(10)).await;
    let first = h
        .tool(
            &h.owner,
            Some("s9"),
            "service.delete",
            json!({"service": "web"}),
        )
        .await;
    let challenge = first.body["result"]["structuredContent"]["challenge"].clone();
    assert!(challenge.is_string(), "{}", first.raw);
    let mut req = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"web","confirm":{"challenge":challenge,"target":"web"}}}});
    let r = {
        let body = std::mem::take(&mut req);
        let http_req = http::Request::post("/api/mcp")
            .header("authorization", format!("Bearer {}", h.owner))
            .header("content-type", "application/json")
            .header("mcp-session-id", "s9")
            .header("x-keygate-tenant", "spoofed")
            .header("cookie", "a=b")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        h.send(http_req).await
    };
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    let p = h.principal(&h.owner).await;
    let seen = seen.0.lock().unwrap();
    let (headers, body) = seen.last().unwrap();
    assert_eq!(body["params"]["arguments"], json!({"service": "web"}));
    assert!(headers.get("authorization").is_none());
    assert!(headers.get("cookie").is_none());
    assert_eq!(headers["mcp-session-id"], "s9");
    assert_eq!(headers["x-keygate-tenant"], p.tenant.id.as_str());
    assert_eq!(headers["x-keygate-key-id"], p.key_id.as_str());
    assert_eq!(headers["x-keygate-actor"], "user");
    assert_eq!(headers["x-keygate-user"], p.user.unwrap().id.as_str());
    for (headers, _) in seen.iter() {
        assert!(headers.get("authorization").is_none());
    }
}

#[tokio::test]
async fn upstream_down_slow_or_garbage_is_a_json_rpc_error() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = http_gateway(format!("http://{closed}/mcp"), Duration::from_secs(5)).await;
    let r = list(&h, &h.owner).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32001);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    let r = h.tool(&h.owner, None, "service.list", json!({})).await;
    assert_eq!(r.body["error"]["code"], -32001);

    let (base, _) = upstream().await;
    let h = http_gateway(format!("{base}/slow"), Duration::from_millis(300)).await;
    let r = h.tool(&h.owner, None, "service.list", json!({})).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32002);
    assert_eq!(r.body["id"], 1);

    let h = http_gateway(format!("{base}/garbage"), Duration::from_secs(5)).await;
    let r = list(&h, &h.owner).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32003);
}

#[tokio::test]
async fn a_gate_with_an_unreachable_status_tool_does_not_forward() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = http_gateway(format!("http://{closed}/mcp"), Duration::from_secs(5)).await;
    let r = h
        .tool(
            &h.owner,
            Some("s"),
            "service.replace",
            json!({"service": "worker", "image": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert!(r.body["error"].is_object());
}
