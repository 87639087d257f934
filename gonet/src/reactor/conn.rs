//! `Connection`: a socket with an input and an output `LinkBuffer`, read with netpoll's nocopy
//! Reader operations and written with its Writer operations; and `process`, the handler loop
//! a runner goroutine runs for a server connection (netpoll's `onProcess`).
//!
//! A server connection is owned by one worker (the balancer's choice) and registered on that
//! worker's epoll with the reactor tag (`mod.rs`). The handler goroutine reads the socket
//! itself, into the input buffer, when it needs bytes; the poller only decides when a handler
//! runs and wakes it (trigger.rs). So the input buffer is never touched by two threads, the
//! poller never reads into an unbounded buffer, and backpressure is the input cap: a
//! connection with `input_cap` unconsumed bytes is not read, the kernel's receive queue fills
//! and TCP's window slows the peer.
//!
//! A client connection (`dial`) has no poller of its own: its reads and writes go through
//! `net::TcpStream`, which parks a goroutine or blocks a plain thread.
//!
//! Access rule: the `Cell`/`UnsafeCell` fields of `ConnInner` are touched only by the thread
//! that holds the `Connection` — for a server connection, its owner worker (the handler
//! goroutine, the poller, timer callbacks: trigger.rs invariant 1). Other threads use only
//! `closing`, `busy`, the callback list (a mutex) and `shutdown(2)` on the descriptor through
//! [`Sock::with`], which fails once `finalize` has closed it (sock.rs).
//!
//! # Invariants the safe API rests on
//!
//! 1. **No owned server `Connection`.** `Connection` is unsized (a zero-length `[()]` tail), so
//!    user code only ever holds `&mut Connection` / `&Connection`: it cannot move one out of a
//!    hook (`mem::swap`, `mem::replace`, `Option::take` all need `Sized`), keep it past the
//!    call, or hand it to another goroutine. The handler loop's own `ConnBox` is the one
//!    owner; so the input it releases after a call is never borrowed by a slice that outlives
//!    the call, and only the goroutine that took the connection from the ready queue ever
//!    parks on its trigger. A dialed connection is a `Box<Connection>` whose buffers only its
//!    holder releases (`&mut self`).
//! 2. **Memory is bounded by the caps.** Input read into the buffer is bounded by
//!    `input_cap` counting the unconsumed bytes *and* the consumed bytes not yet released
//!    (a handler that consumes without `release` gets an error at the cap, never a bigger
//!    buffer); `until` scans the blocks in place. Unsent output is bounded by `output_cap`:
//!    past it a write sends (and frees what was sent) first, or fails while a `malloc`'d
//!    region is outstanding.
//! 3. **User values are dropped under containment.** `write_direct` data, a replaced handler,
//!    the connection's own handler at `finalize`, close callbacks and panic payloads are
//!    dropped by the handler loop through `contain` (a panic there is reported, the
//!    connection closed, the runner goes on). What `finalize` did not drop (a runtime that
//!    ended first) is dropped, contained too, with the last reference, on whatever thread.
//! 4. **A closed connection is closed.** `finalize` closes the descriptor at once (the peer
//!    sees it, the number is free); later `ConnHandle` calls find it closed and do nothing.

use std::cell::{Cell, UnsafeCell};
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::event_loop::{Handler, LoopShared};
use super::sock::Sock;
use super::trigger::{CloseFlag, State, Trigger, Want};
use super::LinkBuffer;
use crate::net::TcpStream;
use crate::runtime::contain;
use crate::runtime::goroutine::GRef;
use crate::runtime::park::{park_g, ready};
use crate::runtime::timer;

/// Largest read issued at once.
const READ_CHUNK: usize = 64 * 1024;
/// Smallest contiguous space booked for a read after a short one (a smaller tail of a block
/// is skipped).
const READ_MIN: usize = 2048;
/// Reads (with the handler calls after each) a connection gets per turn before it goes to
/// the back of its worker's ready queue, so a peer that streams cannot starve the others.
const TURN_READS: u32 = 16;
/// Most iovecs in one `sendmsg`.
const MAX_IOV: usize = 64;

/// Default cap of a connection's unconsumed input.
pub const DEFAULT_INPUT_CAP: usize = 4 << 20;
/// Default cap of a connection's unsent output.
pub const DEFAULT_OUTPUT_CAP: usize = 4 << 20;

pub(crate) enum Io {
    /// Accepted by an `EventLoop`: registered on worker `owner`'s epoll (`epfd`) of runtime
    /// `rt_id`.
    Server {
        sock: Sock,
        owner: usize,
        /// The owner worker, for starting goroutines on it from other threads (writer.rs).
        worker: std::sync::Weak<crate::runtime::worker::WorkerShared>,
        epfd: RawFd,
        rt_id: u64,
        lp: Arc<LoopShared>,
    },
    /// Dialed: waits through the netpoller like any `net::TcpStream`.
    Client(TcpStream),
}

type CloseCallback = Box<dyn FnOnce() + Send>;

pub(crate) struct ConnInner {
    pub(crate) io: Io,
    /// The peer's address, known at accept or dial (kept after close, as Go's `RemoteAddr`).
    peer: Option<SocketAddr>,
    input: UnsafeCell<LinkBuffer>,
    output: UnsafeCell<LinkBuffer>,
    pub(crate) trig: Trigger<GRef>,
    pub(super) closing: CloseFlag,
    /// A handler runs (or waits) on it: shutdown waits for these.
    pub(crate) busy: AtomicBool,
    /// Unconsumed input plus unsent output, as of the connection's last turn or wait: a
    /// copy the goroutine dump may read from any thread (the buffers are the owner's).
    buffered: std::sync::atomic::AtomicUsize,
    pub(super) eof: Cell<bool>,
    connected: Cell<bool>,
    /// A `malloc`'d region may still be written by the handler: no automatic flush.
    malloc_out: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    pub(super) write_timeout: Cell<Option<Duration>>,
    idle_timeout: Cell<Option<Duration>>,
    /// When the current idle period began, and whether an idle timer is pending.
    idle_since: Cell<Option<Instant>>,
    idle_armed: Cell<bool>,
    /// Smallest contiguous space the next read asks for: grows while reads fill their
    /// space (a stream is arriving), back to `READ_MIN` after a short read.
    read_hint: Cell<usize>,
    input_cap: usize,
    output_cap: usize,
    on_request: Cell<Option<Handler>>,
    callbacks: Mutex<Option<Vec<CloseCallback>>>,
    /// Bytes written by `ConnWriter`s, waiting for the owner (writer.rs).
    outbox: super::writer::OutboxCell,
    /// Index in the loop's registry (server connections).
    pub(crate) slot: Cell<usize>,
    /// The epoll registration holds a reference (`Arc::into_raw`); whoever clears this flag
    /// (`finalize` on the owner worker, or `LoopShared::reap` once the runtime's workers have
    /// exited) gives it back, so it is given back exactly once.
    pub(crate) registered: AtomicBool,
    /// The TLS session of a connection served with `Builder::tls` (tls/): `fill_once`
    /// reads and decrypts through it, `send_all` encrypts through it.
    #[cfg(feature = "rustls")]
    pub(super) tls: Option<Box<super::tls::Tls>>,
}

