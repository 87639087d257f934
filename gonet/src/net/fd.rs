//! `NetFd`: a non-blocking socket with its `PollDesc`, the read/write/accept/connect retry
//! loops, deadlines and timeouts, and close-while-blocked (Go's `internal/poll.FD`).
//!
//! # The reference word (Go's `fdMutex`, reduced)
//!
//! `refs` counts the users of the descriptor: one reference for the owner plus one for each
//! operation in flight, and a `CLOSED` bit. An operation takes a reference (failing if
//! `CLOSED` is set) and drops it when it returns. `close` sets `CLOSED` once, wakes every
//! waiter through the `PollDesc` and drops the owner's reference. Whoever drops the count to
//! zero deregisters the descriptor and frees the `PollDesc` — so no operation ever touches a
//! descriptor after it was released.
//!
//! # The number stays ours until drop (I/O safety)
//!
//! `AsFd`/`AsRawFd` hand out the number without a reference, and a `BorrowedFd` may live
//! across a concurrent `close(&self)`. So the *number* is released only when the `NetFd` is
//! dropped (or given away by `into_raw`), never by `close`: when the last reference of a
//! closed `NetFd` goes (`destroy`), the socket is swapped out of the number with
//! `dup3(placeholder, fd)` — the placeholder is one process-wide unconnected `AF_UNIX`
//! stream socket, so any I/O through the number fails (`ENOTCONN`) — which closes the socket
//! file at once (the peer sees the close, as after `close(2)`). `Drop` then `close(2)`s the
//! number. Invariants:
//! 1. From creation to drop, `fd` names this socket or the placeholder, never a file that
//!    somebody else opened, whatever the interleaving of `close`, operations and borrows.
//! 2. The epoll registration is removed (`PollDesc::free`, `EPOLL_CTL_DEL` by number) before
//!    the `dup3`, while the number still names the socket; the freed `PollDesc`'s new
//!    incarnation makes any event or timer already in flight stale. Nothing touches the
//!    `PollDesc` after `destroy` (every path that would takes a reference first, which fails
//!    once `CLOSED` is set), so its reuse by another socket is invisible here.
//! 3. If the placeholder cannot be made (descriptors exhausted at first use), `destroy`
//!    shuts the socket down instead (`shutdown(SHUT_RDWR)`: the peer sees the end of the
//!    stream, blocked peers wake) and the socket itself stays open until drop.
//!
//! # Readers and writers
//!
//! One reader and one writer may be in flight at once (from two goroutines sharing `&T`); more
//! readers (or writers) queue on `rlock` (`wlock`), goroutine-aware locks, which also keeps a
//! `PollDesc` direction to a single waiter. A queued operation finds `CLOSED` once it gets the
//! lock.
//!
//! # Deadlines and timeouts
//!
//! A deadline (Go) is stored in the `PollDesc` and applies to the pending and every later call
//! until changed. A timeout (std) applies per call: when one is set, each call sets the
//! `PollDesc` deadline to the earlier of the user's deadline and now + timeout.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use socket2::{SockAddr, Socket};

use crate::netpoll::{closed_error, Dir, PollDesc};
use crate::sync::RawMutex;
use crate::time::{from_nanos, nanos_now, to_nanos};

const CLOSED: usize = 1 << (usize::BITS - 1);

pub(crate) struct NetFd {
    fd: RawFd,
    pd: &'static PollDesc,
    refs: AtomicUsize,
    rlock: RawMutex,
    wlock: RawMutex,
    /// Per direction: the user's deadline (ns, 0 = none) and per-call timeout (ns, 0 = none).
    deadline: [AtomicU64; 2],
    timeout: [AtomicU64; 2],
    /// A stream socket: a short read means its receive queue was empty at that moment.
    stream: bool,
    /// Set by a short read on a stream socket (under `rlock`): the next read parks first
    /// instead of issuing a `recv` that would only say `EAGAIN` (see `read`).
    drained: AtomicBool,
}

