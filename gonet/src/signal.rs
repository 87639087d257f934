//! Incoming signals (Go's `os/signal`): [`notify`] delivers signals on a gonet channel, usable
//! in [`select!`](crate::select); [`notify_context`] gives a [`Context`] cancelled by the first
//! one. This file owns the process's dispositions of every signal gonet handles except
//! `SIGSEGV`/`SIGBUS` (`runtime/overflow.rs`, stack overflows): the signals registered here
//! and `SIGQUIT`, which prints the goroutine dump (`Builder::traceback`).
//!
//! ```no_run
//! use gonet::signal::{self, Signal};
//! gonet::run(|| {
//!     let sigs = signal::notify(&[Signal::INTERRUPT, Signal::TERMINATE]).unwrap();
//!     let s = sigs.recv().unwrap();
//!     eprintln!("got {s}, shutting down");
//! });
//! ```
//!
//! # Graceful shutdown
//!
//! A goroutine server: stop accepting (close the listener, which wakes the accepting
//! goroutine), then wait for the connections' goroutines, each counted in a `WaitGroup`, up to
//! a deadline, and close what is left:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use gonet::signal::{self, Signal};
//! use gonet::sync::WaitGroup;
//! gonet::run(|| {
//!     let ln = Arc::new(gonet::net::TcpListener::bind("127.0.0.1:8080").unwrap());
//!     let (ctx, stop) = signal::notify_context(
//!         &gonet::context::Context::background(),
//!         &[Signal::INTERRUPT, Signal::TERMINATE],
//!     ).unwrap();
//!     let conns = WaitGroup::new();
//!     let acceptor = {
//!         let (ln, conns) = (ln.clone(), conns.clone());
//!         gonet::go(move || {
//!             while let Ok((conn, _)) = ln.accept() {
//!                 conns.go(move || { let _ = conn; /* serve it; watch ctx to end early */ });
//!             }
//!         })
//!     };
//!     ctx.done().recv().ok(); // a signal came
//!     drop(stop);             // a second Ctrl-C now ends the process at once
//!     let _ = ln.close();     // stop accepting: accept fails, the acceptor returns
//!     acceptor.join().unwrap();
//!     // Wait for the connections, at most 10 s.
//!     let (done_tx, done_rx) = gonet::chan::bounded::<()>(1);
//!     gonet::go(move || { conns.wait(); let _ = done_tx.send(()); });
//!     gonet::select! {
//!         recv(done_rx) -> _ => eprintln!("every connection finished"),
//!         recv(gonet::time::after(Duration::from_secs(10))) -> _ => {
//!             eprintln!("connections still open after 10 s; exiting anyway")
//!         }
//!     }
//! }); // main returns: the runtime ends and drops the goroutines left
//! ```
//!
//! An [`EventLoop`](crate::reactor::EventLoop): on the signal, call its `shutdown(deadline)`:
//! it stops accepting, closes idle connections, waits for busy ones until the deadline, then
//! closes them too, and `serve` returns.
//!
//! ```no_run
//! # use gonet::signal::{self, Signal};
//! # fn serve_with(el: gonet::reactor::EventLoop, ln: gonet::net::TcpListener) {
//! let sigs = signal::notify(&[Signal::INTERRUPT, Signal::TERMINATE]).unwrap();
//! let el2 = el.clone();
//! gonet::go(move || {
//!     sigs.recv().ok();
//!     let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
//!     if let Err(e) = el2.shutdown(deadline) { eprintln!("shutdown: {e}"); }
//! });
//! el.serve(ln).ok(); // returns once shutdown is done
//! # }
//! ```
//!
//! # How it works
//!
//! One handler serves every signal registered here. It is async-signal-safe: it reads
//! atomics, and either writes the signal's number (one byte) to a pipe, bumps the `SIGQUIT`
//! counter the runtimes' watchdogs poll, or hands the signal to the disposition that was there
//! before. A thread (`gonet-signal`, started with the first registration) reads the pipe and
//! forwards each signal to the registrations that want it — a channel send that never blocks,
//! or a context cancellation — outside any lock the handler could need.
//!
//! Invariants:
//! 1. `WANTED[s]` counts the registrations for `s`, and our handler is installed for `s`
//!    while `WANTED[s] > 0`, or `s` is `SIGQUIT` and a runtime watches it (`QUIT_WATCH > 0`);
//!    all three change only under `REGISTRY`'s lock. When neither holds any more the previous
//!    disposition is restored (Go's `signal.Reset`).
//! 2. `PREV_HANDLER[s]`/`PREV_FLAGS[s]` are written before our handler is installed for `s`
//!    and not while it is installed, so the handler reads a consistent previous disposition
//!    when a signal arrives that nobody wants any more (a registration dropped meanwhile).
//! 3. The pipe's write end is set once, before any handler can want it, and never closed.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};

