//! [`Semaphore`]: a weighted semaphore (Go's `golang.org/x/sync/semaphore.Weighted`).
//!
//! # Protocol (under `state`'s lock)
//!
//! `cur` units are held out of `size`; `waiters` are the blocked acquires, FIFO, each with
//! its weight and a [`Claim`]. Invariants:
//!
//! 1. An acquire succeeds at once only if the units are free *and nobody waits*; otherwise it
//!    queues. So waiters are served strictly in order: a large acquire at the front blocks
//!    smaller ones behind it, which therefore cannot starve it (Go's behaviour).
//! 2. `release`, and the removal of a cancelled waiter, serve the queue from the front while
//!    the front's weight fits, adding its weight to `cur` *for* it before waking it (a
//!    hand-off: a woken waiter owns its units).
//! 3. A waiter's claim is decided once, by a CAS from `WAITING` to `GRANTED` (by a release,
//!    under the lock) or to `CANCELLED` (by its context's cancellation, from any thread);
//!    only the winner takes the parked waiter and wakes it. A cancelled waiter removes its
//!    entry under the lock after its wake-up; a release that meets a cancelled entry skips it.
//! 4. A goroutine whose stack is unwound while parked (its runtime shut down) withdraws
//!    itself in a guard's destructor: it decides its own claim as `CANCELLED` — then its
//!    entry is removed and the waiters behind it served — or, if a release had already
//!    granted it the units, gives them back. So no units are ever held by a dead waiter,
//!    and no queued entry names one.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdGuard};

use crate::context::Context;
use crate::runtime::park::{park, Waiter};

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const CANCELLED: u8 = 2;

/// The one-time decision of a blocked acquire (invariant 3).
struct Claim {
    state: AtomicU8,
    waiter: StdMutex<Option<Waiter>>,
}

impl Claim {
    /// Decides the claim as `to` and wakes the waiter; false if it was already decided.
    fn decide(&self, to: u8) -> bool {
        self.decide_then(to, Waiter::wake)
    }

    /// Decides the claim as `to` and hands the stored waiter (if any) to `then`.
    fn decide_then(&self, to: u8, then: impl FnOnce(Waiter)) -> bool {
        if self.state.compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        // If the waiter is not stored yet, the owner sees the decision when it stores it and
        // does not park (see `acquire_inner`).
        let w = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = w {
            then(w);
        }
        true
    }
}

struct Entry {
    n: u64,
    claim: Arc<Claim>,
}

struct State {
    cur: u64,
    waiters: VecDeque<Entry>,
}

/// A weighted semaphore: [`acquire`](Semaphore::acquire) takes `n` units out of `size`,
/// parking the goroutine (or blocking the thread) until they are free, and
/// [`release`](Semaphore::release) gives them back. Waiters are served in FIFO order (see
/// the top of `semaphore.rs`). [`acquire_ctx`](Semaphore::acquire_ctx) gives up when a
/// [`Context`] is cancelled.
pub struct Semaphore {
    size: u64,
    state: StdMutex<State>,
}

impl Semaphore {
    /// A semaphore with `size` units.
    pub fn new(size: u64) -> Semaphore {
        Semaphore { size, state: StdMutex::new(State { cur: 0, waiters: VecDeque::new() }) }
    }

    fn lock(&self) -> StdGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `n` units, waiting for them. Fails with `InvalidInput` if `n` exceeds the size
    /// (it could never succeed).
    pub fn acquire(&self, n: u64) -> io::Result<()> {
        self.acquire_inner(n, None)
    }

    /// Like [`acquire`](Semaphore::acquire), but gives up when `ctx` is cancelled, with the
    /// context's error (an `io::Error` whose [`io_reason`](crate::context::io_reason) is
    /// the reason). As in Go, if the units are free at once the acquire succeeds even if
    /// `ctx` is already cancelled.
    pub fn acquire_ctx(&self, ctx: &Context, n: u64) -> io::Result<()> {
        self.acquire_inner(n, Some(ctx))
    }

