//! Fixtures: a store with one tenant, its keys, and the routers under test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use keygate_http::{AuthLayer, Authenticated};
use keygate_keys::{
    ApiKey, AuditEvent, Bootstrap, Bootstrapped, CreatedKey, KeyId, KeyKind, KeyStore, MemoryStore,
    NewAuditEvent, NewKey, Principal, Project, ProjectRef, Role, StoreError, Tenant, TenantId,
    TokenFormat, User, VerifyError,
};
use tower::ServiceExt;

/// A store with tenant `acme`, owner `alice` (user key) and a tenant key.
pub(crate) struct Fixture {
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) boot: Bootstrapped,
    pub(crate) tenant_key: CreatedKey,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let format = TokenFormat::default();
        let boot = store
            .bootstrap(
                &format,
                Bootstrap {
                    tenant: "acme".to_owned(),
                    owner: "alice".to_owned(),
                    projects: vec!["shop".to_owned()],
                    scopes: vec!["keys:admin".to_owned()],
                    key_name: "owner".to_owned(),
                },
            )
            .await
            .unwrap();
        let tenant_key = store
            .create_key(
                &format,
                NewKey {
                    tenant_id: boot.tenant.id.clone(),
                    kind: KeyKind::Tenant,
                    user_id: None,
                    name: "ci".to_owned(),
                    scopes: vec!["deploy".to_owned()],
                    projects: None,
                    expires_at: None,
                },
                "test",
            )
            .await
            .unwrap();
        Self {
            store,
            boot,
            tenant_key,
        }
    }

    /// The owner's raw user key.
    pub(crate) fn user_token(&self) -> &str {
        self.boot.key.token.expose()
    }

    /// The raw tenant key.
    pub(crate) fn tenant_token(&self) -> &str {
        self.tenant_key.token.expose()
    }

    pub(crate) fn app(&self) -> Router {
        protected(self.store.clone())
    }
}

/// Echoes the identity-relevant headers the handler received, one `name: value`
/// per line, sorted, plus whether a principal was in the extensions.
async fn echo(headers: HeaderMap, principal: Option<Authenticated>) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-keygate-") || *name == "authorization")
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<bytes>")))
        .collect();
    lines.sort();
    lines.push(format!("principal: {}", principal.is_some()));
    lines.join("\n")
}

async fn me(Authenticated(p): Authenticated) -> String {
    format!("{} {}", p.tenant.name, p.kind)
}

async fn maybe(p: Option<Authenticated>) -> String {
    match p {
        Some(Authenticated(p)) => format!("some {}", p.key_id),
        None => "none".to_owned(),
    }
}

/// The routes, without the layer.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/echo", get(echo))
        .route("/me", get(me))
        .route("/maybe", get(maybe))
}

/// The routes behind the layer.
pub(crate) fn protected(store: Arc<dyn KeyStore>) -> Router {
    routes().layer(AuthLayer::new(store))
}

/// A response, fully read.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends `GET path` with one `Authorization` header per entry of `authorization`
/// and the `extra` headers.
pub(crate) async fn send(
    app: Router,
    path: &str,
    authorization: &[&[u8]],
    extra: &[(&str, &str)],
) -> Answer {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    for value in authorization {
        req.headers_mut()
            .append("authorization", HeaderValue::from_bytes(value).unwrap());
    }
    for (name, value) in extra {
        req.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// `Bearer <token>` as bytes.
pub(crate) fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

/// A store whose `verify` always fails as if the database were down; every
/// other method delegates.
pub(crate) struct DownStore(pub(crate) MemoryStore);

#[async_trait]
impl KeyStore for DownStore {
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError> {
        self.0.bootstrap(format, request).await
    }
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.0.create_tenant(name).await
    }
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        self.0.tenant_by_name(name).await
    }
    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        self.0.create_user(tenant, name, role).await
    }
    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        self.0.create_project(tenant, name).await
    }
    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError> {
        self.0.list_projects(tenant).await
    }
    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError> {
        self.0.find_project(tenant, project).await
    }
    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.0.create_key(format, request, actor).await
    }
    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        self.0.get_key(tenant, id).await
    }
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.0.list_keys(tenant).await
    }
    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        actor: &str,
    ) -> Result<ApiKey, StoreError> {
        self.0.revoke_key(tenant, id, actor).await
    }
    async fn rotate_key(
        &self,
        format: &TokenFormat,
        tenant: &TenantId,
        id: &KeyId,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.0.rotate_key(format, tenant, id, actor).await
    }
    async fn verify(&self, _token: &str) -> Result<Principal, VerifyError> {
        Err(VerifyError::Unavailable(StoreError::unavailable(
            "connection refused",
        )))
    }
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.0.append_audit(event).await
    }
    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.0.list_audit(tenant, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::unavailable("connection refused"))
    }
}

/// A store that counts its `verify` calls; every method delegates.
pub(crate) struct CountingStore(pub(crate) Arc<MemoryStore>, pub(crate) AtomicUsize);

impl CountingStore {
    /// How many times `verify` was called.
    pub(crate) fn verifies(&self) -> usize {
        self.1.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyStore for CountingStore {
    async fn bootstrap(
        &self,
        format: &TokenFormat,
        request: Bootstrap,
    ) -> Result<Bootstrapped, StoreError> {
        self.0.bootstrap(format, request).await
    }
    async fn create_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.0.create_tenant(name).await
    }
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        self.0.tenant_by_name(name).await
    }
    async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        self.0.create_user(tenant, name, role).await
    }
    async fn create_project(&self, tenant: &TenantId, name: &str) -> Result<Project, StoreError> {
        self.0.create_project(tenant, name).await
    }
    async fn list_projects(&self, tenant: &TenantId) -> Result<Vec<Project>, StoreError> {
        self.0.list_projects(tenant).await
    }
    async fn find_project(
        &self,
        tenant: &TenantId,
        project: &str,
    ) -> Result<Option<ProjectRef>, StoreError> {
        self.0.find_project(tenant, project).await
    }
    async fn create_key(
        &self,
        format: &TokenFormat,
        request: NewKey,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.0.create_key(format, request, actor).await
    }
    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> Result<ApiKey, StoreError> {
        self.0.get_key(tenant, id).await
    }
    async fn list_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.0.list_keys(tenant).await
    }
    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        actor: &str,
    ) -> Result<ApiKey, StoreError> {
        self.0.revoke_key(tenant, id, actor).await
    }
    async fn rotate_key(
        &self,
        format: &TokenFormat,
        tenant: &TenantId,
        id: &KeyId,
        actor: &str,
    ) -> Result<CreatedKey, StoreError> {
        self.0.rotate_key(format, tenant, id, actor).await
    }
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.verify(token).await
    }
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.0.append_audit(event).await
    }
    async fn list_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.0.list_audit(tenant, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}
