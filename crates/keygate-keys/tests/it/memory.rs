//! The conformance suite on [`MemoryStore`].

use std::sync::Arc;

use async_trait::async_trait;
use keygate_keys::{KeyId, MemoryStore};
use time::OffsetDateTime;

use crate::conformance::{Harness, Hooks};

struct MemoryHooks(Arc<MemoryStore>);

#[async_trait]
impl Hooks for MemoryHooks {
    async fn set_expires_at(&self, id: &KeyId, at: OffsetDateTime) {
        self.0.set_expires_at_for_test(id, Some(at));
    }

    async fn dump(&self) -> Option<String> {
        None
    }

    async fn write_mark(&self, _id: &KeyId) -> String {
        self.0.writes_for_test().to_string()
    }
}

async fn make() -> Option<Harness> {
    let clock = keygate_test::ManualClock::new();
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    Some(Harness {
        store: store.clone(),
        hooks: Box::new(MemoryHooks(store)),
        clock,
    })
}

crate::conformance_tests!(make);
