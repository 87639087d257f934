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
//! `closing`, `busy`, the callback list (a mutex) and `shutdown(2)` on the descriptor, which
//! stays open until the last `Arc<ConnInner>` is dropped.

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
use super::trigger::{CloseFlag, State, Trigger, Want};
use super::LinkBuffer;
use crate::net::TcpStream;
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
    Server { fd: RawFd, owner: usize, epfd: RawFd, rt_id: u64, lp: Arc<LoopShared> },
    /// Dialed: waits through the netpoller like any `net::TcpStream`.
    Client(TcpStream),
}

type CloseCallback = Box<dyn FnOnce() + Send>;

pub(crate) struct ConnInner {
    pub(crate) io: Io,
    input: UnsafeCell<LinkBuffer>,
    output: UnsafeCell<LinkBuffer>,
    pub(crate) trig: Trigger<GRef>,
    closing: CloseFlag,
    /// A handler runs (or waits) on it: shutdown waits for these.
    pub(crate) busy: AtomicBool,
    eof: Cell<bool>,
    connected: Cell<bool>,
    /// A `malloc`'d region may still be written by the handler: no automatic flush.
    malloc_out: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
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
    /// Index in the loop's registry (server connections).
    pub(crate) slot: Cell<usize>,
    /// The epoll registration holds a reference (`Arc::into_raw`); whoever clears this flag
    /// (`finalize` on the owner worker, or `LoopShared::reap` once the runtime's workers have
    /// exited) gives it back, so it is given back exactly once.
    pub(crate) registered: AtomicBool,
}

// SAFETY: the non-thread-safe fields (`Cell`s, `UnsafeCell`s, the trigger) are touched only
// under the access rule at the top of this file; the rest is atomics, a mutex and the fd.
unsafe impl Sync for ConnInner {}
// SAFETY: as above; a `ConnInner` dropped on another thread only closes its descriptor and
// drops its (Send) buffers.
unsafe impl Send for ConnInner {}

impl Drop for ConnInner {
    fn drop(&mut self) {
        if let Io::Server { fd, .. } = self.io {
            // SAFETY: the descriptor is owned by this connection and deregistered (finalize)
            // or never registered; nobody uses it any more (last reference).
            unsafe { libc::close(fd) };
        }
    }
}

impl ConnInner {
    pub(crate) fn new(io: Io, input_cap: usize, output_cap: usize) -> ConnInner {
        ConnInner {
            io,
            input: UnsafeCell::new(LinkBuffer::new()),
            output: UnsafeCell::new(LinkBuffer::new()),
            trig: Trigger::new(),
            closing: CloseFlag::new(),
            busy: AtomicBool::new(false),
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
            slot: Cell::new(usize::MAX),
            registered: AtomicBool::new(false),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        match &self.io {
            Io::Server { fd, .. } => *fd,
            Io::Client(s) => s.as_raw_fd(),
        }
    }

    fn input(&self) -> &LinkBuffer {
        // SAFETY: access rule (top of file); `&mut` is only formed in `release_input`, under
        // `&mut Connection`, when no slice borrowed from this buffer is alive.
        unsafe { &*self.input.get() }
    }

    fn output(&self) -> &LinkBuffer {
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
            Io::Server { fd, .. } => {
                // SAFETY: plain syscall on a descriptor that stays open while we hold `self`.
                unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
            }
            Io::Client(s) => {
                let _ = s.close();
            }
        }
    }

