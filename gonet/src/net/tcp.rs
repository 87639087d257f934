//! TCP: [`TcpListener`] and [`TcpStream`], std-shaped, with Go's deadlines and close.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use socket2::SockAddr;

use super::addr::{unmap, ToSocketAddrs};
use super::dialer::{set_keep_alive, Dialer, ListenConfig};
use super::error::Syscall;
use super::fd::poll_io::impl_poll_io;
use super::fd::NetFd;
use super::macros::{
    impl_accept_deadline, impl_buffer_sizes, impl_close, impl_common, impl_deadlines,
    impl_from_std, impl_read_write,
};

/// A TCP socket server, listening for connections.
pub struct TcpListener {
    fd: NetFd,
    /// The bound address, kept for error messages (the socket may be closed by then).
    addr: Option<SocketAddr>,
}

/// A TCP connection.
pub struct TcpStream {
    fd: NetFd,
}

impl_common!(TcpListener);
impl_close!(TcpListener);
impl_accept_deadline!(TcpListener);
impl_common!(TcpStream);
impl_close!(TcpStream);
impl_deadlines!(TcpStream);
impl_buffer_sizes!(TcpStream);
impl_read_write!(TcpStream);
impl_poll_io!(TcpStream);

/// An internet socket address, IPv4-mapped IPv6 shown as IPv4 (as Go does).
pub(crate) fn sockaddr_to_inet(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .map(unmap)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an internet socket address"))
}

impl TcpListener {
    /// Binds to `addr` and listens (`ListenConfig::default().listen(addr)`): `SO_REUSEADDR`
    /// set, a backlog of [`DEFAULT_BACKLOG`](super::DEFAULT_BACKLOG) (capped by the kernel at
    /// `net.core.somaxconn`), keep-alive every 15 s on accepted connections. `":8080"` listens
    /// on every interface; literal addresses are parsed in place, host names resolved on the
    /// blocking pool. With several addresses, the first that binds is used. Errors read like
    /// Go's: `listen tcp 127.0.0.1:9008: bind: address already in use`.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        ListenConfig::default().listen(addr)
    }

    pub(crate) fn from_netfd(fd: NetFd) -> TcpListener {
        let addr = fd.sock().local_addr().ok().and_then(|a| sockaddr_to_inet(a).ok());
        TcpListener { fd, addr }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.fd
    }

    /// Waits for a connection (parks the goroutine) and returns it with the peer's address.
    /// Honours the listener's deadline; `EMFILE`/`ENFILE` come back as errors
    /// (`accept tcp ADDR: accept4: too many open files`, [`raw_os_error`](super::raw_os_error)
    /// gives the number) and leave the listener usable.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self
            .fd
            .accept()
            .sys("accept4")
            .map_err(|f| f.op("accept", "tcp", self.addr.map(|a| a.to_string())))?;
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

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.checked()?.ttl()
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
    /// Connects to `addr` (`Dialer::default().dial(addr)`): literal addresses are parsed in
    /// place, host names resolved on the blocking pool, and each resolved address is tried in
    /// turn. Keep-alive is on with a 15 s period, as in Go. Errors read like Go's:
    /// `dial tcp 127.0.0.1:38133: connect: connection refused`.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        Dialer::default().dial(addr)
    }

    /// Connects to `addr` with a bound on the whole dial; with several resolved addresses,
    /// each attempt gets a share of the time left (see [`Dialer`]).
    pub fn connect_timeout<A: ToSocketAddrs>(addr: A, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        Dialer { timeout: Some(timeout), ..Dialer::default() }.dial(addr)
    }

    pub(crate) fn from_netfd(fd: NetFd) -> TcpStream {
        TcpStream { fd }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.fd
    }

    pub(crate) fn netfd(&self) -> &NetFd {
        &self.fd
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

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.checked()?.ttl()
    }

    /// Turns TCP keep-alive probes on or off (`SO_KEEPALIVE`; Go's `SetKeepAlive`).
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.fd.checked()?.set_keepalive(on)
    }

    /// Whether keep-alive probes are on (`SO_KEEPALIVE`).
    pub fn keepalive(&self) -> io::Result<bool> {
        self.fd.checked()?.keepalive()
    }

    /// Turns keep-alive on with `period` as the idle time before the first probe and the time
    /// between probes (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`; Go's `SetKeepAlivePeriod`, which
    /// rounds up to whole seconds, at least 1).
    pub fn set_keepalive_period(&self, period: Duration) -> io::Result<()> {
        set_keep_alive(&self.fd, period)
    }

    /// The idle time before the first keep-alive probe (`TCP_KEEPIDLE`).
    pub fn keepalive_period(&self) -> io::Result<Duration> {
        self.fd.checked()?.keepalive_time()
    }

    /// Sets `SO_LINGER` (Go's `SetLinger`): `None` (the default) lets `close` return at once
    /// while the kernel sends what is queued; `Some(d)` makes the kernel wait up to `d` for
    /// queued data to be sent; `Some(Duration::ZERO)` discards it and resets the connection
    /// on close (the peer's read fails with `ConnectionReset`).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.fd.checked()?.set_linger(linger)
    }

    /// Reads `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.fd.checked()?.linger()
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
