//! The records a key store keeps, and what a verified key is.

use std::collections::BTreeSet;
use std::fmt;

use keygate_token::{KeyId, KeyKind, RandomError, Token, random_base62};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id: the type's prefix and 16 base62 characters.
            ///
            /// # Errors
            ///
            /// Fails only when the operating system cannot provide randomness.
            pub fn random() -> Result<Self, RandomError> {
                Ok(Self(format!(concat!($prefix, "{}"), random_base62(16)?)))
            }

            /// Wraps an id read back from storage or from a request.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// The id of a tenant, such as `tn_…`.
    TenantId,
    "tn_"
);
id_type!(
    /// The id of a user, such as `us_…`.
    UserId,
    "us_"
);
id_type!(
    /// The id of a project, such as `pj_…`.
    ProjectId,
    "pj_"
);

/// A tenant: the unit of isolation. Tenants never see each other's anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The role of a user within its tenant.
#[allow(
    clippy::exhaustive_enums,
    reason = "roles are a closed set of the data model; a new role is a migration"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May administer keys and projects (with a key holding `keys:admin`).
    Owner,
    /// An ordinary member.
    Member,
}

impl Role {
    /// `owner` or `member`, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    /// Parses `owner` or `member`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its name, unique within the tenant.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A project of a tenant. Keys may be restricted to some projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its name, unique within the tenant.
    pub name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A tenant as a verified key sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantRef {
    /// Its id.
    pub id: TenantId,
    /// Its name.
    pub name: String,
}

/// A user as a verified key sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// Its id.
    pub id: UserId,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A project as a key record or a verified key sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectRef {
    /// Its id.
    pub id: ProjectId,
    /// Its name.
    pub name: String,
}

/// Whether a key can be used now.
#[allow(
    clippy::exhaustive_enums,
    reason = "a key is active, expired or revoked; nothing else is meaningful"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked (wins over expired).
    Revoked,
}

impl KeyStatus {
    /// The word for it, as the API writes it: `active`, `expired` or `revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// An API key as stored, without its hash. Safe to show to its tenant's owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public id (part of the token; not secret).
    pub id: KeyId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// User key or tenant key. This, not the token prefix, is the truth.
    pub kind: KeyKind,
    /// The issuing user, for user keys.
    pub user_id: Option<UserId>,
    /// A name chosen by its creator.
    pub name: String,
    /// The token prefix, such as `kg_uk_`.
    pub prefix: String,
    /// Scopes, fixed at creation, sorted and unique.
    pub scopes: Vec<String>,
    /// Projects it may touch; `None` means every project of the tenant.
    pub projects: Option<Vec<ProjectRef>>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked, when not simply on request ([`RevokeReason::as_str`], such
    /// as `leaked`); `None` for a key revoked by an owner, or not revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// When it was last used (coalesced: accurate to about a minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// Whether the key is active, expired or revoked at `now`. Revoked wins.
    pub fn status(&self, now: OffsetDateTime) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }
}

/// Why a key is revoked, when it is not simply on an owner's request: recorded on the
/// key ([`ApiKey::revoked_reason`]) and in the detail of its `key.revoked` audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeReason {
    /// The token was found published, as a leak report (GitHub secret scanning) said.
    Leaked {
        /// Where it was found, as the report gave it (may be empty).
        url: String,
    },
}

impl RevokeReason {
    /// The reason as stored: `leaked`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Leaked { .. } => "leaked",
        }
    }

    /// The detail of the `key.revoked` audit event: `{"reason", "url"}`.
    pub fn audit_detail(&self) -> serde_json::Value {
        match self {
            Self::Leaked { url } => serde_json::json!({ "reason": self.as_str(), "url": url }),
        }
    }
}

/// The detail of a `key.revoked` audit event for `reason` (`{}` on request).
pub(crate) fn revoked_detail(reason: Option<&RevokeReason>) -> serde_json::Value {
    reason.map_or_else(|| serde_json::json!({}), RevokeReason::audit_detail)
}

/// A request to create a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The tenant the key belongs to.
    pub tenant_id: TenantId,
    /// User key or tenant key.
    pub kind: KeyKind,
    /// The issuing user: required for user keys, absent for tenant keys.
    pub user_id: Option<UserId>,
    /// A name for people to recognise it by.
    pub name: String,
    /// Scopes (deduplicated and sorted by the store).
    pub scopes: Vec<String>,
    /// Project names it may touch (each must exist in the tenant); `None` = all.
    pub projects: Option<Vec<String>>,
    /// When it stops working, if ever. Must be in the future.
    pub expires_at: Option<OffsetDateTime>,
}

