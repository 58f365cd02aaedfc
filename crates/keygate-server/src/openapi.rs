//! The OpenAPI 3.1 document of the HTTP API, `GET /api/v1/openapi.json`.
//!
//! Generated with `utoipa` from the handlers' `#[utoipa::path]` attributes and the wire
//! types of `keygate-client` (their `openapi` feature), written once per process (by
//! the first app built) and served as the same bytes from then on. The error answers
//! are components built from the error table itself: the auth rows from
//! [`AuthError::body`], the server's own rows from [`ERRORS`]. Every authenticated operation answers the errors
//! any request through the auth layer can meet (400, 401, 403, 429, 500, 503, 504),
//! added here so that no handler has to list them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use keygate_http::AuthError;
use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

use keygate_client::IssuedKey;

use crate::error::ServerError;

/// The path the document is served at.
pub(crate) const PATH: &str = "/api/v1/openapi.json";

/// How long a client or proxy may keep the document: it changes only with the server.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The name of the bearer security scheme (as `security(..)` above spells it).
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keygate",
        description = "The HTTP API of a keygate server (keygated): token introspection, \
            the owner admin API for keys and projects, the audit log, and the approvals a \
            person decides an agent's gated calls with. Every operation but this document \
            takes `Authorization: Bearer <key>`; refusals are the JSON bodies of the error \
            table, exactly."
    ),
    paths(
        crate::admin::token,
        crate::admin::list_scopes,
        crate::admin::create_key,
        crate::admin::list_keys,
        crate::admin::get_key,
        crate::admin::revoke_key,
        crate::admin::rotate_key,
        crate::admin::create_project,
        crate::admin::list_projects,
        crate::admin::list_audit,
        crate::approvals::list,
        crate::approvals::get,
        crate::approvals::approve,
        crate::approvals::deny,
        crate::forward_auth::verify,
        crate::leaks::report,
        openapi_json,
    ),
    // The schema of the KeyIssued response, which refers to it by name.
    components(schemas(IssuedKey)),
    modifiers(&Contract),
    security(("bearer" = [])),
    tags(
        (name = "introspection", description = "What the presented key is and may do."),
        (name = "keys", description = "The tenant's keys (an owner's user key with `keys:admin`)."),
        (name = "projects", description = "The tenant's projects (an owner's user key with `keys:admin`)."),
        (name = "audit", description = "The tenant's audit log (an owner's user key with `keys:admin`)."),
        (name = "approvals", description = "Gated agent calls a person approves or denies (a user key with `gates:approve`)."),
        (name = "forward-auth", description = "Key checks for a proxy in front of any HTTP service."),
        (name = "leaks", description = "Leaked-key reports from GitHub secret scanning."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// The document as served: its JSON, written once per process.
#[derive(Debug, Clone)]
pub(crate) struct Document(Bytes);

/// The document's JSON, once written (the same for every app of the process).
static WRITTEN: OnceLock<Bytes> = OnceLock::new();

impl Document {
    /// The document: written by the first app built in the process, shared by the rest.
    pub(crate) fn build() -> Result<Self, ServerError> {
        if let Some(json) = WRITTEN.get() {
            return Ok(Self(json.clone()));
        }
        let json = ApiDoc::openapi()
            .to_json()
            .map_err(|e| ServerError::Config(format!("cannot write the OpenAPI document: {e}")))?;
        Ok(Self(WRITTEN.get_or_init(|| Bytes::from(json)).clone()))
    }

    /// The route serving it: the same bytes to every request.
    pub(crate) fn route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let doc = self.clone();
        get(move || std::future::ready(openapi_json(&doc)))
    }

    /// The document's JSON.
    #[cfg(test)]
    pub(crate) fn json(&self) -> &[u8] {
        &self.0
    }
}

/// This OpenAPI document (no key needed: it is the same for every tenant and holds
/// nothing of theirs).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.",
            content_type = "application/json", body = Object,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = 403, response = ForbiddenOrigin),
    )
)]
pub(crate) fn openapi_json(doc: &Document) -> Response {
    let mut resp = Response::new(Body::from(doc.0.clone()));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    resp
}

/// The `{id}` of the `/api/v1/keys/{id}` operations.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "a description of the path for the document, never built"
)]
pub(crate) struct KeyPath {
    /// The key's public id.
    id: keygate_keys::KeyId,
}

/// The `{id}` of the `/api/v1/approvals/{id}` operations.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "a description of the path for the document, never built"
)]
pub(crate) struct ApprovalPath {
    /// The approval's id, as in its URL `/approvals/<id>`.
    id: String,
}

