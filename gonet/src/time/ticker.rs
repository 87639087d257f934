//! [`Ticker`]: delivers the current instant on a channel every period (Go's `time.Ticker`).
//!
//! # State, under `Shared::st`'s lock
//!
//! * `gen`, `armed`, `gone` — as in `timer.rs`: a heap entry acts only if its generation is
//!   current and `armed` is set; `stop`/`reset` bump `gen`, cancel and empty the channel;
//!   the last receiver leaving sets `gone`, which stops the ticker for good;
//! * `when` — the instant the armed entry is due; `period` — the interval.
//!
//! Each firing sends with `try_send` on a one-slot channel and arms the next entry at the
//! first multiple of the period after now, as Go does: a receiver slower than the period
//! finds one tick waiting, not a backlog, and the ticks it missed are dropped. Lock order:
//! the ticker's lock, then the channel's.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::timer::{self as rt_timer, Cancel};

struct State {
    gen: u64,
    armed: Option<Cancel>,
    gone: bool,
    when: Instant,
    period: Duration,
}

struct Shared {
    st: Mutex<State>,
    tx: Sender<Instant>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the entry for `st.when` in the current generation (the lock is held).
    fn arm(self: &Arc<Self>, st: &mut State) {
        if st.gone {
            return;
        }
        let gen = st.gen;
        let me = self.clone();
        st.armed = Some(rt_timer::call_at_cancellable(st.when, Box::new(move || me.fire(gen))));
    }

    fn fire(self: &Arc<Self>, gen: u64) {
        let mut st = self.lock();
        if st.gen != gen || st.armed.take().is_none() {
            return;
        }
        let now = Instant::now();
        // A full slot means the receiver has not taken the last tick: drop this one.
        let _ = self.tx.try_send(now);
        st.when = next_tick(st.when, st.period, now);
        self.arm(&mut st);
    }

    fn disarm(&self, st: &mut State, rx: &Receiver<Instant>) {
        st.gen += 1;
        if let Some(c) = st.armed.take() {
            c.cancel();
        }
        while rx.try_recv().is_ok() {}
    }
}

/// The first instant `when + k * period` (k ≥ 1) after `now` (Go's `t.when += t.period *
/// (1 + -delta/t.period)`).
fn next_tick(when: Instant, period: Duration, now: Instant) -> Instant {
    let late = now.saturating_duration_since(when);
    let skipped = (late.as_nanos() / period.as_nanos().max(1)) as u32;
    match period.checked_mul(skipped.saturating_add(1)).and_then(|d| when.checked_add(d)) {
        Some(t) => t,
        None => now + period,
    }
}

/// Sends the current instant on [`c`](Ticker::c) every period (Go's `time.Ticker`). The
/// channel holds one tick: a receiver slower than the period gets the latest waiting tick,
/// and the ones it missed are dropped, as in Go. Dropping the ticker and every clone of its
/// channel stops it.
pub struct Ticker {
    shared: Arc<Shared>,
    c: Receiver<Instant>,
}

impl Ticker {
    /// A ticker with period `d` (Go's `time.NewTicker`); the first tick comes after `d`.
    ///
    /// # Panics
    /// If `d` is zero, as Go's `NewTicker` panics on a non-positive interval.
    pub fn new(d: Duration) -> Ticker {
        assert!(!d.is_zero(), "gonet: time::Ticker::new: non-positive interval");
        let (tx, rx) = chan::bounded(1);
        let st = State { gen: 0, armed: None, gone: false, when: super::deadline(d), period: d };
        let shared = Arc::new(Shared { st: Mutex::new(st), tx });
        {
            let mut st = shared.lock();
            shared.arm(&mut st);
        }
        // A weak reference: the hook lives in the channel, which the shared state owns.
        let weak = Arc::downgrade(&shared);
        rx.on_receivers_gone(Box::new(move || {
            if let Some(s) = weak.upgrade() {
                let mut st = s.lock();
                st.gone = true;
                st.gen += 1;
                if let Some(c) = st.armed.take() {
                    c.cancel();
                }
            }
        }));
        Ticker { shared, c: rx }
    }

    /// The channel the ticks are sent on (Go's `t.C`).
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Stops the ticker: no tick is sent after this returns, and a tick waiting in the channel
    /// is discarded (Go 1.23). [`reset`](Ticker::reset) starts it again.
    pub fn stop(&self) {
        let mut st = self.shared.lock();
        self.shared.disarm(&mut st, &self.c);
    }

    /// Stops the ticker and restarts it with period `d`, the next tick `d` from now; a tick
    /// waiting in the channel is discarded.
    ///
    /// # Panics
    /// If `d` is zero, as in Go.
    pub fn reset(&self, d: Duration) {
        assert!(!d.is_zero(), "gonet: time::Ticker::reset: non-positive interval");
        let mut st = self.shared.lock();
        self.shared.disarm(&mut st, &self.c);
        st.period = d;
        st.when = super::deadline(d);
        self.shared.arm(&mut st);
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Ticker").field("period", &st.period).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_skips_missed_periods() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_tick(t0, p, t0), t0 + p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(3)), t0 + p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(10)), t0 + 2 * p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(95)), t0 + 10 * p);
    }
}
