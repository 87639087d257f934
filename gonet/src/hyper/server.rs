//! `Server`: Go's `http.Serve(listener, handler)` for hyper services, with graceful shutdown.
//!
//! The accept loop runs on the caller (a goroutine); each connection is a task
//! (`runtime/task.rs`, homed on the least loaded worker) running hyper-util's auto connection (HTTP/1.1, or HTTP/2 when the client opens with
//! the HTTP/2 preface: h2c with prior knowledge, or after TLS's ALPN chose `h2`). With TLS
//! (`serve_tls`), the connection's task runs the handshake first, bounded by
//! `tls_handshake_timeout`; a failed handshake is reported (as Go's `http: TLS handshake
//! error from ADDR`) and the connection closed.
//!
//! # Shutdown
//!
//! Shared state: `closing`, the listener's close function, and the live connections, each with
//! a signal word (`RUN → GRACEFUL → FORCE`, only forward) and the waker of its task's
//! future. [`ServerHandle::shutdown`] sets `closing`, closes the listener (the accept loop
//! returns `Ok`), moves every connection to `GRACEFUL` and wakes it: its future calls hyper's
//! `graceful_shutdown` (idle HTTP/1 connections close, busy ones after their response;
//! HTTP/2 sends GOAWAY and finishes open streams). It waits for the set to empty until the
//! deadline, then moves the rest to `FORCE`: their futures return, dropping (closing) the
//! connection. A connection removes itself when its task ends, by a drop guard, so a
//! panicking service does not leave it counted.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::server::conn::auto;

use super::{Executor, Io, Stream, Timer};
use crate::net::Listener;

// The signal word: 0 (run), then GRACEFUL, then FORCE.
const GRACEFUL: u8 = 1;
const FORCE: u8 = 2;

/// An HTTP server for hyper services on goroutines (see the top of this file).
///
/// ```no_run
/// use gonet::hyper::Server;
/// use http_body_util::Full;
/// use hyper::{body::Bytes, service::service_fn, Response};
/// gonet::run(|| {
///     let ln = gonet::net::TcpListener::bind("127.0.0.1:8080").unwrap();
///     let svc = service_fn(|_req| async {
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello\n"))))
///     });
///     Server::new().serve(ln, svc).unwrap();
/// });
/// ```
#[derive(Clone)]
pub struct Server {
    builder: auto::Builder<Executor>,
    shared: Arc<Shared>,
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    handshake_timeout: Option<Duration>,
}

/// The services a [`Server`] runs: hyper services (`service_fn(..)`, tower services through
/// an adapter) whose futures and bodies may move between goroutines. Implemented for every
/// such `Service`.
pub trait HttpService:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResBody>,
        Future: Send + 'static,
        Error: Into<Box<dyn StdError + Send + Sync>>,
    > + Send
    + 'static
{
    /// The response body.
    type ResBody: Body<Data: Send, Error: Into<Box<dyn StdError + Send + Sync>>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type ResBody = B;
}

/// Stops a [`Server`] from another goroutine or thread.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    closing: AtomicBool,
    close_listener: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    conns: Mutex<HashMap<u64, Arc<Signal>>>,
    next: AtomicU64,
}

/// One connection's shutdown signal.
struct Signal {
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
    /// Closes the connection's socket (FORCE: a service blocked goroutine-style is not
    /// polled, so its future cannot drop the connection; as Go's `Server.Close`, the socket
    /// is closed under it and the service runs on to its end).
    close: Box<dyn Fn() + Send + Sync>,
}

