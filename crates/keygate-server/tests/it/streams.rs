//! The gateway's transport rules against a loopback HTTP upstream: every `Mcp-*`
//! header both ways, routing headers checked against the body, streams that stay
//! open past the upstream timeout, upstream error answers passed with their status,
//! and tools/list answered as an event stream filtered in place.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use keygate_server::Config;
use serde_json::{Value, json};

use crate::util::{Harness, assert_no_confirm, content_type, listed_tool, structured};

/// The longest any step here waits.
const BOUND: Duration = Duration::from_secs(20);
/// The upstream timeout of these gateways, well under [`SILENCE`].
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the upstream stays silent after its response head.
const SILENCE: Duration = Duration::from_secs(1);

/// What the upstream received: headers and JSON body of each request.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(Method, HeaderMap, Value)>>>);

impl Seen {
    fn last(&self) -> (Method, HeaderMap, Value) {
        self.0.lock().unwrap().last().cloned().expect("a request")
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn event_stream(first: Option<Bytes>, after_silence: Bytes) -> Response {
    let head = stream::iter(first.map(Ok::<_, std::convert::Infallible>));
    let late = stream::once(async move {
        tokio::time::sleep(SILENCE).await;
        Ok(after_silence)
    });
    let mut resp = Response::new(Body::from_stream(futures_util::StreamExt::chain(
        head, late,
    )));
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    resp.headers_mut()
        .insert("cache-control", "no-cache".parse().unwrap());
    resp.headers_mut()
        .insert("mcp-test-reply", "from-upstream".parse().unwrap());
    resp
}

fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// In front of the demo platform: records every request; answers 404 for session
/// `ended`; a GET stream that is silent for [`SILENCE`] before its one event;
/// tools/list as an event stream (a notification first); `service.events` as an
/// event stream silent for [`SILENCE`] after its head.
async fn shape(State(seen): State<Seen>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    seen.0
        .lock()
        .unwrap()
        .push((parts.method.clone(), parts.headers.clone(), v.clone()));
    if parts
        .headers
        .get("mcp-session-id")
        .is_some_and(|s| s == "ended")
    {
        return (StatusCode::NOT_FOUND, "session ended").into_response();
    }
    if parts.method == Method::GET {
        let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"late"}});
        return event_stream(None, event(&note));
    }
    let method = v["method"].as_str().unwrap_or_default().to_owned();
    let tool = v["params"]["name"].as_str().unwrap_or_default().to_owned();
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if method == "tools/list" {
        let answer = resp.into_body().collect().await.unwrap().to_bytes();
        let mut answer: Value = serde_json::from_slice(&answer).unwrap();
        // A tool the policy does not know, to be hidden.
        if let Some(tools) = answer["result"]["tools"].as_array_mut() {
            tools.push(json!({"name": "not.in.policy", "inputSchema": {"type": "object"}}));
        }
        let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"listing"}});
        let mut out = event_stream(Some(event(&note)), event(&answer));
        out.headers_mut()
            .insert("mcp-session-id", "s-up".parse().unwrap());
        return out;
    }
    if method == "tools/call" && tool == "service.events" {
        let answer = resp.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        return event_stream(None, event(&answer));
    }
    resp
}

async fn upstream() -> (String, Seen) {
    let seen = Seen::default();
    let app = keygate_demo::router(keygate_demo::Platform::new())
        .route("/mcp", axum::routing::get(|| async { "unreachable" }))
        .layer(middleware::from_fn_with_state(seen.clone(), shape));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/mcp"), seen)
}

async fn gateway(url: String) -> Harness {
    let gates = Arc::new(keygate_gates::MemoryGateStore::new());
    let edit = |c: &mut Config| c.upstream_timeout = TIMEOUT;
    let h = crate::util::http_gateway(url, keygate_demo::POLICY_TOML, edit, gates.clone()).await;
    // The session ids these tests send, as if the upstream's `initialize` had issued
    // them to the owner's key (the gateway refuses sessions no key opened).
    for id in ["s1", "ended"] {
        h.bind_owner_session(&*gates, id).await;
    }
    h
}

