//! The read trigger: the per-connection handshake between the worker's poller, which sees a
//! connection's readiness events, and the handler goroutine, which reads the socket into the
//! input buffer and waits in `next(n)` when it has too few bytes (netpoll's
//! `waitReadSize`/`triggerRead`, and its "when to run `OnRequest`" decision).
//!
//! # States
//!
//! ```text
//!   NEW      registered, never run: the first event of any kind (the registration reports
//!            writability at once) queues it, so `on_connect` runs without waiting for input
//!   IDLE     no goroutine; the next readiness event queues the connection
//!   QUEUED   in its worker's ready queue (sched.rs); a handler goroutine will take it
//!   RUNNING  a handler goroutine owns it and is not parked on it
//!   WAITING  the handler goroutine is parked until readiness; `waiter` holds its run token
//!   CLOSED   finalized; events and timers are ignored
//! ```
//!
//! Transitions: poller event `IDLE → QUEUED` (queue it), `QUEUED | RUNNING → same` with
//! `pending` set, `WAITING → RUNNING` (wake the waiter); handler `QUEUED → RUNNING` (taken
//! from the queue), `RUNNING → QUEUED` (its turn is up, it queues itself again),
//! `RUNNING → WAITING` (park, only if nothing is `pending`),
//! `RUNNING → IDLE` (done, only if nothing is `pending`); timer `WAITING → RUNNING` (wake with
//! `timed_out`).
//!
//! # Invariants
//!
//! 1. One thread. Every field here is touched only on the connection's owner worker: by the
//!    poller (`on_event`, on the worker's stack), by the handler goroutine (pinned to that
//!    worker, sched.rs) and by timer callbacks (on that worker's heap). A goroutine runs only
//!    while the poller does not, so a check and the park that follows it are atomic with
//!    respect to events: plain `Cell`s, no atomics, no lock. Other threads reach a connection
//!    only through its `closing` flag and `shutdown(2)`, whose epoll event arrives here.
//! 2. No lost readiness. The socket is registered edge-triggered. The handler marks the
//!    socket `drained` after a read that returned less than it asked (the receive queue was
//!    emptied); bytes that arrive later raise an edge, which reaches `on_event` and sets
//!    `pending` or wakes the waiter. The handler parks or goes idle only when it is drained
//!    and nothing is `pending`, and clears `drained` whenever it consumes `pending` or a wake.
//! 3. Exactly one wake. The waiter's token is taken out of its cell by whoever wakes it (an
//!    event, the read/write timer of the same `seq`, a close event), so it is woken once; a
//!    timer of an earlier wait sees another `seq` and does nothing.
//! 4. One handler per connection: only `IDLE → QUEUED` queues, and only the goroutine that
//!    took it from the queue moves it out of `RUNNING`/`WAITING`.
//!
//! 5. Close from anywhere. Another thread closes a connection by setting its [`CloseFlag`]
//!    and then shutting the socket down; the shutdown raises an edge that reaches `on_event`
//!    on the owner. So whatever the owner checked before the flag was set, the edge comes
//!    after it and wakes, queues or re-runs the handler, which then sees the flag.
//!
//! All interleavings of events, timers and handler steps on the owner are checked
//! exhaustively by the tests at the bottom of this file, which drive this code (on one
//! thread there are no memory orderings to explore). The cross-thread close (invariant 5) is
//! model-checked with loom (`loom_close` below, `RUSTFLAGS="--cfg loom" cargo test -p gonet
//! --lib --release reactor::trigger::`): the real `CloseFlag` and `Trigger` against a closer
//! on another thread, in every interleaving of its flag store and edge with the owner's steps.

use std::cell::Cell;

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};

/// A connection's closing flag: the one piece of its state other threads write (invariant 5).
pub(crate) struct CloseFlag(AtomicBool);

impl CloseFlag {
    pub(crate) fn new() -> CloseFlag {
        CloseFlag(AtomicBool::new(false))
    }

    /// Marks the connection closing; true for the first caller, who must then shut the socket
    /// down (raising the edge of invariant 5).
    pub(crate) fn close(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }

    /// Whether it is closing.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks it closing on the owner thread (finalize, idle timeout): no edge is needed there.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    New,
    Idle,
    Queued,
    Running,
    Waiting,
    Closed,
}

/// Which way a parked handler waits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Want {
    Read,
    Write,
}

/// What the poller must do after an event.
pub(crate) struct Fired<W> {
    /// Put the connection on the worker's ready queue.
    pub(crate) queue: bool,
    /// Wake this waiter.
    pub(crate) wake: Option<W>,
}

