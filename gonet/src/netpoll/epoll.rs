//! A worker's poller: one epoll instance plus an eventfd that breaks a blocked `epoll_wait`.
//!
//! Descriptors are registered once, edge-triggered, for `EPOLLIN | EPOLLOUT | EPOLLRDHUP`; the
//! event's data is the tagged `PollDesc` pointer (see `poll_desc.rs`). The eventfd is registered
//! with data [`WAKE_TOKEN`], which no `PollDesc` pointer can equal.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Event data of the eventfd.
pub(crate) const WAKE_TOKEN: u64 = 0;

pub(crate) struct Poller {
    ep: OwnedFd,
    wake: OwnedFd,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain syscalls; each result is checked and owned right away.
        let ep = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let wake = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?)
        };
        let p = Poller { ep, wake };
        p.ctl(libc::EPOLL_CTL_ADD, p.wake.as_raw_fd(), libc::EPOLLIN as u32, WAKE_TOKEN)?;
        Ok(p)
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.ep.as_raw_fd()
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Registers `fd` edge-triggered for both directions with `data` as the event's data.
    pub(crate) fn register(&self, fd: RawFd, data: u64) -> io::Result<()> {
        let ev = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        self.ctl(libc::EPOLL_CTL_ADD, fd, ev as u32, data)
    }

    /// Waits up to `timeout_ms` (-1: forever) and fills `events`; returns how many.
    pub(crate) fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> usize {
        // SAFETY: `events` is a writable buffer of `events.len()` entries.
        let n = unsafe {
            crate::sys::epoll_wait(
                self.ep.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        // EINTR (a signal, e.g. a profiler's) is an empty wait; nothing else can fail here.
        n.max(0) as usize
    }

    /// Breaks a concurrent or the next `wait`.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. It can only fail with EAGAIN
        // when the counter is saturated, in which case a wake-up is pending anyway.
        unsafe { libc::write(self.wake.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
    }

    /// Consumes pending wake-ups (called when the eventfd's event is seen).
    pub(crate) fn drain_wake(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.wake.as_raw_fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
    }
}

/// Removes `fd` from the epoll instance `ep` (before the descriptor is closed).
pub(crate) fn deregister(ep: RawFd, fd: RawFd) {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: plain syscall; ENOENT/EBADF (already gone) are harmless.
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut ev) };
}
