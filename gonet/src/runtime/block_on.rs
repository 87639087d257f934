//! `block_on`: runs a future to completion on the calling goroutine (or plain thread), parking
//! it between polls — the bridge from futures (hyper, tokio's IO traits, any `async fn`) to
//! gonet's blocking style.
//!
//! # The wake protocol
//!
//! One [`Signal`] per `block_on` call, shared (`Arc`) by every `Waker` cloned from it. Its
//! state, under a mutex held only for a few instructions:
//!
//! ```text
//!   waiter: None,    notified: false   polling (or returned): a wake sets `notified`
//!   waiter: None,    notified: true    a wake arrived; the next park refuses and re-polls
//!   waiter: Some(w), notified: false   parked: a wake takes `w` and wakes it (exactly once)
//! ```
//!
//! Invariants:
//! 1. A wake is never lost: it either finds the parked waiter and wakes it, or leaves
//!    `notified`, which the park's register step consumes (refusing to park) under the same
//!    lock.
//! 2. A waiter is woken at most once: the wake takes it out of the slot under the lock.
//! 3. Wakers hold the `Arc<Signal>`, never a pointer to the goroutine: a waker kept after
//!    `block_on` returned finds no waiter and only sets `notified`, which nobody reads.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use super::park::{park_for, Waiter};
use super::wait::Wait;

/// The shared state of one `block_on` call (see the top of this file).
struct Signal {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    notified: bool,
    waiter: Option<Waiter>,
}

impl Signal {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing under this lock can panic; recover the state anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let w = {
            let mut s = self.lock();
            match s.waiter.take() {
                Some(w) => w,
                None => {
                    s.notified = true;
                    return;
                }
            }
        };
        // Outside the lock: waking may take the scheduler's locks or write an eventfd.
        w.wake();
    }
}

/// Runs `fut` to completion and returns its output. On a goroutine, the goroutine parks
/// whenever the future is pending and resumes when its [`Waker`] is woken — so other
/// goroutines of the worker run meanwhile; on a plain thread, the thread blocks.
///
/// The waker may be woken from any thread (a gonet worker, a std thread, another runtime's
/// thread), any number of times, and kept after `block_on` returned (a late wake does nothing).
///
/// Futures that do I/O must do it through wakers that something actually wakes: gonet's
/// poll-based socket methods (`TcpStream::poll_read`, ...), [`crate::time::delay`], or any
/// runtime-independent future (`futures::channel`, `async-channel`, ...). A future that needs tokio's runtime (`tokio::time::sleep`,
/// `tokio::net`) panics here as it would outside tokio.
///
/// ```
/// gonet::run(|| {
///     let v = gonet::block_on(async { 40 + 2 });
///     assert_eq!(v, 42);
/// });
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let signal = Arc::new(Signal { state: Mutex::new(State::default()) });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        park_for(Wait::Future, |w| {
            let mut s = signal.lock();
            if s.notified {
                // Woken during the poll (invariant 1): poll again at once.
                s.notified = false;
                return Err(w);
            }
            s.waiter = Some(w);
            Ok(())
        });
    }
}
