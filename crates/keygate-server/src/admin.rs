//! The owner admin API (keys, projects, audit log of the caller's tenant), token
//! introspection and the scope catalogue.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use keygate_client::{
    AuditList, CreateKey, CreateProject, ExpiresIn, IssuedKey, KeyInfo, KeyList, ProjectInfo,
    ProjectList, ScopeInfo, ScopeList, TokenInfo, TokenUser,
};
use keygate_keys::{
    ApiKey, CreatedKey, KeyChange, KeyId, KeyKind, NewKey, Principal, Project, ProjectRef, Refill,
    RefillInterval,
};
use keygate_scopes::ADMIN_SCOPE;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::openapi::{BadRequest, Conflict, KeyIssued, KeyPath, NotFound, PayloadTooLarge};
use crate::state::AppState;

/// Longest key or project name accepted, in characters.
const MAX_NAME: usize = keygate_client::MAX_NAME_CHARS;
/// Most audit events one listing returns.
pub(crate) const MAX_AUDIT: usize = 1000;
/// Longest lifetime a key may be given, by `expires_at` or `expires_in`: ten years.
const MAX_LIFETIME: time::Duration =
    time::Duration::seconds(keygate_client::MAX_KEY_LIFETIME_SECS as i64);
/// The one answer to an expiry beyond [`MAX_LIFETIME`], whichever field gave it.
const TOO_FAR: &str = "a key expires at most ten years from now (expires_at or expires_in); \
     leave both out for a key that never expires";

/// Refuses anyone but an owner's user key holding `keys:admin`.
fn require_owner(p: &Principal) -> Result<(), ApiError> {
    if p.kind == KeyKind::User && p.is_owner() && p.has_scope(ADMIN_SCOPE) {
        Ok(())
    } else {
        Err(ApiError::InsufficientScope)
    }
}

/// The calling principal, extracted only for an owner ([`require_owner`]): anyone
/// else is refused 403 before the path or the body is read.
pub(crate) struct Owner(Principal);

impl<S: Send + Sync> FromRequestParts<S> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Extension(principal) = Extension::<Principal>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Internal)?;
        require_owner(&principal)?;
        Ok(Self(principal))
    }
}

/// The id of the path (a key id, an approval id): one that does not parse, or a segment
/// that is not even UTF-8 (`%ff`), is as absent as an unknown one: 404 JSON, not the
/// framework's plain-text 400.
pub(crate) struct IdPath<T>(pub(crate) T);

impl<S: Send + Sync, T: std::str::FromStr> FromRequestParts<S> for IdPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        id.parse().map(Self).map_err(|_| ApiError::NotFound)
    }
}

fn actor(p: &Principal) -> String {
    format!("key:{}", p.key_id)
}

/// The JSON form of a key: never a hash, never the raw token.
fn key_info(k: ApiKey) -> KeyInfo {
    let status = k.status(OffsetDateTime::now_utc());
    KeyInfo {
        id: k.id,
        name: k.name,
        kind: k.kind,
        user_id: k.user_id,
        prefix: k.prefix,
        scopes: k.scopes,
        projects: k.projects,
        created_at: Some(k.created_at),
        expires_at: k.expires_at,
        revoked_at: k.revoked_at,
        revoked_reason: k.revoked_reason,
        last_used_at: k.last_used_at,
        status: Some(status),
        remaining: k.remaining,
        refill: k.refill,
    }
}

/// The usage limit of a create request: `remaining` above zero, and a refill (which
/// needs `remaining`) with a known interval and an amount above zero.
fn usage(body: &CreateKey) -> Result<(Option<u64>, Option<Refill>), ApiError> {
    let count = |n: i64, what: &str| {
        u64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::invalid(format!("{what} must be a whole number above zero")))
    };
    let remaining = body.remaining.map(|n| count(n, "remaining")).transpose()?;
    let Some(refill) = &body.refill else {
        return Ok((remaining, None));
    };
    if remaining.is_none() {
        return Err(ApiError::invalid(
            "refill needs remaining: only a usage-limited key is refilled",
        ));
    }
    let interval = refill
        .interval
        .parse::<RefillInterval>()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let amount = count(refill.amount, "refill.amount")?;
    Ok((remaining, Some(Refill::new(interval, amount))))
}

/// An answer written through `serde_json::Value`, whose objects keep their keys in
/// sorted order: the bytes these answers have always had.
fn sorted(body: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize an answer");
        ApiError::Internal
    })
}

/// The 201 answer carrying a raw key: `Cache-Control: no-store`, so that no cache, proxy
/// or browser history keeps the only copy of the secret it shows.
fn reveal(created: CreatedKey, replaces: Option<&KeyId>) -> Result<Response, ApiError> {
    let body = created_view(created, replaces)?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response())
}

/// A created key with its raw token: this response is the only place it is shown.
fn created_view(created: CreatedKey, replaces: Option<&KeyId>) -> Result<Value, ApiError> {
    sorted(&IssuedKey {
        info: key_info(created.key),
        key: created.token,
        replaces: replaces.cloned(),
    })
}

