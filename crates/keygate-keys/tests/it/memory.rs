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
}

async fn make() -> Option<Harness> {
    let store = Arc::new(MemoryStore::new());
    Some(Harness {
        store: store.clone(),
        hooks: Box::new(MemoryHooks(store)),
    })
}

crate::conformance_tests!(make);
