//! Elicitation on the stream: a person-gated `tools/call` in a session whose client
//! declared elicitation is answered as SSE with an `elicitation/create`; the client's
//! answer, POSTed in the same session, decides it, and the same stream carries the
//! call's result.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate_demo::Platform;
use keygate_server::{Config, Upstream};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::util::{
    Harness, accept, assert_approval_required, assert_ungated, content_type, demo, demo_with,
    exists, policy_approving_by, with_policy,
};

/// Bound on every read of a stream, so a broken channel fails instead of hanging.
const BOUND: Duration = Duration::from_secs(30);

const AGENT_SCOPES: [&str; 2] = ["services:write", "services:read"];

/// The demo, a user key of its owner with [`AGENT_SCOPES`], and a session of that key
/// that declared form elicitation or not (`elicits`).
async fn agent_in_session(elicits: bool) -> (Harness, String, String) {
    let h = demo().await;
    let agent = h.user_key(&AGENT_SCOPES).await;
    let s = session(&h, &agent, elicits).await;
    (h, agent, s)
}

/// Opens a session whose client declares (or not) form elicitation.
pub(crate) async fn session(h: &Harness, key: &str, elicitation: bool) -> String {
    let capabilities = if elicitation {
        json!({"elicitation": {}})
    } else {
        json!({})
    };
    session_declaring(h, key, "2025-06-18", capabilities).await
}

/// Opens a session of protocol `version` whose client declares `capabilities`.
pub(crate) async fn session_declaring(
    h: &Harness,
    key: &str,
    version: &str,
    capabilities: Value,
) -> String {
    let r = h
        .mcp(
            key,
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": version, "capabilities": capabilities, "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.headers["mcp-session-id"].to_str().unwrap().to_owned()
}

/// A gated call whose answer is an event stream being read.
pub(crate) struct Stream {
    body: Body,
    read: Vec<u8>,
}

impl Stream {
    /// The next whole event's message.
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.read.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.read.drain(..end + 2).collect();
                let messages = keygate_mcp::sse::messages(Bytes::from(event)).unwrap();
                if let Some(m) = messages.into_iter().next() {
                    return Some(m);
                }
                continue;
            }
            let frame = tokio::time::timeout(BOUND, self.body.frame())
                .await
                .expect("the stream went on within the bound")?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.read.extend_from_slice(&data);
            }
        }
    }

    /// Every message left, to the stream's end.
    pub(crate) async fn rest(mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.next().await {
            out.push(m);
        }
        out
    }
}

/// `service.delete` on `service` in `session`: the response head and its stream.
pub(crate) async fn delete(
    h: &Harness,
    key: &str,
    session: &str,
    service: &str,
) -> (http::response::Parts, Stream) {
    let body = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {"name": "service.delete", "arguments": {"service": service}}});
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", session)
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts,
        Stream {
            body,
            read: Vec::new(),
        },
    )
}

/// The client's answer to elicitation request `id`.
pub(crate) async fn answer(
    h: &Harness,
    key: &str,
    session: &str,
    id: &Value,
    result: Value,
) -> StatusCode {
    let r = h
        .mcp(
            key,
            Some(session),
            json!({"jsonrpc": "2.0", "id": id, "result": result}),
        )
        .await;
    r.status
}

/// The gate code of a tool result message.
pub(crate) fn code(message: &Value) -> Option<&str> {
    message["result"]["structuredContent"]["code"].as_str()
}

#[tokio::test]
async fn accepting_with_the_exact_name_runs_the_call_on_the_same_stream() {
    let (h, agent, s) = agent_in_session(true).await;
    assert!(exists(&h, "web").await);

    let (head, mut stream) = delete(&h, &agent, &s, "web").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(content_type(&head.headers).starts_with("text/event-stream"));
    assert_eq!(head.headers["mcp-session-id"], s.as_str());
    let ask = stream.next().await.expect("an elicitation request first");
    assert_eq!(ask["jsonrpc"], json!("2.0"));
    assert_eq!(ask["method"], json!("elicitation/create"));
    let id = ask["id"].clone();
    assert!(
        id.as_str().unwrap().starts_with("keygate-approval-"),
        "{id}"
    );
    assert_eq!(ask["params"]["mode"], json!("form"));
    let message = ask["params"]["message"].as_str().unwrap();
    for part in ["service.delete", "`web`", r#"{"service":"web"}"#] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let schema = &ask["params"]["requestedSchema"];
    assert_eq!(schema["required"], json!(["target"]));
    assert_eq!(schema["properties"]["target"]["type"], json!("string"));

    // The answer arrives as its own POST while the stream waits; it is not forwarded.
    assert_eq!(
        answer(&h, &agent, &s, &id, accept("web")).await,
        StatusCode::ACCEPTED
    );
    let rest = stream.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["id"], json!(41));
    assert_eq!(code(&rest[0]), None, "{}", rest[0]);
    assert_ne!(rest[0]["result"]["isError"], json!(true), "{}", rest[0]);
    assert!(!exists(&h, "web").await, "web was deleted");

    // The answer counts once.
    assert_eq!(
        answer(&h, &agent, &s, &id, accept("web")).await,
        StatusCode::NOT_FOUND
    );
    let events = h.audit().await;
    h.assert_owner_approved(&events, "elicitation");
    assert!(events.iter().any(|e| e["action"] == "gate.approval_used"));
}