// SAFETY: the non-thread-safe fields (`Cell`s, `UnsafeCell`s, the trigger, the TLS session)
// are touched only under the access rule at the top of this file; the rest is atomics, a
// mutex and the fd.
unsafe impl Sync for ConnInner {}
// SAFETY: as above; a `ConnInner` dropped on another thread only closes its descriptor and
// drops its (Send) buffers.
unsafe impl Send for ConnInner {}

impl Drop for ConnInner {
    fn drop(&mut self) {
        // The descriptor closes with `io` (`Sock`'s or `TcpStream`'s drop). Close callbacks
        // not run yet (a connection whose runtime ended before it was finalized) run now, and
        // the connection's own handler is dropped under containment (invariant 3): this drop
        // may run on any thread (the last reference may be `shutdown`'s or `reap`'s).
        self.run_close_callbacks();
        self.drop_handler();
    }
}

impl ConnInner {
    pub(crate) fn new(
        io: Io,
        peer: Option<SocketAddr>,
        input_cap: usize,
        output_cap: usize,
    ) -> ConnInner {
        ConnInner {
            io,
            peer,
            input: UnsafeCell::new(LinkBuffer::new()),
            output: UnsafeCell::new(LinkBuffer::new()),
            trig: Trigger::new(),
            closing: CloseFlag::new(),
            busy: AtomicBool::new(false),
            buffered: std::sync::atomic::AtomicUsize::new(0),
            eof: Cell::new(false),
            connected: Cell::new(false),
            malloc_out: Cell::new(false),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            idle_timeout: Cell::new(None),
            idle_since: Cell::new(None),
            idle_armed: Cell::new(false),
            read_hint: Cell::new(READ_MIN),
            input_cap: input_cap.max(1),
            output_cap: output_cap.max(1),
            on_request: Cell::new(None),
            callbacks: Mutex::new(Some(Vec::new())),
            outbox: super::writer::OutboxCell::new(),
            slot: Cell::new(usize::MAX),
            registered: AtomicBool::new(false),
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// The descriptor number, for the owner thread (sock.rs) and for messages.
    pub(crate) fn fd(&self) -> RawFd {
        match &self.io {
            Io::Server { sock, .. } => sock.raw(),
            Io::Client(s) => s.as_raw_fd(),
        }
    }

    /// Whether the descriptor was closed.
    fn fd_closed(&self) -> bool {
        match &self.io {
            Io::Server { sock, .. } => sock.is_closed(),
            Io::Client(_) => self.closing.is_set(),
        }
    }

    pub(super) fn input(&self) -> &LinkBuffer {
        // SAFETY: access rule (top of file); `&mut` is only formed in `release_input`, under
        // `&mut Connection`, when no slice borrowed from this buffer is alive.
        unsafe { &*self.input.get() }
    }

    pub(super) fn output(&self) -> &LinkBuffer {
        // SAFETY: as for `input`.
        unsafe { &*self.output.get() }
    }

    /// # Safety
    /// No slice borrowed from the input buffer is alive (the caller holds `&mut Connection`
    /// or is the handler loop between handler calls), on the thread of the access rule.
    unsafe fn release_input(&self) {
        // SAFETY: the caller's obligation.
        unsafe { (*self.input.get()).release() }
    }

    /// # Safety
    /// As for `release_input`, for the output buffer.
    unsafe fn release_output(&self) {
        // SAFETY: the caller's obligation.
        unsafe { (*self.output.get()).release() }
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.closing.is_set()
    }

    /// Closes from any thread: marks it closing and shuts the socket down, so that its
    /// worker's poller sees the event and the handler (waiting or next) finalizes it.
    pub(crate) fn close(&self) {
        if !self.closing.close() {
            return;
        }
        match &self.io {
            Io::Server { sock, .. } => {
                // Through a reference: after finalize the number may name another file.
                // A TLS connection keeps its write side for the `close_notify` finalize sends;
                // shutting down the read side raises the same edge.
                #[cfg(feature = "rustls")]
                let how = if self.tls.is_some() { libc::SHUT_RD } else { libc::SHUT_RDWR };
                #[cfg(not(feature = "rustls"))]
                let how = libc::SHUT_RDWR;
                sock.with(|fd| {
                    // SAFETY: plain syscall on a descriptor `with` keeps open.
                    unsafe { libc::shutdown(fd, how) };
                });
            }
            Io::Client(s) => {
                // A dialed connection has no finalize: it is closed here, callbacks and all.
                let _ = s.close();
                self.run_close_callbacks();
            }
        }
    }

    /// One line for the goroutine dump, from another thread: only the thread-safe fields
    /// (the fd number, the peer, the owner, `busy`, `closing`).
    pub(crate) fn dump_line(&self) -> String {
        let (fd, owner) = match &self.io {
            Io::Server { sock, owner, .. } => (sock.raw(), *owner),
            Io::Client(s) => (s.as_raw_fd(), usize::MAX),
        };
        let state = if self.closing.is_set() {
            "closing"
        } else if self.busy.load(Ordering::Relaxed) {
            "busy (a handler runs or waits)"
        } else {
            "idle"
        };
        let buffered = self.buffered.load(Ordering::Relaxed);
        format!("fd {fd} from {}, worker {owner}: {state}, {buffered} bytes buffered", self.peer())
    }

    /// Publishes how many bytes the buffers hold, for the dump (owner thread).
    fn note_buffered(&self) {
        let n = self.input().len() + self.output().len() + self.output().malloc_len();
        self.buffered.store(n, Ordering::Relaxed);
    }

    /// The peer, for messages.
    pub(super) fn peer(&self) -> String {
        match self.peer {
            Some(a) => a.to_string(),
            None => format!("fd {}", self.fd()),
        }
    }

    fn add_close_callback(&self, f: CloseCallback) {
        let mut cbs = self.callbacks.lock().unwrap_or_else(|e| e.into_inner());
        match cbs.as_mut() {
            Some(v) => v.push(f),
            None => {
                drop(cbs);
                f(); // already closed: run at once, as netpoll does
            }
        }
    }

    /// Runs the close callbacks once (later calls find the list taken). A panic in one — or
    /// in dropping it — is reported and the others still run.
    fn run_close_callbacks(&self) {
        let cbs = self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).take();
        for f in cbs.into_iter().flatten() {
            let what = || format!("running a close callback of connection {}", self.peer());
            contain::catch_with(gid(), what, f);
        }
    }

    /// Drops the handler `Connection::set_on_request` installed, if any, under containment:
    /// a panic in its captures' `Drop` is reported and goes no further (invariant 3).
    fn drop_handler(&self) {
        if let Some(h) = self.on_request.take() {
            let what = || format!("dropping the handler of connection {}", self.peer());
            contain::catch_with(gid(), what, move || drop(h));
        }
    }

    pub(super) fn closed_err(&self) -> io::Error {
        crate::netpoll::closed_error()
    }

    // ---- reading ----

    /// One read into the input buffer. `Ok(true)`: bytes came or end of stream (see `eof`);
    /// `Ok(false)`: nothing to read now (server) or the buffer is at its cap.
    pub(super) fn fill_once(&self) -> io::Result<bool> {
        #[cfg(feature = "rustls")]
        if let Some(t) = &self.tls {
            return t.fill(self);
        }
        let inp = self.input();
        let room = self.input_room();
        if room == 0 {
            return Ok(false);
        }
        let max = room.min(READ_CHUNK);
        let min = self.read_hint.get().min(max);
        match &self.io {
            Io::Server { sock, .. } => {
                let fd = sock.raw();
                let r = inp.fill(min, max, |buf| loop {
                    // `recv`, not `read`: the socket call skips the VFS read path (file
                    // position lock, permission and notify hooks) of every request.
                    // SAFETY: `buf` is writable memory of `buf.len()` bytes lent by the buffer.
                    let n = unsafe { crate::sys::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                    if n >= 0 {
                        let n = n as usize;
                        if n == 0 {
                            self.eof.set(true);
                        } else if n < buf.len() {
                            self.trig.set_drained();
                            self.read_hint.set(READ_MIN);
                        } else {
                            // A full read: more is queued; ask for a larger block next time.
                            self.read_hint.set((buf.len() * 2).min(READ_CHUNK));
                        }
                        return Ok(n);
                    }
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINTR) {
                        return Err(e);
                    }
                });
                match r {
                    Ok(n) => Ok(n > 0 || self.eof.get()),
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                        self.trig.set_drained();
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
            Io::Client(s) => {
                let n = inp.fill(min, max, |buf| io::Read::read(&mut &*s, buf))?;
                if n == 0 {
                    self.eof.set(true);
                }
                Ok(true)
            }
        }
    }

    /// Room left under the input cap: the cap counts unconsumed bytes and consumed bytes not
    /// released yet (invariant 2).
    pub(super) fn input_room(&self) -> usize {
        let inp = self.input();
        self.input_cap.saturating_sub(inp.len() + inp.held())
    }

    /// Waits until the input holds at least `n` bytes (the handler's `next(n)` wait).
    fn wait_len(&self, n: usize, op: &str) -> io::Result<()> {
        if n > self.input_cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gonet reactor: {op}({n}) on {}: more than the input cap of {} bytes",
                    self.peer(),
                    self.input_cap
                ),
            ));
        }
        let deadline = self.read_timeout.get().map(|t| Instant::now() + t);
        loop {
            let have = self.input().len();
            if have >= n {
                return Ok(());
            }
            if self.closing.is_set() {
                return Err(self.closed_err());
            }
            if self.eof.get() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "gonet reactor: {op}({n}) on {}: the peer closed with {have} bytes buffered",
                        self.peer()
                    ),
                ));
            }
            if self.input_room() == 0 {
                // Only consumed bytes not yet released can fill the cap here (n <= cap).
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gonet reactor: {op}({n}) on {}: the input cap of {} bytes is full with {} \
                         consumed bytes not released; call `release()` before reading more",
                        self.peer(),
                        self.input_cap,
                        self.input().held()
                    ),
                ));
            }
            match &self.io {
                Io::Client(_) => {
                    self.fill_once()?;
                }
                Io::Server { .. } => {
                    if !self.trig.may_read() || !self.fill_once()? {
                        // Output written so far (by this call, or queued by writers) goes
                        // before the wait: the peer may be waiting for it.
                        self.send_queued()?;
                        self.wait(Want::Read, deadline, op)?;
                    }
                }
            }
        }
    }

    /// Parks the handler until readiness in direction `want`, a close, or `deadline`.
    pub(super) fn wait(&self, want: Want, deadline: Option<Instant>, op: &str) -> io::Result<()> {
        if self.trig.state() != State::Running {
            // `on_prepare` runs on the accept goroutine before the connection is registered:
            // no poller would ever wake a handler parked on it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gonet reactor: {op} on {}: cannot wait in on_prepare (the connection is not \
                     registered yet); read and flush in on_connect or on_request",
                    self.peer()
                ),
            ));
        }
        let cancel = deadline.map(|at| {
            let seq = self.trig.next_seq();
            let me = self.self_arc();
            timer::call_at_cancellable(
                at,
                Box::new(move || {
                    if let Some(g) = me.trig.timeout(seq) {
                        ready(g);
                    }
                }),
            )
        });
        // The dump shows the handler as Go shows a goroutine in `IO wait`: fd and addresses.
        self.note_buffered();
        crate::runtime::wait::reason(crate::runtime::wait::Wait::Io {
            fd: self.fd(),
            write: want == Want::Write,
        });
        park_g(|g| {
            self.trig.park(want, g);
            Ok(())
        });
        if let Some(c) = cancel {
            c.cancel();
        }
        if self.trig.woken() {
            let what = if want == Want::Read { "read" } else { "write" };
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("gonet reactor: {op} on {}: {what} timeout", self.peer()),
            ));
        }
        Ok(())
    }

    /// A strong reference to `self` for a timer callback (server connections are held by
    /// the loop's registry, so the count is at least one).
    pub(super) fn self_arc(&self) -> Arc<ConnInner> {
        let p = self as *const ConnInner;
        // SAFETY: every ConnInner lives in an `Arc` (created only by `Arc::new` in this
        // module's callers), and the caller holds a reference that keeps it alive.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    // ---- writing ----

    /// Sends every readable byte of the output buffer (one `sendmsg` of all blocks per
    /// round); waits for writability on `EAGAIN`. Does not release.
    fn send_all(&self) -> io::Result<()> {
        if !self.malloc_out.get() {
            // SAFETY: access rule; no `malloc`'d slice is alive (`malloc_out` is false), so
            // making the unflushed bytes readable aliases nothing.
            unsafe { (*self.output.get()).flush() };
        }
        #[cfg(feature = "rustls")]
        if let Some(t) = &self.tls {
            return t.send_all(self);
        }
        let out = self.output();
        let deadline = self.write_timeout.get().map(|t| Instant::now() + t);
        while !out.is_empty() {
            if self.closing.is_set() {
                return Err(self.closed_err());
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let cnt = out.io_slices(&mut iov);
            let sent = match &self.io {
                Io::Server { sock, .. } => {
                    let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
                    let n = if cnt == 1 {
                        // One block (a typical reply): `send` spares the kernel importing a
                        // message header and an iovec array.
                        // SAFETY: the slice is `iov[0].len()` readable bytes of the buffer.
                        unsafe {
                            crate::sys::send(
                                sock.raw(),
                                iov[0].as_ptr().cast(),
                                iov[0].len(),
                                flags,
                            )
                        }
                    } else {
                        // SAFETY: zeroed msghdr is a valid "empty" header; we fill the iovecs.
                        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
                        msg.msg_iovlen = cnt;
                        // SAFETY: `msg` points to `cnt` valid iovecs (IoSlice is ABI-compatible).
                        unsafe { crate::sys::sendmsg(sock.raw(), &msg, flags) }
                    };
                    if n < 0 {
                        let e = io::Error::last_os_error();
                        match e.raw_os_error() {
                            Some(libc::EINTR) => continue,
                            Some(libc::EAGAIN) => {
                                self.wait(Want::Write, deadline, "flush")?;
                                continue;
                            }
                            _ => return Err(e),
                        }
                    }
                    n as usize
                }
                Io::Client(s) => io::Write::write_vectored(&mut &*s, &iov[..cnt])?,
            };
            out.skip(sent)?;
        }
        Ok(())
    }

    /// Output bytes held: unsent (readable or unflushed) and sent but not released.
    /// The output cap.
    pub(super) fn output_cap(&self) -> usize {
        self.output_cap
    }

    /// The outbox of this connection's writers (writer.rs).
    pub(super) fn outbox(&self) -> &super::writer::OutboxCell {
        &self.outbox
    }

    /// Owner thread: appends a writer's bytes to the output as one block, past the cap checks
    /// (the pull bounds it, writer.rs).
    pub(super) fn append_direct(&self, b: Vec<u8>) -> io::Result<()> {
        self.output().write_direct(b)
    }

    /// Starts `f` on a goroutine of the owner worker (a server connection's; writer.rs).
    pub(super) fn start_on_owner(&self, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let Io::Server { worker, .. } = &self.io else {
            return Err(io::Error::other("not a server connection"));
        };
        match worker.upgrade() {
            Some(w) => crate::runtime::go_on(&w, "reactor writer", f),
            None => Err(self.closed_err()),
        }
    }

    /// Owner thread, in a handler's call or the handler loop: sends the output — what was
    /// written, then what writers queued (writer.rs), until the outbox is empty. While a
    /// `malloc`'d region is outstanding only what is readable is sent.
    fn send_queued(&self) -> io::Result<()> {
        loop {
            let out = self.output();
            if !out.is_empty() || (out.malloc_len() > 0 && !self.malloc_out.get()) {
                self.send_all()?;
                // Frees what was sent; `write_direct` data dropped here is the loop's to
                // contain (invariant 3), whoever called.
                if self.output().may_drop_user_data() {
                    let what = || format!("releasing the output of connection {}", self.peer());
                    if contain::catch_with(gid(), what, || self.release_sent()).is_none() {
                        self.closing.set();
                        return Err(self.closed_err());
                    }
                } else {
                    self.release_sent();
                }
            }
            if self.malloc_out.get() || !self.outbox.pull(self) {
                return Ok(());
            }
        }
    }

    pub(super) fn output_held(&self) -> usize {
        let out = self.output();
        out.len() + out.malloc_len() + out.held()
    }

    /// Before appending `n` bytes: while a `malloc`'d region may still be written nothing can
    /// be sent, so an append past the output cap fails instead of growing the buffer.
    fn reserve_output(&self, n: usize, op: &str) -> io::Result<()> {
        if self.malloc_out.get() && self.output_held().saturating_add(n) > self.output_cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gonet reactor: {op}({n}) on {}: the output cap of {} bytes would be passed \
                     while a malloc'd region is outstanding; call `flush()` first",
                    self.peer(),
                    self.output_cap
                ),
            ));
        }
        Ok(())
    }

    /// After an append: past the output cap, sends everything and frees what was sent (no
    /// `malloc`'d region is outstanding, `reserve_output` saw to that). Runs in the handler's
    /// call, so a panic in dropping `write_direct` data is the handler's.
    fn check_output(&self) -> io::Result<()> {
        if self.output_held() > self.output_cap && !self.malloc_out.get() {
            self.send_all()?;
            self.release_sent();
        }
        Ok(())
    }

    /// Frees the output that was sent, unless a `malloc`'d region may still be written.
    fn release_sent(&self) {
        if !self.malloc_out.get() {
            // SAFETY: the output buffer hands out slices only through `malloc` (`malloc_out`
            // is false, so none is alive) and `io_slices` (internal, dead after `send_all`).
            unsafe { self.release_output() }
        }
    }

    /// Releases both buffers for the handler loop (no slice is alive between handler calls):
    /// a panic in dropping user data (`write_direct`) is contained and closes the connection.
    fn release_contained(&self) {
        // SAFETY: the handler loop calls this between handler calls, on the owner thread. The
        // input holds only bytes read from the socket: no caller data, nothing to contain.
        unsafe { self.release_input() };
        if !self.output().may_drop_user_data() {
            // SAFETY: as above; no caller data in the output either.
            unsafe { self.release_output() };
            return;
        }
        let ok = contain::catch_with(
            gid(),
            || format!("releasing the output of connection {}", self.peer()),
            // SAFETY: as above.
            || unsafe { self.release_output() },
        );
        if ok.is_none() {
            self.closing.set();
        }
    }
}