use crate::chan::{self, Receiver, Sender};
use crate::context::{self, CancelFunc, Context};

/// A signal number, with the common ones as constants (Go's `os.Signal`, `syscall.SIGTERM`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(libc::c_int);

impl Signal {
    /// `SIGHUP`: the terminal hung up; daemons take it to reload.
    pub const HANGUP: Signal = Signal(libc::SIGHUP);
    /// `SIGINT`: Ctrl-C (Go's `os.Interrupt`).
    pub const INTERRUPT: Signal = Signal(libc::SIGINT);
    /// `SIGQUIT`: Ctrl-\\. Registering it here replaces the goroutine dump it prints
    /// otherwise, as in Go.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGTERM`: the polite kill (systemd, Kubernetes, `kill` without a number).
    pub const TERMINATE: Signal = Signal(libc::SIGTERM);
    /// `SIGUSR1`.
    pub const USER1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USER2: Signal = Signal(libc::SIGUSR2);
    /// `SIGPIPE` (gonet's sockets never raise it: they write with `MSG_NOSIGNAL`).
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// `SIGALRM`.
    pub const ALARM: Signal = Signal(libc::SIGALRM);
    /// `SIGCHLD`: a child process changed state.
    pub const CHILD: Signal = Signal(libc::SIGCHLD);
    /// `SIGWINCH`: the terminal's size changed.
    pub const WINDOW_CHANGE: Signal = Signal(libc::SIGWINCH);

    /// The signal numbered `n`, if `n` names one (1 ..= `SIGRTMAX`).
    pub fn from_raw(n: i32) -> Option<Signal> {
        (1..=libc::SIGRTMAX()).contains(&n).then_some(Signal(n))
    }

    /// Its number.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// Why it cannot be registered, if it cannot.
    fn refused(self) -> Option<&'static str> {
        match self.0 {
            libc::SIGKILL | libc::SIGSTOP => Some("cannot be caught"),
            libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
                Some("reports a fault of the thread that raised it (stack overflows among them)")
            }
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    /// Go's names: `interrupt`, `terminated`, `hangup`, ...; `signal N` for the others.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::SIGHUP => "hangup",
            libc::SIGINT => "interrupt",
            libc::SIGQUIT => "quit",
            libc::SIGTERM => "terminated",
            libc::SIGUSR1 => "user defined signal 1",
            libc::SIGUSR2 => "user defined signal 2",
            libc::SIGPIPE => "broken pipe",
            libc::SIGALRM => "alarm clock",
            libc::SIGCHLD => "child exited",
            libc::SIGWINCH => "window changed",
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signal({}: {self})", self.0)
    }
}

/// How many signals a [`notify`] channel holds before it drops new ones.
pub const DEFAULT_BUFFER: usize = 16;

/// Delivers `signals` on a channel from now on, instead of their default action (for
/// `SIGINT`/`SIGTERM`: ending the process), until the returned [`Notify`] is dropped or
/// [stopped](Notify::stop); once the last registration for a signal goes, the disposition it
/// had before is restored. `Notify` derefs to the channel's [`Receiver`], so it goes straight
/// into `select!`'s `recv` arm.
///
/// The channel holds [`DEFAULT_BUFFER`] signals ([`notify_buffered`] chooses); when it is full
/// a new signal is dropped, as Go's `signal.Notify` drops, so a slow receiver never blocks the
/// delivery to others. The kernel itself merges a signal with one of the same number still
/// pending, so a burst may arrive as one.
///
/// Errors: `InvalidInput` for `SIGKILL`/`SIGSTOP` (they cannot be caught) and for the fault
/// signals (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`); the OS error if the pipe or
/// thread that forwards signals cannot be created.
pub fn notify(signals: &[Signal]) -> io::Result<Notify> {
    notify_buffered(signals, DEFAULT_BUFFER)
}