/// The per-connection trigger (see the top of this file). `W` is a parked handler's run
/// token (a `GRef` in the reactor, a test token in the model check).
pub(crate) struct Trigger<W> {
    state: Cell<State>,
    pending: Cell<bool>,
    drained: Cell<bool>,
    want: Cell<Want>,
    waiter: Cell<Option<W>>,
    seq: Cell<u64>,
    timed_out: Cell<bool>,
}

impl<W> Trigger<W> {
    /// A trigger for a connection being registered (`NEW`).
    pub(crate) fn new() -> Trigger<W> {
        Trigger {
            state: Cell::new(State::New),
            pending: Cell::new(false),
            drained: Cell::new(false),
            want: Cell::new(Want::Read),
            waiter: Cell::new(None),
            seq: Cell::new(0),
            timed_out: Cell::new(false),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// Poller: an epoll event for the connection.
    pub(crate) fn on_event(&self, readable: bool, writable: bool) -> Fired<W> {
        let mut f = Fired { queue: false, wake: None };
        match self.state.get() {
            State::New => {
                self.state.set(State::Queued);
                f.queue = true;
            }
            State::Idle if readable => {
                self.state.set(State::Queued);
                f.queue = true;
            }
            State::Queued | State::Running if readable => self.pending.set(true),
            State::Waiting => {
                let hit = match self.want.get() {
                    Want::Read => readable,
                    Want::Write => writable,
                };
                if readable {
                    self.pending.set(true);
                }
                if hit {
                    self.state.set(State::Running);
                    f.wake = self.waiter.take();
                }
            }
            _ => {}
        }
        f
    }

    /// Handler: took the connection from the ready queue. Its socket may hold data.
    pub(crate) fn start(&self) {
        debug_assert_eq!(self.state.get(), State::Queued);
        self.state.set(State::Running);
        self.pending.set(false);
        self.drained.set(false);
    }

    /// Handler: a read returned less than asked (or `EAGAIN`): the receive queue is empty.
    pub(crate) fn set_drained(&self) {
        self.drained.set(true);
    }

    /// Handler: whether a read may find data — not drained, or an event came since. Consumes
    /// the pending event.
    pub(crate) fn may_read(&self) -> bool {
        if self.pending.replace(false) {
            self.drained.set(false);
        }
        !self.drained.get()
    }

    /// Handler, about to park: the commit that publishes its token (invariant 1: no event can
    /// come between the handler's last check and this). Returns the wait's `seq` for timers.
    pub(crate) fn park(&self, want: Want, w: W) -> u64 {
        debug_assert_eq!(self.state.get(), State::Running);
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        self.want.set(want);
        self.timed_out.set(false);
        self.waiter.set(Some(w));
        self.state.set(State::Waiting);
        seq
    }

    /// The seq the next `park` will return (to arm its timer before parking).
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.get() + 1
    }

    /// Handler, woken: whether its timer woke it (else readiness or close did). A read wake
    /// means the socket may hold data again.
    pub(crate) fn woken(&self) -> bool {
        if self.want.get() == Want::Read {
            self.drained.set(false);
            self.pending.set(false);
        }
        self.timed_out.replace(false)
    }

    /// Timer of wait `seq`: the waiter to wake, if that wait is still on.
    pub(crate) fn timeout(&self, seq: u64) -> Option<W> {
        if self.state.get() != State::Waiting || self.seq.get() != seq {
            return None;
        }
        self.state.set(State::Running);
        self.timed_out.set(true);
        self.waiter.take()
    }

    /// Handler, done with the input: goes idle unless an event is pending (then the caller
    /// reads again) or the socket was not drained (more may be queued in the kernel).
    pub(crate) fn try_idle(&self) -> bool {
        debug_assert_eq!(self.state.get(), State::Running);
        if self.may_read() {
            return false;
        }
        self.state.set(State::Idle);
        true
    }

    /// Handler: it has used its turn with input still coming; back to the ready queue so
    /// the other connections of the worker get theirs (the caller queues it).
    pub(crate) fn requeue(&self) {
        debug_assert_eq!(self.state.get(), State::Running);
        self.state.set(State::Queued);
    }

    /// Idle-timeout or close on the owner thread while idle: queue it so that a handler
    /// goroutine finalizes it. Returns whether the caller must queue it.
    pub(crate) fn kick_idle(&self) -> bool {
        if matches!(self.state.get(), State::Idle | State::New) {
            self.state.set(State::Queued);
            return true;
        }
        false
    }

    /// Owner thread, not the handler: output was queued for a handler parked waiting to read.
    /// Wakes it (`WAITING → RUNNING`) so that it sends before it parks again; it re-checks
    /// its input as after any wake, so a wake with nothing to read costs one `read`.
    pub(crate) fn poke(&self) -> Option<W> {
        if self.state.get() == State::Waiting && self.want.get() == Want::Read {
            self.state.set(State::Running);
            return self.waiter.take();
        }
        None
    }

    /// Finalized: nothing reaches the connection any more.
    pub(crate) fn close(&self) {
        self.state.set(State::Closed);
        self.waiter.set(None);
    }
}

#[cfg(test)]
mod tests {
    //! Exhaustive model check: every interleaving, up to a depth, of poller events (data
    //! arriving in the kernel), timer firings and the handler's steps, against a model of the
    //! socket's receive queue. Checked: no data is left unread while the connection is idle
    //! or its handler parked (invariant 2), a waiter is woken at most once (3), and only one
    //! handler holds the connection (4).
    use super::*;

