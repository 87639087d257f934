//! The select engine (Go's `selectgo`): waits for the first of several channel operations
//! ("arms") to complete. Plain blocking `send`/`recv` (and their timeout variants) do not
//! come here: they take the fast path in `channel.rs`, which queues a single record from the
//! caller's stack under one lock. Both kinds of waiter share the channels' queues and the
//! claim protocol of `token.rs`, so a `select!` pairs with plain operations as with other
//! selects.
//!
//! # Algorithm
//!
//! 1. **Poll.** Visit the arms in a fresh random order and complete the first one that is
//!    ready (each under its own channel's lock, one at a time). A random permutation makes
//!    every ready arm equally likely to be chosen, as in Go. With a `default` arm, stop here.
//! 2. **Register.** Park with one [`Token`] shared by all arms. The park's register step
//!    stores the waiter in the token, then visits the arms in the same order, each under its
//!    own channel's lock:
//!    * the first arm visited may still *complete* the operation directly: nothing of the
//!      token is published yet, so no one else can be claiming it;
//!    * any later arm that turns out ready is not completed (the token may already be claimed
//!      through an earlier arm, and an operation must complete at most one arm). Instead the
//!      engine claims its own token as `ABORTED` and goes back to step 1 — or, if the claim
//!      fails, someone else won and will wake it;
//!    * otherwise the arm's entry is queued, and registration stops early once the token is
//!      no longer waiting;
//!    * with a timeout, a timer that claims the token as `TIMED_OUT` is armed last (and
//!      cancelled after the wake if anything else claimed the token first).
//! 3. **Wake.** Whoever claimed the token woke the waiter once (`token.rs`). The engine
//!    reads the outcome, removes its stale entries from every other arm's channel, and
//!    finishes the winning arm from its slot (or reports the timeout, or retries after an
//!    abort).
//!
//! Invariant: each round publishes a fresh token, and a token is claimed exactly once, so
//! at most one arm completes per select, and every wake-up is for the current round.
//!
//! Progress: an abort means an arm was seen ready, so the next poll either completes it or
//! finds that another operation took it. Two selects registering at the same moment can
//! make each other abort (each saw the other's fresh entry); the fresh random order of the
//! next round makes a repetition unlikely. Go avoids this by locking every channel of a
//! select at once; registering one channel at a time keeps one lock per channel, with no
//! lock ordering, and lets the same channel appear in several arms.
//!
//! Unlike crossbeam-channel, but like Go, the value of every `send` arm of a `select!` is
//! evaluated before the select; the values of the arms that are not chosen are dropped.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::Reg;
use super::error::{RecvError, SendError};
use super::token::{Outcome, Slot, Token};
use super::{Receiver, Sender};
use crate::runtime::park::park_for;

/// The result of [`Arm::register`].
pub(crate) enum Registered {
    Queued,
    Ready,
    Done,
}

/// One operation of a select, type-erased.
pub(crate) trait Arm {
    /// Step 1: completes the operation if the channel is ready now.
    fn try_complete(&mut self) -> bool;
    /// Step 2: registers the operation as arm `arm` of `token` (see the top of this file).
    fn register(&mut self, token: &Arc<Token>, arm: usize, first: bool) -> Registered;
    /// Step 3, for arms that did not win: removes the entries of `token` from the channel and
    /// takes back an unsent value.
    fn unregister(&mut self, token: &Arc<Token>);
    /// Step 3, for the winning arm: finishes from the slot.
    fn complete(&mut self, disconnected: bool);
    /// Marks the arm as the one chosen.
    fn select(&mut self);
}

