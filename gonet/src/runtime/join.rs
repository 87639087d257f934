//! `JoinHandle`: the result slot of a goroutine and the protocol to wait for it.
//!
//! Protocol (one `Mutex<Slot>` per goroutine): the goroutine's completer stores the result and
//! takes the waiter under the lock, then wakes the waiter after releasing it. `join` checks for
//! a result under the lock and, if none, parks with a register function that stores its waiter
//! and releases the lock — so a completion either happens before the check (the result is
//! seen) or after the waiter is stored (the waiter is woken). If the goroutine is dropped
//! without running to completion (its runtime shut down), the completer's `Drop` stores an
//! error instead, so `join` never hangs. A joiner unwound while parked (its runtime shut
//! down) takes its waiter back out of the slot in a guard's destructor, so a goroutine that
//! runs on (in another runtime, or a thread) does not keep the dead joiner — and through it
//! the joiner's worker and its epoll instance — until it finishes.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread;

use super::park::{park_for, Waiter};

struct Slot<T> {
    result: Option<thread::Result<T>>,
    done: bool,
    waiter: Option<Waiter>,
}

type Shared<T> = Arc<Mutex<Slot<T>>>;

fn lock<T>(s: &Shared<T>) -> std::sync::MutexGuard<'_, Slot<T>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// An owned permission to join a goroutine (wait for it and take its result).
///
/// Dropping the handle detaches the goroutine, as in Go: it keeps running.
pub struct JoinHandle<T> {
    slot: Shared<T>,
    id: u64,
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish and returns its value, or the payload of its panic.
    ///
    /// On a goroutine this parks the caller; on a plain thread it blocks the thread.
    #[inline(always)]
    pub fn join(self) -> thread::Result<T> {
        super::dump::keep_frame(self.join_inner())
    }

    fn join_inner(self) -> thread::Result<T> {
        let mut g = lock(&self.slot);
        if !g.done {
            let withdraw =
                Withdraw { slot: &self.slot, gid: super::worker::current_goroutine_id() };
            park_for(super::wait::Wait::Join, move |w| {
                g.waiter = Some(w);
                drop(g);
                Ok(())
            });
            std::mem::forget(withdraw);
            g = lock(&self.slot);
        }
        g.result.take().expect("gonet: goroutine result taken twice")
    }

    /// Whether the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        lock(&self.slot).done
    }

    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Unwinding guard of a parked `join` (see the top of the file).
struct Withdraw<'a, T> {
    slot: &'a Shared<T>,
    gid: Option<u64>,
}

impl<T> Drop for Withdraw<'_, T> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut g = lock(self.slot);
        if g.waiter.as_ref().is_some_and(|w| w.goroutine_id() == gid) {
            let w = g.waiter.take();
            drop(g);
            drop(w);
        }
    }
}

/// The goroutine's side: stores the result exactly once.
pub(crate) struct Completer<T> {
    slot: Option<Shared<T>>,
    id: u64,
}

impl<T> Completer<T> {
    pub(crate) fn complete(mut self, r: thread::Result<T>) {
        if let Some(s) = self.slot.take() {
            finish(&s, r);
        }
    }
}

fn finish<T>(s: &Shared<T>, r: thread::Result<T>) {
    let mut g = lock(s);
    g.result = Some(r);
    g.done = true;
    let w = g.waiter.take();
    drop(g);
    if let Some(w) = w {
        w.wake();
    }
}

thread_local! {
    /// Why a completer dropped now was dropped, when it is not the runtime's shutdown.
    static DROP_REASON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (which drops an unfinished goroutine's completer) with `reason` as the error its
/// `join` returns.
pub(crate) fn with_drop_reason(reason: &str, f: impl FnOnce()) {
    DROP_REASON.with(|r| *r.borrow_mut() = Some(reason.to_string()));
    f();
    DROP_REASON.with(|r| r.borrow_mut().take());
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(s) = self.slot.take() {
            let msg = DROP_REASON.with(|r| r.borrow().clone()).unwrap_or_else(|| {
                format!("gonet: goroutine {} was dropped: its runtime shut down", self.id)
            });
            finish(&s, Err(Box::new(msg) as Box<dyn Any + Send>));
        }
    }
}

/// A connected handle and completer for goroutine `id`.
pub(crate) fn pair<T>(id: u64) -> (JoinHandle<T>, Completer<T>) {
    let s = Arc::new(Mutex::new(Slot { result: None, done: false, waiter: None }));
    (JoinHandle { slot: s.clone(), id }, Completer { slot: Some(s), id })
}
