//! hyper on goroutines (feature `hyper`): HTTP/1.1 and HTTP/2, server and client, with no
//! tokio runtime.
//!
//! * [`Io`] adapts a gonet stream to `hyper::rt::Read`/`Write` (poll-based socket I/O).
//! * [`Executor`] runs every future hyper spawns (HTTP/2 streams, connection tasks) as a
//!   gonet task: polled by the worker's runner goroutines on one hot stack, given a stack of
//!   its own only while it blocks (`runtime/task.rs`).
//! * [`Timer`] puts hyper's timers (header-read timeout, keep-alive, HTTP/2 pings) on
//!   gonet's timer heaps ([`crate::time::Delay`]).
//! * [`Server`] is Go's `http.Serve(listener, handler)`: one task per connection,
//!   HTTP/1.1 and prior-knowledge HTTP/2 (h2c) through hyper-util's auto builder, graceful
//!   [`ServerHandle::shutdown`].
//! * [`Client`] sends requests over pooled keep-alive connections, with timeouts.
//! * With feature `hyper-client-legacy`: `Connector`, gonet sockets for hyper-util's pooled
//!   client (`hyper_util::client::legacy::Client`), for code and middleware written for it.
//! * With feature `rustls` too: HTTPS. `Server::serve_tls` and the client's `https://`
//!   (a `rustls` config of the user's, ALPN choosing HTTP/2 or HTTP/1.1).
//!
//! Because a task that blocks keeps its runner goroutine while another runner polls the
//! others, a service may block goroutine-style — a gonet channel receive,
//! `gonet::time::sleep`, a blocking socket call — without stalling other connections; on
//! HTTP/2, each stream is a task too.

mod client;
#[cfg(feature = "hyper-client-legacy")]
mod connector;
mod server;
#[cfg(feature = "rustls")]
mod tls;

pub use client::{Client, ClientBuilder};
#[cfg(feature = "hyper-client-legacy")]
pub use connector::{Connecting, Connector, MaybeTlsStream};
pub use server::{HttpService, Server, ServerHandle};

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::net::{TcpStream, UnixStream};
use crate::time::Delay;

/// A stream hyper can drive through [`Io`]: gonet's [`TcpStream`] and [`UnixStream`].
pub trait Stream: Send + Sync + Unpin + 'static {
    /// See [`TcpStream::poll_read_uninit`].
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>>;
    /// See [`TcpStream::poll_write`].
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// See [`TcpStream::poll_write_vectored`].
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// See [`TcpStream::poll_shutdown`].
    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Closes the stream; pending and later operations fail (see [`TcpStream::close`]).
    fn close(&self) -> io::Result<()>;
}

macro_rules! impl_stream {
    ($t:ty) => {
        impl Stream for $t {
            fn poll_read_uninit(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [std::mem::MaybeUninit<u8>],
            ) -> Poll<io::Result<usize>> {
                <$t>::poll_read_uninit(self, cx, buf)
            }
            fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                <$t>::poll_write(self, cx, buf)
            }
            fn poll_write_vectored(
                &self,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                <$t>::poll_write_vectored(self, cx, bufs)
            }
            fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_shutdown(self, cx)
            }
            fn close(&self) -> io::Result<()> {
                <$t>::close(self)
            }
        }
    };
}
impl_stream!(TcpStream);
impl_stream!(UnixStream);

/// A shared stream (the server keeps one reference to close it on a forced shutdown).
impl<S: Stream> Stream for std::sync::Arc<S> {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_read_uninit(cx, buf)
    }
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        (**self).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }
    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_shutdown(cx)
    }
    fn close(&self) -> io::Result<()> {
        (**self).close()
    }
}

/// A gonet stream as hyper's I/O (`hyper::rt::Read` + `Write`).
#[derive(Debug)]
pub struct Io<T>(pub T);

impl<T> Io<T> {
    /// Wraps a stream.
    pub fn new(stream: T) -> Io<T> {
        Io(stream)
    }
    /// The stream.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: Stream> hyper::rt::Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `poll_read_uninit` only writes bytes into the cursor's unfilled memory, and
        // `advance(n)` covers exactly the `n` bytes it reports written.
        let n = match self.0.poll_read_uninit(cx, unsafe { buf.as_mut() }) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // SAFETY: as above.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: Stream> hyper::rt::Write for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_shutdown(cx)
    }
}

/// A stream with tokio's I/O traits (a `tokio_rustls` TLS stream over a gonet socket, say)
/// as hyper's I/O. (hyper-util's `TokioIo` is the same, behind its tokio-runtime feature.)
#[derive(Debug)]
pub struct TokioIo<T>(pub T);

impl<T: tokio::io::AsyncRead + Unpin> hyper::rt::Read for TokioIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the `ReadBuf` only writes initialised bytes into the cursor's unfilled
        // memory and `filled()` counts them, so advancing by that many is sound.
        let n = unsafe {
            let mut tbuf = tokio::io::ReadBuf::uninit(buf.as_mut());
            match Pin::new(&mut self.0).poll_read(cx, &mut tbuf) {
                Poll::Ready(Ok(())) => tbuf.filled().len(),
                other => return other,
            }
        };
        // SAFETY: as above.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> hyper::rt::Write for TokioIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// hyper's executor on goroutines: each spawned future runs as a task homed on the calling
/// worker (polled by its runner goroutines; it may block goroutine-style inside `poll`).
/// Must be used inside a gonet runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        // On this worker's run queue, in order with the goroutines woken meanwhile: an
        // HTTP/2 connection's streams all answer before the connection flushes (one write for
        // the burst, not one per stream).
        crate::runtime::task::spawn_here("hyper task", async move {
            fut.await;
        });
    }
}

/// hyper's timer on gonet's timers: makes hyper's timeouts (`header_read_timeout`, keep-alive,
/// HTTP/2 keep-alive pings) work without tokio.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

/// A [`Delay`] as hyper's `Sleep`.
struct Sleep(Delay);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(crate::time::delay(d)))
    }
    fn sleep_until(&self, at: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(crate::time::delay_until(at)))
    }
    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, at: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(mut s) => s.0.reset(at),
            None => *sleep = self.sleep_until(at),
        }
    }
}

/// Runs `fut` until it completes or `limit` passes (then `Err(TimedOut)`).
pub(crate) async fn timeout<F: Future>(limit: Option<Duration>, fut: F) -> io::Result<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut delay = limit.map(crate::time::delay);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match delay.as_mut().map(|d| Pin::new(d).poll(cx)) {
            Some(Poll::Ready(())) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out")))
            }
            _ => Poll::Pending,
        }
    })
    .await
}
