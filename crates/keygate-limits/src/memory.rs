//! The in-process backend, on the `governor` crate.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DashMapStateStore;

use crate::error::LimitError;
use crate::limiter::RateLimiter;
use crate::outcome::{Outcome, Status};
use crate::quota::{Limits, Quota, Scope};

type Keyed<C> =
    governor::RateLimiter<String, DashMapStateStore<String>, C, StateInformationMiddleware>;

/// How many checks run between two sweeps of idle keys, by default.
pub const DEFAULT_HOUSEKEEPING_EVERY: u64 = 4096;

/// An in-process rate limiter: one `governor` keyed limiter for keys, one for tenants.
///
/// Budgets live in this process only: several server instances each apply the full
/// quota (use `RedisLimiter` to share one budget).
///
/// **Order.** The key's budget is checked first. A key over its own limit is rejected
/// without touching the tenant's budget, so one noisy key cannot drain its siblings'
/// shared budget. When the key passes but the tenant rejects, the key's unit stays
/// consumed (`governor` cannot give it back): the noisy caller pays for its own attempt,
/// nobody else does. When the key rejects, the tenant is not consulted, so the reported
/// wait is the key's; if the tenant's is longer, the next attempt reports it.
///
/// **Memory.** Every [`MemoryLimiter::housekeeping_every`] checks (default
/// [`DEFAULT_HOUSEKEEPING_EVERY`]) the check that crosses the mark sweeps both maps:
/// `retain_recent()` drops every key whose bucket is full again (indistinguishable from a
/// key never seen), then `shrink_to_fit()` returns the memory. Tracked entries are thus
/// bounded by the keys active within one refill window plus the checks since the last
/// sweep. [`MemoryLimiter::housekeep`] runs a sweep on demand (e.g. from a timer).
///
/// **Clock.** [`MemoryLimiter::with_clock`] takes any `governor` clock; tests use
/// [`FakeRelativeClock`](governor::clock::FakeRelativeClock).
pub struct MemoryLimiter<C: Clock = DefaultClock> {
    limits: Limits,
    keys: Keyed<C>,
    tenants: Keyed<C>,
    clock: C,
    checks: AtomicU64,
    housekeeping_every: u64,
}

impl MemoryLimiter<DefaultClock> {
    /// A limiter on the monotonic clock.
    pub fn new(limits: Limits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> MemoryLimiter<C> {
    /// A limiter on the given clock.
    pub fn with_clock(limits: Limits, clock: C) -> Self {
        Self {
            limits,
            keys: keyed(limits.key, clock.clone()),
            tenants: keyed(limits.tenant, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
            housekeeping_every: DEFAULT_HOUSEKEEPING_EVERY,
        }
    }

    /// Sweeps idle keys every `checks` checks instead of every
    /// [`DEFAULT_HOUSEKEEPING_EVERY`] (`0` is taken as 1).
    #[must_use]
    pub fn housekeeping_every(mut self, checks: u64) -> Self {
        self.housekeeping_every = checks.max(1);
        self
    }

    /// Drops the state of every key and tenant whose bucket is full again and returns
    /// the memory to the allocator.
    pub fn housekeep(&self) {
        self.keys.retain_recent();
        self.tenants.retain_recent();
        self.keys.shrink_to_fit();
        self.tenants.shrink_to_fit();
    }

    /// How many keys and tenants currently have state (an estimate under concurrency).
    pub fn tracked(&self) -> usize {
        self.keys.len() + self.tenants.len()
    }

    /// The decision on one request, synchronously (what [`RateLimiter::check`] runs).
    pub fn check_now(&self, key_id: &str, tenant_id: &str) -> Outcome {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % self.housekeeping_every == self.housekeeping_every - 1 {
            self.housekeep();
        }
        let key_state = match self.keys.check_key(&key_id.to_owned()) {
            Ok(state) => state,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                return Outcome::limited(Scope::Key, self.limits.key, wait);
            }
        };
        let tenant_state = match self.tenants.check_key(&tenant_id.to_owned()) {
            Ok(state) => state,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                return Outcome::limited(Scope::Tenant, self.limits.tenant, wait);
            }
        };
        let key = status(Scope::Key, self.limits.key, &key_state);
        let tenant = status(Scope::Tenant, self.limits.tenant, &tenant_state);
        let tighter = if tenant.remaining < key.remaining {
            tenant
        } else {
            key
        };
        Outcome::allowed(Some(tighter))
    }
}

fn keyed<C: Clock>(quota: Quota, clock: C) -> Keyed<C> {
    let quota = governor::Quota::per_second(quota.per_second).allow_burst(quota.burst);
    governor::RateLimiter::dashmap_with_clock(quota, clock)
        .with_middleware::<StateInformationMiddleware>()
}

/// The budget's state after an allowed request. `reset` is the time until the bucket is
/// full: the missing units times the interval (exact to within one interval).
fn status(scope: Scope, quota: Quota, state: &StateSnapshot) -> Status {
    let remaining = state.remaining_burst_capacity();
    let missing = quota.burst.get().saturating_sub(remaining);
    let reset = quota.interval().saturating_mul(missing);
    Status::new(scope, quota, remaining, reset)
}

#[async_trait]
impl<C> RateLimiter for MemoryLimiter<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    async fn check(&self, key_id: &str, tenant_id: &str) -> Result<Outcome, LimitError> {
        Ok(self.check_now(key_id, tenant_id))
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

impl<C: Clock + Clone> fmt::Debug for MemoryLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("limits", &self.limits)
            .field("tracked", &self.tracked())
            .field("housekeeping_every", &self.housekeeping_every)
            .finish_non_exhaustive()
    }
}
