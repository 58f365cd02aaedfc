//! The approvals API behind the approval page: a person, signed in with their own key
//! (a user key with `gates:approve`), lists the agent calls waiting for them, and
//! approves (typing the target's exact name) or denies one.
//!
//! `GET /api/v1/approvals`, `GET /api/v1/approvals/{id}`,
//! `POST /api/v1/approvals/{id}/approve` `{"target"}` and
//! `POST /api/v1/approvals/{id}/deny`. Unknown, another tenant's, or not the caller's
//! to decide: 404; a tenant key, a key without `gates:approve`, or the calling key
//! itself: 403; not pending: 409; a wrong name: 422 `{"error":"target_mismatch"}`.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use keygate_client::{
    ApprovalInfo, ApprovalKey, ApprovalList, ApprovalPerson, ApprovalState, ApproveBody,
};
use keygate_gates::{Approval, ApprovalError, ApprovalStatus, Approver, Caller, Channel};
use keygate_keys::{KeyKind, NewAuditEvent, Principal};
use keygate_scopes::APPROVE_SCOPE;
use serde_json::json;

use crate::admin::IdPath;
use crate::error::ApiError;
use crate::openapi::{
    ApprovalPath, BadRequest, Conflict, NotFound, PayloadTooLarge, TargetMismatch,
};
use crate::state::AppState;

/// The calling key's owner, as a person approval records it.
pub(crate) fn caller(p: &Principal) -> Caller {
    match (&p.user, p.kind) {
        (Some(user), KeyKind::User) => {
            Caller::user_key(p.tenant.id.as_str(), user.id.as_str(), user.name.as_str())
        }
        _ => Caller::tenant_key(p.tenant.id.as_str()),
    }
}

/// The signed-in key, as the gate judges approvers.
fn approver(p: &Principal) -> Approver {
    match (&p.user, p.kind) {
        (Some(user), KeyKind::User) => Approver::user_key(
            p.key_id.as_str(),
            p.tenant.id.as_str(),
            user.id.as_str(),
            user.name.as_str(),
            p.is_owner(),
            p.has_scope(APPROVE_SCOPE),
        ),
        _ => Approver::tenant_key(p.key_id.as_str(), p.tenant.id.as_str()),
    }
}

/// An approval refusal as an answer.
pub(crate) enum Refusal {
    Api(ApiError),
    TargetMismatch,
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<ApprovalError> for Refusal {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::InsufficientScope => Self::Api(ApiError::InsufficientScope),
            ApprovalError::TargetMismatch => Self::TargetMismatch,
            ApprovalError::NotPending { status } => Self::Api(ApiError::Conflict(format!(
                "the approval is {status}, not pending: nothing was changed"
            ))),
            ApprovalError::Store(e) => {
                tracing::error!(error = %e, "gate state unavailable; answering 503");
                Self::Api(ApiError::Unavailable)
            }
            // Not found, and any refusal this server does not know: the approval is
            // not there for this key.
            _ => Self::Api(ApiError::NotFound),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::TargetMismatch => {
                let mut resp = (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({ "error": "target_mismatch" })),
                )
                    .into_response();
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp
            }
        }
    }
}

