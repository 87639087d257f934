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
//! cold caches, at one connection a sleep also adds the wake-up's latency to every request,
//! and under load a sleep lets requests gather, so that the next wake-up serves several.
//! Where the client's turnaround is longer than the bracketed cost (a TLS client encrypting
//! its next request), the ski-rental window never catches it, and the worker pays a sleep per
//! request; where the client is slow to answer (a TLS handshake per request), spins that
//! catch half the gaps still cost more than the sleeps they save. So the adaptive mode also
//! *measures* which of three windows costs least per unit of work — none (sleep at once),
//! the short one above, or the configured cap — in epochs of at least [`EPOCH_MIN`]: the
//! thread's CPU time over the epoch divided by the work done in it (input events and wake-ups
//! from other threads, about one per request whatever the window; `WorkerStats::inputs`), and
//! the work done per second, each a moving average over the window's epochs. It keeps the cheapest window, or one that spins more while that
//! costs at most [`MORE_CPU_PCT`] % of the cheapest's CPU per unit and gets at least
//! [`MORE_WORK_PCT`] % of the work done (a closed-loop client, waiting for its answer, sends
//! sooner: latency bought with CPU; a saturated or open-loop server gains nothing by it and
//! keeps the cheaper window), and runs one of the others one epoch in [`EXPLORE_EVERY`] to
//! re-measure it as the load changes. On a 2-CPU VM, a TLS echo at one connection gets 2.5
//! times as much done per second with the cap (50 µs) as with no spin, for less CPU per
//! request; with a new TLS connection per request the cap gets 4 % more done for 18 % more
//! CPU per request, and the worker keeps to sleeping; at 100 busy connections the three cost
//! within 2 % of each other. An idle server's epochs cost a sleep each with no spin and with
//! the short window, and a sleep plus a fruitless spin with the long one.
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
    /// Not at all, up to what a sleep has been measured to cost, or up to this window:
    /// whichever of the three has been measured to cost the least CPU per request (or buys
    /// enough throughput for its CPU; see the top of `idle_policy.rs`).
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
/// Dry spells between two looks at an epoch's clock.
pub(crate) const EPOCH_SPELLS: u64 = 16;
/// An epoch of the window comparison lasts at least this long, so that its CPU time per
/// unit of work averages enough requests to be steadier than the few per cent it must tell
/// apart (over 64 dry spells, about a millisecond at 100 busy connections, it varied by 19 %;
/// over 10 ms epochs, by ±25 % on a loaded 2-CPU VM, and the choice wandered among windows
/// that cost the same).
pub(crate) const EPOCH_MIN: Duration = Duration::from_millis(25);
/// An epoch that lasted longer than this spanned a quiet spell (or a load too light for
/// the windows to matter: fewer than [`EPOCH_SPELLS`] dry spells in 75 ms) and is not
/// recorded: its work per second would say how busy the clients were, not what its window did.
pub(crate) const EPOCH_MAX: Duration = Duration::from_millis(100);
/// One epoch in this many runs a window not chosen (the two others in turn), to re-measure it:
/// each is measured every 800 ms or so. The turns cost what a worse window costs: where no
/// spin was chosen, at 1 in 8 the default cost 2.0–2.6 % more CPU than no spin at all (a new
/// TLS connection per request, 100 busy connections); at one connection the turns of the
/// slower windows cost throughput.
pub(crate) const EXPLORE_EVERY: u64 = 16;
/// A window that spins more than the cheapest is kept while its CPU per unit of work is at
/// most [`MORE_CPU_PCT`] % of the cheapest's and it gets at least [`MORE_WORK_PCT`] % of the
/// work done per unit of wall time (a quarter more: the clients' own rate swings by a tenth
/// and more between epochs; where spinning pays, at one connection, it gets 2.5 times as much
/// done).
pub(crate) const MORE_CPU_PCT: u64 = 120;
pub(crate) const MORE_WORK_PCT: u64 = 125;
/// Windows whose CPU per unit of work is within this % of the least are a tie, which the one
/// that spins least wins: the epochs' measurements wander by a few per cent, and at 100 busy
/// connections, where the three windows cost within 2 % of each other, taking the cheapest
/// measured chose a spinning window about half the time, for no gain.
pub(crate) const TIE_PCT: u64 = 105;
/// Weight of an epoch's measurement in its window's moving averages: 1/8.
const EPOCH_SHIFT: u32 = 3;

