//! After `close(&self)`, a net type's descriptor number stays reserved until the value is
//! dropped: it names a placeholder socket on which every I/O fails, never a socket opened
//! later that reused the number, and a `BorrowedFd` taken before the close stays valid
//! (I/O safety). The socket itself is released at the close (its peer sees it at once), and
//! the number at drop.
//!
//! Descriptor numbers are process-wide, so the tests take a lock: one at a time, also when
//! the file runs under `cargo test` (threads in one process).

mod common;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, RawFd};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use gonet::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

const LIMIT: Duration = Duration::from_secs(60);

static SERIAL: StdMutex<()> = StdMutex::new(());

fn serial(f: impl FnOnce() + Send + 'static) {
    common::within(LIMIT, move || {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        f();
    });
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The (device, inode) of the file `fd` names.
fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: `st` is a plain C struct that fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// Open sockets of the process (a `PollDesc` keeps the eventfds a plain thread's wait made,
/// for its next incarnation: not counted).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Closes `close`'s socket (number `n`) and checks the rules of the file.
fn check_closed(what: &str, n: RawFd, close: impl FnOnce() -> std::io::Result<()>) -> (u64, u64) {
    let orig = file_id(n).unwrap();
    close().unwrap();
    assert!(is_open(n), "{what}: the number was released by close");
    let now = file_id(n).unwrap();
    assert_ne!(now, orig, "{what}: the number still names the closed socket");
    // SAFETY: a send of one byte from a valid buffer; the result is only inspected.
    let r =
        unsafe { libc::send(n, b"x".as_ptr().cast(), 1, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    assert_eq!(r, -1, "{what}: I/O through the closed number succeeded");
    now
}

#[test]
fn a_closed_stream_never_reaches_a_socket_that_reused_its_number() {
    serial(|| {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
        let (mut s, _) = ln.accept().unwrap();
        let n = c.as_raw_fd();
        let borrowed = c.as_fd(); // taken before the close, used after it
        let placeholder = check_closed("TcpStream", n, || c.close());
        // The peer sees the close at once, not at the drop.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0, "the peer did not see the close");
        // New sockets can never get the number while `c` lives.
        let news: Vec<std::net::UdpSocket> =
            (0..64).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        assert!(news.iter().all(|u| u.as_raw_fd() != n), "a new socket got the closed number");
        assert!(is_open(borrowed.as_raw_fd()));
        assert_eq!(file_id(borrowed.as_raw_fd()), Some(placeholder));
        assert!(c.peer_addr().is_err(), "a method of the closed stream reached a socket");
        assert!(c.close().is_err(), "a second close succeeded");
        drop(news);
        drop(c);
        assert!(!is_open(n), "the number was not released at drop");
    });
}

/// Every net type follows the rule; the placeholder is shared, one socket for the process.
#[test]
fn every_net_type_keeps_its_number_until_drop() {
    serial(|| {
        let dir = std::env::temp_dir().join(format!("gonet-close-fd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tl = TcpListener::bind("127.0.0.1:0").unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (us, _us2) = UnixStream::pair().unwrap();
        let ul = UnixListener::bind(dir.join("l.sock")).unwrap();
        let ud = UnixDatagram::unbound().unwrap();
        let ns = [tl.as_raw_fd(), u.as_raw_fd(), us.as_raw_fd(), ul.as_raw_fd(), ud.as_raw_fd()];
        let ph = [
            check_closed("TcpListener", ns[0], || tl.close()),
            check_closed("UdpSocket", ns[1], || u.close()),
            check_closed("UnixStream", ns[2], || us.close()),
            check_closed("UnixListener", ns[3], || ul.close()),
            check_closed("UnixDatagram", ns[4], || ud.close()),
        ];
        assert!(ph.iter().all(|p| *p == ph[0]), "not one shared placeholder: {ph:?}");
        drop((tl, u, us, ul, ud));
        for n in ns {
            assert!(!is_open(n), "number {n} was not released at drop");
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A close while a read is blocked on another thread: the reader fails as closed, the number
/// stays reserved until drop; `into_raw_fd` of a closed socket is -1 and leaks nothing.
#[test]
fn close_during_a_read_and_into_raw_fd_after_close() {
    serial(|| {
        // The placeholder is made at the first close in the process, and kept.
        UdpSocket::bind("127.0.0.1:0").unwrap().close().unwrap();
        let before = open_sockets();
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::sync::Arc::new(TcpStream::connect(ln.local_addr().unwrap()).unwrap());
        let (_s, _) = ln.accept().unwrap();
        let n = c.as_raw_fd();
        let c2 = c.clone();
        let reader = std::thread::spawn(move || (&*c2).read(&mut [0u8; 8]));
        std::thread::sleep(Duration::from_millis(50)); // let it block
        let orig = file_id(n).unwrap();
        c.close().unwrap();
        // The reader's reference keeps the socket until it returns; the number stays ours.
        assert!(is_open(n), "the number was released by close");
        let r = reader.join().unwrap();
        assert!(r.as_ref().is_err_and(gonet::net::is_closed), "the reader got {r:?}");
        assert!(is_open(n), "the number was released when the reader returned");
        assert_ne!(file_id(n).unwrap(), orig, "the last reference kept the socket");
        let c = std::sync::Arc::try_unwrap(c).unwrap();
        assert_eq!(c.into_raw_fd(), -1);
        assert!(!is_open(n), "into_raw_fd of a closed socket kept the number");
        drop((ln, _s));
        assert_eq!(open_sockets(), before, "sockets leaked");
    });
}
