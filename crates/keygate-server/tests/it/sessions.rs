//! A stateful MCP session is bound to the key whose `initialize` opened it: any other
//! key presenting its id gets 404, and the upstream never sees the request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Request, StatusCode};
use keygate_gates::{
    Challenge, EvidenceQuery, EvidenceRead, GateError, GateStore, MemoryGateStore, SessionBinding,
    SessionTouch, Taken,
};
use keygate_server::{App, Config, Upstream};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::util::{Harness, LogCapture, Reply, all_scopes, demo, other_tenant};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"NAME","version":"1"}}}"#;

/// `initialize` as client `name` (the test upstream reads the name); returns the reply.
async fn initialize_as(h: &Harness, key: &str, name: &str) -> Reply {
    let body: Value = serde_json::from_str(&INIT.replace("NAME", name)).unwrap();
    h.mcp(key, None, body).await
}

/// `initialize`; returns the session id the upstream issued.
async fn initialize(h: &Harness, key: &str) -> String {
    let r = initialize_as(h, key, "t").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.headers["mcp-session-id"].to_str().unwrap().to_owned()
}

/// A GET or DELETE of `/api/mcp` in `session`.
async fn bare(h: &Harness, method: Method, key: &str, session: &str) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri("/api/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .body(Body::empty())
        .unwrap();
    h.send(req).await
}

fn call(id: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"service.list","arguments":{}}})
}

/// An answer to a server request (sampling, elicitation), as a client POSTs it.
fn answer() -> Value {
    json!({"jsonrpc":"2.0","id":"srv-1","result":{"action":"accept","content":{"target":"api"}}})
}

/// Exactly the body the official SDKs answer an unknown session with.
fn assert_not_found(r: &Reply, id: Value, what: &str) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.raw);
    assert_eq!(
        r.body,
        json!({"jsonrpc":"2.0","id":id,"error":{"code":-32600,"message":"Session not found"}}),
        "{what}"
    );
    assert_eq!(r.headers["content-type"], "application/json", "{what}");
}

/// Key B (A's tenant) and key D (another tenant), each with every scope.
async fn others(h: &Harness) -> [(&'static str, String); 2] {
    let scopes = all_scopes();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    [
        ("B", h.stored_tenant_key(&scopes).await),
        (
            "D",
            other_tenant(&*h.store, "other", "dave", &["shop"]).await,
        ),
    ]
}

/// Every way into a session a key other than its owner might try: all 404.
async fn assert_locked_out(h: &Harness, key: &str, who: &str, session: &str) {
    let r = h.mcp(key, Some(session), call(7)).await;
    assert_not_found(&r, json!(7), &format!("{who}: tools/call"));
    let r = h.mcp(key, Some(session), answer()).await;
    assert_not_found(
        &r,
        Value::Null,
        &format!("{who}: an answer to a server request"),
    );
    let r = h
        .mcp(
            key,
            Some(session),
            json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}),
        )
        .await;
    assert_not_found(&r, Value::Null, &format!("{who}: a notification"));
    let r = bare(h, Method::GET, key, session).await;
    assert_not_found(&r, Value::Null, &format!("{who}: GET"));
    let r = bare(h, Method::DELETE, key, session).await;
    assert_not_found(&r, Value::Null, &format!("{who}: DELETE"));
}

