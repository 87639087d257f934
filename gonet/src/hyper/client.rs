//! `Client`: HTTP requests over pooled keep-alive connections (Go's `http.Client`).
//!
//! Connections are dialed with gonet's `TcpStream` (a blocking connect: the goroutine parks)
//! and handed to hyper's client connection; each connection's driver future runs as a task
//! (polled by the worker's shared runner goroutines: an idle pooled connection holds no
//! goroutine and no stack). `https://` (features `hyper` + `rustls`) runs a TLS handshake first
//! (the server name from the URI, the user's `rustls::ClientConfig`), and ALPN picks HTTP/2
//! (`h2`) or HTTP/1.1. The pool keeps, per `scheme://host:port`, idle HTTP/1 senders and at
//! most one HTTP/2 sender (multiplexed, cloned per request). An HTTP/1 sender is out of the
//! pool while its request is in flight and goes back once hyper's connection is ready for the
//! next request, i.e. the whole response has arrived (a short body may still sit unread in the
//! response's buffer then; a body still streaming keeps the connection out): `get` waits for
//! that before it returns, so sequential `get`s reuse one connection; for `send` a task
//! waits for it. Closed senders are dropped when met.
//!
//! This pool is gonet's own: hyper-util's pooled client needs tokio's `net` and `sync`
//! features (mio), which the `hyper` feature keeps out. Use this `Client` in code written for
//! gonet (blocking-style `get`, connections back in the pool before `get` returns); use
//! `hyper_util::client::legacy::Client` with `gonet::hyper::Connector` (feature
//! `hyper-client-legacy`) where an API takes hyper-util's client or a tower stack built on it.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response, Uri};

use super::{timeout, Executor, Io, Timer};
use crate::net::TcpStream;

/// Configures a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    max_idle_per_host: usize,
    http2: bool,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientBuilder {
    /// Bounds each dial, TLS handshake included (default: none).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }
    /// Bounds each request, from dial to response headers (and, for [`Client::get`], the
    /// whole body) (default: none).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// HTTP/1 connections kept per host (default 32).
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = n;
        self
    }
    /// Speaks HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 on `http://` URLs
    /// (`https://` ones let ALPN choose).
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2 = true;
        self
    }
    /// The TLS configuration for `https://` URLs (features `hyper` + `rustls`): the roots the
    /// server's certificate must chain to, client certificates, versions. A config with no
    /// ALPN protocols offers `h2` and `http/1.1`; the server's choice decides the protocol.
    /// Without it, `https://` URLs fail with `InvalidInput`.
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, cfg: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(super::tls::client_config(cfg));
        self
    }
    /// The client.
    pub fn build(self) -> Client {
        Client { inner: Arc::new(Inner { cfg: self, pool: Mutex::default() }) }
    }
}

/// An HTTP client on goroutines (see the top of this file). Cheap to clone; clones share the
/// pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ClientBuilder,
    pool: Mutex<HashMap<String, Vec<Sender>>>,
}

type H1 = http1::SendRequest<Full<Bytes>>;

enum Sender {
    H1(H1),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::other(e)
}

