//! Runtime statistics: per-worker counters, summed by [`stats`].
//!
//! Most counters have a single writer (their worker) and are bumped with a plain load and
//! store, which costs no atomic read-modify-write on the scheduling path.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written only by its worker thread.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Sets the value; only the owning worker thread calls this.
    #[inline]
    pub(crate) fn set_local(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }
}

/// One worker's counters.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) spawned: Counter,
    pub(crate) finished: Counter,
    pub(crate) switches: Counter,
    pub(crate) parks: Counter,
    pub(crate) steals: Counter,
    pub(crate) polls: Counter,
    /// Wake-ups handed to this worker by other threads (many writers).
    pub(crate) remote_wakeups: AtomicU64,
    /// Resumes of this worker's goroutines after a park.
    pub(crate) wakeups: Counter,
    pub(crate) sleeps: Counter,
    /// Events its epoll returned that carry input (`EPOLLIN`). With the wake-ups other
    /// threads hand it, they are the arrivals that end dry spells, and the unit of work an
    /// idle policy epoch divides its CPU time by (`idle_policy.rs`): one per request whatever
    /// the spin window, where every event or every goroutine run would not be. The reactor
    /// runs the handlers of a batch of ready connections on one goroutine, so goroutine runs
    /// per request fall as requests gather during sleeps: at 100 busy TLS connections,
    /// counting them made sleeping look 7–9 % dearer per unit than it was.
    pub(crate) inputs: Counter,
    pub(crate) spins: Counter,
    pub(crate) spin_hits: Counter,
    /// Wall time spent spinning, in nanoseconds.
    pub(crate) spin_ns: Counter,
    /// The idle policy's current spin window and measured sleep cost (ns).
    pub(crate) spin_window_ns: Counter,
    pub(crate) sleep_cost_ns: Counter,
    /// Entries in the worker's timer heap (dead ones not yet swept included), as of the
    /// worker's last scheduling round.
    pub(crate) timers: Counter,
    /// Started, unfinished goroutines owned by this worker.
    pub(crate) live: Counter,
    /// Unstarted goroutines this worker placed on a less loaded one (`worker.rs` invariant 5).
    pub(crate) placed: Counter,
    /// Reactor connections owned by this worker (written by the reactor from any thread).
    pub(crate) connections: AtomicU64,
}

/// A snapshot of one worker's counters.
#[derive(Debug, Clone, Default)]
pub struct WorkerSnapshot {
    /// Goroutines spawned on this worker.
    pub spawned: u64,
    /// Goroutines that ran to completion on this worker.
    pub finished: u64,
    /// Context switches into goroutines.
    pub switches: u64,
    /// Parks of goroutines owned by this worker.
    pub parks: u64,
    /// Unstarted goroutines this worker stole from others.
    pub steals: u64,
    /// Wake-ups of goroutines owned by this worker.
    pub wakeups: u64,
    /// Of those, wake-ups that came from other threads (through the inbox).
    pub remote_wakeups: u64,
    /// epoll_wait calls.
    pub polls: u64,
    /// Times the worker ran dry and slept (a blocking `epoll_wait`).
    pub sleeps: u64,
    /// I/O events that carried input (`EPOLLIN`): about one per request that arrives on a
    /// request/response connection.
    pub inputs: u64,
    /// Times the worker ran dry and spun first (see `Builder::spin`).
    pub spins: u64,
    /// Of those, spins that found work before the window ended.
    pub spin_hits: u64,
    /// Wall time the worker has spent spinning, in nanoseconds: CPU burnt waiting for work.
    pub spin_ns: u64,
    /// How long the worker spins now when it runs dry, in nanoseconds: the configured window,
    /// or with [`SpinMode::Adaptive`](crate::runtime::SpinMode) the measured cost of a sleep
    /// when that is shorter; 0 when spinning is off or the adaptive policy chose not to spin.
    pub spin_window_ns: u64,
    /// The CPU time one of the worker's sleeps costs it (a blocking `epoll_wait`, the switch
    /// out and back in), in nanoseconds: a moving average of the sleeps measured so far
    /// (adaptive mode only; before the first sample, the configured window).
    pub sleep_cost_ns: u64,
    /// Entries in the worker's timer heap at its last scheduling round, cancelled ones not
    /// yet swept included: what the timers cost in memory.
    pub timers: u64,
    /// Goroutines that have started on this worker and not finished: the goroutines it owns
    /// (a started goroutine never changes worker), e.g. one per connection it serves.
    pub live: u64,
    /// Goroutines this worker was about to start but handed, unstarted, to a less loaded
    /// worker (placement, see `docs/ARCHITECTURE.md`).
    pub placed: u64,
    /// Open reactor connections (`reactor::EventLoop`) owned by this worker.
    pub connections: u64,
    /// Unfinished tasks homed on this worker: futures the runtime polls on shared runner
    /// goroutines, such as `gonet::hyper`'s connections and HTTP/2 streams (a task, like a
    /// started goroutine, never changes worker).
    pub tasks: u64,
}

/// A snapshot of a runtime's statistics, from [`stats`].
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Goroutines spawned and not yet finished.
    pub alive: u64,
    /// Goroutines spawned since the runtime started.
    pub spawned: u64,
    /// Goroutines parked right now.
    pub parked: u64,
    /// Workers spinning right now (polling for work before they sleep; see
    /// [`Builder::spin`](crate::Builder::spin)): at most half the workers, rounded up.
    pub spinning: u64,
    /// Per worker, in worker order.
    pub workers: Vec<WorkerSnapshot>,
}

/// Statistics of the runtime the caller runs on; `None` outside a runtime.
pub fn stats() -> Option<Stats> {
    let w = super::worker::current()?;
    let mut s = Stats::default();
    let mut finished = 0;
    let mut parks = 0;
    let mut wakeups = 0;
    for ws in &w.rt.workers {
        let st = &ws.stats;
        let snap = WorkerSnapshot {
            spawned: st.spawned.get(),
            finished: st.finished.get(),
            switches: st.switches.get(),
            parks: st.parks.get(),
            steals: st.steals.get(),
            wakeups: st.wakeups.get(),
            remote_wakeups: st.remote_wakeups.load(Ordering::Relaxed),
            polls: st.polls.get(),
            sleeps: st.sleeps.get(),
            inputs: st.inputs.get(),
            spins: st.spins.get(),
            spin_hits: st.spin_hits.get(),
            spin_ns: st.spin_ns.get(),
            spin_window_ns: st.spin_window_ns.get(),
            sleep_cost_ns: st.sleep_cost_ns.get(),
            timers: st.timers.get(),
            live: st.live.get(),
            placed: st.placed.get(),
            connections: st.connections.load(Ordering::Relaxed),
            tasks: ws.homed_tasks.load(Ordering::Relaxed) as u64,
        };
        s.spawned += snap.spawned;
        finished += snap.finished;
        parks += snap.parks;
        wakeups += snap.wakeups;
        s.workers.push(snap);
    }
    s.alive = s.spawned.saturating_sub(finished);
    s.parked = parks.saturating_sub(wakeups);
    s.spinning = w.rt.spinning.load(Ordering::Relaxed) as u64;
    Some(s)
}
