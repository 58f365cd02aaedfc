//! The answer of a check and the header values rendered from it.

use std::time::Duration;

use crate::quota::{Quota, Scope};

/// The state of the budget that is closest to running out, after an allowed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The budget with the fewest requests left (the key's on a tie).
    pub scope: Scope,
    /// That budget's quota.
    pub quota: Quota,
    /// Requests that may still be made right now under that budget.
    pub remaining: u32,
    /// Time until that budget is full again.
    pub reset: Duration,
}

impl Status {
    /// A status; backends build these, callers read them.
    pub const fn new(scope: Scope, quota: Quota, remaining: u32, reset: Duration) -> Self {
        Self {
            scope,
            quota,
            remaining,
            reset,
        }
    }
}

/// The decision on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The request passed both budgets (and consumed one unit of each).
    #[non_exhaustive]
    Allowed {
        /// The tighter budget's state; `None` when the backend was unavailable and the
        /// limiter fails open (nothing was counted, so no headers should be sent).
        status: Option<Status>,
    },
    /// The request must be rejected (HTTP 429).
    #[non_exhaustive]
    Limited {
        /// The budget that rejected it (when both did, the one with the longer wait).
        scope: Scope,
        /// That budget's quota.
        quota: Quota,
        /// How long to wait before the next request can pass that budget.
        retry_after: Duration,
    },
}

impl Outcome {
    /// An allowed outcome.
    pub const fn allowed(status: Option<Status>) -> Self {
        Self::Allowed { status }
    }

    /// A rejected outcome.
    pub const fn limited(scope: Scope, quota: Quota, retry_after: Duration) -> Self {
        Self::Limited {
            scope,
            quota,
            retry_after,
        }
    }

    /// Whether the request may proceed.
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// The tighter budget's state of an allowed request; `None` when limited or when the
    /// limiter failed open.
    pub const fn status(&self) -> Option<&Status> {
        match self {
            Self::Allowed { status } => status.as_ref(),
            Self::Limited { .. } => None,
        }
    }

    /// The budget that decided: the rejecting one, or the tighter one when allowed
    /// (`None` when the limiter failed open).
    pub const fn scope(&self) -> Option<Scope> {
        match self {
            Self::Allowed {
                status: Some(status),
            } => Some(status.scope),
            Self::Allowed { status: None } => None,
            Self::Limited { scope, .. } => Some(*scope),
        }
    }

    /// The wait of a rejected request; `None` when allowed.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Allowed { .. } => None,
            Self::Limited { retry_after, .. } => Some(*retry_after),
        }
    }

    /// The `Retry-After` header value of a rejected request (see [`retry_after_secs`]);
    /// `None` when allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after().map(retry_after_secs)
    }

    /// The value of the `RateLimit` response header
    /// (draft-ietf-httpapi-ratelimit-headers-10) for the budget that matters:
    /// `"key";r=<remaining>;t=<seconds>`. When allowed, the budget with the fewest
    /// requests left and `t` = whole seconds (rounded up) until it is full again; when
    /// limited, the rejecting budget with `r=0` and `t` = [`Outcome::retry_after_secs`].
    /// `None` when the limiter failed open and counted nothing.
    pub fn ratelimit_header(&self) -> Option<String> {
        let (scope, remaining, secs) = match self {
            Self::Allowed { status: None } => return None,
            Self::Allowed {
                status: Some(status),
            } => (status.scope, status.remaining, ceil_secs(status.reset)),
            Self::Limited {
                scope, retry_after, ..
            } => (*scope, 0, retry_after_secs(*retry_after)),
        };
        // Built by hand, not with `format!`: this runs on every allowed request.
        let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (r, t) = (r.format(remaining), t.format(secs));
        let scope = scope.as_str();
        let mut value = String::with_capacity(scope.len() + r.len() + t.len() + 8);
        for part in ["\"", scope, "\";r=", r, ";t=", t] {
            value.push_str(part);
        }
        Some(value)
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
///
/// ```
/// use std::time::Duration;
/// use keygate_limits::retry_after_secs;
///
/// assert_eq!(retry_after_secs(Duration::from_millis(50)), 1);
/// assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
/// assert_eq!(retry_after_secs(Duration::ZERO), 1);
/// ```
pub fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
