//! `PollDesc`: the per-descriptor wait state, after Go's `runtime/netpoll.go`.
//!
//! # The state word
//!
//! For each direction (read, write) a `PollDesc` holds a state word `rg`/`wg`:
//!
//! ```text
//!   NIL    no readiness pending, nobody waiting
//!   READY  an I/O readiness notification is pending (consumed by the next wait)
//!   WAIT   a goroutine is about to park (it has announced itself, not yet parked)
//!   G ptr  a goroutine is parked; the word holds its run token (`Arc::into_raw`)
//! ```
//!
//! Transitions:
//! * waiter, [`PollDesc::block`]: `READY → NIL` (consume and return at once), else
//!   `NIL → WAIT`, re-check close/deadline, park with a commit that does `WAIT → G`. If that CAS
//!   fails, a notification arrived in between (`WAIT → READY` or `WAIT → NIL`) and the
//!   goroutine resumes at once. On return it swaps the word to `NIL`: `READY` means "retry the
//!   syscall", anything else "re-check close and deadline".
//! * notifier, [`PollDesc::unblock`] with `io = true` (epoll said ready): `* → READY`.
//!   With `io = false` (close, deadline): `WAIT | G → NIL`; `NIL` and `READY` are left alone, so
//!   a kick never fabricates readiness. If the old value was a `G`, the notifier now holds that
//!   run token and makes the goroutine runnable exactly once.
//!
//! Invariants:
//! 1. A readiness notification is never lost: it is either stored as `READY`, or it fails the
//!    waiter's commit CAS, or it takes a parked goroutine's token and wakes it.
//! 2. At most one goroutine waits per direction; a second one finds `WAIT` or a `G` and panics,
//!    naming the descriptor. (The fd layer's per-direction lock makes this unreachable.)
//! 3. Close and deadline changes wake the waiter ("kick"); the waiter re-checks `closing` and its
//!    deadline after announcing `WAIT`, so a kick racing with the announce is never missed.
//! 4. `PollDesc`s are never freed: they live in a pool and are reused with a new incarnation
//!    number `seq`. The epoll event data is the pointer tagged with the low 16 bits of `seq`, and
//!    deadline timers capture `seq`, so an event or timer for a closed descriptor whose number
//!    (or whose `PollDesc`) was reused is recognised as stale and ignored.
//!
//! 5. Beside each state word, a waker slot (`waker_slot.rs`) holds the waker of a future that
//!    polls the direction (`net/poll_io.rs`). Every notification that touches the state word —
//!    readiness, close, deadline kick — then wakes the slot; the state word's transitions are
//!    unchanged (a future never parks, so it never holds the word), and a freed `PollDesc`
//!    drops its wakers.
//!
//! # Deadlines
//!
//! A deadline is stored per direction as nanoseconds since `time`'s origin (0: none). A waiter
//! with a deadline arms a timer on its worker unless one is already armed at or before it
//! (`armed` holds the earliest pending one), so repeated parks — and a deadline pushed further
//! at every request — add no timers beyond one per direction. A timer that fires clears
//! `armed` and kicks; the woken waiter re-checks and, if the deadline moved later, re-arms.
//!
//! # Plain threads
//!
//! Outside the runtime there is no scheduler to park on: a thread waits in `poll(2)` on the
//! descriptor and on a per-direction eventfd (created on first use) that close and deadline
//! changes write to, with the deadline as `poll`'s timeout.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};

// Under `--cfg loom` the atomics, the parking of goroutines, the clock and the timers are
// replaced by model-checked stand-ins (`loom_rt.rs`), so the models in `models.rs` run the
// functions of this file unchanged.
#[cfg(loom)]
use super::loom_rt::{from_nanos, nanos_now, park_g, ready, timer, GRef, G};
#[cfg(not(loom))]
use crate::runtime::goroutine::{GRef, G};
#[cfg(not(loom))]
use crate::runtime::park::{park_g, ready};
#[cfg(not(loom))]
use crate::runtime::timer;
#[cfg(not(loom))]
use crate::time::{from_nanos, nanos_now};
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use super::epoll;
use super::state::{fence, Prepared, StateWord};
use super::waker_slot::WakerSlot;
use crate::runtime::worker;

