//! Cancellation (Go's `context` package): a [`Context`] carries a cancellation signal, an
//! optional deadline and optional values across goroutines and API boundaries.
//!
//! * [`Context::background`] is never cancelled; [`with_cancel`], [`with_deadline`],
//!   [`with_timeout`] and [`with_value`] derive children from a parent.
//! * A child is cancelled when its parent is (with the parent's reason), when its own
//!   [`CancelFunc`] is called, or when its deadline passes; cancelling a child never touches
//!   its parent.
//! * [`Context::done`] is a channel closed on cancellation, usable as a `select!` arm
//!   (`recv(ctx.done()) -> _ => ..`); [`Context::err`] says why: [`Error::Canceled`] or
//!   [`Error::DeadlineExceeded`].
//!
//! # Cancellation tree (invariants)
//!
//! Each cancellable context owns a `CancelNode`. Under the node's lock:
//! 1. `err` is set once, from `None` to the reason, by the first cancellation; every later
//!    one does nothing.
//! 2. `children` and `watches` are registered only while `err` is `None`; the cancellation
//!    takes both lists out under the lock that sets `err`, so a registration either happens
//!    before (and is then cancelled with the node) or sees the error and cancels itself at
//!    once — a grandchild can never miss its ancestor's cancellation.
//! 3. After setting `err` (and outside the lock) the cancellation closes `done`, runs the
//!    watches, unlinks the node from its parent and then cancels the children taken out.
//!
//! Depth costs no stack: a cancellation walks the subtree with a work list, not by
//! recursion, and dropping a chain of contexts (or of cancel nodes) unlinks each level in a
//! loop, taking the parent out of a node whose last reference goes before the node is freed
//! (`Drop for Node`, `Drop for CancelNode`). A chain of any depth is cancelled and dropped on
//! a goroutine's stack, as in Go.
//!
//! A node holds its children weakly: a child dropped without being cancelled unlinks itself
//! (and cancels its deadline timer) in its destructor, so forgetting a `CancelFunc` leaks
//! nothing, unlike Go. A parent holds no reference to a child's `Context`.
//!
//! A *watch* (crate-internal) is a callback run by the cancellation, used to wake a blocked
//! operation bounded by a context (a semaphore acquire, a dial, a read or write; see
//! `net/context.rs`). Each watch sits in its own slot lock while it runs, so unregistering a
//! watch waits for a run in progress: once unregistered, its callback has either finished or
//! will never run.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::timer::{self as rt_timer, Cancel};

/// Why a context was cancelled (Go's `context.Canceled` and `context.DeadlineExceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Its [`CancelFunc`] (or an ancestor's) was called.
    Canceled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    /// `DeadlineExceeded` becomes [`io::ErrorKind::TimedOut`] and `Canceled`
    /// [`io::ErrorKind::Interrupted`]; the [`Error`] is the inner error (see [`io_reason`]).
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::Canceled => io::ErrorKind::Interrupted,
            Error::DeadlineExceeded => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, e)
    }
}

/// The context [`Error`] inside an `io::Error` made from one, if any (Go's
/// `errors.Is(err, context.Canceled)`).
pub fn io_reason(e: &io::Error) -> Option<Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()).copied()
}

const NONE: u8 = 0;
const CANCELED: u8 = 1;
const DEADLINE: u8 = 2;

fn encode(e: Error) -> u8 {
    match e {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE,
    }
}

/// A watch's slot: the callback, taken by whoever runs or unregisters it, under the slot's
/// lock.
type WatchSlot = Mutex<Option<Callback>>;

/// A watch's callback.
type Callback = Box<dyn FnOnce() + Send>;

struct CState {
    children: HashMap<u64, Weak<CancelNode>>,
    watches: HashMap<u64, Arc<WatchSlot>>,
    next_id: u64,
    timer: Option<Cancel>,
}

/// The cancellation state of one cancellable context (see the top of the file).
struct CancelNode {
    /// The reason, readable without the lock (`NONE` until cancelled).
    err: AtomicU8,
    st: Mutex<CState>,
    done_tx: Sender<()>,
    /// The parent's node and this node's key among its children.
    parent: Option<(Arc<CancelNode>, u64)>,
}

