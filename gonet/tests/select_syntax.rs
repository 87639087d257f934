//! `select!` accepts every arm form crossbeam-channel's `select!` accepts: block bodies with
//! and without a trailing comma, expression bodies, a last arm with or without a comma,
//! `default` and `default(timeout)` in each form, and a `select!` nested in an arm. Each form
//! is compiled here and its behaviour checked (the chosen arm's body runs, its value is the
//! select's value).

// The arm forms are written the way users write them, unit-valued and single-arm ones included.
#![allow(clippy::single_match, clippy::let_unit_value)]

mod common;
use common::run;

use std::time::Duration;

use gonet::chan;
use gonet::select;

#[test]
fn block_body_followed_by_comma() {
    // The form of the bug report: a block body, a comma, then an expression arm.
    let (tx, rx) = chan::bounded::<u32>(1);
    let (_tx2, rx2) = chan::bounded::<u32>(1);
    let got = select! {
        send(tx, 7) -> r => { r.unwrap(); None },
        recv(rx2) -> v => Some(v.unwrap()),
    };
    assert_eq!(got, None);
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn block_bodies_without_commas() {
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(3).unwrap();
    let (_tx2, rx2) = chan::bounded::<u32>(1);
    let got = select! {
        recv(rx) -> v => { v.unwrap() + 1 }
        recv(rx2) -> v => { v.unwrap() }
    };
    assert_eq!(got, 4);
}

#[test]
fn last_arm_with_and_without_comma() {
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(1).unwrap();
    let a = select! { recv(rx) -> v => v.unwrap() };
    tx.send(2).unwrap();
    let b = select! { recv(rx) -> v => v.unwrap(), };
    tx.send(3).unwrap();
    let c = select! { recv(rx) -> v => { v.unwrap() } };
    tx.send(4).unwrap();
    let d = select! { recv(rx) -> v => { v.unwrap() }, };
    assert_eq!((a, b, c, d), (1, 2, 3, 4));
}

#[test]
fn expression_bodies_of_every_kind() {
    let (tx, rx) = chan::unbounded::<u32>();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    let mut log = Vec::new();
    // A method call, a macro call, a match and an if as bodies.
    select! { recv(rx) -> v => log.push(v.unwrap()), default => unreachable!() }
    select! { recv(rx) -> v => match v { Ok(x) => log.push(x * 10), Err(_) => {} }, }
    select! { recv(rx) -> v => if v.is_ok() { log.push(100) } else { log.push(0) } }
    assert_eq!(log, [0, 10, 100]);
}

#[test]
fn send_arm_with_trailing_comma_in_its_operands() {
    let (tx, rx) = chan::bounded::<u32>(1);
    select! { send(tx, 5,) -> r => r.unwrap() }
    select! { recv(rx,) -> v => assert_eq!(v, Ok(5)) }
}

#[test]
fn default_in_every_form() {
    let (_tx, rx) = chan::bounded::<u32>(1);
    let a = select! { recv(rx) -> _ => 0, default => 1 };
    let b = select! { recv(rx) -> _ => 0, default => 2, };
    let c = select! { recv(rx) -> _ => 0, default => { 3 } };
    let d = select! { recv(rx) -> _ => 0, default => { 4 }, };
    let e = select! { recv(rx) -> _ => { 0 } default => { 5 } };
    let f = select! { default => 6, recv(rx) -> _ => 0 };
    let g = select! { default => { 7 } recv(rx) -> _ => 0, };
    assert_eq!([a, b, c, d, e, f, g], [1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn default_timeout_in_every_form() {
    let (_tx, rx) = chan::bounded::<u32>(1);
    let t = Duration::from_millis(5);
    let a = select! { recv(rx) -> _ => 0, default(t) => 1 };
    let b = select! { recv(rx) -> _ => 0, default(t) => 2, };
    let c = select! { recv(rx) -> _ => 0, default(t) => { 3 } };
    let d = select! { recv(rx) -> _ => 0, default(t) => { 4 }, };
    let e = select! { default(t) => { 5 } recv(rx) -> _ => 0 };
    let f = select! { default(Duration::from_millis(1),) => 6, recv(rx) -> _ => 0 };
    assert_eq!([a, b, c, d, e, f], [1, 2, 3, 4, 5, 6]);
}

#[test]
fn only_default() {
    assert_eq!(select! { default => 1 }, 1);
    assert_eq!(select! { default(Duration::from_millis(1)) => { 2 } }, 2);
}

#[test]
fn nested_select_in_an_arm() {
    let (tx1, rx1) = chan::bounded::<u32>(1);
    let (tx2, rx2) = chan::bounded::<u32>(1);
    tx1.send(1).unwrap();
    tx2.send(2).unwrap();
    let (_never_tx, never) = chan::bounded::<u32>(1);
    // As an expression body followed by a comma, and inside a block body without one.
    let a = select! {
        recv(rx1) -> v => select! {
            recv(rx2) -> w => v.unwrap() * 10 + w.unwrap(),
            default => 0,
        },
        recv(never) -> _ => unreachable!(),
    };
    tx1.send(3).unwrap();
    let b = select! {
        recv(never) -> _ => { unreachable!() }
        recv(rx1) -> v => {
            let x = v.unwrap();
            select! {
                recv(never) -> _ => unreachable!(),
                default(Duration::from_millis(1)) => x + 100,
            }
        }
    };
    assert_eq!((a, b), (12, 103));
}

#[test]
fn patterns_in_arms() {
    // Irrefutable patterns, as in crossbeam-channel.
    let (tx, rx) = chan::bounded::<(u32, u32)>(1);
    tx.send((1, 2)).unwrap();
    let (_tx2, rx2) = chan::bounded::<(u32, u32)>(1);
    let s = select! {
        recv(rx) -> r => { let (a, b) = r.unwrap(); a + b }
        recv(rx2) -> _ => 0,
    };
    assert_eq!(s, 3);
    let (wtx, wrx) = chan::bounded::<u32>(1);
    select! { send(wtx, 4) -> _ => {} }
    let _ = select! { recv(wrx) -> _v => () };
}

#[test]
fn every_form_on_goroutines() {
    // The same forms, blocking: the body runs after a park.
    let r = run(2, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let h = gonet::go(move || {
            gonet::time::sleep(Duration::from_millis(5));
            tx.send(9).unwrap();
        });
        let v = select! {
            recv(rx) -> v => { v.unwrap() },
            recv(chan::never::<u32>()) -> _ => { 0 }
        };
        h.join().unwrap();
        v
    });
    assert_eq!(r, 9);
}
