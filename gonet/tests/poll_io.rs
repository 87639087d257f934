//! Poll-based I/O on gonet's sockets: readiness wakes the future's waker, no edge is lost,
//! deadlines and close end a pending poll, a dropped future's waker is released; the tokio and
//! futures-io traits on top.

mod common;

use std::future::poll_fn;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::run;
use gonet::net::{TcpListener, TcpStream, UnixStream};

fn pair() -> (TcpStream, TcpStream) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(ln.local_addr().unwrap()).unwrap();
    let (s, _) = ln.accept().unwrap();
    (c, s)
}

#[test]
fn a_pending_read_is_woken_by_data_from_another_goroutine() {
    run(1, || {
        let (mut c, s) = pair();
        let (tx, rx) = gonet::chan::bounded::<()>(1);
        gonet::go(move || {
            rx.recv().unwrap();
            c.write_all(b"hello").unwrap();
            c
        });
        let mut polls = 0;
        let mut buf = [0u8; 16];
        let n = gonet::block_on(poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                // Let the writer go only once this read is pending.
                let r = s.poll_read(cx, &mut buf);
                assert!(r.is_pending(), "{r:?}");
                tx.try_send(()).ok();
                return Poll::Pending;
            }
            s.poll_read(cx, &mut buf)
        }))
        .unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(polls >= 2);
    });
}

#[test]
fn ping_pong_between_a_future_and_a_goroutine_loses_no_edge() {
    // A lost readiness edge leaves one side waiting for ever (the test times out).
    run(2, || {
        let (c, s) = pair();
        let peer = gonet::go(move || {
            let mut c = c;
            let mut b = [0u8; 1];
            for i in 0..20_000u32 {
                std::io::Read::read_exact(&mut c, &mut b).unwrap();
                assert_eq!(b[0], i as u8);
                c.write_all(&b).unwrap();
            }
        });
        gonet::block_on(async {
            let mut b = [0u8; 1];
            for i in 0..20_000u32 {
                let n = poll_fn(|cx| s.poll_write(cx, &[i as u8])).await.unwrap();
                assert_eq!(n, 1);
                let n = poll_fn(|cx| s.poll_read(cx, &mut b)).await.unwrap();
                assert_eq!((n, b[0]), (1, i as u8));
            }
        });
        peer.join().unwrap();
    });
}

#[test]
fn a_write_pending_on_a_full_buffer_resumes_when_the_peer_reads() {
    run(2, || {
        let (c, s) = pair();
        s.set_send_buffer_size(4096).unwrap();
        let total = 1 << 20;
        let reader = gonet::go(move || {
            let mut c = c;
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0;
            while got < total {
                let n = std::io::Read::read(&mut c, &mut buf).unwrap();
                assert!(n > 0);
                got += n;
            }
            got
        });
        let chunk = vec![7u8; 256 << 10];
        let pendings = gonet::block_on(async {
            let mut sent = 0;
            let mut pendings = 0;
            while sent < total {
                let want = (total - sent).min(chunk.len());
                sent += poll_fn(|cx| {
                    let r = s.poll_write(cx, &chunk[..want]);
                    pendings += r.is_pending() as usize;
                    r
                })
                .await
                .unwrap();
            }
            pendings
        });
        assert_eq!(reader.join().unwrap(), total);
        assert!(pendings > 0, "the send buffer never filled");
    });
}

#[test]
fn an_expired_read_deadline_ends_a_pending_poll_with_timed_out() {
    run(1, || {
        let (_c, s) = pair();
        s.set_read_deadline(Some(Instant::now() + Duration::from_millis(30))).unwrap();
        let mut buf = [0u8; 8];
        let e = gonet::block_on(poll_fn(|cx| s.poll_read(cx, &mut buf))).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // And at once once expired, without a wait.
        let e = gonet::block_on(poll_fn(|cx| s.poll_read(cx, &mut buf))).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    });
}

