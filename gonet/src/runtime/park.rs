//! The park/wake protocol: how a goroutine (or a plain thread) stops until someone wakes it.
//!
//! # The run token
//!
//! Every goroutine has exactly one *run token*: a [`GRef`] that is either in a run queue, held
//! by the worker that is running it, or held by whatever the goroutine is waiting on (a channel
//! waiter list, a `PollDesc` state word, a timer). Whoever holds the token is the only one
//! allowed to make the goroutine runnable, and does so exactly once, with [`ready`]. Holding any
//! other `GRef` (a clone) gives no such right. So a goroutine is never resumed twice, and never
//! lost: the token is always somewhere.
//!
//! # Parking (Go's `gopark`)
//!
//! [`park_g`] suspends the running goroutine and hands its token to a *commit* function, which
//! runs on the worker's own stack once the goroutine's stack is no longer in use. The commit
//! publishes the token where a waker will find it (and may release a lock that protected that
//! place, as Go's `unlockf` does), or refuses by giving the token back, in which case the
//! goroutine resumes at once. Because the commit runs after the switch, a waker that finds the
//! token can never resume a goroutine that is still running on its stack.
//!
//! # Waking (Go's `goready`)
//!
//! [`ready`] puts a token on its owner's run queue: directly when called on the owner's thread
//! (the fast path: I/O readiness seen by a worker's own poller), otherwise through the owner's
//! inbox, breaking its `epoll_wait` if it sleeps.
//!
//! # Waiters
//!
//! [`Waiter`] lifts this to code that may run on a goroutine *or* a plain OS thread (channels,
//! mutexes, join handles): [`park`] builds the caller's waiter, hands it to a register function
//! and returns once [`Waiter::wake`] has been called on it. There are no spurious returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, Thread};

use super::goroutine::{GRef, Suspend};
use super::wait::Wait;
use super::worker;

/// Makes a parked goroutine runnable. The caller must hold its run token.
#[inline]
pub(crate) fn ready(g: GRef) {
    worker::ready(g)
}

/// Parks the running goroutine, handing its run token to `commit` (see the top of this file).
/// Must be called on a goroutine.
pub(crate) fn park_g(commit: impl FnOnce(GRef) -> Result<(), GRef>) {
    let mut commit = Some(commit);
    let mut f = move |g: GRef| match commit.take() {
        Some(c) => c(g),
        None => Err(g),
    };
    let f: &mut (dyn FnMut(GRef) -> Result<(), GRef> + '_) = &mut f;
    // SAFETY: only the lifetime is erased. The commit is called by the worker while this frame
    // is suspended inside `suspend` (so `f` is alive) and never after the goroutine resumes.
    let f: *mut (dyn FnMut(GRef) -> Result<(), GRef> + 'static) = unsafe { std::mem::transmute(f) };
    worker::suspend(Suspend::Park(f));
}

/// A goroutine or thread blocked in [`park`], to be woken exactly once.
pub(crate) enum Waiter {
    /// A parked goroutine: the waiter holds its run token.
    G(GRef),
    /// A blocked OS thread.
    Thread(Arc<ThreadSignal>),
}

impl Waiter {
    /// Wakes the waiter. Consumes it: a waiter is woken at most once.
    #[inline]
    pub(crate) fn wake(self) {
        match self {
            Waiter::G(g) => ready(g),
            Waiter::Thread(t) => t.signal(),
        }
    }

    /// The goroutine id of the waiter, or 0 for a thread.
    pub(crate) fn goroutine_id(&self) -> u64 {
        match self {
            Waiter::G(g) => g.id,
            Waiter::Thread(_) => 0,
        }
    }
}

/// A flag and a thread handle: how a plain thread waits for a [`Waiter::wake`].
pub(crate) struct ThreadSignal {
    set: AtomicBool,
    thread: Thread,
}

impl ThreadSignal {
    fn signal(&self) {
        self.set.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

thread_local! {
    /// Each thread reuses one signal: a thread is in at most one `park` at a time, and `park`
    /// returns only after its waiter was consumed, so no stale wake can reach a later park.
    static SIGNAL: Arc<ThreadSignal> =
        Arc::new(ThreadSignal { set: AtomicBool::new(false), thread: thread::current() });
}

/// Blocks the caller — parking the goroutine, or blocking the OS thread outside the runtime —
/// after handing its [`Waiter`] to `register`. `register` runs once the caller can be woken;
/// it returns `Err(waiter)` to refuse (the caller returns at once). Otherwise `park` returns
/// after the waiter's `wake`.
pub(crate) fn park(register: impl FnOnce(Waiter) -> Result<(), Waiter>) {
    park_for(Wait::Unknown, register)
}

/// [`park`], recording what the goroutine waits on for dumps (`wait.rs`). The reason is
/// stored by the commit, on the worker, where the goroutine's `G` is in hand: no lookup of
/// the running goroutine, so a park costs the same whether anybody ever dumps or not.
pub(crate) fn park_for(reason: Wait, register: impl FnOnce(Waiter) -> Result<(), Waiter>) {
    if worker::in_goroutine() {
        park_g(move |g| {
            g.wait.set(reason);
            match register(Waiter::G(g)) {
                Ok(()) => Ok(()),
                Err(Waiter::G(g)) => Err(g),
                Err(Waiter::Thread(_)) => unreachable!("a goroutine's waiter is a goroutine"),
            }
        });
        return;
    }
    let sig = SIGNAL.with(Arc::clone);
    sig.set.store(false, Ordering::Relaxed);
    if register(Waiter::Thread(sig.clone())).is_err() {
        return;
    }
    while !sig.set.load(Ordering::Acquire) {
        thread::park();
    }
}
