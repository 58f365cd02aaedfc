//! The whole gateway router (`keygate_server::App::router`) on arbitrary requests.
//!
//! One app for the run: a `MemoryStore` bootstrapped with the demo tenant, the
//! in-process demo platform as upstream and its policy, rate limits high enough that
//! the fuzzer explores more than 429. Through the owner key (never used by an input,
//! so no input can revoke the keys below) it creates a user key with every scope but
//! `keys:admin` and a tenant key with `services:read`, and opens an MCP session with
//! each. Each input then drives exactly one request through `oneshot`, on a
//! current-thread runtime built once.
//!
//! Input (read with `arbitrary::Unstructured`, so every byte string is a request):
//! one selector byte each, in this order, for the method (mostly POST), the path
//! (mostly `/api/mcp`), `Authorization` (the user or tenant key, a forged key with a
//! valid checksum, a key with one character changed, lower-case `bearer`, two headers,
//! other schemes, random bytes, missing), `Mcp-Session-Id` (none, either real session,
//! random visible characters, random bytes, over 128 characters, empty), `Accept`,
//! `Content-Type`, `Origin`, `MCP-Protocol-Version`, up to three further headers
//! (spoofed `X-Keygate-*`, `Mcp-Method`, `Mcp-Name`, `Last-Event-ID`, `Content-Length`,
//! …) and the body kind; a body is either the rest of the input as raw bytes, or a
//! JSON-RPC message (or a batch of two) built from it: a method among the MCP ones or
//! random, an id of any JSON type or none, `params` for `tools/call` naming a demo tool
//! (or not) with random arguments, `_meta`, `confirm` and `inputResponses`, or random.
//! Selector bytes are taken modulo the number of choices; a seed is the selector
//! bytes followed by the body (see `fuzz/seeds/gateway_router/`).
//!
//! Properties, for every request the `http` crate lets us build:
//! - the router never panics;
//! - the status is never 500, nor any other 5xx than the documented 502, 503 and 504;
//! - every answer that is not 2xx (HEAD aside) is `application/json` and its body
//!   parses as JSON;
//! - no raw key (the user and tenant keys, the forged one, the one sent) ever appears
//!   in a body or a header value of an answer, unless the input itself put it in the
//!   body, the path or another header (ids and paths are echoed by design, and
//!   libFuzzer learns the keys' bytes from the comparisons that check them). An SSE
//!   body is read as far as it is ready (a stream may stay open by design); any other
//!   body to its end.

#![no_main]

mod support;

use std::future::poll_fn;
use std::sync::{Arc, LazyLock};
use std::task::Poll;

use axum::Router;
use axum::body::{Body, HttpBody as _};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use keygate_keys::{KeyKind, MemoryStore, TokenFormat};
use keygate_server::{App, Config, Upstream};
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// Everything built once per run.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: Router,
    /// A user key with every scope but `keys:admin`.
    user: String,
    /// A tenant key with `services:read`.
    tenant: String,
    /// A well-formed key (valid checksum) that the store does not know.
    forged: String,
    /// `Mcp-Session-Id`s opened with the user key and with the tenant key.
    user_session: String,
    tenant_session: String,
    /// `GATEWAY_ROUTER_PRINT` is set: print each request and its answer's status (to
    /// check what a seed or an artifact decodes to).
    print: bool,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let runtime = support::runtime();
    let (app, user, tenant, user_session, tenant_session) = runtime.block_on(async {
        let mut config = Config::new(Upstream::in_process(keygate_demo::Platform::new()));
        config.key_rate = 1_000_000.try_into().expect("non-zero");
        config.tenant_rate = 1_000_000.try_into().expect("non-zero");
        let app = App::with_store(config, Arc::new(MemoryStore::new()))
            .await
            .expect("the demo app starts");
        let scopes = app.policy().all_scopes();
        let keygate_demo::DemoBootstrap::Created(owner) =
            keygate_demo::bootstrap(&**app.store(), app.format(), scopes)
                .await
                .expect("the demo tenant is created")
        else {
            panic!("a fresh store gets the demo owner");
        };
        let owner = owner.key.token.expose().to_owned();
        let app = app.router();

        let scopes = send(&app, admin(Method::GET, "/api/v1/scopes", &owner, None)).await;
        let scopes: Vec<Value> = scopes
            .as_array()
            .or_else(|| scopes.get("scopes").and_then(Value::as_array))
            .expect("a scope list")
            .iter()
            .filter_map(|s| s.as_str().or_else(|| s.get("name")?.as_str()))
            .filter(|s| *s != "keys:admin")
            .map(Value::from)
            .collect();
        let create = |body: Value| admin(Method::POST, "/api/v1/keys", &owner, Some(body));
        let user = json!({"name": "fuzz user", "kind": "user", "scopes": scopes});
        let user = send(&app, create(user)).await["key"]
            .as_str()
            .expect("a user key")
            .to_owned();
        let tenant = json!({"name": "fuzz tenant", "kind": "tenant", "scopes": ["services:read"]});
        let tenant = send(&app, create(tenant)).await["key"]
            .as_str()
            .expect("a tenant key")
            .to_owned();
        let user_session = open_session(&app, &user).await;
        let tenant_session = open_session(&app, &tenant).await;
        (app, user, tenant, user_session, tenant_session)
    });
    let forged = TokenFormat::default()
        .generate(KeyKind::User)
        .expect("randomness")
        .expose()
        .to_owned();
    Fixture {
        runtime,
        app,
        user,
        tenant,
        forged,
        user_session,
        tenant_session,
        print: std::env::var_os("GATEWAY_ROUTER_PRINT").is_some(),
    }
});

