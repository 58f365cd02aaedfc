//! The response future of [`Auth`](super::Auth).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;

/// The boxed inner future: verification awaits the store before the inner
/// service is called, so the two steps cannot be one named state machine without
/// naming the store's (boxed, `async_trait`) future anyway.
type Boxed<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send + 'static>>;

/// The future returned by [`Auth`](super::Auth): verification, then the inner
/// service. It is boxed (one allocation per request) because the store call is an
/// `async` trait method.
pub struct ResponseFuture<E> {
    inner: Boxed<E>,
}

impl<E> ResponseFuture<E> {
    pub(crate) fn new(inner: Boxed<E>) -> Self {
        Self { inner }
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
