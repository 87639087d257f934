//! `dial`: the client side, a [`Connection`] over a connected `net::TcpStream`. It has no
//! poller of its own: its reads and writes park the calling goroutine on the netpoller, or
//! block a plain thread, exactly as the stream's do.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::conn::{ConnBox, ConnInner, Connection, Io, DEFAULT_INPUT_CAP, DEFAULT_OUTPUT_CAP};
use crate::net::TcpStream;

/// Connects to `addr` within `timeout` (the whole dial, each resolved address in turn) and
/// returns a client [`Connection`], usable on goroutines and plain threads. A timeout fails
/// with `TimedOut` naming the address. Dropping the box closes the connection (its close
/// callbacks run then, or at [`Connection::close`]).
pub fn dial<A: ToSocketAddrs>(addr: A, timeout: Duration) -> io::Result<Box<Connection>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "dial: no address to connect to"));
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut last = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(a, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let inner =
                    ConnInner::new(Io::Client(s), Some(a), DEFAULT_INPUT_CAP, DEFAULT_OUTPUT_CAP);
                return Ok(ConnBox::new(Arc::new(inner)).boxed());
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
