//! Goroutine-aware synchronisation: they park the goroutine, never the worker thread, and
//! block the thread when used outside the runtime.

mod mutex;
mod waitgroup;

pub(crate) use mutex::RawMutex;
pub use mutex::{Mutex, MutexGuard};
pub use waitgroup::WaitGroup;
