//! Channel semantics: rendezvous and buffered sends, FIFO order, disconnection both ways,
//! timeouts, iterators, errors and an MPMC stress test, on goroutines.

mod common;
use common::{run, within};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gonet::chan::{
    self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

#[test]
fn ends_are_send_sync_and_clone() {
    fn check<X: Send + Sync + Clone>() {}
    check::<chan::Sender<String>>();
    check::<chan::Receiver<String>>();
}

#[test]
fn rendezvous_send_completes_only_with_a_receive() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        assert_eq!(tx.capacity(), Some(0));
        assert!(tx.is_full() && rx.is_empty());
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));

        let sent = Arc::new(AtomicBool::new(false));
        let s = sent.clone();
        let h = gonet::go(move || {
            tx.send(7).unwrap();
            s.store(true, Ordering::SeqCst);
        });
        // Whatever the sender does meanwhile, its send cannot complete without a receive.
        for _ in 0..20 {
            gonet::time::sleep(Duration::from_millis(2));
            assert!(!sent.load(Ordering::SeqCst), "send completed before any receive");
        }
        assert_eq!(rx.len(), 0, "a rendezvous channel buffers nothing");
        assert_eq!(rx.recv(), Ok(7));
        h.join().unwrap();
        assert!(sent.load(Ordering::SeqCst));
    });
}

#[test]
fn rendezvous_receiver_waiting_first_gets_the_value() {
    run(1, || {
        let (tx, rx) = chan::bounded::<String>(0);
        let h = gonet::go(move || rx.recv().unwrap());
        gonet::time::sleep(Duration::from_millis(10)); // let the receiver block first
                                                       // A receiver is waiting, so even try_send hands the value over.
        tx.try_send("hi".to_string()).unwrap();
        assert_eq!(h.join().unwrap(), "hi");
    });
}

#[test]
fn buffered_sends_complete_until_full_then_block() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(3);
        assert_eq!(rx.capacity(), Some(3));
        for i in 0..3 {
            tx.send(i).unwrap(); // no receiver: completes because there is room
        }
        assert_eq!(tx.len(), 3);
        assert!(tx.is_full());
        assert_eq!(tx.try_send(9).unwrap_err(), TrySendError::Full(9));

        let fourth_sent = Arc::new(AtomicBool::new(false));
        let f = fourth_sent.clone();
        let tx2 = tx.clone();
        let h = gonet::go(move || {
            tx2.send(3).unwrap();
            f.store(true, Ordering::SeqCst);
        });
        for _ in 0..10 {
            gonet::time::sleep(Duration::from_millis(2));
            assert!(!fourth_sent.load(Ordering::SeqCst), "send into a full channel completed");
        }
        assert_eq!(rx.recv(), Ok(0));
        h.join().unwrap();
        assert!(fourth_sent.load(Ordering::SeqCst));
        // The blocked value went into the buffer behind the others.
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn fifo_order_for_every_flavour() {
    run(2, || {
        for cap in [Some(0), Some(1), Some(4), Some(64), None] {
            let (tx, rx) = match cap {
                Some(n) => chan::bounded::<u32>(n),
                None => chan::unbounded::<u32>(),
            };
            let h = gonet::go(move || {
                for i in 0..2000 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = rx.iter().collect();
            assert_eq!(got, (0..2000).collect::<Vec<_>>(), "capacity {cap:?}");
            h.join().unwrap();
        }
    });
}

#[test]
fn unbounded_never_blocks() {
    run(1, || {
        let (tx, rx) = chan::unbounded::<usize>();
        assert_eq!(tx.capacity(), None);
        for i in 0..100_000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 100_000);
        assert!(!tx.is_full());
        drop(tx);
        assert_eq!(rx.into_iter().sum::<usize>(), (0..100_000).sum());
    });
}

#[test]
fn dropping_senders_drains_then_disconnects() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(4);
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1)); // one sender left: still connected
        drop(tx2);
        assert_eq!(rx.recv(), Ok(2)); // buffered values survive the disconnection
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
    });
}

#[test]
fn blocked_receivers_wake_with_recv_error_on_disconnect() {
    run(2, || {
        for cap in [0, 2] {
            let (tx, rx) = chan::bounded::<u32>(cap);
            let hs: Vec<_> = (0..10)
                .map(|_| {
                    let rx = rx.clone();
                    gonet::go(move || rx.recv())
                })
                .collect();
            gonet::time::sleep(Duration::from_millis(20));
            drop(tx);
            for h in hs {
                assert_eq!(h.join().unwrap(), Err(RecvError));
            }
        }
    });
}