impl CancelNode {
    fn lock(&self) -> MutexGuard<'_, CState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> Option<Error> {
        match self.err.load(Ordering::Acquire) {
            CANCELED => Some(Error::Canceled),
            DEADLINE => Some(Error::DeadlineExceeded),
            _ => None,
        }
    }

    /// Cancels this node and its subtree (invariants 1–3), iteratively: each node's children
    /// go on a work list, so the depth of the tree costs no stack.
    fn cancel(&self, e: Error) {
        let mut todo = self.cancel_one(e);
        while let Some(c) = todo.pop() {
            todo.extend(c.cancel_one(e));
        }
    }

    /// Cancels this node alone and returns its children, still to be cancelled.
    fn cancel_one(&self, e: Error) -> Vec<Arc<CancelNode>> {
        let mut st = self.lock();
        if self.err.load(Ordering::Relaxed) != NONE {
            return Vec::new();
        }
        self.err.store(encode(e), Ordering::Release);
        let children = std::mem::take(&mut st.children);
        let watches = std::mem::take(&mut st.watches);
        let timer = st.timer.take();
        drop(st);
        if let Some(t) = timer {
            t.cancel();
        }
        self.done_tx.close();
        for slot in watches.into_values() {
            let mut f = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = f.take() {
                f();
            }
        }
        self.unlink();
        children.into_values().filter_map(|w| w.upgrade()).collect()
    }

    fn unlink(&self) {
        if let Some((p, id)) = &self.parent {
            p.lock().children.remove(id);
        }
    }

    /// Registers a watch; `Err` gives the callback back if the node is already cancelled.
    fn add_watch(&self, f: Callback) -> Result<(u64, Arc<WatchSlot>), Callback> {
        let mut st = self.lock();
        if self.err.load(Ordering::Relaxed) != NONE {
            return Err(f);
        }
        let id = st.next_id;
        st.next_id += 1;
        let slot = Arc::new(Mutex::new(Some(f)));
        st.watches.insert(id, slot.clone());
        Ok((id, slot))
    }

    /// Unregisters a watch; returns once its callback has finished or can no longer run.
    fn remove_watch(&self, id: u64, slot: &WatchSlot) -> bool {
        self.lock().watches.remove(&id);
        slot.lock().unwrap_or_else(|e| e.into_inner()).take().is_some()
    }
}

impl Drop for CancelNode {
    fn drop(&mut self) {
        if let Some(t) = self.st.get_mut().unwrap_or_else(|e| e.into_inner()).timer.take() {
            t.cancel();
        }
        self.unlink();
        // Iterative drop of the ancestors this node held last (see the top of the file): each
        // one is unlinked and has its own parent taken out before it is freed, so its `Drop`
        // does not recurse.
        let mut up = self.parent.take();
        while let Some((p, _)) = up {
            up = match Arc::try_unwrap(p) {
                Ok(mut n) => {
                    n.unlink();
                    n.parent.take()
                }
                Err(_) => None,
            };
        }
    }
}