/// The current goroutine's id, for reports (0 on a plain thread).
fn gid() -> u64 {
    crate::runtime::worker::current_goroutine_id().unwrap_or(0)
}

/// A connection: the nocopy Reader and Writer of netpoll over a socket.
///
/// Slices returned by [`next`](Connection::next), [`peek`](Connection::peek) and
/// [`until`](Connection::until) borrow the connection until [`release`](Connection::release)
/// (which takes `&mut self`), so a slice can never be used after its bytes were freed.
/// A `Connection` is not `Send`: a server connection is used by its handler goroutine on its
/// worker; a dialed one by the goroutine or thread that dialed it. [`handle`] gives a
/// `Send + Sync` handle for closing it from elsewhere.
///
/// `Connection` is unsized: hooks and handlers get `&mut Connection`, and [`dial`] returns a
/// `Box<Connection>`. So a server connection can never be moved out of its handler, which is
/// what keeps slices from outliving the release the event loop does after each call:
///
/// ```compile_fail,E0277
/// fn hijack(c: &mut gonet::reactor::Connection, other: &mut gonet::reactor::Connection) {
///     std::mem::swap(c, other); // error: the size of `Connection` is not known
/// }
/// ```
///
/// ```compile_fail,E0161
/// fn hijack(c: &mut gonet::reactor::Connection) -> Box<gonet::reactor::Connection> {
///     let d = gonet::reactor::dial("127.0.0.1:1", std::time::Duration::from_secs(1)).unwrap();
///     Box::new(std::mem::replace(c, *d)) // error: cannot move an unsized value
/// }
/// ```
///
/// ```compile_fail,E0277
/// fn keep(slot: &mut Option<gonet::reactor::Connection>) {} // error: not `Sized`
/// ```
///
/// # Memory
///
/// A connection buffers at most `input_cap` bytes of input — unconsumed bytes plus bytes
/// consumed but not yet released — and `output_cap` bytes of output. The event loop releases
/// after every handler call, so a handler that reads one request per call never sees the
/// difference; a handler that loops over many requests in one call calls
/// [`release`](Connection::release) between them (or reads through `Read for Connection`,
/// which releases at once), else reading fails with `InvalidInput` at the cap. Output past
/// the cap is sent (and freed) before the write returns; while a [`malloc`](Connection::malloc)'d
/// region is outstanding nothing can be sent, and a write past the cap fails with
/// `InvalidInput` until [`flush`](Connection::flush).
///
/// [`handle`]: Connection::handle
/// [`dial`]: crate::reactor::dial
#[repr(C)]
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
    _not_send: PhantomData<*const ()>,
    /// Makes the type unsized (invariant 1 at the top of this file); always empty.
    _unsized: [()],
}

