//! What every store writes, built and checked once: names, prepared keys (token and
//! hash), project lists, timestamps truncated to what PostgreSQL keeps, audit details.

use std::collections::BTreeSet;

use keygate_token::{KeyId, KeyKind, Token, TokenFormat};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::hash::TokenHash;
use crate::model::{
    ApiKey, NewAuditEvent, NewKey, Project, ProjectId, ProjectRef, Refill, RevokeReason, Role,
    Tenant, TenantId, User, UserId,
};
use crate::name::check_name_characters;
use crate::store::KeyChange;

/// The current time in UTC, truncated to microseconds so that every store (PostgreSQL
/// keeps microseconds) returns exactly what it was given.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// Truncates a timestamp to microseconds, in UTC.
pub(crate) fn truncate(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    let micros = at.microsecond();
    at.replace_microsecond(micros).unwrap_or(at)
}

/// A new tenant named `name` (already checked with [`check_name`]), created now.
pub(crate) fn new_tenant(name: String) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::random()?,
        name,
        created_at: now(),
    })
}

/// A new user of `tenant` named `name` (already checked), created now.
pub(crate) fn new_user(tenant: &TenantId, name: String, role: Role) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::random()?,
        tenant_id: tenant.clone(),
        name,
        role,
        created_at: now(),
    })
}

/// A new project of `tenant` named `name` (already checked), created now.
pub(crate) fn new_project(tenant: &TenantId, name: String) -> Result<Project, StoreError> {
    Ok(Project {
        id: ProjectId::random()?,
        tenant_id: tenant.clone(),
        name,
        created_at: now(),
    })
}

/// A validated key request with its freshly generated token.
#[derive(Debug)]
pub(crate) struct PreparedKey {
    pub(crate) token: Token,
    pub(crate) hash: TokenHash,
    pub(crate) tenant_id: TenantId,
    pub(crate) kind: KeyKind,
    pub(crate) user_id: Option<UserId>,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    /// Project names, unique and sorted; the store resolves them.
    pub(crate) projects: Option<Vec<String>>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: Option<OffsetDateTime>,
    /// Requests left, for a usage-limited key.
    pub(crate) remaining: Option<u64>,
    pub(crate) refill: Option<Refill>,
    /// The refill period of `created_at`, stored with a refill: the first refill is
    /// at the start of the next one.
    pub(crate) refill_period: Option<i64>,
}

impl PreparedKey {
    /// The record to store and return, once the projects are resolved.
    pub(crate) fn record(&self, projects: Option<Vec<ProjectRef>>) -> ApiKey {
        ApiKey {
            id: self.token.id(),
            tenant_id: self.tenant_id.clone(),
            kind: self.kind,
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            prefix: self.token.prefix().to_owned(),
            scopes: self.scopes.clone(),
            projects,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: None,
            revoked_reason: None,
            last_used_at: None,
            remaining: self.remaining,
            refill: self.refill,
        }
    }
}

/// Checks a key request that needs no store access and generates its token.
pub(crate) fn prepare_key(
    format: &TokenFormat,
    request: NewKey,
) -> Result<PreparedKey, StoreError> {
    prepare(format, request, true)
}

/// The replacement of `old`: everything copied but the token. The name is not checked
/// again: it was accepted when `old` was created, and refusing it now would block the
/// rotation of a key created before a character rule existed.
pub(crate) fn prepare_rotation(
    format: &TokenFormat,
    old: &ApiKey,
) -> Result<PreparedKey, StoreError> {
    prepare(format, rotation_of(old)?, false)
}

