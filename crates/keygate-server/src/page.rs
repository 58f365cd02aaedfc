//! The "Settings → API & MCP" page (also the approval page, `/approvals/{id}`): three
//! embedded files served with strict headers.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const HTML: &str = include_str!("../assets/settings.html");
const JS: &str = include_str!("../assets/settings.js");
const CSS: &str = include_str!("../assets/settings.css");

/// The Content-Security-Policy of the page: nothing but its own files and the API.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, body).into_response()
}

/// `GET /settings/api`, `/settings/api/app.js`, `/settings/api/app.css`, and
/// `/approvals/{id}` (the same page; its script reads the approval id from the path).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/settings/api",
            get(|| async { page("text/html; charset=utf-8", HTML) }),
        )
        .route(
            "/approvals/{id}",
            get(|| async { page("text/html; charset=utf-8", HTML) }),
        )
        .route(
            "/settings/api/app.js",
            get(|| async { page("text/javascript; charset=utf-8", JS) }),
        )
        .route(
            "/settings/api/app.css",
            get(|| async { page("text/css; charset=utf-8", CSS) }),
        )
}
