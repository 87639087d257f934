//! Stack slabs: many goroutine stacks carved from one memory mapping, each with a guard page
//! installed by `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13), so that a stack costs no
//! mapping of its own and a million goroutines fit under the default `vm.max_map_count`.
//!
//! A slab is one `MAP_NORESERVE` mapping of `count` slots of `GUARD + size` bytes; the first
//! page of every slot is a guard region (a fault on it raises `SIGSEGV`, which
//! `overflow.rs` recognises, exactly as for a `PROT_NONE` page), and the rest is the stack.
//! Guard regions do not split the mapping, so a slab is one line of `/proc/self/maps`
//! however many stacks it holds; the guards are installed in one `process_madvise` call per
//! slab when the kernel allows it.
//!
//! Invariants:
//! 1. A slot is in exactly one place: a goroutine (in use), a worker's pool (`stack.rs`,
//!    possibly dirty) or the global free list below (its pages given back with
//!    `MADV_DONTNEED`, so a free-listed slot holds no memory).
//! 2. Slabs are never unmapped: their address space stays reserved for reuse (resident memory
//!    is what `MADV_DONTNEED` returns), and the guard pages stay installed for the life of the
//!    process (`MADV_DONTNEED` leaves guard regions in place).
//!
//! Older kernels refuse the advice with `EINVAL`; [`enabled`] probes once and `stack.rs` then
//! keeps one mapping plus a `PROT_NONE` page per stack. `GONET_STACK_SLABS=0` forces that.

use std::io;
use std::ptr;
use std::sync::{Mutex, OnceLock};

use super::stack::{Stack, GUARD};

/// `MADV_GUARD_INSTALL` (Linux 6.13, `include/uapi/asm-generic/mman-common.h`); the `libc`
/// crate does not define it yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Address space of one slab (before rounding to whole slots).
const SLAB_BYTES: usize = 64 << 20;
/// Ranges per `process_madvise` call (the kernel's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;
/// `MADV_POPULATE_WRITE` (Linux 5.14): fault pages in, writable, without touching them.
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// The top page of a stack, which every goroutine touches on its first run.
const TOP: usize = 4096;

/// Whether stacks come from slabs: the kernel accepts guard regions and `GONET_STACK_SLABS`
/// is not `0`. Probed once per process.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("GONET_STACK_SLABS").map_or(true, |v| v != "0") && probe())
}

