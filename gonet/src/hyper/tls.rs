//! HTTPS for `gonet::hyper` (features `hyper` + `rustls`): rustls through tokio-rustls (which
//! needs tokio's IO traits only, no runtime) over gonet sockets, for [`Server::serve_tls`] and
//! the [`Client`]'s `https://`. ALPN picks the protocol: `h2` gives HTTP/2, anything else
//! (`http/1.1`, or no ALPN) HTTP/1.1. Configs with no ALPN protocols get `h2` and `http/1.1`.
//!
//! [`Server::serve_tls`]: super::Server::serve_tls
//! [`Client`]: super::Client

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use super::Stream;
use crate::net::TcpStream;

/// The ALPN protocols offered when a config names none: HTTP/2 first.
fn default_alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// `cfg`, with `h2` and `http/1.1` as its ALPN protocols if it names none.
pub(crate) fn client_config(cfg: Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    if !cfg.alpn_protocols.is_empty() {
        return cfg;
    }
    let mut c = (*cfg).clone();
    c.alpn_protocols = default_alpn();
    Arc::new(c)
}

/// As [`client_config`], for a server.
pub(crate) fn server_config(cfg: Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    if !cfg.alpn_protocols.is_empty() {
        return cfg;
    }
    let mut c = (*cfg).clone();
    c.alpn_protocols = default_alpn();
    Arc::new(c)
}

/// A [`Stream`] (a shared gonet socket, so the server can still close it) with tokio's IO
/// traits, for tokio-rustls.
pub(crate) struct StreamIo<S>(pub S);

impl<S: Stream> tokio::io::AsyncRead for StreamIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `poll_read_uninit` only writes bytes into the unfilled part, and the `n` it
        // returns were written, so they may be marked initialised.
        let n = match self.0.poll_read_uninit(cx, unsafe { buf.unfilled_mut() }) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // SAFETY: as above, `n` bytes of the unfilled part were written.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: Stream> tokio::io::AsyncWrite for StreamIo<S> {
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
        bufs: &[io::IoSlice<'_>],
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

/// The server side of a TLS connection over a gonet socket.
pub(crate) type ServerStream<S> = server::TlsStream<StreamIo<S>>;

/// Runs the server handshake on `conn`. (The connection then serves HTTP/2 if the client
/// opens with its preface, which it does when ALPN chose `h2`.)
pub(crate) async fn accept<S: Stream>(
    cfg: Arc<rustls::ServerConfig>,
    conn: S,
) -> io::Result<ServerStream<S>> {
    TlsAcceptor::from(cfg).accept(StreamIo(conn)).await
}

/// Runs the client handshake with `host` (a DNS name or an IP address, as in the URI) on `tcp`;
/// the stream and whether ALPN chose HTTP/2. A certificate that does not verify is an
/// `InvalidData` error naming the host and rustls's reason.
pub(crate) async fn connect(
    cfg: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> io::Result<(client::TlsStream<TcpStream>, bool)> {
    // The URI writes an IPv6 address in brackets; the name to verify has none.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string()).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("TLS server name {host:?}: {e}"))
    })?;
    let tls = TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {host}: {e}")))?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok((tls, h2))
}
