//! Warming the next goroutine before switching to it.
//!
//! A worker serving many connections resumes a different goroutine at every switch, and each
//! one's stack top sits on its own page: with a thousand goroutines in rotation, the first
//! `push` after a switch misses the TLB and the cache (a page walk, nested under a hypervisor)
//! — profiles of the 1,000-connection echo benchmark put most of the switch's user time on
//! that one instruction. So when the worker takes a goroutine from its run queue, it issues
//! prefetches ahead, as a pipeline: the `G` of the goroutine two places behind in the queue,
//! and the few cache lines around the stack pointer at which the next one suspended (the
//! frames it resumes into; reading that pointer hits the `G` warmed one switch earlier). The
//! current goroutine's syscalls then hide the misses. Prefetches never fault and have no
//! effect on correctness.

use super::goroutine::G;

/// Bytes below the saved stack pointer to warm: the registers the context switch saved.
const BELOW: usize = 192;
/// Bytes above it: the frames of the suspended call chain it returns into.
const ABOVE: usize = 448;
const LINE: usize = 64;

/// Prefetches `g`'s header, which `warm_stack` will read one switch later.
#[inline]
pub(crate) fn warm_header(g: &G) {
    let p = g as *const G as usize;
    line(p);
    line(p + LINE);
}

/// Prefetches the top of `g`'s suspended stack. Reads `g`'s saved stack pointer, so it is
/// called on the goroutine whose header was warmed one switch earlier.
#[inline]
pub(crate) fn warm_stack(g: &G) {
    let sp = g.sp.get();
    if sp == 0 {
        return; // never suspended: nothing to warm yet
    }
    let mut a = (sp - BELOW) & !(LINE - 1);
    while a < sp + ABOVE {
        line(a);
        a += LINE;
    }
}

#[inline(always)]
fn line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and reads nothing
    // the program can observe.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
