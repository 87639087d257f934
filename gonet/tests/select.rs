//! `select!`: fairness among ready arms, `default` and `default(timeout)`, send arms,
//! disconnected arms, stale registrations, and races between selects.

mod common;
use common::{run, thread_cpu, within};

use std::thread;
use std::time::{Duration, Instant};

use gonet::chan::{self, RecvError, SendError, TrySendError};
use gonet::select;

#[test]
fn ready_arms_are_chosen_uniformly() {
    let (a, b) = run(1, || {
        let (tx1, rx1) = chan::bounded::<u8>(1);
        let (tx2, rx2) = chan::bounded::<u8>(1);
        tx1.send(1).unwrap();
        tx2.send(2).unwrap();
        let (mut a, mut b) = (0u32, 0u32);
        for _ in 0..10_000 {
            // Both channels hold a value at every select.
            select! {
                recv(rx1) -> v => { assert_eq!(v, Ok(1)); a += 1; tx1.send(1).unwrap(); }
                recv(rx2) -> v => { assert_eq!(v, Ok(2)); b += 1; tx2.send(2).unwrap(); }
            }
        }
        (a, b)
    });
    assert_eq!(a + b, 10_000);
    assert!((4000..=6000).contains(&a), "arm 1 chosen {a} times out of 10000");
    assert!((4000..=6000).contains(&b), "arm 2 chosen {b} times out of 10000");
}

#[test]
fn three_ready_arms_each_get_a_fair_share() {
    let counts = run(1, || {
        let chans: Vec<_> = (0..3).map(|_| chan::bounded::<()>(1)).collect();
        for (tx, _) in &chans {
            tx.send(()).unwrap();
        }
        let mut counts = [0u32; 3];
        for _ in 0..9000 {
            let i = select! {
                recv(chans[0].1) -> _ => 0,
                recv(chans[1].1) -> _ => 1,
                recv(chans[2].1) -> _ => 2,
            };
            counts[i] += 1;
            chans[i].0.send(()).unwrap();
        }
        counts
    });
    for c in counts {
        assert!((2400..=3600).contains(&c), "unfair choice: {counts:?}");
    }
}

#[test]
fn default_runs_only_when_nothing_is_ready() {
    run(1, || {
        let (tx, rx) = chan::bounded::<u32>(1);
        let r = select! {
            recv(rx) -> v => v.ok(),
            default => None,
        };
        assert_eq!(r, None);
        tx.send(3).unwrap();
        let r = select! {
            recv(rx) -> v => v.ok(),
            default => None,
        };
        assert_eq!(r, Some(3));
        // A full channel's send arm is not ready either.
        tx.send(4).unwrap();
        let sent = select! {
            send(tx, 5) -> _ => true,
            default => false,
        };
        assert!(!sent);
        assert_eq!(rx.recv(), Ok(4));
        assert_eq!(rx.try_recv().ok(), None);
    });
}

#[test]
fn default_timeout_fires_or_yields_to_an_arm() {
    run(2, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let t = Instant::now();
        let r = select! {
            recv(rx) -> v => v.ok(),
            default(Duration::from_millis(30)) => None,
        };
        assert_eq!(r, None);
        assert!(t.elapsed() >= Duration::from_millis(30));

        let h = gonet::go(move || {
            gonet::time::sleep(Duration::from_millis(10));
            tx.send(8).unwrap();
        });
        let r = select! {
            recv(rx) -> v => v.ok(),
            default(Duration::from_secs(20)) => None,
        };
        assert_eq!(r, Some(8));
        h.join().unwrap();
        // The timed-out registration left nothing behind on the rendezvous channel: with no
        // receiver waiting, a send has no taker.
        let (tx, rx) = chan::bounded::<u32>(0);
        select! {
            recv(rx) -> _ => panic!("nothing was sent"),
            default(Duration::from_millis(5)) => {}
        }
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    });
}

