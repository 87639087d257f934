//! The runtime: goroutines (stackful coroutines on pooled `mmap`'d stacks) scheduled on N
//! worker threads, each with its own run queue, timers and epoll netpoller.
//!
//! Files, by concept: `goroutine` (the `G`), `stack` (stacks and their pool), `park` (the
//! park/wake protocol), `worker` (the scheduling loop), `timer`, `join` (`JoinHandle`),
//! `idle_policy` (glance, spin or sleep when a worker runs dry), `blocking` (the blocking
//! pool), `watchdog` (stall reports), `overflow` (stack overflow
//! reports), `contain` (panics from user code the runtime runs itself) and `stats`.

mod block_on;
mod blocking;
pub(crate) mod contain;
pub(crate) mod dump;
pub(crate) mod goroutine;
mod idle_policy;
mod join;
mod overflow;
pub(crate) mod park;
mod prefetch;
mod report;
mod slab;
mod stack;
mod stats;
#[cfg_attr(not(feature = "hyper"), allow(dead_code))]
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod wait;
mod watchdog;
pub(crate) mod worker;

use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_deque::{Injector, Worker as Deque};

pub use block_on::block_on;
pub use blocking::blocking;
pub(crate) use blocking::blocking_scoped;
pub use dump::{Dump, GoroutineDump};
pub use idle_policy::SpinMode;
pub use join::JoinHandle;
pub use report::{Deadlock, Reports, Traceback};
pub use stats::{stats, Stats, WorkerSnapshot};
pub use watchdog::STALL;

use goroutine::{Meta, Suspend, G};
use stack::Stack;
use worker::{RtShared, Worker, WorkerShared};