impl Client {
    /// HTTP/1.1, no timeouts.
    pub fn new() -> Client {
        Client::builder().build()
    }

    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            connect_timeout: None,
            timeout: None,
            max_idle_per_host: 32,
            http2: false,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// Sends `req` (an `http://` or `https://` absolute URI) and returns the response with its body still to
    /// be read. Bounded by the client's timeout.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> io::Result<Response<Incoming>> {
        let (resp, busy) = timeout(self.inner.cfg.timeout, self.send_inner(req)).await??;
        if let Some((key, mut s)) = busy {
            // The connection returns to the pool once the caller has read the body to its
            // end; a task waits for that (or for the connection to close).
            let pool = Arc::downgrade(&self.inner);
            crate::runtime::task::spawn_here("http client conn reuse", async move {
                if s.ready().await.is_ok() {
                    if let Some(inner) = pool.upgrade() {
                        Client { inner }.put(key, Sender::H1(s));
                    }
                }
            });
        }
        Ok(resp)
    }

    /// `GET uri`, blocking the goroutine (or thread) until the whole body has arrived.
    pub fn get(&self, uri: &str) -> io::Result<Response<Bytes>> {
        let uri: Uri = uri.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let req = Request::get(uri).body(Full::new(Bytes::new())).map_err(other)?;
        crate::block_on(timeout(self.inner.cfg.timeout, async {
            let (resp, busy) = self.send_inner(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(other)?.to_bytes();
            // The body was read to its end: the connection is ready (or closing) as soon as
            // its driver has seen that, so it is back in the pool before `get` returns.
            if let Some((key, mut s)) = busy {
                if s.ready().await.is_ok() {
                    self.put(key, Sender::H1(s));
                }
            }
            Ok(Response::from_parts(parts, body))
        }))?
    }

    /// Sends `req` on a pooled or new connection. An HTTP/2 connection is back in the pool
    /// at once; an HTTP/1 one is returned (with its pool key) to go back once the response's
    /// body has been read.
    async fn send_inner(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> io::Result<(Response<Incoming>, Option<(String, H1)>)> {
        let uri = req.uri().clone();
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") if cfg!(feature = "rustls") => true,
            Some("https") => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "gonet/hyper client: {uri}: https needs gonet's features hyper and rustls"
                    ),
                ))
            }
            s => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("gonet/hyper client: unsupported scheme {s:?} in {uri}"),
                ))
            }
        };
        let host = uri.host().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}"))
        })?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let key = format!("{}://{host}:{port}", if https { "https" } else { "http" });
        if !req.headers().contains_key(hyper::header::HOST) {
            let v = uri.authority().map(|a| a.as_str()).unwrap_or(host);
            req.headers_mut().insert(hyper::header::HOST, v.parse().map_err(other)?);
        }
        let sender = match self.take(&key) {
            Some(s) => s,
            None => self.connect(host, port, https).await?,
        };
        match sender {
            Sender::H1(mut s) => {
                // HTTP/1 sends the origin form (`/path?query`).
                let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                *req.uri_mut() = pq.parse().map_err(other)?;
                let resp = s.send_request(req).await.map_err(other)?;
                Ok((resp, Some((key, s))))
            }
            Sender::H2(mut s) => {
                let resp = s.send_request(req).await;
                self.put(key, Sender::H2(s));
                Ok((resp.map_err(other)?, None))
            }
        }
    }

    /// Pooled connections that are open and idle (an HTTP/2 connection counts while open:
    /// it takes new streams).
    pub fn idle_connections(&self) -> usize {
        let pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        let open = |s: &&Sender| match s {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        };
        pool.values().map(|l| l.iter().filter(open).count()).sum()
    }

    /// Closes the pooled idle connections (Go's `Transport.CloseIdleConnections`); requests
    /// in flight keep theirs, which return to the pool as usual.
    pub fn close_idle_connections(&self) {
        let idle = std::mem::take(&mut *self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle); // outside the lock: dropping a sender lets its connection close
    }

    fn take(&self, key: &str) -> Option<Sender> {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        let list = pool.get_mut(key)?;
        list.retain(|s| match s {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        });
        if let Some(Sender::H2(s)) = list.first() {
            return Some(Sender::H2(s.clone()));
        }
        // Pooled HTTP/1 senders are idle (see `send_inner`); the last pooled is the warmest.
        list.pop()
    }

    fn put(&self, key: String, s: Sender) {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        let list = pool.entry(key).or_default();
        match s {
            Sender::H2(_) if !list.is_empty() => {} // the pooled one is shared
            s if list.len() < self.inner.cfg.max_idle_per_host.max(1) => list.push(s),
            _ => {} // over the limit: closes once idle
        }
    }

    async fn connect(&self, host: &str, port: u16, https: bool) -> io::Result<Sender> {
        let addr = format!("{host}:{port}");
        let start = Instant::now();
        let stream = match self.inner.cfg.connect_timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t)?,
            None => TcpStream::connect(&addr)?,
        };
        stream.set_nodelay(true)?;
        if !https {
            return handshake(Io(stream), self.inner.cfg.http2).await;
        }
        #[cfg(feature = "rustls")]
        {
            let cfg = self.inner.cfg.tls.clone().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gonet/hyper client: https://{addr} needs a TLS config \
                         (ClientBuilder::tls with the roots to trust)"
                    ),
                )
            })?;
            let left = self.inner.cfg.connect_timeout.map(|t| t.saturating_sub(start.elapsed()));
            let (tls, h2) =
                timeout(left, super::tls::connect(cfg, host, stream)).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("TLS handshake with {addr}: {e}"))
                })??;
            handshake(super::TokioIo(tls), h2).await
        }
        #[cfg(not(feature = "rustls"))]
        {
            let _ = start;
            Err(io::Error::new(io::ErrorKind::Unsupported, "https needs the rustls feature"))
        }
    }
}

/// Starts hyper's client connection on `io` (HTTP/2 if `h2`), its driver a task homed on this
/// worker (the connection is this goroutine's: its replies wake the task here).
async fn handshake<I>(io: I, h2: bool) -> io::Result<Sender>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if h2 {
        let (s, conn) =
            http2::Builder::new(Executor).timer(Timer).handshake(io).await.map_err(other)?;
        crate::runtime::task::spawn_here("http2 client conn", async move { drop(conn.await) });
        Ok(Sender::H2(s))
    } else {
        let (s, conn) = http1::handshake(io).await.map_err(other)?;
        crate::runtime::task::spawn_here("http client conn", async move { drop(conn.await) });
        Ok(Sender::H1(s))
    }
}
