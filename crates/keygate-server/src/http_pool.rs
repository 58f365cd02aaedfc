//! The pooled HTTP/1.1 connections of one HTTP upstream: hyper's client connections,
//! kept idle between requests and put back the moment a response body ends.
//!
//! hyper-util's pooled client, used before, serves any number of hosts: it looks its pool
//! up by a hashed (scheme, authority) key on every checkout and every return, and for a
//! response whose body is still to be read it spawns a task that waits for the connection
//! to be idle again. A gateway has one upstream per pool and reads every body to its end
//! in the request's own task, so here the body hands its connection back itself, and no
//! task is spawned on the way (BENCHMARKS.md, issue 19, fifth pass).

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// Why a request could not be sent: the connect error or hyper's.
pub(crate) type SendError = Box<dyn std::error::Error + Send + Sync>;

type Sender = SendRequest<Full<Bytes>>;

/// The connections to one upstream (cheap to share: the state is behind an `Arc`).
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    /// What the connector is asked to connect to (its scheme and authority).
    target: Uri,
    /// Idle connections, the most recently used last (taken from the back, so that the
    /// busiest connections stay warm and the oldest age out at the front).
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.inner.target)
            .field("idle", &self.inner.lock_idle().len())
            .field("max_idle", &self.inner.max_idle)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool connecting to `target` (scheme and authority; its path is not used) with
    /// `connector`, keeping at most `max_idle` connections idle for at most
    /// `idle_timeout` each.
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        target: Uri,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                target,
                idle: Mutex::new(VecDeque::new()),
                max_idle,
                idle_timeout,
            }),
        }
    }

    /// Sends `req` (its URI in origin form, its `Host` set) on an idle connection, or on
    /// a new one, and returns the response with its body still to be read.
    ///
    /// A request an idle connection could not take (the upstream closed the connection
    /// while it was idle) is sent again on the next one, and at last on a new
    /// connection, as hyper-util's client did; a new connection's failure is the answer.
    /// Nothing is sent twice: hyper hands a request back only when none of it was written.
    pub(crate) async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut sender, reused) = match self.inner.checkout() {
                Some(sender) => (sender, true),
                None => (self.inner.connect().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let inner = Arc::clone(&self.inner);
                    return Ok(resp.map(|body| PooledBody::new(body, sender, inner)));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        // The queue is consistent at every point a panic could leave it.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that can take a request now; the ones
    /// found closed or past the idle timeout on the way are dropped.
    fn checkout(&self) -> Option<Sender> {
        let mut idle = self.lock_idle();
        while let Some(entry) = idle.pop_back() {
            if entry.since.elapsed() < self.idle_timeout && entry.sender.is_ready() {
                return Some(entry.sender);
            }
        }
        None
    }

    /// A new connection, its hyper connection task spawned.
    async fn connect(&self) -> Result<Sender, SendError> {
        use tower::ServiceExt as _;
        let io = self.connector.clone().oneshot(self.target.clone()).await?;
        let (sender, conn) = http1::Builder::new().handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection closed with an error");
            }
        });
        Ok(sender)
    }

    /// Puts back a connection whose response has been read to its end.
    fn give_back(self: Arc<Self>, mut sender: Sender) {
        if sender.is_ready() {
            self.park(sender);
        } else if !sender.is_closed() {
            // Its connection task (on another worker) has not yet asked for the next
            // request: the connection is parked once it has.
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    self.park(sender);
                }
            });
        }
    }

    fn park(&self, sender: Sender) {
        let now = Instant::now();
        let mut idle = self.lock_idle();
        // The oldest are at the front: those past the idle timeout, or closed by the
        // upstream, go (so an idle connection lasts no longer than the timeout once the
        // pool is used again).
        while idle.front().is_some_and(|e| {
            now.duration_since(e.since) >= self.idle_timeout || e.sender.is_closed()
        }) {
            idle.pop_front();
        }
        if idle.len() < self.max_idle {
            idle.push_back(Idle { sender, since: now });
        }
    }
}

/// An upstream response body that puts its connection back in the pool when it ends.
/// Dropped before its end, it drops the connection with it (hyper closes a connection
/// whose response was not read).
pub(crate) struct PooledBody {
    body: Incoming,
    conn: Option<(Sender, Arc<Inner>)>,
}

impl PooledBody {
    fn new(body: Incoming, sender: Sender, pool: Arc<Inner>) -> Self {
        let mut this = Self {
            body,
            conn: Some((sender, pool)),
        };
        if this.body.is_end_stream() {
            this.release();
        }
        this
    }

    fn release(&mut self) {
        if let Some((sender, pool)) = self.conn.take() {
            pool.give_back(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            // A broken body: its connection is not used again.
            Poll::Ready(Some(Err(_))) => this.conn = None,
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
