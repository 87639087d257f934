//! Generic connections: the [`Conn`] and [`Listener`] traits (Go's `net.Conn` and
//! `net.Listener`) and [`Addr`], an address of either network, so code can serve TCP and Unix
//! sockets alike (`fn serve(c: impl Conn)`, `Box<dyn Conn>`).

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Instant;

use super::tcp::{TcpListener, TcpStream};
use super::unix::{UnixListener, UnixStream};

/// A socket address of any network (Go's `net.Addr`).
#[derive(Clone, Debug)]
pub enum Addr {
    /// A TCP (internet) address.
    Tcp(std::net::SocketAddr),
    /// A Unix socket address (a path, or unnamed).
    Unix(std::os::unix::net::SocketAddr),
}

impl Addr {
    /// The network name, as in Go: `"tcp"` or `"unix"`.
    pub fn network(&self) -> &'static str {
        match self {
            Addr::Tcp(_) => "tcp",
            Addr::Unix(_) => "unix",
        }
    }
}

impl fmt::Display for Addr {
    /// `127.0.0.1:80`, or a Unix socket's path (empty for an unnamed socket), as Go prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(a) => match a.as_pathname() {
                Some(p) => write!(f, "{}", p.display()),
                None => Ok(()),
            },
        }
    }
}

/// A stream connection (Go's `net.Conn`): reads and writes that park the goroutine, Go's
/// deadlines, close from anywhere, and both ends' addresses. Implemented by [`TcpStream`] and
/// [`UnixStream`]; object-safe, so `Box<dyn Conn>` holds either.
pub trait Conn: Read + Write + Send + Sync + fmt::Debug {
    /// The local address.
    fn local_addr(&self) -> io::Result<Addr>;
    /// The peer's address.
    fn peer_addr(&self) -> io::Result<Addr>;
    /// Sets the read deadline (Go semantics; `None` clears it).
    fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()>;
    /// Sets the write deadline.
    fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()>;
    /// Sets both deadlines.
    fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        self.set_read_deadline(at)?;
        self.set_write_deadline(at)
    }
    /// Closes the connection; blocked calls fail with a "closed" error.
    fn close(&self) -> io::Result<()>;
}

/// A stream listener (Go's `net.Listener`), implemented by [`TcpListener`] and
/// [`UnixListener`].
pub trait Listener: Send + Sync {
    /// The connections it accepts.
    type Conn: Conn + 'static;
    /// Waits for the next connection (the inherent `accept` also returns the peer's address).
    fn accept(&self) -> io::Result<Self::Conn>;
    /// Closes the listener; blocked `accept`s fail with a "closed" error.
    fn close(&self) -> io::Result<()>;
    /// The address it listens on.
    fn addr(&self) -> io::Result<Addr>;
    /// Sets the deadline for `accept`.
    fn set_deadline(&self, at: Option<Instant>) -> io::Result<()>;
}

macro_rules! impl_conn {
    ($t:ty, $variant:ident) => {
        impl Conn for $t {
            fn local_addr(&self) -> io::Result<Addr> {
                <$t>::local_addr(self).map(Addr::$variant)
            }
            fn peer_addr(&self) -> io::Result<Addr> {
                <$t>::peer_addr(self).map(Addr::$variant)
            }
            fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_read_deadline(self, at)
            }
            fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_write_deadline(self, at)
            }
            fn close(&self) -> io::Result<()> {
                <$t>::close(self)
            }
        }
    };
}
impl_conn!(TcpStream, Tcp);
impl_conn!(UnixStream, Unix);

macro_rules! impl_listener {
    ($t:ty, $c:ty, $variant:ident) => {
        impl Listener for $t {
            type Conn = $c;
            fn accept(&self) -> io::Result<$c> {
                <$t>::accept(self).map(|(c, _)| c)
            }
            fn close(&self) -> io::Result<()> {
                <$t>::close(self)
            }
            fn addr(&self) -> io::Result<Addr> {
                <$t>::local_addr(self).map(Addr::$variant)
            }
            fn set_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_deadline(self, at)
            }
        }
    };
}
impl_listener!(TcpListener, TcpStream, Tcp);
impl_listener!(UnixListener, UnixStream, Unix);

impl<C: Conn + ?Sized> Conn for Box<C> {
    fn local_addr(&self) -> io::Result<Addr> {
        (**self).local_addr()
    }
    fn peer_addr(&self) -> io::Result<Addr> {
        (**self).peer_addr()
    }
    fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        (**self).set_read_deadline(at)
    }
    fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()> {
        (**self).set_write_deadline(at)
    }
    fn close(&self) -> io::Result<()> {
        (**self).close()
    }
}
