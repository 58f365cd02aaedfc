//! Building the application from a [`Config`] and serving it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keygate_gates::{GateStore, Gates, MemoryGateStore, SystemClock};
use keygate_keys::{DatabaseBackend, KeyStore, Principal, TokenFormat, Verifier};
use keygate_limits::{FailureLimiter, FailureQuota, Limits, Quota};
use keygate_scopes::Policy;
use serde_json::json;
use tokio_util::task::AbortOnDropHandle;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Config, Upstream as UpstreamConfig};
use crate::error::ServerError;
use crate::front::{self, Front, Observed};
use crate::labels::{Label, RouteLabels, Table};
use crate::metrics::{Metrics, TimedVerifier};
use crate::openapi::{self, Document};
use crate::serve::Transport;
use crate::state::{AppState, Inner};
use crate::upstream::Upstream;
use crate::{admin, approvals, mcp, page};

/// The default of [`Config::max_body`], the largest MCP request body: 4 MiB, what
/// the official SDKs' servers accept.
pub const MCP_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Largest admin API request body: 16 KiB.
pub const ADMIN_BODY_LIMIT: usize = 16 * 1024;

/// How often expired challenges and stale evidence reads are forgotten.
const PURGE_EVERY: Duration = Duration::from_secs(300);

/// A built keygate application, ready to serve.
///
/// ```no_run
/// use keygate_server::{App, Config, Upstream};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = Config::new(Upstream::Http("http://127.0.0.1:9000/mcp".to_owned()));
/// config.policy = Some("policy.toml".into());
/// let app = App::new(config).await?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// app.serve(listener, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct App {
    /// Every route, behind what every request passes (see [`crate::front`]).
    front: Front,
    state: AppState,
    transport: Transport,
}

impl App {
    /// Opens the store named by [`Config::database`] (running its migrations), loads
    /// the policy, sets up the rate limiter, the gate state (in PostgreSQL with a
    /// PostgreSQL store, in memory otherwise) and the upstream.
    ///
    /// # Errors
    ///
    /// A [`ServerError`] naming what could not be set up.
    pub async fn new(config: Config) -> Result<Self, ServerError> {
        let url = &config.database;
        if url.backend() == DatabaseBackend::Postgres {
            let store = keygate_keys::PostgresStore::connect(url.as_str())
                .await
                .map_err(ServerError::Store)?;
            let gates = keygate_gates::PgGateStore::new(store.pool().clone())
                .await
                .map_err(ServerError::Gates)?;
            Self::with_stores(config, Arc::new(store), Arc::new(gates)).await
        } else {
            let store = url.connect().await.map_err(ServerError::Store)?;
            Self::with_store(config, store).await
        }
    }

    /// Like [`App::new`] on an already opened key store ([`Config::database`] is
    /// ignored), with gate state in memory.
    ///
    /// # Errors
    ///
    /// As [`App::new`].
    pub async fn with_store(config: Config, store: Arc<dyn KeyStore>) -> Result<Self, ServerError> {
        Self::with_stores(config, store, Arc::new(MemoryGateStore::new())).await
    }

    /// Like [`App::new`] on an already opened key store and gate store
    /// ([`Config::database`] is ignored).
    ///
    /// # Errors
    ///
    /// As [`App::new`].
    pub async fn with_stores(
        config: Config,
        store: Arc<dyn KeyStore>,
        gate_store: Arc<dyn GateStore>,
    ) -> Result<Self, ServerError> {
        let verifier: Arc<dyn Verifier> = store.clone();
        Self::with_verifier(config, store, verifier, gate_store).await
    }

