//! Serving HTTP/1.1 connections with limits a slow or hostile client cannot outlast: a cap on
//! open connections, a time limit on sending a request head, a time limit on idle kept-alive
//! connections, and graceful shutdown (stop accepting, finish what is in flight).
//!
//! `axum::serve` offers none of these knobs, so this module runs hyper's HTTP/1 connection
//! itself, as `axum::serve` does, with a watchdog per connection:
//! - a connection waits for its next request (idle) at most [`ConnectionLimits::idle_timeout`],
//!   then it is closed without an answer (nothing was asked);
//! - once the first byte of a request has arrived, its head must be complete within
//!   [`ConnectionLimits::header_read_timeout`], else the client gets `408` (problem+json,
//!   `request_timeout`) and the connection is closed;
//! - while a request's body is on its way, each read must come within the same
//!   [`ConnectionLimits::header_read_timeout`] of the previous one, else `408` and close;
//! - while a request is handled or its answer written, the watchdog waits (handlers bound
//!   their own waits, bodies are at most 64 KiB);
//! - beyond [`ConnectionLimits::max_connections`] open connections, a new one gets `503`
//!   (`too_many_connections`, `Retry-After: 1`) and is closed; when even the few slots for
//!   such answers are taken (a flood), it is closed at once without an answer.
//!
//! Every request carries `ConnectInfo<SocketAddr>` (the client's address) in its extensions,
//! as `axum::serve` with connect info would give it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::ConnectionLimits;

/// Connections at the cap that may be answered `503` at once; beyond them a connection is
/// closed without an answer, so a flood cannot grow the work of refusing it.
const REFUSING_SLOTS: usize = 64;

/// How long a refusal (`503`) or a `408` may take to write and to let the client read it.
const FAREWELL_TIME: Duration = Duration::from_secs(1);

/// The security headers every answer carries (see `http::security_headers`), repeated here for
/// the answers written before or after the router.
const RAW_HEADERS: &str = "Content-Type: application/problem+json\r\n\
    Cache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\n\
    X-Frame-Options: DENY\r\n\
    Referrer-Policy: no-referrer\r\n\
    Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n\
    Connection: close\r\n";

fn raw_problem(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{RAW_HEADERS}{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn too_many_connections() -> Vec<u8> {
    raw_problem(
        "503 Service Unavailable",
        "Retry-After: 1\r\n",
        r#"{"type":"too_many_connections","title":"服务繁忙，请稍后重试","status":503,"detail":"the server has as many connections open as it accepts; retry in a moment"}"#,
    )
}

fn request_timeout() -> Vec<u8> {
    raw_problem(
        "408 Request Timeout",
        "",
        r#"{"type":"request_timeout","title":"请求超时","status":408,"detail":"the request (its head, or the rest of its body) did not arrive in time"}"#,
    )
}

/// Accepts and serves connections on `listener` until `shutdown` resolves, then stops
/// accepting, lets every connection finish the request in flight (idle ones close at once)
/// and returns when the last one is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSING_SLOTS));
    let mut refused = 0u64;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // wait a little rather than spin, as `axum::serve` does.
                    tracing::warn!(error = %err, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = signal_tx.closed() => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    refused,
                    "connection cap reached, refusing connections"
                );
            }
            if let Ok(slot) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    farewell(stream, &too_many_connections()).await;
                    drop(slot);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, remote, router, limits, signal_tx).await;
            drop(permit);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
}

/// Writes a last answer, stops writing, and gives the client a moment to read it: closing a
/// socket with unread request bytes would reset the connection and could lose the answer.
async fn farewell<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, answer: &[u8]) {
    let _ = tokio::time::timeout(FAREWELL_TIME, async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        loop {
            if tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? == 0 {
                return Ok::<_, std::io::Error>(());
            }
        }
    })
    .await;
}

/// Where a connection stands, shared by its reader, its service and its watchdog.
#[derive(Debug)]
struct Phase {
    /// Requests handled or answered right now (HTTP/1.1: one, pipelining aside).
    busy: u32,
    /// Since when the connection waits for a request (opened, or the last answer written).
    idle_since: Instant,
    /// When the first byte of the request being received arrived, while not busy.
    head_since: Option<Instant>,
    /// A request's body is still being received.
    body_pending: bool,
    /// When bytes last arrived.
    last_read: Instant,
}

#[derive(Debug)]
struct Shared {
    phase: Mutex<Phase>,
    changed: Notify,
}

