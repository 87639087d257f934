//! The goroutine dump (Go's SIGQUIT traceback): every live goroutine of a runtime with its
//! name, state, how long it has waited, its worker, spawn site and backtrace.
//!
//! Protocol. A goroutine's state and stack belong to its worker's thread, so each worker
//! describes its own goroutines, on its own stack, between two goroutines:
//! 1. the requester queues a [`Request`] on every worker and pokes its inbox flag;
//! 2. a worker that drains its inbox sees the request and, for each goroutine it owns,
//!    records its state and resumes it with `dumping` set: the goroutine wakes inside
//!    `worker::suspend`, captures its own backtrace into the worker's slot
//!    ([`capture_here`]) and suspends again with `Suspend::Dumped` — it runs no user code,
//!    its run token stays where it was, and it never moves;
//! 3. the requester gathers the parts, waiting at most [`ANSWER`] per worker: a worker held
//!    by a goroutine that never yields cannot answer, and the dump says so instead of hanging.
//!
//! Backtraces are unwound with std's `Backtrace` (DWARF call-frame information, which
//! corosensei provides across its stack switch) and symbolised by the requester while it
//! collects the dump — on the blocking pool when the requester is a goroutine — so a worker
//! spends microseconds per goroutine, not the symbol lookup, and a goroutine that dumps is
//! not reported as a stall (formatting a `Dump` only copies text).

use std::backtrace::Backtrace;
use std::collections::HashSet;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::goroutine::{Suspend, G};
use super::overflow;
use super::wait::{self, Wait};
use super::worker::{self, RtShared, Worker};

/// Keeps the caller's frame in a parked goroutine's backtrace. A user function whose last
/// call is a blocking one (`fn f() { sleep(d) }`) would otherwise tail-call it: `f`'s frame
/// is gone while the goroutine waits, and the dump shows no line of `f` (Go shows `main.f`).
/// Public blocking entry points are `#[inline(always)]` wrappers that pass their result
/// through here: the opaque use after the call keeps it from being the caller's last
/// instruction, so the caller's frame stays on the stack. Costs a store of the result.
#[inline(always)]
pub(crate) fn keep_frame<R>(r: R) -> R {
    std::hint::black_box(&r);
    r
}

/// How long a dump waits for each worker's answer.
pub(crate) const ANSWER: Duration = Duration::from_secs(2);

/// A worker's pending dump requests.
#[derive(Default)]
pub(crate) struct Requests {
    pending: AtomicBool,
    /// Where to answer, and whether backtraces are wanted.
    queue: Mutex<Vec<(mpsc::Sender<Part>, bool)>>,
}

impl Requests {
    /// Whether a request waits (checked when the inbox flag is up).
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }
}

/// One worker's answer.
pub(crate) struct Part {
    worker: usize,
    goroutines: Vec<GoroutineDump>,
    /// Spawned here and not started yet.
    unstarted: usize,
    /// Timers in its heap (sleeps, deadlines, timeouts).
    pub(crate) timers: usize,
    /// The goroutines' backtraces, unsymbolised, in the order of `goroutines`.
    traces: Vec<Option<Backtrace>>,
}

/// One goroutine in a [`Dump`].
pub struct GoroutineDump {
    id: u64,
    name: Option<Arc<str>>,
    wait: Wait,
    /// `running`, `runnable`, or the wait in Go's words with its details.
    state: String,
    waited: Option<Duration>,
    worker: usize,
    site: &'static Location<'static>,
    parent: u64,
    /// The backtrace in Go's layout, symbolised when the dump was collected.
    frames: Option<String>,
}

impl GoroutineDump {
    /// The goroutine's id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Its name, if it was spawned with [`go_named`](crate::go_named).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// `running`, `runnable`, or what it waits on in Go's words (`chan receive`, `IO wait`,
    /// `sync.Mutex.Lock`, ...), followed by details such as the descriptor and addresses.
    pub fn state(&self) -> &str {
        &self.state
    }
    /// Where it was spawned.
    pub fn spawn_site(&self) -> &'static Location<'static> {
        self.site
    }
    /// The worker that runs it (`0..procs`): the one it first ran on, which it never leaves.
    pub fn worker(&self) -> usize {
        self.worker
    }
    /// How long it has been waiting, for a parked goroutine (`None` while running or
    /// runnable); Go's `[chan receive, 2 minutes]`.
    pub fn waited(&self) -> Option<Duration> {
        self.waited
    }
}

