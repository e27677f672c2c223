//! The TCP side of serving: accepts connections and serves HTTP/1.1 on each (what the
//! SDKs speak to a plain-HTTP endpoint), tells handlers the client's address, and drains
//! open connections on shutdown. A connection that sends no complete request head within
//! the header timeout (silent, idle between requests, or trickling its headers) is closed,
//! so slow or idle clients cannot hold connections open forever; and at most
//! `max_connections` are served at once: past that, one more is accepted and waits for a
//! place, and the rest wait in the kernel's backlog until one closes (mini-redis's
//! semaphore), rather than each taking a file descriptor and a task. While one waits so, a
//! connection that has sat idle for `idle_yield` gives up its place: clients that keep
//! connections open and send a request now and then cannot hold every place while others
//! wait.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long shutdown waits for requests in flight before it drops them.
const DRAIN: Duration = Duration::from_secs(30);

/// Connections open at once unless the operator says otherwise (`--max-connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The longest pause between attempts after `accept` fails (out of file descriptors, say).
const MOST_BACKOFF: Duration = Duration::from_secs(1);

/// How connections are treated (`roster serve` flags).
#[derive(Debug, Clone)]
pub struct Connections {
    /// A connection that sends no complete request head within this long (silent, idle
    /// between requests, or trickling its headers) is closed.
    pub header_timeout: Duration,
    /// Connections served at once; past it, one more is accepted and waits for a place, the
    /// rest in the kernel's backlog.
    pub max: usize,
    /// While a new connection waits for a place, a connection idle this long (before its
    /// first request or between two) is closed to make room.
    pub idle_yield: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            header_timeout: Duration::from_secs(30),
            max: DEFAULT_MAX_CONNECTIONS,
            idle_yield: Duration::from_secs(1),
        }
    }
}

/// The places connections take, and the accept loop's call for one when none is free.
struct Places {
    open: Arc<Semaphore>,
    /// Whether the accept loop waits for a place.
    wanted: AtomicBool,
    /// Wakes one idle connection to give its place up.
    call: Notify,
}

impl Places {
    /// Resolves once this connection should give its place up: while the accept loop waits
    /// for one, after the connection has been idle for `after`. Never while it serves a
    /// request.
    async fn give_up(&self, idle: &watch::Sender<Option<Instant>>, after: Duration) {
        let mut state = idle.subscribe();
        loop {
            let since = *state.borrow_and_update();
            let Some(since) = since else {
                let _ = state.changed().await;
                continue;
            };
            tokio::select! {
                () = tokio::time::sleep_until(since + after) => {}
                _ = state.changed() => continue,
            }
            tokio::select! {
                () = self.call.notified() => {
                    let still_idle = state.borrow_and_update().is_some_and(|s| s == since);
                    let wanted = self.wanted.load(Ordering::SeqCst);
                    if still_idle && wanted {
                        return;
                    }
                    if wanted {
                        // Not this one after all: let the next idle one answer.
                        self.call.notify_one();
                    }
                }
                _ = state.changed() => {}
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (for at most 30 seconds).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: Connections,
    shutdown: impl Future<Output = ()>,
) {
    let places = Arc::new(Places {
        open: Arc::new(Semaphore::new(connections.max.max(1))),
        wanted: AtomicBool::new(false),
        call: Notify::new(),
    });
    let mut backoff = Duration::from_millis(10);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(connections.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors, say: wait, longer each time, rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Accepted before it has a place, so that a place is asked of the idle only when a
        // client is there to take it; the others wait in the backlog, as said above.
        let permit = match Arc::clone(&places.open).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                places.wanted.store(true, Ordering::SeqCst);
                places.call.notify_one();
                let permit = tokio::select! {
                    permit = Arc::clone(&places.open).acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                };
                places.wanted.store(false, Ordering::SeqCst);
                permit
            }
        };
        let _ = stream.set_nodelay(true);
        // Since when the connection has been idle; `None` while it serves a request.
        let idle = Arc::new(watch::Sender::new(Some(Instant::now())));
        let (busy, done) = (Arc::clone(&idle), Arc::clone(&idle));
        let service = app
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                busy.send_replace(None);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            })
            .map_future(move |answer| {
                let done = Arc::clone(&done);
                async move {
                    let answer = answer.await;
                    done.send_replace(Some(Instant::now()));
                    answer
                }
            });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let places = Arc::clone(&places);
        let idle_yield = connections.idle_yield;
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection closed");
                },
                // Dropping the connection closes it: it serves no request, and its last
                // answer went out `idle_yield` ago.
                () = places.give_up(&idle, idle_yield) => {
                    tracing::debug!(%peer, "idle connection closed for a waiting one");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 30 s; stopping anyway");
    }
}