#[test]
fn blocked_senders_get_their_value_back_on_disconnect() {
    run(2, || {
        for cap in [0, 1] {
            let (tx, rx) = chan::bounded::<String>(cap);
            if cap == 1 {
                tx.send("buffered".into()).unwrap();
            }
            let hs: Vec<_> = (0..5)
                .map(|i| {
                    let tx = tx.clone();
                    gonet::go(move || tx.send(format!("v{i}")))
                })
                .collect();
            gonet::time::sleep(Duration::from_millis(20));
            drop(rx);
            for (i, h) in hs.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), Err(SendError(format!("v{i}"))));
            }
            assert_eq!(tx.try_send("x".into()), Err(TrySendError::Disconnected("x".into())));
            assert_eq!(tx.send("y".into()), Err(SendError("y".into())));
            assert_eq!(
                tx.send_timeout("z".into(), Duration::from_secs(5)),
                Err(SendTimeoutError::Disconnected("z".into()))
            );
        }
    });
}

#[test]
fn buffered_values_are_dropped_when_receivers_go() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded(4);
    for _ in 0..3 {
        tx.send(Counted(drops.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    drop(tx);
}

#[test]
fn recv_timeout_times_out_and_receives() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = Instant::now();
        assert_eq!(rx.recv_timeout(Duration::from_millis(30)), Err(RecvTimeoutError::Timeout));
        assert!(t.elapsed() >= Duration::from_millis(30));

        let h = gonet::go(move || {
            gonet::time::sleep(Duration::from_millis(10));
            tx.send(5).unwrap();
            tx
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(5));
        let tx = h.join().unwrap();
        // A zero timeout still takes a value that is there.
        let (tx2, rx2) = chan::bounded::<u32>(1);
        tx2.send(1).unwrap();
        assert_eq!(rx2.recv_timeout(Duration::ZERO), Ok(1));
        assert_eq!(rx2.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Timeout));
        drop(tx);
    });
}

#[test]
fn send_timeout_hands_the_value_back_and_leaves_no_trace() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(1);
        tx.send(1).unwrap();
        let t = Instant::now();
        assert_eq!(
            tx.send_timeout(2, Duration::from_millis(30)),
            Err(SendTimeoutError::Timeout(2))
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        // The timed-out send left nothing behind: one value, then empty.
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

        // Rendezvous: the timed-out sender's value must not reach a later receiver.
        let (tx0, rx0) = chan::bounded::<u32>(0);
        assert_eq!(
            tx0.send_timeout(3, Duration::from_millis(10)),
            Err(SendTimeoutError::Timeout(3))
        );
        assert_eq!(rx0.try_recv(), Err(TryRecvError::Empty));

        let h = gonet::go(move || rx0.recv());
        assert_eq!(tx0.send_timeout(4, Duration::from_secs(10)), Ok(()));
        assert_eq!(h.join().unwrap(), Ok(4));
    });
}