/// Default usable stack size of a goroutine: 256 KiB of address space, of which only the
/// touched pages become resident.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Default cap on the spin of an idle worker, which by default spins for what a sleep costs
/// it ([`SpinMode::Adaptive`]; see [`Builder::spin_mode`]).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Configures a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    procs: Option<usize>,
    stack_size: usize,
    spin: Option<SpinMode>,
    traceback: Option<Traceback>,
    deadlock: Option<Deadlock>,
    reports: Option<Reports>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The default configuration: `procs` from `GONET_PROCS` or the machine's available
    /// parallelism, stacks of [`DEFAULT_STACK_SIZE`], the spin window from `GONET_SPIN_US`
    /// (microseconds) or [`DEFAULT_SPIN`].
    pub fn new() -> Builder {
        Builder {
            procs: None,
            stack_size: DEFAULT_STACK_SIZE,
            spin: None,
            traceback: None,
            deadlock: None,
            reports: None,
        }
    }

    /// Number of worker threads (Go's `GOMAXPROCS`); at least 1.
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n.max(1));
        self
    }

    /// Usable stack size of each goroutine, in bytes (rounded up to whole pages).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// A fixed spin window: how long a worker that runs out of work keeps polling its
    /// netpoller (without blocking) before it sleeps in `epoll_wait`, whatever a sleep costs;
    /// `Duration::ZERO` sleeps at once. Shorthand for
    /// [`spin_mode`](Builder::spin_mode)`(SpinMode::Fixed(window))` (`SpinMode::Off` for zero).
    pub fn spin(self, window: Duration) -> Builder {
        self.spin_mode(if window.is_zero() { SpinMode::Off } else { SpinMode::Fixed(window) })
    }

    /// How a worker that runs out of work spins before it sleeps. Default:
    /// [`SpinMode::Adaptive`]`(`[`DEFAULT_SPIN`]`)`, or what `GONET_SPIN_US` says (a number of
    /// microseconds: a fixed window, `0` off; `auto` or `auto:MAX_US`: adaptive).
    ///
    /// A sleeping worker is woken by the kernel when a socket becomes ready; the sleep and the
    /// wake-up cost the worker CPU (and latency), a few microseconds on bare metal, 15 µs and
    /// more on VMs where waking an idle virtual CPU goes through the hypervisor. Under
    /// request/response load a worker often runs dry for a few microseconds between batches,
    /// and spinning through such gaps saves that cost. The adaptive mode measures what a sleep
    /// costs this worker (its thread's CPU clock around one sleep in 16; twice that, for the
    /// cache refills the clock does not see) and spins for no longer than that, capped by the
    /// window — the spin-then-block rule, which bounds the CPU spent to a small multiple of
    /// the best choice's —, so a machine with cheap wake-ups barely spins and one with dear
    /// wake-ups spins through them. It also measures, in epochs of 10 ms, what each of three
    /// windows (no spin, that short one, the cap) costs in CPU per request and how many
    /// requests it gets served per second, and keeps the cheapest — or one that spins more
    /// while it serves at least 10 % more for at most 20 % more CPU per request, as one
    /// connection's round trips do. In every mode the spin is
    /// bounded: a worker with timers due or work to steal stops at once; at most half the
    /// workers (rounded up) spin at a time; and a worker spins only while the previous spin
    /// found work or the previous sleep was shorter than the window, so a lightly loaded or
    /// idle worker, whose gaps are longer, sleeps at once.
    pub fn spin_mode(mut self, mode: SpinMode) -> Builder {
        self.spin = Some(mode);
        self
    }

    /// `true`: `SIGQUIT` (`kill -QUIT`, Ctrl-\\) prints a goroutine dump ([`dump`]) to
    /// stderr and the program runs on ([`Traceback::Continue`]); `false`: `SIGQUIT` keeps its
    /// default action ([`Traceback::Off`]). Without either, as Go: the dump, then exit status
    /// 2 ([`Traceback::Exit`]); see [`traceback_mode`](Builder::traceback_mode).
    pub fn traceback(self, on: bool) -> Builder {
        self.traceback_mode(if on { Traceback::Continue } else { Traceback::Off })
    }

    /// What `SIGQUIT` does (see [`Traceback`]). Default: `GONET_TRACEBACK` (`exit`, `1` or
    /// `continue`, `0` or `off`), else [`Traceback::Exit`], Go's behaviour. A
    /// [`signal::notify`](crate::signal::notify) registration for `SIGQUIT` takes it instead.
    pub fn traceback_mode(mut self, mode: Traceback) -> Builder {
        self.traceback = Some(mode);
        self
    }

    /// What the runtime does when all goroutines are asleep (see [`Deadlock`]). Default:
    /// `GONET_DEADLOCK` (`exit`, `warn`), else [`Deadlock::Exit`], Go's behaviour: print the
    /// dump and exit with status 2.
    pub fn deadlock(mut self, on_deadlock: Deadlock) -> Builder {
        self.deadlock = Some(on_deadlock);
        self
    }

    /// Where stall and possible-deadlock warnings go (see [`Reports`]). Default:
    /// `GONET_REPORTS`, else [`Reports::Auto`] (the `log` crate if a logger takes warnings,
    /// else stderr).
    pub fn reports(mut self, to: Reports) -> Builder {
        self.reports = Some(to);
        self
    }

    /// Checks the configuration and creates the runtime (its threads start in [`Runtime::run`]).
    pub fn build(self) -> io::Result<Runtime> {
        let procs = match self.procs {
            Some(n) => n,
            None => default_procs()?,
        };
        if self.stack_size < 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gonet: stack_size {} is below the minimum of 16 KiB", self.stack_size),
            ));
        }
        let spin = match self.spin {
            Some(d) => d,
            None => default_spin()?,
        };
        let traceback = match self.traceback {
            Some(t) => t,
            None => Traceback::from_env()?,
        };
        let deadlock = match self.deadlock {
            Some(d) => d,
            None => Deadlock::from_env()?,
        };
        let reports = match self.reports {
            Some(r) => r,
            None => Reports::from_env()?,
        };
        Ok(Runtime { procs, stack_size: self.stack_size, spin, traceback, deadlock, reports })
    }
}

fn default_spin() -> io::Result<SpinMode> {
    match std::env::var("GONET_SPIN_US") {
        Ok(v) => parse_spin(&v).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gonet: GONET_SPIN_US={v:?} is neither a number of microseconds nor auto[:MAX_US]"
                ),
            )
        }),
        Err(_) => Ok(SpinMode::Adaptive(DEFAULT_SPIN)),
    }
}