/// The sized owner of a [`Connection`]: the same fields with an empty array for the tail, so
/// a `ConnBox` has exactly the layout of a `Connection` whose tail is `[(); 0]`.
#[repr(C)]
pub(crate) struct ConnBox {
    inner: Arc<ConnInner>,
    _not_send: PhantomData<*const ()>,
    _unsized: [(); 0],
}

impl ConnBox {
    pub(crate) fn new(inner: Arc<ConnInner>) -> ConnBox {
        ConnBox { inner, _not_send: PhantomData, _unsized: [] }
    }

    /// The connection, borrowed for a hook or handler call.
    pub(crate) fn conn(&mut self) -> &mut Connection {
        let p = std::ptr::slice_from_raw_parts_mut(self as *mut ConnBox as *mut (), 0);
        // SAFETY: both types are `repr(C)` with the same sized fields in the same order;
        // `Connection`'s tail `[()]` with length 0 (the slice metadata given here) takes the
        // place of `ConnBox`'s `[(); 0]`: same size, alignment and field offsets. The borrow
        // of `self` is exclusive and lasts as long as the result.
        unsafe { &mut *(p as *mut Connection) }
    }

    /// Moves it to the heap as a `Box<Connection>` (a dialed connection).
    pub(crate) fn boxed(self) -> Box<Connection> {
        let raw = Box::into_raw(Box::new(self));
        let p = std::ptr::slice_from_raw_parts_mut(raw as *mut (), 0) as *mut Connection;
        // SAFETY: same layout as in `conn` (so `Layout::for_value` of the result equals the
        // layout `Box::new` allocated with); ownership moves from the box just made.
        unsafe { Box::from_raw(p) }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping a dialed connection closes it (its close callbacks run); a server
        // connection's handler-loop owner drops after every turn and closes nothing.
        if let Io::Client(_) = self.inner.io {
            self.close();
        }
    }
}

