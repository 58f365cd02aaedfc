//! The time a store decides verification by: expiry and usage refills.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

/// Where a store reads the current time when it verifies a key (expiry, usage-limit
/// refills) and shows a usage-limited key's `remaining`. [`SystemClock`] unless a test
/// injects another with the stores' `with_clock`.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The default clock of every store.
pub(crate) fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