/// `GONET_SPIN_US`: `N` (a fixed window of N µs, `0` off), `auto` or `auto:N` (adaptive,
/// capped at N µs, by default [`DEFAULT_SPIN`]).
fn parse_spin(v: &str) -> Option<SpinMode> {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix("auto") {
        let max = match rest.strip_prefix(':') {
            Some(us) => Duration::from_micros(us.trim().parse().ok()?),
            None if rest.is_empty() => DEFAULT_SPIN,
            None => return None,
        };
        return Some(if max.is_zero() { SpinMode::Off } else { SpinMode::Adaptive(max) });
    }
    let us: u64 = v.parse().ok()?;
    Some(if us == 0 { SpinMode::Off } else { SpinMode::Fixed(Duration::from_micros(us)) })
}

fn default_procs() -> io::Result<usize> {
    match std::env::var("GONET_PROCS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gonet: GONET_PROCS={v:?} is not a positive integer"),
            )),
        },
        Err(_) => Ok(thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
    }
}

/// A configured runtime, ready to [`run`](Runtime::run) a main goroutine.
#[derive(Debug)]
pub struct Runtime {
    procs: usize,
    stack_size: usize,
    spin: SpinMode,
    traceback: Traceback,
    deadlock: Deadlock,
    reports: Reports,
}

impl Runtime {
    /// Number of worker threads.
    pub fn procs(&self) -> usize {
        self.procs
    }

