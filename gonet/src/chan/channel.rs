//! The channel object (Go's `hchan`): a buffer, a queue of blocked receivers and one of
//! blocked senders under one lock, and the steps every send and receive is made of.
//!
//! # State, under `state`'s lock
//!
//! * `buf` — buffered values, at most `cap` of them (`cap` is 0 for a rendezvous channel and
//!   `usize::MAX` for an unbounded one);
//! * `recvq`, `sendq` — blocked operations (entries of `token.rs`, possibly stale);
//! * `tx_gone`, `rx_gone` — every `Sender` (resp. `Receiver`) has been dropped, or, for
//!   `tx_gone`, the channel was closed;
//! * `closed` — [`Chan::close`] was called (Go's `close`): implies `tx_gone`, and sends fail
//!   as if `rx_gone` (they hand their value back); receivers drain the buffer, then fail;
//! * `on_rx_gone` — a hook run once when the last receiver is gone (a timer frees itself
//!   through it: `time/`).
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
//!
//! # Plain blocking operations (the fast path)
//!
//! `Sender::send` and `Receiver::recv` (and their timeout variants) bypass the select engine
//! ([`Chan::send`], [`Chan::recv`]): under one lock acquisition the operation either
//! completes at once (the same send/receive steps as `try_send`/`try_recv`) or, when it has to
//! wait, builds an `Op` record in its own stack frame (`token.rs`) and parks *still holding
//! the lock*. The park's commit, which runs once the goroutine is off its stack, stores the
//! waiter, queues a pointer to the record and releases the lock, as Go's `chanparkcommit`
//! does; so no counterparty can see the record before the waiter is in it, and nothing is
//! allocated (with a timeout: the shared token and the timer). After the wake the record holds
//! the outcome and, for a receive, the value. A counterparty claims and finishes with the
//! record under the lock and pops its entry; a timer claim leaves the entry queued, and the
//! woken owner removes it under the lock before returning; a stack unwound while parked
//! (runtime shutdown) withdraws its entry under the lock in a destructor. So a queued record
//! is always alive (`token.rs`, invariant 4).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use super::token::{Entry, Op, Outcome, Slot, Token};
use super::waitq::WaitQueue;
use crate::runtime::park::{park_for, Waiter};

struct State<T> {
    buf: VecDeque<T>,
    recvq: WaitQueue<T>,
    sendq: WaitQueue<T>,
    tx_gone: bool,
    rx_gone: bool,
    closed: bool,
    on_rx_gone: Option<Box<dyn FnOnce() + Send>>,
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

/// Which queue a plain blocked operation waits in.
#[derive(Clone, Copy)]
enum Dir {
    Send,
    Recv,
}

impl<T> State<T> {
    #[inline]
    fn queue(&mut self, dir: Dir) -> &mut WaitQueue<T> {
        match dir {
            Dir::Send => &mut self.sendq,
            Dir::Recv => &mut self.recvq,
        }
    }
}

/// Withdraws a parked plain operation whose stack is unwound without a wake (a runtime shutting
/// down drops its parked goroutines): under the channel lock, claims the record as `ABORTED`
/// and unqueues it, so that nobody touches the record once the frame is gone (token.rs,
/// invariant 4). A normal wake-up forgets the guard instead.
struct Withdraw<'a, T> {
    chan: &'a Chan<T>,
    op: &'a Op<T>,
    dir: Dir,
}

