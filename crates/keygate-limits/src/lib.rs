//! Rate limits for keygate.
//!
//! Per-key and per-tenant limits (requests per second with a burst), checked after
//! authentication: a request must pass both budgets, and when it does not, the answer says
//! which budget refused it and how long to wait. Two backends share one object-safe trait,
//! [`RateLimiter`]: in-process ([`MemoryLimiter`], on the `governor` crate, memory bounded
//! for many keys) and Redis (`RedisLimiter`, one atomic GCRA script per check, so several
//! servers share one budget). [`from_url`] picks one from a `memory` / `redis://…` spec.
//!
//! A third budget is counted apart, in-process only: failed authentications per client
//! address ([`FailureLimiter`], IPv6 per /64), asked before a token is verified so that
//! a flood of forged tokens from one client stops costing key-store reads.
//!
//! The crate knows nothing of HTTP or of key records: keys and tenants are plain string
//! ids. It renders the header values the HTTP layer sends: `Retry-After`
//! ([`retry_after_secs`]) and the `RateLimit-Policy` / `RateLimit` fields of
//! draft-ietf-httpapi-ratelimit-headers-10 ([`Limits::policy_header`],
//! [`Outcome::ratelimit_header`]), e.g.
//!
//! ```text
//! RateLimit-Policy: "key";q=20;w=1, "tenant";q=100;w=1
//! RateLimit: "key";r=19;t=1
//! ```
//!
//! ```
//! # async fn demo() -> Result<(), keygate_limits::LimitError> {
//! use keygate_limits::{from_url, Limits, Outcome};
//!
//! let limiter = from_url("memory", Limits::default()).await?;
//! match limiter.check("key-id", "tenant-id").await? {
//!     Outcome::Allowed { .. } => { /* forward the request */ }
//!     outcome => {
//!         let _retry_after = outcome.retry_after_secs(); // answer 429
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `redis` (default): the Redis backend, `RedisLimiter`, and `redis://` specs in
//!   [`from_url`]. Without it a Redis spec is refused with
//!   [`LimitError::RedisNotCompiled`].

mod error;
mod failures;
mod limiter;
mod memory;
mod outcome;
mod quota;
#[cfg(feature = "redis")]
mod redis;

pub use crate::error::LimitError;
pub use crate::failures::{ClientId, DEFAULT_MAX_CLIENTS, FailureLimiter, FailureQuota};
pub use crate::limiter::{Backend, FailMode, RateLimiter, from_url, from_url_with, redact_url};
pub use crate::memory::{DEFAULT_HOUSEKEEPING_EVERY, MemoryLimiter};
pub use crate::outcome::{Outcome, Status, retry_after_secs};
pub use crate::quota::{Limits, Quota, Scope};
#[cfg(feature = "redis")]
pub use crate::redis::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisConfig, RedisLimiter};
pub use governor::clock::{Clock, DefaultClock, FakeRelativeClock};
