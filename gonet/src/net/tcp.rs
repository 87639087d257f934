//! TCP: [`TcpListener`] and [`TcpStream`], std-shaped, with Go's deadlines and close.

use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Type};

use super::fd::NetFd;
use super::macros::{impl_common, impl_from_std, impl_read_write};
use super::resolve::resolve;
use crate::netpoll::Dir;

/// A TCP socket server, listening for connections.
pub struct TcpListener {
    fd: NetFd,
}

/// A TCP connection.
pub struct TcpStream {
    fd: NetFd,
}

impl_common!(TcpListener);
impl_common!(TcpStream);
impl_read_write!(TcpStream);

fn sockaddr_to_inet(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an internet socket address"))
}

impl TcpListener {
    /// Binds to `addr` (resolved without blocking other goroutines) and listens, with
    /// `SO_REUSEADDR` set. With several addresses, the first that binds is used.
    pub fn bind<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::bind_one(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    fn bind_one(a: SocketAddr) -> io::Result<TcpListener> {
        let fd = NetFd::socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
        let s = fd.sock();
        s.set_reuse_address(true)?;
        s.bind(&a.into())?;
        s.listen(4096)?;
        Ok(TcpListener { fd })
    }

    /// Waits for a connection (parks the goroutine) and returns it with the peer's address.
    /// Honours the listener's deadline; `EMFILE`/`ENFILE` come back as errors and leave the
    /// listener usable.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.fd.accept()?;
        Ok((TcpStream { fd }, sockaddr_to_inet(addr)?))
    }

    /// An endless iterator over accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { l: self }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr_to_inet(self.fd.checked()?.local_addr()?)
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.checked()?.set_ttl(ttl)
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    l: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.l.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to `addr`, resolving host names without blocking other goroutines and trying
    /// each resolved address in turn.
    pub fn connect<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<TcpStream> {
        Self::dial(resolve(addr)?, None)
    }

    /// Connects to `addr` with a bound on the whole dial.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        // A timeout too large to add to the clock means no limit (as std and Go treat it).
        Self::dial(vec![*addr], Instant::now().checked_add(timeout))
    }

    /// Tries each address in turn until one connects or `deadline` passes.
    fn dial(addrs: Vec<SocketAddr>, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addrs {
            let fd = NetFd::socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
            fd.set_deadline(Dir::Write, deadline)?;
            match fd.connect(&a.into()) {
                Ok(()) => {
                    fd.set_deadline(Dir::Write, None)?;
                    return Ok(TcpStream { fd });
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")
        }))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sockaddr_to_inet(self.fd.checked()?.peer_addr()?)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr_to_inet(self.fd.checked()?.local_addr()?)
    }

    /// Shuts down the read, write or both halves (the descriptor stays open).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.checked()?.shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.fd.checked()?.set_nodelay(on)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.checked()?.nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.checked()?.set_ttl(ttl)
    }

    /// A second handle to the same connection (a `dup` of the descriptor with its own
    /// deadlines; closing one handle does not close the other).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let s = self.fd.checked()?.try_clone()?;
        Ok(TcpStream { fd: NetFd::new(s.into())? })
    }

    /// Reads without consuming (`MSG_PEEK`), waiting for data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.peek(buf)
    }
}

impl_from_std!(TcpStream, std::net::TcpStream);
impl_from_std!(TcpListener, std::net::TcpListener);

impl TcpStream {
    /// Wraps a connected stream socket (for `net/context.rs`'s dial).
    pub(crate) fn from_net_fd(fd: NetFd) -> TcpStream {
        TcpStream { fd }
    }
}
