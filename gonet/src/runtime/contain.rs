//! Containment of panics from user code that the runtime runs outside a goroutine body.
//!
//! A goroutine body runs under `catch_unwind` (its panic goes to `JoinHandle::join`). But the
//! runtime also runs user code of its own accord, on a worker or a pool thread: it drops a
//! detached goroutine's result or panic payload, drops the closure of a goroutine that never
//! started, runs timer callbacks and blocking jobs, and unwinds parked goroutines at
//! shutdown. A panic there must not unwind through the scheduler (it would leave the worker
//! half torn down; see invariant 4 in `worker.rs`). The rule, as harmless as Go's `recover`:
//!
//! * such code runs under [`catch`]: a panic is reported ([`report`], naming the goroutine
//!   and what was being done) and the runtime goes on;
//! * a caught payload is dropped with [`drop_payload`], since a payload's own `Drop` may
//!   panic too;
//! * where no recovery exists — a destructor that panics while a goroutine's stack is being
//!   force-unwound at shutdown is a panic during unwinding, which Rust turns into an abort —
//!   the process aborts, and the runtime's panic hook (`report.rs`, through
//!   [`note_if_unwinding`]) names the goroutine.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

/// A panic payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Runs `f`; if it panics, reports `what` (for goroutine `gid`, 0 if none) with the panic's
/// message and returns `None`. Never unwinds.
pub(crate) fn catch<R>(gid: u64, what: &str, f: impl FnOnce() -> R) -> Option<R> {
    catch_with(gid, || what.to_string(), f)
}

/// [`catch`] for a hot path: `what` is only built if `f` panics.
pub(crate) fn catch_with<R>(
    gid: u64,
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> R,
) -> Option<R> {
    // A panic caught here does not abort, even during a shutdown unwind: no hook note.
    let unwinding = UNWINDING.with(|u| u.replace(0));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    UNWINDING.with(|u| u.set(unwinding));
    match r {
        Ok(r) => Some(r),
        Err(p) => {
            report(gid, &what(), &p);
            drop_payload(gid, p);
            None
        }
    }
}

/// Drops `v` (a value that belongs to goroutine `gid`); a panic in its `Drop` is reported as
/// `what` and contained.
pub(crate) fn drop_contained<T>(gid: u64, what: &str, v: T) {
    catch(gid, what, move || drop(v));
}

/// How many nested panicking payloads are dropped before the rest is leaked.
const PAYLOAD_DEPTH: usize = 8;

/// Drops a caught panic payload whose `Drop` may itself panic, and so on: each such panic is
/// reported and its own payload dropped in turn; past a few levels the payload is leaked
/// (safe, and better than looping forever).
pub(crate) fn drop_payload(gid: u64, p: Payload) {
    let mut p = p;
    for _ in 0..PAYLOAD_DEPTH {
        match panic::catch_unwind(AssertUnwindSafe(move || drop(p))) {
            Ok(()) => return,
            Err(next) => {
                report(gid, "dropping a panic payload", &next);
                p = next;
            }
        }
    }
    std::mem::forget(p);
}

/// The message of a panic payload, if it is a string.
pub(crate) fn message(p: &Payload) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "(non-string payload)"
    }
}

/// Reports a contained panic: through the `log` crate when a logger is enabled for errors,
/// else on stderr. The one place such reports are written.
pub(crate) fn report(gid: u64, what: &str, p: &Payload) {
    let who = if gid == 0 { String::new() } else { format!("{}: ", super::report::who(gid, None)) };
    let line = format!("gonet: {who}panic while {what}: {}; contained", message(p));
    if log::log_enabled!(log::Level::Error) {
        log::error!("{line}");
    } else {
        eprintln!("{line}");
    }
}

/// Where no recovery exists: names `what` panicked, with the message, and aborts.
pub(crate) fn abort(what: &str, p: &Payload) -> ! {
    let line = format!("gonet: {what} panicked: {}; aborting", message(p));
    log::error!("{line}");
    eprintln!("{line}");
    std::process::abort()
}

thread_local! {
    /// The goroutine whose stack this thread is force-unwinding at shutdown (0: none).
    static UNWINDING: Cell<u64> = const { Cell::new(0) };
}

/// Describes the code running under [`with_context`]: `(arg) -> "what panicked; what now"`.
pub(crate) type Describe = fn(*const ()) -> String;

/// Runs `f` (which catches its own panics) on the running goroutine with a context the panic
/// hook prints instead of the goroutine's `JoinHandle` line — e.g. a reactor handler call
/// naming its connection. The context is the goroutine's (kept in its `G`, not the thread's:
/// `f` may park while other goroutines run on the thread), set for `f` and restored after
/// it, so a goroutine's contexts nest like its calls. `arg` must stay valid while `f` runs;
/// `describe` is called only from the hook, on the goroutine, during `f`. Costs two stores;
/// nothing is formatted unless a panic happens. Off a goroutine it just runs `f`.
pub(crate) fn with_context<R>(describe: Describe, arg: *const (), f: impl FnOnce() -> R) -> R {
    let Some(g) = super::worker::current_g() else { return f() };
    let prev = g.panic_ctx.replace(Some((describe, arg)));
    struct Restore<'a>(
        &'a std::cell::Cell<Option<(Describe, *const ())>>,
        Option<(Describe, *const ())>,
    );
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.set(self.1);
        }
    }
    let _restore = Restore(&g.panic_ctx, prev);
    f()
}

/// For the panic hook: the description of the running goroutine's context, if one is set.
pub(crate) fn context() -> Option<String> {
    let (describe, arg) = super::worker::current_g()?.panic_ctx.get()?;
    Some(describe(arg))
}

/// Runs `f`, which force-unwinds goroutine `gid`'s stack, marking the thread so that the
/// panic hook can name the goroutine if a destructor panics (which aborts; see the top).
pub(crate) fn unwinding<R>(gid: u64, f: impl FnOnce() -> R) -> R {
    let prev = UNWINDING.with(|u| u.replace(gid));
    let r = f();
    UNWINDING.with(|u| u.set(prev));
    r
}

/// Whether the caller runs inside a goroutine's stack being force-unwound because its
/// runtime shut down (not a panic of user code): `Once` then leaves its initialiser undone.
pub(crate) fn force_unwinding() -> bool {
    std::thread::panicking() && UNWINDING.try_with(|u| u.get() != 0).unwrap_or(false)
}

/// Called by the runtime's panic hook (`report.rs`) after the usual message: a panic raised
/// while a goroutine's stack is force-unwound at shutdown — a panic during unwinding, which
/// aborts — names the goroutine.
pub(crate) fn note_if_unwinding() {
    // Once per unwound goroutine: the abort itself calls the hook a second time.
    let gid = UNWINDING.try_with(|u| u.replace(0)).unwrap_or(0);
    if gid != 0 {
        eprintln!(
            "gonet: goroutine {gid}: a destructor panicked while the runtime unwound the \
             goroutine's stack at shutdown; if the panic leaves the destructor (a panic \
             during unwinding), the process aborts"
        );
    }
}