/// Low bits of the epoll data that hold the pointer; the top 16 hold the incarnation tag.
const PTR_MASK: u64 = (1 << 48) - 1;

/// An I/O direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Dir {
    Read = 0,
    Write = 1,
}

/// The wait state of one descriptor (see the top of this file).
pub(crate) struct PollDesc {
    rg: StateWord,
    wg: StateWord,
    closing: AtomicBool,
    /// Set by the first event that reports the peer's end of stream or an error (`EPOLLRDHUP`,
    /// `EPOLLHUP`, `EPOLLERR`): no further edge will follow for reading.
    hup: AtomicBool,
    /// Deadlines, ns since the time origin; 0 = none.
    rd: AtomicU64,
    wd: AtomicU64,
    /// Earliest deadline with a timer pending, per direction; 0 = none.
    rarmed: AtomicU64,
    warmed: AtomicU64,
    /// Incarnation number, bumped on every reuse.
    seq: AtomicU64,
    fd: AtomicI32,
    /// The runtime whose poller the descriptor is registered with (0: none), and that
    /// poller's epoll descriptor (-1: none). A descriptor used by a goroutine of another
    /// runtime (the first one may have shut down, closing its epoll) registers again there.
    rt: AtomicU64,
    epfd: AtomicI32,
    /// Eventfds that wake plain threads blocked in `poll(2)`, per direction.
    thread_kick: [OnceLock<OwnedFd>; 2],
    /// The futures waiting per direction (`waker_slot.rs`): woken with the goroutine waiter.
    wakers: [WakerSlot; 2],
}

/// Free `PollDesc`s for reuse.
#[cfg(not(loom))]
static POOL: Mutex<Vec<&'static PollDesc>> = Mutex::new(Vec::new());
#[cfg(loom)]
loom::lazy_static! {
    // Loom objects live for one execution of a model: so does the pool.
    static ref POOL: Mutex<Vec<&'static PollDesc>> = Mutex::new(Vec::new());
}

/// The error of an operation on a closed descriptor (Go's `net.ErrClosed`).
pub(crate) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "use of closed network connection")
}

/// The error of an operation whose deadline passed (Go's `os.ErrDeadlineExceeded`).
pub(crate) fn timeout_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