/// One POST with extra headers, answered within [`BOUND`].
async fn post(h: &Harness, key: &str, headers: &[(&str, &str)], body: Value) -> crate::util::Reply {
    let mut req = http::Request::post("/api/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Body::from(body.to_string())).unwrap();
    tokio::time::timeout(BOUND, h.send(req))
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn every_mcp_header_reaches_the_upstream_and_the_client_but_no_credential() {
    let (url, seen) = upstream().await;
    let h = gateway(url).await;
    let r = post(
        &h,
        &h.owner,
        &[
            ("mcp-method", "tools/list"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-param-region", "eu-west"),
            ("mcp-session-id", "s1"),
            ("last-event-id", "e9"),
            ("cookie", "session=secret"),
            ("x-keygate-tenant", "spoofed"),
            ("x-keygate-key-id", "spoofed"),
            ("x-other", "dropped"),
        ],
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let (_, headers, _) = seen.last();
    for (name, value) in [
        ("mcp-method", "tools/list"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-param-region", "eu-west"),
        ("mcp-session-id", "s1"),
        ("last-event-id", "e9"),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
    ] {
        assert_eq!(
            headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name}"
        );
    }
    assert!(headers.get("authorization").is_none());
    assert!(headers.get("cookie").is_none());
    assert!(headers.get("x-other").is_none());
    let p = h.principal(&h.owner).await;
    assert_eq!(headers["x-keygate-tenant"], p.tenant.id.as_str());
    assert_eq!(headers["x-keygate-key-id"], p.key_id.as_str());
    assert_eq!(headers.get_all("x-keygate-tenant").iter().count(), 1);
    // Back to the client: every Mcp-* header and Cache-Control.
    assert_eq!(r.headers["mcp-test-reply"], "from-upstream");
    assert_eq!(r.headers["mcp-session-id"], "s-up");
    assert_eq!(r.headers["cache-control"], "no-cache");
}

#[tokio::test]
async fn routing_headers_that_disagree_with_the_body_are_400_header_mismatch() {
    let (url, seen) = upstream().await;
    let h = gateway(url).await;
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"service.list","arguments":{}}});
    let before = seen.count();
    for (headers, names) in [
        (vec![("mcp-method", "tools/list")], "Mcp-Method"),
        (
            vec![("mcp-method", "tools/call"), ("mcp-name", "service.delete")],
            "Mcp-Name",
        ),
        // "service.delete", base64-encoded: decoded before it is compared.
        (
            vec![("mcp-name", "=?base64?c2VydmljZS5kZWxldGU=?=")],
            "Mcp-Name",
        ),
        (
            vec![("mcp-method", "tools/call"), ("mcp-method", "tools/call")],
            "more than once",
        ),
    ] {
        let r = post(&h, &h.owner, &headers, call.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{headers:?}: {}", r.raw);
        assert_eq!(r.body["error"]["code"], -32020, "{}", r.raw);
        assert_eq!(r.body["id"], 3);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{message}");
    }
    assert_eq!(
        seen.count(),
        before,
        "no mismatched request reached the upstream"
    );
    // Matching headers, plain or base64 ("service.list"), pass.
    for name in ["service.list", "=?base64?c2VydmljZS5saXN0?="] {
        let r = post(
            &h,
            &h.owner,
            &[("mcp-method", "tools/call"), ("mcp-name", name)],
            call.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
    }
}

#[tokio::test]
async fn a_stream_silent_longer_than_the_upstream_timeout_still_delivers() {
    let (url, _) = upstream().await;
    let h = gateway(url).await;
    // The GET stream: head at once, its event after SILENCE > TIMEOUT.
    let req = bodiless(&h, Method::GET, ("accept", "text/event-stream"));
    let r = tokio::time::timeout(BOUND, h.send(req)).await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let events = keygate_mcp::sse::messages(Bytes::from(r.raw.clone())).unwrap();
    assert_eq!(events.len(), 1, "{}", r.raw);
    assert_eq!(events[0]["params"]["data"], "late");

    // A tool call (with evidence to record) silent after its head.
    let r = post(
        &h,
        &h.owner,
        &[("mcp-session-id", "s1")],
        json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"service.events","arguments":{"service":"worker"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert!(content_type(&r.headers).starts_with("text/event-stream"));
    let events = keygate_mcp::sse::messages(Bytes::from(r.raw.clone())).unwrap();
    assert_eq!(events[0]["id"], 8);
    assert_eq!(events[0]["result"]["isError"], false, "{}", r.raw);
}

#[tokio::test]
async fn evidence_read_on_a_streamed_answer_is_recorded() {
    let (url, _) = upstream().await;
    let h = gateway(url).await;
    let key = h.tenant_key(&["services:write", "services:read"]).await;
    let session = h.session(&key).await;
    let replace = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"service.replace","arguments":{"service":"worker","image":"shop/worker:2.3.1"}}});
    let first = post(
        &h,
        &key,
        &[("mcp-session-id", session.as_str())],
        replace.clone(),
    )
    .await;
    assert_eq!(
        structured(&first)["evidence_missing"],
        json!(crate::util::EVIDENCE),
        "{}",
        first.raw
    );
    // service.events answers as a slow event stream; its read still counts.
    let r = post(
        &h,
        &key,
        &[("mcp-session-id", session.as_str())],
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"service.events","arguments":{"service":"worker"}}}),
    )
    .await;
    assert!(r.raw.starts_with("event: message"), "{}", r.raw);
    let second = post(&h, &key, &[("mcp-session-id", session.as_str())], replace).await;
    assert_eq!(
        structured(&second)["evidence_missing"],
        json!(["service.logs.build", "service.logs.runtime"]),
        "{}",
        second.raw
    );
}