/// A thread-safe handle to a [`Connection`]: close it, ask whether it is active, add close
/// callbacks — from any goroutine or thread.
#[derive(Clone)]
pub struct ConnHandle {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fd = if self.inner.fd_closed() { -1 } else { self.inner.fd() };
        f.debug_struct("ConnHandle").field("fd", &fd).finish()
    }
}

impl ConnHandle {
    /// Closes the connection: a handler waiting in `next` wakes with a "closed" error, the
    /// close callbacks run once, on the connection's worker.
    pub fn close(&self) {
        self.inner.close()
    }
    /// Whether the connection is still open.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }
    /// Runs `f` once when the connection is closed (at once if it already was).
    pub fn add_close_callback(&self, f: impl FnOnce() + Send + 'static) {
        self.inner.add_close_callback(Box::new(f))
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fd = if self.inner.fd_closed() { -1 } else { self.inner.fd() };
        f.debug_struct("Connection")
            .field("fd", &fd)
            .field("input", &self.inner.input().len())
            .field("active", &self.inner.is_active())
            .finish()
    }
}

impl Connection {
    /// Bytes readable now without waiting.
    pub fn len(&self) -> usize {
        self.inner.input().len()
    }

    /// Whether no byte is readable now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consumes the next `n` bytes, waiting until they have arrived (netpoll's `Next`).
    /// Zero-copy when they lie in one block. Fails with `UnexpectedEof` if the peer closes
    /// first, `TimedOut` after the read timeout, `InvalidInput` above the input cap.
    pub fn next(&self, n: usize) -> io::Result<&[u8]> {
        self.inner.wait_len(n, "next")?;
        self.inner.input().next(n)
    }

    /// Like [`next`](Connection::next) without consuming.
    pub fn peek(&self, n: usize) -> io::Result<&[u8]> {
        self.inner.wait_len(n, "peek")?;
        self.inner.input().peek(n)
    }

    /// Consumes `n` bytes without looking at them (waiting for them).
    pub fn skip(&self, n: usize) -> io::Result<()> {
        self.inner.wait_len(n, "skip")?;
        self.inner.input().skip(n)
    }