    /// Like [`App::with_stores`], with presented tokens verified by `verifier`
    /// instead of by `store` (which still serves everything else: admin API, project
    /// look-ups, the demo bootstrap, health). For a decorator of the store's
    /// verification (a test that counts or fails it), which then wraps only
    /// [`Verifier`] rather than the whole [`KeyStore`].
    ///
    /// # Errors
    ///
    /// As [`App::new`].
    pub async fn with_verifier(
        config: Config,
        store: Arc<dyn KeyStore>,
        verifier: Arc<dyn Verifier>,
        gate_store: Arc<dyn GateStore>,
    ) -> Result<Self, ServerError> {
        let policy = load_policy(&config)?;
        let origins = Arc::new(crate::origin::Origins::new(
            config.public_url.as_deref(),
            &config.allowed_origins,
        )?);
        if config.max_body == 0 {
            return Err(ServerError::Config(
                "the MCP body limit must be above zero".to_owned(),
            ));
        }
        if config.header_timeout.is_zero() {
            return Err(ServerError::Config(
                "the header timeout must be above zero".to_owned(),
            ));
        }
        let transport = Transport {
            header_timeout: config.header_timeout,
            max_connections: usize::try_from(config.max_connections.get()).unwrap_or(usize::MAX),
        };
        let failures = config
            .auth_failure_rate
            .map(|n| Arc::new(FailureLimiter::new(FailureQuota::per_minute(n))));
        let leak_keys = match &config.leak_report_keys {
            Some(path) => Some(Arc::new(crate::leaks::LeakReportKeys::load(path)?)),
            None => None,
        };
        let upstream = match &config.upstream {
            UpstreamConfig::InProcess(upstream) => {
                Upstream::in_process(upstream.clone(), config.upstream_timeout)
            }
            UpstreamConfig::Http(url) => {
                Upstream::http(url, config.upstream_timeout).map_err(ServerError::Config)?
            }
            UpstreamConfig::Stdio(command) => Upstream::stdio(
                command.clone(),
                command.label().to_owned(),
                config.upstream_timeout,
            ),
            UpstreamConfig::Named(named) => {
                crate::federation::members(named, config.upstream_timeout)?
            }
        };
        let limits = Limits::new(
            Quota::from_rate(config.key_rate),
            Quota::from_rate(config.tenant_rate),
        );
        let limiter = config
            .rate_limit_backend
            .build(limits, config.rate_limit_fail_mode)
            .await
            .map_err(ServerError::Limits)?;
        let ttl = time::Duration::try_from(config.challenge_ttl)
            .map_err(|_| ServerError::Config("the challenge lifetime is too long".to_owned()))?;
        let approval_ttl = time::Duration::try_from(config.approval_ttl)
            .ok()
            .filter(|t| t.is_positive())
            .ok_or_else(|| {
                ServerError::Config(
                    "the approval lifetime must be above zero and not too long".to_owned(),
                )
            })?;
        let mut gates = Gates::new(gate_store, Arc::new(SystemClock))
            .with_challenge_ttl(ttl)
            .with_approval_ttl(approval_ttl);
        if let Some(url) = &config.public_url {
            gates = gates.with_public_url(url.as_str());
        }
        // MRTR request states: the configured secret, else one for this process only.
        let mrtr_secret = match &config.mrtr_secret {
            Some(secret) => secret.clone(),
            None => keygate_gates::MrtrSecret::random().map_err(|e| {
                ServerError::Config(format!("cannot draw a random MRTR secret: {e}"))
            })?,
        };
        gates = gates.with_mrtr_secret(mrtr_secret);
        let metrics = Metrics::new();
        let verifier: Arc<dyn Verifier> = Arc::new(TimedVerifier {
            inner: verifier,
            metrics: metrics.clone(),
        });
        let state = AppState::new(Inner {
            store,
            verifier,
            policy: Arc::new(policy),
            gates,
            ratelimit_policy: Inner::ratelimit_policy(limiter.as_ref()),
            limiter,
            upstream,
            format: config.format.clone(),
            max_body: config.max_body,
            request_timeout: config.request_timeout,
            metrics,
        });
        let document = Document::build()?;
        let front = routes(
            state.clone(),
            config.request_timeout,
            failures,
            origins,
            document,
            leak_keys,
        );
        Ok(Self {
            front,
            state,
            transport,
        })
    }

    /// The key store the app serves (for a binary that seeds it, such as the demo's
    /// bootstrap, before serving).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.state.store
    }

    /// The token format (brand) of the keys this app issues.
    pub fn format(&self) -> &TokenFormat {
        &self.state.format
    }

    /// The axum router (for tests with `oneshot`, or to nest in another app).
    pub fn router(&self) -> Router {
        Router::new().fallback_service(front::layered(self.front.clone()))
    }

    /// The tool policy in force.
    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }

    /// The upstream checked calls go to (`keygate wrap` watches its stdio session).
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.state.upstream
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting
    /// and lets in-flight requests finish.
    ///
    /// A connection whose request headers do not all arrive within
    /// [`Config::header_timeout`] (from accept, or from the end of the previous answer
    /// on a kept-alive connection) is closed. At most [`Config::max_connections`] are
    /// held; at the cap new connections wait in the listen queue. A failing `accept`
    /// (out of file descriptors) is retried with a backoff of up to 1 s, never given up.
    /// Every accepted socket gets TCP_NODELAY, and the router sees the peer address as
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) (for the per-address
    /// failed-authentication limit).
    ///
    /// # Errors
    ///
    /// None today: accept failures are retried. The `Result` is kept for failures a
    /// later transport may have.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let gates = self.state.gates.clone();
        // Stopped when serving ends, or when this future is dropped before it does.
        let _purge = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PURGE_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = gates.purge().await {
                    tracing::warn!(error = %e, "could not purge gate state");
                }
            }
        }));
        // The layered routes as they are: a `Router` around them (`router`) would route
        // every request twice and box it once more on the way.
        let service = front::layered(self.front);
        crate::serve::serve(listener, service, self.transport, shutdown).await;
        Ok(())
    }
}

