//! [`WaitGroup`]: waits for a collection of goroutines to finish (Go's `sync.WaitGroup`).
//!
//! # Protocol
//!
//! One lock protects the counter and the list of blocked waiters. `add` raises the counter;
//! `done` lowers it and, when it reaches zero, takes every queued waiter and wakes them after
//! releasing the lock. `wait` returns at once when the counter is zero; otherwise it parks
//! with a register step that queues its waiter and only then releases the lock. Invariant:
//! a waiter is queued only while the counter is above zero, and the `done` that brings it to
//! zero sees it — so no wake-up is lost, and a woken waiter saw the counter reach zero.
//! A goroutine unwound while parked (its runtime shut down) removes its own waiter in a
//! guard's destructor, so the list never keeps a dead goroutine (nor, through it, its
//! worker's epoll instance) until the next `done`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::runtime::park::{park_for, Waiter};

struct State {
    count: usize,
    waiters: Vec<Waiter>,
}

/// Waits for a collection of goroutines to finish. As in Go: call [`add`](WaitGroup::add)
/// before starting the goroutines, [`done`](WaitGroup::done) in each when it finishes, and
/// [`wait`](WaitGroup::wait) to park until all are done.
///
/// Clones share one counter (it is an `Arc` inside), so a clone can be moved into each
/// goroutine. Works from plain threads too.
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Mutex<State>>,
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl WaitGroup {
    /// A wait group with a counter of zero.
    pub fn new() -> WaitGroup {
        WaitGroup { inner: Arc::new(Mutex::new(State { count: 0, waiters: Vec::new() })) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `n` to the counter.
    ///
    /// # Panics
    /// If the counter would overflow.
    pub fn add(&self, n: usize) {
        let mut st = self.lock();
        match st.count.checked_add(n) {
            Some(c) => st.count = c,
            None => {
                drop(st);
                panic!("gonet: WaitGroup counter overflow");
            }
        }
    }

    /// Decrements the counter, waking every waiter when it reaches zero.
    ///
    /// # Panics
    /// If the counter is already zero (more `done` calls than `add`ed), as Go's
    /// "negative WaitGroup counter".
    pub fn done(&self) {
        let mut st = self.lock();
        if st.count == 0 {
            drop(st);
            panic!("gonet: negative WaitGroup counter: done() called more times than add()");
        }
        st.count -= 1;
        if st.count > 0 {
            return;
        }
        let waiters = std::mem::take(&mut st.waiters);
        drop(st);
        waiters.into_iter().for_each(Waiter::wake);
    }

    /// Parks the goroutine (or blocks the thread) until the counter is zero.
    #[inline(always)]
    pub fn wait(&self) {
        self.wait_inner();
        crate::runtime::dump::keep_frame(())
    }

    fn wait_inner(&self) {
        let st = self.lock();
        if st.count == 0 {
            return;
        }
        let withdraw = Withdraw { wg: self, gid: crate::runtime::worker::current_goroutine_id() };
        park_for(crate::runtime::wait::Wait::Group, move |w| {
            let mut st = st;
            st.waiters.push(w);
            drop(st);
            Ok(())
        });
        std::mem::forget(withdraw);
    }

    /// The current counter.
    pub fn count(&self) -> usize {
        self.lock().count
    }

    /// Adds one to the counter and returns a guard that calls [`done`](WaitGroup::done) when
    /// dropped — also when the goroutine holding it panics, so a panic cannot leave
    /// [`wait`](WaitGroup::wait) blocked forever.
    pub fn guard(&self) -> DoneGuard {
        self.add(1);
        DoneGuard { wg: self.clone() }
    }

    /// Starts `f` in a goroutine counted by the group (Go 1.25's `WaitGroup.Go`): the counter
    /// is raised now and lowered when `f` returns or panics.
    ///
    /// # Panics
    /// Outside a runtime, as [`go`](crate::go).
    pub fn go<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let guard = self.guard();
        crate::go(move || {
            let _guard = guard;
            f()
        })
    }
}

/// Unwinding guard of a parked `wait` (see the top of the file).
struct Withdraw<'a> {
    wg: &'a WaitGroup,
    gid: Option<u64>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut st = self.wg.lock();
        if let Some(i) = st.waiters.iter().position(|w| w.goroutine_id() == gid) {
            drop(st.waiters.swap_remove(i));
        }
    }
}

/// Calls [`WaitGroup::done`] when dropped; from [`WaitGroup::guard`].
#[must_use = "dropping the guard calls done() at once"]
pub struct DoneGuard {
    wg: WaitGroup,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.wg.done();
    }
}

impl fmt::Debug for DoneGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DoneGuard { .. }")
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.count()).finish()
    }
}