#[test]
fn close_ends_a_pending_poll() {
    run(2, || {
        let (_c, s) = pair();
        let s = Arc::new(s);
        let s2 = s.clone();
        let (tx, rx) = gonet::chan::bounded::<()>(1);
        gonet::go(move || {
            rx.recv().unwrap();
            s2.close().unwrap();
        });
        let mut buf = [0u8; 8];
        let mut first = true;
        let r = gonet::block_on(poll_fn(|cx| {
            let r = s.poll_read(cx, &mut buf);
            if first {
                first = false;
                assert!(r.is_pending());
                tx.send(()).unwrap();
            }
            r
        }));
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    });
}

/// Counts wakes; its `Arc` count tells whether anybody still holds a waker.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_futures_waker_is_released_with_the_socket_and_never_woken_after() {
    run(1, || {
        let (mut c, s) = pair();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut buf = [0u8; 8];
        // A future polled once, then dropped: its waker stays registered in the PollDesc.
        assert!(s.poll_read(&mut Context::from_waker(&waker), &mut buf).is_pending());
        drop(waker);
        assert_eq!(Arc::strong_count(&count), 2, "the socket holds the waker");
        drop(s); // close: the kick wakes (and so releases) the registered waker
        assert_eq!(Arc::strong_count(&count), 1, "the waker outlived the socket");
        let woken = count.0.load(Ordering::SeqCst);
        // A new socket reusing the PollDesc gets readiness; the old waker is not touched.
        let (c2, s2) = pair();
        c.write_all(b"x").ok();
        drop(c2);
        let mut b = [0u8; 1];
        let _ = std::io::Read::read(&mut &s2, &mut b);
        assert_eq!(count.0.load(Ordering::SeqCst), woken);
    });
}

/// Polls `s` for a read with `waker` until `Ready`, sleeping between polls.
fn read_with(s: &TcpStream, waker: &Waker, buf: &mut [u8]) -> usize {
    loop {
        match s.poll_read(&mut Context::from_waker(waker), buf) {
            Poll::Ready(r) => return r.unwrap(),
            Poll::Pending => gonet::time::sleep(Duration::from_millis(1)),
        }
    }
}

/// Waits (bounded) until `c` counts at least `n` wakes.
fn await_wakes(c: &Count, n: usize) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while c.0.load(Ordering::SeqCst) < n && Instant::now() < until {
        gonet::time::sleep(Duration::from_millis(1));
    }
    c.0.load(Ordering::SeqCst) >= n
}

#[test]
fn after_a_short_read_the_next_poll_waits_and_a_new_tasks_waker_is_the_one_woken() {
    // A short read arms the read waker (the next poll needs no syscall); a poll by another
    // task must still replace the waker, or the new task is never woken.
    run(1, || {
        let (mut c, s) = pair();
        let (a, b) = (Arc::new(Count(AtomicUsize::new(0))), Arc::new(Count(AtomicUsize::new(0))));
        let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
        let mut buf = [0u8; 64];
        c.write_all(b"one").unwrap();
        assert_eq!(read_with(&s, &wa, &mut buf), 3, "a short read");
        let woken_a = a.0.load(Ordering::SeqCst);
        assert!(s.poll_read(&mut Context::from_waker(&wa), &mut buf).is_pending());
        assert!(s.poll_read(&mut Context::from_waker(&wb), &mut buf).is_pending());
        c.write_all(b"two").unwrap();
        assert!(await_wakes(&b, 1), "the last task to poll was not woken by new data");
        assert_eq!(a.0.load(Ordering::SeqCst), woken_a, "the replaced waker was woken");
        assert_eq!(read_with(&s, &wb, &mut buf), 3);
        assert_eq!(&buf[..3], b"two");
    });
}

#[test]
fn the_end_of_stream_after_a_short_read_is_seen_without_another_edge() {
    // Data and FIN arrive together: one edge. The read of the data is short, which would arm
    // the waker for the next edge, but none comes: the next poll must still read the EOF.
    run(1, || {
        let (mut c, s) = pair();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut buf = [0u8; 64];
        assert!(s.poll_read(&mut Context::from_waker(&waker), &mut buf).is_pending());
        c.write_all(b"last").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(await_wakes(&count, 1), "the data did not wake the reader");
        assert_eq!(read_with(&s, &waker, &mut buf), 4, "a short read of the data");
        assert_eq!(read_with(&s, &waker, &mut buf), 0, "end of stream");
    });
}