fn project_info(p: Project) -> ProjectInfo {
    ProjectInfo {
        id: p.id,
        name: p.name,
        created_at: p.created_at,
    }
}

/// A lifetime in seconds: whole seconds, or a string such as `45s`, `90m`, `12h`, `30d`.
fn seconds(expires_in: &ExpiresIn) -> Result<u64, ApiError> {
    let text = match expires_in {
        ExpiresIn::Seconds(s) => return Ok(*s),
        ExpiresIn::Text(t) => t.as_str(),
        // A form this server does not read yet.
        _ => return Err(ApiError::invalid("expires_in is not a duration")),
    };
    keygate_client::parse_seconds(text).map_err(|_| {
        ApiError::invalid(format!(
            "expires_in {text:?} is not a duration: give seconds (3600) or a number with s, m, h or d (\"45s\", \"90m\", \"12h\", \"30d\")"
        ))
    })
}

fn validate_name(what: &str, name: &str) -> Result<String, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(format!("{what} name must not be empty")));
    }
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(format!(
            "{what} name is longer than {MAX_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{what} name must not contain control characters"
        )));
    }
    // The store refuses these too; answering here names the field.
    keygate_keys::check_name_characters(name)
        .map_err(|e| ApiError::invalid(format!("{what} name {e}")))?;
    Ok(name.trim().to_owned())
}

fn expiry(body: &CreateKey, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, ApiError> {
    let at = match (&body.expires_at, &body.expires_in) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give expires_at or expires_in, not both"));
        }
        (Some(text), None) => Some(OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            ApiError::invalid(format!(
                "expires_at {text:?} is not an RFC 3339 time such as 2030-01-31T12:00:00Z"
            ))
        })?),
        (None, Some(inn)) => {
            let secs = seconds(inn)?;
            if secs == 0 {
                return Err(ApiError::invalid("expires_in must be at least 1 second"));
            }
            let lifetime = i64::try_from(secs)
                .ok()
                .map(time::Duration::seconds)
                .filter(|d| *d <= MAX_LIFETIME)
                .ok_or_else(|| ApiError::invalid(TOO_FAR))?;
            Some(now + lifetime)
        }
        (None, None) => None,
    };
    if at.is_some_and(|at| at <= now) {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    if at.is_some_and(|at| at - now > MAX_LIFETIME) {
        return Err(ApiError::invalid(TOO_FAR));
    }
    Ok(at)
}

/// Create a key (owner only). The answer is the one place the raw key is shown.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, response = KeyIssued),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    Owner(principal): Owner,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::from_json(&e))?;
    let name = validate_name("key", &body.name)?;
    for scope in &body.scopes {
        if state.policy.scope(scope).is_none() {
            return Err(ApiError::invalid(format!(
                "unknown scope `{scope}`; GET /api/v1/scopes lists them"
            )));
        }
    }
    let now = OffsetDateTime::now_utc();
    let expires_at = expiry(&body, now)?;
    let (remaining, refill) = usage(&body)?;
    if let Some(wanted) = &body.projects {
        let existing = state.store.list_projects(&principal.tenant.id).await?;
        if let Some(missing) = wanted
            .iter()
            .find(|w| !existing.iter().any(|p| &p.name == *w))
        {
            return Err(ApiError::invalid(format!(
                "unknown project `{missing}`; GET /api/v1/projects lists them"
            )));
        }
    }
    let user_id = match body.kind {
        KeyKind::User => principal.user.as_ref().map(|u| u.id.clone()),
        KeyKind::Tenant => None,
    };
    let request = NewKey {
        tenant_id: principal.tenant.id.clone(),
        kind: body.kind,
        user_id,
        name,
        scopes: body.scopes,
        projects: body.projects,
        expires_at,
        remaining,
        refill,
    };
    let created = state
        .store
        .create_key(&state.format, request, &actor(&principal))
        .await?;
    tracing::info!(key_id = %created.key.id, kind = %created.key.kind, by = %principal.key_id, "key created");
    reveal(created, None)
}

/// The tenant's keys (owner only): never a hash, never a raw key.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    responses((status = 200, description = "The tenant's keys.", body = KeyList))
)]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    Owner(principal): Owner,
) -> Result<Json<Value>, ApiError> {
    let keys = state.store.list_keys(&principal.tenant.id).await?;
    let keys = keys.into_iter().map(key_info).collect();
    Ok(Json(sorted(&KeyList { keys })?))
}

