//! `Connector`: gonet sockets for hyper-util's pooled client (feature `hyper-client-legacy`):
//! a `tower_service::Service<Uri>` that `hyper_util::client::legacy::Client` calls for each
//! new connection.
//!
//! A call checks the URI (`http`/`https`, a host, the port or 80/443), then dials with gonet's
//! [`Dialer`] on a goroutine of its own and waits for the result through a one-shot slot, so
//! the connector's future never blocks whoever polls it: hyper-util races it against the pool
//! (an idle connection coming back first wins, and the dial finishes in the background), and
//! a caller may poll several requests in one `block_on`. `https://` (feature `rustls` too)
//! then runs the TLS handshake on the socket's poll-based IO; ALPN's choice of `h2` is
//! reported to hyper-util (`Connected::negotiated_h2`), which then speaks HTTP/2 on it. The
//! connect timeout bounds the dial and the handshake together.
//!
//! The dial's slot: the dialing side stores the result once (or, if it ends without one, an
//! error: a dial is never left unanswered) and wakes the waker stored by the last poll; the
//! future takes the result when it finds one. Both sides hold the slot's `Arc`, so a future
//! dropped mid-dial leaves the socket in the slot, closed when the dialing side lets go.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};

#[cfg(feature = "rustls")]
use super::TokioIo;
use super::{timeout, Io};
use crate::net::{Dialer, TcpStream};

/// Connects `hyper_util::client::legacy::Client` to servers over gonet sockets (feature
/// `hyper-client-legacy`): `http://`, and `https://` with feature `rustls` and a config given
/// to `Connector::tls` (ALPN choosing HTTP/2 or HTTP/1.1).
///
/// hyper-util's client brings the pool (keep-alive, idle timeout, per-host limits), HTTP/2
/// multiplexing and the tower-shaped API that middleware and SDKs take; gonet supplies the
/// sockets, the [`Executor`](super::Executor) that runs its background tasks (connection
/// drivers, the pool's idle sweep) on goroutines, and the [`Timer`](super::Timer). Use it
/// inside a gonet runtime; `gonet::block_on(client.get(uri))` on a goroutine parks only that
/// goroutine. No tokio runtime is started.
///
/// Errors come back as hyper-util's `Error` with [`is_connect()`] true; its source is the
/// [`io::Error`] from here, Go-style: `dial tcp 127.0.0.1:1: connect: connection refused`,
/// `TLS handshake with localhost: invalid peer certificate: ...`, `InvalidInput` for a URI
/// that is not `http://` or `https://` with a host.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty, Full};
/// use hyper::{service::service_fn, Response};
/// use hyper_util::client::legacy::Client;
/// use gonet::hyper::{Connector, Executor, Server, Timer};
///
/// gonet::run(|| {
///     let ln = gonet::net::TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = ln.local_addr().unwrap();
///     let server = Server::new();
///     let handle = server.handle();
///     gonet::go(move || {
///         let svc = service_fn(|_req| async {
///             Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
///         });
///         server.serve(ln, svc).unwrap();
///     });
///
///     let client: Client<Connector, Empty<Bytes>> = Client::builder(Executor)
///         .timer(Timer)
///         .pool_timer(Timer)
///         .build(Connector::new().connect_timeout(std::time::Duration::from_secs(5)));
///     let uri = format!("http://{addr}/").parse().unwrap();
///     let resp = gonet::block_on(client.get(uri)).unwrap();
///     let body = gonet::block_on(resp.into_body().collect()).unwrap().to_bytes();
///     assert_eq!(body, "hello");
///     handle.shutdown(std::time::Instant::now());
/// });
/// ```
///
/// [`is_connect()`]: hyper_util::client::legacy::Error::is_connect
#[derive(Clone, Debug)]
pub struct Connector {
    dialer: Dialer,
    connect_timeout: Option<Duration>,
    nodelay: bool,
    #[cfg(feature = "rustls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Connector {
    fn default() -> Self {
        Connector::new()
    }
}

