//! Tasks: futures the runtime polls on a few shared *runner* goroutines instead of one
//! goroutine (and one stack) each — what `hyper::Executor` and `hyper::Server` run
//! connections and HTTP/2 streams on.
//!
//! A goroutine per future (`go(move || block_on(fut))`) costs a stack per future, and each
//! poll runs on its own stack: hyper's poll chain touches ~10 KB of stack per request, at a
//! different address for every connection, so 100 connections keep 100 stacks warm. A task is
//! a boxed future and a state word; whoever wakes it queues it on its *home* worker, where a
//! runner goroutine polls queued tasks one after the other on one hot stack (as tokio's
//! worker does). A future may still block goroutine-style inside `poll` (a gonet channel
//! receive, `time::sleep`, a blocking socket call): the runner goroutine parks with it, and
//! another runner takes the queue meanwhile. So a task behaves as a goroutine does, and costs
//! a stack only while it blocks.
//!
//! # The state word
//!
//! ```text
//!   IDLE ──wake──▶ SCHEDULED ──runner takes it──▶ RUNNING ──Pending──▶ IDLE
//!                      ▲                            │  ▲
//!                      └────── Pending ── NOTIFIED ◀┘  │ (wake while running)
//!   RUNNING ──Ready, panic──▶ DONE ◀── shutdown (any state)
//! ```
//!
//! Invariants:
//! 1. A SCHEDULED task is in exactly one queue (its home worker's, or in flight to it), and
//!    only the state change that made it SCHEDULED put it there: a task is queued at most
//!    once, and whoever takes it from the queue is the only one who may poll it.
//! 2. The future is touched only by the home worker's thread: polled by a runner that took the
//!    task from the queue (RUNNING), dropped by that runner when it completes or panics, or
//!    dropped by the home worker's shutdown. The state changes are acquire/release, so each
//!    poll sees the previous one's writes.
//! 3. A wake is never lost: it finds IDLE (queues the task), RUNNING (leaves NOTIFIED, and the
//!    runner re-queues the task after its poll) or SCHEDULED/NOTIFIED (a poll is coming).
//!    Wakes after DONE do nothing; wakers hold the `Arc<Task>`, never the future.
//! 4. A task never migrates: its home is the worker that adopted it (the least loaded one at
//!    spawn, as goroutines are placed; `worker.rs` invariant 5), which counts it in its load.
//!    A wake on another thread reaches the home worker through a short goroutine started
//!    there (`go_on`).
//! 5. Queued tasks are always drained: while the queue is not empty, some runner of the worker
//!    is *active* (runnable or running, not parked idle, not blocked inside a poll). `active`
//!    counts them: a runner parking idle or blocking in a poll (seen by `worker::suspend`,
//!    which knows the parking goroutine) lowers it, and a queue push or a block that leaves
//!    it at 0 wakes an idle runner or starts a new one.
//! 6. At shutdown the home worker drops every task's future (contained), after its
//!    goroutines, runners included, were unwound: no runner is mid-poll then.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use super::contain;
use super::goroutine::GRef;
use super::park::park_g;
use super::wait::Wait;
use super::worker::{self, Worker, WorkerShared};

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

/// Tasks a runner polls before it yields its worker to other goroutines and to I/O.
const BUDGET: usize = 64;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A future run by the runtime (see the top of this file).
pub(crate) struct Task {
    state: AtomicU8,
    /// The worker that adopted it (invariant 4); set once.
    home: OnceLock<Arc<WorkerShared>>,
    /// Its index in the home worker's `all` list; home thread only.
    index: Cell<usize>,
    /// The future, until it completes; home thread only (invariant 2).
    future: UnsafeCell<Option<BoxFuture>>,
    /// What reports call it, and where it was spawned.
    name: &'static str,
    site: &'static Location<'static>,
}

// SAFETY: `index` and `future` are touched only by the home worker's thread (invariant 2),
// after the acquire of the state change that gave it the task; the future is `Send`.
unsafe impl Send for Task {}
// SAFETY: as above; other threads only read `state`, `home` (a `OnceLock`), `name`, `site`.
unsafe impl Sync for Task {}

/// A worker's task state: its queue, its runners and the tasks it is home to. Lives in the
/// `Worker`; touched only on its thread.
#[derive(Default)]
pub(crate) struct Local {
    queue: RefCell<VecDeque<Arc<Task>>>,
    /// Run tokens of runners parked idle (the queue was empty).
    idle: RefCell<Vec<GRef>>,
    /// Runners that will look at the queue before they park (invariant 5).
    active: Cell<usize>,
    /// Every unfinished task homed here, for shutdown (invariant 6).
    all: RefCell<Vec<Arc<Task>>>,
}

