//! The one verification path every store uses.
//!
//! A store only knows how to load a [`KeyRow`] by public id; everything else (shape,
//! checksum, hash comparison in constant time, revoked, expired) happens here, so the
//! three stores cannot disagree about what a valid key is.

use std::future::Future;

use keygate_token::{KeyId, Token};
use time::OffsetDateTime;

use crate::error::{StoreError, VerifyError};
use crate::hash::TokenHash;
use crate::model::Principal;

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
}

/// Verifies `raw`: parse (shape + checksum, no store access on failure), load the row
/// by public id with `load`, compare hashes in constant time, then revoked (wins) and
/// expired. Returns the key id with the principal so the caller can note its use.
pub(crate) async fn verify_with<F, Fut>(raw: &str, load: F) -> Result<Principal, VerifyError>
where
    F: FnOnce(KeyId) -> Fut,
    Fut: Future<Output = Result<Option<KeyRow>, StoreError>>,
{
    // Checked in place: `raw` is hashed as given, so no copy of the secret is made.
    let Ok(id) = Token::check_id(raw) else {
        return Err(VerifyError::NotFound);
    };
    let presented = TokenHash::of(raw);
    let row = load(id).await.map_err(VerifyError::Unavailable)?;
    decide(&presented, row, OffsetDateTime::now_utc)
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