/// An operation's reference and direction lock; released on drop.
struct Op<'a> {
    fd: &'a NetFd,
    lock: &'a RawMutex,
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        self.lock.unlock();
        self.fd.decref();
    }
}

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl NetFd {
    /// Takes ownership of a socket and makes it non-blocking.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<NetFd> {
        let s = Socket::from(fd);
        s.set_nonblocking(true)?;
        Ok(NetFd::from_nonblocking(s.into(), false))
    }

    /// Wraps a socket already in non-blocking mode; `stream` enables the drained-read hint.
    pub(crate) fn from_nonblocking(fd: OwnedFd, stream: bool) -> NetFd {
        let fd = fd.into_raw_fd();
        NetFd {
            fd,
            pd: PollDesc::alloc(fd),
            refs: AtomicUsize::new(1),
            rlock: RawMutex::new(),
            wlock: RawMutex::new(),
            deadline: [AtomicU64::new(0), AtomicU64::new(0)],
            timeout: [AtomicU64::new(0), AtomicU64::new(0)],
            stream,
            drained: AtomicBool::new(false),
        }
    }

    /// A new non-blocking, close-on-exec socket.
    pub(crate) fn socket(
        domain: socket2::Domain,
        ty: socket2::Type,
        proto: Option<socket2::Protocol>,
    ) -> io::Result<NetFd> {
        let s = Socket::new(domain, ty.nonblocking().cloexec(), proto)?;
        Ok(NetFd::from_nonblocking(s.into(), ty == socket2::Type::STREAM))
    }

    /// The descriptor, borrowed as a `socket2::Socket` for option calls.
    pub(crate) fn sock(&self) -> ManuallyDrop<Socket> {
        // SAFETY: the descriptor stays open while `self` lives (the owner reference), and
        // `ManuallyDrop` keeps the borrowed `Socket` from closing it.
        ManuallyDrop::new(unsafe { Socket::from_raw_fd(self.fd) })
    }

    /// The descriptor for a call outside the read/write paths (an option, an address, a dup):
    /// holds a reference for the duration of the call, and fails once the socket is closed,
    /// so that such a call never reaches a descriptor number that was released and reused.
    pub(crate) fn checked(&self) -> io::Result<SockRef<'_>> {
        self.incref()?;
        Ok(SockRef { fd: self, sock: self.sock() })
    }

    fn incref(&self) -> io::Result<()> {
        // A CAS loop, not `fetch_add` + undo: once the count has dropped to zero after close,
        // a transient increment and its undo would release the descriptor a second time.
        let mut cur = self.refs.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return Err(closed_error());
            }
            let next = cur + 1;
            match self.refs.compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(c) => cur = c,
            }
        }
    }

    fn decref(&self) {
        if self.refs.fetch_sub(1, Ordering::AcqRel) == CLOSED | 1 {
            self.destroy();
        }
    }

    /// The last reference is gone after close: deregister and free the `PollDesc`, and swap
    /// the socket out of the number (invariants 1-3 at the top). The number itself is closed
    /// by `Drop`.
    fn destroy(&self) {
        self.pd.free();
        match placeholder() {
            // SAFETY: `dup3` atomically makes our number name the placeholder, closing the
            // socket file it named; both are descriptors we own (the placeholder lives for
            // the whole process) and no operation uses the socket any more (the count reached
            // zero after CLOSED was set, so none can start).
            Some(ph) if unsafe { libc::dup3(ph, self.fd, libc::O_CLOEXEC) } >= 0 => {}
            _ => {
                // SAFETY: plain syscall on a descriptor we own.
                unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
            }
        }
    }

    /// Starts an operation in direction `d`: takes its lock and a reference, applies a per-call
    /// timeout, and fails at once on close or an expired deadline.
    fn begin(&self, d: Dir) -> io::Result<Op<'_>> {
        let lock = if d == Dir::Read { &self.rlock } else { &self.wlock };
        lock.lock();
        if let Err(e) = self.incref() {
            lock.unlock();
            return Err(e);
        }
        let op = Op { fd: self, lock };
        let t = self.timeout[d as usize].load(Ordering::Relaxed);
        if t != 0 {
            let user = self.deadline[d as usize].load(Ordering::Relaxed);
            let by = nanos_now().saturating_add(t);
            let eff = if user == 0 { by } else { user.min(by) };
            self.pd.set_deadline(d, Some(from_nanos(eff)));
        }
        self.pd.check(d)?;
        Ok(op)
    }

    /// Runs `f` until it succeeds, retrying on `EINTR` and waiting for readiness on `EAGAIN`.
    #[inline]
    fn retry(&self, d: Dir, mut f: impl FnMut() -> isize) -> io::Result<usize> {
        loop {
            match cvt(f()) {
                Ok(n) => return Ok(n),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => self.pd.wait(d)?,
                    _ => return Err(e),
                },
            }
        }
    }

    /// Reads what is available, parking until something is.
    ///
    /// The drained hint: on a stream socket, a read that returned less than asked for emptied
    /// the receive queue, so the next read on a goroutine waits for readiness *before* its
    /// first `recv` — saving the `recv` that would only return `EAGAIN`, one syscall per
    /// request in a request/response loop. This loses nothing: data that arrived after the
    /// short read raised an edge-triggered event, which is pending in the `PollDesc`
    /// (`READY`) or on its way from epoll, and the wait consumes it at once. The exception is
    /// the end of the stream: a short read can consume the peer's FIN together with the last
    /// data, after which no edge ever comes, so once the `PollDesc` has seen `EPOLLRDHUP` (or
    /// a hang-up or error) the hint is ignored.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _op = self.begin(Dir::Read)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if self.drained.load(Ordering::Relaxed) {
            self.drained.store(false, Ordering::Relaxed);
            // Unless the peer's FIN (or an error) was reported: the short read may have
            // consumed it along with the last data, and no further edge would come.
            if crate::runtime::worker::in_goroutine() && !self.pd.hung_up() {
                self.pd.wait(Dir::Read)?;
            }
        }
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes for the duration of the call.
        let n = self.retry(Dir::Read, || unsafe {
            crate::sys::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0)
        })?;
        if self.stream && n > 0 && n < buf.len() {
            self.drained.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Like `read`, without consuming the data (`MSG_PEEK`).
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _op = self.begin(Dir::Read)?;
        if buf.is_empty() {
            return Ok(0); // as `read`: a zero-length recv would wait for data
        }
        // SAFETY: `buf` is a writable buffer of `buf.len()` bytes for the duration of the call.
        self.retry(Dir::Read, || unsafe {
            crate::sys::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK)
        })
    }

    pub(crate) fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let _op = self.begin(Dir::Read)?;
        let n = bufs.len().min(1024) as libc::c_int;
        // SAFETY: `IoSliceMut` is ABI-compatible with `iovec`; each points to writable memory.
        self.retry(Dir::Read, || unsafe { crate::sys::readv(self.fd, bufs.as_ptr().cast(), n) })
    }

    /// Writes all of `buf` (Go's semantics), returning early only on error. An error after
    /// part of `buf` was written returns the count; the next call reports the error.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let _op = self.begin(Dir::Write)?;
        let mut done = 0;
        while done < buf.len() {
            let rest = &buf[done..];
            // SAFETY: `rest` is readable for `rest.len()` bytes; MSG_NOSIGNAL turns a write to a
            // closed peer into EPIPE instead of SIGPIPE.
            let r = self.retry(Dir::Write, || unsafe {
                crate::sys::send(self.fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL)
            });
            match r {
                Ok(n) => done += n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// One `writev` (retried until something is written); `write_all_vectored` loops on it.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let _op = self.begin(Dir::Write)?;
        let mut msg: libc::msghdr = unsafe_zeroed_msghdr();
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(1024);
        // SAFETY: `msg` points to `bufs`, valid iovecs (IoSlice is ABI-compatible with iovec).
        self.retry(Dir::Write, || unsafe { crate::sys::sendmsg(self.fd, &msg, libc::MSG_NOSIGNAL) })
    }

    /// A read-side system call other than `recv` (a `splice` out of the socket) under the read
    /// rules: retried on `EINTR`, parked on `EAGAIN`. It may leave data queued, so the drained
    /// hint is cleared.
    pub(crate) fn read_with(&self, f: impl FnMut() -> isize) -> io::Result<usize> {
        let _op = self.begin(Dir::Read)?;
        self.drained.store(false, Ordering::Relaxed);
        self.retry(Dir::Read, f)
    }

    /// A write-side system call other than `send` (`splice` into the socket, `sendfile`) under
    /// the write rules.
    pub(crate) fn write_with(&self, f: impl FnMut() -> isize) -> io::Result<usize> {
        let _op = self.begin(Dir::Write)?;
        self.retry(Dir::Write, f)
    }

    /// Runs an operation in direction `d` under the fd rules: `f` is retried on `EINTR` and
    /// after readiness on `EAGAIN` (for calls that build their own result type).
    pub(crate) fn with<T>(&self, d: Dir, mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        let _op = self.begin(d)?;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => self.pd.wait(d)?,
                    _ => return Err(e),
                },
            }
        }
    }

    /// Receives one datagram (or stream bytes) and the sender's address.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.with(Dir::Read, || self.sock().recv_from(as_uninit(buf)))
    }

    /// Sends one datagram to `addr`.
    pub(crate) fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        self.with(Dir::Write, || self.sock().send_to_with_flags(buf, addr, libc::MSG_NOSIGNAL))
    }

    /// Sends one datagram on a connected socket.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let _op = self.begin(Dir::Write)?;
        // SAFETY: `buf` is readable for `buf.len()` bytes.
        self.retry(Dir::Write, || unsafe {
            crate::sys::send(self.fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        })
    }

    /// Accepts a connection: a new non-blocking, close-on-exec socket and the peer's address.
    /// `ECONNABORTED` (the peer gave up first) is retried; `EMFILE`/`ENFILE` are returned at
    /// once, leaving the listener usable.
    pub(crate) fn accept(&self) -> io::Result<(NetFd, SockAddr)> {
        let _op = self.begin(Dir::Read)?;
        loop {
            // SAFETY: `try_init` hands a zeroed sockaddr_storage and its length to accept4.
            let r = unsafe {
                SockAddr::try_init(|storage, len| {
                    let fd = libc::accept4(
                        self.fd,
                        storage.cast(),
                        len,
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    );
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(OwnedFd::from_raw_fd(fd))
                })
            };
            match r {
                Ok((fd, addr)) => return Ok((NetFd::from_nonblocking(fd, true), addr)),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) | Some(libc::ECONNABORTED) => {}
                    Some(libc::EAGAIN) => {
                        crate::runtime::wait::reason(crate::runtime::wait::Wait::Accept {
                            fd: self.fd,
                        });
                        self.pd.wait(Dir::Read)?
                    }
                    // EMFILE/ENFILE and the rest: returned as the OS error itself, so callers
                    // can match `raw_os_error()` ("Too many open files (os error 24)").
                    _ => return Err(e),
                },
            }
        }
    }

    /// Connects, waiting for completion (bounded by the write deadline, if any).
    pub(crate) fn connect(&self, addr: &SockAddr) -> io::Result<()> {
        let _op = self.begin(Dir::Write)?;
        match self.sock().connect(addr) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS) | Some(libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
        loop {
            self.pd.wait(Dir::Write)?;
            if let Some(e) = self.sock().take_error()? {
                return Err(e);
            }
            match self.sock().peer_addr() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the deadline of direction `d` (Go semantics). Fails once the socket is closed: its
    /// `PollDesc` may already serve another socket.
    pub(crate) fn set_deadline(&self, d: Dir, at: Option<Instant>) -> io::Result<()> {
        self.incref()?;
        self.deadline[d as usize].store(at.map_or(0, to_nanos), Ordering::Relaxed);
        self.pd.set_deadline(d, at);
        self.decref();
        Ok(())
    }

    /// Sets the per-call timeout of direction `d` (std semantics). A zero duration is an error,
    /// as in std.
    pub(crate) fn set_timeout(&self, d: Dir, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let ns = t.map_or(0, |t| t.as_nanos().clamp(1, u64::MAX as u128 / 2) as u64);
        self.incref()?;
        self.timeout[d as usize].store(ns, Ordering::Relaxed);
        if ns == 0 {
            let user = self.deadline[d as usize].load(Ordering::Relaxed);
            self.pd.set_deadline(d, (user != 0).then(|| from_nanos(user)));
        }
        self.decref();
        Ok(())
    }

    /// The per-call timeout of direction `d`.
    pub(crate) fn timeout(&self, d: Dir) -> Option<Duration> {
        let ns = self.timeout[d as usize].load(Ordering::Relaxed);
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    /// Closes the socket: every blocked operation fails with a "closed" error and the
    /// descriptor is released when the last one has returned. A second close is an error.
    pub(crate) fn close(&self) -> io::Result<()> {
        let mut cur = self.refs.load(Ordering::Acquire);
        loop {
            if cur & CLOSED != 0 {
                return Err(closed_error());
            }
            match self.refs.compare_exchange(cur, cur | CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        self.pd.evict();
        self.decref();
        Ok(())
    }

    /// Gives up ownership of the descriptor without closing it (-1 if it was closed already:
    /// then the `PollDesc` is gone and the number, which names the placeholder, is closed).
    pub(crate) fn into_raw(self) -> RawFd {
        let this = ManuallyDrop::new(self);
        if this.refs.load(Ordering::Acquire) & CLOSED != 0 {
            // SAFETY: we own the number, and `self` is consumed: nobody can use it after.
            unsafe { libc::close(this.fd) };
            return -1;
        }
        this.pd.free();
        this.fd
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }
}

/// A checked borrow of the descriptor (see [`NetFd::checked`]).
pub(crate) struct SockRef<'a> {
    fd: &'a NetFd,
    sock: ManuallyDrop<Socket>,
}

impl std::ops::Deref for SockRef<'_> {
    type Target = Socket;
    fn deref(&self) -> &Socket {
        &self.sock
    }
}

impl Drop for SockRef<'_> {
    fn drop(&mut self) {
        self.fd.decref();
    }
}

impl Drop for NetFd {
    fn drop(&mut self) {
        // No operation is in flight (they borrow `self`), so the count is the owner's alone.
        if *self.refs.get_mut() & CLOSED == 0 {
            *self.refs.get_mut() = CLOSED;
            self.pd.evict();
            self.pd.free();
        }
        // SAFETY: the number is ours (invariant 1) and `self` is going away: it names the
        // socket (never closed) or the placeholder (closed before), and nobody can reach it
        // through `self` any more.
        unsafe { libc::close(self.fd) };
    }
}

/// The process-wide placeholder socket (see the top of the file): unconnected, never
/// registered with epoll; `None` if it could not be made (then `destroy` shuts down instead).
fn placeholder() -> Option<RawFd> {
    static PH: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    PH.get_or_init(|| {
        Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM.cloexec(), None)
            .ok()
            .map(Into::into)
    })
    .as_ref()
    .map(std::os::fd::AsRawFd::as_raw_fd)
}

fn unsafe_zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
    unsafe { std::mem::zeroed() }
}

fn as_uninit(buf: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: initialised bytes are valid `MaybeUninit<u8>`, and the callee only writes bytes.
    unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}

// Poll-based I/O for futures: `NetFd::poll_io` and the async I/O traits (a child module, for
// the descriptor's private state).
#[path = "poll_io.rs"]
pub(crate) mod poll_io;