fn prepare(format: &TokenFormat, request: NewKey, fresh: bool) -> Result<PreparedKey, StoreError> {
    let created_at = now();
    match (request.kind, &request.user_id) {
        (KeyKind::User, None) => {
            return Err(StoreError::Invalid("a user key needs a user".to_owned()));
        }
        (KeyKind::Tenant, Some(_)) => {
            return Err(StoreError::Invalid(
                "a tenant key has no user; create a user key instead".to_owned(),
            ));
        }
        _ => {}
    }
    let name = request.name.trim().to_owned();
    if name.is_empty() {
        return Err(StoreError::Invalid("a key needs a name".to_owned()));
    }
    if fresh {
        check_characters("key", &name)?;
    }
    let expires_at = request.expires_at.map(truncate);
    if expires_at.is_some_and(|at| at <= created_at) {
        return Err(StoreError::Invalid("expires_at is in the past".to_owned()));
    }
    if fresh {
        // A rotation copies a limit that may have run down to zero.
        check_usage(request.remaining, request.refill)?;
    }
    let refill_period = request.refill.map(|r| r.interval.period(created_at));
    let scopes = normalise(request.scopes);
    let projects = request.projects.map(normalise);
    let token = format.generate(request.kind)?;
    let hash = TokenHash::of(token.expose());
    Ok(PreparedKey {
        token,
        hash,
        tenant_id: request.tenant_id,
        kind: request.kind,
        user_id: request.user_id,
        name,
        scopes,
        projects,
        created_at,
        expires_at,
        remaining: request.remaining,
        refill: request.refill,
        refill_period,
    })
}

/// Refuses a usage limit of zero, a refill of zero, and a refill without a limit.
fn check_usage(remaining: Option<u64>, refill: Option<Refill>) -> Result<(), StoreError> {
    // Stored as signed 64-bit integers.
    let too_large = |n: u64| i64::try_from(n).is_err();
    if remaining.is_some_and(too_large) || refill.is_some_and(|r| too_large(r.amount)) {
        return Err(StoreError::Invalid(format!(
            "remaining and a refill's amount are at most {}",
            i64::MAX
        )));
    }
    if remaining == Some(0) {
        return Err(StoreError::Invalid(
            "remaining must be above zero (omit it for a key without a usage limit)".to_owned(),
        ));
    }
    match refill {
        Some(r) if r.amount == 0 => Err(StoreError::Invalid(
            "a refill's amount must be above zero".to_owned(),
        )),
        Some(_) if remaining.is_none() => Err(StoreError::Invalid(
            "a refill needs remaining: only a usage-limited key is refilled".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// The owner key a [`Bootstrap`](crate::Bootstrap) creates: a user key of `owner`, every project, no expiry.
pub(crate) fn bootstrap_key(
    tenant: &TenantId,
    owner: &UserId,
    name: String,
    scopes: Vec<String>,
) -> NewKey {
    NewKey {
        tenant_id: tenant.clone(),
        kind: KeyKind::User,
        user_id: Some(owner.clone()),
        name,
        scopes,
        projects: None,
        expires_at: None,
        remaining: None,
        refill: None,
    }
}

/// A new key request copying everything of `old` but its token: the replacement of a
/// usage-limited key starts with what `old` has left now (a refill that is due
/// counted in) and the same refill, so rotating never resets a budget.
fn rotation_of(old: &ApiKey) -> Result<NewKey, StoreError> {
    if old.revoked_at.is_some() {
        return Err(StoreError::Invalid(
            "a revoked key cannot be rotated; create a new key".to_owned(),
        ));
    }
    if old.expires_at.is_some_and(|at| at <= now()) {
        return Err(StoreError::Invalid(
            "an expired key cannot be rotated; create a new key".to_owned(),
        ));
    }
    Ok(NewKey {
        tenant_id: old.tenant_id.clone(),
        kind: old.kind,
        user_id: old.user_id.clone(),
        name: old.name.clone(),
        scopes: old.scopes.clone(),
        projects: old
            .projects
            .as_ref()
            .map(|list| list.iter().map(|p| p.name.clone()).collect()),
        expires_at: old.expires_at,
        // An exhausted key's replacement is exhausted too, until its refill.
        remaining: old.remaining,
        refill: old.refill,
    })
}

/// Trims, drops empty entries, deduplicates and sorts.
pub(crate) fn normalise(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Refuses a name holding a control or an invisible or bidirectional formatting
/// character.
fn check_characters(what: &'static str, name: &str) -> Result<(), StoreError> {
    check_name_characters(name).map_err(|reason| StoreError::InvalidName { what, reason })
}

/// Checks a tenant, user or project name.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("a {what} needs a name")));
    }
    if name.len() > 200 {
        return Err(StoreError::Invalid(format!(
            "a {what} name is at most 200 bytes"
        )));
    }
    check_characters(what, name)?;
    Ok(name.to_owned())
}

/// The detail of a `key.created` audit event (never a secret).
pub(crate) fn created_detail(key: &ApiKey) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "name": key.name,
        "kind": key.kind.actor(),
        "scopes": key.scopes,
        "projects": key.projects.as_ref().map(|l| l.iter().map(|p| p.name.clone()).collect::<Vec<_>>()),
        "expires_at": key.expires_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
    });
    // Only on usage-limited keys, so other keys' events keep their shape.
    if let (Some(remaining), Some(map)) = (key.remaining, detail.as_object_mut()) {
        map.insert("remaining".to_owned(), remaining.into());
        if let Some(refill) = key.refill {
            map.insert(
                "refill".to_owned(),
                serde_json::json!({ "interval": refill.interval.to_string(), "amount": refill.amount }),
            );
        }
    }
    detail
}

