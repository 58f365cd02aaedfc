//! The bridge against a small scripted stdio server (Python: `$KEYGATE_TEST_PYTHON`, else
//! `python3`; without one the tests print a note and pass).

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::stdio::StdioCommand;
use crate::upstream::Upstream;

/// Answers `initialize`; `tools/call` of `echo` (a log message and, with a token, a
/// progress notification first), `ask` (a sampling request to the client, then the
/// client's answer as its result), `slow` (never answered), `cancelled` (the request
/// ids cancelled so far), `notify` (a tools/list_changed, then the answer); -32601 for
/// anything else. `tools/list`: `echo` and `ask`.
pub(crate) const SERVER: &str = r#"
import json, sys
cancelled, pending = [], {}
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    m = json.loads(line)
    method, id_ = m.get("method"), m.get("id")
    if method is None:
        call = pending.pop(id_, None)
        if call is not None:
            send({"jsonrpc": "2.0", "id": call, "result": {"content": [{"type": "text", "text": json.dumps(m)}]}})
        continue
    if method == "notifications/cancelled":
        cancelled.append(m["params"]["requestId"]); continue
    if id_ is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": id_, "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}, "instructions": "be kind"}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": id_, "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "ask", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        p = m["params"]; name = p["name"]
        if name == "echo":
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "log"}})
            token = p.get("_meta", {}).get("progressToken")
            if token is not None:
                send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1}})
            send({"jsonrpc": "2.0", "id": id_, "result": {"content": [{"type": "text", "text": json.dumps(p)}]}})
        elif name == "ask":
            pending["srv-1"] = id_
            send({"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}})
        elif name == "slow":
            pass
        elif name == "cancelled":
            send({"jsonrpc": "2.0", "id": id_, "result": {"cancelled": cancelled}})
        elif name == "notify":
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            send({"jsonrpc": "2.0", "id": id_, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": id_, "error": {"code": -32601, "message": "Method not found"}})
"#;

/// The scripted server's command, when there is a Python.
pub(crate) fn scripted() -> Option<StdioCommand> {
    let python = std::env::var("KEYGATE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = std::process::Command::new(&python)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: no Python ({python}); skipping a stdio bridge test");
        return None;
    }
    StdioCommand::new(python, vec!["-c".to_owned(), SERVER.to_owned()]).ok()
}

fn bridge() -> Option<Upstream> {
    let command = scripted()?;
    Some(Upstream::stdio(
        command,
        "scripted".to_owned(),
        Duration::from_secs(10),
    ))
}

pub(crate) fn headers(session: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "accept",
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    if let Some(s) = session {
        h.insert("mcp-session-id", HeaderValue::from_str(s).unwrap());
    }
    h
}

/// The messages of the next frame of an event stream (one event), in time.
pub(crate) async fn next_event(body: &mut Body) -> Vec<Value> {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("an event in time")
        .expect("an event")
        .expect("a readable event");
    keygate_mcp::sse::messages(frame.into_data().expect("data")).expect("an event stream")
}

/// One request through `u`, answered in time.
pub(crate) async fn send(
    u: &Upstream,
    method: Method,
    session: Option<&str>,
    body: Bytes,
) -> Response<Body> {
    tokio::time::timeout(
        Duration::from_secs(20),
        u.send(method, &headers(session), &[], body),
    )
    .await
    .expect("the upstream answers in time")
    .expect("the upstream answers")
}

/// One JSON-RPC message POSTed through `u`.
/// A bodiless `method` (GET, DELETE) in `session`; asserts that it answered `status`.
pub(crate) async fn bodiless(
    u: &Upstream,
    method: Method,
    session: &str,
    status: StatusCode,
) -> Response<Body> {
    let resp = send(u, method, Some(session), Bytes::new()).await;
    assert_eq!(resp.status(), status);
    resp
}

pub(crate) async fn post(u: &Upstream, session: Option<&str>, message: &Value) -> Response<Body> {
    send(u, Method::POST, session, Bytes::from(message.to_string())).await
}

/// The messages of an answer (one JSON body, or the events of a stream), in order.
pub(crate) async fn messages(resp: Response<Body>) -> Vec<Value> {
    let sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream");
    let bytes = tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect())
        .await
        .expect("the body ends in time")
        .unwrap()
        .to_bytes();
    if sse {
        keygate_mcp::sse::messages(bytes).unwrap()
    } else {
        vec![serde_json::from_slice(&bytes).unwrap()]
    }
}

async fn open_session(b: &Upstream) -> String {
    let init = json!({"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{"sampling":{}},"clientInfo":{"name":"t","version":"0"}}});
    let resp = post(b, None, &init).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let session = resp
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let answer = messages(resp).await;
    assert_eq!(
        answer[0]["id"], "init-1",
        "the client's id comes back: {answer:?}"
    );
    assert_eq!(answer[0]["result"]["serverInfo"]["name"], "scripted");
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        post(b, Some(&session), &note).await.status(),
        StatusCode::ACCEPTED
    );
    session
}

fn call(id: Value, name: &str, token: Option<Value>) -> Value {
    let mut params = json!({"name": name, "arguments": {"x": 1}});
    if let Some(t) = token {
        params["_meta"] = json!({"progressToken": t});
    }
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":params})
}

#[tokio::test]
async fn a_session_gets_its_events_on_the_call_stream_with_the_clients_ids() {
    let Some(b) = bridge() else { return };
    let session = open_session(&b).await;
    // About 190 random bits of base62.
    assert_eq!(session.len(), 32);
    assert!(session.chars().all(|c| c.is_ascii_alphanumeric()));
    let resp = post(
        &b,
        Some(&session),
        &call(json!("c-7"), "echo", Some(json!("tok"))),
    )
    .await;
    let got = messages(resp).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0]["method"], "notifications/message");
    assert_eq!(
        got[1]["params"]["progressToken"], "tok",
        "the client's token: {got:?}"
    );
    assert_eq!(got[2]["id"], "c-7");
    // The child saw the bridge's id and token, never the client's.
    let seen: Value =
        serde_json::from_str(got[2]["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_ne!(seen["_meta"]["progressToken"], "tok");
    assert_eq!(seen["arguments"], json!({"x": 1}));
}

#[tokio::test]
async fn a_childs_request_reaches_the_client_and_its_answer_the_child() {
    let Some(b) = bridge() else { return };
    let session = open_session(&b).await;
    let b = std::sync::Arc::new(b);
    let caller = {
        let b = b.clone();
        let session = session.clone();
        tokio::spawn(async move { post(&b, Some(&session), &call(json!(5), "ask", None)).await })
    };
    let resp = caller.await.unwrap();
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let asked = next_event(&mut body).await;
    assert_eq!(asked[0]["method"], "sampling/createMessage");
    assert_eq!(asked[0]["id"], "srv-1");
    let answer = json!({"jsonrpc":"2.0","id":"srv-1","result":{"role":"assistant","content":{"type":"text","text":"hi"}}});
    assert_eq!(
        post(&b, Some(&session), &answer).await.status(),
        StatusCode::ACCEPTED
    );
    let rest = body.collect().await.unwrap().to_bytes();
    let rest = keygate_mcp::sse::messages(rest).unwrap();
    assert_eq!(rest.last().unwrap()["id"], 5);
    assert!(rest.last().unwrap().to_string().contains("hi"), "{rest:?}");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_request_at_the_child() {
    let Some(b) = bridge() else { return };
    let session = open_session(&b).await;
    let slow = send(
        &b,
        Method::POST,
        Some(&session),
        Bytes::from(call(json!(1), "slow", None).to_string()),
    );
    // The client gives up before the answer.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow)
            .await
            .is_err()
    );
    let mut cancelled = Value::Null;
    for _ in 0..50 {
        let got =
            messages(post(&b, Some(&session), &call(json!(2), "cancelled", None)).await).await;
        cancelled = got[0]["result"]["cancelled"].clone();
        if cancelled.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "{cancelled}");
}

#[tokio::test]
async fn list_changed_goes_to_the_get_stream_of_which_there_is_one() {
    let Some(b) = bridge() else { return };
    let session = open_session(&b).await;
    let get = bodiless(&b, Method::GET, &session, StatusCode::OK).await;
    bodiless(&b, Method::GET, &session, StatusCode::CONFLICT).await;
    let answered = messages(post(&b, Some(&session), &call(json!(3), "notify", None)).await).await;
    assert_eq!(answered.len(), 1, "not on the call's stream: {answered:?}");
    let mut body = get.into_body();
    let got = next_event(&mut body).await;
    assert_eq!(got[0]["method"], "notifications/tools/list_changed");
}

#[tokio::test]
async fn delete_ends_the_session_and_unknown_sessions_answer_404() {
    let Some(b) = bridge() else { return };
    let session = open_session(&b).await;
    bodiless(&b, Method::DELETE, &session, StatusCode::OK).await;
    let after = post(&b, Some(&session), &call(json!(1), "echo", None)).await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
    let got = messages(after).await;
    assert_eq!(got[0]["error"]["message"], "Session not found");
    assert_eq!(got[0]["id"], 1);
    let unknown = post(&b, Some("never-issued"), &call(json!(1), "echo", None)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stateless_requests_use_the_pool_and_discover_comes_from_initialize() {
    let Some(b) = bridge() else { return };
    let discover = json!({"jsonrpc":"2.0","id":"d","method":"server/discover","params":{}});
    let got = messages(post(&b, None, &discover).await).await;
    assert_eq!(got[0]["id"], "d");
    assert_eq!(got[0]["result"]["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(got[0]["result"]["instructions"], "be kind");
    // The same request id from two "clients" at once: each gets its own answer.
    let echo = call(json!(1), "echo", None);
    let (a, c) = tokio::join!(post(&b, None, &echo), post(&b, None, &echo));
    for resp in [a, c] {
        let got = messages(resp).await;
        let answer = got.last().unwrap();
        assert_eq!(answer["id"], 1);
        assert_eq!(answer["result"]["resultType"], "complete");
        // A pooled child's log messages reach no stateless client.
        assert_eq!(got.len(), 1, "{got:?}");
    }
}

/// `initialize` with the identity headers the gateway sets for `key` of `tenant`.
async fn open_session_as(b: &Upstream, key: &str, tenant: &str) -> String {
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let identity = [
        (
            keygate_http::X_KEYGATE_KEY_ID,
            HeaderValue::from_str(key).unwrap(),
        ),
        (
            keygate_http::X_KEYGATE_TENANT,
            HeaderValue::from_str(tenant).unwrap(),
        ),
    ];
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        b.send(
            Method::POST,
            &headers(None),
            &identity,
            Bytes::from(init.to_string()),
        ),
    )
    .await
    .expect("the upstream answers in time")
    .expect("the upstream answers");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_key_or_tenant_cannot_take_every_child() {
    use crate::stdio_bridge::{MAX_SESSIONS_PER_KEY, MAX_SESSIONS_PER_TENANT};
    let Some(b) = bridge() else { return };
    let alive = |b: &Upstream, s: String| {
        let b = b.clone();
        async move {
            post(&b, Some(&s), &call(json!(1), "echo", None))
                .await
                .status()
                == StatusCode::OK
        }
    };
    // One key: its least recently used session ends when it opens one too many.
    let mut mine = Vec::new();
    for _ in 0..MAX_SESSIONS_PER_KEY {
        mine.push(open_session_as(&b, "kg_key_a", "tenant_1").await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest = open_session_as(&b, "kg_key_a", "tenant_1").await;
    assert!(
        !alive(&b, mine[0].clone()).await,
        "the oldest session of the key ended"
    );
    assert!(alive(&b, mine[1].clone()).await);
    assert!(alive(&b, newest).await);
    // Another tenant's key is untouched by all of that.
    let theirs = open_session_as(&b, "kg_key_b", "tenant_2").await;
    // The same tenant through other keys: at most its cap in all.
    let mut tenant = Vec::new();
    for i in 0..MAX_SESSIONS_PER_TENANT {
        tenant.push(open_session_as(&b, &format!("kg_key_c{i}"), "tenant_1").await);
    }
    let open = [mine.clone(), tenant.clone()].concat();
    let mut alive_count = 0;
    for s in open {
        if alive(&b, s).await {
            alive_count += 1;
        }
    }
    assert!(
        alive_count <= MAX_SESSIONS_PER_TENANT,
        "{alive_count} sessions of one tenant"
    );
    assert!(alive(&b, tenant[MAX_SESSIONS_PER_TENANT - 1].clone()).await);
    assert!(alive(&b, theirs).await, "another tenant's session survives");
}
