//! The per-operation record of a blocked channel operation (Go's `sudog` plus `selectDone`):
//! a [`Token`] shared by every arm of one blocking `send`/`recv`/`select!`, a typed [`Slot`]
//! per arm for the value, and the [`Entry`] that sits in a channel's waiter queue.
//!
//! # The claim protocol
//!
//! A token's `state` word starts `WAITING` and changes exactly once, by a compare-and-swap,
//! to one of:
//! * `arm k, ok` — a counterparty completed arm `k`: it wrote the received value into the
//!   arm's slot (a waiting receiver), or took the value out of it (a waiting sender);
//! * `arm k, disconnected` — the other side of arm `k`'s channel went away; a waiting
//!   sender's value is still in its slot and goes back to the caller;
//! * `TIMED_OUT` — the operation's timer fired first;
//! * `ABORTED` — the blocked party itself gave up its registration (a `select!` that found
//!   an arm ready while registering; it retries from the top).
//!
//! Whoever wins the compare-and-swap *claims* the token, and only the claimer may touch the
//! slots and take the waiter. It takes the waiter and wakes it, exactly once (after dropping
//! any channel lock it holds). Everyone else fails the compare-and-swap and does nothing: an
//! entry whose token is no longer `WAITING` is *stale* and is skipped and dropped by whoever
//! finds it in a queue. After the wake the blocked party owns every slot again, reads the
//! state to learn what happened, and removes its remaining stale entries from the queues.
//!
//! Invariants:
//! 1. `waiter` is written once, before the token is published in any queue or timer, and
//!    taken by the claimer alone (or, if the token was never published, by its owner).
//! 2. A slot is touched by its owner before publication and after the wake, and in between
//!    only by the claimer of its token, before the wake. So slot accesses never overlap.
//! 3. A channel-side claimer removes the entry it claims from the queue (it pops it first),
//!    so the winning arm's entry needs no clean-up; timer and abort claims leave entries
//!    behind, which the owner removes after the wake.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::runtime::park::Waiter;

const WAITING: usize = 0;
const ABORTED: usize = 1;
const TIMED_OUT: usize = 2;
/// Arm claims are `ARM_BASE + 2 * arm + disconnected`.
const ARM_BASE: usize = 4;

/// What ended a blocked operation, decoded from a token's state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not claimed yet.
    Waiting,
    /// The owner withdrew its registration.
    Aborted,
    /// The timer won.
    TimedOut,
    /// A channel completed arm `arm` (`disconnected`: by closing instead of transferring).
    Arm { arm: usize, disconnected: bool },
}

impl Outcome {
    fn encode(self) -> usize {
        match self {
            Outcome::Waiting => WAITING,
            Outcome::Aborted => ABORTED,
            Outcome::TimedOut => TIMED_OUT,
            Outcome::Arm { arm, disconnected } => ARM_BASE + 2 * arm + disconnected as usize,
        }
    }

    fn decode(s: usize) -> Outcome {
        match s {
            WAITING => Outcome::Waiting,
            ABORTED => Outcome::Aborted,
            TIMED_OUT => Outcome::TimedOut,
            s => Outcome::Arm { arm: (s - ARM_BASE) / 2, disconnected: (s - ARM_BASE) % 2 == 1 },
        }
    }
}

/// The record shared by all arms of one blocked operation (see the top of this file).
pub(crate) struct Token {
    state: AtomicUsize,
    waiter: UnsafeCell<Option<Waiter>>,
}

// SAFETY: `state` is atomic; `waiter` is accessed under the claim protocol (invariant 1): by
// the owner before publication and by the unique claimer afterwards, never concurrently.
// `Waiter` itself is `Send`.
unsafe impl Send for Token {}
// SAFETY: as above.
unsafe impl Sync for Token {}

impl Token {
    pub(crate) fn new() -> Arc<Token> {
        Arc::new(Token { state: AtomicUsize::new(WAITING), waiter: UnsafeCell::new(None) })
    }

    /// Whether nobody has claimed the token yet.
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// What ended the operation.
    #[inline]
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome::decode(self.state.load(Ordering::Acquire))
    }

    /// Tries to claim the token for `outcome`; on success the caller must take the waiter
    /// (with [`take_waiter`](Token::take_waiter)) and wake it.
    #[inline]
    pub(crate) fn claim(&self, outcome: Outcome) -> bool {
        debug_assert!(outcome != Outcome::Waiting);
        self.state
            .compare_exchange(WAITING, outcome.encode(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Stores the blocked party's waiter.
    ///
    /// # Safety
    /// Called by the owner before the token is published (invariant 1).
    pub(crate) unsafe fn set_waiter(&self, w: Waiter) {
        // SAFETY: unpublished, so this is the only access (caller's obligation).
        unsafe { *self.waiter.get() = Some(w) }
    }

    /// Takes the waiter.
    ///
    /// # Safety
    /// The caller claimed the token, or owns it and never published it (invariant 1).
    pub(crate) unsafe fn take_waiter(&self) -> Waiter {
        // SAFETY: exclusive by the claim protocol (caller's obligation).
        unsafe { (*self.waiter.get()).take() }.expect("gonet: channel token has no waiter")
    }
}

/// The value cell of one arm of a blocked operation.
pub(crate) struct Slot<T> {
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is accessed by one party at a time under the claim protocol
// (invariant 2), so sharing a slot only ever moves a `T` between threads.
unsafe impl<T: Send> Send for Slot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    pub(crate) fn new(value: Option<T>) -> Arc<Slot<T>> {
        Arc::new(Slot { value: UnsafeCell::new(value) })
    }

    /// Stores a value.
    ///
    /// # Safety
    /// The caller may touch the slot under invariant 2 (the owner outside publication, or the
    /// claimer of the token).
    pub(crate) unsafe fn put(&self, v: T) {
        // SAFETY: exclusive access is the caller's obligation.
        unsafe { *self.value.get() = Some(v) }
    }

    /// Takes the value, if any.
    ///
    /// # Safety
    /// As for [`put`](Slot::put).
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: exclusive access is the caller's obligation.
        unsafe { (*self.value.get()).take() }
    }
}

/// One arm of a blocked operation, queued on a channel.
pub(crate) struct Entry<T> {
    pub(crate) token: Arc<Token>,
    pub(crate) arm: usize,
    pub(crate) slot: Arc<Slot<T>>,
}

impl<T> Entry<T> {
    /// Whether this entry belongs to the operation owning `token`.
    #[inline]
    pub(crate) fn is_of(&self, token: &Arc<Token>) -> bool {
        Arc::ptr_eq(&self.token, token)
    }
}
