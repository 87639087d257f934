//! The netpoller: a per-worker epoll instance (`epoll`) and the per-descriptor wait state that
//! goroutines park on (`poll_desc`, Go's `pollDesc`).

mod epoll;
mod poll_desc;
mod state;

pub(crate) use epoll::{deregister, Poller, WAKE_TOKEN};
pub(crate) use poll_desc::{closed_error, on_event, Dir, PollDesc};
