//! Goroutine-aware time (Go's `time` package): [`sleep`] parks the goroutine (or sleeps the
//! thread outside the runtime), [`after`] delivers the current instant on a channel once a
//! duration passes, [`Timer`] and [`after_func`] are stoppable and resettable one-shot timers
//! (`timer.rs`), and [`Ticker`] delivers ticks periodically (`ticker.rs`).
//!
//! All are backed by the worker's timer heap (`runtime::timer`); outside a runtime, by a
//! process-wide timer thread.
//!
//! As in Go 1.23, a timer whose channel nobody can receive from any more is freed at once:
//! when the last `Receiver` of an [`after`], [`Timer`] or [`Ticker`] channel is dropped, its
//! heap entry is cancelled, and cancelled entries are swept from the heap (`runtime::timer`),
//! so a loop of `select!`s with a `recv(after(60s))` arm keeps the heap bounded instead of
//! holding every timer until it fires.

mod delay;
mod ticker;
mod timer;

pub use delay::{delay, delay_until, Delay};
pub use ticker::Ticker;
pub(crate) use timer::spawn_func;
pub use timer::{after_func, Timer};

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::chan;
use crate::runtime::{timer as rt_timer, worker};

/// Pauses the current goroutine for at least `d`; other goroutines keep running.
/// On a plain thread, sleeps the thread.
#[inline(always)]
pub fn sleep(d: Duration) {
    sleep_until_inner(Instant::now() + d);
    crate::runtime::dump::keep_frame(())
}

/// Pauses the current goroutine until `deadline` (returns at once if it has passed).
#[inline(always)]
pub fn sleep_until(deadline: Instant) {
    sleep_until_inner(deadline);
    crate::runtime::dump::keep_frame(())
}

fn sleep_until_inner(deadline: Instant) {
    if Instant::now() >= deadline {
        if worker::in_goroutine() {
            crate::yield_now();
        }
        return;
    }
    if worker::in_goroutine() {
        worker::sleep_until(deadline);
    } else {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Returns a channel that receives the instant at which `d` has passed, once (Go's
/// `time.After`). Usable in [`select!`](crate::select) for timeouts.
///
/// Dropping the receiver (every clone of it) frees the timer at once (Go 1.23).
pub fn after(d: Duration) -> chan::Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    let cancel = rt_timer::call_at_cancellable(
        deadline(d),
        Box::new(move || {
            let _ = tx.try_send(Instant::now());
        }),
    );
    rx.on_receivers_gone(Box::new(move || cancel.cancel()));
    rx
}

/// `d` from now, saturating far in the future instead of overflowing.
pub(crate) fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Nanoseconds since a process-wide origin; 0 is never returned (it means "unset" in the
/// atomics that store these values).
pub(crate) fn nanos_now() -> u64 {
    to_nanos(Instant::now())
}

fn origin() -> Instant {
    static O: OnceLock<Instant> = OnceLock::new();
    *O.get_or_init(|| Instant::now() - Duration::from_secs(1))
}

/// `t` as nanoseconds since the origin, at least 1.
pub(crate) fn to_nanos(t: Instant) -> u64 {
    let d = t.saturating_duration_since(origin());
    (d.as_nanos().min(u64::MAX as u128) as u64).max(1)
}

/// The inverse of [`to_nanos`].
pub(crate) fn from_nanos(n: u64) -> Instant {
    origin() + Duration::from_nanos(n)
}
