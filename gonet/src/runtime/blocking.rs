//! `gonet::blocking`: runs blocking closures on a process-wide thread pool while the calling
//! goroutine parks, so that file I/O, DNS or a C library never blocks a worker.
//!
//! The pool starts threads on demand, up to [`MAX_THREADS`]; a thread that has had no job for
//! [`IDLE_EXIT`] exits. Jobs beyond the cap queue in FIFO order.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use super::contain;
use super::park::park_for;
use super::worker;

/// Most threads the pool runs at once.
pub const MAX_THREADS: usize = 512;
/// How long an idle pool thread waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<State>,
    cv: Condvar,
}

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static P: OnceLock<Pool> = OnceLock::new();
    P.get_or_init(|| Pool {
        state: Mutex::new(State { jobs: VecDeque::new(), threads: 0, idle: 0 }),
        cv: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn submit(&'static self, job: Job) {
        let mut st = self.lock();
        st.jobs.push_back(job);
        if st.idle > 0 {
            drop(st);
            self.cv.notify_one();
            return;
        }
        if st.threads < MAX_THREADS {
            let spawned =
                thread::Builder::new().name("gonet-blocking".into()).spawn(move || self.work());
            if spawned.is_ok() {
                st.threads += 1;
            }
            // If the thread cannot be started the job waits for an existing one; with none at
            // all it would wait forever, so run it right here instead.
            if spawned.is_err() && st.threads == 0 {
                let job = st.jobs.pop_back().expect("just pushed");
                drop(st);
                job();
            }
        }
    }

    fn work(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                // Jobs catch their closure's panics; this also contains a panicking `Drop` of
                // what a job leaves behind, so the pool never loses a thread (contain.rs).
                contain::catch(0, "running a blocking job", job);
                st = self.lock();
                continue;
            }
            st.idle += 1;
            let (g, to) = self.cv.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
            st = g;
            st.idle -= 1;
            if to.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `f` on the blocking pool and parks the calling goroutine until it is done; returns its
/// value or resumes its panic. Called outside a goroutine, it just runs `f` on the caller.
///
/// The pool is process-wide and starts threads on demand, at most 512 at once; a thread idle
/// for 10 s exits. Jobs beyond the cap wait in FIFO order, so 512 closures that block for long
/// delay every later job (host-name lookups of `gonet::net` included; literal addresses never
/// use the pool).
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    blocking_scoped(f)
}

/// Like [`blocking`], but `f` may borrow from the caller's stack.
///
/// Soundness: the borrowed data must outlive the job. The goroutine stays parked until the job
/// is done, except when its runtime shuts down and unwinds the parked stack; a guard on the
/// stack then blocks the unwinding thread until the job has finished, so the borrows stay valid.
pub(crate) fn blocking_scoped<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    if !worker::in_goroutine() {
        return f();
    }
    struct Done {
        flag: Mutex<bool>,
        cv: Condvar,
    }
    type Out<T> = Arc<Mutex<Option<thread::Result<T>>>>;
    struct WaitOnUnwind<T>(Arc<Done>, Out<T>);
    impl<T> Drop for WaitOnUnwind<T> {
        fn drop(&mut self) {
            let mut d = self.0.flag.lock().unwrap_or_else(|e| e.into_inner());
            while !*d {
                d = self.0.cv.wait(d).unwrap_or_else(|e| e.into_inner());
            }
            drop(d);
            if thread::panicking() {
                // Unwound at shutdown: the result nobody will read is dropped here, where a
                // panic in its `Drop` is contained instead of aborting the unwind.
                let r = self.1.lock().unwrap_or_else(|e| e.into_inner()).take();
                let gid = worker::current_goroutine_id().unwrap_or(0);
                contain::drop_contained(gid, "dropping a blocking job's result at shutdown", r);
            }
        }
    }
    let out: Out<T> = Arc::new(Mutex::new(None));
    let done = Arc::new(Done { flag: Mutex::new(false), cv: Condvar::new() });
    let guard = WaitOnUnwind(done.clone(), out.clone());
    let slot = out.clone();
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        *done.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        done.cv.notify_all();
    });
    // SAFETY: only the lifetime is extended; `guard` keeps everything `'a` alive until the job
    // has run (see above), on both the normal and the unwinding path.
    let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
    park_for(super::wait::Wait::Blocking, move |w| {
        pool().submit(Box::new(move || {
            job();
            w.wake();
        }));
        Ok(())
    });
    drop(guard);
    let r = out.lock().unwrap_or_else(|e| e.into_inner()).take();
    match r.expect("gonet: blocking job woke its goroutine without a result") {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}
