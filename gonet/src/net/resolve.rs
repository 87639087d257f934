//! Address resolution that never blocks a worker: host names are looked up on the blocking
//! pool while the goroutine parks; literal addresses are converted in place.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::runtime::blocking_scoped;

/// Whether converting an `A` can never do a DNS lookup: std's socket-address and IP-address
/// types (and tuples, slices and references of them) convert without one. Anything else —
/// strings, or a user type — may resolve a name, so it goes to the blocking pool.
fn is_literal<A>() -> bool {
    let name = std::any::type_name::<A>();
    let known = ["SocketAddr", "IpAddr", "Ipv4Addr", "Ipv6Addr"].iter().any(|t| name.contains(t));
    known && !name.contains("str") && !name.contains("String")
}

/// Resolves `addr` to its socket addresses (on the blocking pool when called on a goroutine
/// and the address may need a lookup).
pub(crate) fn resolve<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<Vec<SocketAddr>> {
    let lookup = || addr.to_socket_addrs().map(|it| it.collect::<Vec<_>>());
    let addrs = if is_literal::<A>() { lookup()? } else { blocking_scoped(lookup)? };
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::is_literal;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    #[test]
    fn literal_types_are_recognised() {
        assert!(is_literal::<SocketAddr>());
        assert!(is_literal::<&SocketAddr>());
        assert!(is_literal::<(IpAddr, u16)>());
        assert!(is_literal::<(Ipv4Addr, u16)>());
        assert!(is_literal::<&[SocketAddr]>());
        assert!(!is_literal::<&str>());
        assert!(!is_literal::<String>());
        assert!(!is_literal::<(&str, u16)>());
    }
}