#[test]
fn timeouts_racing_transfers_lose_and_duplicate_nothing() {
    // Receivers with tiny timeouts race the senders' hand-offs: every value must arrive
    // exactly once, whichever of timer and channel claims a waiting receiver first.
    let counts = run(2, || {
        const N: usize = 20_000;
        let (tx, rx) = chan::bounded::<usize>(0);
        let (out_tx, out_rx) = chan::unbounded::<usize>();
        let senders: Vec<_> = (0..4)
            .map(|p| {
                let tx = tx.clone();
                gonet::go(move || {
                    for i in (p..N).step_by(4) {
                        let mut v = i;
                        loop {
                            match tx.send_timeout(v, Duration::from_micros(50)) {
                                Ok(()) => break,
                                Err(SendTimeoutError::Timeout(back)) => v = back,
                                Err(SendTimeoutError::Disconnected(_)) => panic!("disconnected"),
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                let out = out_tx.clone();
                gonet::go(move || loop {
                    match rx.recv_timeout(Duration::from_micros(30)) {
                        Ok(v) => out.send(v).unwrap(),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                })
            })
            .collect();
        drop(out_tx);
        for h in senders.into_iter().chain(receivers) {
            h.join().unwrap();
        }
        let mut counts = vec![0u8; N];
        for v in out_rx.try_iter() {
            counts[v] += 1;
        }
        counts
    });
    for (v, c) in counts.iter().enumerate() {
        assert_eq!(*c, 1, "value {v} received {c} times");
    }
}

#[test]
fn mpmc_every_value_received_exactly_once() {
    let counts = run(2, || {
        const PER: usize = 25_000;
        for cap in [0usize, 16] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let tx = tx.clone();
                    gonet::go(move || {
                        for i in 0..PER {
                            tx.send(p * PER + i).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let consumers: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    gonet::go(move || rx.iter().collect::<Vec<usize>>())
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            let mut counts = vec![0u8; 4 * PER];
            for c in consumers {
                for v in c.join().unwrap() {
                    counts[v] += 1;
                }
            }
            if cap == 16 {
                return counts;
            }
            assert!(counts.iter().all(|&c| c == 1), "rendezvous: a value lost or duplicated");
        }
        unreachable!()
    });
    assert!(counts.iter().all(|&c| c == 1), "buffered: a value lost or duplicated");
}

#[test]
fn both_ends_report_the_same_channel_state() {
    let (tx, rx) = chan::bounded::<u32>(2);
    let (other_tx, other_rx) = chan::bounded::<u32>(2);
    let state = |tx: &chan::Sender<u32>, rx: &chan::Receiver<u32>| {
        let s = (tx.len(), tx.is_empty(), tx.is_full());
        assert_eq!(s, (rx.len(), rx.is_empty(), rx.is_full()), "the ends disagree");
        s
    };
    assert_eq!(state(&tx, &rx), (0, true, false));
    tx.send(1).unwrap();
    assert_eq!(state(&tx, &rx), (1, false, false));
    tx.send(2).unwrap();
    assert_eq!(state(&tx, &rx), (2, false, true));
    assert_eq!(state(&other_tx, &other_rx), (0, true, false));

    assert!(tx.same_channel(&tx.clone()) && rx.same_channel(&rx.clone()));
    assert!(!tx.same_channel(&other_tx) && !rx.same_channel(&other_rx));
    assert_eq!((tx.capacity(), chan::unbounded::<u8>().0.capacity()), (Some(2), None));
    assert_eq!(format!("{:?} {:?}", tx, rx), "Sender { .. } Receiver { .. }");
}

#[test]
fn deadlines_are_instants() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(1);
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(tx.send_deadline(1, soon), Ok(()));
        assert_eq!(tx.send_deadline(2, soon), Err(SendTimeoutError::Timeout(2)));
        assert!(Instant::now() >= soon, "the send gave up before its deadline");
        let later = Instant::now() + Duration::from_millis(20);
        assert_eq!(rx.recv_deadline(later), Ok(1));
        assert_eq!(rx.recv_deadline(later), Err(RecvTimeoutError::Timeout));
        assert!(Instant::now() >= later, "the receive gave up before its deadline");
        drop(tx);
        assert_eq!(rx.recv_deadline(Instant::now()), Err(RecvTimeoutError::Disconnected));
    });
}

#[test]
fn iterators() {
    run(1, || {
        let (tx, rx) = chan::unbounded::<u32>();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), vec![0, 1]);
        let mut seen = Vec::new();
        for v in &rx {
            seen.push(v);
            if v == 4 {
                break;
            }
        }
        assert_eq!(seen, vec![2, 3, 4]);
        assert_eq!(rx.try_iter().count(), 0);
        tx.send(9).unwrap();
        drop(tx);
        assert_eq!(format!("{:?} {:?}", rx.iter(), rx.try_iter()), "Iter { .. } TryIter { .. }");
        let rest = rx.into_iter();
        assert_eq!(format!("{:?}", rest), "IntoIter { .. }");
        assert_eq!(rest.collect::<Vec<_>>(), vec![9]);
    });
}

#[test]
fn errors_display_and_convert() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    const CLOSED_SEND: &str = "sending on a closed or disconnected channel";
    const CLOSED_RECV: &str = "receiving on an empty and closed or disconnected channel";

    let e = SendError(5u8);
    is_error(&e);
    assert_eq!((e.to_string(), format!("{e:?}")), (CLOSED_SEND.into(), "SendError { .. }".into()));
    assert_eq!(e.into_inner(), 5);

    // Every variant: (predicates, Display, Debug, value).
    let send = |e: TrySendError<u8>| {
        is_error(&e);
        ((e.is_full(), e.is_disconnected()), e.to_string(), format!("{e:?}"), e.into_inner())
    };
    assert_eq!(
        send(TrySendError::Full(1)),
        ((true, false), "sending on a full channel".into(), "Full(..)".into(), 1)
    );
    assert_eq!(
        send(TrySendError::from(SendError(2))),
        ((false, true), CLOSED_SEND.into(), "Disconnected(..)".into(), 2)
    );
    let timed = |e: SendTimeoutError<u8>| {
        is_error(&e);
        ((e.is_timeout(), e.is_disconnected()), e.to_string(), format!("{e:?}"), e.into_inner())
    };
    assert_eq!(
        timed(SendTimeoutError::Timeout(3)),
        ((true, false), "timed out waiting on send operation".into(), "Timeout(..)".into(), 3)
    );
    assert_eq!(
        timed(SendTimeoutError::from(SendError(4))),
        ((false, true), CLOSED_SEND.into(), "Disconnected(..)".into(), 4)
    );

    is_error(&RecvError);
    assert_eq!(RecvError.to_string(), CLOSED_RECV);
    let recv = |e: TryRecvError| {
        is_error(&e);
        ((e.is_empty(), e.is_disconnected()), e.to_string())
    };
    assert_eq!(recv(TryRecvError::Empty), ((true, false), "receiving on an empty channel".into()));
    assert_eq!(recv(TryRecvError::from(RecvError)), ((false, true), CLOSED_RECV.into()));
    let recv_timed = |e: RecvTimeoutError| {
        is_error(&e);
        ((e.is_timeout(), e.is_disconnected()), e.to_string())
    };
    assert_eq!(
        recv_timed(RecvTimeoutError::Timeout),
        ((true, false), "timed out waiting on receive operation".into())
    );
    assert_eq!(recv_timed(RecvTimeoutError::from(RecvError)), ((false, true), CLOSED_RECV.into()));
}

#[test]
fn time_after_delivers_once() {
    run(1, || {
        let t = Instant::now();
        let rx = gonet::time::after(Duration::from_millis(20));
        let at = rx.recv().unwrap();
        assert!(at >= t + Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(rx.recv(), Err(RecvError)); // the timer's sender is gone
    });
}

#[test]
fn ten_thousand_receivers_parked_on_one_channel() {
    run(2, || {
        let (tx, rx) = chan::bounded::<usize>(0);
        let (done_tx, done_rx) = chan::unbounded::<usize>();
        for _ in 0..10_000 {
            let rx = rx.clone();
            let done = done_tx.clone();
            gonet::go(move || done.send(rx.recv().unwrap()).unwrap());
        }
        drop(done_tx);
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        let mut got: Vec<usize> = done_rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..10_000).collect::<Vec<_>>());
    });
}

#[test]
fn goroutines_dropped_at_shutdown_leave_the_channel_usable() {
    let (a_tx, a_rx) = chan::bounded::<u32>(0);
    let (b_tx, b_rx) = chan::bounded::<u32>(0);
    let (a_rx2, b_tx2) = (a_rx.clone(), b_tx.clone());
    within(Duration::from_secs(30), move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            // Both goroutines are still parked when main returns: the runtime drops them.
            gonet::go(move || a_rx2.recv());
            gonet::go(move || b_tx2.send(99));
            gonet::time::sleep(Duration::from_millis(20));
        })
    });
    // The dropped receiver takes nothing, and the dropped sender's value is not delivered.
    assert_eq!(a_tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(b_rx.try_recv(), Err(TryRecvError::Empty));
    // Plain threads keep using the channels.
    let t = thread::spawn(move || (a_rx.recv(), b_tx.send(3)));
    a_tx.send(2).unwrap();
    assert_eq!(b_rx.recv(), Ok(3));
    assert_eq!(t.join().unwrap(), (Ok(2), Ok(())));
}