#[tokio::test]
async fn declining_cancelling_or_a_wrong_name_deletes_nothing() {
    let (h, agent, s) = agent_in_session(true).await;
    for result in [
        json!({"action": "decline"}),
        json!({"action": "cancel"}),
        accept("Web"),
        accept("api"),
        json!({"action": "accept", "content": {}}),
    ] {
        let (head, mut stream) = delete(&h, &agent, &s, "web").await;
        assert_eq!(head.status, StatusCode::OK);
        let ask = stream.next().await.unwrap();
        assert_eq!(
            answer(&h, &agent, &s, &ask["id"], result.clone()).await,
            StatusCode::ACCEPTED
        );
        let rest = stream.rest().await;
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(
            code(&rest[0]),
            Some("CONFIRMATION_DECLINED"),
            "{result}: {}",
            rest[0]
        );
        assert!(exists(&h, "web").await, "{result} deleted nothing");
    }
    h.assert_declined(5, "elicitation").await;
}

#[tokio::test]
async fn an_answer_from_another_key_or_session_is_refused_and_the_wait_goes_on() {
    let (h, agent, s) = agent_in_session(true).await;
    let other = h.user_key(&AGENT_SCOPES).await;
    let second = session(&h, &agent, true).await;
    let others = session(&h, &other, true).await;

    let (_, mut stream) = delete(&h, &agent, &s, "web").await;
    let ask = stream.next().await.unwrap();
    let id = ask["id"].clone();
    // Another key in the session: the session is not its own.
    assert_eq!(
        answer(&h, &other, &s, &id, accept("web")).await,
        StatusCode::NOT_FOUND
    );
    // Another key in its own session, and the same key in another session.
    assert_eq!(
        answer(&h, &other, &others, &id, accept("web")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        answer(&h, &agent, &second, &id, accept("web")).await,
        StatusCode::NOT_FOUND
    );
    // A made-up id in the session.
    let forged = json!(format!("{}x", id.as_str().unwrap()));
    assert_eq!(
        answer(&h, &agent, &s, &forged, accept("web")).await,
        StatusCode::NOT_FOUND
    );
    assert!(exists(&h, "web").await);

    // The stream still waits: the right answer in the right session decides it.
    assert_eq!(
        answer(&h, &agent, &s, &id, json!({"action": "decline"})).await,
        StatusCode::ACCEPTED
    );
    let rest = stream.rest().await;
    assert_eq!(code(&rest[0]), Some("CONFIRMATION_DECLINED"), "{}", rest[0]);
    assert!(exists(&h, "web").await);
}

#[tokio::test]
async fn a_client_without_elicitation_is_sent_to_the_page() {
    let (h, agent, s) = agent_in_session(false).await;
    let r = h
        .tool_in(&agent, &s, "service.delete", json!({"service": "web"}))
        .await;
    assert_approval_required(&r);
    assert!(content_type(&r.headers).starts_with("application/json"));
    assert!(exists(&h, "web").await);
}

#[tokio::test]
async fn no_answer_before_the_approval_expires_ends_with_the_page() {
    let mut config = Config::new(Upstream::in_process(Platform::new()));
    config.approval_ttl = Duration::from_secs(1);
    let h = demo_with(config).await;
    let agent = h.user_key(&AGENT_SCOPES).await;
    let s = session(&h, &agent, true).await;
    let (_, mut stream) = delete(&h, &agent, &s, "web").await;
    let ask = stream.next().await.unwrap();
    let rest = stream.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(code(&rest[0]), Some("APPROVAL_REQUIRED"), "{}", rest[0]);
    let page_id = rest[0]["result"]["structuredContent"]["approval_id"]
        .as_str()
        .unwrap();
    // A new approval, pending on the page; the expired request's answer counts for nothing.
    assert!(
        !ask["id"].as_str().unwrap().contains(page_id),
        "the page asks a fresh approval"
    );
    assert_eq!(
        answer(&h, &agent, &s, &ask["id"], accept("web")).await,
        StatusCode::NOT_FOUND
    );
    assert!(exists(&h, "web").await);
}

#[tokio::test]
async fn a_client_that_goes_away_ends_the_wait_and_an_approval_given_later_counts_once() {
    let (h, agent, s) = agent_in_session(true).await;
    let (_, mut stream) = delete(&h, &agent, &s, "web").await;
    let ask = stream.next().await.unwrap();
    drop(stream);
    // Nobody waits any more: the answer is still taken, and nothing runs by itself.
    assert_eq!(
        answer(&h, &agent, &s, &ask["id"], accept("web")).await,
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(crate::elicitation::POLL_TWICE).await;
    assert!(exists(&h, "web").await, "no abandoned wait ran the call");
    // The approval stands for the identical retry, once, as a page approval would.
    let ran = h
        .tool_in(&agent, &s, "service.delete", json!({"service": "web"}))
        .await;
    assert_ungated(&ran);
    assert!(!exists(&h, "web").await);
}

/// Longer than two polls of the waiting stream.
pub(crate) const POLL_TWICE: Duration = Duration::from_millis(600);

#[tokio::test]
async fn a_page_only_gate_never_asks_on_the_stream() {
    let config = Config::new(Upstream::in_process(Platform::new()));
    let (config, _dir) = with_policy(config, &policy_approving_by("page"));
    let h = demo_with(config).await;
    let agent = h.user_key(&AGENT_SCOPES).await;
    // The client declared elicitation and takes event streams: still the page.
    let s = session(&h, &agent, true).await;
    let call = h.tool_in(&agent, &s, "service.delete", json!({"service": "web"}));
    let r = tokio::time::timeout(BOUND, call)
        .await
        .expect("answered at once, not held open for an elicitation");
    assert_approval_required(&r);
    assert!(
        content_type(&r.headers).starts_with("application/json"),
        "answered without asking the client"
    );
    assert!(exists(&h, "web").await);
}
