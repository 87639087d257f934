//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use socket2::{Domain, SockAddr, Type};

use super::fd::NetFd;
use super::macros::{impl_common, impl_from_std, impl_read_write};

/// A Unix stream socket server.
pub struct UnixListener {
    fd: NetFd,
}

/// A Unix stream connection.
pub struct UnixStream {
    fd: NetFd,
}

/// A Unix datagram socket.
pub struct UnixDatagram {
    fd: NetFd,
}

impl_common!(UnixListener);
impl_common!(UnixStream);
impl_common!(UnixDatagram);
impl_read_write!(UnixStream);
impl_from_std!(UnixListener, std::os::unix::net::UnixListener);
impl_from_std!(UnixStream, std::os::unix::net::UnixStream);
impl_from_std!(UnixDatagram, std::os::unix::net::UnixDatagram);

/// `fd` borrowed as a std Unix socket: std builds its `SocketAddr` only from its own calls.
fn as_std(fd: &NetFd) -> std::mem::ManuallyDrop<std::os::unix::net::UnixDatagram> {
    // SAFETY: the descriptor is open while `fd` lives; ManuallyDrop keeps it from being closed.
    std::mem::ManuallyDrop::new(unsafe {
        <std::os::unix::net::UnixDatagram as std::os::fd::FromRawFd>::from_raw_fd(fd.raw())
    })
}

/// The address of the socket `fd` (`peer`: of its peer), as std's type.
fn addr_of(fd: &NetFd, peer: bool) -> io::Result<SocketAddr> {
    let _open = fd.checked()?;
    let s = as_std(fd);
    if peer {
        s.peer_addr()
    } else {
        s.local_addr()
    }
}

impl UnixListener {
    /// Binds to the socket file at `path` and listens.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let fd = NetFd::socket(Domain::UNIX, Type::STREAM, None)?;
        fd.sock().bind(&SockAddr::unix(path)?)?;
        fd.sock().listen(4096)?;
        Ok(UnixListener { fd })
    }

    /// Waits for a connection (parks the goroutine).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = self.fd.accept()?;
        let addr = addr_of(&fd, true)?;
        Ok((UnixStream { fd }, addr))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(&self.fd, false)
    }
}

impl UnixStream {
    /// Connects to the socket file at `path`.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let fd = NetFd::socket(Domain::UNIX, Type::STREAM, None)?;
        fd.connect(&SockAddr::unix(path)?)?;
        Ok(UnixStream { fd })
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::STREAM.cloexec(), None)?;
        Ok((UnixStream { fd: NetFd::new(a.into())? }, UnixStream { fd: NetFd::new(b.into())? }))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(&self.fd, false)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        addr_of(&self.fd, true)
    }

    /// Shuts down the read, write or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.checked()?.shutdown(how)
    }
}

impl UnixDatagram {
    /// Binds a datagram socket to the socket file at `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let fd = NetFd::socket(Domain::UNIX, Type::DGRAM, None)?;
        fd.sock().bind(&SockAddr::unix(path)?)?;
        Ok(UnixDatagram { fd })
    }

    /// An unbound datagram socket.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram { fd: NetFd::socket(Domain::UNIX, Type::DGRAM, None)? })
    }

    /// A connected pair of datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socket2::Socket::pair(Domain::UNIX, Type::DGRAM.cloexec(), None)?;
        Ok((UnixDatagram { fd: NetFd::new(a.into())? }, UnixDatagram { fd: NetFd::new(b.into())? }))
    }

    /// Sets the default peer.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.fd.checked()?.connect(&SockAddr::unix(path)?)
    }

    /// Sends one datagram to the socket at `path`.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.fd.send_to(buf, &SockAddr::unix(path)?)
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.send(buf)
    }

    /// Receives one datagram.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }

    /// Receives one datagram and its sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let s = as_std(&self.fd);
        self.fd.with(crate::netpoll::Dir::Read, || s.recv_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(&self.fd, false)
    }
}