/// What the watchdog decided.
enum Verdict {
    /// Idle too long: close without an answer.
    Idle,
    /// The request head, or the next part of its body, is late: answer `408` and close.
    SlowHead,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Shared {
            phase: Mutex::new(Phase {
                busy: 0,
                idle_since: Instant::now(),
                head_since: None,
                body_pending: false,
                last_read: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Phase) -> T) -> T {
        // A poisoned lock only means a panic elsewhere held it; the phase is still usable.
        let mut phase = self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut phase)
    }

    fn bytes_arrived(&self) {
        let started = self.with(|p| {
            p.last_read = Instant::now();
            if p.busy == 0 && p.head_since.is_none() {
                p.head_since = Some(Instant::now());
                true
            } else {
                false
            }
        });
        if started {
            self.changed.notify_one();
        }
    }

    fn request_started(&self, body_pending: bool) {
        self.with(|p| {
            p.busy += 1;
            p.head_since = None;
            p.body_pending = body_pending;
            p.last_read = Instant::now();
        });
        self.changed.notify_one();
    }

    fn body_received(&self) {
        self.with(|p| p.body_pending = false);
        self.changed.notify_one();
    }

    fn answer_written(&self) {
        self.with(|p| {
            p.busy = p.busy.saturating_sub(1);
            if p.busy == 0 {
                p.idle_since = Instant::now();
                p.head_since = None;
            }
        });
        self.changed.notify_one();
    }

    /// When the connection runs out of time, and why; `None` while a request is handled.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Verdict)> {
        self.with(|p| {
            if p.busy > 0 && p.body_pending {
                Some((p.last_read + limits.header_read_timeout, Verdict::SlowHead))
            } else if p.busy > 0 {
                None
            } else if let Some(since) = p.head_since {
                Some((since + limits.header_read_timeout, Verdict::SlowHead))
            } else {
                Some((p.idle_since + limits.idle_timeout, Verdict::Idle))
            }
        })
    }

    /// Resolves when the connection has run out of time.
    async fn watch(&self, limits: &ConnectionLimits) -> Verdict {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, verdict)) => {
                    if Instant::now() >= at {
                        return verdict;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// The socket, telling [`Shared`] when request bytes arrive.
struct Watched {
    stream: TcpStream,
    shared: Arc<Shared>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.shared.bytes_arrived();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request's body that tells [`Shared`] when it has all arrived (or the handler dropped it).
struct Receiving {
    body: Incoming,
    shared: Arc<Shared>,
    done: bool,
}

impl Receiving {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.body_received();
        }
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.finish();
    }
}

impl hyper::body::Body for Receiving {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let res = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(res, Poll::Ready(None | Some(Err(_)))) || self.body.is_end_stream() {
            self.finish();
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body that tells [`Shared`] when hyper is done with it (written or abandoned).
struct Tracked {
    body: Body,
    shared: Arc<Shared>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.shared.answer_written();
    }
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    signal_tx: watch::Sender<()>,
) {
    let shared = Shared::new();
    let io = TokioIo::new(Watched {
        stream,
        shared: shared.clone(),
    });
    let service_shared = shared.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let shared = service_shared.clone();
        shared.request_started(!hyper::body::Body::is_end_stream(req.body()));
        let receiving = shared.clone();
        async move {
            let mut req: Request = req.map(|body| {
                Body::new(Receiving {
                    body,
                    shared: receiving,
                    done: false,
                })
            });
            req.extensions_mut().insert(ConnectInfo(remote));
            let res = match router.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(res.map(|body| Tracked { body, shared }))
        }
    });
    let mut conn = hyper::server::conn::http1::Builder::new()
        // The watchdog times the head itself (hyper would close without an answer).
        .header_read_timeout(None)
        .serve_connection(io, service);
    let watchdog = shared.watch(&limits);
    tokio::pin!(watchdog);
    let signal = signal_tx.closed();
    tokio::pin!(signal);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            res = &mut conn => {
                if let Err(err) = res {
                    tracing::debug!(error = %err, %remote, "connection ended with an error");
                }
                return;
            }
            () = &mut signal, if !shutting_down => {
                shutting_down = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
            verdict = &mut watchdog => {
                match verdict {
                    Verdict::Idle => {}
                    Verdict::SlowHead => {
                        tracing::debug!(%remote, "request head too slow, answering 408");
                        let parts = conn.into_parts();
                        farewell(parts.io.into_inner().stream, &request_timeout()).await;
                    }
                }
                return;
            }
        }
    }
}