fn load_policy(config: &Config) -> Result<Policy, ServerError> {
    let shipped = match &config.upstream {
        UpstreamConfig::InProcess(upstream) => upstream.policy_toml(),
        UpstreamConfig::Http(_) | UpstreamConfig::Stdio(_) | UpstreamConfig::Named(_) => None,
    };
    match (&config.policy, shipped) {
        (Some(path), _) => Policy::load(path).map_err(ServerError::Policy),
        (None, Some(toml)) => Policy::from_toml_str(toml).map_err(ServerError::Policy),
        (None, None) => Err(ServerError::Config(
            "an upstream needs a policy file (--policy FILE): tools not in a policy are denied"
                .to_owned(),
        )),
    }
}

/// Every route, each added with its metrics label (the one route table): the MCP
/// gateway, the owner admin and approvals API, forward-auth, leak reports, and the rest.
struct Routes {
    mcp: Router<AppState>,
    admin: Router<AppState>,
    forward: Router<AppState>,
    leaks: Router<AppState>,
    others: Router<AppState>,
}

impl Routes {
    /// A route is one line: its metrics label (the `keygate_requests_total` `route`),
    /// its path, its handlers.
    #[rustfmt::skip]
    fn new(labels: &mut RouteLabels, document: &Document, leaks: crate::leaks::LeakSetup) -> Self {
        let gateway = post(mcp::gateway).get(mcp::passthrough).delete(mcp::passthrough);
        let mcp = Table::new(labels).route("mcp", "/api/mcp", gateway).into_router();
        let keys = Label::all("keys_list").post("keys_create");
        let projects = post(admin::create_project).get(admin::list_projects);
        let admin = Table::new(labels)
            .route("token", "/api/v1/token", get(admin::token))
            .route("scopes", "/api/v1/scopes", get(admin::list_scopes))
            .route(keys, "/api/v1/keys", post(admin::create_key).get(admin::list_keys))
            .route("keys_get", "/api/v1/keys/{id}", get(admin::get_key))
            .route("keys_revoke", "/api/v1/keys/{id}/revoke", post(admin::revoke_key))
            .route("keys_rotate", "/api/v1/keys/{id}/rotate", post(admin::rotate_key))
            .route("projects", "/api/v1/projects", projects)
            .route("audit", "/api/v1/audit", get(admin::list_audit))
            .route("approvals_list", "/api/v1/approvals", get(approvals::list))
            .route("approvals_get", "/api/v1/approvals/{id}", get(approvals::get))
            .route("approvals_approve", "/api/v1/approvals/{id}/approve", post(approvals::approve))
            .route("approvals_deny", "/api/v1/approvals/{id}/deny", post(approvals::deny))
            .into_router();
        let others = Table::new(labels)
            .route("healthz", "/healthz", get(healthz))
            .route("metrics", "/metrics", get(metrics))
            .route("openapi", openapi::PATH, document.route())
            .into_router()
            .merge(page::routes(labels));
        let forward = crate::forward_auth::routes(labels);
        let leaks = crate::leaks::routes(leaks, labels);
        Self { mcp, admin, forward, leaks, others }
    }
}

