//! The netpoller: a per-worker epoll instance (`epoll`) and the per-descriptor wait state that
//! goroutines park on (`poll_desc`, Go's `pollDesc`), with the wakers of futures that wait on
//! the same descriptor (`waker_slot`).

mod epoll;
#[cfg(loom)]
mod loom_rt;
#[cfg(all(test, loom))]
mod models;
mod poll_desc;
mod state;
mod waker_slot;

pub(crate) use epoll::{deregister, Poller, WAKE_TOKEN};
#[cfg(not(loom))]
pub(crate) use poll_desc::on_event;
pub(crate) use poll_desc::{closed_error, Dir, PollDesc};

/// Under loom a `PollDesc` parks model threads, not goroutines, and the runtime does not run:
/// the worker's poller loop still compiles against this signature.
#[cfg(loom)]
pub(crate) fn on_event(
    _data: u64,
    _events: u32,
    _wake: &mut dyn FnMut(crate::runtime::goroutine::GRef),
) {
    unreachable!("gonet: the runtime does not run under --cfg loom")
}
