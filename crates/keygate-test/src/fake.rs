//! Fake verifiers to put behind the authentication layer.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use keygate_keys::{Principal, StoreError, Verifier, VerifyError};

/// A verifier whose store is down: every [`verify`](Verifier::verify) fails with
/// [`VerifyError::Unavailable`] ("connection refused"), as a database that does not
/// answer would.
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct DownVerifier;

impl DownVerifier {
    /// The down verifier.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Verifier for DownVerifier {
    async fn verify(&self, _token: &str) -> Result<Principal, VerifyError> {
        Err(VerifyError::Unavailable(StoreError::unavailable(
            "connection refused",
        )))
    }
}

/// A verifier that counts its [`verify`](Verifier::verify) calls and delegates each
/// to another.
pub struct CountingVerifier {
    inner: Arc<dyn Verifier>,
    calls: AtomicUsize,
}

impl CountingVerifier {
    /// Counts the calls made to `inner` through it.
    pub fn new(inner: Arc<dyn Verifier>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    /// How many times `verify` was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for CountingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingVerifier")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Verifier for CountingVerifier {
    async fn verify(&self, token: &str) -> Result<Principal, VerifyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(token).await
    }
}
