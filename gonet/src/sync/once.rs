//! [`Once`] and [`OnceLock`]: one-time initialisation whose latecomers park (the goroutine,
//! or the thread outside a runtime) instead of blocking the worker thread, as std's would.
//!
//! # Protocol
//!
//! `done` (atomic) is the fast path: once true, the value is written and never changes.
//! Otherwise, under `st`'s lock: the first caller sets `running` and runs the initialiser
//! without the lock; later callers queue their waiter and park. The runner then, under the
//! lock, clears `running`, sets `done` if the initialiser returned, and wakes every waiter.
//! A woken waiter re-checks: `done` means return; otherwise the initialiser panicked and the
//! waiter competes to run it again (`OnceLock`, as std's), or — for [`Once`], which follows
//! Go's `sync.Once` — a panic counts as done. A waiter is queued only while `running` is set,
//! and the runner wakes all of them under the same lock, so no wake-up is lost.
//!
//! # Initialisers cut short by a runtime's end
//!
//! When a runtime ends, the goroutines parked in it are force-unwound (`worker.rs`,
//! invariant 4). An initialiser unwound that way did not finish and did not panic: the
//! runner's guard sees the forced unwind (`contain::force_unwinding`) and leaves the cell
//! *not done* — `running` cleared, the waiters woken — so another caller (in this runtime's
//! successor, or a thread) runs the initialiser again. Hence a `static Once` or `OnceLock`
//! shared by runtimes run one after the other is never left done with a half-run
//! initialiser, and an `OnceLock` never exposes a value that was not fully written (`done`
//! is set only after the write). A latecomer unwound while parked removes its own waiter
//! (by goroutine id), so the list never keeps a dead goroutine.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex as StdMutex;

use crate::runtime::contain;
use crate::runtime::park::{park, Waiter};
use crate::runtime::worker;

struct St {
    running: bool,
    waiters: Vec<Waiter>,
}

/// The protocol without the value.
struct Core {
    done: AtomicBool,
    st: StdMutex<St>,
}

impl Core {
    const fn new() -> Core {
        Core {
            done: AtomicBool::new(false),
            st: StdMutex::new(St { running: false, waiters: Vec::new() }),
        }
    }

    #[inline]
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Returns true if the caller must run the initialiser (then it calls `finish`), false
    /// once the initialisation is done.
    fn begin(&self) -> bool {
        loop {
            if self.is_done() {
                return false;
            }
            let mut st = self.st.lock().unwrap_or_else(|e| e.into_inner());
            if self.is_done() {
                return false;
            }
            if !st.running {
                st.running = true;
                return true;
            }
            let withdraw = Withdraw { core: self, gid: worker::current_goroutine_id() };
            park(move |w| {
                st.waiters.push(w);
                drop(st);
                Ok(())
            });
            std::mem::forget(withdraw);
        }
    }

    /// Ends a run: `done` if the initialiser completed (see the top of the file).
    fn finish(&self, done: bool) {
        let mut st = self.st.lock().unwrap_or_else(|e| e.into_inner());
        st.running = false;
        if done {
            self.done.store(true, Ordering::Release);
        }
        let ws = std::mem::take(&mut st.waiters);
        drop(st);
        ws.into_iter().for_each(Waiter::wake);
    }
}

/// Unwinding guard of a parked latecomer (see the top of the file).
struct Withdraw<'a> {
    core: &'a Core,
    gid: Option<u64>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let Some(gid) = self.gid else { return };
        let mut st = self.core.st.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = st.waiters.iter().position(|w| w.goroutine_id() == gid) {
            drop(st.waiters.swap_remove(i));
        }
    }
}

/// Ends a run when the initialiser returns or unwinds.
struct Finish<'a> {
    core: &'a Core,
    /// Set once the initialiser has returned (for `Once`: from the start, since a panic
    /// counts as done too).
    done: bool,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        // An initialiser force-unwound because its runtime ended did not run to its end and
        // did not panic: the cell stays not done (see the top of the file).
        let done = self.done && !contain::force_unwinding();
        self.core.finish(done);
    }
}