/// A snapshot of every live goroutine of a runtime; `Display` prints it in the layout of
/// Go's goroutine dump. Made by [`dump`](crate::runtime::dump).
pub struct Dump {
    goroutines: Vec<GoroutineDump>,
    notes: Vec<String>,
    pub(crate) timers: usize,
    /// Lines a higher layer adds after the goroutines (the reactor's connections), by
    /// [`set_section`].
    section: Vec<String>,
}

/// A higher layer's part of a dump: lines for runtime `rt_id` (the reactor's connections,
/// which hold no goroutine while idle). Registered once; the dump knows nothing of the layer.
static SECTION: std::sync::OnceLock<fn(u64) -> Vec<String>> = std::sync::OnceLock::new();

/// Registers the dump's section (the first registration wins; there is one reactor).
pub(crate) fn set_section(f: fn(u64) -> Vec<String>) {
    let _ = SECTION.set(f);
}

impl Dump {
    /// The goroutines, by id.
    pub fn goroutines(&self) -> &[GoroutineDump] {
        &self.goroutines
    }

    /// Whether every goroutine waits on another goroutine (channels, locks, joins) with no
    /// timer pending and every worker answered: nothing but a plain thread can wake them.
    pub(crate) fn looks_deadlocked(&self) -> bool {
        self.notes.is_empty()
            && self.timers == 0
            && !self.goroutines.is_empty()
            && self.goroutines.iter().all(|g| g.state != "runnable" && g.wait.on_peers())
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        for g in &self.goroutines {
            write!(f, "goroutine {}", g.id)?;
            if let Some(n) = &g.name {
                write!(f, " {n:?}")?;
            }
            write!(f, " [{}", g.state)?;
            if let Some(d) = g.waited {
                write!(f, ", {}", human(d))?;
            }
            writeln!(f, ", worker {}]:", g.worker)?;
            if let Some(t) = &g.frames {
                f.write_str(t)?;
            }
            if g.parent != 0 {
                writeln!(f, "created by goroutine {} at", g.parent)?;
            } else {
                writeln!(f, "created at")?;
            }
            writeln!(f, "\t{}:{}", g.site.file(), g.site.line())?;
            writeln!(f)?;
        }
        for line in &self.section {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A wait time as a dump shows it: `250 ms`, `1 second`, `59 seconds`, `2 minutes` (minutes
/// from two on, as Go does).
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 {
        format!("{} minutes", s / 60)
    } else if s >= 1 {
        format!("{s} second{}", if s == 1 { "" } else { "s" })
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Rewrites std's backtrace text (`  N: function\n      at file:line:col`) in Go's layout
/// (`function\n\tfile:line`), keeping only the goroutine's own frames: those below the
/// runtime's suspend and above the goroutine's entry.
fn go_frames(text: &str) -> String {
    let mut f = String::new();
    let _ = write_frames(&mut f, text);
    f
}

fn write_frames(f: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut started = false;
    let mut keep = false;
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(at) = t.strip_prefix("at ") {
            if keep {
                writeln!(f, "\t{at}")?;
            }
            continue;
        }
        let name = t.split_once(": ").map_or(t, |(_, n)| n);
        if !started {
            started = name.starts_with("gonet::runtime::worker::suspend");
            continue;
        }
        if name.contains("AssertUnwindSafe")
            || name.starts_with("std::panicking")
            || name.starts_with("std::panic::catch_unwind")
            || name.starts_with("gonet::runtime::spawn_g")
            || name.starts_with("corosensei::")
        {
            break;
        }
        keep = true;
        writeln!(f, "{name}(...)")?;
    }
    Ok(())
}

/// Called on a goroutine resumed by a dump: leaves its backtrace in the worker's slot.
pub(crate) fn capture_here(w: &Worker) {
    let bt = std::panic::catch_unwind(Backtrace::force_capture).ok();
    *w.dump_slot.borrow_mut() = bt;
}

impl Worker {
    /// Answers the pending dump requests (invariant of `worker.rs`: runs on the worker's own
    /// stack, between goroutines).
    pub(crate) fn serve_dumps(&self) {
        self.shared.dumps.pending.store(false, Ordering::Release);
        let reqs =
            std::mem::take(&mut *self.shared.dumps.queue.lock().unwrap_or_else(|e| e.into_inner()));
        if reqs.is_empty() {
            return;
        }
        let mut runnable: HashSet<*const G> = self.runq.borrow().iter().map(Arc::as_ptr).collect();
        runnable.extend(self.shared.inbox_ptrs());
        let want_traces = reqs.iter().any(|r| r.1);
        let live: Vec<_> = self.live.borrow().clone();
        let mut goroutines = Vec::with_capacity(live.len());
        let mut traces = Vec::with_capacity(live.len());
        for g in &live {
            let parked = g.parked.get() && !runnable.contains(&Arc::as_ptr(g));
            let w = if parked { g.wait.get() } else { Wait::Unknown };
            let state = if parked { describe(w) } else { "runnable".to_string() };
            goroutines.push(GoroutineDump {
                id: g.id,
                name: g.meta.name.clone(),
                wait: w,
                state,
                waited: parked.then(|| wait::since(g.parked_ms.get())),
                worker: self.shared.index,
                site: g.meta.site,
                parent: g.meta.parent,
                frames: None,
            });
            traces.push(if want_traces { self.trace_of(g) } else { None });
        }
        let (first, rest) = reqs.split_first().expect("checked non-empty above");
        for (tx, _) in rest {
            let _ = tx.send(Part {
                worker: self.shared.index,
                goroutines: goroutines.iter().map(GoroutineDump::copy).collect(),
                unstarted: self.spawnq.len(),
                timers: self.timers.borrow().len(),
                traces: Vec::new(),
            });
        }
        let _ = first.0.send(Part {
            worker: self.shared.index,
            goroutines,
            unstarted: self.spawnq.len(),
            timers: self.timers.borrow().len(),
            traces,
        });
    }

    /// Resumes the suspended goroutine `g` just long enough to capture its backtrace.
    fn trace_of(&self, g: &Arc<G>) -> Option<Backtrace> {
        // SAFETY: we are the owner thread, on the worker's stack: `g` is suspended and only
        // this thread touches its execution state.
        let coro = unsafe { g.exec().coro.as_mut() }?;
        self.current.set(Arc::as_ptr(g));
        self.dumping.set(true);
        overflow::enter(g.guard.get(), g.id, self.rt.stack_size);
        let r = coro.resume(());
        overflow::leave();
        self.dumping.set(false);
        self.current.set(std::ptr::null());
        debug_assert!(matches!(r, corosensei::CoroutineResult::Yield(Suspend::Dumped)));
        self.dump_slot.borrow_mut().take()
    }
}

impl GoroutineDump {
    /// A copy for a second requester (backtraces are not `Clone`: the copy has none).
    fn copy(&self) -> GoroutineDump {
        GoroutineDump {
            id: self.id,
            name: self.name.clone(),
            wait: self.wait,
            state: self.state.clone(),
            waited: self.waited,
            worker: self.worker,
            site: self.site,
            parent: self.parent,
            frames: None,
        }
    }
}

/// The state in Go's words, with the descriptor's direction and addresses for I/O waits.
fn describe(w: Wait) -> String {
    match w {
        Wait::Io { fd, write } => {
            let dir = if write { "write" } else { "read" };
            format!("IO wait, fd {fd} {dir}{}", addresses(fd))
        }
        Wait::Accept { fd } => format!("accept, fd {fd}{}", addresses(fd)),
        w => w.words().to_string(),
    }
}

/// ` local <-> peer` of a socket descriptor (what the kernel knows of it).
fn addresses(fd: i32) -> String {
    use std::os::fd::BorrowedFd;
    // SAFETY: the parked goroutine holds a reference on the descriptor for the whole wait
    // (net/fd.rs), so the number cannot be closed or reused while we look at it.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let s = socket2::SockRef::from(&b);
    let show = |a: std::io::Result<socket2::SockAddr>| match a {
        Ok(a) => match a.as_socket() {
            Some(sa) => sa.to_string(),
            None => a.as_pathname().map_or("unix".into(), |p| p.display().to_string()),
        },
        Err(_) => "-".into(),
    };
    match s.peer_addr() {
        Ok(p) => format!(", {} <-> {}", show(s.local_addr()), show(Ok(p))),
        Err(_) => format!(", {}", show(s.local_addr())),
    }
}

/// Every runtime that is running, for dumps asked outside any runtime and for SIGQUIT.
static RUNTIMES: Mutex<Vec<Weak<RtShared>>> = Mutex::new(Vec::new());

/// Records a runtime that starts.
pub(crate) fn register(rt: &Arc<RtShared>) {
    let mut all = RUNTIMES.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(rt));
}

/// Dumps one runtime, with backtraces if `traces`. On a goroutine the caller parks while it
/// waits (its own entry reads `running`).
pub(crate) fn collect(rt: &RtShared, traces: bool) -> Dump {
    let caller = worker::current_g();
    if let Some(g) = caller {
        g.wait.set(Wait::Dump);
    }
    let (tx, rx) = mpsc::channel();
    for w in &rt.workers {
        w.dumps.queue.lock().unwrap_or_else(|e| e.into_inner()).push((tx.clone(), traces));
        w.dumps.pending.store(true, Ordering::Release);
        w.poke();
    }
    drop(tx);
    let n = rt.workers.len();
    let gather = move || {
        let deadline = Instant::now() + ANSWER;
        let mut parts = Vec::new();
        while parts.len() < n {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(p) => parts.push(p),
                Err(_) => break,
            }
        }
        // Symbolise here, off the workers: the first lookup of a process reads its debug
        // information (hundreds of milliseconds), which on a goroutine would hold its worker
        // and be reported as a stall against the caller.
        for p in &mut parts {
            for (g, t) in p.goroutines.iter_mut().zip(std::mem::take(&mut p.traces)) {
                g.frames = t.map(|t| go_frames(&t.to_string()));
            }
        }
        parts
    };
    let parts = if caller.is_some() { super::blocking(gather) } else { gather() };
    if let Some(g) = caller {
        g.wait.set(Wait::Unknown);
    }
    let mut dump =
        Dump { goroutines: Vec::new(), notes: Vec::new(), timers: 0, section: Vec::new() };
    if let Some(f) = SECTION.get() {
        dump.section = f(rt.workers.first().map_or(0, |w| w.rt_id));
    }
    let mut answered = vec![false; n];
    let mut unstarted = 0;
    for p in parts {
        answered[p.worker] = true;
        unstarted += p.unstarted;
        dump.timers += p.timers;
        dump.goroutines.extend(p.goroutines);
    }
    for (i, ok) in answered.iter().enumerate() {
        if !ok {
            let held = rt.workers[i].running.load(Ordering::Relaxed);
            dump.notes.push(format!(
                "worker {i} did not answer within {ANSWER:?}: goroutine {held} holds it \
                 without parking (its goroutines are missing below)"
            ));
        }
    }
    if unstarted > 0 {
        dump.notes.push(format!("{unstarted} goroutines spawned and not started yet\n"));
    }
    if let Some(g) = caller {
        for d in &mut dump.goroutines {
            if d.id == g.id {
                d.state = "running".into();
                d.waited = None;
            }
        }
    }
    dump.goroutines.sort_by_key(|g| g.id);
    dump
}

/// Dumps the caller's runtime, or every running runtime when called outside one.
pub(crate) fn dump_all() -> Dump {
    if let Some(w) = worker::current() {
        return collect(&w.rt, true);
    }
    let all: Vec<_> = RUNTIMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let mut out =
        Dump { goroutines: Vec::new(), notes: Vec::new(), timers: 0, section: Vec::new() };
    for rt in all {
        let d = collect(&rt, true);
        out.section.extend(d.section);
        out.notes.extend(d.notes);
        out.goroutines.extend(d.goroutines);
        out.timers += d.timers;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn wait_times_are_in_words() {
        let ms = Duration::from_millis;
        assert_eq!(human(ms(250)), "250 ms");
        assert_eq!(human(ms(1000)), "1 second");
        assert_eq!(human(ms(1999)), "1 second");
        assert_eq!(human(ms(2000)), "2 seconds");
        assert_eq!(human(ms(119_999)), "119 seconds");
        assert_eq!(human(ms(120_000)), "2 minutes");
    }
}
