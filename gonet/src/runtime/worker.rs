//! A worker: one OS thread that runs goroutines (Go's `M` and `P` in one).
//!
//! Each worker owns, shared-nothing:
//! * `runq` — started goroutines made runnable on this thread (FIFO; thread-local, no lock);
//! * `spawnq` — goroutines spawned here that have not started yet; idle workers steal from it
//!   (a crossbeam work-stealing deque);
//! * `inbox` — run tokens of *its* goroutines made runnable by other threads, and unstarted
//!   goroutines placed on it by other workers (invariant 5);
//! * a timer heap, a stack pool, a list of its live goroutines and its epoll `Poller`. With
//!   nothing to run, it also gives back the dead stack pages of goroutines parked a second or
//!   more (`release_idle_stacks`, at most one bounded pass per second).
//!
//! Invariants:
//! 1. A started goroutine runs only on its owner. `ready` on the owner's thread pushes on
//!    `runq`; from anywhere else it goes through the owner's inbox.
//! 2. Running dry: a worker with nothing to run may first poll epoll once without blocking and
//!    take what is ready (a busy worker between batches, touching nothing shared: the
//!    glance); else it may spin — poll epoll without blocking, its inbox and the steal
//!    sources — for up to the spin window and never past its next timer. Whether to glance,
//!    whether to spin and for how long (no longer than a sleep costs, in the default adaptive
//!    mode) is the worker's `IdlePolicy` (`idle_policy.rs`). It is not `sleeping` meanwhile,
//!    so wakers skip the eventfd. Spinning is budgeted (Go's `nmspinning` rule): a worker
//!    starts a spin only while twice the number of spinning workers is below the number of
//!    workers not asleep (`RtShared::spinning`, raised by compare-and-swap, so at most half
//!    the workers, rounded up, ever spin).
//!    Then it sleeps: it sets `sleeping` (SeqCst), re-checks its inbox and every steal
//!    source, and only then blocks in `epoll_wait` until its next timer. Anyone who makes
//!    work for it publishes the work first, then swaps `sleeping` to false and, if it was
//!    set, writes the eventfd. One of the two always sees the other, so no wake-up is lost,
//!    and an idle worker, whose sleeps are longer than the window, does not spin.
//! 3. Fairness: timers are checked every round; every 61 rounds the worker polls epoll without
//!    blocking and drains its inbox, and every 31 rounds it prefers unstarted goroutines, so
//!    neither a `yield_now` loop nor a busy run queue starves I/O, timers or new goroutines; a
//!    busy worker whose own spawn queue is empty then steals one from another worker, so new
//!    goroutines spread over busy workers too.
//! 4. Teardown leaves nothing dangling. No unwind crosses `Worker::run`: user code the worker
//!    runs outside a goroutine body (timer callbacks, dropping a detached result or an
//!    unstarted goroutine's closure) is contained (`contain.rs`), a goroutine whose coroutine
//!    panics anyway is finished and reported, and a panic of the scheduler itself aborts with
//!    a message. Shutdown first sets `closed` under the inbox lock (from then on remote
//!    wake-ups are refused there, never queued), then unwinds the live goroutines while
//!    `WORKER` and `runq` are still valid, then empties the queues. The `Worker`'s `Drop`
//!    (its drop guard) runs before any field is dropped: it sets `closed` and clears `WORKER`
//!    and `current`, so from then on `ready` reaches neither `runq` (found only through
//!    `WORKER`) nor the inbox, and no goroutine can be woken into a queue being freed, in
//!    whatever order the fields then drop.
//! 5. Placement: a started goroutine never migrates, so where it first runs is where it
//!    stays. A worker's `load` is its live started goroutines plus the unstarted ones placed
//!    on it (`incoming`) plus the tasks homed on it (`task.rs`, placed by the same rule); for a given goroutine the worker that spawned it (its `origin`)
//!    counts one less, for the spawner itself (an accept loop, a parent about to join).
//!    Before a worker starts a goroutine taken from a spawn queue or the injector, it
//!    compares that load with the others': if some worker's is lower than its own, the
//!    goroutine goes, unstarted, to the lowest one's inbox (the origin first among equals;
//!    marked `placed`, counted in that worker's `incoming`) and starts there; otherwise it
//!    starts here. A placed goroutine, or one spawned with `spawn_local`, starts where it is.
//!    So ties stay where they are (spawn + join and ping-pong stay on the parent's worker),
//!    and long-lived goroutines (connections) spread over all workers whatever their arrival.
//! 6. The poll loop knows nothing of the layers above it: event data tagged with `HOOK_TAG`
//!    and every committed park go to the `PollHooks` a higher layer registered (the
//!    reactor), through one indirect call; with none registered they cost a load and a branch.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

use super::contain;
use super::goroutine::{Coro, GRef, Suspend, G};
use super::idle_policy::{thread_cpu_time, IdlePolicy, SpinMode};
use super::overflow;
use super::prefetch;
use super::stack::StackPool;
use super::stats::WorkerStats;
use super::timer::{Action, TimerHeap};
use crate::netpoll::{self, Poller, WAKE_TOKEN};

