//! Random HTTP requests against `App::router()`: random methods, paths among the real
//! routes and junk, `Authorization` variants and other headers, bodies that are valid,
//! malformed, binary or deeply nested JSON. Whatever comes in, the router never panics,
//! never answers a 5xx other than the documented 502/503/504, and every error body is
//! JSON.

use std::sync::OnceLock;

use axum::body::Body;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::util::{Harness, demo};

/// One demo app (and a runtime to drive it) for every generated case.
struct Fixture {
    rt: tokio::runtime::Runtime,
    h: Harness,
    tenant_key: String,
    revoked: String,
    key_id: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (h, tenant_key, revoked, key_id) = rt.block_on(async {
            let h = demo().await;
            let tenant_key = h.tenant_key(&["services:read"]).await;
            let (revoked, id) = h.reader_key("gone").await;
            h.revoke(&id).await;
            (h, tenant_key, revoked, id)
        });
        Fixture {
            rt,
            h,
            tenant_key,
            revoked,
            key_id,
        }
    })
}

/// Which key (or which kind of junk) goes into the `Authorization` header.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Owner,
    Tenant,
    Revoked,
    /// The owner key with one character replaced (checksum no longer matches).
    Mangled(usize, char),
    /// A raw header value, any bytes a header may hold.
    Raw(Vec<u8>),
    Scheme(&'static str),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        1 => Just(Auth::None),
        3 => Just(Auth::Owner),
        1 => Just(Auth::Tenant),
        1 => Just(Auth::Revoked),
        1 => (0usize..64, proptest::char::range('0', 'z')).prop_map(|(i, c)| Auth::Mangled(i, c)),
        1 => proptest::collection::vec(0x20u8..0x7f, 0..80).prop_map(Auth::Raw),
        1 => prop_oneof![
            Just("Bearer"),
            Just("Bearer "),
            Just("bearer  x"),
            Just("Basic dXNlcjpwYXNz"),
            Just("Bearer a b"),
            Just("Bearer kg_uk_"),
            Just("Bearer \u{7f}"),
        ]
        .prop_map(Auth::Scheme),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        4 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => Just(Method::from_bytes(b"BREW").unwrap()),
    ]
}

/// A path segment: ids, junk, percent escapes (valid and not), dots.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("KEYID".to_owned()),
        "[a-zA-Z0-9]{0,14}",
        Just("%00".to_owned()),
        Just("%ff%fe".to_owned()),
        Just("%zz".to_owned()),
        Just("..".to_owned()),
        Just("%2e%2e".to_owned()),
        "[a-z%.~_-]{1,40}",
        Just("x".repeat(3000)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let route = prop_oneof![
        Just("/api/mcp"),
        Just("/api/v1/token"),
        Just("/api/v1/scopes"),
        Just("/api/v1/keys"),
        Just("/api/v1/keys/{}"),
        Just("/api/v1/keys/{}/revoke"),
        Just("/api/v1/keys/{}/rotate"),
        Just("/api/v1/projects"),
        Just("/api/v1/audit"),
        Just("/healthz"),
        Just("/metrics"),
        Just("/settings/api"),
        Just("/settings/api/{}"),
        Just("/api/{}"),
        Just("/{}"),
        Just("/api/v1/{}/{}"),
        Just("//api//mcp"),
    ];
    let query = prop_oneof![
        3 => Just(String::new()),
        1 => Just("?limit=5".to_owned()),
        1 => Just("?limit=-1".to_owned()),
        1 => Just("?limit=99999999999999999999".to_owned()),
        1 => Just("?limit=%ff".to_owned()),
        1 => "\\?[a-z=&%0-9]{0,30}",
    ];
    (
        route,
        proptest::collection::vec(segment(), 2),
        query,
        any::<bool>(),
    )
        .prop_map(|(route, segs, query, slash)| {
            let mut out = route.to_owned();
            for s in &segs {
                out = out.replacen("{}", s, 1);
            }
            if slash {
                out.push('/');
            }
            out + &query
        })
}

