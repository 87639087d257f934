//! Size-classed, per-thread (per-worker) block pools, and the block counters.
//!
//! Classes are powers of two from [`MIN_BLOCK`] (4 KiB) to [`MAX_MALLOC`] (8 MiB). Each thread
//! keeps, per class, a free list of at most `max(1, POOL_CLASS_BYTES / class size)` blocks.
//! A block whose last reference drops goes onto the free list of the thread that dropped it
//! (so a slice sent to another thread feeds that thread's pool) or, when that list is full or
//! the thread is exiting, back to the allocator. Taking and returning a block touch only the
//! thread's own list: no lock, no atomic. Larger blocks (a scratch copy above `MAX_MALLOC`) are
//! allocated and freed one by one.

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::block::{Header, Kind};

/// Smallest block: the size of a block booked for a socket read or a small write.
pub const MIN_BLOCK: usize = 4096;

/// Number of size classes: `MIN_BLOCK << 0` up to `MIN_BLOCK << 11` = 8 MiB.
const CLASSES: usize = 12;

/// The largest `malloc` (and the largest class): 8 MiB. One contiguous writable range is at
/// most one block, and a larger one would be a single allocation a peer can force by declaring
/// a length; callers that need more write in pieces (`write_binary` does) or append their own
/// data with `write_direct`.
pub const MAX_MALLOC: usize = MIN_BLOCK << (CLASSES - 1);

/// Bytes a thread keeps free per class (at least one block).
const POOL_CLASS_BYTES: usize = 2 << 20;

/// Alignment of block data.
const ALIGN: usize = 16;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

struct Pool {
    free: [Vec<NonNull<Header>>; CLASSES],
    hits: u64,
    allocated: u64,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for list in &mut self.free {
            for h in list.drain(..) {
                free(h);
            }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { free: [const { Vec::new() }; CLASSES], hits: 0, allocated: 0 })
    };
}

/// The class holding `size` bytes, if one does.
#[inline]
fn class_of(size: usize) -> Option<usize> {
    if size <= MIN_BLOCK {
        Some(0)
    } else if size <= MAX_MALLOC {
        Some((size.next_power_of_two() / MIN_BLOCK).trailing_zeros() as usize)
    } else {
        None
    }
}

#[inline]
fn class_size(class: usize) -> usize {
    MIN_BLOCK << class
}

#[inline]
fn bound(class: usize) -> usize {
    (POOL_CLASS_BYTES / class_size(class)).max(1)
}

/// A block header with one reference and at least `size` bytes.
#[inline]
pub(super) fn get(size: usize) -> NonNull<Header> {
    let Some(class) = class_of(size) else {
        return fresh(size, Kind::Heap);
    };
    let reused = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let h = p.free[class].pop();
            p.hits += h.is_some() as u64;
            h
        })
        .ok()
        .flatten();
    match reused {
        Some(h) => {
            // SAFETY: a pooled header is live and unreferenced; this thread now owns it.
            unsafe { h.as_ref() }.revive();
            h
        }
        None => fresh(class_size(class), Kind::Pooled(class as u8)),
    }
}

#[cold]
fn fresh(cap: usize, kind: Kind) -> NonNull<Header> {
    let layout = Layout::from_size_align(cap, ALIGN).expect("block size overflows a Layout");
    // SAFETY: cap > 0 (at least MIN_BLOCK or above MAX_MALLOC).
    let data = unsafe { alloc_zeroed(layout) };
    let Some(data) = NonNull::new(data) else { handle_alloc_error(layout) };
    ALLOCATED.fetch_add(1, Ordering::Relaxed);
    let _ = POOL.try_with(|p| p.borrow_mut().allocated += 1);
    Header::new(data, cap, kind)
}

/// Called with a header whose last reference was just dropped.
#[inline]
pub(super) fn recycle(h: NonNull<Header>) {
    // SAFETY: unreferenced but live; the caller gave up the last reference.
    let class = match unsafe { &h.as_ref().kind } {
        Kind::Pooled(c) => *c as usize,
        Kind::Heap => return free(h),
        Kind::External(data) => {
            let data = *data;
            // SAFETY: both leaked in Block::external / Header::new and owned by this
            // unreferenced header; each is taken back exactly once, the data first (the
            // header's `data` pointer into it is not used again).
            unsafe {
                drop(Box::from_raw(data.as_ptr()));
                drop(Box::from_raw(h.as_ptr()));
            }
            return;
        }
    };
    let kept = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let list = &mut p.free[class];
            if list.len() < bound(class) {
                list.push(h);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        free(h);
    }
}

#[cold]
fn free(h: NonNull<Header>) {
    // SAFETY: from Box::leak in Header::new, unreferenced; taken back exactly once.
    let h = unsafe { Box::from_raw(h.as_ptr()) };
    let layout = Layout::from_size_align(h.cap, ALIGN).expect("block layout");
    // SAFETY: allocated in `fresh` with this layout; nobody references it any more.
    unsafe { dealloc(h.data.as_ptr(), layout) };
    FREED.fetch_add(1, Ordering::Relaxed);
}

/// Block counters (see [`buffer_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferStats {
    /// Blocks allocated from the allocator, by every thread, since the process started.
    pub allocated: u64,
    /// Blocks given back to the allocator, by every thread.
    pub freed: u64,
    /// `allocated - freed`: blocks in use or waiting in some thread's pool.
    pub live: u64,
    /// Blocks this thread allocated from the allocator.
    pub allocated_here: u64,
    /// Blocks this thread took from its pool instead of allocating.
    pub reused_here: u64,
    /// Blocks waiting in this thread's pool now.
    pub pooled_here: usize,
}

/// A snapshot of the block counters, for tests and memory accounting. External blocks
/// (`write_direct`) are not counted: their memory is the caller's.
pub fn buffer_stats() -> BufferStats {
    let allocated = ALLOCATED.load(Ordering::Relaxed);
    let freed = FREED.load(Ordering::Relaxed);
    let (allocated_here, reused_here, pooled_here) = POOL
        .try_with(|p| {
            let p = p.borrow();
            (p.allocated, p.hits, p.free.iter().map(Vec::len).sum())
        })
        .unwrap_or_default();
    BufferStats {
        allocated,
        freed,
        live: allocated.saturating_sub(freed),
        allocated_here,
        reused_here,
        pooled_here,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(4096), Some(0));
        assert_eq!(class_of(4097), Some(1));
        assert_eq!(class_of(8192), Some(1));
        assert_eq!(class_of(MAX_MALLOC), Some(CLASSES - 1));
        assert_eq!(class_of(MAX_MALLOC + 1), None);
        assert_eq!(class_size(CLASSES - 1), MAX_MALLOC);
    }
}