/// 201 with a new key (create, rotate): its raw token is in this answer only, which no
/// cache keeps; the stateful links lead to the operations on the new key.
pub(crate) struct KeyIssued;

impl<'r> ToResponse<'r> for KeyIssued {
    fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
        let mut response = ResponseBuilder::new()
            .description("The new key, with its raw token: shown this once.")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("IssuedKey")))
                    .build(),
            )
            .header(
                "Cache-Control",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::String))
                            .enum_values(Some(["no-store"])),
                    ))
                    .description(Some("`no-store`: no cache keeps the raw key."))
                    .build(),
            );
        for (name, operation) in [
            ("GetKey", "get_key"),
            ("RevokeKey", "revoke_key"),
            ("RotateKey", "rotate_key"),
        ] {
            response = response.link(
                name,
                LinkBuilder::new()
                    .operation_id(operation)
                    .parameter("id", "$response.body#/id")
                    .build(),
            );
        }
        ("KeyIssued", response.build().into())
    }
}

/// Whether an error body carries a `message` a person can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// Never.
    No,
    /// Sometimes (a malformed header has none, a malformed body has one).
    Optional,
    /// Always.
    Yes,
}

/// The server's own rows of the error table (the auth rows are [`AuthError`]'s):
/// status, `error` code, and whether a `message` comes with it.
const ERRORS: &[(StatusCode, &str, Message)] = &[
    (
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Message::Optional,
    ),
    (StatusCode::UNAUTHORIZED, "invalid_signature", Message::Yes),
    (StatusCode::FORBIDDEN, "forbidden_origin", Message::No),
    (StatusCode::NOT_FOUND, "not_found", Message::No),
    (StatusCode::CONFLICT, "conflict", Message::Yes),
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        Message::Yes,
    ),
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        "target_mismatch",
        Message::No,
    ),
    (StatusCode::INTERNAL_SERVER_ERROR, "internal", Message::No),
    (StatusCode::GATEWAY_TIMEOUT, "timeout", Message::No),
];

/// Every refusal of the auth layer, each with its fixed body.
fn auth_errors() -> [AuthError; 9] {
    [
        AuthError::MissingToken,
        AuthError::InvalidRequest,
        AuthError::KeyNotFound,
        AuthError::KeyRevoked,
        AuthError::Expired,
        AuthError::InsufficientScope,
        AuthError::RateLimited {
            retry_after_secs: 1,
        },
        AuthError::Unavailable,
        AuthError::UsageExceeded {
            retry_after_secs: Some(1),
        },
    ]
}

/// One body of the error table: its fields' fixed values, and its `message`.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    status: StatusCode,
    fixed: BTreeMap<String, Value>,
    message: Message,
}

/// Every row of the error table.
fn rows() -> Vec<Row> {
    let mut rows: Vec<Row> = ERRORS
        .iter()
        .map(|&(status, error, message)| Row {
            status,
            fixed: BTreeMap::from([("error".to_owned(), json!(error))]),
            message,
        })
        .collect();
    for e in auth_errors() {
        let fixed: BTreeMap<String, Value> = serde_json::from_slice(e.body()).unwrap_or_default();
        // `invalid_request` is the server's row too, where it may carry a message.
        if !rows
            .iter()
            .any(|r| r.status == e.status() && r.fixed == fixed)
        {
            rows.push(Row {
                status: e.status(),
                fixed,
                message: Message::No,
            });
        }
    }
    rows
}

/// The schema of one row: exactly its fields, each fixed but `message`.
fn row_schema(row: &Row) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (field, value) in &row.fixed {
        object = object
            .property(
                field,
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some([value.clone()])),
            )
            .required(field);
    }
    if row.message != Message::No {
        object = object.property(
            "message",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .description(Some("What was wrong with the request.")),
        );
        if row.message == Message::Yes {
            object = object.required("message");
        }
    }
    object
}

/// The schema of a body any of `rows` may have.
fn body_schema(rows: &[&Row]) -> RefOr<Schema> {
    match rows {
        [one] => row_schema(one).into(),
        many => many
            .iter()
            .fold(OneOfBuilder::new(), |one_of, row| {
                one_of.item(row_schema(row))
            })
            .into(),
    }
}