impl Signal {
    fn raise(&self, to: u8) {
        if self.state.fetch_max(to, Ordering::SeqCst) < FORCE && to == FORCE {
            (self.close)();
        }
        // Cloned, not taken: the connection's poll keeps it there (see `conn`).
        let w = self.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// HTTP/1.1 and prior-knowledge HTTP/2, hyper's defaults, timers on gonet.
    pub fn new() -> Server {
        let mut builder = auto::Builder::new(Executor);
        builder.http1().timer(Timer);
        builder.http2().timer(Timer);
        Server { builder, shared: Arc::default(), handshake_timeout: Some(Duration::from_secs(10)) }
    }

    /// hyper-util's builder, to configure the protocols (e.g.
    /// `.http1().header_read_timeout(..)`, `.http2().max_concurrent_streams(..)`).
    pub fn builder(&mut self) -> &mut auto::Builder<Executor> {
        &mut self.builder
    }

    /// A handle that shuts this server down.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle { shared: self.shared.clone() }
    }

    /// Accepts connections from `ln` and serves each as a task of its own until the server is
    /// shut down (then `Ok`), or `accept` fails with an error that is not a resource limit.
    /// On `EMFILE`/`ENFILE` it backs off (5 ms, doubling to 1 s) as Go's `http.Serve` does.
    pub fn serve<L, S>(&self, ln: L, svc: S) -> io::Result<()>
    where
        L: Listener + 'static,
        L::Conn: Stream,
        S: HttpService + Clone,
    {
        self.accept_loop(ln, |conn| self.spawn_conn(conn, svc.clone()))
    }

    /// Bounds each TLS handshake of [`serve_tls`](Server::serve_tls) (default 10 s; `None`:
    /// unbounded).
    #[cfg(feature = "rustls")]
    pub fn tls_handshake_timeout(&mut self, d: Option<Duration>) -> &mut Self {
        self.handshake_timeout = d;
        self
    }

