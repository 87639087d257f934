//! The channel object (Go's `hchan`): a buffer, a queue of blocked receivers and one of
//! blocked senders under one lock, and the steps every send and receive is made of.
//!
//! # State, under `state`'s lock
//!
//! * `buf` — buffered values, at most `cap` of them (`cap` is 0 for a rendezvous channel and
//!   `usize::MAX` for an unbounded one);
//! * `recvq`, `sendq` — blocked operations (entries of `token.rs`, possibly stale);
//! * `tx_gone`, `rx_gone` — every `Sender` (resp. `Receiver`) has been dropped.
//!
//! # Invariants (about *live* entries: those whose token is still waiting)
//!
//! 1. Live entries in `recvq` imply `buf` is empty, no live entry in `sendq` and not
//!    `tx_gone`: a receiver queues only when nothing can be received, and whoever later makes
//!    something receivable (a send, the last sender leaving) serves the queued receivers
//!    first, under the same lock.
//! 2. Live entries in `sendq` imply `buf` holds `cap` values, no live entry in `recvq` and
//!    not `rx_gone`; symmetrically a receive that frees a buffer slot refills it from the
//!    first live sender, so the buffer stays full while senders wait.
//! 3. The one exception to 1 and 2: a `select!` with a send and a receive arm on the same
//!    rendezvous channel may have both entries queued; an operation never pairs with itself.
//! 4. A value is moved exactly once: from the sender's hands or slot into `buf` or a
//!    receiver's slot, and from there to the receiver. Claiming a token (see `token.rs`)
//!    decides who moves it, so no value is ever lost or delivered twice.
//!
//! Waking is done after the lock is released: the steps below return the waiters to wake.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::token::{Entry, Slot, Token};
use super::waitq::WaitQueue;
use crate::runtime::park::Waiter;

struct State<T> {
    buf: VecDeque<T>,
    recvq: WaitQueue<T>,
    sendq: WaitQueue<T>,
    tx_gone: bool,
    rx_gone: bool,
}

/// The shared channel behind `Sender`s and `Receiver`s.
pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    /// Capacity: `usize::MAX` for unbounded channels.
    cap: usize,
    bounded: bool,
    /// Live `Sender` and `Receiver` handles.
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

/// The result of registering one arm of a blocked operation.
pub(crate) enum Reg<R, V> {
    /// The entry was queued; the slot it shares with the queue.
    Queued(Arc<Slot<V>>),
    /// The channel is ready now (only when registering with `first == false`); the value to
    /// send, if any, is handed back.
    Ready(Option<V>),
    /// The operation completed at once (only when `first`) with this result.
    Done(R),
}