impl Connector {
    /// `http://` only (see `Connector::tls`), no connect timeout, `TCP_NODELAY` on,
    /// and [`Dialer::default()`]'s options (keep-alive every 15 s).
    pub fn new() -> Connector {
        Connector {
            dialer: Dialer::default(),
            connect_timeout: None,
            nodelay: true,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// Bounds each connection's setup: the dial (every resolved address tried, as
    /// [`Dialer`] shares the time between them) and the TLS handshake together. At the bound
    /// the connect fails with `TimedOut`. Default: none.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// Dials with `dialer`'s options (local address, keep-alive, its own timeout and
    /// deadline); [`connect_timeout`](Connector::connect_timeout) still bounds the whole
    /// connect.
    pub fn dialer(mut self, dialer: Dialer) -> Self {
        self.dialer = dialer;
        self
    }

    /// Sets `TCP_NODELAY` on new connections (default on: HTTP writes whole messages).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Enables `https://` with `cfg` (feature `rustls`): the roots the server's certificate
    /// must chain to, client certificates, versions. The server name is the URI's host. ALPN
    /// offers the config's protocols; a config naming none offers `h2` and `http/1.1`, so the
    /// server's choice decides between HTTP/2 and HTTP/1.1. Without it, `https://` URIs fail
    /// with `InvalidInput`.
    #[cfg(feature = "rustls")]
    pub fn tls(mut self, cfg: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(super::tls::client_config(cfg));
        self
    }

    /// Dials `uri`'s host and runs the TLS handshake if it is `https://`.
    async fn connect(self, uri: Uri) -> io::Result<MaybeTlsStream> {
        let (https, addr) = target(&uri)?;
        #[cfg(feature = "rustls")]
        let tls = match (https, self.tls.clone()) {
            (true, None) => return Err(needs_tls(&uri)),
            (_, tls) => tls,
        };
        #[cfg(not(feature = "rustls"))]
        if https {
            return Err(needs_tls(&uri));
        }
        let deadline = self.connect_timeout.and_then(|t| Instant::now().checked_add(t));
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut dialer = self.dialer.clone();
        if let Some(t) = self.connect_timeout {
            dialer.timeout = Some(dialer.timeout.map_or(t, |own| own.min(t)));
        }
        let dial = spawn_dial(dialer, addr.clone())?;
        let tcp = timeout(left(), dial).await.map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("dial tcp {addr}: i/o timeout"))
        })??;
        tcp.set_nodelay(self.nodelay)?;
        #[cfg(feature = "rustls")]
        if let Some(cfg) = tls.filter(|_| https) {
            let host = uri.host().unwrap_or_default();
            let (tls, h2) =
                timeout(left(), super::tls::connect(cfg, host, tcp)).await.map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("TLS handshake with {addr}: i/o timeout"),
                    )
                })??;
            return Ok(MaybeTlsStream(Inner::Tls(Box::new(TokioIo(tls)), h2)));
        }
        Ok(MaybeTlsStream(Inner::Plain(Io(tcp))))
    }
}

/// Whether `uri` is `https`, and the `host:port` to dial (80 or 443 when the URI names no
/// port). Anything but an `http`/`https` URI with a host is `InvalidInput`.
fn target(uri: &Uri) -> io::Result<(bool, String)> {
    let invalid = |what: &str| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("gonet/hyper connector: {uri}: {what}"))
    };
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(s) => return Err(invalid(&format!("unsupported scheme {s:?} (http or https)"))),
        None => return Err(invalid("no scheme (http:// or https://)")),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| invalid("no host"))?;
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // `host()` keeps an IPv6 address's brackets, so this parses as a socket address.
    Ok((https, format!("{host}:{port}")))
}

fn needs_tls(uri: &Uri) -> io::Error {
    let how = if cfg!(feature = "rustls") {
        "https needs a TLS config (Connector::tls with the roots to trust)"
    } else {
        "https needs gonet's feature rustls"
    };
    io::Error::new(io::ErrorKind::InvalidInput, format!("gonet/hyper connector: {uri}: {how}"))
}

impl tower_service::Service<Uri> for Connector {
    type Response = MaybeTlsStream;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        Connecting(Box::pin(self.clone().connect(uri)))
    }
}

/// The future of one [`Connector`] call: the connection, or the dial's or handshake's error.
pub struct Connecting(Pin<Box<dyn Future<Output = io::Result<MaybeTlsStream>> + Send>>);

impl Future for Connecting {
    type Output = io::Result<MaybeTlsStream>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Connecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Connecting")
    }
}

