//! The system calls on the per-request path (`recv`, `send`, `sendmsg`, `readv`,
//! `epoll_pwait`), made through `syscall(2)` rather than glibc's wrappers.
//!
//! Those wrappers are POSIX cancellation points: in a process with more than one thread (a
//! gonet process always has its workers and its watchdog) each call switches the thread to
//! asynchronous cancellation and back around the system call, which callgrind counts at about
//! 40 instructions per call, two calls per echoed request. gonet never cancels a thread
//! (Rust has no `pthread_cancel`), so that work buys nothing; Go makes its system calls raw
//! for the same reason. `syscall(2)` is not a cancellation point.
//!
//! Each function has the libc signature's meaning: the result, or `-1` with `errno` set.
//! Every argument is widened to `c_long` before it is passed, since `syscall(2)` reads each
//! of its variadic arguments as one.

use std::ptr;

use libc::{c_int, c_long, c_void, iovec, msghdr};

/// `recv(2)`.
///
/// # Safety
/// `buf` is writable for `len` bytes for the duration of the call.
#[inline]
pub(crate) unsafe fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize {
    // SAFETY: the caller's obligation on `buf`; `recvfrom` with no address is `recv`.
    unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd as c_long,
            buf,
            len as c_long,
            flags as c_long,
            ptr::null_mut::<c_void>(),
            ptr::null_mut::<c_void>(),
        ) as isize
    }
}

/// `send(2)`.
///
/// # Safety
/// `buf` is readable for `len` bytes for the duration of the call.
#[inline]
pub(crate) unsafe fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize {
    // SAFETY: the caller's obligation on `buf`; `sendto` with no address is `send`.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd as c_long,
            buf,
            len as c_long,
            flags as c_long,
            ptr::null::<c_void>(),
            0 as c_long,
        ) as isize
    }
}

/// `sendmsg(2)`.
///
/// # Safety
/// `msg` and the iovecs it points to are valid for the duration of the call.
#[inline]
pub(crate) unsafe fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> isize {
    // SAFETY: the caller's obligation on `msg`.
    unsafe { libc::syscall(libc::SYS_sendmsg, fd as c_long, msg, flags as c_long) as isize }
}

/// `readv(2)`.
///
/// # Safety
/// `iov` points to `cnt` iovecs, each writable for its length, for the duration of the call.
#[inline]
pub(crate) unsafe fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> isize {
    // SAFETY: the caller's obligation on `iov`.
    unsafe { libc::syscall(libc::SYS_readv, fd as c_long, iov, cnt as c_long) as isize }
}

/// `epoll_wait(2)` (as `epoll_pwait` with no signal mask, the call every architecture has).
///
/// # Safety
/// `events` is writable for `max` entries for the duration of the call.
#[inline]
pub(crate) unsafe fn epoll_wait(
    ep: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout_ms: c_int,
) -> c_int {
    // SAFETY: the caller's obligation on `events`; a null mask leaves the signal mask alone.
    unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait,
            ep as c_long,
            events,
            max as c_long,
            timeout_ms as c_long,
            ptr::null::<c_void>(),
            8 as c_long,
        ) as c_int
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// The raw calls move bytes and report errors as the libc ones do.
    #[test]
    fn raw_calls_behave_as_libc() {
        let (a, b) = UnixStream::pair().unwrap();
        let msg = b"hello";
        // SAFETY: `msg` is readable for its length.
        let n = unsafe { send(a.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        assert_eq!(n, 5);
        let mut buf = [0u8; 16];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { recv(b.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert_eq!(&buf[..n as usize], b"hello");

        let parts = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cde")];
        // SAFETY: a zeroed msghdr is a valid empty header; the iovecs outlive the call.
        let mut m: msghdr = unsafe { std::mem::zeroed() };
        m.msg_iov = parts.as_ptr() as *mut iovec;
        m.msg_iovlen = parts.len();
        // SAFETY: `m` points to two valid iovecs.
        assert_eq!(unsafe { sendmsg(a.as_raw_fd(), &m, 0) }, 5);
        let (mut x, mut y) = ([0u8; 1], [0u8; 8]);
        let iov = [
            iovec { iov_base: x.as_mut_ptr().cast(), iov_len: 1 },
            iovec { iov_base: y.as_mut_ptr().cast(), iov_len: 8 },
        ];
        // SAFETY: both iovecs are writable for their lengths.
        assert_eq!(unsafe { readv(b.as_raw_fd(), iov.as_ptr(), 2) }, 5);
        assert_eq!((&x[..], &y[..4]), (&b"a"[..], &b"bcde"[..]));

        b.set_nonblocking(true).unwrap();
        // SAFETY: as above.
        let n = unsafe { recv(b.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert_eq!(n, -1);
        assert_eq!(io::Error::last_os_error().kind(), io::ErrorKind::WouldBlock);
        // SAFETY: an invalid descriptor: the call fails with EBADF and touches no memory.
        let n = unsafe { recv(-1, buf.as_mut_ptr().cast(), buf.len(), 0) };
        assert_eq!((n, io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EBADF)));
    }

    /// `epoll_wait` reports a ready descriptor with its data, and times out with none.
    #[test]
    fn raw_epoll_wait_reports_readiness_and_times_out() {
        let (a, b) = UnixStream::pair().unwrap();
        // SAFETY: plain syscalls on descriptors we own; `ev` lives across the call.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(ep >= 0);
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 42 };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, b.as_raw_fd(), &mut ev) }, 0);
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `evs` is writable for 4 entries.
        assert_eq!(unsafe { epoll_wait(ep, evs.as_mut_ptr(), 4, 0) }, 0);
        // SAFETY: `b"x"` is readable for 1 byte.
        assert_eq!(unsafe { send(a.as_raw_fd(), b"x".as_ptr().cast(), 1, 0) }, 1);
        // SAFETY: as above.
        assert_eq!(unsafe { epoll_wait(ep, evs.as_mut_ptr(), 4, 1000) }, 1);
        let data = evs[0].u64;
        assert_eq!(data, 42);
        // SAFETY: closes the epoll descriptor we created.
        unsafe { libc::close(ep) };
    }
}
