//! Errors of key stores and of verification.

use keygate_token::RandomError;

use crate::model::Principal;
use crate::name::NameError;

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The tenant, user, project or key does not exist (or belongs to another tenant).
    #[error("not found")]
    NotFound,
    /// A record with that unique name already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The request is inconsistent (for example an unknown project name).
    #[error("{0}")]
    Invalid(String),
    /// A tenant, user, project or key name holds a character names may not hold
    /// (see [`check_name_characters`](crate::check_name_characters)).
    #[error("a {what} name {reason}")]
    InvalidName {
        /// What was named: `tenant`, `user`, `project` or `key`.
        what: &'static str,
        /// Which character, and why it is refused.
        reason: NameError,
    },
    /// The storage backend failed or is unreachable. Retry later; nothing was changed.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// The operating system could not provide randomness for a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl StoreError {
    /// Wraps a backend error as [`StoreError::Unavailable`].
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        Self::Unavailable(e.into())
    }
}

/// Why a presented token was not accepted. Maps one to one to the HTTP error table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Bad shape, bad checksum, unknown id or hash mismatch: all look the same.
    #[error("key not found")]
    NotFound,
    /// The key was revoked.
    #[error("key revoked")]
    Revoked,
    /// The key expired.
    #[error("key expired")]
    Expired,
    /// The store could not answer; the key may well be valid.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// A usage-limited key has no verified requests left. It is valid otherwise (a
    /// revoked or expired key is [`VerifyError::Revoked`] or [`VerifyError::Expired`]
    /// and spends nothing).
    #[error("usage limit of the key reached")]
    UsageExceeded {
        /// Who the key stands for.
        principal: Box<Principal>,
        /// How long until its next refill; `None` when it is never refilled.
        retry_after: Option<std::time::Duration>,
    },
}
