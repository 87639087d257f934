//! `ConnWriter`: writing to a reactor connection from any goroutine or thread (a reader
//! goroutine and writer goroutines on one connection; Kitex's multiplexed server and client),
//! without breaking the owner-worker rule that keeps a connection's buffers lock-free.
//!
//! Writers never touch the connection's buffers. A write copies its bytes into the
//! connection's *outbox* (a lock, taken per write, never by the hot path of a connection that
//! has no writers) and, if none is pending, starts a *pull* goroutine on the owner worker
//! (`runtime::go_on`). On the owner, bytes move from the outbox to the end of the output
//! buffer, so each write's bytes stay together and writes keep their order. Who sends them:
//!
//! * the connection is idle: the pull queues it, and the handler loop sends (as after a
//!   handler call) and goes idle again;
//! * its handler waits for input: the pull wakes it (`Trigger::poke`) and it sends before it
//!   parks again (`ConnInner::wait_len`);
//! * its handler runs (parked on something else), waits to send, or the connection is new or
//!   queued: the handler loop pulls and sends before the connection goes idle
//!   (`ConnInner::send_queued`), so nothing is left behind.
//!
//! Backpressure: a write waits (parks a goroutine, blocks a thread) while the outbox holds
//! `output_cap` bytes or more; the pull moves bytes into the output buffer only while that
//! holds less than the cap, so a peer that stops reading stops the writers, and memory stays
//! within twice the cap. A write to a closed connection, or one closed while it waits, fails.
//!
//! A dialed connection has no owner worker: its writes go straight to the socket through the
//! fd layer, whose write lock keeps each write whole.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::conn::{ConnInner, Io};
use super::trigger::State;
use crate::sync::{Cond, Mutex};

/// Bytes written by `ConnWriter`s, waiting for the owner worker.
#[derive(Default)]
pub(crate) struct Outbox {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
    /// A pull goroutine is started and has not taken the lock yet.
    pulling: bool,
    /// The connection was finalized: writes fail.
    closed: bool,
}

/// The outbox of a connection and its writers' wait.
pub(crate) struct OutboxCell {
    state: Mutex<Outbox>,
    room: Cond,
    /// Set (under the lock) when bytes are queued, cleared when they are taken: the handler
    /// loop looks at this flag, not the lock, so a connection without writers pays one load.
    queued: AtomicBool,
}

impl OutboxCell {
    pub(crate) fn new() -> OutboxCell {
        OutboxCell {
            state: Mutex::new(Outbox::default()),
            room: Cond::new(),
            queued: AtomicBool::new(false),
        }
    }

    /// Owner thread: moves what is queued to the end of `c`'s output, if the output holds less
    /// than the cap. Returns whether bytes moved.
    pub(crate) fn pull(&self, c: &ConnInner) -> bool {
        // A writer that queues after this load also starts a pull goroutine (or finds one
        // pending), which runs after this handler loop on the same worker.
        if !self.queued.load(Ordering::Acquire) || c.output_held() >= c.output_cap() {
            return false; // the handler loop pulls again once this is sent
        }
        let bufs = {
            let mut ob = self.state.lock();
            ob.bytes = 0;
            self.queued.store(false, Ordering::Relaxed);
            std::mem::take(&mut ob.bufs)
        };
        if bufs.is_empty() {
            return false;
        }
        self.room.broadcast();
        for b in bufs {
            // Zero copy: the vector becomes a block of the output (`write_direct`).
            let _ = c.append_direct(b);
        }
        true
    }

    /// Finalize: wakes the waiting writers with an error; later writes fail.
    pub(crate) fn close(&self) {
        let bufs = {
            let mut ob = self.state.lock();
            ob.closed = true;
            ob.bytes = 0;
            std::mem::take(&mut ob.bufs)
        };
        self.room.broadcast();
        drop(bufs);
    }
}

/// A `Send + Sync` writer to a reactor [`Connection`](super::Connection), from any goroutine
/// or thread: each [`write`](ConnWriter::write) is sent whole and in order, by the
/// connection's worker, and waits while a full output cap is queued. See
/// [`Connection::writer`](super::Connection::writer).
#[derive(Clone)]
pub struct ConnWriter {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for ConnWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnWriter").field("active", &self.inner.is_active()).finish()
    }
}

impl ConnWriter {
    pub(crate) fn new(inner: Arc<ConnInner>) -> ConnWriter {
        ConnWriter { inner }
    }

    /// Queues `data` to be sent after everything written before it (by any writer or the
    /// handler). Returns once queued, not sent; waits while the connection already has its
    /// output cap queued. Fails once the connection is closed.
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        let c = &self.inner;
        if let Io::Client(s) = &c.io {
            return io::Write::write_all(&mut &*s, data);
        }
        if data.is_empty() {
            return if c.is_active() { Ok(()) } else { Err(c.closed_err()) };
        }
        let ob = c.outbox();
        let start = {
            let mut st = ob.state.lock();
            while !st.closed
                && c.is_active()
                && st.bytes > 0
                && st.bytes + data.len() > c.output_cap()
            {
                st = ob.room.wait(st);
            }
            if st.closed || !c.is_active() {
                return Err(c.closed_err());
            }
            st.bufs.push(data.to_vec());
            st.bytes += data.len();
            ob.queued.store(true, Ordering::Release);
            !std::mem::replace(&mut st.pulling, true)
        };
        if start {
            let me = c.clone();
            if let Err(e) = c.start_on_owner(move || pull_on_owner(&me)) {
                ob.state.lock().pulling = false;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// The pull goroutine, on the owner worker: moves the outbox into the output and sees that
/// the output gets sent (the cases at the top of this file).
fn pull_on_owner(c: &Arc<ConnInner>) {
    // From here a new write starts a new pull: whatever this one leaves is pulled later.
    c.outbox().state.lock().pulling = false;
    let state = c.trig.state();
    if state == State::Closed || !c.is_active() {
        return;
    }
    match state {
        // Queued: the handler loop sends it and goes idle again.
        State::Idle if c.outbox().pull(c) && c.trig.kick_idle() => {
            super::sched::enqueue(c.clone());
        }
        State::Waiting if c.outbox().pull(c) => {
            if let Some(g) = c.trig.poke() {
                crate::runtime::park::ready(g);
            }
        }
        // The handler loop pulls and sends before the connection goes idle.
        _ => {}
    }
}
