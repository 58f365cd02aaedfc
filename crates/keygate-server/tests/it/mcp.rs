//! The MCP gateway: tools/list filtering, policy, gates, forwarding, upstream failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use keygate_demo::Platform;
use keygate_keys::KeyStore;
use keygate_server::{Config, Upstream};
use serde_json::{Value, json};

use crate::util::{
    EVIDENCE, Harness, assert_no_confirm, assert_ungated, demo, error_message, fields, gate_code,
    gated, invalid, listed_tool, other_tenant, structured,
};

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

/// The arguments of `service.delete` of `service`, confirmed with `challenge` and
/// the typed `target`.
fn confirmed(service: &str, challenge: &str, target: &str) -> Value {
    json!({"service": service, "confirm": {"challenge": challenge, "target": target}})
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
    let tools = all.body["result"]["tools"].as_array().unwrap();
    assert_no_confirm(listed_tool(tools, "service.delete"));
    let deploy = listed_tool(tools, "service.deploy");
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
    let h = crate::util::demo_agent().await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    let (s1, s2) = (h.session(&key).await, h.session(&key).await);
    let delete = |args: Value| h.tool_in(&key, &s1, "service.delete", args);
    let first = delete(json!({"service": "api"})).await;
    let sc = gated(&first, "CONFIRMATION_REQUIRED");
    assert_eq!(sc["operation"], "service.delete");
    assert_eq!(sc["target"], "api");
    assert!(sc["expires_at"].is_string());
    let challenge = sc["challenge"].as_str().unwrap().to_owned();
    assert!(
        h.tool_in(&key, &s1, "service.status", json!({"service": "api"}))
            .await
            .body["result"]["isError"]
            == false
    );

    // From another session: invalid, and the challenge is kept for its owner.
    let confirm = confirmed("api", &challenge, "api");
    let other = h
        .tool_in(&key, &s2, "service.delete", confirm.clone())
        .await;
    assert_eq!(invalid(&other), "other_session");
    // Its owner presenting it with other arguments spends it.
    let changed = json!({"service": "api", "project": "shop",
                         "confirm": {"challenge": challenge, "target": "api"}});
    let changed = delete(changed).await;
    let reason = &structured(&changed)["reason"];
    assert_eq!(reason, "other_arguments", "{}", changed.raw);
    let reuse = delete(confirm).await;
    assert_eq!(invalid(&reuse), "unknown_challenge");

    // A fresh challenge, with a target that is not exactly the name: refused, kept.
    let first = delete(json!({"service": "api"})).await;
    let challenge = structured(&first)["challenge"].as_str().unwrap().to_owned();
    let typo = delete(confirmed("api", &challenge, "API")).await;
    gated(&typo, "CONFIRMATION_INVALID");
    let ok = delete(confirmed("api", &challenge, "api")).await;
    assert_ungated(&ok);
    assert_eq!(ok.body["result"]["isError"], false, "{}", ok.raw);
    let gone = h
        .tool_in(&key, &s1, "service.status", json!({"service": "api"}))
        .await;
    assert_eq!(structured(&gone)["code"], "UNKNOWN_SERVICE");

    // The gateway's own service: never confirmable.
    let blocked = delete(json!({"service": "KeyGate"})).await;
    gated(&blocked, "SELF_SERVICE_BLOCKED");
    // No session: confirmation needs one.
    let nosession = h
        .tool(&key, None, "service.delete", json!({"service": "web"}))
        .await;
    gated(&nosession, "CONFIRMATION_INVALID");
    assert!(
        structured(&nosession)["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("session")
    );

    let audit = h.get("/api/v1/audit?limit=50", &h.owner).await;
    let actions = fields(&audit.body["events"], "action");
    for a in [
        "gate.confirmation_required",
        "gate.confirmation_invalid",
        "gate.approved",
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
    let h = crate::util::demo_agent().await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    let (s1, other) = (h.session(&key).await, h.session(&key).await);
    let replace = json!({"service": "worker", "image": "shop/worker:2.3.1"});
    let first = h
        .tool_in(&key, &s1, "service.replace", replace.clone())
        .await;
    gated(&first, "DIAGNOSIS_REQUIRED");
    assert_eq!(structured(&first)["evidence_missing"], json!(EVIDENCE));
    // Reading evidence in another session does not count for this one.
    h.read_evidence(&key, &other, "worker").await;
    // A failed evidence call (unknown service) does not count either.
    h.tool_in(&key, &s1, "service.events", json!({"service": "nope"}))
        .await;
    let r = h
        .tool_in(&key, &s1, "service.events", json!({"service": "worker"}))
        .await;
    assert_eq!(r.body["result"]["isError"], false);
    let second = h
        .tool_in(&key, &s1, "service.replace", replace.clone())
        .await;
    gated(&second, "DIAGNOSIS_REQUIRED");
    assert_eq!(
        structured(&second)["evidence_missing"],
        json!(["service.logs.build", "service.logs.runtime"])
    );
    for tool in ["service.logs.build", "service.logs.runtime"] {
        h.tool_in(&key, &s1, tool, json!({"service": "worker"}))
            .await;
    }
    let third = h
        .tool_in(&key, &s1, "service.replace", replace.clone())
        .await;
    gated(&third, "CONFIRMATION_REQUIRED");
    let challenge = structured(&third)["challenge"].clone();
    let mut confirmed = replace.clone();
    confirmed["confirm"] = json!({"challenge": challenge, "target": "worker"});
    let done = h.tool_in(&key, &s1, "service.replace", confirmed).await;
    assert_ungated(&done);
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
    assert!(error_message(&r).contains("64"));
    // Non-object messages.
    let r = send_raw(r#""tools/list""#).await;
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(error_message(&r).contains("object"));
    // A member given twice could be read differently by the gateway and the upstream
    // (first or last wins): refused, whichever member it is.
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}},"params":{"name":"service.delete","arguments":{"service":"api"}}}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32600);
    assert!(
        error_message(&r).contains("duplicate field `params`"),
        "{}",
        r.raw
    );
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","name":"service.delete","arguments":{"service":"api"}}}"#).await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.raw);
    assert!(
        error_message(&r).contains("duplicate field `name`"),
        "{}",
        r.raw
    );
    let r = send_raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"web","confirm":{"challenge":"c","target":"web"},"service":"api"}}}"#).await;
    assert_eq!(r.body["error"]["code"], -32602, "{}", r.raw);
    assert!(
        error_message(&r).contains("duplicate member `service`"),
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
    assert!(error_message(&r).contains("must be an object"));
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
    http_gateway_with(url, timeout, keygate_demo::POLICY_TOML).await
}

