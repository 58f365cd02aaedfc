use std::time::Duration;

use keygate_limits::{
    FailMode, LimitError, Limits, Outcome, Quota, RateLimiter, RedisConfig, RedisLimiter, Scope,
};

use keygate_test::redis_url;

use crate::{limits, nz};

/// A fresh key prefix, so parallel tests and runs never share buckets.
fn prefix() -> String {
    let n = getrandom::u64().expect("OS random numbers");
    format!("keygate-test:{n:016x}:")
}

fn redis(url: &str, limits: Limits, prefix: &str) -> RedisLimiter {
    RedisLimiter::new(
        url,
        limits,
        RedisConfig::new()
            .prefix(prefix)
            .timeout(Duration::from_secs(2)),
    )
    .expect("valid test URL")
}

/// A limiter on the test server with a prefix of its own, or `None` without one.
fn on_the_test_server(limits: Limits) -> Option<RedisLimiter> {
    redis_url().map(|url| redis(&url, limits, &prefix()))
}

/// A limiter on `url`, where nothing listens.
fn unreachable(url: &str, limits: Limits, config: RedisConfig) -> RedisLimiter {
    RedisLimiter::new(url, limits, config).expect("valid URL")
}

/// `lim.check("k", "t")`, which the limiter's own timeout must end well within 10 s.
async fn check_in_time(lim: &RedisLimiter) -> Result<Outcome, LimitError> {
    tokio::time::timeout(Duration::from_secs(10), lim.check("k", "t"))
        .await
        .expect("the limiter's own timeout ends the check")
}

#[tokio::test]
async fn two_instances_share_one_budget() -> Result<(), LimitError> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let prefix = prefix();
    // One unit per second comes back: far slower than this loop.
    let limits = Limits::new(Quota::new(nz(1), nz(3)), Quota::from_rate(nz(100)));
    let a = redis(&url, limits, &prefix);
    let b = redis(&url, limits, &prefix);
    let mut allowed = 0;
    for i in 0..10 {
        let lim = if i % 2 == 0 { &a } else { &b };
        if lim.check("k", "t").await?.is_allowed() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
    // Another prefix is another budget.
    let c = redis(&url, limits, &self::prefix());
    assert!(c.check("k", "t").await?.is_allowed());
    Ok(())
}

#[tokio::test]
async fn key_tighter_than_tenant_and_rejections_consume_nothing() -> Result<(), LimitError> {
    let Some(lim) = on_the_test_server(Limits::new(
        Quota::new(nz(1), nz(2)),
        Quota::new(nz(1), nz(4)),
    )) else {
        return Ok(());
    };
    assert!(lim.check("noisy", "t").await?.is_allowed());
    assert!(lim.check("noisy", "t").await?.is_allowed());
    for _ in 0..10 {
        let outcome = lim.check("noisy", "t").await?;
        assert_eq!(outcome.scope(), Some(Scope::Key));
        assert!(!outcome.is_allowed());
    }
    // The tenant has exactly its two remaining units left for other keys.
    assert!(lim.check("quiet1", "t").await?.is_allowed());
    assert!(lim.check("quiet2", "t").await?.is_allowed());
    let outcome = lim.check("quiet3", "t").await?;
    assert!(!outcome.is_allowed());
    assert_eq!(outcome.scope(), Some(Scope::Tenant));
    Ok(())
}

#[tokio::test]
async fn tenant_tighter_than_key() -> Result<(), LimitError> {
    let Some(lim) = on_the_test_server(Limits::new(
        Quota::from_rate(nz(100)),
        Quota::new(nz(1), nz(2)),
    )) else {
        return Ok(());
    };
    assert!(lim.check("a", "t").await?.is_allowed());
    assert!(lim.check("b", "t").await?.is_allowed());
    for key in ["a", "b", "c"] {
        let outcome = lim.check(key, "t").await?;
        assert!(!outcome.is_allowed());
        assert_eq!(outcome.scope(), Some(Scope::Tenant));
    }
    assert!(lim.check("a", "other-tenant").await?.is_allowed());
    Ok(())
}