/// Runs a select over `arms`: returns the index of the completed arm, or `None` when
/// `block` is false and no arm is ready, or when `deadline` passes first.
pub(crate) fn run(
    arms: &mut [ArmRef<'_>],
    block: bool,
    deadline: Option<Instant>,
) -> Option<usize> {
    let n = arms.len();
    let mut small = [0usize; 16];
    let mut large = Vec::new();
    let order: &mut [usize] = if n <= small.len() {
        &mut small[..n]
    } else {
        large.resize(n, 0);
        &mut large
    };
    loop {
        shuffle(order);
        for &i in order.iter() {
            if arms[i].0.try_complete() {
                arms[i].0.select();
                return Some(i);
            }
        }
        if !block || deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }

        let token = Token::new();
        let _withdraw = WithdrawOnDrop(&token);
        let mut registered = 0; // arms order[..registered] have (or had) queued entries
        let mut done = None;
        let mut timer = None;
        park_for(crate::runtime::wait::Wait::Select, |w| {
            // SAFETY: the token is not published yet (token.rs, invariant 1).
            unsafe { token.set_waiter(w) };
            for (k, &i) in order.iter().enumerate() {
                #[cfg(test)]
                if k > 0 {
                    tests::before_later_arm(i);
                }
                match arms[i].0.register(&token, i, k == 0) {
                    Registered::Queued => registered = k + 1,
                    Registered::Done => {
                        done = Some(i);
                        // SAFETY: only the first arm completes directly, before anything of
                        // the token was published; the waiter is still ours.
                        return Err(unsafe { token.take_waiter() });
                    }
                    Registered::Ready => {
                        if token.claim(Outcome::Aborted) {
                            // SAFETY: we claimed the token.
                            return Err(unsafe { token.take_waiter() });
                        }
                        return Ok(()); // someone else won and wakes us
                    }
                }
                if !token.is_waiting() {
                    return Ok(());
                }
            }
            if let Some(d) = deadline {
                timer = Some(token.arm_timer(d));
            }
            Ok(())
        });
        if let Some(i) = done {
            arms[i].0.select();
            return Some(i);
        }

        let outcome = token.outcome();
        if outcome != Outcome::TimedOut {
            // Drop the pending timer now rather than at its deadline.
            if let Some(t) = timer {
                t.cancel();
            }
        }
        let winner = match outcome {
            Outcome::Arm { arm, .. } => Some(arm),
            _ => None,
        };
        // A channel-side claim popped the winner's entry (token.rs, invariant 3).
        for &i in &order[..registered] {
            if Some(i) != winner {
                arms[i].0.unregister(&token);
            }
        }
        match outcome {
            Outcome::Arm { arm, disconnected } => {
                arms[arm].0.complete(disconnected);
                arms[arm].0.select();
                return Some(arm);
            }
            Outcome::TimedOut => return None,
            Outcome::Aborted => continue,
            Outcome::Waiting => unreachable!("gonet: select woke with its token unclaimed"),
        }
    }
}

/// Claims the token as `ABORTED` when a round ends. After a normal wake-up the token is
/// already claimed and this does nothing; but when a runtime shuts down it unwinds the stacks
/// of parked goroutines, and then this withdraws the dead goroutine's entries, so that no
/// channel hands a value to it or takes one from it. Its stale entries may stay queued until
/// someone meets them, so the guard also drops the waiter it then owns: a stale entry holds
/// no dead goroutine (nor, through it, its worker and epoll instance).
struct WithdrawOnDrop<'a>(&'a Token);

impl Drop for WithdrawOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.claim(Outcome::Aborted) {
            // SAFETY: we claimed the token (token.rs, invariant 1); the waiter may already be
            // gone (taken by the first arm's direct completion), hence `if_any`.
            drop(unsafe { self.0.take_waiter_if_any() });
        }
    }
}

/// Puts `0..order.len()` into `order` in a uniformly random permutation (Fisher–Yates).
fn shuffle(order: &mut [usize]) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    for i in (1..order.len()).rev() {
        let j = below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        // A per-thread random seed from std's hasher keys; never zero.
        let mut h = RandomState::new().build_hasher();
        h.write_usize(&h as *const _ as usize);
        h.finish() | 1
    });
}

/// A uniformly distributed number in `0..n` (n > 0), from a per-thread xorshift generator.
fn below(n: u64) -> u64 {
    let x = RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    });
    // Lemire's multiply-shift reduction; the bias is negligible for select's tiny `n`.
    ((x as u128 * n as u128) >> 64) as u64
}

/// The deadline `d` from now, or `None` (wait forever) if that is not representable.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// A receive arm. Public only for [`select!`](crate::select).
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    slot: Option<Arc<Slot<T>>>,
    result: Option<Result<T, RecvError>>,
    selected: bool,
}

impl<'a, T> RecvArm<'a, T> {
    /// A receive on `rx`.
    pub fn new(rx: &'a Receiver<T>) -> RecvArm<'a, T> {
        RecvArm { rx, slot: None, result: None, selected: false }
    }

    /// Whether the select chose this arm.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// The result of the chosen arm.
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.result.take().expect("gonet: select arm has no result")
    }

    /// The arm as the engine sees it.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }
}