async fn http_gateway_with(url: String, timeout: Duration, policy_toml: &str) -> Harness {
    let gates = Arc::new(keygate_gates::MemoryGateStore::new());
    crate::util::http_gateway(url, policy_toml, |c| c.upstream_timeout = timeout, gates).await
}

#[tokio::test]
async fn credentials_in_the_upstream_url_reach_it_as_basic_auth_never_the_clients_key() {
    let (base, seen) = upstream().await;
    let with_credentials = base.replacen("http://", "http://mcp%20user:s%40cret@", 1);
    let h = http_gateway(format!("{with_credentials}/mcp"), Duration::from_secs(10)).await;
    let s1 = h.session(&h.owner).await;
    let a = h.tool_in(&h.owner, &s1, "service.list", json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.raw);
    let seen = seen.0.lock().unwrap();
    assert!(!seen.is_empty());
    for (headers, _) in seen.iter() {
        // base64("mcp user:s@cret")
        assert_eq!(headers["authorization"], "Basic bWNwIHVzZXI6c0BjcmV0");
        assert!(
            !headers["authorization"]
                .to_str()
                .unwrap()
                .contains(&h.owner)
        );
    }
}

#[tokio::test]
async fn forwarding_strips_confirm_and_authorization_and_sets_identity() {
    let (base, seen) = upstream().await;
    let policy = crate::util::agent_policy();
    let h = http_gateway_with(format!("{base}/mcp"), Duration::from_secs(10), &policy).await;
    let s9 = h.session(&h.owner).await;
    let first = h
        .tool_in(&h.owner, &s9, "service.delete", json!({"service": "web"}))
        .await;
    let challenge = structured(&first)["challenge"].clone();
    assert!(challenge.is_string(), "{}", first.raw);
    let mut req = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"web","confirm":{"challenge":challenge,"target":"web"}}}});
    let r = {
        let body = std::mem::take(&mut req);
        let http_req = http::Request::post("/api/mcp")
            .header("authorization", format!("Bearer {}", h.owner))
            .header("content-type", "application/json")
            .header("mcp-session-id", &s9)
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
    assert_eq!(headers["mcp-session-id"], s9.as_str());
    assert_eq!(headers["x-keygate-tenant"], p.tenant.id.as_str());
    assert_eq!(headers["x-keygate-key-id"], p.key_id.as_str());
    assert_eq!(headers["x-keygate-actor"], "user");
    assert_eq!(headers["x-keygate-user"], p.user.unwrap().id.as_str());
    for (headers, _) in seen.iter() {
        assert!(headers.get("authorization").is_none());
    }
}

