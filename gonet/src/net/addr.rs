//! Addresses: gonet's [`ToSocketAddrs`] trait, which parses before it resolves (Go's
//! `net.ResolveTCPAddr` order), and the resolution that keeps host-name lookups off the
//! workers.
//!
//! A literal address — a `SocketAddr`, an `(IpAddr, u16)`, or a string such as
//! `"127.0.0.1:80"`, `"[::1]:80"` or `":80"` — is converted in place, without a system call
//! and without the blocking pool: a saturated pool cannot delay it. Only a string whose host
//! part is a name (`"localhost:80"`, `("example.com", 443)`) goes to the resolver, on the
//! blocking pool, while the goroutine parks. Any std `ToSocketAddrs` value can be used through
//! the [`Lookup`] wrapper (resolved on the pool).
//!
//! An empty host follows Go: `":8080"` listens on every interface (IPv6 `[::]` accepting IPv4
//! too, or `0.0.0.0` where IPv6 is unavailable) and dials the local system (`127.0.0.1`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::runtime::blocking_scoped;

/// What an address value stands for, before any resolution.
#[doc(hidden)]
pub enum AddrSpec<'a> {
    /// Literal socket addresses, in order.
    Literal(Vec<SocketAddr>),
    /// A host (an IP literal, a name, or empty) and a port.
    HostPort(&'a str, u16),
    /// A value resolved by std's `ToSocketAddrs`, on the blocking pool.
    Lookup(&'a dyn LookupDyn),
}

/// A value whose std `to_socket_addrs` may block (see [`Lookup`]).
#[doc(hidden)]
pub trait LookupDyn: Sync {
    fn lookup(&self) -> io::Result<Vec<SocketAddr>>;
}

/// A value that names one or more socket addresses: gonet's version of std's trait of the
/// same name, implemented for the same types, that parses literal addresses in place and
/// sends only host names to the resolver.
///
/// A literal address — a `SocketAddr`, an `(IpAddr, u16)`, or a string such as
/// `"127.0.0.1:80"`, `"[::1]:80"` or `":80"` — is converted without a system call and without
/// the blocking pool, so a saturated pool cannot delay it. A host name (`"localhost:80"`,
/// `("example.com", 443)`) is looked up on the blocking pool while the goroutine parks. An
/// empty host follows Go: `":8080"` listens on every interface (IPv6 `[::]` accepting IPv4
/// too, or `0.0.0.0` without IPv6) and dials the local system (`127.0.0.1`).
///
/// Accepted forms: `SocketAddr` (and its V4/V6 types), `(IpAddr, u16)` (and the V4/V6
/// address types), `&[SocketAddr]`, `"host:port"` as `&str` or `String` (`host` an IP
/// literal, `[v6]`, a name, or empty), `(&str, u16)` and `(String, u16)`, references to any
/// of these, and [`Lookup`] around any std `ToSocketAddrs`.
pub trait ToSocketAddrs {
    /// The address before resolution (an implementation detail).
    #[doc(hidden)]
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>>;
}

/// Resolves any std [`ToSocketAddrs`](std::net::ToSocketAddrs) value on the blocking pool
/// (for address types of your own, or a custom resolver).
#[derive(Debug, Clone)]
pub struct Lookup<A>(pub A);

impl<A: std::net::ToSocketAddrs + Sync> LookupDyn for Lookup<A> {
    fn lookup(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.0.to_socket_addrs()?.collect())
    }
}

impl<A: std::net::ToSocketAddrs + Sync> ToSocketAddrs for Lookup<A> {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        Ok(AddrSpec::Lookup(self))
    }
}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {
            fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
                Ok(AddrSpec::Literal(vec![SocketAddr::from(*self)]))
            }
        }
    )*};
}
literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16),
    ([u8; 4], u16),
    ([u16; 8], u16)
);

impl ToSocketAddrs for [SocketAddr] {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        Ok(AddrSpec::Literal(self.to_vec()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        (**self).addr_spec()
    }
}

impl ToSocketAddrs for str {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        let (host, port) = split_host_port(self)?;
        Ok(AddrSpec::HostPort(host, port))
    }
}

impl ToSocketAddrs for String {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        self.as_str().addr_spec()
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        Ok(AddrSpec::HostPort(self.0, self.1))
    }
}

