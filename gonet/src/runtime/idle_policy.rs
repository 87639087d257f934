//! What a worker does when it runs dry: whether it first glances at its netpoller, and how
//! long it spins before it sleeps (the worker's side of invariant 2 in `worker.rs`; the
//! budget of how many workers may spin at once is `Worker::start_spinning`'s).
//!
//! Spinning trades CPU for latency. A sleep costs the worker CPU of its own — the blocking
//! `epoll_wait`, the switch out and, when work comes, the switch back in — and that cost
//! differs tenfold between machines: a few microseconds on bare metal, 15 µs and more on VMs
//! where waking an idle virtual CPU goes through the hypervisor. The rule is the classic one
//! for spin-then-block (ski rental): spin for at most what a sleep costs. Whatever the gap
//! until the next work, that spends at most twice the CPU of the best choice made knowing
//! the gap in advance (three times with [`COST_FACTOR`] 2 when the bracket saw all of the
//! cost), and less than a sleep whenever the gap is shorter than a sleep's cost.
//! The cost is measured, not guessed: in [`SpinMode::Adaptive`] the worker brackets one sleep
//! in [`SAMPLE_EVERY`] (and its first [`WARM_SAMPLES`]) with its thread's CPU clock, keeps a
//! moving average of the sleeps that really blocked, and spins for [`COST_FACTOR`] times that
//! (the bracket misses the cache refills a sleep costs afterwards), capped by the configured
//! window. A worker whose spins always catch their work would never sleep and so
//! never learn that a sleep is cheaper than its spins: until the first samples are in, and
//! then once in [`PROBE_EVERY`] dry spells, it sleeps without spinning (a probe). [`SpinMode::Fixed`] spins for the configured window whatever a sleep
//! costs (`Builder::spin`, `GONET_SPIN_US`).
//!
//! The bracket cannot see everything a sleep costs, though: the work after a wake-up runs on
//! cold caches, and at one connection a sleep also adds the wake-up's latency to every
//! request. Where the client's turnaround is longer than the bracketed cost (a TLS client
//! encrypting its next request), the ski-rental window never catches it, and the worker pays a
//! sleep per request. So the adaptive mode also *measures* which of two windows costs less per
//! unit of work — the short one above, or the configured cap — in epochs of [`EPOCH`] dry
//! spells: the thread's CPU time over the epoch divided by the work done in it (goroutine runs
//! and I/O events; the worker counts them), and the work done per unit of wall time. It keeps
//! the cheaper window, or the cap while that costs at most 1.2 times ([`LONG_BIAS_FIFTHS`]) the short one's
//! and gets at least 5 % more work done (a closed-loop client, waiting for its answer, sends
//! sooner: latency bought with CPU; a saturated or open-loop server gains nothing by it and
//! keeps the cheaper window), and runs the other one epoch in [`EXPLORE_EVERY`] to re-measure
//! it as the load changes. On a 2-CPU VM, a TLS echo
//! at one connection costs 23.3 µs of server CPU per request spinning up to 50 µs and 24.3 µs
//! sleeping, and serves 2.3 times as many requests; an idle server's epochs cost a sleep each
//! with the short window and a sleep plus a fruitless spin with the long one, so it keeps the
//! short one.
//!
//! Two one-bit predictors keep either from being paid for nothing:
//! * a spin runs only while it pays: the previous spin found work, or the previous sleep was
//!   shorter than the window (a spin would have caught its work). A lightly loaded worker,
//!   whose gaps are longer, sleeps at once;
//! * the glance — one non-blocking poll before spinning or sleeping, which lets a busy worker
//!   take queued readiness without touching the runtime's shared counters — runs only while
//!   dry spells end quickly: the previous glance found work, a spin found work, or a sleep
//!   returned within [`QUICK`]. A worker serving one connection, whose every dry spell is a
//!   real sleep, thus makes one `epoll_wait` per request, as a hand-written loop does.

use std::time::Duration;

