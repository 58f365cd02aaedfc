//! A clock tests move by hand.

use std::sync::{Arc, Mutex, PoisonError};

use keygate_keys::Clock;
use time::{Duration, OffsetDateTime};

/// A [`Clock`] that starts at the system's time and moves only when told, for
/// the stores' `with_clock` (expiry and usage refills without waiting).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock at the current system time.
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(OffsetDateTime::now_utc())))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