impl ToSocketAddrs for (String, u16) {
    fn addr_spec(&self) -> io::Result<AddrSpec<'_>> {
        Ok(AddrSpec::HostPort(self.0.as_str(), self.1))
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Splits `"host:port"`, `"[v6]:port"` or `":port"` (Go's `net.SplitHostPort`).
pub(crate) fn split_host_port(s: &str) -> io::Result<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| invalid(format!("address {s}: missing ']'")))?;
        let port = rest[end + 1..]
            .strip_prefix(':')
            .ok_or_else(|| invalid(format!("address {s}: missing port in address")))?;
        (&rest[..end], port)
    } else {
        let i =
            s.rfind(':').ok_or_else(|| invalid(format!("address {s}: missing port in address")))?;
        let host = &s[..i];
        if host.contains(':') {
            return Err(invalid(format!("address {s}: too many colons in address")));
        }
        (host, &s[i + 1..])
    };
    let port = port.parse::<u16>().map_err(|_| invalid(format!("address {s}: invalid port")))?;
    Ok((host, port))
}

/// What the addresses are for: an empty host means every interface when listening and the
/// local system when dialing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Purpose {
    Listen,
    Dial,
}

/// The addresses `a` stands for; host names are looked up on the blocking pool (when called
/// on a goroutine). Never empty on success.
pub(crate) fn resolve<A: ToSocketAddrs + ?Sized>(
    a: &A,
    purpose: Purpose,
) -> io::Result<Vec<SocketAddr>> {
    let addrs = match a.addr_spec()? {
        AddrSpec::Literal(v) => v,
        AddrSpec::HostPort(host, port) => host_port(host, port, purpose)?,
        AddrSpec::Lookup(l) => blocking_scoped(|| l.lookup())?,
    };
    if addrs.is_empty() {
        return Err(invalid("could not resolve to any addresses".into()));
    }
    Ok(addrs)
}

fn host_port(host: &str, port: u16, purpose: Purpose) -> io::Result<Vec<SocketAddr>> {
    if host.is_empty() {
        return Ok(match purpose {
            // Dual-stack `[::]` first; the listener falls back to 0.0.0.0 without IPv6.
            Purpose::Listen => {
                vec![(Ipv6Addr::UNSPECIFIED, port).into(), (Ipv4Addr::UNSPECIFIED, port).into()]
            }
            Purpose::Dial => vec![(Ipv4Addr::LOCALHOST, port).into()],
        });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // A name: the resolver may block, so it runs on the pool.
    blocking_scoped(|| {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(|it| it.collect::<Vec<_>>())
    })
    .map_err(|e| io::Error::new(e.kind(), format!("lookup {host}: {e}")))
}

/// Whether an address list is the dual-stack pair made for an empty listen host.
pub(crate) fn is_any_pair(addrs: &[SocketAddr]) -> bool {
    matches!(addrs, [SocketAddr::V6(a), SocketAddr::V4(b)]
        if a.ip().is_unspecified() && b.ip().is_unspecified() && a.port() == b.port())
}

/// Go shows an IPv4-mapped IPv6 address (a v4 peer of a dual-stack socket) as IPv4.
pub(crate) fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_host_port_forms() {
        assert_eq!(split_host_port("127.0.0.1:80").unwrap(), ("127.0.0.1", 80));
        assert_eq!(split_host_port(":8080").unwrap(), ("", 8080));
        assert_eq!(split_host_port("[::1]:443").unwrap(), ("::1", 443));
        assert_eq!(split_host_port("localhost:0").unwrap(), ("localhost", 0));
        for bad in ["no-port", "::1:80", "[::1]80", "[::1", "h:99999", "h:x"] {
            let e = split_host_port(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn literals_parse_in_place() {
        let r = |a: &dyn Fn() -> io::Result<Vec<SocketAddr>>| a().unwrap();
        assert_eq!(
            r(&|| resolve("10.1.2.3:7", Purpose::Dial)),
            vec!["10.1.2.3:7".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(r(&|| resolve(&("::1", 9), Purpose::Dial)), vec!["[::1]:9".parse().unwrap()]);
        assert_eq!(r(&|| resolve(":5", Purpose::Dial)), vec!["127.0.0.1:5".parse().unwrap()]);
        let any = r(&|| resolve(":5", Purpose::Listen));
        assert!(is_any_pair(&any), "{any:?}");
        assert_eq!(unmap("[::ffff:127.0.0.1]:5".parse().unwrap()), "127.0.0.1:5".parse().unwrap());
    }
}