/// How a worker spins when it runs dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpinMode {
    /// Never: sleep at once.
    Off,
    /// Up to this window, whatever a sleep costs.
    Fixed(Duration),
    /// Up to what a sleep has been measured to cost, and never longer than this window.
    Adaptive(Duration),
}

impl SpinMode {
    /// The longest a spin may last.
    pub fn max(self) -> Duration {
        match self {
            SpinMode::Off => Duration::ZERO,
            SpinMode::Fixed(d) | SpinMode::Adaptive(d) => d,
        }
    }
}

/// One sleep in this many is measured once the first [`WARM_SAMPLES`] are in.
pub(crate) const SAMPLE_EVERY: u64 = 16;
/// Sleeps measured from the start, so the window settles within the first few requests.
pub(crate) const WARM_SAMPLES: u64 = 8;
/// One dry spell in this many sleeps at once and is measured (a probe), so a worker whose
/// spins always hit still learns what a sleep costs.
pub(crate) const PROBE_EVERY: u64 = 256;
/// A sleep that returned within this found work already queued (a blocked thread's wake-up
/// alone takes longer): the glance would have found it too.
pub(crate) const QUICK: Duration = Duration::from_micros(2);
/// What a sleep costs the worker, as a multiple of what the bracket around the blocking
/// `epoll_wait` measures. The bracket sees the sleep and the wake-up, not the caches and TLB
/// entries the sleep cost the code that runs after it: on a 2-CPU VM a raw epoll echo loop
/// spent 22.8 µs of CPU per request at one connection, of which its `read` and `write` take
/// ~3 µs and the bracket sees 13–16 µs. Spinning up to twice the bracketed cost keeps the
/// spin-then-block bound (at most three times the CPU of the best choice) while covering
/// what a sleep really costs.
pub(crate) const COST_FACTOR: u64 = 2;
/// Weight of a new sample in the moving average: 1/8.
const EWMA_SHIFT: u32 = 3;
/// Dry spells per epoch of the short-or-long window comparison.
pub(crate) const EPOCH: u64 = 64;
/// One epoch in this many runs the window not chosen, to re-measure it.
pub(crate) const EXPLORE_EVERY: u64 = 8;
/// The long window is kept (when it gets more work done) while its CPU per unit of work is at
/// most this many fifths of the short one's: 6/5 = 1.2.
pub(crate) const LONG_BIAS_FIFTHS: u64 = 6;

/// Which spin window an adaptive worker uses (see the top of this file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// What a sleep costs (twice the bracketed part), under the cap.
    Short,
    /// The configured cap.
    Long,
}

impl Window {
    fn other(self) -> Window {
        match self {
            Window::Short => Window::Long,
            Window::Long => Window::Short,
        }
    }
}

/// A worker's idle decisions and what it has learned (one per worker; not shared).
#[derive(Debug)]
pub(crate) struct IdlePolicy {
    mode: SpinMode,
    /// Moving average of the CPU time a blocking sleep costs, in nanoseconds; starts at the
    /// configured window, so a fresh worker spins as configured until it has measured.
    sleep_cost_ns: u64,
    spin_worth: bool,
    glance_worth: bool,
    sleeps: u64,
    samples: u64,
    /// Dry spells seen by `should_spin`, and whether the current one is a probe.
    spells: u64,
    probe: bool,
    /// The window in use, and the epoch measuring it: dry spells so far, and the thread's CPU
    /// time (ns), work count and wall clock (ns) at its start (`None`: not started yet).
    arm: Window,
    epoch_spells: u64,
    epoch_start: Option<(u64, u64, u64)>,
    /// For each window, moving averages of the CPU ns per unit of work and of the work done
    /// per millisecond of wall time; and the epochs run.
    cost: [Option<u64>; 2],
    rate: [u64; 2],
    epochs: u64,
}

impl IdlePolicy {
    pub(crate) fn new(mode: SpinMode) -> IdlePolicy {
        IdlePolicy {
            mode,
            sleep_cost_ns: mode.max().as_nanos() as u64,
            spin_worth: true,
            glance_worth: true,
            sleeps: 0,
            samples: 0,
            spells: 0,
            probe: false,
            arm: Window::Short,
            epoch_spells: 0,
            epoch_start: None,
            cost: [None, None],
            rate: [0, 0],
            epochs: 0,
        }
    }

