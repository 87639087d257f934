//! `WakerSlot`: the future-side waiter of one `PollDesc` direction, beside the goroutine state
//! word. A future that got `EAGAIN` stores its task's `Waker` here; every notification of the
//! direction (epoll readiness, close, deadline kick) takes it out and wakes it.
//!
//! # Protocol
//!
//! `armed` says whether a waker may be stored; `waker` holds it under a mutex held for a few
//! instructions. A registrant stores the waker and sets `armed` (SeqCst), *then* retries its
//! syscall or re-checks close/deadline; a notifier publishes its event (readiness in the state
//! word, `closing`, the deadline; all before its SeqCst fence or store), *then* loads `armed`.
//! So either the notifier sees the waker and wakes it, or the registrant's re-check sees the
//! event (`READY` in the state word, `closing` or the deadline is set): no edge is lost.
//!
//! While `armed` stays set, no notification has come since the registrant armed it after
//! finding the socket drained: its next poll may return `Pending` without a syscall
//! ([`armed_for`](WakerSlot::armed_for), checked under the lock where a notifier disarms). A
//! poll whose syscall made progress disarms the slot ([`disarm`](WakerSlot::disarm)), keeping
//! the waker so that the same task's next registration clones nothing.
//!
//! Invariants:
//! 1. A stored waker is woken at most once per store (the wake takes it out).
//! 2. At most one waker per direction: a registration replaces the previous one (the last task
//!    to poll is the one woken, as with tokio's sockets). Two tasks polling the same direction
//!    of one socket at once is a misuse that loses wakes for the first, never memory safety.
//! 3. The notifier's fast path is one load of `armed` when no future uses the socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::Waker;

pub(crate) struct WakerSlot {
    armed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl WakerSlot {
    pub(crate) const fn new() -> WakerSlot {
        WakerSlot { armed: AtomicBool::new(false), waker: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        // Nothing panics under this lock; recover anyway.
        self.waker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `w` (replacing any earlier waker), then arms the slot. The caller re-tries its
    /// operation afterwards (see the protocol above).
    pub(crate) fn register(&self, w: &Waker) {
        {
            let mut slot = self.lock();
            match &*slot {
                Some(old) if old.will_wake(w) => {}
                _ => *slot = Some(w.clone()),
            }
        }
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the slot is armed with a waker that wakes the same task as `w`: no
    /// notification came since it was armed, and the next one wakes `w`'s task. Checked
    /// under the lock, where a notifier disarms and takes the waker, so a notifier that
    /// comes later finds it (the poll's fast path in `net/poll_io.rs`).
    pub(crate) fn armed_for(&self, w: &Waker) -> bool {
        if !self.armed.load(Ordering::SeqCst) {
            return false;
        }
        let slot = self.lock();
        self.armed.load(Ordering::SeqCst) && slot.as_ref().is_some_and(|old| old.will_wake(w))
    }

    /// Disarms the slot, keeping its waker for a later registration by the same task (no
    /// clone then): a notification no longer wakes it. One load when not armed.
    pub(crate) fn disarm(&self) {
        if self.armed.load(Ordering::SeqCst) {
            let _slot = self.lock();
            self.armed.store(false, Ordering::SeqCst);
        }
    }

    /// Wakes and drops the stored waker, if any.
    pub(crate) fn wake(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        if let Some(w) = self.take() {
            w.wake();
        }
    }

    /// Takes the stored waker out without waking it (the descriptor is freed).
    pub(crate) fn take(&self) -> Option<Waker> {
        let mut slot = self.lock();
        self.armed.store(false, Ordering::SeqCst);
        slot.take()
    }
}