#[tokio::test]
async fn a_session_of_the_demo_is_usable_only_by_the_key_that_opened_it() {
    let h = demo().await;
    let a = h.owner.clone();
    let session = initialize(&h, &a).await;
    let r = h.mcp(&a, Some(&session), call(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(r.body["result"].is_object(), "{}", r.raw);

    let others = others(&h).await;
    let log = LogCapture::start();
    for (who, key) in &others {
        assert_locked_out(&h, key, who, &session).await;
    }
    // The refusals are logged with the key, never with the whole session id.
    let text = log.text();
    let d = h.principal(&others[1].1).await;
    assert!(text.contains("session of another key refused"), "{text}");
    assert!(text.contains(d.key_id.as_str()), "{text}");
    assert!(
        !text.contains(&session),
        "the session id was logged: {text}"
    );
    drop(log);

    // The session is checked before policy: a call the key may not make is still 404
    // in a session that is not its own (and 403 without one).
    let reader = h.stored_tenant_key(&["services:read"]).await;
    let delete = json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"service.delete","arguments":{"service":"api"}}});
    let r = h.mcp(&reader, Some(&session), delete.clone()).await;
    assert_not_found(&r, json!(8), "a call the key may not make");
    let r = h.mcp(&reader, None, delete).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);

    // A's session still works for A, whatever the others tried; A's own answers pass.
    let r = h.mcp(&a, Some(&session), call(2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = h.mcp(&a, Some(&session), answer()).await;
    assert_ne!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
    // A session id nobody opened is refused to every key, A's included.
    let r = h.mcp(&a, Some("never-issued-0123"), call(3)).await;
    assert_not_found(&r, json!(3), "an unknown session");
    // Without a session (stateless requests) nothing changes.
    let r = h.mcp(&a, None, call(4)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    // A second initialize gets a session of its own.
    let second = initialize(&h, &a).await;
    assert_ne!(second, session);
    let r = h.mcp(&a, Some(&second), call(5)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

/// What the test upstream saw.
#[derive(Clone, Default)]
struct Upstreamed {
    requests: Arc<AtomicUsize>,
    live: Arc<Mutex<HashSet<String>>>,
    issued: Arc<AtomicUsize>,
}

/// A stateful MCP server in miniature: `initialize` issues `sess-N` (`gone-N` for a
/// client named `gone`, whose DELETE it answers 404; `fixed` for a client named
/// `fixed`; `bad id N`, which no client may send, for one named `bad`), other POSTs answer a result, GET opens an (empty) event stream, DELETE
/// ends a session.
async fn stateful(
    State(up): State<Upstreamed>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    up.requests.fetch_add(1, Ordering::SeqCst);
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let msg: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    match method {
        Method::POST if msg["method"] == "initialize" => {
            let n = up.issued.fetch_add(1, Ordering::SeqCst);
            let id = match msg["params"]["clientInfo"]["name"].as_str() {
                Some("gone") => format!("gone-{n}"),
                Some("fixed") => "fixed".to_owned(),
                Some("bad") => format!("bad id {n}"),
                _ => format!("sess-{n}"),
            };
            up.live.lock().unwrap().insert(id.clone());
            let result = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"t","version":"1"}}});
            ([("mcp-session-id", id)], axum::Json(result)).into_response()
        }
        _ if session
            .as_ref()
            .is_none_or(|s| !up.live.lock().unwrap().contains(s)) =>
        {
            (StatusCode::NOT_FOUND, "no such session").into_response()
        }
        Method::POST if msg.get("method").is_none() || msg.get("id").is_none() => {
            StatusCode::ACCEPTED.into_response()
        }
        Method::POST => axum::Json(
            json!({"jsonrpc":"2.0","id":msg["id"],"result":{"content":[],"isError":false}}),
        )
        .into_response(),
        Method::GET => ([("content-type", "text/event-stream")], "").into_response(),
        Method::DELETE => {
            let s = session.unwrap_or_default();
            if s.starts_with("gone-") {
                return (StatusCode::NOT_FOUND, "already gone").into_response();
            }
            up.live.lock().unwrap().remove(&s);
            StatusCode::OK.into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn stateful_upstream() -> (String, Upstreamed) {
    let up = Upstreamed::default();
    let app = axum::Router::new()
        .route(
            "/mcp",
            axum::routing::post(stateful).get(stateful).delete(stateful),
        )
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), up)
}

/// The gateway in front of `url` with the demo policy, on `gates`.
async fn gateway(url: String, gates: Arc<dyn GateStore>) -> Harness {
    crate::util::http_gateway(url, keygate_demo::POLICY_TOML, |_| {}, gates).await
}

#[tokio::test]
async fn other_keys_never_reach_the_upstream_and_a_delete_ends_the_binding() {
    let (url, up) = stateful_upstream().await;
    let h = gateway(url, Arc::new(MemoryGateStore::new())).await;
    let a = h.owner.clone();
    let session = initialize(&h, &a).await;
    let r = h.mcp(&a, Some(&session), call(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

    let before = up.requests.load(Ordering::SeqCst);
    for (who, key) in others(&h).await {
        assert_locked_out(&h, &key, who, &session).await;
    }
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        before,
        "a refused request reached the upstream"
    );
    assert!(
        up.live.lock().unwrap().contains(&session),
        "D ended A's session"
    );

    // A: the stream, an answer to a server request, then the end of the session.
    let r = bare(&h, Method::GET, &a, &session).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = h.mcp(&a, Some(&session), answer()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    let r = bare(&h, Method::DELETE, &a, &session).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let before = up.requests.load(Ordering::SeqCst);
    let r = h.mcp(&a, Some(&session), call(2)).await;
    assert_not_found(&r, json!(2), "A after its DELETE");
    let r = bare(&h, Method::GET, &a, &session).await;
    assert_not_found(&r, Value::Null, "A's GET after its DELETE");
    let r = bare(&h, Method::DELETE, &a, &session).await;
    assert_not_found(&r, Value::Null, "A's second DELETE");
    assert_eq!(up.requests.load(Ordering::SeqCst), before);

    // A DELETE the upstream answers 404 (it forgot the session) ends the binding too.
    let r = initialize_as(&h, &a, "gone").await;
    let gone = r.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let r = bare(&h, Method::DELETE, &a, &gone).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
    assert_eq!(r.raw, "already gone", "the upstream's own answer");
    let r = h.mcp(&a, Some(&gone), call(3)).await;
    assert_not_found(&r, json!(3), "after a DELETE the upstream answered 404");
}

#[tokio::test]
async fn an_upstream_cannot_hand_one_session_to_two_keys() {
    let (url, _up) = stateful_upstream().await;
    let h = gateway(url, Arc::new(MemoryGateStore::new())).await;
    let a = h.owner.clone();
    let r = initialize_as(&h, &a, "fixed").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let [_, (_, d)] = others(&h).await;
    let r = initialize_as(&h, &d, "fixed").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32003, "{}", r.raw);
    assert_eq!(r.body["id"], 0, "{}", r.raw);
    assert!(r.headers.get("mcp-session-id").is_none(), "{:?}", r.headers);
    // The session stays A's.
    let r = h.mcp(&a, Some("fixed"), call(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = h.mcp(&d, Some("fixed"), call(1)).await;
    assert_not_found(&r, json!(1), "D");
    // A again (same key, same id) is fine.
    let r = initialize_as(&h, &a, "fixed").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

#[tokio::test]
async fn a_session_id_clients_cannot_send_back_is_not_passed_on() {
    let (url, _up) = stateful_upstream().await;
    let h = gateway(url, Arc::new(MemoryGateStore::new())).await;
    let r = initialize_as(&h, &h.owner, "bad").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.raw);
    assert_eq!(r.body["error"]["code"], -32003, "{}", r.raw);
    assert!(r.headers.get("mcp-session-id").is_none(), "{:?}", r.headers);
}

/// A binding is refreshed by a request of its key once its last refresh is old enough
/// (and only then: the hot path is one read); an expired one is an unknown session.
#[tokio::test]
async fn bindings_are_refreshed_when_due_and_refused_once_expired() {
    let gates = Arc::new(MemoryGateStore::new());
    let h = crate::util::demo_with_gates(
        Config::new(Upstream::in_process(keygate_demo::Platform::new())),
        gates.clone(),
    )
    .await;
    let key_id = h.principal(&h.owner).await.key_id.as_str().to_owned();
    let now = OffsetDateTime::now_utc();
    let minutes = time::Duration::minutes;
    let seed = |session: &'static str, seen: OffsetDateTime, expires: OffsetDateTime| {
        let gates = gates.clone();
        let binding = SessionBinding {
            key_id: key_id.clone(),
            bound_at: seen,
            seen_at: seen,
            expires_at: expires,
            elicitation: false,
            elicitation_url: false,
        };
        async move { assert!(gates.bind_session(session, &binding).await.unwrap()) }
    };
    let binding = |session: &'static str| {
        let gates = gates.clone();
        async move { gates.session_binding(session, now).await.unwrap().unwrap() }
    };
    seed("stale-refresh", now - minutes(10), now + minutes(1)).await;
    seed("fresh-refresh", now - minutes(1), now + minutes(1)).await;
    seed("expired", now - minutes(30), now - minutes(1)).await;

    let r = h.mcp(&h.owner, Some("stale-refresh"), call(1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let b = binding("stale-refresh").await;
    assert!(b.seen_at >= now, "refreshed: {b:?}");
    assert!(
        b.expires_at >= now + time::Duration::hours(23),
        "moved to a full idle time: {b:?}"
    );

    let r = h.mcp(&h.owner, Some("fresh-refresh"), call(2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let b = binding("fresh-refresh").await;
    assert_eq!(b.seen_at, now - minutes(1), "refreshed too early: {b:?}");
    assert_eq!(b.expires_at, now + minutes(1), "{b:?}");

    let r = h.mcp(&h.owner, Some("expired"), call(3)).await;
    assert_not_found(&r, json!(3), "an expired binding");
}

/// A gate store whose session bindings fail (everything else works).
#[derive(Debug, Default)]
struct BrokenSessions(MemoryGateStore);

fn broken() -> GateError {
    GateError::store("session table unavailable")
}

#[async_trait]
impl GateStore for BrokenSessions {
    async fn put_challenge(&self, c: &Challenge) -> Result<(), GateError> {
        self.0.put_challenge(c).await
    }
    async fn take_challenge(&self, c: &str, k: &str, s: &str) -> Result<Taken, GateError> {
        self.0.take_challenge(c, k, s).await
    }
    async fn record_evidence(&self, read: &EvidenceRead) -> Result<(), GateError> {
        self.0.record_evidence(read).await
    }
    async fn evidence_read(&self, query: EvidenceQuery<'_>) -> Result<bool, GateError> {
        self.0.evidence_read(query).await
    }
    async fn bind_session(&self, _: &str, _: &SessionBinding) -> Result<bool, GateError> {
        Err(broken())
    }
    async fn session_binding(
        &self,
        _: &str,
        _: OffsetDateTime,
    ) -> Result<Option<SessionBinding>, GateError> {
        Err(broken())
    }
    async fn touch_session(&self, _: &str, _: SessionTouch<'_>) -> Result<bool, GateError> {
        Err(broken())
    }
    async fn end_session(&self, _: &str, _: &str) -> Result<bool, GateError> {
        Err(broken())
    }
    async fn put_approval(&self, a: &keygate_gates::Approval) -> Result<(), GateError> {
        self.0.put_approval(a).await
    }
    async fn get_approval(&self, id: &str) -> Result<Option<keygate_gates::Approval>, GateError> {
        self.0.get_approval(id).await
    }
    async fn pending_approvals(
        &self,
        tenant: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<keygate_gates::Approval>, GateError> {
        self.0.pending_approvals(tenant, now).await
    }
    async fn count_pending_approvals(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<u64, GateError> {
        self.0.count_pending_approvals(key, now).await
    }
    async fn claim_approval(
        &self,
        query: keygate_gates::ApprovalQuery<'_>,
    ) -> Result<keygate_gates::Claimed, GateError> {
        self.0.claim_approval(query).await
    }
    async fn decide_approval(
        &self,
        id: &str,
        status: keygate_gates::ApprovalStatus,
        by: &keygate_gates::DecidedBy,
    ) -> Result<Option<keygate_gates::Approval>, GateError> {
        self.0.decide_approval(id, status, by).await
    }
    async fn spend_nonce(&self, nonce: &str, until: OffsetDateTime) -> Result<bool, GateError> {
        self.0.spend_nonce(nonce, until).await
    }
    async fn purge(&self, now: OffsetDateTime, before: OffsetDateTime) -> Result<u64, GateError> {
        self.0.purge(now, before).await
    }
}

#[tokio::test]
async fn a_failing_gate_store_answers_503_and_hands_out_no_session() {
    let (url, up) = stateful_upstream().await;
    let h = gateway(url, Arc::new(BrokenSessions::default())).await;
    let log = LogCapture::start();
    let r = initialize_as(&h, &h.owner, "t").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert!(
        r.headers.get("mcp-session-id").is_none(),
        "an unbound session went out"
    );
    assert!(
        log.text().contains("could not bind a session"),
        "{}",
        log.text()
    );
    let before = up.requests.load(Ordering::SeqCst);
    let r = h.mcp(&h.owner, Some("sess-0"), call(1)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    let r = bare(&h, Method::GET, &h.owner, "sess-0").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
    assert_eq!(up.requests.load(Ordering::SeqCst), before);
    // Stateless requests do not touch session bindings.
    let r = h.mcp(&h.owner, None, call(2)).await;
    assert_ne!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.raw);
}

#[tokio::test]
async fn a_session_bound_through_one_instance_is_refused_to_others_on_every_instance() {
    let Some(base) = keygate_test::postgres_url() else {
        return;
    };
    let schema = keygate_test::PgSchema::create(&base, "kgss").await;
    let instance = || async {
        let mut config = Config::new(Upstream::in_process(keygate_demo::Platform::new()));
        config.database = schema.url.parse().unwrap();
        App::new(config).await.unwrap()
    };
    let (one, two) = (instance().await, instance().await);
    let [h1, h2] = crate::util::harnesses([&one, &two]).await;
    let a = h1.owner.clone();
    // Key D of another tenant, in the shared database.
    let d = other_tenant(&**one.store(), "other", "dave", &["shop"]).await;
    let session = initialize(&h1, &a).await;
    let r = h2.mcp(&a, Some(&session), call(1)).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "A on the other instance: {}",
        r.raw
    );
    for h in [&h1, &h2] {
        let r = h.mcp(&d, Some(&session), call(2)).await;
        assert_not_found(&r, json!(2), "D");
        let r = bare(h, Method::GET, &d, &session).await;
        assert_not_found(&r, Value::Null, "D's GET");
    }
    let r = h1.mcp(&a, Some("never-issued-0123"), call(3)).await;
    assert_not_found(&r, json!(3), "an unknown session");
    // The table keeps the id's SHA-256 only.
    let rows = crate::util::stored_rows(&schema.url, "gate_sessions").await;
    assert!(rows.contains("\\x"), "a stored session row: {rows}");
    assert!(!rows.contains(&session), "{rows}");
}
