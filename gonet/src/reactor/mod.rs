//! The reactor: CloudWeGo netpoll's programming model — an event loop that calls a handler
//! when a connection has input, nocopy `LinkBuffer` reads and writes — on gonet's workers.
//!
//! ```no_run
//! use gonet::reactor::EventLoop;
//! let lp = EventLoop::builder(|c| {
//!     let n = c.len();
//!     let data = c.next(n)?;
//!     c.write_binary(data)?;
//!     c.flush()
//! })
//! .build();
//! gonet::run(move || {
//!     let ln = gonet::net::TcpListener::bind("127.0.0.1:9009").unwrap();
//!     lp.serve(ln).unwrap();
//! });
//! ```
//!
//! Files, by concept: `event_loop` (the accept loop, the poll manager's balancer, shutdown),
//! `conn` (`Connection`: the Reader/Writer over the buffers, the handler loop), `trigger` (the
//! poller/handler handshake and its invariants), `sched` (each worker's ready queue and pool
//! of handler goroutines), `dial` (client connections, plain and TLS), `buffer` (`LinkBuffer`) and, with the
//! `rustls` feature, `tls` (TLS sessions run by the handler loop).
//!
//! The sub-reactors are the runtime's workers: a connection is registered on one worker's
//! epoll with `EVENT_TAG` set in the event data, and the worker's poll loop calls
//! `on_event` for it instead of waking a `PollDesc` waiter, through the hooks the reactor
//! registers with the runtime when an `EventLoop` first serves (`install_hooks`): the
//! runtime does not name the reactor. Its handler goroutines run on
//! that same worker, so a connection's state needs no lock and no atomics (trigger.rs).

mod buffer;
mod conn;
mod dial;
mod event_loop;
mod sched;
mod sock;
#[cfg(feature = "rustls")]
mod tls;
mod trigger;
mod writer;

pub use buffer::*;
pub use conn::{ConnHandle, Connection, DEFAULT_INPUT_CAP, DEFAULT_OUTPUT_CAP};
pub use dial::dial;
#[cfg(feature = "rustls")]
pub use dial::dial_tls;
pub use event_loop::{Balance, Builder, EventLoop};
pub use writer::ConnWriter;

use conn::ConnInner;

/// Set in the epoll data of a reactor connection (the runtime's hook tag); the rest is the
/// `ConnInner` pointer.
pub(crate) const EVENT_TAG: u64 = crate::runtime::worker::HOOK_TAG;

/// Registers `on_event` and `parked` as the runtime poll loop's hooks (idempotent). Called
/// before the first connection is registered, so no tagged event precedes it.
pub(crate) fn install_hooks() {
    crate::runtime::worker::set_hooks(crate::runtime::worker::PollHooks { on_event, parked });
}

/// The worker's poll loop saw an event for a reactor connection (on its owner worker).
fn on_event(data: u64, events: u32) {
    let p = (data & !EVENT_TAG) as *const ConnInner;
    // SAFETY: the registration holds a strong reference until `finalize` deregisters the
    // descriptor on this same thread, between polls; so an event that carries the pointer
    // finds it alive.
    let c = unsafe { &*p };
    let ev = events as libc::c_int;
    let readable = ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0;
    let writable = ev & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0;
    // A closing connection wakes its handler whichever way it waits (a TLS connection is
    // shut down for reading only, which need not report writability).
    let closing = !c.is_active();
    let fired = c.trig.on_event(readable || closing, writable || closing);
    if let Some(g) = fired.wake {
        crate::runtime::park::ready(g);
    }
    if fired.queue {
        // SAFETY: as above; the queue holds its own reference.
        let arc = unsafe {
            std::sync::Arc::increment_strong_count(p);
            std::sync::Arc::from_raw(p)
        };
        sched::enqueue(arc);
    }
}

/// The worker's park hook (see sched.rs).
fn parked(g: *const crate::runtime::goroutine::G) {
    sched::parked(g)
}