/// `depth` nested arrays or objects around a value.
fn nested(depth: usize, objects: bool) -> String {
    let (open, close) = if objects {
        ("{\"a\":", "}")
    } else {
        ("[", "]")
    };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let rpc = (
        prop_oneof![
            Just("tools/call"),
            Just("tools/list"),
            Just("initialize"),
            Just("ping"),
            Just("nope/nope"),
            Just(""),
        ],
        prop_oneof![
            Just("service.list"),
            Just("service.delete"),
            Just("service.replace"),
            Just("customers.search"),
            Just("events.list"),
            Just("unknown.tool"),
        ],
        prop_oneof![
            Just(json!({})),
            Just(json!({"service": "web"})),
            Just(json!({"service": "keygate"})),
            Just(json!({"project": "shop"})),
            Just(json!({"project": "elsewhere", "service": "api"})),
            Just(json!({"service": "web", "confirm": {"challenge": "x", "target": "web"}})),
            Just(json!([1, 2])),
            Just(json!("text")),
            Just(Value::Null),
        ],
        prop_oneof![
            Just(json!(1)),
            Just(json!("id")),
            Just(Value::Null),
            Just(json!({"o": 1}))
        ],
        prop_oneof![4 => Just(json!("2.0")), 1 => Just(json!("1.0")), 1 => Just(json!(2))],
    )
        .prop_map(|(method, tool, args, id, version)| {
            json!({"jsonrpc": version, "id": id, "method": method,
                   "params": {"name": tool, "arguments": args}})
            .to_string()
            .into_bytes()
        });
    let admin = prop_oneof![
        Just(json!({"name": "k", "kind": "tenant", "scopes": ["services:read"]})),
        Just(json!({"name": "k", "kind": "user", "scopes": [], "projects": ["shop"]})),
        Just(json!({"name": "", "kind": "robot", "scopes": "all"})),
        Just(json!({"name": "p"})),
        Just(json!({"name": "k", "kind": "tenant", "scopes": ["x"], "expires_in": "-5d"})),
        Just(json!({"name": "k", "kind": "tenant", "scopes": ["services:read"], "expires_at": "1999-01-01T00:00:00Z"})),
        Just(json!({"unknown": true})),
    ]
    .prop_map(|v| v.to_string().into_bytes());
    prop_oneof![
        2 => Just(Vec::new()),
        4 => rpc,
        2 => admin,
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => "[\\[\\]{}\",:0-9a-z ]{0,200}".prop_map(String::into_bytes),
        1 => (1usize..3000, any::<bool>()).prop_map(|(d, o)| nested(d, o).into_bytes()),
        1 => Just(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"service.list\",\"arguments\":{\"s\":\"\xff\xfe\"}}}".to_vec()),
        1 => Just(b"{\"a\":1,\"a\":2}".to_vec()),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        4 => Just(Some("application/json")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(Some("multipart/form-data; boundary=x")),
    ]
}

/// A generated request, kept as parts so a failing case prints readably.
#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: String,
    auth: Auth,
    content_type: Option<&'static str>,
    extra: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

fn extra_headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let name = prop_oneof![
        Just("mcp-session-id"),
        Just("x-keygate-tenant"),
        Just("x-keygate-key-id"),
        Just("accept"),
        Just("mcp-protocol-version"),
        Just("last-event-id"),
        Just("content-length"),
        Just("transfer-encoding"),
        Just("cookie"),
        Just("x-forwarded-for"),
    ];
    let value = prop_oneof![
        proptest::collection::vec(0x20u8..0x7f, 0..40),
        proptest::collection::vec(0x80u8..=0xff, 1..10),
        Just(b"application/json, text/event-stream".to_vec()),
        Just(b"999999999999999999999".to_vec()),
    ];
    proptest::collection::vec((name, value), 0..4)
}

fn case() -> impl Strategy<Value = Case> {
    (
        method(),
        path(),
        auth(),
        content_type(),
        extra_headers(),
        body(),
    )
        .prop_map(|(method, path, auth, content_type, extra, body)| Case {
            method,
            path,
            auth,
            content_type,
            extra,
            body,
        })
}