struct Node {
    parent: Option<Context>,
    deadline: Option<Instant>,
    value: Option<Box<dyn Any + Send + Sync>>,
    /// The nearest cancellable context, this one or an ancestor.
    cancel: Option<Arc<CancelNode>>,
    done: Receiver<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        // Iterative drop of a chain of contexts (see the top of the file): a parent whose last
        // reference this was is taken apart here, its own parent taken out first.
        let mut up = self.parent.take();
        while let Some(p) = up {
            up = match Arc::try_unwrap(p.node) {
                Ok(mut n) => n.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// A cancellation signal with an optional deadline and values (Go's `context.Context`);
/// cheap to clone (an `Arc`), `Send` and `Sync`. See the module documentation.
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

/// Cancels the context returned with it (Go's `context.CancelFunc`). Calling it more than
/// once does nothing more; dropping it does not cancel (but frees everything once the
/// contexts are dropped too).
pub struct CancelFunc {
    node: Arc<CancelNode>,
}

impl CancelFunc {
    /// Cancels the context and its descendants with [`Error::Canceled`], unless already
    /// cancelled.
    pub fn cancel(&self) {
        self.node.cancel(Error::Canceled);
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CancelFunc { .. }")
    }
}

impl Context {
    /// A context that is never cancelled, has no deadline and no values (Go's
    /// `context.Background()`): the root of a tree.
    pub fn background() -> Context {
        Context {
            node: Arc::new(Node {
                parent: None,
                deadline: None,
                value: None,
                cancel: None,
                done: chan::never(),
            }),
        }
    }

    /// A channel that is closed when the context is cancelled: a receive on it fails at once
    /// from then on, so `recv(ctx.done()) -> _ => ..` is a `select!` arm that fires on
    /// cancellation. Never ready for a context that cannot be cancelled.
    pub fn done(&self) -> &Receiver<()> {
        &self.node.done
    }

    /// Why the context was cancelled, or `None` while it is not.
    pub fn err(&self) -> Option<Error> {
        self.node.cancel.as_ref().and_then(|c| c.err())
    }

    /// `Err` with the reason once cancelled: `ctx.check()?` at the top of a loop.
    pub fn check(&self) -> Result<(), Error> {
        self.err().map_or(Ok(()), Err)
    }

    /// The deadline, own or inherited (the earliest on the path to the root).
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// The nearest value of type `T` attached with [`with_value`] on the path to the root.
    /// Values are keyed by type: define a type per key.
    pub fn value<T: Any + Send + Sync>(&self) -> Option<&T> {
        let mut n = &self.node;
        loop {
            if let Some(v) = n.value.as_ref().and_then(|v| v.downcast_ref::<T>()) {
                return Some(v);
            }
            n = &n.parent.as_ref()?.node;
        }
    }

    /// Parks the goroutine (or blocks the thread) until the context is cancelled, and
    /// returns why. Never returns for a context that cannot be cancelled.
    pub fn wait(&self) -> Error {
        let _ = self.done().recv();
        self.err().expect("gonet: context done without an error")
    }

    /// Runs `f` in its own goroutine (a thread outside a runtime) once the context is
    /// cancelled, or at once if it already is (Go's `context.AfterFunc`). The returned
    /// handle's [`stop`](AfterFunc::stop) unregisters it.
    pub fn after_func<F>(&self, f: F) -> AfterFunc
    where
        F: FnOnce() + Send + 'static,
    {
        let f = Mutex::new(Some(f));
        let run: Callback = Box::new(move || {
            let f = f.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = f {
                let f = Mutex::new(Some(f));
                crate::time::spawn_func(Arc::new(move || {
                    if let Some(f) = f.lock().unwrap_or_else(|e| e.into_inner()).take() {
                        f();
                    }
                }));
            }
        });
        let Some(c) = &self.node.cancel else { return AfterFunc { reg: None } };
        match c.add_watch(run) {
            Ok((id, slot)) => AfterFunc { reg: Some((c.clone(), id, slot)) },
            Err(run) => {
                run();
                AfterFunc { reg: None }
            }
        }
    }

    /// Runs `body` while `on_cancel` is registered to run if the context is cancelled (at
    /// once if it already is); `on_cancel` has finished or will never run once this returns.
    /// `on_cancel` must not block: it runs in the cancelling caller.
    pub(crate) fn with_watch<'a, R>(
        &self,
        on_cancel: Box<dyn FnOnce() + Send + 'a>,
        body: impl FnOnce() -> R,
    ) -> R {
        let Some(c) = &self.node.cancel else { return body() };
        // SAFETY: only the lifetime is erased. The callback is unregistered by `Unwatch`
        // before this function returns or unwinds, and `remove_watch` waits for a run in
        // progress (each run holds the slot lock), so the callback is never called, nor
        // alive in a slot, after 'a. The guard cannot be leaked: it is a local of this frame.
        let f: Callback = unsafe { std::mem::transmute(on_cancel) };
        match c.add_watch(f) {
            Ok((id, slot)) => {
                let _unwatch = Unwatch { node: c, id, slot };
                body()
            }
            Err(f) => {
                f();
                body()
            }
        }
    }
}

/// Unregisters a watch of [`Context::with_watch`] when dropped.
struct Unwatch<'a> {
    node: &'a CancelNode,
    id: u64,
    slot: Arc<WatchSlot>,
}

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.node.remove_watch(self.id, &self.slot);
    }
}

