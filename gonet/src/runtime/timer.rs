//! Timers: a min-heap per worker, and one process-wide timer thread for callers outside any
//! runtime.
//!
//! A worker checks its heap on every scheduling round, so a timer fires on time even while the
//! worker has other runnable goroutines, and an idle worker sleeps in `epoll_wait` no longer
//! than its earliest timer.
//!
//! Cancellation is lazy: [`call_at_cancellable`] returns a [`Cancel`] handle that marks its entry
//! dead; dead entries are dropped when they reach the top of the heap, and the whole heap is
//! swept whenever it has doubled in size since the last sweep, so a loop of operations with
//! long timeouts that complete early keeps the heap bounded (amortised O(1) per timer). Other
//! actions that may become stale check a sequence number of their own when they run (see
//! `netpoll::poll_desc`).
//!
//! Re-armed targets: an owner that arms and cancels one timeout over and over (`time::Delay`:
//! hyper arms its header-read timeout at every request) pushes [`Action::Target`] entries
//! that share one [`Target`] and carry the arm's generation, instead of a boxed callback and
//! a cancel flag per arm. An entry is dead once the target's live generation has moved on (a
//! re-arm or a cancel), and the target checks the generation again when it fires.
//!
//! Far timers: a timer due more than [`HORIZON`] after its push goes to an unsorted list, not
//! the heap — an O(1) push. Such timers are mostly timeouts cancelled long before they are due
//! (hyper's 30 s header-read timeout, armed and cancelled at every request of a keep-alive
//! connection): in the list they cost neither the heap's O(log n) push nor the pop of their
//! dead entry. The list is swept, as the heap, when it has doubled, and its entries move into
//! the heap once due within `HORIZON`: [`TimerHeap::next`] reports `far_min - HORIZON` (the
//! earliest far deadline, less the horizon) as a deadline, so an idle worker wakes for the
//! move, and [`TimerHeap::pop_due`] moves them when that instant has passed. Invariant: every
//! live far timer is due after `far_min`, so each is in the heap at least `HORIZON` before
//! it is due.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::goroutine::GRef;
use super::park::ready;
use super::worker;

/// What a timer does when it fires.
pub(crate) enum Action {
    /// Make a sleeping goroutine runnable (the timer holds its run token).
    Wake(GRef),
    /// Run a callback on the worker's stack. It must not block or park.
    Call(Box<dyn FnOnce() + Send>),
    /// Fire arm number `.1` of a re-armed target (see the top of this file).
    Target(Arc<dyn Target>, u64),
}

impl Action {
    pub(crate) fn fire(self) {
        match self {
            Action::Wake(g) => ready(g),
            Action::Call(f) => f(),
            Action::Target(t, gen) => t.fire(gen),
        }
    }
}

/// What a re-armed timer fires (see the top of this file). Generations are the owner's;
/// `fire` may race a re-arm or a cancel on another thread and must check `gen` itself.
pub(crate) trait Target: Send + Sync {
    /// Whether arm `gen` is still live (else its entry is dead and is dropped unfired).
    fn armed(&self, gen: u64) -> bool;
    /// Arm `gen` is due. Runs on the worker's stack: it must not block or park.
    fn fire(&self, gen: u64);
}

struct Entry {
    when: Instant,
    seq: u64,
    action: Action,
    /// Set when the timer was cancelled.
    dead: Option<Arc<AtomicBool>>,
}

impl Entry {
    fn is_dead(&self) -> bool {
        if let Action::Target(t, gen) = &self.action {
            return !t.armed(*gen);
        }
        self.dead.as_ref().is_some_and(|d| d.load(Ordering::Relaxed))
    }
}

/// Cancels a timer made by [`call_at_cancellable`] (it then never runs).
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
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

/// Heap size below which no sweep happens.
const SWEEP_MIN: usize = 1024;

/// Timers due further than this after their push wait in the far list (see the top of this
/// file).
const HORIZON: Duration = Duration::from_secs(1);

/// A heap of timers, and the list of far ones.
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Entry>,
    /// Far timers, unsorted; `far_min` is the earliest deadline among them (maybe a dead one).
    far: Vec<Entry>,
    far_min: Option<Instant>,
    seq: u64,
    /// Sweep dead entries when the heap (the far list) reaches this size.
    sweep_at: usize,
    far_sweep_at: usize,
    /// Sweeps so far (the amortisation is checked by the tests below).
    #[cfg(test)]
    sweeps: u64,
}

impl Default for TimerHeap {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            far: Vec::new(),
            far_min: None,
            seq: 0,
            sweep_at: SWEEP_MIN,
            far_sweep_at: SWEEP_MIN,
            #[cfg(test)]
            sweeps: 0,
        }
    }
}

impl TimerHeap {
    pub(crate) fn push(&mut self, when: Instant, action: Action) {
        self.push_entry(when, action, None);
    }

    fn push_entry(&mut self, when: Instant, action: Action, dead: Option<Arc<AtomicBool>>) {
        self.push_seen(Instant::now(), when, action, dead);
    }