#[test]
fn timed_operations_dropped_at_shutdown_leave_the_channel_usable() {
    // Like the test above, for blocked operations with a (long) timeout, whose pending timer
    // outlives them, and with values that count their drops.
    struct Counted(u32, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (a_tx, a_rx) = chan::bounded::<Counted>(0);
    let (b_tx, b_rx) = chan::bounded::<Counted>(1);
    b_tx.try_send(Counted(0, drops.clone())).unwrap();
    let (a_rx2, b_tx2, d) = (a_rx.clone(), b_tx.clone(), drops.clone());
    within(Duration::from_secs(30), move || {
        gonet::Builder::new().procs(2).build().unwrap().run(move || {
            let long = Duration::from_secs(3600);
            gonet::go(move || a_rx2.recv_timeout(long).map(|c| c.0));
            gonet::go(move || b_tx2.send_timeout(Counted(99, d), long).is_ok());
            gonet::time::sleep(Duration::from_millis(20));
        })
    });
    // The parked sender's value was dropped with its stack, and only that one.
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(matches!(a_tx.try_send(Counted(1, drops.clone())), Err(TrySendError::Full(_))));
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(b_rx.try_recv().map(|c| c.0), Ok(0));
    assert_eq!(b_rx.try_recv().map(|c| c.0), Err(TryRecvError::Empty));
    let t = thread::spawn(move || a_rx.recv_timeout(Duration::from_secs(20)).map(|c| c.0));
    a_tx.send_timeout(Counted(2, drops.clone()), Duration::from_secs(20)).unwrap_or_else(|_| {
        panic!("send failed");
    });
    assert_eq!(t.join().unwrap(), Ok(2));
    b_tx.send(Counted(3, drops.clone())).unwrap_or_else(|_| panic!("send failed"));
    assert_eq!(b_rx.recv().map(|c| c.0), Ok(3));
}

#[test]
fn plain_operations_and_selects_share_channels() {
    // Plain send/recv, their timeout variants and select! arms, on goroutines and plain
    // threads, all meet on the same channels: queued records of every kind pair with each
    // other, and every value arrives exactly once.
    let counts = run(2, || {
        const N: usize = 30_000;
        const P: usize = 6;
        let (a_tx, a_rx) = chan::bounded::<usize>(0);
        let (b_tx, b_rx) = chan::bounded::<usize>(1);
        let (out_tx, out_rx) = chan::unbounded::<usize>();
        let mut threads = Vec::new();
        let mut gs = Vec::new();
        for p in 0..P {
            let (a, b) = (a_tx.clone(), b_tx.clone());
            let f = move || {
                for i in (p..N).step_by(P) {
                    let tx = if i % 3 == 0 { &a } else { &b };
                    match i % 4 {
                        0 => tx.send(i).unwrap(),
                        1 => {
                            let mut v = i;
                            while let Err(e) = tx.send_timeout(v, Duration::from_micros(40)) {
                                v = match e {
                                    SendTimeoutError::Timeout(v) => v,
                                    SendTimeoutError::Disconnected(_) => panic!("disconnected"),
                                };
                            }
                        }
                        _ => gonet::select! {
                            send(a, i) -> r => r.unwrap(),
                            send(b, i) -> r => r.unwrap(),
                        },
                    }
                }
            };
            if p % 3 == 0 {
                threads.push(thread::spawn(f));
            } else {
                gs.push(gonet::go(f));
            }
        }
        drop((a_tx, b_tx));
        for k in 0..P {
            let (a, b, out) = (a_rx.clone(), b_rx.clone(), out_tx.clone());
            // Each channel keeps receivers of its own (so a sender blocked on it always finds
            // one eventually); the others select over both.
            let f = move || match k % 3 {
                2 => {
                    let never = chan::never::<usize>();
                    let rxs = [&a, &b];
                    let mut open = [true, true];
                    while open[0] || open[1] {
                        // A disconnected channel is always ready: switch its arm off.
                        let arm = |i: usize| if open[i] { rxs[i] } else { &never };
                        let (j, r) = gonet::select! {
                            recv(arm(0)) -> v => (0, v),
                            recv(arm(1)) -> v => (1, v),
                        };
                        match r {
                            Ok(v) => out.send(v).unwrap(),
                            Err(_) => open[j] = false,
                        }
                    }
                }
                own => {
                    let rx = if own == 0 { &a } else { &b };
                    for n in 0.. {
                        let r = if n % 2 == 0 {
                            rx.recv().map_err(|_| ())
                        } else {
                            match rx.recv_timeout(Duration::from_micros(30)) {
                                Err(RecvTimeoutError::Timeout) => continue,
                                r => r.map_err(|_| ()),
                            }
                        };
                        match r {
                            Ok(v) => out.send(v).unwrap(),
                            Err(()) => break,
                        }
                    }
                }
            };
            if k < 3 {
                threads.push(thread::spawn(f));
            } else {
                gs.push(gonet::go(f));
            }
        }
        drop(out_tx);
        for g in gs {
            g.join().unwrap();
        }
        gonet::blocking(move || threads.into_iter().try_for_each(|t| t.join())).unwrap();
        let mut counts = vec![0u8; N];
        for v in out_rx.try_iter() {
            counts[v] += 1;
        }
        counts
    });
    for (v, c) in counts.iter().enumerate() {
        assert_eq!(*c, 1, "value {v} received {c} times");
    }
}

#[test]
fn many_long_timeouts_completing_early() {
    // Operations with long timeouts that complete at once or soon: the fast path must hand
    // values over in order and leave nothing behind (their timers are cancelled).
    run(1, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = gonet::go(move || {
            for i in 0..20_000 {
                tx.send_timeout(i, Duration::from_secs(3600)).unwrap();
            }
        });
        for i in 0..20_000 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(3600)), Ok(i));
        }
        h.join().unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(3600)), Err(RecvTimeoutError::Disconnected));
    });
}

