//! What can go wrong while deciding a gate.

/// A boxed error from a [`GateStore`](crate::GateStore) backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a gate decision could not be made (as opposed to a decision that refuses the
/// call, which is a [`Decision`](crate::Decision)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The gate store failed; the call must not proceed.
    #[error("gate store failed")]
    Store(#[source] BoxError),
    /// The operating system could not provide randomness for a challenge.
    #[error("cannot generate a challenge")]
    Random(#[from] keygate_token::RandomError),
    /// The `confirm` argument is not `{"challenge": "…", "target": "…"}`.
    #[error("malformed confirm argument: {detail}")]
    MalformedConfirm {
        /// What is wrong with it, for a person.
        detail: String,
    },
    /// A configured MRTR secret is too short to seal request states with.
    #[error("the MRTR secret must be at least {min} bytes")]
    MrtrSecret {
        /// The least length, in bytes.
        min: usize,
    },
}

impl GateError {
    /// Wraps a store backend's error.
    pub fn store(err: impl Into<BoxError>) -> Self {
        Self::Store(err.into())
    }
}