    fn peer(&self) -> String {
        let fd = self.fd();
        // SAFETY: `fd` is open while we hold `self`; the socket is only borrowed.
        let s = std::mem::ManuallyDrop::new(unsafe {
            <socket2::Socket as std::os::fd::FromRawFd>::from_raw_fd(fd)
        });
        match s.peer_addr().ok().and_then(|a| a.as_socket()) {
            Some(a) => a.to_string(),
            None => format!("fd {fd}"),
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

    fn run_close_callbacks(&self) {
        let cbs = self.callbacks.lock().unwrap_or_else(|e| e.into_inner()).take();
        for f in cbs.into_iter().flatten() {
            if panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
                log::error!("gonet reactor: a close callback of {} panicked", self.peer());
            }
        }
    }

    fn closed_err(&self) -> io::Error {
        crate::netpoll::closed_error()
    }

    // ---- reading ----

    /// One read into the input buffer. `Ok(true)`: bytes came or end of stream (see `eof`);
    /// `Ok(false)`: nothing to read now (server) or the buffer is at its cap.
    fn fill_once(&self) -> io::Result<bool> {
        let inp = self.input();
        let room = self.input_cap.saturating_sub(inp.len());
        if room == 0 {
            return Ok(false);
        }
        let max = room.min(READ_CHUNK);
        let min = self.read_hint.get().min(max);
        match &self.io {
            Io::Server { fd, .. } => {
                let fd = *fd;
                let r = inp.fill(min, max, |buf| loop {
                    // SAFETY: `buf` is writable memory of `buf.len()` bytes lent by the buffer.
                    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
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
            match &self.io {
                Io::Client(_) => {
                    self.fill_once()?;
                }
                Io::Server { .. } => {
                    if !self.trig.may_read() || !self.fill_once()? {
                        self.wait(Want::Read, deadline, op)?;
                    }
                }
            }
        }
    }

    /// Parks the handler until readiness in direction `want`, a close, or `deadline`.
    fn wait(&self, want: Want, deadline: Option<Instant>, op: &str) -> io::Result<()> {
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
    fn self_arc(&self) -> Arc<ConnInner> {
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
        let out = self.output();
        let deadline = self.write_timeout.get().map(|t| Instant::now() + t);
        while !out.is_empty() {
            if self.closing.is_set() {
                return Err(self.closed_err());
            }
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let cnt = out.io_slices(&mut iov);
            let sent = match &self.io {
                Io::Server { fd, .. } => {
                    // SAFETY: zeroed msghdr is a valid "empty" header; we fill the iovecs.
                    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
                    msg.msg_iovlen = cnt;
                    // SAFETY: `msg` points to `cnt` valid iovecs (IoSlice is ABI-compatible).
                    let n = unsafe {
                        libc::sendmsg(*fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
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

    /// After an append: sends if the unsent output passed the cap (and no `malloc`'d region
    /// may still be written).
    fn check_output(&self) -> io::Result<()> {
        let out = self.output();
        if out.len() + out.malloc_len() > self.output_cap && !self.malloc_out.get() {
            self.send_all()?;
        }
        Ok(())
    }
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
/// [`handle`]: Connection::handle
pub struct Connection {
    pub(crate) inner: Arc<ConnInner>,
    _not_send: PhantomData<*const ()>,
}

/// A thread-safe handle to a [`Connection`]: close it, ask whether it is active, add close
/// callbacks — from any goroutine or thread.
#[derive(Clone)]
pub struct ConnHandle {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnHandle").field("fd", &self.inner.fd()).finish()
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
        f.debug_struct("Connection")
            .field("fd", &self.inner.fd())
            .field("input", &self.inner.input().len())
            .field("active", &self.inner.is_active())
            .finish()
    }
}

impl Connection {
    pub(crate) fn from_inner(inner: Arc<ConnInner>) -> Connection {
        Connection { inner, _not_send: PhantomData }
    }

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
                let s = inp.peek(have)?;
                if let Some(i) = s[scanned..].iter().position(|&b| b == delim) {
                    let _ = s;
                    return inp.next(scanned + i + 1);
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

    /// `n` writable bytes at the end of the output, sent at the next flush; above the output
    /// cap (or the buffer's `MAX_MALLOC`) → `InvalidInput`.
    #[allow(clippy::mut_from_ref)]
    pub fn malloc(&self, n: usize) -> io::Result<&mut [u8]> {
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
        self.inner.output().write_binary(b)?;
        self.inner.check_output()
    }

    /// Appends a copy of `s`.
    pub fn write_string(&self, s: &str) -> io::Result<()> {
        self.write_binary(s.as_bytes())
    }

    /// Appends one byte.
    pub fn write_byte(&self, b: u8) -> io::Result<()> {
        self.inner.output().write_byte(b)?;
        self.inner.check_output()
    }

    /// Appends `data` as its own block, without copying.
    pub fn write_direct<B: AsRef<[u8]> + Send + 'static>(&self, data: B) -> io::Result<()> {
        self.inner.output().write_direct(data)?;
        self.inner.check_output()
    }

    /// Appends the bytes of `buf` (e.g. from [`slice`](Connection::slice)), without copying.
    pub fn append(&self, buf: LinkBuffer) -> io::Result<()> {
        self.inner.output().append(buf)?;
        self.inner.check_output()
    }

    /// Sends everything written so far: one `sendmsg` of all blocks, waiting for
    /// writability on `EAGAIN` (up to the write timeout).
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
    pub fn close(&self) {
        self.inner.close()
    }

    /// A `Send + Sync` handle to close this connection from anywhere.
    pub fn handle(&self) -> ConnHandle {
        ConnHandle { inner: self.inner.clone() }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        let s = self.sock();
        s.peer_addr()?.as_socket().ok_or_else(|| io::Error::other("not an internet socket"))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let s = self.sock();
        s.local_addr()?.as_socket().ok_or_else(|| io::Error::other("not an internet socket"))
    }

    fn sock(&self) -> std::mem::ManuallyDrop<socket2::Socket> {
        // SAFETY: the descriptor stays open while `self` lives; ManuallyDrop never closes it.
        std::mem::ManuallyDrop::new(unsafe {
            <socket2::Socket as std::os::fd::FromRawFd>::from_raw_fd(self.inner.fd())
        })
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

/// Runs one handler call, catching a panic. `Err` closes the connection.
fn call(c: &mut Connection, h: &Handler, what: &str) -> io::Result<()> {
    match panic::catch_unwind(AssertUnwindSafe(|| h(c))) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            Err(io::Error::other(format!("{what} panicked: {msg}")))
        }
    }
}

/// Calls the connection's own handler, else the loop's. The own one is taken out of its
/// cell for the call (no reference count traffic) and put back unless the handler set a new
/// one meanwhile.
fn call_handler(c: &ConnInner, lp: &LoopShared, conn: &mut Connection) -> io::Result<()> {
    match c.on_request.take() {
        None => call(conn, &lp.on_request, "on_request"),
        Some(h) => {
            let r = call(conn, &h, "on_request");
            let new = c.on_request.take();
            c.on_request.set(Some(new.unwrap_or(h)));
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
    let mut conn = Connection::from_inner(c.clone());
    let r = run(c, lp, &mut conn);
    // SAFETY: between handler calls no slice is alive; owner thread.
    unsafe {
        c.release_input();
        c.release_output();
    }
    match r {
        Ok(Done::Again) => {
            c.trig.requeue();
            super::sched::enqueue(c.clone());
            return true;
        }
        Ok(Done::Idle) => {
            c.busy.store(false, Ordering::Relaxed);
            arm_idle(c);
        }
        Ok(Done::Closed) => finalize(c, lp, &mut conn),
        Err(e) => {
            if !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::NotConnected
            ) {
                log::warn!(
                    "gonet reactor: connection {} (goroutine {}): {e}; closing it",
                    c.peer(),
                    crate::runtime::worker::current_goroutine_id().unwrap_or(0)
                );
            }
            finalize(c, lp, &mut conn)
        }
    }
    false
}

/// How a turn of the handler loop ended.
enum Done {
    /// No more input: the connection is idle.
    Idle,
    /// Closed, or the peer ended its stream.
    Closed,
    /// Input keeps coming: the turn is up.
    Again,
}

/// One turn of the handler loop; `Err`: close with a log.
fn run(c: &ConnInner, lp: &LoopShared, conn: &mut Connection) -> io::Result<Done> {
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
            conn.release();
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
        let out = c.output();
        if !out.is_empty() || out.malloc_len() > 0 {
            c.malloc_out.set(false); // the handler returned: its malloc'd slices are dead
            c.send_all()?;
        }
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
fn arm_idle(c: &Arc<ConnInner>) {
    let Some(t) = c.idle_timeout.get() else { return };
    c.idle_since.set(Some(Instant::now()));
    if !c.idle_armed.replace(true) {
        idle_timer(c.clone(), Instant::now() + t);
    }
}

fn idle_timer(c: Arc<ConnInner>, at: Instant) {
    timer::call_at(
        at,
        Box::new(move || {
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
                idle_timer(c, due);
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
/// callbacks exactly once, frees the buffers and drops the registration's reference.
fn finalize(c: &Arc<ConnInner>, lp: &Arc<LoopShared>, conn: &mut Connection) {
    c.busy.store(false, Ordering::Relaxed);
    if c.trig.state() == State::Closed {
        return;
    }
    c.closing.set();
    let Io::Server { fd, owner, epfd, .. } = &c.io else { unreachable!() };
    crate::netpoll::deregister(*epfd, *fd);
    c.trig.close();
    if let Some(h) = &lp.on_disconnect {
        if let Err(e) = call(conn, h, "on_disconnect") {
            log::warn!("gonet reactor: connection {}: {e}", c.peer());
        }
    }
    c.run_close_callbacks();
    // Drop what is buffered: skip the unread input, forget the unsent output.
    let inp = c.input();
    let _ = inp.skip(inp.len());
    // SAFETY: owner thread, no handler runs: no slice is alive.
    unsafe { (*c.output.get()).flush() };
    let out = c.output();
    let _ = out.skip(out.len());
    // SAFETY: owner thread, no handler runs: no slice is alive.
    unsafe {
        c.release_input();
        c.release_output();
    }
    lp.remove(c, *owner);
    if c.registered.swap(false, Ordering::AcqRel) {
        // SAFETY: the epoll registration held one reference made by `Arc::into_raw` in
        // `EventLoop::register` (the flag says it was not given back yet); it is deregistered
        // above on this (its worker's) thread, after every event of earlier polls was handled,
        // so no event can carry the pointer any more.
        unsafe { Arc::decrement_strong_count(Arc::as_ptr(c)) };
    }
}