#[tokio::test]
async fn the_upstreams_error_answers_reach_the_client_with_their_status() {
    let (url, _) = upstream().await;
    let h = gateway(url).await;
    for body in [
        json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.list","arguments":{}}}),
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"service.events","arguments":{"service":"worker"}}}),
        json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
    ] {
        let r = post(&h, &h.owner, &[("mcp-session-id", "ended")], body.clone()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{body}: {}", r.raw);
        assert_eq!(r.raw, "session ended");
    }
    for method in [Method::GET, Method::DELETE] {
        let req = bodiless(&h, method, ("mcp-session-id", "ended"));
        let r = tokio::time::timeout(BOUND, h.send(req)).await.unwrap();
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.raw);
    }
}

#[tokio::test]
async fn tools_list_answered_as_an_event_stream_stays_one_and_is_filtered() {
    let (url, _) = upstream().await;
    let h = gateway(url).await;
    let reader = h.tenant_key(&["services:read"]).await;
    for (key, delete_visible) in [(&h.owner, true), (&reader, false)] {
        let r = post(
            &h,
            key,
            &[],
            json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(
            content_type(&r.headers).starts_with("text/event-stream"),
            "{:?}",
            r.headers
        );
        let messages = keygate_mcp::sse::messages(Bytes::from(r.raw.clone())).unwrap();
        assert_eq!(messages.len(), 2, "{}", r.raw);
        assert_eq!(
            messages[0]["params"]["data"], "listing",
            "other events pass"
        );
        let tools = messages[1]["result"]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"service.list"), "{names:?}");
        assert!(!names.contains(&"not.in.policy"), "{names:?}");
        assert_eq!(
            names.contains(&"service.delete"),
            delete_visible,
            "{names:?}"
        );
        if delete_visible {
            // The demo's person gate takes no `confirm`.
            assert_no_confirm(listed_tool(tools, "service.delete"));
        }
    }
}

#[tokio::test]
async fn an_mrtr_approved_call_reaches_the_upstream_without_the_gateways_members() {
    use crate::mrtr::{ask, retry, web};
    use crate::util::accept;
    let (url, seen) = upstream().await;
    let h = gateway(url).await;
    let before = seen.count();
    let state = ask(&h, &h.owner, web()).await;
    assert_eq!(seen.count(), before, "the ask is the gateway's own answer");
    let ran = retry(&h, &h.owner, web(), &state, accept("web")).await;
    assert_eq!(crate::util::gate_code(&ran), None, "{}", ran.raw);
    assert_eq!(seen.count(), before + 1, "forwarded once");
    let (_, _, body) = seen.last();
    let params = body["params"].as_object().expect("params");
    assert_eq!(params["name"], json!("service.delete"));
    assert_eq!(params["arguments"], web());
    assert!(params.contains_key("_meta"), "{body}");
    assert!(!params.contains_key("inputResponses"), "{body}");
    assert!(!params.contains_key("requestState"), "{body}");
}

/// A `method` request to `/api/mcp` without a body, with the owner's key and `header`.
fn bodiless(h: &Harness, method: Method, header: (&str, &str)) -> http::Request<Body> {
    http::Request::builder()
        .method(method)
        .uri("/api/mcp")
        .header("authorization", format!("Bearer {}", h.owner))
        .header(header.0, header.1)
        .body(Body::empty())
        .unwrap()
}