/// The gateway in front of a port nothing listens on.
async fn gateway_to_nothing() -> Harness {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    http_gateway(format!("http://{closed}/mcp"), Duration::from_secs(5)).await
}

#[tokio::test]
async fn upstream_down_slow_or_garbage_is_a_json_rpc_error() {
    let h = gateway_to_nothing().await;
    let r = list(&h, &h.owner).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32001);
    assert!(error_message(&r).contains("unreachable"));
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
    let h = gateway_to_nothing().await;
    let r = h
        .tool(
            &h.owner,
            None,
            "service.replace",
            json!({"service": "worker", "image": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert!(r.body["error"].is_object());
}

/// One MCP request with raw `Mcp-Session-Id` header values (any number of them).
async fn with_session_headers(
    h: &Harness,
    method: Method,
    sessions: &[HeaderValue],
    body: Option<Value>,
) -> crate::util::Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri("/api/mcp")
        .header("authorization", format!("Bearer {}", h.owner))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for s in sessions {
        req = req.header("mcp-session-id", s.clone());
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| {
        axum::body::Body::from(b.to_string())
    });
    h.send(req.body(body).unwrap()).await
}

#[tokio::test]
async fn session_ids_must_be_one_header_of_1_to_128_visible_ascii_characters() {
    // Every refusal below spends the owner's budget: make it large.
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.key_rate = std::num::NonZeroU32::new(10_000).unwrap();
    let (config, _dir) = crate::util::with_agent_policy(config);
    let gates = Arc::new(keygate_gates::MemoryGateStore::new());
    let h = crate::util::demo_with_gates(config, gates.clone()).await;
    let delete = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api"}}});
    let long = "a".repeat(keygate_server::MAX_SESSION_ID_LEN + 1);
    let huge = "b".repeat(400_000);
    let bad: Vec<(&str, Vec<HeaderValue>)> = vec![
        ("empty", vec![HeaderValue::from_static("")]),
        (
            "129 characters",
            vec![HeaderValue::from_str(&long).unwrap()],
        ),
        ("400 kB", vec![HeaderValue::from_str(&huge).unwrap()]),
        ("a space", vec![HeaderValue::from_static("s 1")]),
        ("a tab", vec![HeaderValue::from_static("s\t1")]),
        (
            "not ASCII",
            vec![HeaderValue::from_bytes("sé".as_bytes()).unwrap()],
        ),
        ("obs-text", vec![HeaderValue::from_bytes(b"s\xff").unwrap()]),
        (
            "two headers",
            vec![
                HeaderValue::from_static("s1"),
                HeaderValue::from_static("s2"),
            ],
        ),
        (
            "the same twice",
            vec![
                HeaderValue::from_static("s1"),
                HeaderValue::from_static("s1"),
            ],
        ),
    ];
    for (what, sessions) in &bad {
        let r = with_session_headers(&h, Method::POST, sessions, Some(delete.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.raw);
        assert_eq!(r.body["jsonrpc"], "2.0", "{what}");
        assert_eq!(r.body["id"], Value::Null, "{what}");
        assert_eq!(r.body["error"]["code"], -32600, "{what}");
        let message = r.body["error"]["message"].as_str().unwrap();
        if sessions.len() == 1 {
            assert_eq!(
                message,
                "Invalid Request: Mcp-Session-Id must be 1-128 visible ASCII characters (0x21-0x7E)",
                "{what}"
            );
        } else {
            assert_eq!(
                message, "Invalid Request: send at most one Mcp-Session-Id header",
                "{what}"
            );
        }
        assert!(r.headers.get("mcp-session-id").is_none(), "{what}: echoed");
        assert!(
            r.raw.len() < 200,
            "{what}: the id is not echoed in the body"
        );
        for method in [Method::GET, Method::DELETE] {
            let r = with_session_headers(&h, method.clone(), sessions, None).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{method} {what}: {}",
                r.raw
            );
            assert_eq!(r.body["error"]["code"], -32600, "{method} {what}");
        }
    }
    // None of them reached the gates: no decision was audited.
    let audit = h.get("/api/v1/audit?limit=50", &h.owner).await;
    assert!(!audit.raw.contains("gate."), "{}", audit.raw);

    // The longest id and every visible character pass: unbound, they are unknown
    // sessions (404); bound to the key (as an upstream's `initialize` could issue
    // them), they reach the gate and are echoed.
    let visible: String = (0x21u8..=0x7e).map(char::from).collect();
    let longest = "z".repeat(keygate_server::MAX_SESSION_ID_LEN);
    for id in [visible.as_str(), longest.as_str(), "1", "s1"] {
        let value = HeaderValue::from_str(id).unwrap();
        let r = with_session_headers(&h, Method::POST, &[value], Some(delete.clone())).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}: {}", r.raw);
        assert_eq!(r.body["error"]["message"], "Session not found", "{id}");
        h.bind_owner_session(&*gates, id).await;
    }
    for id in [visible.as_str(), longest.as_str(), "1"] {
        let value = HeaderValue::from_str(id).unwrap();
        let r = with_session_headers(&h, Method::POST, &[value], Some(delete.clone())).await;
        assert_eq!(
            gate_code(&r).as_deref(),
            Some("CONFIRMATION_REQUIRED"),
            "{id}: {}",
            r.raw
        );
        assert_eq!(r.headers["mcp-session-id"], id);
    }
    // GET and DELETE with a valid id of the key (or none) go to the upstream (the demo
    // has no stream and no session to end: 405).
    for sessions in [vec![HeaderValue::from_static("s1")], vec![]] {
        for method in [Method::GET, Method::DELETE] {
            let r = with_session_headers(&h, method.clone(), &sessions, None).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}: {}",
                r.raw
            );
        }
    }
}