    /// As [`serve`](Server::serve), over TLS (feature `rustls`, Go's `http.ServeTLS`): each
    /// connection's task runs the handshake with `tls` (a config with no ALPN protocols
    /// offers `h2` and `http/1.1`), then serves HTTP/2 if ALPN chose `h2`, else HTTP/1.1.
    #[cfg(feature = "rustls")]
    pub fn serve_tls<L, S>(&self, ln: L, tls: Arc<rustls::ServerConfig>, svc: S) -> io::Result<()>
    where
        L: Listener + 'static,
        L::Conn: Stream,
        S: HttpService + Clone,
    {
        let tls = super::tls::server_config(tls);
        self.accept_loop(ln, |conn| {
            let peer = crate::net::Conn::peer_addr(&conn);
            let conn = Arc::new(conn);
            let c = conn.clone();
            let (this, svc, tls) = (self.clone(), svc.clone(), tls.clone());
            crate::runtime::task::spawn("https conn", async move {
                let hs = super::timeout(this.handshake_timeout, super::tls::accept(tls, conn));
                let limit = this.handshake_timeout.unwrap_or_default();
                let hs = hs.await.unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("timed out after {limit:?}"),
                    ))
                });
                match hs {
                    Ok(stream) => {
                        let close = Box::new(move || drop(c.close()));
                        this.conn(super::TokioIo(stream), svc, close).await
                    }
                    Err(e) => {
                        let peer = peer.map_or_else(|e| format!("? ({e})"), |a| a.to_string());
                        log_or_eprint(&format!(
                            "gonet/hyper: TLS handshake error from {peer}: {e}"
                        ));
                    }
                }
            });
        })
    }

    /// Accepts from `ln` into `spawn` until shutdown (see [`serve`](Server::serve)).
    fn accept_loop<L: Listener + 'static>(
        &self,
        ln: L,
        mut spawn: impl FnMut(L::Conn),
    ) -> io::Result<()> {
        let ln = Arc::new(ln);
        {
            let ln = ln.clone();
            *self.shared.close_listener.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Box::new(move || drop(ln.close())));
        }
        if self.shared.closing.load(Ordering::SeqCst) {
            return Ok(()); // shut down before it started
        }
        let mut backoff = Duration::ZERO;
        loop {
            let conn = match ln.accept() {
                Ok(c) => c,
                Err(_) if self.shared.closing.load(Ordering::SeqCst) => return Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    log_or_eprint(&format!("gonet/hyper: accept: {e}; retrying in {backoff:?}"));
                    crate::time::sleep(backoff);
                    continue;
                }
                Err(e) => return Err(e),
            };
            backoff = Duration::ZERO;
            spawn(conn);
        }
    }

    fn spawn_conn<C, S>(&self, conn: C, svc: S)
    where
        C: Stream,
        S: HttpService,
    {
        let conn = Arc::new(conn);
        let c = conn.clone();
        let this = self.clone();
        crate::runtime::task::spawn("http conn", async move {
            this.conn(Io(conn), svc, Box::new(move || drop(c.close()))).await
        });
    }

    /// Serves one connection on the calling goroutine until it ends: `io` is any hyper I/O
    /// (a TLS stream over a gonet socket through [`TokioIo`](super::TokioIo), for example).
    /// The connection counts for [`ServerHandle::shutdown`]: a graceful shutdown ends it after
    /// its in-flight requests; past the deadline its future is dropped (closing `io`) at its
    /// next wake. Errors from the peer end the connection quietly, as in Go.
    pub fn serve_connection<I, S>(&self, io: I, svc: S)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: HttpService,
    {
        crate::block_on(self.clone().conn(io, svc, Box::new(|| {})));
    }

    /// Serves one connection (see [`serve_connection`](Server::serve_connection)): the future
    /// a task runs for each accepted connection.
    async fn conn<I, S>(self, io: I, svc: S, close: Box<dyn Fn() + Send + Sync>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: HttpService,
    {
        let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let sig = Arc::new(Signal { state: AtomicU8::new(0), waker: Mutex::new(None), close });
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id, sig.clone());
        // Declared before the connection, so dropped after it: the socket is closed before
        // the connection leaves the live set (a forced close never reaches a reused socket).
        let _guard = Guard { shared: self.shared.clone(), id };
        if self.shared.closing.load(Ordering::SeqCst) {
            sig.raise(GRACEFUL); // accepted while shutting down: serve, then close
        }
        let mut conn = std::pin::pin!(self.builder.serve_connection(io, svc));
        let mut graceful = false;
        // A copy of the waker in `sig`, which `raise` never takes out: the poll compares
        // against it without the lock, and locks only when the waker changes.
        let mut last: Option<Waker> = None;
        let _ = std::future::poll_fn(|cx| {
            // The waker first, then the state: a `raise` after the load finds the waker.
            if !last.as_ref().is_some_and(|old| old.will_wake(cx.waker())) {
                last = Some(cx.waker().clone());
                *sig.waker.lock().unwrap_or_else(|e| e.into_inner()) = last.clone();
            }
            match sig.state.load(Ordering::SeqCst) {
                FORCE => return Poll::Ready(Ok(())),
                GRACEFUL if !graceful => {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ => {}
            }
            conn.as_mut().poll(cx)
        })
        .await;
    }
}

impl ServerHandle {
    /// Stops accepting, lets in-flight requests finish until `deadline`, then closes what is
    /// left. Returns whether every connection finished in time (Go's `Server.Shutdown`).
    pub fn shutdown(&self, deadline: Instant) -> bool {
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Some(close) = &*self.shared.close_listener.lock().unwrap_or_else(|e| e.into_inner())
        {
            close();
        }
        for s in self.signals() {
            s.raise(GRACEFUL);
        }
        loop {
            if self.active() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                break;
            }
            crate::time::sleep(Duration::from_millis(5).min(deadline - Instant::now()));
        }
        for s in self.signals() {
            s.raise(FORCE);
        }
        false
    }

    /// Connections being served.
    pub fn active(&self) -> usize {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn signals(&self) -> Vec<Arc<Signal>> {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
}

/// Removes a connection from the live set when its task ends (normally or by a panic).
struct Guard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

pub(crate) fn log_or_eprint(msg: &str) {
    if log::log_enabled!(log::Level::Error) {
        log::error!("{msg}");
    } else {
        eprintln!("{msg}");
    }
}
