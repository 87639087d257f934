//! Address resolution that never blocks a worker: host names are looked up on the blocking
//! pool while the goroutine parks.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::runtime::blocking_scoped;

/// Resolves `addr` to its socket addresses (on the blocking pool when called on a goroutine).
pub(crate) fn resolve<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = blocking_scoped(|| addr.to_socket_addrs().map(|it| it.collect()))?;
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses"));
    }
    Ok(addrs)
}