    /// Counts a dry spell; returns whether an epoch ends with it, in which case the worker
    /// calls [`IdlePolicy::close_epoch`] with its CPU time and work count (adaptive mode only).
    pub(crate) fn epoch_due(&mut self) -> bool {
        if !matches!(self.mode, SpinMode::Adaptive(_)) {
            return false;
        }
        self.epoch_spells += 1;
        self.epoch_start.is_none() || self.epoch_spells >= EPOCH
    }

    /// Ends the current epoch at thread CPU time `cpu_ns`, work count `work` and wall clock
    /// `wall_ns`: records what its window cost per unit of work and how much work it got done
    /// per millisecond, picks the window of the next epoch and starts it.
    pub(crate) fn close_epoch(&mut self, cpu_ns: u64, work: u64, wall_ns: u64) {
        if let Some((cpu0, work0, wall0)) = self.epoch_start {
            let done = work.saturating_sub(work0).max(1);
            let per = cpu_ns.saturating_sub(cpu0) / done;
            let rate = done * 1_000_000 / wall_ns.saturating_sub(wall0).max(1);
            let i = self.arm as usize;
            let first = self.cost[i].is_none();
            self.cost[i] = Some(self.cost[i].map_or(per, |old| (old + per) / 2));
            self.rate[i] = if first { rate } else { (self.rate[i] + rate) / 2 };
            self.epochs += 1;
            self.arm = self.next_arm();
        }
        self.epoch_spells = 0;
        self.epoch_start = Some((cpu_ns, work, wall_ns));
    }

    fn next_arm(&self) -> Window {
        let (short, long) = match self.cost {
            [None, _] => return Window::Short,
            [_, None] => return Window::Long,
            [Some(s), Some(l)] => (s, l),
        };
        let [short_rate, long_rate] = self.rate;
        // The long window when it is cheaper, or when it gets at least 5 % more work done (a
        // closed-loop client waits less) for at most 1.2 times the CPU per unit.
        let long_pays = long <= short
            || (long * 5 <= short * LONG_BIAS_FIFTHS && long_rate * 20 >= short_rate * 21);
        let best = if long_pays { Window::Long } else { Window::Short };
        if self.epochs % EXPLORE_EVERY == 0 {
            best.other()
        } else {
            best
        }
    }

    /// How long a spin may last now: the configured window, or in adaptive mode what a sleep
    /// costs ([`COST_FACTOR`] times the measured part) when that is shorter.
    pub(crate) fn window(&self) -> Duration {
        match self.mode {
            SpinMode::Off => Duration::ZERO,
            SpinMode::Fixed(d) => d,
            SpinMode::Adaptive(max) if self.arm == Window::Long => max,
            SpinMode::Adaptive(max) => {
                max.min(Duration::from_nanos(self.sleep_cost_ns.saturating_mul(COST_FACTOR)))
            }
        }
    }

    /// The measured CPU cost of one sleep (ns), as far as it is known.
    pub(crate) fn sleep_cost_ns(&self) -> u64 {
        self.sleep_cost_ns
    }

    /// Whether to poll once without blocking before spinning or sleeping.
    pub(crate) fn should_glance(&self) -> bool {
        self.glance_worth
    }

    pub(crate) fn after_glance(&mut self, found: bool) {
        self.glance_worth = found;
    }

    /// Whether a spin is likely to pay (the budget is asked separately). In adaptive mode a
    /// warming-up worker, and one dry spell in [`PROBE_EVERY`], sleeps instead, measured.
    pub(crate) fn should_spin(&mut self) -> bool {
        if let SpinMode::Adaptive(_) = self.mode {
            self.spells += 1;
            self.probe = self.samples < WARM_SAMPLES || self.spells % PROBE_EVERY == 0;
            if self.probe {
                return false;
            }
        }
        self.spin_worth && !self.window().is_zero()
    }

