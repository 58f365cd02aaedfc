//! The Redis backend: one atomic GCRA script per check, shared by every instance.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::LimitError;
use crate::limiter::{FailMode, RateLimiter, redact_url};
use crate::outcome::{Outcome, Status};
use crate::quota::{Limits, Quota, Scope};

/// The key prefix used unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "keygate:rl:";

/// The time a check may take against Redis unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// How a [`RedisLimiter`] talks to Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prefix of every key the limiter writes (default [`DEFAULT_PREFIX`]).
    pub prefix: String,
    /// Upper bound of one check, connecting included (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// What a check answers when Redis cannot (default [`FailMode::Closed`]).
    pub fail_mode: FailMode,
}

impl RedisConfig {
    /// The defaults: prefix `keygate:rl:`, 250 ms, fail closed.
    pub fn new() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            fail_mode: FailMode::Closed,
        }
    }

    /// With another key prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// With another timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// With another fail mode.
    #[must_use]
    pub fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A rate limiter whose budgets live in Redis, so several instances share them.
///
/// Each check is one `EVALSHA` of a GCRA script (loaded again automatically after a
/// Redis restart) that reads both buckets, decides, and writes both only when both pass:
/// a rejection consumes nothing. The script uses Redis' own clock (`TIME`), so instances
/// need not agree on time. Buckets are stored as `<prefix>{<tenant>}:k:<key>` and
/// `<prefix>{<tenant>}:t` (the hash tag keeps a request's two keys in one cluster slot)
/// with a TTL equal to the time the bucket takes to refill, so idle keys disappear.
///
/// When Redis cannot answer within the timeout the [`FailMode`] decides; the first
/// failure of an incident is logged at `warn`, the recovery at `info`, nothing per
/// request in between.
pub struct RedisLimiter {
    limits: Limits,
    config: RedisConfig,
    url: String,
    conn: ConnectionManager,
    script: redis::Script,
    down: AtomicBool,
}

impl RedisLimiter {
    /// A limiter on the Redis at `url`. The connection is made lazily, on the first
    /// check, and remade after failures. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidRedisUrl`] when the URL does not parse (shown redacted).
    pub fn new(url: &str, limits: Limits, config: RedisConfig) -> Result<Self, LimitError> {
        let redacted = redact_url(url);
        let invalid = |err: redis::RedisError| LimitError::InvalidRedisUrl {
            url: redacted.clone(),
            reason: describe(&err),
        };
        let client = redis::Client::open(url).map_err(invalid)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, manager).map_err(invalid)?;
        Ok(Self {
            limits,
            config,
            url: redacted,
            conn,
            script: redis::Script::new(include_str!("gcra.lua")),
            down: AtomicBool::new(false),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// A clone of the connection this limiter uses (for benchmarks and diagnostics).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn bucket_keys(&self, key_id: &str, tenant_id: &str) -> (String, String) {
        let prefix = &self.config.prefix;
        (
            format!("{prefix}{{{tenant_id}}}:k:{key_id}"),
            format!("{prefix}{{{tenant_id}}}:t"),
        )
    }

    async fn eval(&self, key_id: &str, tenant_id: &str) -> Result<Outcome, String> {
        let (key_bucket, tenant_bucket) = self.bucket_keys(key_id, tenant_id);
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(key_bucket);
        invocation
            .key(tenant_bucket)
            .arg(interval_us(self.limits.key))
            .arg(self.limits.key.burst.get())
            .arg(interval_us(self.limits.tenant))
            .arg(self.limits.tenant.burst.get());
        let call = invocation.invoke_async::<Vec<i64>>(&mut conn);
        let reply = match tokio::time::timeout(self.config.timeout, call).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => return Err(describe(&err)),
            Err(_elapsed) => {
                return Err(format!("no answer within {:?}", self.config.timeout));
            }
        };
        self.decode(&reply)
    }

    fn decode(&self, reply: &[i64]) -> Result<Outcome, String> {
        let &[allowed, scope, remaining, wait_us] = reply else {
            return Err(format!("unexpected script reply of {} values", reply.len()));
        };
        let scope = if scope == 1 {
            Scope::Tenant
        } else {
            Scope::Key
        };
        let quota = self.limits.quota(scope);
        let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
        Ok(if allowed == 1 {
            let remaining = u32::try_from(remaining).unwrap_or(0);
            Outcome::allowed(Some(Status::new(scope, quota, remaining, wait)))
        } else {
            Outcome::limited(scope, quota, wait)
        })
    }
}

/// The emission interval in whole microseconds (at least 1).
fn interval_us(quota: Quota) -> u64 {
    (1_000_000 / u64::from(quota.per_second.get())).max(1)
}

/// A Redis error as text, without the URL it may have been built from.
fn describe(err: &redis::RedisError) -> String {
    let mut text = format!("{:?}", err.kind());
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key_id: &str, tenant_id: &str) -> Result<Outcome, LimitError> {
        match self.eval(key_id, tenant_id).await {
            Ok(outcome) => {
                if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(redis = %self.url, "rate-limit backend reachable again");
                }
                Ok(outcome)
            }
            Err(reason) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        redis = %self.url,
                        fail_mode = ?self.config.fail_mode,
                        %reason,
                        "rate-limit backend unavailable"
                    );
                }
                match self.config.fail_mode {
                    FailMode::Open => Ok(Outcome::allowed(None)),
                    FailMode::Closed => Err(LimitError::Unavailable { reason }),
                }
            }
        }
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("url", &self.url)
            .field("limits", &self.limits)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