#[test]
fn ping_pong_with_short_reads_loses_no_edge() {
    // Reads into a larger buffer than the message (each read is short, so it arms the waker
    // and the next poll takes the no-syscall path), the peer on another worker.
    run(2, || {
        let (c, s) = pair();
        let peer = gonet::go(move || {
            let mut c = c;
            let mut b = [0u8; 3];
            for i in 0..20_000u32 {
                std::io::Read::read_exact(&mut c, &mut b).unwrap();
                assert_eq!(b, [i as u8; 3]);
                c.write_all(&b).unwrap();
            }
        });
        gonet::block_on(async {
            let mut b = [0u8; 64];
            for i in 0..20_000u32 {
                let n = poll_fn(|cx| s.poll_write(cx, &[i as u8; 3])).await.unwrap();
                assert_eq!(n, 3);
                let mut got = 0;
                while got < 3 {
                    got += poll_fn(|cx| s.poll_read(cx, &mut b[got..])).await.unwrap();
                }
                assert_eq!(b[..3], [i as u8; 3]);
            }
        });
        peer.join().unwrap();
    });
}

#[test]
fn unix_streams_poll_too() {
    run(1, || {
        let (a, b) = UnixStream::pair().unwrap();
        let w = gonet::go(move || {
            gonet::time::sleep(Duration::from_millis(5));
            (&a).write_all(b"unix").unwrap();
            a
        });
        let mut buf = [0u8; 8];
        let n = gonet::block_on(poll_fn(|cx| b.poll_read(cx, &mut buf))).unwrap();
        assert_eq!(&buf[..n], b"unix");
        drop(w.join().unwrap());
        let n = gonet::block_on(poll_fn(|cx| b.poll_read(cx, &mut buf))).unwrap();
        assert_eq!(n, 0, "end of stream");
    });
}

#[cfg(feature = "tokio-io")]
#[test]
fn tokio_io_traits_echo() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    run(2, || {
        let (c, s) = pair();
        let echo = gonet::go(move || {
            gonet::block_on(async move {
                let mut s = s;
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    AsyncWriteExt::write_all(&mut s, &buf[..n]).await.unwrap();
                }
                AsyncWriteExt::shutdown(&mut s).await.unwrap();
            })
        });
        gonet::block_on(async move {
            let msg = vec![3u8; 100_000];
            let (mut r, mut w) = tokio::io::split(c);
            let writer = async {
                w.write_all(&msg).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let reader = r.read_to_end(&mut back);
            let (_, n) = futures_join(writer, reader).await;
            assert_eq!(n.unwrap(), msg.len());
            assert_eq!(back, msg);
        });
        echo.join().unwrap();
    });
}

/// Polls two futures to completion on one task.
#[cfg(feature = "tokio-io")]
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

#[cfg(feature = "futures-io")]
#[test]
fn futures_io_traits_read_and_write() {
    use futures_io::{AsyncRead, AsyncWrite};
    use std::pin::Pin;
    run(1, || {
        let (mut c, mut s) = pair();
        let n = gonet::block_on(poll_fn(|cx| Pin::new(&mut c).poll_write(cx, b"futures"))).unwrap();
        assert_eq!(n, 7);
        let mut buf = [0u8; 16];
        let n = gonet::block_on(poll_fn(|cx| Pin::new(&mut s).poll_read(cx, &mut buf))).unwrap();
        assert_eq!(&buf[..n], b"futures");
        gonet::block_on(poll_fn(|cx| Pin::new(&mut c).poll_close(cx))).unwrap();
        let n = gonet::block_on(poll_fn(|cx| Pin::new(&mut s).poll_read(cx, &mut buf))).unwrap();
        assert_eq!(n, 0);
    });
}