impl PollDesc {
    /// A `PollDesc` for `fd`, from the pool or newly leaked.
    pub(crate) fn alloc(fd: RawFd) -> &'static PollDesc {
        let pd = POOL.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let pd: &'static PollDesc = pd.unwrap_or_else(|| {
            Box::leak(Box::new(PollDesc {
                rg: StateWord::new(),
                wg: StateWord::new(),
                closing: AtomicBool::new(false),
                hup: AtomicBool::new(false),
                rd: AtomicU64::new(0),
                wd: AtomicU64::new(0),
                rarmed: AtomicU64::new(0),
                warmed: AtomicU64::new(0),
                seq: AtomicU64::new(0),
                fd: AtomicI32::new(-1),
                rt: AtomicU64::new(0),
                epfd: AtomicI32::new(-1),
                thread_kick: [OnceLock::new(), OnceLock::new()],
                wakers: [WakerSlot::new(), WakerSlot::new()],
            }))
        });
        pd.seq.fetch_add(1, Ordering::AcqRel);
        pd.rg.reset();
        pd.wg.reset();
        pd.closing.store(false, Ordering::Relaxed);
        pd.hup.store(false, Ordering::Relaxed);
        pd.rd.store(0, Ordering::Relaxed);
        pd.wd.store(0, Ordering::Relaxed);
        pd.rarmed.store(0, Ordering::Relaxed);
        pd.warmed.store(0, Ordering::Relaxed);
        pd.rt.store(0, Ordering::Relaxed);
        pd.epfd.store(-1, Ordering::Relaxed);
        pd.fd.store(fd, Ordering::Release);
        pd
    }

    /// Deregisters the descriptor (before it is closed) and returns the `PollDesc` to the pool.
    /// The caller guarantees no operation uses it any more.
    pub(crate) fn free(&'static self) {
        let ep = self.epfd.swap(-1, Ordering::AcqRel);
        if ep >= 0 {
            epoll::deregister(ep, self.fd.load(Ordering::Relaxed));
        }
        // A new incarnation makes in-flight events and timers for the old one stale.
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.fd.store(-1, Ordering::Relaxed);
        // A future that registered and was dropped leaves its waker: release it with the fd.
        drop(self.wakers.each_ref().map(WakerSlot::take));
        POOL.lock().unwrap_or_else(|e| e.into_inner()).push(self);
    }

    fn slot(&self, d: Dir) -> &StateWord {
        match d {
            Dir::Read => &self.rg,
            Dir::Write => &self.wg,
        }
    }

    fn deadline(&self, d: Dir) -> &AtomicU64 {
        match d {
            Dir::Read => &self.rd,
            Dir::Write => &self.wd,
        }
    }

    fn armed(&self, d: Dir) -> &AtomicU64 {
        match d {
            Dir::Read => &self.rarmed,
            Dir::Write => &self.warmed,
        }
    }

    /// The epoll data for this incarnation: the pointer tagged with the low bits of `seq`.
    pub(super) fn tag(&'static self) -> u64 {
        let p = self as *const PollDesc as u64;
        debug_assert!(p & !PTR_MASK == 0 && p != epoll::WAKE_TOKEN);
        p | ((self.seq.load(Ordering::Acquire) & 0xffff) << 48)
    }

    /// Whether an event reported the end of the peer's stream or an error; after that no new
    /// read edge comes, so a reader must not wait for one before trying.
    pub(crate) fn hung_up(&self) -> bool {
        self.hup.load(Ordering::Acquire)
    }

    /// Fails if the descriptor is closing or the direction's deadline has passed
    /// (Go's `netpollcheckerr`).
    #[inline]
    pub(crate) fn check(&self, d: Dir) -> io::Result<()> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(closed_error());
        }
        let dl = self.deadline(d).load(Ordering::SeqCst);
        if dl != 0 && nanos_now() >= dl {
            return Err(timeout_error());
        }
        Ok(())
    }

    /// Waits until the descriptor may be ready in direction `d` (the caller then retries its
    /// syscall), or fails on close or deadline. Parks a goroutine; blocks a plain thread.
    pub(crate) fn wait(&'static self, d: Dir) -> io::Result<()> {
        self.check(d)?;
        if !worker::in_goroutine() {
            return self.wait_thread(d);
        }
        self.ensure_registered()?;
        self.wait_registered(d)
    }

    /// A goroutine's wait once the descriptor is registered with its poller: park until
    /// readiness, re-checking close and deadline after each other wake.
    pub(super) fn wait_registered(&'static self, d: Dir) -> io::Result<()> {
        while !self.block(d) {
            self.check(d)?;
        }
        Ok(())
    }

    /// Registers with the current worker's epoll on first use by a goroutine of this runtime.
    fn ensure_registered(&'static self) -> io::Result<()> {
        let w = worker::current().expect("ensure_registered runs on a goroutine");
        let rt = w.shared.rt_id;
        if self.rt.load(Ordering::Acquire) == rt {
            return Ok(());
        }
        if self.rt.swap(rt, Ordering::AcqRel) == rt {
            return Ok(()); // another goroutine of this runtime registered it just now
        }
        // Deadline timers armed under an earlier runtime live in its timer heaps, which may be
        // gone: forget them, or a later deadline would count on a timer that never fires. (If
        // that runtime still runs, its timer merely adds a spurious kick.)
        self.rarmed.store(0, Ordering::Release);
        self.warmed.store(0, Ordering::Release);
        // A goroutine of this runtime that sees `rt` before the ADD below may park already:
        // the ADD reports the descriptor's current readiness as an edge, so it is not missed.
        let ep = w.shared.poller.raw();
        self.epfd.store(ep, Ordering::Release);
        let fd = self.fd.load(Ordering::Relaxed);
        w.shared.poller.register(fd, self.tag()).inspect_err(|_| {
            self.rt.store(0, Ordering::Release);
            self.epfd.store(-1, Ordering::Release);
        })
    }

    /// Parks until a notification; returns whether it was I/O readiness (Go's `netpollblock`).
    fn block(&'static self, d: Dir) -> bool {
        let slot = self.slot(d);
        match slot.prepare() {
            Prepared::Ready => return true,
            Prepared::Wait => {}
            Prepared::Busy => panic!(
                "gonet: two goroutines wait to {} fd {} at once",
                if d == Dir::Read { "read" } else { "write" },
                self.fd.load(Ordering::Relaxed)
            ),
        }
        // Re-check after announcing WAIT (invariant 3); the fence pairs with the one in `kick`
        // (see state.rs: both sides store, then load).
        fence(Ordering::SeqCst);
        if self.check(d).is_ok() {
            self.arm_deadline(d);
            park_g(|g| {
                // What the goroutine waits on, for dumps (the loom stand-in has no dump).
                #[cfg(not(loom))]
                crate::runtime::wait::io(&g, self.fd.load(Ordering::Relaxed), d == Dir::Write);
                let p = Arc::into_raw(g) as usize;
                if slot.commit(p) {
                    Ok(())
                } else {
                    // SAFETY: `p` came from `Arc::into_raw` just above and was not published.
                    Err(unsafe { Arc::from_raw(p as *const G) })
                }
            });
        }
        slot.finish()
    }

    /// Delivers a notification (Go's `netpollunblock`); returns the run token of the goroutine
    /// to wake, if one was parked.
    fn unblock(&self, d: Dir, io: bool) -> Option<GRef> {
        let p = self.slot(d).unblock(io)?;
        // SAFETY: a token in the word was stored by `block`'s commit via `Arc::into_raw`; the
        // successful transition in `unblock` transferred it to us alone.
        Some(unsafe { Arc::from_raw(p as *const G) })
    }

    /// Wakes the waiters of direction `d` so they re-check close and deadline.
    fn kick(&self, d: Dir) {
        fence(Ordering::SeqCst);
        if let Some(g) = self.unblock(d, false) {
            ready(g);
        }
        self.wakers[d as usize].wake();
        if let Some(efd) = self.thread_kick[d as usize].get() {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// A future's wait (`net/poll_io.rs`): stores `w` to be woken by the next notification of
    /// direction `d` — readiness, close or deadline — and arms the deadline timer. The caller
    /// then retries its syscall: an edge that came before the store is seen by that retry
    /// (`waker_slot.rs`). Fails on close or an expired deadline (checked after the store, so
    /// a kick racing with it is not missed), and when the descriptor is not registered with
    /// any poller (a plain thread using a socket no goroutine has waited on).
    pub(crate) fn register_waker(&'static self, d: Dir, w: &std::task::Waker) -> io::Result<()> {
        if worker::in_goroutine() {
            self.ensure_registered()?;
        } else if self.rt.load(Ordering::Acquire) == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "gonet: poll-based I/O needs the socket to be polled on a goroutine first \
                 (its readiness comes from a runtime's netpoller); use gonet::block_on on a \
                 goroutine",
            ));
        }
        self.wakers[d as usize].register(w);
        self.check(d)?;
        self.arm_deadline(d);
        Ok(())
    }

    /// A future's poll, before its syscall: consumes a pending readiness notification of
    /// direction `d`, so that [`ready_since`](Self::ready_since) reports only later ones.
    #[inline]
    pub(crate) fn consume_ready(&self, d: Dir) {
        self.slot(d).consume_ready();
    }

    /// A future's poll, after [`register_waker`](Self::register_waker): whether readiness was
    /// notified since [`consume_ready`](Self::consume_ready). If not, any later readiness
    /// finds the waker (`waker_slot.rs`).
    #[inline]
    pub(crate) fn ready_since(&self, d: Dir) -> bool {
        self.slot(d).is_ready()
    }

    /// Whether the future whose waker is `w` is still registered for direction `d` with no
    /// notification since: its syscall would fail with `EAGAIN` again (the poll's fast path).
    #[inline]
    pub(crate) fn waker_armed_for(&self, d: Dir, w: &std::task::Waker) -> bool {
        self.wakers[d as usize].armed_for(w)
    }

    /// Disarms direction `d`'s waker slot: the future's last syscall made progress, so its
    /// next poll must try the syscall again.
    #[inline]
    pub(crate) fn disarm_waker(&self, d: Dir) {
        self.wakers[d as usize].disarm();
    }

    /// Arms a deadline timer for a waiter about to park, unless one at or before it is armed.
    fn arm_deadline(&'static self, d: Dir) {
        let dl = self.deadline(d).load(Ordering::Acquire);
        if dl == 0 {
            return;
        }
        let armed = self.armed(d);
        let a = armed.load(Ordering::Acquire);
        if a != 0 && a <= dl {
            return;
        }
        armed.store(dl, Ordering::Release);
        let seq = self.seq.load(Ordering::Acquire);
        timer::call_at(
            from_nanos(dl),
            Box::new(move || {
                if self.seq.load(Ordering::Acquire) != seq {
                    return; // the descriptor was closed; this PollDesc is another one now
                }
                let _ = self.armed(d).compare_exchange(dl, 0, Ordering::AcqRel, Ordering::Relaxed);
                self.kick(d);
            }),
        );
    }

    /// Sets (or clears) the deadline of direction `d`; a blocked waiter re-evaluates at once.
    pub(crate) fn set_deadline(&self, d: Dir, at: Option<std::time::Instant>) {
        self.set_deadline_ns(d, at.map_or(0, crate::time::to_nanos));
    }

    /// [`set_deadline`](Self::set_deadline) in nanoseconds since the time origin (0: none).
    pub(super) fn set_deadline_ns(&self, d: Dir, v: u64) {
        self.deadline(d).store(v, Ordering::SeqCst);
        self.kick(d);
    }

    /// Marks the descriptor closing and wakes every waiter with the closed error.
    pub(crate) fn evict(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.kick(Dir::Read);
        self.kick(Dir::Write);
    }

    /// A plain thread's wait: `poll(2)` on the descriptor and the direction's kick eventfd.
    fn wait_thread(&self, d: Dir) -> io::Result<()> {
        let kick = match self.thread_kick[d as usize].get() {
            Some(k) => k,
            None => {
                // SAFETY: plain syscall; the result is checked before it is owned.
                let r = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if r < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `r` is a fresh descriptor owned by nobody else.
                let efd = unsafe { OwnedFd::from_raw_fd(r) };
                let _ = self.thread_kick[d as usize].set(efd);
                self.thread_kick[d as usize].get().expect("just set")
            }
        };
        let events = if d == Dir::Read { libc::POLLIN | libc::POLLRDHUP } else { libc::POLLOUT };
        loop {
            self.check(d)?;
            let dl = self.deadline(d).load(Ordering::Acquire);
            let timeout = if dl == 0 {
                -1
            } else {
                let ns = dl.saturating_sub(nanos_now());
                ns.div_ceil(1_000_000).min(i32::MAX as u64) as i32
            };
            let mut fds = [
                libc::pollfd { fd: self.fd.load(Ordering::Relaxed), events, revents: 0 },
                libc::pollfd { fd: kick.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: `fds` is a valid array of two pollfd structs.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                let mut v: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
                unsafe { libc::read(kick.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
            }
            if fds[0].revents != 0 {
                return Ok(());
            }
        }
    }
}

/// Handles one epoll event (Go's `netpollready`): `data` is a tagged `PollDesc` pointer.
pub(crate) fn on_event(data: u64, events: u32, wake: &mut dyn FnMut(GRef)) {
    let p = (data & PTR_MASK) as *const PollDesc;
    // SAFETY: event data other than the wake token is always a tagged pointer to a `PollDesc`,
    // and `PollDesc`s are never freed (invariant 4), so the reference is valid even if stale.
    let pd: &PollDesc = unsafe { &*p };
    if pd.seq.load(Ordering::Acquire) & 0xffff != data >> 48 {
        return; // stale: the descriptor was closed since
    }
    let ev = events as libc::c_int;
    if ev & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
        // Before the READY below: a reader that consumes that READY then sees `hup`.
        pd.hup.store(true, Ordering::Release);
    }
    if ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
        if let Some(g) = pd.unblock(Dir::Read, true) {
            wake(g);
        }
        pd.wakers[0].wake();
    }
    if ev & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
        if let Some(g) = pd.unblock(Dir::Write, true) {
            wake(g);
        }
        pd.wakers[1].wake();
    }
}
