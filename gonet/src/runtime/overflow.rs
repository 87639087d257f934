//! Goroutine stack overflow detection.
//!
//! Every goroutine stack has a `PROT_NONE` guard page below it. When a goroutine runs off its
//! stack it faults on that page; the `SIGSEGV`/`SIGBUS` handler installed here runs on the
//! worker's alternate signal stack, sees that the faulting address lies in the running
//! goroutine's guard page, writes a message naming the goroutine and the stack size with
//! `write(2)` (async-signal-safe: no allocation, no locks) and aborts. Any other fault is handed
//! to the previous handler, or to the default action, unchanged.
//!
//! The running goroutine's guard range, id and stack size live in const-initialised
//! thread-locals of plain integers, which the handler may read.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    static GUARD_LO: Cell<usize> = const { Cell::new(0) };
    static GUARD_HI: Cell<usize> = const { Cell::new(0) };
    static GID: Cell<u64> = const { Cell::new(0) };
    static SIZE: Cell<usize> = const { Cell::new(0) };
}

/// Records the goroutine about to run on this thread.
#[inline]
pub(crate) fn enter(guard: (usize, usize), gid: u64, size: usize) {
    GUARD_LO.with(|c| c.set(guard.0));
    GUARD_HI.with(|c| c.set(guard.1));
    GID.with(|c| c.set(gid));
    SIZE.with(|c| c.set(size));
}

/// No goroutine runs on this thread any more.
#[inline]
pub(crate) fn leave() {
    GUARD_HI.with(|c| c.set(0));
}

static INSTALL: Once = Once::new();
static mut PREV_SEGV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();
static mut PREV_BUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();

/// Installs the handler (once per process) and an alternate signal stack for this thread.
pub(crate) fn init_thread() {
    INSTALL.call_once(|| {
        // SAFETY: `call_once` runs this exactly once, before any handler can read PREV_*;
        // sigaction writes a fully initialised struct into them.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, (&raw mut PREV_SEGV).cast());
            libc::sigaction(libc::SIGBUS, &sa, (&raw mut PREV_BUS).cast());
        }
    });
    ensure_altstack();
}

/// Gives this thread an alternate signal stack unless it has one (std gives its threads one).
fn ensure_altstack() {
    const SIZE: usize = 64 * 1024;
    // SAFETY: querying with a null new stack only writes `old`.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old);
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let mem = libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return; // no alternate stack: an overflow is then a plain SIGSEGV
        }
        // The mapping is deliberately leaked: it must outlive every signal on this thread.
        let st = libc::stack_t { ss_sp: mem, ss_flags: 0, ss_size: SIZE };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let lo = GUARD_LO.with(|c| c.get());
    let hi = GUARD_HI.with(|c| c.get());
    if hi != 0 && addr >= lo && addr < hi {
        report(GID.with(|c| c.get()), SIZE.with(|c| c.get()));
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    // Not ours: chain to the previous handler, or restore the default action and return so
    // that the faulting instruction re-raises the signal with it.
    // SAFETY: PREV_* were written once by `init_thread` before this handler was installed.
    unsafe {
        let prev = if sig == libc::SIGSEGV { &raw const PREV_SEGV } else { &raw const PREV_BUS };
        let prev = (*prev).assume_init_ref();
        let h = prev.sa_sigaction;
        if h == libc::SIG_DFL || h == libc::SIG_IGN {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
            f(sig);
        }
    }
}

/// Writes the overflow message to stderr without allocating.
fn report(gid: u64, size: usize) {
    let mut buf = [0u8; 256];
    let mut n = 0;
    for part in [
        &b"\ngonet: goroutine "[..],
        fmt_u64(gid, &mut [0; 20]),
        b" overflowed its stack of ",
        fmt_u64(size as u64, &mut [0; 20]),
        b" bytes; raise it with gonet::Builder::stack_size(..)\n",
    ] {
        let k = part.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    // SAFETY: write(2) is async-signal-safe; `buf[..n]` is initialised.
    unsafe { libc::write(2, buf.as_ptr().cast(), n) };
}

fn fmt_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}
