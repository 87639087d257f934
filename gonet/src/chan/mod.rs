//! Go channels: multi-producer multi-consumer queues whose blocking operations park the
//! goroutine (or block a plain OS thread outside the runtime), and [`select!`](crate::select)
//! over them.
//!
//! * [`bounded(n)`](bounded) — at most `n` buffered values; `bounded(0)` is Go's unbuffered
//!   channel: a send waits until a receiver takes the value, which is handed over directly.
//! * [`unbounded()`](unbounded) — sends never block.
//! * [`never()`](fn@never) — a receiver that never receives, to switch off a `select!` arm.
//!
//! Both ends are `Clone`, `Send` and `Sync`. When every [`Sender`] is dropped, receivers get
//! the buffered values and then [`RecvError`]; when every [`Receiver`] is dropped, senders get
//! their value back in [`SendError`]. The API mirrors crossbeam-channel's.
//!
//! [`Sender::close`] is Go's `close(ch)`, for when other senders still exist: receivers take
//! the buffered values, then get [`RecvError`]; every later send, and every send blocked at the
//! moment of the close, fails with [`SendError`] holding its value (where Go panics).
//!
//! Files, by concept: `channel` (the channel object, its buffer and waiter queues, the
//! send/receive steps, and the fast path of plain blocking `send`/`recv`), `token` (the
//! records of blocked operations, which a woken waiter learns its outcome from), `waitq` (the
//! waiter queues), `select` (the engine behind `select!`), `macros` (`select!`) and `error`.

mod channel;
mod error;
mod macros;
mod select;
mod token;
mod waitq;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::dump::keep_frame;
use channel::Chan;
use select::deadline_after;

pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

/// Items used by the expansion of [`select!`](crate::select); not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{select, ArmRef, Otherwise, RecvArm, SendArm};
}

/// Creates a channel that buffers at most `cap` values. With `cap == 0` it is a rendezvous
/// channel (Go's unbuffered channel): each send waits for a receiver to take its value.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(Some(cap)));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Creates a channel with an unbounded buffer: sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(None));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A receiver that never receives anything and is never disconnected (crossbeam-channel's
/// `never`): handy to switch off an arm of a [`select!`](crate::select).
pub fn never<T>() -> Receiver<T> {
    // The channel counts one sender that does not exist, so it never disconnects.
    Receiver { chan: Arc::new(Chan::new(Some(0))) }
}

/// The sending side of a channel.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, parking the goroutine (or blocking the thread) while the channel is full;
    /// on a rendezvous channel, until a receiver takes it. Fails, handing `v` back, once every
    /// receiver is gone.
    #[inline(always)]
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        keep_frame(self.chan.send(v, None).map_err(|e| SendError(e.into_inner())))
    }

    /// Sends `v` if that is possible without waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v)
    }

    /// Like [`send`](Sender::send), but gives up after `timeout`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, deadline_after(timeout))
    }

    /// Like [`send`](Sender::send), but gives up at `deadline`.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Some(deadline))
    }

    fn send_until(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, deadline)
    }

    /// Closes the channel (Go's `close(ch)`), for every sender at once: receivers take the
    /// values still buffered, then get [`RecvError`] (and a `select!` receive arm sees the
    /// channel ready, with an error); sends fail from now on with [`SendError`], which
    /// hands the value back, and so do the sends blocked right now. Dropping every sender
    /// has the same effect on receivers. Returns false if the channel was already closed
    /// (where Go panics).
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Whether [`close`](Sender::close) was called on the channel.
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Number of buffered values.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true for a rendezvous channel).
    pub fn is_full(&self) -> bool {
        self.chan.is_full()
    }

    /// The buffer's capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether `self` and `other` send on the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Receiver<T> {
    /// Receives a value, parking the goroutine (or blocking the thread) while the channel is
    /// empty. Fails once the channel is empty and every sender is gone.
    #[inline(always)]
    pub fn recv(&self) -> Result<T, RecvError> {
        keep_frame(self.chan.recv(None).map_err(|_| RecvError))
    }

    /// Receives a value if one is there without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Like [`recv`](Receiver::recv), but gives up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout))
    }

    /// Like [`recv`](Receiver::recv), but gives up at `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.chan.recv(deadline)
    }

    /// A blocking iterator: yields received values until the channel is empty and every
    /// sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the values receivable right now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Number of buffered values.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true for a rendezvous channel).
    pub fn is_full(&self) -> bool {
        self.chan.is_full()
    }

    /// The buffer's capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether `self` and `other` receive from the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    /// Runs `f` once the last receiver of the channel is gone (at once if it is already):
    /// how a timer frees itself when nobody can receive its value any more.
    pub(crate) fn on_receivers_gone(&self, f: Box<dyn FnOnce() + Send>) {
        self.chan.on_receivers_gone(f)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.release_sender();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.release_receiver();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// Blocking iterator over received values; see [`Receiver::iter`].
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator over received values; see [`Receiver::try_iter`].
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator over received values.
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Iter { .. }")
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryIter { .. }")
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntoIter { .. }")
    }
}
