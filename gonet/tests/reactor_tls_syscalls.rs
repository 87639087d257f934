//! System calls per request on the reactor's TLS path, counted: this test binary defines the
//! C library's `syscall` (through which gonet makes its per-request calls, `sys.rs`) and its
//! socket read and write functions (`recv`, `read`, `send`, `sendmsg`, `write`, `writev`)
//! itself, so every call gonet makes lands here; each read or write counts (on the server's
//! one worker thread, from its first connection on) and issues the system call (x86-64 only:
//! the call is made with the `syscall` instruction, as the C library would). A client on
//! another thread (not counted) runs echo rounds over one connection after a warm-up.
//!
//! An echo of one record each way takes one read of ciphertext and one `sendmsg` of the
//! encrypted reply, whatever the record's size: the reactor reads up to 32 KiB at once into
//! its own buffer and hands rustls the bytes from memory. Fed from the socket, rustls reads at
//! most 4 KiB into its empty deframer buffer, so a 4 KiB echo (one 4123-byte record) took two
//! reads and a 16 KiB one five.

#![cfg(target_arch = "x86_64")]

#[allow(dead_code)]
#[path = "../../examples/reactor_tls_echo.rs"]
mod reactor_tls_echo;

mod common;
mod reactor_util;

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gonet::reactor::{Connection, EventLoop};
use reactor_util::Server;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

thread_local! {
    /// This thread's calls are counted (the server's worker sets it).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}
static READS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);

fn note(counter: &AtomicU64) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The system call's result in the C library's convention (-1 and `errno` on failure).
fn ret(r: libc::c_long) -> libc::ssize_t {
    if (-4095..0).contains(&r) {
        // SAFETY: this thread's errno.
        unsafe { *libc::__errno_location() = -r as libc::c_int };
        return -1;
    }
    r as libc::ssize_t
}

/// System call `n` with six arguments, made directly (not through `syscall`, which this
/// binary defines). Returns the kernel's result (`-errno` on failure).
///
/// # Safety
/// The arguments are valid for system call `n`.
unsafe fn raw(n: libc::c_long, a: [libc::c_long; 6]) -> libc::c_long {
    let r: libc::c_long;
    // SAFETY: the caller's obligation; the `syscall` instruction clobbers rcx and r11 only.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n => r,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    r
}

/// Whether system call `n` reads from or writes to a socket, and which counter it counts in.
fn counter_of(n: libc::c_long) -> Option<&'static AtomicU64> {
    match n {
        libc::SYS_recvfrom | libc::SYS_recvmsg | libc::SYS_read | libc::SYS_readv => Some(&READS),
        libc::SYS_sendto | libc::SYS_sendmsg | libc::SYS_write | libc::SYS_writev => Some(&WRITES),
        _ => None,
    }
}