    /// Abstract world: `kernel` bytes in the receive queue, an `edge` owed by epoll, and the
    /// handler's program counter.
    #[derive(Clone, Copy, Debug)]
    struct World {
        kernel: u8,
        edge: bool,
        arrivals: u8,
        pc: Pc,
        wakes: u8,
        queued: u8,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Pc {
        NoHandler,
        Running,
        Parked,
    }

    fn snapshot(t: &Trigger<u32>) -> (State, bool, bool, Want, bool, u64, bool) {
        let w = t.waiter.take();
        let has = w.is_some();
        t.waiter.set(w);
        (
            t.state.get(),
            t.pending.get(),
            t.drained.get(),
            t.want.get(),
            has,
            t.seq.get(),
            t.timed_out.get(),
        )
    }

    fn restore(t: &Trigger<u32>, s: (State, bool, bool, Want, bool, u64, bool)) {
        t.state.set(s.0);
        t.pending.set(s.1);
        t.drained.set(s.2);
        t.want.set(s.3);
        t.waiter.set(if s.4 { Some(1) } else { None });
        t.seq.set(s.5);
        t.timed_out.set(s.6);
    }

    /// Handler step: what the real handler loop does (conn.rs `process` and `wait_readable`)
    /// in one scheduling slice: read if it may, then either loop, park or go idle.
    fn handler_step(t: &Trigger<u32>, w: &mut World) {
        match w.pc {
            Pc::NoHandler => {
                if t.state() == State::Queued {
                    w.queued -= 1;
                    t.start();
                    w.pc = Pc::Running;
                }
            }
            Pc::Running => {
                // read(2): takes everything; a short read drains the queue. Otherwise it
                // waits for more (park) or finishes (idle): `explore` tries both.
                if t.may_read() {
                    w.kernel = 0;
                    t.set_drained();
                }
            }
            Pc::Parked => {}
        }
    }

    fn explore(t: &Trigger<u32>, w: World, depth: u32) {
        // Invariant 2: parked or idle with bytes in the kernel only if an edge is owed.
        if (w.pc == Pc::Parked || t.state() == State::Idle) && w.kernel > 0 {
            assert!(w.edge, "bytes in the kernel, no edge owed, nobody will read: {w:?}");
        }
        assert!(w.wakes <= 1, "woken twice: {w:?}");
        assert!(w.queued <= 1, "queued twice: {w:?}");
        if depth == 0 {
            return;
        }
        let saved = snapshot(t);
        // 1. Data arrives: the kernel queues it and owes an edge.
        if w.arrivals < 2 {
            let mut w2 = w;
            w2.kernel += 1;
            w2.edge = true;
            w2.arrivals += 1;
            explore(t, w2, depth - 1);
            restore(t, saved);
        }
        // 2. The poller delivers the owed edge. It runs while the handler is parked: on the
        //    reactor (`Parked`) or on anything else — a lock, a sleep — with the connection
        //    still `RUNNING` (`Running`).
        if w.edge {
            let mut w2 = w;
            w2.edge = false;
            let f = t.on_event(true, true);
            if f.queue {
                assert_eq!(w.pc, Pc::NoHandler, "queued while a handler holds it: {w:?}");
                w2.queued += 1;
            }
            if f.wake.is_some() {
                w2.wakes += 1;
                w2.pc = Pc::Running;
                assert!(!t.woken());
                w2.wakes -= 1;
            }
            explore(t, w2, depth - 1);
            restore(t, saved);
        }
        // 3. A read timer fires while parked.
        if w.pc == Pc::Parked {
            let mut w2 = w;
            if t.timeout(t.seq.get()).is_some() {
                w2.pc = Pc::Running;
                assert!(t.woken());
            }
            assert!(t.timeout(t.seq.get()).is_none(), "second wake of one wait");
            explore(t, w2, depth - 1);
            restore(t, saved);
        }
        // 4. The handler runs one step: a read when it may read; else it parks for input
        //    (`wait_len`: only when nothing may be read).
        if w.pc != Pc::Parked {
            let mut w2 = w;
            handler_step(t, &mut w2);
            explore(t, w2, depth - 1);
            restore(t, saved);
            if w.pc == Pc::Running && !t.may_read() {
                restore(t, saved);
                let mut w3 = w;
                t.park(Want::Read, 1);
                w3.pc = Pc::Parked;
                explore(t, w3, depth - 1);
            }
            restore(t, saved);
        }
        // 5. The handler returns at any point (it may have parked elsewhere meanwhile): the
        //    connection goes idle unless something is pending (then it reads again).
        if w.pc == Pc::Running {
            let mut w4 = w;
            if t.try_idle() {
                w4.pc = Pc::NoHandler;
            }
            explore(t, w4, depth - 1);
            restore(t, saved);
        }
    }