fn admin(method: Method, path: &str, key: &str, body: Option<Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request")
}

/// Sends a fixture request; its answer must be a 2xx JSON body.
async fn send(app: &Router, req: Request<Body>) -> Value {
    let uri = req.uri().clone();
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(status.is_success(), "{uri}: {status} {bytes:?}");
    serde_json::from_slice(&bytes).expect("a JSON answer")
}

async fn open_session(app: &Router, key: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "fuzz", "version": "0"}}});
    let req = Request::post("/api/mcp")
        .header("authorization", format!("Bearer {key}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    assert!(resp.status().is_success(), "initialize: {}", resp.status());
    resp.headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("initialize opens a session")
        .to_owned()
}

/// One selector byte, reduced to `0..n` (an exhausted input reads as zeros, so every
/// input still makes a request).
fn pick(u: &mut Unstructured<'_>, n: u8) -> ArbitraryResult<u8> {
    Ok(u.arbitrary::<u8>()? % n)
}

/// `min..=max` visible ASCII characters (what a header value or a session id may hold).
fn visible(u: &mut Unstructured<'_>, min: usize, max: usize) -> ArbitraryResult<String> {
    let len = u.int_in_range(min..=max)?;
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        out.push(char::from(0x21 + u.arbitrary::<u8>()? % 94));
    }
    Ok(out)
}

fn short_len(u: &mut Unstructured<'_>, max: u8) -> ArbitraryResult<usize> {
    Ok(usize::from(u.arbitrary::<u8>()? % max.max(1)))
}