/// Runs `fut` as a task named `name`, homed on the least loaded worker (this one among
/// equals): long-lived tasks (connections) spread over the workers as goroutines do. Must be
/// called inside a runtime.
#[track_caller]
pub(crate) fn spawn(name: &'static str, fut: impl Future<Output = ()> + Send + 'static) {
    let task = new_task(name, Location::caller(), Box::pin(fut));
    let w = worker::current().expect("gonet: a task spawned outside a runtime");
    match w.least_loaded() {
        None => adopt(w, task),
        Some(target) => {
            let t = task.clone();
            if crate::runtime::go_on(&target, "gonet task start", move || {
                let w = worker::current().expect("a goroutine runs on a worker");
                adopt(w, t)
            })
            .is_err()
            {
                drop_future(&task);
            }
        }
    }
}

/// Runs `fut` as a task homed on the calling worker, queued behind the tasks already queued
/// there (hyper's HTTP/2 streams: they answer before their connection flushes). Off a worker,
/// as [`spawn`].
#[track_caller]
pub(crate) fn spawn_here(name: &'static str, fut: impl Future<Output = ()> + Send + 'static) {
    let task = new_task(name, Location::caller(), Box::pin(fut));
    match worker::current() {
        Some(w) => adopt(w, task),
        None => {
            let t = task.clone();
            crate::runtime::go_named(name, move || {
                let w = worker::current().expect("a goroutine runs on a worker");
                adopt(w, t)
            });
        }
    }
}

fn new_task(name: &'static str, site: &'static Location<'static>, fut: BoxFuture) -> Arc<Task> {
    Arc::new(Task {
        state: AtomicU8::new(SCHEDULED),
        home: OnceLock::new(),
        index: Cell::new(usize::MAX),
        future: UnsafeCell::new(Some(fut)),
        name,
        site,
    })
}

/// Makes `w` the home of a new SCHEDULED `task` and queues it (invariants 1, 4).
fn adopt(w: &Worker, task: Arc<Task>) {
    if w.home_task(&task).is_err() {
        drop_future(&task); // the worker is shutting down
        return;
    }
    {
        let mut all = w.tasks.all.borrow_mut();
        task.index.set(all.len());
        all.push(task.clone());
        w.shared.homed_tasks.store(all.len(), Ordering::Relaxed);
    }
    enqueue(w, task);
}

/// Queues a SCHEDULED task on its home worker `w` (the caller's) and makes sure a runner will
/// take it (invariant 5).
fn enqueue(w: &Worker, task: Arc<Task>) {
    let l = &w.tasks;
    l.queue.borrow_mut().push_back(task);
    if l.active.get() == 0 {
        wake_a_runner(w);
    }
}

/// No runner of `w` drains its queue: wake an idle one, or start one (invariant 5).
fn wake_a_runner(w: &Worker) {
    let l = &w.tasks;
    let idle = l.idle.borrow_mut().pop();
    match idle {
        Some(g) => {
            l.active.set(l.active.get() + 1);
            super::park::ready(g);
        }
        None => start_runner(w),
    }
}

/// Starts a runner goroutine on `w` (counted active from now).
fn start_runner(w: &Worker) {
    let l = &w.tasks;
    l.active.set(l.active.get() + 1);
    if let Err(e) = crate::runtime::go_local("gonet task runner", runner) {
        l.active.set(l.active.get() - 1);
        w.rt.reports.warn(&format!(
            "gonet: could not start a task runner ({e}); {} queued task(s) wait for one",
            l.queue.borrow().len()
        ));
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return, // SCHEDULED, NOTIFIED: a poll is coming; DONE: nothing to do
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s == IDLE {
            self.send_home();
        }
    }
}

impl Task {
    /// Records the home worker (once, by `Worker::home_task`).
    pub(crate) fn set_home(&self, w: Arc<WorkerShared>) {
        let _ = self.home.set(w);
    }

    /// Queues this SCHEDULED task on its home worker, from whatever thread woke it.
    fn send_home(self: &Arc<Self>) {
        let home = self.home.get().expect("a task is homed before anything can wake it");
        if let Some(w) = worker::current() {
            if Arc::ptr_eq(&w.shared, home) {
                enqueue(w, self.clone());
                return;
            }
        }
        let t = self.clone();
        // A refusal means the home worker has shut down, and dropped the future already.
        let _ = crate::runtime::go_on(home, "gonet task wake", move || {
            let w = worker::current().expect("a goroutine runs on a worker");
            enqueue(w, t);
        });
    }
}

/// A runner goroutine's body: polls queued tasks, parks idle when there are none.
fn runner() {
    let w = worker::current().expect("a runner runs on a worker");
    let mut polled = 0;
    loop {
        let next = w.tasks.queue.borrow_mut().pop_front();
        match next {
            Some(task) => {
                run(w, task);
                polled += 1;
                if polled == BUDGET {
                    polled = 0;
                    crate::runtime::yield_now();
                }
            }
            None => {
                polled = 0;
                park_idle();
            }
        }
    }
}

