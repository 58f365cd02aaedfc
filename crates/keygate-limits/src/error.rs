//! The error type of this crate.

/// Why a rate-limit check or the construction of a limiter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The backend spec is neither `memory` nor a Redis URL. The spec is shown with any
    /// password replaced by `***`.
    #[error("unknown rate-limit backend `{spec}`: expected `memory` or a redis:// URL")]
    UnknownBackend {
        /// The spec given, redacted.
        spec: String,
    },
    /// The Redis URL could not be parsed or uses an unsupported scheme (the URL is
    /// shown with any password replaced by `***`).
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidRedisUrl {
        /// The URL given, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A Redis URL was given but this build has no Redis backend.
    #[error(
        "the Redis rate-limit backend is not compiled in (enable the `redis` feature of keygate-limits)"
    )]
    RedisNotCompiled,
    /// The backend could not answer in time and the limiter fails closed; the HTTP
    /// layer answers 503.
    #[error("rate-limit backend unavailable: {reason}")]
    Unavailable {
        /// What went wrong (an I/O error, a timeout, an unexpected reply).
        reason: String,
    },
}
