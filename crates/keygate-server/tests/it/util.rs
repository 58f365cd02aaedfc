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

/// The evidence tools of the demo policy's `service.replace` gate.
pub(crate) const EVIDENCE: [&str; 3] = [
    "service.events",
    "service.logs.build",
    "service.logs.runtime",
];

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

/// A key of `tenant` (all projects, no expiry, no usage limit) created in `store`; the
/// raw key.
pub(crate) async fn store_key(
    store: &dyn KeyStore,
    tenant: &TenantId,
    kind: KeyKind,
    user_id: Option<UserId>,
    name: &str,
    scopes: &[&str],
) -> String {
    let request = NewKey {
        tenant_id: tenant.clone(),
        kind,
        user_id,
        name: name.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        projects: None,
        expires_at: None,
        remaining: None,
        refill: None,
    };
    let created = store
        .create_key(&keygate_keys::TokenFormat::default(), request, "test")
        .await
        .unwrap();
    created.token.expose().to_owned()
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

/// Every scope of the demo policy.
pub(crate) fn all_scopes() -> Vec<String> {
    keygate_scopes::Policy::from_toml_str(keygate_demo::POLICY_TOML)
        .unwrap()
        .all_scopes()
}

/// Bootstraps another tenant `name` in `store`, with `projects` and the owner `user`;
/// the owner's key (every scope of the demo policy).
pub(crate) async fn other_tenant(
    store: &dyn KeyStore,
    name: &str,
    user: &str,
    projects: &[&str],
) -> String {
    let request = keygate_keys::Bootstrap::new(name, user, projects, all_scopes(), "owner key");
    let done = store
        .bootstrap(&keygate_keys::TokenFormat::default(), request)
        .await
        .unwrap();
    done.key.token.expose().to_owned()
}

/// Harnesses of the instances `apps` on one database, each acting as the demo owner
/// the first of them bootstraps there.
pub(crate) async fn harnesses<const N: usize>(apps: [&App; N]) -> [Harness; N] {
    let owner = take_demo_owner(apps[0])
        .await
        .expect("the first instance bootstraps");
    apps.map(|app| Harness::for_app(app, &owner))
}

/// Every row of the PostgreSQL table `table` at `url` as JSON, concatenated: where a
/// test looks for a secret that must be stored as its SHA-256 only.
pub(crate) async fn stored_rows(url: &str, table: &str) -> String {
    let query = format!("SELECT coalesce(string_agg(row_to_json(t)::text, ''), '') FROM {table} t");
    keygate_test::pg_connect(url)
        .await
        .query_one(query.as_str(), &[])
        .await
        .unwrap()
        .get(0)
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

    /// Asserts that the owner approved a gated call through `channel` among `events`;
    /// the `gate.approved` event.
    pub(crate) fn assert_owner_approved<'a>(
        &self,
        events: &'a [Value],
        channel: &str,
    ) -> &'a Value {
        let approved = audited(events, "gate.approved");
        assert_eq!(approved["detail"]["channel"], json!(channel));
        assert_eq!(
            approved["detail"]["approver_user_id"],
            json!(self.owner_id.as_str())
        );
        approved
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

    /// `POST /api/v1/keys` with `body` as the owner.
    pub(crate) async fn post_key(&self, body: Value) -> Reply {
        self.post("/api/v1/keys", &self.owner, body).await
    }

    /// Creates a key through the admin API as the owner; returns (raw key, view).
    pub(crate) async fn create_key(&self, body: Value) -> (String, Value) {
        let r = self.post_key(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        (r.body["key"].as_str().unwrap().to_owned(), r.body)
    }

    /// A tenant key `name` with `services:read` through the admin API: (raw key, id).
    pub(crate) async fn reader_key(&self, name: &str) -> (String, String) {
        let (key, view) = self
            .create_key(json!({"name": name, "kind": "tenant", "scopes": ["services:read"]}))
            .await;
        (key, view["id"].as_str().unwrap().to_owned())
    }

    /// Revokes the key `id` as the owner; asserts that it answered 200.
    pub(crate) async fn revoke(&self, id: &str) -> Reply {
        let r = self
            .post(&format!("/api/v1/keys/{id}/revoke"), &self.owner, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        r
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
        store_key(&*self.store, &self.tenant, kind, user_id, name, scopes).await
    }

    /// Binds the session id `id` to the owner's key in `gates` for an hour, as if the
    /// upstream's `initialize` had issued it to them (no elicitation declared).
    pub(crate) async fn bind_owner_session(&self, gates: &dyn keygate_gates::GateStore, id: &str) {
        let owner = self.principal(&self.owner).await;
        let now = time::OffsetDateTime::now_utc();
        let binding = keygate_gates::SessionBinding {
            key_id: owner.key_id.as_str().to_owned(),
            bound_at: now,
            seen_at: now,
            expires_at: now + time::Duration::hours(1),
            elicitation: false,
            elicitation_url: false,
        };
        assert!(gates.bind_session(id, &binding).await.unwrap());
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

    /// One MCP request `method` (without params, id 1) with the key, sessionless.
    pub(crate) async fn rpc(&self, key: &str, method: &str) -> Reply {
        self.mcp(
            key,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": method}),
        )
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

    /// Reads the evidence the demo's `service.replace` gate asks for about `service`
    /// (events, build and runtime logs) in `session`; asserts that each read succeeded.
    pub(crate) async fn read_evidence(&self, key: &str, session: &str, service: &str) {
        for tool in EVIDENCE {
            let r = self
                .tool_in(key, session, tool, json!({"service": service}))
                .await;
            assert_eq!(r.body["result"]["isError"], false, "{}", r.raw);
        }
    }

    /// [`Harness::tool`] in the session `session`.
    pub(crate) async fn tool_in(&self, key: &str, session: &str, name: &str, args: Value) -> Reply {
        self.tool(key, Some(session), name, args).await
    }
}

/// The `error.message` of a JSON-RPC error answer `r`.
pub(crate) fn error_message(r: &Reply) -> &str {
    r.body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {}", r.raw))
}

/// The `reason` of a gate's `CONFIRMATION_INVALID` answer `r`.
pub(crate) fn invalid(r: &Reply) -> String {
    gated(r, "CONFIRMATION_INVALID")["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The first event with `action` among `events`.
pub(crate) fn audited<'a>(events: &'a [Value], action: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("{action} audited"))
}

/// The `content-type` of a response with `headers`.
pub(crate) fn content_type(headers: &HeaderMap) -> &str {
    headers["content-type"].to_str().unwrap()
}

/// The tool `name` among the `tools` of a `tools/list` result.
pub(crate) fn listed_tool<'a>(tools: &'a [Value], name: &str) -> &'a Value {
    tools
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// Asserts that the listed `tool` takes a `service` and, as a person gate's tool does,
/// no `confirm`.
pub(crate) fn assert_no_confirm(tool: &Value) {
    let properties = &tool["inputSchema"]["properties"];
    assert!(
        properties["confirm"].is_null(),
        "a person gate takes no confirm: {tool}"
    );
    assert!(properties["service"].is_object(), "{tool}");
}

/// The `www-authenticate` challenge of a refusal `r`.
pub(crate) fn www_authenticate(r: &Reply) -> &str {
    r.headers["www-authenticate"].to_str().unwrap()
}

/// The string `field` of every element of the array `list`.
pub(crate) fn fields<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|e| e[field].as_str().unwrap())
        .collect()
}

/// Whether the demo still lists service `name`.
pub(crate) async fn exists(h: &Harness, name: &str) -> bool {
    let r = h.tool(&h.owner, None, "service.list", json!({})).await;
    assert_ungated(&r);
    r.raw.contains(&format!("\\\"name\\\":\\\"{name}\\\""))
        || r.body["result"]["structuredContent"]["services"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == json!(name)))
}

/// The answer of a person accepting a gate by typing `name` (elicitation, MRTR).
pub(crate) fn accept(name: &str) -> Value {
    json!({"action": "accept", "content": {"target": name}})
}

/// Asserts that `r` is a gate's `APPROVAL_REQUIRED` answer.
pub(crate) fn assert_approval_required(r: &Reply) {
    gated(r, "APPROVAL_REQUIRED");
}

/// Asserts that `r` is a gate's answer with `code`; its `structuredContent`.
pub(crate) fn gated(r: &Reply, code: &str) -> Value {
    assert_eq!(gate_code(r).as_deref(), Some(code), "{}", r.raw);
    r.body["result"]["structuredContent"].clone()
}

/// Asserts that `r` is the upstream's result, not a gate's answer.
pub(crate) fn assert_ungated(r: &Reply) {
    assert_eq!(gate_code(r), None, "{}", r.raw);
}

/// The `structuredContent` of a tool result `r`.
pub(crate) fn structured(r: &Reply) -> &Value {
    &r.body["result"]["structuredContent"]
}

/// The `structuredContent.code` of a gate answer, or `None` for an upstream result.
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