/// Parks the calling runner on its worker's idle list, unless tasks were queued meanwhile.
fn park_idle() {
    park_g(|g| {
        let w = worker::current().expect("a commit runs on a worker");
        let l = &w.tasks;
        if !l.queue.borrow().is_empty() {
            return Err(g);
        }
        g.wait.set(Wait::TaskIdle);
        l.active.set(l.active.get() - 1);
        l.idle.borrow_mut().push(g);
        Ok(())
    });
    // Whoever woke us counted us active again (`enqueue`).
}

/// Polls `task` once on the calling runner (invariant 2).
fn run(w: &Worker, task: Arc<Task>) {
    if task.state.compare_exchange(SCHEDULED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err()
    {
        return; // DONE: dropped at shutdown while queued
    }
    // SAFETY: home thread, and the RUNNING state we set makes this runner the only one that
    // may touch the future (invariant 2); the reference ends before the state changes again.
    let fut = unsafe { &mut *task.future.get() };
    let Some(f) = fut.as_mut() else { return };
    let waker = Waker::from(task.clone());
    let mut cx = Context::from_waker(&waker);
    let g = worker::current_g().expect("a runner is a goroutine");
    g.task_poll.set(true);
    let arg: *const Task = Arc::as_ptr(&task);
    let r = contain::with_context(describe, arg.cast(), || {
        panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(&mut cx)))
    });
    g.task_poll.set(false);
    match r {
        Ok(Poll::Pending) => {
            if task
                .state
                .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // NOTIFIED: woken during the poll; poll again after the others queued.
                task.state.store(SCHEDULED, Ordering::Release);
                w.tasks.queue.borrow_mut().push_back(task);
            }
        }
        Ok(Poll::Ready(())) => finish(w, &task),
        Err(p) if worker::shutting_down() => {
            // The runtime unwinds this runner's stack (invariant 6): let the unwind go on.
            panic::resume_unwind(p)
        }
        Err(p) => {
            // The panic hook already printed it, naming the task (`describe`).
            contain::drop_payload(g.id, p);
            finish(w, &task);
        }
    }
}

/// For the panic hook: names the task a runner polls.
fn describe(arg: *const ()) -> String {
    // SAFETY: `run` passes a pointer to the task it holds an `Arc` of while the poll runs,
    // and the hook calls this only during that poll.
    let t = unsafe { &*arg.cast::<Task>() };
    format!("task {:?} (spawned at {})", t.name, t.site)
}

/// The task completed or panicked: drop its future and forget it.
fn finish(w: &Worker, task: &Arc<Task>) {
    drop_future(task);
    let mut all = w.tasks.all.borrow_mut();
    let i = task.index.replace(usize::MAX);
    if i < all.len() && Arc::ptr_eq(&all[i], task) {
        all.swap_remove(i);
        if let Some(moved) = all.get(i) {
            moved.index.set(i);
        }
    }
    w.shared.homed_tasks.store(all.len(), Ordering::Relaxed);
}

/// Marks `task` DONE and drops its future, containing a panic there. Home thread, or a task
/// never homed (no other thread can reach its future).
fn drop_future(task: &Task) {
    task.state.store(DONE, Ordering::Release);
    // SAFETY: the caller is the home thread with no poll in progress (a runner's own
    // completion, or shutdown after the runners were unwound), or the task was never homed.
    let fut = unsafe { (*task.future.get()).take() };
    if fut.is_some() {
        let gid = worker::current_goroutine_id().unwrap_or(0);
        contain::drop_contained(gid, &format!("dropping task {:?}", task.name), fut);
    }
}

/// A runner of `w` is about to park inside a task's poll (`worker::suspend` checks): it stops
/// draining the queue until it resumes (invariant 5), and another runner takes over if tasks
/// wait.
pub(crate) fn blocking(w: &Worker) {
    let l = &w.tasks;
    l.active.set(l.active.get() - 1);
    if l.active.get() == 0 && !l.queue.borrow().is_empty() {
        wake_a_runner(w);
    }
}

/// A runner of `w` that blocked inside a poll has resumed: it drains the queue again.
pub(crate) fn unblocked(w: &Worker) {
    w.tasks.active.set(w.tasks.active.get() + 1);
}

/// Worker shutdown (invariant 6), after every goroutine was unwound: drops the future of every
/// task homed here and empties the queue. Dropping a future may wake or spawn tasks: repeat
/// until nothing is left.
pub(crate) fn shutdown(w: &Worker) {
    loop {
        let all = std::mem::take(&mut *w.tasks.all.borrow_mut());
        let queued = std::mem::take(&mut *w.tasks.queue.borrow_mut());
        drop(std::mem::take(&mut *w.tasks.idle.borrow_mut()));
        if all.is_empty() && queued.is_empty() {
            break;
        }
        for t in &all {
            drop_future(t);
        }
        drop(queued);
    }
    w.tasks.active.set(0);
    w.shared.homed_tasks.store(0, Ordering::Relaxed);
}
