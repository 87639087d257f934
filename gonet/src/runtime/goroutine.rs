//! The goroutine object `G`: its id, the worker that owns it once started, and its coroutine.
//!
//! A `G` is shared through [`GRef`] (an `Arc`), but its execution state — the unstarted
//! closure, the coroutine and its stack, the yielder pointer — sits in an `UnsafeCell` that
//! only one thread may touch:
//!
//! * before the first run, the thread that holds the goroutine's unique run token (it popped
//!   the `GRef` from a run queue; see the token rule in `park.rs`) — this is how an unstarted
//!   goroutine can be stolen by another worker;
//! * from the first run on, the owning worker's thread and nobody else. A started goroutine
//!   never migrates: its stack may hold `!Send` values and thread-local references.
//!
//! When the owner drops the coroutine (the goroutine returned, or the runtime shuts down) the
//! cell is emptied on the owner thread, so a `GRef` that outlives its goroutine on another
//! thread only frees the small shell.

use std::cell::{Cell, UnsafeCell};
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use super::stack::Stack;
use super::wait::Wait;
use super::worker::WorkerShared;

/// What a goroutine hands to its worker when it suspends.
pub(crate) enum Suspend {
    /// `yield_now`: put me at the back of the run queue.
    Yield,
    /// Park: run this commit function on the worker's stack with my run token. It returns
    /// `Err(token)` to refuse the park (the goroutine is resumed at once).
    Park(*mut (dyn FnMut(GRef) -> Result<(), GRef> + 'static)),
    /// A parked goroutine resumed only to capture its backtrace for a dump (`dump.rs`) is
    /// suspended again, its wait unchanged.
    Dumped,
}

/// Who a goroutine is, for dumps and reports: set at spawn, never changed.
pub(crate) struct Meta {
    /// The name given with `go_named`.
    pub(crate) name: Option<Arc<str>>,
    /// Where it was spawned (`#[track_caller]` of `go`).
    pub(crate) site: &'static Location<'static>,
    /// The goroutine that spawned it (0: a plain thread).
    pub(crate) parent: u64,
}

pub(crate) type Coro = Coroutine<(), Suspend, (), Stack>;

/// A shared handle to a goroutine. Holding the handle is not permission to run it; see the
/// run-token rule in `park.rs`.
pub(crate) type GRef = Arc<G>;

/// A goroutine.
pub(crate) struct G {
    /// Unique within the process, starting at 1.
    pub(crate) id: u64,
    /// The worker that first ran the goroutine (an `Arc` turned into a raw pointer; null
    /// before): set once, by that worker, before the first resume, and released on drop.
    /// Other threads read it only while holding the run token, which reached them through
    /// an acquire/release hand-off after the goroutine ran, so they see the store.
    owner: AtomicPtr<WorkerShared>,
    /// Index in the owner's live list (see `worker.rs`), touched only by the owner thread.
    pub(crate) live_index: UnsafeCell<usize>,
    /// The guard page of its stack, for the overflow handler; owner thread only.
    pub(crate) guard: Cell<(usize, usize)>,
    /// The coroutine's yielder, set by the coroutine body on its first run; owner thread only.
    pub(crate) yielder: Cell<*const Yielder<(), Suspend>>,
    /// Set while parked, for statistics; owner thread only.
    pub(crate) parked: Cell<bool>,
    /// Approximate stack pointer at its last suspension (0 before), so the worker can warm
    /// the stack before resuming it (`prefetch.rs`); owner thread only.
    pub(crate) sp: Cell<usize>,
    /// What it waits on while parked (`wait.rs`); owner thread only.
    pub(crate) wait: Cell<Wait>,
    /// When it last parked, on the coarse clock (`wait.rs`); owner thread only.
    pub(crate) parked_ms: Cell<u64>,
    /// The `parked_ms` of the park during which its idle stack was last released
    /// (`Worker::release_idle_stacks`); owner thread only.
    pub(crate) released_ms: Cell<u64>,
    /// What it runs for a higher layer, for the panic hook (`contain::with_context`); owner
    /// thread only.
    pub(crate) panic_ctx: Cell<Option<(super::contain::Describe, *const ())>>,
    /// Set while this goroutine, a task runner, polls a task (`task.rs`, invariant 5); owner
    /// thread only.
    pub(crate) task_poll: Cell<bool>,
    pub(crate) meta: Meta,
    cell: UnsafeCell<Exec>,
}

/// The execution state, touched only under the rules at the top of this file.
pub(crate) struct Exec {
    /// The body, until the first run.
    pub(crate) start: Option<Box<dyn FnOnce() + Send>>,
    /// The stack allocated at spawn (the main goroutine, `try_go`), until the first run builds
    /// the coroutine on it. `go` allocates none: the first run takes one from its worker's
    /// pool, so goroutines spawned in a burst and not yet run hold no stack (a burst of 100k
    /// then reuses a few hot stacks instead of faulting in 100k fresh ones).
    pub(crate) stack: Option<Stack>,
    /// The coroutine, from the first run until the goroutine ends.
    pub(crate) coro: Option<Coro>,
    /// Before the first run: the goroutine was placed on a worker (`worker.rs`, invariant 5),
    /// which counts it in its `incoming` and starts it without placing it again.
    pub(crate) placed: bool,
    /// Before the first run: the worker whose spawn queue it was pushed on (`usize::MAX`:
    /// none), which placement favours (`worker.rs`, invariant 5).
    pub(crate) origin: usize,
}

// SAFETY: the only non-thread-safe parts are the `UnsafeCell`s and `Cell`s, whose access is
// confined to a single thread at a time by the rules at the top of this file; the unstarted
// closure is `Send`.
unsafe impl Send for G {}
// SAFETY: as above: shared access from other threads reads only `id`, `owner` and `meta`
// (immutable after construction).
unsafe impl Sync for G {}

impl Drop for G {
    fn drop(&mut self) {
        if self.meta.name.is_some() {
            super::report::forget_name(self.id);
        }
        let p = *self.owner.get_mut();
        if !p.is_null() {
            // SAFETY: the pointer came from `Arc::into_raw` in `set_owner` and is released
            // once, here.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh goroutine id.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl G {
    pub(crate) fn new(
        id: u64,
        start: Box<dyn FnOnce() + Send>,
        stack: Option<Stack>,
        meta: Meta,
    ) -> GRef {
        Arc::new(G {
            id,
            owner: AtomicPtr::new(std::ptr::null_mut()),
            live_index: UnsafeCell::new(usize::MAX),
            guard: Cell::new((0, 0)),
            yielder: Cell::new(std::ptr::null()),
            parked: Cell::new(false),
            sp: Cell::new(0),
            released_ms: Cell::new(u64::MAX),
            wait: Cell::new(Wait::Unknown),
            panic_ctx: Cell::new(None),
            task_poll: Cell::new(false),
            parked_ms: Cell::new(0),
            meta,
            cell: UnsafeCell::new(Exec {
                start: Some(start),
                stack,
                coro: None,
                placed: false,
                origin: usize::MAX,
            }),
        })
    }

    /// The owning worker, once the goroutine has started.
    #[inline]
    pub(crate) fn owner(&self) -> Option<&WorkerShared> {
        let p = self.owner.load(Ordering::Acquire);
        // SAFETY: a non-null pointer came from `Arc::into_raw` in `set_owner` and the `G`
        // keeps that reference until it is dropped, so it outlives the borrow of `self`.
        unsafe { p.as_ref() }
    }

    /// The owning worker as a new `Arc`, for a caller that must keep it alive after handing
    /// the goroutine's token away.
    pub(crate) fn owner_arc(&self) -> Option<Arc<WorkerShared>> {
        let p: *const WorkerShared = self.owner()?;
        // SAFETY: `p` came from `Arc::into_raw` and the `G` (alive: `self`) holds that
        // reference, so the count is at least one while we add ours.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// Records the owner; called once, by the worker that starts the goroutine.
    pub(crate) fn set_owner(&self, w: Arc<WorkerShared>) {
        let old = self.owner.swap(Arc::into_raw(w).cast_mut(), Ordering::Release);
        debug_assert!(old.is_null(), "a goroutine's owner is set once");
    }

    /// The execution state.
    ///
    /// # Safety
    /// The caller is the thread allowed to touch it (see the top of this file) and holds no
    /// other reference obtained from this function.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn exec(&self) -> &mut Exec {
        // SAFETY: exclusive access is the caller's obligation, stated above.
        unsafe { &mut *self.cell.get() }
    }
}