/// The C library's `syscall(2)`, declared with its six argument registers: every caller
/// (gonet's `sys.rs`, the standard library's futex calls) passes its arguments in them, and
/// a call that passes fewer leaves unused registers the kernel does not read.
#[no_mangle]
extern "C" fn syscall(
    n: libc::c_long,
    a0: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
) -> libc::c_long {
    if let Some(c) = counter_of(n) {
        note(c);
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    ret(unsafe { raw(n, [a0, a1, a2, a3, a4, a5]) }) as libc::c_long
}

/// `syscall` with the arguments of a libc wrapper (not counted again).
fn call(n: libc::c_long, a: &[libc::c_long]) -> libc::ssize_t {
    let mut all = [0; 6];
    all[..a.len()].copy_from_slice(a);
    // SAFETY: the wrapper's caller's arguments, passed on unchanged.
    ret(unsafe { raw(n, all) })
}

// The definitions below take the place of the C library's for this binary (the executable's
// symbols come first); the C library's own internal calls do not come here.

#[no_mangle]
extern "C" fn recv(
    fd: libc::c_int,
    buf: *mut libc::c_void,
    len: libc::size_t,
    flags: libc::c_int,
) -> libc::ssize_t {
    note(&READS);
    // `recv` is `recvfrom` without an address.
    call(libc::SYS_recvfrom, &[fd as _, buf as _, len as _, flags as _, 0, 0])
}

#[no_mangle]
extern "C" fn read(fd: libc::c_int, buf: *mut libc::c_void, len: libc::size_t) -> libc::ssize_t {
    note(&READS);
    call(libc::SYS_read, &[fd as _, buf as _, len as _])
}

#[no_mangle]
extern "C" fn send(
    fd: libc::c_int,
    buf: *const libc::c_void,
    len: libc::size_t,
    flags: libc::c_int,
) -> libc::ssize_t {
    note(&WRITES);
    // `send` is `sendto` without an address.
    call(libc::SYS_sendto, &[fd as _, buf as _, len as _, flags as _, 0, 0])
}

#[no_mangle]
extern "C" fn sendmsg(
    fd: libc::c_int,
    msg: *const libc::msghdr,
    flags: libc::c_int,
) -> libc::ssize_t {
    note(&WRITES);
    call(libc::SYS_sendmsg, &[fd as _, msg as _, flags as _])
}

#[no_mangle]
extern "C" fn write(fd: libc::c_int, buf: *const libc::c_void, len: libc::size_t) -> libc::ssize_t {
    note(&WRITES);
    call(libc::SYS_write, &[fd as _, buf as _, len as _])
}

#[no_mangle]
extern "C" fn writev(fd: libc::c_int, iov: *const libc::iovec, cnt: libc::c_int) -> libc::ssize_t {
    note(&WRITES);
    call(libc::SYS_writev, &[fd as _, iov as _, cnt as _])
}

const WARMUP: usize = 500;
const ROUNDS: usize = 5_000;

/// Reads and writes on the server per echo round of `size` bytes, over `s`.
fn per_request(s: &mut (impl Read + Write), size: usize) -> (f64, f64) {
    let msg = vec![b'x'; size];
    let mut got = vec![0u8; size];
    let mut round = || {
        s.write_all(&msg).unwrap();
        s.flush().unwrap();
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    };
    for _ in 0..WARMUP {
        round();
    }
    let (r0, w0) = (READS.load(Ordering::Relaxed), WRITES.load(Ordering::Relaxed));
    for _ in 0..ROUNDS {
        round();
    }
    let (r1, w1) = (READS.load(Ordering::Relaxed), WRITES.load(Ordering::Relaxed));
    ((r1 - r0) as f64 / ROUNDS as f64, (w1 - w0) as f64 / ROUNDS as f64)
}

#[test]
fn one_read_and_one_sendmsg_per_tls_echo() {
    common::within(Duration::from_secs(120), || {
        let (cert, key, _) = reactor_tls_echo::self_signed().unwrap();
        let cfg = reactor_tls_echo::server_config(cert.clone(), key, &[]).unwrap();
        let lp = EventLoop::builder(reactor_tls_echo::echo)
            .on_connect(|_c: &mut Connection| {
                COUNTED.with(|c| c.set(true));
                Ok(())
            })
            .tls(cfg)
            .build();
        let srv = Server::start(lp, 1);
        let ccfg =
            reactor_tls_echo::tls_echo::client_config(&[cert], &[&rustls::version::TLS13]).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut s = StreamOwned::new(ClientConnection::new(ccfg, name).unwrap(), srv.connect());
        // One record each way (16 KiB is the largest record's plaintext).
        let sizes = [64, 4096, 16 * 1024];
        let got: Vec<(f64, f64)> = sizes.iter().map(|&n| per_request(&mut s, n)).collect();
        drop(s);
        srv.stop().unwrap();

        for (&size, &(reads, writes)) in sizes.iter().zip(&got) {
            eprintln!("TLS 1.3 echo of {size} B: {reads:.3} reads, {writes:.3} writes per request");
        }
        for (&size, &(reads, writes)) in sizes.iter().zip(&got) {
            // A rare request split by the kernel may take a second read; two reads per request
            // (rustls fed from the socket) is far above this.
            assert!(reads <= 1.05, "{reads} reads per {size} B request (one record)");
            assert!(writes <= 1.05, "{writes} writes per {size} B reply (one record)");
            assert!(reads >= 0.95 && writes >= 0.95, "the calls were not counted: {got:?}");
        }
    });
}