/// State shared by all workers of one runtime.
pub(crate) struct RtShared {
    pub(crate) workers: Vec<Arc<WorkerShared>>,
    pub(crate) injector: Injector<GRef>,
    pub(crate) shutdown: AtomicBool,
    /// Number of workers that are (about to be) asleep.
    pub(crate) idle: AtomicUsize,
    /// Number of workers spinning (invariant 2's budget).
    pub(crate) spinning: AtomicUsize,
    pub(crate) stack_size: usize,
    /// How a worker that ran dry spins before sleeping (`Builder::spin`, `idle_policy.rs`).
    pub(crate) spin: SpinMode,
    /// Where warnings go (`report.rs`).
    pub(crate) reports: super::report::Reports,
    /// Run once every worker thread has exited (`runtime::at_exit`).
    pub(crate) exit_hooks: std::sync::Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

/// The part of a worker other threads may touch.
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    /// Unique id of the runtime (never 0).
    pub(crate) rt_id: u64,
    inbox: Mutex<Vec<GRef>>,
    inbox_nonempty: AtomicBool,
    sleeping: AtomicBool,
    /// Set at shutdown: wake-ups for this worker's goroutines are dropped from then on.
    closed: AtomicBool,
    /// Dump requests (`dump.rs`), announced through `inbox_nonempty`.
    pub(crate) dumps: super::dump::Requests,
    pub(crate) poller: Poller,
    stealer: Stealer<GRef>,
    /// Unstarted goroutines placed on this worker by others, not started yet (invariant 5).
    incoming: AtomicUsize,
    /// Tasks homed on this worker (`task.rs`), counted in its load (invariant 5).
    pub(crate) homed_tasks: AtomicUsize,
    pub(crate) stats: WorkerStats,
    /// For the stall watchdog: the goroutine running now (0: none). Together with the switch
    /// counter it tells the watchdog whether the same run has lasted between two samples,
    /// without reading the clock on every switch.
    pub(crate) running: AtomicU64,
    /// The spawn site of the goroutine running now (null: none), for the stall report: a
    /// `&'static Location`, valid whenever read.
    pub(crate) running_site: std::sync::atomic::AtomicPtr<std::panic::Location<'static>>,
    /// Units of work begun inside the running goroutine (a reactor handler call each, see
    /// [`unit_begin`]): the watchdog times each unit on its own, so a goroutine that runs many
    /// short calls back to back is not reported as one long stall.
    pub(crate) units: AtomicU64,
    /// The descriptor the running unit serves (-1: no unit), for the stall report.
    pub(crate) unit_fd: std::sync::atomic::AtomicI32,
}

impl WorkerShared {
    pub(crate) fn new(
        index: usize,
        rt_id: u64,
        stealer: Stealer<GRef>,
    ) -> std::io::Result<WorkerShared> {
        Ok(WorkerShared {
            index,
            rt_id,
            inbox: Mutex::new(Vec::new()),
            inbox_nonempty: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dumps: Default::default(),
            poller: Poller::new()?,
            stealer,
            incoming: AtomicUsize::new(0),
            homed_tasks: AtomicUsize::new(0),
            stats: WorkerStats::default(),
            running: AtomicU64::new(0),
            running_site: Default::default(),
            units: AtomicU64::new(0),
            unit_fd: std::sync::atomic::AtomicI32::new(-1),
        })
    }

    /// Asks the worker to look at its inbox (a dump request waits there).
    pub(crate) fn poke(&self) {
        self.inbox_nonempty.store(true, Ordering::SeqCst);
        self.unsleep();
    }

    /// Hands a run token to this worker from another thread.
    fn push_remote(&self, g: GRef) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            // Invariant 4: refused, never queued. The token is dropped after the unlock; the
            // owner's live list (or nothing: the goroutine is gone) holds the coroutine.
            drop(inbox);
            drop(g);
            return;
        }
        inbox.push(g);
        drop(inbox);
        self.inbox_nonempty.store(true, Ordering::SeqCst);
        self.stats.remote_wakeups.fetch_add(1, Ordering::Relaxed);
        self.unsleep();
    }

    /// Hands an unstarted goroutine placed on this worker to its inbox (invariant 5); gives
    /// it back if the worker has shut down.
    fn place(&self, g: GRef) -> Result<(), GRef> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(g);
        }
        inbox.push(g);
        drop(inbox);
        self.inbox_nonempty.store(true, Ordering::SeqCst);
        self.unsleep();
        Ok(())
    }

    /// Starts a new, unstarted goroutine here (invariant 5: placed, so it starts and stays on
    /// this worker), from any thread; gives it back if the worker has shut down.
    pub(crate) fn start_here(&self, g: GRef) -> Result<(), GRef> {
        // SAFETY: `g` was just built and the caller holds its only run token, so it may touch
        // its execution state (goroutine.rs); the flag is set before the token is handed over.
        unsafe { g.exec().placed = true };
        self.incoming.fetch_add(1, Ordering::Relaxed);
        self.place(g).inspect_err(|_| {
            self.incoming.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// Live started goroutines plus those placed here and not started yet (invariant 5).
    #[inline]
    fn load(&self) -> usize {
        self.stats.live.get() as usize
            + self.incoming.load(Ordering::Relaxed)
            + self.homed_tasks.load(Ordering::Relaxed)
    }

    /// Whether the worker has shut down (wake-ups are refused).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The goroutines waiting in the inbox (runnable), for a dump.
    pub(crate) fn inbox_ptrs(&self) -> Vec<*const G> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).iter().map(Arc::as_ptr).collect()
    }

    /// Wakes the worker if it sleeps (invariant 2). Returns whether it did.
    pub(crate) fn unsleep(&self) -> bool {
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.poller.wake();
            return true;
        }
        false
    }

    /// Refuses wake-ups from now on (invariant 4) and drops the tokens queued in the inbox.
    pub(crate) fn close(&self) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        let queued = std::mem::take(&mut *inbox);
        drop(inbox);
        // Unstarted goroutines placed here hold user closures, whose `Drop` may panic.
        for g in queued {
            contain::drop_contained(g.id, "dropping a goroutine that never ran", g);
        }
        self.poller.wake();
    }
}

/// The worker's thread-local state. Lives on the worker thread's stack for the whole run loop.
pub(crate) struct Worker {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) rt: Arc<RtShared>,
    pub(crate) runq: RefCell<VecDeque<GRef>>,
    pub(crate) spawnq: Deque<GRef>,
    pub(crate) timers: RefCell<TimerHeap>,
    pub(crate) stacks: RefCell<StackPool>,
    /// Every started, unfinished goroutine of this worker (so shutdown can free their stacks).
    pub(crate) live: RefCell<Vec<GRef>>,
    /// The goroutine being run, or null on the worker's own stack.
    pub(crate) current: Cell<*const G>,
    /// Set while a dump resumes parked goroutines to capture their backtraces (`dump.rs`).
    pub(crate) dumping: Cell<bool>,
    /// Where such a goroutine leaves its backtrace.
    pub(crate) dump_slot: RefCell<Option<std::backtrace::Backtrace>>,
    events: RefCell<Vec<libc::epoll_event>>,
    /// Whether to glance and how long to spin when running dry (`idle_policy.rs`).
    policy: RefCell<IdlePolicy>,
    /// Poll I/O at the next round instead of waiting for the fairness tick (`poll_soon`).
    poll_soon: Cell<bool>,
    /// Idle stack release (`release_idle_stacks`): the coarse-clock time of the next pass,
    /// and whether a parked goroutine's stack waits for one.
    release_next_ms: Cell<u64>,
    release_pending: Cell<bool>,
    /// Where the next pass starts in `live`.
    release_cursor: Cell<usize>,
    /// Its task queue, runners and homed tasks (`task.rs`).
    pub(crate) tasks: super::task::Local,
    /// The wall clock of the idle policy's epochs.
    epoch_clock: Instant,
}