#[tokio::test]
async fn waiting_retry_after_lets_the_next_request_through() -> Result<(), LimitError> {
    let Some(lim) = on_the_test_server(limits(1, 100)) else {
        return Ok(());
    };
    assert!(lim.check("k", "t").await?.is_allowed());
    let outcome = lim.check("k", "t").await?;
    let Outcome::Limited {
        scope, retry_after, ..
    } = outcome
    else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert_eq!(scope, Scope::Key);
    assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
    assert_eq!(outcome.retry_after_secs(), Some(1));
    tokio::time::sleep(retry_after).await;
    assert!(lim.check("k", "t").await?.is_allowed());
    Ok(())
}

#[tokio::test]
async fn buckets_live_under_the_prefix_and_expire() -> Result<(), LimitError> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let prefix = prefix();
    let lim = redis(&url, limits(2, 10), &prefix);
    assert!(lim.check("k1", "t1").await?.is_allowed());
    let mut conn = lim.connection();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    keys.sort();
    assert_eq!(
        keys,
        [format!("{prefix}{{t1}}:k:k1"), format!("{prefix}{{t1}}:t")]
    );
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        // The time each bucket takes to refill: 1/2 s for the key, 1/10 s for the tenant.
        assert!(ttl > 0 && ttl <= 500, "{key}: {ttl}");
    }
    Ok(())
}

#[tokio::test]
async fn unreachable_redis_fails_closed_by_default() {
    let lim = unreachable(
        "redis://127.0.0.1:1",
        Limits::default(),
        RedisConfig::new().timeout(Duration::from_millis(100)),
    );
    assert_eq!(lim.config().fail_mode, FailMode::Closed);
    for _ in 0..3 {
        let result = check_in_time(&lim).await;
        assert!(
            matches!(result, Err(LimitError::Unavailable { .. })),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_redis_fails_open_when_asked() -> Result<(), LimitError> {
    let lim = unreachable(
        "redis://127.0.0.1:1",
        limits(1, 1),
        RedisConfig::new()
            .timeout(Duration::from_millis(100))
            .fail_mode(FailMode::Open),
    );
    for _ in 0..3 {
        let outcome = check_in_time(&lim).await?;
        assert_eq!(outcome, Outcome::allowed(None));
    }
    Ok(())
}

#[tokio::test]
async fn from_url_builds_a_redis_limiter() -> Result<(), LimitError> {
    let Some(url) = redis_url() else {
        return Ok(());
    };
    let lim = keygate_limits::from_url(&url, limits(5, 5)).await?;
    assert!(format!("{lim:?}").starts_with("RedisLimiter"));
    assert_eq!(lim.limits(), limits(5, 5));
    Ok(())
}

#[tokio::test]
async fn from_url_with_passes_the_fail_mode_on() -> Result<(), LimitError> {
    // Nothing listens on port 1: only the fail mode decides the answer.
    let url = "redis://127.0.0.1:1";
    let open = keygate_limits::from_url_with(url, limits(5, 5), FailMode::Open).await?;
    assert!(open.check("k", "t").await?.is_allowed());
    let closed = keygate_limits::from_url_with(url, limits(5, 5), FailMode::Closed).await?;
    assert!(matches!(
        closed.check("k", "t").await,
        Err(LimitError::Unavailable { .. })
    ));
    Ok(())
}

/// Counts the warnings and infos this crate logs.
#[derive(Default)]
struct Counter {
    warn: std::sync::atomic::AtomicUsize,
    info: std::sync::atomic::AtomicUsize,
}

struct CountingSubscriber(std::sync::Arc<Counter>);

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if !meta.target().starts_with("keygate_limits") {
            return;
        }
        let counter = match *meta.level() {
            tracing::Level::WARN => &self.0.warn,
            tracing::Level::INFO => &self.0.info,
            _ => return,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn enter(&self, _span: &tracing::span::Id) {}
    fn exit(&self, _span: &tracing::span::Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn an_outage_is_logged_once_not_per_request() {
    let counter = std::sync::Arc::new(Counter::default());
    let _guard = tracing::subscriber::set_default(CountingSubscriber(counter.clone()));
    let lim = unreachable(
        "redis://:hunter2@127.0.0.1:1",
        Limits::default(),
        RedisConfig::new().timeout(Duration::from_millis(100)),
    );
    assert!(!format!("{lim:?}").contains("hunter2"));
    for _ in 0..5 {
        let result = lim.check("k", "t").await;
        assert!(
            matches!(result, Err(LimitError::Unavailable { .. })),
            "{result:?}"
        );
    }
    assert_eq!(counter.warn.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(counter.info.load(std::sync::atomic::Ordering::Relaxed), 0);
}
