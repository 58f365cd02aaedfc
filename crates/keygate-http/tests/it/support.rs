//! Fixtures: a store with one tenant, its keys, and the routers under test.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use keygate_http::{AuthLayer, Authenticated};
use keygate_keys::{
    Bootstrap, Bootstrapped, CreatedKey, KeyKind, KeyStore, MemoryStore, NewKey, TokenFormat,
    Verifier,
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
                Bootstrap::new(
                    "acme",
                    "alice",
                    &["shop"],
                    vec!["keys:admin".to_owned()],
                    "owner",
                ),
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
                    remaining: None,
                    refill: None,
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

    /// `GET /echo` through [`Fixture::app`] with `Bearer token`.
    pub(crate) async fn echo(&self, token: &str) -> Answer {
        send(self.app(), "/echo", &[&bearer(token)], &[]).await
    }

    /// Revokes the owner's user key.
    pub(crate) async fn revoke_user_key(&self) {
        self.store
            .revoke_key(&self.boot.tenant.id, &self.boot.key.key.id, "test")
            .await
            .unwrap();
    }

    /// Makes the tenant key expired a minute ago.
    pub(crate) fn expire_tenant_key(&self) {
        let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
        self.store
            .set_expires_at_for_test(&self.tenant_key.key.id, Some(past));
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

/// The identity headers the layer kept in the extensions, one `name: value` per line,
/// in their order.
async fn forwarded(Extension(identity): Extension<keygate_http::IdentityHeaders>) -> String {
    identity
        .as_slice()
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<bytes>")))
        .collect::<Vec<_>>()
        .join("\n")
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
        .route("/forwarded", get(forwarded))
        .route("/me", get(me))
        .route("/maybe", get(maybe))
}

/// The routes behind the layer.
pub(crate) fn protected(verifier: Arc<dyn Verifier>) -> Router {
    routes().layer(AuthLayer::new(verifier))
}

/// A response, fully read.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// Reads `res` to the end.
    pub(crate) async fn of(res: Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Self {
            status,
            headers,
            body,
        }
    }

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
    Answer::of(app.oneshot(req).await.unwrap()).await
}

/// `Bearer <token>` as bytes.
pub(crate) fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}
