//! The limiter trait and the backend chooser.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::LimitError;
use crate::memory::MemoryLimiter;
use crate::outcome::Outcome;
use crate::quota::Limits;

/// A rate limiter: decides whether one more request of a key (and its tenant) may pass.
///
/// A request must pass both the key's and the tenant's budget. Implementations are
/// shared between tasks (`Arc<dyn RateLimiter>`).
#[async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Counts one request of `key_id` (belonging to `tenant_id`) and says whether it may
    /// pass. An allowed request consumes one unit of both budgets.
    ///
    /// # Errors
    ///
    /// [`LimitError::Unavailable`] when the backend cannot answer and the limiter fails
    /// closed.
    async fn check(&self, key_id: &str, tenant_id: &str) -> Result<Outcome, LimitError>;

    /// The quotas this limiter applies (for the `RateLimit-Policy` header).
    fn limits(&self) -> Limits;
}

/// What a limiter does when its backend (Redis) cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailMode {
    /// Let requests through uncounted ([`Outcome::Allowed`] with no status).
    Open,
    /// Refuse with [`LimitError::Unavailable`] (HTTP 503). The default.
    #[default]
    Closed,
}

/// Builds a limiter from a backend spec: `memory` (a [`MemoryLimiter`]) or a Redis URL
/// (`redis://[user:password@]host[:port][/db]`, also `rediss://` when the `redis` crate
/// has TLS, `redis+unix://` and `unix://`) for a `RedisLimiter` with its defaults
/// (prefix `keygate:rl:`, 250 ms timeout, fail closed).
///
/// Connecting to Redis is lazy: an unreachable Redis does not fail here, it makes checks
/// fail (closed) until it is back.
///
/// ```
/// # async fn demo() -> Result<(), keygate_limits::LimitError> {
/// use keygate_limits::{from_url, Limits};
///
/// let limiter = from_url("memory", Limits::default()).await?;
/// assert!(limiter.check("key-id", "tenant-id").await?.is_allowed());
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`LimitError::UnknownBackend`] for anything else, [`LimitError::InvalidRedisUrl`] for a
/// Redis URL that does not parse, [`LimitError::RedisNotCompiled`] when the `redis`
/// feature is off. Errors never contain the password of the URL.
pub async fn from_url(spec: &str, limits: Limits) -> Result<Arc<dyn RateLimiter>, LimitError> {
    from_url_with(spec, limits, FailMode::default()).await
}

/// Like [`from_url`], with what a Redis limiter does while Redis is unreachable
/// (`fail_mode`; the in-process limiter never fails, so it ignores it).
///
/// # Errors
///
/// As [`from_url`].
pub async fn from_url_with(
    spec: &str,
    limits: Limits,
    fail_mode: FailMode,
) -> Result<Arc<dyn RateLimiter>, LimitError> {
    spec.parse::<Backend>()?.build(limits, fail_mode).await
}

/// Where rate-limit budgets live, parsed from a spec: `memory` (any case), or a
/// `redis://`, `rediss://`, `redis+unix://` or `unix://` URL. The one grammar for
/// rate-limit backends ([`from_url`] and the binaries' settings use it). Surrounding
/// whitespace is ignored; `Debug` shows a Redis URL with its password replaced by `***`.
///
/// ```
/// use keygate_limits::Backend;
///
/// assert_eq!("Memory".parse::<Backend>()?, Backend::Memory);
/// assert!(matches!("redis://127.0.0.1:6379".parse()?, Backend::Redis(_)));
/// assert!("memcached".parse::<Backend>().is_err());
/// # Ok::<(), keygate_limits::LimitError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// In-process budgets ([`MemoryLimiter`]): one instance's own.
    #[default]
    Memory,
    /// Budgets in Redis, shared by every instance that uses it (the URL as given).
    Redis(String),
}

impl Backend {
    /// Builds the limiter; `fail_mode` is what a Redis limiter does while Redis is
    /// unreachable (the in-process limiter never fails, so it ignores it).
    ///
    /// # Errors
    ///
    /// As [`from_url`].
    pub async fn build(
        &self,
        limits: Limits,
        fail_mode: FailMode,
    ) -> Result<Arc<dyn RateLimiter>, LimitError> {
        match self {
            Self::Memory => Ok(Arc::new(MemoryLimiter::new(limits))),
            Self::Redis(url) => redis_from_url(url, limits, fail_mode).await,
        }
    }
}

impl FromStr for Backend {
    type Err = LimitError;

    /// # Errors
    ///
    /// [`LimitError::UnknownBackend`] for a spec that is neither.
    fn from_str(spec: &str) -> Result<Self, LimitError> {
        let trimmed = spec.trim();
        if trimmed.eq_ignore_ascii_case("memory") {
            return Ok(Self::Memory);
        }
        let scheme = trimmed
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("redis" | "rediss" | "redis+unix" | "unix") => Ok(Self::Redis(trimmed.to_owned())),
            _ => Err(LimitError::UnknownBackend {
                spec: redact_url(trimmed),
            }),
        }
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Redis(url) => f.debug_tuple("Redis").field(&redact_url(url)).finish(),
        }
    }
}

#[cfg(feature = "redis")]
async fn redis_from_url(
    url: &str,
    limits: Limits,
    fail_mode: FailMode,
) -> Result<Arc<dyn RateLimiter>, LimitError> {
    let config = crate::redis::RedisConfig::new().fail_mode(fail_mode);
    let limiter = crate::redis::RedisLimiter::new(url, limits, config)?;
    Ok(Arc::new(limiter))
}

#[cfg(not(feature = "redis"))]
#[allow(
    clippy::unused_async,
    reason = "same signature as with the redis feature"
)]
async fn redis_from_url(
    _url: &str,
    _limits: Limits,
    _fail_mode: FailMode,
) -> Result<Arc<dyn RateLimiter>, LimitError> {
    Err(LimitError::RedisNotCompiled)
}

/// `spec` with the user-info password (anything between `:` and `@` in the authority)
/// replaced by `***`, for error messages and logs.
///
/// ```
/// use keygate_limits::redact_url;
///
/// assert_eq!(redact_url("redis://:hunter2@cache:6379/0"), "redis://:***@cache:6379/0");
/// assert_eq!(redact_url("redis://app:hunter2@cache"), "redis://app:***@cache");
/// assert_eq!(redact_url("redis://cache"), "redis://cache");
/// ```
pub fn redact_url(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        // Not a URL: it could still hold a secret pasted by mistake, so show its shape only.
        return if spec.contains('@') {
            "***".to_owned()
        } else {
            spec.to_owned()
        };
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return spec.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    let user = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}{host}{tail}")
}
