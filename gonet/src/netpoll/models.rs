//! Loom models of the netpoller's wait protocol (`poll_desc.rs`), run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gonet --lib --release netpoll::`.
//!
//! Each model drives the real `PollDesc` functions — `wait_registered` (→ `block`, `commit`,
//! `finish`), `on_event` (→ `unblock`), `evict` and `set_deadline_ns` (→ `kick`), the deadline
//! timer that `arm_deadline` sets, `free`/`alloc` (the `seq` incarnation) — with loom's atomics
//! and the stand-ins of `loom_rt.rs` underneath. A lost wake-up shows as a loom deadlock, a
//! double one as a panic in `loom_rt::ready`.
//!
//! Which model catches which bug (each was planted and seen to fail; the others passed):
//! * `StateWord::unblock` not storing `NIL → READY` (readiness while nobody waits is dropped):
//!   `readiness_before_the_wait_is_kept`, `reader_parked_elsewhere_gets_the_next_edge`,
//!   `deadline_timer_racing_readiness`, `stale_timer_and_event_after_reuse` (and
//!   `state::tests::readiness_is_never_lost`);
//! * `block` not re-checking close/deadline after announcing `WAIT`:
//!   `close_racing_a_wait_fails_it` (a deadline set racing the wait is rescued by the timer
//!   the waiter then arms, so only the close shows it);
//! * the deadline timer not kicking: `deadline_alone_wakes_the_waiter`,
//!   `deadline_extended_while_parked`, `stale_timer_and_event_after_reuse`;
//! * the timer not clearing `armed` (an extended deadline is never re-armed):
//!   `deadline_extended_while_parked`;
//! * no `seq` check in `on_event`, or in the deadline timer: `stale_timer_and_event_after_reuse`.

use loom::thread;

use super::loom_rt::{advance_to, hold_timers, join_timers, parks, ready};
use super::poll_desc::{on_event, Dir, PollDesc};

const IN: u32 = libc::EPOLLIN as u32;

/// Runs `f` under loom with a preemption bound (3 unless `LOOM_MAX_PREEMPTIONS` says
/// otherwise): the interleavings that matter here need at most two or three preemptions.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// The epoll notifier: delivers `events` for the descriptor tagged `tag`.
fn event(tag: u64, events: u32) {
    on_event(tag, events, &mut |g| ready(g));
}

/// A goroutine's `wait` once registered: the initial check, then `wait_registered`.
fn wait(pd: &'static PollDesc, d: Dir) -> std::io::Result<()> {
    pd.check(d)?;
    pd.wait_registered(d)
}

fn kind(r: std::io::Result<()>) -> Option<std::io::ErrorKind> {
    r.err().map(|e| e.kind())
}

/// Readiness that arrives before the reader waits (or while it announces itself) is kept
/// and consumed by the wait: never lost, never a park forever.
#[test]
fn readiness_before_the_wait_is_kept() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        let tag = pd.tag();
        let t = thread::spawn(move || event(tag, IN));
        wait(pd, Dir::Read).unwrap();
        t.join().unwrap();
    });
}

/// A reader gets one edge, then is parked on something else (here: joining a thread) while
/// the next edge arrives, then waits again: it must find that edge.
#[test]
fn reader_parked_elsewhere_gets_the_next_edge() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        let tag = pd.tag();
        let t = thread::spawn(move || event(tag, IN));
        wait(pd, Dir::Read).unwrap();
        t.join().unwrap();
        let t = thread::spawn(move || event(tag, IN));
        t.join().unwrap();
        wait(pd, Dir::Read).unwrap_or_else(|e| panic!("second wait: {e}"));
    });
}

/// A close racing a wait (after the wait's first check) fails the wait with the closed
/// error; without the re-check after `WAIT` the kick can land before the announce.
#[test]
fn close_racing_a_wait_fails_it() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        let t = thread::spawn(move || pd.evict());
        assert_eq!(kind(wait(pd, Dir::Read)), Some(std::io::ErrorKind::NotConnected));
        t.join().unwrap();
    });
}