/// The dial's one-shot slot (see the top of this file): the result once it is there, and the
/// waker of the future's last poll.
#[derive(Default)]
struct Slot {
    state: Mutex<(Option<io::Result<TcpStream>>, Option<Waker>)>,
}

/// The dialing side of a [`Slot`]; dropped without a result (the dial panicked), it answers
/// with an error.
struct Answer(Arc<Slot>);

impl Answer {
    fn set(&self, r: io::Result<TcpStream>) {
        let waker = {
            let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.0.is_some() {
                return;
            }
            s.0 = Some(r);
            s.1.take()
        };
        // Outside the lock: waking may run scheduler code.
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.set(Err(io::Error::other("gonet/hyper connector: the dial ended without a result")));
    }
}

/// The waiting side of a [`Slot`].
struct Dialing(Arc<Slot>);

impl Future for Dialing {
    type Output = io::Result<TcpStream>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Starts dialing `addr` on a goroutine (a plain thread outside a gonet runtime); the
/// connection arrives through the returned future.
fn spawn_dial(dialer: Dialer, addr: String) -> io::Result<Dialing> {
    let slot = Arc::new(Slot::default());
    let answer = Answer(slot.clone());
    let dial = move || answer.set(dialer.dial(addr.as_str()));
    if crate::runtime::worker::current().is_some() {
        crate::try_go_named("http connector dial", dial)?;
    } else {
        std::thread::Builder::new().name("http-connector-dial".into()).spawn(dial)?;
    }
    Ok(Dialing(slot))
}

/// A connection made by [`Connector`]: a gonet [`TcpStream`], or TLS over one. hyper-util
/// drives it through `hyper::rt::Read`/`Write` and learns from
/// [`Connection::connected`] whether ALPN chose HTTP/2.
pub struct MaybeTlsStream(Inner);

enum Inner {
    Plain(Io<TcpStream>),
    /// The TLS stream and whether ALPN chose `h2`.
    #[cfg(feature = "rustls")]
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>, bool),
}

impl MaybeTlsStream {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match &self.0 {
            Inner::Plain(io) => &io.0,
            #[cfg(feature = "rustls")]
            Inner::Tls(tls, _) => tls.0.get_ref().0,
        }
    }

    /// The TLS session, for an `https://` connection (feature `rustls`).
    #[cfg(feature = "rustls")]
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.0 {
            Inner::Plain(_) => None,
            Inner::Tls(tls, _) => Some(tls.0.get_ref().1),
        }
    }
}

impl fmt::Debug for MaybeTlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0 {
            Inner::Plain(_) => "tcp",
            #[cfg(feature = "rustls")]
            Inner::Tls(..) => "tls",
        };
        f.debug_struct("MaybeTlsStream").field("kind", &kind).field("tcp", self.tcp()).finish()
    }
}

impl Connection for MaybeTlsStream {
    fn connected(&self) -> Connected {
        match &self.0 {
            #[cfg(feature = "rustls")]
            Inner::Tls(_, true) => Connected::new().negotiated_h2(),
            _ => Connected::new(),
        }
    }
}

/// Forwards a `hyper::rt::Read`/`Write` call to the variant's adapter.
macro_rules! forward {
    ($self:ident, $io:ident => $e:expr) => {
        match &mut $self.get_mut().0 {
            Inner::Plain($io) => {
                let $io = Pin::new($io);
                $e
            }
            #[cfg(feature = "rustls")]
            Inner::Tls($io, _) => {
                let $io = Pin::new(&mut **$io);
                $e
            }
        }
    };
}

impl hyper::rt::Read for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        forward!(self, io => hyper::rt::Read::poll_read(io, cx, buf))
    }
}

impl hyper::rt::Write for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self, io => hyper::rt::Write::poll_write(io, cx, buf))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, io => hyper::rt::Write::poll_write_vectored(io, cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Inner::Plain(io) => hyper::rt::Write::is_write_vectored(io),
            #[cfg(feature = "rustls")]
            Inner::Tls(io, _) => hyper::rt::Write::is_write_vectored(&**io),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, io => hyper::rt::Write::poll_flush(io, cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, io => hyper::rt::Write::poll_shutdown(io, cx))
    }
}