    /// Starts the workers, runs `f` as the main goroutine and returns its value once it
    /// returns (like Go's `main`: goroutines still running are then dropped and their stacks
    /// freed). A panic in `f` resumes unwinding in the caller.
    ///
    /// # Panics
    /// When the workers or the main goroutine's stack cannot be created; use
    /// [`Runtime::try_run`] to get that as an error.
    #[track_caller]
    pub fn run<F, T>(self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.try_run(f) {
            Ok(Ok(v)) => v,
            Ok(Err(p)) => panic::resume_unwind(p),
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`run`](Runtime::run), but returns setup errors and the main goroutine's panic
    /// instead of unwinding.
    #[track_caller]
    pub fn try_run<F, T>(self, f: F) -> io::Result<thread::Result<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        static NEXT_RT: AtomicU64 = AtomicU64::new(1);
        let rt_id = NEXT_RT.fetch_add(1, Ordering::Relaxed);
        let mut deques = Vec::new();
        let mut shared = Vec::new();
        for i in 0..self.procs {
            let d: Deque<goroutine::GRef> = Deque::new_fifo();
            shared.push(Arc::new(WorkerShared::new(i, rt_id, d.stealer())?));
            deques.push(d);
        }
        let rt = Arc::new(RtShared {
            workers: shared,
            injector: Injector::new(),
            shutdown: AtomicBool::new(false),
            idle: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            stack_size: self.stack_size,
            spin: self.spin,
            reports: self.reports,
            exit_hooks: Default::default(),
        });
        dump::register(&rt);
        report::install_panic_hook();
        let _quit = (self.traceback != Traceback::Off).then(crate::signal::watch_quit);
        // Before any goroutine runs: a SIGQUIT from now on is this runtime's to print.
        let quits = crate::signal::SIGQUITS.load(Ordering::SeqCst);
        let meta = Meta { name: Some("main".into()), site: Location::caller(), parent: 0 };
        let (handle, main) = spawn_g(f, Some(Stack::new(self.stack_size)?), meta);
        rt.injector.push(main);
        // The main goroutine counts as spawned on worker 0 (no worker runs yet).
        rt.workers[0].stats.spawned.set_local(1);

        // Every runtime thread is set up (its stack and signal stack mapped: the standard
        // library aborts the process when a new thread cannot map its signal stack) before
        // the first goroutine runs: workers wait at `gate` until all of them and the watchdog
        // are up, so no thread of ours starts in a window where user code has exhausted
        // memory or lowered the address-space limit.
        let gate = Arc::new(Gate::default());
        let mut threads = Vec::new();
        for (i, d) in deques.into_iter().enumerate() {
            let rt2 = rt.clone();
            let g = gate.clone();
            let spawned =
                thread::Builder::new().name(format!("gonet-worker-{i}")).spawn(move || {
                    let w = panic::catch_unwind(AssertUnwindSafe(|| {
                        Worker::new(rt2.workers[i].clone(), rt2.clone(), d)
                    }));
                    g.arrive_and_wait(); // arrives even if `new` failed: `run` never waits
                    match w {
                        Ok(w) => w.run(),
                        Err(p) => panic::resume_unwind(p),
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    gate.open();
                    stop(&rt, threads);
                    return Err(e);
                }
            }
        }
        gate.wait_for(threads.len());
        let dog = watchdog::start(rt.clone(), self.traceback, self.deadlock, quits);
        gate.open();
        let r = handle.join();
        drop(dog);
        stop(&rt, threads);
        run_exit_hooks(&rt);
        Ok(r)
    }
}

/// The start gate of a runtime's worker threads (see `Runtime::run`): each arrives, then
/// waits until the runtime opens it.
#[derive(Default)]
struct Gate {
    /// Threads arrived, and whether the gate is open.
    state: std::sync::Mutex<(usize, bool)>,
    cv: std::sync::Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn wait_for(&self, n: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 < n {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// Signals shutdown and waits for the worker threads to free their goroutines and exit.
fn stop(rt: &RtShared, threads: Vec<thread::JoinHandle<()>>) {
    rt.shutdown.store(true, Ordering::SeqCst);
    for w in &rt.workers {
        w.poller.wake();
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Registers `f` to run when the current runtime ends, after its worker threads have exited
/// (no goroutine, poller or timer of it runs any more). Returns false off a worker.
pub(crate) fn at_exit(f: impl FnOnce() + Send + 'static) -> bool {
    match worker::current() {
        Some(w) => {
            w.rt.exit_hooks.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
            true
        }
        None => false,
    }
}

fn run_exit_hooks(rt: &RtShared) {
    let hooks = std::mem::take(&mut *rt.exit_hooks.lock().unwrap_or_else(|e| e.into_inner()));
    for h in hooks {
        contain::catch(0, "running a runtime exit hook", h);
    }
}

/// Builds a goroutine around `f` with its stack; returns its join handle and the `G`.
fn spawn_g<F, T>(f: F, stack: Option<Stack>, meta: Meta) -> (JoinHandle<T>, goroutine::GRef)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let id = goroutine::next_id();
    let (handle, done) = join::pair(id);
    let body = move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let r = match r {
            Err(_) if worker::shutting_down() => {
                Err(Box::new(format!("gonet: goroutine {id} was dropped: its runtime shut down"))
                    as Box<dyn std::any::Any + Send>)
            }
            r => r,
        };
        // A detached goroutine's result (or panic payload) is dropped right here, and its
        // `Drop` may panic: contain it (contain.rs), so the coroutine returns normally.
        let what = match r {
            Ok(_) => "dropping the result of a detached goroutine",
            Err(_) => "dropping the panic payload of a detached goroutine",
        };
        contain::catch(id, what, move || done.complete(r));
    };
    if let Some(n) = &meta.name {
        report::remember_name(id, n.clone());
    }
    (handle, G::new(id, Box::new(body), stack, meta))
}

/// Runs `f` as the main goroutine of a runtime with the default configuration (see
/// [`Builder::new`]) and returns its value. A panic in `f` resumes in the caller.
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().build().unwrap_or_else(|e| panic!("{e}")).run(f)
}

/// Starts a goroutine running `f` and returns a handle to join it.
///
/// The goroutine's stack is taken when it first runs (from the pool of the worker that runs
/// it), so goroutines spawned in a burst hold none until their turn. If none can be allocated
/// then, the goroutine never runs: the failure is reported on stderr (or `log`) naming the
/// goroutine, and [`JoinHandle::join`] returns it as an error. [`try_go`] allocates the stack
/// at once and returns that failure instead.
///
/// # Panics
/// Outside a runtime (start one with [`run`]).
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn(None, f, false) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`go`], but allocates the goroutine's stack now and returns an error when it cannot
/// (for example when the address space or `vm.max_map_count` is exhausted).
///
/// # Panics
/// Outside a runtime.
#[track_caller]
pub fn try_go<F, T>(f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn(None, f, true)
}

/// Like [`go`], with a name that goroutine dumps ([`dump`]), stall reports and panic messages
/// show, e.g. `gonet::go_named(format!("conn {peer}"), move || serve(conn))`.
///
/// # Panics
/// As [`go`].
#[track_caller]
pub fn go_named<F, T>(name: impl Into<String>, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match spawn(Some(name.into().into()), f, false) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`go_named`], but returns an error when the goroutine's stack cannot be allocated.
///
/// # Panics
/// Outside a runtime.
#[track_caller]
pub fn try_go_named<F, T>(name: impl Into<String>, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn(Some(name.into().into()), f, true)
}

#[track_caller]
fn spawn<F, T>(name: Option<std::sync::Arc<str>>, f: F, eager: bool) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let site = Location::caller();
    let w = worker::current().expect(
        "gonet::go called outside a gonet runtime: start one with gonet::run(|| { .. }) \
         or gonet::Builder::new().build()?.run(..)",
    );
    let stack = if eager { Some(w.stacks.borrow_mut().get()?) } else { None };
    let parent = worker::current_g().map_or(0, |g| g.id);
    let (handle, g) = spawn_g(f, stack, Meta { name, site, parent });
    w.spawn(g);
    Ok(handle)
}

/// Starts a goroutine on the calling worker's own run queue, so that it runs on this worker
/// only; returns its `G` pointer (for identity checks). Must be called on a worker thread.
/// `name` is what dumps and reports call it.
#[track_caller]
pub(crate) fn go_local(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<*const G> {
    let w = worker::current().expect("gonet: go_local outside a worker");
    let stack = w.stacks.borrow_mut().get()?;
    let parent = worker::current_g().map_or(0, |g| g.id);
    let meta = Meta { name: Some(name.into()), site: Location::caller(), parent };
    let (_handle, g) = spawn_g(f, Some(stack), meta);
    let p = Arc::as_ptr(&g);
    w.spawn_local(g);
    Ok(p)
}

/// Starts `f` as a goroutine on worker `target`, from any thread: it first runs, and so stays,
/// there. For a higher layer whose state belongs to one worker (a reactor connection's owner).
/// Fails if that worker has shut down.
#[track_caller]
pub(crate) fn go_on(
    target: &worker::WorkerShared,
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    let parent = worker::current_g().map_or(0, |g| g.id);
    let meta = Meta { name: Some(name.into()), site: Location::caller(), parent };
    let (_handle, g) = spawn_g(f, None, meta);
    match target.start_here(g) {
        Ok(()) => Ok(()),
        Err(g) => {
            contain::drop_contained(g.id, "dropping a goroutine its worker refused", g);
            Err(io::Error::new(io::ErrorKind::NotConnected, "gonet: the worker has shut down"))
        }
    }
}

/// Lets other goroutines of this worker run; the caller continues after them. Outside a
/// goroutine it yields the OS thread.
pub fn yield_now() {
    if worker::in_goroutine() {
        worker::suspend(Suspend::Yield);
    } else {
        thread::yield_now();
    }
}

/// A snapshot of every live goroutine of the caller's runtime (of every running runtime when
/// called outside one): id, name, state in Go's words (`chan receive`, `IO wait` with the
/// descriptor and its addresses, `sync.Mutex.Lock`, ...), how long it has waited, its worker,
/// spawn site and the backtrace of where it waits. `Display` prints it in the layout of Go's
/// goroutine dump, which `SIGQUIT` prints (then exits 2, or runs on: [`Builder::traceback`]).
///
/// Each worker describes its own goroutines between two runs, so the dump waits for every
/// worker to reach its scheduler (up to 2 s each; a worker held by a goroutine that never
/// parks is named in the dump instead). On a goroutine the caller parks meanwhile.
pub fn dump() -> Dump {
    dump::dump_all()
}
