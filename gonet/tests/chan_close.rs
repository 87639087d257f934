//! `Sender::close`, Go's `close(ch)`: receivers drain the buffer, then see the channel closed;
//! sends after the close, and sends blocked at the close, fail and hand their value back;
//! closing twice reports it; a `select!` sees a closed channel as ready.

mod common;
use common::run;

use std::thread;
use std::time::Duration;

use gonet::chan::{
    self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use gonet::select;

#[test]
fn receivers_drain_the_buffer_then_see_closed() {
    let (tx, rx) = chan::bounded::<u32>(4);
    let tx2 = tx.clone(); // another sender keeps the channel connected: only close ends it
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(tx.close());
    assert!(tx2.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn send_on_a_closed_channel_is_an_error_with_the_value() {
    let (tx, rx) = chan::unbounded::<String>();
    let tx2 = tx.clone();
    tx2.close();
    assert_eq!(tx.send("a".into()), Err(SendError("a".to_string())));
    assert_eq!(tx.try_send("b".into()), Err(TrySendError::Disconnected("b".to_string())));
    let r = select! { send(tx, "c".to_string()) -> r => r };
    assert_eq!(r, Err(SendError("c".to_string())));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn close_twice_reports_it() {
    let (tx, _rx) = chan::bounded::<()>(0);
    assert!(!tx.is_closed());
    assert!(tx.close());
    assert!(!tx.close());
}

#[test]
fn close_wakes_blocked_receivers_on_goroutines() {
    let woken = run(2, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let rx = rx.clone();
                gonet::go(move || {
                    if i % 2 == 0 {
                        rx.recv()
                    } else {
                        select! { recv(rx) -> v => v, recv(chan::never::<u32>()) -> _ => Ok(0) }
                    }
                })
            })
            .collect();
        gonet::time::sleep(Duration::from_millis(20)); // let them block
        tx.close();
        hs.into_iter().filter(|_| true).map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(woken, vec![Err(RecvError); 8]);
}

#[test]
fn close_of_an_unbuffered_channel_with_a_blocked_sender() {
    let r = run(2, || {
        let (tx, rx) = chan::bounded::<String>(0);
        let tx2 = tx.clone();
        let h = gonet::go(move || tx2.send("kept".to_string()));
        gonet::time::sleep(Duration::from_millis(20)); // the sender blocks: nobody receives
        tx.close();
        let sent = h.join().unwrap();
        (sent, rx.try_recv())
    });
    // The blocked sender's value comes back; nothing was delivered.
    assert_eq!(r, (Err(SendError("kept".to_string())), Err(TryRecvError::Disconnected)));
}

#[test]
fn close_of_a_full_buffered_channel_with_blocked_senders_keeps_the_buffer() {
    let (got, errs) = run(2, || {
        let (tx, rx) = chan::bounded::<u32>(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let hs: Vec<_> = (3..6)
            .map(|v| {
                let tx = tx.clone();
                gonet::go(move || tx.send_timeout(v, Duration::from_secs(30)))
            })
            .collect();
        gonet::time::sleep(Duration::from_millis(20));
        tx.close();
        let errs: Vec<_> = hs
            .into_iter()
            .map(|h| match h.join().unwrap() {
                Err(SendTimeoutError::Disconnected(v)) => v,
                r => panic!("a blocked send at close returned {r:?}"),
            })
            .collect();
        (rx.iter().collect::<Vec<_>>(), errs)
    });
    assert_eq!(got, [1, 2]);
    let mut errs = errs;
    errs.sort();
    assert_eq!(errs, [3, 4, 5]);
}

#[test]
fn close_from_a_thread_wakes_a_blocked_thread() {
    let (tx, rx) = chan::bounded::<u32>(1);
    let h = thread::spawn(move || rx.recv());
    thread::sleep(Duration::from_millis(20));
    tx.close();
    assert_eq!(h.join().unwrap(), Err(RecvError));
    // The sender handle still exists, the channel stays closed.
    assert_eq!(tx.send(1), Err(SendError(1)));
}

#[test]
fn a_select_sees_a_closed_channel_ready() {
    let (tx, rx) = chan::bounded::<u32>(1);
    let (_keep, never) = chan::bounded::<u32>(1);
    tx.send(5).unwrap();
    tx.close();
    let a = select! { recv(rx) -> v => v, recv(never) -> _ => Ok(0) };
    let b = select! { recv(rx) -> v => v, recv(never) -> _ => Ok(0), default(Duration::from_secs(5)) => Ok(1) };
    assert_eq!((a, b), (Ok(5), Err(RecvError)));
}