/// The demo policy with a `[methods]` table over its own scopes.
fn policy_with_methods() -> String {
    format!(
        "{}\n[methods]\nresources = [\"services:read\"]\n\"resources/subscribe\" = [\"services:read\", \"services:write\"]\n\"completion/complete\" = []\n",
        keygate_demo::POLICY_TOML
    )
}

#[tokio::test]
async fn other_methods_are_policed_by_the_methods_table() {
    let (base, seen) = upstream().await;
    let h = http_gateway_with(
        format!("{base}/mcp"),
        Duration::from_secs(10),
        &policy_with_methods(),
    )
    .await;
    let reader = h.tenant_key(&["services:read"]).await;
    let writer = h.tenant_key(&["services:read", "services:write"]).await;
    let nobody = h.tenant_key(&[]).await;
    let deny = r#"{"error":"insufficient_scope"}"#;
    let request = |method: &str| json!({"jsonrpc":"2.0","id":"m","method":method,"params":{}});
    let forwarded = |method: &str| {
        seen.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, body)| body["method"] == method)
            .count()
    };
    let cases: [(&str, &str, bool); 22] = [
        // The family's scopes, or the method's own entry.
        (&reader, "resources/list", true),
        (&reader, "resources/read", true),
        (&reader, "resources/templates/list", true),
        (&reader, "resources/subscribe", false),
        (&writer, "resources/subscribe", true),
        (&nobody, "resources/read", false),
        // An entry without scopes: any key.
        (&nobody, "completion/complete", true),
        // Families the policy does not map, families no policy can map, made-up names.
        (&writer, "prompts/list", false),
        (&writer, "prompts/get", false),
        (&writer, "tasks/get", false),
        (&writer, "tasks/result", false),
        (&writer, "sampling/createMessage", false),
        (&writer, "foo/bar", false),
        (&writer, "resources", false),
        (&writer, "Resources/list", false),
        // Lifecycle and utility messages pass for any key.
        (&nobody, "initialize", true),
        (&nobody, "ping", true),
        (&nobody, "logging/setLevel", true),
        (&nobody, "server/discover", true),
        (&nobody, "notifications/initialized", true),
        // Tools are policed per tool.
        (&nobody, "tools/list", true),
        (&reader, "tools/call", true),
    ];
    for (key, method, allowed) in cases {
        let before = forwarded(method);
        let mut body = request(method);
        if method == "tools/call" {
            body["params"] = json!({"name": "service.list", "arguments": {}});
        }
        let r = h.mcp(key, None, body).await;
        if allowed {
            assert_ne!(r.status, StatusCode::FORBIDDEN, "{method}: {}", r.raw);
            assert_eq!(forwarded(method), before + 1, "{method} was not forwarded");
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}: {}", r.raw);
            assert_eq!(r.raw, deny, "{method}");
            assert_eq!(forwarded(method), before, "{method} reached the upstream");
        }
    }
    // An answer to a server request has no method and passes.
    let before = seen.0.lock().unwrap().len();
    let r = h
        .mcp(
            &nobody,
            None,
            json!({"jsonrpc":"2.0","id":"srv-1","result":{"action":"accept"}}),
        )
        .await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert_eq!(seen.0.lock().unwrap().len(), before + 1);
    // A method that is not a string is not a request.
    let r = h
        .mcp(&h.owner, None, json!({"jsonrpc":"2.0","id":4,"method":7}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32600);
    assert_eq!(r.body["id"], 4);
    assert_eq!(seen.0.lock().unwrap().len(), before + 1);
}