/// [`notify`] with a channel of `buffer` signals (at least 1).
pub fn notify_buffered(signals: &[Signal], buffer: usize) -> io::Result<Notify> {
    let (tx, rx) = chan::bounded(buffer.max(1));
    let reg = register(signals, Sink::Chan(tx))?;
    Ok(Notify { rx, _reg: reg })
}

/// Signals delivered on a channel; see [`notify`]. Dropping it unregisters.
pub struct Notify {
    rx: Receiver<Signal>,
    _reg: Registration,
}

impl Notify {
    /// Unregisters now (Go's `signal.Stop`); the same as dropping it. Signals already in the
    /// channel are dropped with it.
    pub fn stop(self) {}

    /// The channel.
    pub fn receiver(&self) -> &Receiver<Signal> {
        &self.rx
    }
}

impl Deref for Notify {
    type Target = Receiver<Signal>;
    fn deref(&self) -> &Receiver<Signal> {
        &self.rx
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify").field("signals", &self._reg.signals).finish()
    }
}

/// A child of `parent` cancelled when one of `signals` arrives (Go's `signal.NotifyContext`),
/// and the registration: dropping it, or [`NotifyContext::stop`], unregisters and cancels the
/// context. Errors as [`notify`].
///
/// The first signal cancels the context; the registration stays until it is dropped, so a
/// second Ctrl-C does not kill the process while it shuts down gracefully — drop it once the
/// context is done to let the next one do that, as Go's documentation advises.
pub fn notify_context(
    parent: &Context,
    signals: &[Signal],
) -> io::Result<(Context, NotifyContext)> {
    let (ctx, cancel) = context::with_cancel(parent);
    let cancel = Arc::new(cancel);
    let got = Arc::new(AtomicI32::new(0));
    let reg = register(signals, Sink::Cancel(cancel.clone(), got.clone()))?;
    Ok((ctx, NotifyContext { _reg: reg, cancel, got }))
}

/// The registration of a [`notify_context`].
pub struct NotifyContext {
    _reg: Registration,
    cancel: Arc<CancelFunc>,
    got: Arc<AtomicI32>,
}

impl NotifyContext {
    /// The signal that cancelled the context, if one did (the context's error says only
    /// `Canceled`).
    pub fn signal(&self) -> Option<Signal> {
        Signal::from_raw(self.got.load(Ordering::Acquire))
    }

    /// Unregisters and cancels the context; the same as dropping it.
    pub fn stop(self) {}
}

impl Drop for NotifyContext {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl fmt::Debug for NotifyContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyContext")
            .field("signals", &self._reg.signals)
            .field("received", &self.signal())
            .finish()
    }
}

// ---- registry -------------------------------------------------------------------------------

/// Numbers 0 ..= 64 (`SIGRTMAX` is 64 on Linux).
const NSIG: usize = 65;

enum Sink {
    Chan(Sender<Signal>),
    Cancel(Arc<CancelFunc>, Arc<AtomicI32>),
}