    #[test]
    fn trigger_all_interleavings() {
        let t: Trigger<u32> = Trigger::new();
        let w =
            World { kernel: 0, edge: false, arrivals: 0, pc: Pc::NoHandler, wakes: 0, queued: 0 };
        explore(&t, w, 12);
    }

    #[test]
    fn stale_timer_is_ignored() {
        let t: Trigger<u32> = Trigger::new();
        assert!(t.on_event(true, false).queue);
        t.start();
        let s1 = t.park(Want::Read, 7);
        assert_eq!(t.on_event(true, false).wake, Some(7));
        assert!(!t.woken());
        let _s2 = t.park(Want::Read, 8);
        assert_eq!(t.timeout(s1), None, "the first wait's timer must not wake the second");
        assert_eq!(t.timeout(s1 + 1), Some(8));
    }

    #[test]
    fn write_wait_ignores_read_only_event() {
        let t: Trigger<u32> = Trigger::new();
        t.on_event(true, false);
        t.start();
        t.park(Want::Write, 3);
        assert!(t.on_event(true, false).wake.is_none());
        assert_eq!(t.on_event(false, true).wake, Some(3));
    }
}

#[cfg(all(test, loom))]
mod loom_close {
    //! Invariant 5 under loom: a closer on another thread sets the real `CloseFlag` and then
    //! raises the socket's edge (its `shutdown(2)`), while the owner runs the handler's steps
    //! and its poller on the real `Trigger`. In every interleaving the owner finalizes the
    //! connection: no close is lost whether it lands before the handler's check, between the
    //! check and the park (or going idle), or after.
    use super::*;
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// What the handler does with its turn when it does not see the flag.
    #[derive(Clone, Copy)]
    enum Then {
        /// Waits for input (`next(n)` with too few bytes).
        Park,
        /// Has consumed everything and goes idle.
        Idle,
    }

    fn close_reaches_the_owner(then: Then) {
        loom::model(move || {
            let flag = Arc::new(CloseFlag::new());
            // An edge the kernel owes the socket, and the owner's epoll_wait sleeping for it.
            let kernel = Arc::new((Mutex::new(false), Condvar::new()));
            let closer = {
                let (flag, kernel) = (flag.clone(), kernel.clone());
                thread::spawn(move || {
                    if flag.close() {
                        // shutdown(2): the kernel owes the socket an edge, and epoll_wait returns.
                        let (pending, cv) = &*kernel;
                        *pending.lock().unwrap() = true;
                        cv.notify_one();
                    }
                })
            };
            let t: Trigger<u32> = Trigger::new();
            assert!(t.on_event(false, true).queue); // the registration's first event
            t.start();
            // Whether the handler goroutine holds the connection and is runnable: it stops
            // when it parks or goes idle, and runs again only if the poller wakes or queues it.
            let mut runnable = true;
            loop {
                // The handler's turn (conn.rs checks `closing` before it reads or waits).
                if runnable {
                    assert_eq!(t.state(), State::Running);
                    if flag.is_set() {
                        t.close(); // finalize
                        break;
                    }
                    match then {
                        Then::Park => {
                            t.park(Want::Read, 7);
                        }
                        Then::Idle => {
                            t.set_drained();
                            assert!(t.try_idle());
                        }
                    }
                    runnable = false;
                }
                // The poller: epoll_wait until the kernel has an edge for the socket.
                {
                    let (pending, cv) = &*kernel;
                    let mut e = pending.lock().unwrap();
                    while !*e {
                        e = cv.wait(e).unwrap();
                    }
                    *e = false;
                }
                let f = t.on_event(true, false); // EPOLLHUP reads as readable
                if f.wake.is_some() {
                    assert!(!t.woken(), "a close is not a timeout");
                    runnable = true;
                }
                if f.queue {
                    t.start();
                    runnable = true;
                }
            }
            closer.join().unwrap();
            assert_eq!(t.state(), State::Closed);
        });
    }

    #[test]
    fn close_while_the_handler_waits_for_input() {
        close_reaches_the_owner(Then::Park);
    }

    #[test]
    fn close_while_the_connection_goes_idle() {
        close_reaches_the_owner(Then::Idle);
    }
}