    /// [`push_entry`](Self::push_entry) for a caller that has just read the clock (`now`).
    fn push_seen(
        &mut self,
        now: Instant,
        when: Instant,
        action: Action,
        dead: Option<Arc<AtomicBool>>,
    ) {
        self.seq += 1;
        let e = Entry { when, seq: self.seq, action, dead };
        if when > now + HORIZON {
            self.far_min = Some(self.far_min.map_or(when, |m| m.min(when)));
            self.far.push(e);
            if self.far.len() >= self.far_sweep_at {
                self.far.retain(|e| !e.is_dead());
                self.far_sweep_at = (self.far.len() * 2).max(SWEEP_MIN);
                self.far_min = self.far.iter().map(|e| e.when).min();
                #[cfg(test)]
                {
                    self.sweeps += 1;
                }
            }
            return;
        }
        self.heap.push(e);
        if self.heap.len() >= self.sweep_at {
            self.heap.retain(|e| !e.is_dead());
            self.sweep_at = (self.heap.len() * 2).max(SWEEP_MIN);
            #[cfg(test)]
            {
                self.sweeps += 1;
            }
        }
    }

    /// The earliest deadline of a live timer in the heap (dead ones on top are dropped), or
    /// the instant the far timers must move into the heap, whichever comes first.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        while self.heap.peek().is_some_and(Entry::is_dead) {
            self.heap.pop();
        }
        let near = self.heap.peek().map(|e| e.when);
        let far = self.far_min.map(|m| m - HORIZON);
        match (near, far) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves the far timers due within `HORIZON` of `now` into the heap, dropping dead ones.
    fn move_far(&mut self, now: Instant) {
        let until = now + HORIZON;
        let mut min = None;
        for e in std::mem::take(&mut self.far) {
            if e.is_dead() {
                continue;
            }
            if e.when <= until {
                self.heap.push(e);
            } else {
                min = Some(min.map_or(e.when, |m: Instant| m.min(e.when)));
                self.far.push(e);
            }
        }
        self.far_min = min;
        self.far_sweep_at = (self.far.len() * 2).max(SWEEP_MIN);
    }

    /// Moves the far timers into the heap if the earliest is due within `HORIZON` of `now`
    /// (then [`next`](Self::next) reports a time after `now`).
    pub(crate) fn move_far_due(&mut self, now: Instant) {
        if self.far_min.is_some_and(|m| m <= now + HORIZON) {
            self.move_far(now);
        }
    }

    /// Removes and returns one live timer due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Action> {
        self.move_far_due(now);
        loop {
            if self.heap.peek()?.when > now {
                return None;
            }
            let e = self.heap.pop()?;
            if !e.is_dead() {
                return Some(e.action);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.far.len()
    }

    /// Timers in the heap (not far).
    pub(crate) fn near_len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every timer (runtime shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.far.clear();
        self.far_min = None;
    }
}

/// Runs `f` at `when`: on the current worker's heap when called on a worker, otherwise on the
/// process-wide timer thread. `f` must not block.
pub(crate) fn call_at(when: Instant, f: Box<dyn FnOnce() + Send>) {
    schedule(when, f, None);
}

/// Like [`call_at`], with a handle that cancels the timer.
pub(crate) fn call_at_cancellable(when: Instant, f: Box<dyn FnOnce() + Send>) -> Cancel {
    let dead = Arc::new(AtomicBool::new(false));
    schedule(when, f, Some(dead.clone()));
    Cancel(dead)
}

fn schedule(when: Instant, f: Box<dyn FnOnce() + Send>, dead: Option<Arc<AtomicBool>>) {
    push(Instant::now(), when, Action::Call(f), dead);
}

/// Arms generation `gen` of `target` for `when`, on the current worker's heap (else the
/// timer thread's); `now` is the caller's fresh clock reading. No allocation: the entry holds
/// the target's `Arc`.
pub(crate) fn arm(target: Arc<dyn Target>, gen: u64, when: Instant, now: Instant) {
    push(now, when, Action::Target(target, gen), None);
}

fn push(now: Instant, when: Instant, action: Action, dead: Option<Arc<AtomicBool>>) {
    match worker::timers() {
        Some(h) => h.borrow_mut().push_seen(now, when, action, dead),
        None => global().push(now, when, action, dead),
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
        let g: &'static Global = Box::leak(Box::new(Global {
            heap: Mutex::new(TimerHeap::default()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("gonet-timer".into())
            .spawn(move || g.run())
            .expect("gonet: cannot start the timer thread");
        g
    })
}

