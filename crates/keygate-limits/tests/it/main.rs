//! Integration tests of keygate-limits: the in-process backend on a fake clock, the
//! Redis backend against a real Redis (`KEYGATE_TEST_REDIS`), header values and specs,
//! and the failed-authentication limiter.

mod failures;
mod headers;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::num::NonZeroU32;

use keygate_limits::{Limits, Quota};

/// `n` as a `NonZeroU32`; panics on 0 (test input only).
pub(crate) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("test quotas are not zero")
}

/// Limits of `key` and `tenant` requests per second, each with an equal burst.
pub(crate) fn limits(key: u32, tenant: u32) -> Limits {
    Limits::new(Quota::from_rate(nz(key)), Quota::from_rate(nz(tenant)))
}