macro_rules! answers {
    ($($(#[$doc:meta])* $name:ident: $status:ident $(only $($code:literal)|+)? $(, header $header:literal = $desc:literal)*;)*) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                    let only: &[&str] = &[$($($code),+)?];
                    let headers: &[(&str, &str)] = &[$(($header, $desc)),*];
                    (stringify!($name), answer(StatusCode::$status, only, headers).into())
                }
            }
        )*

        /// Every error answer, as the components of the document.
        fn answers() -> Vec<(&'static str, RefOr<utoipa::openapi::Response>)> {
            vec![$(<$name as ToResponse<'static>>::response()),*]
        }
    };
}

answers! {
    /// 400: a malformed `Authorization` header, or a body or query the operation does
    /// not take (with a `message`).
    BadRequest: BAD_REQUEST;
    /// 401: no key, an unknown or malformed one, a revoked or an expired one.
    Unauthorized: UNAUTHORIZED only "missing_token" | "invalid_token" | "expired",
        header "WWW-Authenticate" = "An RFC 6750 Bearer challenge.";
    /// 401 for a leak report: its signature is not verified.
    InvalidSignature: UNAUTHORIZED only "invalid_signature";
    /// 403: the key may not do this, its usage limit is spent, or the request's
    /// `Origin` is not allowed.
    Forbidden: FORBIDDEN,
        header "Retry-After" = "With `usage_exceeded`: whole seconds until the key's refill, when it has one.";
    /// 403 from the origin guard alone (an operation that takes no key).
    ForbiddenOrigin: FORBIDDEN only "forbidden_origin";
    /// 404: absent, or another tenant's.
    NotFound: NOT_FOUND;
    /// 409: the name exists, or the approval is no longer pending.
    Conflict: CONFLICT;
    /// 413: the body is larger than the operation takes.
    PayloadTooLarge: PAYLOAD_TOO_LARGE;
    /// 422: the typed name is not the approval's target.
    TargetMismatch: UNPROCESSABLE_ENTITY;
    /// 429: the key's, the tenant's or the client address's rate is spent.
    RateLimited: TOO_MANY_REQUESTS, header "Retry-After" = "Whole seconds to wait, at least 1.";
    /// 500: see the server's logs.
    Internal: INTERNAL_SERVER_ERROR;
    /// 503: the key store cannot answer; try again shortly.
    Unavailable: SERVICE_UNAVAILABLE, header "Retry-After" = "Whole seconds to wait, at least 1.";
    /// 504: the request took longer than the server's request timeout.
    Timeout: GATEWAY_TIMEOUT;
}

/// The response of the error table's rows with `status` (those whose `error` is in
/// `only`, unless it is empty).
fn answer(
    status: StatusCode,
    only: &[&str],
    headers: &[(&str, &str)],
) -> utoipa::openapi::Response {
    let all = rows();
    let rows: Vec<&Row> = all
        .iter()
        .filter(|r| r.status == status)
        .filter(|r| {
            only.is_empty()
                || only
                    .iter()
                    .any(|code| r.fixed.get("error") == Some(&json!(code)))
        })
        .collect();
    let mut codes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.fixed.get("error").and_then(Value::as_str))
        .map(|c| format!("`{c}`"))
        .collect();
    codes.dedup();
    let description = format!(
        "{} {}: {}.",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        codes.join(", ")
    );
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(body_schema(&rows)))
            .build(),
    );
    for (name, desc) in headers {
        let schema = if *name == "Retry-After" {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1))
        } else {
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
        };
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(Some(schema))
                .description(Some(*desc))
                .build(),
        );
    }
    response.build()
}

/// The errors every operation behind the auth layer can answer, by status.
const AUTHENTICATED: &[(&str, &str)] = &[
    ("400", "BadRequest"),
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("429", "RateLimited"),
    ("500", "Internal"),
    ("503", "Unavailable"),
    ("504", "Timeout"),
];

/// What the generator cannot see: the bearer scheme, the error answers, and the errors
/// every authenticated operation shares.
struct Contract;

impl Modify for Contract {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("keygate key")
                    .description(Some(
                        "A keygate key, `<brand>_<uk|tk>_` and 48 base62 characters, as \
                         `Authorization: Bearer <key>`.",
                    ))
                    .build(),
            ),
        );
        for (name, response) in answers() {
            components.responses.insert(name.to_owned(), response);
        }
        let (name, issued) = <KeyIssued as ToResponse<'static>>::response();
        components.responses.insert(name.to_owned(), issued);
        for item in doc.paths.paths.values_mut() {
            // One handler for several methods (forward-auth) has one id: one per method.
            let several = operations(item).count() > 1
                && operations(item)
                    .map(|(_, op)| op.operation_id.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    == 1;
            for (method, op) in operations(item) {
                if several && let Some(id) = &mut op.operation_id {
                    *id = format!("{id}_{method}");
                }
                // `security(())` (this document, leak reports) takes no key: no auth errors.
                if op.security.is_some() {
                    continue;
                }
                for (status, name) in AUTHENTICATED {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| Ref::from_response_name(*name).into());
                }
            }
        }
    }
}

/// The operations of a path item, with their methods.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

#[cfg(test)]
mod tests;
