//! Seed sweeps: run one scenario under many seeds (on every core), report each seed that
//! fails, and replay one with `DZ_SEED`.
//!
//! A scenario is a function of a [`Trial`]: it builds its simulation with
//! [`Trial::simulation`] (which applies the trial's seed, fault rates and buggify rate), runs
//! it, and returns `Err` (or panics) when something it checks does not hold. With a [`Swarm`],
//! every seed also draws its own network conditions within bounds, so that one sweep covers
//! many of them.
//!
//! # Examples
//!
//! ```
//! use dz_core::sim::{Sweep, Swarm};
//!
//! let report = Sweep::new(0..20).swarm(Swarm::default()).run(|trial| {
//!     let mut sim = trial.simulation();
//!     let machine = sim.add_machine();
//!     let _ = machine;
//!     sim.run_until_idle();
//!     Ok(())
//! });
//! assert!(report.failures.is_empty());
//! assert_eq!(report.ran, 20);
//! ```
//!
//! To replay a seed a sweep reported, run the same test with `DZ_SEED=<seed>`: the sweep then
//! runs that seed alone, with the same trial (and so the same trace).

use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::rng::DetRng;

use super::faults::{FaultKind, FaultRule, Filter};
use super::{MachineHandle, SimConfig, Simulation};

/// The environment variable that makes a sweep run one seed.
pub const SEED_VAR: &str = "DZ_SEED";

/// Bounds for the network conditions each seed of a swarm sweep draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Swarm {
    /// The drop rate is drawn from this range.
    pub drop: RangeInclusive<f64>,
    /// The duplicate rate is drawn from this range.
    pub duplicate: RangeInclusive<f64>,
    /// The reorder rate is drawn from this range.
    pub reorder: RangeInclusive<f64>,
    /// The buggify rate is drawn from this range.
    pub buggify: RangeInclusive<f64>,
    /// At most this many partitions (see [`Trial::disrupt`]).
    pub max_partitions: u32,
    /// At most this many machine crashes, each followed by a restart.
    pub max_crashes: u32,
    /// Partitions and crashes fall within this window of virtual time, in milliseconds, and last
    /// at most `max_outage_ms`.
    pub window_ms: Range<u64>,
    /// The longest a partition or a crash lasts, in milliseconds.
    pub max_outage_ms: u64,
}

impl Default for Swarm {
    /// Up to 20% drops, 10% duplicates, 20% reorders, 5% buggify, two partitions and no
    /// crashes within the first minute, each at most 20 s long.
    fn default() -> Self {
        Swarm {
            drop: 0.0..=0.2,
            duplicate: 0.0..=0.1,
            reorder: 0.0..=0.2,
            buggify: 0.0..=0.05,
            max_partitions: 2,
            max_crashes: 0,
            window_ms: 0..60_000,
            max_outage_ms: 20_000,
        }
    }
}

/// One run of a sweep: a seed and what it drew.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The seed.
    pub seed: u64,
    /// The simulation's set-up, with the drawn fault rules and buggify rate.
    pub config: SimConfig,
    /// Partitions to cut, as `(start_ms, duration_ms)`, each of a drawn share of the machines.
    pub partitions: Vec<(u64, u64)>,
    /// Crashes, as `(at_ms, down_ms)`.
    pub crashes: Vec<(u64, u64)>,
}

impl Trial {
    /// A trial of `seed` without swarm: the default configuration.
    pub fn plain(seed: u64) -> Self {
        Trial { seed, config: SimConfig::default(), partitions: Vec::new(), crashes: Vec::new() }
    }

    /// A trial of `seed` drawing its conditions within `swarm`'s bounds.
    pub fn swarm(seed: u64, swarm: &Swarm) -> Self {
        let mut rng = DetRng::stream(seed, "swarm");
        let mut draw = |r: &RangeInclusive<f64>| r.start() + (r.end() - r.start()) * rng.next_f64();
        let rates = [
            (FaultKind::Drop, draw(&swarm.drop)),
            (FaultKind::Duplicate, draw(&swarm.duplicate)),
            (FaultKind::Reorder, draw(&swarm.reorder)),
        ];
        let buggify_rate = draw(&swarm.buggify);
        let faults = rates
            .into_iter()
            .filter(|&(_, rate)| rate > 0.0)
            .map(|(kind, rate)| FaultRule { kind, rate, filter: Filter::any() })
            .collect();
        let outage = |rng: &mut DetRng| {
            let span = swarm.window_ms.end.saturating_sub(swarm.window_ms.start);
            (swarm.window_ms.start + rng.below(span.max(1)), 1 + rng.below(swarm.max_outage_ms.max(1)))
        };
        let partitions = (0..rng.below(u64::from(swarm.max_partitions) + 1)).map(|_| outage(&mut rng)).collect();
        let crashes = (0..rng.below(u64::from(swarm.max_crashes) + 1)).map(|_| outage(&mut rng)).collect();
        Trial { seed, config: SimConfig { faults, buggify_rate, ..SimConfig::default() }, partitions, crashes }
    }

