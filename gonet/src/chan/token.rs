//! The records of blocked channel operations (Go's `sudog` plus `selectDone`): a [`Token`]
//! (the claim word and the waiter) and a value cell per blocked operation, and the [`Entry`]
//! that sits in a channel's waiter queue. There are two shapes:
//!
//! * **`select!` arms** ([`Entry::Select`]): one heap [`Token`] shared by every arm of the
//!   select, and a heap [`Slot`] per arm. Claimers of different channels and a timer may race
//!   for the token, and stale entries may outlive the select in queues, so both are `Arc`s.
//! * **Plain blocking `send`/`recv`** ([`Entry::Op`]): one [`Op`] record in the blocked
//!   party's own stack frame, holding the value cell and the token — inline for an operation
//!   without a timeout, or a heap `Arc<Token>` shared with the timer otherwise. The queue
//!   entry is a pointer to the record, so a blocked operation allocates nothing (one `Arc`
//!   and the timer when it has a deadline).
//!
//! # The claim protocol
//!
//! A token's `state` word starts `WAITING` and changes exactly once, to one of:
//! * `arm k, ok` — a counterparty completed arm `k`: it wrote the received value into the
//!   arm's slot (a waiting receiver), or took the value out of it (a waiting sender);
//! * `arm k, disconnected` — the other side of arm `k`'s channel went away; a waiting
//!   sender's value is still in its slot and goes back to the caller;
//! * `TIMED_OUT` — the operation's timer fired first;
//! * `ABORTED` — the blocked party itself gave up its registration (a `select!` that found
//!   an arm ready while registering, or a stack unwound at runtime shutdown).
//!
//! Whoever changes it *claims* the token, and only the claimer may touch the slots and take
//! the waiter. It takes the waiter and wakes it, exactly once (after dropping any channel lock
//! it holds). Everyone else does nothing: an entry whose token is no longer `WAITING` is
//! *stale* and is skipped and dropped by whoever finds it in a queue. After the wake the
//! blocked party owns every slot again, reads the state to learn what happened, and removes
//! its remaining stale entries from the queues.
//!
//! A shared token is claimed by compare-and-swap, since claimers holding different locks (or
//! none: the timer) may race. An inline token can only be claimed by someone holding the lock
//! of the one channel it is queued on (a counterparty, or the owner withdrawing), so a plain
//! load and store under that lock suffice.
//!
//! Invariants:
//! 1. `waiter` is written once, before the token is published in any queue or timer, and
//!    taken by the claimer alone (or, if the token was never published, by its owner).
//! 2. A slot is touched by its owner before publication and after the wake, and in between
//!    only by the claimer of its token, before the wake. So slot accesses never overlap.
//! 3. A channel-side claimer removes the entry it claims from the queue (it pops it first),
//!    so the winning arm's entry needs no clean-up; timer and abort claims leave entries
//!    behind, which the owner removes after the wake.
//! 4. An [`Op`] record outlives its queue entry: its owner returns (or its stack unwinds)
//!    only after a wake by a channel-side claimer, which popped the entry, or after taking
//!    the channel lock and removing the entry if it is still queued. So an `Op` entry found
//!    in a queue under the channel lock points to a record that stays alive while that lock
//!    is held, and a claimer is done with the record (value and waiter) before it releases
//!    the lock. An inline token in a queue is never stale.

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::runtime::park::Waiter;
use crate::runtime::timer::{self, Cancel};

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

