//! `/auth/verify`: forward-auth for a proxy in front of any HTTP service (nginx
//! `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`, Envoy `ext_authz`).
//!
//! The route sits behind the same authentication layer and rate limits as `/api/*`
//! (app.rs), so a key is verified, refused and counted exactly as there; this module
//! adds the checks the proxy's query asks for and the answer's identity headers.

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keygate_http::{
    AuthError, ForwardQuery, OriginalRequest, X_KEYGATE_KEY_ID, forward_error_header,
    forward_headers, untrusted,
};
use keygate_keys::{Principal, ProjectRef};

use crate::error::ApiError;
use crate::labels::{RouteLabels, Table};
use crate::state::AppState;

/// The verify path. `PATH/<original path>` is served too: Envoy's `ext_authz` HTTP
/// service puts its `path_prefix` in front of the original request's path and query.
pub(crate) const PATH: &str = "/auth/verify";

/// The routes, counted as `forward_auth`, with no layers: app.rs puts
/// authentication, rate limits and [`finish`] around them.
pub(crate) fn routes(labels: &mut RouteLabels) -> axum::Router<AppState> {
    Table::new(labels)
        .route("forward_auth", PATH, axum::routing::any(verify))
        .route("forward_auth", "/auth/verify/", axum::routing::any(verify))
        .route(
            "forward_auth",
            "/auth/verify/{*original}",
            axum::routing::any(verify),
        )
        .into_router()
}

/// Every method: a verified key (the layer in front answered everything else) is
/// checked against the query's scopes and project, then answered 200 with its identity.
///
/// On `PATH` itself the query is the proxy's configuration (`?scope=a,b&project=NAME`,
/// parsed strictly). Under `PATH/…` (Envoy) the rest of the path and the query are the
/// original request's: they are never read as checks, since the client wrote them.
#[utoipa::path(
    method(get, post, put, delete, patch, head, options, trace),
    path = "/auth/verify",
    operation_id = "forward_auth",
    tag = "forward-auth",
    description = "Forward-auth for a proxy in front of any HTTP service (nginx \
        `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`, Envoy `ext_authz`), \
        with any method: 200 with the key's identity in headers, or the error table's \
        answer, its body repeated in `X-Keygate-Error`. Every answer is `no-store`. \
        Under `/auth/verify/<original path>` (Envoy's `path_prefix`) the query is the \
        original request's and is not read.",
    params(
        ("scope" = Option<String>, Query,
            description = "Scopes the key must all hold, comma-separated (each one of the policy)."),
        ("project" = Option<String>, Query,
            description = "A project (name or id) of the key's tenant the key must reach."),
        ("X-Forwarded-Method" = Option<String>, Header, description = "The original method (logged)."),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "The original URI (logged)."),
        ("X-Original-URI" = Option<String>, Header, description = "The original URI, as nginx sends it (logged)."),
    ),
    responses(
        (status = 200, description = "The key may: its identity, for the proxy to pass on.",
            headers(
                ("X-Keygate-Key-Id" = String, description = "The key's public id."),
                ("X-Keygate-Tenant" = String, description = "The key's tenant id."),
                ("X-Keygate-Actor" = String, description = "`user` or `tenant`."),
                ("X-Keygate-User" = String, description = "The issuing user's id (user keys)."),
                ("X-Keygate-Scopes" = String, description = "The key's scopes, comma-separated."),
                ("X-Keygate-Project" = String, description = "The id of the `project` asked for."),
                ("Cache-Control" = String, description = "`no-store`"),
            )),
    )
)]
async fn verify(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: Uri,
) -> Result<Response, Response> {
    let query = if uri.path() == PATH {
        ForwardQuery::parse(uri.query()).map_err(invalid)?
    } else {
        ForwardQuery::default()
    };
    query
        .check_known(|scope| state.policy.scope(scope).is_some())
        .map_err(invalid)?;
    query
        .check_scopes(&principal)
        .map_err(IntoResponse::into_response)?;
    let project = match query.project() {
        None => None,
        Some(name) => Some(reachable_project(&state, &principal, name).await?),
    };
    let headers = forward_headers(&principal, project.as_ref()).map_err(|e| {
        tracing::error!(key_id = %principal.key_id, error = %e, "identity cannot be sent as headers; answering 503");
        AuthError::Unavailable.into_response()
    })?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}

/// The project `name` (or id) of the key's tenant, if the key reaches it; else 403.
async fn reachable_project(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<ProjectRef, Response> {
    if principal.projects.is_some() {
        return principal
            .restricted_project(name)
            .cloned()
            .ok_or_else(|| AuthError::InsufficientScope.into_response());
    }
    match state.store.find_project(&principal.tenant.id, name).await {
        Ok(Some(project)) => Ok(project),
        Ok(None) => Err(AuthError::InsufficientScope.into_response()),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

fn invalid(err: keygate_http::ForwardQueryError) -> Response {
    ApiError::invalid(err.to_string()).into_response()
}

/// Around the whole route (outside authentication): finishes every answer
/// ([`forward_error_header`]: `no-store`, the refusal body in `X-Keygate-Error`) and
/// logs the decision with the original method and URI the proxy named (escaped, cut
/// short; never a header that holds the key).
pub(crate) async fn finish(req: Request, next: Next) -> Response {
    let original = original_request(req.method(), req.uri(), req.headers());
    let resp = forward_error_header(next.run(req).await).await;
    let key_id = resp
        .headers()
        .get(X_KEYGATE_KEY_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::debug!(
        status = resp.status().as_u16(),
        key_id,
        method = ?original.method().map(untrusted),
        uri = ?original.uri().map(untrusted),
        "forward-auth decision"
    );
    resp
}

/// The request the proxy asks about: its headers, or for Envoy's prefixed path, the
/// path after [`PATH`] (with its query) and the request's own method (Envoy sends the
/// check with the original method) when no header names them.
fn original_request(method: &Method, uri: &Uri, headers: &HeaderMap) -> OriginalRequest {
    let from_headers = OriginalRequest::from_headers(headers);
    if from_headers.uri().is_some() {
        return from_headers;
    }
    match uri
        .path_and_query()
        .and_then(|pq| pq.as_str().strip_prefix(PATH))
    {
        Some(rest) if rest.starts_with('/') => OriginalRequest::new(
            Some(from_headers.method().unwrap_or(method.as_str()).to_owned()),
            Some(rest.to_owned()),
        ),
        _ => from_headers,
    }
}
