//! Serving the app over TCP: the accept loop, the connection cap, the header
//! timeout, TCP_NODELAY and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::AbortOnDropHandle;
use tower::ServiceExt;

/// How connections are handled (from [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    pub(crate) header_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// The first and the longest wait after `accept` failed for want of resources.
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one "connection cap reached" warning this often.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);
/// The period of [`keep_a_timer_due`]: shorter than the timers every request arms.
const TIMER_FLOOR: Duration = Duration::from_secs(1);

/// Serves `service` (the layered routes) on `listener` until `shutdown` completes, then stops accepting and
/// waits for the open connections to finish their requests.
///
/// Each connection takes one of `max_connections` slots before it is accepted and
/// holds it until it closes; with no slot free the loop waits, and new connections
/// wait in the listen queue. Every accepted socket gets TCP_NODELAY (answers are
/// streamed in several small writes, which Nagle's algorithm would hold back until the
/// client acknowledges the previous one). The service sees the peer address as
/// `ConnectInfo<SocketAddr>`.
pub(crate) async fn serve<S, F>(
    listener: TcpListener,
    service: S,
    transport: Transport,
    shutdown: F,
) where
    S: tower::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let _floor = AbortOnDropHandle::new(tokio::spawn(keep_a_timer_due()));
    let slots = Arc::new(Semaphore::new(transport.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(transport.header_timeout);
    let mut cap = CapWarning::default();
    let mut accept_failures = AcceptBackoff::default();
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = take_slot(&slots, &mut cap, transport.max_connections) => permit,
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener) => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                accept_failures.succeeded();
                accepted
            }
            Err(e) => {
                // The slot goes back; wait (if at all) before trying again.
                drop(permit);
                if let Some(wait) = accept_failures.failed(&e) {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                continue;
            }
        };
        let service = service
            .clone()
            .map_request(move |req: http::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Header timeouts, resets and malformed requests: the client's business.
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Keeps one timer due within [`TIMER_FLOOR`] armed at all times, which spares each
/// request a system call.
///
/// Every request arms timers: hyper's header timeout (30 s by default) when its
/// connection waits for the next request, the upstream timeout (300 s) while it is
/// forwarded. tokio wakes its I/O driver (a `write` to an eventfd) whenever a timer is
/// armed that is due before every timer armed when the driver last parked, or when
/// none was: it cannot know that the driver is not parked but running this very
/// request. Under load that was 0.67–0.80 `write`s per proxied request. With a timer always
/// due within a second, no request's timer is ever the earliest, and the only wake-ups
/// left are this task's own, once a second.
async fn keep_a_timer_due() {
    let mut tick = tokio::time::interval(TIMER_FLOOR);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// One connection from `listener`, with TCP_NODELAY set.
async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on a client connection");
    }
    Ok((stream, peer))
}

/// A free connection slot, waiting for one when all are taken.
async fn take_slot(
    slots: &Arc<Semaphore>,
    cap: &mut CapWarning,
    max: usize,
) -> OwnedSemaphorePermit {
    if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
        return permit;
    }
    cap.reached(max);
    match Arc::clone(slots).acquire_owned().await {
        Ok(permit) => permit,
        // The semaphore is never closed.
        Err(_) => std::future::pending().await,
    }
}

/// Warns when the connection cap is reached, at most once a minute.
#[derive(Debug, Default)]
struct CapWarning {
    last: Option<Instant>,
}

impl CapWarning {
    fn reached(&mut self, max: usize) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < CAP_WARNING_EVERY)
        {
            return;
        }
        self.last = Some(now);
        tracing::warn!(
            max_connections = max,
            "connection cap reached: new connections wait until one closes \
             (raise --max-connections, and the open-file limit with it, if this is load)"
        );
    }
}

/// What to do after `accept` failed: a connection that went away before it was
/// accepted is simply skipped; anything else (out of descriptors, `EMFILE`/`ENFILE`,
/// or of memory) waits 10 ms, doubling up to 1 s, until an accept succeeds, so the loop
/// neither spins nor gives up. The first failure of an incident is a warning, the
/// recovery an info line.
#[derive(Debug, Default)]
struct AcceptBackoff {
    next: Option<Duration>,
}

impl AcceptBackoff {
    fn failed(&mut self, e: &io::Error) -> Option<Duration> {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::Interrupted
        ) {
            tracing::debug!(error = %e, "a connection went away before it was accepted");
            return None;
        }
        let wait = match self.next {
            None => {
                tracing::warn!(
                    error = %e,
                    "cannot accept connections; retrying (if the process is out of file \
                     descriptors, raise `ulimit -n` or lower --max-connections)"
                );
                BACKOFF_FIRST
            }
            Some(wait) => wait,
        };
        self.next = Some((wait * 2).min(BACKOFF_MAX));
        Some(wait)
    }

    fn succeeded(&mut self) {
        if self.next.take().is_some() {
            tracing::info!("accepting connections again");
        }
    }
}

/// Completes on SIGINT or SIGTERM (SIGINT alone off Unix): the usual `shutdown` future
/// for [`App::serve`](crate::App::serve).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(TcpStream::connect(addr));
        let (stream, peer) = accept(&listener).await.unwrap();
        let client = client.await.unwrap().unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(peer, client.local_addr().unwrap());
    }

    #[test]
    fn accept_failures_back_off_and_reset() {
        let mut backoff = AcceptBackoff::default();
        let emfile = io::Error::other("too many open files");
        let waits: Vec<_> = (0..9).map(|_| backoff.failed(&emfile)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            waits,
            [
                ms(10),
                ms(20),
                ms(40),
                ms(80),
                ms(160),
                ms(320),
                ms(640),
                ms(1000),
                ms(1000)
            ]
        );
        backoff.succeeded();
        assert_eq!(
            backoff.failed(&emfile),
            ms(10),
            "a new incident starts short"
        );
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&reset), None, "a vanished peer is skipped");
    }

    /// `serve` leaves no task of its own behind, whether it returns after its shutdown
    /// or its future is dropped (an aborted server task).
    #[tokio::test(flavor = "current_thread")]
    async fn serving_leaves_no_task_behind() {
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let service = tower::service_fn(|_: http::Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let transport = || Transport {
            header_timeout: Duration::from_secs(30),
            max_connections: 4,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = tokio::spawn(serve(listener, service, transport(), async {
            stopped.await.ok();
        }));
        tokio::task::yield_now().await;
        assert!(alive() > 1, "the server and its timer task run");
        stop.send(()).unwrap();
        server.await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(alive(), 0, "after a graceful shutdown");

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = tokio::spawn(serve(
            listener,
            service,
            transport(),
            std::future::pending(),
        ));
        tokio::task::yield_now().await;
        assert!(alive() > 1, "the server and its timer task run");
        server.abort();
        assert!(server.await.unwrap_err().is_cancelled());
        tokio::task::yield_now().await;
        assert_eq!(alive(), 0, "after the server's future was dropped");
    }

    #[test]
    fn the_cap_warning_is_throttled() {
        let mut cap = CapWarning::default();
        cap.reached(3);
        let first = cap.last.unwrap();
        cap.reached(3);
        assert_eq!(cap.last, Some(first));
    }
}