/// Wakes what a step returned, after the lock is gone.
fn wake(w: Option<Waiter>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        let buf = match cap {
            Some(n) => VecDeque::with_capacity(n.min(1024)),
            None => VecDeque::new(),
        };
        Chan {
            state: Mutex::new(State {
                buf,
                recvq: WaitQueue::new(),
                sendq: WaitQueue::new(),
                tx_gone: false,
                rx_gone: false,
            }),
            cap: cap.unwrap_or(usize::MAX),
            bounded: cap.is_some(),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code panics while holding the lock except `T`'s own methods, which never run
        // under it; still, a poisoned lock holds a consistent state, so keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.bounded.then_some(self.cap)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().buf.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.lock().buf.len() >= self.cap
    }

    /// The send step: hand `v` to the first live receiver, else buffer it if there is room.
    fn send_locked(
        &self,
        st: &mut State<T>,
        v: T,
    ) -> (Result<(), TrySendError<T>>, Option<Waiter>) {
        if st.rx_gone {
            return (Err(TrySendError::Disconnected(v)), None);
        }
        if let Some(e) = st.recvq.claim_front() {
            // SAFETY: `claim_front` claimed e's token for us, so we alone touch its slot and
            // take its waiter (token.rs, invariants 1 and 2).
            let w = unsafe {
                e.slot.put(v);
                e.token.take_waiter()
            };
            return (Ok(()), Some(w));
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return (Ok(()), None);
        }
        (Err(TrySendError::Full(v)), None)
    }

    /// The receive step: take the oldest buffered value (refilling the buffer from the first
    /// live sender), else take the value of the first live sender.
    fn recv_locked(&self, st: &mut State<T>) -> (Result<T, TryRecvError>, Option<Waiter>) {
        if let Some(v) = st.buf.pop_front() {
            let mut w = None;
            if let Some(e) = st.sendq.claim_front() {
                // SAFETY: claimed by `claim_front` (token.rs, invariants 1 and 2).
                let (sv, sw) = unsafe { (e.slot.take(), e.token.take_waiter()) };
                st.buf.push_back(sv.expect("gonet: a blocked sender's slot is empty"));
                w = Some(sw);
            }
            return (Ok(v), w);
        }
        if let Some(e) = st.sendq.claim_front() {
            // SAFETY: as above.
            let (v, w) = unsafe { (e.slot.take(), e.token.take_waiter()) };
            return (Ok(v.expect("gonet: a blocked sender's slot is empty")), Some(w));
        }
        if st.tx_gone {
            (Err(TryRecvError::Disconnected), None)
        } else {
            (Err(TryRecvError::Empty), None)
        }
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut st = self.lock();
        let (r, w) = self.send_locked(&mut st, v);
        drop(st);
        wake(w);
        r
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.lock();
        let (r, w) = self.recv_locked(&mut st);
        drop(st);
        wake(w);
        r
    }

    /// Registers arm `arm` of `token`'s operation as a blocked send of `v`.
    ///
    /// With `first` (no entry of `token` is published yet, so nobody can claim it) a ready
    /// channel completes the send at once. Otherwise a ready channel is reported as `Ready`
    /// without sending: the token may already be contested, and only a claim may decide.
    pub(crate) fn register_send(
        &self,
        token: &Arc<Token>,
        arm: usize,
        v: T,
        first: bool,
    ) -> Reg<Result<(), SendError<T>>, T> {
        let mut st = self.lock();
        if first {
            let (r, w) = self.send_locked(&mut st, v);
            let v = match r {
                Ok(()) => {
                    drop(st);
                    wake(w);
                    return Reg::Done(Ok(()));
                }
                Err(TrySendError::Disconnected(v)) => return Reg::Done(Err(SendError(v))),
                Err(TrySendError::Full(v)) => v,
            };
            return Reg::Queued(self.enqueue_send(&mut st, token, arm, v));
        }
        if st.rx_gone || st.recvq.has_live_except(token) || st.buf.len() < self.cap {
            return Reg::Ready(Some(v));
        }
        Reg::Queued(self.enqueue_send(&mut st, token, arm, v))
    }

    fn enqueue_send(
        &self,
        st: &mut State<T>,
        token: &Arc<Token>,
        arm: usize,
        v: T,
    ) -> Arc<Slot<T>> {
        let slot = Slot::new(Some(v));
        st.sendq.push(Entry { token: token.clone(), arm, slot: slot.clone() });
        slot
    }

    /// Registers arm `arm` of `token`'s operation as a blocked receive; `first` as for
    /// [`register_send`](Chan::register_send).
    pub(crate) fn register_recv(
        &self,
        token: &Arc<Token>,
        arm: usize,
        first: bool,
    ) -> Reg<Result<T, RecvError>, T> {
        let mut st = self.lock();
        if first {
            let (r, w) = self.recv_locked(&mut st);
            match r {
                Ok(v) => {
                    drop(st);
                    wake(w);
                    return Reg::Done(Ok(v));
                }
                Err(TryRecvError::Disconnected) => return Reg::Done(Err(RecvError)),
                Err(TryRecvError::Empty) => {}
            }
        } else if !st.buf.is_empty() || st.tx_gone || st.sendq.has_live_except(token) {
            return Reg::Ready(None);
        }
        let slot = Slot::new(None);
        st.recvq.push(Entry { token: token.clone(), arm, slot: slot.clone() });
        Reg::Queued(slot)
    }

    /// Removes the entries of `token`'s operation from the send queue.
    pub(crate) fn unregister_send(&self, token: &Arc<Token>) {
        self.lock().sendq.remove(token);
    }

    /// Removes the entries of `token`'s operation from the receive queue.
    pub(crate) fn unregister_recv(&self, token: &Arc<Token>) {
        self.lock().recvq.remove(token);
    }

    /// The last `Sender` is gone: blocked receivers fail once the buffer is drained, which
    /// it already is if any receiver is blocked (invariant 1).
    pub(crate) fn disconnect_senders(&self) {
        let mut st = self.lock();
        st.tx_gone = true;
        let wake = st.recvq.disconnect_all();
        drop(st);
        wake.into_iter().for_each(Waiter::wake);
    }

    /// The last `Receiver` is gone: blocked senders get their values back, and buffered
    /// values, which nobody can receive any more, are dropped.
    pub(crate) fn disconnect_receivers(&self) {
        let mut st = self.lock();
        st.rx_gone = true;
        let buf = std::mem::take(&mut st.buf);
        let wake = st.sendq.disconnect_all();
        drop(st);
        wake.into_iter().for_each(Waiter::wake);
        drop(buf);
    }

    /// Drops one sender handle; the last one disconnects.
    pub(crate) fn release_sender(&self) {
        if self.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.disconnect_senders();
        }
    }

    /// Drops one receiver handle; the last one disconnects.
    pub(crate) fn release_receiver(&self) {
        if self.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.disconnect_receivers();
        }
    }
}
