//! The net package: std-shaped sockets whose blocking calls park the goroutine on the
//! netpoller, plus Go's deadlines and close.
//!
//! * [`TcpListener`], [`TcpStream`] — `tcp.rs`
//! * [`UdpSocket`] — `udp.rs`
//! * [`UnixListener`], [`UnixStream`], [`UnixDatagram`] — `unix.rs`
//! * [`dial_context`], [`with_context`]: calls bounded by a [`Context`](crate::context::Context)
//!   — `context.rs`
//! * [`Dialer`], [`ListenConfig`] (timeouts, local address, keep-alive, backlog,
//!   `SO_REUSEPORT`) — `dialer.rs`
//! * [`ToSocketAddrs`], [`Lookup`]: addresses, parsed before resolved — `addr.rs`
//! * [`OpError`]: errors naming the operation, network and address — `error.rs`
//! * [`Conn`], [`Listener`], [`Addr`]: code generic over TCP and Unix — `conn.rs`
//! * [`copy`], [`copy_file`], [`Splicer`]: zero-copy `splice`/`sendfile` — `splice.rs`
//!
//! Conventions shared by every type:
//! * `Read`/`Write` are implemented for `T` and `&T`: one reader goroutine and one writer
//!   goroutine may share a socket (more queue up).
//! * `write` writes the whole buffer unless an error occurs (Go's semantics).
//! * Deadlines (`set_read_deadline`, `set_write_deadline`, `set_deadline`) take
//!   `Option<Instant>` and follow Go: they apply to the pending and all later calls until
//!   changed; a deadline in the past fails calls at once; an expired call fails with
//!   [`io::ErrorKind::TimedOut`] and the socket stays usable once the deadline is moved.
//!   Timeouts (`set_read_timeout`, `set_write_timeout`) take `Option<Duration>` and apply per
//!   call, as in std.
//! * `close()` may be called from any goroutine or thread: it wakes every call blocked on the
//!   socket with an error for which [`is_closed`] is true, and the descriptor is released once
//!   the last call in flight has returned. Dropping closes too.
//! * Called on a plain OS thread outside a runtime, the same calls block that thread.
//! * Socket options beyond the ones offered (`nodelay`, `ttl`, keep-alive, linger, buffer
//!   sizes) are reachable through `AsFd`: `socket2::SockRef::from(&conn).set_...(..)` works
//!   on every gonet socket (it never changes the non-blocking mode gonet relies on unless
//!   asked to).

use std::io;

mod addr;
mod conn;
mod context;
mod dialer;
mod error;
mod fd;
mod macros;
mod splice;
mod tcp;
mod udp;
mod unix;

pub use addr::{Lookup, ToSocketAddrs};
pub use conn::{Addr, Conn, Listener};
pub use context::{dial_context, with_context, Deadlines};
pub use dialer::{Dialer, ListenConfig, DEFAULT_BACKLOG, DEFAULT_KEEP_ALIVE};
pub use error::{op_error, raw_os_error, OpError};
pub use splice::{copy, copy_file, Spliceable, Splicer};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

/// Whether `err` is the error of an operation on a socket that was closed (Go's
/// `errors.Is(err, net.ErrClosed)`).
pub fn is_closed(err: &io::Error) -> bool {
    let err = op_error(err).map_or(err, OpError::error);
    err.kind() == io::ErrorKind::NotConnected
        && err.to_string() == "use of closed network connection"
}