struct Registry {
    next: u64,
    /// By registration id: its signals and where they go.
    regs: HashMap<u64, (Vec<Signal>, Sink)>,
    /// The disposition each installed signal had before ours.
    prev: HashMap<libc::c_int, libc::sigaction>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

#[allow(clippy::declare_interior_mutable_const)]
const ZERO_U32: AtomicU32 = AtomicU32::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO_USIZE: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO_I32: AtomicI32 = AtomicI32::new(0);
/// Registrations per signal (invariant 1).
static WANTED: [AtomicU32; NSIG] = [ZERO_U32; NSIG];
/// The handler and flags of the disposition before ours (invariant 2).
static PREV_HANDLER: [AtomicUsize; NSIG] = [ZERO_USIZE; NSIG];
static PREV_FLAGS: [AtomicI32; NSIG] = [ZERO_I32; NSIG];
/// Runtimes that print a dump on SIGQUIT.
static QUIT_WATCH: AtomicUsize = AtomicUsize::new(0);
/// SIGQUITs received while a runtime watches; each watchdog acts when it sees it change.
pub(crate) static SIGQUITS: AtomicU64 = AtomicU64::new(0);
/// Registrations alive: while there is one, a goroutine waiting on a signal's channel or
/// context is not deadlocked (the watchdog asks [`may_deliver`]).
static REGISTRATIONS: AtomicUsize = AtomicUsize::new(0);
/// The pipe's write end, or -1 (invariant 3).
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// One registration; unregisters when dropped.
struct Registration {
    id: u64,
    signals: Vec<Signal>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut g = registry();
        let r = g.as_mut().expect("a registration implies the registry");
        r.regs.remove(&self.id);
        REGISTRATIONS.fetch_sub(1, Ordering::SeqCst);
        for s in &self.signals {
            WANTED[s.0 as usize].fetch_sub(1, Ordering::SeqCst);
            settle(r, s.0);
        }
    }
}

fn register(signals: &[Signal], sink: Sink) -> io::Result<Registration> {
    let mut signals = signals.to_vec();
    signals.sort_by_key(|s| s.0);
    signals.dedup();
    for s in &signals {
        if let Some(why) = s.refused() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gonet::signal::notify: {s} ({}) {why}", s.0),
            ));
        }
        if s.0 <= 0 || s.0 as usize >= NSIG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("gonet::signal::notify: no signal numbered {}", s.0),
            ));
        }
    }
    start_forwarder()?;
    let mut g = registry();
    let r = g.get_or_insert_with(new_registry);
    let id = r.next;
    r.next += 1;
    r.regs.insert(id, (signals.clone(), sink));
    REGISTRATIONS.fetch_add(1, Ordering::SeqCst);
    for s in &signals {
        WANTED[s.0 as usize].fetch_add(1, Ordering::SeqCst);
        settle(r, s.0);
    }
    Ok(Registration { id, signals })
}

fn new_registry() -> Registry {
    Registry { next: 1, regs: HashMap::new(), prev: HashMap::new() }
}

/// Installs our handler for `sig` or restores the previous disposition, as invariant 1 says.
/// Called under the registry's lock.
fn settle(r: &mut Registry, sig: libc::c_int) {
    let want = WANTED[sig as usize].load(Ordering::SeqCst) > 0
        || (sig == libc::SIGQUIT && QUIT_WATCH.load(Ordering::SeqCst) > 0);
    let installed = r.prev.contains_key(&sig);
    if want && !installed {
        // SAFETY: sigaction with valid pointers; the handler we install is async-signal-safe
        // (see `handler`). The previous disposition is recorded before ours can run
        // (invariant 2).
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            PREV_HANDLER[sig as usize].store(old.sa_sigaction, Ordering::SeqCst);
            PREV_FLAGS[sig as usize].store(old.sa_flags, Ordering::SeqCst);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
            r.prev.insert(sig, old);
        }
    } else if !want && installed {
        let old = r.prev.remove(&sig).expect("checked above");
        // SAFETY: restores a disposition the kernel gave us.
        unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
    }
}

/// Whether a signal may still be delivered to a channel or context: then goroutines that all
/// wait on channels are not known to be deadlocked (one may wait for the signal).
pub(crate) fn may_deliver() -> bool {
    REGISTRATIONS.load(Ordering::SeqCst) > 0
}

/// A runtime that prints a dump on SIGQUIT holds one while it runs (`runtime/mod.rs`).
pub(crate) struct QuitWatch(());

pub(crate) fn watch_quit() -> QuitWatch {
    let mut g = registry();
    let r = g.get_or_insert_with(new_registry);
    QUIT_WATCH.fetch_add(1, Ordering::SeqCst);
    settle(r, libc::SIGQUIT);
    QuitWatch(())
}

