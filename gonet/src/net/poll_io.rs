//! Poll-based I/O on gonet's sockets: `poll_read`/`poll_write`/... for futures, and the
//! ecosystem's async I/O traits on top — `tokio::io::AsyncRead`/`AsyncWrite` (feature
//! `tokio-io`, the tokio crate without its runtime) and `futures_io::AsyncRead`/`AsyncWrite`
//! (feature `futures-io`).
//!
//! # The poll operation (`NetFd::poll_io`)
//!
//! Take a reference on the descriptor (fail once closed), check close and the direction's
//! deadline. Then, as tokio does with its cached readiness, avoid syscalls whose `EAGAIN` is
//! already known:
//!
//! * **Fast path**: the direction's waker slot is still armed with this task's waker
//!   (`WakerSlot::armed_for`): the last syscall found the socket drained (or its send buffer
//!   full) and no notification came since, so the syscall would fail again. `Pending`, with no
//!   syscall; the next notification wakes the stored waker, which wakes this task.
//! * Otherwise consume the direction's pending `READY` in the `PollDesc` state word, then try
//!   the syscall. On `EAGAIN`, store the waker in the slot and arm it (`register_waker`), then
//!   look at the state word: a `READY` there is an edge that came after the syscall and may
//!   have found no waker, so retry; else return `Pending`: any later edge finds the waker
//!   (both sides store, then load, SeqCst: one sees the other).
//! * A **short** transfer (`0 < n < len`) means the socket had no more to give (reads) or no
//!   more room (writes): arm the slot as on `EAGAIN`, and disarm again if the state word shows
//!   an edge since the syscall. The next poll then takes the fast path instead of a syscall
//!   that would fail — for hyper, whose idle connection polls its read again after every
//!   response, one `recv` per request instead of five. Any other completed syscall disarms
//!   the slot (its next poll must try the syscall).
//! * Once the peer's end of stream or an error was reported (`PollDesc::hung_up`) no edge
//!   follows, so neither the fast path nor the arming on a short transfer applies: every poll
//!   tries the syscall (as tokio keeps `READ_CLOSED` sticky).
//!
//! Close, a deadline change and the deadline timer wake the slot (disarming it) as they kick a
//! parked goroutine; the woken task's next poll then fails with the closed error or
//! `TimedOut` (Go's deadlines hold for futures too; std's per-call timeouts do not apply to
//! polls).
//!
//! A poll takes neither direction lock of the blocking path: it never waits, so it cannot
//! hold one, and the goroutine state word is left to blocking calls. One task per direction
//! (the waker slot keeps the last waker); reads and writes may be polled by two tasks.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::task::{Context, Poll};

use super::{Dir, NetFd};

/// An operation's reference on the descriptor, dropped on every exit.
struct Ref<'a>(&'a NetFd);

impl Drop for Ref<'_> {
    fn drop(&mut self) {
        self.0.decref();
    }
}

