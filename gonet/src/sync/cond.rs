//! [`Cond`]: a condition variable for goroutines (Go's `sync.Cond`, std's `Condvar` shape).
//!
//! # Protocol
//!
//! `wait` queues its waiter and releases the caller's [`Mutex`] *inside* the park's register
//! step, after the waiter is queued: a `signal` or `broadcast` that follows the release (the
//! only ones the caller can be waiting for) finds the waiter, so no wake-up is lost. After
//! the wake the waiter takes the mutex again. `signal` wakes the longest waiter, `broadcast`
//! all of them; neither needs the mutex held. There are no spurious wake-ups, but as in Go
//! the condition must still be re-checked in a loop: another goroutine may take the mutex
//! and change the state between the signal and the waiter's relock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex as StdMutex;

use super::mutex::{Mutex, MutexGuard};
use crate::runtime::park::{park, Waiter};
use crate::runtime::worker;

/// A condition variable used with a [`Mutex`]; see the top of `cond.rs`.
#[derive(Default)]
pub struct Cond {
    q: StdMutex<VecDeque<Waiter>>,
}

impl Cond {
    /// A new condition variable.
    pub const fn new() -> Cond {
        Cond { q: StdMutex::new(VecDeque::new()) }
    }

    /// Releases `guard`'s mutex, parks until [`signal`](Cond::signal) or
    /// [`broadcast`](Cond::broadcast) wakes the caller, and locks the mutex again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let m: &'a Mutex<T> = guard.leak();
        let q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let withdraw = Withdraw { c: self, gid: worker::current_goroutine_id() };
        park(move |w| {
            let mut q = q;
            q.push_back(w);
            drop(q);
            m.raw().unlock();
            Ok(())
        });
        std::mem::forget(withdraw);
        m.lock()
    }

    /// Waits while `condition` holds, re-checking it after every wake-up.
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes the goroutine (or thread) that has waited longest, if any.
    pub fn signal(&self) {
        let w = self.q.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Wakes every waiter.
    pub fn broadcast(&self) {
        let ws = std::mem::take(&mut *self.q.lock().unwrap_or_else(|e| e.into_inner()));
        ws.into_iter().for_each(Waiter::wake);
    }
}

/// Removes the waiter of a goroutine unwound while parked (runtime shutdown), so that no
/// signal is spent on it.
struct Withdraw<'a> {
    c: &'a Cond,
    gid: Option<u64>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut q = self.c.q.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = q.iter().position(|w| w.goroutine_id() == gid) {
            q.remove(i);
        }
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cond { .. }")
    }
}