/// A goroutine parked this long (ms) gives back its stack below where it suspended
/// (`Worker::release_idle_stacks`).
const STACK_IDLE_MS: u64 = 1000;
/// One idle-release pass looks at this many goroutines at most, releases this many stacks at
/// most, and if it did not get round, the next comes this soon (ms).
const RELEASE_SCAN: usize = 4096;
const RELEASE_BATCH: usize = 1024;
const RELEASE_AGAIN_MS: u64 = 10;

thread_local! {
    static WORKER: Cell<*const Worker> = const { Cell::new(std::ptr::null()) };
}

/// Set in the epoll data of a descriptor whose events go to `PollHooks::on_event` instead of
/// a `PollDesc` waiter (`PollDesc` pointers are 8-aligned and the wake token is 0, so bit 0
/// is free).
pub(crate) const HOOK_TAG: u64 = 1;

/// What a higher layer (the reactor) asks the poll loop to call (invariant 6).
pub(crate) struct PollHooks {
    /// An epoll event whose data has `HOOK_TAG` set, on the worker whose epoll reported it.
    pub(crate) on_event: fn(data: u64, events: u32),
    /// A goroutine of this worker has just parked (its commit published the token).
    pub(crate) parked: fn(g: *const G),
}

static HOOKS: std::sync::OnceLock<PollHooks> = std::sync::OnceLock::new();

/// Registers the poll loop's hooks; the first registration wins (there is one reactor).
pub(crate) fn set_hooks(h: PollHooks) {
    let _ = HOOKS.set(h);
}

/// The current thread's worker, if it is one.
#[inline]
pub(crate) fn current() -> Option<&'static Worker> {
    let p = WORKER.with(|w| w.get());
    // SAFETY: the pointer is set by `Worker::run` to a `Worker` on that thread's stack and
    // cleared before the worker is dropped; it is only read on that same thread.
    unsafe { p.as_ref() }
}

/// Whether the caller runs on a goroutine (as opposed to a worker's own stack or a plain thread).
#[inline]
pub(crate) fn in_goroutine() -> bool {
    current().is_some_and(|w| !w.current.get().is_null())
}

/// The running goroutine's id, if the caller is a goroutine.
pub(crate) fn current_goroutine_id() -> Option<u64> {
    let w = current()?;
    // SAFETY: a non-null `current` points to the G held by the worker's run loop while it runs.
    unsafe { w.current.get().as_ref() }.map(|g| g.id)
}

/// The running goroutine, if the caller is one.
#[inline]
pub(crate) fn current_g() -> Option<&'static G> {
    let w = current()?;
    // SAFETY: a non-null `current` points to the G held alive by the worker's run loop while
    // it runs, which outlasts any borrow the running goroutine can keep.
    unsafe { w.current.get().as_ref() }
}

