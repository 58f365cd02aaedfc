//! Quotas, the pair of limits a check applies, and the scope that decided.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// A rate: `per_second` requests per second sustained, up to `burst` at once.
///
/// The budget is a generic cell rate algorithm (GCRA, a token bucket without a timer): a
/// full bucket holds `burst` requests and refills at `per_second`, one request every
/// `1 / per_second` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests allowed at once from a full bucket.
    pub burst: NonZeroU32,
}

impl Quota {
    /// A quota of `per_second` requests per second with a burst of `burst`.
    pub const fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self { per_second, burst }
    }

    /// A quota of `n` requests per second with a burst of `n` (what `--key-rate N` means).
    pub const fn from_rate(n: NonZeroU32) -> Self {
        Self::new(n, n)
    }

    /// The time one request's worth of budget takes to come back: `1 / per_second`.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.per_second.get()
    }

    /// The window advertised in `RateLimit-Policy` (`w`): the whole seconds a drained
    /// bucket takes to refill, `ceil(burst / per_second)`, at least 1.
    pub fn window_secs(&self) -> u64 {
        u64::from(self.burst.get())
            .div_ceil(u64::from(self.per_second.get()))
            .max(1)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s burst {}", self.per_second, self.burst)
    }
}

/// The two budgets every request must pass: one per API key, one per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The budget of one API key.
    pub key: Quota,
    /// The budget shared by all keys of one tenant.
    pub tenant: Quota,
}

impl Limits {
    /// Limits with the given per-key and per-tenant quotas.
    pub const fn new(key: Quota, tenant: Quota) -> Self {
        Self { key, tenant }
    }

    /// The quota of `scope`.
    pub const fn quota(&self, scope: Scope) -> Quota {
        match scope {
            Scope::Key => self.key,
            Scope::Tenant => self.tenant,
        }
    }

    /// The value of the `RateLimit-Policy` response header
    /// (draft-ietf-httpapi-ratelimit-headers-10), naming both policies:
    /// `"key";q=20;w=1, "tenant";q=100;w=1`. `q` is the burst, `w` is
    /// [`Quota::window_secs`].
    pub fn policy_header(&self) -> String {
        format!(
            "{}, {}",
            policy_item(Scope::Key, self.key),
            policy_item(Scope::Tenant, self.tenant)
        )
    }
}

fn policy_item(scope: Scope, quota: Quota) -> String {
    format!(
        "\"{}\";q={};w={}",
        scope.as_str(),
        quota.burst,
        quota.window_secs()
    )
}

impl Default for Limits {
    /// The server default: 20/s burst 20 per key, 100/s burst 100 per tenant.
    fn default() -> Self {
        const KEY: NonZeroU32 = NonZeroU32::new(20).expect("20 is not zero");
        const TENANT: NonZeroU32 = NonZeroU32::new(100).expect("100 is not zero");
        Self::new(Quota::from_rate(KEY), Quota::from_rate(TENANT))
    }
}

/// Which budget a decision is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// The per-key budget.
    Key,
    /// The per-tenant budget.
    Tenant,
}

impl Scope {
    /// The policy name used in the rate-limit headers: `key` or `tenant`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Tenant => "tenant",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
