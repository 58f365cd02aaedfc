//! Coalescing of `last_used_at` writes.
//!
//! Verification runs on every request, and writing `last_used_at` each time would
//! turn every read into a write. Instead each store keeps a [`LastUsed`] map of key
//! id → when its `last_used_at` was last handed to the writer. A verification asks
//! [`LastUsed::due`]; only when the last write for that key is at least
//! [`LAST_USED_INTERVAL`] old does the store queue a write, without waiting for it
//! (SQLite: the writer thread's queue; PostgreSQL: a background task). A full queue
//! drops the update: `last_used_at` is a hint accurate to about a minute, never
//! worth slowing or failing a request for.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keygate_token::KeyId;

/// At most one `last_used_at` write per key per this interval, per process.
pub(crate) const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);

/// Above this many remembered keys in one shard, entries older than the interval
/// are pruned.
const PRUNE_ABOVE: usize = 1_000;

/// Independent maps, so that concurrent verifications of different keys rarely
/// meet on one lock.
const SHARDS: usize = 16;

/// Hashes a [`KeyId`] cheaply (SipHash costs more than the rest of the check).
///
/// No flooding risk: key ids are drawn from the operating system's CSPRNG, and an
/// id is remembered only after its token verified, so nobody can choose ids that
/// collide.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Shard = HashMap<KeyId, Instant, BuildHasherDefault<IdHasher>>;

/// Remembers when each key's `last_used_at` was last written.
#[derive(Debug, Default)]
pub(crate) struct LastUsed {
    shards: [Mutex<Shard>; SHARDS],
}

impl LastUsed {
    /// Whether a `last_used_at` write for `id` is due now; if so, records it as done.
    pub(crate) fn due(&self, id: KeyId) -> bool {
        let shard = usize::from(id.as_str().as_bytes().first().copied().unwrap_or(0)) % SHARDS;
        let now = Instant::now();
        let mut written = match self.shards[shard].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(at) = written.get(&id)
            && now.duration_since(*at) < LAST_USED_INTERVAL
        {
            return false;
        }
        if written.len() >= PRUNE_ABOVE {
            written.retain(|_, at| now.duration_since(*at) < LAST_USED_INTERVAL);
        }
        written.insert(id, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_per_key_per_interval() {
        let lu = LastUsed::default();
        let a: KeyId = "AAAAAAAAAAAA".parse().unwrap();
        let b: KeyId = "BBBBBBBBBBBB".parse().unwrap();
        assert!(lu.due(a));
        assert!(!lu.due(a));
        assert!(lu.due(b));
        assert!(!lu.due(b));
    }
}
