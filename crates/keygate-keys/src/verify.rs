//! The one verification path every store uses.
//!
//! A store only knows how to load a [`KeyRow`] by public id; everything else (shape,
//! checksum, hash comparison in constant time, revoked, expired) happens here, so the
//! three stores cannot disagree about what a valid key is.

use std::future::Future;

use keygate_token::{KeyId, Token};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{StoreError, VerifyError};
use crate::hash::TokenHash;
use crate::model::{Principal, Refill};

/// Compared against when the id is unknown, so that an unknown id costs about as
/// much as a known id with a wrong secret.
const DUMMY_HASH: TokenHash = TokenHash::from_bytes([0x5a; 32]);

/// What a store loads for verification: the stored hash, the revocation mark and the
/// principal the key stands for (tenant, user, scopes, projects resolved to names).
#[derive(Debug, Clone)]
pub(crate) struct KeyRow {
    /// SHA-256 of the whole token, as stored.
    pub(crate) hash: TokenHash,
    /// Whether the key was revoked.
    pub(crate) revoked: bool,
    /// Who the key stands for, if the hash matches.
    pub(crate) principal: Principal,
    /// `Some` for a usage-limited key: each verification spends one.
    pub(crate) usage: Option<Usage>,
}

/// What verification needs of a usage-limited key beyond its row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    /// Its refill, if it has one.
    pub(crate) refill: Option<Refill>,
}

/// Verifies `raw`: parse (shape + checksum, no store access on failure), load the row
/// by public id with `load`, compare hashes in constant time, then revoked (wins) and
/// expired, by `clock`. A usage-limited key that passes then spends one with `spend`,
/// which the store runs as one atomic statement (a decrement guarded by
/// `remaining > 0`, refilling first when a refill is due) and which answers whether
/// one was left; `spend` is given the refill period `clock` is in (`None` without a
/// refill). A key without a limit never reaches `spend`: its verification writes
/// nothing.
pub(crate) async fn verify_with<F, Fut, S, SFut>(
    raw: &str,
    clock: &dyn Clock,
    load: F,
    spend: S,
) -> Result<Principal, VerifyError>
where
    F: FnOnce(KeyId) -> Fut,
    Fut: Future<Output = Result<Option<KeyRow>, StoreError>>,
    S: FnOnce(KeyId, Option<i64>) -> SFut,
    SFut: Future<Output = Result<bool, StoreError>>,
{
    // Checked in place: `raw` is hashed as given, so no copy of the secret is made.
    let Ok(id) = Token::check_id(raw) else {
        return Err(VerifyError::NotFound);
    };
    let presented = TokenHash::of(raw);
    let row = load(id).await.map_err(VerifyError::Unavailable)?;
    let usage = row.as_ref().and_then(|r| r.usage);
    let principal = decide(&presented, row, || clock.now())?;
    let Some(usage) = usage else {
        return Ok(principal);
    };
    let now = clock.now();
    let period = usage.refill.map(|r| r.interval.period(now));
    if spend(id, period).await.map_err(VerifyError::Unavailable)? {
        return Ok(principal);
    }
    Err(VerifyError::UsageExceeded {
        principal: Box::new(principal),
        retry_after: usage.refill.map(|r| {
            let wait = r.interval.next_start(now) - now;
            std::time::Duration::try_from(wait).unwrap_or_default()
        }),
    })
}

/// The decision once the row (or its absence) is known. `now` is called only for
/// a key with an expiry: most keys have none, and reading the clock is a
/// measurable part of a verification.
pub(crate) fn decide(
    presented: &TokenHash,
    row: Option<KeyRow>,
    now: impl FnOnce() -> OffsetDateTime,
) -> Result<Principal, VerifyError> {
    let Some(row) = row else {
        // Same work as for a known id, result ignored.
        std::hint::black_box(presented.ct_eq(&DUMMY_HASH));
        return Err(VerifyError::NotFound);
    };
    if !presented.ct_eq(&row.hash) {
        return Err(VerifyError::NotFound);
    }
    if row.revoked {
        return Err(VerifyError::Revoked);
    }
    if row.principal.expires_at.is_some_and(|at| at <= now()) {
        return Err(VerifyError::Expired);
    }
    Ok(row.principal)
}

/// What a usage-limited key has left at `now`: `remaining`, or the refill's amount
/// when a refill is due (the stored `period` is behind the one `now` is in).
pub(crate) fn remaining_at(
    remaining: Option<u64>,
    refill: Option<Refill>,
    period: Option<i64>,
    now: OffsetDateTime,
) -> Option<u64> {
    let remaining = remaining?;
    match (refill, period) {
        (Some(r), Some(p)) if r.interval.period(now) > p => Some(r.amount),
        _ => Some(remaining),
    }
}
