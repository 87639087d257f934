//! Timers: a min-heap per worker, and one process-wide timer thread for callers outside any
//! runtime.
//!
//! A worker checks its heap on every scheduling round, so a timer fires on time even while the
//! worker has other runnable goroutines, and an idle worker sleeps in `epoll_wait` no longer
//! than its earliest timer. Timers are never cancelled in place: an action that may have become
//! stale checks a sequence number of its own when it runs (see `netpoll::poll_desc`).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::goroutine::GRef;
use super::park::ready;
use super::worker;

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Make a sleeping goroutine runnable (the timer holds its run token).
    Wake(GRef),
    /// Run a callback on the worker's stack. It must not block or park.
    Call(Box<dyn FnOnce() + Send>),
}

impl Action {
    fn fire(self) {
        match self {
            Action::Wake(g) => ready(g),
            Action::Call(f) => f(),
        }
    }
}

struct Entry {
    when: Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == CmpOrdering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest timer first; `seq` keeps
    /// timers with equal deadlines in insertion order.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        o.when.cmp(&self.when).then(o.seq.cmp(&self.seq))
    }
}

/// A heap of timers.
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl TimerHeap {
    pub(crate) fn push(&mut self, when: Instant, action: Action) {
        self.seq += 1;
        self.heap.push(Entry { when, seq: self.seq, action });
    }

    /// The earliest deadline, if any.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.when)
    }

    /// Removes and returns one timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Action> {
        if self.heap.peek()?.when <= now {
            self.heap.pop().map(|e| e.action)
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every timer (runtime shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

/// Runs `f` at `when`: on the current worker's heap when called on a worker, otherwise on the
/// process-wide timer thread. `f` must not block.
pub(crate) fn call_at(when: Instant, f: Box<dyn FnOnce() + Send>) {
    if let Err(f) = worker::add_timer(when, f) {
        global().push(when, f);
    }
}

/// The timer thread used outside any runtime.
struct Global {
    heap: Mutex<TimerHeap>,
    cv: Condvar,
}

fn global() -> &'static Global {
    static G: OnceLock<&'static Global> = OnceLock::new();
    G.get_or_init(|| {
        let g: &'static Global =
            Box::leak(Box::new(Global { heap: Mutex::new(TimerHeap::default()), cv: Condvar::new() }));
        std::thread::Builder::new()
            .name("gonet-timer".into())
            .spawn(move || g.run())
            .expect("gonet: cannot start the timer thread");
        g
    })
}

impl Global {
    fn push(&self, when: Instant, f: Box<dyn FnOnce() + Send>) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = h.next().is_none_or(|n| when < n);
        h.push(when, Action::Call(f));
        drop(h);
        if earliest {
            self.cv.notify_one();
        }
    }

    fn run(&self) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            if let Some(a) = h.pop_due(now) {
                drop(h);
                a.fire();
                h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            h = match h.next() {
                Some(n) => self.cv.wait_timeout(h, n - now).unwrap_or_else(|e| e.into_inner()).0,
                None => self.cv.wait(h).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}
