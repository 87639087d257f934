//! Goroutine stacks and the per-worker pool that recycles them.
//!
//! A stack is `[low, low + GUARD)` guard page + `[low + GUARD, low + GUARD + size)` usable,
//! mapped `MAP_NORESERVE`, so only the pages a goroutine touches cost memory. Two sources:
//! * slabs (`slab.rs`, Linux ≥ 6.13): many stacks per mapping, guard regions installed with
//!   `MADV_GUARD_INSTALL`, no mapping of their own;
//! * otherwise one mapping per stack with a `PROT_NONE` first page: two kernel mappings each,
//!   which caps a process near 32k goroutines at the default `vm.max_map_count`.
//!
//! The pool (Go's stack cache, with the release that Go's GC does) keeps every stack its
//! goroutines give back, so a burst that comes back finds its stacks already mapped and
//! faulted in. It shrinks lazily: every [`TRIM_PERIOD`], the stacks that sat unused in the
//! pool for the whole period (its low-water mark), beyond [`KEEP`], go back to the kernel —
//! slab stacks with `MADV_DONTNEED` onto the slab free list, mapped ones with `munmap`.
//!
//! A live goroutine's stack keeps the pages its deepest calls touched. [`release_below`] gives
//! back the part of a suspended goroutine's stack that lies a page or more below where it
//! suspended; its worker calls it for goroutines parked a second or more
//! (`Worker::release_idle_stacks`).

use std::collections::VecDeque;
use std::io;
use std::ptr;
use std::time::{Duration, Instant};

use corosensei::stack::{Stack as CoroStack, StackPointer};

use super::slab;

/// Size of the guard page below every stack.
pub(crate) const GUARD: usize = 4096;

/// How often a pool gives back the stacks it did not need.
pub(crate) const TRIM_PERIOD: Duration = Duration::from_secs(1);
/// Stacks a pool always keeps.
const KEEP: usize = 64;
/// Slab stacks a pool takes from the free list at once.
const BATCH: usize = 64;
/// Stacks given back per trim call, so that giving back a large burst never holds the
/// worker for long: the rest follows on later calls.
const CHUNK: usize = 64;

/// A goroutine stack: `[low, low + GUARD)` is the guard page, `[low + GUARD, low + GUARD +
/// size)` is usable. Dropping it gives it back to the kernel (slab free list or `munmap`).
pub(crate) struct Stack {
    /// Lowest address (the start of the guard page).
    low: usize,
    /// Usable size in bytes (a multiple of the page size).
    size: usize,
    /// Carved from a slab (`slab.rs`) rather than mapped alone.
    slab: bool,
}

// SAFETY: a `Stack` is an owned memory region with no thread affinity; whoever holds it has
// exclusive use of it.
unsafe impl Send for Stack {}

impl Stack {
    /// A new stack of `size` usable bytes (rounded up to whole pages) plus a guard page.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let size = normalize(size);
        if slab::enabled() {
            let mut one = Vec::with_capacity(1);
            slab::take(size, 1, &mut one).map_err(|e| exhausted(e, size))?;
            return Ok(one.pop().expect("slab::take gives at least one stack"));
        }
        Stack::map(size)
    }

    /// A slab slot as a stack.
    ///
    /// # Safety
    /// `low` is a free slot of a slab of stacks of `size` usable bytes, handed out only here.
    pub(crate) unsafe fn from_slab(low: usize, size: usize) -> Stack {
        Stack { low, size, slab: true }
    }

    /// Today's scheme: one mapping per stack, its first page `PROT_NONE`.
    fn map(size: usize) -> io::Result<Stack> {
        let total = size + GUARD;
        // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
        // existing memory; the result is checked before use.
        let low = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if low == libc::MAP_FAILED {
            return Err(exhausted(io::Error::last_os_error(), size));
        }
        let stack = Stack { low: low as usize, size, slab: false };
        // SAFETY: the first page lies inside the mapping made just above and nothing uses it.
        if unsafe { libc::mprotect(low, GUARD, libc::PROT_NONE) } != 0 {
            return Err(exhausted(io::Error::last_os_error(), size));
        }
        Ok(stack)
    }

    /// The guard page's address range `[lo, hi)`.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.low, self.low + GUARD)
    }
}

/// Bytes kept below a suspended goroutine's recorded stack pointer when its idle stack is
/// released: the context switch saves its registers within 192 bytes below that point
/// (`prefetch.rs`); a whole page is kept.
const RELEASE_MARGIN: usize = GUARD;

/// Gives back to the kernel the pages of a *suspended* goroutine's stack that lie wholly
/// below its recorded stack pointer `sp` less [`RELEASE_MARGIN`], down to `low` (the lowest
/// usable address, just above the guard): the frames that were there returned before it
/// suspended, so nothing lives there. The pages read back as zeros when the goroutine's
/// calls reach that deep again. Returns whether it released any.
///
/// # Safety
/// `[low, sp)` is the unused part of the stack of a goroutine that is suspended at `sp` (the
/// `sp` its `suspend` recorded) and that nobody resumes until this returns.
pub(crate) unsafe fn release_below(low: usize, sp: usize) -> bool {
    let hi = sp.saturating_sub(RELEASE_MARGIN) & !(GUARD - 1);
    if low == 0 || hi <= low {
        return false;
    }
    // SAFETY: by the contract, `[low, hi)` is a page-aligned part of a private anonymous
    // stack mapping holding no live data; MADV_DONTNEED replaces it with zero-fill pages.
    unsafe { libc::madvise(low as *mut libc::c_void, hi - low, libc::MADV_DONTNEED) == 0 }
}

