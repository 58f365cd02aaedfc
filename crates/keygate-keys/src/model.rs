//! The records a key store keeps, and what a verified key is.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

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
    /// Verified requests it has left, for a usage-limited key (a refill that is due is
    /// counted in); `None` for a key without a usage limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// How its `remaining` is refilled, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
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
    /// Verified requests it may make: a usage-limited key; `None` = no limit (and no
    /// write on verification). Above zero.
    pub remaining: Option<u64>,
    /// How `remaining` is refilled; needs `remaining`.
    pub refill: Option<Refill>,
}

/// How a usage-limited key's `remaining` is refilled: set back to `amount` at the
/// start of every period of `interval` (not added to what is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refill {
    /// How often: `daily`, `monthly` or a duration such as `6h` (UTC periods).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "daily"))]
    pub interval: RefillInterval,
    /// What `remaining` becomes at each refill. Above zero.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub amount: u64,
}

impl Refill {
    /// A refill to `amount` every `interval`.
    pub const fn new(interval: RefillInterval, amount: u64) -> Self {
        Self { interval, amount }
    }
}

/// The periods a [`Refill`] starts again at, all in UTC: `daily` at each midnight,
/// `monthly` on the first of each month at midnight, a duration `d` at every whole
/// multiple of `d` since the Unix epoch (`6h`: 00:00, 06:00, 12:00, 18:00).
///
/// Written as `daily`, `monthly` or a duration in humantime's grammar (`6h`,
/// `30m`, `1h 30m`): whole seconds, at least one.
///
/// ```
/// use keygate_keys::RefillInterval;
///
/// assert_eq!("daily".parse::<RefillInterval>()?, RefillInterval::Daily);
/// assert_eq!("6h".parse::<RefillInterval>()?.to_string(), "6h");
/// assert!("fortnightly".parse::<RefillInterval>().is_err());
/// assert!("0s".parse::<RefillInterval>().is_err());
/// # Ok::<(), keygate_keys::RefillIntervalError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefillInterval {
    /// Every UTC day.
    Daily,
    /// Every UTC calendar month.
    Monthly,
    /// Every this many seconds, counted from the Unix epoch.
    Every(std::num::NonZeroU64),
}

/// Why a refill interval does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refill interval `{0}`: expected daily, monthly or a duration of whole seconds such as 6h or 30m"
)]
pub struct RefillIntervalError(String);

const DAY_SECS: u64 = 86_400;

impl RefillInterval {
    /// The period index `now` is in: refills happen when it grows. Months count from
    /// year 0, durations from the Unix epoch.
    pub(crate) fn period(self, now: OffsetDateTime) -> i64 {
        let secs = now.unix_timestamp();
        match self {
            Self::Daily => secs.div_euclid(DAY_SECS.cast_signed()),
            Self::Monthly => i64::from(now.year()) * 12 + i64::from(u8::from(now.month())) - 1,
            Self::Every(d) => secs.div_euclid(i64::try_from(d.get()).unwrap_or(i64::MAX)),
        }
    }

    /// The seconds of a fixed-length interval (`daily`: 86400); `None` for `monthly`.
    pub(crate) fn seconds(self) -> Option<u64> {
        match self {
            Self::Daily => Some(DAY_SECS),
            Self::Monthly => None,
            Self::Every(d) => Some(d.get()),
        }
    }

    /// The interval as stored: `seconds`, `None` for `monthly`.
    pub(crate) fn from_seconds(seconds: Option<u64>) -> Option<Self> {
        match seconds {
            None => Some(Self::Monthly),
            Some(DAY_SECS) => Some(Self::Daily),
            Some(s) => std::num::NonZeroU64::new(s).map(Self::Every),
        }
    }

    /// When the period after the one `now` is in starts.
    pub fn next_start(self, now: OffsetDateTime) -> OffsetDateTime {
        let at = |secs: i128| {
            OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
                .unwrap_or(now)
        };
        match self {
            Self::Daily | Self::Every(_) => {
                let len = i128::from(self.seconds().unwrap_or(DAY_SECS));
                at((i128::from(self.period(now)) + 1) * len)
            }
            Self::Monthly => {
                let now = now.to_offset(time::UtcOffset::UTC);
                let (year, month) = match now.month() {
                    time::Month::December => (now.year() + 1, time::Month::January),
                    m => (now.year(), m.next()),
                };
                time::Date::from_calendar_date(year, month, 1)
                    .map_or(now, |d| d.midnight().assume_utc())
            }
        }
    }
}

impl fmt::Display for RefillInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Daily => f.write_str("daily"),
            Self::Monthly => f.write_str("monthly"),
            Self::Every(d) => {
                let shown = humantime::format_duration(std::time::Duration::from_secs(d.get()));
                f.write_str(&shown.to_string().replace(' ', ""))
            }
        }
    }
}

impl std::str::FromStr for RefillInterval {
    type Err = RefillIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let refuse = || RefillIntervalError(text.chars().take(40).collect());
        match text {
            "daily" => return Ok(Self::Daily),
            "monthly" => return Ok(Self::Monthly),
            _ => {}
        }
        let d = humantime::parse_duration(text).map_err(|_| refuse())?;
        if d.subsec_nanos() != 0 {
            return Err(refuse());
        }
        let secs = std::num::NonZeroU64::new(d.as_secs()).ok_or_else(refuse)?;
        Ok(Self::from_seconds(Some(secs.get())).unwrap_or(Self::Every(secs)))
    }
}

impl Serialize for RefillInterval {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RefillInterval {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
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
    /// The key's scopes, shared: a principal is copied to every verify of its key that
    /// one batched read answers, and handed on with the request, and its scopes never
    /// change (they are fixed when the key is created). Build it with `Arc::new`.
    pub scopes: Arc<BTreeSet<String>>,
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
    fn refill_intervals_read_back_what_they_write_and_find_their_periods() {
        for (text, shown) in [
            ("daily", "daily"),
            ("24h", "daily"),
            ("monthly", "monthly"),
            ("6h", "6h"),
            ("90m", "1h30m"),
            ("1h 30m", "1h30m"),
            ("45s", "45s"),
        ] {
            let interval: RefillInterval = text.parse().expect(text);
            assert_eq!(interval.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<RefillInterval>().ok(), Some(interval));
            let json = serde_json::to_value(Refill::new(interval, 3)).expect("serialises");
            assert_eq!(json, serde_json::json!({"interval": shown, "amount": 3}));
        }
        for bad in ["", "weekly", "0s", "1.5s", "500ms", "-1h"] {
            assert!(bad.parse::<RefillInterval>().is_err(), "{bad:?}");
        }
        let at = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .expect("a time")
        };
        let now = at("2026-12-31T23:59:30Z");
        let feb = at("2027-02-15T12:00:00Z");
        let six: RefillInterval = "6h".parse().expect("6h");
        for (interval, from, next) in [
            (RefillInterval::Daily, now, "2027-01-01T00:00:00Z"),
            (RefillInterval::Monthly, now, "2027-01-01T00:00:00Z"),
            (six, now, "2027-01-01T00:00:00Z"),
            (six, at("2026-12-31T13:00:00Z"), "2026-12-31T18:00:00Z"),
            (RefillInterval::Monthly, feb, "2027-03-01T00:00:00Z"),
        ] {
            assert_eq!(
                interval.next_start(from),
                at(next),
                "{interval} from {from}"
            );
        }
        assert_eq!(
            RefillInterval::Monthly.period(feb),
            RefillInterval::Monthly.period(now) + 2
        );
        assert!(RefillInterval::Daily.period(now) < RefillInterval::Daily.period(feb));
    }

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