/// A key just created: its record and its raw token, which exists only here.
///
/// Show [`CreatedKey::token`] to its owner once; it is never stored or logged.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored record.
    pub key: ApiKey,
    /// The raw token (its `Debug` is redacted).
    pub token: Token,
}

/// A request to set up a tenant in one step (atomic: all of it or none of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The new tenant's name; refused if it exists.
    pub tenant: String,
    /// The owner's name.
    pub owner: String,
    /// Projects to create.
    pub projects: Vec<String>,
    /// Scopes of the owner's key.
    pub scopes: Vec<String>,
    /// The owner key's name.
    pub key_name: String,
}

impl Bootstrap {
    /// Tenant `tenant` with `projects`, its owner `owner`, and the owner's key named
    /// `key_name` holding `scopes`.
    pub fn new(
        tenant: impl Into<String>,
        owner: impl Into<String>,
        projects: &[&str],
        scopes: Vec<String>,
        key_name: impl Into<String>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            owner: owner.into(),
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            scopes,
            key_name: key_name.into(),
        }
    }
}

/// What [`Bootstrap`] created.
#[derive(Debug)]
pub struct Bootstrapped {
    /// The tenant.
    pub tenant: Tenant,
    /// Its owner.
    pub owner: User,
    /// Its projects.
    pub projects: Vec<Project>,
    /// The owner's user key (raw token inside: show once).
    pub key: CreatedKey,
}

/// What a verified key is: the identity every later decision is made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id.
    pub key_id: KeyId,
    /// The key's tenant.
    pub tenant: TenantRef,
    /// User key or tenant key (from storage, not from the token prefix).
    pub kind: KeyKind,
    /// The issuing user, for user keys.
    pub user: Option<UserRef>,
    /// The key's scopes.
    pub scopes: BTreeSet<String>,
    /// Projects the key may touch; `None` means every project of the tenant.
    pub projects: Option<Vec<ProjectRef>>,
    /// When the key stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
}

impl Principal {
    /// Whether the key holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the key may touch the project named (or with the id) `project`.
    ///
    /// For an unrestricted key this is `true` for **any** name, including a project of
    /// another tenant or none at all: only the store knows the tenant's projects.
    #[deprecated(
        since = "0.1.0",
        note = "true for any name when the key is unrestricted; use `Policy::authorize` \
                (keygate-scopes), or `restricted_project` and `KeyStore::find_project`"
    )]
    pub fn allows_project(&self, project: &str) -> bool {
        match &self.projects {
            None => true,
            Some(_) => self.restricted_project(project).is_some(),
        }
    }

    /// One of a restricted key's own projects, by id or by name (an id wins over a
    /// name, as in [`KeyStore::find_project`](crate::KeyStore::find_project)). `None`
    /// when it is not one of them, and always `None` for an unrestricted key, whose
    /// projects only the store can resolve.
    pub fn restricted_project(&self, project: &str) -> Option<&ProjectRef> {
        let list = self.projects.as_ref()?;
        list.iter()
            .find(|p| p.id.as_str() == project)
            .or_else(|| list.iter().find(|p| p.name == project))
    }

    /// Whether this is a user key of a tenant owner.
    pub fn is_owner(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Owner)
    }
}

/// An audit log entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// The tenant it concerns.
    pub tenant_id: TenantId,
    /// Who acted, such as `key:<id>` or `bootstrap`.
    pub actor: String,
    /// What happened, such as `key.created` or `gate.confirmation_required`.
    pub action: String,
    /// What it happened to, such as a key id or `service.delete:worker`.
    pub target: String,
    /// Details as JSON (never secrets).
    pub detail: serde_json::Value,
}

/// An audit log entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// Position in the log, increasing.
    pub id: i64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The tenant it concerns.
    pub tenant_id: TenantId,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub action: String,
    /// What it happened to.
    pub target: String,
    /// Details as JSON.
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_api_words() {
        assert_eq!(KeyStatus::Revoked.as_str(), "revoked");
        assert_eq!(KeyStatus::Expired.as_str(), "expired");
        assert_eq!(KeyStatus::Active.as_str(), "active");
        for status in [KeyStatus::Active, KeyStatus::Expired, KeyStatus::Revoked] {
            let json = serde_json::to_value(status).expect("a status serialises");
            assert_eq!(json, status.as_str(), "as the API writes it");
        }
    }
}