impl NetFd {
    /// Runs the non-blocking syscall `f`, which transfers at most `len` bytes, for a future
    /// (see the top of this file).
    pub(crate) fn poll_io(
        &self,
        d: Dir,
        cx: &mut Context<'_>,
        len: usize,
        mut f: impl FnMut() -> isize,
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.incref() {
            return Poll::Ready(Err(e));
        }
        let _ref = Ref(self);
        if let Err(e) = self.pd.check(d) {
            return Poll::Ready(Err(e));
        }
        // After the peer's end of stream or an error no edge follows: always try the syscall.
        let hup = self.pd.hung_up();
        if !hup && self.pd.waker_armed_for(d, cx.waker()) {
            return Poll::Pending;
        }
        loop {
            self.pd.consume_ready(d);
            let r = f();
            if r >= 0 {
                let n = r as usize;
                if n > 0 && n < len && !hup {
                    // Drained (or full): arm now, unless an edge came since the syscall (its
                    // `hup` is published before its `READY`).
                    if self.pd.register_waker(d, cx.waker()).is_err()
                        || self.pd.ready_since(d)
                        || self.pd.hung_up()
                    {
                        self.pd.disarm_waker(d);
                    }
                } else {
                    self.pd.disarm_waker(d);
                }
                return Poll::Ready(Ok(n));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    if let Err(e) = self.pd.register_waker(d, cx.waker()) {
                        return Poll::Ready(Err(e));
                    }
                    if !self.pd.ready_since(d) {
                        return Poll::Pending;
                    }
                }
                _ => {
                    self.pd.disarm_waker(d);
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_uninit(cx, super::as_uninit(buf))
    }

    /// Reads into possibly uninitialised memory (the kernel only writes bytes to it).
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // SAFETY: `buf` is writable for `buf.len()` bytes during the call; `recv` writes at
        // most that many and never reads them.
        self.poll_io(Dir::Read, cx, buf.len(), || unsafe {
            crate::sys::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0)
        })
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // SAFETY: `buf` is readable for `buf.len()` bytes; MSG_NOSIGNAL: EPIPE, not SIGPIPE.
        self.poll_io(Dir::Write, cx, buf.len(), || unsafe {
            crate::sys::send(self.fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        })
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut msg: libc::msghdr = super::unsafe_zeroed_msghdr();
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(1024);
        let len = bufs[..msg.msg_iovlen].iter().map(|b| b.len()).sum();
        // SAFETY: `msg` points to `bufs`, valid iovecs (IoSlice is ABI-compatible with iovec).
        self.poll_io(Dir::Write, cx, len, || unsafe {
            crate::sys::sendmsg(self.fd, &msg, libc::MSG_NOSIGNAL)
        })
    }
}

/// The poll methods and async I/O trait impls of a stream type `$t` (field `fd: NetFd`, a
/// `shutdown(Shutdown)` method).
macro_rules! impl_poll_io {
    ($t:ty) => {
        impl $t {
            /// Reads what is available into `buf`, or registers the task's waker and returns
            /// `Pending` until the socket is readable (for futures; see `gonet::block_on`).
            /// Honours the read deadline: once it has passed, `Ready(Err(TimedOut))`. After
            /// close, `Ready(Err(NotConnected))`. One task at a time should poll reads (the
            /// last task's waker is the one woken), as with any socket.
            pub fn poll_read(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_read(cx, buf)
            }

            /// [`poll_read`](Self::poll_read) into uninitialised memory (what `ReadBuf`-style
            /// buffers hand out); returns how many bytes are now initialised and filled.
            pub fn poll_read_uninit(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [std::mem::MaybeUninit<u8>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_read_uninit(cx, buf)
            }

            /// Writes some of `buf`, or registers the task's waker and returns `Pending` until
            /// the socket is writable. Honours the write deadline, as [`poll_read`](Self::poll_read).
            pub fn poll_write(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write(cx, buf)
            }

            /// [`poll_write`](Self::poll_write) with a gather list (one `sendmsg`).
            pub fn poll_write_vectored(
                &self,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write_vectored(cx, bufs)
            }

            /// Shuts the write half down (the peer reads end of stream); never pending.
            pub fn poll_shutdown(
                &self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(match self.shutdown(std::net::Shutdown::Write) {
                    // Already shut down or reset by the peer: nothing left to flush.
                    Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                })
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // SAFETY: `poll_read_uninit` only writes bytes into the unfilled part, and
                // the `n` it returns were written, so they may be marked initialised.
                match self.fd.poll_read_uninit(cx, unsafe { buf.unfilled_mut() }) {
                    std::task::Poll::Ready(Ok(n)) => {
                        // SAFETY: as above, `n` bytes of the unfilled part were written.
                        unsafe { buf.assume_init(n) };
                        buf.advance(n);
                        std::task::Poll::Ready(Ok(()))
                    }
                    std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write(cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                <$t>::poll_shutdown(&self, cx)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "futures-io")]
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write(cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.fd.poll_write_vectored(cx, bufs)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                <$t>::poll_shutdown(&self, cx)
            }
        }
    };
}
pub(crate) use impl_poll_io;
