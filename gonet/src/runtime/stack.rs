//! Goroutine stacks: one `mmap`'d region per stack with a `PROT_NONE` guard page at its low
//! end, and a per-worker pool so that a spawn in steady state does no `mmap`.
//!
//! Only the pages a goroutine touches cost memory: the region is mapped with
//! `MAP_NORESERVE`, so a parked goroutine that used 3 KiB of stack holds one page. Each stack
//! takes two kernel mappings (the usable part and the guard), which is why 100k goroutines
//! need `vm.max_map_count` above its default of 65530.

use std::io;
use std::ptr;

use corosensei::stack::{Stack as CoroStack, StackPointer};

/// Size of the guard page below every stack.
pub(crate) const GUARD: usize = 4096;

/// An `mmap`'d goroutine stack: `[base - size - GUARD, base - size)` is the guard page,
/// `[base - size, base)` is usable. Unmapped when dropped.
pub(crate) struct Stack {
    /// Lowest address of the mapping (the start of the guard page).
    low: usize,
    /// Usable size in bytes (a multiple of the page size).
    size: usize,
}

// SAFETY: a `Stack` is an owned memory region with no thread affinity; whoever holds it has
// exclusive use of it.
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a new stack of `size` usable bytes (rounded up to whole pages) plus a guard page.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        let size = normalize(size);
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
        let stack = Stack { low: low as usize, size };
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

/// The usable size actually mapped for a requested size: whole pages, at least four.
fn normalize(size: usize) -> usize {
    size.max(GUARD * 4).next_multiple_of(GUARD)
}

/// Turns an `mmap`/`mprotect` failure into an error that names the likely cause.
fn exhausted(err: io::Error, size: usize) -> io::Error {
    let msg = format!(
        "gonet: cannot allocate a goroutine stack of {size} bytes ({err}); each goroutine \
         stack takes two memory mappings, so the likely limit is vm.max_map_count \
         (raise it with `sysctl -w vm.max_map_count=1000000`) or the address-space limit"
    );
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the region was mapped by `Stack::new` with exactly this range and no
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
    free: Vec<Stack>,
    cap: usize,
}

impl StackPool {
    pub(crate) fn new(size: usize, cap: usize) -> StackPool {
        StackPool { size: normalize(size), free: Vec::new(), cap }
    }

    /// A stack from the pool, or a fresh mapping when the pool is empty.
    pub(crate) fn get(&mut self) -> io::Result<Stack> {
        match self.free.pop() {
            Some(s) => Ok(s),
            None => Stack::new(self.size),
        }
    }

    /// Returns a stack to the pool; beyond the cap it is unmapped.
    pub(crate) fn put(&mut self, stack: Stack) {
        if self.free.len() < self.cap && stack.size == self.size {
            self.free.push(stack);
        }
    }
}
