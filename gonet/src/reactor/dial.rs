//! `dial` and `dial_tls`: the client side, a [`Connection`] over a connected `net::TcpStream`.
//! It has no poller of its own: its reads and writes park the calling goroutine on the
//! netpoller, or block a plain thread, exactly as the stream's do. `dial_tls` (feature
//! `rustls`) completes a rustls client handshake before it returns (tls/); the connection
//! then reads and writes plaintext through the same API.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{ConnBox, ConnInner, Connection, Io, DEFAULT_INPUT_CAP, DEFAULT_OUTPUT_CAP};
use crate::net::TcpStream;

/// Connects to `addr` within `timeout` (the whole dial, each resolved address in turn) and
/// returns a client [`Connection`], usable on goroutines and plain threads. A timeout fails
/// with `TimedOut` naming the address. Dropping the box closes the connection (its close
/// callbacks run then, or at [`Connection::close`]).
pub fn dial<A: ToSocketAddrs>(addr: A, timeout: Duration) -> io::Result<Box<Connection>> {
    let deadline = Instant::now() + timeout;
    let inner = connect(addr, deadline, timeout)?;
    Ok(ConnBox::new(Arc::new(inner)).boxed())
}

/// Like [`dial`], over TLS (feature `rustls`; Go's `tls.DialWithDialer`): connects, then runs
/// a rustls client handshake with `config`, verifying the server as `server_name` (a DNS
/// name, sent as SNI, or an IP address), all within `timeout`. The connection it returns has
/// completed the handshake; its reads and writes are plaintext through the same
/// [`Connection`] API (what is written is encrypted when it is flushed), and
/// [`Connection::tls_version`] / [`Connection::alpn_protocol`] say what was negotiated.
/// [`Connection::close`] and dropping the box send `close_notify`.
///
/// Errors: `InvalidInput` for a malformed `server_name`; `InvalidData` when the handshake
/// fails (e.g. `invalid peer certificate: UnknownIssuer`), after the alert is sent;
/// `TimedOut` when the connect and handshake together take longer than `timeout`;
/// `UnexpectedEof` when the server closes during the handshake. Each names the address.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// # fn main() -> std::io::Result<()> {
/// # let ca: rustls::pki_types::CertificateDer<'static> = unimplemented!();
/// let mut roots = rustls::RootCertStore::empty();
/// roots.add(ca).map_err(std::io::Error::other)?;
/// let provider = Arc::new(rustls::crypto::ring::default_provider());
/// let cfg = rustls::ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()
///     .map_err(std::io::Error::other)?
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let mut c = gonet::reactor::dial_tls("127.0.0.1:9443", Arc::new(cfg), "localhost",
///     Duration::from_secs(5))?;
/// c.write_string("hello\n")?;
/// c.flush()?; // encrypted and sent
/// let reply = c.until(b'\n')?.to_vec(); // plaintext
/// c.release();
/// # let _ = reply;
/// c.close(); // close_notify, then the socket closes
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "rustls")]
pub fn dial_tls<A: ToSocketAddrs>(
    addr: A,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    timeout: Duration,
) -> io::Result<Box<Connection>> {
    let deadline = Instant::now() + timeout;
    // A bad name fails before any connection is made.
    let tls = super::tls::Tls::client(config, server_name)?;
    let mut inner = connect(addr, deadline, timeout)?;
    inner.tls = Some(Box::new(tls));
    let conn = ConnBox::new(Arc::new(inner)).boxed();
    let c = &conn.inner;
    if let Some(t) = &c.tls {
        t.client_handshake(c, deadline, timeout)?;
    }
    Ok(conn)
}

/// Connects to the first of `addr`'s addresses that answers before `deadline`.
fn connect<A: ToSocketAddrs>(
    addr: A,
    deadline: Instant,
    timeout: Duration,
) -> io::Result<ConnInner> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "dial: no address to connect to"));
    }
    let mut last = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(ConnInner::new(
                    Io::Client(s),
                    Some(a),
                    DEFAULT_INPUT_CAP,
                    DEFAULT_OUTPUT_CAP,
                ));
            }
            Err(e) => {
                last = Some(io::Error::new(e.kind(), format!("dial {a}: {e}")));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::TimedOut, format!("dial: timed out after {timeout:?}"))
    }))
}