impl Global {
    fn push(&self, now: Instant, when: Instant, action: Action, dead: Option<Arc<AtomicBool>>) {
        let mut h = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = h.next().is_none_or(|n| when < n);
        h.push_seen(now, when, action, dead);
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
                super::contain::catch(0, "running a timer callback", || a.fire());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An action that counts its drops in `drops`.
    fn counted(drops: &Arc<std::sync::atomic::AtomicUsize>) -> Action {
        struct OnDrop(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let d = OnDrop(drops.clone());
        Action::Call(Box::new(move || drop(d)))
    }

    /// The heap sweeps only when it has doubled since the last sweep: 100k live timers cost
    /// a handful of sweeps (1024, 2048, ... 65536), not one per push.
    #[test]
    fn sweeps_are_amortised() {
        let mut h = TimerHeap::default();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            h.push_entry(far, Action::Call(Box::new(|| {})), Some(Arc::default()));
        }
        assert_eq!(h.len(), 100_000);
        assert!((6..=8).contains(&h.sweeps), "{} sweeps for 100k live timers", h.sweeps);
    }

    /// Cancelled timers that never reach the top are still dropped by the sweeps, so a loop
    /// of long timeouts cancelled early keeps the heap bounded.
    #[test]
    fn cancelled_timers_are_swept() {
        let mut h = TimerHeap::default();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let dead = Arc::new(AtomicBool::new(false));
            h.push_entry(far, Action::Call(Box::new(|| {})), Some(dead.clone()));
            Cancel(dead).cancel();
        }
        assert!(h.len() <= SWEEP_MIN, "{} entries left of 100k cancelled timers", h.len());
    }

    /// A far timer (beyond the horizon) is reported by `next` early enough to move it into
    /// the heap, and fires when due, in deadline order with near ones; a cancelled far timer
    /// never fires.
    #[test]
    fn far_timers_move_into_the_heap_and_fire_when_due() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut h = TimerHeap::default();
        let now = Instant::now();
        let (far, later) = (now + Duration::from_secs(5), now + Duration::from_secs(9));
        h.push(later, Action::Call(Box::new(|| {})));
        h.push(far, counted(&drops));
        let dead = Arc::new(AtomicBool::new(false));
        h.push_entry(far, Action::Call(Box::new(|| panic!("cancelled"))), Some(dead.clone()));
        Cancel(dead).cancel();
        assert_eq!(h.far.len(), 3, "beyond the horizon: in the far list");
        assert!(h.next().is_some_and(|n| n <= far - HORIZON), "next must wake for the move");
        assert!(h.pop_due(now).is_none());
        assert!(h.pop_due(far - Duration::from_millis(1)).is_none(), "not due yet");
        assert_eq!(h.far.len(), 1, "the due-soon timers moved, the dead one dropped");
        match h.pop_due(far) {
            Some(a) => a.fire(),
            None => panic!("a far timer did not fire when due"),
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert!(h.pop_due(far).is_none(), "the cancelled one must not fire");
        assert!(h.pop_due(later).is_some());
        assert_eq!(h.len(), 0);
    }

    /// A re-armed target: only its live generation fires; the entries its re-arms and its
    /// cancel left dead are dropped unfired, and swept like cancelled callbacks, so a
    /// timeout re-armed at every request keeps the heap bounded.
    #[test]
    fn only_a_targets_live_generation_fires() {
        #[derive(Default)]
        struct Counting {
            live: std::sync::atomic::AtomicU64,
            fired: Mutex<Vec<u64>>,
        }
        impl Target for Counting {
            fn armed(&self, gen: u64) -> bool {
                self.live.load(Ordering::Relaxed) == gen
            }
            fn fire(&self, gen: u64) {
                self.fired.lock().unwrap().push(gen);
            }
        }
        let t = Arc::new(Counting::default());
        let mut h = TimerHeap::default();
        let now = Instant::now();
        let at = |ms| now + Duration::from_millis(ms);
        for gen in 1..=3 {
            t.live.store(gen, Ordering::Relaxed);
            h.push_seen(now, at(10 * gen), Action::Target(t.clone(), gen), None);
        }
        while let Some(a) = h.pop_due(at(100)) {
            a.fire();
        }
        assert_eq!(*t.fired.lock().unwrap(), [3], "only the last arm fires");
        t.live.store(4, Ordering::Relaxed);
        h.push_seen(now, at(10), Action::Target(t.clone(), 4), None);
        t.live.store(0, Ordering::Relaxed); // cancelled
        assert!(h.pop_due(at(100)).is_none(), "a cancelled arm must not fire");
        // Far arms, each re-armed over the last: the sweeps keep the list bounded.
        for gen in 5..100_005 {
            t.live.store(gen, Ordering::Relaxed);
            h.push_seen(now, at(3_600_000), Action::Target(t.clone(), gen), None);
        }
        assert!(h.len() <= SWEEP_MIN, "{} entries left of 100k re-arms", h.len());
        assert_eq!(Arc::strong_count(&t), h.len() + 1, "entries hold the target, nothing else");
    }

    /// `clear` drops every timer at once (the worker calls it at shutdown inside its panic
    /// containment, so a panicking destructor is reported there).
    #[test]
    fn clear_drops_every_timer() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut h = TimerHeap::default();
        let now = Instant::now();
        for i in 0..10 {
            h.push(now + Duration::from_secs(i), counted(&drops));
        }
        h.clear();
        assert_eq!(drops.load(Ordering::Relaxed), 10);
        assert_eq!(h.len(), 0);
        assert!(h.next().is_none());
    }
}