/// Runs a one-worker runtime whose only other goroutine runs `select` (which parks) and
/// ends it while that goroutine is parked, so the runtime unwinds its stack.
fn end_runtime_while_parked_in(select: impl FnOnce() + Send + 'static) {
    within(Duration::from_secs(30), move || {
        gonet::Builder::new().procs(1).build().unwrap().run(move || {
            gonet::go(select);
            gonet::time::sleep(Duration::from_millis(20));
        })
    });
}

/// A `select!` send arm unwound at shutdown takes back only its own entry: a plain thread
/// blocked sending on the same channel stays queued, and its value is the one received.
#[test]
fn select_send_unwound_at_shutdown_leaves_other_senders_queued() {
    let (tx, rx) = chan::bounded::<u32>(0);
    let waiting = tx.clone();
    let sender = thread::spawn(move || waiting.send(7));
    thread::sleep(Duration::from_millis(20)); // the thread is queued
    let tx2 = tx.clone();
    // Its sender outlives the runtime, so `never` stays not ready.
    let (keep, never) = chan::bounded::<u32>(0);
    end_runtime_while_parked_in(move || {
        gonet::select! {
            send(tx2, 9) -> _ => {},
            recv(never) -> _ => {},
        }
    });
    let got = within(Duration::from_secs(30), move || (rx.recv(), rx.try_recv()));
    assert_eq!(got.0, Ok(7), "the blocked thread's value");
    assert_eq!(got.1, Err(TryRecvError::Empty), "the unwound select sent nothing");
    assert_eq!(sender.join().unwrap(), Ok(()));
    drop((tx, keep));
}