/// A random JSON value, at most `depth` levels deep.
fn json_value(u: &mut Unstructured<'_>, depth: u8) -> ArbitraryResult<Value> {
    let kind = pick(u, if depth == 0 { 6 } else { 8 })?;
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        4 => Value::String(u.arbitrary::<String>()?),
        5 => Value::String(
            [
                "web",
                "api",
                "worker",
                "keygate",
                "shop",
                "ops",
                "KeyGate",
                "we\u{200b}b",
                "",
            ][usize::from(pick(u, 9)?)]
            .to_owned(),
        ),
        6 => {
            let n = short_len(u, 4)?;
            Value::Array(
                (0..n)
                    .map(|_| json_value(u, depth - 1))
                    .collect::<ArbitraryResult<_>>()?,
            )
        }
        _ => {
            let n = short_len(u, 4)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = match pick(u, 4)? {
                    0 => u.arbitrary::<String>()?,
                    _ => [
                        "service", "project", "name", "image", "replicas", "env", "target", "query",
                    ][usize::from(pick(u, 8)?)]
                    .to_owned(),
                };
                map.insert(key, json_value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

const RPC_METHODS: &[&str] = &[
    "tools/call",
    "tools/call",
    "tools/call",
    "tools/list",
    "initialize",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "sampling/createMessage",
    "elicitation/create",
];

const PROTOCOL_VERSIONS: &[&str] = &[
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
    "2025-03-26",
    "2024-11-05",
];

/// One JSON-RPC message (or something shaped like one).
fn rpc_message(u: &mut Unstructured<'_>) -> ArbitraryResult<Value> {
    let mut msg = Map::new();
    if pick(u, 8)? != 0 {
        msg.insert("jsonrpc".into(), json!("2.0"));
    } else {
        msg.insert("jsonrpc".into(), json_value(u, 0)?);
    }
    let method = match pick(u, 8)? {
        0 => u.arbitrary::<String>()?,
        _ => RPC_METHODS[usize::from(pick(u, RPC_METHODS.len() as u8)?)].to_owned(),
    };
    // Id: an integer mostly; a string, null, a float, an object; none (a notification).
    match pick(u, 8)? {
        0 => {}
        1 => {
            msg.insert("id".into(), json!(u.arbitrary::<String>()?));
        }
        2 => {
            msg.insert("id".into(), json_value(u, 1)?);
        }
        _ => {
            msg.insert("id".into(), json!(u.arbitrary::<u16>()?));
        }
    }
    // A response to a server request instead of a request, now and then.
    if pick(u, 10)? == 0 {
        let key = if u.arbitrary()? { "result" } else { "error" };
        msg.insert(key.into(), json_value(u, 2)?);
        return Ok(Value::Object(msg));
    }
    let params = match (method.as_str(), pick(u, 6)?) {
        (_, 0) => json_value(u, 3)?,
        ("tools/call", _) => {
            let name = match pick(u, 6)? {
                0 => u.arbitrary::<String>()?,
                _ => keygate_demo::TOOL_NAMES
                    [usize::from(pick(u, keygate_demo::TOOL_NAMES.len() as u8)?)]
                .to_owned(),
            };
            let mut params = Map::new();
            params.insert("name".into(), json!(name));
            params.insert("arguments".into(), json_value(u, 3)?);
            if pick(u, 4)? == 0 {
                params.insert(
                    "confirm".into(),
                    json!({"challenge": visible(u, 0, 39)?, "target": json_value(u, 0)?}),
                );
            }
            if pick(u, 4)? == 0 {
                params.insert(
                    "inputResponses".into(),
                    json!({"approval": {"action": "accept", "content": {"target": json_value(u, 0)?}}}),
                );
                params.insert("requestState".into(), json!(u.arbitrary::<String>()?));
            }
            Value::Object(params)
        }
        ("initialize", _) => json!({
            "protocolVersion": PROTOCOL_VERSIONS[usize::from(pick(u, PROTOCOL_VERSIONS.len() as u8)?)],
            "capabilities": if u.arbitrary()? { json!({"elicitation": {}}) } else { json_value(u, 2)? },
            "clientInfo": {"name": "fuzz", "version": "0"},
        }),
        _ => json_value(u, 2)?,
    };
    let mut params = params;
    if pick(u, 4)? == 0
        && let Some(obj) = params.as_object_mut()
    {
        obj.insert(
            "_meta".into(),
            json!({
                "protocolVersion": PROTOCOL_VERSIONS[usize::from(pick(u, PROTOCOL_VERSIONS.len() as u8)?)],
                "clientCapabilities": json_value(u, 2)?,
            }),
        );
    }
    msg.insert("method".into(), json!(method));
    if pick(u, 8)? != 0 {
        msg.insert("params".into(), params);
    }
    Ok(Value::Object(msg))
}

/// The request an input describes, the token it sent (to look for in the answer) and
/// its body.
fn request(
    u: &mut Unstructured<'_>,
    f: &Fixture,
) -> ArbitraryResult<Option<(Request<Body>, Option<String>, Vec<u8>)>> {
    let method = match pick(u, 16)? {
        0..=8 => Method::POST,
        9..=11 => Method::GET,
        12 => Method::DELETE,
        13 => Method::PUT,
        14 => Method::OPTIONS,
        _ => match pick(u, 3)? {
            0 => Method::HEAD,
            1 => Method::PATCH,
            _ => {
                let name: String = (0..1 + short_len(u, 8)?)
                    .map(|_| u.arbitrary::<u8>().map(|b| char::from(b'A' + b % 26)))
                    .collect::<ArbitraryResult<_>>()?;
                Method::from_bytes(name.as_bytes()).unwrap_or(Method::POST)
            }
        },
    };
    let path = match pick(u, 16)? {
        0..=9 => "/api/mcp".to_owned(),
        10 => [
            "/api/mcp/",
            "/api/MCP",
            "//api/mcp",
            "/api/mcp?x=1",
            "/api/mcp/../mcp",
        ][usize::from(pick(u, 5)?)]
        .to_owned(),
        11 => "/api/v1/token".to_owned(),
        12 => [
            "/api/v1/keys",
            "/api/v1/projects",
            "/api/v1/scopes",
            "/api/v1/audit?limit=3",
        ][usize::from(pick(u, 4)?)]
        .to_owned(),
        13 => [
            "/healthz",
            "/metrics",
            "/settings/api",
            "/auth/verify?scope=services:read",
        ][usize::from(pick(u, 4)?)]
        .to_owned(),
        _ => format!("/{}", visible(u, 0, 63)?),
    };
    // A path `http` refuses makes no request: `body()` below fails and the input is
    // passed over.
    let mut req = Request::builder().method(method).uri(path.as_str());

    let mut sent = None;
    let bearer = |key: &str| format!("Bearer {key}");
    let mut auth: Vec<Vec<u8>> = Vec::new();
    match pick(u, 16)? {
        0..=5 => {
            auth.push(bearer(&f.user).into_bytes());
            sent = Some(f.user.clone());
        }
        6 | 7 => {
            auth.push(bearer(&f.tenant).into_bytes());
            sent = Some(f.tenant.clone());
        }
        8 => {
            auth.push(bearer(&f.forged).into_bytes());
            sent = Some(f.forged.clone());
        }
        9 => {
            let mut key = f.user.clone().into_bytes();
            let i = usize::from(u.arbitrary::<u8>()?) % key.len();
            key[i] = b'0' + u.arbitrary::<u8>()? % 75;
            let key = String::from_utf8_lossy(&key).into_owned();
            auth.push(bearer(&key).into_bytes());
            sent = Some(key);
        }
        10 => {
            auth.push(format!("bearer {}", f.user).into_bytes());
            sent = Some(f.user.clone());
        }
        11 => {
            auth.push(bearer(&f.user).into_bytes());
            auth.push(bearer(&f.forged).into_bytes());
            sent = Some(f.user.clone());
        }
        12 => auth.push(
            [
                "Bearer",
                "Bearer ",
                "Bearer  x",
                "Basic dXNlcjpwYXNz",
                "Bearer a b",
                "Bearer kg_uk_",
                "Token x",
            ][usize::from(pick(u, 7)?)]
            .as_bytes()
            .to_vec(),
        ),
        13 => {
            let n = short_len(u, 80)?;
            auth.push(u.bytes(n.min(u.len()))?.to_vec());
        }
        _ => {}
    }
    for value in auth {
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            req = req.header("authorization", v);
        }
    }

    let session: Option<Vec<u8>> = match pick(u, 8)? {
        0..=2 => None,
        3 => Some(f.user_session.clone().into_bytes()),
        4 => Some(f.tenant_session.clone().into_bytes()),
        5 => Some(visible(u, 1, 128)?.into_bytes()),
        6 => {
            let n = 1 + short_len(u, 40)?;
            Some(u.bytes(n.min(u.len()))?.to_vec())
        }
        _ => Some(if u.arbitrary()? {
            Vec::new()
        } else {
            visible(u, 129, 4096)?.into_bytes()
        }),
    };
    let accept = match pick(u, 8)? {
        0..=3 => Some(b"application/json, text/event-stream".to_vec()),
        4 => None,
        5 => Some(b"application/json".to_vec()),
        6 => Some(b"text/event-stream".to_vec()),
        _ => Some(
            ["*/*", "text/html", "application/xml", ""][usize::from(pick(u, 4)?)]
                .as_bytes()
                .to_vec(),
        ),
    };
    let content_type = match pick(u, 8)? {
        0..=4 => Some("application/json".to_owned()),
        5 => None,
        6 => Some("application/json; charset=utf-8".to_owned()),
        _ => Some(
            [
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonx",
            ][usize::from(pick(u, 4)?)]
            .to_owned(),
        ),
    };
    let origin = match pick(u, 8)? {
        0..=4 => None,
        5 => Some("http://127.0.0.1:8080".to_owned()),
        6 => Some(
            [
                "https://evil.example",
                "null",
                "http://localhost:8080",
                "http://127.0.0.1:8080.evil.example",
            ][usize::from(pick(u, 4)?)]
            .to_owned(),
        ),
        _ => Some(visible(u, 0, 39)?),
    };
    let protocol = match pick(u, 4)? {
        0 | 1 => None,
        2 => {
            Some(PROTOCOL_VERSIONS[usize::from(pick(u, PROTOCOL_VERSIONS.len() as u8)?)].to_owned())
        }
        _ => Some(visible(u, 0, 11)?),
    };
    for (name, value) in [
        ("mcp-session-id", session),
        ("accept", accept),
        ("content-type", content_type.map(String::into_bytes)),
        ("origin", origin.map(String::into_bytes)),
        ("mcp-protocol-version", protocol.map(String::into_bytes)),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
            req = req.header(name, v);
        }
    }
    for _ in 0..pick(u, 4)? {
        let name = [
            "x-keygate-tenant",
            "x-keygate-key-id",
            "x-keygate-user",
            "x-keygate-project",
            "x-keygate-actor",
            "mcp-method",
            "mcp-name",
            "last-event-id",
            "content-length",
            "cookie",
            "x-forwarded-for",
            "x-forwarded-uri",
        ][usize::from(pick(u, 12)?)];
        let value = match pick(u, 4)? {
            0 => "999999999999999999999".to_owned(),
            1 => ["tools/call", "service.delete", "0", "-1"][usize::from(pick(u, 4)?)].to_owned(),
            _ => visible(u, 0, 39)?,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            req = req.header(name, v);
        }
    }

    let body = match pick(u, 4)? {
        0 => u.bytes(u.len())?.to_vec(),
        1 | 2 => rpc_message(u)?.to_string().into_bytes(),
        _ => json!([rpc_message(u)?, rpc_message(u)?])
            .to_string()
            .into_bytes(),
    };
    Ok(req
        .body(Body::from(body.clone()))
        .ok()
        .map(|r| (r, sent, body)))
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let mut u = Unstructured::new(data);
    let Ok(Some((req, sent, sent_body))) = request(&mut u, f) else {
        return;
    };
    let head = req.method() == Method::HEAD;
    // What the request carries outside `Authorization`: the server may echo it (an id,
    // a path), so a key the input copied there (libFuzzer learns bytes from
    // comparisons) is no leak.
    let mut echoable = req.uri().to_string().into_bytes();
    for (name, value) in req.headers() {
        if name != "authorization" {
            echoable.extend_from_slice(value.as_bytes());
            echoable.push(b'\n');
        }
    }
    echoable.extend_from_slice(&sent_body);
    // What a failure prints: the request without its `Authorization` value.
    let headers: Vec<String> = req
        .headers()
        .iter()
        .map(|(name, value)| match name.as_str() {
            "authorization" => format!("{name}: <{} bytes>", value.len()),
            _ => format!("{name}: {value:?}"),
        })
        .collect();
    let described = format!("{} {} {headers:?}", req.method(), req.uri());
    let (resp, body) = f.runtime.block_on(async {
        let resp = f.app.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = resp.into_parts();
        let sse = parts
            .headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let bytes = read_body(body, sse).await;
        (Response::from_parts(parts, ()), bytes)
    });
    if f.print {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        eprintln!("{described}\n-> {} {text}", resp.status());
    }
    check(
        f,
        &described,
        &resp,
        &body,
        head,
        sent.as_deref(),
        &echoable,
    );
});