/// A unit of work on descriptor `fd` (a handler call of a higher layer) begins in the running
/// goroutine: the stall watchdog starts timing afresh and names the unit if it stalls. Two
/// relaxed stores on the worker's own line; nothing off a worker.
#[inline]
pub(crate) fn unit_begin(fd: i32) {
    if let Some(w) = current() {
        let s = &w.shared;
        s.units.store(s.units.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        s.unit_fd.store(fd, Ordering::Relaxed);
    }
}

/// The unit begun by [`unit_begin`] has ended.
#[inline]
pub(crate) fn unit_end() {
    if let Some(w) = current() {
        let s = &w.shared;
        s.units.store(s.units.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        s.unit_fd.store(-1, Ordering::Relaxed);
    }
}

/// The running goroutine's `G` pointer (null off a goroutine), for identity checks.
pub(crate) fn current_g_ptr() -> *const G {
    current().map_or(std::ptr::null(), |w| w.current.get())
}

/// Suspends the running goroutine with `s`. Panics when not called on a goroutine.
pub(crate) fn suspend(s: Suspend) {
    let w = current().expect("gonet: park outside a goroutine");
    let g = w.current.get();
    assert!(!g.is_null(), "gonet: park outside a goroutine");
    let here = 0u8;
    // SAFETY: `g` is the running goroutine (held alive by the run loop) and the yielder was set
    // by its own coroutine body on this thread; it stays valid while the coroutine exists.
    unsafe {
        // A task runner parking inside a task's poll hands the task queue over (task.rs).
        let runner = matches!(s, Suspend::Park(_)) && (*g).task_poll.get();
        if runner {
            super::task::blocking(w);
        }
        (*g).sp.set(std::ptr::addr_of!(here) as usize);
        let y = (*g).yielder.get();
        (*y).suspend(s);
        // Resumed by a dump only to show where we wait (dump.rs): show it and wait on.
        while w.dumping.get() {
            super::dump::capture_here(w);
            (*y).suspend(Suspend::Dumped);
        }
        (*g).wait.set(super::wait::Wait::Unknown);
        if runner {
            super::task::unblocked(w);
        }
    }
}

/// Makes a goroutine runnable (the caller holds its run token; see `park.rs`).
pub(crate) fn ready(g: GRef) {
    let owner = g.owner().expect("gonet: ready on a goroutine that never ran");
    if let Some(w) = current() {
        if std::ptr::eq(Arc::as_ptr(&w.shared), owner) {
            w.runq.borrow_mut().push_back(g);
            return;
        }
    }
    // Keep the worker alive past the push: once the token is handed over, the goroutine (and
    // its reference to its owner) may be gone.
    let owner = g.owner_arc().expect("checked above");
    owner.push_remote(g);
}

/// Asks the current worker to poll I/O at its next scheduling round (the reactor, when a
/// streaming connection yields its turn, so the other connections' events are seen).
pub(crate) fn poll_soon() {
    if let Some(w) = current() {
        w.poll_soon.set(true);
    }
}

/// The current worker's timer heap, when called on a worker.
pub(crate) fn timers() -> Option<&'static RefCell<TimerHeap>> {
    current().map(|w| &w.timers)
}

/// Parks the running goroutine until `when` (the timer holds its run token).
pub(crate) fn sleep_until(when: Instant) {
    super::park::park_g(move |g| {
        g.wait.set(super::wait::Wait::Sleep);
        let w = current().expect("timer commit runs on a worker");
        w.timers.borrow_mut().push(when, Action::Wake(g));
        Ok(())
    });
}

impl Worker {
    pub(crate) fn new(shared: Arc<WorkerShared>, rt: Arc<RtShared>, spawnq: Deque<GRef>) -> Worker {
        let stacks = StackPool::new(rt.stack_size);
        let rt_spin = rt.spin;
        Worker {
            shared,
            rt,
            runq: RefCell::new(VecDeque::new()),
            spawnq,
            timers: RefCell::new(TimerHeap::default()),
            stacks: RefCell::new(stacks),
            live: RefCell::new(Vec::new()),
            current: Cell::new(std::ptr::null()),
            dumping: Cell::new(false),
            dump_slot: RefCell::new(None),
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; 256]),
            policy: RefCell::new(IdlePolicy::new(rt_spin)),
            poll_soon: Cell::new(false),
            release_next_ms: Cell::new(0),
            release_pending: Cell::new(false),
            release_cursor: Cell::new(0),
            tasks: super::task::Local::default(),
            epoch_clock: Instant::now(),
        }
    }

    /// Queues a new goroutine on this worker and, if a worker sleeps, wakes one to steal it.
    pub(crate) fn spawn(&self, g: GRef) {
        // SAFETY: `g` was just built and we hold its only run token, so this thread may touch
        // its execution state (goroutine.rs).
        unsafe { g.exec().origin = self.shared.index };
        self.spawnq.push(g);
        self.shared.stats.spawned.set_local(self.shared.stats.spawned.get() + 1);
        if self.rt.workers.len() > 1 {
            fence(Ordering::SeqCst);
            if self.rt.idle.load(Ordering::SeqCst) > 0 {
                for w in &self.rt.workers {
                    if w.index != self.shared.index && w.unsleep() {
                        break;
                    }
                }
            }
        }
    }

    /// Queues a new goroutine on this worker's own run queue: it starts here and, never
    /// having been stealable, stays here (the reactor's handler goroutines, `reactor/sched.rs`).
    pub(crate) fn spawn_local(&self, g: GRef) {
        // SAFETY: `g` was just built and we hold its only run token, so this thread may touch
        // its execution state (goroutine.rs).
        unsafe { g.exec().placed = true };
        self.shared.incoming.fetch_add(1, Ordering::Relaxed);
        self.runq.borrow_mut().push_back(g);
        self.shared.stats.spawned.set_local(self.shared.stats.spawned.get() + 1);
    }

    /// The scheduling loop; returns at runtime shutdown after freeing this worker's goroutines.
    pub(crate) fn run(&self) {
        WORKER.with(|w| w.set(self as *const Worker));
        overflow::init_thread();
        self.publish_policy(&self.policy.borrow());
        // Invariant 4: nothing the loop or the shutdown runs unwinds out of here; what is left
        // is the scheduler's own bug, with no sane recovery.
        let index = self.shared.index;
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| self.schedule())) {
            contain::abort(&format!("worker {index}'s scheduling loop"), &p);
        }
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| self.shutdown())) {
            contain::abort(&format!("worker {index}'s shutdown"), &p);
        }
        WORKER.with(|w| w.set(std::ptr::null()));
    }

    /// The scheduling loop, until the runtime shuts down.
    fn schedule(&self) {
        let mut tick: u32 = 0;
        while !self.rt.shutdown.load(Ordering::Acquire) {
            tick = tick.wrapping_add(1);
            if tick % 61 == 0 || self.poll_soon.take() {
                self.poll_io(0);
                self.drain_inbox();
                if tick % (61 * 64) == 0 {
                    self.stacks.borrow_mut().trim(Instant::now());
                }
            }
            self.fire_timers(tick);
            match self.find_runnable(tick) {
                Some(g) => self.execute(g),
                None => self.idle(),
            }
        }
    }

    fn fire_timers(&self, tick: u32) {
        let (len, near) = {
            let t = self.timers.borrow();
            (t.len(), t.near_len())
        };
        self.shared.stats.timers.set_local(len as u64);
        // Only far timers (timer.rs: due a horizon of a second or more after they were set):
        // looking every 61 rounds moves them in time, and spares a clock read per switch.
        if near == 0 && (len == 0 || tick % 61 != 0) {
            return;
        }
        let now = Instant::now();
        loop {
            let a = self.timers.borrow_mut().pop_due(now);
            match a {
                Some(Action::Wake(g)) => self.runq.borrow_mut().push_back(g),
                Some(a) => {
                    contain::catch(0, "running a timer callback", || a.fire());
                }
                None => break,
            }
        }
    }

    fn find_runnable(&self, tick: u32) -> Option<GRef> {
        if tick % 31 == 0 {
            // Start new goroutines at a steady rate even while busy — our own, else another
            // worker's — so that a worker whose started goroutines keep it busy still takes
            // its share of new ones (started goroutines never migrate).
            if let Some(g) = self.spawnq.pop().or_else(|| self.steal()) {
                return Some(g);
            }
        }
        if let Some(g) = self.pop_runq() {
            return Some(g);
        }
        if self.drain_inbox() {
            if let Some(g) = self.pop_runq() {
                return Some(g);
            }
        }
        if let Some(g) = self.spawnq.pop() {
            return Some(g);
        }
        self.steal()
    }

    /// Takes the next goroutine of the run queue and warms the ones after it (`prefetch.rs`).
    #[inline]
    fn pop_runq(&self) -> Option<GRef> {
        let mut q = self.runq.borrow_mut();
        let g = q.pop_front()?;
        if let Some(next) = q.front() {
            prefetch::warm_stack(next);
        }
        if let Some(after) = q.get(1) {
            prefetch::warm_header(after);
        }
        Some(g)
    }

    /// Moves the inbox into the run queue; returns whether anything was there.
    fn drain_inbox(&self) -> bool {
        if !self.shared.inbox_nonempty.load(Ordering::SeqCst) {
            return false;
        }
        self.shared.inbox_nonempty.store(false, Ordering::SeqCst);
        if self.shared.dumps.pending() {
            self.serve_dumps();
        }
        let mut inbox = self.shared.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let mut q = self.runq.borrow_mut();
        let any = !inbox.is_empty();
        q.extend(inbox.drain(..));
        any
    }

    /// Takes unstarted goroutines from the injector or another worker's spawn queue.
    ///
    /// An empty source is skipped on a plain look at its ends (`is_empty`): a steal attempt
    /// pins crossbeam's epoch (a full fence), and a busy worker runs dry between batches of
    /// I/O many thousand times a second with every spawn queue empty.
    fn steal(&self) -> Option<GRef> {
        loop {
            let mut retry = false;
            if !self.rt.injector.is_empty() {
                match self.rt.injector.steal_batch_and_pop(&self.spawnq) {
                    Steal::Success(g) => return Some(g),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            let n = self.rt.workers.len();
            for k in 1..n {
                let other = &self.rt.workers[(self.shared.index + k) % n];
                if other.stealer.is_empty() {
                    continue;
                }
                match other.stealer.steal_batch_and_pop(&self.spawnq) {
                    Steal::Success(g) => {
                        self.shared.stats.steals.set_local(self.shared.stats.steals.get() + 1);
                        return Some(g);
                    }
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                return None;
            }
        }
    }

    /// Whether any work is visible to this worker (checked after announcing sleep).
    fn has_work(&self) -> bool {
        self.shared.inbox_nonempty.load(Ordering::SeqCst)
            || !self.rt.injector.is_empty()
            || self.rt.workers.iter().any(|w| !w.stealer.is_empty())
            || self.rt.shutdown.load(Ordering::SeqCst)
    }

    /// Nothing to run: glance, spin for a while (invariant 2), then sleep in `epoll_wait`
    /// until I/O, a wake-up or the next timer. Whether to glance and how long to spin is the
    /// worker's `IdlePolicy`, fed here with what each step found.
    fn idle(&self) {
        if self.policy.borrow_mut().epoch_due() {
            let wall = self.epoch_clock.elapsed().as_nanos() as u64;
            let mut policy = self.policy.borrow_mut();
            if policy.epoch_over(wall) {
                let cpu = thread_cpu_time().as_nanos() as u64;
                // The unit of work: the arrivals that end dry spells, input events and
                // wake-ups from other threads (see `WorkerStats::inputs`).
                let st = &self.shared.stats;
                let work = st.inputs.get() + st.remote_wakeups.load(Ordering::Relaxed);
                policy.close_epoch(cpu, work, wall);
                self.publish_policy(&policy);
            }
        }
        if self.policy.borrow().should_glance() {
            let found = self.ready_at_a_glance();
            self.policy.borrow_mut().after_glance(found);
            if found {
                return;
            }
        }
        if self.spin_for_work() {
            return;
        }
        let measure = self.policy.borrow_mut().measure_next_sleep();
        let cpu_from = measure.then(thread_cpu_time);
        let slept_from = Instant::now();
        self.sleep();
        let cpu = cpu_from.map(|from| thread_cpu_time().saturating_sub(from));
        let mut policy = self.policy.borrow_mut();
        policy.after_sleep(slept_from.elapsed(), cpu);
        if measure {
            self.publish_policy(&policy);
        }
    }

    /// Shows the idle policy's window and measured sleep cost in `stats()`.
    fn publish_policy(&self, policy: &IdlePolicy) {
        let st = &self.shared.stats;
        st.spin_window_ns.set_local(policy.window().as_nanos() as u64);
        st.sleep_cost_ns.set_local(policy.sleep_cost_ns());
    }

    /// The sleep itself: announce it, look for work once more, block in `epoll_wait` until
    /// I/O, a wake-up, the next timer or the next stack trim.
    fn sleep(&self) {
        let st = &self.shared.stats;
        st.sleeps.set_local(st.sleeps.get() + 1);
        self.shared.sleeping.store(true, Ordering::SeqCst);
        self.rt.idle.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `spawn` (and the SeqCst swap in `unsleep`): we announced
        // sleep, then look for work; a producer published work, then looks for sleepers.
        fence(Ordering::SeqCst);
        let timeout = if self.has_work() {
            0
        } else {
            // A pool holding stacks it may give back wakes the worker to trim it (stack.rs),
            // and parked goroutines whose stacks are not released yet to release them.
            let trim = self.stacks.borrow_mut().trim(Instant::now());
            let release = self.release_idle_stacks();
            let trim = match (trim, release) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let next = {
                let mut t = self.timers.borrow_mut();
                t.move_far_due(Instant::now());
                t.next()
            };
            match next.map_or(trim, |t| Some(trim.map_or(t, |r| r.min(t)))) {
                None => -1,
                Some(t) => {
                    let d = t.saturating_duration_since(Instant::now());
                    // Round up so that we never wake just before the timer and spin.
                    d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
                }
            }
        };
        self.poll_io(timeout);
        self.shared.sleeping.store(false, Ordering::SeqCst);
        self.rt.idle.fetch_sub(1, Ordering::SeqCst);
    }

    /// One non-blocking poll before spinning or sleeping: a busy worker that ran dry between
    /// batches usually finds readiness already queued, and takes it without touching the
    /// runtime's shared counters (`spinning`, `idle`: one cache line every worker writes) or
    /// looking at every other worker's queues.
    fn ready_at_a_glance(&self) -> bool {
        self.poll_io(0);
        !self.runq.borrow().is_empty() || self.drain_inbox()
    }

    /// Idle stack release, at most once per [`STACK_IDLE_MS`], when the worker has nothing to
    /// run: each goroutine of this worker that has been parked for `STACK_IDLE_MS` or longer
    /// gives back the pages of its stack below the point where it suspended
    /// (`stack::release_below`), once per park. The deep frames an idle connection used while
    /// it was busy (hyper's poll call chain: two or three pages) then cost nothing until it is
    /// busy again, as Go shrinks the stacks of idle goroutines. Returns when to look again:
    /// while some parked goroutine's stack is not released yet.
    fn release_idle_stacks(&self) -> Option<Instant> {
        let now = super::wait::coarse_ms();
        let next = self.release_next_ms.get();
        if now < next {
            return self
                .release_pending
                .get()
                .then(|| Instant::now() + Duration::from_millis(next - now));
        }
        // A pass looks at no more than RELEASE_SCAN goroutines and releases no more than
        // RELEASE_BATCH stacks, from where the last one stopped, so a worker with a million
        // idle goroutines never holds its next event for long.
        let live = self.live.borrow();
        let n = live.len();
        let mut at = self.release_cursor.get();
        let (mut scanned, mut released, mut pending) = (0, 0, false);
        while scanned < n.min(RELEASE_SCAN) && released < RELEASE_BATCH {
            if at >= n {
                at = 0;
            }
            let g = &live[at];
            at += 1;
            scanned += 1;
            let parked = g.parked_ms.get();
            if !g.parked.get() || g.released_ms.get() == parked {
                continue;
            }
            if now.saturating_sub(parked) < STACK_IDLE_MS {
                pending = true;
                continue;
            }
            let (_, low) = g.guard.get();
            // SAFETY: we are `g`'s owner thread and it is parked (not running: the run loop
            // is here), suspended at the `sp` its last `suspend` recorded; below that lies
            // only what its returned calls left. Nobody resumes it before this returns.
            unsafe { super::stack::release_below(low, g.sp.get()) };
            g.released_ms.set(parked);
            released += 1;
        }
        self.release_cursor.set(at);
        // Not round yet and this part had work: come back soon for the rest. A quiet part
        // (nothing released, nobody about to be) lets a quiet worker sleep; the rest is
        // looked at by the passes that its next idle moments make.
        let more = scanned < n && released > 0;
        let wait = if more { RELEASE_AGAIN_MS } else { STACK_IDLE_MS };
        let pending = pending || more;
        self.release_next_ms.set(now + wait);
        self.release_pending.set(pending);
        pending.then(|| Instant::now() + Duration::from_millis(wait))
    }

    /// Polls for work without sleeping, for up to the spin window and never past the next
    /// timer. Returns whether work showed up (or a timer is due): the caller goes back to the
    /// scheduling loop instead of sleeping.
    ///
    /// The spin runs only while it pays and for no longer than a sleep costs (`IdlePolicy`):
    /// a lightly loaded worker, whose gaps between requests are longer than the window,
    /// sleeps at once and burns nothing; a busy one spins through its short gaps.
    fn spin_for_work(&self) -> bool {
        let window = {
            let mut p = self.policy.borrow_mut();
            if !p.should_spin() {
                return false;
            }
            p.window()
        };
        if !self.start_spinning() {
            return false;
        }
        let found = self.spin(window);
        self.rt.spinning.fetch_sub(1, Ordering::SeqCst);
        self.policy.borrow_mut().after_spin(found);
        found
    }

    /// Invariant 2's budget: becomes a spinner only while twice the spinners are fewer than
    /// the workers not asleep (this one included), so at most half the workers (rounded up)
    /// spin at once and a lightly loaded runtime has few. The count is raised by
    /// compare-and-swap, so racing workers cannot overshoot it.
    fn start_spinning(&self) -> bool {
        let n = self.rt.workers.len();
        let mut s = self.rt.spinning.load(Ordering::SeqCst);
        loop {
            let awake = n.saturating_sub(self.rt.idle.load(Ordering::SeqCst));
            if 2 * s >= awake {
                return false;
            }
            match self.rt.spinning.compare_exchange_weak(
                s,
                s + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// The spin itself (see `spin_for_work`), by a worker counted in `spinning`.
    fn spin(&self, window: Duration) -> bool {
        let st = &self.shared.stats;
        st.spins.set_local(st.spins.get() + 1);
        let now = Instant::now();
        let window_end = now + window;
        let next = {
            let mut t = self.timers.borrow_mut();
            t.move_far_due(now);
            t.next()
        };
        let until = match next {
            Some(t) => window_end.min(t),
            None => window_end,
        };
        let found = loop {
            self.poll_io(0);
            if !self.runq.borrow().is_empty() || self.drain_inbox() || self.has_work() {
                st.spin_hits.set_local(st.spin_hits.get() + 1);
                break true;
            }
            if Instant::now() >= until {
                // Due timers are fired by the loop; an expired window goes to sleep.
                break until < window_end;
            }
            std::hint::spin_loop();
        };
        st.spin_ns.set_local(st.spin_ns.get() + now.elapsed().as_nanos() as u64);
        found
    }

    /// Collects I/O readiness and makes the waiting goroutines runnable.
    fn poll_io(&self, timeout_ms: i32) {
        let mut events = self.events.borrow_mut();
        let n = self.shared.poller.wait(&mut events, timeout_ms);
        let mut inputs = 0;
        for ev in &events[..n] {
            let data = ev.u64;
            if data == WAKE_TOKEN {
                self.shared.poller.drain_wake();
                continue;
            }
            inputs += (ev.events & libc::EPOLLIN as u32 != 0) as u64;
            if data & HOOK_TAG != 0 {
                // A higher layer's descriptor (a reactor connection): its code runs here, on
                // the worker that owns it (invariant 6).
                if let Some(h) = HOOKS.get() {
                    (h.on_event)(data, ev.events);
                }
                continue;
            }
            netpoll::on_event(data, ev.events, &mut |g| ready(g));
        }
        let st = &self.shared.stats;
        st.inputs.set_local(st.inputs.get() + inputs);
        st.polls.set_local(st.polls.get() + 1);
    }

    /// Resumes `g` until it parks, yields or returns.
    fn execute(&self, g: GRef) {
        // SAFETY: we hold g's run token on the thread allowed to touch its execution state
        // (goroutine.rs): either its owner, or the first runner of an unstarted goroutine.
        let unplaced = unsafe {
            let ex = g.exec();
            ex.coro.is_none() && !ex.placed
        };
        let g = if unplaced {
            match self.place_elsewhere(g) {
                Some(g) => g,
                None => return,
            }
        } else {
            g
        };
        // SAFETY: as above.
        let coro: *mut Coro = unsafe {
            let ex = g.exec();
            if ex.coro.is_none() && !self.start(&g, ex) {
                return;
            }
            ex.coro.as_mut().expect("coroutine exists")
        };
        self.current.set(Arc::as_ptr(&g));
        let stats = &self.shared.stats;
        stats.switches.set_local(stats.switches.get() + 1);
        if g.parked.replace(false) {
            stats.wakeups.set_local(stats.wakeups.get() + 1);
        }
        self.shared.running.store(g.id, Ordering::Relaxed);
        self.shared
            .running_site
            .store(std::ptr::from_ref(g.meta.site).cast_mut(), Ordering::Relaxed);
        overflow::enter(g.guard.get(), g.id, self.rt.stack_size);
        // SAFETY: `coro` points into g's execution state, which only this thread touches, and
        // the goroutine never touches its own `coro` field while it runs.
        let r = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (*coro).resume(()) }));
        overflow::leave();
        self.shared.running.store(0, Ordering::Relaxed);
        self.current.set(std::ptr::null());
        let r = match r {
            Ok(r) => r,
            Err(p) => {
                // The body contains its panics (mod.rs), so this is a panic that escaped the
                // coroutine anyway: the coroutine is finished; report and go on (invariant 4).
                contain::report(g.id, "running (escaped the goroutine)", &p);
                contain::drop_payload(g.id, p);
                self.finish(g);
                return;
            }
        };
        match r {
            CoroutineResult::Yield(Suspend::Yield) => self.runq.borrow_mut().push_back(g),
            CoroutineResult::Yield(Suspend::Park(commit)) => {
                // Count the park before the commit publishes the token: from then on another
                // thread may already have made g runnable again.
                stats.parks.set_local(stats.parks.get() + 1);
                g.parked.set(true);
                g.parked_ms.set(super::wait::coarse_ms());
                let gp = Arc::as_ptr(&g);
                // SAFETY: the commit lives on g's suspended stack, valid until g resumes, and
                // this is its only call (park.rs).
                match unsafe { (*commit)(g) } {
                    Err(g) => {
                        stats.parks.set_local(stats.parks.get() - 1);
                        g.parked.set(false);
                        self.runq.borrow_mut().push_front(g);
                    }
                    // The reactor hands its queue to another handler goroutine when the one
                    // draining it parks (reactor/sched.rs; invariant 6).
                    Ok(()) => {
                        if let Some(h) = HOOKS.get() {
                            (h.parked)(gp);
                        }
                    }
                }
            }
            CoroutineResult::Return(()) => self.finish(g),
            CoroutineResult::Yield(Suspend::Dumped) => unreachable!("only a dump resumes for that"),
        }
    }

    /// Makes this worker the home of `task` (`task.rs`, invariant 4); fails once it has shut
    /// down.
    pub(crate) fn home_task(&self, task: &super::task::Task) -> Result<(), ()> {
        if self.shared.is_closed() || shutting_down() {
            return Err(());
        }
        task.set_home(self.shared.clone());
        Ok(())
    }

    /// For a new long-lived unit of work (a task) spawned here: the worker whose load is
    /// lowest if it is below this one's, else `None` (start here). Invariant 5's rule, with
    /// the spawner's own load counted one less, as for a goroutine's origin.
    pub(crate) fn least_loaded(&self) -> Option<Arc<WorkerShared>> {
        self.lowest_load(self.shared.index).cloned()
    }

    /// Invariant 5's search for a unit of work spawned on worker `origin` (whose load counts
    /// it one less): the worker whose load is lowest if it is below this one's (`origin`
    /// first among equals), else `None`.
    fn lowest_load(&self, origin: usize) -> Option<&Arc<WorkerShared>> {
        let ws = &self.rt.workers;
        let n = ws.len();
        let load = |w: &WorkerShared| w.load().saturating_sub(usize::from(w.index == origin));
        let mine = load(&self.shared);
        if n == 1 || mine == 0 {
            return None;
        }
        let me = self.shared.index;
        let mut best: Option<&Arc<WorkerShared>> = None;
        let mut best_load = mine;
        for k in 1..n {
            let w = &ws[(me + k) % n];
            let l = load(w);
            if l < best_load || (l == best_load && best.is_some() && w.index == origin) {
                best = Some(w);
                best_load = l;
            }
        }
        best
    }

    /// Invariant 5: an unstarted, unplaced goroutine about to start here goes to the least
    /// loaded worker instead when that one's load (for this goroutine) is below ours.
    /// Returns the goroutine if it is to start here.
    fn place_elsewhere(&self, g: GRef) -> Option<GRef> {
        if self.rt.workers.len() == 1 {
            return Some(g);
        }
        // SAFETY: we hold the run token of this unstarted goroutine (goroutine.rs).
        let origin = unsafe { g.exec().origin };
        // Starting here: count it at once (it is added to the live list only once it has a
        // stack, which may take a page fault or a preemption), so that workers placing
        // goroutines meanwhile see this one.
        let here = |g| {
            let st = &self.shared.stats;
            st.live.set_local(st.live.get() + 1);
            Some(g)
        };
        let Some(target) = self.lowest_load(origin) else { return here(g) };
        // SAFETY: we hold the run token of this unstarted goroutine (goroutine.rs); the flag
        // is set before the token is handed over, and cleared only if it comes back.
        unsafe { g.exec().placed = true };
        target.incoming.fetch_add(1, Ordering::Relaxed);
        match target.place(g) {
            Ok(()) => {
                let st = &self.shared.stats;
                st.placed.set_local(st.placed.get() + 1);
                None
            }
            Err(g) => {
                // The target has shut down: start it here after all.
                target.incoming.fetch_sub(1, Ordering::Relaxed);
                // SAFETY: the token came back to us.
                unsafe { g.exec().placed = false };
                here(g)
            }
        }
    }

    /// First run of `g` on this worker: it becomes the owner, and the coroutine is built on the
    /// stack allocated at spawn or, for most, on one from this worker's pool. Returns false
    /// when no stack can be had: the goroutine is then dropped unrun (`cannot_start`).
    fn start(&self, g: &GRef, ex: &mut super::goroutine::Exec) -> bool {
        let placed = std::mem::take(&mut ex.placed);
        let stack = match ex.stack.take() {
            Some(s) => s,
            None => match self.stacks.borrow_mut().get() {
                Ok(s) => s,
                Err(e) => {
                    if placed {
                        self.shared.incoming.fetch_sub(1, Ordering::Relaxed);
                    }
                    let st = &self.shared.stats;
                    st.live.set_local(self.live.borrow().len() as u64);
                    self.cannot_start(g, ex, &e);
                    return false;
                }
            },
        };
        g.set_owner(self.shared.clone());
        let body = ex.start.take().expect("unstarted goroutine has its closure");
        g.guard.set(stack.guard());
        ex.coro = Some(Coro::with_stack(stack, move |y, ()| {
            let w = current().expect("goroutine runs on a worker");
            // SAFETY: `current` is this goroutine while its body runs.
            unsafe { (*w.current.get()).yielder.set(y as *const _) };
            body();
        }));
        let mut live = self.live.borrow_mut();
        // SAFETY: live_index is touched only by the owner thread, which we now are.
        unsafe { *g.live_index.get() = live.len() };
        live.push(g.clone());
        // Counted in `live` before `incoming` lets go of it (or, unplaced, already counted by
        // `place_elsewhere`): placement never sees it missing.
        self.shared.stats.live.set_local(live.len() as u64);
        if placed {
            self.shared.incoming.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// `g` cannot start (no stack): say so, naming it, and drop its closure, whose join
    /// completer then hands `err` to `join`.
    #[cold]
    fn cannot_start(&self, g: &GRef, ex: &mut super::goroutine::Exec, err: &std::io::Error) {
        let who = super::report::who(g.id, Some(g.meta.site));
        let msg = format!("gonet: {who} could not start: {err}");
        self.rt.reports.warn(&msg);
        let body = ex.start.take();
        super::join::with_drop_reason(&msg, || {
            contain::drop_contained(g.id, "dropping a goroutine that could not start", body)
        });
        // It is done: `stats().alive` (spawned − finished) must not count it.
        let st = &self.shared.stats;
        st.finished.set_local(st.finished.get() + 1);
    }

    /// `g` returned: recycle its stack and forget it.
    fn finish(&self, g: GRef) {
        // SAFETY: owner thread with the run token (g just returned on this thread).
        let ex = unsafe { g.exec() };
        let coro = ex.coro.take().expect("finished goroutine has its coroutine");
        self.stacks.borrow_mut().put(coro.into_stack());
        let mut live = self.live.borrow_mut();
        // SAFETY: as above.
        let i = unsafe { *g.live_index.get() };
        live.swap_remove(i);
        if let Some(moved) = live.get(i) {
            // SAFETY: `moved` is owned by this worker too.
            unsafe { *moved.live_index.get() = i };
        }
        self.shared.stats.live.set_local(live.len() as u64);
        let st = &self.shared.stats;
        st.finished.set_local(st.finished.get() + 1);
    }

    /// Runtime shutdown: drop every goroutine of this worker on this thread, unwinding the
    /// stacks of those still parked so their destructors run here.
    fn shutdown(&self) {
        self.shared.close();
        SHUTTING_DOWN.with(|s| s.set(true));
        loop {
            let live = std::mem::take(&mut *self.live.borrow_mut());
            if live.is_empty() {
                break;
            }
            for g in live {
                // SAFETY: owner thread; the goroutine is not running (we are on the worker
                // stack), so nobody else touches its execution state.
                let coro = unsafe { g.exec().coro.take() };
                // Destructors on the unwinding stack run "on" the goroutine: a park they attempt
                // is absorbed by the unwinder instead of failing as a park outside a goroutine.
                self.current.set(Arc::as_ptr(&g));
                contain::unwinding(g.id, || drop(coro));
                self.current.set(std::ptr::null());
            }
        }
        // Tasks homed here: their runners were unwound above, so no poll is in progress.
        super::task::shutdown(self);
        // Goroutines that never started: their closures hold user values whose `Drop` may
        // panic or wake other goroutines (whose tokens then land in `runq`, emptied below).
        while let Some(g) = self.spawnq.pop() {
            let id = g.id;
            contain::drop_contained(id, "dropping the closure of a goroutine that never ran", g);
        }
        // Taken out first, so a callback's destructor that reaches this heap finds it free.
        let mut timers = std::mem::take(&mut *self.timers.borrow_mut());
        contain::catch(0, "dropping timers at shutdown", || timers.clear());
        let runq = std::mem::take(&mut *self.runq.borrow_mut());
        // Unstarted goroutines placed here or spawned with `spawn_local` hold user closures.
        for g in runq {
            contain::drop_contained(g.id, "dropping a goroutine that never ran", g);
        }
        SHUTTING_DOWN.with(|s| s.set(false));
    }
}

/// The drop guard of invariant 4: runs before any field of the worker is dropped.
impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.close();
        self.current.set(std::ptr::null());
        let me: *const Worker = self;
        let _ = WORKER.try_with(|w| {
            if std::ptr::eq(w.get(), me) {
                w.set(std::ptr::null());
            }
        });
        // `run` unwinds every live goroutine at shutdown and never unwinds itself, so this
        // list is empty unless the worker never ran its loop. A goroutine left here cannot be
        // unwound safely any more (its destructors would run without their worker): leak it.
        std::mem::forget(std::mem::take(self.live.get_mut()));
    }
}

thread_local! {
    static SHUTTING_DOWN: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is unwinding goroutines because its runtime is shutting down.
pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.with(|s| s.get())
}