    /// A simulation of this trial's seed and set-up.
    pub fn simulation(&self) -> Simulation {
        Simulation::with_config(self.seed, self.config.clone())
    }

    /// Puts the trial's partitions and crashes on `machines` of `sim`: each partition cuts a
    /// drawn, non-empty part of them off (both ways) and each crash hits one, drawn, then
    /// restarts it. Machines the scenario must keep (a test's observer, say) are best left out.
    pub fn disrupt(&self, sim: &mut Simulation, machines: &[MachineHandle]) {
        if machines.is_empty() {
            return;
        }
        let mut rng = DetRng::stream(self.seed, "disrupt");
        for &(start_ms, duration_ms) in &self.partitions {
            let cut: Vec<_> = machines.iter().filter(|_| rng.chance(0.5)).map(|m| m.id().clone()).collect();
            let cut = if cut.is_empty() { vec![machines[0].id().clone()] } else { cut };
            sim.add_partition(super::Partition {
                machines: cut,
                direction: super::Direction::Both,
                start_micros: start_ms * 1000,
                end_micros: (start_ms + duration_ms) * 1000,
            });
        }
        for &(at_ms, down_ms) in &self.crashes {
            let machine = &machines[rng.below(machines.len() as u64) as usize];
            sim.schedule_crash(machine, at_ms, Some(down_ms));
        }
    }
}

/// A seed that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What the scenario said, or its panic message.
    pub message: String,
}

/// What a sweep found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Seeds run.
    pub ran: u64,
    /// Every seed that failed, in seed order.
    pub failures: Vec<Failure>,
}

impl SweepReport {
    /// Panics, listing every failing seed and how to replay it, if any seed failed.
    ///
    /// # Panics
    ///
    /// When a seed failed.
    pub fn assert_ok(&self) {
        if !self.failures.is_empty() {
            panic!("{self}");
        }
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} of {} seeds failed", self.failures.len(), self.ran)?;
        for failure in &self.failures {
            writeln!(f, "  seed {}: {}", failure.seed, failure.message)?;
        }
        if let Some(first) = self.failures.first() {
            writeln!(f, "replay one with {SEED_VAR}={} and the same test", first.seed)?;
        }
        Ok(())
    }
}

/// A sweep of a scenario over seeds. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Sweep {
    seeds: Range<u64>,
    threads: usize,
    swarm: Option<Swarm>,
}

impl Sweep {
    /// A sweep over `seeds`, on as many threads as the machine has cores.
    pub fn new(seeds: Range<u64>) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Sweep { seeds, threads, swarm: None }
    }

    /// Runs on `threads` threads (at least one).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Lets every seed draw its network conditions within `swarm`.
    pub fn swarm(mut self, swarm: Swarm) -> Self {
        self.swarm = Some(swarm);
        self
    }

    /// The trial of `seed` in this sweep.
    pub fn trial(&self, seed: u64) -> Trial {
        match &self.swarm {
            Some(swarm) => Trial::swarm(seed, swarm),
            None => Trial::plain(seed),
        }
    }

    /// Runs `scenario` for every seed (or only `DZ_SEED`, when that is set) and reports.
    pub fn run<F>(&self, scenario: F) -> SweepReport
    where
        F: Fn(&Trial) -> Result<(), String> + Sync,
    {
        let seeds = match std::env::var(SEED_VAR).ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(seed) => seed..seed + 1,
            None => self.seeds.clone(),
        };
        let next = AtomicU64::new(seeds.start);
        let failures = Mutex::new(Vec::new());
        let threads = self.threads.min((seeds.end.saturating_sub(seeds.start)).max(1) as usize);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let trial = self.trial(seed);
                    let outcome = catch_unwind(AssertUnwindSafe(|| scenario(&trial)));
                    let message = match outcome {
                        Ok(Ok(())) => continue,
                        Ok(Err(message)) => message,
                        Err(panic) => panic_message(&*panic),
                    };
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(Failure { seed, message });
                });
            }
        });
        let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
        failures.sort_by_key(|f| f.seed);
        SweepReport { ran: seeds.end.saturating_sub(seeds.start), failures }
    }
}

/// What a panic said: its message if it had one, as `panicked: <message>`.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => format!("panicked: {s}"),
        (_, Some(s)) => format!("panicked: {s}"),
        _ => "panicked".to_string(),
    }
}
