//! `Delay`: a future that completes at an instant, on gonet's timers — for futures run by
//! [`block_on`](crate::block_on) (hyper's `Timer`, timeouts in async code), where
//! `tokio::time::sleep` would panic for want of tokio's runtime.
//!
//! Protocol: a poll stores the waker and then, unless its deadline is armed already, reads
//! the clock once: past the deadline it is ready, else it arms a timer. The timer is a
//! re-armed target of the worker's heap (`runtime::timer`): the `Delay`'s one shared
//! allocation, with one generation per arm, so arming allocates nothing and a `reset` or a
//! drop only moves the live generation on (the heap sweeps the entries left dead). Firing, the
//! timer records under the lock that its generation fired and takes the waker; a later poll
//! for the same deadline looks only at that mark (no clock read: hyper polls its header-read
//! timeout at every poll of a connection). So either the poll sees the mark, or the callback
//! finds the waker.
//!
//! Reuse: a dropped `Delay` leaves its shared state to the next one made on its thread (a
//! small per-thread spare list), with its generation counter. The heap may still hold
//! entries for that state, but only of generations the new owner never arms, so they stay
//! dead. hyper makes and drops a header-read timeout per request; without reuse each one's
//! state lived in the heap until its deadline or a sweep, thousands at a time, and so missed
//! the allocator's per-thread caches on both ends.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::timer::{arm, Target};

/// A future that completes once its deadline has passed (see [`delay`]).
#[must_use = "a Delay does nothing unless polled"]
pub struct Delay {
    at: Instant,
    /// The deadline the live arm is for, and its generation.
    armed: Option<(Instant, u64)>,
    /// The generation the next arm takes (generations start at 1; 0 is "none live").
    next_gen: u64,
    shared: Arc<Shared>,
}

/// What a poll and the timer share.
#[derive(Default)]
struct Shared {
    /// The live arm's generation (0: none); the heap drops entries of any other.
    live: AtomicU64,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    /// The generation of the last arm that fired (its deadline had passed by then).
    fired: u64,
}

impl Target for Shared {
    fn armed(&self, gen: u64) -> bool {
        self.live.load(Ordering::Relaxed) == gen
    }

    fn fire(&self, gen: u64) {
        let w = {
            let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            // Re-armed or dropped meanwhile. (`live` is written outside the lock: a fire that
            // races a re-arm on another thread may still read the old generation and wake the
            // task once for nothing; the next poll sees the new arm, not yet fired.)
            if self.live.load(Ordering::Relaxed) != gen {
                return;
            }
            s.fired = gen;
            s.waker.take()
        };
        // Outside the lock: waking may run scheduler code.
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// The most shared states a thread keeps for its next delays.
const SPARE_MAX: usize = 64;

thread_local! {
    /// This thread's spare shared states, each with the generation its next arm takes.
    static SPARE: RefCell<Vec<(Arc<Shared>, u64)>> = const { RefCell::new(Vec::new()) };
}

/// A spare shared state of this thread, or a new one.
fn take_shared() -> (Arc<Shared>, u64) {
    SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten().unwrap_or_else(|| (Arc::default(), 1))
}

/// A future that completes after `d` (Go's `time.After` for async code).
pub fn delay(d: Duration) -> Delay {
    delay_until(super::deadline(d))
}

/// A future that completes at `at`.
pub fn delay_until(at: Instant) -> Delay {
    let (shared, next_gen) = take_shared();
    Delay { at, armed: None, next_gen, shared }
}

impl Delay {
    /// The instant at which it completes.
    pub fn deadline(&self) -> Instant {
        self.at
    }

    /// Moves the deadline (earlier or later); the next poll arms a timer for it.
    pub fn reset(&mut self, at: Instant) {
        self.at = at;
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.at
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        let live = self.armed.filter(|&(armed_at, _)| armed_at == at).map(|(_, gen)| gen);
        {
            let mut s = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner());
            if live.is_some_and(|gen| s.fired == gen) {
                return Poll::Ready(());
            }
            match &s.waker {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
        }
        if live.is_some() {
            return Poll::Pending; // the timer wakes us when `at` has passed
        }
        let now = Instant::now();
        if now >= at {
            return Poll::Ready(());
        }
        // A new generation: any entry of an earlier deadline is dead from here on.
        let gen = self.next_gen;
        self.next_gen += 1;
        self.shared.live.store(gen, Ordering::Relaxed);
        arm(self.shared.clone(), gen, at, now);
        self.armed = Some((at, gen));
        Poll::Pending
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        // The heap drops the entry, unfired, when it meets it (or sweeps it).
        self.shared.live.store(0, Ordering::Relaxed);
        // The next owner starts with no waker (this one's may keep a task alive).
        let waker = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner()).waker.take();
        drop(waker);
        let spare = (self.shared.clone(), self.next_gen);
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_MAX {
                s.push(spare);
            }
        });
    }
}

impl std::fmt::Debug for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delay").field("deadline", &self.at).finish()
    }
}
