//! `Client`: HTTP requests over pooled keep-alive connections (Go's `http.Client`).
//!
//! Connections are dialed with gonet's `TcpStream` (a blocking connect: the goroutine parks)
//! and handed to hyper's client connection; each connection's driver future runs on a
//! goroutine of its own. The pool keeps, per `host:port`, HTTP/1 senders (a sender is
//! reusable once the previous response's body was read to the end: `is_ready`) and at most
//! one HTTP/2 sender (multiplexed, cloned per request). Closed senders are dropped when met.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

impl ClientBuilder {
    /// Bounds each dial (default: none).
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
    /// Speaks HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2 = true;
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

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
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
        ClientBuilder { connect_timeout: None, timeout: None, max_idle_per_host: 32, http2: false }
    }

    /// Sends `req` (an `http://` absolute URI) and returns the response with its body still to
    /// be read. Bounded by the client's timeout.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> io::Result<Response<Incoming>> {
        timeout(self.inner.cfg.timeout, self.send_inner(req)).await?
    }

    /// `GET uri`, blocking the goroutine (or thread) until the whole body has arrived.
    pub fn get(&self, uri: &str) -> io::Result<Response<Bytes>> {
        let uri: Uri = uri.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let req = Request::get(uri).body(Full::new(Bytes::new())).map_err(other)?;
        crate::block_on(timeout(self.inner.cfg.timeout, async {
            let resp = self.send_inner(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(other)?.to_bytes();
            Ok(Response::from_parts(parts, body))
        }))?
    }

    async fn send_inner(&self, mut req: Request<Full<Bytes>>) -> io::Result<Response<Incoming>> {
        let uri = req.uri().clone();
        match uri.scheme_str() {
            Some("http") => {}
            s => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("gonet/hyper client: unsupported scheme {s:?} in {uri}"),
                ))
            }
        }
        let host = uri.host().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}"))
        })?;
        let key = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        if !req.headers().contains_key(hyper::header::HOST) {
            let v = uri.authority().map(|a| a.as_str()).unwrap_or(host);
            req.headers_mut().insert(hyper::header::HOST, v.parse().map_err(other)?);
        }
        let mut sender = match self.take(&key) {
            Some(s) => s,
            None => self.connect(&key).await?,
        };
        let resp = match &mut sender {
            Sender::H1(s) => {
                // HTTP/1 sends the origin form (`/path?query`).
                let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                *req.uri_mut() = pq.parse().map_err(other)?;
                s.send_request(req).await
            }
            Sender::H2(s) => s.send_request(req).await,
        };
        self.put(key, sender);
        resp.map_err(other)
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
        let i = list.iter().position(|s| matches!(s, Sender::H1(s) if s.is_ready()))?;
        Some(list.swap_remove(i))
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

    async fn connect(&self, key: &str) -> io::Result<Sender> {
        let stream = match self.inner.cfg.connect_timeout {
            Some(t) => TcpStream::connect_timeout(key, t)?,
            None => TcpStream::connect(key)?,
        };
        stream.set_nodelay(true)?;
        if self.inner.cfg.http2 {
            let (s, conn) = http2::Builder::new(Executor)
                .timer(Timer)
                .handshake(Io(stream))
                .await
                .map_err(other)?;
            crate::go_named("http2 client conn", move || drop(crate::block_on(conn)));
            Ok(Sender::H2(s))
        } else {
            let (s, conn) = http1::handshake(Io(stream)).await.map_err(other)?;
            crate::go_named("http client conn", move || drop(crate::block_on(conn)));
            Ok(Sender::H1(s))
        }
    }
}
