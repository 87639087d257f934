//! The methods every socket type shares, written once: `Read`/`Write` for `T` and `&T`,
//! deadlines and timeouts, close, buffer sizes, and the raw-descriptor traits.
//!
//! Each type provides `from_netfd(NetFd) -> Self` and `into_netfd(self) -> NetFd`.

/// `Read` for `$t` and `&$t`, delegating to the `NetFd` in field `fd`.
macro_rules! impl_read_write {
    ($t:ty) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.fd.read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.fd.read_vectored(bufs)
            }
        }
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.fd.read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.fd.read_vectored(bufs)
            }
        }
        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.fd.write(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.fd.write_vectored(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.fd.write(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.fd.write_vectored(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// Read and write deadlines and timeouts for a connection type `$t` (field `fd: NetFd`).
macro_rules! impl_deadlines {
    ($t:ty) => {
        impl $t {
            /// Sets the deadline for reads (Go semantics; `None` clears it).
            pub fn set_read_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                self.fd.set_deadline(crate::netpoll::Dir::Read, at)
            }
            /// Sets the deadline for writes (Go semantics; `None` clears it).
            pub fn set_write_deadline(
                &self,
                at: Option<std::time::Instant>,
            ) -> std::io::Result<()> {
                self.fd.set_deadline(crate::netpoll::Dir::Write, at)
            }
            /// Sets both deadlines.
            pub fn set_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                self.set_read_deadline(at)?;
                self.set_write_deadline(at)
            }
            /// Sets a per-call read timeout (std semantics; `None` clears it, zero is an error).
            pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.fd.set_timeout(crate::netpoll::Dir::Read, t)
            }
            /// Sets a per-call write timeout (std semantics; `None` clears it, zero is an error).
            pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
                self.fd.set_timeout(crate::netpoll::Dir::Write, t)
            }
            /// The per-call read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(crate::netpoll::Dir::Read))
            }
            /// The per-call write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(crate::netpoll::Dir::Write))
            }
        }
    };
}

/// The accept deadline of a listener type `$t` (Go's `TCPListener.SetDeadline`).
macro_rules! impl_accept_deadline {
    ($t:ty) => {
        impl $t {
            /// Sets the deadline for `accept` (Go semantics; `None` clears it): a pending and
            /// every later `accept` fails with `TimedOut` once it has passed.
            pub fn set_deadline(&self, at: Option<std::time::Instant>) -> std::io::Result<()> {
                self.fd.set_deadline(crate::netpoll::Dir::Read, at)
            }
        }
    };
}

/// `close` for `$t` (field `fd: NetFd`).
macro_rules! impl_close {
    ($t:ty) => {
        impl $t {
            /// Closes the socket from any goroutine or thread: blocked calls fail with a
            /// "closed" error ([`is_closed`](crate::net::is_closed)); a second close is an error.
            /// The socket is released as soon as no call uses it (the peer sees the close), but
            /// its descriptor number stays reserved until the value is dropped: after `close`,
            /// [`as_raw_fd`](std::os::fd::AsRawFd::as_raw_fd) names a placeholder socket on
            /// which every I/O fails, never a socket opened later that reused the number.
            pub fn close(&self) -> std::io::Result<()> {
                self.fd.close()
            }
        }
    };
}

/// `take_error`, the raw-descriptor traits and `Debug` for `$t` (field `fd: NetFd`).
macro_rules! impl_common {
    ($t:ty) => {
        impl $t {
            /// Takes the pending socket error (`SO_ERROR`), if any.
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.fd.checked()?.take_error()
            }
        }
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.fd.raw()
            }
        }
        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                // SAFETY: the number stays open, naming this socket or (after `close`) the
                // fd layer's placeholder, until `self` is dropped (`fd.rs`, invariant 1).
                unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd.raw()) }
            }
        }
        impl std::os::fd::IntoRawFd for $t {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.into_netfd().into_raw()
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("fd", &self.fd.raw()).finish()
            }
        }
    };
}

/// `SO_SNDBUF`/`SO_RCVBUF` for `$t` (field `fd: NetFd`).
macro_rules! impl_buffer_sizes {
    ($t:ty) => {
        impl $t {
            /// Sets the kernel's send buffer size (`SO_SNDBUF`; Linux doubles the value for
            /// its bookkeeping and reports the doubled size back).
            pub fn set_send_buffer_size(&self, bytes: usize) -> std::io::Result<()> {
                self.fd.checked()?.set_send_buffer_size(bytes)
            }
            /// The kernel's send buffer size (`SO_SNDBUF`).
            pub fn send_buffer_size(&self) -> std::io::Result<usize> {
                self.fd.checked()?.send_buffer_size()
            }
            /// Sets the kernel's receive buffer size (`SO_RCVBUF`; doubled by Linux).
            pub fn set_recv_buffer_size(&self, bytes: usize) -> std::io::Result<()> {
                self.fd.checked()?.set_recv_buffer_size(bytes)
            }
            /// The kernel's receive buffer size (`SO_RCVBUF`).
            pub fn recv_buffer_size(&self) -> std::io::Result<usize> {
                self.fd.checked()?.recv_buffer_size()
            }
        }
    };
}

/// `From` the std type and `FromRawFd` for `$t` (the descriptor is made non-blocking; this
/// panics only for a descriptor that is not open).
macro_rules! impl_from_std {
    ($t:ty, $std:ty) => {
        impl From<$std> for $t {
            /// Takes over a std socket, making it non-blocking.
            fn from(s: $std) -> $t {
                let fd: std::os::fd::OwnedFd = s.into();
                <$t>::from_owned(fd)
            }
        }
        impl std::os::fd::FromRawFd for $t {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: the caller passes ownership of an open socket descriptor.
                <$t>::from_owned(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
            }
        }
        impl $t {
            fn from_owned(fd: std::os::fd::OwnedFd) -> $t {
                let fd = crate::net::fd::NetFd::new(fd)
                    .expect("gonet: cannot make the socket non-blocking");
                <$t>::from_netfd(fd)
            }
        }
    };
}

pub(crate) use impl_accept_deadline;
pub(crate) use impl_buffer_sizes;
pub(crate) use impl_close;
pub(crate) use impl_common;
pub(crate) use impl_deadlines;
pub(crate) use impl_from_std;
pub(crate) use impl_read_write;
