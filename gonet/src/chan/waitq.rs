//! A channel's queue of blocked operations (Go's `waitq`): FIFO [`Entry`]s, some of which
//! may be stale (their token was claimed elsewhere; see `token.rs`). Stale entries are
//! skipped and dropped by whoever meets them at the front, and removed by their owner after
//! its wake-up, so the queue never grows without bound. The queue keeps its capacity, so a
//! channel that blocks over and over does not allocate in steady state.
//!
//! Every method runs under the owning channel's lock, which is what makes the entries'
//! `unsafe` accessors sound here: a queued entry's record is alive (`token.rs`, invariant 4).

use std::collections::VecDeque;
use std::sync::Arc;

use super::token::{Entry, Op, Slot, Token};
use crate::runtime::park::Waiter;

pub(crate) struct WaitQueue<T> {
    q: VecDeque<Entry<T>>,
}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> WaitQueue<T> {
        WaitQueue { q: VecDeque::new() }
    }

    #[inline]
    pub(crate) fn push(&mut self, e: Entry<T>) {
        self.q.push_back(e);
    }

    /// Claims the first live entry as completed normally and returns it, dropping the stale
    /// entries in front of it. The caller then owns the entry's slot and waiter: it must be done
    /// with both before it releases the channel lock (`token.rs`, invariant 4), and wakes the
    /// waiter after.
    #[inline]
    pub(crate) fn claim_front(&mut self) -> Option<Entry<T>> {
        if self.q.is_empty() {
            return None;
        }
        self.claim_front_slow()
    }

    fn claim_front_slow(&mut self) -> Option<Entry<T>> {
        while let Some(e) = self.q.pop_front() {
            // SAFETY: popped under the channel lock, which the caller still holds.
            if unsafe { e.claim(false) } {
                return Some(e);
            }
        }
        None
    }

    /// Whether a live entry of an operation other than `token`'s is queued.
    pub(crate) fn has_live_except(&self, token: &Arc<Token>) -> bool {
        // SAFETY: queued, under the channel lock.
        self.q.iter().any(|e| !e.is_of(token) && unsafe { e.is_live() })
    }

    /// Removes every entry of `token`'s `select!`.
    pub(crate) fn remove(&mut self, token: &Arc<Token>) {
        self.q.retain(|e| !e.is_of(token));
    }

    /// Removes the entry whose slot is `slot`, if it is still queued.
    pub(crate) fn remove_slot(&mut self, slot: &Arc<Slot<T>>) {
        self.q.retain(|e| !matches!(e, Entry::Select { slot: s, .. } if Arc::ptr_eq(s, slot)));
    }

    /// Removes the entry of `op`, if it is still queued.
    pub(crate) fn remove_op(&mut self, op: *const Op<T>) {
        if let Some(i) = self.q.iter().position(|e| e.is_op(op)) {
            self.q.remove(i);
        }
    }

    /// Claims every live entry as disconnected and empties the queue; returns the waiters to
    /// wake once the channel lock is released.
    pub(crate) fn disconnect_all(&mut self) -> Vec<Waiter> {
        let mut wake = Vec::new();
        for e in self.q.drain(..) {
            // SAFETY: drained under the channel lock, which we hold; once claimed, the
            // waiter is ours to take.
            unsafe {
                if e.claim(true) {
                    wake.push(e.take_waiter());
                }
            }
        }
        wake
    }
}
