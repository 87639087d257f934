//! Zero-copy copies (Go's `TCPConn.ReadFrom`): socket → socket with `splice(2)` through a
//! pipe, file → socket with `sendfile(2)`. The bytes never enter user space, so a proxy moves
//! data with two system calls per pipe-full and no copy through a user buffer.
//!
//! Both sides keep the fd rules: each `splice` into the pipe is a read operation on the source
//! (its read deadline and timeout apply, `close` wakes it), each `splice` out of the pipe
//! and each `sendfile` a write operation on the destination. A wait parks the goroutine.
//!
//! Invariant of a [`Splicer`]: `pending` counts the bytes in its pipe; they were taken from a
//! source and belong to the next destination written. A chunk is: drain what is pending, then
//! (only with an empty pipe) one splice in, then drain it all. So a read deadline that fires
//! loses nothing, and a write deadline that fires leaves the bytes in the pipe for the next
//! call.

// The sealed trait hands out the crate-private `NetFd`: it cannot be named or implemented
// outside the crate, which is the point.
#![allow(private_interfaces)]

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::fd::NetFd;
use super::tcp::TcpStream;
use super::unix::UnixStream;

/// The pipe size asked for (`F_SETPIPE_SZ`): 1 MiB as Go's `maxSpliceSize`; the default 64
/// KiB is kept if the kernel refuses.
const PIPE_SIZE: usize = 1 << 20;

mod sealed {
    /// Gives the copy functions the socket's `NetFd` (crate-private).
    pub trait Sealed {
        fn splice_fd(&self) -> &super::NetFd;
    }
}
use sealed::Sealed;

/// A gonet stream socket a copy can splice from or to: [`TcpStream`], [`UnixStream`] and
/// references to them.
pub trait Spliceable: Sealed {}

impl Sealed for TcpStream {
    fn splice_fd(&self) -> &NetFd {
        self.netfd()
    }
}
impl Spliceable for TcpStream {}
impl Sealed for UnixStream {
    fn splice_fd(&self) -> &NetFd {
        self.netfd()
    }
}
impl Spliceable for UnixStream {}
impl<T: Spliceable + ?Sized> Sealed for &T {
    fn splice_fd(&self) -> &NetFd {
        (**self).splice_fd()
    }
}
impl<T: Spliceable + ?Sized> Spliceable for &T {}

/// Copies everything `src` sends until its end of stream into `dst` without user-space
/// copies (`splice(2)` through a pipe), parking on either side as needed; returns the byte
/// count. `src`'s read deadline/timeout and `dst`'s write deadline/timeout apply to each
/// step; closing either socket ends the copy with a "closed" error. On an error, bytes read
/// from `src` but not yet written may be lost (as with a buffered copy); use a [`Splicer`] to
/// keep them across a write deadline.
///
/// ```no_run
/// # gonet::run(|| -> std::io::Result<()> {
/// use gonet::net::{TcpListener, TcpStream};
/// let ln = TcpListener::bind("127.0.0.1:8000")?;
/// let (client, _) = ln.accept()?;
/// let backend = TcpStream::connect("127.0.0.1:9000")?;
/// gonet::net::copy(&backend, &client)?; // client → backend, zero-copy
/// # Ok(()) });
/// ```
pub fn copy<D: Spliceable + ?Sized, S: Spliceable + ?Sized>(dst: &D, src: &S) -> io::Result<u64> {
    Splicer::new()?.copy(dst, src)
}

/// Sends the rest of `file` (from its current offset to its end, advancing the offset) to
/// `dst` with `sendfile(2)`; returns the byte count. `dst`'s write deadline applies.
pub fn copy_file<D: Spliceable + ?Sized>(dst: &D, file: &File) -> io::Result<u64> {
    let out = dst.splice_fd();
    let mut total = 0u64;
    loop {
        // SAFETY: sendfile reads from the open `file` and writes to the open socket; a null
        // offset uses and advances the file's own offset.
        let n = out.write_with(|| unsafe {
            libc::sendfile(out.raw(), file.as_raw_fd(), std::ptr::null_mut(), PIPE_SIZE) as isize
        })?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// A reusable splice pipe: copies chunk by chunk between sockets (see the module notes for
/// its invariant). Use it when something happens between chunks — an idle deadline moved
/// forward, a byte counter — or to keep bytes across a write deadline.
#[derive(Debug)]
pub struct Splicer {
    r: OwnedFd,
    w: OwnedFd,
    pending: usize,
    cap: usize,
}

impl Splicer {
    /// A new pipe (non-blocking, close-on-exec), 1 MiB if the kernel allows.
    pub fn new() -> io::Result<Splicer> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on an open descriptor; a failure only leaves the default size.
        let got =
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) };
        // SAFETY: as above (F_GETPIPE_SZ only reads).
        let cap =
            if got > 0 { got } else { unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) } };
        Ok(Splicer { r, w, pending: 0, cap: if cap > 0 { cap as usize } else { 65536 } })
    }

    /// Bytes read from a source and not yet written.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Moves one chunk (up to a pipe-full) from `src` to `dst`; returns how many bytes came
    /// from `src` (0: its end of stream, with nothing pending).
    pub fn copy_chunk<D: Spliceable + ?Sized, S: Spliceable + ?Sized>(
        &mut self,
        dst: &D,
        src: &S,
    ) -> io::Result<usize> {
        self.drain(dst.splice_fd())?;
        let from = src.splice_fd();
        let pw = self.w.as_raw_fd();
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        // SAFETY: splice between two open descriptors (the socket, the pipe's write end); no
        // user memory is involved.
        let n = from.read_with(|| unsafe {
            libc::splice(
                from.raw(),
                std::ptr::null_mut(),
                pw,
                std::ptr::null_mut(),
                self.cap,
                flags,
            ) as isize
        })?;
        self.pending = n;
        self.drain(dst.splice_fd())?;
        Ok(n)
    }

    /// Writes everything pending in the pipe to `to`.
    fn drain(&mut self, to: &NetFd) -> io::Result<()> {
        let pr = self.r.as_raw_fd();
        let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
        while self.pending > 0 {
            let want = self.pending;
            // SAFETY: splice between two open descriptors (the pipe's read end, the socket).
            let n = to.write_with(|| unsafe {
                libc::splice(pr, std::ptr::null_mut(), to.raw(), std::ptr::null_mut(), want, flags)
                    as isize
            })?;
            self.pending -= n;
        }
        Ok(())
    }

    /// Copies until `src`'s end of stream (see [`copy`]); returns the bytes taken from `src`.
    pub fn copy<D: Spliceable + ?Sized, S: Spliceable + ?Sized>(
        &mut self,
        dst: &D,
        src: &S,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            match self.copy_chunk(dst, src)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    }
}