/// The body to its end; an SSE body only as far as it is ready (an event stream may
/// stay open until the client leaves).
async fn read_body(mut body: Body, sse: bool) -> Vec<u8> {
    if !sse {
        return body.collect().await.expect("body").to_bytes().to_vec();
    }
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 32 {
        match poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(Some(Ok(frame))) => {
                idle = 0;
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => break,
            Poll::Pending => {
                idle += 1;
                tokio::task::yield_now().await;
            }
        }
    }
    out
}

fn check(
    f: &Fixture,
    described: &str,
    resp: &Response<()>,
    body: &[u8],
    head: bool,
    sent: Option<&str>,
    echoable: &[u8],
) {
    let status = resp.status();
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR
            && (!status.is_server_error() || matches!(status.as_u16(), 502..=504)),
        "{described}\n-> {status} {text}"
    );
    if !status.is_success() && !head {
        let ct = resp
            .headers()
            .get("content-type")
            .map(HeaderValue::as_bytes);
        assert!(
            ct.is_some_and(|ct| ct.starts_with(b"application/json")),
            "{described}\n-> {status} content-type {ct:?}: {text}"
        );
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
            "{described}\n-> {status} body is not JSON: {text}"
        );
    }
    // The secret part of a key (after its public id) must never come back.
    let secrets = [
        Some(f.user.as_str()),
        Some(f.tenant.as_str()),
        Some(f.forged.as_str()),
        sent,
    ];
    for key in secrets.into_iter().flatten() {
        let Some(secret) = key
            .get(key.len().saturating_sub(36)..)
            .filter(|s| s.len() == 36)
        else {
            continue;
        };
        let secret = secret.as_bytes();
        if contains(echoable, secret) {
            continue;
        }
        assert!(
            !contains(body, secret),
            "{described}\n-> {status}: the answer carries a raw key"
        );
        for (name, value) in resp.headers() {
            assert!(
                !contains(value.as_bytes(), secret),
                "{described}\n-> {status}: header {name} carries a raw key"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