impl<T> Drop for Withdraw<'_, T> {
    fn drop(&mut self) {
        let mut st = self.chan.lock();
        self.op.claim_queued(Outcome::Aborted);
        st.queue(self.dir).remove_op(self.op);
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
                closed: false,
                on_rx_gone: None,
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
        if st.rx_gone || st.closed {
            return (Err(TrySendError::Disconnected(v)), None);
        }
        if let Some(e) = st.recvq.claim_front() {
            // SAFETY: `claim_front` claimed e's token for us, so we alone touch its slot and
            // take its waiter, and we still hold the lock (token.rs, invariants 1, 2 and 4).
            let w = unsafe {
                e.put(v);
                e.take_waiter()
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
                // SAFETY: claimed by `claim_front`, under the lock (token.rs, invariants 1, 2
                // and 4).
                let (sv, sw) = unsafe { (e.take(), e.take_waiter()) };
                st.buf.push_back(sv.expect("gonet: a blocked sender's slot is empty"));
                w = Some(sw);
            }
            return (Ok(v), w);
        }
        if let Some(e) = st.sendq.claim_front() {
            // SAFETY: as above.
            let (v, w) = unsafe { (e.take(), e.take_waiter()) };
            return (Ok(v.expect("gonet: a blocked sender's slot is empty")), Some(w));
        }
        if st.tx_gone {
            (Err(TryRecvError::Disconnected), None)
        } else {
            (Err(TryRecvError::Empty), None)
        }
    }

    /// A plain blocking send (`Sender::send` and its timeout variants), without the select
    /// engine: one lock acquisition either completes the send at once or queues an [`Op`]
    /// record from this stack frame, and the lock is held across the switch to the park's
    /// commit, which publishes the record and releases it (Go's `chanparkcommit`). Fails with
    /// `Timeout` only when `deadline` passes first.
    pub(crate) fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.lock();
        let v = match self.send_locked(&mut st, v) {
            (Ok(()), w) => {
                drop(st);
                wake(w);
                return Ok(());
            }
            (Err(TrySendError::Disconnected(v)), _) => {
                return Err(SendTimeoutError::Disconnected(v))
            }
            (Err(TrySendError::Full(v)), _) => v,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendTimeoutError::Timeout(v));
        }
        let op = Op::new(Some(v), deadline.is_some());
        let outcome = self.block(st, &op, Dir::Send, deadline);
        // SAFETY: woken, and the entry is gone: the record is ours again (token.rs, inv. 2).
        let v = unsafe { op.take() };
        match outcome {
            Outcome::Arm { disconnected: false, .. } => Ok(()),
            Outcome::Arm { disconnected: true, .. } => Err(SendTimeoutError::Disconnected(
                v.expect("gonet: disconnected sender lost its value"),
            )),
            Outcome::TimedOut => {
                Err(SendTimeoutError::Timeout(v.expect("gonet: a timed-out send lost its value")))
            }
            o => unreachable!("gonet: blocked send woke with {o:?}"),
        }
    }

    /// A plain blocking receive; see [`send`](Chan::send).
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut st = self.lock();
        match self.recv_locked(&mut st) {
            (Ok(v), w) => {
                drop(st);
                wake(w);
                return Ok(v);
            }
            (Err(TryRecvError::Disconnected), _) => return Err(RecvTimeoutError::Disconnected),
            (Err(TryRecvError::Empty), _) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(RecvTimeoutError::Timeout);
        }
        let op = Op::new(None, deadline.is_some());
        match self.block(st, &op, Dir::Recv, deadline) {
            // SAFETY: woken, and the entry is gone: the record is ours again (token.rs, inv. 2).
            Outcome::Arm { disconnected: false, .. } => {
                Ok(unsafe { op.take() }.expect("gonet: receiver woken without a value"))
            }
            Outcome::Arm { disconnected: true, .. } => Err(RecvTimeoutError::Disconnected),
            Outcome::TimedOut => Err(RecvTimeoutError::Timeout),
            o => unreachable!("gonet: blocked receive woke with {o:?}"),
        }
    }

    /// Parks the caller on `op`, queued in `dir`'s queue, until a counterparty, a
    /// disconnection or the timer at `deadline` claims it; `st` is the lock under which the
    /// caller found the channel not ready. Returns the outcome, with the entry gone from the
    /// queue.
    fn block(
        &self,
        mut st: MutexGuard<'_, State<T>>,
        op: &Op<T>,
        dir: Dir,
        deadline: Option<Instant>,
    ) -> Outcome {
        let withdraw = Withdraw { chan: self, op, dir };
        let mut cancel = None;
        let reason = match dir {
            Dir::Recv => crate::runtime::wait::Wait::ChanReceive,
            Dir::Send => crate::runtime::wait::Wait::ChanSend,
        };
        park_for(reason, |w| {
            // SAFETY: the record is not published yet (token.rs, invariant 1).
            unsafe { op.token().set_waiter(w) };
            st.queue(dir).push(Entry::op(op));
            drop(st);
            if let (Some(d), Some(t)) = (deadline, op.shared()) {
                // Armed after the unlock: the timer holds only the shared token, so it does
                // no harm if the operation completes first.
                cancel = Some(t.arm_timer(d));
            }
            Ok(())
        });
        // Woken normally: a channel-side claimer popped the entry, or the timer claimed it.
        std::mem::forget(withdraw);
        let outcome = op.token().outcome();
        if outcome == Outcome::TimedOut {
            // A timer claim leaves the entry queued (token.rs, invariant 3).
            self.lock().queue(dir).remove_op(op);
        } else if let Some(c) = cancel {
            c.cancel();
        }
        outcome
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
        if st.rx_gone || st.closed || st.recvq.has_live_except(token) || st.buf.len() < self.cap {
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
        st.sendq.push(Entry::Select { token: token.clone(), arm, slot: slot.clone() });
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
        st.recvq.push(Entry::Select { token: token.clone(), arm, slot: slot.clone() });
        Reg::Queued(slot)
    }

    /// Whether an operation is queued as a blocked receive (for tests that must wait until
    /// one is).
    #[cfg(test)]
    pub(crate) fn has_blocked_receiver(&self) -> bool {
        self.lock().recvq.has_live_except(&Token::new())
    }

    /// Whether an operation is queued as a blocked send.
    #[cfg(test)]
    pub(crate) fn has_blocked_sender(&self) -> bool {
        self.lock().sendq.has_live_except(&Token::new())
    }

    /// Removes the entries of `token`'s operation from the send queue.
    pub(crate) fn unregister_send(&self, token: &Arc<Token>) {
        self.lock().sendq.remove(token);
    }

    /// Withdraws a send arm still queued with `slot` (its select's stack is being unwound)
    /// and returns its unsent value, so that the value is dropped by the arm, outside this
    /// channel's lock, rather than by whoever meets the stale entry under the lock.
    pub(crate) fn withdraw_send(&self, slot: &Arc<Slot<T>>) -> Option<T> {
        let mut st = self.lock();
        st.sendq.remove_slot(slot);
        // SAFETY: the entry is gone from the queue and a claimer touches a slot only under
        // this lock, which we hold, so nobody else can reach the slot any more (token.rs,
        // invariant 2).
        let v = unsafe { slot.take() };
        drop(st);
        v
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
    /// values, which nobody can receive any more, are dropped; then the `on_rx_gone` hook
    /// runs.
    pub(crate) fn disconnect_receivers(&self) {
        let mut st = self.lock();
        st.rx_gone = true;
        let buf = std::mem::take(&mut st.buf);
        let wake = st.sendq.disconnect_all();
        let hook = st.on_rx_gone.take();
        drop(st);
        wake.into_iter().for_each(Waiter::wake);
        drop(buf);
        if let Some(h) = hook {
            h();
        }
    }

    /// Go's `close`: from now on sends fail (handing their value back), blocked senders
    /// are woken with their values back, and receivers take the buffered values, then fail.
    /// Returns false if the channel was already closed.
    pub(crate) fn close(&self) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.closed = true;
        st.tx_gone = true;
        // Receivers are queued only while the buffer is empty (invariant 1), so they fail
        // at once; senders are queued only while it is full (invariant 2) and get their
        // values back, while the buffered values stay for the receivers.
        let mut wake = st.recvq.disconnect_all();
        wake.extend(st.sendq.disconnect_all());
        drop(st);
        wake.into_iter().for_each(Waiter::wake);
        true
    }

    /// Whether [`close`](Chan::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Sets the hook run once when the last receiver is gone (at once if it already is).
    pub(crate) fn on_receivers_gone(&self, f: Box<dyn FnOnce() + Send>) {
        let mut st = self.lock();
        if st.rx_gone {
            drop(st);
            f();
            return;
        }
        st.on_rx_gone = Some(f);
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