/// The claim word and waiter of one blocked operation (see the top of this file).
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
    const fn inline() -> Token {
        Token { state: AtomicUsize::new(WAITING), waiter: UnsafeCell::new(None) }
    }

    pub(crate) fn new() -> Arc<Token> {
        Arc::new(Token::inline())
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

    /// [`claim`](Token::claim) for an inline token: every claimer holds the same channel
    /// lock, so a load and a store cannot race another claim.
    #[inline]
    fn claim_locked(&self, outcome: Outcome) -> bool {
        debug_assert!(outcome != Outcome::Waiting);
        if self.state.load(Ordering::Relaxed) != WAITING {
            return false;
        }
        self.state.store(outcome.encode(), Ordering::Release);
        true
    }

    /// Arms a timer that claims the token as `TIMED_OUT` at `deadline` and wakes the waiter.
    /// Called once the waiter is set; the handle drops the timer early once the operation
    /// has completed otherwise.
    pub(crate) fn arm_timer(self: &Arc<Token>, deadline: Instant) -> Cancel {
        let t = self.clone();
        timer::call_at_cancellable(
            deadline,
            Box::new(move || {
                if t.claim(Outcome::TimedOut) {
                    // SAFETY: we claimed the token (invariant 1).
                    unsafe { t.take_waiter() }.wake();
                }
            }),
        )
    }

    /// Stores the blocked party's waiter.
    ///
    /// # Safety
    /// Called by the owner before the token is published (invariant 1).
    #[inline]
    pub(crate) unsafe fn set_waiter(&self, w: Waiter) {
        // SAFETY: unpublished, so this is the only access (caller's obligation).
        unsafe { *self.waiter.get() = Some(w) }
    }

    /// Takes the waiter if it is still there (an owner that claimed its own token, which it
    /// may have taken the waiter out of already).
    ///
    /// # Safety
    /// As [`take_waiter`](Token::take_waiter).
    pub(crate) unsafe fn take_waiter_if_any(&self) -> Option<Waiter> {
        // SAFETY: exclusive by the claim protocol (caller's obligation).
        unsafe { (*self.waiter.get()).take() }
    }

    /// Takes the waiter.
    ///
    /// # Safety
    /// The caller claimed the token, or owns it and never published it (invariant 1).
    #[inline]
    pub(crate) unsafe fn take_waiter(&self) -> Waiter {
        // SAFETY: exclusive by the claim protocol (caller's obligation).
        unsafe { (*self.waiter.get()).take() }.expect("gonet: channel token has no waiter")
    }
}

/// The value cell of one arm of a blocked `select!`.
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

/// The token of an [`Op`]: inline, or shared with a timer.
enum OpToken {
    Inline(Token),
    Shared(Arc<Token>),
}

/// The record of one plain blocking send or receive, in its owner's stack frame (see the top
/// of this file). Its address is published only while the owner lends it out by reference,
/// so it cannot move meanwhile.
pub(crate) struct Op<T> {
    token: OpToken,
    value: UnsafeCell<Option<T>>,
}

impl<T> Op<T> {
    /// A record holding `value` (a send's value, or `None` for a receive). With `timed`, its
    /// token is a shared one that a timer can claim too (see [`Op::shared`]).
    #[inline]
    pub(crate) fn new(value: Option<T>, timed: bool) -> Op<T> {
        let token =
            if timed { OpToken::Shared(Token::new()) } else { OpToken::Inline(Token::inline()) };
        Op { token, value: UnsafeCell::new(value) }
    }

    #[inline]
    pub(crate) fn token(&self) -> &Token {
        match &self.token {
            OpToken::Inline(t) => t,
            OpToken::Shared(t) => t,
        }
    }

    /// The shared token, for a timer to claim; `None` for an inline token.
    pub(crate) fn shared(&self) -> Option<&Arc<Token>> {
        match &self.token {
            OpToken::Inline(_) => None,
            OpToken::Shared(t) => Some(t),
        }
    }

    /// Claims the token from under the lock of the channel the record is queued on: a load
    /// and a store for an inline token, a compare-and-swap for a shared one (see the top of
    /// this file).
    #[inline]
    pub(crate) fn claim_queued(&self, outcome: Outcome) -> bool {
        match &self.token {
            OpToken::Inline(t) => t.claim_locked(outcome),
            OpToken::Shared(t) => t.claim(outcome),
        }
    }

    /// Takes the value cell's content.
    ///
    /// # Safety
    /// Invariant 2: the owner, before publication or after the wake (or once it has withdrawn
    /// the entry under the channel lock).
    #[inline]
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: exclusive access is the caller's obligation.
        unsafe { (*self.value.get()).take() }
    }
}

