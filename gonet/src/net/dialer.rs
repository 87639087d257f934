//! [`Dialer`] and [`ListenConfig`]: Go's options for making connections and listeners, and
//! the dial loop they share with `TcpStream::connect`.
//!
//! A dial resolves the address (literals in place, names on the blocking pool), then tries
//! each address in turn, as Go's `dialSerial` does: with a deadline, each attempt gets an
//! equal share of the time left (at least 2 s, Go's `saneMinimum`, or all that is left), so
//! one black-holed address cannot use up the whole budget. The first error is returned,
//! naming the address it came from ([`OpError`](super::OpError)).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, TcpKeepalive, Type};

use super::addr::{is_any_pair, resolve, Purpose, ToSocketAddrs};
use super::error::{Fail, Syscall};
use super::fd::NetFd;
use super::tcp::{TcpListener, TcpStream};
use super::udp::UdpSocket;
use super::unix::{UnixListener, UnixStream};
use crate::netpoll::Dir;

/// Go's `os.ErrDeadlineExceeded` text, for a dial whose deadline passed between attempts.
fn timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// Go's default keep-alive period for dialed and accepted TCP connections.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The listen backlog gonet asks for unless told otherwise. The kernel caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4), as it does Go's.
pub const DEFAULT_BACKLOG: i32 = 4096;

/// Options for dialing (Go's `net.Dialer`). `Dialer::default()` is what
/// [`TcpStream::connect`] uses: no timeout, keep-alive on with a 15 s period.
///
/// ```no_run
/// # gonet::run(|| -> std::io::Result<()> {
/// use std::time::Duration;
/// let d = gonet::net::Dialer { timeout: Some(Duration::from_secs(3)), ..Default::default() };
/// let conn = d.dial("example.com:80")?;
/// # Ok(()) });
/// ```
#[derive(Clone, Debug)]
pub struct Dialer {
    /// Bound on the whole dial (resolution included in the sense that attempts stop once it
    /// has passed).
    pub timeout: Option<Duration>,
    /// Absolute time after which the dial fails; the earlier of this and `timeout` applies.
    pub deadline: Option<Instant>,
    /// The local address to bind before connecting (port 0 picks one).
    pub local_addr: Option<SocketAddr>,
    /// TCP keep-alive period (idle time before the first probe and between probes); `None`
    /// turns keep-alive off. Default: 15 s, as in Go.
    pub keep_alive: Option<Duration>,
}

impl Default for Dialer {
    fn default() -> Dialer {
        Dialer {
            timeout: None,
            deadline: None,
            local_addr: None,
            keep_alive: Some(DEFAULT_KEEP_ALIVE),
        }
    }
}

impl Dialer {
    /// The default dialer.
    pub fn new() -> Dialer {
        Dialer::default()
    }

    /// The dial's absolute deadline: the earlier of `deadline` and now + `timeout` (a timeout
    /// too large to add to the clock means none).
    fn effective_deadline(&self) -> Option<Instant> {
        let by_timeout = self.timeout.and_then(|t| Instant::now().checked_add(t));
        match (by_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Connects over TCP to `addr`, trying each resolved address in turn.
    pub fn dial<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpStream> {
        let deadline = self.effective_deadline();
        let addrs =
            resolve(&addr, Purpose::Dial).map_err(|e| Fail::from(e).op("dial", "tcp", None))?;
        dial_serial(&addrs, deadline, |a, d| self.dial_one(a, d))
    }

    fn dial_one(&self, a: SocketAddr, deadline: Option<Instant>) -> Result<TcpStream, Fail> {
        let fd = NetFd::socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))
            .sys("socket")?;
        if let Some(local) = self.local_addr {
            fd.sock().bind(&local.into()).sys("bind")?;
        }
        fd.set_deadline(Dir::Write, deadline)?;
        fd.connect(&a.into()).sys("connect")?;
        fd.set_deadline(Dir::Write, None)?;
        if let Some(p) = self.keep_alive {
            set_keep_alive(&fd, p).sys("setsockopt")?;
        }
        Ok(TcpStream::from_netfd(fd))
    }

