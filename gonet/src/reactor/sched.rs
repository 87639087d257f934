//! Handler goroutines: each worker's ready queue of connections and its pool of parked
//! handler goroutines ("runners"), all thread-local to the worker.
//!
//! A connection whose trigger goes `IDLE → QUEUED` (trigger.rs) is pushed on its worker's
//! ready queue. One runner at a time, the *drainer*, takes connections off the queue and runs
//! their handlers one after another on its own stack, so a batch of requests costs no context
//! switch per request. If the drainer parks (its handler waits for input, for writability, or
//! on anything else: a channel, a lock, a sleep), the worker's park hook (`parked`, called by
//! `worker.rs` after every park) takes the drainer role from it and gives it to an idle runner
//! if the queue is not empty; the parked runner finishes its connection when it is woken and
//! then returns to the pool. A finished runner waits in the pool for the next batch instead of
//! exiting, and is started on the worker's own run queue (`go_local`), so it never runs on
//! another thread (trigger.rs invariant 1).
//!
//! Invariant: the ready queue is non-empty only while a drainer exists (runnable or running).
//! Every push calls `ensure_drainer`; a drainer leaves the role only with an empty queue or in
//! the park hook, which hands the role on when the queue is not empty.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;

use super::conn::{process, ConnInner};
use crate::runtime::goroutine::{GRef, G};
use crate::runtime::park::{park_g, ready};

struct Sched {
    queue: RefCell<VecDeque<Arc<ConnInner>>>,
    idle: RefCell<Vec<GRef>>,
    drainer: Cell<*const G>,
    /// Runners ever started on this worker (statistics and tests).
    runners: Cell<usize>,
}

thread_local! {
    static SCHED: Sched = const {
        Sched {
            queue: RefCell::new(VecDeque::new()),
            idle: RefCell::new(Vec::new()),
            drainer: Cell::new(std::ptr::null()),
            runners: Cell::new(0),
        }
    };
}

/// Queues a connection on the current worker (its owner) and makes sure a runner drains it.
pub(crate) fn enqueue(c: Arc<ConnInner>) {
    SCHED.with(|s| {
        s.queue.borrow_mut().push_back(c);
        ensure_drainer(s);
    });
}

fn ensure_drainer(s: &Sched) {
    if !s.drainer.get().is_null() {
        return;
    }
    let g = s.idle.borrow_mut().pop();
    match g {
        Some(g) => {
            s.drainer.set(Arc::as_ptr(&g));
            ready(g);
        }
        None => match crate::runtime::go_local("reactor handler", runner) {
            Ok(p) => {
                s.runners.set(s.runners.get() + 1);
                s.drainer.set(p);
            }
            Err(e) => {
                // No stack for a new runner: the queue waits for a busy runner to come back
                // (each one drains the queue before returning to the pool).
                super::conn::report(&format!(
                    "gonet reactor: cannot start a handler goroutine: {e}"
                ));
            }
        },
    }
}

/// The worker's park hook: the goroutine at `g` just parked.
#[inline]
pub(crate) fn parked(g: *const G) {
    // `try_with`: a worker unwinding its goroutines at thread exit may park after the
    // thread-local is gone; there is nothing to hand over then.
    let _ = SCHED.try_with(|s| {
        if s.drainer.get() == g {
            s.drainer.set(std::ptr::null());
            if !s.queue.borrow().is_empty() {
                ensure_drainer(s);
            }
        }
    });
}

/// A runner: drains the queue while it is the drainer, then waits in the pool.
fn runner() {
    let me = crate::runtime::worker::current_g_ptr();
    loop {
        loop {
            let next = SCHED.with(|s| {
                if s.drainer.get() != me {
                    return None;
                }
                let c = s.queue.borrow_mut().pop_front();
                if c.is_none() {
                    s.drainer.set(std::ptr::null());
                }
                c
            });
            match next {
                Some(c) => {
                    if process(&c) {
                        // A streaming connection went to the back of the queue: let the
                        // worker fire timers and poll before its next turn.
                        crate::runtime::worker::poll_soon();
                        crate::runtime::yield_now();
                    }
                }
                None => break,
            }
        }
        park_g(|g| {
            SCHED.with(|s| s.idle.borrow_mut().push(g));
            Ok(())
        });
    }
}

/// Number of handler goroutines started on the current worker.
#[allow(dead_code)]
pub(crate) fn runners() -> usize {
    SCHED.with(|s| s.runners.get())
}
