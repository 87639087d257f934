//! Network calls bounded by a [`Context`]: [`dial_context`] (Go's `Dialer.DialContext`) and
//! [`with_context`], which bounds any blocking calls on a socket by a context.
//!
//! Both work as Go's `net` package does internally: the context's deadline becomes the
//! socket's deadline, and a cancellation *kicks* the blocked call by moving the deadline into
//! the past (a watch on the context, `context.rs`), so the call fails at once; the error is
//! then replaced by the context's ([`io_reason`](crate::context::io_reason) tells
//! `Canceled` from `DeadlineExceeded`).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socket2::{Domain, Protocol, Type};

use super::addr::{resolve, Purpose};
use super::fd::NetFd;
use super::{
    TcpListener, TcpStream, ToSocketAddrs, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use crate::context::{Context, Error};
use crate::netpoll::Dir;

/// Connects to `addr` like [`TcpStream::connect`], bounded by `ctx`: fails with the
/// context's error once it is cancelled or its deadline passes, including while the connect
/// is in flight. Each resolved address is tried in turn until one connects.
pub fn dial_context<A: ToSocketAddrs + Sync>(ctx: &Context, addr: A) -> io::Result<TcpStream> {
    ctx.check()?;
    let addrs = resolve(&addr, Purpose::Dial)?;
    ctx.check()?;
    let mut last = None;
    for a in addrs {
        match dial_one(ctx, a) {
            Ok(s) => return Ok(s),
            Err(e) => {
                if let Some(c) = reason(ctx) {
                    return Err(c.into());
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to")
    }))
}

fn dial_one(ctx: &Context, a: SocketAddr) -> io::Result<TcpStream> {
    let fd = NetFd::socket(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    fd.set_deadline(Dir::Write, ctx.deadline())?;
    let kick = Box::new(|| {
        let _ = fd.set_deadline(Dir::Write, Some(Instant::now()));
    });
    ctx.with_watch(kick, || fd.connect(&a.into()))
        .map_err(|e| io::Error::new(e.kind(), format!("dial tcp {a}: {e}")))?;
    fd.set_deadline(Dir::Write, None)?;
    Ok(TcpStream::from_netfd(fd))
}

/// A socket whose calls can be bounded by deadlines: every gonet socket type.
pub trait Deadlines {
    /// As the type's own `set_read_deadline`.
    fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()>;
    /// As the type's own `set_write_deadline`.
    fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()>;
}

macro_rules! impl_deadlines {
    ($($t:ty),*) => {$(
        impl Deadlines for $t {
            fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_read_deadline(self, at)
            }
            fn set_write_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_write_deadline(self, at)
            }
        }
    )*};
}

impl_deadlines!(TcpStream, UdpSocket, UnixStream, UnixDatagram);

/// A listener has one deadline, its accept deadline: reads (accepts) are bounded by it, and
/// it has no writes to bound.
macro_rules! impl_listener_deadlines {
    ($($t:ty),*) => {$(
        impl Deadlines for $t {
            fn set_read_deadline(&self, at: Option<Instant>) -> io::Result<()> {
                <$t>::set_deadline(self, at)
            }
            fn set_write_deadline(&self, _: Option<Instant>) -> io::Result<()> {
                Ok(())
            }
        }
    )*};
}

impl_listener_deadlines!(TcpListener, UnixListener);

/// Runs `f` on `sock` with its blocking calls bounded by `ctx`: for the duration of `f`
/// both deadlines of `sock` are the context's deadline, and a cancellation makes a blocked
/// read, write or accept fail at once. A call that fails because of the context returns the
/// context's error. Afterwards both deadlines are cleared (the helper owns them meanwhile).
///
/// `f` receives `&mut &S`: gonet's sockets implement `Read` and `Write` for `&S` (as std's
/// do), whose methods take `&mut self`, so `|c| c.write_all(..)` and `|c| c.read(..)` work
/// as written, and `&S`'s own methods are reached through auto-deref.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use gonet::context::{self, Context};
/// # gonet::run(|| -> std::io::Result<()> {
/// let (ctx, _cancel) = context::with_timeout(&Context::background(), std::time::Duration::from_secs(5));
/// let conn = gonet::net::dial_context(&ctx, "127.0.0.1:8080")?;
/// let mut buf = [0u8; 512];
/// let n = gonet::net::with_context(&ctx, &conn, |c| {
///     c.write_all(b"PING\r\n")?;
///     c.read(&mut buf)
/// })?;
/// # Ok(()) });
/// ```
pub fn with_context<S, R>(
    ctx: &Context,
    sock: &S,
    f: impl FnOnce(&mut &S) -> io::Result<R>,
) -> io::Result<R>
where
    S: Deadlines + Sync + ?Sized,
{
    ctx.check()?;
    let d = ctx.deadline();
    sock.set_read_deadline(d)?;
    sock.set_write_deadline(d)?;
    let kick = Box::new(|| {
        let now = Some(Instant::now());
        let _ = sock.set_read_deadline(now);
        let _ = sock.set_write_deadline(now);
    });
    let r = ctx.with_watch(kick, || f(&mut { sock }));
    let _ = sock.set_read_deadline(None);
    let _ = sock.set_write_deadline(None);
    match r {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(reason(ctx).map_or(e, Into::into)),
        r => r,
    }
}

/// The context's error, or `DeadlineExceeded` if its deadline has passed but its timer has
/// not fired yet (the socket's deadline, the same instant, may be seen first).
fn reason(ctx: &Context) -> Option<Error> {
    ctx.err().or_else(|| {
        ctx.deadline().filter(|d| Instant::now() >= *d).map(|_| Error::DeadlineExceeded)
    })
}