    /// Consumes through the first `delim` (inclusive), waiting for it to arrive; fails with
    /// `InvalidInput` if the input cap fills up without one.
    pub fn until(&self, delim: u8) -> io::Result<&[u8]> {
        let inp = self.inner.input();
        let mut scanned = 0;
        loop {
            let have = inp.len();
            if have > scanned {
                // Scan only the new bytes, in place: no copy per wake-up (invariant 2).
                if let Some(i) = inp.find_from(delim, scanned) {
                    return inp.next(i + 1);
                }
                scanned = have;
            }
            if have >= self.inner.input_cap {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gonet reactor: until({delim:#x}) on {}: no delimiter within the input cap of {} bytes",
                        self.inner.peer(),
                        self.inner.input_cap
                    ),
                ));
            }
            self.inner.wait_len(have + 1, "until")?;
        }
    }

    /// Consumes `n` bytes into a new vector.
    pub fn read_binary(&self, n: usize) -> io::Result<Vec<u8>> {
        self.inner.wait_len(n, "read_binary")?;
        self.inner.input().read_binary(n)
    }

    /// Consumes `n` bytes as a string (`InvalidData` if they are not UTF-8).
    pub fn read_string(&self, n: usize) -> io::Result<String> {
        self.inner.wait_len(n, "read_string")?;
        self.inner.input().read_string(n)
    }

    /// Consumes one byte.
    pub fn read_byte(&self) -> io::Result<u8> {
        self.inner.wait_len(1, "read_byte")?;
        self.inner.input().read_byte()
    }

    /// Consumes `n` bytes into a new `LinkBuffer` that shares their blocks (no copy) and can
    /// be sent to another goroutine.
    pub fn slice(&self, n: usize) -> io::Result<LinkBuffer> {
        self.inner.wait_len(n, "slice")?;
        self.inner.input().slice(n)
    }

    /// Frees the consumed input (and sent output): their blocks go back to the pool. Also
    /// done after every handler call.
    pub fn release(&mut self) {
        // SAFETY: `&mut self`: no slice borrowed from this connection is alive.
        unsafe {
            self.inner.release_input();
            self.inner.release_output();
        }
    }

    /// `n` writable bytes at the end of the output. Like everything written, they are sent
    /// when the handler returns (one `sendmsg` for all the call wrote — so a handler that
    /// answers several pipelined requests should not `flush` after each), at an explicit
    /// [`flush`](Connection::flush), or when the output passes the cap. Above the output cap
    /// (or the buffer's `MAX_MALLOC`) → `InvalidInput`.
    #[allow(clippy::mut_from_ref)]
    pub fn malloc(&self, n: usize) -> io::Result<&mut [u8]> {
        let c = &self.inner;
        c.reserve_output(n, "malloc")?;
        if !c.malloc_out.get() && c.output_held() + n > c.output_cap {
            // Make room first: nothing handed out can be alive (`malloc_out` is false).
            c.send_all()?;
            c.release_sent();
        }
        if n > self.inner.output_cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "gonet reactor: malloc({n}) on {}: more than the output cap of {} bytes",
                    self.inner.peer(),
                    self.inner.output_cap
                ),
            ));
        }
        self.inner.malloc_out.set(true);
        self.inner.output().malloc(n)
    }

    /// Bytes written or `malloc`'d and not yet flushed.
    pub fn malloc_len(&self) -> usize {
        self.inner.output().malloc_len()
    }

    /// Keeps only the first `n` unflushed bytes.
    pub fn malloc_ack(&mut self, n: usize) -> io::Result<()> {
        // SAFETY: `&mut self`: no `malloc`'d slice is alive.
        unsafe { (*self.inner.output.get()).malloc_ack(n) }
    }

    /// Appends a copy of `b`.
    pub fn write_binary(&self, b: &[u8]) -> io::Result<()> {
        self.inner.reserve_output(b.len(), "write_binary")?;
        self.inner.output().write_binary(b)?;
        self.inner.check_output()
    }

    /// Appends a copy of `s`.
    pub fn write_string(&self, s: &str) -> io::Result<()> {
        self.write_binary(s.as_bytes())
    }

    /// Appends one byte.
    pub fn write_byte(&self, b: u8) -> io::Result<()> {
        self.inner.reserve_output(1, "write_byte")?;
        self.inner.output().write_byte(b)?;
        self.inner.check_output()
    }

    /// Appends `data` as its own block, without copying.
    pub fn write_direct<B: AsRef<[u8]> + Send + 'static>(&self, data: B) -> io::Result<()> {
        self.inner.reserve_output(data.as_ref().len(), "write_direct")?;
        self.inner.output().write_direct(data)?;
        self.inner.check_output()
    }

    /// Appends the bytes of `buf` (e.g. from [`slice`](Connection::slice)), without copying.
    pub fn append(&self, buf: LinkBuffer) -> io::Result<()> {
        self.inner.reserve_output(buf.len() + buf.malloc_len(), "append")?;
        self.inner.output().append(buf)?;
        self.inner.check_output()
    }

    /// Sends everything written so far: one `sendmsg` of all blocks, waiting for
    /// writability on `EAGAIN` (up to the write timeout). A handler need not call it: what it
    /// wrote is sent when it returns; flushing per message costs a system call each.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.malloc_out.set(false); // `&mut self`: the malloc'd slices are dead
        self.inner.send_all()?;
        // SAFETY: `&mut self`: no `malloc`'d slice is alive.
        unsafe { self.inner.release_output() };
        Ok(())
    }

    /// Read timeout of each waiting read (`None`: wait forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        self.inner.read_timeout.set(t);
        if let Io::Client(s) = &self.inner.io {
            let _ = s.set_read_timeout(t.filter(|d| !d.is_zero()));
        }
    }

    /// Write timeout of each flush that waits for writability.
    pub fn set_write_timeout(&self, t: Option<Duration>) {
        self.inner.write_timeout.set(t);
        if let Io::Client(s) = &self.inner.io {
            let _ = s.set_write_timeout(t.filter(|d| !d.is_zero()));
        }
    }

    /// Closes the connection when it stays idle (no input, no handler) this long.
    pub fn set_idle_timeout(&self, t: Option<Duration>) {
        self.inner.idle_timeout.set(t)
    }

    /// Replaces this connection's request handler.
    pub fn set_on_request(
        &self,
        f: impl Fn(&mut Connection) -> io::Result<()> + Send + Sync + 'static,
    ) {
        self.inner.on_request.set(Some(Arc::new(f)));
    }

    /// Runs `f` once when the connection is closed.
    pub fn add_close_callback(&self, f: impl FnOnce() + Send + 'static) {
        self.inner.add_close_callback(Box::new(f))
    }

    /// Whether the connection is open.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// Closes the connection (from the handler: once it returns; see [`ConnHandle::close`]).
    /// A TLS connection sends `close_notify` first (a server connection when it is
    /// finalized, a dialed one here).
    pub fn close(&self) {
        #[cfg(feature = "rustls")]
        if let (Io::Client(_), Some(t)) = (&self.inner.io, &self.inner.tls) {
            if self.inner.is_active() {
                // On the holder's thread (`Connection` is not `Send`): tls/mod.rs invariant 1.
                t.finish(&self.inner);
            }
        }
        self.inner.close()
    }

    /// A `Send + Sync` handle to close this connection from anywhere.
    pub fn handle(&self) -> ConnHandle {
        ConnHandle { inner: self.inner.clone() }
    }

    /// A `Send + Sync` writer to this connection, for other goroutines and threads: each write
    /// is sent whole and in order after what was written before it, by the connection's
    /// worker; a write waits while the connection has a full output cap queued (see
    /// [`ConnWriter`](super::ConnWriter)).
    pub fn writer(&self) -> super::ConnWriter {
        super::ConnWriter::new(self.inner.clone())
    }

    /// The peer's address (known from accept or dial; still answered after close, as Go's
    /// `RemoteAddr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer.ok_or_else(|| io::Error::other("the peer's address is unknown"))
    }

    /// The local address; fails once the connection is closed (its descriptor number may
    /// name another socket by then).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let c = &self.inner;
        let addr = match &c.io {
            Io::Client(s) => return s.local_addr(),
            Io::Server { sock, .. } => sock.with(|fd| {
                // SAFETY: `with` keeps the descriptor open for the call; `ManuallyDrop`
                // keeps the borrowed socket from closing it.
                let s = std::mem::ManuallyDrop::new(unsafe {
                    <socket2::Socket as std::os::fd::FromRawFd>::from_raw_fd(fd)
                });
                s.local_addr()
            }),
        };
        addr.ok_or_else(|| c.closed_err())??
            .as_socket()
            .ok_or_else(|| io::Error::other("not an internet socket"))
    }

    /// Copies up to `buf.len()` readable bytes, waiting for at least one (0: end of stream).
    fn read_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.is_empty() {
            match self.inner.wait_len(1, "read") {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let k = self.len().min(buf.len());
        buf[..k].copy_from_slice(self.inner.input().next(k)?);
        Ok(k)
    }
}