/// A past deadline set racing a wait fails it with a timeout (the setter's kick may come
/// before the waiter announces itself).
#[test]
fn deadline_set_racing_a_wait_fails_it() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        advance_to(100);
        let t = thread::spawn(move || pd.set_deadline_ns(Dir::Write, 50));
        assert_eq!(kind(wait(pd, Dir::Write)), Some(std::io::ErrorKind::TimedOut));
        t.join().unwrap();
        join_timers();
    });
}

/// A deadline with no readiness: the timer armed when the waiter parks wakes it, and it
/// times out with the clock at the deadline.
#[test]
fn deadline_alone_wakes_the_waiter() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        pd.set_deadline_ns(Dir::Read, 10);
        assert_eq!(kind(wait(pd, Dir::Read)), Some(std::io::ErrorKind::TimedOut));
        assert!(super::loom_rt::nanos_now() >= 10);
        join_timers();
    });
}

/// The deadline timer racing readiness: the wait either sees the readiness or times out,
/// and in the second case the readiness is not lost (a wait without deadline then gets it).
/// Each wake happens once.
#[test]
fn deadline_timer_racing_readiness() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        pd.set_deadline_ns(Dir::Read, 10);
        let tag = pd.tag();
        let t = thread::spawn(move || event(tag, IN));
        match wait(pd, Dir::Read) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
                pd.set_deadline_ns(Dir::Read, 0);
                wait(pd, Dir::Read).expect("readiness lost after a timeout");
            }
        }
        t.join().unwrap();
        join_timers();
    });
}

/// A deadline pushed later while the waiter is parked: the first timer's kick makes the
/// waiter re-check and re-arm, and it times out only once the clock reaches the deadline it
/// finally saw.
#[test]
fn deadline_extended_while_parked() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        pd.set_deadline_ns(Dir::Read, 10);
        let t = thread::spawn(move || pd.set_deadline_ns(Dir::Read, 20));
        assert_eq!(kind(wait(pd, Dir::Read)), Some(std::io::ErrorKind::TimedOut));
        t.join().unwrap();
        // Either the extension came after the timeout, or the wait ran until 20.
        let now = super::loom_rt::nanos_now();
        assert!(now >= 10);
        join_timers();
    });
}

/// A descriptor closed and reused (`free`, `alloc`: the same `PollDesc`, a new `seq`): the
/// old incarnation's deadline timer and a late epoll event for it, both acting after the
/// reuse, neither wake nor satisfy the new incarnation's waiter, which times out at its own
/// deadline after one park.
///
/// (A stale timer or event that passed its `seq` check just *before* the reuse can still
/// deliver one spurious wake-up to the new waiter, which re-checks and parks again: harmless,
/// and the reason this model holds the old timer back until after the reuse.)
#[test]
fn stale_timer_and_event_after_reuse() {
    model(|| {
        let pd = PollDesc::alloc(-1);
        let old = pd.tag();
        // Incarnation 1: a reader parks with a deadline, arming a timer that captures `seq`
        // (held back), and is woken by readiness.
        pd.set_deadline_ns(Dir::Read, 10);
        hold_timers(true);
        let t = thread::spawn(move || event(old, IN));
        wait(pd, Dir::Read).unwrap();
        t.join().unwrap();
        pd.evict();
        pd.free();

        let pd2 = PollDesc::alloc(-1);
        assert!(std::ptr::eq(pd, pd2), "the pool reuses the PollDesc");
        assert_ne!(pd2.tag(), old);
        // Released: the old timer fires from here on, as does a late event for the old tag.
        hold_timers(false);
        let stale = thread::spawn(move || event(old, IN));
        let parks0 = parks();
        pd2.set_deadline_ns(Dir::Read, 1000);
        assert_eq!(
            kind(wait(pd2, Dir::Read)),
            Some(std::io::ErrorKind::TimedOut),
            "a stale event satisfied a wait on the reused descriptor"
        );
        assert!(parks() - parks0 <= 1, "a stale timer woke the reused descriptor's waiter");
        stale.join().unwrap();
        join_timers();
    });
}