/// A select with only receive arms, parked when its runtime ends, is unwound and withdraws:
/// a later send finds no receiver (it times out and keeps its value) instead of handing the
/// value to the dead select.
#[test]
fn select_recv_unwound_at_shutdown_takes_no_value_afterwards() {
    let (tx, rx) = chan::bounded::<u32>(0);
    // Its sender outlives the runtime, so `never` stays not ready.
    let (keep, never) = chan::bounded::<u32>(0);
    let rx2 = rx.clone();
    end_runtime_while_parked_in(move || {
        gonet::select! {
            recv(rx2) -> _ => panic!("nothing was sent"),
            recv(never) -> _ => panic!("nothing was sent"),
        }
    });
    let r = within(Duration::from_secs(30), move || tx.send_timeout(5, Duration::from_millis(100)));
    assert!(
        matches!(r, Err(SendTimeoutError::Timeout(5))),
        "a send after the select was unwound: {r:?}"
    );
    drop((rx, keep));
}

/// A timed receive that a sender completes cancels its timer: 10,000 `recv_timeout`s of one
/// hour, each completed by a sender, leave the worker's timer heap bounded (cancelled timers
/// are swept), not one pending timer per receive.
#[test]
fn a_timed_receive_completed_by_a_sender_cancels_its_timer() {
    const ROUNDS: u32 = 10_000;
    run(1, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let sender = gonet::go(move || (0..ROUNDS).for_each(|i| tx.send(i).unwrap()));
        for i in 0..ROUNDS {
            assert_eq!(rx.recv_timeout(Duration::from_secs(3600)), Ok(i));
        }
        sender.join().unwrap();
        let pending = gonet::runtime::stats().unwrap().workers[0].timers;
        assert!(pending < 2000, "{pending} timers pending after {ROUNDS} timed receives");
    });
}