#[test]
fn send_arm_hands_value_to_a_waiting_receiver() {
    run(2, || {
        let (tx, rx) = chan::bounded::<String>(0);
        let (_other_tx, other_rx) = chan::bounded::<u8>(0);
        let h = gonet::go(move || rx.recv().unwrap());
        let which = select! {
            send(tx, "hello".to_string()) -> res => { res.unwrap(); "sent" }
            recv(other_rx) -> _ => "received",
        };
        assert_eq!(which, "sent");
        assert_eq!(h.join().unwrap(), "hello");
    });
}

#[test]
fn disconnected_channels_make_their_arms_ready() {
    run(1, || {
        let (tx, rx) = chan::bounded::<u8>(0);
        drop(tx);
        let r = select! {
            recv(rx) -> v => v,
            default(Duration::from_secs(20)) => panic!("a disconnected recv arm is ready"),
        };
        assert_eq!(r, Err(RecvError));

        let (tx, rx) = chan::bounded::<u8>(0);
        drop(rx);
        let r = select! {
            send(tx, 42) -> res => res,
            default => panic!("a disconnected send arm is ready"),
        };
        assert_eq!(r, Err(SendError(42)));
    });
}

#[test]
fn blocked_select_wakes_on_disconnect() {
    run(2, || {
        let (tx1, rx1) = chan::bounded::<u8>(0);
        let (_tx2, rx2) = chan::bounded::<u8>(0);
        let h = gonet::go(move || {
            select! {
                recv(rx1) -> v => v,
                recv(rx2) -> v => v,
            }
        });
        gonet::time::sleep(Duration::from_millis(10));
        drop(tx1);
        assert_eq!(h.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn losing_arms_leave_no_stale_taker() {
    run(2, || {
        for _ in 0..100 {
            let (tx_a, rx_a) = chan::bounded::<u32>(0);
            let (tx_b, rx_b) = chan::bounded::<u32>(0);
            let h = gonet::go(move || {
                let r = select! {
                    recv(rx_a) -> v => ('a', v.unwrap()),
                    recv(rx_b) -> v => ('b', v.unwrap()),
                };
                (r, rx_b)
            });
            tx_a.send(1).unwrap();
            let (r, rx_b) = h.join().unwrap();
            assert_eq!(r, ('a', 1));
            // The select's registration on b is gone: nobody takes a rendezvous value.
            assert_eq!(tx_b.try_send(2), Err(TrySendError::Full(2)));
            drop(rx_b);
        }
    });
}

#[test]
fn losing_send_arm_value_is_not_delivered() {
    run(2, || {
        let (tx_a, rx_a) = chan::bounded::<u32>(0);
        let (tx_b, rx_b) = chan::bounded::<u32>(0);
        let h = gonet::go(move || {
            select! {
                send(tx_a, 1) -> r => { r.unwrap(); 'a' }
                send(tx_b, 2) -> r => { r.unwrap(); 'b' }
            }
        });
        gonet::time::sleep(Duration::from_millis(10));
        assert_eq!(rx_a.recv(), Ok(1));
        assert_eq!(h.join().unwrap(), 'a');
        // tx_b was dropped with the goroutine: b is disconnected and never got a value.
        assert_eq!(rx_b.recv(), Err(RecvError));
    });
}

#[test]
fn select_does_not_pair_with_itself() {
    run(1, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let r = select! {
            send(tx, 1) -> _ => "sent",
            recv(rx) -> _ => "received",
            default(Duration::from_millis(20)) => "timeout",
        };
        assert_eq!(r, "timeout");
        // With a partner, one of the two arms completes.
        let rx2 = rx.clone();
        let h = gonet::go(move || rx2.recv().unwrap());
        let r = select! {
            send(tx, 1) -> _ => "sent",
            recv(rx) -> _ => "received",
        };
        assert_eq!(r, "sent");
        assert_eq!(h.join().unwrap(), 1);
    });
}

#[test]
fn select_over_time_after() {
    run(1, || {
        let (_tx, rx) = chan::bounded::<u8>(0);
        let t = Instant::now();
        let r = select! {
            recv(rx) -> _ => false,
            recv(gonet::time::after(Duration::from_millis(15))) -> at => { at.unwrap(); true }
        };
        assert!(r);
        assert!(t.elapsed() >= Duration::from_millis(15));
    });
}

#[test]
fn select_in_a_loop_with_break_and_continue() {
    run(1, || {
        let (tx, rx) = chan::unbounded::<u32>();
        let (quit_tx, quit_rx) = chan::bounded::<()>(1);
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        let mut sum = 0;
        loop {
            select! {
                recv(quit_rx) -> _ => break,
                recv(rx) -> v => {
                    let v = v.unwrap();
                    if v % 2 == 0 {
                        continue;
                    }
                    sum += v;
                    if v == 9 {
                        quit_tx.send(()).unwrap();
                    }
                }
            }
        }
        assert_eq!(sum, 1 + 3 + 5 + 7 + 9);
    });
}

#[test]
fn empty_select_with_default() {
    let r = select! {
        default => 5,
    };
    assert_eq!(r, 5);
    let t = Instant::now();
    select! {
        default(Duration::from_millis(10)) => {}
    }
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[test]
fn racing_selects_transfer_every_value_once() {
    // Receivers select over two channels while senders select over two others feeding them:
    // registrations on several channels race constantly.
    let counts = run(2, || {
        const N: usize = 20_000;
        let (a_tx, a_rx) = chan::bounded::<usize>(0);
        let (b_tx, b_rx) = chan::bounded::<usize>(1);
        let (out_tx, out_rx) = chan::unbounded::<usize>();
        let senders: Vec<_> = (0..4)
            .map(|p| {
                let (a, b) = (a_tx.clone(), b_tx.clone());
                gonet::go(move || {
                    for i in (p..N).step_by(4) {
                        select! {
                            send(a, i) -> r => r.unwrap(),
                            send(b, i) -> r => r.unwrap(),
                        }
                    }
                })
            })
            .collect();
        drop((a_tx, b_tx));
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let (a, b, out) = (a_rx.clone(), b_rx.clone(), out_tx.clone());
                gonet::go(move || {
                    let (mut a_open, mut b_open) = (true, true);
                    while a_open || b_open {
                        select! {
                            recv(a) -> v => match v {
                                Ok(v) => out.send(v).unwrap(),
                                Err(_) => a_open = false,
                            },
                            recv(b) -> v => match v {
                                Ok(v) => out.send(v).unwrap(),
                                Err(_) => b_open = false,
                            },
                            default(Duration::from_micros(50)) => {}
                        }
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
fn select_on_plain_threads() {
    within(Duration::from_secs(30), || {
        let (tx1, rx1) = chan::bounded::<u32>(0);
        let (tx2, rx2) = chan::bounded::<u32>(0);
        let t = thread::spawn(move || {
            for i in 0..100 {
                if i % 2 == 0 {
                    tx1.send(i).unwrap();
                } else {
                    tx2.send(i).unwrap();
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 100 {
            select! {
                recv(rx1) -> v => got.push(v.unwrap()),
                recv(rx2) -> v => got.push(v.unwrap()),
            }
        }
        t.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn racing_selects_on_threads_and_goroutines() {
    // Selecting senders and receivers on three channels, half of them plain threads that the
    // OS preempts anywhere: registrations constantly find arms that became ready meanwhile,
    // and must abort and retry without losing or duplicating a value.
    let counts = run(3, || {
        const N: usize = 40_000;
        let (a_tx, a_rx) = chan::bounded::<usize>(0);
        let (b_tx, b_rx) = chan::bounded::<usize>(0);
        let (c_tx, c_rx) = chan::bounded::<usize>(2);
        let (out_tx, out_rx) = chan::unbounded::<usize>();
        let mut threads = Vec::new();
        let mut gs = Vec::new();
        for p in 0..6 {
            let (a, b, c) = (a_tx.clone(), b_tx.clone(), c_tx.clone());
            let f = move || {
                for i in (p..N).step_by(6) {
                    select! {
                        send(a, i) -> r => r.unwrap(),
                        send(b, i) -> r => r.unwrap(),
                        send(c, i) -> r => r.unwrap(),
                    }
                }
            };
            if p % 2 == 0 {
                threads.push(thread::spawn(f));
            } else {
                gs.push(gonet::go(f));
            }
        }
        drop((a_tx, b_tx, c_tx));
        for k in 0..6 {
            let (a, b, c, out) = (a_rx.clone(), b_rx.clone(), c_rx.clone(), out_tx.clone());
            let f = move || {
                let never = chan::never::<usize>();
                let rxs = [a, b, c];
                let mut open = [true; 3];
                while open.iter().any(|&o| o) {
                    // A disconnected channel is always ready: switch its arm off.
                    let arm = |i: usize| if open[i] { &rxs[i] } else { &never };
                    let (i, v) = select! {
                        recv(arm(0)) -> v => (0, v),
                        recv(arm(1)) -> v => (1, v),
                        recv(arm(2)) -> v => (2, v),
                    };
                    match v {
                        Ok(v) => out.send(v).unwrap(),
                        Err(_) => open[i] = false,
                    }
                }
            };
            if k % 2 == 0 {
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
fn never_is_never_ready() {
    run(1, || {
        let never = chan::never::<u8>();
        assert!(never.try_recv().unwrap_err().is_empty());
        let r = select! {
            recv(never) -> _ => "received",
            default(Duration::from_millis(5)) => "timeout",
        };
        assert_eq!(r, "timeout");
    });
}

/// Counts how often each arm of a select over `ready.len()` channels is chosen, where only
/// the channels marked `true` ever hold a value (the others stay empty and never become
/// ready).
fn choices_with_idle_arms(ready: [bool; 4], rounds: u32) -> [u32; 4] {
    run(1, move || {
        let chans: Vec<_> = (0..4).map(|_| chan::bounded::<()>(1)).collect();
        for (i, (tx, _)) in chans.iter().enumerate() {
            if ready[i] {
                tx.send(()).unwrap();
            }
        }
        let mut counts = [0u32; 4];
        for _ in 0..rounds {
            let i = select! {
                recv(chans[0].1) -> _ => 0,
                recv(chans[1].1) -> _ => 1,
                recv(chans[2].1) -> _ => 2,
                recv(chans[3].1) -> _ => 3,
            };
            assert!(ready[i], "arm {i} was never ready");
            counts[i] += 1;
            chans[i].0.send(()).unwrap();
        }
        counts
    })
}

/// With some arms never ready, the ready ones still share the choices equally. A select that
/// starts at a random arm and then goes round in order (a rotation, not a permutation) gives
/// the ready arm right after an idle one the idle arm's share as well: 3/4 : 1/4 here.
#[test]
fn ready_arms_share_fairly_when_others_are_never_ready() {
    let counts = choices_with_idle_arms([true, false, false, true], 8000);
    for i in [0, 3] {
        assert!(
            (3400..=4600).contains(&counts[i]),
            "unfair choice among ready arms 0 and 3: {counts:?}"
        );
    }
    // 2/3 : 1/3 under a rotation.
    let counts = choices_with_idle_arms([false, true, true, false], 8000);
    for i in [1, 2] {
        assert!(
            (3400..=4600).contains(&counts[i]),
            "unfair choice among ready arms 1 and 2: {counts:?}"
        );
    }
    let counts = choices_with_idle_arms([true, true, false, true], 9000);
    for i in [0, 1, 3] {
        assert!(
            (2400..=3600).contains(&counts[i]),
            "unfair choice among ready arms 0, 1, 3: {counts:?}"
        );
    }
}

/// A counterparty that queues itself on a channel while a `select!` is registering its arms
/// (after it found no arm ready) must make the select take that arm, not queue beside it:
/// a blocked receiver and a select's queued send on the same unbuffered channel would wait
/// for each other for ever. Two workers, so the registration and the counterparty race; the
/// counterparty comes back after a random short spin, and seven never-ready arms make the
/// registration long; many rounds in both directions.
#[test]
fn counterparty_arriving_during_registration_is_taken() {
    const ROUNDS: u64 = 50_000;
    fn spin(x: &mut u64) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        for _ in 0..(*x % 2000) {
            std::hint::spin_loop();
        }
    }
    let (sent, received) = within(Duration::from_secs(60), || {
        run(2, || {
            let (_never_tx, n) = chan::bounded::<u64>(0);
            // select sends, a plain receive is the counterparty
            let (tx, rx) = chan::bounded::<u64>(0);
            let recv = gonet::go(move || {
                let mut x = 0x2545_f491_4f6c_dd1d;
                (0..ROUNDS)
                    .map(|_| {
                        spin(&mut x);
                        rx.recv().unwrap()
                    })
                    .sum::<u64>()
            });
            for i in 0..ROUNDS {
                select! {
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(),
                    send(tx, i) -> r => r.unwrap(),
                }
            }
            let sent = recv.join().unwrap();
            // a plain send is the counterparty, select receives
            let (tx, rx) = chan::bounded::<u64>(0);
            let send = gonet::go(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15;
                for i in 0..ROUNDS {
                    spin(&mut x);
                    tx.send(i).unwrap();
                }
            });
            let mut received = 0;
            for _ in 0..ROUNDS {
                select! {
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(), recv(n) -> _ => unreachable!(),
                    recv(n) -> _ => unreachable!(),
                    recv(rx) -> v => received += v.unwrap(),
                }
            }
            send.join().unwrap();
            (sent, received)
        })
    });
    assert_eq!(sent, ROUNDS * (ROUNDS - 1) / 2);
    assert_eq!(received, ROUNDS * (ROUNDS - 1) / 2);
}

/// A select that parked and was won by one arm withdraws its entries from the channels of
/// the others: 200k such rounds against a channel that never becomes ready leave nothing
/// queued on it (a stale entry holds its token and slot: ~30 MB for 200k).
#[test]
fn losing_arms_leave_no_entries_behind() {
    let grown = rss_growth_of_select_rounds(|never, _, rx, i| {
        select! {
            recv(never) -> _ => unreachable!(),
            recv(rx) -> v => assert_eq!(v, Ok(i)),
        }
    });
    assert!(grown < 8 << 20, "200k select rounds grew RSS by {grown} bytes");
}

/// The same for a losing send arm: its entry (and the value it offered) is withdrawn from
/// the channel nobody receives from.
#[test]
fn losing_send_arms_leave_no_entries_behind() {
    let grown = rss_growth_of_select_rounds(|_, full, rx, i| {
        select! {
            send(full, i) -> _ => unreachable!(),
            recv(rx) -> v => assert_eq!(v, Ok(i)),
        }
    });
    assert!(grown < 8 << 20, "200k select rounds grew RSS by {grown} bytes");
}

/// Runs 200k rounds of `round(never, full, rx, i)` on one worker, where `never` is never
/// ready to receive from, `full` never ready to send to, and `rx` gets `i` from a sender
/// goroutine (which runs only once the round's select has parked); returns the RSS growth
/// after the first 1,000 rounds.
fn rss_growth_of_select_rounds(
    round: impl Fn(&chan::Receiver<u64>, &chan::Sender<u64>, &chan::Receiver<u64>, u64) + Send + 'static,
) -> u64 {
    const ROUNDS: u64 = 200_000;
    within(Duration::from_secs(60), move || {
        run(1, move || {
            let (_never_tx, never) = chan::bounded::<u64>(0);
            let (full, _full_rx) = chan::bounded::<u64>(0);
            let (tx, rx) = chan::bounded::<u64>(0);
            let sender = gonet::go(move || (0..ROUNDS).for_each(|i| tx.send(i).unwrap()));
            let rss = || {
                let s = std::fs::read_to_string("/proc/self/statm").unwrap();
                s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
            };
            let mut before = 0;
            for i in 0..ROUNDS {
                if i == 1000 {
                    before = rss();
                }
                round(&never, &full, &rx, i);
            }
            sender.join().unwrap();
            rss().saturating_sub(before)
        })
    })
}

/// A `select!` may name the same channel in a send arm and a receive arm. Its own queued
/// entry is not a counterparty: registering the second arm must not see the first arm's
/// entry as "ready" (which would send the select back to its first pass forever, spinning
/// instead of parking), and a real counterparty pairs with the right arm.
#[test]
fn send_and_receive_arms_on_one_channel_park_and_pair_with_others() {
    within(Duration::from_secs(30), || {
        run(1, || {
            let (tx, rx) = chan::bounded::<u32>(0);
            // Nobody else: the select parks until its timeout, using almost no CPU.
            let mut cpu = Vec::new();
            for _ in 0..3 {
                let before = thread_cpu();
                let start = Instant::now();
                select! {
                    recv(rx) -> _ => panic!("received its own value"),
                    send(tx, 1) -> _ => panic!("sent to itself"),
                    default(Duration::from_millis(200)) => {}
                }
                assert!(start.elapsed() >= Duration::from_millis(200));
                cpu.push(thread_cpu() - before);
            }
            cpu.sort();
            assert!(
                cpu[1] < Duration::from_millis(100),
                "a parked select used {:?} of CPU in 200 ms (median of {cpu:?}): it spins",
                cpu[1]
            );
            // A plain receiver arriving later takes the send arm's value.
            let rx2 = rx.clone();
            let receiver = gonet::go(move || {
                gonet::time::sleep(Duration::from_millis(20));
                rx2.recv().unwrap()
            });
            select! {
                recv(rx) -> _ => panic!("received its own value"),
                send(tx, 7) -> r => r.unwrap(),
            }
            assert_eq!(receiver.join().unwrap(), 7);
            // A plain sender arriving later is taken by the receive arm.
            let tx2 = tx.clone();
            let sender = gonet::go(move || {
                gonet::time::sleep(Duration::from_millis(20));
                tx2.send(9).unwrap()
            });
            select! {
                recv(rx) -> v => assert_eq!(v, Ok(9)),
                send(tx, 8) -> _ => panic!("sent to itself"),
            }
            sender.join().unwrap();
        })
    });
}

/// A select with more arms than its on-stack order buffer (16) works like a small one: the
/// one ready arm among twenty is taken, at once and after a park.
#[test]
fn a_select_with_twenty_arms() {
    within(Duration::from_secs(30), || {
        run(1, || {
            let (_keep, n) = chan::bounded::<u32>(0);
            let (tx, rx) = chan::bounded::<u32>(1);
            for round in 0..2 {
                if round == 0 {
                    tx.send(1).unwrap(); // ready before the select
                } else {
                    let tx = tx.clone();
                    gonet::go(move || {
                        gonet::time::sleep(Duration::from_millis(10));
                        tx.send(2).unwrap(); // arrives while the select is parked
                    });
                }
                let got = select! {
                    recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0,
                    recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0,
                    recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0,
                    recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0,
                    recv(n) -> _ => 0, recv(n) -> _ => 0, recv(n) -> _ => 0,
                    recv(rx) -> v => v.unwrap(),
                };
                assert_eq!(got, round + 1);
            }
        })
    });
}

/// A select whose timeout did not fire cancels its timer when another arm wins: 10,000
/// selects with a one-hour timeout, each won by a channel, leave the worker's timer heap
/// bounded (cancelled timers are swept), not one pending timer per select.
#[test]
fn a_select_won_by_a_channel_cancels_its_timer() {
    const ROUNDS: u32 = 10_000;
    within(Duration::from_secs(60), || {
        run(1, || {
            let (tx, rx) = chan::bounded::<u32>(0);
            let sender = gonet::go(move || (0..ROUNDS).for_each(|i| tx.send(i).unwrap()));
            for i in 0..ROUNDS {
                select! {
                    recv(rx) -> v => assert_eq!(v, Ok(i)),
                    default(Duration::from_secs(3600)) => panic!("timed out"),
                }
            }
            sender.join().unwrap();
            let pending = gonet::runtime::stats().unwrap().workers[0].timers;
            assert!(pending < 2000, "{pending} timers pending after {ROUNDS} selects");
        })
    });
}

/// A receive from a disconnected channel is ready (it completes with `RecvError` at once), so
/// a select with a `default` arm takes it rather than the default, as Go's select does
/// with a closed channel.
#[test]
fn a_disconnected_channel_is_ready_before_default() {
    run(1, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        drop(tx);
        for _ in 0..100 {
            let took = select! {
                recv(rx) -> v => { assert_eq!(v, Err(RecvError)); "recv" },
                default => "default",
            };
            assert_eq!(took, "recv");
        }
    });
}