impl Drop for QuitWatch {
    fn drop(&mut self) {
        let mut g = registry();
        let r = g.get_or_insert_with(new_registry);
        QUIT_WATCH.fetch_sub(1, Ordering::SeqCst);
        settle(r, libc::SIGQUIT);
    }
}

// ---- the handler ----------------------------------------------------------------------------

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // Async-signal-safe throughout: atomics, write(2), sigaction(2), raise(3); errno is kept.
    // SAFETY: __errno_location returns this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    let i = sig as usize;
    if i < NSIG && WANTED[i].load(Ordering::SeqCst) > 0 {
        let fd = PIPE_W.load(Ordering::SeqCst);
        let b = sig as u8;
        // SAFETY: writes one byte from a local to the pipe (non-blocking: a full pipe drops
        // the signal, as a full channel does).
        unsafe { libc::write(fd, (&raw const b).cast(), 1) };
    } else if sig == libc::SIGQUIT && QUIT_WATCH.load(Ordering::SeqCst) > 0 {
        SIGQUITS.fetch_add(1, Ordering::SeqCst);
    } else if i < NSIG {
        // SAFETY: forwards to the disposition recorded before ours (invariant 2).
        unsafe { forward(sig, info, uctx) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Hands a signal nobody here wants any more to the disposition that was there before ours.
///
/// # Safety
/// Called from `handler` with its arguments.
unsafe fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    let h = PREV_HANDLER[sig as usize].load(Ordering::SeqCst);
    if h == libc::SIG_IGN {
        return;
    }
    if h == libc::SIG_DFL {
        if matches!(sig, libc::SIGCHLD | libc::SIGWINCH | libc::SIGURG | libc::SIGCONT) {
            return; // their default action is to do nothing
        }
        // SAFETY: the default disposition, then the signal again: it stays pending while
        // this handler runs and takes its default action (ending the process) on return.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
            libc::raise(sig);
        }
        return;
    }
    if PREV_FLAGS[sig as usize].load(Ordering::SeqCst) & libc::SA_SIGINFO != 0 {
        // SAFETY: a handler installed with SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, uctx);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

// ---- the forwarding thread ------------------------------------------------------------------

/// Creates the pipe and starts the thread that reads it (once per process).
fn start_forwarder() -> io::Result<()> {
    static ONCE: Once = Once::new();
    static FAILED: Mutex<Option<String>> = Mutex::new(None);
    ONCE.call_once(|| {
        if let Err(e) = try_start_forwarder() {
            *FAILED.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
    });
    match &*FAILED.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(io::Error::other(format!("gonet::signal: cannot forward signals: {e}"))),
        None => Ok(()),
    }
}

fn try_start_forwarder() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The write end never blocks the handler; the read end blocks the forwarding thread.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    let read_end = fds[0];
    std::thread::Builder::new()
        .name("gonet-signal".into())
        .spawn(move || forward_loop(read_end))?;
    PIPE_W.store(fds[1], Ordering::SeqCst);
    Ok(())
}

fn forward_loop(fd: libc::c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a local buffer from the pipe we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            continue; // EINTR; the write end is never closed
        }
        for &b in &buf[..n as usize] {
            deliver(Signal(b as libc::c_int));
        }
    }
}

/// Sends `sig` to every registration that wants it, outside the registry's lock (a
/// cancellation runs the context's callbacks, which may drop registrations).
fn deliver(sig: Signal) {
    let mut chans = Vec::new();
    let mut cancels = Vec::new();
    if let Some(r) = registry().as_ref() {
        for (sigs, sink) in r.regs.values() {
            if sigs.contains(&sig) {
                match sink {
                    Sink::Chan(tx) => chans.push(tx.clone()),
                    Sink::Cancel(c, got) => cancels.push((c.clone(), got.clone())),
                }
            }
        }
    }
    for tx in chans {
        let _ = tx.try_send(sig); // full: dropped, as Go drops
    }
    for (c, got) in cancels {
        let _ = got.compare_exchange(0, sig.0, Ordering::AcqRel, Ordering::Acquire);
        c.cancel();
    }
}