impl<T> Arm for RecvArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        match self.rx.chan.try_recv() {
            Ok(v) => self.result = Some(Ok(v)),
            Err(e) if e.is_disconnected() => self.result = Some(Err(RecvError)),
            Err(_) => return false,
        }
        true
    }

    fn register(&mut self, token: &Arc<Token>, arm: usize, first: bool) -> Registered {
        match self.rx.chan.register_recv(token, arm, first) {
            Reg::Queued(slot) => {
                self.slot = Some(slot);
                Registered::Queued
            }
            Reg::Ready(_) => Registered::Ready,
            Reg::Done(r) => {
                self.result = Some(r);
                Registered::Done
            }
        }
    }

    fn unregister(&mut self, token: &Arc<Token>) {
        self.rx.chan.unregister_recv(token);
        self.slot = None;
    }

    fn complete(&mut self, disconnected: bool) {
        let slot = self.slot.take().expect("gonet: winning receive arm has no slot");
        self.result = Some(if disconnected {
            Err(RecvError)
        } else {
            // SAFETY: we were woken, so the claimer is done with the slot (token.rs, inv. 2).
            Ok(unsafe { slot.take() }.expect("gonet: receiver woken without a value"))
        });
    }

    fn select(&mut self) {
        self.selected = true;
    }
}

/// A send arm. Public only for [`select!`](crate::select).
#[doc(hidden)]
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    value: Option<T>,
    slot: Option<Arc<Slot<T>>>,
    result: Option<Result<(), SendError<T>>>,
    selected: bool,
}

impl<'a, T> SendArm<'a, T> {
    /// A send of `v` on `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> SendArm<'a, T> {
        SendArm { tx, value: Some(v), slot: None, result: None, selected: false }
    }

    /// Whether the select chose this arm.
    pub fn is_selected(&self) -> bool {
        self.selected
    }

    /// The result of the chosen arm.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("gonet: select arm has no result")
    }

    /// The arm as the engine sees it.
    pub fn as_arm(&mut self) -> ArmRef<'_> {
        ArmRef(self)
    }
}

impl<T> Arm for SendArm<'_, T> {
    fn try_complete(&mut self) -> bool {
        let v = self.value.take().expect("gonet: send arm has no value");
        match self.tx.chan.try_send(v) {
            Ok(()) => self.result = Some(Ok(())),
            Err(e) if e.is_disconnected() => self.result = Some(Err(SendError(e.into_inner()))),
            Err(e) => {
                self.value = Some(e.into_inner());
                return false;
            }
        }
        true
    }

    fn register(&mut self, token: &Arc<Token>, arm: usize, first: bool) -> Registered {
        let v = self.value.take().expect("gonet: send arm has no value");
        match self.tx.chan.register_send(token, arm, v, first) {
            Reg::Queued(slot) => {
                self.slot = Some(slot);
                Registered::Queued
            }
            Reg::Ready(v) => {
                self.value = v;
                Registered::Ready
            }
            Reg::Done(r) => {
                self.result = Some(r);
                Registered::Done
            }
        }
    }

    fn unregister(&mut self, token: &Arc<Token>) {
        self.tx.chan.unregister_send(token);
        if let Some(slot) = self.slot.take() {
            // SAFETY: after the wake the token is claimed and the claimer did not choose this
            // arm, so nobody else touches the slot (token.rs, invariant 2).
            self.value = unsafe { slot.take() };
        }
    }

    fn complete(&mut self, disconnected: bool) {
        let slot = self.slot.take().expect("gonet: winning send arm has no slot");
        self.result = Some(if disconnected {
            // SAFETY: we were woken, so the claimer is done with the slot (token.rs, inv. 2).
            let v = unsafe { slot.take() }.expect("gonet: disconnected sender lost its value");
            Err(SendError(v))
        } else {
            Ok(())
        });
    }

    fn select(&mut self) {
        self.selected = true;
    }
}

impl<T> Drop for SendArm<'_, T> {
    /// An arm still registered here had its select's stack unwound while parked (runtime
    /// shutdown): take the value back from the channel's queue, so it is dropped with the arm
    /// and never under the channel's lock.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.value = self.tx.chan.withdraw_send(&slot);
        }
    }
}

/// A type-erased select arm. Public only for [`select!`](crate::select).
#[doc(hidden)]
pub struct ArmRef<'a>(pub(crate) &'a mut dyn Arm);

/// What a `select!` does when no arm is ready. Public only for [`select!`](crate::select).
#[doc(hidden)]
pub enum Otherwise {
    /// No default arm: wait for an arm.
    Block,
    /// `default =>`: return at once.
    Now,
    /// `default(timeout) =>`: wait at most this long.
    Timeout(Duration),
}

