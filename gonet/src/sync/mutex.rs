//! [`Mutex`]: a mutual-exclusion lock that parks the waiting goroutine.
//!
//! # Protocol of `RawMutex`
//!
//! `state` is `UNLOCKED`, `LOCKED` (no waiters) or `CONTENDED` (locked, and there may be
//! waiters in `queue`). Invariants:
//! 1. The fast paths are single CAS operations: lock `UNLOCKED → LOCKED`, unlock
//!    `LOCKED → UNLOCKED`.
//! 2. Every other transition happens with `queue`'s lock held. A locker that fails the fast
//!    path swaps the state to `CONTENDED` under the queue lock: if it was `UNLOCKED`, it now owns
//!    the mutex; otherwise it enqueues its waiter (the queue lock is released by the park's
//!    register step, after the waiter is stored).
//! 3. An unlock that finds `CONTENDED` takes the queue lock and, if a waiter is queued, hands
//!    the mutex over to it directly (the state stays locked: `LOCKED` if the queue became
//!    empty, else `CONTENDED`); with no waiter it stores `UNLOCKED`.
//!
//! Hand-off makes the lock FIFO-fair among waiters, and a waiter never wakes to find the lock
//! taken, so there are no spurious wake-ups and no lost ones.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::runtime::park::{park_for, Waiter};

const UNLOCKED: u8 = 0;
const LOCKED: u8 = 1;
const CONTENDED: u8 = 2;

/// The lock without data: also used by the fd layer to serialise readers and writers.
pub(crate) struct RawMutex {
    state: AtomicU8,
    queue: std::sync::Mutex<VecDeque<Waiter>>,
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex { state: AtomicU8::new(UNLOCKED), queue: std::sync::Mutex::new(VecDeque::new()) }
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        self.state.compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    #[cold]
    fn lock_slow(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if self.state.swap(CONTENDED, Ordering::Acquire) == UNLOCKED {
            return; // acquired (marked contended: the unlock takes the slow path once)
        }
        // If the runtime shuts down while we are parked, our stack is unwound from inside
        // `park`: the guard then withdraws our waiter, or, if the lock was already handed to
        // us, passes it on — so a dead goroutine never holds the lock.
        let withdraw = Withdraw { m: self, gid: crate::runtime::worker::current_goroutine_id() };
        park_for(crate::runtime::wait::Wait::MutexLock, move |w| {
            q.push_back(w);
            drop(q);
            Ok(())
        });
        std::mem::forget(withdraw);
        // Woken by a hand-off: we own the lock.
    }

    /// Releases the lock. The caller must hold it.
    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, UNLOCKED, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match q.pop_front() {
            Some(w) => {
                let next = if q.is_empty() { LOCKED } else { CONTENDED };
                self.state.store(next, Ordering::Release);
                drop(q);
                w.wake();
            }
            None => self.state.store(UNLOCKED, Ordering::Release),
        }
    }
}

/// Unwinding guard of a parked `lock_slow` (see there).
struct Withdraw<'a> {
    m: &'a RawMutex,
    gid: Option<u64>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut q = self.m.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = q.iter().position(|w| w.goroutine_id() == gid) {
            q.remove(i);
            return;
        }
        drop(q);
        self.m.unlock(); // the hand-off reached us: pass the lock on
    }
}

/// A mutual-exclusion lock for goroutines (and threads): `lock` parks the calling goroutine
/// while another holds the lock. A guard may be held across parks (channel operations, I/O).
/// Unlike `std::sync::Mutex` it has no poisoning: a panic while locked just unlocks.
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one holder at a time, on any thread, so `T: Send`
// suffices for both, as for `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(value) }
    }

    /// Consumes the mutex and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the goroutine (or blocking the thread) until the lock is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { m: self }
    }

    /// Locks if the lock is free right now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // `then`, not `then_some`: a guard built for a failed attempt would unlock on drop.
        self.raw.try_lock().then(|| MutexGuard { m: self })
    }

    /// Mutable access without locking (the borrow proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
            None => f.write_str("Mutex { <locked> }"),
        }
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks when dropped.
pub struct MutexGuard<'a, T: ?Sized> {
    m: &'a Mutex<T>,
}

// SAFETY: sharing a guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Gives up the guard without unlocking; the caller becomes responsible for the unlock
    /// (`Cond::wait` releases the lock from inside its park).
    pub(crate) fn leak(self) -> &'a Mutex<T> {
        let m = self.m;
        std::mem::forget(self);
        m
    }
}

impl<T: ?Sized> Mutex<T> {
    /// The lock without the data.
    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held, so no other access exists.
        unsafe { &*self.m.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.m.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
