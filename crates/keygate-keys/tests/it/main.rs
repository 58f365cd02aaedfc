//! Integration tests of keygate-keys: one conformance suite (keygate-test's) run
//! against every store.

use keygate_test::{conformance, conformance_tests};

mod connect;
#[cfg(feature = "sqlite")]
mod durability;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