/// All routes, with authentication on `/api/*`, behind what every request passes
/// through ([`Front`]).
fn routes(
    state: AppState,
    request_timeout: Duration,
    failures: Option<Arc<FailureLimiter>>,
    origins: Arc<crate::origin::Origins>,
    document: Document,
    leak_keys: Option<Arc<crate::leaks::LeakReportKeys>>,
) -> Front {
    // Every request but an MCP one must produce its head within the request timeout. An
    // MCP request is bounded by it while the client sends it (`mcp::gateway`), then by
    // the upstream timeout: a tool answered in one JSON body may take longer than any
    // generic bound, and a stream may stay open as long as its ends want.
    let timeout = TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, request_timeout);
    let mut labels = RouteLabels::default();
    let leaks = crate::leaks::LeakSetup::new(leak_keys, failures.clone());
    let Routes {
        mcp,
        admin,
        forward,
        leaks,
        others,
    } = Routes::new(&mut labels, &document, leaks);
    let leaks = leaks.layer(timeout);
    let mut auth = keygate_http::AuthLayer::new(state.verifier.clone());
    if let Some(failures) = failures {
        auth = auth.with_failure_limiter(failures);
    }
    let admin_routes = admin
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limited))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(timeout);
    // No `DefaultBodyLimit`: the gateway limits the MCP body itself (`mcp::read_body`),
    // and the GET and DELETE it passes through send none.
    let mcp_routes = mcp.route_layer(middleware::from_fn_with_state(state.clone(), rate_limited));
    // Forward-auth: the same key checks and budgets, its answers finished outside them.
    let forward = forward
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limited))
        .route_layer(auth.clone())
        .layer(middleware::from_fn(crate::forward_auth::finish))
        .layer(timeout);
    let api = admin_routes.merge(mcp_routes).route_layer(auth.clone());
    let others = others.fallback(not_found).layer(timeout);
    let routes = Router::new()
        .merge(api)
        .merge(forward)
        .merge(leaks)
        .merge(others)
        .with_state(state.clone());
    let observed = Observed {
        state,
        labels: Arc::new(labels),
        origins,
    };
    Front::new(observed, routes, &auth)
}

/// Applies the key and tenant rate limits to every authenticated `/api/*` request,
/// before its handler reads the body: a request that is then refused (by policy, as
/// malformed, as too large) has spent its unit like any other, so no request is free.
async fn rate_limited(State(state): State<AppState>, req: Request, next: Next) -> Response {
    limited(&state, req, |req| next.run(req)).await
}

/// The rate limits of the request's principal around `inner` (see [`rate_limited`]);
/// a request without a principal (none was verified) is `inner`'s to refuse.
pub(crate) async fn limited<F>(
    state: &AppState,
    req: Request,
    inner: impl FnOnce(Request) -> F,
) -> Response
where
    F: Future<Output = Response>,
{
    let Some(principal) = req.extensions().get::<Principal>() else {
        return inner(req).await;
    };
    match state.rate_limit(principal).await {
        Ok(headers) => {
            let mut resp = inner(req).await;
            resp.headers_mut().extend(headers);
            resp
        }
        Err(resp) => resp,
    }
}

