//! The way every request comes in: the request log and metrics, the Origin check, then
//! the MCP gateway's `POST /api/mcp` on a direct path, every other request through the
//! router.
//!
//! `POST /api/mcp` is nearly every request a gateway serves. Through the router it
//! passed a route match, a method router and four boxed service levels (the log, the
//! key check, the rate limits, the handler), each cloned and each boxing its future on
//! every request. Here it is a named chain: the key check ([`keygate_http::Auth`]), the
//! body limit, the rate limits, the handler, with one boxed future for the whole
//! request and one for the handler. What it runs is what the router runs for that
//! route (the same functions, in the same order). The router keeps its `POST /api/mcp`
//! route, never reached: its method table makes the 405's `Allow` for other methods.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use keygate_http::{Auth, AuthLayer};
use serde_json::json;
use tower::{Layer, Service, ServiceExt};

use crate::app::{ADMIN_BODY_LIMIT, json_error};
use crate::labels::RouteLabels;
use crate::origin::Origins;
use crate::state::AppState;

/// What [`Front`] reads besides the routes: the state, the route labels, the origins.
#[derive(Clone, Debug)]
pub(crate) struct Observed {
    pub(crate) state: AppState,
    pub(crate) labels: Arc<RouteLabels>,
    pub(crate) origins: Arc<Origins>,
}

/// The service every request enters (see the module documentation). Cloned per
/// connection and per request: one reference count.
#[derive(Clone, Debug)]
pub(crate) struct Front(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    observed: Observed,
    routes: Router,
    mcp: Auth<McpPost>,
}

impl Front {
    /// `routes` (every route with its own layers) behind the log and the Origin check,
    /// and `POST /api/mcp` on its direct path, its key checked by `auth`.
    pub(crate) fn new(observed: Observed, routes: Router, auth: &AuthLayer) -> Self {
        // The gateway sends the identity headers from the request's extensions and
        // forwards only the MCP transport headers: none is set on the request itself.
        let mcp = auth
            .clone()
            .identity_in_extensions_only()
            .layer(McpPost(observed.state.clone()));
        Self(Arc::new(Inner {
            observed,
            routes,
            mcp,
        }))
    }
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let front = Arc::clone(&self.0);
        Box::pin(async move { Ok(front.observe(req).await) })
    }
}

impl Inner {
    /// Counts and logs every request (route, status, latency: never headers or
    /// bodies), applies the Origin check (`origin::guard`), and gives the framework's
    /// plain-text 413, 405 and timeout answers JSON bodies.
    async fn observe(&self, req: Request) -> Response {
        let Observed {
            state,
            labels,
            origins,
        } = &self.observed;
        let route = labels.of(req.uri().path(), req.method());
        // Only the debug line reads the method and the time taken: neither is copied
        // or read from the clock for a request nobody logs.
        let logged = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (req.method().clone(), Instant::now()));
        // Before authentication: a foreign origin is refused whatever it presents.
        let mut resp = crate::origin::guard(origins, req, |req| self.dispatch(route, req)).await;
        let status = resp.status();
        let is_json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if !is_json {
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                let limit = if route == "mcp" {
                    state.max_body
                } else {
                    ADMIN_BODY_LIMIT
                };
                resp = json_error(
                    status,
                    json!({ "error": "payload_too_large", "message": format!("the request body is larger than {limit} bytes") }),
                );
            } else if status == StatusCode::GATEWAY_TIMEOUT
                && resp.headers().get(header::CONTENT_TYPE).is_none()
            {
                resp = json_error(status, json!({ "error": "timeout" }));
            } else if status == StatusCode::METHOD_NOT_ALLOWED {
                let allow = resp.headers().get(header::ALLOW).cloned();
                resp = json_error(status, json!({ "error": "method_not_allowed" }));
                if let Some(allow) = allow {
                    resp.headers_mut().insert(header::ALLOW, allow);
                }
            }
        }
        state.metrics.request(route, outcome_label(status));
        // Per-request lines are debug: at info they cost a stderr write per request (see
        // BENCHMARKS.md); `/metrics` counts requests at any level.
        if let Some((method, started)) = logged {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tracing::debug!(
                method = %keygate_http::untrusted(&method),
                route,
                status = status.as_u16(),
                took_us = micros,
                "request"
            );
        }
        resp
    }

    /// `POST /api/mcp` to its direct path, the rest to the router. `route` is the
    /// request's label, found once by `observe` from the route table: `mcp` is the
    /// label of exactly the gateway's path, as the router matches it.
    async fn dispatch(&self, route: &'static str, req: Request) -> Response {
        let answer = if route == "mcp" && req.method() == Method::POST {
            self.mcp.clone().oneshot(req).await
        } else {
            self.routes.clone().oneshot(req).await
        };
        match answer {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    }
}

/// `POST /api/mcp` once its key is checked: the rate limits and the gateway (which
/// applies the body limit), as the router's route for it has them.
#[derive(Clone, Debug)]
pub(crate) struct McpPost(AppState);

impl Service<Request> for McpPost {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.0.clone();
        // The gateway applies the body limit itself (`mcp::read_body`).
        Box::pin(async move {
            let resp = crate::app::limited(&state, req, |req| {
                crate::mcp::gateway(State(state.clone()), req)
            })
            .await;
            Ok(resp)
        })
    }
}

/// The `outcome` label of `keygate_requests_total` for a status.
fn outcome_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "ok",
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        413 => "too_large",
        429 => "rate_limited",
        502 => "upstream_error",
        503 => "unavailable",
        504 => "timeout",
        500..=599 => "error",
        _ => "other",
    }
}

/// Marks every request's `Authorization` header sensitive, so no layer or log that
/// prints headers shows it, then hands the request to [`Front`].
pub(crate) fn layered(
    front: Front,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static {
    tower::ServiceBuilder::new()
        .layer(
            tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
            ]),
        )
        .service(front)
}