/// Which spin window an adaptive worker uses (see the top of this file), in the order of how
/// much they spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Window {
    /// No spin: sleep at once.
    Off,
    /// What a sleep costs (twice the bracketed part), under the cap.
    Short,
    /// The configured cap.
    Long,
}

impl Window {
    const ALL: [Window; 3] = [Window::Off, Window::Short, Window::Long];
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
    /// For each window (indexed by `Window as usize`), moving averages of the CPU ns per unit
    /// of work and of the work done per second of wall time; and the epochs run.
    cost: [Option<u64>; 3],
    rate: [u64; 3],
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
            cost: [None; 3],
            rate: [0; 3],
            epochs: 0,
        }
    }

    /// Counts a dry spell; returns whether the epoch may end with it (the first spell, then
    /// one in [`EPOCH_SPELLS`]), in which case the worker asks [`IdlePolicy::epoch_over`] with
    /// its wall clock and, if so, calls [`IdlePolicy::close_epoch`] (adaptive mode only).
    pub(crate) fn epoch_due(&mut self) -> bool {
        if !matches!(self.mode, SpinMode::Adaptive(_)) {
            return false;
        }
        self.epoch_spells += 1;
        self.epoch_start.is_none() || self.epoch_spells % EPOCH_SPELLS == 0
    }

    /// Whether the current epoch, at wall clock `wall_ns`, has lasted [`EPOCH_MIN`] (or none
    /// has started).
    pub(crate) fn epoch_over(&self, wall_ns: u64) -> bool {
        self.epoch_start.is_none_or(|(_, _, wall0)| {
            wall_ns.saturating_sub(wall0) >= EPOCH_MIN.as_nanos() as u64
        })
    }

    /// Ends the current epoch at thread CPU time `cpu_ns`, work count `work` and wall clock
    /// `wall_ns`: records what its window cost per unit of work and how much work it got done
    /// per second (unless it lasted longer than [`EPOCH_MAX`]), picks the window of the next
    /// epoch and starts it.
    pub(crate) fn close_epoch(&mut self, cpu_ns: u64, work: u64, wall_ns: u64) {
        let recorded = self
            .epoch_start
            .filter(|&(_, _, wall0)| wall_ns.saturating_sub(wall0) <= EPOCH_MAX.as_nanos() as u64);
        if let Some((cpu0, work0, wall0)) = recorded {
            let done = work.saturating_sub(work0).max(1);
            let per = cpu_ns.saturating_sub(cpu0) / done;
            let rate = done.saturating_mul(1_000_000_000) / wall_ns.saturating_sub(wall0).max(1);
            let i = self.arm as usize;
            let ewma = |old: u64, new: u64| {
                (old as i64 + ((new as i64 - old as i64) >> EPOCH_SHIFT)) as u64
            };
            match self.cost[i] {
                None => (self.cost[i], self.rate[i]) = (Some(per), rate),
                Some(old) => {
                    (self.cost[i], self.rate[i]) = (Some(ewma(old, per)), ewma(self.rate[i], rate))
                }
            }
            self.epochs += 1;
            self.arm = self.next_arm();
        }
        self.epoch_spells = 0;
        self.epoch_start = Some((cpu_ns, work, wall_ns));
    }

    /// The window of the next epoch: each measured once first (short, long, off), then the
    /// best, and one epoch in [`EXPLORE_EVERY`] one of the two others, in turn.
    fn next_arm(&self) -> Window {
        for w in [Window::Short, Window::Long, Window::Off] {
            if self.cost[w as usize].is_none() {
                return w;
            }
        }
        let best = self.best();
        if self.epochs % EXPLORE_EVERY != 0 {
            return best;
        }
        let mut others = Window::ALL.into_iter().filter(|&w| w != best);
        let turn = (self.epochs / EXPLORE_EVERY) % 2;
        others.nth(turn as usize).unwrap_or(best)
    }

    /// The cheapest window per unit of work (the one that spins least among those within
    /// [`TIE_PCT`] % of the least), unless one that spins more gets at least
    /// [`MORE_WORK_PCT`] % of its work done per second for at most [`MORE_CPU_PCT`] % of its
    /// CPU per unit: a closed-loop client, waiting for its answer, sends sooner, and the
    /// latency is worth that CPU. A saturated or open-loop server gains nothing by spinning
    /// and keeps the cheaper window.
    fn best(&self) -> Window {
        let cost = |w: Window| self.cost[w as usize].unwrap_or(u64::MAX);
        let rate = |w: Window| self.rate[w as usize];
        let least = Window::ALL.into_iter().map(cost).min().unwrap_or(u64::MAX);
        let cheapest = Window::ALL
            .into_iter()
            .find(|&w| cost(w).saturating_mul(100) <= least.saturating_mul(TIE_PCT))
            .unwrap_or(Window::Short);
        let mut best = cheapest;
        for w in Window::ALL.into_iter().filter(|&w| w > cheapest) {
            let affordable =
                cost(w).saturating_mul(100) <= cost(cheapest).saturating_mul(MORE_CPU_PCT);
            if affordable && rate(w).saturating_mul(100) >= rate(best).saturating_mul(MORE_WORK_PCT)
            {
                best = w;
            }
        }
        best
    }

    /// How long a spin may last now: the configured window, or in adaptive mode what a sleep
    /// costs ([`COST_FACTOR`] times the measured part) when that is shorter.
    pub(crate) fn window(&self) -> Duration {
        match self.mode {
            SpinMode::Off => Duration::ZERO,
            SpinMode::Fixed(d) => d,
            SpinMode::Adaptive(_) if self.arm == Window::Off => Duration::ZERO,
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

    /// Runs `n` adaptive epochs in which each window costs what `cost` says: (CPU ns per unit
    /// of work, units per second), a look at the clock every EPOCH_SPELLS dry spells each
    /// doing 100 units; returns the window each epoch used.
    fn epochs(p: &mut IdlePolicy, n: usize, cost: impl Fn(Window) -> (u64, u64)) -> Vec<Window> {
        if p.epoch_start.is_none() {
            // The first dry spell starts the first epoch.
            assert!(p.epoch_due());
            assert!(p.epoch_over(0));
            p.close_epoch(1_000_000, 0, 0);
        }
        let (mut cpu, mut work, mut wall) = p.epoch_start.unwrap();
        let mut used = Vec::new();
        for _ in 0..n {
            let arm = p.arm;
            used.push(arm);
            let (per, rate) = cost(arm);
            let start = wall;
            loop {
                for k in 1..=EPOCH_SPELLS {
                    assert_eq!(p.epoch_due(), k == EPOCH_SPELLS, "a look every {EPOCH_SPELLS}");
                }
                cpu += per * 100;
                work += 100;
                wall += 100 * 1_000_000_000 / rate;
                if p.epoch_over(wall) {
                    break;
                }
            }
            assert!(wall - start >= EPOCH_MIN.as_nanos() as u64);
            p.close_epoch(cpu, work, wall);
        }
        used
    }

    fn count(used: &[Window], w: Window) -> usize {
        used.iter().filter(|&&u| u == w).count()
    }

    const OFF: Window = Window::Off;
    const SHORT: Window = Window::Short;
    const LONG: Window = Window::Long;

    /// Costs per window, in the order off, short, long.
    fn costs(c: [(u64, u64); 3]) -> impl Fn(Window) -> (u64, u64) {
        move |w| c[w as usize]
    }

    /// A fresh adaptive worker whose windows cost `c` (see `costs`) uses `w` in every epoch
    /// after the first eight but the exploring ones.
    fn assert_settles_on(c: [(u64, u64); 3], w: Window) {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        let used = epochs(&mut p, 64, costs(c));
        assert_eq!(count(&used[8..], w), 56 - 56 / EXPLORE_EVERY as usize, "{c:?}: {used:?}");
    }

    #[test]
    fn an_epoch_lasts_at_least_its_minimum_and_its_clock_is_read_once_in_epoch_spells() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        assert!(p.epoch_due() && p.epoch_over(5), "the first dry spell starts the first epoch");
        p.close_epoch(0, 0, 5);
        let min = EPOCH_MIN.as_nanos() as u64;
        for k in 1..EPOCH_SPELLS {
            assert!(!p.epoch_due(), "spell {k}: no look at the clock");
        }
        assert!(p.epoch_due());
        assert!(!p.epoch_over(min + 4), "one nanosecond short of EPOCH_MIN");
        assert!(p.epoch_over(min + 5));
    }

    #[test]
    fn each_window_is_measured_first_then_the_best_is_kept_and_the_others_explored_in_turn() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        // Not spinning is cheapest and gets as much done (a saturated client).
        let cost = costs([(1000, 50_000), (1100, 50_000), (1150, 50_000)]);
        let used = epochs(&mut p, 3, &cost);
        assert_eq!(used, [SHORT, LONG, OFF], "each window once, short first");
        let used = epochs(&mut p, 64, &cost);
        assert_eq!(count(&used, OFF), 64 - 64 / EXPLORE_EVERY as usize, "{used:?}");
        let each = 64 / EXPLORE_EVERY as usize / 2;
        assert_eq!(count(&used, SHORT), each, "{used:?}");
        assert_eq!(count(&used, LONG), each, "{used:?}");
        let explored: Vec<Window> = used.into_iter().filter(|&w| w != OFF).collect();
        assert!(explored.windows(2).all(|w| w[0] != w[1]), "in turn: {explored:?}");
        p.arm = OFF;
        assert_eq!(p.window(), Duration::ZERO);
        assert!(!p.should_spin() || p.probe, "the off window never spins");
    }

    #[test]
    fn the_long_window_is_kept_while_it_buys_a_quarter_more_work_for_at_most_a_fifth_more_cpu() {
        // One connection's round trips: the long window gets twice the work done per second.
        assert_settles_on([(1000, 40_000), (1000, 50_000), (1200, 100_000)], LONG);
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        sleep_measured(&mut p, 100 * US, 3 * US);
        p.arm = LONG;
        assert_eq!(p.window(), 50 * US, "the long window is the cap");
        // Cheaper and faster: long, whatever the others.
        assert_settles_on([(1300, 40_000), (1200, 50_000), (1000, 60_000)], LONG);
        // Exactly 1.2x the CPU and 1.25x the work of the cheapest: still kept.
        assert_settles_on([(1000, 50_000), (1100, 50_000), (1200, 62_500)], LONG);
    }

    #[test]
    fn a_spin_that_buys_too_little_work_or_costs_too_much_gives_way_to_the_cheapest() {
        // New connection per request, the client slow to answer: spinning gets 4 % more done
        // for 16 % more CPU. Off.
        assert_settles_on([(1000, 50_000), (1080, 51_000), (1160, 52_000)], OFF);
        // Twice the work for 1.21x the CPU: the cheaper short window.
        assert_settles_on([(1100, 50_000), (1000, 50_000), (1210, 100_000)], SHORT);
        // The short window buys a quarter more work than off; the long one 3 % more than the
        // short one (29 % more than off): the short one, each step has to pay.
        assert_settles_on([(1000, 50_000), (1100, 62_500), (1150, 64_400)], SHORT);
        // 24 % more work for 1.1x the CPU: off (a swing of the clients' rate between epochs
        // at 100 busy connections is that large).
        assert_settles_on([(1000, 50_000), (1100, 62_000), (1100, 62_000)], OFF);
        // A spin cheaper than a sleep (short gaps, spins that hit at once): short, which spins
        // less than the long window within 5 % of it.
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        sleep_measured(&mut p, 100 * US, 3 * US);
        let used = epochs(&mut p, 64, costs([(1060, 50_000), (1000, 50_000), (980, 50_000)]));
        assert_eq!(count(&used[8..], SHORT), 56 - 56 / EXPLORE_EVERY as usize, "{used:?}");
        p.arm = SHORT;
        assert!(p.window() < 10 * US, "the short window: {:?}", p.window());
        // The load changes: the long window gets cheaper, and the exploring epochs find it.
        let used = epochs(&mut p, 64, costs([(1060, 50_000), (1000, 50_000), (500, 50_000)]));
        assert_eq!(used.last(), Some(&LONG), "{used:?}");
    }

    #[test]
    fn within_five_per_cent_the_window_that_spins_least_wins() {
        // 100 busy connections: the windows measure within 2 % of each other, the spinning
        // ones a little cheaper. Off.
        assert_settles_on([(1000, 50_000), (985, 50_000), (980, 50_000)], OFF);
        // Exactly 5 % apart is still a tie; just over it is not.
        assert_settles_on([(1050, 50_000), (1000, 50_000), (1000, 50_000)], OFF);
        assert_settles_on([(1051, 50_000), (1000, 50_000), (1000, 50_000)], SHORT);
        assert_settles_on([(1051, 50_000), (1051, 50_000), (1000, 50_000)], LONG);
    }

    #[test]
    fn an_epoch_that_spanned_a_quiet_spell_is_not_recorded() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        let cost = costs([(1000, 50_000), (1050, 50_000), (1100, 50_000)]);
        epochs(&mut p, 64, &cost);
        let (arm, before) = (p.arm, p.cost);
        // 16 dry spells, then the clients go quiet for a second: the epoch's work per second
        // says nothing about its window. Nothing recorded, and the window stays.
        let (cpu, work, wall) = p.epoch_start.unwrap();
        for _ in 0..EPOCH_SPELLS {
            p.epoch_due();
        }
        let max = EPOCH_MAX.as_nanos() as u64;
        p.close_epoch(cpu + 5_000_000, work + 100, wall + max + 1);
        assert_eq!((p.arm, p.cost), (arm, before));
        // One exactly EPOCH_MAX long is recorded.
        let (cpu, work, wall) = p.epoch_start.unwrap();
        p.close_epoch(cpu + 5_000_000, work + 100, wall + max);
        assert_ne!(p.cost, before);
    }

    #[test]
    fn one_odd_epoch_does_not_turn_the_choice() {
        let mut p = IdlePolicy::new(SpinMode::Adaptive(50 * US));
        let cost = costs([(1000, 50_000), (1050, 50_000), (1100, 50_000)]);
        epochs(&mut p, 64, &cost);
        assert_eq!(p.best(), OFF);
        // One exploring epoch of the short window measures 10 % below off (a lucky epoch): its
        // average moves an eighth of the way, not below off's.
        while p.arm != SHORT {
            epochs(&mut p, 1, &cost);
        }
        epochs(&mut p, 1, |_| (900, 50_000));
        assert_eq!(p.best(), OFF, "{:?}", p.cost);
        // Epochs that keep measuring it below do turn it.
        for _ in 0..8 {
            while p.arm != SHORT {
                epochs(&mut p, 1, &cost);
            }
            epochs(&mut p, 1, |_| (900, 50_000));
        }
        assert_eq!(p.best(), SHORT, "{:?}", p.cost);
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
