//! [`Timer`] and [`after_func`]: one-shot timers that can be stopped and reset (Go's
//! `time.Timer`, with Go 1.23's semantics).
//!
//! # State, under `Shared::st`'s lock
//!
//! * `gen` — bumped by every `stop` and `reset`; a heap entry carries the generation it was
//!   armed in and does nothing if it no longer matches, so a firing that loses a race with
//!   `stop`/`reset` is void even if its heap entry was already popped;
//! * `armed` — the cancel handle of the pending heap entry, `None` once it fired or was
//!   stopped;
//! * `gone` — nobody can receive the channel's value any more (the last receiver was
//!   dropped): the timer is never armed again.
//!
//! # Invariants
//!
//! 1. A firing sends its value (or starts its function) under the lock, and only if its
//!    generation is current and `armed` is set, clearing `armed`.
//! 2. `stop` and `reset` bump `gen`, cancel `armed` and empty the channel, all under the
//!    lock. With 1, no value from before the call is received after it (Go 1.23), and the
//!    return value is true exactly when the timer was armed or its value was still unreceived
//!    — Go 1.23 counts a fired but unreceived timer as still pending, since its channel is
//!    synchronous.
//! 3. Lock order: the timer's lock, then the channel's. The channel's "receivers gone" hook
//!    takes the timer's lock only after the channel has released its own.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::timer::{self as rt_timer, Cancel};
use crate::runtime::worker;

/// What a firing does.
enum Kind {
    /// Send the current instant (a [`Timer`] from [`Timer::new`]).
    Chan(Sender<Instant>),
    /// Run a function in its own goroutine ([`after_func`]).
    Func(Arc<dyn Fn() + Send + Sync>),
}

struct State {
    gen: u64,
    armed: Option<Cancel>,
    gone: bool,
}

struct Shared {
    st: Mutex<State>,
    kind: Kind,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms a heap entry at `when` for the current generation (the lock is held).
    fn arm(self: &Arc<Self>, st: &mut State, when: Instant) {
        if st.gone {
            return;
        }
        let gen = st.gen;
        let me = self.clone();
        st.armed = Some(rt_timer::call_at_cancellable(when, Box::new(move || me.fire(gen))));
    }

    /// The heap entry of generation `gen` fired (invariant 1).
    fn fire(&self, gen: u64) {
        let mut st = self.lock();
        if st.gen != gen || st.armed.take().is_none() {
            return;
        }
        match &self.kind {
            Kind::Chan(tx) => {
                let _ = tx.try_send(Instant::now());
            }
            Kind::Func(f) => {
                drop(st);
                spawn_func(f.clone());
            }
        }
    }

    /// Disarms the timer (invariant 2); returns whether it was armed.
    fn disarm(&self, st: &mut State) -> bool {
        st.gen += 1;
        match st.armed.take() {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }
}

/// Runs an [`after_func`] function in its own goroutine, as Go does (so it may block, and a
/// panic in it stays in that goroutine); outside a runtime, or if no goroutine can be
/// started, on its own thread.
pub(crate) fn spawn_func(f: Arc<dyn Fn() + Send + Sync>) {
    if worker::current().is_some() {
        let g = f.clone();
        if crate::try_go(move || g()).is_ok() {
            return;
        }
    }
    let spawned = std::thread::Builder::new().name("gonet-after-func".into()).spawn(move || f());
    if let Err(e) = spawned {
        log::error!("gonet: time::after_func: cannot start a thread for the function: {e}");
    }
}

/// A one-shot timer (Go's `time.Timer`): after its duration the current instant is sent on
/// [`c`](Timer::c) — or, for a timer made by [`after_func`], the function runs in its own
/// goroutine. [`stop`](Timer::stop) and [`reset`](Timer::reset) follow Go 1.23: once they
/// return, no value from before the call can be received, and they report whether the timer
/// was still pending (armed, or fired with the value not yet received).
///
/// Dropping the timer and every clone of its channel frees it at once.
pub struct Timer {
    shared: Arc<Shared>,
    c: Receiver<Instant>,
}

impl Timer {
    /// A timer that sends the current instant on its channel once `d` has passed
    /// (Go's `time.NewTimer`).
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = chan::bounded(1);
        let t = Timer::build(Kind::Chan(tx), rx, d);
        let weak = Arc::downgrade(&t.shared);
        t.c.on_receivers_gone(Box::new(move || {
            if let Some(s) = weak.upgrade() {
                let mut st = s.lock();
                st.gone = true;
                s.disarm(&mut st);
            }
        }));
        t
    }

    fn build(kind: Kind, c: Receiver<Instant>, d: Duration) -> Timer {
        let shared =
            Arc::new(Shared { st: Mutex::new(State { gen: 0, armed: None, gone: false }), kind });
        {
            let mut st = shared.lock();
            shared.arm(&mut st, super::deadline(d));
        }
        Timer { shared, c }
    }

    /// The channel the timer's instant is sent on (Go's `t.C`); for a timer made by
    /// [`after_func`], a channel that never receives.
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Stops the timer. Returns true if this call stopped it — it was armed, or had fired
    /// without its value being received (which is then discarded) — and false if it had
    /// already been stopped or its value received (or its function started). As in Go 1.23,
    /// no value from before the call is received after it.
    pub fn stop(&self) -> bool {
        let mut st = self.shared.lock();
        let mut pending = self.shared.disarm(&mut st);
        while self.c.try_recv().is_ok() {
            pending = true;
        }
        pending
    }

    /// Re-arms the timer to fire `d` from now, discarding any pending firing. Returns what
    /// [`stop`](Timer::stop) would have: whether the timer was still pending.
    pub fn reset(&self, d: Duration) -> bool {
        let mut st = self.shared.lock();
        let mut pending = self.shared.disarm(&mut st);
        while self.c.try_recv().is_ok() {
            pending = true;
        }
        self.shared.arm(&mut st, super::deadline(d));
        pending
    }
}

/// Runs `f` in its own goroutine once `d` has passed (Go's `time.AfterFunc`); on a plain
/// thread outside a runtime, on its own thread. The returned [`Timer`] can
/// [`stop`](Timer::stop) it (true if `f` had not started) or [`reset`](Timer::reset) it
/// (then `f` runs again; hence `Fn`). Its channel never receives. Unlike a channel timer it
/// stays armed when the `Timer` is dropped, as in Go.
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: Fn() + Send + Sync + 'static,
{
    Timer::build(Kind::Func(Arc::new(f)), chan::never(), d)
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Timer").field("armed", &st.armed.is_some()).finish()
    }
}