/// The JSON form of an approval: the calling key's name is read from the key store.
async fn info(state: &AppState, a: Approval) -> Result<ApprovalInfo, ApiError> {
    let now = state.gates.clock().now();
    let key_name = match a.key_id.parse() {
        Ok(id) => match state
            .store
            .get_key(&keygate_keys::TenantId::new(a.tenant_id.as_str()), &id)
            .await
        {
            Ok(key) => key.name,
            Err(keygate_keys::StoreError::NotFound) => String::new(),
            Err(e) => return Err(e.into()),
        },
        Err(_) => String::new(),
    };
    let status = match a.status_at(now) {
        None => ApprovalState::Expired,
        Some(ApprovalStatus::Pending) => ApprovalState::Pending,
        Some(ApprovalStatus::Approved) => ApprovalState::Approved,
        Some(ApprovalStatus::Denied) => ApprovalState::Denied,
        Some(ApprovalStatus::Used) => ApprovalState::Used,
        // A status this server does not know: not decidable, so shown as over.
        Some(_) => ApprovalState::Expired,
    };
    let user = match (a.user_id, a.user_name) {
        (Some(id), name) => Some(ApprovalPerson {
            id,
            name: name.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    Ok(ApprovalInfo {
        id: a.id,
        status,
        operation: a.tool.clone(),
        tool: a.tool,
        target: a.target,
        arguments: a.arguments.value().clone(),
        key: ApprovalKey {
            id: a.key_id,
            name: key_name,
        },
        user,
        created_at: a.created_at,
        expires_at: a.expires_at,
        decided_by: a.decided_by.map(|d| ApprovalPerson {
            id: d.user_id,
            name: d.name,
        }),
    })
}

/// `GET /api/v1/approvals`: the pending approvals the caller may decide, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    operation_id = "list_approvals",
    tag = "approvals",
    responses((status = 200, description = "The pending approvals.", body = ApprovalList))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<ApprovalList>, Refusal> {
    let pending = state.gates.approvals_for(&approver(&principal)).await?;
    let mut approvals = Vec::with_capacity(pending.len());
    for a in pending {
        approvals.push(info(&state, a).await?);
    }
    Ok(Json(ApprovalList { approvals }))
}

/// `GET /api/v1/approvals/{id}`: one approval the caller may decide.
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    operation_id = "get_approval",
    tag = "approvals",
    params(ApprovalPath),
    responses(
        (status = 200, description = "The approval.", body = ApprovalInfo),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    IdPath(id): IdPath<String>,
) -> Result<Json<ApprovalInfo>, Refusal> {
    let a = state.gates.approval_for(&id, &approver(&principal)).await?;
    Ok(Json(info(&state, a).await?))
}

/// `POST /api/v1/approvals/{id}/approve` `{"target"}`: approve, typing the target's
/// exact name; the agent's identical retry then proceeds once.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/approve",
    operation_id = "approve",
    tag = "approvals",
    params(ApprovalPath),
    request_body = ApproveBody,
    responses(
        (status = 200, description = "The approved approval.", body = ApprovalInfo),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = TargetMismatch),
    )
)]
pub(crate) async fn approve(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    IdPath(id): IdPath<String>,
    body: Result<Json<ApproveBody>, JsonRejection>,
) -> Result<Json<ApprovalInfo>, Refusal> {
    let Json(body) = body.map_err(|e| ApiError::from_json(&e))?;
    let a = state
        .gates
        .approve(&id, &approver(&principal), &body.target)
        .await?;
    decided_on_page(&state, &principal, "gate.approved", a).await
}

/// `POST /api/v1/approvals/{id}/deny`: deny; the agent's call is refused.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/deny",
    operation_id = "deny",
    tag = "approvals",
    params(ApprovalPath),
    responses(
        (status = 200, description = "The denied approval.", body = ApprovalInfo),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
pub(crate) async fn deny(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    IdPath(id): IdPath<String>,
) -> Result<Json<ApprovalInfo>, Refusal> {
    let a = state.gates.deny(&id, &approver(&principal)).await?;
    decided_on_page(&state, &principal, "gate.declined", a).await
}

/// Audits the decision `action` (`gate.approved`, `gate.declined`) a person made on
/// the page, logs it by the approval's new status and answers with the approval.
async fn decided_on_page(
    state: &AppState,
    principal: &Principal,
    action: &str,
    a: Approval,
) -> Result<Json<ApprovalInfo>, Refusal> {
    audit(state, principal, action, &a, Channel::Page).await?;
    let status = a.status.as_str();
    tracing::info!(approval = %a.id, key_id = %a.key_id, by = %principal.key_id, "gated call {status} by a person");
    Ok(Json(info(state, a).await?))
}

/// Appends a person's decision to the audit log: who (user id; `null` with `approver`
/// naming them when no user of ours is known, as for the client's person of a tenant
/// key on the MRTR channel), through which channel, which call (never argument values:
/// their SHA-256). `principal` is the key that made the request deciding it.
pub(crate) async fn audit(
    state: &AppState,
    principal: &Principal,
    action: &str,
    a: &Approval,
    channel: Channel,
) -> Result<(), ApiError> {
    let digest: String = a
        .arguments
        .digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let event = NewAuditEvent {
        tenant_id: principal.tenant.id.clone(),
        actor: format!("key:{}", principal.key_id),
        action: action.to_owned(),
        target: format!("{}:{}", a.tool, a.target),
        detail: json!({
            "approval_id": a.id,
            "channel": channel.as_str(),
            "approver_user_id": a.decided_by.as_ref().map(|d| d.user_id.as_str()).filter(|u| !u.is_empty()),
            "approver": a.decided_by.as_ref().map(|d| d.name.as_str()),
            "key_id": a.key_id,
            "operation": a.tool,
            "target": a.target,
            "arguments_sha256": digest,
        }),
    };
    state.store.append_audit(event).await.map_err(|e| {
        tracing::error!(error = %e, "could not audit a person's decision");
        ApiError::from(e)
    })
}