/// A function registered with [`Context::after_func`].
pub struct AfterFunc {
    reg: Option<(Arc<CancelNode>, u64, Arc<WatchSlot>)>,
}

impl AfterFunc {
    /// Unregisters the function; true if this stopped it from being started.
    pub fn stop(&self) -> bool {
        match &self.reg {
            Some((n, id, slot)) => n.remove_watch(*id, slot),
            None => false,
        }
    }
}

impl fmt::Debug for AfterFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AfterFunc { .. }")
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::background()
    }
}

/// A cancellable child of `parent` (Go's `context.WithCancel`).
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    let (ctx, node) = child(parent, parent.deadline());
    (ctx, CancelFunc { node })
}

/// A child of `parent` cancelled at `deadline` at the latest (Go's `context.WithDeadline`);
/// a parent's earlier deadline stays in force. A deadline already past cancels it at once.
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    if parent.deadline().is_some_and(|d| d <= deadline) {
        return with_cancel(parent);
    }
    let (ctx, node) = child(parent, Some(deadline));
    if deadline <= Instant::now() {
        node.cancel(Error::DeadlineExceeded);
    } else {
        let weak = Arc::downgrade(&node);
        let t = rt_timer::call_at_cancellable(
            deadline,
            Box::new(move || {
                if let Some(n) = weak.upgrade() {
                    n.cancel(Error::DeadlineExceeded);
                }
            }),
        );
        let mut st = node.lock();
        if node.err().is_some() {
            t.cancel();
        } else {
            st.timer = Some(t);
        }
    }
    (ctx, CancelFunc { node })
}

/// [`with_deadline`] at `timeout` from now (Go's `context.WithTimeout`).
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    with_deadline(parent, crate::time::deadline(timeout))
}

/// A child of `parent` carrying `value`, found by [`Context::value::<T>`](Context::value)
/// (Go's `context.WithValue`, keyed by type); cancelled with its parent.
pub fn with_value<T: Any + Send + Sync>(parent: &Context, value: T) -> Context {
    Context {
        node: Arc::new(Node {
            parent: Some(parent.clone()),
            deadline: parent.deadline(),
            value: Some(Box::new(value)),
            cancel: parent.node.cancel.clone(),
            done: parent.node.done.clone(),
        }),
    }
}

/// Makes a cancellable child node, linked under the parent's node (invariant 2).
fn child(parent: &Context, deadline: Option<Instant>) -> (Context, Arc<CancelNode>) {
    let (done_tx, done) = chan::bounded(0);
    let mk = |link: Option<(Arc<CancelNode>, u64)>| {
        Arc::new(CancelNode {
            err: AtomicU8::new(NONE),
            st: Mutex::new(CState {
                children: HashMap::new(),
                watches: HashMap::new(),
                next_id: 0,
                timer: None,
            }),
            done_tx,
            parent: link,
        })
    };
    let node = match &parent.node.cancel {
        None => mk(None),
        Some(p) => {
            let mut st = p.lock();
            match p.err() {
                Some(e) => {
                    drop(st);
                    let n = mk(None);
                    n.cancel(e);
                    n
                }
                None => {
                    let id = st.next_id;
                    st.next_id += 1;
                    let n = mk(Some((p.clone(), id)));
                    st.children.insert(id, Arc::downgrade(&n));
                    n
                }
            }
        }
    };
    let ctx = Context {
        node: Arc::new(Node {
            parent: Some(parent.clone()),
            deadline,
            value: None,
            cancel: Some(node.clone()),
            done,
        }),
    };
    (ctx, node)
}
