use std::time::Duration;

use keygate_limits::{
    LimitError, Limits, Outcome, Quota, Scope, Status, from_url, redact_url, retry_after_secs,
};

use crate::{limits, nz};

#[test]
fn default_limits_are_the_server_defaults() {
    let l = Limits::default();
    assert_eq!(l.key, Quota::new(nz(20), nz(20)));
    assert_eq!(l.tenant, Quota::new(nz(100), nz(100)));
}

#[test]
fn policy_header_names_both_budgets() {
    assert_eq!(
        Limits::default().policy_header(),
        r#""key";q=20;w=1, "tenant";q=100;w=1"#
    );
    // A burst larger than the rate refills over several seconds.
    let l = Limits::new(Quota::new(nz(2), nz(5)), Quota::new(nz(10), nz(10)));
    assert_eq!(l.policy_header(), r#""key";q=5;w=3, "tenant";q=10;w=1"#);
}

#[test]
fn retry_after_is_whole_seconds_rounded_up_at_least_one() {
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_nanos(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
}

#[test]
fn ratelimit_header_for_each_outcome() {
    let q = Quota::from_rate(nz(20));
    let allowed = Outcome::allowed(Some(Status::new(
        Scope::Tenant,
        q,
        7,
        Duration::from_millis(650),
    )));
    assert_eq!(
        allowed.ratelimit_header().as_deref(),
        Some(r#""tenant";r=7;t=1"#)
    );
    assert_eq!(allowed.retry_after_secs(), None);
    assert!(allowed.is_allowed());

    let limited = Outcome::limited(Scope::Key, q, Duration::from_millis(1500));
    assert_eq!(
        limited.ratelimit_header().as_deref(),
        Some(r#""key";r=0;t=2"#)
    );
    assert_eq!(limited.retry_after_secs(), Some(2));
    assert!(!limited.is_allowed());

    assert_eq!(Outcome::allowed(None).ratelimit_header(), None);
}

#[test]
fn redaction_hides_passwords() {
    assert_eq!(
        redact_url("redis://user:s3cret@host:6379/1"),
        "redis://user:***@host:6379/1"
    );
    assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
    assert_eq!(
        redact_url("redis://host:6379/0?x=a@b"),
        "redis://host:6379/0?x=a@b"
    );
    assert_eq!(redact_url("memcached"), "memcached");
}

#[tokio::test]
async fn from_url_memory() -> Result<(), LimitError> {
    let limiter = from_url("memory", limits(1, 10)).await?;
    assert_eq!(limiter.limits(), limits(1, 10));
    assert!(limiter.check("k", "t").await?.is_allowed());
    assert!(!limiter.check("k", "t").await?.is_allowed());
    Ok(())
}

#[tokio::test]
async fn from_url_rejects_unknown_specs_without_echoing_passwords() {
    for spec in ["", "mem", "postgres://u:hunter2@db/x", "http://a:hunter2@b"] {
        let err = from_url(spec, Limits::default())
            .await
            .expect_err("not a backend");
        let text = err.to_string();
        assert!(
            matches!(err, LimitError::UnknownBackend { .. }),
            "{spec}: {err:?}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("expected `memory` or a redis:// URL"),
            "{text}"
        );
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn from_url_rejects_bad_redis_urls_without_echoing_passwords() {
    let err = from_url("redis://u:hunter2@host:notaport", Limits::default())
        .await
        .expect_err("bad port");
    let text = err.to_string();
    assert!(matches!(err, LimitError::InvalidRedisUrl { .. }), "{err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("redis://u:***@host:notaport"), "{text}");
}
