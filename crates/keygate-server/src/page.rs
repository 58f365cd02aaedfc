//! The "Settings → API & MCP" page (also the approval page, `/approvals/{id}`): three
//! embedded files served with strict headers.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use crate::labels::{RouteLabels, Table};

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
/// All labelled `settings` in `labels`.
#[rustfmt::skip]
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(labels: &mut RouteLabels) -> Router<S> {
    Table::new(labels)
        .route("settings", "/settings/api", file("text/html; charset=utf-8", HTML))
        .route("settings", "/approvals/{id}", file("text/html; charset=utf-8", HTML))
        .route("settings", "/settings/api/app.js", file("text/javascript; charset=utf-8", JS))
        .route("settings", "/settings/api/app.css", file("text/css; charset=utf-8", CSS))
        .into_router()
}

/// `GET` of one of the page's files.
fn file<S: Clone + Send + Sync + 'static>(
    content_type: &'static str,
    body: &'static str,
) -> MethodRouter<S> {
    get(move || async move { page(content_type, body) })
}
