//! The per-direction state word of a `PollDesc` (see the protocol at the top of
//! `poll_desc.rs`), isolated so that it can be model-checked with loom
//! (`RUSTFLAGS="--cfg loom" cargo test -p gonet --lib --release state::`).
//!
//! Values: `NIL`, `READY`, `WAIT`, or a run token (any value above `WAIT`, an
//! `Arc::into_raw` pointer in practice).
//!
//! A waiter writes `WAIT` and then reads the closing flag and deadline, while a kicker writes
//! those and then reads this word. That store-then-load on both sides needs a `SeqCst` fence
//! on each side ([`fence`]) for one of them to see the other; with acquire/release alone both
//! can miss and the waiter parks forever (loom finds that interleaving).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const NIL: usize = 0;
pub(crate) const READY: usize = 1;
pub(crate) const WAIT: usize = 2;

/// What the waiter found when it announced itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// A readiness notification was pending and has been consumed.
    Ready,
    /// The word is now `WAIT`: re-check errors, then `commit` or `finish`.
    Wait,
    /// Another waiter is there (a bug in the caller).
    Busy,
}

pub(crate) struct StateWord(AtomicUsize);

impl StateWord {
    pub(crate) fn new() -> StateWord {
        StateWord(AtomicUsize::new(NIL))
    }

    /// Resets a word that nobody uses any more (reuse of a `PollDesc`).
    pub(crate) fn reset(&self) {
        self.0.store(NIL, Ordering::Relaxed);
    }

    /// Waiter, step 1: consume `READY`, or announce `WAIT`.
    pub(crate) fn prepare(&self) -> Prepared {
        loop {
            if self.0.compare_exchange(READY, NIL, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return Prepared::Ready;
            }
            match self.0.compare_exchange(NIL, WAIT, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Prepared::Wait,
                Err(READY) => continue,
                Err(_) => return Prepared::Busy,
            }
        }
    }

    /// Waiter, step 2 (after the switch): `WAIT → token`. Fails if a notification arrived
    /// since `prepare`; the waiter then keeps its token and runs on.
    pub(crate) fn commit(&self, token: usize) -> bool {
        debug_assert!(token > WAIT);
        self.0.compare_exchange(WAIT, token, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Waiter, step 3 (after waking, or after not parking): back to `NIL`. Returns whether the
    /// notification was I/O readiness.
    pub(crate) fn finish(&self) -> bool {
        let old = self.0.swap(NIL, Ordering::SeqCst);
        debug_assert!(old <= WAIT, "gonet: corrupted PollDesc state {old:#x}");
        old == READY
    }

    /// Future path (`net/poll_io.rs`), before its syscall: consumes a pending `READY`, so that
    /// a `READY` seen later ([`is_ready`](Self::is_ready)) is an edge that came after this
    /// point. Never touches `WAIT` or a token. A stale read here only costs a syscall later.
    pub(crate) fn consume_ready(&self) {
        if self.0.load(Ordering::Relaxed) == READY {
            let _ = self.0.compare_exchange(READY, NIL, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Future path, after storing its waker: whether a readiness notification is pending
    /// (SeqCst: pairs with the notifier, which stores `READY` before it looks for a waker).
    pub(crate) fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == READY
    }

    /// Notifier: `io` stores `READY`; a kick (`!io`) turns `WAIT`/token into `NIL` and never
    /// fabricates readiness. Returns the parked waiter's token, which the caller now owns.
    pub(crate) fn unblock(&self, io: bool) -> Option<usize> {
        let mut old = self.0.load(Ordering::SeqCst);
        loop {
            if old == READY || (old == NIL && !io) {
                return None;
            }
            let new = if io { READY } else { NIL };
            match self.0.compare_exchange_weak(old, new, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return (old > WAIT).then_some(old),
                Err(cur) => old = cur,
            }
        }
    }
}

#[cfg(all(test, loom))]
mod tests {
    use super::*;
    use loom::sync::atomic::{AtomicBool, AtomicUsize as Counter};
    use loom::sync::Arc;
    use loom::thread;

    const TOKEN: usize = 0x1000;

    /// Runs one waiter against the given notifiers (true: I/O readiness, false: a kick, which
    /// first sets the closing flag, as `PollDesc::evict` and deadlines do). Checks that a parked waiter is handed out to exactly one notifier (never lost, never
    /// twice), that a waiter that did not park was never handed out, and returns what the
    /// waiter saw: whether it consumed readiness without parking, and whether it parked.
    fn run(notifiers: &'static [bool]) -> (bool, bool, usize) {
        let w = Arc::new(StateWord::new());
        let taken = Arc::new(Counter::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = notifiers
            .iter()
            .map(|&io| {
                let (w, t, c) = (w.clone(), taken.clone(), closing.clone());
                thread::spawn(move || {
                    if !io {
                        c.store(true, Ordering::SeqCst);
                        fence(Ordering::SeqCst);
                    }
                    if let Some(tok) = w.unblock(io) {
                        assert_eq!(tok, TOKEN);
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let (consumed, parked) = match w.prepare() {
            Prepared::Ready => (true, false),
            Prepared::Busy => panic!("double wait"),
            // Invariant 3: re-check the error state after announcing WAIT.
            Prepared::Wait => {
                fence(Ordering::SeqCst);
                if closing.load(Ordering::SeqCst) {
                    (false, false)
                } else {
                    (false, w.commit(TOKEN))
                }
            }
        };
        for h in hs {
            h.join().unwrap();
        }
        let taken = taken.load(Ordering::SeqCst);
        if !consumed {
            // The waiter resumes here (woken, or never parked) and finishes its cycle.
            let ready = w.finish();
            if parked {
                assert_eq!(taken, 1, "a parked waiter must be woken exactly once");
            }
            return (ready, parked, taken);
        }
        (true, parked, taken)
    }

    /// A readiness notification racing with a waiter is never lost: either the waiter consumes
    /// it, or it fails the waiter's commit, or it wakes the parked waiter.
    #[test]
    fn readiness_is_never_lost() {
        loom::model(|| {
            let (ready, parked, taken) = run(&[true]);
            if !parked {
                assert_eq!(taken, 0);
                assert!(ready, "the notification must be seen by a waiter that did not park");
            }
        });
    }

    /// A kick and a readiness notification together: the token is handed out exactly once if
    /// the waiter parked, never otherwise, and a kick never fabricates readiness.
    #[test]
    fn kick_and_ready_wake_exactly_once() {
        loom::model(|| {
            let (_, parked, taken) = run(&[true, false]);
            assert_eq!(taken, usize::from(parked));
        });
    }

    /// A kick alone never reports readiness.
    #[test]
    fn kick_is_not_readiness() {
        loom::model(|| {
            let (ready, _, _) = run(&[false]);
            assert!(!ready);
        });
    }
}
