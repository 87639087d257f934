//! `gonet::blocking`: runs closures off the workers, returns their value, resumes their
//! panic, and never stalls the worker of the goroutine that waits for it.

mod common;
use common::run;

use std::panic::{self};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn runs_off_the_workers_and_returns_its_value() {
    run(1, || {
        let caller = thread::current().name().unwrap_or("").to_string();
        assert!(caller.starts_with("gonet-worker-"));
        let (name, v) =
            gonet::blocking(|| (thread::current().name().unwrap_or("").to_string(), 6 * 7));
        assert!(name.starts_with("gonet-blocking"), "ran on {name:?}");
        assert_eq!(v, 42);
        // The goroutine resumes on its own worker.
        assert_eq!(thread::current().name().unwrap_or(""), caller);
    });
}

#[test]
fn resumes_the_closures_panic() {
    run(1, || {
        let r = panic::catch_unwind(|| gonet::blocking(|| -> u8 { panic!("blocking job failed") }));
        let p = r.expect_err("the job's panic must resume in the caller");
        assert_eq!(p.downcast_ref::<&str>().copied(), Some("blocking job failed"));
        // The pool still works afterwards.
        assert_eq!(gonet::blocking(|| 1), 1);
    });
}

#[test]
fn other_goroutines_run_while_a_job_blocks() {
    run(1, || {
        // The job blocks until a goroutine on the only worker feeds it: if the job held the
        // worker, the feeder could never run.
        let (tx, rx) = mpsc::channel::<u32>();
        let feeder = gonet::go(move || {
            for i in 0..5 {
                gonet::time::sleep(Duration::from_millis(2));
                tx.send(i).unwrap();
            }
        });
        let sum = gonet::blocking(move || rx.iter().sum::<u32>());
        assert_eq!(sum, 10);
        feeder.join().unwrap();
    });
}

#[test]
fn many_concurrent_jobs() {
    run(2, || {
        let hs: Vec<_> = (0..64u64)
            .map(|i| {
                gonet::go(move || {
                    gonet::blocking(move || {
                        thread::sleep(Duration::from_millis(5));
                        i
                    })
                })
            })
            .collect();
        let sum: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..64).sum());
    });
}

#[test]
fn outside_a_goroutine_runs_on_the_caller() {
    let me = thread::current().id();
    assert!(gonet::blocking(move || thread::current().id() == me));
}