/// One key of the tenant (owner only).
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(KeyPath),
    responses(
        (status = 200, description = "The key.", body = KeyInfo),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get_key(
    State(state): State<AppState>,
    Owner(principal): Owner,
    IdPath(id): IdPath<KeyId>,
) -> Result<Json<KeyInfo>, ApiError> {
    let key = state.store.get_key(&principal.tenant.id, &id).await?;
    Ok(Json(key_info(key)))
}

/// Revoke a key of the tenant (owner only; idempotent): refused from the very next
/// request on.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/revoke",
    tag = "keys",
    params(KeyPath),
    responses(
        (status = 200, description = "The revoked key.", body = KeyInfo),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Owner(principal): Owner,
    IdPath(id): IdPath<KeyId>,
) -> Result<Json<KeyInfo>, ApiError> {
    let key = state
        .store
        .revoke_key(&principal.tenant.id, &id, &actor(&principal))
        .await?;
    tracing::info!(key_id = %key.id, by = %principal.key_id, "key revoked");
    Ok(Json(key_info(key)))
}

/// Rotate a key (owner only): a new key with the same kind, scopes and projects; the
/// old one stays active until revoked. A revoked or expired key cannot be rotated (409).
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/rotate",
    tag = "keys",
    params(KeyPath),
    responses(
        (status = 201, response = KeyIssued),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Owner(principal): Owner,
    IdPath(old): IdPath<KeyId>,
) -> Result<Response, ApiError> {
    let created = state
        .store
        .rotate_key(
            &state.format,
            KeyChange {
                tenant: &principal.tenant.id,
                id: &old,
                actor: &actor(&principal),
            },
        )
        .await
        .map_err(|e| match e {
            // A rotation sends nothing but the id: what the store refuses is the key's
            // state (revoked, expired), a conflict rather than a malformed request.
            keygate_keys::StoreError::Invalid(message) => ApiError::Conflict(message),
            e => e.into(),
        })?;
    tracing::info!(old_key_id = %old, key_id = %created.key.id, by = %principal.key_id, "key rotated");
    reveal(created, Some(&old))
}

/// Create a project of the tenant (owner only).
#[utoipa::path(
    post,
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "The project.", body = ProjectInfo),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
    )
)]
pub(crate) async fn create_project(
    State(state): State<AppState>,
    Owner(principal): Owner,
    body: Result<Json<CreateProject>, JsonRejection>,
) -> Result<(StatusCode, Json<ProjectInfo>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::from_json(&e))?;
    let name = validate_name("project", &body.name)?;
    let project = state
        .store
        .create_project(&principal.tenant.id, &name)
        .await?;
    Ok((StatusCode::CREATED, Json(project_info(project))))
}

/// The tenant's projects (owner only).
#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    responses((status = 200, description = "The tenant's projects.", body = ProjectList))
)]
pub(crate) async fn list_projects(
    State(state): State<AppState>,
    Owner(principal): Owner,
) -> Result<Json<Value>, ApiError> {
    let projects = state.store.list_projects(&principal.tenant.id).await?;
    let projects = projects.into_iter().map(project_info).collect();
    Ok(Json(sorted(&ProjectList { projects })?))
}

/// `GET /api/v1/audit?limit=N` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    limit: Option<usize>,
}

/// The newest events of the tenant's audit log, newest first (owner only).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
        description = "How many events, 1 to 1000 (default 100).")),
    responses(
        (status = 200, description = "The events.", body = AuditList),
        (status = 400, response = BadRequest),
    )
)]
pub(crate) async fn list_audit(
    State(state): State<AppState>,
    Owner(principal): Owner,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "limit must be a whole number from 1 to {MAX_AUDIT}"
        ))
    };
    let Query(q) = query.map_err(|_| bad())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT).contains(&limit) {
        return Err(bad());
    }
    let events = state.store.list_audit(&principal.tenant.id, limit).await?;
    Ok(Json(sorted(&AuditList { events })?))
}

/// `GET /api/v1/scopes`: the scope catalogue, for any valid key.
#[utoipa::path(
    get,
    path = "/api/v1/scopes",
    tag = "introspection",
    responses((status = 200, description = "The scopes of the policy.", body = ScopeList))
)]
pub(crate) async fn list_scopes(
    State(state): State<AppState>,
    Extension(_principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let scopes = state
        .policy
        .scopes()
        .map(|(name, description)| ScopeInfo {
            name: name.to_owned(),
            description: description.to_owned(),
        })
        .collect();
    Ok(Json(sorted(&ScopeList { scopes })?))
}

/// `GET /api/v1/token`: what the presented key is and what it reaches. `projects` is
/// resolved: an unrestricted key lists every project of its tenant.
#[utoipa::path(
    get,
    path = "/api/v1/token",
    operation_id = "introspect",
    tag = "introspection",
    responses((status = 200, description = "The presented key.", body = TokenInfo))
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let projects: Vec<ProjectRef> = match &principal.projects {
        Some(list) => list.clone(),
        None => state
            .store
            .list_projects(&principal.tenant.id)
            .await?
            .into_iter()
            .map(|p| ProjectRef {
                id: p.id,
                name: p.name,
            })
            .collect(),
    };
    Ok(Json(sorted(&TokenInfo {
        id: principal.key_id.to_string(),
        kind: principal.kind,
        tenant: principal.tenant.clone(),
        user: principal.user.as_ref().map(|u| TokenUser {
            id: u.id.clone(),
            name: u.name.clone(),
        }),
        scopes: principal.scopes.iter().cloned().collect(),
        projects,
        read_only: state.policy.read_only(&principal),
        expires_at: principal.expires_at,
    })?))
}