/// Runs a `select!`; returns whether an arm was chosen (else the default arm runs).
/// Public only for [`select!`](crate::select).
#[doc(hidden)]
pub fn select(arms: &mut [ArmRef<'_>], otherwise: Otherwise) -> bool {
    let (block, deadline) = match otherwise {
        Otherwise::Block => (true, None),
        Otherwise::Now => (false, None),
        Otherwise::Timeout(d) => (true, deadline_after(d)),
    };
    run(arms, block, deadline).is_some()
}

#[cfg(test)]
mod tests {
    //! The readiness re-check of a select's later arms at registration (`register_send` and
    //! `register_recv` in channel.rs, `first == false`). An arm's channel can become ready
    //! after the poll found it idle and before the arm is registered; without the re-check
    //! the select queues that arm and parks beside a ready channel, a missed wake-up. The
    //! window lies between two lock acquisitions of the selecting thread itself, so a race
    //! test reaches it only by luck; here a hook runs in it, deterministically: after the
    //! first arm is queued, before the next one registers, it makes the next arm's channel
    //! ready in exactly one way (one clause of the re-check each). A correct select sees the
    //! arm ready, aborts its round and completes that arm in the next poll, without waiting;
    //! one that misses it parks until its timeout.

    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use super::{select, ArmRef, Otherwise, RecvArm, SendArm};
    use crate::chan::{bounded, Receiver, RecvError, SendError, Sender};

    type Hook = Box<dyn FnOnce(usize)>;
    type Shared<T> = Rc<RefCell<T>>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Called by `run` before registering arm `i`, any arm but the first of a round.
    pub(super) fn before_later_arm(i: usize) {
        if let Some(f) = HOOK.with(|h| h.borrow_mut().take()) {
            f(i);
        }
    }

    /// Long enough that a select that missed the change is plainly waiting; a correct one
    /// never waits at all.
    const PATIENCE: Duration = Duration::from_secs(2);

    /// Runs a two-arm select over `a` and `b` (timing out after `PATIENCE`) with `hook`
    /// installed for its first round; returns the arm the hook was given.
    fn race<'a>(hook: impl FnOnce(usize) + 'static, a: ArmRef<'a>, b: ArmRef<'a>) -> usize {
        let seen = Rc::new(Cell::new(usize::MAX));
        let s = seen.clone();
        HOOK.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |i| {
                s.set(i);
                hook(i)
            }))
        });
        let mut arms = [a, b];
        select(&mut arms, Otherwise::Timeout(PATIENCE));
        HOOK.with(|h| h.borrow_mut().take());
        assert_ne!(seen.get(), usize::MAX, "the select never registered a second arm");
        seen.get()
    }

    /// Ends one of `ends` when the hook says so, keeping the others alive.
    fn dropper<E: 'static>(ends: Vec<E>) -> (Shared<Vec<Option<E>>>, impl FnOnce(usize)) {
        let ends = Rc::new(RefCell::new(ends.into_iter().map(Some).collect::<Vec<_>>()));
        let e = ends.clone();
        (ends, move |j| drop(e.borrow_mut()[j].take()))
    }

    /// Starts a thread that runs `op` on its clone of arm `j`'s channel end and waits until
    /// the thread is blocked there (`blocked`); its handle is left in the returned cell.
    fn blocker<E: Clone + Send + 'static, R: Send + 'static>(
        ends: &[E],
        op: fn(E, usize) -> R,
        blocked: fn(&E) -> bool,
    ) -> (Shared<Option<JoinHandle<R>>>, impl FnOnce(usize)) {
        let handle = Rc::new(RefCell::new(None));
        let (h, ends) = (handle.clone(), ends.to_vec());
        let hook = move |j: usize| {
            let end = ends[j].clone();
            *h.borrow_mut() = Some(thread::spawn(move || op(end, j)));
            while !blocked(&ends[j]) {
                thread::yield_now();
            }
        };
        (handle, hook)
    }

    fn pairs(n: usize, cap: usize) -> (Vec<Sender<usize>>, Vec<Receiver<usize>>) {
        (0..n).map(|_| bounded(cap)).unzip()
    }

    /// The receive arm that was chosen, or `None`.
    fn recv_winner(arms: &[RecvArm<'_, usize>]) -> Option<usize> {
        arms.iter().position(RecvArm::is_selected)
    }

    fn send_winner(arms: &[SendArm<'_, usize>]) -> Option<usize> {
        arms.iter().position(SendArm::is_selected)
    }

    #[test]
    fn a_value_buffered_before_a_later_receive_arm_registers_is_taken() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 1);
            let hook_tx = tx.clone();
            let mut arms = [RecvArm::new(&rx[0]), RecvArm::new(&rx[1])];
            let [a, b] = &mut arms;
            let j = race(move |j| hook_tx[j].try_send(j).unwrap(), a.as_arm(), b.as_arm());
            assert_eq!(recv_winner(&arms), Some(j), "the select parked beside a buffered value");
            assert_eq!(arms[j].take(), Ok(j));
        }
    }

    #[test]
    fn senders_gone_before_a_later_receive_arm_registers_end_it() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 0);
            let (_tx, hook) = dropper(tx);
            let mut arms = [RecvArm::new(&rx[0]), RecvArm::new(&rx[1])];
            let [a, b] = &mut arms;
            let j = race(hook, a.as_arm(), b.as_arm());
            assert_eq!(
                recv_winner(&arms),
                Some(j),
                "the select parked on a channel without senders"
            );
            assert_eq!(arms[j].take(), Err(RecvError));
        }
    }

    #[test]
    fn a_sender_blocked_before_a_later_receive_arm_registers_is_paired() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 0);
            let (sender, hook) =
                blocker(&tx, |tx, j| tx.send(j), |tx| tx.chan.has_blocked_sender());
            let mut arms = [RecvArm::new(&rx[0]), RecvArm::new(&rx[1])];
            let [a, b] = &mut arms;
            let j = race(hook, a.as_arm(), b.as_arm());
            let chosen = recv_winner(&arms);
            let got = chosen.map(|i| arms[i].take());
            drop(arms);
            drop(rx); // frees the sender if the select missed it
            let sent = sender.take().unwrap().join().unwrap();
            assert_eq!(chosen, Some(j), "the select parked beside a blocked sender");
            assert_eq!((got, sent), (Some(Ok(j)), Ok(())));
        }
    }

    #[test]
    fn buffer_space_made_before_a_later_send_arm_registers_is_used() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 1);
            tx.iter().for_each(|t| t.try_send(100).unwrap()); // both full
            let hook_rx = rx.clone();
            let mut arms = [SendArm::new(&tx[0], 0), SendArm::new(&tx[1], 1)];
            let [a, b] = &mut arms;
            let j =
                race(move |j| assert_eq!(hook_rx[j].try_recv(), Ok(100)), a.as_arm(), b.as_arm());
            assert_eq!(send_winner(&arms), Some(j), "the select parked beside buffer space");
            assert_eq!(arms[j].take(), Ok(()));
            assert_eq!(rx[j].try_recv(), Ok(j));
        }
    }

    #[test]
    fn a_receiver_blocked_before_a_later_send_arm_registers_gets_the_value() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 0);
            let (receiver, hook) =
                blocker(&rx, |rx, _| rx.recv(), |rx| rx.chan.has_blocked_receiver());
            let mut arms = [SendArm::new(&tx[0], 0), SendArm::new(&tx[1], 1)];
            let [a, b] = &mut arms;
            let j = race(hook, a.as_arm(), b.as_arm());
            let chosen = send_winner(&arms);
            drop(arms);
            drop(tx); // frees the receiver if the select missed it
            let got = receiver.take().unwrap().join().unwrap();
            assert_eq!(chosen, Some(j), "the select parked beside a blocked receiver");
            assert_eq!(got, Ok(j));
        }
    }

    #[test]
    fn receivers_gone_before_a_later_send_arm_registers_end_it() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 0);
            let (_rx, hook) = dropper(rx);
            let mut arms = [SendArm::new(&tx[0], 0), SendArm::new(&tx[1], 1)];
            let [a, b] = &mut arms;
            let j = race(hook, a.as_arm(), b.as_arm());
            assert_eq!(
                send_winner(&arms),
                Some(j),
                "the select parked on a channel without receivers"
            );
            assert_eq!(arms[j].take(), Err(SendError(j)));
        }
    }

    #[test]
    fn a_close_before_a_later_send_arm_registers_ends_it() {
        for _ in 0..20 {
            let (tx, rx) = pairs(2, 0);
            let hook_tx = tx.clone();
            let mut arms = [SendArm::new(&tx[0], 0), SendArm::new(&tx[1], 1)];
            let [a, b] = &mut arms;
            let j = race(move |j| assert!(hook_tx[j].close()), a.as_arm(), b.as_arm());
            assert_eq!(send_winner(&arms), Some(j), "the select parked on a closed channel");
            assert_eq!(arms[j].take(), Err(SendError(j)));
            drop(rx);
        }
    }
}