    /// A spin ended: it found work (or a timer came due), or its window ran out.
    pub(crate) fn after_spin(&mut self, found: bool) {
        self.spin_worth = found;
        if found {
            self.glance_worth = true;
        }
    }

    /// Whether the sleep about to start should be measured (its CPU cost bracketed).
    pub(crate) fn measure_next_sleep(&mut self) -> bool {
        self.sleeps += 1;
        matches!(self.mode, SpinMode::Adaptive(_))
            && (std::mem::take(&mut self.probe) || self.sleeps % SAMPLE_EVERY == 0)
    }

    /// A sleep ended after `slept` of wall time; `cpu` is the thread CPU time it cost when it
    /// was measured.
    pub(crate) fn after_sleep(&mut self, slept: Duration, cpu: Option<Duration>) {
        // A spin would have caught work that came within the window.
        self.spin_worth = slept < self.window();
        self.glance_worth = slept < QUICK;
        if let Some(cpu) = cpu {
            // Only a sleep that blocked (off the CPU for longer than it ran) says what a
            // sleep costs; one that found work queued costs a plain system call.
            if slept > cpu * 2 {
                self.record_cost(cpu);
            }
        }
    }

    fn record_cost(&mut self, cpu: Duration) {
        // Bounded so that a descheduled thread's odd sample cannot stall the average.
        let ns = (cpu.as_nanos() as u64).min(10 * self.mode.max().as_nanos() as u64 + 1_000);
        self.sleep_cost_ns = if self.samples == 0 {
            ns
        } else {
            let old = self.sleep_cost_ns as i64;
            (old + ((ns as i64 - old) >> EWMA_SHIFT)) as u64
        };
        self.samples += 1;
    }
}