/// The socket's descriptor (for socket options); -1 once the connection is closed, so a
/// closed connection never names a number the kernel may have given to another file.
impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        if self.inner.fd_closed() {
            -1
        } else {
            self.inner.fd()
        }
    }
}

impl io::Read for &Connection {
    /// Copies what is there (waiting for at least one byte). The consumed bytes are freed
    /// at the next `release` (or when the handler returns).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_into(buf)
    }
}

impl io::Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_into(buf)?;
        self.release();
        Ok(n)
    }
}

impl io::Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_binary(buf)?;
        Ok(buf.len())
    }
    /// Sends what was written (the sent blocks are freed at the next `release`).
    fn flush(&mut self) -> io::Result<()> {
        self.inner.send_all()
    }
}

impl io::Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_binary(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Connection::flush(self)
    }
}

// ---- the handler loop ----

/// Runs one hook or handler call, catching a panic (reported by the panic hook; its payload
/// dropped under containment). `Err` closes the connection.
pub(crate) fn call(c: &mut Connection, h: &Handler, what: &'static str) -> io::Result<()> {
    let site = CallSite { conn: Arc::as_ptr(&c.inner), what };
    let arg = &site as *const CallSite as *const ();
    crate::runtime::worker::unit_begin(c.inner.fd());
    let r = contain::with_context(describe_call, arg, || {
        panic::catch_unwind(AssertUnwindSafe(|| h(c)))
    });
    crate::runtime::worker::unit_end();
    match r {
        Ok(r) => r,
        Err(p) => {
            let msg = contain::message(&p).to_string();
            contain::drop_payload(gid(), p);
            Err(io::Error::other(format!("{what} panicked: {msg}")))
        }
    }
}

/// A hook or handler call in progress, for the panic hook.
struct CallSite {
    /// The connection, alive for the call (its `Connection` holds it).
    conn: *const ConnInner,
    what: &'static str,
}

/// The panic hook's line for a handler call (`contain::with_context`).
fn describe_call(arg: *const ()) -> String {
    // SAFETY: `call` passes a pointer to its `CallSite`, which lives on its frame for the
    // whole call, during which the panic hook (the only caller) runs; the site's connection
    // is held by the `Connection` the call borrows.
    let (c, what) = unsafe {
        let site = &*(arg as *const CallSite);
        (&*site.conn, site.what)
    };
    format!(
        "reactor {what} handler for connection {} (fd {}, worker {}, goroutine {}) panicked; \
         the connection is closed and the loop goes on",
        c.peer(),
        c.fd(),
        owner_of(c),
        gid()
    )
}

/// Calls the connection's own handler, else the loop's. The own one is taken out of its
/// cell for the call (no reference count traffic) and put back unless the handler set a new
/// one meanwhile; the one replaced is dropped under containment (invariant 3).
fn call_handler(c: &ConnInner, lp: &LoopShared, conn: &mut Connection) -> io::Result<()> {
    match c.on_request.take() {
        None => call(conn, &lp.on_request, "on_request"),
        Some(h) => {
            let r = call(conn, &h, "on_request");
            match c.on_request.take() {
                None => c.on_request.set(Some(h)),
                Some(new) => {
                    c.on_request.set(Some(new));
                    let what = format!("dropping the replaced handler of connection {}", c.peer());
                    if contain::catch(gid(), &what, move || drop(h)).is_none() {
                        c.closing.set();
                    }
                }
            }
            r
        }
    }
}

/// The handler loop of a server connection, run by a runner goroutine on its owner worker
/// (netpoll's `onProcess`): read, call the handler while input remains and it makes
/// progress, then go idle — or finalize on close, end of stream or error. Returns whether
/// the connection used up its turn and was queued again (the caller then yields).
pub(crate) fn process(c: &Arc<ConnInner>) -> bool {
    let Io::Server { lp, .. } = &c.io else { unreachable!("only server connections are queued") };
    c.trig.start();
    c.idle_since.set(None);
    c.busy.store(true, Ordering::Relaxed);
    let mut owner = ConnBox::new(c.clone());
    let r = run(c, lp, owner.conn());
    c.release_contained();
    c.note_buffered();
    match r {
        Ok(Done::Again) if c.is_active() => {
            c.trig.requeue();
            super::sched::enqueue(c.clone());
            return true;
        }
        Ok(Done::Idle) if c.is_active() => {
            c.busy.store(false, Ordering::Relaxed);
            arm_idle(c);
        }
        Ok(_) => finalize(c, lp, owner.conn()),
        Err(e) => {
            if !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
            ) {
                report(&format!(
                    "gonet reactor: connection {} (fd {}, worker {}): {e}; closing it",
                    c.peer(),
                    c.fd(),
                    owner_of(c)
                ));
            }
            finalize(c, lp, owner.conn())
        }
    }
    false
}