    /// Connects to the Unix stream socket at `path`, bounded by the timeout and deadline.
    pub fn dial_unix<P: AsRef<Path>>(&self, path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let op = |f: Fail| f.op("dial", "unix", Some(path.display().to_string()));
        let fd = NetFd::socket(Domain::UNIX, Type::STREAM, None).sys("socket").map_err(op)?;
        let dl = self.effective_deadline();
        if dl.is_some_and(|d| d <= Instant::now()) {
            return Err(op(timeout_error().into()));
        }
        fd.set_deadline(Dir::Write, dl).map_err(|e| op(e.into()))?;
        let sa = SockAddr::unix(path).map_err(|e| op(e.into()))?;
        fd.connect(&sa).sys("connect").map_err(op)?;
        fd.set_deadline(Dir::Write, None).map_err(|e| op(e.into()))?;
        Ok(UnixStream::from_netfd(fd))
    }
}

/// Sets `SO_KEEPALIVE` with `period` as both the idle time and the probe interval (Go's
/// `setKeepAlivePeriod`).
pub(crate) fn set_keep_alive(fd: &NetFd, period: Duration) -> io::Result<()> {
    let period = period.max(Duration::from_secs(1));
    let ka = TcpKeepalive::new().with_time(period).with_interval(period);
    fd.checked()?.set_tcp_keepalive(&ka)
}

/// The deadline for one of `remaining` attempts that are left before `deadline` (Go's
/// `partialDeadline`): an equal share of the time left, but at least 2 s or all of it.
pub(crate) fn partial_deadline(
    now: Instant,
    deadline: Option<Instant>,
    remaining: usize,
) -> io::Result<Option<Instant>> {
    let Some(deadline) = deadline else { return Ok(None) };
    if deadline <= now {
        return Err(timeout_error());
    }
    let left = deadline - now;
    const SANE_MINIMUM: Duration = Duration::from_secs(2);
    let mut share = left / remaining.max(1) as u32;
    if share < SANE_MINIMUM {
        share = left.min(SANE_MINIMUM);
    }
    Ok(Some(now + share))
}

/// Tries `dial` on each address in turn (Go's `dialSerial`); returns the first success or the
/// first error, wrapped as `dial tcp ADDR: ...`.
pub(crate) fn dial_serial<T>(
    addrs: &[SocketAddr],
    deadline: Option<Instant>,
    mut dial: impl FnMut(SocketAddr, Option<Instant>) -> Result<T, Fail>,
) -> io::Result<T> {
    let mut first: Option<io::Error> = None;
    for (i, &a) in addrs.iter().enumerate() {
        let part = match partial_deadline(Instant::now(), deadline, addrs.len() - i) {
            Ok(p) => p,
            Err(e) => {
                return Err(
                    first.unwrap_or_else(|| Fail::from(e).op("dial", "tcp", Some(a.to_string())))
                )
            }
        };
        match dial(a, part) {
            Ok(c) => return Ok(c),
            Err(f) => {
                let e = f.op("dial", "tcp", Some(a.to_string()));
                first.get_or_insert(e);
            }
        }
    }
    Err(first.expect("resolve returns at least one address"))
}

/// Options for listening (Go's `net.ListenConfig`): the backlog, `SO_REUSEPORT`, and the
/// keep-alive period given to accepted TCP connections.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// The length of the queue of connections the kernel completes before `accept` (capped
    /// by the kernel at `net.core.somaxconn`). Default: [`DEFAULT_BACKLOG`].
    pub backlog: i32,
    /// Sets `SO_REUSEPORT`, so several sockets (processes) can listen on one port and the
    /// kernel spreads connections between them. Default: off.
    pub reuse_port: bool,
    /// Keep-alive period for accepted TCP connections; `None` leaves keep-alive off. Default:
    /// 15 s, as in Go.
    pub keep_alive: Option<Duration>,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
            keep_alive: Some(DEFAULT_KEEP_ALIVE),
        }
    }
}

impl ListenConfig {
    /// The default configuration.
    pub fn new() -> ListenConfig {
        ListenConfig::default()
    }

