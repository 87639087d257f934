//! Wait reasons (Go's `waitReason`): what a parked goroutine waits on, recorded by each park
//! site with one call to [`reason`] just before it parks, and shown by the goroutine dump.
//!
//! The reason lives in the goroutine's `G` (owner thread only, like the rest of its
//! bookkeeping) and is reset when the goroutine resumes, so a park site that records nothing
//! shows as plain `waiting`, never as a stale reason. When it parked is read from a coarse
//! clock that the watchdog advances every tick (20 ms), so a park costs no clock read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::worker;

/// What a goroutine waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Wait {
    /// Not recorded.
    #[default]
    Unknown,
    ChanReceive,
    ChanSend,
    Select,
    Sleep,
    /// Readiness of a descriptor, in one direction.
    Io {
        fd: i32,
        write: bool,
    },
    Accept {
        fd: i32,
    },
    MutexLock,
    Group,
    Join,
    Blocking,
    /// A dump: the goroutine that asked for it.
    Dump,
    /// A future's waker, in `block_on`.
    Future,
    /// A task runner with no task to poll (`task.rs`).
    TaskIdle,
}

impl Wait {
    /// Go's words for the reason (`chan receive`, `IO wait`, ...).
    pub(crate) fn words(&self) -> &'static str {
        match self {
            Wait::Unknown => "waiting",
            Wait::ChanReceive => "chan receive",
            Wait::ChanSend => "chan send",
            Wait::Select => "select",
            Wait::Sleep => "sleep",
            Wait::Io { .. } => "IO wait",
            Wait::Accept { .. } => "accept",
            Wait::MutexLock => "sync.Mutex.Lock",
            Wait::Group => "sync.WaitGroup.Wait",
            Wait::Join => "join",
            Wait::Blocking => "blocking",
            Wait::Dump => "running",
            Wait::Future => "future (block_on)",
            Wait::TaskIdle => "task runner idle",
        }
    }

    /// Whether the goroutine waits only on other goroutines or threads (channels, locks,
    /// joins): nothing external — no timer, descriptor or blocking job — will wake it.
    pub(crate) fn on_peers(&self) -> bool {
        matches!(
            self,
            Wait::ChanReceive
                | Wait::ChanSend
                | Wait::Select
                | Wait::MutexLock
                | Wait::Group
                | Wait::Join
        )
    }
}

/// Records what the running goroutine is about to park on (no effect on a plain thread).
#[inline]
pub(crate) fn reason(w: Wait) {
    if let Some(g) = worker::current_g() {
        g.wait.set(w);
    }
}

/// Records, in the commit of its park, an I/O wait of `g` on `fd`, unless it already said it
/// accepts on it.
#[inline]
#[cfg_attr(loom, allow(dead_code))] // the loom build stands in for the poll path
pub(crate) fn io(g: &super::goroutine::G, fd: i32, write: bool) {
    if !matches!(g.wait.get(), Wait::Accept { .. }) {
        g.wait.set(Wait::Io { fd, write });
    }
}

/// The coarse clock: milliseconds since [`epoch`], advanced by [`tick`].
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

/// Advances the coarse clock (the watchdog calls this every tick).
pub(crate) fn tick() {
    let ms = epoch().elapsed().as_millis() as u64;
    COARSE_MS.fetch_max(ms, Ordering::Relaxed);
}

/// The coarse clock now, in milliseconds.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// How long ago a coarse timestamp was, as the dump shows it.
pub(crate) fn since(ms: u64) -> Duration {
    Duration::from_millis(coarse_ms().saturating_sub(ms))
}