/// The owner worker's index, for reports.
fn owner_of(c: &ConnInner) -> usize {
    match &c.io {
        Io::Server { owner, .. } => *owner,
        Io::Client(_) => usize::MAX,
    }
}

/// A warning about a connection: through the runtime's reports (stderr when no logger is
/// installed, `GONET_REPORTS`), so a failure is visible without setup.
pub(crate) fn report(msg: &str) {
    match crate::runtime::worker::current() {
        Some(w) => w.rt.reports.warn(msg),
        None => crate::runtime::Reports::default().warn(msg),
    }
}

/// How a turn of the handler loop ended.
pub(super) enum Done {
    /// No more input: the connection is idle.
    Idle,
    /// Closed, or the peer ended its stream.
    Closed,
    /// Input keeps coming: the turn is up.
    Again,
}

/// One turn of the handler loop; `Err`: close with a report.
fn run(c: &ConnInner, lp: &LoopShared, conn: &mut Connection) -> io::Result<Done> {
    #[cfg(feature = "rustls")]
    if let Some(t) = &c.tls {
        // The handshake runs here, before `on_connect`; the connection idles between its
        // flights without a goroutine.
        if let Some(done) = t.handshake(c)? {
            return Ok(done);
        }
    }
    if !c.connected.replace(true) {
        if let Some(h) = &lp.on_connect {
            call(conn, h, "on_connect")?;
        }
    }
    let mut reads = 0;
    loop {
        if !c.is_active() {
            return Ok(Done::Closed);
        }
        if c.trig.may_read() && !c.eof.get() {
            reads += 1;
            if reads > TURN_READS {
                return Ok(Done::Again);
            }
            c.fill_once()?;
        }
        // Call the handler while input remains and it consumes some.
        while c.is_active() {
            let before = c.input().len();
            if before == 0 {
                break;
            }
            call_handler(c, lp, conn)?;
            c.release_contained();
            let after = c.input().len();
            if after >= before && after > 0 {
                if after >= c.input_cap {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the input cap of {} bytes is full and the handler consumed nothing",
                            c.input_cap
                        ),
                    ));
                }
                break; // it waits for more input: read, or go idle until some arrives
            }
        }
        c.malloc_out.set(false); // the handler returned: its malloc'd slices are dead
        c.send_queued()?;
        c.release_contained();
        if !c.is_active() || c.eof.get() {
            return Ok(Done::Closed);
        }
        if c.trig.try_idle() {
            return Ok(Done::Idle);
        }
    }
}

/// Notes that the connection went idle and makes sure one idle timer is pending. A
/// connection has at most one idle timer in its worker's heap, however fast it turns over:
/// the timer re-arms itself for the latest idle period instead of one timer per request.
/// The timer holds the connection weakly, so a connection finalized meanwhile is freed at
/// once, not when its timer comes due.
fn arm_idle(c: &Arc<ConnInner>) {
    let Some(t) = c.idle_timeout.get() else { return };
    c.idle_since.set(Some(Instant::now()));
    if !c.idle_armed.replace(true) {
        idle_timer(Arc::downgrade(c), Instant::now() + t);
    }
}

fn idle_timer(weak: std::sync::Weak<ConnInner>, at: Instant) {
    timer::call_at(
        at,
        Box::new(move || {
            let Some(c) = weak.upgrade() else { return };
            c.idle_armed.set(false);
            let (Some(t), Some(since)) = (c.idle_timeout.get(), c.idle_since.get()) else {
                return;
            };
            if c.trig.state() != State::Idle {
                return; // busy or closed; the next idle period arms again
            }
            let due = since + t;
            if Instant::now() < due {
                c.idle_armed.set(true);
                idle_timer(weak, due);
                return;
            }
            c.closing.set();
            if c.trig.kick_idle() {
                super::sched::enqueue(c);
            }
        }),
    );
}

/// Closes for good, on the owner worker: deregisters, runs `on_disconnect` and the close
/// callbacks exactly once, frees the buffers, closes the descriptor (the peer sees it at
/// once, invariant 4) and drops the registration's reference.
fn finalize(c: &Arc<ConnInner>, lp: &Arc<LoopShared>, conn: &mut Connection) {
    c.busy.store(false, Ordering::Relaxed);
    if c.trig.state() == State::Closed {
        return;
    }
    c.closing.set();
    let Io::Server { sock, owner, epfd, .. } = &c.io else { unreachable!() };
    crate::netpoll::deregister(*epfd, sock.raw());
    c.trig.close();
    if let Some(h) = &lp.on_disconnect {
        if let Err(e) = call(conn, h, "on_disconnect") {
            report(&format!("gonet reactor: connection {}: {e}", c.peer()));
        }
    }
    c.run_close_callbacks();
    c.drop_handler();
    // Drop what is buffered: skip the unread input, forget the unsent output.
    let inp = c.input();
    let _ = inp.skip(inp.len());
    // SAFETY: owner thread, no handler runs: no slice is alive.
    unsafe { (*c.output.get()).flush() };
    let out = c.output();
    let _ = out.skip(out.len());
    c.release_contained();
    #[cfg(feature = "rustls")]
    if let Some(t) = &c.tls {
        t.finish(c); // close_notify (or the pending alert), one non-blocking send
    }
    // No handler runs and none will (the trigger is closed): nothing on this thread names
    // the number any more; other threads go through `Sock::with`, which now fails.
    sock.close();
    c.outbox.close();
    lp.remove(c, *owner);
    if c.registered.swap(false, Ordering::AcqRel) {
        // SAFETY: the epoll registration held one reference made by `Arc::into_raw` in
        // `EventLoop::register` (the flag says it was not given back yet); it is deregistered
        // above on this (its worker's) thread, after every event of earlier polls was handled,
        // so no event can carry the pointer any more.
        unsafe { Arc::decrement_strong_count(Arc::as_ptr(c)) };
    }
}