    /// Listens on TCP `addr` (`":8080"`: every interface). With several addresses, the first
    /// that binds is used.
    pub fn listen<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener> {
        let addrs =
            resolve(&addr, Purpose::Listen).map_err(|e| Fail::from(e).op("listen", "tcp", None))?;
        let any = is_any_pair(&addrs);
        let mut first = None;
        for (i, &a) in addrs.iter().enumerate() {
            match self.listen_one(a, any) {
                Ok(fd) => return Ok(TcpListener::from_netfd(fd)),
                Err(f) => {
                    // Without IPv6, the dual-stack attempt for ":port" is not what failed.
                    if any && i == 0 {
                        continue;
                    }
                    first.get_or_insert(f.op("listen", "tcp", Some(a.to_string())));
                }
            }
        }
        Err(first.expect("resolve returns at least one address"))
    }

    fn listen_one(&self, a: SocketAddr, dual_stack: bool) -> Result<NetFd, Fail> {
        let fd = NetFd::socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))
            .sys("socket")?;
        let s = fd.sock();
        s.set_reuse_address(true).sys("setsockopt")?;
        if self.reuse_port {
            s.set_reuse_port(true).sys("setsockopt")?;
        }
        if dual_stack && a.is_ipv6() {
            s.set_only_v6(false).sys("setsockopt")?;
        }
        s.bind(&a.into()).sys("bind")?;
        s.listen(self.backlog).sys("listen")?;
        // Accepted sockets inherit SO_KEEPALIVE and its timings from the listener (Linux
        // copies them in the clone and starts the timer), so no per-accept system call.
        if let Some(p) = self.keep_alive {
            set_keep_alive(&fd, p).sys("setsockopt")?;
        }
        Ok(fd)
    }

    /// Binds a UDP socket to `addr` (`":5353"`: every interface).
    pub fn listen_packet<A: ToSocketAddrs>(&self, addr: A) -> io::Result<UdpSocket> {
        let addrs =
            resolve(&addr, Purpose::Listen).map_err(|e| Fail::from(e).op("listen", "udp", None))?;
        let any = is_any_pair(&addrs);
        let mut first = None;
        for (i, &a) in addrs.iter().enumerate() {
            let r = (|| -> Result<NetFd, Fail> {
                let fd = NetFd::socket(Domain::for_address(a), Type::DGRAM, Some(Protocol::UDP))
                    .sys("socket")?;
                if self.reuse_port {
                    fd.sock().set_reuse_port(true).sys("setsockopt")?;
                }
                if any && a.is_ipv6() {
                    fd.sock().set_only_v6(false).sys("setsockopt")?;
                }
                fd.sock().bind(&a.into()).sys("bind")?;
                Ok(fd)
            })();
            match r {
                Ok(fd) => return Ok(UdpSocket::from_netfd(fd)),
                Err(_) if any && i == 0 => continue,
                Err(f) => {
                    first.get_or_insert(f.op("listen", "udp", Some(a.to_string())));
                }
            }
        }
        Err(first.expect("resolve returns at least one address"))
    }

    /// Listens on the Unix socket file at `path` (removed again when the listener closes; see
    /// [`UnixListener::set_unlink_on_close`]).
    pub fn listen_unix<P: AsRef<Path>>(&self, path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let r = (|| -> Result<NetFd, Fail> {
            let fd = NetFd::socket(Domain::UNIX, Type::STREAM, None).sys("socket")?;
            fd.sock().bind(&SockAddr::unix(path)?).sys("bind")?;
            fd.sock().listen(self.backlog).sys("listen")?;
            Ok(fd)
        })();
        match r {
            Ok(fd) => Ok(UnixListener::from_parts(fd, Some(path.to_path_buf()))),
            Err(f) => Err(f.op("listen", "unix", Some(path.display().to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_deadline_splits_like_go() {
        let now = Instant::now();
        let s = Duration::from_secs;
        // 10 s over 2 attempts: 5 s each.
        assert_eq!(partial_deadline(now, Some(now + s(10)), 2).unwrap(), Some(now + s(5)));
        // 3 s over 3 attempts: 1 s is below the 2 s minimum, so 2 s.
        assert_eq!(partial_deadline(now, Some(now + s(3)), 3).unwrap(), Some(now + s(2)));
        // 1 s left: all of it.
        assert_eq!(partial_deadline(now, Some(now + s(1)), 4).unwrap(), Some(now + s(1)));
        assert_eq!(partial_deadline(now, None, 4).unwrap(), None);
        let e = partial_deadline(now + s(1), Some(now), 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