#[tokio::test]
async fn the_demo_policy_maps_no_method_family() {
    let h = demo().await;
    for method in keygate_scopes::POLICED_METHODS {
        let r = h
            .mcp(
                &h.owner,
                None,
                json!({"jsonrpc":"2.0","id":1,"method":method}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method}: {}", r.raw);
        assert_eq!(r.raw, r#"{"error":"insufficient_scope"}"#);
    }
    let r = h.rpc(&h.owner, "ping").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

#[tokio::test(flavor = "current_thread")]
async fn client_strings_reach_the_log_cut_short_and_escaped() {
    let captured = crate::util::LogCapture::start();
    let h = demo().await;
    let key = h.tenant_key(&["services:read"]).await;
    let forged = format!(
        "x\n2026-01-01T00:00:00.000000Z  INFO forged: all keys revoked\u{1b}[31m\r{}",
        "y".repeat(500_000)
    );
    let start = captured.text().len();
    for body in [
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":forged,"arguments":{}}}),
        json!({"jsonrpc":"2.0","id":1,"method":forged}),
        json!({"jsonrpc":"2.0","id":1,"method":format!("resources/{forged}")}),
    ] {
        let r = h.mcp(&key, None, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{}",
            &r.raw[..r.raw.len().min(200)]
        );
    }
    let logs = captured.text()[start..].to_owned();
    assert!(logs.contains("tool call denied by policy"), "{logs}");
    assert!(logs.contains("method denied by policy"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "an escape character reached the log: {logs}"
    );
    assert!(!logs.contains('\r'), "{logs}");
    for line in logs.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00"),
            "forged line: {line}"
        );
    }
    assert!(
        logs.contains(r"x\n2026-01-01T00:00:00.000000Z  INFO forged"),
        "{logs}"
    );
    assert!(logs.contains("…["), "the cut is marked: {logs}");
    assert!(
        logs.len() < 8 * 1024,
        "{} bytes logged for three denials",
        logs.len()
    );
}

#[tokio::test]
async fn an_unrestricted_key_reaches_no_project_outside_its_tenant() {
    let h = demo().await;
    let eve = other_tenant(&*h.store, "other", "eve", &[]).await;
    let demo_projects = h.store.list_projects(&h.tenant).await.unwrap();
    let demo_shop = demo_projects.iter().find(|p| p.name == "shop").unwrap();
    let deny = r#"{"error":"insufficient_scope"}"#;
    for (tool, args) in [
        ("service.list", json!({"project": "shop"})),
        ("invoices.list", json!({"project": "shop"})),
        (
            "service.scale",
            json!({"service": "api", "replicas": 9, "project": "shop"}),
        ),
        ("service.list", json!({"project": demo_shop.id.as_str()})),
        // A project no tenant has: the very same answer.
        ("service.list", json!({"project": "nowhere"})),
    ] {
        let r = h.tool(&eve, None, tool, args.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{tool} {args}: {}", r.raw);
        assert_eq!(r.raw, deny, "{tool} {args}");
    }
    // The demo tenant's own key still reaches its project.
    let r = h
        .tool(&h.owner, None, "service.list", json!({"project": "shop"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    // Without a project argument the other tenant reaches only its own data set.
    let r = h
        .tool(
            &eve,
            None,
            "service.scale",
            json!({"service": "api", "replicas": 9}),
        )
        .await;
    assert_eq!(structured(&r)["previous_replicas"], 2, "{}", r.raw);
    let r = h
        .tool(&h.owner, None, "service.status", json!({"service": "api"}))
        .await;
    assert_eq!(structured(&r)["replicas"], 2, "{}", r.raw);
}

#[tokio::test]
async fn a_tenant_with_its_own_shop_reaches_only_its_own() {
    let h = demo().await;
    let eve = other_tenant(&*h.store, "other", "eve", &["shop"]).await;
    let r = h
        .tool(
            &eve,
            None,
            "service.scale",
            json!({"service": "api", "replicas": 9, "project": "shop"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(structured(&r)["replicas"], 9, "{}", r.raw);
    // Each tenant's `shop` holds its own `api`.
    for (key, replicas) in [(&h.owner, 2), (&eve, 9)] {
        let shop_api = json!({"service": "api", "project": "shop"});
        let r = h.tool(key, None, "service.status", shop_api).await;
        assert_eq!(structured(&r)["replicas"], replicas, "{}", r.raw);
    }
}

#[tokio::test]
async fn the_resolved_project_id_and_the_tenant_reach_an_http_upstream() {
    let (base, seen) = upstream().await;
    let h = http_gateway(format!("{base}/mcp"), Duration::from_secs(10)).await;
    let s1 = h.session(&h.owner).await;
    let shop = h.store.list_projects(&h.tenant).await.unwrap()[0].clone();
    assert_eq!(shop.name, "shop");
    let last_headers = |seen: &Seen| seen.0.lock().unwrap().last().unwrap().0.clone();
    let spoof = |req: http::request::Builder| {
        req.header("x-keygate-project", "pj_spoofed")
            .header("x-keygate-tenant", "tn_spoofed")
    };
    let call = |key: &str, args: Value| {
        let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"service.list","arguments":args}});
        spoof(http::Request::post("/api/mcp"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    };
    let tenant = h.tenant.as_str();

    // An unrestricted key, by name and by id.
    for named in ["shop", shop.id.as_str()] {
        let r = h.send(call(&h.owner, json!({"project": named}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
        let headers = last_headers(&seen);
        assert_eq!(headers["x-keygate-project"], shop.id.as_str(), "{named}");
        assert_eq!(headers["x-keygate-tenant"], tenant);
        assert_eq!(headers.get_all("x-keygate-project").iter().count(), 1);
    }
    // No project named: no project header, and the client's is gone.
    let r = h.send(call(&h.owner, json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let headers = last_headers(&seen);
    assert!(headers.get("x-keygate-project").is_none(), "{headers:?}");
    assert_eq!(headers["x-keygate-tenant"], tenant);
    // A restricted key: its own project, resolved without the store.
    let (restricted, _) = h
        .create_key(json!({"name": "r", "kind": "tenant", "scopes": ["services:read", "services:write"], "projects": ["shop"]}))
        .await;
    let r = h.send(call(&restricted, json!({"project": "shop"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(last_headers(&seen)["x-keygate-project"], shop.id.as_str());
    // The evidence gate's status look-up carries the project too.
    let before = seen.0.lock().unwrap().len();
    let r = h
        .tool_in(
            &h.owner,
            &s1,
            "service.replace",
            json!({"service": "worker", "image": "shop/worker:2.3.1", "project": "shop"}),
        )
        .await;
    gated(&r, "DIAGNOSIS_REQUIRED");
    let seen_now = seen.0.lock().unwrap();
    let (status_headers, status_body) = &seen_now[before];
    assert_eq!(status_body["params"]["name"], "service.status");
    assert_eq!(status_headers["x-keygate-project"], shop.id.as_str());
    assert_eq!(status_headers["x-keygate-tenant"], tenant);
}

#[tokio::test]
async fn the_upstreams_own_refusal_of_a_tools_list_reaches_the_client() {
    let h = crate::util::demo().await;
    // A tools/list sent as a notification: the upstream accepts it with 202 and no body.
    let r = h
        .mcp(
            &h.owner,
            None,
            json!({"jsonrpc": "2.0", "method": "tools/list"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    // A tools/list the upstream refuses for its content type: its 415, not a 502.
    let req = http::Request::builder()
        .method(Method::POST)
        .uri("/api/mcp")
        .header("authorization", format!("Bearer {}", h.owner))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}).to_string(),
        ))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.raw);
    assert!(!r.raw.contains("service.list"), "{}", r.raw);
}
