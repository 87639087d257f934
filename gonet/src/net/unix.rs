//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::{Domain, SockAddr, Type};

use super::dialer::{Dialer, ListenConfig};
use super::error::Syscall;
use super::fd::poll_io::impl_poll_io;
use super::fd::NetFd;
use super::macros::{
    impl_accept_deadline, impl_buffer_sizes, impl_close, impl_common, impl_deadlines,
    impl_from_std, impl_read_write,
};

/// A Unix stream socket server. Like Go's, it removes its socket file when it is closed or
/// dropped, if it created the file (`bind`); see [`set_unlink_on_close`](Self::set_unlink_on_close).
pub struct UnixListener {
    // Declared before `unlink`: the socket is closed before its file is removed.
    fd: NetFd,
    unlink: Unlink,
}

/// Removes the socket file once (on close or drop) while `on` is set.
struct Unlink {
    path: Option<PathBuf>,
    on: AtomicBool,
}

impl Unlink {
    fn run(&self) {
        if self.on.swap(false, Ordering::AcqRel) {
            if let Some(p) = &self.path {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        self.run();
    }
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
impl_accept_deadline!(UnixListener);
impl_common!(UnixStream);
impl_close!(UnixStream);
impl_deadlines!(UnixStream);
impl_buffer_sizes!(UnixStream);
impl_common!(UnixDatagram);
impl_close!(UnixDatagram);
impl_deadlines!(UnixDatagram);
impl_buffer_sizes!(UnixDatagram);
impl_read_write!(UnixStream);
impl_poll_io!(UnixStream);
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
    /// Binds to the socket file at `path` and listens (`ListenConfig::default()
    /// .listen_unix(path)`, backlog [`DEFAULT_BACKLOG`](super::DEFAULT_BACKLOG)). The file is
    /// removed when the listener is closed or dropped.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        ListenConfig::default().listen_unix(path)
    }

    /// A listener whose socket file at `path` (if any) is removed on close.
    pub(crate) fn from_parts(fd: NetFd, path: Option<PathBuf>) -> UnixListener {
        let on = AtomicBool::new(path.is_some());
        UnixListener { fd, unlink: Unlink { path, on } }
    }

    /// A listener made elsewhere (std's, a raw descriptor): its file is not removed on close
    /// unless `set_unlink_on_close(true)` asks for it (as Go's `FileListener`).
    pub(crate) fn from_netfd(fd: NetFd) -> UnixListener {
        let path = addr_of(&fd, false).ok().and_then(|a| a.as_pathname().map(Path::to_path_buf));
        UnixListener { fd, unlink: Unlink { path, on: AtomicBool::new(false) } }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.unlink.on.store(false, Ordering::Release);
        self.fd
    }

    /// Whether closing (or dropping) the listener removes its socket file (Go's
    /// `SetUnlinkOnClose`). On by default for listeners made by `bind`.
    pub fn set_unlink_on_close(&self, unlink: bool) {
        self.unlink.on.store(unlink && self.unlink.path.is_some(), Ordering::Release);
    }

    /// Closes the listener from any goroutine or thread (blocked `accept`s fail with a
    /// "closed" error) and removes its socket file unless told otherwise.
    pub fn close(&self) -> io::Result<()> {
        let r = self.fd.close();
        if r.is_ok() {
            self.unlink.run();
        }
        r
    }

    fn path_string(&self) -> Option<String> {
        self.unlink.path.as_ref().map(|p| p.display().to_string())
    }

    /// Waits for a connection (parks the goroutine).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (fd, _) = self
            .fd
            .accept()
            .sys("accept4")
            .map_err(|f| f.op("accept", "unix", self.path_string()))?;
        let addr = addr_of(&fd, true)?;
        Ok((UnixStream { fd }, addr))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        addr_of(&self.fd, false)
    }
}

impl UnixStream {
    /// Connects to the socket file at `path` (errors read `dial unix PATH: connect: ...`).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        Dialer::default().dial_unix(path)
    }

    pub(crate) fn from_netfd(fd: NetFd) -> UnixStream {
        UnixStream { fd }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.fd
    }

    pub(crate) fn netfd(&self) -> &NetFd {
        &self.fd
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
        let path = path.as_ref();
        let r = (|| {
            let fd = NetFd::socket(Domain::UNIX, Type::DGRAM, None).sys("socket")?;
            fd.sock().bind(&SockAddr::unix(path)?).sys("bind")?;
            Ok(UnixDatagram { fd })
        })();
        r.map_err(|f: super::error::Fail| {
            f.op("listen", "unixgram", Some(path.display().to_string()))
        })
    }

    pub(crate) fn from_netfd(fd: NetFd) -> UnixDatagram {
        UnixDatagram { fd }
    }

    pub(crate) fn into_netfd(self) -> NetFd {
        self.fd
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