/// The usable size actually mapped for a requested size: whole pages, at least four.
fn normalize(size: usize) -> usize {
    size.max(GUARD * 4).next_multiple_of(GUARD)
}

/// Turns an `mmap`/`mprotect` failure into an error that names the likely cause.
fn exhausted(err: io::Error, size: usize) -> io::Error {
    let msg = if slab::enabled() {
        format!(
            "gonet: cannot allocate a goroutine stack of {size} bytes ({err}); the likely \
             limit is the address space (ulimit -v) or vm.max_map_count"
        )
    } else {
        format!(
            "gonet: cannot allocate a goroutine stack of {size} bytes ({err}); each goroutine \
             stack takes two memory mappings on this kernel (guard regions need Linux 6.13), \
             so the likely limit is vm.max_map_count (raise it with \
             `sysctl -w vm.max_map_count=1000000`) or the address-space limit"
        )
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.slab {
            slab::release([(self.low, self.size)]);
            return;
        }
        // SAFETY: the region was mapped by `Stack::map` with exactly this range and no
        // coroutine runs on it any more (a `Stack` is only dropped once its coroutine is gone).
        unsafe { libc::munmap(self.low as *mut libc::c_void, self.size + GUARD) };
    }
}

// SAFETY: `base` and `limit` bound a mapping that stays valid while the `Stack` lives; both are
// page-aligned, hence aligned to `STACK_ALIGNMENT`, and `limit` includes the guard page.
unsafe impl CoroStack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.low + GUARD + self.size).expect("stack base is non-null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.low).expect("stack limit is non-null")
    }
}

/// A per-worker cache of stacks of one size. Stacks return here when their goroutine ends.
pub(crate) struct StackPool {
    size: usize,
    /// Most recently returned last (popped first: its pages are the warmest); given back
    /// from the front (the coldest).
    free: VecDeque<Stack>,
    /// The fewest stacks `free` held since the last trim: that many were not needed.
    low: usize,
    /// When the current trim period ends.
    period_end: Option<Instant>,
    /// Stacks found unneeded at the end of the last period and not given back yet.
    to_release: usize,
}

impl StackPool {
    pub(crate) fn new(size: usize) -> StackPool {
        StackPool {
            size: normalize(size),
            free: VecDeque::new(),
            low: 0,
            period_end: None,
            to_release: 0,
        }
    }

    /// A stack from the pool, or new ones when it is empty (a batch of slab stacks, or one
    /// fresh mapping).
    #[inline]
    pub(crate) fn get(&mut self) -> io::Result<Stack> {
        if let Some(s) = self.free.pop_back() {
            self.low = self.low.min(self.free.len());
            return Ok(s);
        }
        self.low = 0;
        if slab::enabled() {
            let mut batch = Vec::with_capacity(BATCH);
            slab::take(self.size, BATCH, &mut batch).map_err(|e| exhausted(e, self.size))?;
            let s = batch.pop().expect("slab::take gives at least one stack");
            self.free.extend(batch);
            return Ok(s);
        }
        Stack::map(self.size)
    }

    /// Returns a stack to the pool.
    #[inline]
    pub(crate) fn put(&mut self, stack: Stack) {
        if stack.size == self.size {
            self.free.push_back(stack);
        }
    }

    /// Ends the trim period if `now` is past it, noting the stacks beyond [`KEEP`] that stayed
    /// unused all period, and gives back up to [`CHUNK`] of those (the coldest first).
    /// Returns when to call again, if the pool holds more than it keeps: at once while some
    /// are still to be given back, else at the end of the period (an idle worker sleeps no
    /// longer than that).
    pub(crate) fn trim(&mut self, now: Instant) -> Option<Instant> {
        let end = *self.period_end.get_or_insert(now + TRIM_PERIOD);
        if now >= end {
            self.to_release = self.low.min(self.free.len()).saturating_sub(KEEP);
            self.low = self.free.len();
            self.period_end = Some(now + TRIM_PERIOD);
        }
        let k = self.to_release.min(CHUNK).min(self.free.len().saturating_sub(KEEP));
        if k > 0 {
            let old = self.free.drain(..k);
            if slab::enabled() {
                slab::release(old.map(Stack::into_slot));
            } else {
                drop(old);
            }
            self.low = self.low.min(self.free.len());
        }
        self.to_release -= k.min(self.to_release);
        if k == 0 {
            self.to_release = 0;
        }
        if self.to_release > 0 {
            Some(now)
        } else {
            (self.free.len() > KEEP).then(|| self.period_end.expect("set above"))
        }
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        if slab::enabled() {
            slab::release(self.free.drain(..).map(Stack::into_slot));
        }
    }
}

impl Stack {
    /// The slot of a slab stack, which the caller hands to `slab::release`.
    fn into_slot(self) -> (usize, usize) {
        debug_assert!(self.slab);
        let slot = (self.low, self.size);
        std::mem::forget(self);
        slot
    }
}
