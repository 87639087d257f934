//! [`RwLock`]: a reader/writer lock that parks waiting goroutines, writer-preferring like
//! Go's `sync.RWMutex`.
//!
//! # Protocol (all under `state`'s lock)
//!
//! `readers` counts the read locks held, `writer` says the write lock is held; `rq` and `wq`
//! are the parked readers and writers, FIFO. Invariants:
//!
//! 1. `writer` implies `readers == 0`.
//! 2. A reader takes the lock at once only if no writer holds it *and none waits*
//!    (`wq` empty): once a writer waits, new readers queue behind it, so a stream of
//!    readers cannot starve a writer (Go: "a blocked Lock call excludes new readers").
//! 3. Unlocks hand the lock over directly, so a woken waiter owns what it waited for:
//!    the last reader out hands the write lock to the first waiting writer; a writer's
//!    unlock admits *every* waiting reader at once if there are any, else the next writer.
//!    Readers that arrived during a write therefore go before the next writer, so writers
//!    cannot starve readers either.
//! 4. A goroutine whose stack is unwound while parked (runtime shutdown) withdraws its
//!    waiter, or, if the lock was already handed to it, releases it.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex as StdMutex, MutexGuard as StdGuard};

use crate::runtime::park::{park, Waiter};
use crate::runtime::worker;

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    rq: VecDeque<Waiter>,
    wq: VecDeque<Waiter>,
}

/// A reader/writer lock for goroutines (and threads): any number of readers or one writer.
/// Writer-preferring as Go's `sync.RWMutex`: once a writer waits, new readers wait too, so
/// readers cannot starve a writer; the readers that queued during a write are all admitted
/// when it ends, so writers cannot starve readers. No poisoning: a panic unlocks.
pub struct RwLock<T: ?Sized> {
    state: StdMutex<State>,
    data: UnsafeCell<T>,
}

// SAFETY: as `std::sync::RwLock`: writers need `T: Send`, concurrent readers `T: Sync`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Read,
    Write,
}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock { state: StdMutex::new(State::default()), data: UnsafeCell::new(value) }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    fn lock_state(&self) -> StdGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a read lock, parking while a writer holds the lock or waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        let mut st = self.lock_state();
        if !st.writer && st.wq.is_empty() {
            st.readers += 1;
            return RwLockReadGuard { l: self };
        }
        self.wait(st, Kind::Read);
        RwLockReadGuard { l: self }
    }

    /// Takes the write lock, parking while it is held by anyone.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        let mut st = self.lock_state();
        if !st.writer && st.readers == 0 {
            st.writer = true;
            return RwLockWriteGuard { l: self };
        }
        self.wait(st, Kind::Write);
        RwLockWriteGuard { l: self }
    }

    /// Takes a read lock if that is possible without waiting.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.lock_state();
        (!st.writer && st.wq.is_empty()).then(|| {
            st.readers += 1;
            RwLockReadGuard { l: self }
        })
    }

    /// Takes the write lock if that is possible without waiting.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.lock_state();
        (!st.writer && st.readers == 0).then(|| {
            st.writer = true;
            RwLockWriteGuard { l: self }
        })
    }

    /// Mutable access without locking (the borrow proves exclusivity).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Parks until an unlock hands the lock over (invariant 3).
    fn wait(&self, st: StdGuard<'_, State>, kind: Kind) {
        let withdraw = Withdraw { l: self, kind, gid: worker::current_goroutine_id() };
        park(move |w| {
            let mut st = st;
            match kind {
                Kind::Read => st.rq.push_back(w),
                Kind::Write => st.wq.push_back(w),
            }
            Ok(())
        });
        std::mem::forget(withdraw);
    }

    fn read_unlock(&self) {
        let mut st = self.lock_state();
        st.readers -= 1;
        if st.readers == 0 {
            if let Some(w) = st.wq.pop_front() {
                st.writer = true;
                drop(st);
                w.wake();
            }
        }
    }

    fn write_unlock(&self) {
        let mut st = self.lock_state();
        st.writer = false;
        if !st.rq.is_empty() {
            let rq = std::mem::take(&mut st.rq);
            st.readers = rq.len();
            drop(st);
            rq.into_iter().for_each(Waiter::wake);
        } else if let Some(w) = st.wq.pop_front() {
            st.writer = true;
            drop(st);
            w.wake();
        }
    }
}

/// Unwinding guard of a parked waiter (invariant 4).
struct Withdraw<'a, T: ?Sized> {
    l: &'a RwLock<T>,
    kind: Kind,
    gid: Option<u64>,
}

impl<T: ?Sized> Drop for Withdraw<'_, T> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut st = self.l.lock_state();
        let q = if self.kind == Kind::Read { &mut st.rq } else { &mut st.wq };
        if let Some(i) = q.iter().position(|w| w.goroutine_id() == gid) {
            q.remove(i);
            // A reader queued behind this writer may now be admissible.
            if self.kind == Kind::Write && st.wq.is_empty() && !st.writer {
                let rq = std::mem::take(&mut st.rq);
                st.readers += rq.len();
                drop(st);
                rq.into_iter().for_each(Waiter::wake);
            }
            return;
        }
        drop(st);
        match self.kind {
            Kind::Read => self.l.read_unlock(),
            Kind::Write => self.l.write_unlock(),
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_read() {
            Some(g) => f.debug_struct("RwLock").field("data", &&*g).finish(),
            None => f.write_str("RwLock { <locked> }"),
        }
    }
}

/// A read lock on an [`RwLock`]; released when dropped.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

/// The write lock on an [`RwLock`]; released when dropped.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    l: &'a RwLock<T>,
}

// SAFETY: sharing a guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held, so only shared access exists.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held, so no other access exists.
        unsafe { &*self.l.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held and `&mut self` makes this the only access.
        unsafe { &mut *self.l.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
