//! Goroutine-aware synchronisation: they park the goroutine, never the worker thread, and
//! block the thread when used outside the runtime.
//!
//! * [`Mutex`] — `mutex.rs`; [`RwLock`] (writer-preferring, as Go's) — `rwlock.rs`
//! * [`WaitGroup`] and its [`DoneGuard`] — `waitgroup.rs`
//! * [`Once`], [`OnceLock`] — `once.rs`; [`Cond`] — `cond.rs`
//! * [`Semaphore`] (weighted, FIFO, as Go's `x/sync/semaphore`) — `semaphore.rs`

mod cond;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waitgroup;

pub use cond::Cond;
pub(crate) use mutex::RawMutex;
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceLock};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::Semaphore;
pub use waitgroup::{DoneGuard, WaitGroup};
