//! Stand-ins, under `--cfg loom`, for what `poll_desc.rs` takes from the runtime: parking a
//! goroutine and making it runnable, the clock, and deadline timers. With these (and loom's
//! atomics) the real `PollDesc` code runs inside loom models (`models.rs`).
//!
//! * A "goroutine" is a loom thread. [`park_g`] hands a run token ([`GRef`]) to the commit
//!   function exactly as the runtime does, then sleeps in `loom::thread::park` until [`ready`]
//!   is called on that token. A token readied twice panics; one never readied leaves the
//!   thread parked, which loom reports as a deadlock: lost and double wake-ups both fail.
//! * The clock is a model-checked counter: it moves only when a timer fires.
//! * [`timer::call_at`] spawns a loom thread that, at some point loom chooses, advances the
//!   clock to the timer's instant and runs the callback: a timer may fire at any moment after
//!   it is armed, which is what a real timer heap looks like to the code that arms it.

use std::sync::{Arc, Mutex};

use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::thread::{self, JoinHandle, Thread};

/// A parked model thread.
pub(crate) struct G {
    woken: AtomicBool,
    thread: Thread,
}

pub(crate) type GRef = Arc<G>;

loom::lazy_static! {
    static ref CLOCK: AtomicU64 = AtomicU64::new(1);
    static ref TIMERS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());
    /// How many times a thread actually parked (its commit succeeded).
    static ref PARKS: AtomicUsize = AtomicUsize::new(0);
    /// While set, timers armed now wait until it is cleared before firing.
    static ref HOLD: AtomicBool = AtomicBool::new(false);
}

/// Parks the calling model thread after handing its token to `commit` (see `runtime/park.rs`).
pub(crate) fn park_g(commit: impl FnOnce(GRef) -> Result<(), GRef>) {
    let g = Arc::new(G { woken: AtomicBool::new(false), thread: thread::current() });
    if commit(g.clone()).is_err() {
        return;
    }
    PARKS.fetch_add(1, Ordering::SeqCst);
    while !g.woken.load(Ordering::SeqCst) {
        thread::park();
    }
}

/// Makes a parked model thread runnable; the caller holds its token.
pub(crate) fn ready(g: GRef) {
    assert!(!g.woken.swap(true, Ordering::SeqCst), "gonet: a goroutine was woken twice");
    g.thread.unpark();
}

/// The model clock, in nanoseconds since the time origin.
pub(crate) fn nanos_now() -> u64 {
    CLOCK.load(Ordering::SeqCst)
}

/// Instants are nanoseconds in the model.
pub(crate) fn from_nanos(n: u64) -> u64 {
    n
}

/// How many times a model thread has parked so far in this execution.
pub(crate) fn parks() -> usize {
    PARKS.load(Ordering::SeqCst)
}

/// Advances the model clock (time passing without a timer).
#[cfg(test)]
pub(crate) fn advance_to(n: u64) {
    CLOCK.fetch_max(n, Ordering::SeqCst);
}

/// Holds back (`true`) the timers armed from now on until called with `false`: a model can
/// then make a timer fire after a given point (e.g. after its descriptor was reused).
#[cfg(test)]
pub(crate) fn hold_timers(hold: bool) {
    HOLD.store(hold, Ordering::SeqCst);
}

/// Waits for every timer armed so far to have fired.
pub(crate) fn join_timers() {
    loop {
        let h = TIMERS.lock().unwrap().pop();
        match h {
            Some(h) => h.join().unwrap(),
            None => return,
        }
    }
}

pub(crate) mod timer {
    use super::*;

    /// Arms a timer: a model thread that fires it at a moment loom chooses.
    pub(crate) fn call_at(when: u64, f: Box<dyn FnOnce() + Send>) {
        let held = HOLD.load(Ordering::SeqCst);
        let h = thread::spawn(move || {
            while held && HOLD.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            CLOCK.fetch_max(when, Ordering::SeqCst);
            f();
        });
        TIMERS.lock().unwrap().push(h);
    }
}