/// Sorts project references by name for display.
pub(crate) fn sort_projects(list: &mut [ProjectRef]) {
    list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
}

/// The project of a new key named `name`, whose id the store `found` in the key's
/// tenant; [`StoreError::Invalid`] when it found none.
pub(crate) fn project_ref(name: &str, found: Option<ProjectId>) -> Result<ProjectRef, StoreError> {
    let id = found.ok_or_else(|| StoreError::Invalid(format!("unknown project `{name}`")))?;
    Ok(ProjectRef {
        id,
        name: name.to_owned(),
    })
}

/// A new key's project names (`None`: unrestricted) resolved with `find`, which looks
/// a name up in the key's tenant; sorted as [`sort_projects`] sorts. The first unknown
/// name is [`StoreError::Invalid`].
pub(crate) fn resolve_projects(
    names: Option<&[String]>,
    mut find: impl FnMut(&str) -> Result<Option<ProjectId>, StoreError>,
) -> Result<Option<Vec<ProjectRef>>, StoreError> {
    let Some(names) = names else {
        return Ok(None);
    };
    let mut refs = Vec::with_capacity(names.len());
    for name in names {
        refs.push(project_ref(name, find(name)?)?);
    }
    sort_projects(&mut refs);
    Ok(Some(refs))
}

/// A new key's user is not a user of the key's tenant.
pub(crate) fn foreign_user() -> StoreError {
    StoreError::Invalid("the key's user does not exist in this tenant".to_owned())
}

/// The `key.revoked` audit event of `change`, with `reason` (if any) in its detail.
pub(crate) fn revoked_event(change: KeyChange<'_>, reason: Option<&RevokeReason>) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: change.tenant.clone(),
        actor: change.actor.to_owned(),
        action: "key.revoked".to_owned(),
        target: change.id.to_string(),
        detail: crate::model::revoked_detail(reason),
    }
}

/// The `key.rotated` audit event of `change`, naming the replacement `new_id`.
pub(crate) fn rotated_event(change: KeyChange<'_>, new_id: KeyId) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: change.tenant.clone(),
        actor: change.actor.to_owned(),
        action: "key.rotated".to_owned(),
        target: change.id.to_string(),
        detail: serde_json::json!({ "new_key_id": new_id.as_str() }),
    }
}

/// A count as stored (`remaining`, a refill's seconds or amount): never negative, which
/// the schema checks; `Err` names what was stored wrong.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stored_count(n: i64) -> Result<u64, &'static str> {
    u64::try_from(n).map_err(|_| "count")
}

/// The refill stored as `refill_seconds` (NULL: monthly) and `refill_amount` (NULL: no
/// refill); `Err` names what was stored wrong.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn stored_refill(
    seconds: Option<i64>,
    amount: Option<i64>,
) -> Result<Option<Refill>, &'static str> {
    let Some(amount) = amount else {
        return Ok(None);
    };
    let seconds = seconds.map(stored_count).transpose()?;
    let interval = crate::model::RefillInterval::from_seconds(seconds).ok_or("refill interval")?;
    Ok(Some(Refill::new(interval, stored_count(amount)?)))
}
