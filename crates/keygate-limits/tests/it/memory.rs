use std::sync::Arc;
use std::time::Duration;

use keygate_limits::{
    FakeRelativeClock, LimitError, Limits, MemoryLimiter, Outcome, Quota, RateLimiter, Scope,
};

use crate::{limits, nz};

fn limiter(limits: Limits) -> (MemoryLimiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (MemoryLimiter::with_clock(limits, clock.clone()), clock)
}

fn scope_of(outcome: &Outcome) -> Scope {
    match outcome {
        Outcome::Limited { scope, .. } => *scope,
        Outcome::Allowed {
            status: Some(status),
            ..
        } => status.scope,
        other => panic!("no scope in {other:?}"),
    }
}

/// How many of `attempts` checks of tenant `t`, one a millisecond, by key `key(i)` for
/// the `i`th, a limiter of `limits` allows.
fn allowed_one_a_millisecond(limits: Limits, attempts: u64, key: impl Fn(u64) -> String) -> u64 {
    let (lim, clock) = limiter(limits);
    let mut allowed = 0;
    for i in 0..attempts {
        if lim.check_now(&key(i), "t").is_allowed() {
            allowed += 1;
        }
        clock.advance(Duration::from_millis(1));
    }
    allowed
}

/// The status of an allowed outcome.
fn allowed_status(outcome: Outcome) -> keygate_limits::Status {
    match outcome {
        Outcome::Allowed {
            status: Some(status),
            ..
        } => status,
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_limit_holds_to_within_one_request_over_a_window() {
    // One attempt per millisecond for ten seconds: burst (10) + 10/s * 10 s = 110.
    let allowed = allowed_one_a_millisecond(limits(10, 1000), 10_000, |_| "k".to_owned());
    assert!(allowed.abs_diff(110) <= 1, "allowed {allowed}");
}

#[test]
fn tenant_limit_holds_across_its_keys_over_a_window() {
    let allowed = allowed_one_a_millisecond(limits(1000, 20), 5_000, |i| format!("k{}", i % 7));
    // burst 20 + 20/s * 5 s = 120.
    assert!(allowed.abs_diff(120) <= 1, "allowed {allowed}");
}

#[test]
fn key_tighter_than_tenant_rejects_by_key_without_spending_the_tenant() {
    let (lim, _clock) = limiter(limits(5, 100));
    for _ in 0..5 {
        assert!(lim.check_now("noisy", "t").is_allowed());
    }
    // Many rejected attempts by the noisy key...
    for _ in 0..50 {
        let outcome = lim.check_now("noisy", "t");
        assert!(!outcome.is_allowed());
        assert_eq!(scope_of(&outcome), Scope::Key);
    }
    // ...leave the tenant's remaining 95 for the other keys.
    for i in 0..95 {
        assert!(lim.check_now(&format!("quiet{i}"), "t").is_allowed(), "{i}");
    }
    let outcome = lim.check_now("another", "t");
    assert_eq!(scope_of(&outcome), Scope::Tenant);
    assert!(!outcome.is_allowed());
}

#[test]
fn tenant_tighter_than_key_rejects_by_tenant() {
    let (lim, _clock) = limiter(limits(100, 5));
    for i in 0..5 {
        let key = if i % 2 == 0 { "a" } else { "b" };
        assert!(lim.check_now(key, "t").is_allowed());
    }
    for key in ["a", "b", "c"] {
        let outcome = lim.check_now(key, "t");
        assert!(!outcome.is_allowed());
        assert_eq!(scope_of(&outcome), Scope::Tenant);
    }
    // Another tenant is unaffected.
    assert!(lim.check_now("a2", "t2").is_allowed());
}

#[test]
fn tenant_rejection_keeps_the_key_unit_consumed() {
    // Documented: the key is checked first and governor cannot refund it.
    let (lim, _clock) = limiter(Limits::new(
        Quota::new(nz(1), nz(2)),
        Quota::new(nz(1), nz(1)),
    ));
    assert!(lim.check_now("k", "t").is_allowed());
    assert_eq!(scope_of(&lim.check_now("k", "t")), Scope::Tenant);
    assert_eq!(scope_of(&lim.check_now("k", "t")), Scope::Key);
}

#[test]
fn allowed_reports_the_tighter_budget() {
    let (lim, _clock) = limiter(limits(10, 100));
    let status = allowed_status(lim.check_now("k", "t"));
    assert_eq!(status.scope, Scope::Key);
    assert_eq!(status.remaining, 9);
    assert_eq!(status.quota, Quota::from_rate(nz(10)));
    assert_eq!(status.reset, Duration::from_millis(100));
    let (lim, _clock) = limiter(limits(100, 10));
    let status = allowed_status(lim.check_now("k", "t"));
    assert_eq!(status.scope, Scope::Tenant);
    assert_eq!(status.remaining, 9);
}

#[test]
fn waiting_retry_after_lets_the_next_request_through() {
    for (limits, scope) in [
        (limits(2, 100), Scope::Key),
        (limits(100, 2), Scope::Tenant),
    ] {
        let (lim, clock) = limiter(limits);
        assert!(lim.check_now("k", "t").is_allowed());
        assert!(lim.check_now("k", "t").is_allowed());
        let outcome = lim.check_now("k", "t");
        assert_eq!(scope_of(&outcome), scope);
        let wait = outcome.retry_after().expect("limited");
        assert_eq!(wait, Duration::from_millis(500), "{scope}");
        assert_eq!(outcome.retry_after_secs(), Some(1));

        clock.advance(wait - Duration::from_millis(1));
        assert!(!lim.check_now("k", "t").is_allowed(), "{scope}: too early");
        clock.advance(Duration::from_millis(1));
        assert!(lim.check_now("k", "t").is_allowed(), "{scope}: on time");
    }
}

#[test]
fn idle_keys_are_evicted_so_memory_stays_bounded() {
    let (lim, clock) = limiter(limits(10, 100));
    let lim = lim.housekeeping_every(1000);
    for i in 0..20_000 {
        if i % 1000 == 999 {
            // Everything seen so far is idle by the time the 1000th check sweeps.
            clock.advance(Duration::from_secs(2));
        }
        let _ = lim.check_now(&format!("key{i}"), &format!("tenant{}", i % 100));
        // Never more than one sweep interval's worth of keys (plus their tenants).
        assert!(lim.tracked() <= 1000 + 100 + 1, "{} at {i}", lim.tracked());
    }
    clock.advance(Duration::from_secs(2));
    lim.housekeep();
    assert_eq!(lim.tracked(), 0);
}

#[test]
fn active_keys_survive_housekeeping() {
    let (lim, clock) = limiter(limits(1, 100));
    assert!(lim.check_now("busy", "t").is_allowed());
    clock.advance(Duration::from_millis(100));
    lim.housekeep();
    // The key's bucket is not full yet, so its state (and its limit) must survive.
    assert!(lim.tracked() >= 1);
    assert!(!lim.check_now("busy", "t").is_allowed());
}

#[tokio::test]
async fn works_as_a_trait_object() -> Result<(), LimitError> {
    let clock = FakeRelativeClock::default();
    let lim: Arc<dyn RateLimiter> = Arc::new(MemoryLimiter::with_clock(limits(1, 1), clock));
    assert!(lim.check("k", "t").await?.is_allowed());
    assert!(!lim.check("k", "t").await?.is_allowed());
    assert_eq!(lim.limits(), limits(1, 1));
    Ok(())
}
