//! A channel's queue of blocked operations (Go's `waitq`): FIFO [`Entry`]s, some of which
//! may be stale (their token was claimed elsewhere; see `token.rs`). Stale entries are
//! skipped and dropped by whoever meets them at the front, and removed by their owner after
//! its wake-up, so the queue never grows without bound.
//!
//! Every method runs under the owning channel's lock.

use std::collections::VecDeque;
use std::sync::Arc;

use super::token::{Entry, Outcome, Token};
use crate::runtime::park::Waiter;

pub(crate) struct WaitQueue<T> {
    q: VecDeque<Entry<T>>,
}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> WaitQueue<T> {
        WaitQueue { q: VecDeque::new() }
    }

    pub(crate) fn push(&mut self, e: Entry<T>) {
        self.q.push_back(e);
    }

    /// Claims the first live entry as completed normally and returns it, dropping the stale
    /// entries in front of it. The caller then owns the entry's slot and must wake its waiter.
    pub(crate) fn claim_front(&mut self) -> Option<Entry<T>> {
        while let Some(e) = self.q.pop_front() {
            if e.token.claim(Outcome::Arm { arm: e.arm, disconnected: false }) {
                return Some(e);
            }
        }
        None
    }

    /// Whether a live entry of an operation other than `token`'s is queued.
    pub(crate) fn has_live_except(&self, token: &Arc<Token>) -> bool {
        self.q.iter().any(|e| !e.is_of(token) && e.token.is_waiting())
    }

    /// Removes every entry of `token`'s operation.
    pub(crate) fn remove(&mut self, token: &Arc<Token>) {
        self.q.retain(|e| !e.is_of(token));
    }

    /// Claims every live entry as disconnected and empties the queue; returns the waiters to
    /// wake once the channel lock is released.
    pub(crate) fn disconnect_all(&mut self) -> Vec<Waiter> {
        let mut wake = Vec::new();
        for e in self.q.drain(..) {
            if e.token.claim(Outcome::Arm { arm: e.arm, disconnected: true }) {
                // SAFETY: we just claimed the token, which makes us the only one to take it.
                wake.push(unsafe { e.token.take_waiter() });
            }
        }
        wake
    }
}