impl Case {
    fn request(&self, f: &Fixture) -> Option<Request<Body>> {
        let path = self.path.replace("KEYID", &f.key_id);
        let mut req = Request::builder().method(self.method.clone()).uri(path);
        let value: Option<Vec<u8>> = match &self.auth {
            Auth::None => None,
            Auth::Owner => Some(format!("Bearer {}", f.h.owner).into_bytes()),
            Auth::Tenant => Some(format!("Bearer {}", f.tenant_key).into_bytes()),
            Auth::Revoked => Some(format!("Bearer {}", f.revoked).into_bytes()),
            Auth::Mangled(i, c) => {
                let mut key: Vec<char> = f.h.owner.chars().collect();
                let i = i % key.len();
                key[i] = *c;
                Some(format!("Bearer {}", key.into_iter().collect::<String>()).into_bytes())
            }
            Auth::Raw(bytes) => Some(bytes.clone()),
            Auth::Scheme(s) => Some(s.as_bytes().to_vec()),
        };
        if let Some(v) = value {
            req = req.header("authorization", HeaderValue::from_bytes(&v).ok()?);
        }
        if let Some(ct) = self.content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in &self.extra {
            req = req.header(*name, HeaderValue::from_bytes(value).ok()?);
        }
        req.body(Body::from(self.body.clone())).ok()
    }
}

/// Pages and metrics are not JSON; everything else the router answers is.
fn json_expected(path: &str, status: StatusCode) -> bool {
    let plain =
        status.is_success() && (path.starts_with("/settings") || path.starts_with("/metrics"));
    !plain
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_requests_get_sane_answers(case in case()) {
        let f = fixture();
        // A request `http` refuses to build (an invalid URI or header) never reaches
        // the router: nothing to check.
        let Some(req) = case.request(f) else { return Ok(()) };
        let head = req.method() == Method::HEAD;
        let path = req.uri().path().to_owned();
        let (status, headers, bytes) = f.rt.block_on(async {
            let resp = f.h.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (status, headers, bytes)
        });
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        prop_assert!(
            !status.is_server_error()
                || matches!(status.as_u16(), 502..=504),
            "{case:?} -> {status} {text}"
        );
        if status.is_server_error() {
            prop_assert!(headers.contains_key("retry-after") || status != StatusCode::SERVICE_UNAVAILABLE);
        }
        if !head && (status.is_client_error() || status.is_server_error() || json_expected(&path, status)) {
            let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            prop_assert!(
                ct.starts_with("application/json") || ct.starts_with("text/event-stream"),
                "{case:?} -> {status} content-type {ct:?}: {text}"
            );
            if ct.starts_with("application/json") {
                let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
                prop_assert!(parsed.is_ok(), "{case:?} -> {status} body not JSON: {text}");
            }
        }
        // Whatever the request, no answer carries a raw key back (only create and
        // rotate do, with 201, in the `key` field).
        if status != StatusCode::CREATED {
            let all = String::from_utf8_lossy(&bytes);
            prop_assert!(!all.contains(&f.h.owner[f.h.owner.len() - 36..]), "{case:?} echoed the owner secret");
        }
    }
}

/// Found by the property above: a key id segment that is not UTF-8 got axum's
/// plain-text 400; it is a malformed id, so 404 JSON like any other.
#[tokio::test]
async fn a_key_id_that_is_not_utf8_is_a_json_404() {
    let h = demo().await;
    for (method, path) in [
        (Method::GET, "/api/v1/keys/%ff%fe"),
        (Method::POST, "/api/v1/keys/%ff/revoke"),
        (Method::POST, "/api/v1/keys/%c3%28/rotate"),
    ] {
        let r = h.call(method, path, Some(&h.owner), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.raw);
        assert_eq!(r.raw, r#"{"error":"not_found"}"#, "{path}");
    }
    // A caller who is not an owner still learns nothing but 403.
    let tenant = h.tenant_key(&["services:read"]).await;
    let r = h.get("/api/v1/keys/%ff", &tenant).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
}
