//! Shared fixtures: a demo app on a memory store, request helpers.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate_demo::Platform;
use keygate_keys::{KeyKind, KeyStore, MemoryStore, NewKey, Principal, TenantId, UserId, Verifier};
use keygate_server::{App, Config, Upstream};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct Harness {
    pub(crate) app: Router,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) owner: String,
    pub(crate) tenant: TenantId,
    pub(crate) owner_id: UserId,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) raw: String,
}

pub(crate) async fn demo() -> Harness {
    demo_with(Config::new(Upstream::in_process(Platform::new()))).await
}

/// The demo policy with the agent-relayed challenge (`approval = "agent"`) on its gates,
/// for the tests of the challenge's mechanics.
pub(crate) fn agent_policy() -> String {
    policy_approving_by("agent")
}

/// The demo policy with `approval = "<by>"` on its gates.
pub(crate) fn policy_approving_by(by: &str) -> String {
    let policy =
        keygate_demo::POLICY_TOML.replace("approval = \"person\"", &format!("approval = \"{by}\""));
    assert_ne!(
        policy,
        keygate_demo::POLICY_TOML,
        "the demo gates name their approval"
    );
    policy
}

/// `config` with [`agent_policy`] as its policy file (in the returned directory).
pub(crate) fn with_agent_policy(config: Config) -> (Config, tempfile::TempDir) {
    with_policy(config, &agent_policy())
}

/// `config` with `policy` (TOML) as its policy file (in the returned directory).
pub(crate) fn with_policy(mut config: Config, policy: &str) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    config.policy = Some(path);
    (config, dir)
}

/// The demo with the agent-relayed challenge on its gates ([`agent_policy`]).
pub(crate) async fn demo_agent() -> Harness {
    let (config, _dir) = with_agent_policy(Config::new(Upstream::in_process(Platform::new())));
    demo_with(config).await
}

pub(crate) async fn demo_with(config: Config) -> Harness {
    demo_with_gates(config, Arc::new(keygate_gates::MemoryGateStore::new())).await
}

/// [`demo_with`] on the gate store `gates` (for a test that reads or seeds it).
pub(crate) async fn demo_with_gates(
    config: Config,
    gates: Arc<dyn keygate_gates::GateStore>,
) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let app = App::with_stores(config, store.clone(), gates)
        .await
        .unwrap();
    let owner = take_demo_owner(&app)
        .await
        .expect("a fresh store gets the demo tenant");
    assert!(
        take_demo_owner(&app).await.is_none(),
        "the owner key is handed out once"
    );
    Harness::of(&app, store, owner)
}

/// The gateway in front of the MCP server at `url` with the policy `policy_toml`, the
/// settings `edit` makes to the default [`Config`], on the gate store `gates`; one
/// tenant `t` with the project `shop` and its owner's key (every scope of the policy).
pub(crate) async fn http_gateway(
    url: String,
    policy_toml: &str,
    edit: impl FnOnce(&mut Config),
    gates: Arc<dyn keygate_gates::GateStore>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_toml).unwrap();
    let mut config = Config::new(Upstream::Http(url));
    config.policy = Some(policy);
    edit(&mut config);
    let store = Arc::new(MemoryStore::new());
    let app = App::with_stores(config, store.clone(), gates)
        .await
        .unwrap();
    let owner = store
        .bootstrap(
            &keygate_keys::TokenFormat::default(),
            keygate_keys::Bootstrap::new("t", "o", &["shop"], app.policy().all_scopes(), "k"),
        )
        .await
        .unwrap();
    Harness::of(&app, store, owner)
}

/// Bootstraps the demo tenant into `app`'s store, as `keygated --demo` does: its owner,
/// or `None` when the store has it already.
pub(crate) async fn take_demo_owner(app: &App) -> Option<keygate_keys::Bootstrapped> {
    let scopes = app.policy().all_scopes();
    match keygate_demo::bootstrap(&**app.store(), app.format(), scopes)
        .await
        .unwrap()
    {
        keygate_demo::DemoBootstrap::Created(owner) => Some(*owner),
        _ => None,
    }
}

impl Harness {
    /// The tenant's latest audit events (at most 200), as its owner reads them.
    pub(crate) async fn audit(&self) -> Vec<Value> {
        let r = self.get("/api/v1/audit?limit=200", &self.owner).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r.body["events"].as_array().unwrap().clone()
    }

    /// Asserts that `count` `gate.declined` events were audited, each through `channel`.
    pub(crate) async fn assert_declined(&self, count: usize, channel: &str) {
        let events = self.audit().await;
        let declined: Vec<_> = events
            .iter()
            .filter(|e| e["action"] == "gate.declined")
            .collect();
        assert_eq!(declined.len(), count);
        assert!(
            declined
                .iter()
                .all(|e| e["detail"]["channel"] == json!(channel))
        );
    }