/// Runs a function once (Go's `sync.Once`): concurrent callers park until it has returned.
/// As in Go, if the function panics, the `Once` counts as done and the panic goes to the
/// caller that ran it.
///
/// One exception, which Go does not have: a function cut short because its runtime ended
/// (a goroutine parked inside it when the runtime's main goroutine returned, whose stack the
/// runtime unwinds) did not run to its end and did not panic, so the `Once` stays *not
/// done* and the next caller runs its function. A `static Once` shared by runtimes run one
/// after the other is thus never left done by a half-run call.
pub struct Once {
    core: Core,
}

impl Once {
    /// A new `Once`.
    pub const fn new() -> Once {
        Once { core: Core::new() }
    }

    /// Runs `f` if no call has run it yet; otherwise waits (parking) until the call that
    /// runs it has returned, then returns without running `f`.
    pub fn call_once(&self, f: impl FnOnce()) {
        if self.core.begin() {
            let _finish = Finish { core: &self.core, done: true };
            f();
        }
    }

    /// Whether a call has completed.
    pub fn is_completed(&self) -> bool {
        self.core.is_done()
    }
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").field("done", &self.is_completed()).finish()
    }
}

/// A cell written once (std's `OnceLock`), whose concurrent initialisers park: the first
/// caller of [`get_or_init`](OnceLock::get_or_init) runs its closure, the others wait for
/// the value. If the closure panics, the cell stays empty and the next caller (or a waiter)
/// runs its own closure, as with std. A closure cut short because its runtime ended (see
/// [`Once`]) leaves the cell empty as well: the cell never exposes a value that was not
/// fully written.
pub struct OnceLock<T> {
    core: Core,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, by the single runner, before `done` is released;
// afterwards only shared references exist. Sharing needs `T: Sync + Send` (a value written on
// one thread is read and dropped on others), as for std's `OnceLock`.
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock { core: Core::new(), value: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    /// The value, if initialised.
    pub fn get(&self) -> Option<&T> {
        if self.core.is_done() {
            // SAFETY: `done` is set only after the value was written (Acquire pairs with the
            // runner's Release), and it is never written again.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, initialising it with `f` if it is empty; concurrent callers park until the
    /// first one's `f` has returned.
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        if let Some(v) = self.get() {
            return v;
        }
        if self.core.begin() {
            let mut finish = Finish { core: &self.core, done: false };
            let v = f();
            // SAFETY: `begin` made us the only runner, and `done` is not set yet, so nobody
            // reads the slot.
            unsafe { (*self.value.get()).write(v) };
            finish.done = true;
            drop(finish);
        }
        self.get().expect("gonet: OnceLock initialised")
    }

    /// Stores `value` if the cell is empty; otherwise hands it back. Waits (parking) if an
    /// initialisation is running.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("set's value"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// Takes the value out, leaving the cell empty (the borrow proves exclusivity).
    pub fn take(&mut self) -> Option<T> {
        if !self.core.is_done() {
            return None;
        }
        self.core.done.store(false, Ordering::Relaxed);
        // SAFETY: it was initialised, and `done` is now false, so it will not be read again
        // or dropped twice.
        Some(unsafe { (*self.value.get()).assume_init_read() })
    }

    /// Consumes the cell and returns its value.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.core.is_done() {
            // SAFETY: initialised, and dropped once (we are in `drop`).
            unsafe { self.value.get_mut().assume_init_drop() }
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        OnceLock::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceLock").field(&self.get()).finish()
    }
}

// Unwind safety as std's: a panicking initialiser leaves the cell empty.
impl<T: panic::RefUnwindSafe + panic::UnwindSafe> panic::RefUnwindSafe for OnceLock<T> {}
impl<T: panic::UnwindSafe> panic::UnwindSafe for OnceLock<T> {}