/// Tries a guard region on a scratch mapping.
fn probe() -> bool {
    // SAFETY: a fresh private anonymous mapping, advised and unmapped here; nothing else uses it.
    unsafe {
        let p = libc::mmap(
            ptr::null_mut(),
            2 * GUARD,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        let ok = libc::madvise(p, GUARD, MADV_GUARD_INSTALL) == 0;
        libc::munmap(p, 2 * GUARD);
        ok
    }
}

/// Free slots per usable stack size: `(size, low addresses)`.
static FREE: Mutex<Vec<(usize, Vec<usize>)>> = Mutex::new(Vec::new());

fn free_list(all: &mut Vec<(usize, Vec<usize>)>, size: usize) -> &mut Vec<usize> {
    let i = match all.iter().position(|(s, _)| *s == size) {
        Some(i) => i,
        None => {
            all.push((size, Vec::new()));
            all.len() - 1
        }
    };
    &mut all[i].1
}

/// Moves up to `n` (at least one) stacks of `size` usable bytes into `out`: free slots first,
/// else a new slab, whose slots beyond `n` go to the free list.
///
/// The slots handed out hold no memory (fresh, or given back with `MADV_DONTNEED`), and each
/// will be run on soon: their top pages are faulted in here with one batched
/// `MADV_POPULATE_WRITE`, instead of one page fault per new goroutine (a fault costs several
/// times the kernel's work for the page, most of all in a virtual machine).
pub(crate) fn take(size: usize, n: usize, out: &mut Vec<Stack>) -> io::Result<()> {
    let mine: Vec<usize> = {
        let mut all = FREE.lock().unwrap_or_else(|e| e.into_inner());
        let free = free_list(&mut all, size);
        let k = free.len().min(n);
        free.drain(free.len() - k..).collect()
    };
    let mine = if mine.is_empty() {
        let slots = new_slab(size)?;
        let (mine, rest) = slots.split_at(n.min(slots.len()));
        let mut all = FREE.lock().unwrap_or_else(|e| e.into_inner());
        free_list(&mut all, size).extend_from_slice(rest);
        mine.to_vec()
    } else {
        mine
    };
    populate_tops(&mine, size);
    // SAFETY: each address is a free slot of `size` (invariant 1) or a fresh slot of a slab
    // just made, now handed out once.
    out.extend(mine.iter().map(|&low| unsafe { Stack::from_slab(low, size) }));
    Ok(())
}

/// Faults in the top page of each stack, batched; skipped where the kernel does not take the
/// advice from `process_madvise` (then the first run faults the page in, as it always may).
fn populate_tops(lows: &[usize], size: usize) {
    if lows.len() < 2 || size < TOP {
        return;
    }
    let _ = advise_batched(lows, GUARD + size - TOP, TOP, MADV_POPULATE_WRITE);
}

/// Maps a slab for stacks of `size` usable bytes, installs its guards and returns its slots.
fn new_slab(size: usize) -> io::Result<Vec<usize>> {
    let stride = GUARD + size;
    let count = (SLAB_BYTES / stride).max(16);
    let len = stride * count;
    // SAFETY: an anonymous private mapping at an address of the kernel's choice touches no
    // existing memory; the result is checked before use.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Transparent huge pages would make a whole 2 MiB resident for the top page of one stack.
    // SAFETY: advice on the mapping made above; it changes no contents.
    unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
    let slots: Vec<usize> = (0..count).map(|i| base as usize + i * stride).collect();
    if let Err(e) = advise(&slots, 0, GUARD, MADV_GUARD_INSTALL) {
        // SAFETY: the mapping made above, not yet handed to anyone.
        unsafe { libc::munmap(base, len) };
        return Err(e);
    }
    Ok(slots)
}

/// Applies `advice` to `[low + off, low + off + len)` for every `low`, batched through
/// `process_madvise` where the kernel takes that advice from it, else one `madvise` each.
fn advise(lows: &[usize], off: usize, len: usize, advice: libc::c_int) -> io::Result<()> {
    let rest = advise_batched(lows, off, len, advice);
    for &l in rest {
        // SAFETY: as in `advise_batched`.
        if unsafe { libc::madvise((l + off) as *mut libc::c_void, len, advice) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The batched part of `advise`: returns the ranges `process_madvise` did not take.
fn advise_batched(lows: &[usize], off: usize, len: usize, advice: libc::c_int) -> &[usize] {
    let pidfd = self_pidfd();
    let mut iov = Vec::with_capacity(lows.len().min(IOV_MAX));
    let mut rest = lows;
    while !rest.is_empty() && pidfd >= 0 {
        let (chunk, tail) = rest.split_at(rest.len().min(IOV_MAX));
        iov.clear();
        iov.extend(
            chunk
                .iter()
                .map(|&l| libc::iovec { iov_base: (l + off) as *mut libc::c_void, iov_len: len }),
        );
        // SAFETY: every range lies inside a slab slot owned by the caller (a new slab, or slots
        // no coroutine runs on); the advice changes contents only as the caller intends.
        let r = unsafe {
            libc::syscall(libc::SYS_process_madvise, pidfd, iov.as_ptr(), iov.len(), advice, 0)
        };
        if r as usize != chunk.len() * len {
            break; // refused or partial: the rest is the caller's (every advice is idempotent)
        }
        rest = tail;
    }
    rest
}

/// A pidfd of this process for `process_madvise`, or -1 when the kernel has none.
fn self_pidfd() -> libc::c_int {
    static FD: OnceLock<libc::c_int> = OnceLock::new();
    // SAFETY: pidfd_open on our own pid has no memory effects; the fd is kept for the process.
    *FD.get_or_init(|| unsafe {
        libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as libc::c_int
    })
}

/// Gives the memory of slab stacks back to the kernel and puts their slots on the free list.
/// `slots` are `(low, size)` pairs of slab stacks no coroutine runs on any more.
pub(crate) fn release(slots: impl IntoIterator<Item = (usize, usize)>) {
    let mut by_size: Vec<(usize, Vec<usize>)> = Vec::new();
    for (low, size) in slots {
        free_list(&mut by_size, size).push(low);
    }
    for (size, lows) in &by_size {
        // MADV_DONTNEED cannot fail on a valid private anonymous range.
        let _ = advise(lows, GUARD, *size, libc::MADV_DONTNEED);
    }
    let mut all = FREE.lock().unwrap_or_else(|e| e.into_inner());
    for (size, lows) in by_size {
        free_list(&mut all, size).extend(lows);
    }
}
