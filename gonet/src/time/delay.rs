//! `Delay`: a future that completes at an instant, on gonet's timers — for futures run by
//! [`block_on`](crate::block_on) (hyper's `Timer`, timeouts in async code), where
//! `tokio::time::sleep` would panic for want of tokio's runtime.
//!
//! Protocol: a poll stores the waker *before* it looks for the deadline's passing, and the
//! timer callback, once its deadline passed, records that it fired for that deadline and takes
//! the waker, under the same lock; so either the poll sees the deadline passed, or the
//! callback finds the waker. The first poll for a deadline compares the clock and arms the
//! timer; later polls for the same deadline only look at the fired mark (no clock read: hyper
//! polls its header-read timeout at every poll of a connection). Each deadline has at most one
//! timer entry: a `reset` or a drop cancels it (the heap sweeps cancelled entries).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::timer::{call_at_cancellable, Cancel};

/// A future that completes once its deadline has passed (see [`delay`]).
#[must_use = "a Delay does nothing unless polled"]
pub struct Delay {
    at: Instant,
    /// The deadline that `timer` was armed for, and its cancel handle.
    timer: Option<(Instant, Cancel)>,
    slot: Arc<Mutex<Slot>>,
}

/// What a poll and the timer callback share.
#[derive(Default)]
struct Slot {
    waker: Option<Waker>,
    /// The deadline of the last callback that fired (it had passed by then).
    fired_for: Option<Instant>,
}

/// A future that completes after `d` (Go's `time.After` for async code).
pub fn delay(d: Duration) -> Delay {
    delay_until(super::deadline(d))
}

/// A future that completes at `at`.
pub fn delay_until(at: Instant) -> Delay {
    Delay { at, timer: None, slot: Arc::default() }
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
        let armed = self.timer.as_ref().is_some_and(|(armed, _)| *armed == at);
        {
            let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if armed && s.fired_for == Some(at) {
                return Poll::Ready(());
            }
            match &s.waker {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
        }
        if armed {
            return Poll::Pending; // the callback wakes us when `at` has passed
        }
        if self.is_elapsed() {
            return Poll::Ready(());
        }
        if let Some((_, c)) = self.timer.take() {
            c.cancel();
        }
        let slot = self.slot.clone();
        let c = call_at_cancellable(
            at,
            Box::new(move || {
                let w = {
                    let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
                    s.fired_for = Some(at);
                    s.waker.take()
                };
                if let Some(w) = w {
                    w.wake();
                }
            }),
        );
        self.timer = Some((at, c));
        Poll::Pending
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        if let Some((_, c)) = self.timer.take() {
            c.cancel();
        }
    }
}

impl std::fmt::Debug for Delay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delay").field("deadline", &self.at).finish()
    }
}