/// A JSON answer with `status`, never cached (`Cache-Control: no-store`).
pub(crate) fn json_error(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => json_error(StatusCode::OK, json!({ "status": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: key store unavailable");
            let mut resp = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable" }),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut resp = Response::new(Body::from(state.metrics.render()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

pub(crate) async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, json!({ "error": "not_found" }))
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    /// The label [`observe`] counts a request under.
    fn route_label(path: &str, method: &Method) -> &'static str {
        let mut labels = RouteLabels::default();
        let document = Document::build().expect("the OpenAPI document");
        let _routes = Routes::new(
            &mut labels,
            &document,
            crate::leaks::LeakSetup::new(None, None),
        );
        labels.of(path, method)
    }

    #[test]
    fn routes_are_labelled_from_the_request_path() {
        let get = Method::GET;
        let post = Method::POST;
        for (path, method, label) in [
            ("/api/mcp", &post, "mcp"),
            ("/api/mcp/", &post, "other"),
            ("/api/v1/keys", &post, "keys_create"),
            ("/api/v1/keys", &get, "keys_list"),
            ("/api/v1/keys/", &get, "other"),
            ("/api/v1/keys/abc", &get, "keys_get"),
            ("/api/v1/keys/abc/revoke", &post, "keys_revoke"),
            ("/api/v1/keys/abc/rotate", &post, "keys_rotate"),
            ("/api/v1/keys//revoke", &post, "other"),
            ("/api/v1/keys/abc/other", &post, "other"),
            ("/api/v1/keys/abc/revoke/x", &post, "other"),
            ("/api/v1/token", &get, "token"),
            ("/api/v1/scopes", &get, "scopes"),
            ("/api/v1/projects", &post, "projects"),
            ("/api/v1/audit", &get, "audit"),
            ("/api/v1/leaks/github", &post, "leaks_github"),
            ("/auth/verify", &get, "forward_auth"),
            ("/auth/verify/api/x?y", &post, "forward_auth"),
            ("/auth/verifyx", &get, "other"),
            ("/healthz", &get, "healthz"),
            ("/metrics", &get, "metrics"),
            ("/api/v1/openapi.json", &get, "openapi"),
            ("/settings/api", &get, "settings"),
            ("/settings/api/app.js", &get, "settings"),
            ("/settings/nope", &get, "other"),
            ("/approvals/abc", &get, "settings"),
            ("/api/v1/approvals", &get, "approvals_list"),
            ("/api/v1/approvals/abc", &get, "approvals_get"),
            ("/api/v1/approvals/abc/approve", &post, "approvals_approve"),
            ("/api/v1/approvals/abc/deny", &post, "approvals_deny"),
            ("/api/v1/approvals//deny", &post, "other"),
            ("/api/v1/approvals/abc/x", &post, "other"),
            ("/", &get, "other"),
        ] {
            assert_eq!(route_label(path, method), label, "{method} {path}");
        }
    }

    /// Every route of the table under `/api/v1/` (and `/auth/verify`) is in the
    /// OpenAPI document with exactly the methods the router serves it with (a method
    /// it does not serve answers an authenticated request with 405), and the document
    /// has no other paths.
    #[tokio::test]
    async fn every_api_route_is_documented_with_the_methods_it_serves() {
        use tower::ServiceExt;

        let document = Document::build().expect("the OpenAPI document");
        let doc: serde_json::Value =
            serde_json::from_slice(document.json()).expect("the document is JSON");
        let documented = doc["paths"].as_object().expect("paths");
        let mut labels = RouteLabels::default();
        let _routes = Routes::new(
            &mut labels,
            &document,
            crate::leaks::LeakSetup::new(None, None),
        );
        let api: Vec<&str> = labels
            .paths()
            .filter(|p| p.starts_with("/api/v1/") || *p == "/auth/verify")
            .collect();
        assert!(api.len() >= 15, "the table has the API's routes: {api:?}");
        for path in documented.keys() {
            assert!(
                api.contains(&path.as_str()),
                "{path} is documented but not routed"
            );
        }

        let dir = tempfile::tempdir().expect("a temporary directory");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, "[scopes]\n\"a:read\" = \"Read\"\n").expect("a policy file");
        // With leak-report keys, so that the leak-report route is the one it serves.
        let keys = dir.path().join("keys.json");
        let file = keygate_test::LeakSigner::new().key_file("k1");
        std::fs::write(&keys, file.to_string()).expect("a key file");
        let mut config = Config::new(UpstreamConfig::Http("http://127.0.0.1:9/mcp".to_owned()));
        config.policy = Some(policy);
        config.leak_report_keys = Some(keys);
        let store = Arc::new(keygate_keys::MemoryStore::new());
        let owner = store
            .bootstrap(
                &TokenFormat::default(),
                keygate_keys::Bootstrap::new(
                    "t",
                    "o",
                    &[],
                    vec![keygate_scopes::ADMIN_SCOPE.to_owned()],
                    "owner",
                ),
            )
            .await
            .expect("a tenant");
        let bearer = format!("Bearer {}", owner.key.token.expose());
        let app = App::with_store(config, store).await.expect("an app");
        for path in api {
            let operations = documented
                .get(path)
                .and_then(serde_json::Value::as_object)
                .unwrap_or_else(|| panic!("{path} is routed but not in the OpenAPI document"));
            // Any `{param}` segment: a well-formed key id fits every one of them.
            let uri: String = path
                .split('/')
                .map(|part| {
                    if part.starts_with('{') {
                        "AbC123xYz789"
                    } else {
                        part
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for method in [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::PATCH,
            ] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(&uri)
                    .header(header::AUTHORIZATION, &bearer)
                    .body(Body::empty())
                    .expect("a request");
                let resp = app.router().oneshot(request).await.expect("an answer");
                let served = resp.status() != StatusCode::METHOD_NOT_ALLOWED;
                let listed = operations.contains_key(&method.as_str().to_ascii_lowercase());
                assert_eq!(
                    listed, served,
                    "{method} {path}: documented {listed}, routed {served}"
                );
            }
        }
    }
}