    /// `app` on `store`, acting as the owner `owner` bootstrapped.
    fn of(app: &App, store: Arc<MemoryStore>, owner: keygate_keys::Bootstrapped) -> Self {
        Self {
            app: app.router(),
            store,
            owner: owner.key.token.expose().to_owned(),
            tenant: owner.tenant.id,
            owner_id: owner.owner.id,
        }
    }

    /// The harness of one instance `app` of several on one database, acting as the
    /// demo `owner` bootstrapped there (the helpers' store is a scratch one: keys are
    /// made through the API).
    pub(crate) fn for_app(app: &App, owner: &keygate_keys::Bootstrapped) -> Self {
        Self {
            app: app.router(),
            store: Arc::new(MemoryStore::new()),
            owner: owner.key.token.expose().to_owned(),
            tenant: owner.tenant.id.clone(),
            owner_id: owner.owner.id.clone(),
        }
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub(crate) async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub(crate) async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    /// Creates a key through the admin API as the owner; returns (raw key, view).
    pub(crate) async fn create_key(&self, body: Value) -> (String, Value) {
        let r = self.post("/api/v1/keys", &self.owner, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        (r.body["key"].as_str().unwrap().to_owned(), r.body)
    }

    pub(crate) async fn tenant_key(&self, scopes: &[&str]) -> String {
        self.create_key(json!({"name": "agent", "kind": "tenant", "scopes": scopes}))
            .await
            .0
    }

    pub(crate) async fn user_key(&self, scopes: &[&str]) -> String {
        self.create_key(json!({"name": "person", "kind": "user", "scopes": scopes}))
            .await
            .0
    }

    /// A user key of a member (not an owner), straight from the store.
    pub(crate) async fn member_key(&self, scopes: &[&str]) -> String {
        let member = self
            .store
            .create_user(&self.tenant, "member", keygate_keys::Role::Member)
            .await
            .unwrap();
        self.stored_key(KeyKind::User, Some(member.id), "member key", scopes)
            .await
    }

    /// A tenant key with `scopes`, straight from the store (spending no owner budget).
    pub(crate) async fn stored_tenant_key(&self, scopes: &[&str]) -> String {
        self.stored_key(KeyKind::Tenant, None, "stored key", scopes)
            .await
    }

    /// A key of the harness's tenant created in the store, not through the admin API.
    pub(crate) async fn stored_key(
        &self,
        kind: KeyKind,
        user_id: Option<UserId>,
        name: &str,
        scopes: &[&str],
    ) -> String {
        let created = self
            .store
            .create_key(
                &keygate_keys::TokenFormat::default(),
                NewKey {
                    tenant_id: self.tenant.clone(),
                    kind,
                    user_id,
                    name: name.to_owned(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    projects: None,
                    expires_at: None,
                    remaining: None,
                    refill: None,
                },
                "test",
            )
            .await
            .unwrap();
        created.token.expose().to_owned()
    }

    pub(crate) async fn principal(&self, key: &str) -> Principal {
        self.store.verify(key).await.unwrap()
    }

    /// One MCP request with the key and, when given, a session id.
    pub(crate) async fn mcp(&self, key: &str, session: Option<&str>, body: Value) -> Reply {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/mcp")
            .header("authorization", format!("Bearer {key}"))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// Opens a stateful MCP session for `key` (`initialize`); returns its id, which
    /// only `key` may use.
    pub(crate) async fn session(&self, key: &str) -> String {
        let r = self
            .mcp(
                key,
                None,
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r.headers["mcp-session-id"].to_str().unwrap().to_owned()
    }

    pub(crate) async fn tool(
        &self,
        key: &str,
        session: Option<&str>,
        name: &str,
        args: Value,
    ) -> Reply {
        self.mcp(
            key,
            session,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}}),
        )
        .await
    }
}

/// The `structuredContent.code` of a gate answer, or `None` for an upstream result.
/// Asserts that `r` is a gate's `APPROVAL_REQUIRED` answer.
pub(crate) fn assert_approval_required(r: &Reply) {
    assert_eq!(
        gate_code(r).as_deref(),
        Some("APPROVAL_REQUIRED"),
        "{}",
        r.raw
    );
}

pub(crate) fn gate_code(r: &Reply) -> Option<String> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let result = &r.body["result"];
    assert!(result.is_object(), "{}", r.raw);
    result["structuredContent"]["code"]
        .as_str()
        .filter(|c| c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_'))
        .filter(|_| result["isError"] == json!(true))
        .map(str::to_owned)
}

/// Everything logged (at any level, without colours) on the current thread while this
/// lives: for `current_thread` tests, whose requests run on the test's thread.
pub(crate) struct LogCapture {
    buf: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
    // With exactly one dispatcher registered, tracing computes a callsite's interest
    // from the default of whichever thread hits it first, so a callsite another test's
    // thread reached first would stay disabled here. A second one keeps it per event.
    _second: tracing::Dispatch,
}

#[derive(Clone)]
struct Sink(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub(crate) fn start() -> Self {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buf,
            _guard: guard,
            _second: second,
        }
    }

    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}