/// CPU time the calling thread has used so far.
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    fn sleep_measured(p: &mut IdlePolicy, slept: Duration, cpu: Duration) {
        p.should_spin();
        let m = p.measure_next_sleep();
        p.after_sleep(slept, m.then_some(cpu));
    }

    #[test]
    fn adaptive_window_follows_the_measured_sleep_cost_under_the_cap() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        assert_eq!(p.window(), 20 * US, "before any sample: the configured window");
        // Sleeps that cost 3 µs each: the window comes down to twice that.
        for _ in 0..200 {
            sleep_measured(&mut p, 100 * US, 3 * US);
        }
        let w = p.window();
        assert!(w >= 5 * US && w <= 7 * US, "{w:?}");
        // Sleeps that cost 50 µs: the window goes up to the cap, no further.
        for _ in 0..2000 {
            sleep_measured(&mut p, 1000 * US, 50 * US);
        }
        assert_eq!(p.window(), 20 * US);
        assert!(p.sleep_cost_ns() > 40_000, "{}", p.sleep_cost_ns());
    }

    #[test]
    fn a_sleep_that_did_not_block_is_no_sample() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        for _ in 0..100 {
            // Returned with work queued: 1 µs of wall time, 1 µs of CPU.
            sleep_measured(&mut p, US, US);
        }
        assert_eq!(p.window(), 20 * US);
        assert_eq!(p.samples, 0);
    }

    #[test]
    fn only_some_sleeps_are_measured_after_the_first() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        let measured = (0..1000)
            .filter(|_| {
                p.should_spin();
                let m = p.measure_next_sleep();
                p.after_sleep(100 * US, m.then_some(5 * US));
                m
            })
            .count() as u64;
        let most = WARM_SAMPLES + 1000 / SAMPLE_EVERY + 1000 / PROBE_EVERY;
        assert!(measured <= most, "{measured}");
        assert!(measured >= 1000 / SAMPLE_EVERY, "{measured}");
    }

    #[test]
    fn fixed_and_off_never_measure_and_keep_their_window() {
        let mut f = IdlePolicy::new(SpinMode::Fixed(2 * US));
        let mut o = IdlePolicy::new(SpinMode::Off);
        for _ in 0..100 {
            assert!(!f.measure_next_sleep() && !o.measure_next_sleep());
            f.after_sleep(US, None);
        }
        assert_eq!(f.window(), 2 * US);
        assert_eq!(o.window(), Duration::ZERO);
        assert!(!o.should_spin());
        assert!(f.should_spin());
    }

    #[test]
    fn an_adaptive_worker_probes_sleeps_even_when_its_spins_always_hit() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50_000 * US));
        // Warm-up: no spin until the first samples are in, each sleep measured.
        for _ in 0..WARM_SAMPLES {
            assert!(!p.should_spin());
            assert!(p.measure_next_sleep());
            p.after_sleep(3000 * US, Some(20 * US));
        }
        assert!(p.window() < 50 * US, "{:?}", p.window());
        // Every spin hits from now on: still one probe (a measured sleep) per PROBE_EVERY.
        let mut probes = 0;
        for _ in 0..4 * PROBE_EVERY {
            if p.should_spin() {
                p.after_spin(true);
            } else {
                // A probe, or the one sleep after the warm-up's long ones (not worth a spin).
                let probe = p.probe;
                let measured = p.measure_next_sleep();
                assert!(measured || !probe, "a probe is measured");
                probes += probe as u32;
                p.after_sleep(10 * US, measured.then_some(4 * US));
            }
        }
        assert!((4..=5).contains(&probes), "{probes} probes");
        assert!(p.window() < 40 * US, "the probes moved the window: {:?}", p.window());
    }

    #[test]
    fn the_first_sample_replaces_the_guess_and_odd_samples_are_clamped() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        sleep_measured(&mut p, 100 * US, 3 * US);
        assert_eq!(p.sleep_cost_ns(), 3_000, "the first sample is the estimate");
        let mut q = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        // A thread descheduled inside the bracket: one second of "cost" is clamped.
        sleep_measured(&mut q, Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(q.sleep_cost_ns(), 10 * 20_000 + 1_000);
    }

    #[test]
    fn boundaries_are_strict() {
        // Off the CPU exactly twice as long as on it: not a sleep that blocked.
        let mut p = IdlePolicy::new(SpinMode::Adaptive(20 * US));
        sleep_measured(&mut p, 8 * US, 4 * US);
        assert_eq!(p.samples, 0);
        // A sleep exactly as long as the window: a spin would have run out first.
        let mut f = IdlePolicy::new(SpinMode::Fixed(20 * US));
        f.after_sleep(20 * US, None);
        assert!(!f.should_spin());
        // A sleep of exactly QUICK is not quick.
        f.after_sleep(QUICK, None);
        assert!(!f.should_glance());
    }

    #[test]
    fn spinning_starts_right_after_the_warm_up() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        for _ in 0..WARM_SAMPLES {
            assert!(!p.should_spin(), "warming up");
            assert!(p.measure_next_sleep());
            p.after_sleep(100 * US, Some(4 * US));
        }
        assert_eq!(p.samples, WARM_SAMPLES);
        // A short sleep (a spin would have caught its work), then the next dry spell spins.
        p.after_sleep(US, None);
        assert!(p.should_spin(), "warmed up: the next dry spell spins");
    }

    #[test]
    fn spin_runs_only_while_it_pays() {
        let mut p = IdlePolicy::new(SpinMode::Fixed(20 * US));
        assert!(p.should_spin(), "fixed: no warm-up");
        p.after_spin(false);
        assert!(!p.should_spin(), "a fruitless spin: sleep next time");
        p.after_sleep(500 * US, None);
        assert!(!p.should_spin(), "a long sleep: a spin would not have caught it");
        p.after_sleep(5 * US, None);
        assert!(p.should_spin(), "a short sleep: a spin would have");
        p.after_spin(true);
        assert!(p.should_spin());
    }

    /// Runs adaptive epochs of 100 units of work in which each window costs what `cost` says:
    /// (CPU ns per unit, units per ms of wall time); returns the window each epoch used.
    fn epochs(p: &mut IdlePolicy, n: usize, cost: impl Fn(Window) -> (u64, u64)) -> Vec<Window> {
        if p.epoch_start.is_none() {
            // The first dry spell starts the first epoch.
            assert!(p.epoch_due());
            p.close_epoch(1_000_000, 0, 0);
        }
        let (mut cpu, mut work, mut wall) = p.epoch_start.unwrap();
        let mut used = Vec::new();
        for _ in 0..n {
            let arm = p.arm;
            used.push(arm);
            for k in 1..=EPOCH {
                assert_eq!(p.epoch_due(), k == EPOCH, "an epoch is {EPOCH} dry spells");
            }
            let (per, rate) = cost(arm);
            cpu += per * 100;
            work += 100;
            wall += 100 * 1_000_000 / rate;
            p.close_epoch(cpu, work, wall);
        }
        used
    }

    fn count(used: &[Window], w: Window) -> usize {
        used.iter().filter(|&&u| u == w).count()
    }

    #[test]
    fn the_long_window_is_kept_while_it_buys_work_for_at_most_a_fifth_more_cpu() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        // Each window measured once first, the short one first.
        let used = epochs(&mut p, 2, |_| (1000, 50));
        assert_eq!(used, [Window::Short, Window::Long]);
        // Long: 1.2x the CPU per unit, twice the work per ms (one connection's round trips):
        // kept, with one epoch in EXPLORE_EVERY on the short one.
        let used = epochs(&mut p, 64, |w| if w == Window::Long { (1200, 100) } else { (1000, 50) });
        assert_eq!(count(&used, Window::Short), 64 / EXPLORE_EVERY as usize, "{used:?}");
        assert_eq!(p.window(), 50 * US, "the long window is the cap");
    }

    #[test]
    fn the_short_window_wins_when_the_long_buys_nothing_or_costs_too_much() {
        // Same work per ms (a saturated or open-loop server), 1.1x the CPU: short.
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        sleep_measured(&mut p, 100 * US, 3 * US);
        let used = epochs(&mut p, 64, |w| if w == Window::Long { (1100, 50) } else { (1000, 50) });
        assert_eq!(count(&used[16..], Window::Long), 48 / EXPLORE_EVERY as usize, "{used:?}");
        assert_eq!(used[62], Window::Short);
        p.arm = Window::Short;
        assert!(p.window() < 10 * US, "the short window: {:?}", p.window());
        // Twice the work but 1.21x the CPU: short.
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        let used = epochs(&mut p, 64, |w| if w == Window::Long { (1210, 100) } else { (1000, 50) });
        assert_eq!(count(&used[16..], Window::Long), 48 / EXPLORE_EVERY as usize, "{used:?}");
        // 4 % more work for 1.1x the CPU: short.
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        let used = epochs(&mut p, 64, |w| if w == Window::Long { (1100, 52) } else { (1000, 50) });
        assert_eq!(count(&used[16..], Window::Long), 48 / EXPLORE_EVERY as usize, "{used:?}");
        // The load changes: the long window gets cheaper, and the exploring epochs find it.
        let used = epochs(&mut p, 32, |w| if w == Window::Long { (500, 50) } else { (1000, 50) });
        assert_eq!(used.last(), Some(&Window::Long), "{used:?}");
    }

    #[test]
    fn fixed_and_off_run_no_epochs() {
        let mut f = IdlePolicy::new(SpinMode::Fixed(20 * US));
        let mut o = IdlePolicy::new(SpinMode::Off);
        assert!(!f.epoch_due() && !o.epoch_due());
    }

    #[test]
    fn glance_runs_only_while_dry_spells_end_quickly() {
        let mut p = IdlePolicy::new(SpinMode::Off);
        assert!(p.should_glance());
        p.after_glance(true);
        assert!(p.should_glance());
        p.after_glance(false);
        assert!(!p.should_glance(), "a glance that found nothing");
        p.after_sleep(80 * US, None);
        assert!(!p.should_glance(), "a real sleep: one connection, one epoll_wait");
        p.after_sleep(QUICK / 2, None);
        assert!(p.should_glance(), "work was queued: busy again");
        p.after_glance(false);
        p.after_spin(true);
        assert!(p.should_glance(), "a spin found work: busy again");
    }
}
