//! `Sock`: the descriptor of a server connection, and the rule that keeps its number from
//! being used after it was closed.
//!
//! The owner worker closes the descriptor when it finalizes the connection (conn.rs), at once,
//! so the peer sees the close and the number is free again even while other holders of the
//! connection (a `ConnHandle`, a timer) are still alive. The kernel may then give the number
//! to a new file, so nobody may name it afterwards:
//!
//! * The owner thread (the handler, the poller, finalize) uses the number directly: it is the
//!   only thread that closes it, and it closes it only in finalize, after which no handler
//!   runs and no read or write of the connection is issued.
//! * Any other thread (a `ConnHandle::close` shutting the socket down, an address query)
//!   goes through [`Sock::with`], which holds a reference for the call and fails once the
//!   descriptor is closed. `refs` counts those calls, with a `CLOSED` bit: [`Sock::close`] sets
//!   the bit and closes the number if no call is in flight; otherwise the last call out closes
//!   it. So a number is closed exactly once, and never while a call uses it.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

const CLOSED: usize = 1 << (usize::BITS - 1);

pub(crate) struct Sock {
    fd: RawFd,
    refs: AtomicUsize,
}

impl Sock {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: RawFd) -> Sock {
        Sock { fd, refs: AtomicUsize::new(0) }
    }

    /// The number, for the owner thread before finalize (see the top of this file).
    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    /// Whether the descriptor was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.refs.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Runs `f` with the number, from any thread; `None` once the descriptor is closed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(RawFd) -> R) -> Option<R> {
        let mut cur = self.refs.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return None;
            }
            match self.refs.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        struct Ref<'a>(&'a Sock);
        impl Drop for Ref<'_> {
            fn drop(&mut self) {
                if self.0.refs.fetch_sub(1, Ordering::AcqRel) == CLOSED + 1 {
                    self.0.close_now();
                }
            }
        }
        let _r = Ref(self);
        Some(f(self.fd))
    }

    /// Closes the descriptor: now if no call holds it, else when the last one returns. Once.
    pub(crate) fn close(&self) {
        let prev = self.refs.fetch_or(CLOSED, Ordering::AcqRel);
        if prev == 0 {
            self.close_now();
        }
    }

    fn close_now(&self) {
        // SAFETY: `CLOSED` is set and no call holds the number (the transition to exactly
        // `CLOSED` happens once), so this is its one close and nobody uses it afterwards.
        unsafe { libc::close(self.fd) };
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        // A connection dropped without finalize (never registered, or its runtime ended).
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only asks whether the number is open.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    fn pipe() -> (RawFd, RawFd) {
        let mut p = [0; 2];
        // SAFETY: `p` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (p[0], p[1])
    }

    #[test]
    fn close_frees_the_number_once_and_later_calls_do_not_name_it() {
        let (r, w) = pipe();
        let s = Sock::new(r);
        assert_eq!(s.with(|fd| fd), Some(r));
        s.close();
        assert!(s.is_closed());
        assert!(!is_open(r), "close must free the number at once");
        assert_eq!(s.with(|fd| fd), None, "no call may name a closed number");
        s.close(); // idempotent
        let (r2, w2) = pipe(); // may reuse the number
        drop(s); // must not close it again
        assert!(is_open(r2) && is_open(w2));
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(r2);
            libc::close(w2);
            libc::close(w);
        }
    }

    #[test]
    fn a_call_in_flight_keeps_the_number_until_it_returns() {
        let (r, w) = pipe();
        let s = Sock::new(r);
        s.with(|fd| {
            s.close();
            assert!(is_open(fd), "closed under a call in flight");
        });
        assert!(!is_open(r), "the last call out closes it");
        // SAFETY: our own descriptor.
        unsafe { libc::close(w) };
    }
}