/// One blocked operation (or one arm of a blocked `select!`), queued on a channel.
pub(crate) enum Entry<T> {
    /// An arm of a `select!`.
    Select { token: Arc<Token>, arm: usize, slot: Arc<Slot<T>> },
    /// A plain blocking send or receive: a pointer to its record (invariant 4).
    Op(NonNull<Op<T>>),
}

// SAFETY: an entry moves `T` values between threads (through its slot or record), hence
// `T: Send`; the `Op` pointer is dereferenced only under the channel lock while the record is
// alive (invariant 4), and the record's cells only under the claim protocol.
unsafe impl<T: Send> Send for Entry<T> {}

impl<T> Entry<T> {
    /// The entry of a plain operation's record.
    #[inline]
    pub(crate) fn op(op: &Op<T>) -> Entry<T> {
        Entry::Op(NonNull::from(op))
    }

    /// Whether this entry is an arm of the `select!` owning `token`.
    #[inline]
    pub(crate) fn is_of(&self, token: &Arc<Token>) -> bool {
        matches!(self, Entry::Select { token: t, .. } if Arc::ptr_eq(t, token))
    }

    /// Whether this entry is the one of `op`.
    #[inline]
    pub(crate) fn is_op(&self, op: *const Op<T>) -> bool {
        matches!(self, Entry::Op(p) if std::ptr::eq(p.as_ptr(), op))
    }

    /// Whether nobody has claimed the entry's token yet.
    ///
    /// # Safety
    /// The entry is queued on a channel whose lock the caller holds (invariant 4).
    #[inline]
    pub(crate) unsafe fn is_live(&self) -> bool {
        match self {
            Entry::Select { token, .. } => token.is_waiting(),
            // SAFETY: queued under the caller's lock, so the record is alive (invariant 4).
            Entry::Op(op) => unsafe { op.as_ref() }.token().is_waiting(),
        }
    }

    /// Tries to claim the entry's token as completed (`disconnected`: by a disconnection).
    /// On success the caller must take the waiter and wake it.
    ///
    /// # Safety
    /// The entry is queued on a channel whose lock the caller holds, or was popped from it
    /// under the lock still held (invariant 4).
    #[inline]
    pub(crate) unsafe fn claim(&self, disconnected: bool) -> bool {
        match self {
            Entry::Select { token, arm, .. } => {
                token.claim(Outcome::Arm { arm: *arm, disconnected })
            }
            // SAFETY: the record is alive (caller's obligation, invariant 4).
            Entry::Op(op) => {
                unsafe { op.as_ref() }.claim_queued(Outcome::Arm { arm: 0, disconnected })
            }
        }
    }

    /// Stores a value in the entry's slot.
    ///
    /// # Safety
    /// The caller claimed the entry and still holds the channel lock (invariants 2 and 4).
    #[inline]
    pub(crate) unsafe fn put(&self, v: T) {
        match self {
            // SAFETY: claimed by the caller (invariant 2).
            Entry::Select { slot, .. } => unsafe { slot.put(v) },
            // SAFETY: claimed by the caller, and alive (invariants 2 and 4).
            Entry::Op(op) => unsafe { *op.as_ref().value.get() = Some(v) },
        }
    }

    /// Takes the value out of the entry's slot.
    ///
    /// # Safety
    /// As for [`put`](Entry::put).
    #[inline]
    pub(crate) unsafe fn take(&self) -> Option<T> {
        match self {
            // SAFETY: claimed by the caller (invariant 2).
            Entry::Select { slot, .. } => unsafe { slot.take() },
            // SAFETY: claimed by the caller, and alive (invariants 2 and 4).
            Entry::Op(op) => unsafe { op.as_ref().take() },
        }
    }

    /// Takes the waiter of the entry's token.
    ///
    /// # Safety
    /// As for [`put`](Entry::put).
    #[inline]
    pub(crate) unsafe fn take_waiter(&self) -> Waiter {
        match self {
            // SAFETY: claimed by the caller (invariant 1).
            Entry::Select { token, .. } => unsafe { token.take_waiter() },
            // SAFETY: claimed by the caller, and alive (invariants 1 and 4).
            Entry::Op(op) => unsafe { op.as_ref().token().take_waiter() },
        }
    }
}
