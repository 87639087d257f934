//! A counting global allocator for the allocation tests: it forwards to the system allocator
//! and counts, per thread, the allocations (and reallocations) the thread makes. A test file
//! installs it with `#[global_allocator] static GLOBAL: alloc_count::Counting = ...;` and
//! reads [`allocs`] before and after the code it measures, on one thread; or, for code that
//! runs on other threads (a server's worker), marks those threads with [`count_in_shared`] and
//! reads [`shared_allocs`].

#![allow(dead_code)] // each test file uses part of it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    /// This thread's allocations are also added to `SHARED`.
    static IN_SHARED: Cell<bool> = const { Cell::new(false) };
}
static SHARED: AtomicU64 = AtomicU64::new(0);

/// Allocations this thread has made so far.
pub fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// From now on, this thread's allocations are added to [`shared_allocs`] too.
pub fn count_in_shared() {
    IN_SHARED.with(|c| c.set(true));
}

/// Allocations made so far by the threads marked with [`count_in_shared`].
pub fn shared_allocs() -> u64 {
    SHARED.load(Ordering::Relaxed)
}

fn note() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    if IN_SHARED.try_with(Cell::get).unwrap_or(false) {
        SHARED.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; the counters are const-initialized thread-locals
// without a destructor and an atomic, so counting never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}