    /// Takes `n` units if they are free now and nobody waits.
    pub fn try_acquire(&self, n: u64) -> bool {
        let mut st = self.lock();
        if self.size - st.cur >= n && st.waiters.is_empty() {
            st.cur += n;
            return true;
        }
        false
    }

    fn acquire_inner(&self, n: u64, ctx: Option<&Context>) -> io::Result<()> {
        let mut st = self.lock();
        if self.size - st.cur >= n && st.waiters.is_empty() {
            st.cur += n;
            return Ok(());
        }
        if n > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("semaphore: acquire of {n} units exceeds the size {}", self.size),
            ));
        }
        if let Some(e) = ctx.and_then(Context::err) {
            return Err(e.into());
        }
        let claim = Arc::new(Claim { state: AtomicU8::new(WAITING), waiter: StdMutex::new(None) });
        // Invariant 4: disarmed below once the park has returned normally.
        let withdraw = Withdraw { sem: self, claim: &claim, n };
        let wait = || {
            let claim2 = claim.clone();
            park(move |w| {
                let mut st = st;
                let mut slot = claim2.waiter.lock().unwrap_or_else(|e| e.into_inner());
                if claim2.state.load(Ordering::Acquire) != WAITING {
                    return Err(w); // cancelled before we parked
                }
                *slot = Some(w);
                drop(slot);
                st.waiters.push_back(Entry { n, claim: claim2.clone() });
                drop(st);
                Ok(())
            });
        };
        match ctx {
            Some(ctx) => {
                let c = claim.clone();
                ctx.with_watch(
                    Box::new(move || {
                        c.decide(CANCELLED);
                    }),
                    wait,
                );
            }
            None => wait(),
        }
        std::mem::forget(withdraw);
        if claim.state.load(Ordering::Acquire) == GRANTED {
            return Ok(());
        }
        self.withdraw(&claim);
        let e = ctx.and_then(Context::err).unwrap_or(crate::context::Error::Canceled);
        Err(e.into())
    }

    /// Removes a cancelled claim's entry (if queued) and lets the ones behind it go.
    fn withdraw(&self, claim: &Arc<Claim>) {
        let mut st = self.lock();
        if let Some(i) = st.waiters.iter().position(|e| Arc::ptr_eq(&e.claim, claim)) {
            st.waiters.remove(i);
        }
        self.grant(&mut st);
    }

    /// Gives back `n` units and serves the waiters that now fit, in order.
    ///
    /// # Panics
    /// If more units are released than are held, as Go's.
    pub fn release(&self, n: u64) {
        let mut st = self.lock();
        if n > st.cur {
            drop(st);
            panic!("gonet: semaphore: released more than held");
        }
        st.cur -= n;
        self.grant(&mut st);
    }

    /// Invariant 2: serves the front waiters whose weight fits, counting their units before
    /// waking them.
    fn grant(&self, st: &mut State) {
        while let Some(front) = st.waiters.front() {
            if self.size - st.cur < front.n
                && front.claim.state.load(Ordering::Acquire) != CANCELLED
            {
                break; // FIFO: a large waiter blocks the smaller ones behind it
            }
            let e = st.waiters.pop_front().expect("front exists");
            if e.claim.decide(GRANTED) {
                st.cur += e.n;
            }
        }
    }

    /// Units currently held.
    pub fn held(&self) -> u64 {
        self.lock().cur
    }
}

/// Unwinding guard of a parked acquire (invariant 4).
struct Withdraw<'a> {
    sem: &'a Semaphore,
    claim: &'a Arc<Claim>,
    n: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        // The unwinding goroutine's own waiter is dropped, not woken.
        if self.claim.decide_then(CANCELLED, drop) {
            self.sem.withdraw(self.claim);
        } else if self.claim.state.load(Ordering::Acquire) == GRANTED {
            // A release handed us the units before the unwind reached us: give them back.
            self.sem.release(self.n);
        } else {
            // Cancelled by the context before the unwind: remove the entry as `acquire` would.
            self.sem.withdraw(self.claim);
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("size", &self.size).field("held", &self.held()).finish()
    }
}
