//! [`Group`]: a set of goroutines working on subtasks of one task (Go's
//! `golang.org/x/sync/errgroup`).
//!
//! [`Group::go`] starts a member goroutine; [`Group::wait`] parks until every member has
//! returned and gives the first error. The first member to fail — by returning `Err`, or by
//! panicking, which is reported as a [`Panicked`] error instead of being lost — cancels the
//! group's [`Context`], so the others can stop early. [`Group::set_limit`] bounds how many
//! members run at once.
//!
//! Invariant: the first error is stored under `first`'s lock, and only the call that stores
//! it cancels the context; every member holds a `WaitGroup` guard, released when it returns
//! or unwinds, so `wait` cannot hang on a panicking member.

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::context::{self, CancelFunc, Context};
use crate::runtime::worker;
use crate::sync::{Semaphore, WaitGroup};

/// A member goroutine panicked; the error [`Group::wait`] reports for it.
#[derive(Debug, Clone)]
pub struct Panicked {
    /// The member's goroutine id.
    pub goroutine: u64,
    /// The panic payload, if it was a string.
    pub message: String,
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errgroup: goroutine {} panicked: {}", self.goroutine, self.message)
    }
}

impl StdError for Panicked {}

impl From<Panicked> for io::Error {
    fn from(p: Panicked) -> io::Error {
        io::Error::other(p)
    }
}

fn payload_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The default error type of a [`Group`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A group of goroutines whose first error cancels the others' context; see the module
/// documentation. `E` is the members' error type; it must be able to hold a [`Panicked`].
pub struct Group<E = BoxError> {
    ctx: Context,
    cancel: Arc<CancelFunc>,
    wg: WaitGroup,
    first: Arc<Mutex<Option<E>>>,
    limit: Option<Arc<Semaphore>>,
}

impl<E: From<Panicked> + Send + 'static> Group<E> {
    /// A group whose context derives from [`Context::background`].
    pub fn new() -> Group<E> {
        Group::with_context(&Context::background()).0
    }

    /// A group whose context is a cancellable child of `parent` (Go's
    /// `errgroup.WithContext`); the context is returned too, to pass to the members.
    pub fn with_context(parent: &Context) -> (Group<E>, Context) {
        let (ctx, cancel) = context::with_cancel(parent);
        let g = Group {
            ctx: ctx.clone(),
            cancel: Arc::new(cancel),
            wg: WaitGroup::new(),
            first: Arc::new(Mutex::new(None)),
            limit: None,
        };
        (g, ctx)
    }

    /// The group's context: cancelled by the first failure, or when `wait` returns.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Runs at most `n` members at once: [`go`](Group::go) then parks until a member
    /// finishes, and [`try_go`](Group::try_go) declines. As in Go, a limit of 0 admits no
    /// member: `go` parks for good (the runtime's deadlock report names it if nothing else
    /// runs) and `try_go` returns false. [`remove_limit`](Group::remove_limit) (Go's
    /// `SetLimit(-1)`) lifts the limit, as does `usize::MAX`. Must be called while no member
    /// runs.
    ///
    /// # Panics
    /// If members are running (Go panics too: the limit cannot change under them).
    pub fn set_limit(&mut self, n: usize) {
        self.assert_idle("set_limit");
        self.limit = (n != usize::MAX).then(|| {
            // A limit of 0 is a semaphore of one unit that is never free: `go` parks in
            // its acquire (a dump shows it waiting there) and `try_go` declines.
            let sem = Semaphore::new(n.max(1) as u64);
            if n == 0 {
                assert!(sem.try_acquire(1), "a fresh semaphore has its unit");
            }
            Arc::new(sem)
        });
    }

    /// No limit on how many members run at once (the default).
    ///
    /// # Panics
    /// If members are running.
    pub fn remove_limit(&mut self) {
        self.assert_idle("remove_limit");
        self.limit = None;
    }

    fn assert_idle(&self, what: &str) {
        let n = self.wg.count();
        assert_eq!(n, 0, "gonet: errgroup: {what} while {n} members of the group are running");
    }

    /// Starts `f` in a member goroutine (parking first while the limit is reached). If it
    /// returns `Err` or panics and is the first member to fail, its error is kept for
    /// [`wait`](Group::wait) and the group's context is cancelled.
    ///
    /// # Panics
    /// Outside a runtime, as [`go`](crate::go).
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        if let Some(l) = &self.limit {
            l.acquire(1).expect("a limit's semaphore has at least one unit");
        }
        self.spawn(f);
    }

    /// Starts `f` only if the limit allows it right now; returns whether it was started.
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        if let Some(l) = &self.limit {
            if !l.try_acquire(1) {
                return false;
            }
        }
        self.spawn(f);
        true
    }

    fn spawn<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let guard = self.wg.guard();
        let permit = self.limit.clone().map(Permit);
        let first = self.first.clone();
        let cancel = self.cancel.clone();
        crate::go(move || {
            let _guard = guard;
            let _permit = permit;
            let e = match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                // The runtime unwinds parked goroutines when it shuts down: not a failure.
                Err(p) if worker::shutting_down() => panic::resume_unwind(p),
                Err(p) => E::from(Panicked {
                    goroutine: worker::current_goroutine_id().unwrap_or(0),
                    message: payload_message(&*p),
                }),
            };
            let mut slot = first.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(e);
                drop(slot);
                cancel.cancel();
            }
        });
    }

    /// Parks until every member has returned, cancels the group's context, and returns the
    /// first error, if any.
    pub fn wait(self) -> Result<(), E> {
        self.wg.wait();
        self.cancel.cancel();
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        first.map_or(Ok(()), Err)
    }
}

impl<E: From<Panicked> + Send + 'static> Default for Group<E> {
    fn default() -> Self {
        Group::new()
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("running", &self.wg.count()).finish()
    }
}

/// A unit of the group's limit, released when the member ends.
struct Permit(Arc<Semaphore>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release(1);
    }
}
